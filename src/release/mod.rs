//! The frozen release: the version and everything derived from it, computed once per run.
//!
//! [`resolve()`] is the single entry point. It picks the version, in this order:
//!
//! 1. `--version`;
//! 2. the `VERSION` environment variable;
//! 3. the release handed down by a parent `dray` whose hook started this process
//!    ([`Release::from_parent_env`]);
//! 4. git: the full `HEAD` commit, with an `_uncommitted_<16 hex>` suffix when the tree is dirty
//!    and `builder.context` is set (the build then uses the working tree, not a clone of `HEAD`).
//!
//! Whatever its source, the version must be a valid Docker tag ([`validate_tag`]).
//!
//! A parent `dray` hands its release down to the `dray` its hooks run (see `parent.rs`), and the
//! `_uncommitted_` suffix is a digest of the change, never random (see `uncommitted.rs`).
//!
//! - `identity.rs`: [`Release`] and what derives from the version alone;
//! - `resolve.rs`: [`resolve()`] and its inputs and result;
//! - `parent.rs`: the hand-down from a parent `dray`; `warning.rs`: [`Warning`]s;
//! - `tag.rs`: Docker's tag grammar; `error.rs`: [`ReleaseError`];
//! - `git.rs`: the git queries; `uncommitted.rs`: the `_uncommitted_` digest;
//! - `performer.rs`: `KAMAL_PERFORMER` and the lock's `Locked by:`.

mod error;
mod git;
mod identity;
mod parent;
mod performer;
mod resolve;
mod tag;
#[cfg(test)]
mod test_support;
mod uncommitted;
mod warning;

pub use error::ReleaseError;
pub use git::ChangedPath;
pub use identity::{latest_tag, service_version, Release, VersionSource, PARENT_RELEASE_ENV};
pub use parent::ParentLookup;
pub use performer::{lock_performer, performer};
pub use resolve::{format_recorded_at, process_env, resolve, ResolveInputs, Resolved};
pub use tag::{validate_tag, TagError, TagRule, MAX_TAG_LEN};
pub use uncommitted::{uncommitted_digest, UntrackedContent};
pub use warning::{ParentMismatch, Warning};

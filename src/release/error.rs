//! [`ReleaseError`]: why no release could be computed (an invalid version, no repository or
//! commit, git missing or failing), with its hint and exit code.

use std::io;
use std::path::PathBuf;

use super::identity::VersionSource;
use super::tag::{TagError, TagRule};
use crate::error::{Diagnostic, ExitCode};

/// Why no release could be computed.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The version (from any source) is not a valid Docker tag.
    #[error("{}", invalid_version_message(*.from, .error))]
    InvalidVersion {
        /// Where the version came from.
        from: VersionSource,
        /// The broken rule.
        error: TagError,
    },
    /// No version given and the project is not in a git repository.
    #[error(
        "no version given and {} is not in a git repository, so there is no commit to use",
        .dir.display()
    )]
    NotARepo {
        /// The project directory.
        dir: PathBuf,
    },
    /// No version given and the repository has no commit yet.
    #[error("no version given and the git repository at {} has no commits yet", .dir.display())]
    NoCommits {
        /// The project directory.
        dir: PathBuf,
    },
    /// No version given and `git` is not installed.
    #[error("no version given and git was not found in PATH ({reason})")]
    GitMissing {
        /// What `which` said.
        reason: String,
    },
    /// A git command could not be started or exited non-zero.
    #[error("`{command}` failed in {}: {detail}", .dir.display())]
    GitFailed {
        /// The command line.
        command: String,
        /// Where it ran.
        dir: PathBuf,
        /// The exit status and the tail of its standard error, or why it did not start.
        detail: String,
    },
    /// A git command printed something unexpected.
    #[error("unexpected output from `{command}`: {detail}")]
    GitOutput {
        /// The command line.
        command: String,
        /// What was wrong.
        detail: String,
    },
    /// An untracked file could not be read to derive the `_uncommitted_` suffix.
    #[error("cannot read the untracked file {} to derive the version: {source}", .path.display())]
    ReadUntracked {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

fn invalid_version_message(from: VersionSource, error: &TagError) -> String {
    match error.rule {
        TagRule::Empty => format!("invalid version from {from}: {}", error.rule),
        _ => format!(
            "invalid version `{}` from {from}: {}",
            error.shown(),
            error.rule
        ),
    }
}

impl Diagnostic for ReleaseError {
    fn hint(&self) -> Option<String> {
        const GIVE_VERSION: &str = "pass --version VERSION or set VERSION";
        match self {
            ReleaseError::InvalidVersion { error, .. } => error.hint(),
            ReleaseError::NotARepo { .. } => Some(format!(
                "{GIVE_VERSION}, or run dray inside the app's git repository"
            )),
            ReleaseError::NoCommits { .. } => Some(format!("commit first, or {GIVE_VERSION}")),
            ReleaseError::GitMissing { .. } => Some(format!("install git, or {GIVE_VERSION}")),
            ReleaseError::GitFailed { .. }
            | ReleaseError::GitOutput { .. }
            | ReleaseError::ReadUntracked { .. } => Some(GIVE_VERSION.to_owned()),
        }
    }

    fn exit_code(&self) -> ExitCode {
        match self {
            ReleaseError::InvalidVersion { .. }
            | ReleaseError::NotARepo { .. }
            | ReleaseError::NoCommits { .. }
            | ReleaseError::GitMissing { .. } => ExitCode::Usage,
            ReleaseError::GitFailed { .. }
            | ReleaseError::GitOutput { .. }
            | ReleaseError::ReadUntracked { .. } => ExitCode::Failure,
        }
    }
}

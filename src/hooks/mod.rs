//! Hooks: the environment each hook receives, and running the hook files.
//!
//! - [`env`]: the pure half, which the plan uses to show and the engine to pass the environment:
//!   [`HookContext`] → [`hook_env`], a list of [`HookVar`]s.
//! - [`run`]: finding ([`find_hook`]) and running ([`run_hook`]) a hook file, and [`HookError`].
//!
//! The hook names, in firing order, are [`HOOK_NAMES`](crate::config::model::HOOK_NAMES); where
//! each one fires is decided by the plan.

pub mod env;
pub mod run;

pub use env::{hook_env, HookContext, HookVar, HOOKS_WITH_SECRETS};
pub use run::{find_hook, run_hook, HookError, HookLimits, HookRun, StopSignal};

//! What a template may read and do: [`TemplateContext`] (the environment and the directory
//! commands run in) and [`CommandPolicy`] (whether commands may run at all).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a template may read: the environment (a snapshot, with `KAMAL_DESTINATION` set) and the
/// directory commands run in.
#[derive(Debug, Clone, Default)]
pub struct TemplateContext {
    /// Environment variables visible to `env(...)` and ERB `ENV[...]`.
    pub env: BTreeMap<String, String>,
    /// Working directory for `cmd(...)` and ERB backticks / `%x()`.
    pub cwd: PathBuf,
}

/// Whether rendering a template (or loading secrets) may start processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CommandPolicy {
    /// Run commands with `/bin/sh -c` (the default).
    #[default]
    Run,
    /// Never start a process: every command is an error naming it.
    Deny,
}

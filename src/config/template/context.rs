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
    /// Never start a process: every command succeeds with [`FAKE_OUTPUT`] as its output. Only
    /// the fuzz harness uses it (no configuration or flag selects it), so that mutated files
    /// go past their commands without running any.
    Fake,
}

/// What a command prints under [`CommandPolicy::Fake`].
pub const FAKE_OUTPUT: &str = "fake-output";

/// The largest file a template may read (`File.read`, `Dotenv.load`): the config input limit.
const MAX_READ_BYTES: u64 = crate::config::node::MAX_INPUT_BYTES as u64;

/// Read a text file of at most [`MAX_READ_BYTES`].
pub(crate) fn read_limited(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(MAX_READ_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_READ_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_READ_BYTES} bytes"
        )));
    }
    Ok(text)
}

//! Templates in configuration files: tera, plus the ERB subset real Kamal configs use.
//!
//! OWNER: template helper. Interface only until implemented.

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

/// A template that could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct TemplateError {
    /// 1-based line in the source file.
    pub line: usize,
    /// 1-based column in the source file.
    pub column: usize,
    /// What went wrong.
    pub message: String,
    /// What to write instead, e.g. the tera form of an unsupported ERB tag.
    pub hint: Option<String>,
}

/// Render `source` (the text of one configuration file) into plain YAML text.
pub fn render(source: &str, ctx: &TemplateContext) -> Result<String, TemplateError> {
    let _ = ctx;
    Ok(source.to_string())
}

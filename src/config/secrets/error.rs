//! [`SecretsError`]: a secrets file that could not be read or parsed, or a secret that is not
//! there; and [`REDACTED`], what is shown instead of a secret value.

use std::path::PathBuf;

/// What `Debug` shows instead of a secret value.
pub const REDACTED: &str = "[REDACTED]";

/// A secrets file that could not be read, or a secret that is not there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// A key was asked for that no file defines.
    #[error("secret '{key}' not found in {}", files_list(.files))]
    Missing {
        /// The key asked for.
        key: String,
        /// The files searched, in order.
        files: Vec<PathBuf>,
    },
    /// A file has a syntax error, or a `$(cmd)` failed.
    #[error("{}:{line}: {message}", .file.display())]
    Parse {
        /// The secrets file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What went wrong.
        message: String,
    },
    /// A `$(kamal secrets …)` substitution failed (its adapter, its vendor CLI).
    #[error("{}:{line}: {message}", .file.display())]
    Inline {
        /// The secrets file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What went wrong (known secret values redacted).
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
    /// A file exists but could not be read (permissions, a directory, not UTF-8).
    #[error("{}: {message}", .file.display())]
    Read {
        /// The secrets file.
        file: PathBuf,
        /// What went wrong.
        message: String,
    },
}

fn files_list(files: &[PathBuf]) -> String {
    if files.is_empty() {
        return "no secret files".to_string();
    }
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

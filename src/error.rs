//! Error types shared by every layer, the `hint:` mechanism and the exit codes.
//!
//! Each layer has its own `thiserror` enum (config, release, remote, …); they all convert into
//! [`Error`], which is rendered exactly once, in `commands::main`, as
//!
//! ```text
//! error: <message>
//! hint: <what to do>
//! ```
//!
//! # Exit codes
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success |
//! | 1    | the operation ran and failed (a hook, a host, a deploy step) |
//! | 2    | bad input: command line, configuration, secrets, version/tag; nothing was run |
//! | 3    | partial success: some hosts succeeded, some failed |
//! | 130  | interrupted (ctrl-c / SIGTERM) |

use std::fmt;

/// Process exit codes; see the module documentation for the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything succeeded.
    Success = 0,
    /// The operation ran and failed.
    Failure = 1,
    /// Bad input (usage, configuration, secrets, version); nothing was run.
    Usage = 2,
    /// Some hosts succeeded, some failed.
    Partial = 3,
    /// Interrupted by a signal.
    Interrupted = 130,
}

impl ExitCode {
    /// The numeric process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// The top-level error: a message, an optional hint and an exit code.
#[derive(Debug)]
pub struct Error {
    /// The message, lowercase, no trailing period.
    pub message: String,
    /// What the user can do about it.
    pub hint: Option<String>,
    /// The exit code this error maps to.
    pub exit: ExitCode,
}

impl Error {
    /// A usage / bad-input error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            hint: None,
            exit: ExitCode::Usage,
        }
    }

    /// A runtime failure (exit 1).
    pub fn failure(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            hint: None,
            exit: ExitCode::Failure,
        }
    }

    /// Attach a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Override the exit code.
    pub fn with_exit(mut self, exit: ExitCode) -> Self {
        self.exit = exit;
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Errors of one layer that know their hint and exit code.
pub trait Diagnostic: fmt::Display {
    /// What the user can do about it, if known.
    fn hint(&self) -> Option<String> {
        None
    }
    /// The exit code this error maps to.
    fn exit_code(&self) -> ExitCode {
        ExitCode::Usage
    }
}

impl<T: Diagnostic> From<T> for Error {
    fn from(err: T) -> Self {
        Error {
            message: err.to_string(),
            hint: err.hint(),
            exit: err.exit_code(),
        }
    }
}

/// Result alias for command handlers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

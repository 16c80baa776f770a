//! Why a run failed, as data: a host failure carries host, role, step, the command's purpose,
//! its exit status, the tail of its standard error and a hint; the run keeps every one of them.
//! Rendered once, by the command layer.

use std::fmt;

use serde::Serialize;

use crate::error::{Diagnostic, ExitCode};
use crate::remote::RemoteError;

/// One host's (or the local machine's) failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostFailure {
    /// The host (`localhost` for the build).
    pub host: String,
    /// The role, for boots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The stage the step belongs to.
    pub step: String,
    /// What the failing command was for.
    pub purpose: String,
    /// Its exit status (`None`: it did not run to an exit, or no command failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    /// The last lines of its standard error.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stderr_tail: String,
    /// The whole message, as shown.
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Whether the connection was lost while the command may have run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub lost: bool,
}

impl HostFailure {
    /// A failure from a remote error.
    pub fn remote(step: &str, role: Option<&str>, err: &RemoteError) -> Self {
        let (host, purpose, exit, stderr_tail) = match err {
            RemoteError::Connect { host, .. } => (host.clone(), "connect".to_string(), None, ""),
            RemoteError::Exec { host, purpose, .. } | RemoteError::Lost { host, purpose } => {
                (host.clone(), purpose.clone(), None, "")
            }
            RemoteError::Failed {
                host,
                purpose,
                status,
                stderr_tail,
                ..
            } => (
                host.clone(),
                purpose.clone(),
                status.parse().ok(),
                stderr_tail.as_str(),
            ),
        };
        HostFailure {
            host,
            role: role.map(str::to_string),
            step: step.to_string(),
            purpose,
            exit,
            stderr_tail: stderr_tail.to_string(),
            message: err.to_string(),
            hint: err.hint(),
            lost: matches!(err, RemoteError::Lost { .. }),
        }
    }

    /// A failure described by `message` (no command's exit).
    pub fn new(step: &str, host: &str, role: Option<&str>, purpose: &str, message: String) -> Self {
        HostFailure {
            host: host.to_string(),
            role: role.map(str::to_string),
            step: step.to_string(),
            purpose: purpose.to_string(),
            exit: None,
            stderr_tail: String::new(),
            message,
            hint: None,
            lost: false,
        }
    }

    /// With this hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for HostFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Hosts could not be reached (all named).
    Unreachable(crate::remote::Unreachable),
    /// A hook failed (the run stops).
    Hook {
        /// The hook.
        hook: String,
        /// The message.
        message: String,
        /// What to do.
        hint: Option<String>,
    },
    /// The deploy lock could not be taken or released.
    Lock {
        /// The message.
        message: String,
        /// What to do.
        hint: Option<String>,
    },
    /// A step failed on a host (or locally).
    Host(HostFailure),
}

impl Failure {
    /// The message.
    pub fn message(&self) -> String {
        match self {
            Failure::Unreachable(u) => u.to_string(),
            Failure::Hook { message, .. } | Failure::Lock { message, .. } => message.clone(),
            Failure::Host(h) => h.message.clone(),
        }
    }

    /// The hint.
    pub fn hint(&self) -> Option<String> {
        match self {
            Failure::Unreachable(u) => u.hint(),
            Failure::Hook { hint, .. } | Failure::Lock { hint, .. } => hint.clone(),
            Failure::Host(h) => h.hint.clone(),
        }
    }

    /// The host it happened on, for host failures.
    pub fn host(&self) -> Option<&str> {
        match self {
            Failure::Host(h) => Some(&h.host),
            _ => None,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The process exit code: the one rule, [`exit_code`].
    pub exit: ExitCode,
    /// Every failure, in the order they happened (hosts in host order within a step).
    pub failures: Vec<Failure>,
    /// Whether ctrl-c (or SIGTERM) ended it.
    pub interrupted: bool,
    /// Whether the deploy lock was released on the way out of an interrupted run.
    pub lock_released_on: Option<String>,
    /// What the plan's read-back step read: `(host, role, output)`, `None` where it failed or
    /// printed nothing.
    pub read_back: Vec<(String, String, Option<String>)>,
}

/// The exit-code rule, in one place: 130 when interrupted; 0 when nothing failed; 3 when
/// only hosts failed and at least one targeted host succeeded; 1 otherwise.
pub fn exit_code(interrupted: bool, failures: &[Failure], any_host_ok: bool) -> ExitCode {
    if interrupted {
        ExitCode::Interrupted
    } else if failures.is_empty() {
        ExitCode::Success
    } else if failures.iter().all(|f| matches!(f, Failure::Host(_))) && any_host_ok {
        ExitCode::Partial
    } else {
        ExitCode::Failure
    }
}

impl Outcome {
    /// Every failure's message, then the hints (`hint: …`), as the command prints them; `None`
    /// when the run succeeded.
    pub fn error_text(&self) -> Option<String> {
        self.clone().into_error().map(|e| match e.hint {
            Some(h) => format!("{}\nhint: {h}", e.message),
            None => e.message,
        })
    }

    /// The outcome as the command's error (rendered once by `commands::main`), if it failed.
    pub fn into_error(self) -> Option<crate::error::Error> {
        if self.exit == ExitCode::Success {
            return None;
        }
        if self.interrupted && self.failures.is_empty() {
            let message = match &self.lock_released_on {
                Some(host) => format!("interrupted; the deploy lock on {host} was released"),
                None => "interrupted".to_string(),
            };
            return Some(crate::error::Error::failure(message).with_exit(self.exit));
        }
        let message = self
            .failures
            .iter()
            .map(Failure::message)
            .collect::<Vec<_>>()
            .join("\n");
        let mut hints: Vec<String> = Vec::new();
        for h in self.failures.iter().filter_map(Failure::hint) {
            if !hints.contains(&h) {
                hints.push(h);
            }
        }
        let mut err = crate::error::Error::failure(message).with_exit(self.exit);
        if !hints.is_empty() {
            err = err.with_hint(hints.join("\nhint: "));
        }
        Some(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(h: &str) -> Failure {
        Failure::Host(HostFailure::new("boot", h, None, "boot", "x".into()))
    }

    #[test]
    fn one_rule_for_exit_codes() {
        assert_eq!(exit_code(false, &[], true), ExitCode::Success);
        assert_eq!(exit_code(true, &[host("a")], true), ExitCode::Interrupted);
        assert_eq!(exit_code(false, &[host("a")], true), ExitCode::Partial);
        assert_eq!(exit_code(false, &[host("a")], false), ExitCode::Failure);
        let hook = Failure::Hook {
            hook: "pre-deploy".into(),
            message: "m".into(),
            hint: None,
        };
        assert_eq!(exit_code(false, &[hook], true), ExitCode::Failure);
    }
}

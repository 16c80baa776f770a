//! Everything dray does on a server goes through [`Remote`]: one place that runs a
//! [`CommandSpec`] on a host and returns what it printed.
//!
//! The SSH implementation (`ssh.rs`) keeps one OpenSSH master connection per host per run and
//! multiplexes every command over it; tests of the engine can use any other implementation.

pub mod process;

use std::future::Future;
use std::pin::Pin;

use crate::command::CommandSpec;

/// A boxed future, so [`Remote`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    /// The exit status; `None` when killed by a signal.
    pub status: Option<i32>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl CommandOutput {
    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// The last `lines` lines of standard error (for failure reports).
    pub fn stderr_tail(&self, lines: usize) -> String {
        let all: Vec<&str> = self.stderr.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Why a command could not be run, or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// No connection to the host.
    #[error("cannot connect to {host}: {message}")]
    Connect {
        /// The host.
        host: String,
        /// What went wrong.
        message: String,
    },
    /// The command could not be started or its output not read.
    #[error("{purpose} on {host}: {message}")]
    Exec {
        /// The host.
        host: String,
        /// The command's purpose.
        purpose: String,
        /// What went wrong.
        message: String,
    },
    /// The command ran and exited non-zero.
    #[error("{purpose} on {host}: `{line}` exited {status}{}", tail_suffix(.stderr_tail))]
    Failed {
        /// The host.
        host: String,
        /// The command's purpose.
        purpose: String,
        /// The command line (secrets redacted).
        line: String,
        /// The exit status, or "a signal".
        status: String,
        /// The last lines of standard error.
        stderr_tail: String,
    },
    /// The command did not finish in time.
    #[error("{purpose} on {host}: no answer within {seconds}s")]
    Timeout {
        /// The host.
        host: String,
        /// The command's purpose.
        purpose: String,
        /// The limit.
        seconds: u64,
    },
}

fn tail_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(":\n{tail}")
    }
}

impl RemoteError {
    /// The error for a command that ran and exited non-zero.
    pub fn failed(host: &str, cmd: &CommandSpec, output: &CommandOutput) -> Self {
        RemoteError::Failed {
            host: host.to_string(),
            purpose: cmd.purpose.clone(),
            line: cmd.to_shell_redacted(),
            status: output
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "on a signal".to_string()),
            stderr_tail: output.stderr_tail(10),
        }
    }
}

impl crate::error::Diagnostic for RemoteError {
    fn hint(&self) -> Option<String> {
        match self {
            RemoteError::Connect { host, .. } => Some(format!(
                "check that {host} is up and reachable, that sshd listens on the configured port, and the `ssh:` settings (user, port, keys, proxy)"
            )),
            _ => None,
        }
    }
    fn exit_code(&self) -> crate::error::ExitCode {
        crate::error::ExitCode::Failure
    }
}

/// Runs commands on hosts.
pub trait Remote: Send + Sync {
    /// Run `cmd` on `host` (its `stdin` fed to the command) and return its output, whatever
    /// its exit status. `Err` only when it could not be run at all.
    fn run<'a>(
        &'a self,
        host: &'a str,
        cmd: &'a CommandSpec,
    ) -> BoxFuture<'a, Result<CommandOutput, RemoteError>>;

    /// Run `cmd` on `host`; a non-zero exit is a [`RemoteError::Failed`].
    fn run_checked<'a>(
        &'a self,
        host: &'a str,
        cmd: &'a CommandSpec,
    ) -> BoxFuture<'a, Result<CommandOutput, RemoteError>> {
        Box::pin(async move {
            let output = self.run(host, cmd).await?;
            if output.success() {
                Ok(output)
            } else {
                Err(RemoteError::failed(host, cmd, &output))
            }
        })
    }
}

//! A [`Remote`] for tests that runs each command through the system `ssh` (one connection per
//! command): real sshd, real Docker, no mocks. dray's own `SshRemote` multiplexes instead.

use std::path::PathBuf;

use dray::command::CommandSpec;
use dray::remote::{BoxFuture, CommandOutput, Remote, RemoteError};
use tokio::io::AsyncWriteExt;

/// Runs `ssh -F <config> <host> <line>`.
pub struct SshCliRemote {
    /// The fleet's ssh config.
    pub config: PathBuf,
}

impl Remote for SshCliRemote {
    fn run<'a>(
        &'a self,
        host: &'a str,
        cmd: &'a CommandSpec,
    ) -> BoxFuture<'a, Result<CommandOutput, RemoteError>> {
        Box::pin(async move {
            let exec = |message: String| RemoteError::Exec {
                host: host.to_string(),
                purpose: cmd.purpose.clone(),
                message,
            };
            let mut child = tokio::process::Command::new("ssh")
                .arg("-F")
                .arg(&self.config)
                .arg(host)
                .arg(cmd.to_shell())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| exec(e.to_string()))?;
            if let Some(mut stdin) = child.stdin.take() {
                if let Some(secret) = &cmd.stdin {
                    stdin
                        .write_all(&secret.0)
                        .await
                        .map_err(|e| exec(e.to_string()))?;
                }
            }
            let out = child
                .wait_with_output()
                .await
                .map_err(|e| exec(e.to_string()))?;
            Ok(CommandOutput {
                status: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        })
    }
}

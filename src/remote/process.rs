//! A [`Remote`] that runs each command through the system `ssh` client, one connection per
//! command, with an ssh config file. Simple and dependable; `SshRemote` (one multiplexed master
//! per host) is what deploys use.

use std::path::PathBuf;

use tokio::io::AsyncWriteExt;

use super::{BoxFuture, CommandOutput, Remote, RemoteError};
use crate::command::CommandSpec;

/// Runs `ssh [-F <config>] [-p port] [-l user] <host> <line>`.
#[derive(Debug, Clone, Default)]
pub struct ProcessRemote {
    /// An ssh config file (`-F`), if any.
    pub config: Option<PathBuf>,
    /// Extra `ssh` options, e.g. `["-p", "2222", "-l", "deploy"]`.
    pub options: Vec<String>,
}

impl Remote for ProcessRemote {
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
            let mut ssh = tokio::process::Command::new("ssh");
            if let Some(config) = &self.config {
                ssh.arg("-F").arg(config);
            }
            let mut child = ssh
                .args(&self.options)
                .arg(host)
                .arg(cmd.to_shell())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| exec(format!("cannot run ssh: {e}")))?;
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
            if out.status.code() == Some(255) {
                let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
                return Err(RemoteError::Connect {
                    host: host.to_string(),
                    message: stderr,
                });
            }
            Ok(CommandOutput {
                status: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        })
    }
}

//! Everything dray does on a server goes through [`Remote`]: one place that runs a
//! [`CommandSpec`] on a host and returns what it printed.
//!
//! The SSH implementation (`ssh.rs`) keeps one OpenSSH master connection per host per run and
//! multiplexes every command over it; `native/` is the in-process client (russh) chosen with
//! `x-dray: ssh: transport: native`, OpenSSH beside it for what it cannot do. Tests of the
//! engine can use any other implementation.

pub mod fanout;
pub mod native;
pub mod process;
mod reclaim;
pub mod ssh;
mod ssh_options;

use std::future::Future;
use std::pin::Pin;

use crate::command::CommandSpec;

pub use crate::config::model::SshTransport;
pub use fanout::{fan_out, HostOutcome};
pub use native::{remote_for, NativeRemote};
pub use ssh::{SshOptions, SshRemote};

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
    #[error("{}: {message}", at(.purpose, .host))]
    Exec {
        /// The host.
        host: String,
        /// The command's purpose.
        purpose: String,
        /// What went wrong.
        message: String,
    },
    /// The connection dropped while the command may have been running: it may have finished,
    /// or not. It is never run again on its own.
    #[error("{}: lost the connection while it ran; it may or may not have finished", at(.purpose, .host))]
    Lost {
        /// The host.
        host: String,
        /// The command's purpose.
        purpose: String,
    },
    /// The command ran and exited non-zero. Shown as its purpose, host, exit status and its
    /// own standard error; the command line (`-v` prints it) is kept for who needs it.
    #[error("{}: exited {status}{}", at(.purpose, .host), tail_suffix(.stderr_tail))]
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
}

/// `<purpose> on <host>`, unless the purpose already ends with ` on <host>` (the docker
/// builders' purposes name their host).
fn at(purpose: &str, host: &str) -> String {
    if purpose.ends_with(&format!(" on {host}")) {
        purpose.to_string()
    } else {
        format!("{purpose} on {host}")
    }
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
            stderr_tail: readable_tail(&output.stderr, 10),
        }
    }
}

/// Lines of `docker login`'s advice that say nothing about a failure.
const NOISE: [&str; 3] = [
    "WARNING! Your password will be stored unencrypted",
    "Configure a credential helper to remove this warning",
    "https://docs.docker.com/engine/reference/commandline/login/#credential",
];

/// The last `lines` lines of `stderr` without `docker login`'s advice and blank lines.
fn readable_tail(stderr: &str, lines: usize) -> String {
    let kept: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !NOISE.iter().any(|n| l.contains(n)))
        .collect();
    kept[kept.len().saturating_sub(lines)..].join("\n")
}

impl crate::error::Diagnostic for RemoteError {
    fn hint(&self) -> Option<String> {
        match self {
            RemoteError::Connect { host, .. } => Some(format!(
                "check that {host} is up and reachable, that sshd listens on the configured port, and the `ssh:` settings (user, port, keys, proxy)"
            )),
            RemoteError::Lost { host, .. } => Some(format!(
                "{host} keeps the old or the new version; `dray app details -h {host}` shows which, and deploying again is safe"
            )),
            _ => None,
        }
    }
    fn exit_code(&self) -> crate::error::ExitCode {
        crate::error::ExitCode::Failure
    }
}

/// Hosts that could not be reached, all of them at once ("connect first, fail fast").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable(pub Vec<RemoteError>);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "cannot connect to {} hosts:", many.len())?;
                for err in many {
                    write!(f, "\n  {err}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Unreachable {}

impl crate::error::Diagnostic for Unreachable {
    fn hint(&self) -> Option<String> {
        let hosts: Vec<&str> = self
            .0
            .iter()
            .filter_map(|e| match e {
                RemoteError::Connect { host, .. } => Some(host.as_str()),
                _ => None,
            })
            .collect();
        Some(format!(
            "check that {} {} up and reachable, that sshd listens on the configured port, and the `ssh:` settings (user, port, keys, proxy); `ssh -v <host>` shows more",
            hosts.join(", "),
            if hosts.len() == 1 { "is" } else { "are" }
        ))
    }
    fn exit_code(&self) -> crate::error::ExitCode {
        crate::error::ExitCode::Failure
    }
}

/// An SSH reverse tunnel (`ssh -R <remote_host>:<remote_port>:<local_host>:<local_port>`): a
/// listener on the host whose connections reach `<local_host>:<local_port>` as this machine
/// sees it. Kamal's local registry pull opens one per host (`-R 127.0.0.1:PORT:localhost:PORT`,
/// `lib/kamal/cli/build/port_forwarding.rb`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tunnel {
    /// The address it listens on, on the host.
    pub remote_host: String,
    /// The port it listens on, on the host.
    pub remote_port: u16,
    /// Where it connects, on this machine.
    pub local_host: String,
    /// The port it connects to, on this machine.
    pub local_port: u16,
}

impl Tunnel {
    /// `-R 127.0.0.1:5555:localhost:5555`, as `ssh` spells it.
    pub fn forward_arg(&self) -> String {
        format!(
            "-R {}:{}:{}:{}",
            self.remote_host, self.remote_port, self.local_host, self.local_port
        )
    }
}

/// Calls `seen` once, as soon as a whole line of a command's standard output is `marker`,
/// while the command still runs: the engine acts on a script's progress (a boot's readiness)
/// without a round trip of its own.
pub struct Watch<'a> {
    marker: &'a str,
    seen: &'a (dyn Fn() + Send + Sync),
    fired: bool,
    /// Bytes of the output already looked at (whole lines).
    scanned: usize,
}

impl<'a> Watch<'a> {
    /// Watch for the line `marker`.
    pub fn new(marker: &'a str, seen: &'a (dyn Fn() + Send + Sync)) -> Self {
        Watch {
            marker,
            seen,
            fired: false,
            scanned: 0,
        }
    }

    /// `stdout` is the output so far (it only grows): look at its new whole lines.
    pub fn feed(&mut self, stdout: &[u8]) {
        while !self.fired {
            let rest = stdout.get(self.scanned..).unwrap_or_default();
            let Some(end) = rest.iter().position(|b| *b == b'\n') else {
                return;
            };
            self.look(&rest[..end]);
            self.scanned += end + 1;
        }
    }

    /// The command ended with `stdout`: its last line counts even without a newline.
    pub fn finish(&mut self, stdout: &[u8]) {
        self.feed(stdout);
        if !self.fired {
            let rest = stdout.get(self.scanned..).unwrap_or_default();
            self.look(rest);
        }
    }

    /// Whether the line was seen.
    pub fn fired(&self) -> bool {
        self.fired
    }

    fn look(&mut self, line: &[u8]) {
        if line.trim_ascii() == self.marker.as_bytes() {
            self.fired = true;
            (self.seen)();
        }
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

    /// [`Remote::run`], with `watch` told of each line of standard output as it arrives.
    /// The default tells it once the command ended (for remotes that do not stream).
    fn run_watched<'a>(
        &'a self,
        host: &'a str,
        cmd: &'a CommandSpec,
        watch: &'a mut Watch<'_>,
    ) -> BoxFuture<'a, Result<CommandOutput, RemoteError>> {
        Box::pin(async move {
            let out = self.run(host, cmd).await?;
            watch.finish(out.stdout.as_bytes());
            Ok(out)
        })
    }

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

    /// Connect to every host up front, in parallel, naming every host that cannot be reached.
    /// Implementations without connections keep the default, which does nothing.
    fn connect_all<'a>(&'a self, hosts: &'a [String]) -> BoxFuture<'a, Result<(), Unreachable>> {
        let _ = hosts;
        Box::pin(async { Ok(()) })
    }

    /// Open `tunnel` on `host` (over the host's connection) until [`Remote::close_tunnel`] or
    /// the end of the run. Remotes without a lasting connection refuse.
    fn open_tunnel<'a>(
        &'a self,
        host: &'a str,
        tunnel: &'a Tunnel,
    ) -> BoxFuture<'a, Result<(), RemoteError>> {
        Box::pin(async move {
            Err(RemoteError::Exec {
                host: host.to_string(),
                purpose: format!("open the tunnel {}", tunnel.forward_arg()),
                message: "this remote cannot open SSH tunnels".into(),
            })
        })
    }

    /// Close `tunnel` on `host`. The default does nothing (nothing was opened).
    fn close_tunnel<'a>(
        &'a self,
        host: &'a str,
        tunnel: &'a Tunnel,
    ) -> BoxFuture<'a, Result<(), RemoteError>> {
        let _ = (host, tunnel);
        Box::pin(async { Ok(()) })
    }

    /// Close every connection of the run (at its end). The default does nothing.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Run `line` on `host` attached to this terminal (`ssh -t`); its exit status (`None`: a
    /// signal). Remotes without a terminal refuse.
    fn interactive<'a>(
        &'a self,
        host: &'a str,
        line: &'a str,
    ) -> BoxFuture<'a, Result<Option<i32>, RemoteError>> {
        let _ = line;
        Box::pin(async move {
            Err(RemoteError::Exec {
                host: host.to_string(),
                purpose: "run an interactive command".into(),
                message: "this remote has no terminal".into(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Watch;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_watch_fires_once_on_the_whole_marker_line_as_soon_as_it_arrives() {
        let seen = AtomicUsize::new(0);
        let tell = || {
            seen.fetch_add(1, Ordering::SeqCst);
        };
        let mut w = Watch::new("dray-ready", &tell);
        let mut out = b"waiting\ndray-rea".to_vec();
        w.feed(&out);
        assert_eq!(
            seen.load(Ordering::SeqCst),
            0,
            "half a line is not the line"
        );
        out.extend_from_slice(b"dy\nstopping the old one\n");
        w.feed(&out);
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        out.extend_from_slice(b"dray-ready\n");
        w.finish(&out);
        assert_eq!(seen.load(Ordering::SeqCst), 1, "once");
        assert!(w.fired());
    }

    #[test]
    fn a_watch_reads_a_last_line_without_newline_only_at_the_end_and_not_a_longer_line() {
        let seen = AtomicUsize::new(0);
        let tell = || {
            seen.fetch_add(1, Ordering::SeqCst);
        };
        let mut w = Watch::new("dray-ready", &tell);
        w.feed(b"dray-ready-not\ndray-ready");
        assert_eq!(seen.load(Ordering::SeqCst), 0);
        w.finish(b"dray-ready-not\ndray-ready");
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }
}

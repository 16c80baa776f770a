//! [`SshRemote`]: the [`Remote`] over the system OpenSSH, one master connection per host per run.
//!
//! # Connections
//!
//! Each run gets a private directory (a tempdir, mode 0700) holding the control sockets of its
//! masters and one generated ssh config. A master is started per host, the first time the host is
//! needed or up front with [`Remote::connect_all`] ("connect first, fail fast"); every command is
//! then a session multiplexed over it (the `openssh` crate's native mux client), so sshd sees one
//! connection per host however many commands run. The user's own `ControlMaster`/`ControlPath`
//! settings play no part: the masters are ours, started with `-M -S <our socket>`.
//!
//! Masters start in parallel, at most `sshkit.max_concurrent_starts` at a time; commands on one
//! host run at most [`SshOptions::sessions_per_host`] at a time, below sshd's `MaxSessions`
//! (10 by default). A master outlives idle gaps up to `sshkit.pool_idle_timeout` and exits on its
//! own after that (so a crashed run leaves nothing behind for long); a command finding its master
//! gone reconnects once. [`Remote::close`] ends every master.
//!
//! # The generated ssh config
//!
//! `ssh -F` takes one file, so the run writes its own (see [`generated_config`]): first the
//! `ssh:` settings of the deploy configuration (they win, as they do over `~/.ssh/config` in
//! Kamal), then `Include` lines for the user's files (`ssh.config`: the default
//! `~/.ssh/config` and `/etc/ssh/ssh_config`, none, or the given paths), then dray's defaults,
//! which the user's files may override: `StrictHostKeyChecking yes`. The effective host-key
//! policy of each host is read back with `ssh -G` and passed to the master, so known hosts are
//! verified unless the user's config says otherwise.
//!
//! # Commands
//!
//! A command runs as `CommandSpec::to_shell()`, given to the remote shell as it is (quoted exactly
//! once, by [`crate::command::Arg::quoted`]); its `stdin` bytes, the only way secrets travel, are
//! written to the session's standard input. `CommandSpec::env` is for local commands and is not
//! sent.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openssh::{ControlPersist, ForwardType, KnownHosts, Session, SessionBuilder, Socket, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::command::CommandSpec;

use super::fanout::join_all;
use super::reclaim::{reclaim_stale_run_dirs, stop_processes_using, OWNER_FILE};
pub use super::ssh_options::*;
use super::{BoxFuture, CommandOutput, Remote, RemoteError, Tunnel, Unreachable, Watch};

/// One host's connection state.
enum Link {
    /// Not connected yet (or the master went away).
    Idle,
    /// Connected.
    Up(Arc<Session>),
    /// The connection failed; later commands fail at once with the same error.
    Down(RemoteError),
}

struct HostSlot {
    link: tokio::sync::Mutex<Link>,
    sessions: Semaphore,
}

/// The [`Remote`] over OpenSSH: one multiplexed master connection per host per run.
pub struct SshRemote {
    opts: SshOptions,
    run_dir: tempfile::TempDir,
    config_path: PathBuf,
    starts: Semaphore,
    hosts: Mutex<HashMap<String, Arc<HostSlot>>>,
}

impl Drop for SshRemote {
    /// The last guard: no ssh process of this run outlives its directory.
    fn drop(&mut self) {
        stop_processes_using(self.run_dir.path());
    }
}

impl std::fmt::Debug for SshRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshRemote")
            .field("run_dir", &self.run_dir.path())
            .field("opts", &self.opts)
            .finish()
    }
}

/// Whether ssh's message says a name did not resolve (Kamal's `DNS_ERROR_MESSAGE`).
pub(super) fn is_dns_error(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "getaddrinfo",
        "temporary failure in name resolution",
        "name or service not known",
        "nodename nor servname provided",
        "no address associated",
        "failed to look up",
        "resolve",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// The pause before DNS retry `attempt` (1-based).
pub(super) fn dns_retry_delay(attempt: u32) -> Duration {
    let base = 0.1 * f64::from(2u32.saturating_pow(attempt.saturating_sub(1)));
    let jitter = f64::from(std::process::id() % 100) / 1000.0;
    Duration::from_secs_f64(base.min(2.0) + jitter)
}

/// Write `text` to a new file readable by its owner only, ending with a newline (ssh refuses a
/// key without one).
fn write_private(path: &std::path::Path, text: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text)?;
    if !text.ends_with(b"\n") {
        f.write_all(b"\n")?;
    }
    Ok(())
}

impl SshRemote {
    /// A remote for one run: creates the private run directory and the generated ssh config.
    /// Connects nothing yet.
    pub fn new(opts: SshOptions) -> Result<SshRemote, RemoteError> {
        let setup = |message: String| RemoteError::Connect {
            host: "any host".into(),
            message,
        };
        let run_dir = tempfile::Builder::new()
            .prefix("dray-ssh-")
            .tempdir()
            .map_err(|e| setup(format!("cannot create the run's ssh directory: {e}")))?;
        reclaim_stale_run_dirs(run_dir.path());
        // Whose directory this is: a later run reclaims it if this process dies without
        // cleaning up (SIGKILL).
        let _ = std::fs::write(
            run_dir.path().join(OWNER_FILE),
            std::process::id().to_string(),
        );
        // `ssh.key_data`: each key a 0600 file of the private run directory, an identity file
        // of the generated config (removed with the directory).
        let mut opts = opts;
        for (i, key) in std::mem::take(&mut opts.key_data).iter().enumerate() {
            let path = run_dir.path().join(format!("key-data-{i}"));
            write_private(&path, &key.0)
                .map_err(|e| setup(format!("cannot write the key of ssh.key_data[{i}]: {e}")))?;
            opts.keys.push(path.display().to_string());
        }
        let config_path = run_dir.path().join("config");
        let text = generated_config(&opts).map_err(setup)?;
        std::fs::write(&config_path, text).map_err(|e| {
            setup(format!(
                "cannot write the run's ssh config {}: {e}",
                config_path.display()
            ))
        })?;
        Ok(SshRemote {
            starts: Semaphore::new(opts.max_concurrent_starts),
            opts,
            run_dir,
            config_path,
            hosts: Mutex::new(HashMap::new()),
        })
    }

    /// The options this remote was made with.
    pub fn options(&self) -> &SshOptions {
        &self.opts
    }

    /// The generated ssh config of this run (valid while the remote lives).
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    fn slot(&self, host: &str) -> Arc<HostSlot> {
        let mut hosts = match self.hosts.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        hosts
            .entry(host.to_string())
            .or_insert_with(|| {
                Arc::new(HostSlot {
                    link: tokio::sync::Mutex::new(Link::Idle),
                    sessions: Semaphore::new(self.opts.sessions_per_host.max(1)),
                })
            })
            .clone()
    }

    /// What this run's `ssh` command lines set before the config: user, port, timeouts, jump
    /// host.
    pub(super) fn command_line(&self) -> CommandLine {
        CommandLine {
            user: Some(self.opts.user.clone()),
            port: Some(self.opts.port),
            connect_timeout: Some(self.opts.connect_timeout.as_secs().max(1)),
            alive_interval: Some(self.opts.keepalive_interval.as_secs().max(1)),
            jump: self.opts.jump_host(),
        }
    }

    /// Common `ssh` arguments: our config, user, port, jump host, timeouts.
    pub(super) fn base_args(&self) -> Vec<String> {
        self.command_line().args(&self.config_path)
    }

    /// `ssh -G`: the effective client settings for `host`, from the generated config.
    pub(super) async fn resolve(&self, host: &str) -> Result<String, RemoteError> {
        let out = tokio::process::Command::new("ssh")
            .args(self.base_args())
            .arg("-G")
            .arg(host)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| RemoteError::Connect {
                host: host.to_string(),
                message: format!("cannot run the local `ssh` (is OpenSSH installed?): {e}"),
            })?;
        if !out.status.success() {
            return Err(RemoteError::Connect {
                host: host.to_string(),
                message: format!(
                    "ssh cannot read its configuration: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Start the master for `host` (bounded by `max_concurrent_starts` and the connect timeout).
    async fn start_master(&self, host: &str) -> Result<Session, RemoteError> {
        let _permit = self
            .starts
            .acquire()
            .await
            .map_err(|_| RemoteError::Connect {
                host: host.to_string(),
                message: "the remote is closed".into(),
            })?;
        let limit = self.opts.connect_timeout;
        let work = || async {
            let resolved = self.resolve(host).await?;
            let mut builder = SessionBuilder::default();
            builder
                .config_file(&self.config_path)
                .user(self.opts.user.clone())
                .port(self.opts.port)
                .known_hosts_check(known_hosts_policy(&resolved))
                .connect_timeout(limit)
                .server_alive_interval(self.opts.keepalive_interval)
                .control_directory(self.run_dir.path())
                .control_persist(
                    NonZeroUsize::new(self.opts.idle_timeout.as_secs() as usize)
                        .map(ControlPersist::IdleFor)
                        .unwrap_or(ControlPersist::Forever),
                );
            if let Some(jump) = self.opts.jump_host() {
                builder.jump_hosts([jump]);
            }
            builder
                .connect_mux(host)
                .await
                .map_err(|e| RemoteError::Connect {
                    host: host.to_string(),
                    message: describe_connect_error(&e),
                })
        };
        // ssh applies ConnectTimeout to the TCP connect and the banner; this bounds the rest
        // (a proxy command that hangs, a slow key exchange) with some slack.
        let outer = limit + limit / 2 + Duration::from_secs(2);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let result = match tokio::time::timeout(outer, work()).await {
                Ok(result) => result,
                Err(_) => Err(RemoteError::Connect {
                    host: host.to_string(),
                    message: format!("no connection within {}s", outer.as_secs()),
                }),
            };
            // `sshkit.dns_retries`: a name that did not resolve is tried again, as Kamal does,
            // after 0.1 s, 0.2 s, 0.4 s … (at most 2 s) plus up to 0.1 s of jitter.
            match result {
                Err(RemoteError::Connect { message, .. })
                    if attempt <= self.opts.dns_retries && is_dns_error(&message) =>
                {
                    let delay = dns_retry_delay(attempt);
                    tracing::warn!(
                        "Retrying DNS for {host} (attempt {attempt}/{}) in {:.2}s: {message}",
                        self.opts.dns_retries,
                        delay.as_secs_f64()
                    );
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }

    /// The connected session of `host`, connecting first if needed.
    async fn session(&self, host: &str) -> Result<(Arc<HostSlot>, Arc<Session>), RemoteError> {
        let slot = self.slot(host);
        let mut link = slot.link.lock().await;
        let session = match &*link {
            Link::Up(session) => session.clone(),
            Link::Down(err) => return Err(err.clone()),
            Link::Idle => match self.start_master(host).await {
                Ok(session) => {
                    let session = Arc::new(session);
                    *link = Link::Up(session.clone());
                    session
                }
                Err(err) => {
                    *link = Link::Down(err.clone());
                    return Err(err);
                }
            },
        };
        drop(link);
        Ok((slot, session))
    }

    /// Forget `session` as `host`'s master (it went away), so the next use reconnects.
    async fn forget(slot: &HostSlot, session: &Arc<Session>) {
        let mut link = slot.link.lock().await;
        if matches!(&*link, Link::Up(s) if Arc::ptr_eq(s, session)) {
            *link = Link::Idle;
        }
    }

    async fn run_once(
        &self,
        host: &str,
        cmd: &CommandSpec,
        session: &Session,
        watch: Option<&mut Watch<'_>>,
    ) -> Result<CommandOutput, (openssh::Error, bool)> {
        let mut command = session.raw_command(cmd.to_shell());
        command
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Not started yet: a failure here may be retried.
        let mut child = command.spawn().await.map_err(|e| (e, false))?;
        // The command's copy of the line is not needed once the session runs: free it now,
        // not when the command ends (at 1,000 hosts, a script per host in flight).
        drop(command);
        let stdin = child.stdin().take();
        let feed = async move {
            if let (Some(mut pipe), Some(bytes)) = (stdin, cmd.stdin.as_ref()) {
                pipe.write_all(&bytes.0).await?;
                pipe.shutdown().await?;
            }
            Ok::<(), std::io::Error>(())
        };
        let waited = async move {
            let Some(watch) = watch else {
                return child.wait_with_output().await;
            };
            // Read standard output as it arrives, for the watch; standard error beside it.
            let (mut out_pipe, mut err_pipe) = (child.stdout().take(), child.stderr().take());
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            let read_out = async {
                if let Some(pipe) = out_pipe.as_mut() {
                    // Straight into `stdout`: no read buffer in this future, which every host's
                    // command in flight holds (issue #19: 8 KiB each at 1,000 hosts).
                    loop {
                        stdout.reserve(512);
                        let n = pipe.read_buf(&mut stdout).await?;
                        if n == 0 {
                            break;
                        }
                        watch.feed(&stdout);
                    }
                }
                Ok::<(), std::io::Error>(())
            };
            let read_err = async {
                if let Some(pipe) = err_pipe.as_mut() {
                    pipe.read_to_end(&mut stderr).await?;
                }
                Ok::<(), std::io::Error>(())
            };
            let (o, e) = tokio::join!(read_out, read_err);
            o.and(e).map_err(openssh::Error::ChildIo)?;
            watch.finish(&stdout);
            let status = child.wait().await?;
            Ok(std::process::Output {
                status,
                stdout,
                stderr,
            })
        };
        let (fed, output) = tokio::join!(feed, waited);
        let output = match output {
            Ok(o) => CommandOutput {
                status: o.status.code(),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            },
            Err(openssh::Error::RemoteProcessTerminated) => {
                // Killed by a signal, or the connection dropped: tell them apart.
                session.check().await.map_err(|e| (e, true))?;
                CommandOutput {
                    status: None,
                    ..CommandOutput::default()
                }
            }
            Err(e) => return Err((e, true)),
        };
        match fed {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                tracing::debug!(host, purpose = %cmd.purpose, "stdin not fully written: {e}");
                Err((openssh::Error::ChildIo(e), true))
            }
            _ => Ok(output),
        }
    }

    async fn run_command(
        &self,
        host: &str,
        cmd: &CommandSpec,
        mut watch: Option<&mut Watch<'_>>,
    ) -> Result<CommandOutput, RemoteError> {
        let exec_error = |e: &openssh::Error| RemoteError::Exec {
            host: host.to_string(),
            purpose: cmd.purpose.clone(),
            message: describe_exec_error(e),
        };
        for attempt in 0..2 {
            let (slot, session) = self.session(host).await?;
            let _permit = slot
                .sessions
                .acquire()
                .await
                .map_err(|_| RemoteError::Exec {
                    host: host.to_string(),
                    purpose: cmd.purpose.clone(),
                    message: "the remote is closed".into(),
                })?;
            tracing::debug!(host, purpose = %cmd.purpose, line = %cmd.to_shell_redacted(), "run");
            match self
                .run_once(host, cmd, &session, watch.as_deref_mut())
                .await
            {
                Ok(output) => return Ok(output),
                // The master was gone (idle timeout, network) before the command started:
                // reconnect once and run it.
                Err((openssh::Error::Disconnected, false)) if attempt == 0 => {
                    Self::forget(&slot, &session).await;
                }
                // The connection dropped while the command may have run: never again on its
                // own, whatever it was.
                Err((openssh::Error::Disconnected, true)) => {
                    Self::forget(&slot, &session).await;
                    return Err(RemoteError::Lost {
                        host: host.to_string(),
                        purpose: cmd.purpose.clone(),
                    });
                }
                Err((e, _)) => return Err(exec_error(&e)),
            }
        }
        Err(exec_error(&openssh::Error::Disconnected))
    }

    /// Open the master of every host in parallel; every host that cannot be reached is named.
    pub async fn connect_hosts(&self, hosts: &[String]) -> Result<(), Unreachable> {
        // Futures borrowing `self` cannot be spawned; they run concurrently on this task.
        let attempts = hosts
            .iter()
            .map(|h| async move { (h, self.session(h).await) });
        let results = join_all(attempts.collect()).await;
        let errors: Vec<RemoteError> = results.into_iter().filter_map(|(_, r)| r.err()).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Unreachable(errors))
        }
    }

    /// Open `tunnel` on `host`'s master (`ssh -O forward -R …` through the control socket):
    /// sshd on the host listens until [`SshRemote::close_tunnel_on`] or the master's end.
    pub async fn open_tunnel_on(&self, host: &str, tunnel: &Tunnel) -> Result<(), RemoteError> {
        let (_slot, session) = self.session(host).await?;
        let (listen, connect) = tunnel_sockets(tunnel);
        session
            .request_port_forward(ForwardType::Remote, listen, connect)
            .await
            .map_err(|e| RemoteError::Exec {
                host: host.to_string(),
                purpose: format!("open the tunnel {}", tunnel.forward_arg()),
                message: format!(
                    "{} (is {}:{} already in use on the host?)",
                    describe_exec_error(&e),
                    tunnel.remote_host,
                    tunnel.remote_port
                ),
            })
    }

    /// Close `tunnel` on `host`'s master (`ssh -O cancel -R …`); nothing to do when the master
    /// is gone (its tunnels went with it).
    pub async fn close_tunnel_on(&self, host: &str, tunnel: &Tunnel) -> Result<(), RemoteError> {
        let session = {
            let slot = self.slot(host);
            let link = slot.link.lock().await;
            match &*link {
                Link::Up(session) => session.clone(),
                Link::Idle | Link::Down(_) => return Ok(()),
            }
        };
        let (listen, connect) = tunnel_sockets(tunnel);
        session
            .close_port_forward(ForwardType::Remote, listen, connect)
            .await
            .map_err(|e| RemoteError::Exec {
                host: host.to_string(),
                purpose: format!("close the tunnel {}", tunnel.forward_arg()),
                message: describe_exec_error(&e),
            })
    }

    /// Close every master of this run.
    pub async fn close_all(&self) {
        let slots: Vec<Arc<HostSlot>> = match self.hosts.lock() {
            Ok(mut h) => h.drain().map(|(_, s)| s).collect(),
            Err(poisoned) => poisoned.into_inner().drain().map(|(_, s)| s).collect(),
        };
        for slot in slots {
            let mut link = slot.link.lock().await;
            if let Link::Up(session) = std::mem::replace(&mut *link, Link::Idle) {
                match Arc::try_unwrap(session) {
                    Ok(session) => {
                        if let Err(e) = session.close().await {
                            tracing::debug!("closing an ssh master: {e}");
                        }
                    }
                    // Still in use somewhere: dropping the last reference stops the master.
                    Err(shared) => drop(shared),
                }
            }
        }
        // A master whose close did not finish (a run aborted while a connection was being
        // made or used) must not outlive the run: stop whatever ssh still names our directory.
        stop_processes_using(self.run_dir.path());
    }

    /// A system `ssh -t` command running `remote_cmd` on `host` interactively, with this run's
    /// options (config, user, port, jump host, timeouts, host-key policy). Its own connection:
    /// the terminal belongs to it.
    pub async fn interactive_command(
        &self,
        host: &str,
        remote_cmd: &str,
    ) -> Result<std::process::Command, RemoteError> {
        let resolved = self.resolve(host).await?;
        let policy = match known_hosts_policy(&resolved) {
            KnownHosts::Strict => "yes",
            KnownHosts::Add => "accept-new",
            _ => "no",
        };
        let mut cmd = std::process::Command::new("ssh");
        cmd.args(self.base_args())
            .arg("-o")
            .arg(format!("StrictHostKeyChecking={policy}"))
            .arg("-t")
            .arg(host)
            .arg(remote_cmd);
        Ok(cmd)
    }
}

/// The listening (host) and connecting (this machine) ends of a reverse tunnel.
fn tunnel_sockets(tunnel: &Tunnel) -> (Socket<'_>, Socket<'_>) {
    (
        Socket::TcpSocket {
            host: tunnel.remote_host.as_str().into(),
            port: tunnel.remote_port,
        },
        Socket::TcpSocket {
            host: tunnel.local_host.as_str().into(),
            port: tunnel.local_port,
        },
    )
}

/// The reason a master did not start, from ssh's own words where it gave some.
fn describe_connect_error(err: &openssh::Error) -> String {
    use std::error::Error as _;
    let detail = err.source().map(|s| s.to_string()).unwrap_or_default();
    let detail = detail.trim();
    if detail.is_empty() {
        format!("{err} (ssh said nothing more; run with `ssh.log_level: debug` for details)")
    } else {
        detail.replace('\n', "; ").replace('\r', "")
    }
}

fn describe_exec_error(err: &openssh::Error) -> String {
    use std::error::Error as _;
    match err.source() {
        Some(source) => format!("{err}: {source}"),
        None => err.to_string(),
    }
}

impl Remote for SshRemote {
    fn run<'a>(
        &'a self,
        host: &'a str,
        cmd: &'a CommandSpec,
    ) -> BoxFuture<'a, Result<CommandOutput, RemoteError>> {
        Box::pin(self.run_command(host, cmd, None))
    }

    fn run_watched<'a>(
        &'a self,
        host: &'a str,
        cmd: &'a CommandSpec,
        watch: &'a mut Watch<'_>,
    ) -> BoxFuture<'a, Result<CommandOutput, RemoteError>> {
        Box::pin(self.run_command(host, cmd, Some(watch)))
    }

    fn connect_all<'a>(&'a self, hosts: &'a [String]) -> BoxFuture<'a, Result<(), Unreachable>> {
        Box::pin(self.connect_hosts(hosts))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.close_all())
    }

    fn open_tunnel<'a>(
        &'a self,
        host: &'a str,
        tunnel: &'a Tunnel,
    ) -> BoxFuture<'a, Result<(), RemoteError>> {
        Box::pin(self.open_tunnel_on(host, tunnel))
    }

    fn close_tunnel<'a>(
        &'a self,
        host: &'a str,
        tunnel: &'a Tunnel,
    ) -> BoxFuture<'a, Result<(), RemoteError>> {
        Box::pin(self.close_tunnel_on(host, tunnel))
    }

    fn interactive<'a>(
        &'a self,
        host: &'a str,
        line: &'a str,
    ) -> BoxFuture<'a, Result<Option<i32>, RemoteError>> {
        Box::pin(async move {
            let mut ssh = self.interactive_command(host, line).await?;
            let status = tokio::task::spawn_blocking(move || ssh.status())
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
                .map_err(|message| RemoteError::Exec {
                    host: host.to_string(),
                    purpose: "run the local `ssh -t`".into(),
                    message,
                })?;
            Ok(status.code())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::SshConfigFiles;

    fn opts() -> SshOptions {
        SshOptions {
            user: "root".into(),
            port: 22,
            proxy: None,
            proxy_command: None,
            keys: vec![],
            key_data: vec![],
            keys_only: None,
            forward_agent: None,
            log_level: "fatal".into(),
            config_files: SshConfigFiles::Default,
            cwd: PathBuf::from("/app"),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            keepalive_interval: Duration::from_secs(30),
            max_concurrent_starts: 30,
            idle_timeout: Duration::from_secs(900),
            sessions_per_host: 8,
            dns_retries: 3,
            transport: Default::default(),
        }
    }

    #[test]
    fn dns_errors_are_recognised_and_retried_with_backoff() {
        assert!(is_dns_error(
            "ssh: Could not resolve hostname nowhere.invalid: Name or service not known"
        ));
        assert!(!is_dns_error("Permission denied (publickey)"));
        assert!(dns_retry_delay(1) < Duration::from_millis(201));
        assert!(dns_retry_delay(3) >= Duration::from_millis(400));
        assert!(dns_retry_delay(30) <= Duration::from_millis(2100));
    }

    #[test]
    fn generated_config_orders_settings_includes_defaults() {
        let mut o = opts();
        o.proxy_command = Some("ssh -W %h:%p bastion".into());
        o.keys = vec!["keys/deploy key".into(), "~/.ssh/id_ed25519".into()];
        o.keys_only = Some(true);
        o.forward_agent = Some(false);
        o.config_files = SshConfigFiles::Files(vec!["ssh/a".into(), "/etc/b".into()]);
        insta::assert_snapshot!(generated_config(&o).expect("valid"), @r#"
        # written by dray for one run; see src/remote/ssh.rs
        Host *
          ProxyCommand ssh -W %h:%p bastion
          IdentityFile "/app/keys/deploy key"
          IdentityFile ~/.ssh/id_ed25519
          IdentitiesOnly yes
          ForwardAgent no
          LogLevel ERROR
          Include /app/ssh/a
          Include /etc/b
        Host *
          StrictHostKeyChecking yes
        "#);
    }

    #[test]
    fn generated_config_refuses_line_breaks() {
        let mut o = opts();
        o.proxy_command = Some("nc %h %p\nHost evil".into());
        assert_eq!(
            generated_config(&o),
            Err("ssh: ProxyCommand must be one line".into())
        );
    }

    #[test]
    fn default_and_no_config_files() {
        let text = generated_config(&opts()).expect("valid");
        assert!(text.contains("Include ~/.ssh/config\n  Include /etc/ssh/ssh_config\n"));
        let mut o = opts();
        o.config_files = SshConfigFiles::None;
        assert!(!generated_config(&o).expect("valid").contains("Include"));
    }

    #[test]
    fn host_key_policy_follows_resolved_config() {
        assert!(matches!(
            known_hosts_policy("user root\nstricthostkeychecking true\n"),
            KnownHosts::Strict
        ));
        assert!(matches!(
            known_hosts_policy("stricthostkeychecking accept-new\n"),
            KnownHosts::Add
        ));
        assert!(matches!(
            known_hosts_policy("stricthostkeychecking false\n"),
            KnownHosts::Accept
        ));
        assert!(matches!(known_hosts_policy(""), KnownHosts::Strict));
    }

    #[test]
    fn jump_host_gets_root_by_default() {
        let mut o = opts();
        o.proxy = Some("bastion".into());
        assert_eq!(o.jump_host().as_deref(), Some("root@bastion"));
        o.proxy = Some("deploy@bastion".into());
        assert_eq!(o.jump_host().as_deref(), Some("deploy@bastion"));
        o.proxy_command = Some("nc %h %p".into());
        assert_eq!(o.jump_host(), None);
    }

    #[test]
    fn log_levels_never_hide_errors() {
        assert_eq!(openssh_log_level("fatal"), "ERROR");
        assert_eq!(openssh_log_level("debug"), "DEBUG");
    }
}

//! [`NativeRemote`]: the [`Remote`] over dray's in-process SSH client (russh), chosen with
//! `x-dray: ssh: transport: native`. One connection per host per run, as [`SshRemote`], without
//! an `ssh` process per host: at 200 hosts OpenSSH's client processes are most of a deploy's
//! CPU (docs/benchmarks.md).
//!
//! # Honouring the user's ssh config
//!
//! Each host is resolved by OpenSSH itself: `ssh -G <host>` against the run's generated config
//! (the same file, user, port and jump host [`SshRemote`] uses), and the native client connects
//! with what it says: `HostName`, `User`, `Port`, `IdentityFile`, `IdentitiesOnly`,
//! `IdentityAgent`, `ProxyJump`, `KexAlgorithms`, `UserKnownHostsFile`/`GlobalKnownHostsFile`,
//! `HostKeyAlias`, `StrictHostKeyChecking`, `ConnectTimeout`, `ServerAlive*`, `BindAddress`.
//! A host whose settings need what the native client lacks (a `ProxyCommand`, certificates,
//! GSSAPI, the user's `ControlMaster`, a cipher list of their own, a KEX list with none of
//! ours, …; see `resolved.rs`) goes over OpenSSH for the whole run, and `-v` says so and why.
//!
//! # Key exchange
//!
//! Offered: `mlkem768x25519-sha256` (post-quantum hybrid), then `curve25519-sha256`, filtered
//! by the user's `KexAlgorithms` when they set one. russh has no `sntrup761x25519-sha512`, so
//! against OpenSSH 9.0–9.8 servers the native client ends with classical curve25519 where
//! OpenSSH's own client would negotiate sntrup761: that is never silent, a warning names those
//! hosts (unless the user's own `KexAlgorithms` left out ML-KEM).
//!
//! # What stays on OpenSSH
//!
//! Reverse tunnels (the local registry's pull) and interactive commands (`-t`) run on the
//! [`SshRemote`] this remote holds; so do the hosts sent there by their settings.

mod connect;
pub mod known_hosts;
pub mod resolved;
pub mod ssh_config;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{Handle, Msg};
use russh::{Channel, ChannelMsg};
use tokio::sync::Semaphore;

use super::fanout::join_all;
use super::ssh::{dns_retry_delay, is_dns_error};
use super::{BoxFuture, CommandOutput, Remote, RemoteError, SshOptions, SshRemote, Tunnel};
use super::{SshTransport, Unreachable, Watch};
use crate::command::CommandSpec;
use connect::Client;
use resolved::{GOutput, Resolved};
use ssh_config::CommandLine;

/// An authenticated connection and the jump hosts' connections it runs through.
struct Conn {
    handle: Handle<Client>,
    /// The session channel opened while connecting, for the first command.
    first: Mutex<Option<Channel<Msg>>>,
    _jumps: Vec<Handle<Client>>,
}

/// One host's connection state.
enum Link {
    Idle,
    Up(Arc<Conn>),
    /// The host goes over OpenSSH (its settings need it).
    OpenSsh,
    Down(RemoteError),
}

struct Slot {
    link: tokio::sync::Mutex<Link>,
    sessions: Semaphore,
}

/// Where a host's command goes.
enum Route {
    Native(Arc<Slot>, Arc<Conn>),
    OpenSsh,
}

/// The [`Remote`] over the in-process SSH client, with OpenSSH beside it.
pub struct NativeRemote {
    openssh: SshRemote,
    verbose: bool,
    defaults: tokio::sync::OnceCell<GOutput>,
    /// The run's ssh config read in-process, or why each host is left to `ssh -G`.
    config: std::sync::OnceLock<Result<ssh_config::Config, String>>,
    starts: Semaphore,
    hosts: Mutex<HashMap<String, Arc<Slot>>>,
    /// Hosts that negotiated a classical key exchange though ML-KEM was offered.
    classical: Mutex<Vec<(String, String)>>,
    /// `connect_all` calls under way (their classical hosts are reported together).
    connecting_all: AtomicUsize,
}

impl std::fmt::Debug for NativeRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeRemote")
            .field("openssh", &self.openssh)
            .finish()
    }
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The transport `opts` asks for: [`NativeRemote`] or [`SshRemote`], as a trait object.
/// `verbose` (`-v`): the native remote says which hosts go over OpenSSH, and why.
pub fn remote_for(opts: SshOptions, verbose: bool) -> Result<Arc<dyn Remote>, RemoteError> {
    Ok(match opts.transport {
        SshTransport::Openssh => Arc::new(SshRemote::new(opts)?),
        SshTransport::Native => Arc::new(NativeRemote::new(opts, verbose)?),
    })
}

impl NativeRemote {
    /// A native remote for one run (its OpenSSH side made, nothing connected).
    pub fn new(opts: SshOptions, verbose: bool) -> Result<NativeRemote, RemoteError> {
        let starts = Semaphore::new(opts.max_concurrent_starts.max(1));
        Ok(NativeRemote {
            openssh: SshRemote::new(opts)?,
            verbose,
            defaults: tokio::sync::OnceCell::new(),
            config: std::sync::OnceLock::new(),
            starts,
            hosts: Mutex::new(HashMap::new()),
            classical: Mutex::new(Vec::new()),
            connecting_all: AtomicUsize::new(0),
        })
    }

    /// The OpenSSH remote beside it (tunnels, `-t`, hosts the native client cannot honour).
    pub fn openssh(&self) -> &SshRemote {
        &self.openssh
    }

    /// Whether `host` is connected over the native client now (not OpenSSH, not down).
    pub async fn is_native(&self, host: &str) -> bool {
        let slot = self.slot(host);
        let link = slot.link.lock().await;
        matches!(&*link, Link::Up(c) if !c.handle.is_closed())
    }

    fn slot(&self, host: &str) -> Arc<Slot> {
        locked(&self.hosts)
            .entry(host.to_string())
            .or_insert_with(|| {
                Arc::new(Slot {
                    link: tokio::sync::Mutex::new(Link::Idle),
                    sessions: Semaphore::new(self.openssh.options().sessions_per_host.max(1)),
                })
            })
            .clone()
    }

    fn note(&self, host: &str, text: &str) {
        tracing::info!("{host}: {text}");
        if self.verbose {
            eprintln!("{host} | ssh: {text}");
        }
    }

    /// The local OpenSSH's defaults (`ssh -F /dev/null -G`), once per run.
    async fn defaults(&self) -> Result<&GOutput, RemoteError> {
        self.defaults
            .get_or_try_init(|| async {
                g_output(
                    &["-F", "/dev/null", "-G", "dray-defaults.invalid"],
                    "any host",
                )
                .await
            })
            .await
    }

    /// What `ssh -G name` says with `command_line` against the run's config: read in-process
    /// when the config is plain ([`ssh_config`]), else from `ssh -G` itself. `host`: the host
    /// an error names.
    async fn settings(
        &self,
        host: &str,
        name: &str,
        command_line: &CommandLine,
    ) -> Result<GOutput, RemoteError> {
        let defaults = self.defaults().await?;
        let path = self.openssh.config_path();
        let config = self.config.get_or_init(|| {
            let read = ssh_config::Config::read(path);
            if let Err(why) = &read {
                self.note(
                    "every host",
                    &format!("settings from `ssh -G` per host: the in-process reader leaves {why} to OpenSSH"),
                );
            }
            read
        });
        if let Ok(config) = config {
            return Ok(config.resolve(name, command_line, defaults));
        }
        let mut args = command_line.args(path);
        args.extend(["-G".into(), name.to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        g_output(&args, host).await
    }

    /// What `host` needs: the native settings of the host and of each jump host, or the reason
    /// it goes over OpenSSH.
    async fn plan_host(&self, host: &str) -> Result<Result<Vec<Resolved>, String>, RemoteError> {
        let defaults = self.defaults().await?;
        let g = self
            .settings(host, host, &self.openssh.command_line())
            .await?;
        let target = match resolved::resolve(&g, defaults) {
            Ok(r) => r,
            Err(why) => return Ok(Err(why)),
        };
        let mut chain = Vec::new();
        for hop in &target.jumps {
            // A hop as `ssh -J` resolves it: its own user and port, none of the run's.
            let (user, name, port) = resolved::split_jump(hop);
            let hop_line = CommandLine {
                user: user.map(str::to_string),
                port,
                ..CommandLine::default()
            };
            let hop_g = self.settings(host, name, &hop_line).await?;
            match resolved::resolve(&hop_g, defaults) {
                Ok(r) if r.jumps.is_empty() => chain.push(r),
                Ok(_) => return Ok(Err(format!("jump host {hop} has a ProxyJump of its own"))),
                Err(why) => return Ok(Err(format!("jump host {hop}: {why}"))),
            }
        }
        for r in chain.iter().chain(std::iter::once(&target)) {
            let lookup = known_hosts::lookup_name(&r.host_key_name, r.port);
            if known_hosts::scan(&r.known_hosts, &lookup).cert_authority {
                return Ok(Err(format!(
                    "known_hosts trusts a @cert-authority for `{lookup}` (host certificates)"
                )));
            }
        }
        chain.push(target);
        Ok(Ok(chain))
    }

    /// Connect along `chain` (jump hosts first, the host last).
    async fn dial(&self, host: &str, chain: &[Resolved]) -> Result<Conn, String> {
        let mut jumps: Vec<Handle<Client>> = Vec::new();
        let mut last = None;
        for (i, r) in chain.iter().enumerate() {
            let name = if i + 1 == chain.len() {
                host.to_string()
            } else {
                format!("jump host {}", r.hostname)
            };
            let connected = connect::connect(&name, r, jumps.last()).await?;
            tracing::debug!(host = %name, kex = %connected.kex, "native ssh connected");
            if i + 1 == chain.len() {
                last = Some(connected);
            } else {
                jumps.push(connected.handle);
            }
        }
        let connected = last.ok_or_else(|| "nothing to connect to".to_string())?;
        let via = if jumps.is_empty() {
            String::new()
        } else {
            let hops: Vec<&str> = chain[..jumps.len()]
                .iter()
                .map(|r| r.hostname.as_str())
                .collect();
            format!(" via {}", hops.join(", "))
        };
        self.note(
            host,
            &format!("native, key exchange {}{via}", connected.kex),
        );
        let target = chain.last().map(|r| r.kex.clone()).unwrap_or_default();
        if !resolved::is_post_quantum(&connected.kex)
            && target.iter().any(|k| resolved::is_post_quantum(k))
        {
            self.classical_kex(host, &connected.kex);
        }
        // One session channel before the start's permit goes: only the server's authenticated
        // side answers it, so the bound holds on the server too (no more than
        // `max_concurrent_starts` of its connections unauthenticated, sshd's `MaxStartups`),
        // not only in the client. The first command runs on it: no round trip is added.
        let first = connected
            .handle
            .channel_open_session()
            .await
            .map_err(|e| format!("cannot open an ssh session: {e}"))?;
        Ok(Conn {
            handle: connected.handle,
            first: Mutex::new(Some(first)),
            _jumps: jumps,
        })
    }

    fn classical_kex(&self, host: &str, kex: &str) {
        if self.connecting_all.load(Ordering::SeqCst) > 0 {
            locked(&self.classical).push((host.to_string(), kex.to_string()));
        } else {
            eprintln!(
                "{}",
                classical_warning(&[(host.to_string(), kex.to_string())])
            );
        }
    }

    /// Connect `host` (bounded by `max_concurrent_starts` and the connect timeout, with DNS
    /// retries): its link.
    async fn start(&self, host: &str) -> Result<Link, RemoteError> {
        let _permit = self
            .starts
            .acquire()
            .await
            .map_err(|_| RemoteError::Connect {
                host: host.to_string(),
                message: "the remote is closed".into(),
            })?;
        let chain = match self.plan_host(host).await? {
            Ok(chain) => chain,
            Err(why) => {
                self.note(
                    host,
                    &format!("over OpenSSH: the native transport cannot honour {why}"),
                );
                return Ok(Link::OpenSsh);
            }
        };
        let opts = self.openssh.options();
        let limit = chain
            .iter()
            .filter_map(|r| r.connect_timeout)
            .max()
            .unwrap_or(opts.connect_timeout);
        let outer = limit * u32::try_from(chain.len()).unwrap_or(1) + Duration::from_secs(2);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let result = match tokio::time::timeout(outer, self.dial(host, &chain)).await {
                Ok(r) => r,
                Err(_) => Err(format!("no connection within {}s", outer.as_secs())),
            };
            match result {
                Ok(conn) => return Ok(Link::Up(Arc::new(conn))),
                Err(message) if attempt <= opts.dns_retries && is_dns_error(&message) => {
                    let delay = dns_retry_delay(attempt);
                    tracing::warn!(
                        "Retrying DNS for {host} (attempt {attempt}/{}) in {:.2}s: {message}",
                        opts.dns_retries,
                        delay.as_secs_f64()
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(message) => {
                    return Err(RemoteError::Connect {
                        host: host.to_string(),
                        message,
                    })
                }
            }
        }
    }

    async fn route(&self, host: &str) -> Result<Route, RemoteError> {
        let slot = self.slot(host);
        let mut link = slot.link.lock().await;
        if matches!(&*link, Link::Up(c) if c.handle.is_closed()) {
            *link = Link::Idle;
        }
        let route = match &*link {
            Link::Up(conn) => Route::Native(slot.clone(), conn.clone()),
            Link::OpenSsh => Route::OpenSsh,
            Link::Down(err) => return Err(err.clone()),
            Link::Idle => match self.start(host).await {
                Ok(new) => {
                    *link = new;
                    match &*link {
                        Link::Up(conn) => Route::Native(slot.clone(), conn.clone()),
                        _ => Route::OpenSsh,
                    }
                }
                Err(err) => {
                    *link = Link::Down(err.clone());
                    return Err(err);
                }
            },
        };
        drop(link);
        Ok(route)
    }

    async fn forget(slot: &Slot, conn: &Arc<Conn>) {
        let mut link = slot.link.lock().await;
        if matches!(&*link, Link::Up(c) if Arc::ptr_eq(c, conn)) {
            *link = Link::Idle;
        }
    }

    async fn run_command(
        &self,
        host: &str,
        cmd: &CommandSpec,
        mut watch: Option<&mut Watch<'_>>,
    ) -> Result<CommandOutput, RemoteError> {
        for attempt in 0..2 {
            let (slot, conn) = match self.route(host).await? {
                Route::OpenSsh => {
                    return match watch {
                        Some(w) => self.openssh.run_watched(host, cmd, w).await,
                        None => self.openssh.run(host, cmd).await,
                    }
                }
                Route::Native(slot, conn) => (slot, conn),
            };
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
            match exec(&conn, cmd, watch.as_deref_mut()).await {
                Ok(output) => return Ok(output),
                // The connection was gone before the command started: reconnect once.
                Err(Failure::NotStarted(_)) if attempt == 0 && conn.handle.is_closed() => {
                    Self::forget(&slot, &conn).await;
                }
                Err(Failure::NotStarted(message)) => {
                    return Err(RemoteError::Exec {
                        host: host.to_string(),
                        purpose: cmd.purpose.clone(),
                        message,
                    })
                }
                Err(Failure::Lost) => {
                    Self::forget(&slot, &conn).await;
                    return Err(RemoteError::Lost {
                        host: host.to_string(),
                        purpose: cmd.purpose.clone(),
                    });
                }
            }
        }
        Err(RemoteError::Exec {
            host: host.to_string(),
            purpose: cmd.purpose.clone(),
            message: "the connection closed twice before the command started".into(),
        })
    }

    /// Connect every host in parallel; every host that cannot be reached is named. Hosts that
    /// ended with a classical key exchange are named in one warning.
    pub async fn connect_hosts(&self, hosts: &[String]) -> Result<(), Unreachable> {
        self.connecting_all.fetch_add(1, Ordering::SeqCst);
        let attempts = hosts.iter().map(|h| async move {
            match self.route(h).await {
                Ok(Route::OpenSsh) => self
                    .openssh
                    .connect_hosts(std::slice::from_ref(h))
                    .await
                    .map_err(|u| u.0),
                Ok(Route::Native(..)) => Ok(()),
                Err(e) => Err(vec![e]),
            }
        });
        let results = join_all(attempts.collect()).await;
        self.connecting_all.fetch_sub(1, Ordering::SeqCst);
        let classical = std::mem::take(&mut *locked(&self.classical));
        if !classical.is_empty() {
            eprintln!("{}", classical_warning(&classical));
        }
        let errors: Vec<RemoteError> = results
            .into_iter()
            .filter_map(Result::err)
            .flatten()
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Unreachable(errors))
        }
    }

    /// Close every connection of the run (native and OpenSSH).
    pub async fn close_all(&self) {
        let slots: Vec<Arc<Slot>> = locked(&self.hosts).drain().map(|(_, s)| s).collect();
        for slot in slots {
            let mut link = slot.link.lock().await;
            if let Link::Up(conn) = std::mem::replace(&mut *link, Link::Idle) {
                let _ = conn
                    .handle
                    .disconnect(russh::Disconnect::ByApplication, "", "en")
                    .await;
            }
        }
        self.openssh.close_all().await;
    }
}

/// The warning for hosts that negotiated a classical key exchange.
fn classical_warning(hosts: &[(String, String)]) -> String {
    let names: Vec<&str> = hosts.iter().map(|(h, _)| h.as_str()).collect();
    let kex = hosts.first().map(|(_, k)| k.as_str()).unwrap_or_default();
    format!(
        "warning: the native ssh transport negotiated the classical key exchange {kex} with {} ({}): {} no mlkem768x25519-sha256, which OpenSSH 9.9+ servers have; OpenSSH's client would use sntrup761x25519-sha512 with OpenSSH 9.0+ servers\nhint: keep post-quantum key exchange with `x-dray: ssh: transport: openssh`, or upgrade the servers' OpenSSH; set `KexAlgorithms curve25519-sha256` in your ssh config to accept classical on purpose",
        if names.len() == 1 { "1 host".to_string() } else { format!("{} hosts", names.len()) },
        names.join(", "),
        if names.len() == 1 { "it offers" } else { "they offer" },
    )
}

/// Run `ssh <args>` (`-G`) and parse what it prints.
async fn g_output(args: &[&str], host: &str) -> Result<GOutput, RemoteError> {
    let out = tokio::process::Command::new("ssh")
        .args(args)
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
    Ok(GOutput::parse(&String::from_utf8_lossy(&out.stdout)))
}

/// Why a command did not give an output.
enum Failure {
    /// Never started (the channel or the exec request failed).
    NotStarted(String),
    /// The connection dropped while it may have run.
    Lost,
}

/// Run `cmd` on a new session channel of `conn`: its stdin (secrets) written to the channel,
/// never to any argv.
async fn exec(
    conn: &Conn,
    cmd: &CommandSpec,
    mut watch: Option<&mut Watch<'_>>,
) -> Result<CommandOutput, Failure> {
    let first = locked(&conn.first).take();
    let channel = match first {
        Some(channel) => channel,
        None => conn
            .handle
            .channel_open_session()
            .await
            .map_err(|e| Failure::NotStarted(format!("cannot open an ssh session: {e}")))?,
    };
    channel
        .exec(true, cmd.to_shell())
        .await
        .map_err(|e| Failure::NotStarted(format!("cannot start the command: {e}")))?;
    let (mut read, write) = channel.split();
    let feed = async {
        if let Some(bytes) = &cmd.stdin {
            write.data(&bytes.0[..]).await?;
        }
        write.eof().await
    };
    let collect = async {
        let mut out = CommandOutput::default();
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let mut ended = false;
        let mut refused = false;
        while let Some(msg) = read.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    stdout.extend_from_slice(&data);
                    if let Some(w) = watch.as_deref_mut() {
                        w.feed(&stdout);
                    }
                }
                ChannelMsg::ExtendedData { data, ext: 1 } => stderr.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => {
                    out.status = Some(i32::try_from(exit_status).unwrap_or(i32::MAX));
                    ended = true;
                }
                ChannelMsg::ExitSignal { .. } => ended = true,
                ChannelMsg::Failure => refused = true,
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        if let Some(w) = watch.as_deref_mut() {
            w.finish(&stdout);
        }
        out.stdout = String::from_utf8_lossy(&stdout).into_owned();
        out.stderr = String::from_utf8_lossy(&stderr).into_owned();
        (out, ended, refused)
    };
    let (fed, (out, ended, refused)) = tokio::join!(feed, collect);
    if refused && !ended {
        return Err(Failure::NotStarted(
            "the server refused to run the command".into(),
        ));
    }
    if !ended && conn.handle.is_closed() {
        return Err(Failure::Lost);
    }
    if let Err(e) = fed {
        tracing::debug!(purpose = %cmd.purpose, "stdin not fully written: {e}");
        if !ended {
            return Err(Failure::Lost);
        }
    }
    Ok(out)
}

impl Remote for NativeRemote {
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
        Box::pin(self.openssh.open_tunnel_on(host, tunnel))
    }

    fn close_tunnel<'a>(
        &'a self,
        host: &'a str,
        tunnel: &'a Tunnel,
    ) -> BoxFuture<'a, Result<(), RemoteError>> {
        Box::pin(self.openssh.close_tunnel_on(host, tunnel))
    }

    fn interactive<'a>(
        &'a self,
        host: &'a str,
        line: &'a str,
    ) -> BoxFuture<'a, Result<Option<i32>, RemoteError>> {
        self.openssh.interactive(host, line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classical_key_exchange_is_named_with_its_hosts() {
        let one = classical_warning(&[("web1".into(), "curve25519-sha256".into())]);
        assert!(one.starts_with(
            "warning: the native ssh transport negotiated the classical key exchange curve25519-sha256 with 1 host (web1): it offers no mlkem768x25519-sha256"
        ), "{one}");
        assert!(one.contains("hint: "), "{one}");
        let two = classical_warning(&[
            ("a".into(), "curve25519-sha256".into()),
            ("b".into(), "curve25519-sha256".into()),
        ]);
        assert!(two.contains("with 2 hosts (a, b): they offer"), "{two}");
    }
}

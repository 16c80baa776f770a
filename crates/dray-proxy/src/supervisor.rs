//! The supervisor: what `kamal-proxy run` is (PID 1 of the `kamal-proxy` container). It binds
//! the listening sockets and the control socket once, runs the server as its child on them
//! ([`crate::handoff`]), forwards SIGTERM/SIGINT to it and exits with it, and hands over to a
//! new binary without refusing a connection (`kamal-proxy supervisor upgrade --binary=P
//! [--staged]`):
//!
//! 1. `P supervisor protocol` must answer [`PROTOCOL`] (else refused, nothing changed);
//! 2. the running server pauses its control socket (the control requests in hand finish, new
//!    ones wait in the backlog), so the state file is final;
//! 3. `P run …` starts on the same sockets, restores the routes from the state file and says
//!    ready (within `--ready-timeout`); both servers now accept;
//! 4. `P` is installed as this binary's path (moved when `--staged`, else copied), so
//!    `docker exec … kamal-proxy` runs it;
//! 5. the old server drains (no new connection; in-flight requests and WebSockets get
//!    `--drain-timeout`) and exits.
//!
//! A failure before 4 stops the new server, resumes the old one's control socket and removes
//! `P` when `--staged`: the old server never stopped serving. The supervisor itself is not replaced: its code
//! stays the version the container started with (`supervisor status` says both).
//!
//! Requests reach the supervisor on its own unix socket beside the control socket
//! ([`socket_path`]), one JSON line each way, as the control socket's.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, UnixListener, UnixStream};
use tokio::process::Child;
use tokio::signal::unix::{signal, SignalKind};

use super::control::Response;
use super::handoff::{self, FromChild, Sockets, ToChild, PROTOCOL};
use super::log::{self, Level};
use super::server::ServerConfig;

/// The supervisor socket's file name, in the control socket's directory.
pub const SOCKET_FILE: &str = "dray-proxy-supervisor.sock";

/// How long the first server may take to say ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The supervisor's socket: beside the control socket.
pub fn socket_path(control: &Path) -> PathBuf {
    control
        .parent()
        .unwrap_or_else(|| Path::new("/tmp"))
        .join(SOCKET_FILE)
}

/// A request to the supervisor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Which processes run, and their versions.
    Status,
    /// Hand over to the binary at `binary`.
    Upgrade {
        /// The new binary (installed at the supervisor's own path when the handover worked).
        binary: PathBuf,
        /// `binary` was staged for this upgrade: moved into place on success, removed on
        /// failure (else copied into place and left alone).
        #[serde(default)]
        staged: bool,
        /// Longest wait for the old server's in-flight requests, in ms.
        drain_timeout_ms: u64,
        /// Longest wait for the old server's pause and the new server's start, in ms.
        ready_timeout_ms: u64,
    },
}

/// A running server.
struct Server {
    child: Child,
    pid: u32,
    version: String,
    binary: PathBuf,
    services: usize,
    since: String,
    tx: OwnedWriteHalf,
    rx: Lines<BufReader<OwnedReadHalf>>,
}

impl Server {
    async fn send(&mut self, msg: &ToChild) -> Result<(), String> {
        self.tx
            .write_all(handoff::line(msg).as_bytes())
            .await
            .map_err(|e| format!("cannot reach the server (pid {}): {e}", self.pid))
    }

    /// The next message, or why there is none (the server exited, or `timeout`).
    async fn expect(&mut self, timeout: Duration, what: &str) -> Result<FromChild, String> {
        let pid = self.pid;
        let read = async {
            loop {
                match self.rx.next_line().await {
                    Ok(Some(l)) => match serde_json::from_str::<FromChild>(&l) {
                        Ok(m) => return Ok(m),
                        Err(e) => log::event(
                            Level::Warn,
                            "bad message from the server",
                            &[("error", e.to_string().into())],
                        ),
                    },
                    Ok(None) | Err(_) => {
                        let status = self.child.wait().await;
                        return Err(format!(
                            "the server (pid {pid}) exited before it was {what}: {}",
                            describe_exit(status)
                        ));
                    }
                }
            }
        };
        tokio::time::timeout(timeout, read).await.map_err(|_| {
            format!(
                "the server (pid {pid}) was not {what} within {}s",
                timeout.as_secs()
            )
        })?
    }

    async fn stop(&mut self, grace: Duration) {
        if let Some(pid) = self.child.id() {
            signal_pid(pid, rustix::process::Signal::TERM);
        }
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}

fn signal_pid(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

fn describe_exit(status: std::io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(s) => s.to_string(),
        Err(e) => format!("cannot wait for it: {e}"),
    }
}

fn bind_tcp(addr: SocketAddr) -> Result<std::net::TcpListener, String> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    socket
        .set_reuseaddr(true)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    socket
        .bind(addr)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let l = socket
        .listen(4096)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    l.into_std()
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

fn bind_sockets(config: &ServerConfig) -> Result<Sockets, String> {
    let control = {
        let path = &config.socket;
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::remove_file(path);
        std::os::unix::net::UnixListener::bind(path)
            .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?
    };
    Ok(Sockets {
        http: bind_tcp(config.http_addr)?,
        https: bind_tcp(config.https_addr)?,
        metrics: config.metrics_addr.map(bind_tcp).transpose()?,
        control,
    })
}

/// Start `binary <args>` on `sockets`: its standard input is its channel, over which the
/// sockets go first.
fn spawn(sockets: &Sockets, binary: &Path, args: &[OsString]) -> Result<Server, String> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| format!("cannot make the server's channel: {e}"))?;
    let child = tokio::process::Command::new(binary)
        .args(args)
        .env(handoff::FDS_ENV, sockets.names())
        .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
            theirs,
        )))
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let pid = child.id().unwrap_or(0);
    // A server that exits at once (an older binary) closes its end: the send fails, and
    // waiting for its ready message then tells why.
    if let Err(e) = sockets.send(&ours) {
        log::event(
            Level::Warn,
            "cannot send the sockets to the server",
            &[("pid", pid.into()), ("error", e.to_string().into())],
        );
    }
    ours.set_nonblocking(true)
        .map_err(|e| format!("cannot use the server's channel: {e}"))?;
    let stream =
        UnixStream::from_std(ours).map_err(|e| format!("cannot use the server's channel: {e}"))?;
    let (read, tx) = stream.into_split();
    Ok(Server {
        child,
        pid,
        version: String::new(),
        binary: binary.to_path_buf(),
        services: 0,
        since: String::new(),
        tx,
        rx: BufReader::new(read).lines(),
    })
}

/// Wait for `server`'s ready message and record what it says.
async fn ready(server: &mut Server, timeout: Duration) -> Result<(), String> {
    match server.expect(timeout, "ready").await? {
        FromChild::Ready {
            version, services, ..
        } => {
            server.version = version;
            server.services = services;
            server.since = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
            Ok(())
        }
        other => Err(format!(
            "the server (pid {}) said {other:?} before it was ready",
            server.pid
        )),
    }
}

/// Run as the supervisor: `args` are the `run` arguments (after the program name).
pub async fn run(config: ServerConfig, args: Vec<OsString>) -> Result<(), String> {
    let sockets = bind_sockets(&config)?;
    let own = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let sup_path = socket_path(&config.socket);
    let _ = std::fs::remove_file(&sup_path);
    let requests = UnixListener::bind(&sup_path)
        .map_err(|e| format!("cannot listen on {}: {e}", sup_path.display()))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut active = spawn(&sockets, &own, &args)?;
    ready(&mut active, START_TIMEOUT).await?;
    log::event(
        Level::Info,
        "Supervisor started",
        &[
            ("version", handoff::version().into()),
            ("server_pid", active.pid.into()),
        ],
    );
    let mut sup = Supervisor {
        sockets,
        args,
        own,
        active,
        upgrades: 0,
    };
    let outcome = loop {
        tokio::select! {
            _ = term.recv() => break sup.shutdown().await,
            _ = int.recv() => break sup.shutdown().await,
            status = sup.active.child.wait() => {
                break Err(format!("the server (pid {}) exited: {}", sup.active.pid, describe_exit(status)));
            }
            accepted = requests.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                sup.answer(stream).await;
            }
        }
    };
    let _ = std::fs::remove_file(&sup_path);
    let _ = std::fs::remove_file(&config.socket);
    outcome
}

struct Supervisor {
    sockets: Sockets,
    args: Vec<OsString>,
    own: PathBuf,
    active: Server,
    upgrades: u32,
}

impl Supervisor {
    async fn shutdown(&mut self) -> Result<(), String> {
        signal_pid(self.active.pid, rustix::process::Signal::TERM);
        let status = self.active.child.wait().await;
        match status {
            Ok(s) if s.success() => Ok(()),
            other => Err(format!("the server stopped: {}", describe_exit(other))),
        }
    }

    async fn answer(&mut self, stream: UnixStream) {
        let (read, mut write) = stream.into_split();
        let mut line = String::new();
        let response = match BufReader::new(read).read_line(&mut line).await {
            Err(e) => Err(format!("cannot read the request: {e}")),
            Ok(_) => match serde_json::from_str::<Request>(&line) {
                Err(e) => Err(format!("bad supervisor request: {e}")),
                Ok(Request::Status) => Ok(self.status()),
                Ok(Request::Upgrade {
                    binary,
                    staged,
                    drain_timeout_ms,
                    ready_timeout_ms,
                }) => {
                    self.upgrade(
                        &binary,
                        staged,
                        Duration::from_millis(drain_timeout_ms),
                        Duration::from_millis(ready_timeout_ms),
                    )
                    .await
                }
            },
        };
        let response = match response {
            Ok(message) => Response { ok: true, message },
            Err(message) => Response { ok: false, message },
        };
        let _ = write.write_all(handoff::line(&response).as_bytes()).await;
        let _ = write.shutdown().await;
    }

    fn status(&self) -> String {
        format!(
            "supervisor: pid {}, dray-proxy {}\nserver: pid {}, dray-proxy {}, {}, since {}, {} service(s) restored\nhandovers: {}",
            std::process::id(),
            handoff::version(),
            self.active.pid,
            self.active.version,
            self.active.binary.display(),
            self.active.since,
            self.active.services,
            self.upgrades
        )
    }

    async fn upgrade(
        &mut self,
        binary: &Path,
        staged: bool,
        drain: Duration,
        ready_timeout: Duration,
    ) -> Result<String, String> {
        let started = Instant::now();
        let result = self.hand_over(binary, staged, drain, ready_timeout).await;
        match result {
            Ok((old_pid, old_version)) => {
                self.upgrades += 1;
                let msg = format!(
                    "handed over from pid {old_pid} (dray-proxy {old_version}) to pid {} (dray-proxy {}) in {:.1}s, {} service(s) kept",
                    self.active.pid,
                    self.active.version,
                    started.elapsed().as_secs_f64(),
                    self.active.services
                );
                log::event(
                    Level::Info,
                    "Handed over",
                    &[("message", msg.clone().into())],
                );
                Ok(msg)
            }
            Err(e) => {
                if staged && binary != self.own {
                    let _ = std::fs::remove_file(binary);
                }
                log::event(
                    Level::Error,
                    "Handover failed",
                    &[("error", e.clone().into())],
                );
                Err(format!(
                    "{e}; the server (pid {}, dray-proxy {}) goes on serving",
                    self.active.pid, self.active.version
                ))
            }
        }
    }

    /// Steps 1–5 of the handover; the old server's pid and version.
    async fn hand_over(
        &mut self,
        binary: &Path,
        staged: bool,
        drain: Duration,
        ready_timeout: Duration,
    ) -> Result<(u32, String), String> {
        check_protocol(binary).await?;
        self.active.send(&ToChild::PauseControl).await?;
        match self.active.expect(ready_timeout, "paused").await? {
            FromChild::ControlPaused => {}
            other => return Err(format!("the server answered {other:?} to a pause")),
        }
        let mut next = match spawn(&self.sockets, binary, &self.args) {
            Ok(s) => s,
            Err(e) => {
                let _ = self.active.send(&ToChild::ResumeControl).await;
                return Err(e);
            }
        };
        if let Err(e) = ready(&mut next, ready_timeout).await {
            next.stop(Duration::from_secs(5)).await;
            let _ = self.active.send(&ToChild::ResumeControl).await;
            return Err(format!("{}: {e}", binary.display()));
        }
        if binary != self.own {
            if let Err(e) = install(binary, &self.own, staged) {
                // The new server runs; the next `docker exec … kamal-proxy` would run the old
                // binary: say so, keep going (the old one still reads the same control socket).
                log::event(
                    Level::Warn,
                    "Cannot install the new binary",
                    &[("error", e.into())],
                );
            } else {
                next.binary = self.own.clone();
            }
        }
        let mut old = std::mem::replace(&mut self.active, next);
        let timeout_ms = u64::try_from(drain.as_millis()).unwrap_or(u64::MAX);
        let sent = old.send(&ToChild::Drain { timeout_ms }).await.is_ok();
        let exited = sent
            && tokio::time::timeout(drain + Duration::from_secs(10), old.child.wait())
                .await
                .is_ok();
        if !exited {
            old.stop(Duration::from_secs(1)).await;
        }
        Ok((old.pid, old.version))
    }
}

/// `binary supervisor protocol` answers [`PROTOCOL`].
async fn check_protocol(binary: &Path) -> Result<(), String> {
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(binary)
            .args(["supervisor", "protocol"])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| {
        format!(
            "{}: `supervisor protocol` did not answer within 10s",
            binary.display()
        )
    })?
    .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && answer == PROTOCOL.to_string() {
        return Ok(());
    }
    Err(format!(
        "{} cannot take over the sockets: `supervisor protocol` answered {:?} (exit {}), this supervisor speaks {PROTOCOL} (a dray-proxy without the handover, or kamal-proxy)",
        binary.display(),
        if answer.is_empty() {
            String::from_utf8_lossy(&out.stderr).trim().chars().take(200).collect()
        } else {
            answer
        },
        out.status.code().map_or("by a signal".into(), |c| c.to_string())
    ))
}

/// Put `binary` at `dest` atomically: a staged one moved (rename, else copied beside `dest`,
/// renamed, and removed), another copied beside `dest` and renamed.
fn install(binary: &Path, dest: &Path, staged: bool) -> Result<(), String> {
    if staged && std::fs::rename(binary, dest).is_ok() {
        return Ok(());
    }
    let tmp = dest.with_extension("new");
    std::fs::copy(binary, &tmp)
        .and_then(|_| std::fs::rename(&tmp, dest))
        .map_err(|e| {
            format!(
                "cannot install {} as {}: {e}",
                binary.display(),
                dest.display()
            )
        })?;
    let _ = std::fs::remove_file(binary);
    Ok(())
}

/// Send `req` to the supervisor beside the control socket `control` (the CLI's side).
pub async fn send(control: &Path, req: &Request) -> Result<Response, String> {
    let path = socket_path(control);
    let stream = UnixStream::connect(&path).await.map_err(|e| {
        format!(
            "no dray-proxy supervisor at {} ({e}): this proxy's PID 1 is the server itself (a dray-proxy image without the handover), so it cannot hand over its sockets; reboot it instead",
            path.display()
        )
    })?;
    let (read, mut write) = stream.into_split();
    write
        .write_all(handoff::line(req).as_bytes())
        .await
        .map_err(|e| format!("cannot send to the supervisor: {e}"))?;
    let mut answer = String::new();
    BufReader::new(read)
        .read_line(&mut answer)
        .await
        .map_err(|e| format!("no answer from the supervisor: {e}"))?;
    serde_json::from_str(&answer).map_err(|e| format!("bad answer from the supervisor: {e}"))
}

//! The deploy lock on the primary host, compatible with Kamal (§6.1): the commands come from
//! [`crate::docker::lock`]; this module runs them, reads their answers, waits when asked, and
//! keeps the lock released on ctrl-c and SIGTERM ([`LockGuard`]).
//!
//! - Acquire is `mkdir .kamal/lock-S[-D]` (atomic: exactly one of two racing `mkdir`s wins) plus
//!   a base64 `details` file. A held lock is reported with its decoded details.
//! - `--lock-wait` polls every `--lock-wait-interval` seconds up to `--lock-wait-timeout`, but
//!   never behind a manual lock (a message other than `Automatic deploy lock`), as Kamal.
//! - `KAMAL_LOCK=true` in the environment means a parent (a `dray` or `kamal` running this one
//!   from a hook) holds the lock: a [`LockGuard`] then neither acquires nor releases.
//! - Beyond Kamal, the details name the machine and the process (`dray <pid>`), and the status
//!   shows the lock's age.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

use crate::config::model::Config;
use crate::docker::lock as cmds;
use crate::docker::lock::{LockDetails, AUTOMATIC_MESSAGE};
use crate::error::{Diagnostic, ExitCode};
use crate::remote::{Remote, RemoteError};

/// The environment variable by which a parent says it holds the lock (`"true"`).
pub const INHERITED_ENV: &str = "KAMAL_LOCK";

/// How to wait for a held lock (`--lock-wait`, `--lock-wait-timeout`, `--lock-wait-interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockWait {
    /// Give up after this long.
    pub timeout: Duration,
    /// Try again after this long.
    pub interval: Duration,
}

/// A lock as read back from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockStatus {
    /// The decoded details text, as Kamal prints it.
    pub text: String,
    /// The `Locked by:` name.
    pub locked_by: Option<String>,
    /// The time after `at` on the `Locked by:` line.
    pub locked_at: Option<DateTime<Utc>>,
    /// The `Message:` line.
    pub message: Option<String>,
    /// Our `Machine:` line.
    pub machine: Option<String>,
    /// Our `Process:` line.
    pub process: Option<String>,
}

impl LockStatus {
    /// Read the decoded details text (Kamal's lines, and ours if present).
    pub fn parse(text: &str) -> LockStatus {
        let text = text.trim_end().to_string();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        let by_line = field("Locked by:");
        let (locked_by, locked_at) = match by_line.as_deref().and_then(|l| l.rsplit_once(" at ")) {
            Some((by, at)) => (
                Some(by.to_string()),
                DateTime::parse_from_rfc3339(at.trim())
                    .ok()
                    .map(|t| t.with_timezone(&Utc)),
            ),
            None => (by_line.clone(), None),
        };
        LockStatus {
            locked_by,
            locked_at,
            message: field("Message:"),
            machine: field("Machine:"),
            process: field("Process:"),
            text,
        }
    }

    /// Whether a deploy took it (`Automatic deploy lock`), so `--lock-wait` may wait for it.
    pub fn is_automatic(&self) -> bool {
        self.message.as_deref() == Some(AUTOMATIC_MESSAGE)
    }

    /// How long it has been held, at `now`.
    pub fn age(&self, now: DateTime<Utc>) -> Option<Duration> {
        self.locked_at
            .and_then(|at| (now - at).to_std().ok())
            .or_else(|| self.locked_at.map(|_| Duration::ZERO))
    }

    /// The details text followed by `Age: …` when the time is known.
    pub fn render(&self, now: DateTime<Utc>) -> String {
        match self.age(now) {
            Some(age) => format!("{}\nAge: {}", self.text, human_duration(age)),
            None => self.text.clone(),
        }
    }
}

/// `1h 2m 3s`, `4m 5s`, `6s`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    }
}

/// Why the lock could not be taken, read or released.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// Someone holds it.
    #[error("deploy lock already in place on {host}:\n{}", .status.render(Utc::now()))]
    Held {
        /// The primary host.
        host: String,
        /// Who holds it.
        status: LockStatus,
    },
    /// Someone holds it by hand (`lock acquire -m`), so `--lock-wait` does not wait.
    #[error("deploy lock held manually on {host}, not waiting:\n{}", .status.render(Utc::now()))]
    Manual {
        /// The primary host.
        host: String,
        /// Who holds it.
        status: LockStatus,
    },
    /// `--lock-wait-timeout` ran out.
    #[error("timed out after {}s waiting for the deploy lock on {host}:\n{}", .waited.as_secs(), .status.render(Utc::now()))]
    TimedOut {
        /// The primary host.
        host: String,
        /// How long we waited.
        waited: Duration,
        /// Who still holds it.
        status: LockStatus,
    },
    /// A signal arrived while acquiring or holding the lock; it was released if it was ours.
    #[error("interrupted; the deploy lock on {host} was released")]
    Interrupted {
        /// The primary host.
        host: String,
    },
    /// The host could not be asked.
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

impl Diagnostic for LockError {
    fn hint(&self) -> Option<String> {
        match self {
            LockError::Held { .. } | LockError::TimedOut { .. } => Some(
                "`dray lock status` shows the lock; once you know it is stale, `dray lock release` removes it (or pass --lock-wait to wait for a deploy's lock)".into(),
            ),
            LockError::Manual { .. } => Some(
                "someone locked deploys by hand with `lock acquire -m`; ask them, or `dray lock release` once you know it is stale".into(),
            ),
            LockError::Remote(e) => e.hint(),
            LockError::Interrupted { .. } => None,
        }
    }
    fn exit_code(&self) -> ExitCode {
        match self {
            LockError::Interrupted { .. } => ExitCode::Interrupted,
            _ => ExitCode::Failure,
        }
    }
}

/// The details this process writes: `locked_by` from git (else `Unknown`), the time now, and our
/// machine and process lines.
pub fn details(locked_by: &str, version: &str, message: &str) -> LockDetails {
    LockDetails {
        locked_by: locked_by.to_string(),
        locked_at: Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        version: version.to_string(),
        message: message.to_string(),
        machine: hostname(),
        process: Some(process_tag()),
    }
}

/// `dray <pid>`: this process in the lock details.
pub fn process_tag() -> String {
    format!("dray {}", std::process::id())
}

/// This machine's host name, if it can be read.
pub fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains('\n'))
}

/// Whether `env` says a parent holds the lock (`KAMAL_LOCK=true`).
pub fn inherited(env: &dyn Fn(&str) -> Option<String>) -> bool {
    env(INHERITED_ENV).as_deref() == Some("true")
}

/// The answer to one acquisition attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// We hold it now.
    Acquired,
    /// Someone else does.
    Held(LockStatus),
}

fn is_already_there(stderr: &str) -> bool {
    stderr.contains("File exists")
        || stderr.contains("cannot create directory")
        || stderr.contains("can't create directory")
}

/// One attempt: `mkdir -p .kamal`, then the atomic `mkdir` of the lock directory.
pub async fn try_acquire(
    remote: &dyn Remote,
    config: &Config,
    host: &str,
    details: &LockDetails,
) -> Result<Attempt, RemoteError> {
    remote
        .run_checked(host, &cmds::ensure_locks_directory(host))
        .await?;
    let cmd = cmds::acquire(config, host, details);
    let out = remote.run(host, &cmd).await?;
    if out.success() {
        return Ok(Attempt::Acquired);
    }
    if !is_already_there(&out.stderr) {
        return Err(RemoteError::failed(host, &cmd, &out));
    }
    // The holder may be between its `mkdir` and writing `details`: read again briefly.
    for _ in 0..10 {
        match status(remote, config, host).await? {
            Some(s) if !s.text.is_empty() => return Ok(Attempt::Held(s)),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Ok(Attempt::Held(LockStatus::parse("(no details yet)")))
}

/// Acquire, waiting as `wait` says; `on_wait` is told who holds it, once, before waiting.
pub async fn acquire(
    remote: &dyn Remote,
    config: &Config,
    host: &str,
    details: &LockDetails,
    wait: Option<LockWait>,
    on_wait: &(dyn Fn(&LockStatus) + Send + Sync),
) -> Result<(), LockError> {
    let started = tokio::time::Instant::now();
    let mut told = false;
    loop {
        let status = match try_acquire(remote, config, host, details).await? {
            Attempt::Acquired => return Ok(()),
            Attempt::Held(status) => status,
        };
        let host = host.to_string();
        let Some(wait) = wait else {
            return Err(LockError::Held { host, status });
        };
        if !status.is_automatic() {
            return Err(LockError::Manual { host, status });
        }
        let waited = started.elapsed();
        if waited >= wait.timeout {
            return Err(LockError::TimedOut {
                host,
                waited,
                status,
            });
        }
        if !told {
            on_wait(&status);
            told = true;
        }
        let pause = wait
            .interval
            .min(wait.timeout - waited)
            .max(Duration::from_millis(100));
        tokio::time::sleep(pause).await;
    }
}

/// Release the lock; `false` when there was none.
pub async fn release(
    remote: &dyn Remote,
    config: &Config,
    host: &str,
) -> Result<bool, RemoteError> {
    let cmd = cmds::release(config, host);
    let out = remote.run(host, &cmd).await?;
    if out.success() {
        Ok(true)
    } else if out.stderr.contains("No such file or directory") {
        Ok(false)
    } else {
        Err(RemoteError::failed(host, &cmd, &out))
    }
}

/// The lock's details, or `None` when there is no lock.
pub async fn status(
    remote: &dyn Remote,
    config: &Config,
    host: &str,
) -> Result<Option<LockStatus>, RemoteError> {
    let cmd = cmds::status(config, host);
    let out = remote.run(host, &cmd).await?;
    if out.success() {
        Ok(Some(LockStatus::parse(&out.stdout)))
    } else if out.stderr.contains("No such file or directory") {
        Ok(None)
    } else {
        Err(RemoteError::failed(host, &cmd, &out))
    }
}

/// What a [`LockGuard`] needs to acquire.
pub struct LockRequest<'a> {
    /// The deploy configuration (service, destination).
    pub config: &'a Config,
    /// The primary host.
    pub host: &'a str,
    /// The details to write.
    pub details: &'a LockDetails,
    /// `--lock-wait`.
    pub wait: Option<LockWait>,
    /// `KAMAL_LOCK=true`: a parent holds it; acquire and release nothing.
    pub inherited: bool,
}

struct Held {
    remote: Arc<dyn Remote>,
    config: Config,
    host: String,
    /// True while the lock is ours to release.
    ours: tokio::sync::Mutex<bool>,
}

impl Held {
    /// Release once, whoever asks first (the owner or the signal watcher).
    async fn release_once(&self) -> Result<(), RemoteError> {
        let mut ours = self.ours.lock().await;
        if *ours {
            release(self.remote.as_ref(), &self.config, &self.host).await?;
            *ours = false;
        }
        Ok(())
    }
}

/// The held deploy lock, released by [`LockGuard::release`], or at once when SIGINT or SIGTERM
/// arrives.
///
/// On the first signal the watcher releases the lock and marks the guard interrupted: the owner
/// sees [`LockGuard::interrupted`] resolve, stops, and exits 130 (its own `release` is then a
/// no-op). A second signal exits the process with 130 at once. An engine uses it as:
///
/// ```ignore
/// let mut guard = LockGuard::acquire(remote.clone(), &request, &|s| eprintln!("{}", s.text)).await?;
/// tokio::select! {
///     result = run_the_plan() => { guard.release().await?; result }
///     _ = guard.interrupted() => Err(interrupted),
/// }
/// ```
///
/// The watcher registers its signal handlers before the lock is taken, so a signal arriving
/// during acquisition is not lost: the attempt stops and a lock it may have created (recognised by
/// our `Process:` line) is released. Dropping a guard without `release` leaves the lock in place.
pub struct LockGuard {
    held: Option<Arc<Held>>,
    interrupted: watch::Receiver<bool>,
    watcher: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("host", &self.held.as_ref().map(|h| h.host.as_str()))
            .field("interrupted", &*self.interrupted.borrow())
            .finish()
    }
}

fn signal_streams() -> Result<(Signal, Signal), RemoteError> {
    let setup = |e: std::io::Error| RemoteError::Exec {
        host: "localhost".into(),
        purpose: "watch for ctrl-c".into(),
        message: e.to_string(),
    };
    Ok((
        signal(SignalKind::interrupt()).map_err(setup)?,
        signal(SignalKind::terminate()).map_err(setup)?,
    ))
}

async fn next_signal(int: &mut Signal, term: &mut Signal) {
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

impl LockGuard {
    /// Take the lock (or note that a parent holds it) and start watching for signals.
    pub async fn acquire(
        remote: Arc<dyn Remote>,
        request: &LockRequest<'_>,
        on_wait: &(dyn Fn(&LockStatus) + Send + Sync),
    ) -> Result<LockGuard, LockError> {
        let (tx, rx) = watch::channel(false);
        if request.inherited {
            return Ok(LockGuard {
                held: None,
                interrupted: rx,
                watcher: None,
            });
        }
        let (mut int, mut term) = signal_streams()?;
        let taking = acquire(
            remote.as_ref(),
            request.config,
            request.host,
            request.details,
            request.wait,
            on_wait,
        );
        tokio::select! {
            result = taking => result?,
            _ = next_signal(&mut int, &mut term) => {
                // The attempt was cut short: release what it may have created, if it is ours.
                if let Ok(Some(s)) = status(remote.as_ref(), request.config, request.host).await {
                    if s.process == request.details.process && s.machine == request.details.machine {
                        release(remote.as_ref(), request.config, request.host).await?;
                    }
                }
                return Err(LockError::Interrupted { host: request.host.to_string() });
            }
        }
        let held = Arc::new(Held {
            remote,
            config: request.config.clone(),
            host: request.host.to_string(),
            ours: tokio::sync::Mutex::new(true),
        });
        let watched = held.clone();
        let watcher = tokio::spawn(async move {
            next_signal(&mut int, &mut term).await;
            let releasing = watched.release_once();
            tokio::select! {
                result = releasing => {
                    if let Err(e) = result {
                        eprintln!("error: releasing the deploy lock after a signal: {e}");
                    }
                }
                _ = next_signal(&mut int, &mut term) => std::process::exit(ExitCode::Interrupted.code()),
            }
            let _ = tx.send(true);
            next_signal(&mut int, &mut term).await;
            std::process::exit(ExitCode::Interrupted.code());
        });
        Ok(LockGuard {
            held: Some(held),
            interrupted: rx,
            watcher: Some(watcher),
        })
    }

    /// Whether a parent holds the lock (nothing acquired, nothing to release).
    pub fn is_inherited(&self) -> bool {
        self.held.is_none()
    }

    /// The host the lock is on (`None` when inherited).
    pub fn host(&self) -> Option<&str> {
        self.held.as_ref().map(|h| h.host.as_str())
    }

    /// Resolves once a signal arrived and the lock was released; pending forever otherwise.
    pub async fn interrupted(&mut self) {
        if self.interrupted.wait_for(|i| *i).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Whether a signal arrived (and the lock was released because of it).
    pub fn was_interrupted(&self) -> bool {
        *self.interrupted.borrow()
    }

    /// Release the lock (unless inherited or already released after a signal) and stop watching.
    pub async fn release(mut self) -> Result<(), LockError> {
        if let Some(held) = self.held.take() {
            held.release_once().await?;
        }
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
        Ok(())
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kamal_details_parse_without_our_lines() {
        let s = LockStatus::parse(
            "Locked by: Jane Doe at 2024-01-01T00:00:00Z\nVersion: abc\nMessage: Automatic deploy lock\n",
        );
        assert_eq!(s.locked_by.as_deref(), Some("Jane Doe"));
        assert!(s.is_automatic());
        assert_eq!(s.machine, None);
        let now = DateTime::parse_from_rfc3339("2024-01-01T01:02:03Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(s.age(now), Some(Duration::from_secs(3723)));
        assert!(s.render(now).ends_with("\nAge: 1h 2m 3s"));
    }

    #[test]
    fn our_details_roundtrip_and_manual_locks_are_not_automatic() {
        let d = details("Ann at home", "v1", "fixing the db");
        let s = LockStatus::parse(&d.text());
        assert_eq!(s.locked_by.as_deref(), Some("Ann at home"));
        assert!(s.locked_at.is_some());
        assert_eq!(s.process, Some(process_tag()));
        assert!(!s.is_automatic());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(5)), "5s");
        assert_eq!(human_duration(Duration::from_secs(65)), "1m 5s");
    }
}

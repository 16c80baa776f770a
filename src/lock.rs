//! The deploy lock on the primary host, compatible with Kamal (§6.1): the commands come from
//! [`crate::docker::lock`], the plan holds them and the engine runs them (`engine/lock.rs`);
//! this module reads their answers: the holder's details, its age, and why it failed.
//!
//! - Acquire is `mkdir .kamal/lock-S[-D]` (atomic: exactly one of two racing `mkdir`s wins) plus
//!   a base64 `details` file. A held lock is reported with its decoded details.
//! - `--lock-wait` polls every `--lock-wait-interval` seconds up to `--lock-wait-timeout`, but
//!   never behind a manual lock (a message other than `Automatic deploy lock`), as Kamal.
//! - `KAMAL_LOCK=true` in the environment means a parent (a `dray` or `kamal` running this one
//!   from a hook) holds the lock: the plan then neither acquires nor releases it.
//! - Beyond Kamal, the details name the machine and the process (`dray <pid>`), and the status
//!   shows the lock's age.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::docker::lock::{LockDetails, AUTOMATIC_MESSAGE};
use crate::error::{Diagnostic, ExitCode};
use crate::remote::RemoteError;

/// The environment variable by which a parent says it holds the lock (`"true"`).
pub const INHERITED_ENV: &str = "KAMAL_LOCK";

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
    /// Our `Command:` line.
    pub command: Option<String>,
    /// Our `Heartbeat:` line, when the holder refreshes one.
    pub heartbeat: Option<DateTime<Utc>>,
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
            command: field("Command:"),
            heartbeat: field(crate::docker::lock::HEARTBEAT.trim_end()).and_then(|t| {
                DateTime::parse_from_rfc3339(&t)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            }),
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

    /// How long ago the holder last refreshed its heartbeat, at `now` (`None`: no heartbeat,
    /// e.g. a lock Kamal or `lock acquire` took).
    pub fn since_heartbeat(&self, now: DateTime<Utc>) -> Option<Duration> {
        self.heartbeat
            .map(|at| (now - at).to_std().unwrap_or(Duration::ZERO))
    }

    /// Whether the holder's heartbeat stopped more than `stale_after` ago. A lock without a
    /// heartbeat is never stale: nothing says its holder is gone.
    pub fn is_stale(&self, now: DateTime<Utc>, stale_after: Duration) -> bool {
        self.since_heartbeat(now).is_some_and(|d| d > stale_after)
    }

    /// The details text followed by `Age: …` when the time is known, and by `Last heartbeat:
    /// … ago` when the holder keeps one.
    pub fn render(&self, now: DateTime<Utc>) -> String {
        let mut text = match self.age(now) {
            Some(age) => format!("{}\nAge: {}", self.text, human_duration(age)),
            None => self.text.clone(),
        };
        if let Some(since) = self.since_heartbeat(now) {
            text.push_str(&format!("\nLast heartbeat: {} ago", human_duration(since)));
        }
        text
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
    #[error("deploy lock already in place on {host}:\n{}\nDeploy lock found. Run 'dray lock help' for more information", .status.render(Utc::now()))]
    Held {
        /// The primary host.
        host: String,
        /// Who holds it.
        status: LockStatus,
    },
    /// Someone holds it by hand (`lock acquire -m`), so `--lock-wait` does not wait.
    #[error("deploy lock held manually on {host}:\n{}\nDeploy lock held manually, not waiting. Run 'dray lock help' for more information", .status.render(Utc::now()))]
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
    /// Its holder's heartbeat stopped longer than `stale_after` ago.
    #[error("stale deploy lock on {host} (no heartbeat for over {}s):\n{}", .stale_after.as_secs(), .status.render(Utc::now()))]
    Stale {
        /// The primary host.
        host: String,
        /// Who held it.
        status: LockStatus,
        /// `x-dray: lock: stale_after`.
        stale_after: Duration,
        /// The command that releases it.
        release: String,
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
            LockError::Stale { release, .. } => Some(format!(
                "its holder stopped working on it: release it with `{release}`, or pass --break-stale-lock to take it over (recorded in the audit log)"
            )),
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
        command: None,
        heartbeat: None,
    }
}

/// [`details`] of a run that refreshes the lock's heartbeat while it works: its command line
/// (`dray deploy`) and a first heartbeat, now.
pub fn details_with_heartbeat(
    locked_by: &str,
    version: &str,
    message: &str,
    command: &str,
) -> LockDetails {
    let mut d = details(locked_by, version, message);
    d.command = Some(command.to_string());
    d.heartbeat = Some(d.locked_at.clone());
    d
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

/// Whether a failed `mkdir` of the lock directory says it exists (the lock is held).
pub fn is_already_there(stderr: &str) -> bool {
    stderr.contains("File exists")
        || stderr.contains("cannot create directory")
        || stderr.contains("can't create directory")
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

//! What the engine reports, as it happens, and where it goes: the engine never prints; it sends
//! [`Event`]s into an [`EventSink`], which `report/` implements (human, live, JSON).

use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::plan::{OutputStyle, PlanKind};

/// Where events go. Implemented by the reporters.
pub trait EventSink: Send {
    /// Take one event.
    fn emit(&mut self, event: &Event);
}

/// The engine's handle on its sink, shared by every task of a run.
#[derive(Clone)]
pub struct Emitter {
    sink: Arc<Mutex<Box<dyn EventSink>>>,
}

impl Emitter {
    /// An emitter feeding `sink`.
    pub fn new(sink: Box<dyn EventSink>) -> Self {
        Emitter {
            sink: Arc::new(Mutex::new(sink)),
        }
    }

    /// Report one event.
    pub fn emit(&self, event: Event) {
        if let Ok(mut s) = self.sink.lock() {
            s.emit(&event);
        }
    }
}

/// How one host ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostOutcome {
    /// It reached the new version (or every step succeeded there).
    Ok,
    /// A step failed there.
    Failed,
    /// The run stopped (a failure elsewhere, ctrl-c) before anything was tried there.
    NotStarted,
    /// It reached the new version, and was switched back to the one it ran before because
    /// the release failed elsewhere (all or nothing).
    Reverted,
}

impl HostOutcome {
    /// `Failed` when a step failed there, else `Ok` when it succeeded, else `NotStarted`.
    pub fn of(ok: bool, failed: bool) -> Self {
        match (failed, ok) {
            (true, _) => HostOutcome::Failed,
            (false, true) => HostOutcome::Ok,
            (false, false) => HostOutcome::NotStarted,
        }
    }
}

/// A sink that keeps every event (tests).
#[derive(Debug, Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<Event>>>);

impl EventSink for Recorder {
    fn emit(&mut self, event: &Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event.clone());
        }
    }
}

impl Recorder {
    /// The events so far.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// One thing that happened during a run. The JSON form (`--output json`) is one object per
/// line with an `event` field naming the variant; `tests/integration/engine.rs` pins the schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run began.
    RunStarted {
        /// `deploy`, `redeploy`, `rollback`, `app`, `proxy`, …
        command: String,
        /// `boot`, `exec`, …
        #[serde(skip_serializing_if = "Option::is_none")]
        subcommand: Option<String>,
        /// The kind of plan.
        kind: PlanKind,
        /// The frozen version, when the command has one.
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        /// The image reference, when the command has one.
        #[serde(skip_serializing_if = "Option::is_none")]
        image: Option<String>,
        /// Targeted hosts.
        hosts: Vec<String>,
        /// Targeted roles.
        roles: Vec<String>,
        /// How command output is shown.
        output: OutputStyle,
    },
    /// A stage began.
    StageStarted {
        /// Stage name.
        stage: String,
        /// The stage's heading ([`crate::plan::Stage::heading`]).
        #[serde(skip_serializing_if = "Option::is_none")]
        heading: Option<String>,
    },
    /// A stage ended.
    StageFinished {
        /// Stage name.
        stage: String,
        /// Seconds it took.
        seconds: f64,
        /// Whether it succeeded.
        ok: bool,
    },
    /// A hook began.
    HookStarted {
        /// Hook name.
        hook: String,
    },
    /// A line a hook printed.
    HookOutput {
        /// Hook name.
        hook: String,
        /// The line.
        line: String,
    },
    /// A hook ended.
    HookFinished {
        /// Hook name.
        hook: String,
        /// Exit code (`None` when it could not run or was killed).
        exit_code: Option<i32>,
        /// Seconds it took.
        seconds: f64,
    },
    /// Work on one host began.
    HostStepStarted {
        /// The host.
        host: String,
        /// The role, for boot steps.
        #[serde(skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        /// What is being done.
        step: String,
    },
    /// Work on one host ended.
    HostStepFinished {
        /// The host.
        host: String,
        /// The role, for boot steps.
        #[serde(skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        /// What was done.
        step: String,
        /// Whether it succeeded.
        ok: bool,
        /// Seconds it took.
        seconds: f64,
        /// Why it failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A command is sent (shown with `-v`).
    CommandStarted {
        /// The host (`localhost`/`local` for local commands).
        host: String,
        /// What it is for.
        purpose: String,
        /// The command line, secrets redacted, holes filled.
        line: String,
    },
    /// A command ended (its output is kept for the `output:` log, not serialized).
    CommandFinished {
        /// The host (`localhost`/`local` for local commands).
        host: String,
        /// Exit code (`None`: killed, or it could not be sent).
        exit_code: Option<i32>,
        /// Seconds it took.
        seconds: f64,
        /// Its standard output.
        #[serde(skip)]
        stdout: String,
        /// Its standard error, or why it could not be sent.
        #[serde(skip)]
        stderr: String,
    },
    /// A command's failure that the plan ignores, as Kamal does (shown with `-v`).
    CommandIgnored {
        /// The host.
        host: String,
        /// What it was for.
        purpose: String,
        /// Its standard error, or why it could not run.
        stderr: String,
    },
    /// Output of the command for the user (what `app details`, `app exec`, … print).
    Output {
        /// The host it came from.
        host: String,
        /// The text (whole lines).
        text: String,
        /// Whether it is standard error.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        stderr: bool,
    },
    /// The deploy lock is held by someone else and `--lock-wait` waits for it.
    LockWaiting {
        /// Where.
        host: String,
        /// The holder's details, with its age.
        holder: String,
        /// How long we wait at most.
        timeout_seconds: u64,
        /// How often we try.
        interval_seconds: u64,
    },
    /// A line of detail from a host (a failing container's logs, …).
    HostOutput {
        /// The host.
        host: String,
        /// The line.
        line: String,
    },
    /// The deploy lock was taken.
    LockAcquired {
        /// Where.
        host: String,
    },
    /// The deploy lock was released.
    LockReleased {
        /// Where.
        host: String,
    },
    /// A host and role switched back to the version it ran before (the release failed
    /// elsewhere), or failed to.
    Reverted {
        /// The host.
        host: String,
        /// The role.
        role: String,
        /// The version it was switched back to.
        version: String,
        /// Whether that worked.
        ok: bool,
        /// Why not.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// There was no deploy lock to release (`lock release`).
    LockAbsent {
        /// Where.
        host: String,
    },
    /// A line for the user that belongs to no one host (Kamal's `say`).
    Said {
        /// The line.
        text: String,
    },
    /// Something worth knowing that is not an error.
    Warning {
        /// The message.
        message: String,
    },
    /// The final state of one host and role, read back from the host.
    HostResult {
        /// The host.
        host: String,
        /// The role (release plans), else none: the result is the host's.
        #[serde(skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        /// The version running now (`None`: nothing running).
        version: Option<String>,
        /// Whether this host reached the new version (or, for other commands, succeeded).
        ok: bool,
        /// `ok`, `failed`, or `not_started`: the run stopped before anything was tried here.
        outcome: HostOutcome,
        /// Why not: every failure of this host, one per line.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// The failures as data.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        failures: Vec<super::error::HostFailure>,
    },
    /// The run ended.
    RunFinished {
        /// Whether it ended on ctrl-c / SIGTERM.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        interrupted: bool,
        /// Whether everything succeeded.
        ok: bool,
        /// Seconds the whole run took (the engine's own clock).
        seconds: f64,
        /// The process exit code.
        exit_code: i32,
        /// The error, when it failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

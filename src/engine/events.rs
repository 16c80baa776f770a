//! What the engine reports, as it happens. The engine never prints: reporters render events.

use serde::Serialize;

/// One thing that happened during a run. The JSON form (`--output json`) is one object per
/// line with an `event` field naming the variant; `tests/integration/engine.rs` pins the schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run began.
    RunStarted {
        /// `deploy`, `redeploy`, `rollback`.
        command: String,
        /// The frozen version.
        version: String,
        /// The image reference.
        image: String,
        /// Targeted hosts.
        hosts: Vec<String>,
        /// Targeted roles.
        roles: Vec<String>,
    },
    /// A stage began.
    StageStarted {
        /// Stage name.
        stage: String,
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
    /// Something worth knowing that is not an error.
    Warning {
        /// The message.
        message: String,
    },
    /// The final state of one host and role, read back from the host.
    HostResult {
        /// The host.
        host: String,
        /// The role.
        role: String,
        /// The version running now (`None`: nothing running).
        version: Option<String>,
        /// Whether this host reached the new version.
        ok: bool,
        /// Why not.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The run ended.
    RunFinished {
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

//! The plan: pure data built from Config + Release + targets before anything runs. Stages in
//! order, each a list of steps; `deploy --dry-run` prints it, the engine executes it.
//!
//! The stage order is Kamal 2.12's `deploy` (`lib/kamal/cli/main.rb`): pre-connect, pre-build,
//! build, push, pull on hosts, lock, pre-deploy, proxy boot, stale containers, per boot group
//! (pre-app-boot, boot each host × role, post-app-boot, wait), tag latest, prune, unlock,
//! post-deploy. `redeploy` drops proxy boot and prune; `rollback` has no build or pull and checks
//! that the version exists as a container on every host first; `--skip-push` pulls an existing tag.

pub mod build;
pub mod cmds;
pub mod targets;

use serde::Serialize;

use crate::command::CommandSpec;
use crate::hooks::HookVar;
use crate::release::{Release, VersionSource};

pub use build::{build_plan, PlanInputs};
pub use targets::{Filters, Targets};

/// Which command the plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanKind {
    /// `dray deploy`.
    Deploy,
    /// `dray redeploy`.
    Redeploy,
    /// `dray rollback VERSION`.
    Rollback,
    /// `dray app boot`: lock, boot groups (with their hooks), tag latest, unlock.
    AppBoot,
}

impl PlanKind {
    /// The command name (`KAMAL_COMMAND`).
    pub fn name(self) -> &'static str {
        match self {
            PlanKind::Deploy => "deploy",
            PlanKind::Redeploy => "redeploy",
            PlanKind::Rollback => "rollback",
            PlanKind::AppBoot => "app",
        }
    }

    /// `KAMAL_SUBCOMMAND`, for commands invoked as `dray <group> <sub>`.
    pub fn subcommand(self) -> Option<&'static str> {
        match self {
            PlanKind::AppBoot => Some("boot"),
            _ => None,
        }
    }
}

/// A whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The command.
    pub command: PlanKind,
    /// The frozen release every step uses.
    pub release: Release,
    /// Where the version came from.
    pub version_source: VersionSource,
    /// `--skip-push`: pull an existing tag instead of building.
    pub skip_push: bool,
    /// Targeted roles and hosts.
    pub targets: Targets,
    /// Stages in order.
    pub stages: Vec<Stage>,
}

/// A named stage.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// Stage name, e.g. `build`, `pull`, `boot`.
    pub name: String,
    /// Steps in order.
    pub steps: Vec<Step>,
}

/// One step: a hook, local commands, commands on hosts, a boot, or a wait.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// Run a hook locally.
    Hook(HookStep),
    /// Run commands on the deploying machine.
    Local(LocalStep),
    /// Run commands on hosts, in parallel across hosts.
    Hosts(HostsStep),
    /// Boot one role on one host.
    Boot(BootStep),
    /// Sleep (`boot.wait`).
    Wait(WaitStep),
}

/// A hook and the environment it receives.
#[derive(Debug, Clone, Serialize)]
pub struct HookStep {
    /// The hook name, e.g. `pre-deploy`.
    pub hook: String,
    /// `<hooks_path>/<hook>`.
    pub path: String,
    /// The environment, secrets marked.
    pub env: Vec<HookVar>,
}

/// What a local step does (the engine matches on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalAction {
    /// Build the image (from a clean clone of HEAD, or `builder.context`) and push it.
    Build,
}

/// What a hosts step does (the engine matches on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostAction {
    /// Log in, pull the image and check its `service` label.
    Pull,
    /// Take the deploy lock (on the primary host).
    LockAcquire,
    /// Release the deploy lock.
    LockRelease,
    /// Check that the version exists as a container (rollback).
    CheckVersion,
    /// Create the `kamal` network and start the proxy where needed.
    ProxyBoot,
    /// Stop containers of other versions still running.
    StaleContainers,
    /// Tag the booted image as the latest.
    TagLatest,
    /// Prune old containers and images.
    Prune,
}

/// Commands run locally.
#[derive(Debug, Clone, Serialize)]
pub struct LocalStep {
    /// What the engine does for this step.
    pub action: LocalAction,
    /// What the step does.
    pub purpose: String,
    /// The commands, in order.
    pub commands: Vec<PlannedCommand>,
}

/// The same kind of work on several hosts.
#[derive(Debug, Clone, Serialize)]
pub struct HostsStep {
    /// What the engine does for this step.
    pub action: HostAction,
    /// What the step does.
    pub purpose: String,
    /// Per host, the commands.
    pub hosts: Vec<HostCommands>,
}

/// The commands of one host.
#[derive(Debug, Clone, Serialize)]
pub struct HostCommands {
    /// The host.
    pub host: String,
    /// Commands, in order.
    pub commands: Vec<PlannedCommand>,
}

/// Boot of one role on one host.
#[derive(Debug, Clone, Serialize)]
pub struct BootStep {
    /// The host.
    pub host: String,
    /// The role.
    pub role: String,
    /// The boot group (0-based) it belongs to.
    pub group: usize,
    /// The new container's name.
    pub container: String,
    /// Whether the role waits behind the proxy (else Docker health / readiness delay).
    pub proxy: bool,
    /// The commands, in order; those that depend on what the host runs say so in their purpose.
    pub commands: Vec<PlannedCommand>,
}

/// A pause.
#[derive(Debug, Clone, Serialize)]
pub struct WaitStep {
    /// Seconds.
    pub seconds: u64,
}

/// A command as the plan shows it: purpose, the exact line, and a note on its stdin.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedCommand {
    /// What it is for.
    pub purpose: String,
    /// The command line exactly as the remote shell receives it.
    pub line: String,
    /// What goes on stdin (secrets redacted), if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// The spec itself, for the engine.
    #[serde(skip)]
    pub spec: CommandSpec,
}

impl PlannedCommand {
    /// Wrap a spec; `stdin_note` says what its stdin holds, already redacted.
    pub fn new(spec: CommandSpec, stdin_note: Option<String>) -> Self {
        PlannedCommand {
            purpose: spec.purpose.clone(),
            line: spec.to_shell_redacted(),
            stdin: stdin_note.or_else(|| spec.stdin.as_ref().map(|_| "[REDACTED]".to_string())),
            spec,
        }
    }
}

impl Plan {
    /// Every hook step, in order.
    pub fn hooks(&self) -> impl Iterator<Item = &HookStep> {
        self.stages
            .iter()
            .flat_map(|s| &s.steps)
            .filter_map(|s| match s {
                Step::Hook(h) => Some(h),
                _ => None,
            })
    }
}

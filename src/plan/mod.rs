//! The plan: pure data built before anything runs, and exactly what runs. Stages in order, each
//! a list of steps; every command a step sends is in the plan, batched scripts included, and
//! values known only at run time are typed [`Hole`]s the engine fills. `--dry-run` prints the
//! plan; the engine executes it and nothing else.
//!
//! Deploy-like plans ([`build`]) follow Kamal 2.12's `deploy` (`lib/kamal/cli/main.rb`):
//! pre-connect, pre-build, build, push, pull on hosts, lock, pre-deploy, proxy boot, stale
//! containers, per boot group (pre-app-boot, boot each host × role, post-app-boot, wait), tag
//! latest, prune, unlock, post-deploy, and a read-back of what every host runs. The other
//! commands' plans are in [`app`], [`proxy`], [`accessory`] / [`accessory_ops`] and [`admin`].

pub mod accessory;
pub mod accessory_ops;
pub mod admin;
pub mod app;
pub mod build;
pub mod builder;
pub mod canary;
pub mod cmds;
mod command;
pub mod hole;
pub mod image;
pub mod proxy;
pub mod server;
mod specifics;
pub mod targets;

use serde::Serialize;

use crate::hooks::HookVar;
use crate::release::{Release, VersionSource};

pub use build::{build_plan, PlanInputs};
pub use command::{
    planned, read_back_marker, Capture, CaptureFrom, IfEmpty, Note, OnError, PlannedCommand, Shown,
};
pub use hole::Hole;
pub use targets::{Filters, Targets};

/// Which kind of command the plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    /// `dray deploy`.
    Deploy,
    /// `dray setup`: a deploy under one lock taken first, with the servers bootstrapped before
    /// the build and the accessories booted after the proxy.
    Setup,
    /// `dray redeploy`.
    Redeploy,
    /// `dray rollback VERSION`.
    Rollback,
    /// `dray app boot`: lock, boot groups (with their hooks), tag latest, unlock.
    AppBoot,
    /// Any other command that touches servers (`app …`, `proxy …`, `prune`, `lock`, …): its
    /// result is per host (did every step succeed there), not a version read back.
    Command,
}

impl PlanKind {
    /// The command name (`KAMAL_COMMAND`) of the release kinds.
    pub fn name(self) -> &'static str {
        match self {
            PlanKind::Deploy => "deploy",
            PlanKind::Setup => "setup",
            PlanKind::Redeploy => "redeploy",
            PlanKind::Rollback => "rollback",
            PlanKind::AppBoot => "app",
            PlanKind::Command => "command",
        }
    }

    /// `KAMAL_SUBCOMMAND`, for commands invoked as `dray <group> <sub>`.
    pub fn subcommand(self) -> Option<&'static str> {
        match self {
            PlanKind::AppBoot => Some("boot"),
            _ => None,
        }
    }

    /// Whether the plan releases a version (its result is the version each host runs).
    pub fn is_release(self) -> bool {
        self != PlanKind::Command
    }
}

/// How the output of a command's remote commands is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OutputStyle {
    /// Each line `[host]`-prefixed, hosts in target order once a stage has finished.
    #[default]
    Prefixed,
    /// As it comes, without a prefix (`lock` answers).
    Plain,
    /// Kamal's `puts_by_host`: per host, once its stage has finished, a `<heading> Host: <host>`
    /// line (the stage's [`Stage::heading`], `App` without one), the output, a blank line.
    ByHost,
}

/// A whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// `KAMAL_COMMAND`: `deploy`, `app`, `proxy`, `lock`, …
    pub command: String,
    /// `KAMAL_SUBCOMMAND`: `boot`, `exec`, `reboot`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subcommand: Option<String>,
    /// The kind of command.
    pub kind: PlanKind,
    /// The frozen release every step uses, when the command needs one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<Release>,
    /// Where the version came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_source: Option<VersionSource>,
    /// `--skip-push`: pull an existing tag instead of building.
    pub skip_push: bool,
    /// Targeted roles and hosts.
    pub targets: Targets,
    /// The hosts the plan connects to (before anything else, all at once).
    pub connect: Vec<String>,
    /// How command output is shown.
    pub output: OutputStyle,
    /// Stages in order.
    pub stages: Vec<Stage>,
}

/// A named stage.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// Stage name, e.g. `build`, `pull`, `boot`.
    pub name: String,
    /// What the output of [`OutputStyle::ByHost`] calls the hosts of this stage (`App`,
    /// `Proxy`, `Accessory db`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
    /// Steps in order.
    pub steps: Vec<Step>,
}

/// One step. The engine executes each kind with one `match`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// Run a hook locally.
    Hook(HookStep),
    /// Run commands on the deploying machine.
    Local(LocalStep),
    /// Run commands on hosts, in parallel across hosts, in order on each.
    Hosts(HostsStep),
    /// Take the deploy lock.
    Lock(LockStep),
    /// Release the deploy lock.
    Unlock(UnlockStep),
    /// Read the deploy lock.
    LockStatus(LockStatusStep),
    /// Boot one role on one host.
    Boot(BootStep),
    /// Sleep (`boot.wait`, `lock hold`); cut short by ctrl-c.
    Wait(WaitStep),
    /// One line naming the hosts whose earlier answer filled a hole (Kamal's `say` after a
    /// check on every host).
    Say(SayStep),
    /// Read back the version each host and role runs (the result of a release).
    ReadBack(ReadBackStep),
    /// A command attached to this terminal over `ssh -t`.
    Interactive(InteractiveStep),
}

/// A hook and the environment it receives.
#[derive(Debug, Clone, Serialize)]
pub struct HookStep {
    /// The hook name, e.g. `pre-deploy`.
    pub hook: String,
    /// `<hooks_path>/<hook>`.
    pub path: String,
    /// The environment, secrets marked; `KAMAL_RUNTIME` holds [`Hole::Runtime`].
    pub env: Vec<HookVar>,
}

/// Where a local build runs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildDir {
    /// A clean clone of `HEAD` in `$TMPDIR/kamal-clones/…` (Kamal's clone build).
    CloneOfHead,
    /// The project itself, with `builder.context` as the context.
    Context(String),
}

/// Commands run locally.
#[derive(Debug, Clone, Serialize)]
pub struct LocalStep {
    /// What the step does.
    pub purpose: String,
    /// The name shown as the "host" of its output (`localhost`, `local`).
    pub label: String,
    /// For a build: where the commands run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_dir: Option<BuildDir>,
    /// Environment variables filled from secrets (`builder.secrets`): name and secret key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<String>,
    /// For a buildx build: the builder to inspect, and to create when it is missing, before the
    /// commands run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ensure_builder: Option<EnsureBuilder>,
    /// The commands, in order.
    pub commands: Vec<PlannedCommand>,
}

/// Kamal's builder check before a buildx build (`lib/kamal/cli/build.rb#push`): run `inspect`;
/// when it fails saying the builder is missing or does not fit (one of `missing_if`), say so,
/// run `remove` (failures ignored) then `create`; any other failure fails the build.
#[derive(Debug, Clone, Serialize)]
pub struct EnsureBuilder {
    /// The builder's name.
    pub name: String,
    /// Kamal's target (`local`, `remote`, `hybrid`, `cloud`).
    pub target: String,
    /// Does it exist and fit?
    pub inspect: PlannedCommand,
    /// Texts of `inspect`'s output that mean "missing": create it.
    pub missing_if: Vec<String>,
    /// Remove what is left of it (failures ignored).
    pub remove: Vec<PlannedCommand>,
    /// Create it.
    pub create: Vec<PlannedCommand>,
}

/// The same kind of work on several hosts.
#[derive(Debug, Clone, Serialize)]
pub struct HostsStep {
    /// What the step does.
    pub purpose: String,
    /// Per host, the commands.
    pub hosts: Vec<HostCommands>,
    /// An SSH reverse tunnel open on each host while its commands run (opened before the
    /// first, closed after the last, whatever happened in between).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<crate::remote::Tunnel>,
}

/// The commands of one host.
#[derive(Debug, Clone, Serialize)]
pub struct HostCommands {
    /// The host.
    pub host: String,
    /// Commands, in order; the first failing one (unless it may fail) ends the host's step.
    pub commands: Vec<PlannedCommand>,
}

/// How long and how often to retry a held lock (`--lock-wait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LockWaitPlan {
    /// Give up after this many seconds.
    pub timeout_seconds: u64,
    /// Try again after this many seconds.
    pub interval_seconds: u64,
}

/// Take the deploy lock on the primary host.
#[derive(Debug, Clone, Serialize)]
pub struct LockStep {
    /// The primary host.
    pub host: String,
    /// `mkdir -p .kamal`, then the atomic `mkdir` of the lock directory with its details.
    pub commands: Vec<PlannedCommand>,
    /// Read the holder's details when the lock is held.
    pub status: PlannedCommand,
    /// `--lock-wait`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<LockWaitPlan>,
    /// Whether the run releases it at its end, on every path (else it stays: `lock acquire`).
    pub release_at_end: bool,
    /// Say "Acquired the deploy lock" on standard output (the `lock` commands).
    pub announce: bool,
    /// While the run holds the lock, refresh its heartbeat (deploys; not `lock acquire`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Box<HeartbeatPlan>>,
    /// `x-dray: lock: stale_after`: a held lock whose heartbeat is older is stale.
    pub stale_after_seconds: u64,
    /// `--break-stale-lock`: when the lock found is stale, these take it over (an audit line,
    /// then the takeover); empty otherwise, and a stale lock is refused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub take_over: Vec<PlannedCommand>,
}

/// The heartbeat of a held lock.
#[derive(Debug, Clone, Serialize)]
pub struct HeartbeatPlan {
    /// Rewrites the details' `Heartbeat:` line (only while this run still holds the lock).
    pub command: PlannedCommand,
    /// Seconds between two refreshes.
    pub interval_seconds: u64,
}

/// Release the deploy lock.
#[derive(Debug, Clone, Serialize)]
pub struct UnlockStep {
    /// The primary host.
    pub host: String,
    /// `rm` of the details and the directory.
    pub command: PlannedCommand,
    /// Say "Released the deploy lock" / "There is no deploy lock" on standard output.
    pub announce: bool,
}

/// Read the deploy lock (`lock status`).
#[derive(Debug, Clone, Serialize)]
pub struct LockStatusStep {
    /// The primary host.
    pub host: String,
    /// The command that prints the decoded details.
    pub command: PlannedCommand,
    /// `x-dray: lock: stale_after`, to say whether the lock is stale.
    pub stale_after_seconds: u64,
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
    /// Whether this is the primary role, whose first verdict other roles wait for.
    pub primary: bool,
    /// `boot.parallel_roles`: the roles of this host boot at the same time instead of one after
    /// another (the primary role's barrier still holds the others back).
    pub parallel_roles: bool,
    /// Run before the primary-role barrier by a role that waits at it: the first half of the
    /// start (the old version, the folded proxy and stale-container stages, the clash rename;
    /// [`crate::docker::boot::prepare`]), so that once the barrier opens only `docker run` and
    /// the readiness wait remain. `None` where the start is one command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_barrier: Option<Box<PlannedCommand>>,
    /// The two round trips: start (prints the old version), settle (readiness, then stop the
    /// old version, or diagnose and stop the new one).
    pub commands: Vec<PlannedCommand>,
    /// Run only when the connection was lost while the start ran: stop the new container,
    /// which may or may not have started, so the old version alone keeps running.
    pub if_start_lost: PlannedCommand,
    /// The settle prints [`crate::docker::boot::READY_MARKER`] once the new container is
    /// ready and then stops the old version: the primary-role barrier opens at that line
    /// (Kamal's `Boot#run` releases the barrier before `stop_old_version`, so the other roles do
    /// not wait for the stop), in the same round trip. False where no other role waits, or for a
    /// replicated role.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub opens_barrier_when_ready: bool,
    /// All or nothing: when the release fails elsewhere after this boot succeeded, this boot
    /// of `<version before>` (the version the role ran here before) switches the host back by
    /// the same zero-downtime path. `None` with `--no-revert` (Kamal's mixed versions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revert: Option<Box<BootStep>>,
}

/// One line for the user naming, once, the hosts whose earlier commands filled `hole`:
/// Kamal's "Skipping booting `db` on vm1, vm2, a container already exists".
#[derive(Debug, Clone, Serialize)]
pub struct SayStep {
    /// The hosts asked, in the plan's order.
    pub hosts: Vec<String>,
    /// A host is named when this hole holds a value.
    pub hole: Hole,
    /// The line; `{hosts}` stands for the named hosts, sorted and joined with `, ` (Kamal's
    /// `hosts.sort.join(", ")`). Nothing is said when no host is named.
    pub text: String,
}

/// A pause.
#[derive(Debug, Clone, Serialize)]
pub struct WaitStep {
    /// Seconds.
    pub seconds: u64,
}

/// One host and role whose running version is read back.
#[derive(Debug, Clone, Serialize)]
pub struct ReadBackRow {
    /// The host.
    pub host: String,
    /// The role.
    pub role: String,
    /// Prints the version running now.
    pub command: PlannedCommand,
    /// The stage whose round trip on the host already printed this row
    /// ([`PlannedCommand::reads_back`]); `command` then runs only where that trip did not
    /// finish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_by: Option<String>,
}

/// Read back what every targeted host and role runs.
#[derive(Debug, Clone, Serialize)]
pub struct ReadBackStep {
    /// The rows, in host order.
    pub rows: Vec<ReadBackRow>,
}

/// A command on this terminal.
#[derive(Debug, Clone, Serialize)]
pub struct InteractiveStep {
    /// The host.
    pub host: String,
    /// The command (its holes filled from earlier steps on the host).
    pub command: PlannedCommand,
}

impl Plan {
    /// A plan of kind [`PlanKind::Command`] for `command [subcommand]` on `targets`,
    /// connecting to every targeted host.
    pub fn command(
        command: &str,
        subcommand: Option<&str>,
        release: Option<Release>,
        targets: Targets,
        stages: Vec<Stage>,
    ) -> Plan {
        Plan {
            command: command.to_string(),
            subcommand: subcommand.map(str::to_string),
            kind: PlanKind::Command,
            release,
            version_source: None,
            skip_push: false,
            connect: targets.hosts.clone(),
            targets,
            output: OutputStyle::Prefixed,
            stages: stages.into_iter().filter(|s| !s.steps.is_empty()).collect(),
        }
    }

    /// Every hook step, in order.
    pub fn hooks(&self) -> impl Iterator<Item = &HookStep> {
        self.steps().filter_map(|s| match s {
            Step::Hook(h) => Some(h),
            _ => None,
        })
    }

    /// Every step, in order.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.stages.iter().flat_map(|s| &s.steps)
    }

    /// Every command sent to a host, with its host, in plan order (what a recording remote
    /// sees, holes aside, when every step succeeds; a lock's status read runs only when held).
    pub fn remote_commands(&self) -> Vec<(&str, &PlannedCommand)> {
        let mut out = Vec::new();
        for step in self.steps() {
            match step {
                Step::Hosts(h) => {
                    for hc in &h.hosts {
                        out.extend(hc.commands.iter().map(|c| (hc.host.as_str(), c)));
                    }
                }
                Step::Lock(l) => out.extend(l.commands.iter().map(|c| (l.host.as_str(), c))),
                Step::Unlock(u) => out.push((u.host.as_str(), &u.command)),
                Step::LockStatus(s) => out.push((s.host.as_str(), &s.command)),
                Step::Boot(b) => out.extend(
                    b.before_barrier
                        .as_deref()
                        .into_iter()
                        .chain(b.commands.iter())
                        .map(|c| (b.host.as_str(), c)),
                ),
                Step::ReadBack(r) => {
                    out.extend(r.rows.iter().map(|row| (row.host.as_str(), &row.command)))
                }
                Step::Hook(_)
                | Step::Local(_)
                | Step::Wait(_)
                | Step::Say(_)
                | Step::Interactive(_) => {}
            }
        }
        out
    }

    /// The same plan with equal argument texts held once ([`crate::command::TextPool`]): a
    /// deploy's commands are the same on every host of a role, and at 1,000 hosts their
    /// per-host copies were a quarter of the deploy's memory (issue #19).
    pub fn shared(mut self) -> Plan {
        let mut pool = crate::command::TextPool::default();
        let mut share = |c: &mut PlannedCommand| c.spec.share_args(&mut pool);
        for step in self.stages.iter_mut().flat_map(|s| &mut s.steps) {
            match step {
                Step::Hosts(h) => h
                    .hosts
                    .iter_mut()
                    .flat_map(|hc| &mut hc.commands)
                    .for_each(&mut share),
                Step::Local(l) => {
                    l.commands.iter_mut().for_each(&mut share);
                    if let Some(e) = &mut l.ensure_builder {
                        share(&mut e.inspect);
                        e.remove.iter_mut().for_each(&mut share);
                        e.create.iter_mut().for_each(&mut share);
                    }
                }
                Step::Lock(l) => {
                    l.commands.iter_mut().for_each(&mut share);
                    share(&mut l.status);
                }
                Step::Unlock(u) => share(&mut u.command),
                Step::LockStatus(l) => share(&mut l.command),
                Step::Boot(b) => {
                    let mut boot: Option<&mut BootStep> = Some(b);
                    while let Some(b) = boot {
                        if let Some(c) = b.before_barrier.as_deref_mut() {
                            share(c);
                        }
                        b.commands.iter_mut().for_each(&mut share);
                        share(&mut b.if_start_lost);
                        boot = b.revert.as_deref_mut();
                    }
                }
                Step::ReadBack(r) => r.rows.iter_mut().for_each(|row| share(&mut row.command)),
                Step::Interactive(i) => share(&mut i.command),
                Step::Hook(_) | Step::Wait(_) | Step::Say(_) => {}
            }
        }
        self
    }

    /// The hosts the plan's commands go to, each once, in the order of their first command
    /// (for [`Plan::connect`] of a plan that reaches beyond the app's hosts: accessories).
    pub fn hosts_used(&self) -> Vec<String> {
        let mut hosts: Vec<String> = Vec::new();
        for (host, _) in self.remote_commands() {
            if !hosts.iter().any(|h| h == host) {
                hosts.push(host.to_string());
            }
        }
        hosts
    }
}

/// `stages` under the deploy lock: a `lock` stage first and an `unlock` stage last (the engine
/// releases the lock on every path, failure and ctrl-c included). `None`: no lock (read-only
/// commands, or a parent holds it, `KAMAL_LOCK=true`).
pub fn locked(lock: Option<(LockStep, UnlockStep)>, stages: Vec<Stage>) -> Vec<Stage> {
    let Some((lock, unlock)) = lock else {
        return stages;
    };
    let mut out = vec![stage("lock", vec![Step::Lock(lock)])];
    out.extend(stages);
    out.push(stage("unlock", vec![Step::Unlock(unlock)]));
    out
}

/// A stage, left out of the plan when it has no steps.
pub fn stage(name: &str, steps: Vec<Step>) -> Stage {
    Stage {
        name: name.to_string(),
        heading: None,
        steps,
    }
}

impl Stage {
    /// This stage, its hosts called `heading` in [`OutputStyle::ByHost`] output.
    pub fn headed(mut self, heading: impl Into<String>) -> Stage {
        self.heading = Some(heading.into());
        self
    }
}

/// One [`Step::Hosts`] doing `commands(host)` on each of `hosts` (hosts with no commands left
/// out); no step at all when no host has any.
pub fn on_hosts(
    purpose: impl Into<String>,
    hosts: &[String],
    mut commands: impl FnMut(&str) -> Vec<PlannedCommand>,
) -> Vec<Step> {
    let hosts: Vec<HostCommands> = hosts
        .iter()
        .map(|h| HostCommands {
            host: h.clone(),
            commands: commands(h),
        })
        .filter(|hc| !hc.commands.is_empty())
        .collect();
    if hosts.is_empty() {
        return Vec::new();
    }
    vec![Step::Hosts(HostsStep {
        purpose: purpose.into(),
        hosts,
        tunnel: None,
    })]
}

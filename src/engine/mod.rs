//! The engine: the one executor. It runs a [`Plan`] stage by stage through one `match` on its
//! steps, sends exactly the commands the plan holds (filling its typed holes), fans host work
//! out in parallel (results in stable host order), runs hooks locally, and reports everything
//! as [`Event`]s into an [`EventSink`]. It never prints.
//!
//! - One lock lifecycle: a lock taken by a `lock` step is released on every path (failure,
//!   ctrl-c) unless the step says it stays (`lock acquire`).
//! - One cancellation path: [`CancelHandle::cancel`] (the first ctrl-c) stops new work from
//!   starting; steps in flight finish (a wait is cut short); the lock is released; the run
//!   ends with exit code 130. A second ctrl-c is the caller's to handle (abort).
//! - One exit-code rule: [`error::exit_code`].

pub mod boot;
pub mod build;
pub mod error;
pub mod events;
mod host;
mod lock;
mod steps;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::config::Config;
use crate::hooks::StopSignal;
use crate::plan::{Plan, Step};
use crate::remote::Remote;

use boot::Barrier;
pub use error::{Failure, HostFailure, Outcome};
pub use events::{Emitter, Event, EventSink, HostOutcome, Recorder};
use host::Slots;

/// How long releasing the lock may take on the way out of a stopped run.
const RELEASE_BOUND: Duration = Duration::from_secs(10);

/// Asks a running engine to stop starting new work.
#[derive(Clone, Debug)]
pub struct CancelHandle(Arc<watch::Sender<Option<StopSignal>>>);

impl CancelHandle {
    /// Stop starting new work; in-flight steps finish, the lock is released.
    pub fn cancel(&self) {
        self.cancel_with(StopSignal::Interrupt);
    }

    /// Cancel because of `signal`, which a running hook's process group gets too (the first
    /// cancellation's signal counts).
    pub fn cancel_with(&self, signal: StopSignal) {
        self.0.send_if_modified(|s| {
            if s.is_none() {
                *s = Some(signal);
                true
            } else {
                false
            }
        });
    }

    /// Whether cancellation was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.borrow().is_some()
    }
}

/// What the engine needs besides the plan.
pub struct Engine<'a> {
    /// The plan to execute.
    pub plan: &'a Plan,
    /// The configuration.
    pub config: &'a Config,
    /// Runs commands on hosts.
    pub remote: Arc<dyn Remote>,
    /// The project root: hooks and builds run here.
    pub root: PathBuf,
    /// Where events go.
    pub emit: Emitter,
    /// The command that releases the lock by hand, for the message when it stays held
    /// (`dray lock release`, with the run's `-c`/`-d`).
    pub release_command: String,
    /// The host whose lock this run holds and must release.
    held: Mutex<Option<String>>,
    /// The hosts a command was sent to (the others were never started).
    touched: Mutex<std::collections::BTreeSet<String>>,
    cancel: CancelHandle,
    started: Instant,
    /// Each host's hole values, kept across the steps of the run.
    slots: Mutex<BTreeMap<String, Slots>>,
    /// Result rows (host, role → version running, if any) already printed by a command that
    /// reads them back ([`crate::plan::PlannedCommand::reads_back`]).
    read: Mutex<BTreeMap<(String, String), Option<String>>>,
}

/// What the run loop keeps track of.
#[derive(Default)]
struct RunState {
    failures: Vec<Failure>,
    cancelled: bool,
    released_after_cancel: Option<String>,
    /// Read-back rows: host, role, version running.
    read_back: Vec<(String, String, Option<String>)>,
    /// Hosts and roles switched back after a failed release.
    reverted: Vec<steps::Reverted>,
}

impl RunState {
    fn stopped(&self) -> bool {
        self.cancelled || !self.failures.is_empty()
    }
}

impl<'a> Engine<'a> {
    /// An engine for `plan`.
    pub fn new(
        plan: &'a Plan,
        config: &'a Config,
        remote: Arc<dyn Remote>,
        root: PathBuf,
        emit: Emitter,
    ) -> Self {
        Engine {
            plan,
            config,
            remote,
            root,
            emit,
            release_command: "dray lock release".into(),
            held: Mutex::new(None),
            touched: Mutex::new(Default::default()),
            cancel: CancelHandle(Arc::new(watch::channel(None).0)),
            started: Instant::now(),
            slots: Mutex::new(BTreeMap::new()),
            read: Mutex::new(BTreeMap::new()),
        }
    }

    /// A handle to cancel this run (first ctrl-c).
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Sleep for `d`; `false` when cancelled first.
    async fn sleep_unless_cancelled(&self, d: Duration) -> bool {
        let mut rx = self.cancel.0.subscribe();
        if rx.borrow_and_update().is_some() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = rx.changed() => false,
        }
    }

    fn host_slots(&self, host: &str) -> Slots {
        let mut slots = self
            .slots
            .lock()
            .ok()
            .and_then(|m| m.get(host).cloned())
            .unwrap_or_default();
        slots.runtime = self.started.elapsed().as_secs();
        slots
    }

    fn keep_slots(&self, host: &str, slots: Slots) {
        if let Ok(mut m) = self.slots.lock() {
            m.insert(host.to_string(), slots);
        }
    }

    /// Keep the result rows `stdout` of a command that reads them back holds: what each of
    /// `roles` runs on `host` (a role whose line is missing keeps its own read-back).
    fn keep_read_back(&self, host: &str, roles: &[String], stdout: &str) {
        if let Ok(mut m) = self.read.lock() {
            for (i, role) in roles.iter().enumerate() {
                let marker = crate::plan::read_back_marker(i);
                if let Some(v) = crate::docker::boot::marker(stdout, &marker) {
                    let running = (!v.is_empty()).then(|| v.to_string());
                    m.insert((host.to_string(), role.clone()), running);
                }
            }
        }
    }

    /// Execute the plan, refreshing the lock's heartbeat meanwhile while this run holds it.
    pub async fn run(&self) -> Outcome {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stages = async {
            let outcome = self.run_stages().await;
            let _ = stop_tx.send(true);
            outcome
        };
        let (outcome, ()) = tokio::join!(stages, self.heartbeat_loop(stop_rx));
        outcome
    }

    /// Execute the plan's stages.
    async fn run_stages(&self) -> Outcome {
        let plan = self.plan;
        self.emit.emit(Event::RunStarted {
            command: plan.command.clone(),
            subcommand: plan.subcommand.clone(),
            kind: plan.kind,
            version: plan.release.as_ref().map(|r| r.version.clone()),
            image: plan.release.as_ref().map(|r| r.image.clone()),
            hosts: plan.targets.hosts.clone(),
            roles: plan.targets.roles.clone(),
            output: plan.output,
        });
        let barrier = Barrier::default();
        let mut st = RunState::default();
        // Boots that succeeded, with the version each role ran before (all or nothing).
        let mut switched: Vec<(&crate::plan::BootStep, String)> = Vec::new();
        let mut connected = false;

        for stage in &plan.stages {
            let unlock_stage = stage.steps.iter().any(|s| matches!(s, Step::Unlock(_)));
            if !st.stopped() && self.cancel.is_cancelled() {
                st.cancelled = true;
            }
            if st.stopped() && !(unlock_stage && self.held().is_some()) {
                continue;
            }
            if !connected && stage.name != "connect" && !plan.connect.is_empty() {
                // Connect first, fail fast: every host, in parallel, right after pre-connect
                // and before the long local work.
                connected = true;
                if let Err(unreachable) = self.remote.connect_all(&plan.connect).await {
                    st.failures.push(Failure::Unreachable(unreachable));
                    continue;
                }
            }
            let stage_started = Instant::now();
            self.emit.emit(Event::StageStarted {
                stage: stage.name.clone(),
                heading: stage.heading.clone(),
            });
            let failures_before = st.failures.len();
            let mut steps = stage.steps.iter().peekable();
            while let Some(step) = steps.next() {
                let is_unlock = matches!(step, Step::Unlock(_));
                if !is_unlock {
                    if st.stopped() {
                        break;
                    }
                    if self.cancel.is_cancelled() {
                        st.cancelled = true;
                        break;
                    }
                }
                match step {
                    Step::Hook(h) => {
                        if let Err(f) = self.hook(h).await {
                            st.failures.push(f);
                        }
                    }
                    Step::Local(l) => {
                        if let Err(f) = self.local(&stage.name, l).await {
                            st.failures.push(Failure::Host(f));
                        }
                    }
                    Step::Hosts(h) => {
                        st.failures.extend(
                            self.hosts(&stage.name, h)
                                .await
                                .into_iter()
                                .map(Failure::Host),
                        );
                    }
                    Step::Lock(l) => match self.lock(l).await {
                        Ok(()) => {
                            if l.release_at_end {
                                self.set_held(Some(l.host.clone()));
                            }
                        }
                        Err(f) => st.failures.push(f),
                    },
                    Step::Unlock(u) => {
                        if st.stopped() && self.held().as_deref() != Some(u.host.as_str()) {
                            continue;
                        }
                        match self.unlock(u).await {
                            Ok(()) => {
                                if st.cancelled {
                                    st.released_after_cancel = Some(u.host.clone());
                                }
                                self.set_held(None);
                            }
                            Err(f) => {
                                self.set_held(None);
                                st.failures.push(self.still_held(&u.host, f));
                            }
                        }
                    }
                    Step::LockStatus(s) => {
                        if let Err(f) = self.lock_status(s).await {
                            st.failures.push(f);
                        }
                    }
                    Step::Boot(first) => {
                        let mut group = vec![first];
                        while let Some(Step::Boot(next)) = steps.peek() {
                            if next.group != first.group {
                                break;
                            }
                            group.push(next);
                            steps.next();
                        }
                        let (failed, ok) = self.boot_group(&stage.name, &group, &barrier).await;
                        st.failures.extend(failed.into_iter().map(Failure::Host));
                        switched.extend(ok);
                    }
                    Step::Wait(w) => {
                        if !self
                            .sleep_unless_cancelled(Duration::from_secs(w.seconds))
                            .await
                        {
                            st.cancelled = true;
                        }
                    }
                    Step::Say(say) => {
                        let mut named: Vec<&str> = say
                            .hosts
                            .iter()
                            .filter(|h| self.host_slots(h).is_filled(say.hole))
                            .map(String::as_str)
                            .collect();
                        named.sort_unstable();
                        if !named.is_empty() {
                            self.emit.emit(Event::Said {
                                text: say.text.replace("{hosts}", &named.join(", ")),
                            });
                        }
                    }
                    Step::ReadBack(r) => st.read_back = self.read_back(r).await,
                    Step::Interactive(i) => {
                        if let Err(f) = self.interactive(&stage.name, i).await {
                            st.failures.push(Failure::Host(f));
                        }
                    }
                }
            }
            // All or nothing: the boot failed somewhere, so the hosts that switched go back.
            let booted = stage.steps.iter().any(|s| matches!(s, Step::Boot(_)));
            if booted && st.failures.len() > failures_before && !switched.is_empty() {
                let reverted = self.revert(&switched).await;
                st.failures.extend(
                    reverted
                        .iter()
                        .filter_map(|r| r.result.clone().err())
                        .map(Failure::Host),
                );
                st.reverted = reverted;
                switched.clear();
            }
            self.emit.emit(Event::StageFinished {
                stage: stage.name.clone(),
                seconds: stage_started.elapsed().as_secs_f64(),
                ok: st.failures.len() == failures_before,
            });
        }

        if self.cancel.is_cancelled() {
            st.cancelled = true;
        }
        if let Some(host) = self.held() {
            // Stopped before the unlock stage: release it here, on every path, bounded.
            match self.release_now(&host).await {
                Ok(()) => {
                    if st.cancelled {
                        st.released_after_cancel = Some(host);
                    }
                }
                Err(f) => st.failures.push(f),
            }
        }
        // Read back what the hosts run even after a failure (a release's result table).
        if plan.kind.is_release() && st.read_back.is_empty() {
            if let Some(r) = plan.steps().find_map(|s| match s {
                Step::ReadBack(r) => Some(r),
                _ => None,
            }) {
                st.read_back = self.read_back(r).await;
            }
        }

        let any_ok = self.report_results(&st);
        self.remote.close().await;
        let exit = error::exit_code(st.cancelled, &st.failures, any_ok);
        let message = (!st.failures.is_empty()).then(|| {
            st.failures
                .iter()
                .map(Failure::message)
                .collect::<Vec<_>>()
                .join("\n")
        });
        self.emit.emit(Event::RunFinished {
            interrupted: st.cancelled,
            ok: st.failures.is_empty() && !st.cancelled,
            seconds: self.started.elapsed().as_secs_f64(),
            exit_code: exit.code(),
            error: message,
        });
        Outcome {
            exit,
            failures: st.failures,
            interrupted: st.cancelled,
            lock_released_on: st.released_after_cancel,
            read_back: st.read_back,
        }
    }

    fn held(&self) -> Option<String> {
        self.held.lock().ok().and_then(|h| h.clone())
    }

    fn set_held(&self, host: Option<String>) {
        if let Ok(mut h) = self.held.lock() {
            *h = host;
        }
    }

    /// The lock could not be released: say so, with the command that releases it.
    fn still_held(&self, host: &str, why: Failure) -> Failure {
        Failure::Lock {
            message: format!(
                "the deploy lock on {host} is still held ({})",
                why.message().lines().next().unwrap_or("")
            ),
            hint: Some(format!("release it with `{}`", self.release_command)),
        }
    }

    /// Release this run's lock on `host` now, within [`RELEASE_BOUND`].
    async fn release_now(&self, host: &str) -> Result<(), Failure> {
        let unlock = crate::plan::cmds::unlock(self.config, host);
        let result = match tokio::time::timeout(RELEASE_BOUND, self.unlock(&unlock)).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Lock {
                message: format!("no answer within {}s", RELEASE_BOUND.as_secs()),
                hint: None,
            }),
        };
        self.set_held(None);
        result.map_err(|f| self.still_held(host, f))
    }

    /// End an aborted run (a second ctrl-c/SIGTERM, after [`Engine::run`]'s future was
    /// dropped): release the lock if this run holds it, within a short bound, close the
    /// connections, and report. Exit code 130.
    pub async fn abort(&self) -> Outcome {
        self.emit.emit(Event::Warning {
            message: "aborted: releasing the deploy lock and closing the connections".into(),
        });
        let mut failures = Vec::new();
        let mut released = None;
        if let Some(host) = self.held() {
            match self.release_now(&host).await {
                Ok(()) => released = Some(host),
                Err(f) => failures.push(f),
            }
        }
        let _ = tokio::time::timeout(RELEASE_BOUND, self.remote.close()).await;
        let message = (!failures.is_empty()).then(|| {
            failures
                .iter()
                .map(Failure::message)
                .collect::<Vec<_>>()
                .join("\n")
        });
        self.emit.emit(Event::RunFinished {
            interrupted: true,
            ok: false,
            seconds: self.started.elapsed().as_secs_f64(),
            exit_code: crate::error::ExitCode::Interrupted.code(),
            error: message,
        });
        Outcome {
            exit: crate::error::ExitCode::Interrupted,
            failures,
            interrupted: true,
            lock_released_on: released,
            read_back: Vec::new(),
        }
    }

    /// Emit the per-host results; `true` if any targeted host succeeded.
    fn report_results(&self, st: &RunState) -> bool {
        let failures_of = |host: &str, role: Option<&str>| -> Vec<HostFailure> {
            st.failures
                .iter()
                .filter_map(|f| match f {
                    Failure::Host(h)
                        if h.host == host
                            && (role.is_none()
                                || h.role.is_none()
                                || h.role.as_deref() == role) =>
                    {
                        Some(h.clone())
                    }
                    _ => None,
                })
                .collect()
        };
        let join = |fs: &[HostFailure]| {
            (!fs.is_empty()).then(|| {
                fs.iter()
                    .map(|f| f.message.clone())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        };
        let mut any_ok = false;
        if self.plan.kind.is_release() {
            let version = self.plan.release.as_ref().map(|r| r.version.as_str());
            for (host, role, running) in &st.read_back {
                let failures = failures_of(host, Some(role));
                let ok = failures.is_empty() && running.as_deref() == version;
                any_ok |= ok;
                let reverted = st
                    .reverted
                    .iter()
                    .any(|r| &r.host == host && &r.role == role && r.result.is_ok());
                let outcome = if reverted && failures.is_empty() {
                    HostOutcome::Reverted
                } else {
                    HostOutcome::of(ok, !failures.is_empty())
                };
                let error = if outcome == HostOutcome::Reverted {
                    Some(format!(
                        "reverted to {}: the release failed on other hosts",
                        running.as_deref().unwrap_or("the version before")
                    ))
                } else {
                    join(&failures)
                };
                self.emit.emit(Event::HostResult {
                    host: host.clone(),
                    role: Some(role.clone()),
                    version: running.clone(),
                    ok,
                    outcome,
                    error,
                    failures,
                });
            }
        } else {
            let touched = self.touched.lock().map(|t| t.clone()).unwrap_or_default();
            for host in &self.plan.targets.hosts {
                let failures = failures_of(host, None);
                let started = touched.contains(host) || self.plan.connect.is_empty();
                let ok = failures.is_empty() && started;
                any_ok |= ok;
                let outcome = HostOutcome::of(ok, !failures.is_empty());
                self.emit.emit(Event::HostResult {
                    host: host.clone(),
                    role: None,
                    version: None,
                    ok,
                    outcome,
                    error: join(&failures),
                    failures,
                });
            }
        }
        any_ok
    }
}

//! Booting one role on one host, Kamal's `Kamal::Cli::App::Boot#run`, with the plan's two
//! commands: the primary-role barrier, then start (clash check, env file, old version,
//! `docker run`) and settle (readiness: proxy deploy, or Docker health / readiness delay; on
//! failure stop the new container, on success stop the old one).

use tokio::sync::watch;

use crate::docker;
use crate::plan::BootStep;

use super::error::HostFailure;
use super::events::Event;
use super::host::Slots;
use super::Engine;

/// The primary-role barrier: other roles wait for the first primary container's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarrierState {
    /// No primary container has finished booting yet.
    Pending,
    /// A primary container became healthy: other roles may boot.
    Open,
    /// A primary container failed: other roles must not boot.
    Closed,
}

/// Shared by every boot of one run.
#[derive(Debug, Clone)]
pub struct Barrier {
    tx: std::sync::Arc<watch::Sender<BarrierState>>,
}

impl Default for Barrier {
    fn default() -> Self {
        Barrier {
            tx: std::sync::Arc::new(watch::channel(BarrierState::Pending).0),
        }
    }
}

impl Barrier {
    /// Open unless already decided.
    pub fn open(&self) {
        self.tx.send_if_modified(|s| {
            if *s == BarrierState::Pending {
                *s = BarrierState::Open;
                true
            } else {
                false
            }
        });
    }

    /// Close unless already decided; whether this call closed it.
    pub fn close(&self) -> bool {
        self.tx.send_if_modified(|s| {
            if *s == BarrierState::Pending {
                *s = BarrierState::Closed;
                true
            } else {
                false
            }
        })
    }

    /// Wait for the verdict; `true` when open.
    pub async fn wait(&self) -> bool {
        let mut rx = self.tx.subscribe();
        loop {
            match *rx.borrow_and_update() {
                BarrierState::Open => return true,
                BarrierState::Closed => return false,
                BarrierState::Pending => {}
            }
            if rx.changed().await.is_err() {
                return false;
            }
        }
    }
}

impl Engine<'_> {
    /// Boot one role on one host with the step's two commands (see [`crate::docker::boot`]):
    /// start, then settle. Other roles wait for the first primary container's verdict. On
    /// failure the new container is stopped and the old one keeps running; the error says why.
    /// On success, the version the role ran here before (empty on a first boot).
    pub(crate) async fn boot(
        &self,
        stage: &str,
        step: &BootStep,
        barrier: &Barrier,
    ) -> Result<String, HostFailure> {
        let host = step.host.as_str();
        let role = Some(step.role.as_str());
        let primary_role = &self.config.primary_role;
        let say = |line: String| {
            self.emit.emit(Event::HostOutput {
                host: host.to_string(),
                line,
            })
        };
        let mut slots = Slots::default();
        if let Some(prepare) = &step.before_barrier {
            // Kamal's `Boot#run` reads the old version and renames a clashing container before
            // `wait_at_barrier`: only the start and the readiness wait are left for after it.
            self.run_commands(stage, host, role, std::slice::from_ref(prepare), &mut slots)
                .await?;
        }
        if !step.primary && *barrier.tx.borrow() == BarrierState::Pending {
            // Kamal's words (`Kamal::Cli::App::Boot#wait_at_barrier`).
            say(format!(
                "Waiting for the first healthy {primary_role} container before booting {} on {host}...",
                step.role
            ));
        }
        if !step.primary && !barrier.wait().await {
            say(format!(
                "First {primary_role} container is unhealthy, not booting {} on {host}",
                step.role
            ));
            return Err(HostFailure::new(
                stage,
                host,
                role,
                &format!("boot {} on {host}", step.role),
                format!(
                    "first primary container is unhealthy, not booting {} on {host}",
                    step.role
                ),
            ));
        }
        // A primary container's readiness opens the barrier before its old version is stopped
        // (at the settle's ready line, `opens_barrier_when_ready`), as Kamal's `Boot#run`
        // releases it before `stop_old_version`.
        let ready = || {
            if step.primary {
                barrier.open();
            }
        };
        let result = self.boot_commands(stage, step, slots, &ready).await;
        if step.primary {
            match result {
                Ok(_) => barrier.open(),
                Err(_) => {
                    if barrier.close() {
                        say(format!(
                            "First {primary_role} container is unhealthy on {host}, not booting any other roles"
                        ));
                    }
                }
            }
        }
        result
    }

    /// The step's start and settle, with the host's hole values so far (`slots`: a revert's
    /// `<version before>`, what the step's `before_barrier` read). On success, the
    /// `<old version>` the start read (empty when none ran).
    pub(crate) async fn boot_commands(
        &self,
        stage: &str,
        step: &BootStep,
        mut slots: Slots,
        on_ready: &(dyn Fn() + Send + Sync),
    ) -> Result<String, HostFailure> {
        let host = step.host.as_str();
        let role = Some(step.role.as_str());
        let Some((settle, start)) = step.commands.split_last() else {
            return Ok(String::new());
        };
        if let Err(failure) = self
            .run_commands(stage, host, role, start, &mut slots)
            .await
        {
            if failure.lost {
                // The start may have run: stop the new container (by name; idempotent) over a
                // new connection, so the old version alone keeps running.
                let _ = self.send(host, &step.if_start_lost, &mut slots).await;
            }
            return Err(failure);
        }
        let (sent, ready_line_seen) = if step.opens_barrier_when_ready {
            let mut watch = crate::remote::Watch::new(docker::boot::READY_MARKER, on_ready);
            let sent = self
                .send_watched(host, settle, &mut slots, &mut watch)
                .await;
            (sent, watch.fired())
        } else {
            (self.send(host, settle, &mut slots).await, false)
        };
        // The settle's output when the new container did not become ready. After the ready
        // line, what runs is the old version's stop, whose failure is ignored (a lost
        // connection too), as the settle's own stop.
        let failed = match sent {
            Err(_) if ready_line_seen => None,
            Err(e) => return Err(e.into_failure(stage, host, role, settle)),
            Ok((_, out)) if ready_line_seen || out.success() => None,
            Ok((_, out)) => Some(out),
        };
        let Some(out) = failed else {
            on_ready();
            return Ok(slots
                .values
                .get(&crate::plan::Hole::OldVersion)
                .cloned()
                .unwrap_or_default());
        };
        for line in out.stdout.lines().chain(out.stderr.lines()) {
            if !line.starts_with(docker::boot::FAILED_MARKER)
                && line.trim() != docker::boot::UNHEALTHY_MARKER
            {
                self.emit.emit(Event::HostOutput {
                    host: host.to_string(),
                    line: line.to_string(),
                });
            }
        }
        let why = docker::boot::marker(&out.stdout, docker::boot::FAILED_MARKER)
            .map(str::to_string)
            .unwrap_or_else(|| format!("exit status {:?}", out.status));
        let mut failure = HostFailure::new(
            stage,
            host,
            role,
            &settle.purpose,
            format!("{} container on {host}: {why}", step.role),
        );
        failure.exit = out.status;
        failure.stderr_tail = out.stderr_tail(10);
        let unhealthy = out
            .stdout
            .lines()
            .any(|l| l.trim() == docker::boot::UNHEALTHY_MARKER);
        if unhealthy {
            failure = failure.with_hint(format!(
                "raise `deploy_timeout` ({}s) if the app needs longer to become healthy",
                self.config.deploy_timeout
            ));
        }
        Err(failure)
    }
}

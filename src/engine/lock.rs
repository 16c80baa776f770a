//! The lock steps, with the plan's commands: acquire (the atomic `mkdir`; when held, the
//! holder's details read back and, with `--lock-wait`, a bounded wait), release, status.

use std::time::Duration;

use crate::lock::{is_already_there, LockError, LockStatus};
use crate::plan::{LockStatusStep, LockStep, UnlockStep};
use crate::remote::RemoteError;

use super::error::Failure;
use super::events::Event;
use super::host::Slots;
use super::Engine;

fn lock_failure(e: LockError) -> Failure {
    use crate::error::Diagnostic;
    Failure::Lock {
        message: e.to_string(),
        hint: e.hint(),
    }
}

impl Engine<'_> {
    async fn lock_send(
        &self,
        host: &str,
        cmd: &crate::plan::PlannedCommand,
    ) -> Result<crate::remote::CommandOutput, LockError> {
        let mut slots = Slots::default();
        match self.send(host, cmd, &mut slots).await {
            Ok((_, out)) => Ok(out),
            Err(super::host::SendError::Remote(e)) => Err(LockError::Remote(e)),
            Err(super::host::SendError::Unfilled(h)) => Err(LockError::Remote(RemoteError::Exec {
                host: host.to_string(),
                purpose: cmd.purpose.clone(),
                message: format!("no value for {}", h.token()),
            })),
        }
    }

    /// The holder's details, read again briefly while the holder may be between its `mkdir` and
    /// writing `details`; `None` when none could be read (the lock is being taken, or was just
    /// released).
    async fn holder(&self, step: &LockStep) -> Result<Option<LockStatus>, LockError> {
        for _ in 0..10 {
            let out = self.lock_send(&step.host, &step.status).await?;
            if out.success() && !out.stdout.trim().is_empty() {
                return Ok(Some(LockStatus::parse(&out.stdout)));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(None)
    }

    /// `None` when taken; else the holder's details, `None` inside when none could be read.
    async fn try_lock(&self, step: &LockStep) -> Result<Option<Option<LockStatus>>, LockError> {
        let Some((acquire, before)) = step.commands.split_last() else {
            return Ok(None);
        };
        for cmd in before {
            let out = self.lock_send(&step.host, cmd).await?;
            if !out.success() {
                return Err(LockError::Remote(RemoteError::failed(
                    &step.host, &cmd.spec, &out,
                )));
            }
        }
        let out = self.lock_send(&step.host, acquire).await?;
        if out.success() {
            return Ok(None);
        }
        if !is_already_there(&out.stderr) {
            return Err(LockError::Remote(RemoteError::failed(
                &step.host,
                &acquire.spec,
                &out,
            )));
        }
        self.holder(step).await.map(Some)
    }

    /// `--break-stale-lock`: the audit line, then the takeover; `false` when another run took
    /// the lock in between (it is then held, and the caller looks again).
    async fn take_over(&self, step: &LockStep) -> Result<bool, LockError> {
        let Some((take, before)) = step.take_over.split_last() else {
            return Ok(false);
        };
        for cmd in before {
            let out = self.lock_send(&step.host, cmd).await?;
            if !out.success() {
                return Err(LockError::Remote(RemoteError::failed(
                    &step.host, &cmd.spec, &out,
                )));
            }
        }
        let out = self.lock_send(&step.host, take).await?;
        if out.success() {
            return Ok(true);
        }
        if is_already_there(&out.stderr) {
            return Ok(false);
        }
        Err(LockError::Remote(RemoteError::failed(
            &step.host, &take.spec, &out,
        )))
    }

    /// While this run holds the plan's lock, refresh its heartbeat every interval, until
    /// `stop` says the run ended. A failed refresh is only said (the next one may work).
    pub(crate) async fn heartbeat_loop(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let Some((host, beat)) = self.plan.steps().find_map(|s| match s {
            crate::plan::Step::Lock(l) if l.release_at_end => {
                l.heartbeat.as_ref().map(|h| (l.host.clone(), h))
            }
            _ => None,
        }) else {
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(beat.interval_seconds.max(1))) => {}
                _ = stop.changed() => return,
            }
            if self.held().as_deref() != Some(host.as_str()) {
                continue;
            }
            if let Err(e) = self.lock_send(&host, &beat.command).await {
                self.emit.emit(Event::Warning {
                    message: format!("could not refresh the deploy lock's heartbeat: {e}"),
                });
            }
        }
    }

    /// Take the lock, waiting as the step says; ctrl-c ends the wait.
    pub(crate) async fn lock(&self, step: &LockStep) -> Result<(), Failure> {
        let started = tokio::time::Instant::now();
        let mut told = false;
        loop {
            let holder = match self.try_lock(step).await.map_err(lock_failure)? {
                None => break,
                Some(holder) => holder,
            };
            let known = holder.is_some();
            let status = holder.unwrap_or_else(|| LockStatus::parse("(no details yet)"));
            let host = step.host.clone();
            // A holder whose heartbeat stopped is gone: waiting is pointless; take it over
            // when asked, else refuse with the command that releases it.
            let stale_after = Duration::from_secs(step.stale_after_seconds);
            if status.is_stale(chrono::Utc::now(), stale_after) {
                if step.take_over.is_empty() {
                    return Err(lock_failure(LockError::Stale {
                        host,
                        status,
                        stale_after,
                        release: self.release_command.clone(),
                    }));
                }
                if self.take_over(step).await.map_err(lock_failure)? {
                    self.emit.emit(Event::Warning {
                        message: format!(
                            "took over the stale deploy lock on {host} (recorded in the audit log):\n{}",
                            status.render(chrono::Utc::now())
                        ),
                    });
                    break;
                }
                continue;
            }
            let Some(wait) = step.wait else {
                return Err(lock_failure(LockError::Held { host, status }));
            };
            // A lock without readable details is being taken or was just released: not a
            // manual lock; the next try tells.
            if known && !status.is_automatic() {
                return Err(lock_failure(LockError::Manual { host, status }));
            }
            let timeout = Duration::from_secs(wait.timeout_seconds);
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(lock_failure(LockError::TimedOut {
                    host,
                    waited,
                    status,
                }));
            }
            if !told {
                self.emit.emit(Event::LockWaiting {
                    host: host.clone(),
                    holder: status.render(chrono::Utc::now()),
                    timeout_seconds: wait.timeout_seconds,
                    interval_seconds: wait.interval_seconds,
                });
                told = true;
            }
            let pause = Duration::from_secs(wait.interval_seconds.max(1))
                .min(timeout - waited)
                .max(Duration::from_millis(100));
            if !self.sleep_unless_cancelled(pause).await {
                return Err(lock_failure(LockError::Interrupted { host }));
            }
        }
        self.emit.emit(Event::LockAcquired {
            host: step.host.clone(),
        });
        if step.announce {
            self.output(&step.host, "Acquired the deploy lock\n".into(), false);
        }
        Ok(())
    }

    /// Release the lock; there being none is fine (and said when announced).
    pub(crate) async fn unlock(&self, step: &UnlockStep) -> Result<(), Failure> {
        let out = self
            .lock_send(&step.host, &step.command)
            .await
            .map_err(lock_failure)?;
        let existed = if out.success() {
            true
        } else if out.stderr.contains("No such file or directory") {
            false
        } else {
            return Err(lock_failure(LockError::Remote(RemoteError::failed(
                &step.host,
                &step.command.spec,
                &out,
            ))));
        };
        self.emit.emit(if existed {
            Event::LockReleased {
                host: step.host.clone(),
            }
        } else {
            Event::LockAbsent {
                host: step.host.clone(),
            }
        });
        if step.announce {
            let text = if existed {
                "Released the deploy lock\n"
            } else {
                "There is no deploy lock\n"
            };
            self.output(&step.host, text.into(), false);
        }
        Ok(())
    }

    /// Read the lock and say who holds it (with its age), or that there is none.
    pub(crate) async fn lock_status(&self, step: &LockStatusStep) -> Result<(), Failure> {
        let out = self
            .lock_send(&step.host, &step.command)
            .await
            .map_err(lock_failure)?;
        let text = if out.success() {
            let status = LockStatus::parse(&out.stdout);
            let now = chrono::Utc::now();
            let stale_after = Duration::from_secs(step.stale_after_seconds);
            let stale = if status.is_stale(now, stale_after) {
                format!(
                    "\nStale: no heartbeat for over {}s; release it with `{}`, or take it over with --break-stale-lock",
                    stale_after.as_secs(),
                    self.release_command
                )
            } else {
                String::new()
            };
            format!("{}{stale}\n", status.render(now))
        } else if out.stderr.contains("No such file or directory") {
            "There is no deploy lock\n".to_string()
        } else {
            return Err(lock_failure(LockError::Remote(RemoteError::failed(
                &step.host,
                &step.command.spec,
                &out,
            ))));
        };
        self.output(&step.host, text, false);
        Ok(())
    }
}

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
            format!(
                "{}\n",
                LockStatus::parse(&out.stdout).render(chrono::Utc::now())
            )
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

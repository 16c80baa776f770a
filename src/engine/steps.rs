//! The steps other than locks: hooks, local commands, hosts steps, boots in groups, the
//! read-back of what hosts run, and commands on this terminal. The run loop is in `mod.rs`.

use std::time::Instant;

use crate::hooks::{self, HookVar};
use crate::plan::{BootStep, HookStep, HostsStep, InteractiveStep, LocalStep, ReadBackStep};

use super::boot::Barrier;
use super::host::{SendError, Slots};
use super::{build, Engine, Event, Failure, HostFailure};

impl Engine<'_> {
    pub(super) async fn hook(&self, step: &HookStep) -> Result<(), Failure> {
        let Some(path) = hooks::find_hook(&self.root, &self.config.hooks_path, &step.hook) else {
            return Ok(());
        };
        self.emit.emit(Event::HookStarted {
            hook: step.hook.clone(),
        });
        let mut slots = Slots {
            runtime: self.started.elapsed().as_secs(),
            ..Slots::default()
        };
        let env: Vec<HookVar> = step
            .env
            .iter()
            .map(|v| HookVar {
                value: slots
                    .fill_text(&v.value)
                    .unwrap_or_else(|_| v.value.clone()),
                ..v.clone()
            })
            .collect();
        let started = Instant::now();
        let emit = self.emit.clone();
        let name = step.hook.clone();
        let limits = hooks::HookLimits {
            timeout: self.config.hook_timeout.map(std::time::Duration::from_secs),
            stop: Some(self.cancel.0.subscribe()),
        };
        let result = hooks::run_hook(&step.hook, &path, &self.root, &env, &limits, |line| {
            emit.emit(Event::HookOutput {
                hook: name.clone(),
                line: line.to_string(),
            })
        })
        .await;
        let exit_code = match &result {
            Ok(_) => Some(0),
            Err(hooks::HookError::Failed { status, .. }) => status
                .strip_prefix("exit status ")
                .and_then(|c| c.parse().ok()),
            Err(_) => None,
        };
        self.emit.emit(Event::HookFinished {
            hook: step.hook.clone(),
            exit_code,
            seconds: started.elapsed().as_secs_f64(),
        });
        match result {
            // Interrupted: the run ends as interrupted, not as the hook's failure.
            Ok(_) | Err(hooks::HookError::Interrupted { .. }) => Ok(()),
            Err(e) => Err(e),
        }
        .map_err(|e| Failure::Hook {
            hook: step.hook.clone(),
            message: e.to_string(),
            hint: crate::error::Diagnostic::hint(&e),
        })
    }

    pub(super) async fn local(&self, stage: &str, step: &LocalStep) -> Result<(), HostFailure> {
        let started = Instant::now();
        self.emit.emit(Event::HostStepStarted {
            host: step.label.clone(),
            role: None,
            step: stage.to_string(),
        });
        let result = async {
            let dir = match &step.build_dir {
                Some(crate::plan::BuildDir::CloneOfHead) => {
                    build::prepare(self.config, &self.root)
                        .await
                        .map_err(|m| {
                            HostFailure::new(
                                stage,
                                &step.label,
                                None,
                                "prepare the build directory",
                                m,
                            )
                        })?
                        .dir
                }
                _ => self.root.clone(),
            };
            if let Some(eb) = &step.ensure_builder {
                build::ensure_builder(self, stage, &step.label, eb, &dir).await?;
            }
            build::run_commands(self, stage, step, &dir).await
        }
        .await;
        self.emit.emit(Event::HostStepFinished {
            host: step.label.clone(),
            role: None,
            step: stage.to_string(),
            ok: result.is_ok(),
            seconds: started.elapsed().as_secs_f64(),
            error: result.as_ref().err().map(|e| e.message.clone()),
        });
        result
    }

    /// One hosts step: every host in parallel; each host's failure kept, in host order.
    pub(super) async fn hosts(&self, stage: &str, step: &HostsStep) -> Vec<HostFailure> {
        let futures = step.hosts.iter().map(|hc| async move {
            let started = Instant::now();
            self.emit.emit(Event::HostStepStarted {
                host: hc.host.clone(),
                role: None,
                step: stage.to_string(),
            });
            let mut slots = self.host_slots(&hc.host);
            let result = match &step.tunnel {
                None => {
                    self.run_commands(stage, &hc.host, None, &hc.commands, &mut slots)
                        .await
                }
                Some(tunnel) => {
                    self.through_tunnel(stage, &hc.host, tunnel, &hc.commands, &mut slots)
                        .await
                }
            };
            self.keep_slots(&hc.host, slots);
            self.emit.emit(Event::HostStepFinished {
                host: hc.host.clone(),
                role: None,
                step: stage.to_string(),
                ok: result.is_ok(),
                seconds: started.elapsed().as_secs_f64(),
                error: result.as_ref().err().map(|e| e.message.clone()),
            });
            result.err()
        });
        crate::remote::fanout::join_all(futures.collect())
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// `commands` on `host` with `tunnel` open: opened first (a failure fails the host before
    /// any command), closed after the last command whatever its result. A close that fails is
    /// reported and ignored: the host's connection, which holds the tunnel, ends with the run.
    async fn through_tunnel(
        &self,
        stage: &str,
        host: &str,
        tunnel: &crate::remote::Tunnel,
        commands: &[crate::plan::PlannedCommand],
        slots: &mut Slots,
    ) -> Result<(), HostFailure> {
        self.emit.emit(Event::CommandStarted {
            host: host.to_string(),
            purpose: "open the tunnel to this machine".into(),
            line: format!("ssh -O forward {}", tunnel.forward_arg()),
        });
        if let Err(e) = self.remote.open_tunnel(host, tunnel).await {
            return Err(HostFailure::remote(stage, None, &e).with_hint(format!(
                "the host pulls from this machine through this tunnel; check that {}:{} is free on {host} and that its sshd allows TCP forwarding (`AllowTcpForwarding`)",
                tunnel.remote_host, tunnel.remote_port
            )));
        }
        let result = self.run_commands(stage, host, None, commands, slots).await;
        self.emit.emit(Event::CommandStarted {
            host: host.to_string(),
            purpose: "close the tunnel to this machine".into(),
            line: format!("ssh -O cancel {}", tunnel.forward_arg()),
        });
        if let Err(e) = self.remote.close_tunnel(host, tunnel).await {
            self.emit.emit(Event::CommandIgnored {
                host: host.to_string(),
                purpose: "close the tunnel to this machine".into(),
                stderr: e.to_string(),
            });
        }
        result
    }

    /// Boot one group: hosts in parallel, roles one after another on each host, or all at once
    /// with `boot.parallel_roles` (Kamal's `on_roles(..., parallel:)`).
    /// The failures, and the boots that succeeded with the version each role ran before.
    pub(super) async fn boot_group<'s>(
        &self,
        stage: &str,
        group: &[&'s BootStep],
        barrier: &Barrier,
    ) -> (Vec<HostFailure>, Vec<(&'s BootStep, String)>) {
        let mut by_host: Vec<(&str, Vec<&BootStep>)> = Vec::new();
        for step in group {
            match by_host.iter_mut().find(|(h, _)| *h == step.host) {
                Some((_, steps)) if !step.parallel_roles => steps.push(step),
                _ => by_host.push((&step.host, vec![step])),
            }
        }
        let futures = by_host.into_iter().map(|(host, steps)| async move {
            let mut failed = Vec::new();
            let mut switched = Vec::new();
            for step in steps {
                if self.cancel.is_cancelled() {
                    break;
                }
                let started = Instant::now();
                self.emit.emit(Event::HostStepStarted {
                    host: host.to_string(),
                    role: Some(step.role.clone()),
                    step: "boot".into(),
                });
                let result = self.boot(stage, step, barrier).await;
                self.emit.emit(Event::HostStepFinished {
                    host: host.to_string(),
                    role: Some(step.role.clone()),
                    step: "boot".into(),
                    ok: result.is_ok(),
                    seconds: started.elapsed().as_secs_f64(),
                    error: result.as_ref().err().map(|e| e.message.clone()),
                });
                match result {
                    Ok(before) => switched.push((step, before)),
                    // Later roles on this host: the barrier decides for them.
                    Err(e) => failed.push(e),
                }
            }
            (failed, switched)
        });
        let mut failures = Vec::new();
        let mut switched = Vec::new();
        for (f, s) in crate::remote::fanout::join_all(futures.collect()).await {
            failures.extend(f);
            switched.extend(s);
        }
        (failures, switched)
    }

    /// All or nothing: switch every boot that succeeded back to the version its role ran
    /// before (by its plan's revert boot), hosts in parallel. A role that ran nothing before
    /// (a first deploy) is left as it is and said so. Each revert is reported.
    pub(super) async fn revert(&self, switched: &[(&BootStep, String)]) -> Vec<Reverted> {
        let version = self.plan.release.as_ref().map(|r| r.version.as_str());
        let futures = switched.iter().map(|(step, before)| async move {
            let revert = step.revert.as_deref()?;
            if before.is_empty() || Some(before.as_str()) == version {
                return None;
            }
            let result = self
                .boot_commands("revert", revert, Slots::before(before), &|| {})
                .await
                .map(|_| ())
                .map_err(|mut f| {
                    f.message = format!(
                        "reverting {} on {} to {before} failed: {}",
                        step.role, step.host, f.message
                    );
                    f.with_hint(format!(
                        "finish by hand: `dray rollback {before} --hosts {} --roles {}`",
                        step.host, step.role
                    ))
                });
            self.emit.emit(Event::Reverted {
                host: step.host.clone(),
                role: step.role.clone(),
                version: before.clone(),
                ok: result.is_ok(),
                error: result.as_ref().err().map(|f| f.message.clone()),
            });
            Some(Reverted {
                host: step.host.clone(),
                role: step.role.clone(),
                result,
            })
        });
        crate::remote::fanout::join_all(futures.collect())
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// What every host and role runs now, read from the hosts.
    pub(super) async fn read_back(
        &self,
        step: &ReadBackStep,
    ) -> Vec<(String, String, Option<String>)> {
        let futures = step.rows.iter().map(|row| async move {
            let key = (row.host.clone(), row.role.clone());
            let read = self.read.lock().ok().and_then(|m| m.get(&key).cloned());
            if let Some(running) = read {
                return (key.0, key.1, running);
            }
            let mut slots = Slots::default();
            let running = match self.send(&row.host, &row.command, &mut slots).await {
                Ok((_, out)) if out.success() => Some(out.stdout.trim().to_string()),
                _ => None,
            }
            .filter(|v| !v.is_empty());
            (row.host.clone(), row.role.clone(), running)
        });
        crate::remote::fanout::join_all(futures.collect()).await
    }

    pub(super) async fn interactive(
        &self,
        stage: &str,
        step: &InteractiveStep,
    ) -> Result<(), HostFailure> {
        let mut slots = self.host_slots(&step.host);
        let spec = slots.fill(&step.command.spec).map_err(|h| {
            SendError::Unfilled(h).into_failure(stage, &step.host, None, &step.command)
        })?;
        self.emit.emit(Event::CommandStarted {
            host: step.host.clone(),
            purpose: spec.purpose.clone(),
            line: spec.to_shell_redacted(),
        });
        let status = self
            .remote
            .interactive(&step.host, &spec.to_shell())
            .await
            .map_err(|e| HostFailure::remote(stage, None, &e))?;
        match status {
            Some(0) => Ok(()),
            code => {
                let mut f = HostFailure::new(
                    stage,
                    &step.host,
                    None,
                    &spec.purpose,
                    format!(
                        "{} exited {}",
                        spec.purpose,
                        code.map(|c| c.to_string())
                            .unwrap_or_else(|| "on a signal".into())
                    ),
                );
                f.exit = code;
                Err(f)
            }
        }
    }
}

/// A host and role switched back to the version it ran before the release.
#[derive(Debug, Clone)]
pub(super) struct Reverted {
    pub(super) host: String,
    pub(super) role: String,
    pub(super) result: Result<(), HostFailure>,
}

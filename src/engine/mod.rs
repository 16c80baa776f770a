//! The engine: executes a [`Plan`] stage by stage through one `match` on its steps, fans host
//! work out in parallel (results in stable host order), runs hooks locally with the frozen
//! release, and reports everything as [`Event`]s. It never prints.
//!
//! Cancellation is designed in: [`CancelHandle::cancel`] (the first ctrl-c) stops new work from
//! starting; steps in flight finish; the lock is released; the run ends with exit code 130.

pub mod boot;
pub mod build;
pub mod events;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;

use crate::config::model::Credential;
use crate::config::secrets::Secrets;
use crate::config::Config;
use crate::docker::{self, app::App};
use crate::error::ExitCode;
use crate::hooks::{self, HookContext};
use crate::plan::{BootStep, HookStep, HostAction, LocalAction, Plan, Step};
use crate::remote::{Remote, RemoteError};
use crate::report::Reporter;

use boot::{Barrier, BootContext};
pub use events::Event;

/// Sends events to the reporter.
#[derive(Clone)]
pub struct Emitter {
    reporter: Arc<Mutex<Box<dyn Reporter>>>,
}

impl Emitter {
    /// An emitter feeding `reporter`.
    pub fn new(reporter: Box<dyn Reporter>) -> Self {
        Emitter {
            reporter: Arc::new(Mutex::new(reporter)),
        }
    }

    /// Report one event.
    pub fn emit(&self, event: Event) {
        if let Ok(mut r) = self.reporter.lock() {
            r.emit(&event);
        }
    }
}

/// Asks a running engine to stop starting new work.
#[derive(Clone, Debug)]
pub struct CancelHandle(Arc<watch::Sender<bool>>);

impl CancelHandle {
    /// Stop starting new work; in-flight steps finish, the lock is released.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    /// Whether cancellation was asked for.
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }
}

/// What the engine needs besides the plan.
pub struct Engine<'a> {
    /// The plan to execute.
    pub plan: &'a Plan,
    /// The configuration.
    pub config: &'a Config,
    /// Secret values (env files, registry login, hooks that get them).
    pub secrets: &'a Secrets,
    /// Runs commands on hosts.
    pub remote: Arc<dyn Remote>,
    /// The project root: hooks and builds run here.
    pub root: PathBuf,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--lock-wait`: how long and how often to retry a held lock.
    pub lock_wait: Option<crate::lock::LockWait>,
    /// Where events go.
    pub emit: Emitter,
    cancel: CancelHandle,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The process exit code.
    pub exit: ExitCode,
    /// The first error, rendered.
    pub error: Option<String>,
}

struct Failure(String);

impl<'a> Engine<'a> {
    /// An engine for `plan`.
    pub fn new(
        plan: &'a Plan,
        config: &'a Config,
        secrets: &'a Secrets,
        remote: Arc<dyn Remote>,
        root: PathBuf,
        emit: Emitter,
    ) -> Self {
        Engine {
            plan,
            config,
            secrets,
            remote,
            root,
            no_cache: false,
            lock_wait: None,
            emit,
            cancel: CancelHandle(Arc::new(watch::channel(false).0)),
        }
    }

    /// A handle to cancel this run (first ctrl-c).
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Execute the plan.
    pub async fn run(&self) -> Outcome {
        let started = Instant::now();
        let release = &self.plan.release;
        self.emit.emit(Event::RunStarted {
            command: self.plan.command.name().to_string(),
            version: release.version.clone(),
            image: release.image.clone(),
            hosts: self.plan.targets.hosts.clone(),
            roles: self.plan.targets.roles.clone(),
        });
        let barrier = Barrier::default();
        let mut connected = false;
        let mut failure: Option<String> = None;
        let mut failed_boots: Vec<(String, String, String)> = Vec::new();
        let mut lock_taken = false;
        let mut cancelled = false;

        for stage in &self.plan.stages {
            let is_unlock = stage
                .steps
                .iter()
                .any(|s| matches!(s, Step::Hosts(h) if h.action == HostAction::LockRelease));
            if failure.is_some() || cancelled {
                // After a failure or ctrl-c only the unlock still runs.
                if !(is_unlock && lock_taken) {
                    continue;
                }
            } else if self.cancel.is_cancelled() {
                cancelled = true;
                if !(is_unlock && lock_taken) {
                    continue;
                }
            }
            if !connected && stage.name != "connect" {
                // Connect first, fail fast: every targeted host, in parallel, right after
                // pre-connect and before the long local work.
                connected = true;
                if let Err(unreachable) = self.remote.connect_all(&self.plan.targets.hosts).await {
                    failure = Some(unreachable.to_string());
                    continue;
                }
            }
            let stage_started = Instant::now();
            self.emit.emit(Event::StageStarted {
                stage: stage.name.clone(),
            });
            let mut stage_ok = true;
            let mut steps = stage.steps.iter().peekable();
            while let Some(step) = steps.next() {
                if failure.is_some() && !is_unlock {
                    break;
                }
                if self.cancel.is_cancelled() && !is_unlock {
                    cancelled = true;
                    break;
                }
                let result = match step {
                    Step::Hook(h) => {
                        let runtime = started.elapsed().as_secs();
                        self.hook(h, runtime).await
                    }
                    Step::Local(l) => match l.action {
                        LocalAction::Build => self.build().await,
                    },
                    Step::Hosts(h) => {
                        let r = self
                            .hosts(h.action, h.hosts.iter().map(|c| c.host.as_str()))
                            .await;
                        if r.is_ok() {
                            match h.action {
                                HostAction::LockAcquire => lock_taken = true,
                                HostAction::LockRelease => lock_taken = false,
                                _ => {}
                            }
                        }
                        r
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
                        let failed = self.boot_group(&group, &barrier).await;
                        if failed.is_empty() {
                            Ok(())
                        } else {
                            let msg = failed
                                .iter()
                                .map(|(h, r, e)| format!("{r} on {h}: {e}"))
                                .collect::<Vec<_>>()
                                .join("\n");
                            failed_boots.extend(failed);
                            Err(Failure(msg))
                        }
                    }
                    Step::Wait(w) => {
                        tokio::time::sleep(std::time::Duration::from_secs(w.seconds)).await;
                        Ok(())
                    }
                };
                if let Err(Failure(msg)) = result {
                    stage_ok = false;
                    if failure.is_none() {
                        failure = Some(msg);
                    }
                }
            }
            self.emit.emit(Event::StageFinished {
                stage: stage.name.clone(),
                seconds: stage_started.elapsed().as_secs_f64(),
                ok: stage_ok,
            });
        }

        if lock_taken {
            // A failure before the unlock stage ran (or no unlock stage reached): release.
            let _ = self
                .hosts(
                    HostAction::LockRelease,
                    std::iter::once(self.plan.targets.primary_host.as_str()),
                )
                .await;
        }

        let any_ok = self.report_results(&failed_boots).await;
        self.remote.close().await;
        let exit = if cancelled {
            ExitCode::Interrupted
        } else if failure.is_none() {
            ExitCode::Success
        } else if any_ok && !failed_boots.is_empty() {
            ExitCode::Partial
        } else {
            ExitCode::Failure
        };
        self.emit.emit(Event::RunFinished {
            ok: failure.is_none() && !cancelled,
            seconds: started.elapsed().as_secs_f64(),
            exit_code: exit.code(),
            error: failure.clone(),
        });
        Outcome {
            exit,
            error: failure.or(cancelled.then(|| "interrupted".to_string())),
        }
    }

    async fn hook(&self, step: &HookStep, runtime: u64) -> Result<(), Failure> {
        let Some(path) = hooks::find_hook(&self.root, &self.config.hooks_path, &step.hook) else {
            return Ok(());
        };
        self.emit.emit(Event::HookStarted {
            hook: step.hook.clone(),
        });
        let hosts: Vec<String> = step
            .env
            .iter()
            .find(|v| v.name == "KAMAL_HOSTS")
            .map(|v| v.value.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        let roles = self
            .plan
            .targets
            .roles_filtered
            .then_some(self.plan.targets.roles.as_slice());
        let lock = step
            .env
            .iter()
            .any(|v| v.name == "KAMAL_LOCK" && v.value == "true");
        let ctx = HookContext {
            release: &self.plan.release,
            command: self.plan.command.name(),
            subcommand: self.plan.command.subcommand(),
            hosts: &hosts,
            roles,
            lock,
            runtime: Some(runtime),
        };
        let env = hooks::hook_env(&step.hook, &ctx, self.secrets.iter());
        let started = Instant::now();
        let emit = self.emit.clone();
        let name = step.hook.clone();
        let result = hooks::run_hook(&step.hook, &path, &self.root, &env, |line| {
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
        result.map(|_| ()).map_err(|e| {
            let hint = crate::error::Diagnostic::hint(&e)
                .map(|h| format!("\nhint: {h}"))
                .unwrap_or_default();
            Failure(format!("{e}{hint}"))
        })
    }

    async fn build(&self) -> Result<(), Failure> {
        let started = Instant::now();
        self.emit.emit(Event::HostStepStarted {
            host: "localhost".into(),
            role: None,
            step: "build".into(),
        });
        let result = async {
            let dir = build::prepare(self.config, &self.root).await?;
            let mut secrets = Vec::new();
            for name in &self.config.builder.secrets {
                let value = self.secrets.get(name).map_err(|e| e.to_string())?;
                secrets.push((name.clone(), value.to_string()));
            }
            build::build_and_push(
                self.config,
                &self.plan.release,
                &dir,
                self.no_cache,
                &secrets,
            )
            .await
            .map_err(|e| e.to_string())
        }
        .await;
        self.emit.emit(Event::HostStepFinished {
            host: "localhost".into(),
            role: None,
            step: "build".into(),
            ok: result.is_ok(),
            seconds: started.elapsed().as_secs_f64(),
            error: result.as_ref().err().cloned(),
        });
        result.map(|_| ()).map_err(Failure)
    }

    fn credential(&self, c: &Option<Credential>) -> Result<String, String> {
        match c {
            Some(Credential::Value(v)) => Ok(v.clone()),
            Some(Credential::Secret(name)) => self
                .secrets
                .get(name)
                .map(str::to_string)
                .map_err(|e| e.to_string()),
            None => Ok(String::new()),
        }
    }

    /// One action on each host, in parallel; failures reported per host.
    async fn hosts<'h>(
        &self,
        action: HostAction,
        hosts: impl Iterator<Item = &'h str>,
    ) -> Result<(), Failure> {
        let hosts: Vec<&str> = hosts.collect();
        let futures = hosts.iter().map(|host| async move {
            let started = Instant::now();
            let step = format!("{action:?}").to_lowercase();
            self.emit.emit(Event::HostStepStarted {
                host: host.to_string(),
                role: None,
                step: step.clone(),
            });
            let result = self.host_action(action, host).await;
            self.emit.emit(Event::HostStepFinished {
                host: host.to_string(),
                role: None,
                step,
                ok: result.is_ok(),
                seconds: started.elapsed().as_secs_f64(),
                error: result.as_ref().err().cloned(),
            });
            (host.to_string(), result)
        });
        let results = futures_join_all(futures).await;
        let errors: Vec<String> = results
            .into_iter()
            .filter_map(|(h, r)| r.err().map(|e| format!("[{h}] {e}")))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Failure(errors.join("\n")))
        }
    }

    async fn host_action(&self, action: HostAction, host: &str) -> Result<(), String> {
        let config = self.config;
        let release = &self.plan.release;
        let remote = &*self.remote;
        let checked = |cmd: crate::command::CommandSpec| async move {
            remote
                .run_checked(host, &cmd)
                .await
                .map_err(|e: RemoteError| e.to_string())
        };
        match action {
            HostAction::Pull => {
                // One round trip: login (password on stdin), drop the old copy, pull, check the
                // `service` label, audit.
                let user = self.credential(&config.registry.username)?;
                let password = self.credential(&config.registry.password)?;
                let login = docker::registry::login(&config.registry, &user, &password, host);
                let line = docker::audit::AuditLine {
                    recorded_at: crate::release::format_recorded_at(chrono::Utc::now()),
                    performer: release.performer.clone(),
                    destination: config.destination.clone(),
                    role: None,
                    message: format!("Pulled image with version {}", release.version),
                };
                let rest = format!(
                    "{} > /dev/null 2>&1 || true\n{} > /dev/null\n{} > /dev/null\n{}",
                    docker::registry::remove_image(config, &release.version, host).to_shell(),
                    docker::registry::pull(config, &release.version, host).to_shell(),
                    docker::registry::validate_image(config, &release.version, host).to_shell(),
                    docker::audit::record(config, host, &line).to_shell(),
                );
                // The script as run, and as shown in errors (the username redacted).
                let (script, shown) = match &login {
                    Some(l) => (
                        format!("set -e\n{} > /dev/null\n{rest}", l.to_shell()),
                        format!("set -e\n{} > /dev/null\n{rest}", l.to_shell_redacted()),
                    ),
                    None => (format!("set -e\n{rest}"), format!("set -e\n{rest}")),
                };
                let mut cmd = crate::command::CommandSpec::new(
                    format!("pull {} on {host}", release.image),
                    "sh",
                )
                .arg("-c")
                .arg_sensitive(script, shown);
                cmd.stdin = login.and_then(|l| l.stdin);
                checked(cmd).await.map(|_| ())
            }
            HostAction::LockAcquire => {
                for h in &self.plan.targets.hosts {
                    let _ = remote
                        .run(h, &docker::lock::ensure_locks_directory(h))
                        .await;
                }
                let details = crate::lock::details(
                    &crate::release::lock_performer(&self.root),
                    &release.version,
                    docker::lock::AUTOMATIC_MESSAGE,
                );
                let emit = self.emit.clone();
                let on_wait = move |status: &crate::lock::LockStatus| {
                    emit.emit(Event::Warning {
                        message: format!("waiting for the deploy lock:\n{}", status.text),
                    })
                };
                crate::lock::acquire(remote, config, host, &details, self.lock_wait, &on_wait)
                    .await
                    .map_err(|e| {
                        let hint = crate::error::Diagnostic::hint(&e)
                            .map(|h| format!("\nhint: {h}"))
                            .unwrap_or_default();
                        format!("{e}{hint}")
                    })?;
                self.emit.emit(Event::LockAcquired {
                    host: host.to_string(),
                });
                Ok(())
            }
            HostAction::LockRelease => {
                crate::lock::release(remote, config, host)
                    .await
                    .map_err(|e| e.to_string())?;
                self.emit.emit(Event::LockReleased {
                    host: host.to_string(),
                });
                Ok(())
            }
            HostAction::CheckVersion => {
                for role in self.plan.targets.roles_on(config, host) {
                    let Some(role) = config.role(role) else {
                        continue;
                    };
                    let out = checked(App::new(config, role, host).container_id(&release.version))
                        .await?;
                    if out.stdout.trim().is_empty() {
                        return Err(format!(
                            "the app version '{}' is not available as a container on {host} (use 'dray app containers' for available versions)",
                            release.version
                        ));
                    }
                }
                Ok(())
            }
            HostAction::ProxyBoot => {
                let needs_proxy = self
                    .plan
                    .targets
                    .roles_on(config, host)
                    .iter()
                    .any(|r| config.role(r).is_some_and(|r| r.runs_proxy()));
                // One round trip: the network ("already exists" is fine, as for Kamal), and
                // where a role needs it the proxy, started or run; a concurrent deploy may have
                // started it meanwhile (its name taken): fine if it runs now.
                let mut script = format!(
                    "{} > /dev/null 2>&1 || true",
                    docker::proxy::create_network(host).to_shell()
                );
                if needs_proxy {
                    // Retried: two deploys booting the same host's proxy race on its name (one
                    // creates it while the other's `run` fails); the retry finds it and starts it.
                    script.push_str(&format!(
                        "\n{} || exit 1\nn=0\nuntil out=$({} 2>&1); do\n  n=$((n + 1))\n  [ \"$n\" -lt 5 ] || {{ printf '%s\\n' \"$out\" >&2; exit 1; }}\n  sleep 1\ndone",
                        docker::proxy::ensure_apps_config_directory(host).to_shell(),
                        docker::proxy::boot(docker::proxy::run_config_for(config, host), host)
                            .to_shell(),
                    ));
                }
                let cmd =
                    crate::command::CommandSpec::new(format!("boot the proxy on {host}"), "sh")
                        .arg("-c")
                        .arg(script);
                checked(cmd).await.map(|_| ())
            }
            HostAction::StaleContainers => {
                for role in self.plan.targets.roles_on(config, host) {
                    let Some(role) = config.role(role) else {
                        continue;
                    };
                    // Stale: running containers other than the current (newest running) one,
                    // as Kamal's `app stale_containers --stop`.
                    let app = App::new(config, role, host);
                    let current = checked(app.current_running_version()).await?;
                    let current = current.stdout.trim();
                    let out = checked(app.list_versions()).await?;
                    for version in out.stdout.lines().map(str::trim) {
                        if !version.is_empty() && version != current {
                            let _ = remote.run(host, &app.stop(Some(version))).await;
                        }
                    }
                }
                Ok(())
            }
            HostAction::TagLatest => {
                self.audit(
                    host,
                    None,
                    format!("Tagging {} as the latest image", release.image),
                )
                .await;
                checked(docker::app::tag_latest(config, &release.version, host))
                    .await
                    .map(|_| ())
            }
            HostAction::Prune => {
                // One round trip for the three prune commands.
                let script = docker::prune::all(config, host)
                    .iter()
                    .map(|c| c.to_shell())
                    .collect::<Vec<_>>()
                    .join(" && ");
                let cmd = crate::command::CommandSpec::new(format!("prune on {host}"), "sh")
                    .arg("-c")
                    .arg(script);
                checked(cmd).await.map(|_| ())
            }
        }
    }

    async fn audit(&self, host: &str, role: Option<&str>, message: String) {
        let line = docker::audit::AuditLine {
            recorded_at: crate::release::format_recorded_at(chrono::Utc::now()),
            performer: self.plan.release.performer.clone(),
            destination: self.config.destination.clone(),
            role: role.map(str::to_string),
            message,
        };
        let _ = self
            .remote
            .run(host, &docker::audit::record(self.config, host, &line))
            .await;
    }

    /// Boot one group: hosts in parallel, roles one after another on each host.
    async fn boot_group(
        &self,
        group: &[&BootStep],
        barrier: &Barrier,
    ) -> Vec<(String, String, String)> {
        let mut by_host: Vec<(&str, Vec<&BootStep>)> = Vec::new();
        for step in group {
            match by_host.iter_mut().find(|(h, _)| *h == step.host) {
                Some((_, steps)) => steps.push(step),
                None => by_host.push((&step.host, vec![step])),
            }
        }
        let primary_role = self.plan.targets.roles.first().cloned().unwrap_or_default();
        let futures = by_host.into_iter().map(|(host, steps)| {
            let primary_role = primary_role.clone();
            async move {
                let mut failed = Vec::new();
                for step in steps {
                    if self.cancel.is_cancelled() {
                        break;
                    }
                    let Some(role) = self.config.role(&step.role) else {
                        continue;
                    };
                    let started = Instant::now();
                    self.emit.emit(Event::HostStepStarted {
                        host: host.to_string(),
                        role: Some(role.name.clone()),
                        step: "boot".into(),
                    });
                    let ctx = BootContext {
                        config: self.config,
                        role,
                        host,
                        release: &self.plan.release,
                        secrets: self.secrets,
                        remote: &*self.remote,
                        primary: role.name == primary_role,
                        barrier,
                        emit: &self.emit,
                    };
                    let result = ctx.run().await;
                    self.emit.emit(Event::HostStepFinished {
                        host: host.to_string(),
                        role: Some(role.name.clone()),
                        step: "boot".into(),
                        ok: result.is_ok(),
                        seconds: started.elapsed().as_secs_f64(),
                        error: result.as_ref().err().cloned(),
                    });
                    if let Err(e) = result {
                        failed.push((host.to_string(), role.name.clone(), e));
                        // Later roles on this host: the barrier decides for them.
                    }
                }
                failed
            }
        });
        futures_join_all(futures)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Read back what every targeted host runs now and report it; `true` if any host reached
    /// the new version.
    async fn report_results(&self, failed: &[(String, String, String)]) -> bool {
        let mut any_ok = false;
        let config = self.config;
        let futures = self.plan.targets.hosts.iter().map(|host| async move {
            let mut rows = Vec::new();
            for role in self.plan.targets.roles_on(config, host) {
                let Some(r) = config.role(role) else { continue };
                let running = self
                    .remote
                    .run(host, &App::new(config, r, host).current_running_version())
                    .await
                    .ok()
                    .map(|o| o.stdout.trim().to_string())
                    .filter(|v| !v.is_empty());
                rows.push((host.clone(), role.to_string(), running));
            }
            rows
        });
        for (host, role, running) in futures_join_all(futures).await.into_iter().flatten() {
            let error = failed
                .iter()
                .find(|(h, r, _)| *h == host && *r == role)
                .map(|(_, _, e)| e.clone());
            let ok = error.is_none() && running.as_deref() == Some(&self.plan.release.version);
            any_ok |= ok;
            self.emit.emit(Event::HostResult {
                host,
                role,
                version: running,
                ok,
                error,
            });
        }
        any_ok
    }
}

/// Await every future, keeping their order (a small `join_all` without another dependency).
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut outputs: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, fut) in set.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

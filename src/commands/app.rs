//! `dray app …` (Kamal's `lib/kamal/cli/app.rb`): boot, start, stop, details, containers,
//! images, version, logs, exec, remove, stale_containers, live, maintenance.
//!
//! Every command works per targeted host and, on a host, per targeted role (primary role
//! first). Output is `[host]`-prefixed and printed in host order once every host answered.
//! Commands that change the servers take the deploy lock as Kamal does (`KAMAL_LOCK=true`: a
//! parent holds it) and write Kamal's audit lines. [`Session`] is shared with `prune` and
//! `registry`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{AppCommand, AppExecArgs, AppLogsArgs, GlobalOptions, OutputFormat};
use crate::command::CommandSpec;
use crate::config::model::Role;
use crate::config::{Config, LoadOptions};
use crate::docker::app::{App, ExecOptions, Interactive, LogsOptions};
use crate::engine::boot::random_hex;
use crate::error::{Error, ExitCode, Result};
use crate::lock::{LockGuard, LockRequest, LockStatus, LockWait};
use crate::plan::Targets;
use crate::release::Release;
use crate::remote::{Remote, SshRemote};

use super::server::{remote, runtime, targets};
use super::{load_config, resolve_release};

/// What one host printed, or why it failed.
pub(crate) type HostReport = (String, std::result::Result<String, String>);

/// One run of a remote command: configuration, targets, the SSH remote and a runtime.
pub(crate) struct Session<'g> {
    /// The global options.
    pub global: &'g GlobalOptions,
    /// The loaded configuration.
    pub config: Config,
    /// How it was loaded (working directory, environment).
    pub opts: LoadOptions,
    /// The targeted hosts and roles.
    pub targets: Targets,
    /// The run's SSH remote.
    pub remote: Arc<SshRemote>,
    rt: tokio::runtime::Runtime,
    release: Option<Release>,
}

impl<'g> Session<'g> {
    /// Load the configuration and targets; nothing is connected yet.
    pub fn new(global: &'g GlobalOptions) -> Result<Session<'g>> {
        let (config, opts) = load_config(global)?;
        let targets = targets(&config, global)?;
        let remote = remote(&config, &opts)?;
        Ok(Session {
            global,
            config,
            opts,
            targets,
            remote,
            rt: runtime()?,
            release: None,
        })
    }

    /// The run's release (version, performer, time), resolved once on first use.
    pub fn release(&mut self) -> Result<Release> {
        if let Some(r) = &self.release {
            return Ok(r.clone());
        }
        let resolved = resolve_release(self.global, &self.config, &self.opts)?;
        self.release = Some(resolved.release.clone());
        Ok(resolved.release)
    }

    /// Run `work` on the runtime after connecting to every targeted host (all unreachable hosts
    /// are named at once).
    pub fn block_on<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        self.rt.block_on(async {
            self.remote.connect_all(&self.targets.hosts).await?;
            work.await
        })
    }

    /// Run `work` holding the deploy lock on the primary host (unless `KAMAL_LOCK=true` says a
    /// parent holds it). The lock is released whether `work` succeeds or fails; a ctrl-c
    /// releases it at once and ends the command with exit 130.
    pub fn locked<T>(&self, release: &Release, work: impl Future<Output = Result<T>>) -> Result<T> {
        let details = crate::lock::details(
            &crate::release::lock_performer(&self.opts.cwd),
            &release.version,
            crate::docker::lock::AUTOMATIC_MESSAGE,
        );
        let inherited = crate::lock::inherited(&|k| self.opts.env.get(k).cloned());
        let wait = self.global.lock_wait.then(|| LockWait {
            timeout: Duration::from_secs(self.global.lock_wait_timeout),
            interval: Duration::from_secs(self.global.lock_wait_interval.max(1)),
        });
        let quiet = self.global.quiet;
        let on_wait = move |status: &LockStatus| {
            if !quiet {
                eprintln!(
                    "Deploy lock held, waiting:\n{}",
                    status.render(chrono::Utc::now())
                );
            }
        };
        let host = self.targets.primary_host.clone();
        let request = LockRequest {
            config: &self.config,
            host: &host,
            details: &details,
            wait,
            inherited,
        };
        let shared: Arc<dyn Remote> = self.remote.clone();
        self.block_on(async {
            let mut guard = LockGuard::acquire(shared, &request, &on_wait).await?;
            tokio::select! {
                result = work => {
                    let released = guard.release().await;
                    let value = result?;
                    released?;
                    Ok(value)
                }
                _ = guard.interrupted() => Err(Error::failure(format!(
                    "interrupted; the deploy lock on {host} was released"
                ))
                .with_exit(ExitCode::Interrupted)),
            }
        })
    }

    /// The targeted roles on `host`, primary role first.
    pub fn roles_on(&self, host: &str) -> Vec<&Role> {
        self.targets
            .roles_on(&self.config, host)
            .into_iter()
            .filter_map(|r| self.config.role(r))
            .collect()
    }

    /// Run `work(host)` on every targeted host at once; reports in host order.
    pub async fn each_host<'a, F, Fut>(&'a self, work: F) -> Vec<HostReport>
    where
        F: Fn(&'a str) -> Fut,
        Fut: Future<Output = std::result::Result<String, String>> + 'a,
    {
        let jobs: Vec<_> = self
            .targets
            .hosts
            .iter()
            .map(|host| {
                let job = work(host.as_str());
                async move { (host.clone(), job.await) }
            })
            .collect();
        crate::remote::fanout::join_all(jobs).await
    }

    fn trace(&self, host: &str, cmd: &CommandSpec) {
        if self.global.verbose {
            eprintln!("[{host}] $ {}", cmd.to_shell_redacted());
        }
    }

    /// Run `cmd` on `host`; its standard output, or the error naming host and command.
    pub async fn checked(
        &self,
        host: &str,
        cmd: &CommandSpec,
    ) -> std::result::Result<String, String> {
        self.trace(host, cmd);
        self.remote
            .run_checked(host, cmd)
            .await
            .map(|o| o.stdout)
            .map_err(|e| e.to_string())
    }

    /// Run `cmd` on `host`, ignoring a non-zero exit as Kamal does for this step (`-v` shows
    /// its standard error); its standard output when it succeeded.
    pub async fn lenient(&self, host: &str, cmd: &CommandSpec) -> Option<String> {
        self.trace(host, cmd);
        match self.remote.run(host, cmd).await {
            Ok(out) if out.success() => Some(out.stdout),
            Ok(out) => {
                if self.global.verbose {
                    eprint!("{}", crate::audit::prefixed(host, &out.stderr));
                }
                None
            }
            Err(e) => {
                if self.global.verbose {
                    eprintln!("[{host}] {e}");
                }
                None
            }
        }
    }

    /// Append an audit line on `host`.
    pub async fn audit(
        &self,
        host: &str,
        release: &Release,
        role: Option<&str>,
        message: String,
    ) -> std::result::Result<(), String> {
        let line = crate::audit::line(release, role, message);
        self.checked(
            host,
            &crate::docker::audit::record(&self.config, host, &line),
        )
        .await
        .map(|_| ())
    }

    /// Close the connections.
    pub fn close(&self) {
        self.rt.block_on(self.remote.close());
    }
}

/// Print each host's output `[host]`-prefixed, in host order; failed hosts make the error
/// (exit 1 when all failed, 3 when some succeeded).
pub(crate) fn report(reports: &[HostReport]) -> Result<()> {
    let mut failed = Vec::new();
    for (host, result) in reports {
        match result {
            Ok(text) => print!("{}", crate::audit::prefixed(host, text)),
            Err(e) => failed.push(e.clone()),
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    let exit = if failed.len() == reports.len() {
        ExitCode::Failure
    } else {
        ExitCode::Partial
    };
    Err(Error::failure(failed.join("\n")).with_exit(exit))
}

/// Run `dray app …`.
pub fn run(global: &GlobalOptions, command: &AppCommand) -> Result<()> {
    if let AppCommand::Boot = command {
        return boot(global);
    }
    let mut s = Session::new(global)?;
    let result = match command {
        AppCommand::Boot => Ok(()),
        AppCommand::Start => start(&mut s),
        AppCommand::Stop => {
            let release = s.release()?;
            s.locked(&release, async { report(&stop_all(&s, &release).await) })
        }
        AppCommand::Details => read_only(&s, |app| app.info()),
        AppCommand::Containers => read_only(&s, |app| app.list_containers()),
        AppCommand::Images => images(&s),
        AppCommand::Version => version(&s),
        AppCommand::Logs(args) => logs(&s, args),
        AppCommand::Exec(args) => exec(&mut s, args),
        AppCommand::Remove => remove(&mut s),
        AppCommand::StaleContainers { stop } => stale_containers(&mut s, *stop),
        AppCommand::Live => proxy_mode(&mut s, None),
        AppCommand::Maintenance {
            drain_timeout,
            message,
        } => {
            let drain = drain_timeout.unwrap_or(s.config.drain_timeout);
            proxy_mode(&mut s, Some((drain, message.clone())))
        }
    };
    s.close();
    result
}

/// `app boot`: the `AppBoot` plan (lock, boot groups with their hooks, tag latest, unlock) with
/// `--version`, else Kamal's `latest[-<destination>]` tag.
fn boot(global: &GlobalOptions) -> Result<()> {
    let mut global = global.clone();
    if global.version.is_none() {
        global.version = Some(match &global.destination {
            Some(d) => format!("latest-{d}"),
            None => "latest".to_string(),
        });
    }
    super::deploy::run(
        &global,
        &super::deploy::DeployRequest {
            kind: crate::plan::PlanKind::AppBoot,
            skip_push: true,
            no_cache: false,
            dry_run: false,
            output: OutputFormat::Human,
        },
    )
}

/// One read-only command per role on each host (`details`, `containers`).
fn read_only(s: &Session, build: impl Fn(&App) -> CommandSpec) -> Result<()> {
    let build = &build;
    s.block_on(async {
        let r = s
            .each_host(|host| async move {
                let mut text = String::new();
                for role in s.roles_on(host) {
                    text.push_str(
                        &s.checked(host, &build(&App::new(&s.config, role, host)))
                            .await?,
                    );
                }
                Ok(text)
            })
            .await;
        report(&r)
    })
}

/// `app images`: `docker image ls <repository>` on each host.
fn images(s: &Session) -> Result<()> {
    s.block_on(async {
        let r = s
            .each_host(|host| async move {
                s.checked(host, &crate::docker::app::list_images(&s.config, host))
                    .await
            })
            .await;
        report(&r)
    })
}

/// The version `role` runs on `host` (empty when none runs).
async fn running_version(s: &Session<'_>, app: &App<'_>) -> String {
    s.lenient(app.host, &app.current_running_version())
        .await
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `app version`: the version the first targeted role runs on each host.
fn version(s: &Session) -> Result<()> {
    s.block_on(async {
        let r = s
            .each_host(|host| async move {
                let Some(role) = s.roles_on(host).into_iter().next() else {
                    return Ok(String::new());
                };
                let app = App::new(&s.config, role, host);
                let out = s.checked(host, &app.current_running_version()).await?;
                let v = out.trim();
                Ok(if v.is_empty() {
                    format!("no {} container running\n", role.name)
                } else {
                    format!("{v}\n")
                })
            })
            .await;
        report(&r)
    })
}

/// `app start`: `docker start` the release's container of each role (a failure is ignored, as
/// in Kamal, and shown), then route proxy roles to it; audit "Started app version V".
fn start(s: &mut Session) -> Result<()> {
    let release = s.release()?;
    let s = &*s;
    let release = &release;
    s.locked(release, async {
        let r = s
            .each_host(|host| async move {
                let mut text = String::new();
                for role in s.roles_on(host) {
                    let app = App::new(&s.config, role, host);
                    s.audit(
                        host,
                        release,
                        None,
                        format!("Started app version {}", release.version),
                    )
                    .await?;
                    let cmd = app.start(&release.version);
                    s.trace(host, &cmd);
                    match s.remote.run(host, &cmd).await {
                        Ok(out) if out.success() => text.push_str(&format!(
                            "started {}\n",
                            app.container_name(&release.version)
                        )),
                        Ok(out) => text.push_str(&format!(
                            "could not start {}: {}\n",
                            app.container_name(&release.version),
                            out.stderr.trim()
                        )),
                        Err(e) => return Err(e.to_string()),
                    }
                    let version = running_version(s, &app).await;
                    if role.runs_proxy() && !version.is_empty() {
                        let id = s
                            .checked(host, &app.container_id(&version))
                            .await?
                            .trim()
                            .to_string();
                        if let Some(deploy) =
                            crate::docker::proxy::deploy(&s.config, role, &id, &version, host)
                        {
                            s.checked(host, &deploy).await?;
                        }
                    }
                }
                Ok(text)
            })
            .await;
        report(&r)
    })
}

/// `app stop` without the lock: per role, remove the proxy route, stop the current container
/// (failures ignored, as in Kamal); audit "Stopped app".
async fn stop_all(s: &Session<'_>, release: &Release) -> Vec<HostReport> {
    s.each_host(|host| async move {
        let mut text = String::new();
        for role in s.roles_on(host) {
            let app = App::new(&s.config, role, host);
            let version = running_version(s, &app).await;
            s.audit(host, release, Some(&role.name), "Stopped app".into())
                .await?;
            if role.runs_proxy() && !version.is_empty() {
                s.lenient(host, &crate::docker::proxy::remove(&s.config, role, host))
                    .await;
            }
            s.lenient(host, &app.stop(None)).await;
            if !version.is_empty() {
                text.push_str(&format!("stopped {}\n", app.container_name(&version)));
            }
        }
        Ok(text)
    })
    .await
}

/// `app logs`: the last lines of each role's current container on every host, or `-f`
/// following the primary host's over `ssh -t`.
fn logs(s: &Session, args: &AppLogsArgs) -> Result<()> {
    let unbounded = args.since.is_some() || args.grep.is_some();
    let default_lines = if args.follow { 10 } else { 100 };
    let opts = LogsOptions {
        container_id: args.container_id.clone(),
        timestamps: !args.skip_timestamps,
        since: args.since.clone(),
        lines: args.lines.or((!unbounded).then_some(default_lines)),
        grep: args.grep.clone(),
        grep_options: args.grep_options.clone(),
        follow: args.follow,
    };
    if args.follow {
        let host = s.targets.primary_host.clone();
        let Some(role) = s.roles_on(&host).into_iter().next() else {
            return Err(Error::usage(format!("no targeted role runs on {host}")));
        };
        let cmd = App::new(&s.config, role, &host).logs(&opts);
        if !s.global.quiet {
            eprintln!("Following logs on {host}...");
        }
        return interactive(s, &host, &cmd);
    }
    let opts = &opts;
    s.block_on(async {
        let r = s
            .each_host(|host| async move {
                let mut text = String::new();
                for role in s.roles_on(host) {
                    let cmd = App::new(&s.config, role, host).logs(opts);
                    match s.checked(host, &cmd).await {
                        Ok(out) => text.push_str(&out),
                        Err(_) => text.push_str("Nothing found\n"),
                    }
                }
                Ok(text)
            })
            .await;
        report(&r)
    })
}

/// Run `cmd` on `host` through `ssh -t`, attached to this terminal; its exit status is ours.
fn interactive(s: &Session, host: &str, cmd: &CommandSpec) -> Result<()> {
    if s.global.verbose {
        eprintln!("[{host}] $ {}", cmd.to_shell_redacted());
    }
    let mut ssh =
        s.rt.block_on(s.remote.interactive_command(host, &cmd.to_shell()))?;
    let status = ssh
        .status()
        .map_err(|e| Error::failure(format!("cannot run the local `ssh`: {e}")))?;
    match status.code() {
        Some(0) => Ok(()),
        code => Err(Error::failure(format!(
            "{} exited {}",
            cmd.purpose,
            code.map(|c| c.to_string())
                .unwrap_or_else(|| "on a signal".into())
        ))
        .with_exit(ExitCode::Failure)),
    }
}

/// `KEY=VALUE` pairs of `-e`.
fn env_pairs(env: &[String]) -> Result<Vec<(String, String)>> {
    env.iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Error::usage(format!("--env {pair}: expected KEY=VALUE"))
                .with_hint("e.g. `dray app exec -e RAILS_ENV=production 'bin/rails db:migrate'`")),
        })
        .collect()
}

/// `app exec`: in a new container of the running version (`--version` to choose, else
/// `latest[-D]` where none runs) or, with `--reuse`, in the running container; `-i` runs it over
/// `ssh -t` on the primary host. Audit "Executed cmd '<cmd>' on app version V".
fn exec(s: &mut Session, args: &AppExecArgs) -> Result<()> {
    if args.detach && (args.interactive || args.reuse) {
        return Err(
            Error::usage("--detach cannot be combined with --interactive or --reuse")
                .with_hint("--detach runs the command in a new container in the background"),
        );
    }
    let line = args.cmd.join(" ");
    let exec = ExecOptions {
        command: line.clone(),
        env: env_pairs(&args.env)?,
        interactive: if args.interactive {
            Interactive::Tty
        } else {
            Interactive::No
        },
        detach: args.detach,
    };
    let fixed = s.global.version.clone();
    let reuse = args.reuse;
    let latest = s.config.latest_tag();
    // The version to run on a host: `--version`, else the role's running version; a new
    // container falls back to the latest tag as Kamal does.
    let pick = |running: String, host: &str, role: &str| -> std::result::Result<String, String> {
        match (&fixed, running.is_empty(), reuse) {
            (Some(v), _, _) => Ok(v.clone()),
            (None, false, _) => Ok(running),
            (None, true, false) => Ok(latest.clone()),
            (None, true, true) => Err(format!(
                "no running {role} container on {host} to reuse (run `dray app containers`, or leave out --reuse)"
            )),
        }
    };
    let pick = &pick;
    if args.interactive {
        let host = s.targets.primary_host.clone();
        let Some(role) = s.roles_on(&host).into_iter().next() else {
            return Err(Error::usage(format!("no targeted role runs on {host}")));
        };
        let app = App::new(&s.config, role, &host);
        let version = s
            .block_on(async { Ok(running_version(s, &app).await) })
            .and_then(|v| pick(v, &host, &role.name).map_err(Error::failure))?;
        let cmd = if reuse {
            app.exec_existing(&version, &exec)
        } else {
            app.exec_new(&version, &random_hex(6), &exec)
        };
        if !s.global.quiet {
            eprintln!(
                "Launching interactive command with version {version} via SSH from {} container on {host}...",
                if reuse { "existing" } else { "new" }
            );
        }
        return interactive(s, &host, &cmd);
    }
    let release = s.release()?;
    let (s, release, exec, line) = (&*s, &release, &exec, &line);
    // Standard error of each host, printed in host order once every host finished.
    let stderr = std::sync::Mutex::new(std::collections::BTreeMap::<String, String>::new());
    let stderr = &stderr;
    let result = s.block_on(async {
        let r = s
            .each_host(|host| async move {
                let mut text = String::new();
                for role in s.roles_on(host) {
                    let app = App::new(&s.config, role, host);
                    let version = pick(running_version(s, &app).await, host, &role.name)?;
                    let tag = reuse.then_some(role.name.as_str());
                    s.audit(
                        host,
                        release,
                        tag,
                        format!("Executed cmd '{line}' on app version {version}"),
                    )
                    .await?;
                    let cmd = if reuse {
                        app.exec_existing(&version, exec)
                    } else {
                        app.exec_new(&version, &random_hex(6), exec)
                    };
                    s.trace(host, &cmd);
                    let out = s.remote.run(host, &cmd).await.map_err(|e| e.to_string())?;
                    text.push_str(&out.stdout);
                    if let Ok(mut map) = stderr.lock() {
                        map.entry(host.to_string())
                            .or_default()
                            .push_str(&out.stderr);
                    }
                    if !out.success() {
                        return Err(format!(
                            "{}{}",
                            crate::audit::prefixed(host, &text),
                            crate::remote::RemoteError::failed(host, &cmd, &out)
                        ));
                    }
                }
                Ok(text)
            })
            .await;
        Ok(r)
    })?;
    if let Ok(map) = stderr.lock() {
        for host in &s.targets.hosts {
            if let Some(text) = map.get(host) {
                eprint!("{}", crate::audit::prefixed(host, text));
            }
        }
    }
    report(&result)
}

/// `docker container prune --force` with the role's filters (`app remove`).
fn remove_containers(app: &App) -> CommandSpec {
    let c = app.config;
    CommandSpec::new(
        format!("remove {} containers on {}", app.role.name, app.host),
        "docker",
    )
    .args(["container", "prune", "--force", "--filter"])
    .arg(format!("label=service={}", c.service))
    .arg("--filter")
    .arg(format!(
        "label=destination={}",
        c.destination.as_deref().unwrap_or("")
    ))
    .arg("--filter")
    .arg(format!("label=role={}", app.role.name))
}

/// `docker image prune --all --force --filter label=service=S` (`app remove`).
fn remove_images(config: &Config, host: &str) -> CommandSpec {
    CommandSpec::new(format!("remove images on {host}"), "docker")
        .args(["image", "prune", "--all", "--force", "--filter"])
        .arg(format!("label=service={}", config.service))
}

/// `rm -rf .kamal/apps/<A> .kamal/proxy/apps-config/<A>` (`app remove`).
fn remove_app_directories(config: &Config, host: &str) -> CommandSpec {
    let a = config.service_and_destination();
    CommandSpec::new(format!("remove app directories on {host}"), "rm")
        .arg("-rf")
        .arg(format!(".kamal/apps/{a}"))
        .arg(format!(".kamal/proxy/apps-config/{a}"))
}

/// `app remove`: stop, remove the containers of each role, then (on hosts where every role of
/// the host is targeted) the service's unused images and the app directories.
fn remove(s: &mut Session) -> Result<()> {
    let release = s.release()?;
    let (s, release) = (&*s, &release);
    s.locked(release, async {
        let stopped = stop_all(s, release).await;
        report(&stopped)?;
        let r = s
            .each_host(|host| async move {
                let roles = s.roles_on(host);
                for role in &roles {
                    let app = App::new(&s.config, role, host);
                    s.audit(
                        host,
                        release,
                        Some(&role.name),
                        "Removed all app containers".into(),
                    )
                    .await?;
                    s.checked(host, &remove_containers(&app)).await?;
                }
                let all_roles = s
                    .config
                    .roles
                    .iter()
                    .filter(|r| r.host_names().any(|h| h == host))
                    .count();
                if roles.len() < all_roles {
                    return Ok("removed the containers; other roles keep the images\n".into());
                }
                s.audit(host, release, None, "Removed all app images".into())
                    .await?;
                s.checked(host, &remove_images(&s.config, host)).await?;
                s.audit(host, release, None, "Removed app directories".into())
                    .await?;
                s.checked(host, &remove_app_directories(&s.config, host))
                    .await?;
                Ok("removed the app containers, images and directories\n".into())
            })
            .await;
        report(&r)
    })
}

/// `app stale_containers [--stop]`: running containers of a role other than its newest.
fn stale_containers(s: &mut Session, stop: bool) -> Result<()> {
    if stop {
        let release = s.release()?;
        let s = &*s;
        s.locked(&release, async { report(&stale(s, true).await) })
    } else {
        let s = &*s;
        s.block_on(async { report(&stale(s, false).await) })
    }
}

/// List (or stop) each role's stale containers on every host.
async fn stale(s: &Session<'_>, stop: bool) -> Vec<HostReport> {
    s.each_host(|host| async move {
        let mut text = String::new();
        for role in s.roles_on(host) {
            let app = App::new(&s.config, role, host);
            let listed = s
                .lenient(host, &app.list_versions())
                .await
                .unwrap_or_default();
            for version in listed
                .lines()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .skip(1)
            {
                if stop {
                    text.push_str(&format!(
                        "Stopping stale container for role {} with version {version}\n",
                        role.name
                    ));
                    s.lenient(host, &app.stop(Some(version))).await;
                } else {
                    text.push_str(&format!(
                        "Detected stale container for role {} with version {version} (use `dray app stale_containers --stop` to stop)\n",
                        role.name
                    ));
                }
            }
        }
        Ok(text)
    })
    .await
}

/// `app live` (`mode` `None`) or `app maintenance` (`Some((drain_timeout, message))`): resume or
/// stop the kamal-proxy service of each proxy role.
fn proxy_mode(s: &mut Session, mode: Option<(u64, Option<String>)>) -> Result<()> {
    let release = s.release()?;
    let (s, mode) = (&*s, &mode);
    let any = s
        .targets
        .roles
        .iter()
        .any(|r| s.config.role(r).is_some_and(|r| r.runs_proxy()));
    if !any {
        return Err(Error::usage("no targeted role runs kamal-proxy")
            .with_hint("live and maintenance switch kamal-proxy routes; set `proxy:` on a role"));
    }
    s.locked(&release, async {
        let r = s
            .each_host(|host| async move {
                let mut text = String::new();
                for role in s.roles_on(host).into_iter().filter(|r| r.runs_proxy()) {
                    let cmd = match mode {
                        None => crate::docker::proxy::resume(&s.config, role, host),
                        Some((drain, message)) => crate::docker::proxy::stop_app(
                            &s.config,
                            role,
                            Some(*drain),
                            message.as_deref(),
                            host,
                        ),
                    };
                    s.checked(host, &cmd).await?;
                    text.push_str(&format!(
                        "{} is {}\n",
                        s.config.container_prefix(&role.name),
                        if mode.is_some() {
                            "in maintenance"
                        } else {
                            "live"
                        }
                    ));
                }
                Ok(text)
            })
            .await;
        report(&r)
    })
}

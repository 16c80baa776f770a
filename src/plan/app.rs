//! Plans of `dray app …` (Kamal's `lib/kamal/cli/app.rb`): start, stop, details, containers,
//! images, version, logs, exec, remove, stale_containers, live, maintenance (`app boot` is a
//! release plan, [`super::build`]).
//!
//! Every command works per targeted host and, on a host, per targeted role (primary role
//! first). Commands that change the servers take the deploy lock as Kamal does and write
//! Kamal's audit lines; the caller wraps them with [`super::locked`].

use crate::config::model::Role;
use crate::config::Config;
use crate::docker::app::{App, ExecOptions, LogsOptions, Stale};
use crate::release::Release;

use super::cmds::audit;
use super::{
    on_hosts, planned, stage, Hole, IfEmpty, InteractiveStep, PlannedCommand, Stage, Step, Targets,
};

/// What a plan of `app …` is built from.
#[derive(Debug, Clone, Copy)]
pub struct AppInputs<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// Targeted roles and hosts.
    pub targets: &'a Targets,
}

impl<'a> AppInputs<'a> {
    /// The targeted roles on `host`, primary role first.
    pub fn roles_on(&self, host: &str) -> Vec<&'a Role> {
        self.targets
            .roles_on(self.config, host)
            .into_iter()
            .filter_map(|r| self.config.role(r))
            .collect()
    }

    /// One hosts step: for each host, `per_role` of each targeted role.
    fn each_role(
        &self,
        purpose: &str,
        per_role: impl Fn(&App<'a>) -> Vec<PlannedCommand>,
    ) -> Vec<Step> {
        on_hosts(purpose, &self.targets.hosts, |host| {
            self.roles_on(host)
                .into_iter()
                .flat_map(|role| per_role(&App::new(self.config, role, host_ref(self, host))))
                .collect()
        })
    }
}

/// `host` as a reference that lives as long as the targets (the hosts are theirs).
fn host_ref<'a>(inp: &AppInputs<'a>, host: &str) -> &'a str {
    inp.targets
        .hosts
        .iter()
        .find(|h| *h == host)
        .map(String::as_str)
        .unwrap_or("")
}

/// `app details`: `docker ps` of each role.
pub fn details(inp: &AppInputs) -> Vec<Stage> {
    vec![stage(
        "details",
        inp.each_role("show the app containers", |app| {
            vec![planned(app.info()).show()]
        }),
    )]
}

/// `app containers`: every container of each role.
pub fn containers(inp: &AppInputs) -> Vec<Stage> {
    vec![stage(
        "containers",
        // Once per host, every role's (Kamal's `on(KAMAL.app_hosts)`).
        on_hosts("list the app containers", &inp.targets.hosts, |host| {
            vec![planned(crate::docker::app::list_service_containers(
                inp.config, host,
            ))
            .show()]
        }),
    )]
}

/// `app images`: `docker image ls <repository>` on each host.
pub fn images(inp: &AppInputs) -> Vec<Stage> {
    vec![stage(
        "images",
        on_hosts("list the app images", &inp.targets.hosts, |host| {
            vec![planned(crate::docker::app::list_images(inp.config, host)).show()]
        }),
    )]
}

/// `app version`: the version the first targeted role runs on each host.
pub fn version(inp: &AppInputs) -> Vec<Stage> {
    vec![stage(
        "version",
        on_hosts("find the running version", &inp.targets.hosts, |host| {
            inp.roles_on(host)
                .into_iter()
                .take(1)
                .map(|role| {
                    planned(App::new(inp.config, role, host_ref(inp, host)).version_report()).show()
                })
                .collect()
        }),
    )]
}

/// `app logs` without `--follow`: the last lines of each role's current container ("Nothing
/// found" where there is none).
pub fn logs(inp: &AppInputs, opts: &LogsOptions) -> Vec<Stage> {
    vec![stage(
        "logs",
        inp.each_role("read the app logs", |app| {
            vec![planned(app.logs(opts))
                .show()
                .ignore_errors()
                .note("", Some("Nothing found\n".into()))]
        }),
    )]
}

/// `app logs --follow`: the primary host's first targeted role, attached to this terminal.
pub fn follow_logs(inp: &AppInputs, opts: &LogsOptions) -> Option<Vec<Stage>> {
    let host = host_ref(inp, &inp.targets.primary_host);
    let role = inp.roles_on(host).into_iter().next()?;
    let cmd = App::new(inp.config, role, host).logs(opts);
    Some(vec![stage(
        "logs",
        vec![Step::Interactive(InteractiveStep {
            host: host.to_string(),
            command: planned(cmd),
        })],
    )])
}

/// How `app exec` runs.
#[derive(Debug, Clone)]
pub struct ExecPlan {
    /// The command and its options.
    pub exec: ExecOptions,
    /// `--reuse`: in the running container.
    pub reuse: bool,
    /// `--version`: this version, else the running one (or the latest tag for a new container).
    pub version: Option<String>,
}

/// The commands that fill [`Hole::RunningVersion`] with the version `app exec` uses.
fn exec_version(app: &App, plan: &ExecPlan) -> (Vec<PlannedCommand>, String) {
    if let Some(v) = &plan.version {
        return (Vec::new(), v.clone());
    }
    let if_empty = if plan.reuse {
        IfEmpty::Fail(format!(
            "no running {} container on {} to reuse (run `dray app containers`, or leave out --reuse)",
            app.role().name,
            app.host()
        ))
    } else {
        IfEmpty::Use(app.config().latest_tag())
    };
    (
        vec![planned(app.current_running_version()).capture(Hole::RunningVersion, if_empty)],
        Hole::RunningVersion.token(),
    )
}

fn exec_command(app: &App, plan: &ExecPlan, version: &str) -> crate::command::CommandSpec {
    if plan.reuse {
        app.exec_existing(version, &plan.exec)
    } else {
        app.exec_new(version, &Hole::Random(6).token(), &plan.exec)
    }
}

/// `app exec` on every targeted host and role: audit "Executed cmd '<cmd>' on app version V",
/// then the command (its output shown, standard error on stderr).
pub fn exec(inp: &AppInputs, release: &Release, plan: &ExecPlan) -> Vec<Stage> {
    vec![stage(
        "exec",
        inp.each_role("run the command", |app| {
            let (mut cmds, version) = exec_version(app, plan);
            cmds.push(audit(
                inp.config,
                release,
                app.host(),
                plan.reuse.then_some(app.role().name.as_str()),
                format!(
                    "Executed cmd '{}' on app version {version}",
                    plan.exec.command
                ),
            ));
            if plan.reuse && app.role().replicated() {
                // In every replica, each run's output under its container's name.
                let mut order = app.replica_order();
                order.rotate_right(1);
                for r in order {
                    let name = app.replica_name(&version, r);
                    let exec = app.exec_in(&name, &plan.exec);
                    let headed = crate::command::CommandSpec::new(exec.purpose.clone(), "sh")
                        .arg("-c")
                        .arg(format!(
                            "echo {}; {}",
                            crate::shell::quote(&format!("{name}:")),
                            exec.to_shell()
                        ));
                    cmds.push(planned(headed).show_both());
                }
                return cmds;
            }
            cmds.push(planned(exec_command(app, plan, &version)).show_both());
            cmds
        }),
    )]
}

/// `app exec --interactive`: on the primary host, the version found there, over `ssh -t`.
pub fn exec_interactive(inp: &AppInputs, plan: &ExecPlan) -> Option<Vec<Stage>> {
    let host = host_ref(inp, &inp.targets.primary_host);
    let role = inp.roles_on(host).into_iter().next()?;
    let app = App::new(inp.config, role, host);
    let (find, version) = exec_version(&app, plan);
    let mut stages = Vec::new();
    if !find.is_empty() {
        stages.push(stage(
            "version",
            on_hosts("find the running version", &[host.to_string()], |_| {
                find.clone()
            }),
        ));
    }
    stages.push(stage(
        "exec",
        vec![Step::Interactive(InteractiveStep {
            host: host.to_string(),
            command: planned(exec_command(&app, plan, &version)),
        })],
    ));
    Some(stages)
}

/// `app start`: audit "Started app version V", `docker start` the release's container of each
/// role (a failure is shown, not fatal, as in Kamal), then route proxy roles to the version
/// running now.
pub fn start(inp: &AppInputs, release: &Release) -> Vec<Stage> {
    let version = &release.version;
    vec![stage(
        "start",
        inp.each_role("start the app", |app| {
            let name = app.container_name(version);
            let mut cmds = vec![
                audit(
                    inp.config,
                    release,
                    app.host(),
                    None,
                    format!("Started app version {version}"),
                ),
                planned(app.start(version)).ignore_errors().note(
                    format!("started {name}\n"),
                    Some(format!("could not start {name}: {{stderr}}\n")),
                ),
            ];
            if app.role().runs_proxy() && app.role().replicated() {
                let running = Hole::RunningVersion.token();
                cmds.push(
                    planned(app.current_running_version())
                        .ignore_errors()
                        .capture(Hole::RunningVersion, IfEmpty::Keep),
                );
                cmds.push(
                    planned(crate::docker::replicas::route_all(app, &running))
                        .when(Hole::RunningVersion),
                );
            } else if app.role().runs_proxy() {
                let running = Hole::RunningVersion.token();
                cmds.push(
                    planned(app.current_running_version())
                        .ignore_errors()
                        .capture(Hole::RunningVersion, IfEmpty::Keep),
                );
                cmds.push(
                    planned(app.container_id(&running))
                        .when(Hole::RunningVersion)
                        .capture(Hole::ContainerId, IfEmpty::Keep),
                );
                if let Some(deploy) = crate::docker::proxy::deploy(
                    inp.config,
                    app.role(),
                    &Hole::ContainerId.token(),
                    &running,
                    app.host(),
                ) {
                    cmds.push(planned(deploy).when(Hole::RunningVersion));
                }
            }
            cmds
        }),
    )]
}

/// The commands of `app stop` for one role: the running version, audit "Stopped app", the
/// proxy route removed, the container stopped (failures ignored, as in Kamal).
fn stop_role(inp: &AppInputs, release: &Release, app: &App) -> Vec<PlannedCommand> {
    let role = app.role();
    let mut cmds = vec![
        planned(app.current_running_version())
            .ignore_errors()
            .capture(Hole::RunningVersion, IfEmpty::Keep),
        audit(
            inp.config,
            release,
            app.host(),
            Some(&role.name),
            "Stopped app",
        ),
    ];
    if role.runs_proxy() {
        cmds.push(
            planned(crate::docker::proxy::remove(inp.config, role, app.host()))
                .when(Hole::RunningVersion)
                .ignore_errors(),
        );
    }
    cmds.push(planned(app.stop(None)).ignore_errors());
    if let Some(last) = cmds.last_mut() {
        // Said only when a container ran.
        last.note = Some(super::Note {
            ok: format!(
                "stopped {}\n",
                app.container_name(&Hole::RunningVersion.token())
            ),
            failed: None,
            only_with: Some(Hole::RunningVersion),
        });
    }
    cmds
}

/// `app stop`.
pub fn stop(inp: &AppInputs, release: &Release) -> Vec<Stage> {
    vec![stage(
        "stop",
        inp.each_role("stop the app", |app| stop_role(inp, release, app)),
    )]
}

/// `app remove`: stop, remove the containers of each role, then (on hosts where every role of
/// the host is targeted) the service's images and the app directories.
pub fn remove(inp: &AppInputs, release: &Release) -> Vec<Stage> {
    let config = inp.config;
    let removal = on_hosts("remove the app", &inp.targets.hosts, |host| {
        let roles = inp.roles_on(host);
        let mut cmds = Vec::new();
        for role in &roles {
            let app = App::new(config, role, host_ref(inp, host));
            cmds.push(audit(
                config,
                release,
                host,
                Some(&role.name),
                "Removed all app containers",
            ));
            cmds.push(planned(app.remove_containers()));
        }
        let all_roles = config
            .roles
            .iter()
            .filter(|r| r.host_names().any(|h| h == host))
            .count();
        if roles.len() < all_roles {
            if let Some(last) = cmds.pop() {
                cmds.push(last.note(
                    "removed the containers; other roles keep the images\n",
                    None,
                ));
            }
            return cmds;
        }
        let a = config.service_and_destination();
        cmds.push(audit(config, release, host, None, "Removed all app images"));
        cmds.push(planned(crate::docker::app::remove_images(config, host)));
        // Kamal's line: "Removed <app directory>".
        cmds.push(audit(
            config,
            release,
            host,
            None,
            format!("Removed .kamal/apps/{a}"),
        ));
        cmds.push(
            planned(
                crate::command::CommandSpec::new(format!("remove app directories on {host}"), "rm")
                    .arg("-rf")
                    .arg(format!(".kamal/apps/{a}"))
                    .arg(format!(".kamal/proxy/apps-config/{a}")),
            )
            .note("removed the app containers, images and directories\n", None),
        );
        cmds
    });
    let mut stages = stop(inp, release);
    stages.push(stage("remove", removal));
    stages
}

/// `app stale_containers [--stop]`: running containers of a role other than its newest.
pub fn stale_containers(inp: &AppInputs, stop: bool) -> Vec<Stage> {
    let mode = if stop {
        Stale::ReportAndStop
    } else {
        Stale::Report
    };
    vec![stage(
        "stale-containers",
        inp.each_role("find stale containers", |app| {
            vec![planned(app.stale_containers(mode)).show().ignore_errors()]
        }),
    )]
}

/// `app live` (`maintenance` `None`) or `app maintenance` (`Some((drain_timeout, message))`):
/// resume or stop the kamal-proxy service of each proxy role.
pub fn proxy_mode(inp: &AppInputs, maintenance: Option<(u64, Option<&str>)>) -> Vec<Stage> {
    let config = inp.config;
    vec![stage(
        if maintenance.is_some() {
            "maintenance"
        } else {
            "live"
        },
        on_hosts("switch the proxy mode", &inp.targets.hosts, |host| {
            inp.roles_on(host)
                .into_iter()
                .filter(|r| r.runs_proxy())
                .map(|role| {
                    let cmd = match maintenance {
                        None => crate::docker::proxy::resume(config, role, host),
                        Some((drain, message)) => {
                            crate::docker::proxy::stop_app(config, role, Some(drain), message, host)
                        }
                    };
                    planned(cmd).note(
                        format!(
                            "{} is {}\n",
                            config.container_prefix(&role.name),
                            if maintenance.is_some() {
                                "in maintenance"
                            } else {
                                "live"
                            }
                        ),
                        None,
                    )
                })
                .collect()
        }),
    )]
}

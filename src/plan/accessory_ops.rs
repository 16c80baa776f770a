//! The other plans of `dray accessory …` (Kamal's `lib/kamal/cli/accessory.rb`): start, stop,
//! restart, reboot (zero downtime for a proxied accessory), logs, exec, upload, directories and
//! the hidden pull_image / remove_container / remove_image / remove_service_directory.

use crate::config::model::Accessory;
use crate::docker::accessory::{Acc, LogsOptions};

use super::accessory::{
    boot_commands, directory_commands, login, prepare, remove_container_commands, route_commands,
    run_commands, stop_commands, upload_commands, AccessoryInputs,
};
use super::cmds::audit;
use super::{
    on_hosts, planned, stage, Hole, IfEmpty, InteractiveStep, PlannedCommand, Stage, Step,
};

/// One stage `name <accessory>` running `per_host` on each of the accessory's targeted hosts.
fn each(
    inp: &AccessoryInputs,
    name: &str,
    acc: &Accessory,
    per_host: impl Fn(&str) -> Vec<PlannedCommand>,
) -> Stage {
    stage(
        &format!("{name} {}", acc.name),
        on_hosts(
            format!("{name} accessory {}", acc.name),
            &inp.hosts_of(acc),
            per_host,
        ),
    )
}

/// `accessory start`: audit, `docker container start`, and the proxy route to it.
pub fn start(inp: &AccessoryInputs, acc: &Accessory) -> Stage {
    each(inp, "start", acc, |host| {
        let a = Acc::new(inp.config, acc, host);
        let mut cmds = vec![
            audit(
                inp.config,
                inp.release,
                host,
                None,
                format!("Started {} accessory", acc.name),
            ),
            planned(a.start()).note(format!("started {}\n", acc.service), None),
        ];
        cmds.extend(route_commands(inp, &a));
        cmds
    })
}

/// `accessory stop`: audit, `docker container stop`, the proxy route removed.
pub fn stop(inp: &AccessoryInputs, acc: &Accessory) -> Stage {
    each(inp, "stop", acc, |host| {
        let mut cmds = stop_commands(inp, acc, host);
        // Said after `docker container stop` (index 1, after the audit line).
        if let Some(stop) = cmds.get_mut(1) {
            stop.note = Some(super::Note {
                ok: format!("stopped {}\n", acc.service),
                failed: Some(format!("could not stop {}: {{stderr}}\n", acc.service)),
                only_with: None,
            });
        }
        cmds
    })
}

/// `accessory restart`: stop, then start.
pub fn restart(inp: &AccessoryInputs, acc: &Accessory) -> Vec<Stage> {
    vec![stop(inp, acc), start(inp, acc)]
}

/// Kamal's `pull_image`: audit, `docker image pull`.
pub fn pull_image(inp: &AccessoryInputs, acc: &Accessory) -> Stage {
    each(inp, "pull", acc, |host| {
        vec![
            audit(
                inp.config,
                inp.release,
                host,
                None,
                format!("Pull {} accessory image", acc.name),
            ),
            planned(Acc::new(inp.config, acc, host).pull_image()),
        ]
    })
}

/// Kamal's `remove_container`.
pub fn remove_container(inp: &AccessoryInputs, acc: &Accessory) -> Stage {
    each(inp, "remove container", acc, |host| {
        remove_container_commands(inp, acc, host)
    })
}

/// Kamal's `remove_image`: audit, `docker image rm --force`.
pub fn remove_image(inp: &AccessoryInputs, acc: &Accessory) -> Stage {
    each(inp, "remove image", acc, |host| {
        vec![
            audit(
                inp.config,
                inp.release,
                host,
                None,
                format!("Removed {} accessory image", acc.name),
            ),
            planned(Acc::new(inp.config, acc, host).remove_image()),
        ]
    })
}

/// Kamal's `remove_service_directory`: `rm -rf <service_name>`.
pub fn remove_service_directory(inp: &AccessoryInputs, acc: &Accessory) -> Stage {
    each(inp, "remove directory", acc, |host| {
        vec![planned(
            Acc::new(inp.config, acc, host).remove_service_directory(),
        )]
    })
}

/// `accessory upload`: the files.
pub fn upload(inp: &AccessoryInputs, acc: &Accessory) -> Stage {
    each(inp, "upload", acc, |host| upload_commands(inp, acc, host))
}

/// `accessory directories`: the directories.
pub fn directories(inp: &AccessoryInputs, acc: &Accessory) -> Stage {
    each(inp, "directories", acc, |host| {
        directory_commands(acc, host)
    })
}

/// Whether `reboot` can start the new container before the old one stops: a proxied accessory
/// that publishes no port (two containers cannot publish one port).
pub fn reboots_without_downtime(acc: &Accessory) -> bool {
    acc.proxy.is_some() && acc.port.is_none()
}

/// `accessory reboot`. Kamal's order — prepare, pull, stop (and the proxy route removed),
/// remove the container, boot — except for a proxied accessory without a published port,
/// which dray reboots without downtime: the running container is renamed
/// `<service>_replaced_<hex>` and keeps serving while the new one starts; `kamal-proxy deploy`
/// switches to the new one once it is healthy and drains the old one, which is then stopped and
/// removed. Should the new one never get healthy, the old one keeps serving.
pub fn reboot(inp: &AccessoryInputs, acc: &Accessory) -> Vec<Stage> {
    let mut stages = vec![prepare(inp, acc), pull_image(inp, acc)];
    if !reboots_without_downtime(acc) {
        stages.push(stop(inp, acc));
        stages.push(remove_container(inp, acc));
        stages.push(boot_commands(inp, acc));
        return stages;
    }
    stages.push(each(inp, "reboot", acc, |host| {
        let a = Acc::new(inp.config, acc, host);
        let existing = Hole::ExistingContainer.token();
        let mut cmds = vec![
            planned(a.container_id(false)).capture(Hole::ExistingContainer, IfEmpty::Keep),
            planned(a.rename(&existing, &Hole::Random(16).token())).when(Hole::ExistingContainer),
        ];
        cmds.extend(directory_commands(acc, host));
        cmds.extend(upload_commands(inp, acc, host));
        cmds.extend(run_commands(inp, acc, host));
        cmds.push(
            audit(
                inp.config,
                inp.release,
                host,
                None,
                format!("Stopped {} accessory", acc.name),
            )
            .when(Hole::ExistingContainer),
        );
        cmds.push(planned(a.stop_others(&Hole::ContainerId.token())));
        cmds.extend(remove_container_commands(inp, acc, host));
        cmds
    }));
    stages
}

/// `accessory logs` without `--follow`: each targeted host's lines.
pub fn logs(inp: &AccessoryInputs, acc: &Accessory, opts: &LogsOptions) -> Stage {
    each(inp, "logs", acc, |host| {
        vec![planned(Acc::new(inp.config, acc, host).logs(opts)).show()]
    })
}

/// `accessory logs --follow`: the first targeted host's, attached to this terminal.
pub fn follow_logs(inp: &AccessoryInputs, acc: &Accessory, opts: &LogsOptions) -> Option<Stage> {
    let host = inp.hosts_of(acc).into_iter().next()?;
    let cmd = Acc::new(inp.config, acc, &host).logs(opts);
    Some(stage(
        "logs",
        vec![Step::Interactive(InteractiveStep {
            host: host.clone(),
            command: planned(cmd),
        })],
    ))
}

/// How `accessory exec` runs.
#[derive(Debug, Clone)]
pub struct ExecPlan {
    /// The command line (words joined with spaces), for the remote shell.
    pub command: String,
    /// `--reuse`: in the running container, else a new one.
    pub reuse: bool,
}

/// `accessory exec` on every targeted host: (new container: the root registry's login) audit
/// "Executed cmd '<cmd>' on <name> accessory", then the command, its output shown.
pub fn exec(inp: &AccessoryInputs, acc: &Accessory, plan: &ExecPlan) -> Stage {
    each(inp, "exec", acc, |host| {
        let a = Acc::new(inp.config, acc, host);
        let mut cmds: Vec<PlannedCommand> = Vec::new();
        if !plan.reuse {
            cmds.extend(login(&inp.config.registry, inp.secrets, host));
        }
        cmds.push(audit(
            inp.config,
            inp.release,
            host,
            None,
            format!("Executed cmd '{}' on {} accessory", plan.command, acc.name),
        ));
        let run = if plan.reuse {
            a.exec_existing(&plan.command, false)
        } else {
            a.exec_new(&plan.command, false)
        };
        cmds.push(planned(run).show_both());
        cmds
    })
}

/// `accessory exec -i [--reuse]`: on the first targeted host, attached to this terminal (a new
/// container after the root registry's login).
pub fn exec_interactive(
    inp: &AccessoryInputs,
    acc: &Accessory,
    plan: &ExecPlan,
) -> Option<Vec<Stage>> {
    let host = inp.hosts_of(acc).into_iter().next()?;
    let a = Acc::new(inp.config, acc, &host);
    let mut stages = Vec::new();
    if !plan.reuse {
        let login = login(&inp.config.registry, inp.secrets, &host);
        stages.push(stage(
            "login",
            on_hosts(
                "log in to the registry",
                std::slice::from_ref(&host),
                |_| login.clone().into_iter().collect(),
            ),
        ));
    }
    let cmd = if plan.reuse {
        a.exec_existing(&plan.command, true)
    } else {
        a.exec_new(&plan.command, true)
    };
    stages.push(stage(
        "exec",
        vec![Step::Interactive(InteractiveStep {
            host: host.clone(),
            command: planned(cmd),
        })],
    ));
    Some(stages)
}

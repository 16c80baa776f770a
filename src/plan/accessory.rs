//! Plans of `dray accessory …` (Kamal's `lib/kamal/cli/accessory.rb`): which accessories and
//! hosts a run works on ([`select`], [`targets`]), and the stages `setup`, `remove` and `details`
//! share with `accessory boot|remove|details` ([`boot_stages`], [`remove_stages`],
//! [`details_stages`]). The other subcommands' stages are in [`super::accessory_ops`].
//!
//! Every stage works on the accessory's hosts that the run targets (`--hosts`/`--roles`
//! intersected with the accessory's, as Kamal's `accessory_hosts`); commands that change the
//! servers write Kamal's audit lines and the caller wraps them with [`super::locked`].

use crate::command::Secret;
use crate::config::model::{Accessory, Registry};
use crate::config::secrets::Secrets;
use crate::config::Config;
use crate::docker::accessory::{self as docker, Acc, HostPath};
use crate::error::Error;
use crate::release::Release;

use super::cmds::{audit, credential};
pub use super::specifics::{proxy_targets, targets};
use super::{on_hosts, planned, stage, Hole, IfEmpty, PlannedCommand, SayStep, Stage, Step};

/// The content of one accessory file, read (and for `*erb`, rendered) before planning.
#[derive(Debug, Clone)]
pub struct FileContent {
    /// The accessory's name.
    pub accessory: String,
    /// The file's `local` as configured.
    pub local: String,
    /// The bytes uploaded (a rendered template may hold secrets: never shown).
    pub content: Vec<u8>,
}

/// What the accessory plans are built from.
#[derive(Debug, Clone, Copy)]
pub struct AccessoryInputs<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// The release (audit lines, the error pages of a proxied accessory).
    pub release: &'a Release,
    /// The hosts the run targets (`--hosts`/`--roles`, else every host).
    pub hosts: &'a [String],
    /// The secrets (env file, registry password).
    pub secrets: &'a Secrets,
    /// The files' contents.
    pub files: &'a [FileContent],
}

impl AccessoryInputs<'_> {
    /// The accessory's hosts the run targets, in the accessory's order.
    pub fn hosts_of(&self, acc: &Accessory) -> Vec<String> {
        hosts_of(acc, self.hosts)
    }
}

/// `acc`'s hosts that are in `targeted`, in the accessory's order.
pub fn hosts_of(acc: &Accessory, targeted: &[String]) -> Vec<String> {
    acc.hosts
        .iter()
        .filter(|h| targeted.contains(h))
        .cloned()
        .collect()
}

/// The accessory called `name`, or all of them (`all`, in file order); an unknown name is an
/// error listing the names there are (Kamal's `No accessory by the name of …`).
pub fn select<'a>(config: &'a Config, name: &str) -> Result<Vec<&'a Accessory>, Error> {
    if name == "all" {
        return Ok(config.accessories.iter().collect());
    }
    match config.accessories.iter().find(|a| a.name == name) {
        Some(a) => Ok(vec![a]),
        None => {
            let names: Vec<&str> = config.accessories.iter().map(|a| a.name.as_str()).collect();
            let err = Error::usage(format!("no accessory by the name of '{name}'"));
            Err(if names.is_empty() {
                err.with_hint("the configuration defines no `accessories:`")
            } else {
                err.with_hint(format!("options: {}, or all", names.join(", ")))
            })
        }
    }
}

/// The registry an accessory pulls from: its own `registry`, else the root one.
fn registry_of<'a>(config: &'a Config, acc: &'a Accessory) -> &'a Registry {
    acc.registry.as_ref().unwrap_or(&config.registry)
}

/// `docker login` to `registry` on `host` (password on stdin), unless it is a local registry or
/// has no credentials.
pub fn login(registry: &Registry, secrets: &Secrets, host: &str) -> Option<PlannedCommand> {
    registry.username.as_ref()?;
    let user = credential(&registry.username, secrets);
    let password = credential(&registry.password, secrets);
    let cmd = crate::docker::registry::login(registry, &user, &password, host)?;
    Some(PlannedCommand::new(
        cmd,
        Some("the registry password [REDACTED]".into()),
    ))
}

/// Kamal's `prepare`: log in to the accessory's registry and create its network ("already
/// exists" is fine).
pub fn prepare(inp: &AccessoryInputs, acc: &Accessory) -> Stage {
    stage(
        &format!("prepare {}", acc.name),
        on_hosts(
            format!("prepare accessory {}", acc.name),
            &inp.hosts_of(acc),
            |host| {
                let mut cmds: Vec<PlannedCommand> =
                    login(registry_of(inp.config, acc), inp.secrets, host)
                        .into_iter()
                        .collect();
                cmds.push(
                    planned(crate::docker::proxy::create_network(host)).tolerate("already exists"),
                );
                cmds
            },
        ),
    )
}

/// Create the accessory's `directories` (Kamal's `accessory directories`): `mkdir -p`, then
/// `chmod`/`chown` where set.
pub fn directory_commands(acc: &Accessory, host: &str) -> Vec<PlannedCommand> {
    let mut cmds = Vec::new();
    for d in &acc.directories {
        let path = docker::directory_host_path(acc, d);
        cmds.push(planned(docker::make_directory(&path, host)));
        if let Some(mode) = &d.mode {
            cmds.push(planned(docker::chmod(mode, &path, host)));
        }
        if let Some(owner) = &d.owner {
            cmds.push(planned(docker::chown(owner, &path, host)));
        }
    }
    cmds
}

/// Upload the accessory's `files` (Kamal's `accessory upload`): the parent directory, the file
/// (content on stdin), `chmod` (default `755`), `chown` where set.
pub fn upload_commands(inp: &AccessoryInputs, acc: &Accessory, host: &str) -> Vec<PlannedCommand> {
    let mut cmds = Vec::new();
    for f in &acc.files {
        let remote = docker::file_host_path(acc, f);
        let content = inp
            .files
            .iter()
            .find(|c| c.accessory == acc.name && c.local == f.local)
            .map(|c| c.content.clone())
            .unwrap_or_default();
        cmds.push(planned(docker::make_directory(
            &HostPath::Literal(docker::dirname(&remote)),
            host,
        )));
        let mut upload = docker::write_file(format!("upload {} to {host}", f.local), &remote, None);
        upload.stdin = Some(Secret(content));
        cmds.push(PlannedCommand::new(
            upload,
            Some(format!("the content of {} [REDACTED]", f.local)),
        ));
        let path = HostPath::Literal(remote);
        cmds.push(planned(docker::chmod(
            f.mode.as_deref().unwrap_or("755"),
            &path,
            host,
        )));
        if let Some(owner) = &f.owner {
            cmds.push(planned(docker::chown(owner, &path, host)));
        }
    }
    cmds
}

/// The env file's content: each secret variable from the secrets files.
fn env_file(inp: &AccessoryInputs, acc: &Accessory) -> (Secret, String) {
    let pairs: Vec<(String, String)> = acc
        .env
        .secrets
        .iter()
        .map(|s| {
            let value = inp
                .secrets
                .get(&s.key)
                .map(str::to_string)
                .unwrap_or_default();
            (s.name.clone(), value)
        })
        .collect();
    let note = acc
        .env
        .secrets
        .iter()
        .map(|s| format!("{}=[REDACTED]", s.name))
        .collect::<Vec<_>>()
        .join("\n");
    (crate::docker::env_file::content(&pairs), note)
}

/// The audit line, env directory and file, `docker run`, and for a proxied accessory the
/// `kamal-proxy deploy` to the new container, as Kamal's boot does on a host.
pub fn run_commands(inp: &AccessoryInputs, acc: &Accessory, host: &str) -> Vec<PlannedCommand> {
    let a = Acc::new(inp.config, acc, host);
    let (content, note) = env_file(inp, acc);
    let mut cmds = vec![
        audit(
            inp.config,
            inp.release,
            host,
            None,
            format!("Booted {} accessory", acc.name),
        ),
        planned(a.ensure_env_directory()),
        PlannedCommand::new(
            a.write_env_file(content),
            Some(format!("the env file: {note}")),
        ),
        planned(a.run()).note(format!("booted {}\n", acc.service), None),
    ];
    cmds.extend(route_commands(inp, &a));
    cmds
}

/// For a proxied accessory: the running container's id, then `kamal-proxy deploy` to it.
pub fn route_commands(inp: &AccessoryInputs, a: &Acc) -> Vec<PlannedCommand> {
    let Some(deploy) = a.proxy_deploy(&Hole::ContainerId.token(), &inp.release.version) else {
        return Vec::new();
    };
    vec![
        planned(a.container_id(true)).capture(
            Hole::ContainerId,
            IfEmpty::Fail(format!(
                "accessory {} is not running on {} (see `dray accessory logs {}`)",
                a.acc.name, a.host, a.acc.name
            )),
        ),
        planned(deploy).hint(format!(
            "kamal-proxy must run on {host} (`dray proxy boot -h {host}`), and the accessory answer `proxy.healthcheck.path` on `proxy.app_port`",
            host = a.host
        )),
    ]
}

/// `accessory boot` of one accessory without Kamal's `prepare` (what `reboot` runs after its
/// own), in Kamal's order: on every host, whether a container exists; one line naming the hosts
/// that have one (skipped, as Kamal does); then the directories and files (on every host), and
/// the env file, `docker run` and the proxy route on the others.
pub fn boot_commands(inp: &AccessoryInputs, acc: &Accessory) -> Stage {
    let hosts = inp.hosts_of(acc);
    let mut steps = on_hosts(
        format!("check for a container of accessory {}", acc.name),
        &hosts,
        |host| {
            let a = Acc::new(inp.config, acc, host);
            vec![planned(a.info(true, true)).capture(Hole::ExistingContainer, IfEmpty::Keep)]
        },
    );
    steps.push(Step::Say(SayStep {
        hosts: hosts.clone(),
        hole: Hole::ExistingContainer,
        text: format!(
            "Skipping booting `{}` on {{hosts}}, a container already exists",
            acc.name
        ),
    }));
    steps.extend(on_hosts(
        format!("boot accessory {}", acc.name),
        &hosts,
        |host| {
            let mut cmds = directory_commands(acc, host);
            cmds.extend(upload_commands(inp, acc, host));
            cmds.extend(
                run_commands(inp, acc, host)
                    .into_iter()
                    .map(|c| c.unless(Hole::ExistingContainer)),
            );
            cmds
        },
    ));
    stage(&format!("boot {}", acc.name), steps)
}

/// `accessory boot NAME|all` (and `setup`'s accessories): per accessory, Kamal's `prepare`
/// (registry login, network), then [`boot_commands`].
pub fn boot_stages(inp: &AccessoryInputs, accessories: &[&Accessory]) -> Vec<Stage> {
    accessories
        .iter()
        .flat_map(|acc| [prepare(inp, acc), boot_commands(inp, acc)])
        .collect()
}

/// Kamal's `accessory stop` on a host: audit, `docker container stop` (a failure ignored), and
/// for a proxied accessory `kamal-proxy remove` (ignored too: the route may not exist).
pub fn stop_commands(inp: &AccessoryInputs, acc: &Accessory, host: &str) -> Vec<PlannedCommand> {
    let a = Acc::new(inp.config, acc, host);
    let mut cmds = vec![
        audit(
            inp.config,
            inp.release,
            host,
            None,
            format!("Stopped {} accessory", acc.name),
        ),
        planned(a.stop()).ignore_errors(),
    ];
    if acc.proxy.is_some() {
        cmds.push(planned(a.proxy_remove()).ignore_errors());
    }
    cmds
}

/// Kamal's `remove_container`: audit, `docker container prune` of the accessory's containers.
pub fn remove_container_commands(
    inp: &AccessoryInputs,
    acc: &Accessory,
    host: &str,
) -> Vec<PlannedCommand> {
    vec![
        audit(
            inp.config,
            inp.release,
            host,
            None,
            format!("Remove {} accessory container", acc.name),
        ),
        planned(Acc::new(inp.config, acc, host).remove_container()),
    ]
}

/// `accessory remove NAME|all` (and `remove`'s accessories): per accessory, on each host, stop
/// it, remove its container and image (audited), its service directory (files and
/// directories) and, unlike Kamal, its env file, so nothing of it is left.
pub fn remove_stages(inp: &AccessoryInputs, accessories: &[&Accessory]) -> Vec<Stage> {
    accessories
        .iter()
        .map(|acc| {
            stage(
                &format!("remove {}", acc.name),
                on_hosts(
                    format!("remove accessory {}", acc.name),
                    &inp.hosts_of(acc),
                    |host| {
                        let a = Acc::new(inp.config, acc, host);
                        let mut cmds = stop_commands(inp, acc, host);
                        // dray: also those a failed zero-downtime reboot left running.
                        cmds.push(planned(a.stop_others("")).ignore_errors());
                        cmds.extend(remove_container_commands(inp, acc, host));
                        cmds.push(audit(
                            inp.config,
                            inp.release,
                            host,
                            None,
                            format!("Removed {} accessory image", acc.name),
                        ));
                        cmds.push(planned(a.remove_image()));
                        cmds.push(planned(a.remove_service_directory()));
                        cmds.push(
                            planned(a.remove_env_file())
                                .note(format!("removed {}\n", acc.service), None),
                        );
                        cmds
                    },
                ),
            )
        })
        .collect()
}

/// `accessory details NAME|all` (and `details`' accessories): `docker ps` of each accessory on
/// its targeted hosts.
pub fn details_stages(config: &Config, accessories: &[&Accessory], hosts: &[String]) -> Vec<Stage> {
    accessories
        .iter()
        .map(|acc| {
            stage(
                &format!("details {}", acc.name),
                on_hosts(
                    format!("show accessory {}", acc.name),
                    &hosts_of(acc, hosts),
                    |host| vec![planned(Acc::new(config, acc, host).info(false, false)).show()],
                ),
            )
            .headed(format!("Accessory {}", acc.name))
        })
        .collect()
}

#[cfg(test)]
#[path = "accessory_tests.rs"]
mod tests;

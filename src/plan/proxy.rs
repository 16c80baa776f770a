//! Plans of `dray proxy …` (Kamal's `lib/kamal/cli/proxy.rb`): boot, reboot (with the
//! `pre-proxy-reboot` / `post-proxy-reboot` hooks, `--rolling`), upgrade (dray-proxy's socket
//! handover), start, stop, restart, details, logs, remove — on the hosts of the targeted roles that run the proxy.

use crate::command::CommandSpec;
use crate::config::Config;
use crate::docker::proxy as cmds;
use crate::hooks::{hook_env, HookContext};
use crate::release::Release;

use super::{on_hosts, planned, stage, HookStep, Stage, Step, Targets};

/// Hosts of targeted roles that run the proxy, in target order.
pub fn proxy_hosts(config: &Config, targets: &Targets) -> Vec<String> {
    targets
        .hosts
        .iter()
        .filter(|h| {
            targets
                .roles_on(config, h)
                .iter()
                .any(|r| config.role(r).is_some_and(|r| r.runs_proxy()))
        })
        .cloned()
        .collect()
}

/// One stage running `build(host)` on each of `hosts`, output shown, failures fatal.
pub fn each(name: &str, hosts: &[String], build: impl Fn(&str) -> Vec<CommandSpec>) -> Stage {
    stage(
        name,
        on_hosts(format!("{name} kamal-proxy"), hosts, |h| {
            build(h).into_iter().map(|c| planned(c).show()).collect()
        }),
    )
}

/// `proxy boot`: the network, the apps-config directory, the proxy started or run.
pub fn boot(config: &Config, hosts: &[String]) -> Vec<Stage> {
    vec![stage(
        "boot",
        on_hosts("boot kamal-proxy", hosts, |host| {
            vec![
                // "already exists" is fine, as for Kamal.
                planned(cmds::create_network(host))
                    .show()
                    .tolerate("already exists"),
                planned(cmds::ensure_apps_config_directory(host)).show(),
                planned(cmds::boot(cmds::run_config_for(config, host), host)).show(),
            ]
        }),
    )]
}

/// What a `proxy reboot` plan is built from.
#[derive(Debug, Clone, Copy)]
pub struct RebootInputs<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// The release (hook environment, audit lines).
    pub release: &'a Release,
    /// Targeted roles and hosts.
    pub targets: &'a Targets,
    /// The proxy hosts.
    pub hosts: &'a [String],
    /// `--rolling`: one host at a time.
    pub rolling: bool,
    /// `-H`: no hooks.
    pub skip_hooks: bool,
}

fn reboot_hook(inp: &RebootInputs, name: &str, group: &[String]) -> Option<Step> {
    if inp.skip_hooks {
        return None;
    }
    let roles = inp
        .targets
        .roles_filtered
        .then_some(inp.targets.roles.as_slice());
    let ctx = HookContext {
        release: inp.release,
        command: "proxy",
        subcommand: Some("reboot"),
        hosts: group,
        roles,
        lock: true,
        runtime: None,
    };
    Some(Step::Hook(HookStep {
        hook: name.to_string(),
        path: format!("{}/{name}", inp.config.hooks_path),
        env: hook_env(name, &ctx, std::iter::empty()),
    }))
}

/// `proxy reboot`: per group of hosts (all, or one at a time with `--rolling`): the
/// `pre-proxy-reboot` hook, the network and directory, stop and remove the proxy, run it anew
/// (audited "Rebooted proxy"), the `post-proxy-reboot` hook.
pub fn reboot(inp: &RebootInputs) -> Vec<Stage> {
    let groups: Vec<Vec<String>> = if inp.rolling {
        inp.hosts.iter().map(|h| vec![h.clone()]).collect()
    } else {
        vec![inp.hosts.to_vec()]
    };
    let mut stages = Vec::new();
    for group in groups {
        let mut steps: Vec<Step> = reboot_hook(inp, "pre-proxy-reboot", &group)
            .into_iter()
            .collect();
        steps.extend(on_hosts("prepare the proxy", &group, |host| {
            vec![
                planned(cmds::create_network(host)).show().ignore_errors(),
                planned(cmds::ensure_apps_config_directory(host))
                    .show()
                    .ignore_errors(),
            ]
        }));
        steps.extend(on_hosts("stop the proxy", &group, |host| {
            vec![
                planned(cmds::stop(host)).show().ignore_errors(),
                planned(cmds::remove_container(host)).show().ignore_errors(),
            ]
        }));
        steps.extend(on_hosts("run the proxy", &group, |host| {
            vec![
                planned(cmds::run(cmds::run_config_for(inp.config, host), host)).show(),
                super::cmds::audit(inp.config, inp.release, host, None, "Rebooted proxy")
                    .ignore_errors(),
            ]
        }));
        steps.extend(reboot_hook(inp, "post-proxy-reboot", &group));
        stages.push(stage(&format!("reboot {}", group.join(",")), steps));
    }
    stages
}

/// `proxy remove [--force]`: the proxy's container, image and directory, unless apps are still
/// installed on the host (without `--force`).
pub fn remove(hosts: &[String], force: bool) -> Vec<Stage> {
    vec![stage(
        "remove",
        on_hosts("remove kamal-proxy", hosts, |host| {
            vec![planned(cmds::remove_batch(host, force)).show()]
        }),
    )]
}

/// `proxy upgrade`: per group of hosts (all, or one at a time with `--rolling`), the proxy
/// replaced by the configured image's dray-proxy without refusing or failing a connection
/// ([`cmds::upgrade_batch`]: the sockets and routes handed over inside the running container;
/// kamal-proxy and dray-proxy containers without the supervisor are rebooted, saying it drops
/// connections), audited "Upgraded proxy", then what runs read back from the supervisor.
/// Kamal's own `proxy upgrade` (hidden) moved Kamal 1's Traefik to kamal-proxy; dray has no
/// Kamal 1 hosts to move, so the name serves this instead.
pub fn upgrade(config: &Config, release: &Release, hosts: &[String], rolling: bool) -> Vec<Stage> {
    let groups: Vec<Vec<String>> = if rolling {
        hosts.iter().map(|h| vec![h.clone()]).collect()
    } else {
        vec![hosts.to_vec()]
    };
    groups
        .into_iter()
        .map(|group| {
            let steps = on_hosts("upgrade kamal-proxy", &group, |host| {
                vec![
                    planned(cmds::upgrade_batch(
                        cmds::run_config_for(config, host),
                        host,
                        config.drain_timeout,
                    ))
                    .show()
                    .hint("the proxy that served before goes on serving; `dray proxy details` shows what runs"),
                    super::cmds::audit(config, release, host, None, "Upgraded proxy").ignore_errors(),
                    planned(cmds::supervisor_status(host)).show(),
                ]
            });
            stage(&format!("upgrade {}", group.join(",")), steps)
        })
        .collect()
}

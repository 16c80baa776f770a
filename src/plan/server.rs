//! The plan of `dray server bootstrap` (Kamal 2.12's `lib/kamal/cli/server.rb#bootstrap`),
//! also the first part of `dray setup`: on every host, Docker checked and installed where it is
//! missing and the SSH user may install it, then the `.kamal` run directory; once the hosts
//! are done, the `docker-setup` hook, once per run.

use crate::config::Config;
use crate::docker::server as cmds;
use crate::hooks::{hook_env, HookContext};

use super::{on_hosts, planned, stage, HookStep, Stage, Step, Targets};

/// The hosts a bootstrap works on, as Kamal's `KAMAL.hosts`: the targeted hosts and, unless
/// `--roles` narrowed the targets, the accessories' hosts (those matching `--hosts` when it was
/// given, `host_filter`), in that order.
pub fn bootstrap_hosts(
    config: &Config,
    targets: &Targets,
    host_filter: Option<&str>,
) -> Vec<String> {
    let mut hosts = targets.hosts.clone();
    if targets.roles_filtered {
        return hosts;
    }
    let wanted = |h: &str| match host_filter {
        None => true,
        Some(list) => list
            .split(',')
            .map(str::trim)
            .any(|p| !p.is_empty() && super::targets::wildcard(p, h)),
    };
    for host in config.accessories.iter().flat_map(|a| &a.hosts) {
        if wanted(host) && !hosts.contains(host) {
            hosts.push(host.clone());
        }
    }
    hosts
}

/// The stages of a bootstrap of `hosts`: `bootstrap` (per host: [`cmds::bootstrap`]; a host
/// that fails — Docker missing and not installable, or the install failed — fails alone, named,
/// and gets no `.kamal`), then `docker-setup` (the hook with `hook`'s environment; no hook with
/// `None`, i.e. `--skip-hooks`). The caller takes the lock around them ([`super::locked`]).
/// Pure: nothing is probed.
pub fn bootstrap_stages(
    config: &Config,
    hosts: &[String],
    hook: Option<&HookContext>,
) -> Vec<Stage> {
    let hint = format!(
        "installing needs root or passwordless sudo on the host and access to \
         https://get.docker.com; else install Docker by hand ({}), then run `dray server \
         bootstrap` again",
        cmds::MANUAL_INSTALL
    );
    let mut stages = vec![stage(
        "bootstrap",
        on_hosts("ensure Docker is installed", hosts, |host| {
            vec![planned(cmds::bootstrap(host)).show().hint(hint.clone())]
        }),
    )];
    if let Some(ctx) = hook {
        stages.push(stage(
            "docker-setup",
            vec![Step::Hook(HookStep {
                hook: "docker-setup".into(),
                path: format!("{}/docker-setup", config.hooks_path),
                env: hook_env("docker-setup", ctx, std::iter::empty()),
            })],
        ));
    }
    stages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::test_support::base;

    #[test]
    fn bootstrap_checks_every_host_then_runs_the_hook_once() {
        let config = base();
        let release = crate::release::Release::new(
            "app",
            "dhh/app",
            None,
            "abc123",
            "dev@example.com",
            "2024-01-01T12:00:00Z",
        );
        let hosts = vec!["1.1.1.1".to_string(), "1.1.1.2".to_string()];
        let ctx = HookContext {
            release: &release,
            command: "server",
            subcommand: Some("bootstrap"),
            hosts: &hosts,
            roles: None,
            lock: true,
            runtime: None,
        };
        let stages = bootstrap_stages(&config, &hosts, Some(&ctx));
        let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["bootstrap", "docker-setup"]);
        let Step::Hosts(h) = &stages[0].steps[0] else {
            panic!("{:?}", stages[0].steps)
        };
        let on: Vec<&str> = h.hosts.iter().map(|h| h.host.as_str()).collect();
        assert_eq!(on, ["1.1.1.1", "1.1.1.2"]);
        let Step::Hook(hook) = &stages[1].steps[0] else {
            panic!("{:?}", stages[1].steps)
        };
        let env: Vec<String> = hook
            .env
            .iter()
            .filter(|v| !v.name.starts_with("KAMAL_RECORDED") && !v.name.starts_with("KAMAL_PERF"))
            .map(|v| format!("{}={}", v.name, v.value))
            .collect();
        assert!(
            env.contains(&"KAMAL_HOSTS=1.1.1.1,1.1.1.2".to_string()),
            "{env:?}"
        );
        assert!(env.contains(&"KAMAL_COMMAND=server".to_string()), "{env:?}");
        assert!(
            env.contains(&"KAMAL_SUBCOMMAND=bootstrap".to_string()),
            "{env:?}"
        );
        assert!(env.contains(&"KAMAL_LOCK=true".to_string()), "{env:?}");
        assert_eq!(bootstrap_stages(&config, &hosts, None).len(), 1);
    }
}

//! Building a [`Plan`] from the configuration, the frozen release and the targets.

use crate::config::secrets::Secrets;
use crate::config::Config;
use crate::hooks::{hook_env, HookContext};
use crate::release::Resolved;

use super::cmds;
use super::*;

/// Everything a plan is built from.
#[derive(Debug, Clone)]
pub struct PlanInputs<'a> {
    /// The command.
    pub kind: PlanKind,
    /// The validated configuration.
    pub config: &'a Config,
    /// The frozen release.
    pub resolved: &'a Resolved,
    /// Targeted roles and hosts.
    pub targets: &'a Targets,
    /// `--skip-push`.
    pub skip_push: bool,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `-H`: no hooks at all.
    pub skip_hooks: bool,
    /// Secrets (for hook environments; values are redacted when shown).
    pub secrets: &'a Secrets,
    /// Whether the lock is already held by a parent (`KAMAL_LOCK=true`).
    pub lock_inherited: bool,
    /// Whether `docker buildx` is available locally.
    pub buildx: bool,
}

struct Builder<'a> {
    inp: &'a PlanInputs<'a>,
    stages: Vec<Stage>,
}

impl Builder<'_> {
    fn stage(&mut self, name: &str, steps: Vec<Step>) {
        if !steps.is_empty() {
            self.stages.push(Stage {
                name: name.to_string(),
                steps,
            });
        }
    }

    fn hook(&self, name: &str, hosts: &[String], lock: bool) -> Option<Step> {
        if self.inp.skip_hooks {
            return None;
        }
        let roles = self
            .inp
            .targets
            .roles_filtered
            .then_some(self.inp.targets.roles.as_slice());
        let ctx = HookContext {
            release: &self.inp.resolved.release,
            command: self.inp.kind.name(),
            subcommand: self.inp.kind.subcommand(),
            hosts,
            roles,
            lock,
            runtime: None,
        };
        let mut env = hook_env(name, &ctx, self.inp.secrets.iter());
        if name == "post-deploy" {
            env.push(crate::hooks::HookVar {
                name: "KAMAL_RUNTIME".into(),
                value: "<seconds, measured at run time>".into(),
                secret: false,
            });
        }
        Some(Step::Hook(HookStep {
            hook: name.to_string(),
            path: format!("{}/{}", self.inp.config.hooks_path, name),
            env,
        }))
    }
}

/// A step doing `action` on each of `hosts`, with the commands `commands(host)` shows.
fn on_hosts(
    action: HostAction,
    purpose: String,
    hosts: &[String],
    commands: impl Fn(&str) -> Vec<PlannedCommand>,
) -> Vec<Step> {
    vec![Step::Hosts(HostsStep {
        action,
        purpose,
        hosts: hosts
            .iter()
            .map(|h| HostCommands {
                host: h.clone(),
                commands: commands(h),
            })
            .collect(),
    })]
}

/// Build the plan of `deploy`, `redeploy` or `rollback`.
pub fn build_plan(inp: &PlanInputs) -> Plan {
    let config = inp.config;
    let release = &inp.resolved.release;
    let targets = inp.targets;
    let hosts = &targets.hosts;
    let lock_held = !inp.lock_inherited;
    let mut b = Builder {
        inp,
        stages: Vec::new(),
    };
    let app_boot = inp.kind == PlanKind::AppBoot;
    let building = !matches!(inp.kind, PlanKind::Rollback | PlanKind::AppBoot) && !inp.skip_push;

    // Connect: pre-connect fires before any SSH use.
    let step = (!app_boot)
        .then(|| b.hook("pre-connect", hosts, inp.lock_inherited))
        .flatten();
    b.stage("connect", step.into_iter().collect());

    if building {
        let step = b.hook("pre-build", hosts, inp.lock_inherited);
        b.stage("pre-build", step.into_iter().collect());
        b.stage(
            "build",
            vec![Step::Local(LocalStep {
                action: LocalAction::Build,
                purpose: format!("build and push {}", release.image),
                commands: cmds::build(config, release, inp.no_cache, inp.buildx),
            })],
        );
    }

    if matches!(inp.kind, PlanKind::Deploy | PlanKind::Redeploy) {
        b.stage(
            "pull",
            on_hosts(
                HostAction::Pull,
                format!("pull {} on the hosts", release.image),
                hosts,
                |h| cmds::pull(config, release, h),
            ),
        );
    }

    if lock_held {
        b.stage(
            "lock",
            on_hosts(
                HostAction::LockAcquire,
                "acquire the deploy lock".into(),
                std::slice::from_ref(&targets.primary_host),
                |h| cmds::lock_acquire(config, release, h),
            ),
        );
    }

    if inp.kind == PlanKind::Rollback {
        b.stage(
            "check",
            on_hosts(
                HostAction::CheckVersion,
                format!(
                    "check that version {} exists on every host",
                    release.version
                ),
                hosts,
                |h| {
                    targets
                        .roles_on(config, h)
                        .iter()
                        .filter_map(|r| config.role(r))
                        .map(|r| cmds::container_exists(config, r, &release.version, h))
                        .collect()
                },
            ),
        );
    }

    let step = (!app_boot)
        .then(|| b.hook("pre-deploy", hosts, true))
        .flatten();
    b.stage("pre-deploy", step.into_iter().collect());

    if inp.kind == PlanKind::Deploy {
        let proxy_hosts: Vec<&String> = hosts
            .iter()
            .filter(|h| {
                targets
                    .roles_on(config, h)
                    .iter()
                    .any(|r| config.role(r).is_some_and(|r| r.runs_proxy()))
            })
            .collect();
        b.stage(
            "proxy",
            on_hosts(
                HostAction::ProxyBoot,
                "ensure kamal-proxy is running".into(),
                hosts,
                |h| cmds::proxy_boot(config, h, proxy_hosts.iter().any(|p| *p == h)),
            ),
        );
    }

    if matches!(inp.kind, PlanKind::Deploy | PlanKind::Redeploy) {
        b.stage(
            "stale-containers",
            on_hosts(
                HostAction::StaleContainers,
                "stop stale containers".into(),
                hosts,
                |h| {
                    targets
                        .roles_on(config, h)
                        .iter()
                        .filter_map(|r| config.role(r))
                        .map(|r| cmds::stale_containers(config, r, h))
                        .collect()
                },
            ),
        );
    }

    // Boot, in groups of boot.limit hosts.
    let group_size = config.boot.limit.unwrap_or(hosts.len()).max(1);
    let mut boot_steps = Vec::new();
    for (group, chunk) in hosts.chunks(group_size).enumerate() {
        let chunk: Vec<String> = chunk.to_vec();
        boot_steps.extend(b.hook("pre-app-boot", &chunk, true));
        for host in &chunk {
            for role in targets.roles_on(config, host) {
                let Some(r) = config.role(role) else { continue };
                boot_steps.push(Step::Boot(BootStep {
                    host: host.clone(),
                    role: role.to_string(),
                    group,
                    container: format!("{}-{}", config.container_prefix(role), release.version),
                    proxy: r.runs_proxy(),
                    commands: cmds::boot(config, r, release, host, inp.secrets),
                }));
            }
        }
        boot_steps.extend(b.hook("post-app-boot", &chunk, true));
        if let Some(wait) = config.boot.wait {
            boot_steps.push(Step::Wait(WaitStep { seconds: wait }));
        }
    }
    b.stage("boot", boot_steps);

    b.stage(
        "tag-latest",
        on_hosts(
            HostAction::TagLatest,
            format!("tag {} as the latest image", release.image),
            hosts,
            |h| vec![cmds::tag_latest(config, release, h)],
        ),
    );

    if inp.kind == PlanKind::Deploy {
        b.stage(
            "prune",
            on_hosts(
                HostAction::Prune,
                "prune old containers and images".into(),
                hosts,
                |h| cmds::prune(config, h),
            ),
        );
    }

    if lock_held {
        b.stage(
            "unlock",
            on_hosts(
                HostAction::LockRelease,
                "release the deploy lock".into(),
                std::slice::from_ref(&targets.primary_host),
                |h| vec![cmds::lock_release(config, h)],
            ),
        );
    }

    let step = (!app_boot)
        .then(|| b.hook("post-deploy", hosts, inp.lock_inherited))
        .flatten();
    b.stage("post-deploy", step.into_iter().collect());

    Plan {
        command: inp.kind,
        release: release.clone(),
        version_source: inp.resolved.source,
        skip_push: inp.skip_push,
        targets: targets.clone(),
        stages: b.stages,
    }
}

//! Building a [`Plan`] from the configuration, the frozen release and the targets.

use crate::config::model::Role;
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
    /// What this machine offers the build: buildx, its docker arch, `pack` (found before
    /// planning).
    pub build_env: super::builder::BuildEnv,
    /// The lock's details as this run writes them.
    pub lock_details: crate::docker::lock::LockDetails,
    /// `--lock-wait`.
    pub lock_wait: Option<LockWaitPlan>,
    /// `--break-stale-lock`.
    pub break_stale_lock: bool,
    /// `--no-revert`: a release that fails on some hosts leaves the others on the new version
    /// (Kamal's behaviour) instead of switching them back.
    pub no_revert: bool,
    /// The error pages to upload (`error_pages_path`), as a tar archive of `4xx.html`/`5xx.html`
    /// files read before planning; `None` when there are none.
    pub error_pages: Option<&'a [u8]>,
    /// `x-dray: proxy: acme_ca_certs` as a tar archive of `ca.pem`, read before planning;
    /// uploaded to each host with a role serving TLS with ACME.
    pub acme_ca: Option<&'a [u8]>,
    /// `setup`: the servers' bootstrap (Docker, `.kamal`, the `docker-setup` hook), right after
    /// the lock; empty otherwise.
    pub bootstrap: Vec<Stage>,
    /// `setup`: every accessory booted, after the proxy; empty otherwise.
    pub accessories: Vec<Stage>,
    /// Fold round trips where Kamal's order of effects on each host allows it: a deploy's
    /// proxy boot and stale-container stop into each host's boot start, and the tag, prune and
    /// release record into one round trip per host. The caller sets it when nothing runs
    /// between those stages that could see the difference: no `pre-app-boot` hook file (it runs
    /// after the proxy and stale stages in Kamal) and no canary (whose plan keeps the proxy
    /// stage and drops the boot). Folding also needs an empty `prepare` stage (error pages,
    /// assets, certificates go on every host before any proxy change otherwise) and no
    /// accessories (`setup` boots them between the proxy and the stale containers).
    pub fold_round_trips: bool,
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
                heading: None,
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
                value: Hole::Runtime.token(),
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
    let setup = inp.kind == PlanKind::Setup;
    // Deploy-like: pull, proxy boot, stale containers, prune (redeploy: pull and stale only).
    let full = matches!(inp.kind, PlanKind::Deploy | PlanKind::Setup);
    let pulls = full || inp.kind == PlanKind::Redeploy;
    let building = !matches!(inp.kind, PlanKind::Rollback | PlanKind::AppBoot) && !inp.skip_push;

    // Connect: pre-connect fires before any SSH use.
    let step = (!app_boot)
        .then(|| b.hook("pre-connect", hosts, inp.lock_inherited))
        .flatten();
    b.stage("connect", step.into_iter().collect());

    // `setup` holds the lock from the start: the bootstrap and the build run under it.
    if setup && lock_held {
        b.stage(
            "lock",
            vec![Step::Lock(cmds::lock(
                config,
                &targets.primary_host,
                &inp.lock_details,
                inp.lock_wait,
                inp.break_stale_lock,
            ))],
        );
    }
    b.stages.extend(inp.bootstrap.iter().cloned());

    if building {
        // Kamal logs in to the registry on this machine before the build pushes (a registry
        // that needs a login refuses the push otherwise); the hosts log in in the pull step.
        // A local registry runs on this machine; Kamal starts it before the pre-build hook.
        if let Some(setup) = cmds::local_registry_setup(config) {
            b.stage(
                "registry-setup",
                vec![Step::Local(LocalStep {
                    purpose: "start the local registry on this machine".into(),
                    label: "localhost".into(),
                    build_dir: None,
                    secret_env: Vec::new(),
                    ensure_builder: None,
                    commands: vec![setup],
                })],
            );
        }
        if let Some(login) = cmds::local_login(config, inp.secrets) {
            b.stage(
                "registry-login",
                vec![Step::Local(LocalStep {
                    purpose: "log in to the registry on this machine".into(),
                    label: "localhost".into(),
                    build_dir: None,
                    secret_env: Vec::new(),
                    ensure_builder: None,
                    commands: vec![login],
                })],
            );
        }
        let step = b.hook("pre-build", hosts, inp.lock_inherited || setup);
        b.stage("pre-build", step.into_iter().collect());
        let secret_env: Vec<(String, String)> = config
            .builder
            .secrets
            .iter()
            .map(|k| {
                let v = inp.secrets.get(k).map(str::to_string).unwrap_or_default();
                (k.clone(), v)
            })
            .collect();
        b.stage(
            "build",
            vec![Step::Local(super::builder::build_step(
                config,
                release,
                inp.no_cache,
                &inp.build_env,
                &secret_env,
            ))],
        );
    }

    if pulls {
        let mut steps = on_hosts(format!("pull {} on the hosts", release.image), hosts, |h| {
            cmds::pull(config, release, h, inp.secrets)
        });
        // A local registry: each host pulls through its own tunnel to this machine.
        for step in &mut steps {
            if let Step::Hosts(h) = step {
                h.tunnel = cmds::pull_tunnel(config);
            }
        }
        b.stage("pull", steps);
    }

    if lock_held && !setup {
        b.stage(
            "lock",
            vec![Step::Lock(cmds::lock(
                config,
                &targets.primary_host,
                &inp.lock_details,
                inp.lock_wait,
                inp.break_stale_lock,
            ))],
        );
    }

    if inp.kind == PlanKind::Rollback {
        b.stage(
            "check",
            on_hosts(
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

    let prepare = prepare_steps(inp);
    let proxy_hosts = super::proxy::proxy_hosts(config, targets);
    // Folded into the boot's start (see `PlanInputs::fold_round_trips`), per host and role in
    // Kamal's order: the proxy, this role's stale containers, then the boot.
    let fold = inp.fold_round_trips
        && matches!(inp.kind, PlanKind::Deploy | PlanKind::Redeploy)
        && prepare.is_empty()
        && inp.accessories.is_empty();

    if full && !fold {
        b.stage(
            "proxy",
            on_hosts("ensure kamal-proxy is running", hosts, |h| {
                cmds::proxy_boot(config, h, proxy_hosts.iter().any(|p| *p == h))
            }),
        );
    }

    b.stages.extend(inp.accessories.iter().cloned());

    if pulls && !fold {
        b.stage(
            "stale-containers",
            on_hosts("stop stale containers", hosts, |h| {
                targets
                    .roles_on(config, h)
                    .iter()
                    .filter_map(|r| config.role(r))
                    .map(|r| cmds::stale_containers(config, r, h))
                    .collect()
            }),
        );
    }

    b.stage("prepare", prepare);

    // What a host switches back to when the release fails elsewhere: the version it ran
    // before, filled by the engine from the boot's `<old version>`.
    let reverts = !inp.no_revert && inp.kind != PlanKind::AppBoot;
    let before = Hole::VersionBefore.token();
    let revert_release = crate::release::Release {
        version: before.clone(),
        image: format!("{}:{before}", config.repository),
        ..release.clone()
    };

    // Boot, in groups of boot.limit hosts.
    let group_size = config.boot.limit.unwrap_or(hosts.len()).max(1);
    let mut boot_steps = Vec::new();
    // Whether any boot waits at the primary-role barrier (a targeted role besides the first).
    let barrier_waits = targets.roles.len() > 1;
    let host_has_primary = |host: &str| {
        targets
            .roles
            .first()
            .is_some_and(|p| targets.roles_on(config, host).contains(&p.as_str()))
    };
    for (group, chunk) in hosts.chunks(group_size).enumerate() {
        let chunk: Vec<String> = chunk.to_vec();
        boot_steps.extend(b.hook("pre-app-boot", &chunk, true));
        for host in &chunk {
            for (i, role) in targets.roles_on(config, host).into_iter().enumerate() {
                let Some(r) = config.role(role) else { continue };
                // The proxy stage's work goes with the host's first role (a deploy's), the
                // stale containers with each role.
                let preamble = fold.then(|| {
                    let proxy = (full && i == 0).then(|| proxy_hosts.iter().any(|p| p == host));
                    crate::docker::boot::start_preamble(proxy)
                });
                let primary = targets.roles.first().map(String::as_str) == Some(role);
                // A role that waits at the barrier does what Kamal's `Boot#run` does before
                // `wait_at_barrier` (and the folded stages) first; not where the host's own
                // primary role boots just before it (the barrier is decided by then).
                let waits = !primary
                    && barrier_waits
                    && !r.replicated()
                    && (config.boot.parallel_roles || !host_has_primary(host));
                let (before_barrier, mut commands) = if waits {
                    let (prepare, rest) =
                        cmds::boot_after_barrier(config, r, release, host, inp.secrets, preamble);
                    (Some(Box::new(prepare)), rest)
                } else {
                    (
                        None,
                        cmds::boot(config, r, release, host, inp.secrets, preamble),
                    )
                };
                // A primary container's readiness opens the barrier the other roles wait at:
                // its settle says so before it stops the old version, as Kamal releases the
                // barrier before `stop_old_version`.
                let announces = primary && barrier_waits && !r.replicated();
                if announces {
                    let app = crate::docker::app::App::new(config, r, host);
                    commands.pop();
                    commands.push(planned(crate::docker::boot::settle_announcing_ready(
                        &app,
                        &release.version,
                        &Hole::OldVersion.token(),
                    )));
                }
                boot_steps.push(Step::Boot(BootStep {
                    host: host.clone(),
                    role: role.to_string(),
                    group,
                    container: format!("{}-{}", config.container_prefix(role), release.version),
                    proxy: r.runs_proxy(),
                    primary,
                    parallel_roles: config.boot.parallel_roles,
                    commands,
                    if_start_lost: cmds::stop_new(config, r, release, host),
                    before_barrier,
                    opens_barrier_when_ready: announces,
                    revert: reverts.then(|| {
                        Box::new(BootStep {
                            host: host.clone(),
                            role: role.to_string(),
                            group,
                            container: format!("{}-{before}", config.container_prefix(role)),
                            proxy: r.runs_proxy(),
                            primary: false,
                            parallel_roles: true,
                            commands: cmds::boot(
                                config,
                                r,
                                &revert_release,
                                host,
                                inp.secrets,
                                None,
                            ),
                            if_start_lost: cmds::stop_new(config, r, &revert_release, host),
                            before_barrier: None,
                            opens_barrier_when_ready: false,
                            revert: None,
                        })
                    }),
                }));
            }
        }
        boot_steps.extend(b.hook("post-app-boot", &chunk, true));
        if let Some(wait) = config.boot.wait {
            boot_steps.push(Step::Wait(WaitStep { seconds: wait }));
        }
    }
    b.stage("boot", boot_steps);

    let records = inp.kind.is_release() && !app_boot;
    if fold {
        // One round trip per host once every host booted: the tag, the prune (a deploy's),
        // the release record, in the stages' order.
        b.stage(
            "tag-latest",
            on_hosts(
                format!("tag {} as the latest image, prune, record", release.image),
                hosts,
                |h| {
                    let roles: Vec<&Role> = read_in_finish(config, targets, h);
                    vec![cmds::finish(
                        config,
                        release,
                        h,
                        full,
                        records.then(|| inp.kind.name()),
                        &roles,
                    )]
                },
            ),
        );
    } else {
        b.stage(
            "tag-latest",
            on_hosts(
                format!("tag {} as the latest image", release.image),
                hosts,
                |h| cmds::tag_latest(config, release, h),
            ),
        );

        if full {
            b.stage(
                "prune",
                on_hosts("prune old containers and images", hosts, |h| {
                    cmds::prune(config, h)
                }),
            );
        }

        // The release, recorded on every host once every host has it (a failure stops the
        // run before this stage): what `rollback` without a version and `status` read.
        if records {
            b.stage(
                "record",
                on_hosts("record the release", hosts, |h| {
                    vec![cmds::record_release(config, release, inp.kind.name(), h)]
                }),
            );
        }
    }

    let unlock = lock_held.then(|| Step::Unlock(cmds::unlock(config, &targets.primary_host)));
    // `setup` runs post-deploy inside its lock, as Kamal's (the deploy is inside `with_lock`);
    // so does any deploy with `x-dray: hooks: post_deploy_locked`.
    let post_deploy_locked = setup || (config.post_deploy_locked && lock_held);
    if !post_deploy_locked {
        b.stage("unlock", unlock.clone().into_iter().collect());
    }
    let step = (!app_boot)
        .then(|| {
            b.hook(
                "post-deploy",
                hosts,
                inp.lock_inherited || post_deploy_locked,
            )
        })
        .flatten();
    b.stage("post-deploy", step.into_iter().collect());
    if post_deploy_locked {
        b.stage("unlock", unlock.into_iter().collect());
    }

    // The result: what every host runs now, read from the host (where the folded tag-latest
    // trip finished, by that trip).
    let rows = hosts
        .iter()
        .flat_map(|h| {
            targets
                .roles_on(config, h)
                .into_iter()
                .filter_map(|r| config.role(r))
                .map(|r| ReadBackRow {
                    host: h.clone(),
                    role: r.name.clone(),
                    command: cmds::running_version(config, r, h),
                    read_by: (fold && read_in_finish_trip(r)).then(|| "tag-latest".to_string()),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    b.stages.push(Stage {
        name: "result".into(),
        heading: None,
        steps: vec![Step::ReadBack(ReadBackStep { rows })],
    });

    Plan {
        command: inp.kind.name().to_string(),
        subcommand: inp.kind.subcommand().map(str::to_string),
        kind: inp.kind,
        release: Some(release.clone()),
        version_source: Some(inp.resolved.source),
        skip_push: inp.skip_push,
        targets: targets.clone(),
        connect: targets.hosts.clone(),
        output: OutputStyle::Prefixed,
        stages: b.stages,
    }
    .shared()
}

/// The roles on `host` whose running version the folded tag-latest trip reads back for the
/// result table: every role but a replicated one (whose several containers keep their own
/// read-back).
fn read_in_finish<'c>(config: &'c Config, targets: &Targets, host: &str) -> Vec<&'c Role> {
    targets
        .roles_on(config, host)
        .into_iter()
        .filter_map(|r| config.role(r))
        .filter(|r| read_in_finish_trip(r))
        .collect()
}

/// Whether the folded tag-latest trip reads `role`'s running version back: not a replicated
/// role's, whose several containers keep their own read-back.
fn read_in_finish_trip(role: &Role) -> bool {
    !role.replicated()
}

/// The `prepare` stage's steps (empty when no host has anything to prepare).
fn prepare_steps(inp: &PlanInputs) -> Vec<Step> {
    let config = inp.config;
    let release = &inp.resolved.release;
    let targets = inp.targets;
    let hosts = &targets.hosts;
    // Before any boot, on every host: the error pages of this version, and per role the
    // bridged assets and the custom certificate (Kamal's app boot does them first, so they are
    // on all hosts before any container starts).
    on_hosts("prepare error pages, assets and certificates", hosts, |h| {
        let mut commands: Vec<PlannedCommand> = inp
            .error_pages
            .map(|pages| cmds::upload_error_pages(config, h, &release.version, pages))
            .into_iter()
            .collect();
        let roles: Vec<_> = targets
            .roles_on(config, h)
            .iter()
            .filter_map(|r| config.role(r))
            .collect();
        let acme_tls = roles.iter().any(|r| {
            r.proxy
                .as_ref()
                .is_some_and(|p| p.ssl && p.ssl_certificate_pem.is_none())
        });
        if let (Some(ca), true) = (inp.acme_ca, acme_tls) {
            commands.push(cmds::upload_acme_ca(config, h, ca));
        }
        for r in roles {
            commands.extend(cmds::prepare_assets(config, r, &release.version, h));
            commands.extend(cmds::upload_certificate(config, r, h, inp.secrets));
        }
        commands
    })
}

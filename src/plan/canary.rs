//! Plans of canary releases (dray only, through the proxy's rollout commands,
//! [`crate::docker::rollout`]):
//!
//! - `deploy --canary N [--canary-allow V]`: a deploy's plan up to the proxy and the prepare
//!   stage (build, pull, lock, `pre-deploy`, …), the lock kept after the run (its message says a
//!   canary of version V runs), the canary's record written on the canary hosts, then on each
//!   host of the primary role the new version's container started beside the old one, deployed
//!   as the proxy's rollout target and given the split. Nothing else changes: the old version
//!   keeps serving the rest, other roles keep their version.
//! - `canary promote`: the canary becomes the main target on its hosts and the old containers
//!   stop; the other roles boot the version as a deploy does; tag latest, prune, the release
//!   recorded, the lock released, `post-deploy`.
//! - `canary abort`: the rollout stops, the canary's containers are removed, the lock released;
//!   the old version is untouched.

use crate::config::secrets::Secrets;
use crate::config::Config;
use crate::docker::app::App;
use crate::docker::rollout::{self, CanaryRecord};
use crate::hooks::{hook_env, HookContext};
use crate::release::Release;

use super::{
    cmds, on_hosts, planned, stage, BootStep, Hole, HookStep, Plan, ReadBackRow, ReadBackStep,
    Stage, Step, Targets, UnlockStep,
};

/// The lock message of a running canary of `version`.
pub fn lock_message(version: &str) -> String {
    format!(
        "Canary of version {version} running: `dray canary promote` or `dray canary abort` ends it"
    )
}

/// Whether a lock's details text is the lock of a canary of `version`.
pub fn is_canary_lock(details: &str, version: &str) -> bool {
    let line = |name: &str| {
        details
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    line("Message:") == Some(lock_message(version).as_str()) && line("Version:") == Some(version)
}

/// What canary plans are built from.
#[derive(Debug, Clone, Copy)]
pub struct CanaryInputs<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// The canary's release.
    pub release: &'a Release,
    /// Targeted roles and hosts.
    pub targets: &'a Targets,
    /// The canary's record (its role, split).
    pub record: &'a CanaryRecord,
    /// The hosts of the canary's role that run it.
    pub hosts: &'a [String],
    /// `-H`: no hooks.
    pub skip_hooks: bool,
    /// The secrets (env files, hook environments).
    pub secrets: &'a Secrets,
}

impl CanaryInputs<'_> {
    fn hook(&self, name: &str, command: &str, sub: Option<&str>, hosts: &[String]) -> Option<Step> {
        if self.skip_hooks {
            return None;
        }
        let roles = self
            .targets
            .roles_filtered
            .then_some(self.targets.roles.as_slice());
        let ctx = HookContext {
            release: self.release,
            command,
            subcommand: sub,
            hosts,
            roles,
            lock: true,
            runtime: None,
        };
        let mut env = hook_env(name, &ctx, self.secrets.iter());
        if name == "post-deploy" {
            env.push(crate::hooks::HookVar {
                name: "KAMAL_RUNTIME".into(),
                value: Hole::Runtime.token(),
                secret: false,
            });
        }
        Some(Step::Hook(HookStep {
            hook: name.to_string(),
            path: format!("{}/{name}", self.config.hooks_path),
            env,
        }))
    }

    fn role(&self) -> Option<&crate::config::model::Role> {
        self.config.role(&self.record.role)
    }
}

/// The stages of a deploy's plan a canary's start keeps, in the deploy's order.
const KEPT: &[&str] = &[
    "connect",
    "registry-setup",
    "registry-login",
    "pre-build",
    "build",
    "pull",
    "lock",
    "pre-deploy",
    "proxy",
    "prepare",
];

/// `deploy --canary`: `deploy` (the plan of the same deploy) cut after its `prepare` stage, its
/// lock kept after the run, the record written right after the lock, then the canary started on
/// each canary host, between `pre-app-boot` and `post-app-boot`; the result is the canary's
/// version on each canary host.
pub fn start(mut deploy: Plan, inp: &CanaryInputs) -> Plan {
    let config = inp.config;
    let version = &inp.release.version;
    let mut stages = Vec::new();
    for mut st in std::mem::take(&mut deploy.stages) {
        if !KEPT.contains(&st.name.as_str()) {
            continue;
        }
        let is_lock = st.name == "lock";
        for step in &mut st.steps {
            if let Step::Lock(l) = step {
                // Kept until promote or abort; no heartbeat (nothing refreshes it after the
                // run, and a lock without one is never stale).
                l.release_at_end = false;
                l.heartbeat = None;
            }
        }
        stages.push(st);
        if is_lock {
            stages.push(stage(
                "canary-record",
                on_hosts("record the canary", inp.hosts, |h| {
                    vec![planned(rollout::write_record(config, inp.record, h))]
                }),
            ));
        }
    }
    let abort_hint =
        "`dray canary abort` removes the canary from every host and releases the lock; \
                      `dray app logs` shows why it failed";
    let mut steps: Vec<Step> = inp
        .hook("pre-app-boot", "deploy", None, inp.hosts)
        .into_iter()
        .collect();
    if let Some(role) = inp.role() {
        steps.extend(on_hosts(
            format!("start the canary {version} beside the running version"),
            inp.hosts,
            |h| {
                let app = App::new(config, role, h);
                let mut commands =
                    vec![planned(rollout::check_not_running(&app, version)).hint(abort_hint)];
                // The boot's first round trip: clash rename, env file (secrets on stdin), audit,
                // `docker run`.
                commands.extend(
                    cmds::boot(config, role, inp.release, h, inp.secrets, None)
                        .into_iter()
                        .take(1)
                        .map(|c| c.hint(abort_hint)),
                );
                commands.push(
                    planned(rollout::start(
                        &app,
                        version,
                        inp.record.percent,
                        &inp.record.allow,
                    ))
                    .hint(abort_hint),
                );
                commands.push(
                    cmds::audit(
                        config,
                        inp.release,
                        h,
                        Some(&role.name),
                        format!("Started canary {version} ({})", split_text(inp.record)),
                    )
                    .ignore_errors(),
                );
                commands
            },
        ));
    }
    steps.extend(inp.hook("post-app-boot", "deploy", None, inp.hosts));
    stages.push(stage("canary", steps));
    stages.push(stage("result", vec![Step::ReadBack(canary_read_back(inp))]));
    deploy.stages = stages.into_iter().filter(|s| !s.steps.is_empty()).collect();
    deploy
}

/// `20% of kamal-rollout cookies`, `kamal-rollout in alice,bob`, or both.
pub fn split_text(record: &CanaryRecord) -> String {
    let mut parts = Vec::new();
    if record.percent > 0 || record.allow.is_empty() {
        parts.push(format!(
            "{}% of {} cookies",
            record.percent,
            rollout::COOKIE
        ));
    }
    if !record.allow.is_empty() {
        parts.push(format!("{} in {}", rollout::COOKIE, record.allow.join(",")));
    }
    parts.join(", and ")
}

/// The canary's version on each canary host when its container runs (the result of a start).
fn canary_read_back(inp: &CanaryInputs) -> ReadBackStep {
    let rows = match inp.role() {
        Some(role) => inp
            .hosts
            .iter()
            .map(|h| {
                let app = App::new(inp.config, role, h);
                let name = app.container_name(&inp.release.version);
                ReadBackRow {
                    host: h.clone(),
                    role: role.name.clone(),
                    command: planned(
                        crate::command::CommandSpec::new(
                            format!("find the running canary on {h}"),
                            "sh",
                        )
                        .arg("-c")
                        .arg(format!(
                            "[ -z \"$(docker ps --quiet --filter {})\" ] || echo {}",
                            crate::shell::quote(&format!("name=^{name}$")),
                            crate::shell::quote(&inp.release.version)
                        )),
                    )
                    .ignore_errors(),
                    read_by: None,
                }
            })
            .collect(),
        None => Vec::new(),
    };
    ReadBackStep { rows }
}

/// `canary promote`: on the canary hosts the canary becomes the main target and the old
/// containers stop; the other roles boot the version (as a deploy, between `pre-app-boot` and
/// `post-app-boot`); tag latest, prune, the release recorded and the canary's record removed,
/// the lock released, `post-deploy`.
pub fn promote(inp: &CanaryInputs, unlock: UnlockStep) -> Vec<Stage> {
    let config = inp.config;
    let release = inp.release;
    let version = &release.version;
    let targets = inp.targets;
    let mut stages = Vec::new();
    if let Some(role) = inp.role() {
        stages.push(stage(
            "promote",
            on_hosts(format!("promote the canary {version}"), inp.hosts, |h| {
                let app = App::new(config, role, h);
                vec![
                    planned(rollout::promote(&app, version, version)),
                    cmds::audit(
                        config,
                        release,
                        h,
                        Some(&role.name),
                        format!("Promoted canary {version}"),
                    )
                    .ignore_errors(),
                ]
            }),
        ));
    }
    // The other roles, as a deploy boots them.
    let others: Vec<(String, String)> = targets
        .hosts
        .iter()
        .flat_map(|h| {
            targets
                .roles_on(config, h)
                .into_iter()
                .filter(|r| *r != inp.record.role)
                .map(|r| (h.clone(), r.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    if !others.is_empty() {
        let mut hosts: Vec<String> = others.iter().map(|(h, _)| h.clone()).collect();
        hosts.dedup();
        let mut steps: Vec<Step> = inp
            .hook("pre-app-boot", "canary", Some("promote"), &hosts)
            .into_iter()
            .collect();
        for (host, role) in &others {
            let Some(r) = config.role(role) else { continue };
            steps.push(Step::Boot(BootStep {
                host: host.clone(),
                role: role.clone(),
                group: 0,
                container: format!("{}-{version}", config.container_prefix(role)),
                proxy: r.runs_proxy(),
                // The primary role is promoted already (its stage came first): nothing to wait
                // for, so no boot waits behind the primary-role barrier.
                primary: true,
                parallel_roles: config.boot.parallel_roles,
                commands: cmds::boot(config, r, release, host, inp.secrets, None),
                if_start_lost: cmds::stop_new(config, r, release, host),
                before_barrier: None,
                opens_barrier_when_ready: false,
                revert: None,
            }));
        }
        steps.extend(inp.hook("post-app-boot", "canary", Some("promote"), &hosts));
        stages.push(stage("boot", steps));
    }
    let hosts = &targets.hosts;
    stages.push(stage(
        "tag-latest",
        on_hosts(
            format!("tag {} as the latest image", release.image),
            hosts,
            |h| cmds::tag_latest(config, release, h),
        ),
    ));
    stages.push(stage(
        "prune",
        on_hosts("prune old containers and images", hosts, |h| {
            cmds::prune(config, h)
        }),
    ));
    stages.push(stage(
        "record",
        on_hosts("record the release", hosts, |h| {
            let mut c = vec![cmds::record_release(config, release, "deploy", h)];
            if inp.hosts.iter().any(|x| x == h) {
                c.push(planned(rollout::remove_record(config, h)));
            }
            c
        }),
    ));
    stages.push(stage("unlock", vec![Step::Unlock(unlock)]));
    stages.push(stage(
        "post-deploy",
        inp.hook("post-deploy", "canary", Some("promote"), hosts)
            .into_iter()
            .collect(),
    ));
    stages
}

/// `canary abort`: on the canary hosts the rollout stops, the canary's container is stopped and
/// removed, the record removed (audited); the lock released. The old version is untouched.
pub fn abort(inp: &CanaryInputs, unlock: UnlockStep) -> Vec<Stage> {
    let config = inp.config;
    let version = &inp.release.version;
    let mut stages = Vec::new();
    if let Some(role) = inp.role() {
        stages.push(stage(
            "abort",
            on_hosts(format!("remove the canary {version}"), inp.hosts, |h| {
                let app = App::new(config, role, h);
                vec![
                    planned(rollout::abort(&app, version)),
                    planned(rollout::remove_record(config, h)),
                    cmds::audit(
                        config,
                        inp.release,
                        h,
                        Some(&role.name),
                        format!("Aborted canary {version}"),
                    )
                    .ignore_errors(),
                ]
            }),
        ));
    }
    stages.push(stage("unlock", vec![Step::Unlock(unlock)]));
    stages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canary_lock_is_recognised_by_message_and_version() {
        let text = format!(
            "Locked by: E2E at 2024-01-01T00:00:00Z\nVersion: v2\nMessage: {}\nMachine: m",
            lock_message("v2")
        );
        assert!(is_canary_lock(&text, "v2"));
        assert!(!is_canary_lock(&text, "v3"));
        assert!(!is_canary_lock(
            "Locked by: E2E at 2024-01-01T00:00:00Z\nVersion: v2\nMessage: Automatic deploy lock",
            "v2"
        ));
    }

    #[test]
    fn the_split_is_said_as_it_routes() {
        let r = CanaryRecord {
            version: "v".into(),
            role: "web".into(),
            percent: 20,
            allow: Vec::new(),
        };
        assert_eq!(split_text(&r), "20% of kamal-rollout cookies");
        let both = CanaryRecord {
            allow: vec!["a".into()],
            ..r.clone()
        };
        assert_eq!(
            split_text(&both),
            "20% of kamal-rollout cookies, and kamal-rollout in a"
        );
        let only = CanaryRecord { percent: 0, ..both };
        assert_eq!(split_text(&only), "kamal-rollout in a");
    }

    #[test]
    fn promote_boots_the_other_roles_without_waiting_for_a_primary_boot() {
        let config = crate::docker::test_support::config_with(
            &format!(
                "{}proxy:\n  host: example.com\n",
                crate::docker::test_support::BASE
            ),
            None,
        );
        let targets = Targets::resolve(&config, &crate::plan::Filters::default()).expect("targets");
        let release = Release::new("app", "dhh/app", None, "v2", "me", "2024-01-01T00:00:00Z");
        let record = CanaryRecord {
            version: "v2".into(),
            role: "web".into(),
            percent: 20,
            allow: Vec::new(),
        };
        let secrets = Secrets::default();
        let hosts = vec!["1.1.1.1".to_string()];
        let inp = CanaryInputs {
            config: &config,
            release: &release,
            targets: &targets,
            record: &record,
            hosts: &hosts,
            skip_hooks: true,
            secrets: &secrets,
        };
        let stages = promote(&inp, cmds::unlock(&config, "1.1.1.1"));
        let boots: Vec<&BootStep> = stages
            .iter()
            .flat_map(|s| &s.steps)
            .filter_map(|s| match s {
                Step::Boot(b) => Some(b),
                _ => None,
            })
            .collect();
        assert_eq!(boots.len(), 1);
        assert_eq!(boots[0].role, "workers");
        // A non-primary boot waits for a primary boot's verdict, and there is none here.
        assert!(boots.iter().all(|b| b.primary));
        let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "promote",
                "boot",
                "tag-latest",
                "prune",
                "record",
                "unlock",
                "post-deploy"
            ]
        );
    }

    #[test]
    fn kept_stages_are_the_deploys() {
        // The names a deploy's plan gives its stages (plan/build.rs): a rename there must be
        // seen here.
        let src = include_str!("build.rs");
        for name in KEPT {
            assert!(src.contains(&format!("\"{name}\"")), "{name}");
        }
    }
}

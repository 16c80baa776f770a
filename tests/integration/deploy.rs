//! End-to-end deploys on the local fleet through the engine: real git, real sshd, real Docker
//! engines per host, real registry, real hook scripts. (The remote used here is the system
//! `ssh` per command; dray's own multiplexed remote is tested in `remote.rs`.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use dray::config::{load, LoadOptions};
use dray::engine::{Emitter, Engine, Event, Outcome};
use dray::plan::{build_plan, Filters, PlanInputs, PlanKind, Targets};
use dray::release::{resolve, ResolveInputs};
use dray::report::Reporter;

use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::Project;
use crate::support::ssh_cli::SshCliRemote;

#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Event>>>);

impl Reporter for Collect {
    fn emit(&mut self, event: &Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event.clone());
        }
    }
}

struct Run {
    outcome: Outcome,
    events: Vec<Event>,
    version: String,
}

fn run(
    fleet: &Fleet,
    project: &Project,
    kind: PlanKind,
    version: Option<&str>,
    skip_push: bool,
) -> Run {
    let mut env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| k != "VERSION" && !k.starts_with("KAMAL_") && k != "DRAY_RELEASE")
        .collect();
    env.insert("GIT_CONFIG_GLOBAL".into(), "/dev/null".into());
    let opts = LoadOptions {
        config_file: "config/deploy.yml".into(),
        destination: None,
        cwd: project.path().to_path_buf(),
        env: env.clone(),
    };
    let config = load(&opts).expect("config loads");
    let lookup = |name: &str| env.get(name).cloned();
    let mut inputs = ResolveInputs::new(&config.service, &config.repository, project.path());
    inputs.flag_version = version;
    inputs.env = &lookup;
    inputs.builder_context = config.builder.context.is_some();
    let resolved = resolve(&inputs).expect("release resolves");
    let targets = Targets::resolve(&config, &Filters::default()).expect("targets");
    let secrets = dray::config::secrets::Secrets::load(
        std::path::Path::new(&config.secrets_path),
        None,
        project.path(),
        &env,
    )
    .expect("secrets");
    let plan = build_plan(&PlanInputs {
        kind,
        config: &config,
        resolved: &resolved,
        targets: &targets,
        skip_push,
        no_cache: false,
        skip_hooks: false,
        secrets: &secrets,
        lock_inherited: false,
        buildx: false,
    });
    let collect = Collect::default();
    let remote = Arc::new(SshCliRemote {
        config: fleet.ssh_config().to_path_buf(),
    });
    let engine = Engine::new(
        &plan,
        &config,
        &secrets,
        remote,
        project.path().to_path_buf(),
        Emitter::new(Box::new(collect.clone())),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = rt.block_on(engine.run());
    let events = collect.0.lock().map(|v| v.clone()).unwrap_or_default();
    Run {
        outcome,
        events,
        version: resolved.release.version.clone(),
    }
}

fn served_version(fleet: &Fleet, host: &str, service: &str, role: &str) -> String {
    fleet
        .ssh_ok(
            host,
            &format!(
                "c=$(docker ps --filter label=service={service} --filter label=role={role} --format '{{{{.Names}}}}' | head -1); docker exec \"$c\" wget -q -O - http://127.0.0.1/version"
            ),
        )
        .trim()
        .to_string()
}

fn hook_versions(log: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut hook = String::new();
    for line in log.lines() {
        if let Some((_, h)) = line.split_once("hook=") {
            hook = h.trim().to_string();
        } else if let Some(v) = line.trim().strip_prefix("KAMAL_VERSION=") {
            out.push((hook.clone(), v.to_string()));
        }
    }
    out
}

#[test]
fn deploy_boots_every_host_and_hooks_see_the_built_tag() {
    let Some(fleet) = Fleet::get() else { return };
    let project = Project::new(fleet, &unique_name("e2e-deploy"), |d| d);
    let r = run(fleet, &project, PlanKind::Deploy, None, false);
    let failure = format!(
        "{:?}\n{:#?}",
        r.outcome,
        r.events
            .iter()
            .filter(|e| matches!(
                e,
                Event::HostStepFinished { ok: false, .. } | Event::HostOutput { .. }
            ))
            .collect::<Vec<_>>()
    );
    assert_eq!(r.outcome.exit.code(), 0, "{failure}");
    assert_eq!(r.version, project.head());
    let hosts = fleet.require_hosts(3);
    for host in &hosts[..2] {
        assert_eq!(
            served_version(fleet, host, &project.service, "web"),
            r.version
        );
    }
    assert_eq!(
        served_version(fleet, &hosts[2], &project.service, "workers"),
        r.version
    );
    let seen = hook_versions(&project.hook_log());
    let names: Vec<&str> = seen.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(
        names,
        [
            "pre-connect",
            "pre-build",
            "pre-deploy",
            "pre-app-boot",
            "post-app-boot",
            "post-deploy"
        ],
        "hook order"
    );
    assert!(seen.iter().all(|(_, v)| *v == r.version), "{seen:?}");
    let results: Vec<&Event> = r
        .events
        .iter()
        .filter(|e| matches!(e, Event::HostResult { .. }))
        .collect();
    assert_eq!(results.len(), 3);
    project.cleanup(fleet);
}

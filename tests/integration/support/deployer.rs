//! Running deploys through the engine in tests: real git, real sshd, real Docker engines per
//! host, real registry, real hook scripts (the remote is the system `ssh` per command).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use dray::config::{load, LoadOptions};
use dray::engine::EventSink;
use dray::engine::{Emitter, Engine, Event, Outcome};
use dray::plan::{build_plan, Filters, PlanInputs, PlanKind, Targets};
use dray::release::{resolve, ResolveInputs};

use super::fleet::Fleet;
use super::project::Project;
use super::ssh_cli::fleet_remote;

type Hook = Arc<dyn Fn(&Event) + Send + Sync>;

/// Reports the run's events into a list; `cancel_when` may ask for a cancel (first ctrl-c).
#[derive(Clone)]
pub struct Collect(Arc<Mutex<Vec<Event>>>, Hook);

impl EventSink for Collect {
    fn emit(&mut self, event: &Event) {
        (self.1)(event);
        if let Ok(mut v) = self.0.lock() {
            v.push(event.clone());
        }
    }
}

pub struct Run {
    pub outcome: Outcome,
    pub events: Vec<Event>,
    pub version: String,
}

pub fn run(
    fleet: &Fleet,
    project: &Project,
    kind: PlanKind,
    version: Option<&str>,
    skip_push: bool,
) -> Run {
    run_with(fleet, project, kind, version, skip_push, |_| false)
}

pub fn run_with(
    fleet: &Fleet,
    project: &Project,
    kind: PlanKind,
    version: Option<&str>,
    skip_push: bool,
    cancel_when: impl Fn(&Event) -> bool + Send + Sync + 'static,
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
        build_env: dray::plan::builder::BuildEnv::legacy(),
        lock_details: dray::lock::details(
            "test",
            &resolved.release.version,
            dray::docker::lock::AUTOMATIC_MESSAGE,
        ),
        lock_wait: None,
        break_stale_lock: false,
        no_revert: false,
        error_pages: None,
        acme_ca: None,
        bootstrap: Vec::new(),
        accessories: Vec::new(),
        fold_round_trips: dray::hooks::find_hook(
            project.path(),
            &config.hooks_path,
            "pre-app-boot",
        )
        .is_none(),
    });
    let cancel_slot: Arc<Mutex<Option<dray::engine::CancelHandle>>> = Arc::default();
    let slot = cancel_slot.clone();
    let collect = Collect(
        Arc::default(),
        Arc::new(move |e: &Event| {
            if cancel_when(e) {
                if let Some(h) = slot.lock().ok().and_then(|s| s.clone()) {
                    h.cancel();
                }
            }
        }),
    );
    let remote = Arc::new(fleet_remote(fleet.ssh_config().to_path_buf()));
    let engine = Engine::new(
        &plan,
        &config,
        remote,
        project.path().to_path_buf(),
        Emitter::new(Box::new(collect.clone())),
    );
    if let Ok(mut slot) = cancel_slot.lock() {
        *slot = Some(engine.cancel_handle());
    }
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

pub fn served_version(fleet: &Fleet, host: &str, service: &str, role: &str) -> String {
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

pub fn hook_versions(log: &str) -> Vec<(String, String)> {
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

pub fn ps_all(fleet: &Fleet, service: &str) -> Vec<String> {
    fleet
        .hosts()
        .iter()
        .map(|h| {
            fleet.ssh_ok(
                h,
                &format!("docker ps -a --filter label=service={service} --format '{{{{.Names}}}} {{{{.Status}}}}' | sed 's/ (.*//; s/ [0-9].*//' | sort"),
            )
        })
        .collect()
}

pub fn assert_ok(r: &Run) {
    let detail: Vec<&Event> = r
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::HostStepFinished { ok: false, .. }
                    | Event::HostOutput { .. }
                    | Event::RunFinished { .. }
            )
        })
        .collect();
    assert_eq!(r.outcome.exit.code(), 0, "{:?}\n{detail:#?}", r.outcome);
}

pub fn every_host_serves(fleet: &Fleet, project: &Project, version: &str) {
    let hosts = fleet.require_hosts(3);
    for host in &hosts[..2] {
        assert_eq!(
            served_version(fleet, host, &project.service, "web"),
            version,
            "{host}"
        );
    }
    assert_eq!(
        served_version(fleet, &hosts[2], &project.service, "workers"),
        version
    );
}

pub fn lock_present(fleet: &Fleet, service: &str) -> bool {
    fleet.require_hosts(1);
    let host = &fleet.hosts()[0];
    !fleet
        .ssh_ok(
            host,
            &format!("ls -d .kamal/lock-{service} 2>/dev/null || true"),
        )
        .trim()
        .is_empty()
}

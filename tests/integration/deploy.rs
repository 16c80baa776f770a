//! End-to-end deploys on the local fleet through the engine: real git, real sshd, real Docker
//! engines per host, real registry, real hook scripts. (The remote used here is the system
//! `ssh` per command; dray's own multiplexed remote is tested in `remote.rs`.)

use dray::engine::Event;
use dray::plan::PlanKind;

use crate::support::deployer::*;
use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::Project;

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

#[test]
fn dirty_tree_with_context_one_version_everywhere() {
    let Some(fleet) = Fleet::get() else { return };
    let project = Project::new(fleet, &unique_name("e2e-dirty"), |d| {
        d.replace(
            "builder:\n  arch: amd64",
            "builder:\n  arch: amd64\n  context: .",
        )
    });
    crate::support::write(&project.path().join("example/extra.txt"), "uncommitted\n");
    let r = run(fleet, &project, PlanKind::Deploy, None, false);
    assert_ok(&r);
    assert!(
        r.version
            .starts_with(&format!("{}_uncommitted_", project.head())),
        "{}",
        r.version
    );
    every_host_serves(fleet, &project, &r.version);
    let seen = hook_versions(&project.hook_log());
    assert!(
        seen.len() >= 6 && seen.iter().all(|(_, v)| *v == r.version),
        "{seen:?}"
    );
    project.cleanup(fleet);
}

#[test]
fn version_flag_is_the_tag_everywhere() {
    let Some(fleet) = Fleet::get() else { return };
    let project = Project::new(fleet, &unique_name("e2e-flag"), |d| d);
    let r = run(fleet, &project, PlanKind::Deploy, Some("1.2.3"), false);
    assert_ok(&r);
    every_host_serves(fleet, &project, "1.2.3");
    let seen = hook_versions(&project.hook_log());
    assert!(seen.iter().all(|(_, v)| v == "1.2.3"), "{seen:?}");
    project.cleanup(fleet);
}

#[test]
fn skip_push_deploys_an_image_pushed_by_plain_docker() {
    let Some(fleet) = Fleet::get() else { return };
    let project = Project::new(fleet, &unique_name("e2e-skip"), |d| d);
    let image = format!("127.0.0.1:5000/{}:1.2.3", project.service);
    let build = std::process::Command::new("docker")
        .current_dir(project.path())
        .args([
            "build",
            "-q",
            "--label",
            &format!("service={}", project.service),
            "-t",
            &image,
            ".",
        ])
        .output()
        .expect("docker build");
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let push = std::process::Command::new("docker")
        .args(["push", &image])
        .output()
        .expect("push");
    assert!(
        push.status.success(),
        "{}",
        String::from_utf8_lossy(&push.stderr)
    );
    let r = run(fleet, &project, PlanKind::Deploy, Some("1.2.3"), true);
    assert_ok(&r);
    every_host_serves(fleet, &project, "1.2.3");
    let seen = hook_versions(&project.hook_log());
    assert!(!seen.iter().any(|(h, _)| h == "pre-build"), "{seen:?}");
    assert!(seen.iter().all(|(_, v)| v == "1.2.3"), "{seen:?}");
    project.cleanup(fleet);
}

#[test]
fn failing_pre_deploy_hook_changes_no_container_and_releases_the_lock() {
    let Some(fleet) = Fleet::get() else { return };
    let project = Project::new(fleet, &unique_name("e2e-hookfail"), |d| d);
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("v1"), false));
    let before = ps_all(fleet, &project.service);
    crate::support::write(
        &project.path().join(".kamal/hooks/pre-deploy"),
        "#!/bin/sh\necho 'checks are red' >&2\nexit 3\n",
    );
    let r = run(fleet, &project, PlanKind::Deploy, Some("v2"), false);
    assert_ne!(r.outcome.exit.code(), 0);
    let error = r.outcome.error_text().unwrap_or_default();
    assert!(
        error.contains("pre-deploy") && error.contains("exit status 3"),
        "{error}"
    );
    assert!(error.contains("checks are red"), "{error}");
    assert_eq!(ps_all(fleet, &project.service), before);
    assert!(!lock_present(fleet, &project.service));
    every_host_serves(fleet, &project, "v1");
    project.cleanup(fleet);
}

#[test]
fn broken_image_keeps_the_old_version_serving() {
    let Some(fleet) = Fleet::get() else { return };
    let project = Project::new(fleet, &unique_name("e2e-broken"), |d| {
        format!("{d}\ndeploy_timeout: 8\n")
    });
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("v1"), false));
    // The new version never answers /up: the proxy's health check (web) and Docker's
    // HEALTHCHECK (workers) both fail.
    let start = std::fs::read_to_string(project.path().join("example/start")).expect("read");
    let broken = start.replace("printf 'OK\\n' >\"$root/up\"", "true");
    assert_ne!(broken, start, "the /up line changed");
    crate::support::write(&project.path().join("example/start"), &broken);
    crate::support::project::git(project.path(), &["commit", "-qam", "broken"]);
    let log_before = project.hook_log();
    let r = run(fleet, &project, PlanKind::Deploy, Some("v2"), false);
    assert_ne!(r.outcome.exit.code(), 0);
    every_host_serves(fleet, &project, "v1");
    let hosts = fleet.require_hosts(3);
    let workers = fleet.ssh_ok(&hosts[2], &format!("docker ps -a --filter label=service={} --filter label=role=workers --format '{{{{.Names}}}}'", project.service));
    assert!(
        !workers.contains("-v2"),
        "the worker was replaced: {workers}"
    );
    let new_log = project.hook_log()[log_before.len()..].to_string();
    assert!(
        !new_log.contains("hook=post-deploy"),
        "post-deploy ran: {new_log}"
    );
    let output: Vec<&Event> = r
        .events
        .iter()
        .filter(|e| matches!(e, Event::HostOutput { .. }))
        .collect();
    assert!(!output.is_empty(), "no container log tail shown");
    assert!(r
        .outcome
        .error_text()
        .unwrap_or_default()
        .contains("deploy_timeout"));
    project.cleanup(fleet);
}

#[test]
fn rollback_returns_every_host_to_the_old_version() {
    let Some(fleet) = Fleet::get() else { return };
    let project = Project::new(fleet, &unique_name("e2e-rollback"), |d| d);
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("v1"), false));
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("v2"), false));
    every_host_serves(fleet, &project, "v2");
    let log_before = project.hook_log();
    let r = run(fleet, &project, PlanKind::Rollback, Some("v1"), true);
    assert_ok(&r);
    every_host_serves(fleet, &project, "v1");
    let seen = hook_versions(&project.hook_log()[log_before.len()..]);
    let names: Vec<&str> = seen.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(
        names,
        [
            "pre-connect",
            "pre-deploy",
            "pre-app-boot",
            "post-app-boot",
            "post-deploy"
        ]
    );
    assert!(seen.iter().all(|(_, v)| v == "v1"));
    project.cleanup(fleet);
}

#[test]
fn cancel_during_boot_leaves_an_app_on_every_host_and_no_lock() {
    let Some(fleet) = Fleet::get() else { return };
    let project = Project::new(fleet, &unique_name("e2e-cancel"), |d| {
        format!("{d}\nboot:\n  limit: 1\n")
    });
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("v1"), false));
    let r = run_with(
        fleet,
        &project,
        PlanKind::Deploy,
        Some("v2"),
        false,
        |e| matches!(e, Event::HostStepStarted { step, .. } if step == "boot"),
    );
    assert_eq!(r.outcome.exit.code(), 130, "{:?}", r.outcome);
    let hosts = fleet.require_hosts(3);
    for (host, role) in [
        (&hosts[0], "web"),
        (&hosts[1], "web"),
        (&hosts[2], "workers"),
    ] {
        let v = served_version(fleet, host, &project.service, role);
        assert!(v == "v1" || v == "v2", "{host} serves {v:?}");
    }
    assert!(!lock_present(fleet, &project.service));
    project.cleanup(fleet);
}

#[test]
fn cli_deploy_json_events_parse_and_end_with_every_host() {
    let Some(fleet) = Fleet::get() else { return };
    let project = Project::new(fleet, &unique_name("e2e-json"), |d| d);
    let dray = crate::support::dray_bin();
    // A pre-deploy hook that runs dray itself: it must see the parent's release and lock.
    crate::support::write(
        &project.path().join(".kamal/hooks/pre-deploy"),
        &format!(
            "#!/bin/sh\nset -e\n{} deploy --dry-run --output json > .kamal/nested-plan.json\n",
            dray.display()
        ),
    );
    let out = crate::support::dray_cmd(
        project.path(),
        &["deploy", "--output", "json", "--version", "j1"],
    )
    .env("GIT_CONFIG_GLOBAL", "/dev/null")
    .output()
    .expect("run dray");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"run_started"));
    assert_eq!(kinds.last(), Some(&"run_finished"));
    for kind in [
        "stage_started",
        "stage_finished",
        "hook_started",
        "hook_finished",
        "host_step_started",
        "host_step_finished",
        "lock_acquired",
        "lock_released",
        "host_result",
    ] {
        assert!(kinds.contains(&kind), "no {kind} event in {kinds:?}");
    }
    let results: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "host_result")
        .collect();
    assert_eq!(results.len(), 3);
    for r in &results {
        assert_eq!(r["version"], "j1");
        assert_eq!(r["ok"], true);
        for key in ["host", "role", "version", "ok"] {
            assert!(r.get(key).is_some(), "host_result lacks {key}");
        }
    }
    let finished = events.last().expect("last");
    assert_eq!(finished["ok"], true);
    assert_eq!(finished["exit_code"], 0);
    assert!(finished["seconds"].as_f64().unwrap_or(0.0) > 0.0);
    let nested: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(project.path().join(".kamal/nested-plan.json"))
            .expect("nested plan"),
    )
    .expect("nested plan is JSON");
    assert_eq!(nested["version_source"], "parent");
    assert_eq!(nested["release"]["version"], "j1");
    let stages: Vec<&str> = nested["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        !stages.contains(&"lock") && !stages.contains(&"unlock"),
        "nested dray takes the lock again: {stages:?}"
    );
    project.cleanup(fleet);
}

//! dray's record of successful releases on the hosts, and what reads it: `rollback` without a
//! version; and `x-dray: hooks: post_deploy_locked`.

use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::Project;

/// The version each web/workers container of `service` runs on `host` (`docker ps` names).
fn running(fleet: &Fleet, host: &str, service: &str) -> Vec<String> {
    let out = fleet.ssh_ok(
        host,
        &format!("docker ps --filter label=service={service} --format '{{{{.Names}}}}'"),
    );
    out.lines().map(str::to_string).collect()
}

/// deploy v1 → deploy v2 → `rollback` (no version) → every host runs v1; with only one release
/// recorded, or hosts that disagree, `rollback` refuses and names the hosts.
#[test]
fn rollback_without_a_version_goes_back_to_the_previous_release() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let p = Project::new(fleet, &unique_name("e2e-rollback-prev"), |d| d);
    let s = p.service.clone();
    p.dray_ok(&["deploy", "--version", "p1"]);
    let (code, _, err) = p.dray(&["rollback"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no previous release recorded on"), "{err}");
    assert!(err.contains(&hosts[0]), "{err}");

    p.dray_ok(&["deploy", "--version", "p2"]);
    let record = fleet
        .read_file(&hosts[0], &format!("~/.kamal/apps/{s}/dray-releases"))
        .unwrap_or_default();
    let versions: Vec<&str> = record
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(versions, ["p1", "p2"], "{record}");

    let (code, out, err) = p.dray(&["rollback"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for host in &hosts {
        let names = running(fleet, host, &s);
        assert!(
            !names.is_empty() && names.iter().all(|n| n.ends_with("-p1")),
            "{host}: {names:?}"
        );
    }
    // The rollback is a release too: the previous one is now p2.
    let (code, _, err) = p.dray(&["rollback", "--dry-run"]);
    assert_eq!(code, 0, "{err}");

    // A release that reached one host only: the hosts disagree, nothing runs.
    p.dray_ok(&["deploy", "--version", "p3", "-h", &hosts[0]]);
    let (code, _, err) = p.dray(&["rollback"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the hosts disagree"), "{err}");
    assert!(err.contains(&format!("{} p1", hosts[0])), "{err}");
    assert!(err.contains(&format!("{} p2", hosts[1])), "{err}");
    p.cleanup_all(fleet);
}

/// With `x-dray: hooks: post_deploy_locked: true`, post-deploy runs before the lock is released
/// (`KAMAL_LOCK=true`, and the lock directory exists while it runs); without it, after.
#[test]
fn post_deploy_can_run_inside_the_lock() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let p = Project::new(fleet, &unique_name("e2e-post-locked"), |d| {
        format!("{d}\nx-dray:\n  hooks:\n    post_deploy_locked: true\n")
    });
    let s = p.service.clone();
    // The hook records whether the lock is on the primary host while it runs.
    let hook = p.path().join(".kamal/hooks/post-deploy");
    let ssh = format!(
        "ssh -F {} {} test -d .kamal/lock-{s} && echo held >> .kamal/lock-seen || echo free >> .kamal/lock-seen",
        fleet.ssh_config().display(),
        hosts[0]
    );
    let text = std::fs::read_to_string(&hook).expect("hook");
    std::fs::write(&hook, format!("{text}\n{ssh}\n")).expect("write hook");
    crate::support::project::git(p.path(), &["commit", "-qam", "hook"]);
    p.dray_ok(&["deploy", "--version", "l1"]);
    let log = p.hook_log();
    let post = log.split("hook=post-deploy").nth(1).unwrap_or("");
    assert!(post.contains("KAMAL_LOCK=true"), "{log}");
    let seen = std::fs::read_to_string(p.path().join(".kamal/lock-seen")).unwrap_or_default();
    assert_eq!(seen.trim(), "held", "{seen}");
    let (code, out, _) = p.dray(&["lock", "status"]);
    assert_eq!(code, 0);
    assert!(out.contains("There is no deploy lock"), "{out}");
    p.cleanup_all(fleet);
}

/// `status`: exit 0 in sync, JSON with one entry per host and role; a stopped container, then a
/// version deployed to one host only, are drift (exit 1, the host and role named).
#[test]
fn status_reports_drift() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let p = Project::new(fleet, &unique_name("e2e-status"), |d| d);
    let s = p.service.clone();
    p.dray_ok(&["deploy", "--version", "s1"]);
    let out = p.dray_ok(&["status"]);
    assert!(out.contains("routed"), "{out}");
    assert_eq!(out.matches("  ok\n").count(), 3, "{out}");
    let json = p.dray_ok(&["status", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("status JSON");
    assert_eq!(v["ok"], true, "{json}");
    let roles = v["roles"].as_array().expect("roles");
    assert_eq!(roles.len(), 3, "{json}");
    for r in roles {
        assert_eq!(r["running"], "s1", "{json}");
        assert_eq!(r["wanted"], "s1", "{json}");
    }
    assert_eq!(v["lock"]["held"], false, "{json}");

    // A stopped container.
    fleet.ssh_ok(&hosts[1], &format!("docker stop {s}-web-s1 >/dev/null"));
    let (code, out, err) = p.dray(&["status"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains(&format!("{} web: stopped", hosts[1])), "{err}");
    assert!(!err.contains(&hosts[0]), "{err}");
    fleet.ssh_ok(&hosts[1], &format!("docker start {s}-web-s1 >/dev/null"));
    let (code, out, err) = p.dray(&["status"]);
    assert_eq!(code, 0, "{out}\n{err}");

    // A version on one host only.
    p.dray_ok(&["deploy", "--version", "s2", "-h", &hosts[0]]);
    let (code, out, err) = p.dray(&["status", "--output", "json"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("status JSON");
    let web: Vec<&serde_json::Value> = v["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter(|r| r["role"] == "web")
        .collect();
    assert_eq!(web.len(), 2);
    assert!(err.contains("the hosts run different versions"), "{err}");
    assert!(err.contains(&format!("{} s2", hosts[0])), "{err}");
    p.cleanup_all(fleet);
}

/// The lock's heartbeat: a deploy refreshes it while it works; once SIGKILLed, its lock is stale
/// after `x-dray: lock: stale_after`, a deploy is refused with the holder and the release
/// command, `--break-stale-lock` takes it over (audited); a lock without a heartbeat (Kamal's,
/// a manual one) is never taken over.
#[test]
fn a_lock_whose_heartbeat_stopped_is_stale_and_can_be_taken_over() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let p = Project::new(fleet, &unique_name("e2e-stale-lock"), |d| {
        format!("{d}\nx-dray:\n  lock:\n    stale_after: 3\n")
    });
    let s = p.service.clone();
    let details = || {
        fleet
            .ssh(
                &hosts[0],
                &format!("base64 -d .kamal/lock-{s}/details 2>/dev/null"),
            )
            .stdout
    };
    let heartbeat = |text: &[u8]| {
        String::from_utf8_lossy(text)
            .lines()
            .find(|l| l.starts_with("Heartbeat: "))
            .map(str::to_string)
    };
    // A deploy that holds the lock in a slow pre-deploy hook (while `.kamal/slow` exists).
    let hook = p.path().join(".kamal/hooks/pre-deploy");
    let text = std::fs::read_to_string(&hook).expect("hook");
    std::fs::write(
        &hook,
        format!("{text}\nif [ -f .kamal/slow ]; then sleep 20; fi\n"),
    )
    .expect("write hook");
    crate::support::project::git(p.path(), &["commit", "-qam", "slow hook"]);
    std::fs::write(p.path().join(".kamal/slow"), "").expect("slow");
    let mut holder = crate::support::dray_cmd(p.path(), &["deploy", "--version", "k0"])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("DOCKER_CONFIG", p.path().join(".docker-config"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn deploy");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let first = loop {
        if let Some(h) = heartbeat(&details()) {
            break h;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no lock with a heartbeat"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    // Refreshed while held (every second with stale_after 3).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let later = heartbeat(&details()).unwrap_or_default();
    assert_ne!(later, first, "the heartbeat did not move");
    let text = String::from_utf8_lossy(&details()).into_owned();
    assert!(text.contains("Command: dray deploy"), "{text}");
    assert!(
        text.starts_with("Locked by: "),
        "Kamal's first line: {text}"
    );
    // SIGKILL: nothing releases the lock, and its heartbeat stops.
    let _ = holder.kill();
    let _ = holder.wait();
    let _ = std::fs::remove_file(p.path().join(".kamal/slow"));
    std::thread::sleep(std::time::Duration::from_secs(5));

    let (code, _, err) = p.dray(&["deploy", "--version", "k1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("stale deploy lock"), "{err}");
    assert!(err.contains("Last heartbeat:"), "{err}");
    assert!(err.contains("dray lock release"), "{err}");
    assert!(err.contains("--break-stale-lock"), "{err}");
    let status = p.dray_ok(&["lock", "status"]);
    assert!(
        status.contains("Stale: no heartbeat for over 3s"),
        "{status}"
    );

    let (code, out, err) = p.dray(&["deploy", "--version", "k1", "--break-stale-lock"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("took over the stale deploy lock"), "{err}");
    let audit = fleet
        .read_file(&hosts[0], &format!("~/.kamal/{s}-audit.log"))
        .unwrap_or_default();
    assert!(audit.contains("Broke a stale deploy lock"), "{audit}");
    assert!(
        details().is_empty(),
        "the lock is released after the deploy"
    );

    // A lock as Kamal writes it (its three lines, no heartbeat), taken an hour ago: never stale.
    fleet.ssh_ok(
        &hosts[0],
        &format!(
            "mkdir .kamal/lock-{s} && printf 'Locked by: Kamal User at 2026-01-01T00:00:00Z\\nVersion: k9\\nMessage: Automatic deploy lock' | base64 > .kamal/lock-{s}/details"
        ),
    );
    std::thread::sleep(std::time::Duration::from_secs(4));
    let (code, _, err) = p.dray(&["deploy", "--version", "k2", "--break-stale-lock"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("deploy lock already in place"), "{err}");
    assert!(!err.contains("stale deploy lock"), "{err}");
    p.dray_ok(&["lock", "release"]);
    p.cleanup_all(fleet);
}

/// All or nothing: a release healthy on one web host and never healthy on the other switches
/// the healthy one (and the workers) back to the version they ran, under a bounded load with no
/// failed request, and says so; with `--no-revert` they keep the new version, as with Kamal.
#[test]
fn a_release_that_fails_on_one_host_is_reverted_on_the_others() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let p = Project::new(fleet, &unique_name("e2e-revert"), |d| {
        let tagged = d.replace(
            &format!("      - {}\n", hosts[1]),
            &format!("      - {}: broken\n", hosts[1]),
        );
        assert_ne!(tagged, d, "the second web host is tagged");
        tagged.replace(
            "env:\n  clear:\n    APP_GREETING: hello from dray\n",
            "env:\n  clear:\n    APP_GREETING: hello from dray\n  tags:\n    broken:\n      BREAK_V2: \"1\"\n",
        )
    });
    let s = p.service.clone();
    p.dray_ok(&["deploy", "--version", "v1"]);
    // v2 never starts where BREAK_V2 is set (the second web host only).
    let start = p.path().join("example/start");
    let text = std::fs::read_to_string(&start).expect("start");
    let broken = text.replacen(
        "set -eu\n",
        "set -eu\nif [ \"${KAMAL_VERSION:-}\" = v2 ] && [ -n \"${BREAK_V2:-}\" ]; then echo broken >&2; exit 1; fi\n",
        1,
    );
    std::fs::write(&start, broken).expect("write start");
    crate::support::project::git(p.path(), &["commit", "-qam", "v2 breaks on tagged hosts"]);

    let addrs: Vec<String> = hosts[..2].to_vec();
    let load = crate::proxy::Load::start(&addrs, &format!("{s}.test"), 100_000);
    let (code, out, err) = p.dray(&["deploy", "--version", "v2"]);
    let seen = load.finish();
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        err.contains(&format!("[{}] web reverted to v1", hosts[0])),
        "{err}"
    );
    assert!(
        err.contains(&format!("[{}] workers reverted to v1", hosts[2])),
        "{err}"
    );
    for (i, samples) in seen.iter().enumerate() {
        let failed: Vec<_> = samples.iter().filter(|(r, _)| r.is_err()).collect();
        assert!(
            failed.is_empty(),
            "{}: {} of {} requests failed: {:?}",
            addrs[i],
            failed.len(),
            samples.len(),
            failed.first()
        );
        assert!(
            samples.len() > 20,
            "{}: {} requests",
            addrs[i],
            samples.len()
        );
    }
    for host in &hosts {
        let names = running(fleet, host, &s);
        assert!(
            !names.is_empty() && names.iter().all(|n| n.ends_with("-v1")),
            "{host}: {names:?}"
        );
    }
    let json = p.dray(&["deploy", "--version", "v2", "--output", "json"]).1;
    let reverted = json
        .lines()
        .filter(|l| l.contains("\"host_result\"") && l.contains("\"reverted\""))
        .count();
    assert_eq!(reverted, 2, "{json}");

    // --no-revert: Kamal's mixed versions.
    let (code, _, err) = p.dray(&["deploy", "--version", "v2", "--no-revert"]);
    assert_ne!(code, 0, "{err}");
    assert!(!err.contains("reverted to"), "{err}");
    assert!(
        running(fleet, &hosts[0], &s)
            .iter()
            .all(|n| n.ends_with("-v2")),
        "{:?}",
        running(fleet, &hosts[0], &s)
    );
    assert!(
        running(fleet, &hosts[1], &s)
            .iter()
            .all(|n| n.ends_with("-v1")),
        "{:?}",
        running(fleet, &hosts[1], &s)
    );
    p.cleanup_all(fleet);
}

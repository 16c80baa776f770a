//! `x-dray: replicas` end to end on the fleet, driving the `dray` binary: N containers of a role
//! per host, replaced one at a time; rollback and prune keep the count; `app logs`, `app exec
//! --reuse`, `details` and `status` show every replica; Kamal's own reading of the version
//! (`docker ps --latest`, the name minus the prefix) still finds the plain version.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::proxy::{get, Load};
use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::{git, Project};

/// Removes everything the project created on the fleet, even when the test fails.
struct Cleanup<'a>(&'a Fleet, &'a Project);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        self.1.cleanup_all(self.0);
    }
}

/// The example app, with `/name` answering the container's name (`KAMAL_CONTAINER_NAME`).
fn project(fleet: &Fleet, prefix: &str, edit: impl FnOnce(String) -> String) -> Project {
    let p = Project::new(fleet, &unique_name(prefix), edit);
    let path = p.path().join("example/start");
    let start = std::fs::read_to_string(&path).expect("start");
    let with_name = start.replace(
        "printf '%s\\n' \"$mode\" >\"$root/role\"",
        "printf '%s\\n' \"$mode\" >\"$root/role\"\nprintf '%s\\n' \"${KAMAL_CONTAINER_NAME:-unknown}\" >\"$root/name\"",
    );
    assert_ne!(with_name, start, "the role line of example/start changed");
    crate::support::write(&path, &with_name);
    git(p.path(), &["commit", "-qam", "serve /name"]);
    p
}

/// Names of the role's containers on `host` (`status`: `running`, `exited`, …).
fn names(fleet: &Fleet, host: &str, service: &str, role: &str, status: &str) -> BTreeSet<String> {
    fleet
        .ssh_ok(
            host,
            &format!(
                "docker ps --all --filter label=service={service} --filter label=role={role} --filter status={status} --format '{{{{.Names}}}}'"
            ),
        )
        .lines()
        .map(str::to_string)
        .collect()
}

fn expected(service: &str, role: &str, version: &str, n: u32) -> BTreeSet<String> {
    (1..=n)
        .map(|r| {
            if r == 1 {
                format!("{service}-{role}-{version}")
            } else {
                format!("{service}-{role}-{version}-r{r}")
            }
        })
        .collect()
}

/// What Kamal reads as the running version on `host` (`current_running_version`: the newest
/// running container of the role, its name minus `<service>-<role>-`).
fn kamal_version(fleet: &Fleet, host: &str, service: &str, role: &str) -> String {
    let name = fleet.ssh_ok(
        host,
        &format!(
            "docker ps --latest --format '{{{{.Names}}}}' --filter label=service={service} --filter label=destination= --filter label=role={role} --filter status=running"
        ),
    );
    name.trim()
        .strip_prefix(&format!("{service}-{role}-"))
        .unwrap_or(name.trim())
        .to_string()
}

#[test]
fn replicated_workers_are_replaced_one_at_a_time_and_every_command_sees_them() {
    // No proxy: workers ×2 on one host (the roles without the proxy path).
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let p = project(fleet, "e2e-repw", |d| {
        format!("{d}\nretain_containers: 1\nx-dray:\n  replicas:\n    workers: 2\n")
    });
    let _cleanup = Cleanup(fleet, &p);
    let s = p.service.clone();
    let worker = &hosts[2];

    p.dray_ok(&["deploy", "--version", "w1"]);
    assert_eq!(
        names(fleet, worker, &s, "workers", "running"),
        expected(&s, "workers", "w1", 2)
    );
    assert_eq!(kamal_version(fleet, worker, &s, "workers"), "w1");
    // The replica label rides beside Kamal's labels.
    let label = fleet.ssh_ok(
        worker,
        &format!("docker inspect --format '{{{{index .Config.Labels \"dray.replica\"}}}}' {s}-workers-w1-r2"),
    );
    assert_eq!(label.trim(), "2");

    p.dray_ok(&["deploy", "--version", "w2"]);
    assert_eq!(
        names(fleet, worker, &s, "workers", "running"),
        expected(&s, "workers", "w2", 2)
    );
    assert_eq!(
        names(fleet, worker, &s, "workers", "exited"),
        expected(&s, "workers", "w1", 2)
    );
    let version = p.dray_ok(&["app", "version", "-r", "workers"]);
    assert!(version.contains("w2"), "{version}");

    p.dray_ok(&["rollback", "w1"]);
    assert_eq!(
        names(fleet, worker, &s, "workers", "running"),
        expected(&s, "workers", "w1", 2)
    );
    assert_eq!(kamal_version(fleet, worker, &s, "workers"), "w1");

    // Prune keeps `retain_containers: 1` version (both replicas of it), not one container.
    p.dray_ok(&["prune", "containers"]);
    let stopped = names(fleet, worker, &s, "workers", "exited");
    assert_eq!(stopped, expected(&s, "workers", "w2", 2), "{stopped:?}");

    let logs = p.dray_ok(&["app", "logs", "-r", "workers", "-n", "5"]);
    for name in expected(&s, "workers", "w1", 2) {
        assert!(logs.contains(&name), "{name} in {logs}");
    }
    let exec = p.dray_ok(&[
        "app",
        "exec",
        "--reuse",
        "-r",
        "workers",
        "cat /tmp/www/name",
    ]);
    for name in expected(&s, "workers", "w1", 2) {
        assert!(exec.contains(&format!("{name}:")), "{name} in {exec}");
    }
    let details = p.dray_ok(&["details", "-r", "workers"]);
    for name in expected(&s, "workers", "w1", 2) {
        assert!(details.contains(&name), "{name} in {details}");
    }
    let (code, status, err) = p.dray(&["status", "-r", "workers"]);
    assert!(status.contains("w1 (2 replicas)"), "{status}\n{err}");
    assert_eq!(code, 0, "{status}\n{err}");

    // `app stop` stops every replica; `app start` starts them again.
    p.dray_ok(&["app", "stop", "-r", "workers"]);
    assert!(names(fleet, worker, &s, "workers", "running").is_empty());
    p.dray_ok(&["app", "start", "-r", "workers", "--version", "w1"]);
    assert_eq!(
        names(fleet, worker, &s, "workers", "running"),
        expected(&s, "workers", "w1", 2)
    );
}

/// Needs the fleet's dray-proxy with several `--target` per service (main's ptargets).
#[test]
fn three_web_replicas_per_host_serve_and_deploy_and_rollback_drop_no_request() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let p = project(fleet, "e2e-repl", |d| {
        format!("{d}\nretain_containers: 1\nx-dray:\n  replicas:\n    web: 3\n    workers: 2\n")
    });
    let _cleanup = Cleanup(fleet, &p);
    let s = p.service.clone();
    let host_header = format!("{s}.test");
    let web: Vec<String> = hosts[..2].to_vec();

    p.dray_ok(&["deploy", "--version", "v1"]);
    for h in &web {
        assert_eq!(
            names(fleet, h, &s, "web", "running"),
            expected(&s, "web", "v1", 3)
        );
        assert_eq!(kamal_version(fleet, h, &s, "web"), "v1");
        // The proxy balances across the three.
        let mut served = BTreeSet::new();
        for _ in 0..60 {
            if let Ok((200, body)) = get(h, &host_header, "/name") {
                served.insert(body);
            }
        }
        assert_eq!(served, expected(&s, "web", "v1", 3), "{h}");
    }
    assert_eq!(
        names(fleet, &hosts[2], &s, "workers", "running"),
        expected(&s, "workers", "v1", 2)
    );

    let load = Load::start(&web, &host_header, 100_000);
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    p.dray_ok(&["deploy", "--version", "v2"]);
    let deploy_took = started.elapsed();
    for h in &web {
        assert_eq!(
            names(fleet, h, &s, "web", "running"),
            expected(&s, "web", "v2", 3)
        );
    }
    let started = std::time::Instant::now();
    p.dray_ok(&["rollback", "v1"]);
    let rollback_took = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let per_host = load.finish();
    let mut total = 0;
    for (addr, seen) in web.iter().zip(&per_host) {
        let failed: Vec<&String> = seen.iter().filter_map(|(r, _)| r.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "{addr}: {} of {} failed: {:?}",
            failed.len(),
            seen.len(),
            &failed[..failed.len().min(5)]
        );
        total += seen.len();
    }
    println!(
        "replicas under load: {total} requests, 0 failed; deploy {deploy_took:?}, rollback {rollback_took:?}"
    );
    for h in &web {
        assert_eq!(
            names(fleet, h, &s, "web", "running"),
            expected(&s, "web", "v1", 3)
        );
        assert_eq!(kamal_version(fleet, h, &s, "web"), "v1");
    }
    assert_eq!(
        names(fleet, &hosts[2], &s, "workers", "running"),
        expected(&s, "workers", "v1", 2)
    );

    // Prune keeps one version's replicas (retain_containers: 1), every replica of it.
    p.dray_ok(&["prune", "containers"]);
    for h in &web {
        assert_eq!(
            names(fleet, h, &s, "web", "exited"),
            expected(&s, "web", "v2", 3),
            "{h}"
        );
    }

    let logs = p.dray_ok(&["app", "logs", "-r", "web", "-n", "3"]);
    let exec = p.dray_ok(&["app", "exec", "--reuse", "-r", "web", "cat /tmp/www/name"]);
    let details = p.dray_ok(&["details"]);
    for name in expected(&s, "web", "v1", 3) {
        assert!(logs.contains(&name), "{name} in {logs}");
        assert!(exec.contains(&format!("{name}:")), "{name} in {exec}");
        assert!(details.contains(&name), "{name} in {details}");
    }
    let (code, status, err) = p.dray(&["status"]);
    assert!(status.contains("v1 (3 replicas)"), "{status}\n{err}");
    assert_eq!(code, 0, "{status}\n{err}");
}

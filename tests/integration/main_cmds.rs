//! End-to-end `dray details`, `dray remove` and `dray setup` on the fleet, through the binary:
//! Kamal's layout of `details`, and what `remove` leaves on the hosts (exactly what Kamal's
//! `remove` commands leave: the `kamal` network, the `.kamal` directory and the audit log).

use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::{exclusive_fleet, Project};

/// `name` of every container of `service` on `host`, sorted.
fn containers(fleet: &Fleet, host: &str, service: &str) -> Vec<String> {
    let out = fleet.ssh_ok(
        host,
        &format!("docker ps -a --filter label=service={service} --format '{{{{.Names}}}}'"),
    );
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// `repo:tag` of every image of the fleet registry's `service` repository on `host`.
fn images(fleet: &Fleet, host: &str, service: &str) -> Vec<String> {
    let out = fleet.ssh_ok(
        host,
        &format!(
            "docker image ls --format '{{{{.Repository}}}}:{{{{.Tag}}}}' 127.0.0.1:5000/{service}"
        ),
    );
    out.lines().map(str::to_string).collect()
}

/// `details` prints Kamal's `Proxy Host:` / `App Host:` sections with each host's `docker ps`.
#[test]
fn details_prints_kamals_layout() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let p = Project::new(fleet, &unique_name("e2e-details"), |d| d);
    let s = p.service.clone();
    p.dray_ok(&["deploy", "--version", "d1"]);
    let _ = std::fs::remove_file(p.path().join(".kamal/hook-log"));
    let out = p.dray_ok(&["details"]);
    // pre-connect fires for every command that connects, with Kamal's environment.
    let log = p.hook_log();
    assert!(log.contains("hook=pre-connect"), "{log}");
    for var in [
        "KAMAL_COMMAND=details",
        &format!("KAMAL_HOSTS={}", hosts.join(",")),
        &format!("KAMAL_SERVICE={s}"),
        "KAMAL_LOCK=false",
    ] {
        assert!(log.contains(var), "{var} missing in\n{log}");
    }
    assert!(log.contains("KAMAL_VERSION="), "{log}");
    for host in &hosts[..2] {
        assert!(out.contains(&format!("Proxy Host: {host}\n")), "{out}");
    }
    assert!(
        !out.contains(&format!("Proxy Host: {}\n", hosts[2])),
        "{out}"
    );
    for (host, role) in [
        (&hosts[0], "web"),
        (&hosts[1], "web"),
        (&hosts[2], "workers"),
    ] {
        let section = out
            .split(&format!("App Host: {host}\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no App Host: {host} in\n{out}"));
        let section = section.split("\n\n").next().unwrap_or("");
        assert!(
            section.contains(&format!("{s}-{role}-d1")),
            "{host}: {section}"
        );
        assert!(section.starts_with("CONTAINER ID"), "{host}: {section}");
    }
    assert!(!out.contains("[127.0.0."), "no [host] prefixes in\n{out}");
    p.cleanup_all(fleet);
}

/// `remove -y`: the app's containers, images and directories go, the proxy goes once no app is
/// left on its host, the hosts log out of the registry; the `kamal` network, `.kamal` and the
/// audit log stay, as with Kamal's `remove`. Without `-y` and no terminal, nothing happens.
#[test]
fn remove_leaves_what_kamals_remove_leaves() {
    let Some(fleet) = Fleet::get() else { return };
    // The proxy is removed when no app is left on a host: no other test deploys meanwhile.
    let _alone = exclusive_fleet();
    let hosts = fleet.require_hosts(3).to_vec();
    let p = Project::unguarded(fleet, &unique_name("e2e-remove-all"), |d| d);
    let s = p.service.clone();
    p.dray_ok(&["deploy", "--version", "r1"]);
    for host in &hosts {
        let config = fleet
            .read_file(host, "~/.docker/config.json")
            .unwrap_or_default();
        assert!(
            config.contains("127.0.0.1:5000"),
            "{host} not logged in: {config}"
        );
    }
    let (code, _, err) = p.dray(&["remove"]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("-y"), "{err}");
    assert_eq!(containers(fleet, &hosts[0], &s).len(), 1);

    let out = p.dray_ok(&["remove", "-y"]);
    let others = |host: &str| {
        fleet
            .ssh_ok(host, "ls .kamal/apps 2>/dev/null || true")
            .trim()
            .to_string()
    };
    for host in &hosts {
        assert!(containers(fleet, host, &s).is_empty(), "{host}: {out}");
        assert!(images(fleet, host, &s).is_empty(), "{host}");
        let gone = fleet.ssh_ok(
            host,
            &format!("ls -d .kamal/apps/{s} .kamal/proxy/apps-config/{s} 2>/dev/null || true"),
        );
        assert!(gone.trim().is_empty(), "{host}: {gone}");
        let kept = fleet.ssh_ok(
            host,
            &format!("test -d .kamal && test -f .kamal/{s}-audit.log && docker network inspect kamal >/dev/null && echo kept"),
        );
        assert_eq!(kept.trim(), "kept", "{host}");
        let audit = fleet
            .read_file(host, &format!("~/.kamal/{s}-audit.log"))
            .unwrap_or_default();
        assert!(
            audit.contains("Removed all app containers"),
            "{host}: {audit}"
        );
        let config = fleet
            .read_file(host, "~/.docker/config.json")
            .unwrap_or_default();
        assert!(
            !config.contains("127.0.0.1:5000"),
            "{host} still logged in: {config}"
        );
    }
    for host in &hosts[..2] {
        let proxy = fleet.ssh_ok(host, "docker ps -aq --filter name=^kamal-proxy$");
        if others(host).is_empty() {
            assert!(proxy.trim().is_empty(), "{host}: the proxy is still there");
        } else {
            assert!(
                !proxy.trim().is_empty(),
                "{host}: the proxy of other apps went"
            );
        }
    }
    p.cleanup_all(fleet);
}

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

/// Puts every host's `.kamal` aside for a test that needs a fresh fleet, and back afterwards,
/// whatever happened (the fleet's proxies keep running; a test holding this holds the fleet).
struct FreshFleet<'a> {
    fleet: &'a Fleet,
    tag: String,
    services: Vec<String>,
}

impl<'a> FreshFleet<'a> {
    fn new(fleet: &'a Fleet, tag: &str, services: Vec<String>) -> Self {
        for host in fleet.hosts() {
            fleet.ssh_ok(
                host,
                &format!("if [ -e .kamal ]; then mv .kamal .kamal.aside-{tag}; fi"),
            );
        }
        FreshFleet {
            fleet,
            tag: tag.to_string(),
            services,
        }
    }
}

impl Drop for FreshFleet<'_> {
    fn drop(&mut self) {
        for host in self.fleet.hosts() {
            for s in &self.services {
                let _ = self.fleet.ssh(
                    host,
                    &format!("docker ps -aq --filter label=service={s} | xargs -r docker rm -f >/dev/null 2>&1; rm -rf {s}"),
                );
            }
            let _ = self.fleet.ssh(
                host,
                &format!(
                    "if [ -e .kamal.aside-{t} ]; then rm -rf .kamal && mv .kamal.aside-{t} .kamal; fi",
                    t = self.tag
                ),
            );
        }
    }
}

/// `setup` on hosts without `.kamal`: bootstrap (`docker-setup` once), proxy, both accessories
/// (one on one host with a file, a directory and a secret env; one on the web role's hosts),
/// the app; `details` lists all of it; `remove -y` leaves exactly what Kamal's `remove` leaves.
#[test]
fn setup_on_a_fresh_fleet_then_details_and_remove() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let hosts = fleet.require_hosts(3).to_vec();
    let service = unique_name("e2e-setup");
    let (db, cache) = (format!("{service}-db"), format!("{service}-cache"));
    let port = 20000 + (std::process::id() % 20000) as u16 + 7;
    let image = fleet.base_image().to_string();
    let accessories = format!(
        r#"
accessories:
  db:
    image: {image}
    host: {h0}
    port: "{port}:8080"
    cmd: httpd -f -p 8080 -h /srv/www
    env:
      secret:
        - DB_PASSWORD
    files:
      - local: config/index.html
        remote: /srv/www/index.html
        mode: "0640"
    directories:
      - local: data
        remote: /data
        mode: "0750"
  cache:
    image: {image}
    role: web
    cmd: sleep 100000
"#,
        h0 = hosts[0]
    );
    let p = Project::unguarded(fleet, &service, |d| format!("{d}{accessories}"));
    let _fresh = FreshFleet::new(fleet, &service, vec![db.clone(), cache.clone()]);
    crate::support::write(&p.path().join("config/index.html"), "db is up\n");
    let secrets = std::fs::read_to_string(p.path().join(".kamal/secrets")).expect("secrets");
    crate::support::write(
        &p.path().join(".kamal/secrets"),
        &format!("{secrets}\nDB_PASSWORD=setup-secret-91b2\n"),
    );
    let hook = p.path().join(".kamal/hooks/docker-setup");
    crate::support::write(
        &hook,
        "#!/bin/sh\necho \"docker-setup $KAMAL_COMMAND $KAMAL_HOSTS\" >> .kamal/docker-setup-log\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    crate::support::project::git(p.path(), &["add", "-A"]);
    crate::support::project::git(p.path(), &["commit", "-qm", "accessories"]);
    for host in &hosts {
        assert_eq!(
            fleet
                .ssh_ok(host, "ls -d .kamal 2>/dev/null || true")
                .trim(),
            ""
        );
    }

    let (code, out, err) = p.dray(&["setup", "--version", "u1"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let ran = std::fs::read_to_string(p.path().join(".kamal/docker-setup-log")).unwrap_or_default();
    assert_eq!(
        ran.trim(),
        format!("docker-setup setup {}", hosts.join(",")),
        "docker-setup runs once, after every host is bootstrapped"
    );
    // The app, behind the proxy, and both accessories.
    for (host, role) in [
        (&hosts[0], "web"),
        (&hosts[1], "web"),
        (&hosts[2], "workers"),
    ] {
        let names = containers(fleet, host, &service);
        assert_eq!(names, [format!("{service}-{role}-u1")], "{host}");
    }
    assert_eq!(containers(fleet, &hosts[0], &db), std::slice::from_ref(&db));
    for host in &hosts[..2] {
        assert_eq!(
            containers(fleet, host, &cache),
            std::slice::from_ref(&cache),
            "{host}"
        );
    }
    assert!(containers(fleet, &hosts[2], &cache).is_empty());
    let stat = |path: &str| {
        fleet
            .ssh_ok(&hosts[0], &format!("stat -c %a {path}"))
            .trim()
            .to_string()
    };
    assert_eq!(
        stat(&format!(".kamal/apps/{service}/env/accessories/db.env")),
        "600"
    );
    assert_eq!(stat(&format!("{db}/srv/www/index.html")), "640");
    assert_eq!(stat(&format!("{db}/data")), "750");
    let body = crate::accessory::answers(&format!("{}:{port}", hosts[0]), None, "/index.html");
    assert_eq!(body, "db is up");

    let details = p.dray_ok(&["details"]);
    for line in [
        format!("Proxy Host: {}", hosts[0]),
        format!("App Host: {}", hosts[2]),
        format!("Accessory db Host: {}", hosts[0]),
        format!("Accessory cache Host: {}", hosts[1]),
    ] {
        assert!(details.contains(&line), "{line} in\n{details}");
    }
    assert!(details.contains(&db) && details.contains(&format!("{service}-web-u1")));

    p.dray_ok(&["remove", "-y"]);
    for host in &hosts {
        for s in [&service, &db, &cache] {
            assert!(containers(fleet, host, s).is_empty(), "{host} {s}");
        }
        assert!(images(fleet, host, &service).is_empty(), "{host}");
        let left = fleet.ssh_ok(
            host,
            &format!("ls -d .kamal/apps/{service} {db} {cache} .kamal/proxy 2>/dev/null || true"),
        );
        assert_eq!(left.trim(), "", "{host}: left {left}");
        // What Kamal's remove leaves: `.kamal`, the audit log, the `kamal` network.
        let kept = fleet.ssh_ok(
            host,
            &format!("test -f .kamal/{service}-audit.log && docker network inspect kamal >/dev/null && echo kept"),
        );
        assert_eq!(kept.trim(), "kept", "{host}");
    }
    p.cleanup_all(fleet);
}

//! End-to-end `dray app …`, `prune`, `registry` and the deploy layout on the fleet, through the
//! `dray` binary as a user runs it: exact container names, labels, env files and audit lines as
//! Kamal lays them out, destination-scoped prune, and `--skip-push` of a missing tag failing
//! before the lock.

use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::{git, Project};

/// The secret every role's env file must carry.
const SECRET_LINE: &str = "DB_PASSWORD=s3cret-for-e2e";

/// A project whose roles get `DB_PASSWORD` as a secret env var (in `.kamal/secrets-common`, so
/// every destination reads it).
fn project(fleet: &Fleet, prefix: &str) -> Project {
    let project = Project::new(fleet, &unique_name(prefix), |d| {
        let edited = d.replace(
            "env:\n  clear:\n    APP_GREETING: hello from dray\n",
            "env:\n  clear:\n    APP_GREETING: hello from dray\n  secret:\n    - DB_PASSWORD\n",
        );
        assert_ne!(edited, d, "the env section of deploy.yml changed");
        edited
    });
    let secrets = std::fs::read_to_string(project.path().join(".kamal/secrets")).expect("secrets");
    crate::support::write(
        &project.path().join(".kamal/secrets-common"),
        &format!("{secrets}\n{SECRET_LINE}\n"),
    );
    git(project.path(), &["add", "-A"]);
    git(project.path(), &["commit", "-qm", "secrets"]);
    project
}

/// Run dray in the project; (exit code, stdout, stderr).
fn dray(project: &Project, args: &[&str]) -> (i32, String, String) {
    project.dray(args)
}

/// Run dray; it must succeed. Returns stdout.
fn dray_ok(project: &Project, args: &[&str]) -> String {
    project.dray_ok(args)
}

/// Lines of `stdout` from `host`: `[host] `-prefixed ones (stripped), and those of Kamal's
/// `App Host: <host>` blocks (read-only commands, `exec`), up to each block's blank line.
fn lines_of<'a>(stdout: &'a str, host: &str) -> Vec<&'a str> {
    let prefix = format!("[{host}] ");
    let heading = format!("App Host: {host}");
    let mut out = Vec::new();
    let mut in_block = false;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix(prefix.as_str()) {
            out.push(rest);
        } else if line.starts_with("App Host: ") {
            in_block = line == heading;
        } else if line.is_empty() {
            in_block = false;
        } else if in_block {
            out.push(line);
        }
    }
    out
}

/// `name status` of every container of `service` on `host`, sorted; status is `running` or
/// `exited`.
fn containers(fleet: &Fleet, host: &str, service: &str) -> Vec<String> {
    let out = fleet.ssh_ok(
        host,
        &format!("docker ps -a --filter label=service={service} --format '{{{{.Names}}}} {{{{.State}}}}'"),
    );
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// `repo:tag` of every image of `service`'s repository on `host`, sorted.
fn images(fleet: &Fleet, host: &str, service: &str) -> Vec<String> {
    let out = fleet.ssh_ok(
        host,
        &format!(
            "docker image ls --format '{{{{.Repository}}}}:{{{{.Tag}}}}' 127.0.0.1:5000/{service}"
        ),
    );
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// [`Project::cleanup_all`].
fn cleanup(fleet: &Fleet, project: &Project) {
    project.cleanup_all(fleet);
}

/// `(status, body)` of `GET /version` through the proxy on `host`, for `<service>.test`.
fn via_proxy(host: &str, service: &str) -> (String, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-m", "5", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Host: {service}.test"))
        .arg(format!("http://{host}/version"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.to_string(), body.trim().to_string())
}

fn served_version(fleet: &Fleet, host: &str, container: &str) -> String {
    fleet
        .ssh_ok(
            host,
            &format!("docker exec {container} wget -q -O - http://127.0.0.1/version"),
        )
        .trim()
        .to_string()
}

#[test]
fn deploy_rollback_layout_and_app_commands() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let p = project(fleet, "e2e-app");
    let s = p.service.clone();
    let started = std::time::Instant::now();
    dray_ok(&p, &["deploy", "--version", "v1"]);
    dray_ok(&p, &["deploy", "--version", "v2"]);
    dray_ok(&p, &["rollback", "v1"]);
    eprintln!("deploy v1, deploy v2, rollback v1: {:?}", started.elapsed());

    // Names as Kamal lays them out: the rolled-back container ran again under its own name, the
    // stopped one it replaced renamed `<v>_replaced_<16 hex>`.
    for (host, role) in [
        (&hosts[0], "web"),
        (&hosts[1], "web"),
        (&hosts[2], "workers"),
    ] {
        let got = containers(fleet, host, &s);
        assert_eq!(got.len(), 3, "{host}: {got:?}");
        assert_eq!(got[0], format!("{s}-{role}-v1 running"), "{host}: {got:?}");
        let replaced = got[1]
            .strip_prefix(&format!("{s}-{role}-v1_replaced_"))
            .and_then(|r| r.strip_suffix(" exited"))
            .unwrap_or_else(|| panic!("{host}: no replaced v1 container in {got:?}"));
        assert!(
            replaced.len() == 16 && replaced.chars().all(|c| c.is_ascii_hexdigit()),
            "{replaced}"
        );
        assert_eq!(got[2], format!("{s}-{role}-v2 exited"), "{host}: {got:?}");
        let labels = fleet.ssh_ok(
            host,
            &format!("docker inspect -f '{{{{index .Config.Labels \"service\"}}}}|{{{{index .Config.Labels \"role\"}}}}|{{{{index .Config.Labels \"destination\"}}}}' {s}-{role}-v1"),
        );
        assert_eq!(labels.trim(), format!("{s}|{role}|"), "{host}");
        let env_file = format!(".kamal/apps/{s}/env/roles/{role}.env");
        let mode = fleet.ssh_ok(host, &format!("stat -c %a {env_file}"));
        assert_eq!(mode.trim(), "600", "{host}:{env_file}");
        let content = fleet
            .read_file(host, &format!("~/{env_file}"))
            .unwrap_or_default();
        assert!(
            content.lines().any(|l| l == SECRET_LINE),
            "{host}:{env_file}: {content:?}"
        );
        let audit = fleet
            .read_file(host, &format!("~/.kamal/{s}-audit.log"))
            .unwrap_or_default();
        let booted = audit
            .lines()
            .filter(|l| l.ends_with(&format!("[{role}] Booted app version v1")))
            .count();
        assert_eq!(booted, 2, "{host}: deploy v1 and rollback v1 in\n{audit}");
        assert_eq!(served_version(fleet, host, &format!("{s}-{role}-v1")), "v1");
    }

    let t = std::time::Instant::now();
    let out = dray_ok(&p, &["app", "version"]);
    for host in &hosts {
        assert_eq!(lines_of(&out, host), ["v1"], "{out}");
    }

    // The same command as events: every line JSON, the output per host, a result per host,
    // and the run's end last.
    let out = dray_ok(&p, &["app", "version", "--output", "json"]);
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for host in &hosts {
        assert!(
            events.iter().any(|e| e["event"] == "output"
                && e["host"] == host.as_str()
                && e["text"] == "v1\n"),
            "{out}"
        );
        assert!(
            events.iter().any(|e| e["event"] == "host_result"
                && e["host"] == host.as_str()
                && e["outcome"] == "ok"),
            "{out}"
        );
    }
    let last = events.last().expect("events");
    assert_eq!(last["event"], "run_finished", "{out}");
    assert_eq!(last["exit_code"], 0, "{out}");

    // And on a terminal (util-linux `script` gives it one): the live view draws its rows, and
    // the command's output still arrives, host by host.
    let typescript = p.path().join("typescript");
    let live = std::process::Command::new("script")
        .current_dir(p.path())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("CI")
        .args(["-qec"])
        .arg(format!(
            "{} app version",
            crate::support::dray_bin().display()
        ))
        .arg(&typescript)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("script");
    assert!(live.success());
    let screen =
        String::from_utf8_lossy(&std::fs::read(&typescript).expect("typescript")).into_owned();
    assert!(
        screen.contains(&format!("app {n}/{n} hosts", n = hosts.len())),
        "{screen}"
    );
    // Kamal's `puts_by_host` layout: `App Host: <host>`, the output, a blank line.
    for host in &hosts {
        let block = screen
            .split(&format!("App Host: {host}"))
            .nth(1)
            .unwrap_or_else(|| panic!("no App Host: {host} in {screen}"));
        assert!(block.trim_start().starts_with("v1"), "{screen}");
    }

    let out = dray_ok(&p, &["app", "exec", "--reuse", "echo ok"]);
    for host in &hosts {
        assert_eq!(lines_of(&out, host), ["ok"], "{out}");
    }
    let audit = fleet
        .read_file(&hosts[0], &format!("~/.kamal/{s}-audit.log"))
        .unwrap_or_default();
    assert!(
        audit.contains("[web] Executed cmd 'echo ok' on app version v1"),
        "{audit}"
    );

    // A new container of the running version, with the role's env (clear and secret) and -e.
    let out = dray_ok(
        &p,
        &[
            "app",
            "exec",
            "-e",
            "EXTRA=x1",
            r#"sh -c 'echo "$APP_GREETING|$DB_PASSWORD|$EXTRA|$HOSTNAME"'"#,
        ],
    );
    for host in &hosts {
        let lines = lines_of(&out, host);
        assert_eq!(lines.len(), 1, "{out}");
        assert!(
            lines[0].starts_with("hello from dray|s3cret-for-e2e|x1|"),
            "{out}"
        );
    }
    let audit = fleet
        .read_file(&hosts[0], &format!("~/.kamal/{s}-audit.log"))
        .unwrap_or_default();
    assert!(audit.contains("on app version v1"), "{audit}");
    // `--rm`: no exec container is left behind.
    assert_eq!(containers(fleet, &hosts[0], &s).len(), 3);

    let out = dray_ok(&p, &["app", "logs", "-n", "5"]);
    for host in &hosts {
        let n = lines_of(&out, host).len();
        assert!((1..=5).contains(&n), "{host}: {n} lines\n{out}");
    }

    let out = dray_ok(&p, &["app", "details"]);
    for (host, role) in [
        (&hosts[0], "web"),
        (&hosts[1], "web"),
        (&hosts[2], "workers"),
    ] {
        let lines = lines_of(&out, host);
        assert!(lines[0].starts_with("CONTAINER ID"), "{out}");
        assert_eq!(lines.len(), 2, "only the running container: {out}");
        assert!(lines[1].ends_with(&format!("{s}-{role}-v1")), "{out}");
    }
    let out = dray_ok(&p, &["app", "containers"]);
    for host in &hosts {
        assert_eq!(
            lines_of(&out, host).len(),
            4,
            "header + 3 containers: {out}"
        );
    }
    let out = dray_ok(&p, &["app", "images"]);
    for host in &hosts {
        let lines = lines_of(&out, host);
        for tag in ["latest", "v1", "v2"] {
            assert!(
                lines.iter().any(|l| l
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .starts_with(&[&format!("127.0.0.1:5000/{s}"), tag])),
                "{host}: {tag} in {out}"
            );
        }
    }

    let out = dray_ok(&p, &["app", "stale_containers"]);
    assert_eq!(out, "", "no stale container after a clean deploy");

    // Stop, then start again, the web role only.
    let out = dray_ok(&p, &["app", "stop", "-r", "web"]);
    assert_eq!(lines_of(&out, &hosts[0]), [format!("stopped {s}-web-v1")]);
    assert!(lines_of(&out, &hosts[2]).is_empty(), "{out}");
    let out = dray_ok(&p, &["app", "version"]);
    assert_eq!(lines_of(&out, &hosts[0]), ["no web container running"]);
    assert_eq!(lines_of(&out, &hosts[2]), ["v1"]);
    dray_ok(&p, &["app", "start", "-r", "web", "--version", "v1"]);
    let out = dray_ok(&p, &["app", "version"]);
    for host in &hosts {
        assert_eq!(lines_of(&out, host), ["v1"], "{out}");
    }
    for host in &hosts[..2] {
        let audit = fleet
            .read_file(host, &format!("~/.kamal/{s}-audit.log"))
            .unwrap_or_default();
        assert!(audit.contains("[web] Stopped app"), "{audit}");
        assert!(audit.contains("Started app version v1"), "{audit}");
    }

    // Through the proxy: started again and routed; maintenance, then live.
    assert_eq!(via_proxy(&hosts[0], &s), ("200".into(), "v1".into()));
    dray_ok(&p, &["app", "maintenance", "--message", "back soon"]);
    for host in &hosts[..2] {
        let (status, body) = via_proxy(host, &s);
        assert_eq!(status, "503", "{host}: {body}");
        assert!(body.contains("back soon"), "{host}: {body}");
    }
    dray_ok(&p, &["app", "live"]);
    for host in &hosts[..2] {
        assert_eq!(via_proxy(host, &s), ("200".into(), "v1".into()), "{host}");
    }

    // `app boot` reboots the given version on every host (a clash is renamed `_replaced_`).
    dray_ok(&p, &["app", "boot", "--version", "v1"]);
    for (host, role) in [(&hosts[0], "web"), (&hosts[2], "workers")] {
        let got = containers(fleet, host, &s);
        assert_eq!(got.len(), 4, "{host}: {got:?}");
        assert_eq!(got[0], format!("{s}-{role}-v1 running"), "{host}: {got:?}");
        assert_eq!(served_version(fleet, host, &format!("{s}-{role}-v1")), "v1");
    }

    // Registry login, locally (DOCKER_CONFIG is the project's) and on every host.
    let out = dray_ok(&p, &["registry", "login"]);
    assert!(out.contains("[local] Login Succeeded"), "{out}");
    for host in &hosts {
        assert_eq!(lines_of(&out, host), ["Login Succeeded"], "{out}");
    }
    eprintln!("app commands: {:?}", t.elapsed());
    cleanup(fleet, &p);
}

#[test]
fn prune_on_a_destination_leaves_the_default_destination_alone() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let p = project(fleet, "e2e-prune");
    let s = p.service.clone();
    // Same hosts, its own proxy host (kamal-proxy refuses two services on one host name).
    let overlay =
        |retain: u32| format!("retain_containers: {retain}\nproxy:\n  host: {s}-staging.test\n");
    crate::support::write(&p.path().join("config/deploy.staging.yml"), &overlay(5));
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-qm", "staging"]);
    let started = std::time::Instant::now();
    dray_ok(&p, &["deploy", "--version", "v1"]);
    dray_ok(&p, &["deploy", "--version", "v2"]);
    for v in ["s1", "s2", "s3"] {
        dray_ok(&p, &["deploy", "-d", "staging", "--version", v]);
    }
    eprintln!("5 deploys: {:?}", started.elapsed());
    let default_before: Vec<(Vec<String>, Vec<String>)> = hosts
        .iter()
        .map(|h| {
            let c: Vec<String> = containers(fleet, h, &s)
                .into_iter()
                .filter(|c| !c.contains("-staging-"))
                .collect();
            (c, images(fleet, h, &s))
        })
        .collect();
    for (host, role) in [(&hosts[0], "web"), (&hosts[2], "workers")] {
        assert_eq!(
            containers(fleet, host, &s),
            [
                format!("{s}-{role}-staging-s1 exited"),
                format!("{s}-{role}-staging-s2 exited"),
                format!("{s}-{role}-staging-s3 running"),
                format!("{s}-{role}-v1 exited"),
                format!("{s}-{role}-v2 running"),
            ]
        );
    }

    // Keep one stopped container per destination: staging's s1 goes, and its image with it.
    crate::support::write(&p.path().join("config/deploy.staging.yml"), &overlay(1));
    let t = std::time::Instant::now();
    dray_ok(&p, &["prune", "all", "-d", "staging"]);
    eprintln!("prune all: {:?}", t.elapsed());
    for (i, (host, role)) in [
        (&hosts[0], "web"),
        (&hosts[1], "web"),
        (&hosts[2], "workers"),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(
            containers(fleet, host, &s),
            [
                format!("{s}-{role}-staging-s2 exited"),
                format!("{s}-{role}-staging-s3 running"),
                format!("{s}-{role}-v1 exited"),
                format!("{s}-{role}-v2 running"),
            ],
            "{host}"
        );
        let after = images(fleet, host, &s);
        let repo = format!("127.0.0.1:5000/{s}");
        assert_eq!(
            after,
            [
                format!("{repo}:latest"),
                format!("{repo}:latest-staging"),
                format!("{repo}:s2"),
                format!("{repo}:s3"),
                format!("{repo}:v1"),
                format!("{repo}:v2"),
            ],
            "{host}"
        );
        let default_after: Vec<String> = containers(fleet, host, &s)
            .into_iter()
            .filter(|c| !c.contains("-staging-"))
            .collect();
        assert_eq!(default_after, default_before[i].0, "{host}");
        for image in &default_before[i].1 {
            if !image.ends_with(":s1") {
                assert!(after.contains(image), "{host}: {image} was removed");
            }
        }
        let audit = fleet
            .read_file(host, &format!("~/.kamal/{s}-staging-audit.log"))
            .unwrap_or_default();
        assert!(audit.contains("[staging] Pruned containers"), "{audit}");
        assert!(audit.contains("[staging] Pruned images"), "{audit}");
    }
    let (code, _, err) = dray(&p, &["prune", "containers", "--retain", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--retain must be at least 1"), "{err}");
    cleanup(fleet, &p);
}

#[test]
fn skip_push_of_a_missing_tag_fails_before_the_lock_and_changes_nothing() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let p = project(fleet, "e2e-notag");
    let s = p.service.clone();

    // The plan pulls before it locks.
    let plan: serde_json::Value = serde_json::from_str(&dray_ok(
        &p,
        &[
            "deploy",
            "--skip-push",
            "--version",
            "nosuchtag",
            "--dry-run",
            "--output",
            "json",
        ],
    ))
    .expect("plan JSON");
    let stages: Vec<&str> = plan["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|st| st["name"].as_str())
        .collect();
    let at = |name: &str| stages.iter().position(|s| *s == name);
    assert!(
        at("pull").is_some() && at("pull") < at("lock"),
        "pull must come before lock: {stages:?}"
    );

    dray_ok(&p, &["deploy", "--version", "v1"]);
    let before: Vec<String> = hosts
        .iter()
        .map(|h| {
            fleet.ssh_ok(
                h,
                "docker ps -a --format '{{.Names}} {{.State}} {{.Image}}' | sort",
            )
        })
        .collect();
    let images_before: Vec<Vec<String>> = hosts.iter().map(|h| images(fleet, h, &s)).collect();

    // Watch for the lock directory on the primary host during the whole failed run.
    let lock = format!(".kamal/lock-{s}");
    let watcher = {
        let primary = hosts[0].clone();
        let script = format!(
            "seen=0; for i in $(seq 1 200); do [ -e {lock} ] && seen=1; [ -e .kamal/stop-watch-{s} ] && break; sleep 0.05; done; rm -f .kamal/stop-watch-{s}; echo $seen"
        );
        std::thread::spawn(move || {
            let fleet = Fleet::get().expect("fleet");
            fleet.ssh_ok(&primary, &script)
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    let t = std::time::Instant::now();
    let (code, stdout, stderr) = dray(&p, &["deploy", "--skip-push", "--version", "nosuchtag"]);
    eprintln!("failed deploy: {:?}", t.elapsed());
    fleet.ssh_ok(&hosts[0], &format!("touch .kamal/stop-watch-{s}"));
    let seen = watcher.join().expect("watcher");
    assert_ne!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:5000/{s}:nosuchtag")),
        "the error names the image: {stderr}"
    );
    assert_eq!(
        seen.trim(),
        "0",
        "the lock was taken during the failed deploy"
    );
    assert!(!stdout.contains("acquired the deploy lock"), "{stdout}");

    let after: Vec<String> = hosts
        .iter()
        .map(|h| {
            fleet.ssh_ok(
                h,
                "docker ps -a --format '{{.Names}} {{.State}} {{.Image}}' | sort",
            )
        })
        .collect();
    // Other tests share the fleet: compare this service's containers exactly.
    let mine = |all: &[String]| -> Vec<Vec<String>> {
        all.iter()
            .map(|text| {
                text.lines()
                    .filter(|l| l.starts_with(&format!("{s}-")))
                    .map(str::to_string)
                    .collect()
            })
            .collect()
    };
    assert_eq!(mine(&after), mine(&before));
    let images_after: Vec<Vec<String>> = hosts.iter().map(|h| images(fleet, h, &s)).collect();
    assert_eq!(images_after, images_before);
    let audit = fleet
        .read_file(&hosts[0], &format!("~/.kamal/{s}-audit.log"))
        .unwrap_or_default();
    assert!(!audit.contains("nosuchtag"), "{audit}");
    cleanup(fleet, &p);
}

#[test]
fn redeploy_audit_and_app_remove_through_the_binary() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let p = project(fleet, "e2e-remove");
    let s = p.service.clone();
    dray_ok(&p, &["deploy", "--version", "v1"]);
    // redeploy: build, push and boot v2 without proxy boot or prune.
    let err = dray(&p, &["redeploy", "--version", "v2"]);
    assert_eq!(err.0, 0, "{}\n{}", err.1, err.2);
    for host in &hosts[..2] {
        assert_eq!(via_proxy(host, &s), ("200".to_string(), "v2".to_string()));
    }
    // audit: the last lines of every host's log, host by host.
    let out = dray_ok(&p, &["audit"]);
    for host in &hosts {
        let lines = lines_of(&out, host);
        assert!(
            lines.iter().any(|l| l.contains("Booted app version v2")),
            "{host}: {out}"
        );
    }
    // app remove: the proxy routes go, then containers, images and the app's directories; the
    // audit says so.
    dray_ok(&p, &["app", "remove"]);
    for host in &hosts[..2] {
        let (status, _) = via_proxy(host, &s);
        assert_eq!(status, "404", "{host}: the proxy still routes {s}");
    }
    for host in &hosts {
        assert!(containers(fleet, host, &s).is_empty(), "{host}");
        assert!(
            images(fleet, host, &s).is_empty(),
            "{host}: {:?}",
            images(fleet, host, &s)
        );
        let dirs = fleet.ssh_ok(host, &format!("ls -d .kamal/apps/{s} 2>/dev/null || true"));
        assert!(dirs.trim().is_empty(), "{host}: {dirs}");
        let audit = fleet
            .read_file(host, &format!("~/.kamal/{s}-audit.log"))
            .unwrap_or_default();
        for line in [
            "Removed all app containers".to_string(),
            "Removed all app images".to_string(),
            format!("Removed .kamal/apps/{s}"),
        ] {
            assert!(audit.contains(&line), "{host}: {line} missing in\n{audit}");
        }
    }
    cleanup(fleet, &p);
}

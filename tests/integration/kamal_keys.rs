//! Keys of deploy.yml that change what runs on the servers, end to end through the `dray` binary
//! on the local fleet, each as Kamal 2.12 does it: asset bridging (`asset_path`), error pages
//! (`error_pages_path`), custom certificates (`proxy.ssl.certificate_pem`), `boot.parallel_roles`,
//! `ssh.key_data`, `--raw`, `hooks_output`.

use std::process::Output;

use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::{git, Project};
use crate::support::write;

/// Run dray in the project; (exit code, stdout, stderr).
fn dray(project: &Project, args: &[&str]) -> (i32, String, String) {
    let out: Output = crate::support::dray_cmd(project.path(), args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("DOCKER_CONFIG", project.path().join(".docker-config"))
        .output()
        .expect("run dray");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn dray_ok(project: &Project, args: &[&str]) -> String {
    let (code, stdout, stderr) = dray(project, args);
    assert_eq!(code, 0, "dray {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// `(status, body)` of `GET path` through the proxy on `host`, for `<service>.test`.
fn get(host: &str, service: &str, path: &str) -> (String, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-m", "5", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Host: {service}.test"))
        .arg(format!("http://{host}{path}"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.to_string(), body.trim().to_string())
}

/// Remove the project's containers, images and files from the fleet.
fn cleanup(fleet: &Fleet, project: &Project) {
    project.cleanup(fleet);
    for host in fleet.hosts() {
        let _ = fleet.ssh(
            host,
            &format!(
                "docker image ls --format '{{{{.Repository}}}}:{{{{.Tag}}}}' 127.0.0.1:5000/{s} | xargs -r docker rmi >/dev/null 2>&1; rm -rf .kamal/proxy/apps-config/{s}",
                s = project.service
            ),
        );
    }
}

fn web_container(fleet: &Fleet, host: &str, service: &str) -> String {
    fleet
        .ssh_ok(
            host,
            &format!("docker ps --filter label=service={service} --filter label=role=web --format '{{{{.Names}}}}' | head -1"),
        )
        .trim()
        .to_string()
}

/// The image's assets are `assets/` of the project, at `/tmp/www/assets` (which the example
/// app's httpd serves).
fn commit_assets(project: &Project, files: &[(&str, &str)], message: &str) {
    let dir = project.path().join("assets");
    let _ = std::fs::remove_dir_all(&dir);
    for (name, text) in files {
        write(&dir.join(name), text);
    }
    git(project.path(), &["add", "-A"]);
    git(project.path(), &["commit", "-qm", message]);
}

#[test]
fn assets_of_both_versions_are_served_during_and_after_a_deploy() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let service = unique_name("e2e-assets");
    let project = Project::new(fleet, &service, |d| {
        format!("{d}\nasset_path: /tmp/www/assets:ro\n")
    });
    let dockerfile = project.path().join("Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).expect("Dockerfile");
    write(
        &dockerfile,
        &text.replace(
            "COPY example/start /app/start\n",
            "COPY example/start /app/start\nCOPY assets/ /tmp/www/assets/\n",
        ),
    );
    let ignore = project.path().join(".dockerignore");
    let text = std::fs::read_to_string(&ignore).unwrap_or_default();
    write(&ignore, &format!("{text}!assets/\n"));
    commit_assets(&project, &[("app-1.css", "one")], "assets v1");
    dray_ok(&project, &["deploy", "--version", "v1"]);
    for host in &hosts[..2] {
        assert_eq!(
            get(host, &service, "/assets/app-1.css"),
            ("200".into(), "one".into())
        );
    }

    // v2 drops app-1.css and adds app-2.css. Before the new containers boot (pre-app-boot), the
    // old ones already serve the new file; afterwards the new ones still serve the old file.
    commit_assets(&project, &[("app-2.css", "two")], "assets v2");
    let during = project.path().join("during.log");
    let hook = format!(
        "#!/bin/sh\nfor h in {} {}; do for f in app-1.css app-2.css; do curl -s -m 5 -H 'Host: {service}.test' http://$h/assets/$f; echo; done; curl -s -m 5 -H 'Host: {service}.test' http://$h/version; done > {}\n",
        hosts[0],
        hosts[1],
        during.display()
    );
    let hook_path = project.path().join(".kamal/hooks/pre-app-boot");
    write(&hook_path, &hook);
    git(project.path(), &["commit", "-qam", "pre-app-boot hook"]);
    dray_ok(&project, &["deploy", "--version", "v2"]);
    let seen = std::fs::read_to_string(&during).expect("the hook ran");
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        ["one", "two", "v1", "one", "two", "v1"],
        "the old containers serve both versions' assets before the new ones boot"
    );
    for host in &hosts[..2] {
        assert_eq!(get(host, &service, "/version"), ("200".into(), "v2".into()));
        assert_eq!(
            get(host, &service, "/assets/app-1.css"),
            ("200".into(), "one".into()),
            "{host}"
        );
        assert_eq!(
            get(host, &service, "/assets/app-2.css"),
            ("200".into(), "two".into()),
            "{host}"
        );
        // `:ro` mounts the volume read-only.
        let c = web_container(fleet, host, &service);
        let touch = fleet.ssh(host, &format!("docker exec {c} touch /tmp/www/assets/x"));
        assert!(
            !touch.status.success(),
            "the asset volume is writable on {host}"
        );
        // Only the running version's directories are left.
        let left = fleet.ssh_ok(
            host,
            &format!(
                "ls .kamal/apps/{service}/assets/extracted .kamal/apps/{service}/assets/volumes"
            ),
        );
        assert!(!left.contains("web-v1"), "{host}: {left}");
        assert!(left.contains("web-v2"), "{host}: {left}");
    }
    // The worker (no proxy) bridges nothing.
    let left = fleet.ssh_ok(
        &hosts[2],
        &format!("ls -d .kamal/apps/{service}/assets 2>/dev/null || true"),
    );
    assert!(left.trim().is_empty(), "{left}");
    cleanup(fleet, &project);
}

#[test]
fn ssh_key_data_connects_with_a_key_held_in_a_secret() {
    let Some(fleet) = Fleet::get() else { return };
    let host = fleet.require_hosts(1)[0].clone();
    // The fleet's ssh config without its identity files: the key comes from the secret alone.
    let keyless = tempfile::tempdir().expect("tempdir");
    let config = std::fs::read_to_string(fleet.ssh_config()).expect("ssh config");
    let stripped: String = config
        .lines()
        .filter(|l| !l.trim_start().starts_with("IdentityFile"))
        .map(|l| format!("{l}\n"))
        .collect();
    let keyless_config = keyless.path().join("config");
    write(&keyless_config, &stripped);
    let key = std::fs::read_to_string(fleet.dir().join("ssh/id_ed25519")).expect("fleet key");
    let service = unique_name("e2e-keydata");
    let with_key = |d: String| {
        d.replace(
            &format!("  config: {}", fleet.ssh_config().display()),
            &format!(
                "  config: {}\n  keys_only: true\n  key_data:\n    - SSH_DEPLOY_KEY",
                keyless_config.display()
            ),
        )
    };
    let project = Project::new(fleet, &service, with_key);
    let secrets = project.path().join(".kamal/secrets");
    let text = std::fs::read_to_string(&secrets).unwrap_or_default();
    write(
        &secrets,
        &format!("{text}\nSSH_DEPLOY_KEY=\"{}\"\n", key.trim_end()),
    );
    git(project.path(), &["add", "-A"]);
    git(project.path(), &["commit", "-qm", "key data"]);
    let out = dray_ok(
        &project,
        &[
            "server", "exec", "--hosts", &host, "--raw", "echo", "reached",
        ],
    );
    assert_eq!(out, "reached\n", "--raw prints the output alone");
    // Without the key: no identity, no connection.
    let deploy = project.path().join("config/deploy.yml");
    let text = std::fs::read_to_string(&deploy).expect("deploy.yml");
    write(
        &deploy,
        &text.replace("  key_data:\n    - SSH_DEPLOY_KEY\n", ""),
    );
    let (code, _, err) = dray(&project, &["server", "exec", "--hosts", &host, "true"]);
    assert_ne!(code, 0, "connected without the key: {err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");
}

#[test]
fn names_that_do_not_resolve_are_tried_sshkit_dns_retries_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        &dir.path().join("config/deploy.yml"),
        "service: dns\nimage: dns\nservers: [dray-nowhere.invalid]\nregistry: {server: 127.0.0.1:5000, username: u, password: p}\nbuilder: {arch: amd64}\nsshkit: {dns_retries: 2}\nssh: {config: false}\n",
    );
    git(dir.path(), &["init", "-q"]);
    let out = crate::support::dray_cmd(dir.path(), &["server", "exec", "--version", "v1", "true"])
        .env("DRAY_LOG", "warn")
        .output()
        .expect("run dray");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("attempt 1/2"), "{err}");
    assert!(err.contains("attempt 2/2"), "{err}");
    assert!(!err.contains("attempt 3/2"), "{err}");
}

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

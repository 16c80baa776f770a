//! Registries on the fleet, through the `dray` binary: a registry that needs a login (the
//! fleet's htpasswd registry on 127.0.0.1:5001), and Kamal's local registry mode
//! (`registry.server: localhost:PORT`, hosts pulling through SSH reverse tunnels).

use std::path::Path;
use std::process::Output;

use crate::support::deployer::served_version;
use crate::support::fleet::{unique_name, AuthRegistry, Fleet};
use crate::support::procs::ProcessWatch;
use crate::support::project::{git, Project};

/// Run dray in the project with its own Docker client config (the local login's credentials
/// land there, not in the machine's `~/.docker`).
fn dray(project: &Project, docker_config: &Path, args: &[&str]) -> Output {
    crate::support::dray_cmd(project.path(), args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("DOCKER_CONFIG", docker_config)
        .output()
        .expect("run dray")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The example app with `registry: {server: <auth registry>, username: <user>, password:
/// [KAMAL_REGISTRY_PASSWORD]}` and `password` in `.kamal/secrets`.
fn auth_project(fleet: &Fleet, auth: &AuthRegistry, password: &str) -> Project {
    let project = Project::new(fleet, &unique_name("e2e-login"), |d| {
        let edited = d.replace(
            "  server: 127.0.0.1:5000\n  username:\n    - KAMAL_REGISTRY_USERNAME\n",
            &format!("  server: {}\n  username: {}\n", auth.address, auth.user),
        );
        assert_ne!(edited, d, "the registry section of deploy.yml changed");
        edited
    });
    set_password(&project, password);
    project
}

fn set_password(project: &Project, password: &str) {
    crate::support::write(
        &project.path().join(".kamal/secrets"),
        &format!("KAMAL_REGISTRY_PASSWORD={password}\n"),
    );
    git(project.path(), &["add", "-A"]);
    git(
        project.path(),
        &["commit", "-qm", "registry password", "--allow-empty"],
    );
}

/// Whether a Docker client config (`config.json`) holds credentials for `registry`.
fn has_credentials(config_json: Option<&str>, registry: &str) -> bool {
    config_json.is_some_and(|c| c.contains(&format!("\"{registry}\"")))
}

/// Containers and images of the project off every host, and the hosts logged out.
fn cleanup(fleet: &Fleet, project: &Project, registry: &str) {
    project.cleanup(fleet);
    for host in fleet.hosts() {
        let _ = fleet.ssh(
            host,
            &format!(
                "docker image ls --format '{{{{.Repository}}}}:{{{{.Tag}}}}' {registry}/{s} | xargs -r docker rmi >/dev/null 2>&1; docker logout {registry} >/dev/null 2>&1",
                s = project.service
            ),
        );
    }
}

#[test]
fn deploy_through_a_registry_that_needs_a_login() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let auth = fleet.auth_registry();
    let project = auth_project(fleet, &auth, &auth.password);
    let docker_config = tempfile::tempdir().expect("tempdir");

    // No host holds credentials for the registry, and without them a pull is refused.
    for host in &hosts {
        let _ = fleet.ssh(
            host,
            &format!("docker logout {} >/dev/null 2>&1", auth.address),
        );
        let config = fleet.read_file(host, "~/.docker/config.json");
        assert!(
            !has_credentials(config.as_deref(), &auth.address),
            "{host}: {config:?}"
        );
    }
    let refused = fleet.ssh(
        &hosts[0],
        &format!("docker pull {}/nothing:here", auth.address),
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no basic auth credentials"),
        "{refused:?}"
    );

    let watch = ProcessWatch::start();
    let out = dray(&project, docker_config.path(), &["deploy"]);
    let scans = watch.scans();
    let seen = watch.finish();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    let version = project.head();

    // The hosts pulled the image from the registry and run it.
    for host in &hosts {
        let images = fleet.ssh_ok(
            host,
            &format!(
                "docker image ls --format '{{{{.Repository}}}}:{{{{.Tag}}}}' {}/{}",
                auth.address, project.service
            ),
        );
        assert!(images.contains(&version), "{host}: {images}");
    }
    for host in &hosts[..2] {
        assert_eq!(
            served_version(fleet, host, &project.service, "web"),
            version
        );
    }
    assert_eq!(
        served_version(fleet, &hosts[2], &project.service, "workers"),
        version
    );

    // Logged in on this machine (the push needed it) and on each host (the pull needed it).
    let local = std::fs::read_to_string(docker_config.path().join("config.json")).ok();
    assert!(
        has_credentials(local.as_deref(), &auth.address),
        "{local:?}"
    );
    for host in &hosts {
        let config = fleet.read_file(host, "~/.docker/config.json");
        assert!(
            has_credentials(config.as_deref(), &auth.address),
            "{host}: {config:?}"
        );
    }

    // The local login ran before the push, with the password on stdin: no process on this
    // machine or on any host (they share its process table) had it in its arguments.
    assert!(scans > 100, "the process watch scanned {scans} times");
    let login = format!(
        "docker login {} -u {} --password-stdin",
        auth.address, auth.user
    );
    let first = |needle: &str| seen.iter().find(|s| s.cmdline.contains(needle));
    let logged_in = first(&login).unwrap_or_else(|| panic!("no `{login}` seen:\n{seen:#?}"));
    let pushed = first(&format!("docker push {}/{}", auth.address, project.service))
        .unwrap_or_else(|| panic!("no push seen:\n{seen:#?}"));
    assert!(logged_in.at < pushed.at, "{logged_in:?} after {pushed:?}");
    let leaks: Vec<_> = seen
        .iter()
        .filter(|s| s.cmdline.contains(&auth.password))
        .collect();
    assert!(leaks.is_empty(), "the password in argv: {leaks:#?}");
    assert!(
        !shown.contains(&auth.password),
        "the password in dray's output"
    );

    // A wrong password: the local login fails before the build, naming the registry and
    // where the login ran; nothing on the hosts changes.
    let wrong = format!("{}-wrong", auth.password);
    set_password(&project, &wrong);
    let out = dray(&project, docker_config.path(), &["deploy"]);
    let shown = text(&out);
    assert_ne!(out.status.code(), Some(0), "{shown}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&auth.address) && stderr.contains("localhost"),
        "{shown}"
    );
    assert!(!shown.contains(&wrong), "the password in dray's output");

    // A wrong password on the hosts (`--skip-push`: no local login): every host's pull fails
    // at its login, each named with the registry, before the lock and before anything is
    // stopped: the running version keeps running everywhere.
    let out = dray(
        &project,
        docker_config.path(),
        &["deploy", "--skip-push", "--version", &version],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for host in &hosts {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(host.as_str()) && l.contains(&auth.address)),
            "{host} not named with the registry:\n{shown}"
        );
    }
    assert!(!shown.contains(&wrong), "the password in dray's output");
    for host in &hosts[..2] {
        assert_eq!(
            served_version(fleet, host, &project.service, "web"),
            version
        );
    }
    assert_eq!(
        served_version(fleet, &hosts[2], &project.service, "workers"),
        version
    );
    cleanup(fleet, &project, &auth.address);
}

//! `dray build …` on the fleet: `push` then `pull` puts the image on every host (and `app
//! remove` takes it away again), `details` shows the build setup, `dev` builds `-dirty` tags
//! locally, and what this machine cannot do (a buildx builder, a buildx output type) is refused
//! before anything runs.

use std::process::Command;

use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::Project;

/// `repo:tag` of every image of `service` in the fleet registry's namespace on `host`, sorted.
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

/// `docker` on the builder engine (the deploying side).
fn local_docker(args: &[&str]) -> std::process::Output {
    Command::new("docker").args(args).output().expect("docker")
}

#[test]
fn build_push_then_pull_puts_the_image_on_every_host_and_app_remove_takes_it_away() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let p = Project::new(fleet, &unique_name("e2e-bpush"), |d| d);
    let s = p.service.clone();
    let version = p.head();
    let image = format!("127.0.0.1:5000/{s}:{version}");

    let (code, out, err) = p.dray(&["build", "push"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // Pushed: the registry has the tag; no host has it yet.
    let manifest = Command::new("curl")
        .args(["-fs", "-o", "/dev/null", "-H"])
        .arg("Accept: application/vnd.docker.distribution.manifest.v2+json")
        .arg(format!("http://127.0.0.1:5000/v2/{s}/manifests/{version}"))
        .status()
        .expect("curl");
    assert!(manifest.success(), "{image} is not in the registry");
    for host in &hosts {
        assert!(images(fleet, host, &s).is_empty(), "{host}");
    }
    let log = p.hook_log();
    assert!(log.contains("hook=pre-build"), "{log}");
    assert!(log.contains("KAMAL_COMMAND=build"), "{log}");
    assert!(log.contains("KAMAL_SUBCOMMAND=push"), "{log}");

    let (code, out, err) = p.dray(&["build", "pull"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for host in &hosts {
        assert_eq!(images(fleet, host, &s), vec![image.clone()], "{host}");
        let audit = fleet
            .read_file(host, &format!("~/.kamal/{s}-audit.log"))
            .unwrap_or_default();
        assert!(
            audit.contains(&format!("Pulled image with version {version}")),
            "{host}: {audit}"
        );
    }

    // app remove: no container, no image of the app on any host afterwards.
    let (code, out, err) = p.dray(&["app", "remove"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for host in &hosts {
        assert!(images(fleet, host, &s).is_empty(), "{host}");
        let ps = fleet.ssh_ok(host, &format!("docker ps -aq --filter label=service={s}"));
        assert!(ps.trim().is_empty(), "{host}: {ps}");
    }
    let _ = local_docker(&["image", "rm", &image, &format!("127.0.0.1:5000/{s}:latest")]);
    p.cleanup_all(fleet);
}

#[test]
fn build_details_dev_and_refusals() {
    let Some(fleet) = Fleet::get() else { return };
    let p = Project::new(fleet, &unique_name("e2e-bdev"), |d| d);
    let s = p.service.clone();

    let out = p.dray_ok(&["build", "details"]);
    assert!(out.contains("Builder: local"), "{out}");
    // `docker context ls`'s table.
    assert!(out.contains("NAME"), "{out}");
    let buildx = local_docker(&["buildx", "version"]).status.success();
    if !buildx {
        assert!(out.contains("docker buildx is not installed"), "{out}");
        // No buildx builder to create or remove here: refused, exit 2.
        for sub in ["create", "remove"] {
            let (code, _, err) = p.dray(&["build", sub]);
            assert_eq!(code, 2, "{err}");
            assert!(err.contains("docker buildx is not installed"), "{err}");
            assert!(err.contains("hint:"), "{err}");
        }
        let (code, _, err) = p.dray(&["build", "push", "--output", "tar"]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("the output type `tar` needs docker buildx"),
            "{err}"
        );
    }

    // dev: the working directory (an uncommitted change included), tagged -dirty, kept in the
    // local engine, nothing pushed.
    std::fs::write(p.path().join("extra.txt"), "dev\n").expect("write");
    let (code, out, err) = p.dray(&["build", "dev", "--version", "v1"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("Untracked files"), "{err}");
    assert!(err.contains("extra.txt"), "{err}");
    let repo = format!("127.0.0.1:5000/{s}");
    for tag in ["v1-dirty", "latest-dirty"] {
        let inspect = local_docker(&["image", "inspect", &format!("{repo}:{tag}")]);
        assert!(inspect.status.success(), "{tag} missing locally");
    }
    let pushed = Command::new("curl")
        .args(["-fs", "-o", "/dev/null"])
        .arg(format!("http://127.0.0.1:5000/v2/{s}/manifests/v1-dirty"))
        .status()
        .expect("curl");
    assert!(!pushed.success(), "build dev pushed");
    let _ = local_docker(&[
        "image",
        "rm",
        &format!("{repo}:v1-dirty"),
        &format!("{repo}:latest-dirty"),
    ]);
}

//! Tests of [`super`]: refusals of what this machine cannot build, and the Dockerfile check.

use super::*;
use crate::docker::test_support::{config_with, BASE};

fn with(builder: &str) -> Config {
    config_with(&BASE.replace("builder:\n  arch: amd64\n", builder), None)
}

fn env(buildx: bool, arch: &str) -> BuildEnv {
    BuildEnv {
        buildx,
        arch: arch.into(),
        pack: false,
    }
}

fn refusal(builder: &str, e: &BuildEnv) -> String {
    match check(&with(builder), e) {
        Ok(()) => "ok".into(),
        Err(r) => r.to_string(),
    }
}

#[test]
fn docker_arch_as_kamal_maps_it() {
    assert_eq!(docker_arch("x86_64\n"), "amd64");
    assert_eq!(docker_arch("aarch64"), "arm64");
    assert_eq!(docker_arch("riscv64"), "riscv64");
}

#[test]
fn legacy_builder_builds_only_the_engines_arch() {
    let e = env(false, "amd64");
    assert_eq!(refusal("builder:\n  arch: amd64\n", &e), "ok");
    assert_eq!(refusal("builder:\n  arch: [amd64]\n", &e), "ok");
    assert_eq!(refusal("builder:\n  arch: linux/amd64\n", &e), "ok");
    let arm = refusal("builder:\n  arch: arm64\n", &e);
    assert!(
        arm.starts_with(
            "builder.arch: `arm64` is not the arch of this machine's docker engine (amd64)"
        ),
        "{arm}"
    );
    let multi = refusal("builder:\n  arch: [amd64, arm64]\n", &e);
    assert!(
        multi.starts_with("builder.arch: a multi-arch image (amd64, arm64) needs docker buildx"),
        "{multi}"
    );
    let hybrid = refusal(
        "builder:\n  arch: [amd64, arm64]\n  remote: ssh://b@h\n",
        &e,
    );
    assert!(
        hybrid.contains("amd64 here and arm64 on ssh://b@h"),
        "{hybrid}"
    );
    // One arch on the remote's engine is the legacy remote build.
    assert_eq!(
        refusal("builder:\n  arch: arm64\n  remote: ssh://b@h\n", &e),
        "ok"
    );
    assert_eq!(
        refusal(
            "builder:\n  arch: amd64\n  remote: ssh://b@h\n  local: false\n",
            &e
        ),
        "ok"
    );
    // With buildx, all of these are Kamal's builds.
    assert_eq!(
        refusal("builder:\n  arch: [amd64, arm64]\n", &env(true, "amd64")),
        "ok"
    );
}

#[test]
fn buildx_only_keys_are_refused_without_buildx() {
    let e = env(false, "amd64");
    for (yaml, key) in [
        ("  cache:\n    type: gha\n", "builder.cache"),
        ("  driver: cloud org/name\n", "builder.driver"),
        ("  driver: kubernetes\n", "builder.driver"),
        ("  provenance: mode=max\n", "builder.provenance"),
        ("  sbom: true\n", "builder.sbom"),
        ("  secrets:\n    - TOKEN\n", "builder.secrets"),
        ("  ssh: default\n", "builder.ssh"),
    ] {
        let text = refusal(&format!("builder:\n  arch: amd64\n{yaml}"), &e);
        assert!(text.starts_with(&format!("{key}: ")), "{text}");
        assert!(text.contains("needs docker buildx"), "{text}");
        assert_eq!(
            refusal(
                &format!("builder:\n  arch: amd64\n{yaml}"),
                &env(true, "amd64")
            ),
            "ok"
        );
    }
}

#[test]
fn pack_needs_the_pack_cli() {
    let yaml = "builder:\n  arch: amd64\n  pack:\n    builder: heroku/builder:24\n";
    let text = refusal(yaml, &env(false, "amd64"));
    assert!(
        text.starts_with("builder.pack: buildpacks need the `pack` CLI"),
        "{text}"
    );
    let with_pack = BuildEnv {
        pack: true,
        ..env(false, "amd64")
    };
    assert_eq!(refusal(yaml, &with_pack), "ok");
}

#[test]
fn a_missing_dockerfile_is_refused_with_kamals_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = with("builder:\n  arch: amd64\n  dockerfile: Dockerfile.production\n");
    let text = check_dockerfile(&c, dir.path(), &env(false, "amd64"))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        text.as_deref(),
        Some("builder.dockerfile: Missing Dockerfile.production")
    );
    std::fs::write(dir.path().join("Dockerfile.production"), "FROM scratch\n").expect("write");
    assert_eq!(
        check_dockerfile(&c, dir.path(), &env(false, "amd64")),
        Ok(())
    );
}

#[test]
fn local_registry_with_a_remote_builder_needs_ssh() {
    let yaml = BASE
        .replace(
            "  username: dhh\n  password: secret\n",
            "  server: localhost:5555\n",
        )
        .replace(
            "builder:\n  arch: amd64\n",
            "builder:\n  arch: arm64\n  remote: tcp://builder:2375\n",
        );
    let c = config_with(&yaml, None);
    let text = check(&c, &env(true, "amd64")).err().map(|e| e.to_string());
    assert_eq!(
        text.as_deref(),
        Some("builder.remote: Local registry with remote builder requires an SSH URL (e.g., ssh://user@host)")
    );
    let c = config_with(&yaml.replace("tcp://builder:2375", "ssh://b@h"), None);
    assert_eq!(check(&c, &env(true, "amd64")), Ok(()));
}

#[test]
fn output_types_without_buildx_are_registry_and_docker_here() {
    let e = env(false, "amd64");
    let c = with("builder:\n  arch: amd64\n");
    assert_eq!(check_export(&c, &e, "registry"), Ok(()));
    assert_eq!(check_export(&c, &e, "docker"), Ok(()));
    let tar = check_export(&c, &e, "tar").err().map(|r| r.to_string());
    assert!(
        tar.as_deref()
            .is_some_and(|t| t.starts_with("--output: the output type `tar` needs docker buildx")),
        "{tar:?}"
    );
    assert_eq!(check_export(&c, &env(true, "amd64"), "tar"), Ok(()));
    let remote = with("builder:\n  arch: amd64\n  remote: ssh://b@h\n  local: false\n");
    let kept = check_export(&remote, &e, "docker")
        .err()
        .map(|r| r.to_string());
    assert!(
        kept.as_deref().is_some_and(|t| t.contains("ssh://b@h")),
        "{kept:?}"
    );
    assert_eq!(check_export(&remote, &e, "registry"), Ok(()));
}

//! `builder:` as Kamal 2.12 runs it, or refused.
//!
//! - With buildx: the plan (snapshots of the build stage) and a deploy on the fleet through the
//!   binary create Kamal's builder when `docker buildx inspect` says it is missing and reuse it
//!   afterwards. **buildx is mocked**: it cannot be installed on this machine (no package), so a
//!   `docker` script first on `PATH` answers `docker buildx …` (records the argv, keeps the
//!   builders it created, and turns `buildx build` into the real `docker build` + `docker push`
//!   so the deploy boots what it built) and hands every other command to the real docker.
//! - Without buildx (the fleet): `arch: amd64` builds and boots, `arch: arm64` is refused before
//!   any host is touched, and `builder.remote` builds on that engine with `docker -H ssh://…`.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::{git, Project};
use crate::support::{dray_cmd, write};

/// The mock `docker` (see the module documentation). `$DRAY_TEST_BUILDX_LOG` receives one line
/// per `docker buildx|context …` call; a builder counts as existing once `buildx create --name
/// N` was called with this log.
const FAKE_DOCKER: &str = r#"#!/bin/sh
# MOCK: docker buildx cannot be installed on this machine (no package); this script stands in
# for it and hands everything else to the real docker.
log="$DRAY_TEST_BUILDX_LOG"
real="$DRAY_TEST_REAL_DOCKER"
case "$1" in
  buildx|context) printf '%s\n' "$*" >> "$log" ;;
  *) exec "$real" "$@" ;;
esac
[ "$1" = context ] && exit 0
case "$2" in
  version) echo "github.com/docker/buildx v0.0.0-mock"; exit 0 ;;
  inspect)
    if grep -q "^buildx create --name $3 " "$log"; then
      printf 'Name: %s\nDriver: docker-container\n' "$3"; exit 0
    fi
    echo "ERROR: no builder \"$3\" found" >&2; exit 1 ;;
  build)
    shift 2
    kept=""; tags=""
    while [ $# -gt 1 ]; do
      case "$1" in
        --output=*) shift ;;
        --platform|--builder|--cache-to|--cache-from|--provenance|--sbom) shift 2 ;;
        -t) tags="$tags $2"; kept="$kept -t $2"; shift 2 ;;
        *) kept="$kept $1"; shift ;;
      esac
    done
    "$real" build $kept "$1" || exit 1
    for t in $tags; do "$real" push "$t" || exit 1; done
    exit 0 ;;
  *) exit 0 ;;
esac
"#;

/// A directory with the mock `docker`, to put first on `PATH`.
fn fake_docker_bin(dir: &Path) -> PathBuf {
    let bin = dir.join("fake-bin");
    write(&bin.join("docker"), FAKE_DOCKER);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("docker"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    bin
}

fn real_docker() -> PathBuf {
    which::which("docker").unwrap_or_else(|_| PathBuf::from("/usr/bin/docker"))
}

/// `dray args…` in `dir`, with the mock buildx first on `PATH` when `fake` is given (its log
/// at `fake/../buildx.log`).
fn dray_in(dir: &Path, args: &[&str], fake: Option<&Path>, extra_path: Option<&Path>) -> Output {
    let mut cmd = dray_cmd(dir, args);
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("DOCKER_CONFIG", dir.join(".docker-config"));
    let mut path = std::env::var("PATH").unwrap_or_default();
    if let Some(extra) = extra_path {
        path = format!("{}:{path}", extra.display());
    }
    if let Some(bin) = fake {
        path = format!("{}:{path}", bin.display());
        cmd.env("DRAY_TEST_BUILDX_LOG", buildx_log(bin))
            .env("DRAY_TEST_REAL_DOCKER", real_docker());
    }
    cmd.env("PATH", path);
    cmd.output().expect("run dray")
}

fn buildx_log(bin: &Path) -> PathBuf {
    bin.with_file_name("buildx.log")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ----- plans with (mocked) buildx -----------------------------------------------------------

const CONFIG: &str = "\
service: app
image: team/app
servers:
  - 10.0.0.1
registry:
  server: registry.example:5000
  username: deployer
  password:
    - REGISTRY_PASSWORD
builder:
  arch: amd64
";

/// A committed project with `builder` as its builder section.
fn plan_repo(builder: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        &dir.path().join("config/deploy.yml"),
        &CONFIG.replace("builder:\n  arch: amd64\n", builder),
    );
    write(
        &dir.path().join(".kamal/secrets"),
        "REGISTRY_PASSWORD=hunter2\nGITHUB_TOKEN=ghp_secret\n",
    );
    write(&dir.path().join(".gitignore"), ".kamal/secrets\n");
    write(&dir.path().join("Dockerfile"), "FROM scratch\n");
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-qm", "init"]);
    dir
}

/// The `build` stage of `deploy --dry-run --version 1.0.0`, with or without the mock buildx.
fn build_stage(builder: &str, buildx: bool) -> String {
    let dir = plan_repo(builder);
    let bin = fake_docker_bin(dir.path());
    let out = dray_in(
        dir.path(),
        &["deploy", "--dry-run", "--version", "1.0.0"],
        buildx.then_some(bin.as_path()),
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout).into_owned();
    let start = plan.find(". build\n").expect("a build stage");
    let start = plan[..start].rfind('\n').map_or(0, |i| i + 1);
    let rest = &plan[start..];
    let end = rest[1..].find("\n\n").map_or(rest.len(), |i| i + 1);
    rest[..end].to_string()
}

fn snapshot(name: &str, value: String) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.bind(|| insta::assert_snapshot!(name, value));
}

#[test]
fn buildx_plan_local_builder_created_when_missing() {
    snapshot(
        "buildx_local",
        build_stage("builder:\n  arch: amd64\n", true),
    );
}

#[test]
fn buildx_plan_multi_arch_cache_provenance_sbom() {
    snapshot(
        "buildx_multi_arch_registry_cache",
        build_stage(
            "builder:\n  arch: [amd64, arm64]\n  cache:\n    type: registry\n    options: mode=max\n  provenance: mode=max\n  sbom: true\n  secrets:\n    - GITHUB_TOKEN\n",
            true,
        ),
    );
    snapshot(
        "buildx_gha_cache",
        build_stage(
            "builder:\n  arch: amd64\n  cache:\n    type: gha\n    options: url=http://cache,mode=max\n",
            true,
        ),
    );
}

#[test]
fn buildx_plan_remote_hybrid_and_cloud_builders() {
    snapshot(
        "buildx_remote",
        build_stage(
            "builder:\n  arch: arm64\n  remote: ssh://builder@10.0.0.9\n",
            true,
        ),
    );
    snapshot(
        "buildx_hybrid",
        build_stage(
            "builder:\n  arch: [amd64, arm64]\n  remote: ssh://builder@10.0.0.9\n",
            true,
        ),
    );
    snapshot(
        "buildx_cloud",
        build_stage(
            "builder:\n  arch: amd64\n  driver: cloud acme/builder\n",
            true,
        ),
    );
    // `driver: docker`: the engine's own builder, nothing to create.
    let docker = build_stage("builder:\n  arch: amd64\n  driver: docker\n", true);
    assert!(!docker.contains("buildx inspect"), "{docker}");
    assert!(!docker.contains("--builder"), "{docker}");
}

#[test]
fn build_create_remove_and_details_manage_the_buildx_builder() {
    let dir = plan_repo("builder:\n  arch: amd64\n");
    let bin = fake_docker_bin(dir.path());
    for sub in ["create", "details", "remove"] {
        let out = dray_in(dir.path(), &["build", sub], Some(&bin), None);
        assert!(out.status.success(), "{}", text(&out));
        if sub == "details" {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("Builder: local"), "{stdout}");
        }
    }
    // The probe (`buildx version`) aside, exactly Kamal's commands.
    let log = std::fs::read_to_string(buildx_log(&bin)).unwrap_or_default();
    let log: String = log
        .lines()
        .filter(|l| *l != "buildx version")
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        log,
        "buildx create --name kamal-local-docker-container --driver=docker-container\n\
         context ls\n\
         buildx ls\n\
         buildx rm kamal-local-docker-container\n"
    );
}

#[test]
fn legacy_plan_is_the_same_for_every_spelling_of_the_engines_arch() {
    let plain = build_stage("builder:\n  arch: amd64\n", false);
    snapshot("legacy_amd64", plain.clone());
    for spelling in ["linux/amd64", "[amd64]", "[linux/amd64]"] {
        assert_eq!(
            build_stage(&format!("builder:\n  arch: {spelling}\n"), false),
            plain,
            "arch: {spelling}"
        );
    }
    snapshot(
        "legacy_remote",
        build_stage(
            "builder:\n  arch: amd64\n  local: false\n  remote: ssh://builder@10.0.0.9\n",
            false,
        ),
    );
}

#[test]
fn legacy_refusals_name_the_key_before_anything_runs() {
    for (builder, key, says) in [
        (
            "builder:\n  arch: arm64\n",
            "builder.arch",
            "`arm64` is not the arch of this machine's docker engine (amd64)",
        ),
        (
            "builder:\n  arch: [amd64, arm64]\n",
            "builder.arch",
            "a multi-arch image (amd64, arm64) needs docker buildx",
        ),
        (
            "builder:\n  arch: amd64\n  cache:\n    type: gha\n",
            "builder.cache",
            "the build cache (`type: gha`) needs docker buildx",
        ),
        (
            "builder:\n  arch: amd64\n  driver: cloud acme/builder\n",
            "builder.driver",
            "the Docker Build Cloud driver `cloud acme/builder` needs docker buildx",
        ),
        (
            "builder:\n  arch: amd64\n  pack:\n    builder: heroku/builder:24\n",
            "builder.pack",
            "buildpacks need the `pack` CLI, which is not on PATH",
        ),
    ] {
        let dir = plan_repo(builder);
        let out = dray_in(
            dir.path(),
            &["deploy", "--dry-run", "--version", "1"],
            None,
            None,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{builder}: {}", text(&out));
        assert!(
            stderr.contains(&format!("error: {key}: {says}")),
            "{builder}: {stderr}"
        );
        assert!(stderr.contains("\nhint: "), "{stderr}");
        // --skip-push builds nothing: nothing to refuse.
        let out = dray_in(
            dir.path(),
            &["deploy", "--dry-run", "--skip-push", "--version", "1"],
            None,
            None,
        );
        assert!(out.status.success(), "{builder}: {}", text(&out));
    }
}

#[test]
fn a_missing_dockerfile_is_refused_with_kamals_message_unless_skip_push() {
    let dir = plan_repo("builder:\n  arch: amd64\n  dockerfile: Dockerfile.production\n");
    // Not a dry run: the check is made when the build would run; the hosts are never reached
    // (10.0.0.1 is not a fleet host and nothing connects before the refusal).
    let out = dray_in(dir.path(), &["deploy", "--version", "1"], None, None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: builder.dockerfile: Missing Dockerfile.production"),
        "{stderr}"
    );
}

#[test]
fn local_registry_with_a_non_ssh_remote_builder_is_refused() {
    let dir = plan_repo("builder:\n  arch: arm64\n  remote: tcp://10.0.0.9:2375\n");
    let config = std::fs::read_to_string(dir.path().join("config/deploy.yml")).expect("read");
    write(
        &dir.path().join("config/deploy.yml"),
        &config.replace(
            "  server: registry.example:5000\n  username: deployer\n  password:\n    - REGISTRY_PASSWORD\n",
            "  server: localhost:5555\n",
        ),
    );
    let out = dray_in(
        dir.path(),
        &["deploy", "--dry-run", "--version", "1"],
        None,
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "error: builder.remote: Local registry with remote builder requires an SSH URL (e.g., ssh://user@host)"
        ),
        "{}",
        text(&out)
    );
}

// ----- the fleet ---------------------------------------------------------------------------

/// Deploy `project` to the first fleet host only; (output).
fn deploy(
    project: &Project,
    version: &str,
    fake: Option<&Path>,
    extra_path: Option<&Path>,
    host: &str,
) -> Output {
    dray_in(
        project.path(),
        &["deploy", "-v", "--version", version, "--hosts", host],
        fake,
        extra_path,
    )
}

fn served(fleet: &Fleet, host: &str, service: &str) -> String {
    crate::support::deployer::served_version(fleet, host, service, "web")
}

#[test]
fn fleet_buildx_builder_is_created_once_then_reused() {
    let Some(fleet) = Fleet::get() else { return };
    let host = fleet.require_hosts(1)[0].clone();
    let service = unique_name("e2e-buildx");
    let project = Project::new(fleet, &service, |d| d);
    let bin = fake_docker_bin(project.path());
    let first = deploy(&project, "bx1", Some(&bin), None, &host);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(
        String::from_utf8_lossy(&first.stderr)
            .contains("Missing compatible builder, so creating a new one first"),
        "{}",
        text(&first)
    );
    let second = deploy(&project, "bx2", Some(&bin), None, &host);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert_eq!(served(fleet, &host, &service), "bx2");
    let log = std::fs::read_to_string(buildx_log(&bin))
        .expect("buildx log")
        .replace(&service, "[SERVICE]");
    snapshot("fleet_buildx_create_then_reuse", log);
    project.cleanup(fleet);
}

#[test]
fn fleet_deploy_arch_amd64_builds_and_boots_without_buildx() {
    let Some(fleet) = Fleet::get() else { return };
    let host = fleet.require_hosts(1)[0].clone();
    let service = unique_name("e2e-amd64");
    let project = Project::new(fleet, &service, |d| {
        d.replace("builder:\n  arch: amd64", "builder:\n  arch: [linux/amd64]")
    });
    let out = deploy(&project, "amd1", None, None, &host);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("docker build "),
        "the legacy builder ran: {}",
        text(&out)
    );
    assert_eq!(served(fleet, &host, &service), "amd1");
    project.cleanup(fleet);
}

#[test]
fn fleet_deploy_arch_arm64_is_refused_before_any_host_is_touched() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let service = unique_name("e2e-arm64");
    // dray connects from an address of this test's own (`BindAddress`), so that other tests'
    // connections to the same hosts are not counted.
    let source = Fleet::unique_source_address();
    let ssh_dir = tempfile::tempdir().expect("tempdir");
    let ssh_config = fleet.bound_ssh_config(ssh_dir.path(), &source);
    let own_config = format!("config: {}", ssh_config.display());
    let fleet_config = format!("config: {}", fleet.ssh_config().display());
    let project = Project::new(fleet, &service, |d| {
        d.replace("builder:\n  arch: amd64", "builder:\n  arch: arm64")
            .replace(&fleet_config, &own_config)
    });
    assert!(
        std::fs::read_to_string(project.path().join("config/deploy.yml"))
            .expect("read deploy.yml")
            .contains(&own_config),
        "the project uses this test's ssh config"
    );
    let before: Vec<usize> = hosts
        .iter()
        .map(|h| fleet.accepted_connections_from(h, &source))
        .collect();
    let out = dray_in(project.path(), &["deploy", "--version", "arm1"], None, None);
    let after: Vec<usize> = hosts
        .iter()
        .map(|h| fleet.accepted_connections_from(h, &source))
        .collect();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: builder.arch: `arm64` is not the arch of this machine's docker engine (amd64); building for another arch needs docker buildx"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: install docker buildx"), "{stderr}");
    assert_eq!(before, after, "no host was connected to");
    assert_eq!(project.hook_log(), "", "no hook ran");
}

#[test]
fn fleet_remote_builder_without_buildx_builds_on_that_engine() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(2).to_vec();
    let (builder_host, host) = (hosts[1].clone(), hosts[0].clone());
    let service = unique_name("e2e-remote-build");
    let project = Project::new(fleet, &service, |d| {
        d.replace(
            "builder:\n  arch: amd64",
            &format!(
                "builder:\n  arch: amd64\n  local: false\n  remote: ssh://root@{builder_host}"
            ),
        )
    });
    // `docker -H ssh://…` runs the `ssh` binary with the user's ssh config; the fleet's config
    // stands in for it through this wrapper (no other user config is read).
    let ssh_bin = project.path().join("ssh-bin");
    let real_ssh = which::which("ssh").expect("ssh");
    write(
        &ssh_bin.join("ssh"),
        &format!(
            "#!/bin/sh\ncase \" $* \" in *\" -F \"*) exec {real} \"$@\" ;; esac\nexec {real} -F {config} \"$@\"\n",
            real = real_ssh.display(),
            config = fleet.ssh_config().display()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(ssh_bin.join("ssh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let out = deploy(&project, "rb1", None, Some(&ssh_bin), &host);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("docker -H ssh://root@{builder_host} build ")),
        "{stderr}"
    );
    assert_eq!(served(fleet, &host, &service), "rb1");
    // Built on the remote engine: the image is there, not on this machine's engine.
    let image = format!("127.0.0.1:5000/{service}:rb1");
    let there = fleet.ssh(
        &builder_host,
        &format!("docker image inspect {image} >/dev/null"),
    );
    assert!(there.status.success(), "the image is on {builder_host}");
    let here = std::process::Command::new(real_docker())
        .args(["image", "inspect", &image])
        .output()
        .expect("docker");
    assert!(!here.status.success(), "the image was not built here");
    let _ = fleet.ssh(
        &builder_host,
        &format!("docker image rm {image} 127.0.0.1:5000/{service}:latest"),
    );
    project.cleanup(fleet);
}

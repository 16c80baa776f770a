//! Plans of `server bootstrap`, `build …` and `proxy upgrade` (`--dry-run` snapshots), and the commands that
//! print text (`help`, `docs`) or refuse (`upgrade`), through the binary.

use std::path::Path;

use crate::support::project::git;
use crate::support::{dray_cmd, write};

const CONFIG: &str = "\
service: app
image: team/app
servers:
  web:
    - 10.0.0.1
    - 10.0.0.2
  workers:
    - 10.0.0.3
registry:
  server: registry.example:5000
  username: deployer
  password:
    - REGISTRY_PASSWORD
builder:
  arch: amd64
";

/// MOCK: the build environment is probed with `docker buildx version` and `docker info`; a
/// `docker` that has no buildx and reports amd64 pins the probe whatever this machine has.
const FAKE_DOCKER: &str = "#!/bin/sh\ncase \"$1\" in info) echo x86_64 ;; *) exit 1 ;; esac\n";

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(&dir.path().join("config/deploy.yml"), CONFIG);
    write(
        &dir.path().join(".kamal/secrets"),
        "REGISTRY_PASSWORD=hunter2\n",
    );
    write(&dir.path().join(".gitignore"), ".kamal/secrets\nfake-bin\n");
    write(&dir.path().join("Dockerfile"), "FROM scratch\n");
    let bin = dir.path().join("fake-bin");
    write(&bin.join("docker"), FAKE_DOCKER);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("docker"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-qm", "init"]);
    dir
}

fn dray(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let path = format!(
        "{}:{}",
        dir.join("fake-bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = dray_cmd(dir, args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("PATH", path)
        .output()
        .expect("run dray");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn snapshot(name: &str, args: &[&str]) {
    let dir = repo();
    let mut all = args.to_vec();
    all.extend(["--dry-run", "--version", "1.2.3"]);
    let (code, out, err) = dray(dir.path(), &all);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("hunter2"), "{out}");
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]");
    settings.add_filter(r#""performer":"[^"]*""#, r#""performer":"[PERFORMER]""#);
    settings.add_filter(r"KAMAL_PERFORMER=.*", "KAMAL_PERFORMER=[PERFORMER]");
    // The lock's heartbeat names the holding process.
    settings.add_filter(r"Process: dray \d+", "Process: dray [PID]");
    settings.add_filter(r"\[[^\]\[]*\] (Pulled image)", "[PERFORMER] $1");
    settings.add_filter(
        r"TG9ja2Vk(?:[A-Za-z0-9+/=]|\n    \[[^\]]+\] > )*",
        "[LOCK DETAILS BASE64]",
    );
    settings.set_snapshot_path("snapshots");
    settings.bind(|| insta::assert_snapshot!(name, out));
}

#[test]
fn plan_proxy_upgrade_hands_over_or_reboots_per_host_and_reads_back() {
    snapshot("proxy_upgrade", &["proxy", "upgrade", "-y", "--rolling"]);
}

#[test]
fn plan_server_bootstrap() {
    snapshot("server_bootstrap", &["server", "bootstrap"]);
}

#[test]
fn bootstrap_includes_the_accessories_hosts_unless_roles_narrow_it() {
    let dir = repo();
    let config =
        format!("{CONFIG}accessories:\n  db:\n    image: postgres:16\n    host: 10.0.0.9\n");
    write(&dir.path().join("config/deploy.yml"), &config);
    let line = "[10.0.0.9] $ sh -c 'if docker -v";
    let (code, out, err) = dray(dir.path(), &["server", "bootstrap", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(line), "{out}");
    assert!(
        out.contains("KAMAL_HOSTS=10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.9"),
        "{out}"
    );
    let (_, out, _) = dray(
        dir.path(),
        &["server", "bootstrap", "--dry-run", "-r", "web"],
    );
    assert!(!out.contains(line), "{out}");
    let (_, out, _) = dray(
        dir.path(),
        &["server", "bootstrap", "--dry-run", "-h", "10.0.0.1"],
    );
    assert!(!out.contains(line), "{out}");
}

#[test]
fn plan_build_push_pull_deliver_dev_details() {
    snapshot("build_push", &["build", "push", "--no-cache"]);
    snapshot(
        "build_push_output_docker",
        &["build", "push", "--output", "docker"],
    );
    snapshot("build_pull", &["build", "pull", "-h", "10.0.0.1"]);
    snapshot("build_deliver", &["build", "deliver", "-r", "workers"]);
    snapshot("build_dev", &["build", "dev"]);
    snapshot("build_details", &["build", "details"]);
}

#[test]
fn help_prints_a_commands_help_and_refuses_unknown_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, out, err) = dray(dir.path(), &["help", "deploy"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Deploy app to servers"), "{out}");
    assert!(out.contains("Usage: dray deploy"), "{out}");
    assert!(out.contains("--skip-push"), "{out}");
    let (code, out, _) = dray(dir.path(), &["help", "app", "exec"]);
    assert_eq!(code, 0);
    assert!(out.contains("Usage: dray app exec"), "{out}");
    let (code, _, err) = dray(dir.path(), &["help", "deplyo"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown command `dray deplyo`"), "{err}");
    assert!(
        err.contains("hint: the commands of `dray` are: setup, deploy"),
        "{err}"
    );
}

#[test]
fn docs_prints_a_section_and_lists_the_sections_for_an_unknown_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, out, err) = dray(dir.path(), &["docs", "proxy"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("# Proxy"), "{out}");
    assert!(out.contains("healthcheck"), "{out}");
    assert!(out.contains("```yaml\nproxy:\n"), "{out}");
    let (code, out, _) = dray(dir.path(), &["docs"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("# The configuration file"), "{out}");
    let (code, _, err) = dray(dir.path(), &["docs", "traefik"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no documentation for `traefik`"), "{err}");
    assert!(
        err.contains("proxy, registry, role, servers, ssh, sshkit"),
        "{err}"
    );
}

#[test]
fn upgrade_is_refused_with_what_to_do_instead() {
    let dir = repo();
    let (code, out, err) = dray(dir.path(), &["upgrade", "-y", "--rolling"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("`upgrade` (Kamal 1 → 2"), "{err}");
    assert!(err.contains("kamal upgrade"), "{err}");
    assert!(err.contains("docker container stop traefik"), "{err}");
    assert!(err.contains("dray proxy boot"), "{err}");
}

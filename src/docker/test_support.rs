//! Test helpers: a validated [`Config`] from a YAML string, loaded the way the CLI loads it.

use std::collections::BTreeMap;

use crate::config::{load, Config, LoadOptions};

/// The base configuration of Kamal's command tests: `app`, image `dhh/app`, roles `web` and
/// `workers`.
pub const BASE: &str = "\
service: app
image: dhh/app
registry:
  username: dhh
  password: secret
servers:
  web:
    - 1.1.1.1
  workers:
    - 1.1.1.2
env:
  secret:
    - RAILS_MASTER_KEY
builder:
  arch: amd64
";

/// Load `yaml` (written as `config/deploy.yml`, plus `config/deploy.<dest>.yml` = `overlay`).
pub fn config_with(yaml: &str, destination: Option<&str>) -> Config {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("config");
    std::fs::create_dir_all(&cfg).expect("config dir");
    std::fs::write(cfg.join("deploy.yml"), yaml).expect("write deploy.yml");
    if let Some(d) = destination {
        std::fs::write(cfg.join(format!("deploy.{d}.yml")), "{}\n").expect("write overlay");
    }
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").expect("write Dockerfile");
    let opts = LoadOptions {
        config_file: "config/deploy.yml".into(),
        destination: destination.map(str::to_string),
        cwd: dir.path().to_path_buf(),
        env: BTreeMap::new(),
    };
    match load(&opts) {
        Ok(c) => c,
        Err(e) => panic!("config does not load: {e}"),
    }
}

/// [`BASE`] without destination.
pub fn base() -> Config {
    config_with(BASE, None)
}

/// [`BASE`] with destination `staging`.
pub fn staging() -> Config {
    config_with(BASE, Some("staging"))
}

/// An audit line of the web role, as the boot tests write them.
pub fn audit_line(message: String) -> crate::docker::AuditLine {
    crate::docker::AuditLine {
        recorded_at: "2024-01-01T00:00:00Z".into(),
        performer: "dev@example.com".into(),
        destination: None,
        role: Some("web".into()),
        message,
    }
}

/// Write `script` as an executable `docker` in `dir`: a stand-in for the unit tests that run a
/// generated script with `dir` first on `PATH`.
pub fn write_stand_in_docker(dir: &std::path::Path, script: &str) {
    let bin = dir.join("docker");
    std::fs::write(&bin, script).expect("write the stand-in docker");
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod the stand-in docker");
}

//! A throwaway project like the demo's: the example app, a deploy.yml for the fleet with a
//! unique service name (tests share the fleet), secrets, and the example hooks logging what
//! they see, committed to a real git repository.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::fleet::Fleet;
use super::write;

/// Tests that deploy share the fleet's proxies; a test that restarts a proxy takes this lock
/// exclusively (see [`exclusive_fleet`]) so no deploy runs on it meanwhile.
static FLEET_PROXIES: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Hold the fleet's proxies alone (no project deploys meanwhile).
pub fn exclusive_fleet() -> std::sync::RwLockWriteGuard<'static, ()> {
    FLEET_PROXIES.write().unwrap_or_else(|e| e.into_inner())
}

/// A project directory (removed on drop).
pub struct Project {
    /// The directory.
    pub dir: tempfile::TempDir,
    /// The unique service name.
    pub service: String,
    /// Shared use of the fleet's proxies while the project lives.
    _shared: Option<std::sync::RwLockReadGuard<'static, ()>>,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run git in `dir` with a fixed identity and no global configuration.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["-c", "user.email=e2e@example.com", "-c", "user.name=E2E"])
        .args(args)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Project {
    /// A committed project deploying the example app as `service` to the fleet; `edit` may
    /// change the deploy.yml text before it is written.
    pub fn new(fleet: &Fleet, service: &str, edit: impl FnOnce(String) -> String) -> Project {
        let mut project = Project::unguarded(fleet, service, edit);
        project._shared = Some(FLEET_PROXIES.read().unwrap_or_else(|e| e.into_inner()));
        project
    }

    /// Like [`Project::new`], without holding the fleet's proxies shared (for the test that
    /// takes them exclusively).
    pub fn unguarded(fleet: &Fleet, service: &str, edit: impl FnOnce(String) -> String) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = repo_root();
        let deploy = std::fs::read_to_string(root.join("deploy.yml")).expect("deploy.yml");
        let deploy = deploy
            .replace("service: dray-demo", &format!("service: {service}"))
            .replace("image: dray-demo", &format!("image: {service}"))
            .replace("host: dray-demo.test", &format!("host: {service}.test"))
            .replace(
                "config: .fleet/ssh/config",
                &format!("config: {}", fleet.ssh_config().display()),
            );
        write(&dir.path().join("config/deploy.yml"), &edit(deploy));
        for file in ["Dockerfile", "example/start", ".dockerignore"] {
            let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
            write(&dir.path().join(file), &text);
        }
        let secrets = std::fs::read_to_string(root.join("example/secrets")).unwrap_or_default();
        write(&dir.path().join(".kamal/secrets"), &secrets);
        for entry in std::fs::read_dir(root.join("hooks-examples")).expect("hooks") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .to_string();
            let target = dir.path().join(".kamal/hooks").join(&name);
            write(&target, &std::fs::read_to_string(&path).expect("hook"));
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("example/start"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        write(&dir.path().join(".gitignore"), ".kamal/hook-log\n");
        git(dir.path(), &["init", "-q"]);
        git(dir.path(), &["add", "-A"]);
        git(dir.path(), &["commit", "-qm", "example app"]);
        Project {
            dir,
            service: service.to_string(),
            _shared: None,
        }
    }

    /// The project directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `git rev-parse HEAD`.
    pub fn head(&self) -> String {
        git(self.path(), &["rev-parse", "HEAD"])
    }

    /// The hook log lines (`<hook> KAMAL_X=…`), as the example hooks write them.
    pub fn hook_log(&self) -> String {
        std::fs::read_to_string(self.path().join(".kamal/hook-log")).unwrap_or_default()
    }

    /// Run the `dray` binary in the project (a private Docker client config, no global git
    /// config); (exit code, stdout, stderr).
    pub fn dray(&self, args: &[&str]) -> (i32, String, String) {
        let out = super::dray_cmd(self.path(), args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("DOCKER_CONFIG", self.path().join(".docker-config"))
            .output()
            .expect("run dray");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// [`Project::dray`], which must succeed; its stdout.
    pub fn dray_ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.dray(args);
        assert_eq!(code, 0, "dray {args:?} failed:\n{stdout}\n{stderr}");
        stdout
    }

    /// [`Project::cleanup`], plus the service's images of the fleet registry and its proxy
    /// files (the fleet is shared).
    pub fn cleanup_all(&self, fleet: &Fleet) {
        self.cleanup_from(fleet, "127.0.0.1:5000", "");
    }

    /// [`Project::cleanup`], plus the service's images of `registry`, its proxy files, and
    /// `then` (more shell) on every host.
    pub fn cleanup_from(&self, fleet: &Fleet, registry: &str, then: &str) {
        self.cleanup(fleet);
        for host in fleet.hosts() {
            let _ = fleet.ssh(
                host,
                &format!(
                    "docker image ls --format '{{{{.Repository}}}}:{{{{.Tag}}}}' {registry}/{s} | xargs -r docker rmi >/dev/null 2>&1; rm -rf .kamal/proxy/apps-config/{s}; {then}",
                    s = self.service
                ),
            );
        }
    }

    /// Remove every container and image of this service from the fleet hosts.
    pub fn cleanup(&self, fleet: &Fleet) {
        for host in fleet.hosts() {
            let _ = fleet.ssh(
                host,
                &format!(
                    "docker ps -aq --filter label=service={s} | xargs -r docker rm -f >/dev/null 2>&1; rm -rf .kamal/apps/{s}* .kamal/lock-{s}* .kamal/{s}*-audit.log",
                    s = self.service
                ),
            );
        }
    }
}

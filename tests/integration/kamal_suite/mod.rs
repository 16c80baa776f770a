//! Kamal 2.12's own integration tests (`test/integration/*_test.rb`), ported: one Rust test per
//! Kamal test method, the same apps (`tests/fixtures/kamal-suite/`), the same commands and the
//! same assertions, driving the `dray` binary on the local fleet, whose hosts are called
//! `vm1`..`vm3` as in Kamal's suite (a per-test ssh config: `Host vm1 / HostName 127.0.0.11`).
//!
//! What the offline, shared fleet forces to change is written where it happens (`PORT:`
//! comments) and listed in README's compatibility section:
//! - the apps' base image is the fleet's busybox (no Docker Hub): busybox httpd plays nginx
//!   (`tests/fixtures/kamal-suite/shared/nginx`), so nginx's own lines become httpd's;
//! - the registry is the fleet's (`127.0.0.1:5000`, any credentials), and kamal-proxy is the
//!   fleet's `dray-proxy` image (`proxy.run`);
//! - service names are unique per run (the fleet is shared), so the proxy host of each app is
//!   `<service>.test` and Kamal's load balancer is a request to vm1's proxy with that `Host`;
//! - "deploy with traefik" needs Traefik from Docker Hub: not ported (no internet here).
//!
//! Every scenario takes the fleet as a whole (`exclusive_fleet`) and removes what it created on
//! the hosts when it ends, passed or failed.

mod accessory_test;
mod app_test;
mod broken_deploy_test;
mod lock_test;
mod main_test;
mod proxy_test;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::fleet::{unique_name, Fleet};

/// The Kamal host names of the fleet's hosts, in order.
pub const VMS: [&str; 3] = ["vm1", "vm2", "vm3"];

/// The fleet's registry (no authentication: any credentials log in).
const REGISTRY: &str = "127.0.0.1:5000";

/// The fleet's kamal-proxy (dray-proxy, made by `scripts/proxy-image`).
const PROXY_RUN: &str =
    "  run:\n    registry: 127.0.0.1:5000\n    repository: dray-proxy\n    version: v0.9.2";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kamal-suite")
}

/// One of Kamal's test apps, checked out in a temporary git repository as Kamal's deployer
/// image has it (`git init && git commit -am "Initial version"`, user Deployer).
pub struct KamalApp<'a> {
    /// The fleet.
    pub fleet: &'a Fleet,
    /// The temporary directory (the app is in it).
    pub dir: tempfile::TempDir,
    /// Kamal's app name (`app`, `app_with_roles`, …).
    pub app: String,
    /// This run's service name (`<app>-<unique>`), in place of the app name.
    pub service: String,
    /// Kamal's `TEST_ID`: the hooks touch `/tmp/<TEST_ID>/<hook>`.
    pub test_id: String,
    /// Other services this app creates (accessories), removed at the end.
    pub extra_services: Vec<String>,
}

impl<'a> KamalApp<'a> {
    /// Check `app` out for this run.
    pub fn new(fleet: &'a Fleet, app: &str) -> KamalApp<'a> {
        // Nothing listens on the discard port: the shipper gives up quietly.
        KamalApp::with_otel(fleet, app, "http://127.0.0.1:9")
    }

    /// [`KamalApp::new`] with `output.otel.endpoint` (the `app` app's) set to `otel`.
    pub fn with_otel(fleet: &'a Fleet, app: &str, otel: &str) -> KamalApp<'a> {
        fleet.require_hosts(3);
        let dir = tempfile::tempdir().expect("tempdir");
        let service = unique_name(&app.replace('_', "-")).replace('_', "-");
        let test_id = unique_name("kamal-suite");
        let port = 30000 + (std::process::id() % 20000) as u16;
        let root = dir.path().join(app);
        copy_tree(&fixtures().join("shared"), &root);
        copy_tree(&fixtures().join(app), &root);
        let ssh_config = dir.path().join("ssh_config");
        crate::support::write(&ssh_config, &vm_ssh_config(fleet));
        let registry = format!("  server: {REGISTRY}\n  username: root\n  password: root");
        for entry in walk(&root) {
            let name = entry.to_string_lossy().to_string();
            if !(name.ends_with(".yml") || name.ends_with("Dockerfile")) {
                continue;
            }
            let text = std::fs::read_to_string(&entry).expect("read fixture");
            let text = text
                .replace("__SERVICE__", &service)
                .replace("__BASE_IMAGE__", fleet.base_image())
                .replace("__PROXY_RUN__", PROXY_RUN)
                .replace("__REGISTRY__", &registry)
                .replace("__SSH_CONFIG__", &ssh_config.display().to_string())
                .replace(
                    "__DEPLOY_LOGS__",
                    &dir.path().join("kamal-deploy-logs").display().to_string(),
                )
                .replace("__OTEL__", otel)
                .replace("__NETCAT_PORT__", &port.to_string());
            std::fs::write(&entry, text).expect("write fixture");
        }
        let kamal = KamalApp {
            fleet,
            dir,
            app: app.to_string(),
            service,
            test_id,
            extra_services: Vec::new(),
        };
        kamal.git(&["init", "-q"]);
        kamal.git(&["config", "user.email", "deployer@example.com"]);
        kamal.git(&["config", "user.name", "Deployer"]);
        kamal.git(&["add", "."]);
        kamal.git(&["commit", "-qam", "Initial version"]);
        kamal
    }

    /// The app's directory (Kamal's `/<app>` in the deployer container).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join(&self.app)
    }

    /// Run git in the app.
    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(self.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
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

    /// Kamal's `kamal(*commands)`: run `dray` in the app; (exit code, stdout and stderr
    /// together, as Kamal's suite captures them).
    pub fn kamal_status(&self, args: &[&str]) -> (i32, String) {
        let out = crate::support::dray_cmd(&self.path(), args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env("TEST_ID", &self.test_id)
            // Kamal's deployer container has HOST_TOKEN=abcd (docker-compose.yml).
            .env("HOST_TOKEN", "abcd")
            .output()
            .expect("run dray");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// `kamal(...)` that must succeed (Kamal's `raise_on_error: true`); its output.
    pub fn kamal(&self, args: &[&str]) -> String {
        let (code, text) = self.kamal_status(args);
        assert_eq!(code, 0, "dray {args:?} failed:\n{text}");
        text
    }

    /// `kamal(...)` whose stdout alone is read (`YAML.load(kamal(:config))`).
    pub fn kamal_stdout(&self, args: &[&str]) -> String {
        let out = crate::support::dray_cmd(&self.path(), args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env("TEST_ID", &self.test_id)
            .output()
            .expect("run dray");
        assert!(
            out.status.success(),
            "dray {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `latest_app_version`: `git rev-parse HEAD`.
    pub fn latest_app_version(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// `update_app_rev` (update_app_rev.sh: `git commit -am 'Update rev' --amend`).
    pub fn update_app_rev(&self) -> String {
        self.git(&["commit", "-qam", "Update rev", "--amend"]);
        self.latest_app_version()
    }

    /// `break_app` (break_app.sh: a broken default.conf, committed).
    pub fn break_app(&self) -> String {
        std::fs::write(self.path().join("default.conf"), "bad nginx config\n").expect("write");
        self.git(&["commit", "-qam", "Broken"]);
        self.latest_app_version()
    }

    /// `assert_hooks_ran`: each hook left its file in `/tmp/<TEST_ID>` (removed here).
    pub fn assert_hooks_ran(&self, hooks: &[&str]) {
        for hook in hooks {
            let file = Path::new("/tmp").join(&self.test_id).join(hook);
            assert!(
                std::fs::remove_file(&file).is_ok(),
                "hook {hook} did not run ({} missing)",
                file.display()
            );
        }
    }

    /// The fleet address of a Kamal host name.
    pub fn addr(&self, vm: &str) -> String {
        let i = VMS.iter().position(|v| *v == vm).expect("vm1..vm3");
        self.fleet.hosts()[i].clone()
    }

    /// `app_response`: GET /version through "the load balancer". PORT: Kamal's suite has an
    /// nginx load balancer in front of vm1 and vm2; here it is vm1's proxy, asked for this
    /// run's host. No proxy answering is the load balancer's 502.
    pub fn app_response(&self) -> (u16, String) {
        self.response_on("vm1", &format!("{}.test", self.service), "/version")
    }

    /// GET `path` from `vm`'s proxy for `host`; a refused connection is a 502.
    pub fn response_on(&self, vm: &str, host: &str, path: &str) -> (u16, String) {
        let addr = format!("{}:80", self.addr(vm));
        crate::accessory::get(&addr, Some(host), path).unwrap_or((502, String::new()))
    }

    /// `assert_app_is_up(version:)`: 200 (and the version) from both proxy hosts.
    pub fn assert_app_is_up(&self, version: Option<&str>) {
        for vm in ["vm1", "vm2"] {
            let (code, body) = self.wait_for(vm, "/version", 200);
            assert_eq!(code, 200, "{vm}: {body}");
            if let Some(v) = version {
                assert_eq!(body.trim(), v, "{vm}");
            }
        }
    }

    /// Poll (bounded) `vm`'s answer to `path` until its code is `code`.
    pub fn wait_for(&self, vm: &str, path: &str, code: u16) -> (u16, String) {
        let host = format!("{}.test", self.service);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.response_on(vm, &host, path);
            if r.0 == code || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `assert_app_error_code(code, message:)`.
    pub fn assert_app_error_code(&self, code: u16, message: Option<&str>) {
        let (got, body) = self.wait_for("vm1", "/version", code);
        assert_eq!(got, code, "{body}");
        if let Some(m) = message {
            assert!(body.contains(m), "{m:?} not in {body}");
        }
    }

    /// `assert_app_is_down`. PORT: Kamal's load balancer answers 502 while no kamal-proxy runs;
    /// on the shared fleet another app's proxy may run on vm1, which answers 404 for our host.
    pub fn assert_app_is_down(&self) {
        let (code, body) = self.app_response();
        assert!(code == 502 || code == 404, "{code}: {body}");
    }

    /// `assert_app_not_found` (404).
    pub fn assert_app_not_found(&self) {
        self.assert_app_error_code(404, None);
    }

    /// `wait_for_app_to_be_up`: three 200s in a row within 20 s.
    pub fn wait_for_app_to_be_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut up = 0;
        while up < 3 && Instant::now() < deadline {
            if self.app_response().0 == 200 {
                up += 1;
            } else {
                up = 0;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(up, 3, "the app did not come up");
    }

    /// `docker ps --filter=name=<name> | tail -n+2` on `vm` is not empty.
    pub fn container_running(&self, vm: &str, name: &str) -> bool {
        !self
            .fleet
            .ssh_ok(
                &self.addr(vm),
                &format!("docker ps --filter=name={name} | tail -n+2"),
            )
            .trim()
            .is_empty()
    }

    /// `assert_app_directory_removed` (`.kamal/apps/<service>` on vm1).
    pub fn assert_app_directory_removed(&self) {
        let left = self.fleet.ssh_ok(
            &self.addr("vm1"),
            &format!("ls -d .kamal/apps/{} 2>/dev/null | wc -l", self.service),
        );
        assert_eq!(left.trim(), "0", "the app directory is still there");
    }

    /// `kamal-proxy` runs on vm1.
    pub fn proxy_running(&self) -> bool {
        self.container_running("vm1", "kamal-proxy")
    }

    /// Remove everything of this run from the hosts: containers, images, directories, the
    /// hooks' files.
    fn cleanup(&self) {
        let mut services = vec![self.service.clone()];
        services.extend(self.extra_services.iter().cloned());
        for host in self.fleet.hosts() {
            for s in &services {
                let _ = self.fleet.ssh(
                    host,
                    &format!(
                        "docker ps -aq --filter label=service={s} | xargs -r docker rm -f >/dev/null 2>&1; \
                         docker image ls -q {REGISTRY}/{s} | sort -u | xargs -r docker rmi -f >/dev/null 2>&1; \
                         rm -rf {s} .kamal/apps/{s}* .kamal/lock-{s}* .kamal/{s}*-audit.log .kamal/proxy/apps-config/{s}*"
                    ),
                );
            }
        }
        let _ = std::fs::remove_dir_all(Path::new("/tmp").join(&self.test_id));
    }
}

impl Drop for KamalApp<'_> {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// The fleet's ssh config with each host also called vm1..vm3.
fn vm_ssh_config(fleet: &Fleet) -> String {
    let text = std::fs::read_to_string(fleet.ssh_config()).expect("fleet ssh config");
    let mut out = String::new();
    for (i, host) in fleet.hosts().iter().take(3).enumerate() {
        let block: Vec<&str> = text
            .split("\nHost ")
            .filter(|b| b.split_whitespace().next() == Some(host.as_str()))
            .collect();
        let block = block
            .first()
            .unwrap_or_else(|| panic!("{host} not in the fleet's ssh config"));
        let body: String = block.lines().skip(1).map(|l| format!("{l}\n")).collect();
        out.push_str(&format!("Host {}\n{body}\n", VMS[i]));
    }
    out
}

fn copy_tree(from: &Path, to: &Path) {
    for path in walk(from) {
        let rel = path.strip_prefix(from).expect("under");
        let target = to.join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::copy(&path, &target).expect("copy");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Puts every host's `.kamal` aside for a scenario that needs hosts without other apps, and
/// back when dropped, whatever happened. The running kamal-proxy goes too, before and after (it
/// mounts the `.kamal` put aside): the scenario boots its own, and the next test that deploys
/// boots one on the restored `.kamal`.
pub struct FreshFleet<'a> {
    fleet: &'a Fleet,
    tag: String,
}

impl<'a> FreshFleet<'a> {
    /// Put `.kamal` aside on every host (as `.kamal.aside-<tag>`).
    pub fn new(fleet: &'a Fleet, tag: &str) -> Self {
        for host in fleet.hosts() {
            fleet.ssh_ok(
                host,
                &format!("docker rm -f kamal-proxy >/dev/null 2>&1; if [ -e .kamal ]; then mv .kamal .kamal.aside-{tag}; fi"),
            );
        }
        FreshFleet {
            fleet,
            tag: tag.to_string(),
        }
    }
}

impl Drop for FreshFleet<'_> {
    fn drop(&mut self) {
        for host in self.fleet.hosts() {
            let _ = self.fleet.ssh(
                host,
                &format!(
                    "docker rm -f kamal-proxy >/dev/null 2>&1; if [ -e .kamal.aside-{t} ]; then rm -rf .kamal && mv .kamal.aside-{t} .kamal; fi",
                    t = self.tag
                ),
            );
        }
    }
}

//! The local fleet (`scripts/fleet`) as end-to-end tests see it: its hosts, its ssh config, and
//! ways to look inside a host (containers, files in its home, SSH connections it accepted).
//!
//! `scripts/test` brings a fleet up and exports its environment (`. .fleet/env` does the same by
//! hand). Without it, [`Fleet::get`] fails the test, unless `DRAY_E2E=skip` is set: then it prints
//! a loud skip and the test returns early:
//!
//! ```ignore
//! let Some(fleet) = Fleet::get() else { return };
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use dray::shell::quote;

/// The fleet's base image in its registry (busybox, made by `scripts/fleet`).
pub const DEFAULT_BASE_IMAGE: &str = "127.0.0.1:5000/dray-base:busybox";

/// The fleet's registry with htpasswd auth (`scripts/fleet`: 127.0.0.1:5001).
#[derive(Debug, Clone)]
pub struct AuthRegistry {
    /// `host:port`.
    pub address: String,
    /// The one user.
    pub user: String,
    /// Its password.
    pub password: String,
}

/// A running local fleet.
#[derive(Debug)]
pub struct Fleet {
    dir: PathBuf,
    hosts: Vec<String>,
    ssh_config: PathBuf,
    base_image: String,
    docker_host: Option<String>,
}

static FLEET: OnceLock<Result<Fleet, String>> = OnceLock::new();

impl Fleet {
    /// The fleet described by the environment `scripts/test` exports (`DRAY_FLEET_DIR`,
    /// `DRAY_FLEET_HOSTS`, `DRAY_FLEET_SSH_CONFIG`, …).
    ///
    /// Panics with what to run when there is none, or returns `None` after a loud skip notice when
    /// `DRAY_E2E=skip` is set.
    pub fn get() -> Option<&'static Fleet> {
        match FLEET.get_or_init(Fleet::from_env) {
            Ok(fleet) => Some(fleet),
            Err(why) if std::env::var("DRAY_E2E").as_deref() == Ok("skip") => {
                eprintln!("!!! SKIPPED end-to-end test: {why} (DRAY_E2E=skip) !!!");
                None
            }
            Err(why) => panic!(
                "end-to-end tests need the local fleet: {why}\n\
                 run them with `scripts/test`, or bring a fleet up and load its environment:\n  \
                 scripts/fleet up 3 && . .fleet/env && cargo test\n\
                 (set DRAY_E2E=skip to skip them, by hand only)"
            ),
        }
    }

    fn from_env() -> Result<Fleet, String> {
        let dir = std::env::var_os("DRAY_FLEET_DIR")
            .map(PathBuf::from)
            .ok_or("DRAY_FLEET_DIR is not set")?;
        let ssh_config = std::env::var_os("DRAY_FLEET_SSH_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join("ssh/config"));
        if !ssh_config.is_file() {
            return Err(format!(
                "no fleet ssh config at {} (is the fleet at {} up?)",
                ssh_config.display(),
                dir.display()
            ));
        }
        let hosts: Vec<String> = match std::env::var("DRAY_FLEET_HOSTS") {
            Ok(list) => list.split_whitespace().map(str::to_string).collect(),
            Err(_) => {
                let size = fs::read_to_string(dir.join("size"))
                    .map_err(|e| format!("cannot read {}/size: {e}", dir.display()))?;
                let size: usize = size
                    .trim()
                    .parse()
                    .map_err(|e| format!("bad fleet size {size:?}: {e}"))?;
                (1..=size).map(|i| format!("127.0.0.{}", 10 + i)).collect()
            }
        };
        if hosts.is_empty() {
            return Err("the fleet has no hosts".into());
        }
        Ok(Fleet {
            dir,
            hosts,
            ssh_config,
            base_image: std::env::var("DRAY_FLEET_BASE_IMAGE")
                .unwrap_or_else(|_| DEFAULT_BASE_IMAGE.to_string()),
            docker_host: std::env::var("DOCKER_HOST").ok(),
        })
    }

    /// The hosts' addresses, in order (`127.0.0.11`, `127.0.0.12`, …).
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The first `n` hosts; fails the test if the fleet is smaller.
    pub fn require_hosts(&self, n: usize) -> &[String] {
        assert!(
            self.hosts.len() >= n,
            "this test needs {n} fleet hosts, the fleet has {} (scripts/fleet up {n})",
            self.hosts.len()
        );
        &self.hosts[..n]
    }

    /// The fleet's state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The generated ssh config (`ssh -F <it> <host>` needs no prompt).
    pub fn ssh_config(&self) -> &Path {
        &self.ssh_config
    }

    /// The base image every host can pull.
    pub fn base_image(&self) -> &str {
        &self.base_image
    }

    /// `DOCKER_HOST` of the builder engine (the deploying side's Docker), if exported.
    pub fn builder_docker_host(&self) -> Option<&str> {
        self.docker_host.as_deref()
    }

    /// The fleet's registry that needs a login (`DRAY_FLEET_AUTH_REGISTRY`, `…_USER`,
    /// `…_PASSWORD`); fails the test when the fleet's environment has none (a fleet brought up
    /// by an older `scripts/fleet`: run `scripts/fleet up N` again).
    pub fn auth_registry(&self) -> AuthRegistry {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: bring the fleet up again (scripts/fleet up 3) and source its env")
            })
        };
        AuthRegistry {
            address: var("DRAY_FLEET_AUTH_REGISTRY"),
            user: var("DRAY_FLEET_AUTH_REGISTRY_USER"),
            password: var("DRAY_FLEET_AUTH_REGISTRY_PASSWORD"),
        }
    }

    /// An `ssh` command to `host` through the fleet's config, stdin closed.
    pub fn ssh_command(&self, host: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F").arg(&self.ssh_config).stdin(Stdio::null());
        cmd.arg(host);
        cmd
    }

    /// Run one remote shell command on `host` over a new SSH connection.
    pub fn ssh(&self, host: &str, remote_cmd: &str) -> Output {
        self.ssh_command(host)
            .arg(remote_cmd)
            .output()
            .expect("run ssh (is openssh-client installed?)")
    }

    /// Run a remote command that must succeed; returns its stdout.
    pub fn ssh_ok(&self, host: &str, remote_cmd: &str) -> String {
        let out = self.ssh(host, remote_cmd);
        assert!(
            out.status.success(),
            "ssh {host} {remote_cmd:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Names of all containers (running or not) on `host`'s own Docker engine.
    pub fn docker_ps(&self, host: &str) -> Vec<String> {
        self.ssh_ok(host, "docker ps -a --format '{{.Names}}'")
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The content of `path` on `host` (a leading `~/` is the host's home), `None` if absent.
    pub fn read_file(&self, host: &str, path: &str) -> Option<String> {
        let quoted = match path.strip_prefix("~/") {
            Some(rest) => format!("\"$HOME\"/{}", quote(rest)),
            None => quote(path),
        };
        let out = self.ssh(
            host,
            &format!("if [ -e {quoted} ]; then cat -- {quoted}; else exit 44; fi"),
        );
        match out.status.code() {
            Some(0) => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
            Some(44) => None,
            _ => panic!(
                "reading {path} on {host} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// State directory of `host` (`<fleet>/hosts/<i>`).
    pub fn host_dir(&self, host: &str) -> PathBuf {
        let index = self
            .hosts
            .iter()
            .position(|h| h == host)
            .unwrap_or_else(|| panic!("{host} is not a fleet host ({:?})", self.hosts));
        self.dir.join("hosts").join((index + 1).to_string())
    }

    /// SSH connections `host`'s sshd has accepted so far (one "Accepted publickey" log line each;
    /// sessions multiplexed over one connection count once). Compare before and after.
    pub fn accepted_connections(&self, host: &str) -> usize {
        self.accepted_lines(host, None)
    }

    /// Like [`Fleet::accepted_connections`], counting only connections from the client address
    /// `source` (see [`Fleet::unique_source_address`]): exact even while other tests connect too.
    pub fn accepted_connections_from(&self, host: &str, source: &str) -> usize {
        self.accepted_lines(host, Some(source))
    }

    fn accepted_lines(&self, host: &str, source: Option<&str>) -> usize {
        let log = self.host_dir(host).join("sshd.log");
        let text = fs::read_to_string(&log)
            .unwrap_or_else(|e| panic!("read sshd log {}: {e}", log.display()));
        let from = source.map(|s| format!(" from {s} port "));
        text.lines()
            .filter(|line| line.contains("Accepted publickey for "))
            .filter(|line| match &from {
                Some(f) => line.contains(f.as_str()),
                None => true,
            })
            .count()
    }

    /// An ssh config in `dir` that connects from `source` (`BindAddress`, see
    /// [`Fleet::unique_source_address`]) and is otherwise the fleet's; its path.
    pub fn bound_ssh_config(&self, dir: &Path, source: &str) -> PathBuf {
        let path = dir.join("ssh_config");
        fs::write(
            &path,
            format!(
                "Host *\n  BindAddress {source}\nInclude {}\n",
                self.ssh_config().display()
            ),
        )
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// A loopback address no other test in this process uses, for `ssh -o BindAddress=…`.
    pub fn unique_source_address() -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id() as usize;
        format!(
            "127.{}.{}.{}",
            100 + pid % 100,
            (pid / 100) % 250,
            1 + n % 250
        )
    }
}

/// A name no other test (or earlier run) uses: `<prefix>-<pid>-<n>-<nanos>`.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// Removes a container on a host when dropped, so a failing test leaves nothing behind.
pub struct ContainerGuard<'a> {
    fleet: &'a Fleet,
    host: String,
    name: String,
}

impl<'a> ContainerGuard<'a> {
    /// Guard the container `name` on `host`.
    pub fn new(fleet: &'a Fleet, host: &str, name: &str) -> Self {
        ContainerGuard {
            fleet,
            host: host.to_string(),
            name: name.to_string(),
        }
    }
}

impl Drop for ContainerGuard<'_> {
    fn drop(&mut self) {
        let _ = self.fleet.ssh(
            &self.host,
            &format!("docker rm -f {} >/dev/null 2>&1", quote(&self.name)),
        );
    }
}

//! `dray server bootstrap` on the fleet: hosts with Docker are left as they are, get `.kamal`, and
//! the `docker-setup` hook runs once; a host without Docker (and no internet to fetch Docker's
//! install script) fails alone, named, with what was tried and why it failed, and gets nothing.
//!
//! The host without Docker is not a fleet host changed for the test: it is a test-only sshd
//! (on 127.0.0.201 or .202, started and stopped by the test, by its PID) in a private mount namespace whose `/root` is a
//! fresh temporary home, with a `PATH` that holds every program of this machine except `docker`.
//! The internet cannot exist here, so the install fails as it would on a server with no route
//! to https://get.docker.com.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::Project;
use crate::support::write;

/// A test-only SSH server on its own loopback address with its own empty home.
struct LoneHost {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
    alias: String,
}

impl LoneHost {
    /// Start it. `docker_sock`: the Docker engine its sessions use (`DOCKER_HOST`); `None`:
    /// `docker` is not on its `PATH` at all.
    fn start(fleet: &Fleet, alias: &str, address: &str, docker_sock: Option<&Path>) -> LoneHost {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let home = d.join("home");
        std::fs::create_dir_all(home.join(".ssh")).expect("home");
        let key = fleet.dir().join("ssh/id_ed25519");
        std::fs::copy(key.with_extension("pub"), home.join(".ssh/authorized_keys"))
            .expect("authorized_keys");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(d.join("hostkey"))
            .status()
            .expect("ssh-keygen");
        assert!(status.success());
        let path = match docker_sock {
            Some(_) => "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".to_string(),
            None => {
                let bin = d.join("bin");
                std::fs::create_dir_all(&bin).expect("bin");
                for dir in ["/usr/local/bin", "/usr/bin", "/usr/sbin"] {
                    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                        let name = entry.file_name();
                        let target = bin.join(&name);
                        if name.to_string_lossy().starts_with("docker") || target.exists() {
                            continue;
                        }
                        let _ = std::os::unix::fs::symlink(entry.path(), target);
                    }
                }
                bin.display().to_string()
            }
        };
        // Port 22, as dray connects (`ssh.port`); the address is the test's own.
        let port = 22;
        assert!(
            TcpListener::bind((address, port)).is_ok(),
            "{address}:{port} is in use"
        );
        let docker_env = docker_sock
            .map(|s| format!("SetEnv PATH={path} DOCKER_HOST=unix://{}\n", s.display()))
            .unwrap_or_else(|| format!("SetEnv PATH={path}\n"));
        write(
            &d.join("sshd_config"),
            &format!(
                "ListenAddress {address}:{port}\nHostKey {}\nPidFile none\n\
                 PermitRootLogin prohibit-password\nAuthorizedKeysFile .ssh/authorized_keys\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\nMaxSessions 20\n{docker_env}",
                d.join("hostkey").display()
            ),
        );
        let pubkey = std::fs::read_to_string(d.join("hostkey.pub")).expect("host key");
        let pubkey: Vec<&str> = pubkey.split_whitespace().take(2).collect();
        write(
            &d.join("known_hosts"),
            &format!("{address} {}\n", pubkey.join(" ")),
        );
        write(
            &d.join("ssh_config"),
            &format!(
                "Host {alias}\n  HostName {address}\n  Port {port}\n  User root\n  \
                 IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
                 StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n",
                key.display(),
                d.join("known_hosts").display()
            ),
        );
        // The private mount namespace's /root is the fresh home; nothing outside changes.
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount --bind "$1" /root && exec /usr/sbin/sshd -D -e -f "$2""#)
            .arg("sh")
            .arg(&home)
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log")).expect("log"))
            .spawn()
            .expect("start the test sshd");
        let host = LoneHost {
            dir,
            child,
            port,
            alias: alias.to_string(),
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect((address, host.port)).is_ok() {
                return host;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the test sshd did not listen on {address}:{}", host.port);
    }

    fn ssh_config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
}

impl Drop for LoneHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A project whose one role runs on `hosts`, with the fleet's ssh config and `extra`'s.
fn project(fleet: &Fleet, service: &str, hosts: &[&str], extra: &Path) -> Project {
    let list: String = hosts.iter().map(|h| format!("      - {h}\n")).collect();
    Project::new(fleet, service, |yaml| {
        let start = yaml.find("servers:\n").expect("servers");
        let end = yaml.find("\n# Kamal treats").expect("registry comment");
        let yaml = format!(
            "{}servers:\n  web:\n    hosts:\n{list}{}",
            &yaml[..start],
            &yaml[end..]
        );
        yaml.replace(
            &format!("config: {}", fleet.ssh_config().display()),
            &format!(
                "config:\n    - {}\n    - {}",
                extra.display(),
                fleet.ssh_config().display()
            ),
        )
    })
}

fn hook_runs(p: &Project, hook: &str) -> Vec<String> {
    // Each run is a `<time> hook=<name>` line followed by its variables.
    let mut runs: Vec<(String, String)> = Vec::new();
    for line in p.hook_log().lines() {
        match line.split_once(" hook=") {
            Some((_, name)) => runs.push((name.to_string(), String::new())),
            None => {
                if let Some((_, vars)) = runs.last_mut() {
                    vars.push_str(line.trim());
                    vars.push('\n');
                }
            }
        }
    }
    runs.into_iter()
        .filter(|(name, _)| name == hook)
        .map(|(_, vars)| vars)
        .collect()
}

#[test]
fn bootstrap_with_docker_present_creates_the_run_directory_and_runs_docker_setup_once() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let sock = fleet.host_dir(&hosts[2]).join("run/docker.sock");
    let fresh = LoneHost::start(fleet, "fresh-docker-host", "127.0.0.201", Some(&sock));
    let s = unique_name("e2e-boot");
    let p = project(
        fleet,
        &s,
        &[&hosts[0], &hosts[1], &fresh.alias],
        &fresh.ssh_config(),
    );
    assert!(!fresh.home().join(".kamal").exists());

    let (code, out, err) = p.dray(&["server", "bootstrap"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for host in [&hosts[0], &hosts[1], &fresh.alias] {
        assert!(
            out.contains(&format!("[{host}] Docker is installed"))
                || out
                    .lines()
                    .any(|l| l.contains(host.as_str()) && l.contains("Docker is installed")),
            "{host}: {out}\n{err}"
        );
    }
    assert!(fresh.home().join(".kamal").is_dir(), "{out}\n{err}");
    let runs = hook_runs(&p, "docker-setup");
    assert_eq!(runs.len(), 1, "{}", p.hook_log());
    let run = &runs[0];
    for line in [
        format!("KAMAL_HOSTS={},{},{}", hosts[0], hosts[1], fresh.alias),
        "KAMAL_COMMAND=server".to_string(),
        "KAMAL_SUBCOMMAND=bootstrap".to_string(),
        "KAMAL_LOCK=true".to_string(),
    ] {
        assert!(run.contains(&line), "{line} missing in {run}");
    }
    assert_eq!(hook_runs(&p, "pre-connect").len(), 1, "{}", p.hook_log());
    // The lock was taken and released on the primary host.
    let lock = fleet.ssh_ok(
        &hosts[0],
        &format!("ls -d .kamal/lock-{s} 2>/dev/null || true"),
    );
    assert!(lock.trim().is_empty(), "{lock}");
    p.cleanup(fleet);
}

#[test]
fn bootstrap_of_a_host_without_docker_names_it_says_what_failed_and_changes_nothing_there() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(2).to_vec();
    let bare = LoneHost::start(fleet, "no-docker-host", "127.0.0.202", None);
    let s = unique_name("e2e-nodock");
    let p = project(fleet, &s, &[&hosts[1], &bare.alias], &bare.ssh_config());

    // The dry run shows exactly what each host gets.
    let plan = p.dray_ok(&["server", "bootstrap", "--dry-run"]);
    for host in [&hosts[1], &bare.alias] {
        assert!(
            plan.contains(&format!(
                "[{host}] $ sh -c 'if docker -v >/dev/null 2>&1; then"
            )),
            "{plan}"
        );
    }
    assert!(plan.contains("curl -fsSL https://get.docker.com"), "{plan}");
    assert!(plan.contains("hook docker-setup"), "{plan}");

    let (code, out, err) = p.dray(&["server", "bootstrap"]);
    // The host with Docker succeeded, the other failed: partial success (1 when all fail).
    assert_eq!(code, 3, "{out}\n{err}");
    let all = format!("{out}\n{err}");
    for want in [
        "installing Docker on no-docker-host failed",
        "https://get.docker.com",
        "Could not resolve host: get.docker.com",
        "https://docs.docker.com/engine/install/",
    ] {
        assert!(all.contains(want), "{want} missing in:\n{all}");
    }
    assert!(
        all.lines()
            .any(|l| l.contains("no-docker-host") && l.contains("exited 1")),
        "{all}"
    );
    // Nothing was created on the host without Docker, the hook did not run, the lock is gone.
    assert!(!bare.home().join(".kamal").exists(), "{all}");
    assert!(hook_runs(&p, "docker-setup").is_empty(), "{}", p.hook_log());
    let lock = fleet.ssh_ok(
        &hosts[1],
        &format!("ls -d .kamal/lock-{s} 2>/dev/null || true"),
    );
    assert!(lock.trim().is_empty(), "{lock}");

    // Only the host without Docker: every host failed, exit 1.
    let only = project(
        fleet,
        &unique_name("e2e-nodock1"),
        &[&bare.alias],
        &bare.ssh_config(),
    );
    let (code, out, err) = only.dray(&["server", "bootstrap", "-H"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("no-docker-host"), "{err}");
    p.cleanup(fleet);
}

//! `dray proxy upgrade` on the fleet, driving the dray binary: from the fleet's standard
//! dray-proxy image (no supervisor: rebooted, said plainly) to a build with the supervisor
//! (`v0.9.2-up1`), then to another build (`v0.9.8-up2`) under thousands of concurrent requests
//! — none fails, the routes stay, the new build serves; then back to the standard image (built
//! from this tree, so it hands over too). At the end every web
//! host's kamal-proxy runs the fleet's standard image again, routes intact.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dray::plan::PlanKind;

use crate::support::deployer::*;
use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::{git, Project};

const STANDARD: &str = "v0.9.2";
const FIRST: &str = "v0.9.2-up1";
const SECOND: &str = "v0.9.8-up2";

/// One GET on a new connection; the body or why it failed.
fn get(addr: &str, host: &str) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(
        &format!("{addr}:80").parse().map_err(|e| format!("{e}"))?,
        Duration::from_secs(3),
    )
    .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET /version HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut r = String::new();
    s.read_to_string(&mut r).map_err(|e| format!("read: {e}"))?;
    match r.split_whitespace().nth(1) {
        Some("200") => Ok(r
            .split_once("\r\n\r\n")
            .map(|x| x.1.trim().to_string())
            .unwrap_or_default()),
        _ => Err(format!("answer: {:?}", r.lines().next().unwrap_or(""))),
    }
}

/// `clients` threads per address sending requests one after another until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addrs: &[String], host: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for addr in addrs {
            for _ in 0..clients {
                let (addr, host) = (addr.clone(), host.to_string());
                let (stop, sent, failures) = (stop.clone(), sent.clone(), failures.clone());
                handles.push(std::thread::spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(600);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let r = get(&addr, &host);
                        sent.fetch_add(1, Ordering::SeqCst);
                        if let Err(e) = r {
                            if let Ok(mut f) = failures.lock() {
                                f.push(format!("{addr}: {e}"));
                            }
                        }
                    }
                }));
            }
        }
        Load {
            stop,
            sent,
            failures,
            handles,
        }
    }

    fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }

    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles {
            let _ = h.join();
        }
        let failures = self.failures.lock().map(|f| f.clone()).unwrap_or_default();
        (self.sent.load(Ordering::SeqCst), failures)
    }
}

/// The fleet registry has dray-proxy:`tag`, built from this tree by scripts/proxy-image if
/// missing (the test runs under the fleet lock).
fn ensure_image(tag: &str) {
    let image = format!("127.0.0.1:5000/dray-proxy:{tag}");
    let present = std::process::Command::new("docker")
        .args(["pull", "--quiet", &image])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return;
    }
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(root.join("scripts/proxy-image"))
        .arg(tag)
        .current_dir(&root)
        .output()
        .expect("scripts/proxy-image");
    assert!(
        out.status.success(),
        "scripts/proxy-image {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `dray <args>` in the project: (success, stdout + stderr).
fn dray(project: &Project, args: &[&str]) -> (bool, String) {
    let out = crate::support::dray_cmd(project.path(), args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run dray");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Point the project's proxy at dray-proxy:`tag` (committed).
fn use_proxy(project: &Project, tag: &str) {
    let path = project.path().join("config/deploy.yml");
    let text = std::fs::read_to_string(&path).expect("deploy.yml");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for l in &mut lines {
        if l.trim_start().starts_with("version: v0.9") {
            *l = format!("    version: {tag}");
        }
    }
    std::fs::write(&path, lines.join("\n") + "\n").expect("write deploy.yml");
    git(
        project.path(),
        &["commit", "-qam", &format!("proxy {tag}"), "--allow-empty"],
    );
}

/// Puts every web host's proxy back on the fleet's standard image, even when the test fails.
struct Restore<'a> {
    project: &'a Project,
    fleet: &'a Fleet,
    web: Vec<String>,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        use_proxy(self.project, STANDARD);
        let (ok, out) = dray(self.project, &["proxy", "reboot", "-y"]);
        let route = format!("{}-web", self.project.service);
        for host in &self.web {
            let _ = self.fleet.ssh(
                host,
                &format!("docker exec kamal-proxy kamal-proxy remove {route} >/dev/null 2>&1"),
            );
        }
        self.project.cleanup(self.fleet);
        if !std::thread::panicking() {
            assert!(ok, "restoring the standard proxy: {out}");
            for host in &self.web {
                let image = self.fleet.ssh_ok(
                    host,
                    "docker inspect kamal-proxy --format '{{.Config.Image}}'",
                );
                assert_eq!(
                    image.trim(),
                    format!("127.0.0.1:5000/dray-proxy:{STANDARD}")
                );
            }
        }
    }
}

fn server_line(fleet: &Fleet, host: &str) -> String {
    let status = fleet.ssh_ok(
        host,
        "docker exec kamal-proxy kamal-proxy supervisor status",
    );
    status
        .lines()
        .find(|l| l.starts_with("server: "))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn proxy_upgrade_between_two_builds_under_load_fails_no_request_and_keeps_the_routes() {
    let Some(fleet) = Fleet::get() else { return };
    // Restarts and replaces the proxies every deploy goes through: no other test meanwhile.
    let _alone = crate::support::project::exclusive_fleet();
    ensure_image(FIRST);
    ensure_image(SECOND);
    let project = Project::unguarded(fleet, &unique_name("e2e-pupg"), |d| d);
    let web = fleet.require_hosts(2)[..2].to_vec();
    let _restore = Restore {
        project: &project,
        fleet,
        web: web.clone(),
    };
    let host_header = format!("{}.test", project.service);

    // From whatever the fleet runs: a proxy started before the supervisor existed is rebooted,
    // said plainly; one with the supervisor (the standard image built from this tree) hands
    // over.
    use_proxy(&project, FIRST);
    let (ok, out) = dray(&project, &["proxy", "upgrade", "-y"]);
    assert!(ok, "{out}");
    // A reboot recreates the container from FIRST's image; a handover keeps the container (and
    // its image) and swaps the binary.
    let rebooted =
        out.contains("without the supervisor") || out.contains("no kamal-proxy container");
    if out.contains("without the supervisor") {
        assert!(out.contains("drops connections"), "{out}");
    }
    let container_image = if rebooted { FIRST } else { STANDARD };
    for host in &web {
        assert!(
            server_line(fleet, host).contains(&format!("+{FIRST}")),
            "{host}"
        );
    }

    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("u1"), false));
    for host in &web {
        assert_eq!(get(host, &host_header).as_deref(), Ok("u1"));
    }

    // The handover under load.
    use_proxy(&project, SECOND);
    let load = Load::start(&web, &host_header, 16);
    std::thread::sleep(Duration::from_millis(500));
    let before = load.sent();
    let started = Instant::now();
    let (ok, out) = dray(&project, &["proxy", "upgrade", "-y"]);
    let took = started.elapsed();
    let during = load.sent() - before;
    std::thread::sleep(Duration::from_millis(500));
    let (total, failures) = load.finish();
    assert!(ok, "{out}");
    eprintln!(
        "proxy upgrade took {:.1}s; {during} requests during it, {total} in all, {} failed",
        took.as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert!(during >= 2000, "only {during} requests during the upgrade");
    assert!(out.contains("handed over from pid"), "{out}");

    // The routes stay; the new build serves; the image metadata is reported beside it.
    for host in &web {
        assert_eq!(get(host, &host_header).as_deref(), Ok("u1"), "{host}");
        let server = server_line(fleet, host);
        assert!(server.contains(&format!("+{SECOND}")), "{host}: {server}");
        let version = fleet.ssh_ok(host, "docker exec kamal-proxy kamal-proxy --version");
        assert!(version.contains(&format!("+{SECOND}")), "{host}: {version}");
        assert!(
            fleet
                .ssh(host, "docker exec kamal-proxy test ! -e /tmp/dray-proxy")
                .status
                .success(),
            "{host}: the staged binary was left behind"
        );
    }
    let (ok, details) = dray(&project, &["proxy", "details"]);
    assert!(ok, "{details}");
    assert!(
        details.contains(&format!("dray-proxy:{container_image}")),
        "{details}"
    );
    assert!(details.contains(&format!("+{SECOND}")), "{details}");

    // A deploy through the new build works (it took over the control socket).
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("u2"), false));
    for host in &web {
        assert_eq!(get(host, &host_header).as_deref(), Ok("u2"), "{host}");
    }

    // Back to the standard image, built from this tree with the supervisor: handed over too,
    // and the app still answers. (A binary that cannot take the sockets is refused with the old
    // server serving: crates/dray-proxy/tests/upgrade.rs.)
    use_proxy(&project, STANDARD);
    let (ok, out) = dray(&project, &["proxy", "upgrade", "-y"]);
    assert!(ok, "{out}");
    for host in &web {
        assert_eq!(get(host, &host_header).as_deref(), Ok("u2"), "{host}");
        assert!(server_line(fleet, host).contains(&format!("+{STANDARD}")));
    }
}

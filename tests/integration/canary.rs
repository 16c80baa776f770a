//! Canary releases (`dray deploy --canary`, `dray canary status|promote|abort`): the plans
//! (`--dry-run` snapshots), the refusals, and end to end on the fleet under a bounded
//! concurrent load of distinct users, each request with its own `kamal-rollout` cookie (the
//! proxy splits by that cookie's value; requests without it go to the old version).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::deployer::{hook_versions, lock_present};
use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::{exclusive_fleet, git, Project};
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
proxy:
  host: app.example
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

fn repo(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(&dir.path().join("config/deploy.yml"), config);
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

fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]");
    settings.add_filter(r#""performer":"[^"]*""#, r#""performer":"[PERFORMER]""#);
    settings.add_filter(r"KAMAL_PERFORMER=.*", "KAMAL_PERFORMER=[PERFORMER]");
    // Audit lines name the performer after their time.
    settings.add_filter(r"\[<time>\] \[[^\]\[]*\]", "[<time>] [PERFORMER]");
    settings.add_filter(
        r"TG9ja2Vk(?:[A-Za-z0-9+/=]|\n    \[[^\]]+\] > )*",
        "[LOCK DETAILS BASE64]",
    );
    settings.add_filter(r"e2e-canary-[0-9a-z-]+?-(web|workers|test)", "[SERVICE]-$1");
    settings.add_filter(r"e2e-canary-[0-9]+-[0-9]+-[0-9]+", "[SERVICE]");
    settings.add_filter(r"/tmp/\.tmp[A-Za-z0-9]+", "[DIR]");
    settings.set_snapshot_path("snapshots");
    settings
}

#[test]
fn plan_deploy_canary() {
    let dir = repo(CONFIG);
    let (code, out, err) = dray(
        dir.path(),
        &[
            "deploy",
            "--canary",
            "20",
            "--canary-allow",
            "alice",
            "--canary-allow",
            "bob",
            "--dry-run",
            "--version",
            "1.2.3",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("hunter2"), "{out}");
    // The canary's split, beside the old version; no old container is stopped, nothing is
    // pruned or tagged, the lock is not released.
    assert!(
        out.contains("rollout set app-web --percent=20 --list=alice,bob"),
        "{out}"
    );
    for absent in ["prune", "docker tag", "rm -r .kamal/lock-app"] {
        assert!(!out.contains(absent), "{absent}: {out}");
    }
    snapshot_settings().bind(|| insta::assert_snapshot!("plan_deploy_canary", out));
}

#[test]
fn canary_requests_outside_the_rules_are_refused() {
    let dir = repo(CONFIG);
    for (args, says) in [
        (&["deploy", "--canary", "150"][..], "0..=100"),
        (&["deploy", "--canary", "-1"][..], "0..=100"),
        (&["setup", "--canary", "20"][..], "only for `dray deploy`"),
        (
            &["redeploy", "--canary", "20"][..],
            "only for `dray deploy`",
        ),
        (
            &["deploy", "--canary", "0", "--canary-allow", "a b"][..],
            "not a `kamal-rollout` cookie value",
        ),
        (
            &["deploy", "--canary", "20", "--roles", "web"][..],
            "--hosts, --roles and --primary are refused",
        ),
    ] {
        let mut all = args.to_vec();
        all.extend(["--dry-run", "--version", "1.2.3"]);
        let (code, out, err) = dray(dir.path(), &all);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(err.contains("hint:"), "{args:?}: {err}");
    }
    // --canary-allow needs --canary.
    let (code, _, err) = dray(
        dir.path(),
        &[
            "deploy",
            "--canary-allow",
            "a",
            "--dry-run",
            "--version",
            "1",
        ],
    );
    assert_eq!(code, 2, "{err}");
    // A primary role without the proxy has no rollout.
    let no_proxy = repo(&CONFIG.replace(
        "  web:\n    - 10.0.0.1\n    - 10.0.0.2\n",
        "  web:\n    hosts:\n      - 10.0.0.1\n    proxy: false\n",
    ));
    let (code, _, err) = dray(
        no_proxy.path(),
        &["deploy", "--canary", "20", "--dry-run", "--version", "1"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not run behind the proxy"), "{err}");
    // Replicas of the primary role and a canary: refused, not half done.
    let replicated = repo(&format!("{CONFIG}x-dray:\n  replicas:\n    web: 3\n"));
    let (code, _, err) = dray(
        replicated.path(),
        &["deploy", "--canary", "20", "--dry-run", "--version", "1"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("3 replicas per host is not supported yet"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    // Only-allowlisted clients: percentage 0 is a canary.
    let (code, out, err) = dray(
        dir.path(),
        &[
            "deploy",
            "--canary",
            "0",
            "--canary-allow",
            "qa",
            "--dry-run",
            "--version",
            "1",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("rollout set app-web --percent=0 --list=qa"),
        "{out}"
    );
}

// ---- end to end ----

/// One GET of `/version` with the Host header and a `kamal-rollout` cookie; the body.
fn get(addr: &str, host: &str, user: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(
        &format!("{addr}:80").parse().map_err(|e| format!("{e}"))?,
        Duration::from_secs(2),
    )
    .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET /version HTTP/1.1\r\nHost: {host}\r\nCookie: kamal-rollout={user}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("bad response: {response:?}"))?;
    if head.split_whitespace().nth(1) != Some("200") {
        return Err(format!("not 200: {response:?}"));
    }
    Ok(body.trim().to_string())
}

/// One request's phase (what was going on when it started) and answer.
type Sample = (usize, Result<String, String>);

/// A bounded concurrent load: `threads` clients per web host, each request from a new user
/// (its own cookie value), until stopped or at most `max` requests per client.
struct Load {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicUsize>,
    samples: Arc<Mutex<Vec<Sample>>>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addrs: &[String], host: &str, threads: usize, max: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(AtomicUsize::new(0));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for (a, addr) in addrs.iter().enumerate() {
            for t in 0..threads {
                let (addr, host) = (addr.clone(), host.to_string());
                let (stop, phase, samples) = (stop.clone(), phase.clone(), samples.clone());
                handles.push(std::thread::spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(600);
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) && n < max && Instant::now() < deadline {
                        let p = phase.load(Ordering::SeqCst);
                        let r = get(&addr, &host, &format!("user-{a}-{t}-{n}"));
                        if let Ok(mut s) = samples.lock() {
                            s.push((p, r));
                        }
                        n += 1;
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }));
            }
        }
        Load {
            stop,
            phase,
            samples,
            handles,
        }
    }

    /// Start phase `p`.
    fn phase(&self, p: usize) {
        self.phase.store(p, Ordering::SeqCst);
    }

    /// How many requests of phase `p` finished.
    fn count(&self, p: usize) -> usize {
        self.samples
            .lock()
            .map(|s| s.iter().filter(|(q, _)| *q == p).count())
            .unwrap_or(0)
    }

    /// Wait (bounded) until phase `p` has `n` requests.
    fn wait_for(&self, p: usize, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while self.count(p) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(self.count(p) >= n, "phase {p}: {} requests", self.count(p));
    }

    fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles {
            let _ = h.join();
        }
        self.samples.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// (requests, failures, per version) of phase `p`.
fn tally(samples: &[Sample], p: usize) -> (usize, Vec<String>, Vec<(String, usize)>) {
    let mut failed = Vec::new();
    let mut versions: Vec<(String, usize)> = Vec::new();
    let mut total = 0;
    for (q, r) in samples {
        if *q != p {
            continue;
        }
        total += 1;
        match r {
            Ok(v) => match versions.iter_mut().find(|(x, _)| x == v) {
                Some((_, n)) => *n += 1,
                None => versions.push((v.clone(), 1)),
            },
            Err(e) => failed.push(e.clone()),
        }
    }
    versions.sort();
    (total, failed, versions)
}

fn share(versions: &[(String, usize)], v: &str) -> usize {
    versions
        .iter()
        .find(|(x, _)| x == v)
        .map(|(_, n)| *n)
        .unwrap_or(0)
}

/// The fleet's proxies on the web hosts must know `rollout` (dray-proxy since it has rollouts).
/// A proxy container made from an older image of the fleet's tag is replaced by the registry's
/// current image of that tag: removed here (routes are kept in its volume), run again by the
/// next deploy's proxy stage. Done with the fleet's proxies held alone.
fn proxies_with_rollout(fleet: &Fleet, hosts: &[String]) {
    let _alone = exclusive_fleet();
    for h in hosts {
        let ok = fleet
            .ssh(
                h,
                "docker exec kamal-proxy kamal-proxy rollout stop --help >/dev/null 2>&1",
            )
            .status
            .success();
        if !ok {
            fleet.ssh_ok(
                h,
                "docker pull -q 127.0.0.1:5000/dray-proxy:v0.9.2 >/dev/null; docker rm -f kamal-proxy >/dev/null 2>&1; true",
            );
        }
    }
}

/// Removes what the test made on the hosts, on every path.
struct Cleanup<'a>(&'a Fleet, &'a Project);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        self.1.cleanup_all(self.0);
    }
}

fn containers(fleet: &Fleet, host: &str, service: &str, status: &str) -> String {
    fleet.ssh_ok(
        host,
        &format!("docker ps -a --filter label=service={service} --filter status={status} --format '{{{{.Names}}}}' | sort | tr '\\n' ' '"),
    )
}

#[test]
fn canary_under_load_promote_then_abort() {
    let Some(fleet) = Fleet::get() else { return };
    let web: Vec<String> = fleet.require_hosts(3)[..2].to_vec();
    proxies_with_rollout(fleet, &web);
    let project = Project::new(fleet, &unique_name("e2e-canary"), |d| d);
    let _cleanup = Cleanup(fleet, &project);
    let service = project.service.clone();
    let host_header = format!("{service}.test");
    project.dray_ok(&["deploy", "--version", "v1"]);

    let load = Load::start(&web, &host_header, 2, 100_000);
    load.wait_for(0, 50);
    // Phase 1: the canary starts.
    load.phase(1);
    project.dray_ok(&["deploy", "--canary", "20", "--version", "v2"]);
    // Phase 2: the canary runs; at least 1,000 requests.
    load.phase(2);
    assert!(lock_present(fleet, &service), "the canary holds the lock");
    let lock = project.dray_ok(&["lock", "status"]);
    assert!(lock.contains("Canary of version v2"), "{lock}");
    let status = project.dray_ok(&["canary", "status"]);
    assert!(
        status.contains("Canary v2 of web: 20% of kamal-rollout cookies"),
        "{status}"
    );
    assert!(
        status.contains("canary v2 running") && status.contains("old    v1 running"),
        "{status}"
    );
    // Any other deploy is refused as locked.
    let (code, _, err) = project.dray(&["deploy", "--skip-push", "--version", "v1"]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("Canary of version v2"), "{err}");
    // The plans of promote and abort, as they would run now.
    for sub in ["promote", "abort"] {
        let plan = project.dray_ok(&["canary", sub, "--dry-run"]);
        snapshot_settings().bind(|| insta::assert_snapshot!(format!("plan_canary_{sub}"), plan));
    }
    load.wait_for(2, 1_000);
    // Phase 3: promote.
    load.phase(3);
    project.dray_ok(&["canary", "promote"]);
    // Phase 4: promoted.
    load.phase(4);
    load.wait_for(4, 300);
    assert!(!lock_present(fleet, &service), "promote released the lock");
    let post_deploy: Vec<String> = hook_versions(&project.hook_log())
        .into_iter()
        .filter(|(h, _)| h == "post-deploy")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        post_deploy.last().map(String::as_str),
        Some("v2"),
        "{post_deploy:?}"
    );
    for h in &web {
        let running = containers(fleet, h, &service, "running");
        assert!(
            !running.contains("web-v1"),
            "{h}: the old version still runs: {running}"
        );
        assert!(running.contains("web-v2"), "{h}: {running}");
    }
    let workers = containers(fleet, &fleet.hosts()[2], &service, "running");
    assert!(
        workers.contains("workers-v2"),
        "promote boots the other roles: {workers}"
    );
    let (code, _, err) = project.dray(&["canary", "promote"]);
    assert_eq!(code, 2, "no canary: {err}");
    assert!(err.contains("no canary"), "{err}");

    // A second canary, aborted.
    load.phase(5);
    project.dray_ok(&["deploy", "--canary", "20", "--version", "v3"]);
    load.phase(6);
    load.wait_for(6, 300);
    load.phase(7);
    project.dray_ok(&["canary", "abort"]);
    load.phase(8);
    load.wait_for(8, 300);
    let samples = load.finish();

    let mut figures = Vec::new();
    for p in 0..=8 {
        let (total, failed, versions) = tally(&samples, p);
        assert!(
            failed.is_empty(),
            "phase {p}: {} of {total} failed: {:?}",
            failed.len(),
            &failed[..failed.len().min(5)]
        );
        figures.push(format!("phase {p}: {total} requests {versions:?}"));
    }
    eprintln!("canary load: {}", figures.join("; "));
    let (total, _, versions) = tally(&samples, 2);
    let v2 = share(&versions, "v2");
    assert_eq!(v2 + share(&versions, "v1"), total, "{versions:?}");
    assert!(
        v2 * 100 >= total * 10 && v2 * 100 <= total * 30,
        "canary share {v2} of {total}"
    );
    let (total, _, versions) = tally(&samples, 4);
    assert_eq!(share(&versions, "v2"), total, "promoted: {versions:?}");
    let (total, _, versions) = tally(&samples, 6);
    assert!(share(&versions, "v3") > 0, "{versions:?}");
    assert_eq!(share(&versions, "v3") + share(&versions, "v2"), total);
    let (total, _, versions) = tally(&samples, 8);
    assert_eq!(share(&versions, "v2"), total, "aborted: {versions:?}");
    assert!(!lock_present(fleet, &service), "abort released the lock");
    for h in fleet.hosts() {
        let all = containers(fleet, h, &service, "created")
            + &containers(fleet, h, &service, "running")
            + &containers(fleet, h, &service, "exited");
        assert!(
            !all.contains("-v3"),
            "{h}: a canary container is left: {all}"
        );
    }
    let (code, _, err) = project.dray(&["canary", "abort"]);
    assert_eq!(code, 2, "no canary: {err}");
}

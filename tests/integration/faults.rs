//! Faults on the local fleet, as CI and real servers produce them: an image that crash-loops
//! (with and without a Docker health check, behind the proxy and not), SIGTERM then SIGKILL
//! during a hung hook, a second SIGINT during the boot, an ssh connection killed in the middle of
//! a boot, and runs that end by signal leaving nothing behind. Each keeps every host on the old
//! or the new version and never leaves the lock silently held.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use dray::plan::PlanKind;

use crate::support::deployer::*;
use crate::support::dray_cmd;
use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::{git, Project};
use crate::support::write;

/// What each web host answers through its proxy, and what the worker host runs.
fn serving(fleet: &Fleet, project: &Project) -> Vec<String> {
    let hosts = fleet.require_hosts(3);
    let mut out: Vec<String> = hosts[..2]
        .iter()
        .map(|h| served_version(fleet, h, &project.service, "web"))
        .collect();
    out.push(served_version(
        fleet,
        &hosts[2],
        &project.service,
        "workers",
    ));
    out
}

/// The project's next commit runs an app that exits at once (a crash loop under
/// `--restart unless-stopped`).
fn commit_crash_loop(project: &Project) {
    let start = project.path().join("example/start");
    let text = std::fs::read_to_string(&start).expect("read start");
    let crashing = text.replacen(
        "set -eu\n",
        "set -eu\necho 'crashing at once' >&2\nexit 3\n",
        1,
    );
    assert_ne!(crashing, text);
    write(&start, &crashing);
    git(project.path(), &["commit", "-qam", "crash at once"]);
}

fn without_health_check(project: &Project) {
    let path = project.path().join("Dockerfile");
    let text = std::fs::read_to_string(&path).expect("Dockerfile");
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("HEALTHCHECK") && !l.trim_start().starts_with("CMD wget"))
        .collect();
    write(&path, &(kept.join("\n") + "\n"));
    git(project.path(), &["commit", "-qam", "no health check"]);
}

fn crash_loop_keeps_the_old_version(health_check: bool) {
    let Some(fleet) = Fleet::get() else { return };
    let project = Project::new(fleet, &unique_name("e2e-crash"), |d| {
        format!("{d}\ndeploy_timeout: 8\nreadiness_delay: 3\n")
    });
    if !health_check {
        without_health_check(&project);
    }
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("v1"), false));
    assert_eq!(serving(fleet, &project), ["v1", "v1", "v1"]);
    commit_crash_loop(&project);
    // Behind the proxy (web, the primary role, boots first), then without it (workers made the
    // primary role, so they boot first).
    for (version, proxy) in [("v2", true), ("v3", false)] {
        if !proxy {
            let config = project.path().join("config/deploy.yml");
            let text = std::fs::read_to_string(&config).expect("deploy.yml");
            // The root `proxy:` is the primary role's: workers first, and not behind it.
            let text = text.replace(
                "    cmd: /app/start worker\n",
                "    cmd: /app/start worker\n    proxy: false\n",
            );
            write(&config, &format!("{text}\nprimary_role: workers\n"));
            git(project.path(), &["commit", "-qam", "workers first"]);
        }
        let r = run(fleet, &project, PlanKind::Deploy, Some(version), false);
        let text = r.outcome.error_text().unwrap_or_default();
        assert_ne!(
            r.outcome.exit.code(),
            0,
            "a crash-looping image deployed ({version})"
        );
        let failed: Vec<&str> = r.outcome.failures.iter().filter_map(|f| f.host()).collect();
        for host in fleet.require_hosts(3) {
            assert!(failed.contains(&host.as_str()), "{host} not named: {text}");
        }
        // The proxy's health check fails, or the container was seen restarting.
        assert!(
            text.contains("restarted") || text.contains("kamal-proxy deploy"),
            "{text}"
        );
        assert_eq!(
            serving(fleet, &project),
            ["v1", "v1", "v1"],
            "{version}: {text}"
        );
        assert!(!lock_present(fleet, &project.service));
    }
    project.cleanup(fleet);
}

#[test]
fn a_crash_looping_image_with_a_health_check_keeps_every_host_on_the_old_version() {
    crash_loop_keeps_the_old_version(true);
}

#[test]
fn a_crash_looping_image_without_a_health_check_keeps_every_host_on_the_old_version() {
    crash_loop_keeps_the_old_version(false);
}

fn signal(child: &Child, sig: &str) {
    let status = std::process::Command::new("kill")
        .arg(sig)
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

/// `dray <args>` in the project (with its own `TMPDIR` when given), its stderr lines on the
/// returned channel as they come.
fn spawn_watched(
    project: &Project,
    args: &[&str],
    tmp: Option<&Path>,
) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut cmd = dray_cmd(project.path(), args);
    if let Some(tmp) = tmp {
        cmd.env("TMPDIR", tmp);
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dray");
    let rx = stderr_lines(&mut child);
    (child, rx)
}

/// `dray lock hold` with its own `TMPDIR`, stdout piped (it says when it holds the lock).
fn spawn_hold(project: &Project, tmp: &Path) -> Child {
    dray_cmd(
        project.path(),
        &["lock", "hold", "--seconds", "30", "--version", "v1"],
    )
    .env("TMPDIR", tmp)
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn dray")
}

/// Read `child`'s stderr in the background; lines arrive on the channel.
fn stderr_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Wait until a line satisfying `want` arrives (collecting every line into `seen`).
fn wait_line(
    rx: &std::sync::mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    limit: Duration,
    want: impl Fn(&str) -> bool,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let hit = want(&line);
            seen.push(line);
            if hit {
                return true;
            }
        }
    }
    false
}

fn rest(rx: std::sync::mpsc::Receiver<String>, seen: &mut Vec<String>) {
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        seen.push(line);
    }
}

fn pids_with(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            if let Ok(cmd) = std::fs::read(p.path().join("cmdline")) {
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                if cmd.contains(needle) {
                    out.push(format!("{} {cmd}", p.file_name().to_string_lossy()));
                }
            }
        }
    }
    out
}

#[test]
fn sigterm_then_sigkill_during_a_hung_hook_leaves_no_hook_and_no_silent_lock() {
    let Some(fleet) = Fleet::get() else { return };
    let project = Project::new(fleet, &unique_name("e2e-hung"), |d| d);
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("v1"), false));
    // A pre-deploy hook that hangs (a unique sleep, to find it in the process table).
    let marker = format!("{}", 600 + std::process::id() % 300);
    write(
        &project.path().join(".kamal/hooks/pre-deploy"),
        &format!("#!/bin/sh\necho hanging\nsleep {marker}.5\n"),
    );
    let (mut child, rx) = spawn_watched(
        &project,
        &["deploy", "--skip-push", "--version", "v1"],
        None,
    );
    let mut seen = Vec::new();
    assert!(
        wait_line(&rx, &mut seen, Duration::from_secs(60), |l| l
            .contains("Running the pre-deploy hook")),
        "{seen:#?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !pids_with(&format!("sleep {marker}.5")).is_empty(),
        "the hook is not running"
    );
    // CI's cancel: SIGTERM, then SIGKILL after a grace period.
    signal(&child, "-TERM");
    let sent = Instant::now();
    let mut ended = None;
    while sent.elapsed() < Duration::from_secs(2) {
        if let Ok(Some(status)) = child.try_wait() {
            ended = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = match ended {
        Some(status) => {
            eprintln!(
                "SIGTERM during a hung hook: dray exited after {:?}",
                sent.elapsed()
            );
            status
        }
        None => {
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .arg(child.id().to_string())
                .status();
            child.wait().expect("wait")
        }
    };
    rest(rx, &mut seen);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        pids_with(&format!("sleep {marker}.5")).is_empty(),
        "the hook outlived dray"
    );
    let last = seen.last().cloned().unwrap_or_default();
    let held = lock_present(fleet, &project.service);
    assert!(
        !held || last.contains("lock release"),
        "the lock is held and the last line does not say so: {seen:#?}"
    );
    assert!(
        status.code() == Some(130),
        "dray did not end with 130 within the grace period: {status:?}\n{seen:#?}"
    );
    assert_eq!(serving(fleet, &project), ["v1", "v1", "v1"]);
    project.cleanup(fleet);
}

#[test]
fn a_second_sigint_during_the_boot_exits_130_releases_the_lock_and_keeps_an_app_everywhere() {
    let Some(fleet) = Fleet::get() else { return };
    let project = Project::new(fleet, &unique_name("e2e-sigint2"), |d| d);
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("v1"), false));
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("v2"), false));
    assert_ok(&run(fleet, &project, PlanKind::Rollback, Some("v1"), false));
    let (mut child, rx) = spawn_watched(
        &project,
        &["deploy", "--skip-push", "--version", "v2"],
        None,
    );
    let mut seen = Vec::new();
    assert!(
        wait_line(&rx, &mut seen, Duration::from_secs(60), |l| l == "==> boot"),
        "{seen:#?}"
    );
    signal(&child, "-INT");
    std::thread::sleep(Duration::from_millis(100));
    signal(&child, "-INT");
    let status = child.wait().expect("wait");
    rest(rx, &mut seen);
    assert_eq!(status.code(), Some(130), "{seen:#?}");
    assert!(!lock_present(fleet, &project.service), "{seen:#?}");
    for version in serving(fleet, &project) {
        assert!(version == "v1" || version == "v2", "{version:?}: {seen:#?}");
    }
    // Nothing left in a state the next deploy cannot handle.
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("v2"), false));
    project.cleanup(fleet);
}

#[test]
fn a_connection_killed_during_a_boot_is_named_never_rerun_and_the_next_deploy_works() {
    let Some(fleet) = Fleet::get() else { return };
    let project = Project::new(fleet, &unique_name("e2e-lost"), |d| d);
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("v1"), false));
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("v2"), false));
    assert_ok(&run(fleet, &project, PlanKind::Rollback, Some("v1"), false));
    // The workers host: its boot's second round trip polls Docker's health status for a second
    // or two (the web hosts' is one `kamal-proxy deploy` that may be over in a few hundred ms,
    // since the old version's stop is a round trip of its own).
    let host = fleet.require_hosts(3)[2].clone();
    // This run's ssh masters live under its own TMPDIR.
    let tmp = tempfile::tempdir().expect("tmp");
    let (mut child, rx) = spawn_watched(
        &project,
        &["deploy", "--skip-push", "--version", "v2", "-v"],
        Some(tmp.path()),
    );
    let mut seen = Vec::new();
    // The boot's second round trip (readiness, then stop the old version) starts on `host`.
    let settle = format!("[{host}] $ sh -c 'old=");
    assert!(
        wait_line(&rx, &mut seen, Duration::from_secs(90), |l| l
            .starts_with(&settle)),
        "{seen:#?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let dir = tmp.path().to_string_lossy().into_owned();
    let masters: Vec<String> = pids_with(&dir)
        .into_iter()
        .filter(|p| p.contains(&host) && p.contains("ssh"))
        .collect();
    assert!(!masters.is_empty(), "no ssh master for {host} under {dir}");
    for m in &masters {
        if let Some(pid) = m.split_whitespace().next() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", pid])
                .status();
        }
    }
    let status = child.wait().expect("wait");
    rest(rx, &mut seen);
    let text = seen.join("\n");
    assert_ne!(status.code(), Some(0), "{text}");
    assert!(text.contains("lost the connection"), "{text}");
    assert!(text.contains(&host), "{text}");
    // Never run twice: one boot audit line and one container of the new version on the host.
    let audit = fleet
        .read_file(&host, &format!(".kamal/{}-audit.log", project.service))
        .unwrap_or_default();
    let booted = audit.matches("Booted app version v2").count();
    assert_eq!(
        booted, 2,
        "the boot ran again (2 from the first v2 deploy and this one):\n{audit}"
    );
    let containers = fleet.ssh_ok(
        &host,
        &format!(
            "docker ps -a --filter label=service={} --filter label=role=workers --format '{{{{.Names}}}}'",
            project.service
        ),
    );
    assert!(
        containers.lines().filter(|c| c.ends_with("-v2")).count() <= 1,
        "{containers}"
    );
    for version in serving(fleet, &project) {
        assert!(version == "v1" || version == "v2", "{version:?}: {text}");
    }
    assert!(!lock_present(fleet, &project.service), "{text}");
    // The next deploy works unaided.
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("v2"), false));
    assert_eq!(serving(fleet, &project), ["v2", "v2", "v2"]);
    project.cleanup(fleet);
}

/// No `ssh` process and no `dray-ssh-*` directory of runs that used `tmp`.
fn leftovers(tmp: &Path) -> (Vec<String>, Vec<String>) {
    let dir = tmp.to_string_lossy().into_owned();
    let procs = pids_with(&dir)
        .into_iter()
        .filter(|p| p.contains("ssh"))
        .collect();
    let dirs = std::fs::read_dir(tmp)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("dray-ssh-"))
                .collect()
        })
        .unwrap_or_default();
    (procs, dirs)
}

#[test]
fn runs_ended_by_signals_leave_no_ssh_master_and_no_run_directory() {
    let Some(fleet) = Fleet::get() else { return };
    let project = Project::new(fleet, &unique_name("e2e-leak"), |d| d);
    let tmp = tempfile::tempdir().expect("tmp");
    for i in 0..20 {
        let mut child = spawn_hold(&project, tmp.path());
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line.trim(), "Acquired the deploy lock", "run {i}");
        match i % 3 {
            0 => signal(&child, "-INT"),
            1 => signal(&child, "-TERM"),
            _ => {
                signal(&child, "-TERM");
                std::thread::sleep(Duration::from_millis(20));
                signal(&child, "-TERM");
            }
        }
        let status = child.wait().expect("wait");
        assert_eq!(status.code(), Some(130), "run {i}");
        assert!(
            !lock_present(fleet, &project.service),
            "run {i} left the lock"
        );
    }
    let (procs, dirs) = leftovers(tmp.path());
    assert!(procs.is_empty() && dirs.is_empty(), "{procs:#?} {dirs:#?}");

    // SIGKILL cannot be handled: the next run reclaims what it left.
    let mut child = spawn_hold(&project, tmp.path());
    let mut line = String::new();
    let mut out = child.stdout.take().expect("stdout");
    let mut byte = [0u8; 1];
    while !line.ends_with('\n') && out.read(&mut byte).unwrap_or(0) == 1 {
        line.push(byte[0] as char);
    }
    signal(&child, "-KILL");
    let _ = child.wait();
    assert!(!leftovers(tmp.path()).1.is_empty(), "SIGKILL left nothing?");
    let released = dray_cmd(project.path(), &["lock", "release"])
        .env("TMPDIR", tmp.path())
        .output()
        .expect("dray");
    assert!(released.status.success());
    let (procs, dirs) = leftovers(tmp.path());
    assert!(
        procs.is_empty() && dirs.is_empty(),
        "not reclaimed: {procs:#?} {dirs:#?}"
    );
    project.cleanup(fleet);
}

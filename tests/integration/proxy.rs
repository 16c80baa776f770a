//! Zero-downtime web roles on the fleet: deploys behind dray-proxy (this project's kamal-proxy,
//! in its container on each web host) under a bounded load, failed health checks, maintenance,
//! two services on one proxy, and a proxy restart.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dray::plan::PlanKind;

use crate::support::deployer::*;
use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::Project;

/// One HTTP/1.1 GET with a Host header; `(status, body)`.
pub(crate) fn get(addr: &str, host: &str, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(
        &format!("{addr}:80").parse().map_err(|e| format!("{e}"))?,
        Duration::from_secs(2),
    )
    .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad response: {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .trim()
        .to_string();
    Ok((status, body))
}

/// What one request got (the version, or why it failed) and how long it took.
pub(crate) type Sample = (Result<String, String>, Duration);

/// A bounded load: sequential requests to each address until stopped or `max` requests.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<Vec<Sample>>>,
}

impl Load {
    pub(crate) fn start(addrs: &[String], host: &str, max: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = addrs
            .iter()
            .map(|addr| {
                let (addr, host, stop) = (addr.clone(), host.to_string(), stop.clone());
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    let deadline = Instant::now() + Duration::from_secs(300);
                    while !stop.load(Ordering::Relaxed)
                        && seen.len() < max
                        && Instant::now() < deadline
                    {
                        let t = Instant::now();
                        let r = match get(&addr, &host, "/version") {
                            Ok((200, body)) => Ok(body),
                            Ok((status, body)) => Err(format!("{status} {body}")),
                            Err(e) => Err(e),
                        };
                        seen.push((r, t.elapsed()));
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    seen
                })
            })
            .collect();
        Load { stop, handles }
    }

    pub(crate) fn finish(self) -> Vec<Vec<Sample>> {
        self.stop.store(true, Ordering::Relaxed);
        self.handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    }
}

fn versions_switched(seen: &[Sample]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for (r, _) in seen {
        if let Ok(v) = r {
            if order.last() != Some(v) {
                order.push(v.clone());
            }
        }
    }
    order
}

fn percentile(mut d: Vec<Duration>, p: f64) -> Duration {
    d.sort();
    d.get(((d.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or_default()
}

#[test]
fn deploy_and_rollback_under_load_drop_no_request_and_switch_once() {
    let Some(fleet) = Fleet::get() else { return };
    let project = Project::new(fleet, &unique_name("e2e-zero"), |d| d);
    let host_header = format!("{}.test", project.service);
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("v1"), false));
    let web: Vec<String> = fleet.require_hosts(2)[..2].to_vec();
    let load = Load::start(&web, &host_header, 20_000);
    std::thread::sleep(Duration::from_millis(300));
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("v2"), false));
    std::thread::sleep(Duration::from_millis(300));
    assert_ok(&run(fleet, &project, PlanKind::Rollback, Some("v1"), true));
    std::thread::sleep(Duration::from_millis(300));
    let per_host = load.finish();
    let mut total = 0;
    let mut all = Vec::new();
    for (addr, seen) in web.iter().zip(&per_host) {
        let failed: Vec<&String> = seen.iter().filter_map(|(r, _)| r.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "{addr}: {} failed: {:?}",
            failed.len(),
            &failed[..failed.len().min(5)]
        );
        assert_eq!(versions_switched(seen), ["v1", "v2", "v1"], "{addr}");
        total += seen.len();
        all.extend(seen.iter().map(|(_, d)| *d));
    }
    println!(
        "load: {total} requests, 0 failed, p50 {:?}, p99 {:?}",
        percentile(all.clone(), 0.5),
        percentile(all, 0.99)
    );
    project.cleanup(fleet);
}

#[test]
fn a_version_whose_up_never_answers_keeps_traffic_on_the_old_one() {
    let Some(fleet) = Fleet::get() else { return };
    let project = Project::new(fleet, &unique_name("e2e-noup"), |d| {
        format!("{d}\ndeploy_timeout: 6\n")
    });
    let host_header = format!("{}.test", project.service);
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("v1"), false));
    let start = std::fs::read_to_string(project.path().join("example/start")).expect("start");
    let broken = start.replace("printf 'OK\\n' >\"$root/up\"", "true");
    assert_ne!(broken, start, "the /up line changed");
    crate::support::write(&project.path().join("example/start"), &broken);
    crate::support::project::git(project.path(), &["commit", "-qam", "no /up"]);
    let web: Vec<String> = fleet.require_hosts(2)[..2].to_vec();
    let load = Load::start(&web, &host_header, 20_000);
    let r = run(fleet, &project, PlanKind::Deploy, Some("v2"), false);
    assert_ne!(r.outcome.exit.code(), 0);
    let per_host = load.finish();
    for (addr, seen) in web.iter().zip(&per_host) {
        assert!(
            seen.iter().all(|(r, _)| r.as_deref() == Ok("v1")),
            "{addr}: {:?}",
            seen.iter().find(|(r, _)| r.as_deref() != Ok("v1"))
        );
    }
    project.cleanup(fleet);
}

#[test]
fn maintenance_answers_503_with_the_message_and_live_restores() {
    let Some(fleet) = Fleet::get() else { return };
    let project = Project::new(fleet, &unique_name("e2e-maint"), |d| d);
    let host_header = format!("{}.test", project.service);
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("v1"), false));
    let web = &fleet.require_hosts(1)[0];
    let svc = format!("{}-web", project.service);
    fleet.ssh_ok(
        web,
        &format!("docker exec kamal-proxy kamal-proxy stop {svc} --message='Back at noon'"),
    );
    let (status, body) = get(web, &host_header, "/version").expect("request");
    assert_eq!(status, 503);
    assert!(body.contains("Back at noon"), "{body}");
    fleet.ssh_ok(
        web,
        &format!("docker exec kamal-proxy kamal-proxy resume {svc}"),
    );
    assert_eq!(
        get(web, &host_header, "/version").expect("request"),
        (200, "v1".into())
    );
    project.cleanup(fleet);
}

#[test]
fn two_services_share_a_proxy_routed_by_host_and_survive_its_restart() {
    let Some(fleet) = Fleet::get() else { return };
    // This test restarts a proxy that every deploy on the host goes through: no other test
    // deploys while it runs.
    let _alone = crate::support::project::exclusive_fleet();
    let a = Project::unguarded(fleet, &unique_name("e2e-hosta"), |d| d);
    let b = Project::unguarded(fleet, &unique_name("e2e-hostb"), |d| d);
    assert_ok(&run(fleet, &a, PlanKind::Deploy, Some("a1"), false));
    assert_ok(&run(fleet, &b, PlanKind::Deploy, Some("b1"), false));
    let web = fleet.require_hosts(1)[0].clone();
    let (ha, hb) = (format!("{}.test", a.service), format!("{}.test", b.service));
    assert_eq!(get(&web, &ha, "/version").expect("a"), (200, "a1".into()));
    assert_eq!(get(&web, &hb, "/version").expect("b"), (200, "b1".into()));
    assert_ok(&run(fleet, &a, PlanKind::Deploy, Some("a2"), false));
    assert_eq!(get(&web, &ha, "/version").expect("a"), (200, "a2".into()));
    assert_eq!(get(&web, &hb, "/version").expect("b"), (200, "b1".into()));
    fleet.ssh_ok(&web, "docker restart kamal-proxy >/dev/null");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = Err("not tried".to_string());
    while Instant::now() < deadline {
        last = get(&web, &hb, "/version");
        if matches!(last, Ok((200, _))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(last.expect("b after restart"), (200, "b1".into()));
    assert_eq!(
        get(&web, &ha, "/version").expect("a after restart"),
        (200, "a2".into())
    );
    a.cleanup(fleet);
    b.cleanup(fleet);
}

#[test]
fn proxy_reboot_runs_its_hooks_and_keeps_the_routes() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = crate::support::project::exclusive_fleet();
    let project = Project::unguarded(fleet, &unique_name("e2e-reboot"), |d| d);
    let host_header = format!("{}.test", project.service);
    assert_ok(&run(fleet, &project, PlanKind::Deploy, Some("r1"), false));
    let out = crate::support::dray_cmd(project.path(), &["proxy", "reboot", "-y", "--rolling"])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run dray");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = project.hook_log();
    let reboots: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once("hook=").map(|x| x.1))
        .filter(|h| h.contains("proxy-reboot"))
        .collect();
    // --rolling: one pre/post pair per web host.
    assert_eq!(
        reboots,
        [
            "pre-proxy-reboot",
            "post-proxy-reboot",
            "pre-proxy-reboot",
            "post-proxy-reboot"
        ]
    );
    assert!(log.contains("KAMAL_SUBCOMMAND=reboot"), "{log}");
    let web = fleet.require_hosts(2)[..2].to_vec();
    for host in &web {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = Err("not tried".to_string());
        while Instant::now() < deadline {
            last = get(host, &host_header, "/version");
            if matches!(last, Ok((200, _))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(last.expect("after reboot"), (200, "r1".into()), "{host}");
    }
    project.cleanup(fleet);
}

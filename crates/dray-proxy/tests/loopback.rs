//! dray-proxy, the binary, on loopback: in-test backends, the real CLI over the control
//! socket, a bounded loader during switch-overs.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use common::{deploy_args, Backend, Proxy};

/// What a bounded loader saw: per worker, the versions answered in order, and the failures.
struct LoadResult {
    per_worker: Vec<Vec<String>>,
    failed: usize,
}

impl LoadResult {
    fn total(&self) -> usize {
        self.per_worker.iter().map(Vec::len).sum()
    }

    /// Every worker's sequence switched from `from` to `to` exactly once.
    fn assert_switched_once(&self, from: &str, to: &str) {
        for (w, seq) in self.per_worker.iter().enumerate() {
            let switches = seq.windows(2).filter(|p| p[0] != p[1]).count();
            assert_eq!(switches, 1, "worker {w} switched {switches} times");
            assert!(
                seq.first().is_some_and(|v| v == from),
                "worker {w} began on {:?}",
                seq.first()
            );
            assert!(
                seq.last().is_some_and(|v| v == to),
                "worker {w} ended on {:?}",
                seq.last()
            );
        }
    }
}

/// `workers` keep-alive clients sending `per_worker` requests each through the proxy, one
/// after another with a 1 ms pause; `done` counts completed requests.
fn spawn_loader(
    port: u16,
    workers: usize,
    per_worker: usize,
    done: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<LoadResult> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("loader runtime");
        rt.block_on(async move {
            let client: Client<_, Empty<Bytes>> =
                Client::builder(TokioExecutor::new()).build_http();
            let mut tasks = Vec::new();
            for w in 0..workers {
                let client = client.clone();
                let done = Arc::clone(&done);
                tasks.push(tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut failed = 0;
                    for i in 0..per_worker {
                        // Worker 0 sends slow requests, in flight across the switch.
                        let q = if w == 0 && i % 10 == 0 { "?ms=150" } else { "" };
                        let uri: hyper::Uri = format!("http://127.0.0.1:{port}/load{q}")
                            .parse()
                            .expect("uri");
                        match client.get(uri).await {
                            Ok(resp) if resp.status() == 200 => {
                                match resp.into_body().collect().await {
                                    Ok(b) => {
                                        let text =
                                            String::from_utf8_lossy(&b.to_bytes()).into_owned();
                                        seen.push(text.split(' ').next().unwrap_or("").to_string());
                                    }
                                    Err(_) => failed += 1,
                                }
                            }
                            _ => failed += 1,
                        }
                        done.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    (seen, failed)
                }));
            }
            let mut result = LoadResult {
                per_worker: Vec::new(),
                failed: 0,
            };
            for t in tasks {
                let (seen, failed) = t.await.expect("loader task");
                result.per_worker.push(seen);
                result.failed += failed;
            }
            result
        })
    })
}

fn wait_for(done: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while done.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "loader stalled");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn deploys_switch_traffic_once_and_failed_deploys_keep_the_old_target() {
    let proxy = Proxy::start();
    let mut v1 = Backend::start("v1", true);
    let v2 = Backend::start("v2", true);
    let v3 = Backend::start("v3", false);
    let (t1, t2, t3) = (v1.target(), v2.target(), v3.target());

    proxy.ok(&deploy_args("app-web", &t1, &[]));
    assert_eq!(proxy.get("anything.test", "/"), (200, "v1 /".into()));

    // v1 → v2 under load; v1 is stopped the moment deploy returns, as Kamal stops the old
    // container: in-flight requests must have drained by then.
    let done = Arc::new(AtomicUsize::new(0));
    let loader = spawn_loader(proxy.port, 4, 250, Arc::clone(&done));
    wait_for(&done, 100);
    proxy.ok(&deploy_args("app-web", &t2, &[]));
    v1.stop();
    let load = loader.join().expect("loader");
    assert_eq!(load.failed, 0, "failed requests during deploy v2");
    assert_eq!(load.total(), 1000);
    load.assert_switched_once("v1", "v2");

    // v3 never answers 200 on /up: deploy fails, traffic stays on v2.
    let done = Arc::new(AtomicUsize::new(0));
    let loader = spawn_loader(proxy.port, 2, 150, Arc::clone(&done));
    wait_for(&done, 20);
    let out = proxy.cli(&[
        "deploy",
        "app-web",
        &t3,
        "--health-check-interval=100ms",
        "--deploy-timeout=500ms",
    ]);
    assert!(
        !out.status.success(),
        "deploy of an unhealthy target succeeded"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("healthy"), "{stderr}");
    let load = loader.join().expect("loader");
    assert_eq!(load.failed, 0);
    assert!(load.per_worker.iter().flatten().all(|v| v == "v2"));
    assert_eq!(proxy.get("x", "/"), (200, "v2 /".into()));
}

#[test]
fn maintenance_answers_503_with_the_message_until_resumed() {
    let proxy = Proxy::start();
    let v1 = Backend::start("v1", true);
    proxy.ok(&deploy_args("app-web", &v1.target(), &[]));
    proxy.ok(&[
        "stop",
        "app-web",
        "--drain-timeout=1s",
        "--message=Back at <noon>",
    ]);
    let (status, body) = proxy.get("x", "/");
    assert_eq!(status, 503);
    assert!(body.contains("Back at &lt;noon&gt;"), "{body}");
    assert!(proxy.ok(&["list"]).contains("stopped"));
    proxy.ok(&["resume", "app-web"]);
    assert_eq!(proxy.get("x", "/"), (200, "v1 /".into()));
    proxy.ok(&["remove", "app-web"]);
    assert_eq!(proxy.get("x", "/").0, 404);
    assert!(!proxy.cli(&["resume", "app-web"]).status.success());
}

#[test]
fn services_are_routed_by_host_and_path_prefix() {
    let proxy = Proxy::start();
    let a = Backend::start("a", true);
    let b = Backend::start("b", true);
    let api = Backend::start("api", true);
    proxy.ok(&deploy_args("a-web", &a.target(), &["--host=a.test"]));
    proxy.ok(&deploy_args(
        "b-web",
        &b.target(),
        &["--host=b.test,www.b.test"],
    ));
    proxy.ok(&deploy_args(
        "a-api",
        &api.target(),
        &["--host=a.test", "--path-prefix=/api"],
    ));
    assert_eq!(proxy.get("a.test", "/x"), (200, "a /x".into()));
    assert_eq!(proxy.get("B.test:80", "/"), (200, "b /".into()));
    assert_eq!(proxy.get("www.b.test", "/"), (200, "b /".into()));
    assert_eq!(
        proxy.get("a.test", "/api/users"),
        (200, "api /users".into())
    );
    assert_eq!(proxy.get("a.test", "/apix"), (200, "a /apix".into()));
    assert_eq!(proxy.get("c.test", "/").0, 404);
    // A host already served by another service is refused.
    let out = proxy.cli(&deploy_args("c-web", &a.target(), &["--host=b.test"]));
    assert!(!out.status.success());
    // Each service deploys on its own.
    let b2 = Backend::start("b2", true);
    proxy.ok(&deploy_args(
        "b-web",
        &b2.target(),
        &["--host=b.test,www.b.test"],
    ));
    assert_eq!(proxy.get("b.test", "/"), (200, "b2 /".into()));
    assert_eq!(proxy.get("a.test", "/"), (200, "a /".into()));
}

#[test]
fn a_restarted_proxy_restores_its_routes() {
    let mut proxy = Proxy::start();
    let v1 = Backend::start("v1", true);
    let m = Backend::start("m", true);
    proxy.ok(&deploy_args("app-web", &v1.target(), &["--host=app.test"]));
    proxy.ok(&deploy_args(
        "other-web",
        &m.target(),
        &["--host=other.test"],
    ));
    proxy.ok(&["stop", "other-web", "--message=Upgrading"]);
    assert_eq!(proxy.terminate(), Some(0));
    proxy.spawn();
    assert_eq!(proxy.get("app.test", "/"), (200, "v1 /".into()));
    let (status, body) = proxy.get("other.test", "/");
    assert_eq!(status, 503);
    assert!(body.contains("Upgrading"));
    let list = proxy.ok(&["list"]);
    let rows: HashMap<&str, &str> = list
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(' '))
        .collect();
    assert!(
        rows.contains_key("app-web") && rows.contains_key("other-web"),
        "{list}"
    );
    assert!(proxy.log().contains("Restored saved state"));
}

#[test]
fn the_binary_answers_as_kamal_proxy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let link = dir.path().join("kamal-proxy");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_dray-proxy"), &link).expect("symlink");
    let out = Command::new(&link)
        .arg("--help")
        .stdout(Stdio::piped())
        .output()
        .expect("run kamal-proxy");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("deploy") && help.contains("resume"), "{help}");
    // Without a server, a command fails with a clear message.
    let out = Command::new(&link)
        .args(["list"])
        .env("KAMAL_PROXY_SOCKET", dir.path().join("none.sock"))
        .output()
        .expect("run kamal-proxy");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the proxy"));
}

/// Latencies of `count` sequential keep-alive `GET`s to `port`, one every `interval`.
fn sequential_latencies(port: u16, count: usize, interval: Duration) -> Vec<Duration> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("bench runtime");
    rt.block_on(async move {
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let uri: hyper::Uri = format!("http://127.0.0.1:{port}/bench")
            .parse()
            .expect("uri");
        let mut ticker = tokio::time::interval(interval);
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            ticker.tick().await;
            let started = Instant::now();
            let resp = client.get(uri.clone()).await.expect("bench request");
            assert_eq!(resp.status(), 200);
            resp.into_body().collect().await.expect("bench body");
            out.push(started.elapsed());
        }
        out
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Benchmark, not a test (`scripts/bench-proxy`): proxy overhead against the backend direct,
/// sequential client at a fixed rate. `BENCH_REQUESTS` (2000), `BENCH_RATE` (500/s).
#[test]
#[ignore = "benchmark: run through scripts/bench-proxy"]
fn bench_proxy_overhead() {
    let env_num = |k: &str, d: u64| -> u64 {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let count = env_num("BENCH_REQUESTS", 2000) as usize;
    let rate = env_num("BENCH_RATE", 500).max(1);
    let interval = Duration::from_micros(1_000_000 / rate);
    let proxy = Proxy::start();
    let backend = Backend::start("v1", true);
    proxy.ok(&deploy_args("bench-web", &backend.target(), &[]));
    let report = |name: &str, lat: &mut Vec<Duration>| -> (Duration, Duration) {
        lat.sort();
        let (p50, p99) = (percentile(lat, 0.50), percentile(lat, 0.99));
        println!(
            "{name:<7} n={} p50={:.3}ms p99={:.3}ms max={:.3}ms",
            lat.len(),
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3
        );
        (p50, p99)
    };
    // Warm both paths (connection pools, caches), then measure alternately twice.
    sequential_latencies(backend.addr.port(), 200, interval);
    sequential_latencies(proxy.port, 200, interval);
    println!("{count} sequential keep-alive requests at {rate}/s per run");
    for round in 1..=2 {
        let (d50, d99) = report(
            "direct",
            &mut sequential_latencies(backend.addr.port(), count, interval),
        );
        let (p50, p99) = report(
            "proxy",
            &mut sequential_latencies(proxy.port, count, interval),
        );
        println!(
            "round {round}: overhead p50=+{:.3}ms p99=+{:.3}ms",
            (p50.as_secs_f64() - d50.as_secs_f64()) * 1e3,
            (p99.as_secs_f64() - d99.as_secs_f64()) * 1e3
        );
    }
}

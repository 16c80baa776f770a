//! Several targets per service (kamal-proxy's load balancer), on loopback with the real
//! binary: the load spread over them, a deploy replacing the whole set at once under load, a
//! deploy with one unhealthy target refused, a target failing its health checks taken out,
//! the set kept in the state file.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use common::{deploy_args, Backend, Proxy};

/// `--target=a,b,…` of these backends.
fn targets(backends: &[&Backend]) -> String {
    let list: Vec<String> = backends.iter().map(|b| b.addr.to_string()).collect();
    format!("--target={}", list.join(","))
}

/// The name the backend answered with (its first word).
fn who(body: &str) -> String {
    body.split(' ').next().unwrap_or("").to_string()
}

/// Requests answered per backend name over `n` sequential requests on fresh connections.
fn spread(proxy: &Proxy, n: usize) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for _ in 0..n {
        let (status, body) = proxy.get("x.test", "/");
        assert_eq!(status, 200, "{body}");
        *seen.entry(who(&body)).or_insert(0) += 1;
    }
    seen
}

/// What a loader saw: per worker, the backend names in order, and the failures.
struct LoadResult {
    per_worker: Vec<Vec<String>>,
    failed: usize,
}

/// `workers` keep-alive clients sending `per_worker` requests each (one in ten of worker 0's
/// slow, 150 ms, so some are in flight across a switch); `done` counts completed requests.
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
                        let q = if w == 0 && i % 10 == 0 { "?ms=150" } else { "" };
                        let uri: hyper::Uri = format!("http://127.0.0.1:{port}/load{q}")
                            .parse()
                            .expect("uri");
                        match client.get(uri).await {
                            Ok(resp) if resp.status() == 200 => {
                                match resp.into_body().collect().await {
                                    Ok(b) => {
                                        seen.push(who(&String::from_utf8_lossy(&b.to_bytes())))
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
fn requests_are_spread_over_every_target_and_the_set_is_listed_and_saved() {
    let mut proxy = Proxy::start();
    let a = Backend::start("a", true);
    let b = Backend::start("b", true);
    let c = Backend::start("c", true);
    let t = targets(&[&a, &b, &c]);
    proxy.ok(&deploy_args("lb-web", &t, &[]));

    let seen = spread(&proxy, 300);
    assert_eq!(seen.len(), 3, "{seen:?}");
    for name in ["a", "b", "c"] {
        let n = seen.get(name).copied().unwrap_or(0);
        assert!((80..=120).contains(&n), "{name} got {n} of 300: {seen:?}");
    }

    // `list`: the targets comma-separated, as kamal-proxy shows them.
    let list = proxy.ok(&["list"]);
    let expected = format!("{},{},{}", a.addr, b.addr, c.addr);
    assert!(list.contains(&expected), "{list}");

    // The state keeps the set (and `target`, the first, for older versions); a restarted
    // proxy serves all three again.
    let state_path = proxy.dir.join("config/kamal-proxy/dray-proxy.state.json");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).expect("state")).expect("json");
    let service = &state["services"][0];
    assert_eq!(service["target"], a.addr.to_string());
    assert_eq!(
        service["targets"],
        serde_json::json!([a.addr.to_string(), b.addr.to_string(), c.addr.to_string()])
    );
    proxy.terminate();
    proxy.spawn();
    let seen = spread(&proxy, 60);
    assert_eq!(seen.len(), 3, "after a restart: {seen:?}");
}

#[test]
fn a_deploy_replaces_the_whole_set_at_once_under_load() {
    let proxy = Proxy::start();
    let mut old: Vec<Backend> = ["a", "b", "c"]
        .into_iter()
        .map(|n| Backend::start(n, true))
        .collect();
    let new: Vec<Backend> = ["d", "e", "f"]
        .into_iter()
        .map(|n| Backend::start(n, true))
        .collect();
    proxy.ok(&deploy_args(
        "swap-web",
        &targets(&old.iter().collect::<Vec<_>>()),
        &[],
    ));

    let done = Arc::new(AtomicUsize::new(0));
    let loader = spawn_loader(proxy.port, 4, 300, Arc::clone(&done));
    wait_for(&done, 150);
    proxy.ok(&deploy_args(
        "swap-web",
        &targets(&new.iter().collect::<Vec<_>>()),
        &[],
    ));
    // Kamal stops the old containers once the deploy returns: their requests have drained.
    for b in &mut old {
        b.stop();
    }
    let load = loader.join().expect("loader");
    assert_eq!(load.failed, 0, "failed requests during the switch");
    let olds = ["a", "b", "c"];
    let news = ["d", "e", "f"];
    let mut seen_new = HashMap::new();
    for (w, seq) in load.per_worker.iter().enumerate() {
        assert_eq!(seq.len(), 300, "worker {w}");
        // Old set first, then only the new set: never back.
        let first_new = seq
            .iter()
            .position(|v| news.contains(&v.as_str()))
            .unwrap_or_else(|| panic!("worker {w} never reached the new set: {seq:?}"));
        assert!(
            seq[..first_new].iter().all(|v| olds.contains(&v.as_str())),
            "worker {w}: {seq:?}"
        );
        assert!(
            seq[first_new..].iter().all(|v| news.contains(&v.as_str())),
            "worker {w} went back to the old set: {seq:?}"
        );
        for v in &seq[first_new..] {
            *seen_new.entry(v.clone()).or_insert(0) += 1;
        }
    }
    assert_eq!(seen_new.len(), 3, "every new target served: {seen_new:?}");
}

#[test]
fn one_unhealthy_target_fails_the_deploy_and_the_old_set_keeps_serving() {
    let proxy = Proxy::start();
    let a = Backend::start("a", true);
    let b = Backend::start("b", true);
    let d = Backend::start("d", true);
    let sick = Backend::start("sick", false);
    proxy.ok(&deploy_args("keep-web", &targets(&[&a, &b]), &[]));

    let out = proxy.cli(&[
        "deploy",
        "keep-web",
        &targets(&[&d, &sick]),
        "--health-check-interval=100ms",
        "--deploy-timeout=600ms",
    ]);
    assert!(!out.status.success(), "a deploy with an unhealthy target");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("healthy"), "{stderr}");
    assert!(
        stderr.contains(&sick.addr.to_string()),
        "names the target: {stderr}"
    );

    let seen = spread(&proxy, 40);
    assert_eq!(
        seen.keys()
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>(),
        ["a", "b"].into_iter().collect(),
        "{seen:?}"
    );
}

#[test]
fn a_target_failing_its_health_checks_is_taken_out_until_it_passes_again() {
    let proxy = Proxy::start();
    let a = Backend::start("a", true);
    let mut b = Backend::start("b", true);
    let b_addr = b.addr;
    proxy.ok(&deploy_args("sick-web", &targets(&[&a, &b]), &[]));
    assert_eq!(spread(&proxy, 20).len(), 2);

    b.stop();
    // Checked every 100 ms: taken out after its first failed check.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !proxy.ok(&["list"]).contains("(unhealthy)") {
        assert!(Instant::now() < deadline, "never marked unhealthy");
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = spread(&proxy, 40);
    assert_eq!(seen.get("a"), Some(&40), "{seen:?}");

    // Back on the same address: healthy again, in the rotation again.
    let b2 = Backend::start_on(b_addr, "b2", true);
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.ok(&["list"]).contains("(unhealthy)") {
        assert!(Instant::now() < deadline, "never healthy again");
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = spread(&proxy, 40);
    assert!(seen.get("b2").is_some_and(|n| *n >= 10), "{seen:?}");
    drop(b2);
}

#[test]
fn one_target_is_never_taken_out_and_old_single_target_states_load() {
    let mut proxy = Proxy::new();
    // A state file as dray-proxy wrote it before several targets (no `targets`).
    let a = Backend::start("a", true);
    let dir = proxy.dir.join("config/kamal-proxy");
    std::fs::create_dir_all(&dir).expect("state dir");
    let old = format!(
        r#"{{"version":1,"services":[{{"name":"one","target":"{}","hosts":[],"path_prefixes":[],
        "strip_path_prefix":true,"tls":false,"options":{{"health_check":{{"path":"/up",
        "interval":100,"timeout":5000,"host":null}},"target_timeout":30000,"forward_headers":true,
        "log_request_headers":[],"log_response_headers":[]}},"state":{{"state":"running"}}}}]}}"#,
        a.addr
    );
    std::fs::write(dir.join("dray-proxy.state.json"), old).expect("write state");
    proxy.spawn();
    assert_eq!(proxy.get("x", "/"), (200, "a /".into()));

    // One target failing its checks stays: there is nothing else to send to (kamal-proxy).
    let flaky = Backend::start("flaky", false);
    proxy.ok(&deploy_args("one", &flaky.target(), &["--force"]));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(proxy.get("x", "/"), (200, "flaky /".into()));
    assert!(!proxy.ok(&["list"]).contains("unhealthy"));
}

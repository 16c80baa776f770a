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

/// One request with `method`, extra header lines (each ending `\r\n`): status, head, body.
fn request(proxy: &Proxy, method: &str, path: &str, headers: &str) -> (u16, String, String) {
    common::raw_request(
        proxy.port,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: rw.test\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    )
}

/// The `kamal-writer` cookie pair (`kamal-writer=<ms>`) a response sets, if any.
fn writer_cookie(head: &str) -> Option<String> {
    head.lines()
        .filter_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .find(|c| c.starts_with("kamal-writer="))
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
}

#[test]
fn reads_go_to_read_targets_and_a_write_keeps_the_client_on_the_writers_for_a_while() {
    let mut proxy = Proxy::start();
    let w = Backend::start("w", true);
    let r1 = Backend::start("r1", true);
    let r2 = Backend::start("r2", true);
    proxy.ok(&deploy_args(
        "rw-web",
        &w.target(),
        &[
            &format!("--read-target={},{}", r1.addr, r2.addr),
            "--writer-affinity-timeout=700ms",
        ],
    ));

    // Reads are spread over the read targets; no affinity cookie for them.
    let mut readers = HashMap::new();
    for _ in 0..20 {
        let (status, head, body) = request(&proxy, "GET", "/items", "");
        assert_eq!(status, 200, "{head}");
        assert!(writer_cookie(&head).is_none(), "{head}");
        *readers.entry(who(&body)).or_insert(0) += 1;
    }
    assert_eq!(readers.get("r1"), Some(&10), "{readers:?}");
    assert_eq!(readers.get("r2"), Some(&10), "{readers:?}");
    let (status, head, _) = request(&proxy, "HEAD", "/items", "");
    assert_eq!(status, 200, "{head}");

    // A write goes to the writer and sets the affinity cookie; with it, reads stay on the
    // writer until it expires.
    let (status, head, body) = request(&proxy, "POST", "/items", "");
    assert_eq!((status, who(&body).as_str()), (200, "w"), "{head}");
    let cookie = writer_cookie(&head).unwrap_or_else(|| panic!("no writer cookie: {head}"));
    for method in ["PUT", "DELETE", "PATCH"] {
        let (_, head, body) = request(&proxy, method, "/items", "");
        assert_eq!(who(&body), "w", "{method}");
        assert!(writer_cookie(&head).is_some(), "{method}: {head}");
    }
    let with_cookie = format!("Cookie: theme=dark; {cookie}\r\n");
    for _ in 0..5 {
        let (_, _, body) = request(&proxy, "GET", "/items", &with_cookie);
        assert_eq!(who(&body), "w", "a read right after a write");
    }
    std::thread::sleep(Duration::from_millis(800));
    let (_, _, body) = request(&proxy, "GET", "/items", &with_cookie);
    assert!(who(&body).starts_with('r'), "the cookie expired: {body}");
    // A cookie that is not a time is no affinity.
    let (_, _, body) = request(&proxy, "GET", "/items", "Cookie: kamal-writer=soon\r\n");
    assert!(who(&body).starts_with('r'), "{body}");

    // WebSocket upgrades are writes unless --read-target-websockets.
    let ws = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    let (_, _, body) = request(&proxy, "GET", "/cable", ws);
    assert_eq!(who(&body), "w", "a WebSocket goes to the writer");

    // Kept in the state; a restarted proxy routes the same way.
    let state = std::fs::read_to_string(proxy.dir.join("config/kamal-proxy/dray-proxy.state.json"))
        .expect("state");
    let state: serde_json::Value = serde_json::from_str(&state).expect("json");
    let service = &state["services"][0];
    assert_eq!(
        service["read_targets"],
        serde_json::json!([r1.addr.to_string(), r2.addr.to_string()])
    );
    assert_eq!(service["writer_affinity_timeout"], 700);
    proxy.terminate();
    proxy.spawn();
    let (_, _, body) = request(&proxy, "GET", "/items", "");
    assert!(who(&body).starts_with('r'), "after a restart: {body}");
    let (_, head, body) = request(&proxy, "POST", "/items", "");
    assert_eq!(who(&body), "w");
    assert!(writer_cookie(&head).is_some(), "{head}");

    // `list` shows writers then readers.
    let list = proxy.ok(&["list"]);
    assert!(
        list.contains(&format!("{},{},{}", w.addr, r1.addr, r2.addr)),
        "{list}"
    );

    // --read-target-websockets: upgrades are reads; --writer-affinity-timeout=0: no cookie.
    proxy.ok(&deploy_args(
        "rw-web",
        &w.target(),
        &[
            &format!("--read-target={}", r1.addr),
            "--read-target-websockets",
            "--writer-affinity-timeout=0s",
        ],
    ));
    let (_, _, body) = request(&proxy, "GET", "/cable", ws);
    assert_eq!(who(&body), "r1", "a WebSocket goes to the read target");
    let (_, head, body) = request(&proxy, "POST", "/items", "");
    assert_eq!(who(&body), "w");
    assert!(writer_cookie(&head).is_none(), "{head}");

    // A service without read targets never sets the cookie.
    let plain = Backend::start("plain", true);
    proxy.ok(&deploy_args(
        "plain-web",
        &plain.target(),
        &["--host=plain.test"],
    ));
    let (_, head, body) = common::raw_request(
        proxy.port,
        "POST / HTTP/1.1\r\nHost: plain.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(who(&body), "plain");
    assert!(writer_cookie(&head).is_none(), "{head}");

    // Flags that only mean something with read targets are refused without them.
    let out = proxy.cli(&[
        "deploy",
        "plain-web",
        &plain.target(),
        "--read-target-websockets",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs --read-target"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unhealthy_read_target_fails_the_deploy_and_one_failing_later_sends_reads_to_the_writers() {
    let proxy = Proxy::start();
    let w = Backend::start("w", true);
    let mut r = Backend::start("r", true);
    let sick = Backend::start("sick", false);
    let out = proxy.cli(&[
        "deploy",
        "rh-web",
        &w.target(),
        &format!("--read-target={}", sick.addr),
        "--health-check-interval=100ms",
        "--deploy-timeout=500ms",
    ]);
    assert!(
        !out.status.success(),
        "a deploy with an unhealthy read target"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(&sick.addr.to_string()));
    assert_eq!(proxy.get("x", "/").0, 404, "nothing deployed");

    proxy.ok(&deploy_args(
        "rh-web",
        &w.target(),
        &[&format!("--read-target={}", r.addr)],
    ));
    assert_eq!(proxy.get("x", "/"), (200, "r /".into()));
    r.stop();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !proxy.ok(&["list"]).contains("(unhealthy)") {
        assert!(Instant::now() < deadline, "never marked unhealthy");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(proxy.get("x", "/"), (200, "w /".into()));
}

#[test]
fn rollout_deploy_takes_several_targets_and_read_targets() {
    let proxy = Proxy::start();
    let main = Backend::start("main", true);
    let c1 = Backend::start("c1", true);
    let c2 = Backend::start("c2", true);
    let cr = Backend::start("cr", true);
    proxy.ok(&deploy_args("rt-web", &main.target(), &["--host=rw.test"]));
    proxy.ok(&[
        "rollout",
        "deploy",
        "rt-web",
        &targets(&[&c1, &c2]),
        &format!("--read-target={}", cr.addr),
    ]);
    proxy.ok(&["rollout", "set", "rt-web", "--list=beta"]);
    let beta = "Cookie: kamal-rollout=beta\r\n";
    let (_, _, body) = request(&proxy, "GET", "/", beta);
    assert_eq!(who(&body), "cr", "a rollout read");
    let mut writers = HashMap::new();
    for _ in 0..10 {
        let (_, head, body) = request(&proxy, "POST", "/", beta);
        assert!(writer_cookie(&head).is_some(), "{head}");
        *writers.entry(who(&body)).or_insert(0) += 1;
    }
    assert_eq!(writers.get("c1"), Some(&5), "{writers:?}");
    assert_eq!(writers.get("c2"), Some(&5), "{writers:?}");
    let (_, _, body) = request(&proxy, "GET", "/", "Cookie: kamal-rollout=other\r\n");
    assert_eq!(who(&body), "main");
    let list = proxy.ok(&["list"]);
    assert!(
        list.contains(&format!("rollout {},{},{}", c1.addr, c2.addr, cr.addr)),
        "{list}"
    );
}

#[test]
fn the_health_check_port_is_checked_instead_of_the_targets() {
    let proxy = Proxy::start();
    // The target's own /up answers 503; the health check port's 200.
    let app = Backend::start("app", false);
    let health = Backend::start("health", true);
    let out = proxy.cli(&[
        "deploy",
        "hp-web",
        &app.target(),
        "--health-check-interval=100ms",
        "--deploy-timeout=500ms",
    ]);
    assert!(!out.status.success(), "the target's own check fails");
    proxy.ok(&deploy_args(
        "hp-web",
        &app.target(),
        &[&format!("--health-check-port={}", health.addr.port())],
    ));
    assert_eq!(proxy.get("x", "/"), (200, "app /".into()));
}

#[test]
fn http3_is_refused_with_the_reason() {
    let proxy = Proxy::new();
    let out = proxy
        .command()
        .args(["run", "--http3", "--http-port", "0"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--http3 is not supported"), "{stderr}");
    assert!(stderr.contains("QUIC"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn kamal_proxys_state_file_is_read_at_start_and_written_after_changes() {
    let mut proxy = Proxy::new();
    let a = Backend::start("a", true);
    let b = Backend::start("b", true);
    let r = Backend::start("r", true);
    // kamal-proxy's `kamal-proxy.state` (its Go field names, durations in ns), as it leaves
    // it in the shared state volume; no dray-proxy state beside it. (Written by hand from
    // kamal-proxy's marshalledService: no kamal-proxy binary here to write it.)
    let dir = proxy.dir.join("config/kamal-proxy");
    std::fs::create_dir_all(&dir).expect("state dir");
    let kamal = format!(
        r#"[{{"name":"k-web","options":{{"hosts":["k.test"],"path_prefixes":["/"],"tls_enabled":false,
        "tls_redirect":true,"strip_prefix":true,"writer_affinity_timeout":1000000000,
        "read_targets_accept_websockets":false}},"target_options":{{"health_check_config":{{"path":"/up",
        "port":0,"interval":100000000,"timeout":5000000000,"host":""}},"response_timeout":30000000000,
        "max_memory_buffer_size":1048576,"forward_headers":true}},"active_targets":["{a}","{b}"],
        "active_readers":["{r}"],"rollout_targets":null,"rollout_readers":null,
        "pause_controller":{{"state":0,"stop_message":"","fail_after":0}},"rollout_controller":null}}]"#,
        a = a.addr,
        b = b.addr,
        r = r.addr
    );
    std::fs::write(dir.join("kamal-proxy.state"), kamal).expect("write");
    proxy.spawn();
    let host = "Host: k.test\r\n";
    let raw = |method: &str| {
        common::raw_request(
            proxy.port,
            &format!("{method} / HTTP/1.1\r\n{host}Content-Length: 0\r\nConnection: close\r\n\r\n"),
        )
    };
    assert_eq!(who(&raw("GET").2), "r", "reads to the read target");
    let mut writers = HashMap::new();
    for _ in 0..10 {
        *writers.entry(who(&raw("POST").2)).or_insert(0) += 1;
    }
    assert_eq!((writers.get("a"), writers.get("b")), (Some(&5), Some(&5)));

    // A change writes both files; kamal-proxy's keeps its field names.
    proxy.ok(&deploy_args(
        "k-web",
        &targets(&[&b, &a]),
        &["--host=k.test"],
    ));
    let text = std::fs::read_to_string(dir.join("kamal-proxy.state")).expect("kamal state");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        v[0]["active_targets"],
        serde_json::json!([b.addr.to_string(), a.addr.to_string()])
    );
    assert_eq!(v[0]["active_readers"], serde_json::json!([]));
    assert_eq!(v[0]["options"]["hosts"], serde_json::json!(["k.test"]));
    assert_eq!(
        v[0]["target_options"]["health_check_config"]["interval"],
        100_000_000
    );
    assert!(dir.join("dray-proxy.state.json").exists());
}

#[test]
fn pause_is_refused_with_what_to_use_instead() {
    let proxy = Proxy::start();
    let out = proxy.cli(&["pause", "any-web", "--max-pause=5s"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pause is not supported"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn a_busy_target_gets_the_next_requests_less_than_its_share() {
    let proxy = Proxy::start();
    let a = Backend::start("a", true);
    let b = Backend::start("b", true);
    proxy.ok(&deploy_args("busy-web", &targets(&[&a, &b]), &[]));
    // Two slow requests, one on each target... then one more slow one: some target has two
    // in flight, the other one. Quick requests meanwhile all go to the less busy one (plain
    // round-robin, kamal-proxy's, would send half of them to the busier).
    let port = proxy.port;
    let slow: Vec<_> = (0..3)
        .map(|i| {
            std::thread::sleep(Duration::from_millis(if i == 0 { 0 } else { 50 }));
            std::thread::spawn(move || who(&common::get(port, "x", "/slow?ms=1500").1))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let quick = spread(&proxy, 10);
    let slow: Vec<String> = slow.into_iter().map(|t| t.join().expect("slow")).collect();
    let busier = if slow.iter().filter(|v| *v == "a").count() == 2 {
        "a"
    } else {
        "b"
    };
    assert_eq!(quick.get(busier), None, "slow {slow:?}, quick {quick:?}");
    assert_eq!(quick.values().sum::<usize>(), 10);
}

//! kamal-proxy `deploy`/`run` flags that no other test drives end to end: each one's effect,
//! on loopback with the real binary.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{deploy_args, Backend, Proxy};

/// A server answering `200 ok` to every request after `delay`, recording each request head.
fn recorder(delay: Duration) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                if let Ok(mut s) = seen.lock() {
                    s.push(String::from_utf8_lossy(&buf).into_owned());
                }
                std::thread::sleep(delay);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            });
        }
    });
    (format!("--target={addr}"), heads)
}

#[test]
fn health_check_path_and_host_are_what_the_check_asks_for() {
    let proxy = Proxy::start();
    // /up answers 503: only a check of another path passes.
    let sick = Backend::start("sick", false);
    proxy.ok(&deploy_args(
        "hp-web",
        &sick.target(),
        &["--health-check-path=/ready"],
    ));
    assert_eq!(proxy.get("x", "/"), (200, "sick /".into()));

    let (target, heads) = recorder(Duration::ZERO);
    proxy.ok(&deploy_args(
        "hh-web",
        &target,
        &[
            "--host=hh.test",
            "--health-check-path=/healthz",
            "--health-check-host=internal.test",
        ],
    ));
    let heads = heads.lock().expect("heads").clone();
    let check = heads.first().expect("a health check").to_ascii_lowercase();
    assert!(check.starts_with("get /healthz "), "{check}");
    assert!(check.contains("\r\nhost: internal.test\r\n"), "{check}");
}

#[test]
fn a_health_check_slower_than_its_timeout_fails() {
    let proxy = Proxy::start();
    let (target, _) = recorder(Duration::from_millis(400));
    let started = Instant::now();
    let out = proxy.cli(&[
        "deploy",
        "ht-web",
        &target,
        "--health-check-timeout=100ms",
        "--health-check-interval=100ms",
        "--deploy-timeout=800ms",
    ]);
    assert!(!out.status.success(), "a check slower than its timeout");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("timed out"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // With a longer check timeout the same target is healthy.
    proxy.ok(&deploy_args(
        "ht-web",
        &target,
        &["--health-check-timeout=2s"],
    ));
}

#[test]
fn logged_request_and_response_headers_and_quiet() {
    let proxy = Proxy::start();
    let app = Backend::start("app", true);
    proxy.ok(&deploy_args(
        "log-web",
        &app.target(),
        &[
            "--log-request-header=X-Trace-Id",
            "--log-response-header=X-Seen-Forwarded-Host",
        ],
    ));
    let (status, _, _) = common::raw_request(
        proxy.port,
        "GET /logged HTTP/1.1\r\nHost: logged.test\r\nX-Trace-Id: trace-4711\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        if let Some(l) = proxy.log().lines().find(|l| l.contains("/logged")) {
            break l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no request line:\n{}",
            proxy.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(v["req_x_trace_id"], "trace-4711", "{line}");
    assert_eq!(v["resp_x_seen_forwarded_host"], "logged.test", "{line}");

    // `run --quiet`: no request lines.
    let mut quiet = Proxy::new();
    quiet.run_args.push("--quiet".into());
    quiet.spawn();
    quiet.ok(&deploy_args("log-web", &app.target(), &[]));
    assert_eq!(quiet.get("x", "/quiet-path").0, 200);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!quiet.log().contains("/quiet-path"), "{}", quiet.log());
}

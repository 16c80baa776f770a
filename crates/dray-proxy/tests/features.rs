//! dray-proxy, the binary, on loopback: WebSockets across a deploy, streamed and buffered
//! bodies with their limits, `/metrics`, and the rollout commands.

mod common;

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::process::Command;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{deploy_args, free_port, raw_request, Proxy};

/// A response body: `first\n` at once, `second\n` after `delay`.
struct Delayed {
    step: u8,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Body for Delayed {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.step {
            0 => {
                self.step = 1;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"first\n")))))
            }
            1 => match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.step = 2;
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"second\n")))))
                }
                Poll::Pending => Poll::Pending,
            },
            _ => Poll::Ready(None),
        }
    }
}

type AppBody = http_body_util::Either<http_body_util::Full<Bytes>, Delayed>;

/// A backend for these tests:
/// - an `Upgrade` request: `101`, then every byte read is echoed after `<version>:`;
/// - `/len`: the request body's length and byte sum;
/// - `/big?n=N`: `N` bytes;
/// - `/stream?type=T&ms=M`: `first\n`, then `second\n` M ms later, content type T;
/// - else `<version> <path>` (and `/up` is healthy).
struct App {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl App {
    fn start(version: &'static str) -> App {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("backend runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind backend");
        let addr = listener.local_addr().expect("addr");
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(version, req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        App {
            addr,
            runtime: Some(runtime),
        }
    }

    fn target(&self) -> String {
        format!("--target={}", self.addr)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn query<'a>(req: &'a hyper::Request<hyper::body::Incoming>, key: &str) -> Option<&'a str> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

async fn answer(
    version: &'static str,
    mut req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<AppBody>, std::convert::Infallible> {
    let full = |s: String| AppBody::Left(http_body_util::Full::new(Bytes::from(s)));
    if req.headers().contains_key("upgrade") {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let Ok(upgraded) = on.await else { return };
            let mut io = TokioIo::new(upgraded);
            let mut buf = [0u8; 1024];
            loop {
                let n = match io.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let mut out = format!("{version}:").into_bytes();
                out.extend_from_slice(&buf[..n]);
                if io.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
        return Ok(hyper::Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(full(String::new()))
            .expect("response"));
    }
    let path = req.uri().path().to_string();
    let resp = match path.as_str() {
        "/len" => {
            let body = req.into_body().collect().await.map(|b| b.to_bytes());
            let body = body.unwrap_or_default();
            let sum: u64 = body.iter().map(|b| u64::from(*b)).sum();
            hyper::Response::new(full(format!("{} {sum}", body.len())))
        }
        "/cookie" | "/app/cookie" => hyper::Response::builder()
            .header("set-cookie", "session=1; Path=/; HttpOnly")
            .header("set-cookie", "pref=2; Path=/settings/")
            .header("set-cookie", "other=3; Domain=elsewhere.test")
            .body(full(String::new()))
            .expect("response"),
        "/xff" | "/target" => {
            let name = if path == "/xff" {
                "x-forwarded-for"
            } else {
                "x-kamal-target"
            };
            let xff = req
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            hyper::Response::new(full(xff.to_string()))
        }
        "/big" => {
            let n: usize = query(&req, "n").and_then(|n| n.parse().ok()).unwrap_or(0);
            hyper::Response::new(full("x".repeat(n)))
        }
        "/stream" => {
            let ms: u64 = query(&req, "ms").and_then(|n| n.parse().ok()).unwrap_or(0);
            let ty = query(&req, "type")
                .unwrap_or("text/plain")
                .replace("%2F", "/");
            hyper::Response::builder()
                .header("content-type", ty)
                .body(AppBody::Right(Delayed {
                    step: 0,
                    sleep: Box::pin(tokio::time::sleep(Duration::from_millis(ms))),
                }))
                .expect("response")
        }
        _ => hyper::Response::new(full(format!("{version} {path}"))),
    };
    Ok(resp)
}

/// A raw connection through the proxy that asked for a WebSocket upgrade and got `101`.
/// (The frames are opaque to the proxy; the echo backend answers raw bytes.)
fn websocket(port: u16, host: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET /cable HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .expect("send");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("read the 101 answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: websocket"),
        "{head}"
    );
    s
}

/// Send `msg` over the tunnel and read the echo (`<version>:<msg>`).
fn echo(s: &mut TcpStream, msg: &str) -> String {
    s.write_all(msg.as_bytes()).expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !got.ends_with(msg.as_bytes()) {
        let n = s.read(&mut buf).expect("read echo");
        assert!(
            n > 0,
            "the tunnel closed; got {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// `deploy` in the background (it returns when the old target has drained).
fn deploy_in_background(proxy: &Proxy, args: &[&str]) -> std::thread::JoinHandle<(bool, Instant)> {
    let mut cmd: Command = proxy.command();
    cmd.args(args);
    std::thread::spawn(move || {
        let ok = cmd.output().map(|o| o.status.success()).unwrap_or(false);
        (ok, Instant::now())
    })
}

fn wait_for(proxy: &Proxy, host: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = proxy.get(host, "/");
        if body.starts_with(want) {
            return;
        }
        assert!(Instant::now() < deadline, "never answered {want}: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn websocket_survives_a_deploy_until_it_closes_and_the_old_target_drains() {
    let proxy = Proxy::start();
    let (v1, v2, v3) = (App::start("v1"), App::start("v2"), App::start("v3"));
    let (t1, t2, t3) = (v1.target(), v2.target(), v3.target());
    proxy.ok(&deploy_args("ws", &t1, &["--host=ws.test"]));
    let mut ws = websocket(proxy.port, "ws.test");
    assert_eq!(echo(&mut ws, "hello"), "v1:hello");

    // A deploy switches new requests at once, and waits for the open WebSocket.
    let deploy = deploy_in_background(
        &proxy,
        &[
            "deploy",
            "ws",
            &t2,
            "--host=ws.test",
            "--health-check-interval=100ms",
            "--drain-timeout=30s",
        ],
    );
    wait_for(&proxy, "ws.test", "v2");
    assert_eq!(echo(&mut ws, "still"), "v1:still");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !deploy.is_finished(),
        "the deploy did not wait for the WebSocket"
    );
    assert_eq!(echo(&mut ws, "there"), "v1:there");
    // Closing it ends the drain (long before the 30 s drain timeout).
    let closed = Instant::now();
    drop(ws);
    let (ok, finished) = deploy.join().expect("deploy thread");
    assert!(ok, "deploy failed:\n{}", proxy.log());
    assert!(
        finished.duration_since(closed) < Duration::from_secs(5),
        "the deploy waited {:?} after the WebSocket closed",
        finished.duration_since(closed)
    );

    // A WebSocket still open past the drain timeout is closed.
    let mut ws = websocket(proxy.port, "ws.test");
    assert_eq!(echo(&mut ws, "new"), "v2:new");
    let started = Instant::now();
    proxy.ok(&[
        "deploy",
        "ws",
        &t3,
        "--host=ws.test",
        "--health-check-interval=100ms",
        "--drain-timeout=1s",
    ]);
    assert!(started.elapsed() >= Duration::from_secs(1));
    let mut buf = [0u8; 16];
    match ws.read(&mut buf) {
        Ok(0) => {}
        other => panic!("the old target's WebSocket stayed open: {other:?}"),
    }
    let mut ws = websocket(proxy.port, "ws.test");
    assert_eq!(echo(&mut ws, "last"), "v3:last");
}

#[test]
fn websockets_on_several_targets_are_all_drained_and_may_go_to_read_targets() {
    let proxy = Proxy::start();
    let (a, b, c, r) = (
        App::start("a"),
        App::start("b"),
        App::start("c"),
        App::start("r"),
    );
    let ab = format!("--target={},{}", a.addr, b.addr);
    proxy.ok(&deploy_args("wsn", &ab, &["--host=wsn.test"]));
    // `X-Kamal-Target` names the target each request went to.
    let mut named = vec![
        proxy.get("wsn.test", "/target").1,
        proxy.get("wsn.test", "/target").1,
    ];
    named.sort();
    let mut expected = vec![a.addr.to_string(), b.addr.to_string()];
    expected.sort();
    assert_eq!(named, expected);
    // One WebSocket on each target (requests take turns).
    let mut first = websocket(proxy.port, "wsn.test");
    let mut second = websocket(proxy.port, "wsn.test");
    let mut on = vec![echo(&mut first, "x"), echo(&mut second, "x")];
    on.sort();
    assert_eq!(on, ["a:x", "b:x"]);

    // The deploy to c waits for both.
    let deploy = deploy_in_background(
        &proxy,
        &[
            "deploy",
            "wsn",
            &c.target(),
            "--host=wsn.test",
            "--health-check-interval=100ms",
            "--drain-timeout=30s",
        ],
    );
    wait_for(&proxy, "wsn.test", "c");
    drop(first);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !deploy.is_finished(),
        "the deploy did not wait for the second WebSocket"
    );
    assert!(echo(&mut second, "y").ends_with(":y"));
    drop(second);
    let (ok, _) = deploy.join().expect("deploy thread");
    assert!(ok, "deploy failed:\n{}", proxy.log());

    // With read targets, WebSockets go to the targets unless --read-target-websockets.
    let read = format!("--read-target={}", r.addr);
    proxy.ok(&deploy_args(
        "wsn",
        &c.target(),
        &["--host=wsn.test", &read],
    ));
    let mut ws = websocket(proxy.port, "wsn.test");
    assert_eq!(echo(&mut ws, "w"), "c:w");
    drop(ws);
    proxy.ok(&deploy_args(
        "wsn",
        &c.target(),
        &["--host=wsn.test", &read, "--read-target-websockets"],
    ));
    let mut ws = websocket(proxy.port, "wsn.test");
    assert_eq!(echo(&mut ws, "w"), "r:w");
}

/// Milliseconds until `first` arrives on a raw `GET path`, and the whole answer.
fn first_chunk_after(port: u16, host: &str, path: &str) -> (Duration, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let started = Instant::now();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let mut first = None;
    loop {
        let n = s.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if first.is_none() && String::from_utf8_lossy(&got).contains("first") {
            first = Some(started.elapsed());
        }
    }
    (
        first.expect("no first chunk"),
        String::from_utf8_lossy(&got).into_owned(),
    )
}

#[test]
fn responses_stream_unless_buffered_and_event_streams_always_do() {
    let proxy = Proxy::start();
    let app = App::start("v1");
    let t = app.target();
    let slow = "/stream?ms=1500";
    proxy.ok(&deploy_args(
        "st",
        &t,
        &["--host=stream.test", "--buffer-responses=false"],
    ));
    let (first, all) = first_chunk_after(proxy.port, "stream.test", slow);
    assert!(
        first < Duration::from_millis(1000),
        "first chunk after {first:?}"
    );
    assert!(all.contains("second"), "{all}");

    // Kamal's default: buffered; the first chunk comes with the whole body.
    proxy.ok(&deploy_args(
        "st",
        &t,
        &["--host=stream.test", "--buffer-responses"],
    ));
    let (first, all) = first_chunk_after(proxy.port, "stream.test", slow);
    assert!(
        first >= Duration::from_millis(1400),
        "first chunk after {first:?}"
    );
    assert!(all.contains("content-length: 13"), "{all}");
    // …except server-sent events.
    let (first, _) = first_chunk_after(
        proxy.port,
        "stream.test",
        "/stream?ms=1500&type=text%2Fevent-stream",
    );
    assert!(
        first < Duration::from_millis(1000),
        "first event after {first:?}"
    );
}

fn post(port: u16, host: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("send head");
    // The proxy may answer 413 before reading it all.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn buffered_bodies_get_kamal_proxys_answers_past_their_limits() {
    let proxy = Proxy::start();
    let app = App::start("v1");
    let t = app.target();
    proxy.ok(&deploy_args(
        "buf",
        &t,
        &[
            "--host=buf.test",
            "--buffer-requests",
            "--max-request-body=1000",
            "--buffer-responses",
            "--max-response-body=2000",
            "--buffer-memory=100",
        ],
    ));
    // Requests: within the limit (spilled to disk past 100 bytes) forwarded whole, over it 413.
    let body: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let sum: u64 = body.iter().map(|b| u64::from(*b)).sum();
    assert_eq!(
        post(proxy.port, "buf.test", "/len", &body),
        (200, format!("1000 {sum}"))
    );
    let (status, page) = post(proxy.port, "buf.test", "/len", &[b'x'; 1001]);
    assert_eq!(status, 413, "{page}");
    // Responses: within the limit served, over it kamal-proxy's 500.
    let (status, big) = proxy.get("buf.test", "/big?n=2000");
    assert_eq!((status, big.len()), (200, 2000));
    let (status, page) = proxy.get("buf.test", "/big?n=2001");
    assert_eq!(status, 500, "{page}");
    assert!(page.contains("500"), "{page}");

    // Without buffering nothing is limited (kamal-proxy: the limits apply when buffering).
    proxy.ok(&deploy_args(
        "buf",
        &t,
        &[
            "--host=buf.test",
            "--buffer-requests=false",
            "--max-request-body=10",
            "--buffer-responses=false",
            "--max-response-body=10",
        ],
    ));
    assert_eq!(
        post(proxy.port, "buf.test", "/len", &body),
        (200, format!("1000 {sum}"))
    );
    assert_eq!(proxy.get("buf.test", "/big?n=5000").0, 200);
    // Unlimited buffering of a body far past the memory size.
    proxy.ok(&deploy_args(
        "buf",
        &t,
        &[
            "--host=buf.test",
            "--buffer-requests",
            "--buffer-responses",
            "--buffer-memory=10",
        ],
    ));
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let sum: u64 = big.iter().map(|b| u64::from(*b)).sum();
    assert_eq!(
        post(proxy.port, "buf.test", "/len", &big),
        (200, format!("300000 {sum}"))
    );
    let (status, got) = proxy.get("buf.test", "/big?n=300000");
    assert_eq!((status, got.len()), (200, 300_000));
    // A HEAD keeps the target's Content-Length.
    let (status, head, _) = raw_request(
        proxy.port,
        "HEAD /big?n=1234 HTTP/1.1\r\nHost: buf.test\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-length: 1234"), "{head}");
}

fn metrics_text(port: u16) -> String {
    let (status, _, body) = raw_request(
        port,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    body
}

#[test]
fn metrics_count_requests_except_excluded_paths() {
    let mut proxy = Proxy::new();
    let metrics_port = free_port();
    proxy.run_args = vec![format!("--metrics-port={metrics_port}")];
    proxy.spawn();
    let app = App::start("v1");
    proxy.ok(&deploy_args(
        "met",
        &app.target(),
        &["--host=met.test", "--exclude-metrics-path=/skip"],
    ));
    for _ in 0..25 {
        assert_eq!(proxy.get("met.test", "/").0, 200);
    }
    for _ in 0..5 {
        assert_eq!(proxy.get("met.test", "/skip").0, 200);
    }
    for _ in 0..3 {
        assert_eq!(proxy.get("nobody.test", "/").0, 404);
    }
    let text = metrics_text(metrics_port);
    assert!(
        text.contains(
            "kamal_proxy_http_requests_total{method=\"GET\",service=\"met\",status=\"200\"} 25\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "kamal_proxy_http_requests_total{method=\"GET\",service=\"\",status=\"404\"} 3\n"
        ),
        "{text}"
    );
    assert!(text.contains("# TYPE kamal_proxy_http_request_duration_seconds histogram"));
    assert!(
        text.contains("kamal_proxy_http_request_duration_seconds_count{method=\"GET\",service=\"met\",status=\"200\"} 25\n"),
        "{text}"
    );
    assert!(
        text.contains("kamal_proxy_http_in_flight_requests{service=\"met\"} 0\n"),
        "{text}"
    );
}

fn get_with_cookie(port: u16, host: &str, cookie: Option<&str>) -> String {
    let cookie = cookie
        .map(|c| format!("Cookie: theme=dark; kamal-rollout={c}\r\n"))
        .unwrap_or_default();
    let (status, _, body) = raw_request(
        port,
        &format!("GET / HTTP/1.1\r\nHost: {host}\r\n{cookie}Connection: close\r\n\r\n"),
    );
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn rollout_splits_by_percentage_and_allowlist_then_stops() {
    let mut proxy = Proxy::start();
    let (main, canary) = (App::start("main"), App::start("canary"));
    proxy.ok(&deploy_args("ro", &main.target(), &["--host=ro.test"]));
    // No rollout target yet: `set` is refused as kamal-proxy does.
    let out = proxy.cli(&["rollout", "set", "ro", "--percent=30"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rollout target not set"));
    let out = proxy.cli(&["rollout", "deploy", "nope", &canary.target()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("service not found"));
    proxy.ok(&[
        "rollout",
        "deploy",
        "ro",
        &canary.target(),
        "--deploy-timeout=3s",
    ]);
    // Deployed but no split yet: everything on the main target.
    assert!(get_with_cookie(proxy.port, "ro.test", Some("u1")).starts_with("main"));

    proxy.ok(&["rollout", "set", "ro", "--percent=30"]);
    let n = 1000;
    let canaries = (0..n)
        .filter(|i| {
            get_with_cookie(proxy.port, "ro.test", Some(&format!("user-{i}"))).starts_with("canary")
        })
        .count();
    assert!(
        (250..=350).contains(&canaries),
        "{canaries} of {n} on the rollout target"
    );
    // The same cookie value always lands on the same side; no cookie: the main target.
    for i in 0..20 {
        let v = format!("user-{i}");
        let a = get_with_cookie(proxy.port, "ro.test", Some(&v));
        let b = get_with_cookie(proxy.port, "ro.test", Some(&v));
        assert_eq!(a.split(' ').next(), b.split(' ').next());
    }
    for _ in 0..50 {
        assert!(get_with_cookie(proxy.port, "ro.test", None).starts_with("main"));
    }

    // Allowlist only.
    proxy.ok(&[
        "rollout",
        "set",
        "ro",
        "--percent=0",
        "--list=beta-1,beta-2",
    ]);
    assert!(get_with_cookie(proxy.port, "ro.test", Some("beta-1")).starts_with("canary"));
    assert!(get_with_cookie(proxy.port, "ro.test", Some("beta-2")).starts_with("canary"));
    let others = (0..200)
        .filter(|i| {
            get_with_cookie(proxy.port, "ro.test", Some(&format!("user-{i}"))).starts_with("canary")
        })
        .count();
    assert_eq!(others, 0);

    // The split survives a deploy of the main target and a restart.
    proxy.ok(&deploy_args("ro", &main.target(), &["--host=ro.test"]));
    assert!(get_with_cookie(proxy.port, "ro.test", Some("beta-1")).starts_with("canary"));
    assert_eq!(proxy.terminate(), Some(0));
    proxy.spawn();
    assert!(get_with_cookie(proxy.port, "ro.test", Some("beta-1")).starts_with("canary"));
    assert!(get_with_cookie(proxy.port, "ro.test", Some("user-1")).starts_with("main"));

    proxy.ok(&["rollout", "stop", "ro"]);
    assert!(get_with_cookie(proxy.port, "ro.test", Some("beta-1")).starts_with("main"));
    let all = (0..200)
        .filter(|i| {
            get_with_cookie(proxy.port, "ro.test", Some(&format!("user-{i}"))).starts_with("main")
        })
        .count();
    assert_eq!(all, 200);
}

fn get_with(port: u16, host: &str, path: &str, headers: &str) -> String {
    let (status, _, body) = raw_request(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"),
    );
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn client_ip_header_becomes_the_forwarded_for() {
    let proxy = Proxy::start();
    let app = App::start("v1");
    let t = app.target();
    let both = "X-Real-Client: 203.0.113.7\r\nX-Forwarded-For: 10.9.9.9\r\n";
    proxy.ok(&deploy_args(
        "ip",
        &t,
        &["--host=ip.test", "--client-ip-header=X-Real-Client"],
    ));
    // Forwarding headers (the default without TLS): the header's IP, then the peer's.
    assert_eq!(
        get_with(proxy.port, "ip.test", "/xff", both),
        "203.0.113.7, 127.0.0.1"
    );
    // Without the header the client's X-Forwarded-For is extended as before.
    assert_eq!(
        get_with(
            proxy.port,
            "ip.test",
            "/xff",
            "X-Forwarded-For: 10.9.9.9\r\n"
        ),
        "10.9.9.9, 127.0.0.1"
    );
    // Not forwarding headers: only the peer's address, as kamal-proxy.
    proxy.ok(&deploy_args(
        "ip",
        &t,
        &[
            "--host=ip.test",
            "--client-ip-header=X-Real-Client",
            "--forward-headers=false",
        ],
    ));
    assert_eq!(get_with(proxy.port, "ip.test", "/xff", both), "127.0.0.1");
    // Without the flag the header is just a header.
    proxy.ok(&deploy_args("ip", &t, &["--host=ip.test"]));
    assert_eq!(
        get_with(proxy.port, "ip.test", "/xff", both),
        "10.9.9.9, 127.0.0.1"
    );
}

#[test]
fn scope_cookie_paths_puts_cookies_below_the_prefix() {
    let proxy = Proxy::start();
    let app = App::start("v1");
    let t = app.target();
    let cookies = |path: &str| -> Vec<String> {
        let (status, head, _) = raw_request(
            proxy.port,
            &format!("GET {path} HTTP/1.1\r\nHost: ck.test:8080\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, 200, "{head}");
        head.lines()
            .filter_map(|l| l.strip_prefix("set-cookie: "))
            .map(str::to_string)
            .collect()
    };
    proxy.ok(&deploy_args(
        "ck",
        &t,
        &[
            "--host=ck.test",
            "--path-prefix=/app",
            "--scope-cookie-paths",
        ],
    ));
    assert_eq!(
        cookies("/app/cookie"),
        [
            "session=1; Path=/app; HttpOnly",
            "pref=2; Path=/app/settings",
            "other=3; Domain=elsewhere.test"
        ]
    );
    // Without stripping the prefix (or without the flag) the cookies are left alone.
    proxy.ok(&deploy_args(
        "ck",
        &t,
        &[
            "--host=ck.test",
            "--path-prefix=/app",
            "--scope-cookie-paths",
            "--strip-path-prefix=false",
        ],
    ));
    assert_eq!(cookies("/app/cookie")[0], "session=1; Path=/; HttpOnly");
    proxy.ok(&deploy_args(
        "ck",
        &t,
        &["--host=ck.test", "--path-prefix=/app"],
    ));
    assert_eq!(cookies("/app/cookie")[0], "session=1; Path=/; HttpOnly");
}

#[test]
fn websockets_work_over_tls_too() {
    use std::sync::Arc;
    let proxy = Proxy::start();
    let app = App::start("v1");
    let ca = common::Ca::new();
    let (cert, key, _) = ca.issue("wss", &["wss.test"]);
    let (c, k) = (
        format!("--tls-certificate-path={}", cert.display()),
        format!("--tls-private-key-path={}", key.display()),
    );
    proxy.ok(&deploy_args(
        "wss",
        &app.target(),
        &["--host=wss.test", "--tls", &c, &k],
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let echoed = rt.block_on(async {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der()).expect("root");
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", proxy.https_port))
            .await
            .expect("connect");
        let name = rustls::pki_types::ServerName::try_from("wss.test").expect("name");
        let mut s = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .expect("handshake");
        s.write_all(b"GET /cable HTTP/1.1\r\nHost: wss.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            .await
            .expect("send");
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&got));
        s.write_all(b"secure").await.expect("send");
        let mut echo = Vec::new();
        while !echo.ends_with(b"secure") {
            let n = s.read(&mut buf).await.expect("read echo");
            assert!(n > 0, "tunnel closed");
            echo.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&echo).into_owned()
    });
    assert_eq!(echoed, "v1:secure");
}

//! Benchmark (not a test; `scripts/bench-proxy` runs it): the latency dray-proxy adds over a
//! direct connection to the backend, p50 and p99, at 1, 16 and 64 concurrent keep-alive
//! connections, for HTTP/1.1 and for TLS (HTTP/1.1 over TLS 1.3; the direct run talks TLS to
//! a TLS backend, so only the proxy's cost is measured). Open-loop: the connections share a
//! fixed total rate (BENCH_RATE, default 1000 requests/s), BENCH_REQUESTS (default 4000) per
//! run, direct and proxied runs alternating. The service is deployed with Kamal's default
//! flags (`--buffer-requests --buffer-responses`), request log on.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

use common::{deploy_args, Ca, Proxy};

const HOST: &str = "bench.test";

/// The backend: `ok` on every path, plain or over TLS.
fn backend(rt: &tokio::runtime::Runtime, tls: Option<Arc<rustls::ServerConfig>>) -> SocketAddr {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                        Bytes::from_static(b"ok"),
                    )))
                });
                match tls {
                    Some(config) => {
                        let Ok(s) = tokio_rustls::TlsAcceptor::from(config).accept(stream).await
                        else {
                            return;
                        };
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(s), service)
                            .await;
                    }
                    None => {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
    addr
}

/// `conns` keep-alive connections to `port` sharing `rate` requests/s, `total` requests in
/// all (after 5 warm-up requests per connection): every request's latency.
async fn load(
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    conns: usize,
    total: usize,
    rate: u64,
) -> Vec<Duration> {
    let per_conn = total / conns;
    let interval = Duration::from_micros(1_000_000 * conns as u64 / rate);
    let mut tasks = Vec::new();
    for c in 0..conns {
        let tls = tls.clone();
        tasks.push(tokio::spawn(async move {
            // Spread the connections' first requests over one interval.
            tokio::time::sleep(interval * c as u32 / conns as u32).await;
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            tcp.set_nodelay(true).expect("nodelay");
            let mut send = match tls {
                Some(config) => {
                    let name = ServerName::try_from(HOST).expect("name");
                    let s = tokio_rustls::TlsConnector::from(config)
                        .connect(name, tcp)
                        .await
                        .expect("handshake");
                    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
                        .await
                        .expect("http1");
                    tokio::spawn(conn);
                    send
                }
                None => {
                    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                        .await
                        .expect("http1");
                    tokio::spawn(conn);
                    send
                }
            };
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut lat = Vec::with_capacity(per_conn);
            for i in 0..per_conn + 5 {
                tick.tick().await;
                let req = http::Request::get("/")
                    .header("host", HOST)
                    .body(Empty::<Bytes>::new())
                    .expect("request");
                let started = Instant::now();
                send.ready().await.expect("ready");
                let resp = send.send_request(req).await.expect("response");
                assert_eq!(resp.status(), 200);
                resp.into_body().collect().await.expect("body");
                if i >= 5 {
                    lat.push(started.elapsed());
                }
            }
            lat
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await.expect("load task"));
    }
    all.sort();
    all
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

#[test]
#[ignore = "benchmark: run by scripts/bench-proxy"]
fn bench_added_latency() {
    let env_num = |k: &str, d: u64| -> u64 {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let total = env_num("BENCH_REQUESTS", 4000) as usize;
    let rate = env_num("BENCH_RATE", 1000).max(1);
    let rounds = env_num("BENCH_ROUNDS", 2);

    // One certificate for the proxy (files) and the direct TLS backend.
    let ca = Ca::new();
    let params = CertificateParams::new(vec![HOST.to_string()]).expect("params");
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca.issuer).expect("cert");
    let dir = tempfile::tempdir().expect("temp");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).expect("write");
    std::fs::write(&key_path, key.serialize_pem()).expect("write");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("server config");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.der().to_vec()))
        .expect("root");
    let mut client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let client_config = Arc::new(client_config);

    let backends = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("backend runtime");
    let plain = backend(&backends, None);
    let tls_backend = backend(&backends, Some(Arc::new(server_config)));

    let proxy = Proxy::start();
    let target = format!("--target={plain}");
    let (c, k) = (
        format!("--tls-certificate-path={}", cert_path.display()),
        format!("--tls-private-key-path={}", key_path.display()),
    );
    // Kamal's default deploy flags (buffering on), TLS with the files, no redirect so plain
    // HTTP is served too.
    proxy.ok(&deploy_args(
        "bench",
        &target,
        &[
            "--host=bench.test",
            "--tls",
            &c,
            &k,
            "--tls-redirect=false",
            "--buffer-requests",
            "--buffer-responses",
        ],
    ));

    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    println!(
        "{total} requests per run at {rate} requests/s in all, {rounds} rounds; build: {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!("| protocol | connections | round | direct p50 | proxy p50 | added p50 | direct p99 | proxy p99 | added p99 |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, direct_port, proxy_port, tls) in [
        ("HTTP/1.1", plain.port(), proxy.port, None),
        (
            "TLS (HTTP/1.1, keep-alive)",
            tls_backend.port(),
            proxy.https_port,
            Some(Arc::clone(&client_config)),
        ),
    ] {
        for conns in [1usize, 16, 64] {
            // Warm both paths, then alternate direct and proxied runs; every round is reported.
            client.block_on(load(direct_port, tls.clone(), conns, conns * 20, rate));
            client.block_on(load(proxy_port, tls.clone(), conns, conns * 20, rate));
            for round in 1..=rounds {
                let d = client.block_on(load(direct_port, tls.clone(), conns, total, rate));
                let p = client.block_on(load(proxy_port, tls.clone(), conns, total, rate));
                let (d50, p50, d99, p99) = (
                    percentile(&d, 0.5),
                    percentile(&p, 0.5),
                    percentile(&d, 0.99),
                    percentile(&p, 0.99),
                );
                println!(
                    "| {name} | {conns} | {round} | {d50:.3} ms | {p50:.3} ms | {:+.3} ms | {d99:.3} ms | {p99:.3} ms | {:+.3} ms |",
                    p50 - d50,
                    p99 - d99
                );
            }
        }
    }
    backends.shutdown_background();
}

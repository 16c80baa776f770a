//! The loopback harness the integration tests share: in-test backends and the real
//! `dray-proxy run` on free loopback ports, driven by its CLI.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};

/// A small HTTP server answering its version on every path (after `?ms=N` milliseconds), and
/// `/up` with 200 when healthy, 503 otherwise. Stopping it drops every connection at once,
/// like a stopped container.
pub struct Backend {
    pub addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Backend {
    pub fn start(version: &'static str, healthy: bool) -> Backend {
        Backend::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), version, healthy)
    }

    /// A backend on `addr` (a stopped backend's, to bring it back).
    pub fn start_on(addr: SocketAddr, version: &'static str, healthy: bool) -> Backend {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("backend runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .expect("bind backend");
        let addr = listener.local_addr().expect("backend addr");
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| async move {
                            let status = if req.uri().path() == "/up" && !healthy {
                                503
                            } else {
                                200
                            };
                            let ms: u64 = req
                                .uri()
                                .query()
                                .and_then(|q| q.strip_prefix("ms="))
                                .and_then(|n| n.parse().ok())
                                .unwrap_or(0);
                            if ms > 0 {
                                tokio::time::sleep(Duration::from_millis(ms)).await;
                            }
                            let body = format!("{version} {}", req.uri().path());
                            let seen = |k: &str| {
                                req.headers()
                                    .get(k)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_string()
                            };
                            let host = seen("x-forwarded-host");
                            let proto = seen("x-forwarded-proto");
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .header("x-seen-forwarded-host", host)
                                    .header("x-seen-forwarded-proto", proto)
                                    .body(Full::new(Bytes::from(body)))
                                    .expect("response"),
                            )
                        },
                    );
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Backend {
            addr,
            runtime: Some(runtime),
        }
    }

    pub fn target(&self) -> String {
        format!("--target={}", self.addr)
    }

    pub fn stop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `dray-proxy run` process with its own port, state directory and control socket.
pub struct Proxy {
    pub dir: PathBuf,
    pub port: u16,
    pub https_port: u16,
    /// Extra environment of the `run` process (and the CLI).
    pub env: Vec<(String, String)>,
    /// Extra flags of `run`.
    pub run_args: Vec<String>,
    /// The binary run (and used as the CLI): the built one unless a test copies it.
    pub binary: PathBuf,
    child: Option<Child>,
    _temp: tempfile::TempDir,
}

/// A port free on 127.0.0.1 now, for a proxy to listen on once it starts.
///
/// Taken from below the kernel's ephemeral range, not from port 0: a port the kernel hands out
/// for `:0` is one it also hands out as the source port of outgoing connections, and the tests
/// running in parallel make many, so one of them could take it before the proxy binds it (CI
/// saw `cannot listen on 127.0.0.1:40171: Address already in use`). Each test process starts
/// at its own place in the range (spread by pid) and walks it, so two processes choosing at the
/// same moment do not pick the same port.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let low = ephemeral_low.saturating_sub(12_000).max(1024);
    let span = ephemeral_low.saturating_sub(low).max(1);
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let Ok(port) = u16::try_from(low + offset) else {
            continue;
        };
        if StdListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {low}..{ephemeral_low}");
}

impl Proxy {
    pub fn start() -> Proxy {
        let mut p = Proxy::new();
        p.spawn();
        p
    }

    /// A proxy not yet running (`spawn` it), to set its environment first.
    pub fn new() -> Proxy {
        let temp = tempfile::tempdir().expect("temp dir");
        Proxy {
            dir: temp.path().to_path_buf(),
            port: free_port(),
            https_port: free_port(),
            env: Vec::new(),
            run_args: Vec::new(),
            binary: PathBuf::from(env!("CARGO_BIN_EXE_dray-proxy")),
            child: None,
            _temp: temp,
        }
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("KAMAL_PROXY_SOCKET", self.dir.join("kamal-proxy.sock"))
            .env("DRAY_PROXY_BIND", "127.0.0.1")
            .env_remove("DEBUG")
            .env_remove("HTTP_PORT")
            .env_remove("HTTPS_PORT");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("proxy.log"))
            .expect("log file");
        let child = self
            .command()
            .args([
                "run",
                "--http-port",
                &self.port.to_string(),
                "--https-port",
                &self.https_port.to_string(),
            ])
            .args(&self.run_args)
            // Its own process group: the servers the supervisor starts (after an upgrade, the
            // new binary's) are in it too, and go with it when the test ends.
            .process_group(0)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn dray-proxy");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.dir.join("kamal-proxy.sock").exists()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("dray-proxy did not start:\n{}", self.log());
    }

    /// SIGTERM and wait: the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("dray-proxy ignored SIGTERM");
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run dray-proxy")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "dray-proxy {args:?} failed: {}\n--- proxy log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("proxy.log")).unwrap_or_default()
    }

    pub fn get(&self, host: &str, path: &str) -> (u16, String) {
        get(self.port, host, path)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // The whole group: the supervisor and every server it started.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One request, raw, on a fresh connection: status, head (status line and headers), body.
pub fn raw_request(port: u16, request: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect proxy");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request.as_bytes()).expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
    (status, head.to_string(), body.to_string())
}

/// One `GET` on a fresh connection: status and body.
pub fn get(port: u16, host: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect proxy");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
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

pub const FAST: [&str; 3] = [
    "--health-check-interval=100ms",
    "--deploy-timeout=3s",
    "--drain-timeout=5s",
];

pub fn deploy_args<'a>(service: &'a str, target: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["deploy", service, target];
    v.extend(FAST);
    v.extend(extra);
    v
}

/// A test CA issuing leaf certificates into files.
pub struct Ca {
    pub issuer: CertifiedIssuer<'static, KeyPair>,
    pub dir: tempfile::TempDir,
}

impl Ca {
    pub fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("ca key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("ca"),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A certificate for `hosts` in `<name>/cert.pem` and `<name>/key.pem`; its DER.
    pub fn issue(&self, name: &str, hosts: &[&str]) -> (PathBuf, PathBuf, Vec<u8>) {
        let params =
            CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
                .expect("leaf params");
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf");
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, cert.pem()).expect("write cert");
        std::fs::write(&k, key.serialize_pem()).expect("write key");
        (c, k, cert.der().to_vec())
    }
}

/// What an https request saw.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub alpn: Option<String>,
    pub cert: Vec<u8>,
    pub headers: http::HeaderMap,
}

/// One `GET path` over TLS to `port` with `sni`, `Host: host`, offering `alpn`, trusting `ca`.
pub fn https(
    port: u16,
    ca: &CertificateDer<'static>,
    sni: &str,
    host: &str,
    path: &str,
    alpn: &[&str],
) -> Result<Answer, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone()).map_err(|e| e.to_string())?;
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let name = ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
        let stream = tokio::time::timeout(
            Duration::from_secs(30),
            tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
        )
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| format!("handshake: {e}"))?;
        let (_, conn) = stream.get_ref();
        let negotiated = conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let cert = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let io = TokioIo::new(stream);
        let resp = if negotiated.as_deref() == Some("h2") {
            let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            let req = http::Request::get(format!("https://{host}{path}"))
                .body(Empty::<Bytes>::new())
                .map_err(|e| e.to_string())?;
            send.send_request(req).await.map_err(|e| e.to_string())?
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            let req = http::Request::get(path)
                .header("host", host)
                .body(Empty::<Bytes>::new())
                .map_err(|e| e.to_string())?;
            send.send_request(req).await.map_err(|e| e.to_string())?
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            alpn: negotiated,
            cert,
            headers,
        })
    })
}

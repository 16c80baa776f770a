//! ACME against pebble (Debian's `pebble`, an RFC 8555 test server) on loopback: a certificate
//! obtained on the first TLS request (HTTP-01 answered on the proxy's http port), kept in
//! kamal-proxy's cache layout so a restart does not issue again, and renewed when due.
//!
//! pebble's VA resolves every name to 127.0.0.1 through `pebble-challtestsrv`'s mock DNS and
//! validates on the proxy's http port. Without the `pebble` binaries the test says so and
//! passes, unless `DRAY_PROXY_REQUIRE_PEBBLE=1` (then it fails).

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use common::{deploy_args, free_port, https, raw_request, Backend, Ca, Proxy};

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn wait_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} did not start:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// pebble and its mock DNS, validating HTTP-01 on `http_port`: (pebble's directory URL, its
/// management port, the processes).
fn start_pebble(ca: &Ca, http_port: u16) -> (String, u16, Vec<Running>) {
    let dir = ca.dir.path();
    let (cert, key, _) = ca.issue("pebble", &["localhost", "127.0.0.1"]);
    let (acme_port, mgmt_port, dns_port, tls_port) =
        (free_port(), free_port(), free_port(), free_port());
    let config = format!(
        r#"{{"pebble": {{"listenAddress": "127.0.0.1:{acme_port}",
            "managementListenAddress": "127.0.0.1:{mgmt_port}",
            "certificate": "{}", "privateKey": "{}",
            "httpPort": {http_port}, "tlsPort": {tls_port},
            "ocspResponderURL": "", "externalAccountBindingRequired": false}}}}"#,
        cert.display(),
        key.display()
    );
    let config_path = dir.join("pebble-config.json");
    std::fs::write(&config_path, config).expect("pebble config");
    let log = |name: &str| std::fs::File::create(dir.join(name)).expect("log file");
    let dns = Command::new("pebble-challtestsrv")
        .args([
            "-dns01",
            &format!("127.0.0.1:{dns_port}"),
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-management",
            &format!("127.0.0.1:{}", free_port()),
            "-defaultIPv4",
            "127.0.0.1",
            "-defaultIPv6",
            "",
        ])
        .stdout(log("challtestsrv.log"))
        .stderr(log("challtestsrv.err"))
        .spawn()
        .expect("start pebble-challtestsrv");
    let dns = Running(dns);
    let pebble = Command::new("pebble")
        .args([
            "-config",
            &config_path.display().to_string(),
            "-dnsserver",
            &format!("127.0.0.1:{dns_port}"),
        ])
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdout(log("pebble.log"))
        .stderr(log("pebble.err"))
        .spawn()
        .expect("start pebble");
    let pebble = Running(pebble);
    wait_port(acme_port, "pebble", &dir.join("pebble.log"));
    wait_port(mgmt_port, "pebble management", &dir.join("pebble.log"));
    (
        format!("https://127.0.0.1:{acme_port}/dir"),
        mgmt_port,
        vec![pebble, dns],
    )
}

/// pebble's root (made anew at each start), which issued chains lead to.
fn pebble_root(ca: &Ca, mgmt_port: u16) -> CertificateDer<'static> {
    let r = https(
        mgmt_port,
        &ca.der(),
        "localhost",
        "localhost",
        "/roots/0",
        &[],
    )
    .expect("pebble root");
    assert_eq!(r.status, 200, "{}", r.body);
    CertificateDer::from_pem_slice(r.body.as_bytes()).expect("root pem")
}

#[test]
fn acme_certificates_are_issued_on_first_request_kept_and_renewed() {
    if !have("pebble") || !have("pebble-challtestsrv") {
        let required = std::env::var("DRAY_PROXY_REQUIRE_PEBBLE").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "pebble is not installed (apt-get install -y pebble)"
        );
        eprintln!("SKIPPED: ACME test needs pebble (apt-get install -y pebble)");
        return;
    }
    let ca = Ca::new();
    let mut proxy = Proxy::new();
    let ca_file = ca.dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.issuer.pem()).expect("ca file");
    proxy.env.push((
        "DRAY_PROXY_ACME_CA_CERTS".into(),
        ca_file.display().to_string(),
    ));
    let (directory, mgmt_port, _pebble) = start_pebble(&ca, proxy.port);
    proxy.spawn();
    let root = pebble_root(&ca, mgmt_port);

    let backend = Backend::start("v1", true);
    let target = backend.target();
    let dir_flag = format!("--tls-acme-directory={directory}");
    proxy.ok(&deploy_args(
        "app-web",
        &target,
        &["--host=app.test", "--tls", &dir_flag],
    ));
    // Plain HTTP is redirected, but for ACME challenges (an unknown token: 404).
    assert_eq!(proxy.get("app.test", "/").0, 301);
    let (status, head, _) = raw_request(
        proxy.port,
        "GET /.well-known/acme-challenge/nope HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 404, "{head}");

    // The first TLS request gets a certificate from pebble.
    let r = https(
        proxy.https_port,
        &root,
        "app.test",
        "app.test",
        "/x",
        &["h2"],
    )
    .unwrap_or_else(|e| panic!("first TLS request: {e}\n{}", proxy.log()));
    assert_eq!((r.status, r.body.as_str()), (200, "v1 /x"));
    let first = r.cert;
    // kamal-proxy's autocert layout: <state>/certs/<sha256(directory)>/{acme_account+key,host}.
    let certs = proxy.dir.join("config/kamal-proxy/certs");
    let scope = std::fs::read_dir(&certs)
        .expect("certs dir")
        .next()
        .expect("a scope")
        .expect("entry")
        .path();
    for file in ["acme_account+key", "app.test"] {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(scope.join(file)).expect(file);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
    }
    let cached = std::fs::read_to_string(scope.join("app.test")).expect("cached cert");
    assert!(
        cached.starts_with("-----BEGIN PRIVATE KEY-----"),
        "key first"
    );
    assert!(
        !proxy.log().contains(&cached[30..90]),
        "the key is never logged"
    );

    // A restart serves the same certificate from the cache: no new issuance.
    assert_eq!(proxy.terminate(), Some(0));
    proxy.spawn();
    let r = https(
        proxy.https_port,
        &root,
        "app.test",
        "app.test",
        "/",
        &["http/1.1"],
    )
    .expect("after restart");
    assert_eq!(r.cert, first);
    assert_eq!(proxy.log().matches("ACME: certificate issued").count(), 1);
    assert!(proxy.log().contains("ACME: certificate loaded from cache"));

    // Renewal: with every certificate due, the next check issues a new one.
    assert_eq!(proxy.terminate(), Some(0));
    proxy
        .env
        .push(("DRAY_PROXY_ACME_RENEW_BEFORE".into(), "876000h".into()));
    proxy
        .env
        .push(("DRAY_PROXY_ACME_RENEW_INTERVAL".into(), "500ms".into()));
    proxy.spawn();
    https(
        proxy.https_port,
        &root,
        "app.test",
        "app.test",
        "/",
        &["h2"],
    )
    .expect("loads");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = https(
            proxy.https_port,
            &root,
            "app.test",
            "app.test",
            "/",
            &["h2"],
        )
        .expect("during renewal");
        if r.cert != first {
            break;
        }
        assert!(Instant::now() < deadline, "not renewed:\n{}", proxy.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(proxy.log().contains("ACME: certificate renewed"));
}

/// A target answering `/allow?host=H` with 200 for hosts starting with `good`, else 403;
/// `od <path>` on other paths (and `/up`).
fn on_demand_backend(rt: &tokio::runtime::Runtime) -> std::net::SocketAddr {
    use bytes::Bytes;
    use http_body_util::Full;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let path = req.uri().path().to_string();
                        let host = req
                            .uri()
                            .query()
                            .unwrap_or("")
                            .split('&')
                            .find_map(|kv| kv.strip_prefix("host="))
                            .unwrap_or("")
                            .to_string();
                        let (status, body) = if path == "/allow" {
                            if host.starts_with("good") {
                                (200, "yes".to_string())
                            } else {
                                (403, format!("no certificate for {host}"))
                            }
                        } else {
                            (200, format!("od {path}"))
                        };
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from(body)))
                                .expect("response"),
                        )
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[test]
fn tls_on_demand_url_decides_which_hosts_get_certificates() {
    if !have("pebble") || !have("pebble-challtestsrv") {
        let required = std::env::var("DRAY_PROXY_REQUIRE_PEBBLE").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "pebble is not installed (apt-get install -y pebble)"
        );
        eprintln!("SKIPPED: ACME test needs pebble (apt-get install -y pebble)");
        return;
    }
    let ca = Ca::new();
    let mut proxy = Proxy::new();
    let ca_file = ca.dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.issuer.pem()).expect("ca file");
    proxy.env.push((
        "DRAY_PROXY_ACME_CA_CERTS".into(),
        ca_file.display().to_string(),
    ));
    let (directory, mgmt_port, _pebble) = start_pebble(&ca, proxy.port);
    proxy.spawn();
    let root = pebble_root(&ca, mgmt_port);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let app = on_demand_backend(&rt);
    let target = format!("--target={app}");
    let dir_flag = format!("--tls-acme-directory={directory}");

    // kamal-proxy's rules: no hosts with an on-demand URL, and TLS needed.
    let out = proxy.cli(&["deploy", "od", &target, "--tls-on-demand-url=/allow"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS must be enabled"));
    let out = proxy.cli(&[
        "deploy",
        "od",
        &target,
        "--tls",
        "--host=a.test",
        "--tls-on-demand-url=/allow",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot set hosts"));

    // A path: asked of the service's own target.
    proxy.ok(&deploy_args(
        "od",
        &target,
        &["--tls", "--tls-on-demand-url=/allow", &dir_flag],
    ));
    let r = https(
        proxy.https_port,
        &root,
        "good-1.test",
        "good-1.test",
        "/x",
        &["h2"],
    )
    .unwrap_or_else(|e| panic!("approved host: {e}\n{}", proxy.log()));
    assert_eq!((r.status, r.body.as_str()), (200, "od /x"));
    let denied = https(
        proxy.https_port,
        &root,
        "bad.test",
        "bad.test",
        "/",
        &["h2"],
    );
    assert!(denied.is_err(), "a denied host got a certificate");
    assert!(
        proxy
            .log()
            .contains("bad.test is not allowed to get a certificate (status: 403"),
        "{}",
        proxy.log()
    );

    // An absolute URL (the endpoint's other query parameters kept).
    let external = format!("--tls-on-demand-url=http://{app}/allow?from=proxy");
    proxy.ok(&deploy_args(
        "od",
        &target,
        &["--tls", &external, &dir_flag],
    ));
    let r = https(
        proxy.https_port,
        &root,
        "good-2.test",
        "good-2.test",
        "/",
        &["http/1.1"],
    )
    .unwrap_or_else(|e| panic!("approved host: {e}\n{}", proxy.log()));
    assert_eq!(r.status, 200);
    assert!(https(
        proxy.https_port,
        &root,
        "evil.test",
        "evil.test",
        "/",
        &["h2"]
    )
    .is_err());
    // A host with a certificate is not asked again (its certificate is cached).
    let asked = proxy
        .log()
        .matches("TLS on-demand check denied host")
        .count();
    https(
        proxy.https_port,
        &root,
        "good-1.test",
        "good-1.test",
        "/",
        &["h2"],
    )
    .expect("cached certificate");
    assert_eq!(
        proxy
            .log()
            .matches("TLS on-demand check denied host")
            .count(),
        asked
    );
    assert_eq!(proxy.log().matches("ACME: certificate issued").count(), 2);
    rt.shutdown_background();
}

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

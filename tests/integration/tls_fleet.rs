//! TLS, WebSockets, buffering limits and metrics through `dray deploy` on the fleet (issue
//! #18's acceptance), on the first host's proxy:
//!
//! - `proxy.ssl: true` with `x-dray: proxy: acme_directory` / `acme_ca_certs` gets a
//!   certificate from pebble (Debian's RFC 8555 test CA, standing in for Let's Encrypt, which
//!   cannot be reached here), started by the test on free ports: its ACME directory listens on
//!   the host's `kamal` bridge gateway (where the proxy container reaches this machine), with a
//!   TLS certificate from a CA made here (the file `acme_ca_certs` names); its VA resolves every
//!   name to the first host through `pebble-challtestsrv`'s mock DNS and validates HTTP-01 on
//!   port 80, which that host's proxy publishes.
//! - A WebSocket echo (the example app with a busybox `nc -ll -e` handler doing RFC 6455's
//!   upgrade handshake, then echoing each line prefixed with its version; no frames, which the
//!   proxy never looks into) stays on the old version across a deploy until the client closes.
//! - `buffering.max_response_body` and `proxy.run.metrics_port`.
//!
//! Both tests change the first host's proxy (`proxy reboot`: another image, a metrics port), so
//! they hold the fleet's proxies alone and put the standard proxy back at the end, even on
//! failure, without their routes and certificates.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::{exclusive_fleet, git, Project};
use crate::support::write;

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    crate::support::free_local_port()
}

fn sh(script: &str) -> std::process::Output {
    Command::new("sh")
        .args(["-c", script])
        .output()
        .expect("run sh")
}

fn sh_ok(script: &str) -> String {
    let out = sh(script);
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The deploy.yml of the tests: the web role on the first host only, no workers.
fn one_web_host(d: String) -> String {
    let edited = d.replace(
        "      - 127.0.0.11\n      - 127.0.0.12\n  workers:\n    hosts:\n      - 127.0.0.13\n    cmd: /app/start worker\n",
        "      - 127.0.0.11\n",
    );
    assert_ne!(edited, d, "deploy.yml's servers changed");
    edited
}

fn replaced(d: &str, from: &str, to: &str) -> String {
    let edited = d.replace(from, to);
    assert_ne!(edited, d, "deploy.yml has no {from:?}");
    edited
}

/// Puts the first host's proxy back as every other test expects it when dropped: the
/// standard image and settings (`proxy reboot` of a project with the standard deploy.yml),
/// after removing `route` and the ACME `scope` directory from its state.
struct StandardProxy<'a> {
    fleet: &'a Fleet,
    host: String,
    restore: Project,
    route: String,
    scope: Option<String>,
}

impl Drop for StandardProxy<'_> {
    fn drop(&mut self) {
        let mut script = format!(
            "docker exec kamal-proxy kamal-proxy remove {} >/dev/null 2>&1",
            self.route
        );
        if let Some(scope) = &self.scope {
            // dray-proxy's (and kamal-proxy's) ACME cache: certs/<sha256 of the directory URL>.
            use sha2::Digest;
            let hash: String = sha2::Sha256::digest(scope.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            script.push_str(&format!(
                "; docker exec kamal-proxy rm -rf /home/kamal-proxy/.config/kamal-proxy/certs/{hash}"
            ));
        }
        let _ = self.fleet.ssh(&self.host, &script);
        let (code, out, err) = self.restore.dray(&["proxy", "reboot", "-y"]);
        if code != 0 {
            eprintln!(
                "could not put the standard proxy back on {}:\n{out}\n{err}",
                self.host
            );
        }
        self.restore.cleanup_all(self.fleet);
    }
}

fn standard_proxy<'a>(
    fleet: &'a Fleet,
    project: &Project,
    scope: Option<String>,
) -> StandardProxy<'a> {
    StandardProxy {
        fleet,
        host: fleet.require_hosts(1)[0].clone(),
        restore: Project::unguarded(fleet, &unique_name("e2e-tlsrestore"), one_web_host),
        route: format!("{}-web", project.service),
        scope,
    }
}

/// A CA made here and pebble's TLS certificate from it, for `ip` and loopback:
/// (CA PEM path, certificate path, key path).
fn pebble_tls(dir: &Path, ip: &str) -> (PathBuf, PathBuf, PathBuf) {
    let d = dir.display();
    sh_ok(&format!(
        "cd {d} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
         -keyout ca.key -out ca.pem -subj /CN=tlsfleet-ca 2>/dev/null && \
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout pebble.key \
         -out pebble.csr -subj /CN=pebble 2>/dev/null && \
         printf 'subjectAltName=IP:{ip},IP:127.0.0.1,DNS:localhost\\n' > san.ext && \
         openssl x509 -req -in pebble.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
         -extfile san.ext -out pebble.pem 2>/dev/null"
    ));
    (
        dir.join("ca.pem"),
        dir.join("pebble.pem"),
        dir.join("pebble.key"),
    )
}

/// pebble and its mock DNS (every name → `validate_ip`, HTTP-01 on port 80), its directory on
/// `listen_ip`.
struct Pebble {
    directory: String,
    mgmt_port: u16,
    ca: PathBuf,
    dir: PathBuf,
    _procs: Vec<Running>,
}

impl Pebble {
    fn start(dir: &Path, listen_ip: &str, validate_ip: &str) -> Pebble {
        let (ca, cert, key) = pebble_tls(dir, listen_ip);
        let (acme_port, mgmt_port, dns_port, tls_port) =
            (free_port(), free_port(), free_port(), free_port());
        let config = format!(
            r#"{{"pebble": {{"listenAddress": "{listen_ip}:{acme_port}",
                "managementListenAddress": "127.0.0.1:{mgmt_port}",
                "certificate": "{}", "privateKey": "{}",
                "httpPort": 80, "tlsPort": {tls_port},
                "ocspResponderURL": "", "externalAccountBindingRequired": false}}}}"#,
            cert.display(),
            key.display()
        );
        let config_path = dir.join("pebble-config.json");
        std::fs::write(&config_path, config).expect("pebble config");
        let log = |name: &str| std::fs::File::create(dir.join(name)).expect("log file");
        let dns = Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{}", free_port())])
            .args(["-defaultIPv4", validate_ip, "-defaultIPv6", ""])
            .stdout(log("challtestsrv.log"))
            .stderr(log("challtestsrv.err"))
            .spawn()
            .expect("start pebble-challtestsrv (apt-get install pebble)");
        let dns = Running(dns);
        let pebble = Command::new("pebble")
            .args(["-config", &config_path.display().to_string()])
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .expect("start pebble (apt-get install pebble)");
        let pebble = Running(pebble);
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect((listen_ip, acme_port)).is_err()
            || TcpStream::connect(("127.0.0.1", mgmt_port)).is_err()
        {
            assert!(Instant::now() < deadline, "pebble did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Pebble {
            directory: format!("https://{listen_ip}:{acme_port}/dir"),
            mgmt_port,
            ca,
            dir: dir.to_path_buf(),
            _procs: vec![pebble, dns],
        }
    }

    /// pebble's root (made anew at each start), which the certificates it issues lead to.
    fn root(&self) -> PathBuf {
        let path = self.dir.join("pebble-root.pem");
        sh_ok(&format!(
            "curl -sS -m 5 --cacert {} https://127.0.0.1:{}/roots/0 > {}",
            self.ca.display(),
            self.mgmt_port,
            path.display()
        ));
        path
    }

    /// pebble's log (it logs each request it serves).
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pebble.log")).unwrap_or_default()
            + &std::fs::read_to_string(self.dir.join("pebble.err")).unwrap_or_default()
    }

    /// The new orders pebble has taken.
    fn orders(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("POST /order-plz"))
            .count()
    }
}

/// `GET path` over https for `name` through `ip`'s proxy, trusting only `root`.
fn https_get(ip: &str, name: &str, path: &str, root: &Path) -> Result<String, String> {
    let out = Command::new("curl")
        .args(["-sS", "-m", "30", "--fail", "--cacert"])
        .arg(root)
        .arg("--resolve")
        .arg(format!("{name}:443:{ip}"))
        .arg(format!("https://{name}{path}"))
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The SHA-256 fingerprint of the certificate `ip`'s proxy serves for `name`.
fn served_fingerprint(ip: &str, name: &str) -> String {
    sh_ok(&format!(
        "openssl s_client -connect {ip}:443 -servername {name} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
    ))
    .trim()
    .to_string()
}

/// `(status, Location header, body)` of a plain-HTTP `GET`.
fn http_get(ip: &str, name: &str, path: &str) -> (u16, String, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "10",
            "-o",
            "-",
            "-w",
            "\n%{http_code} %{redirect_url}",
            "-H",
        ])
        .arg(format!("Host: {name}"))
        .arg(format!("http://{ip}{path}"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let (status, location) = tail.split_once(' ').unwrap_or((tail, ""));
    (
        status.parse().unwrap_or(0),
        location.to_string(),
        body.to_string(),
    )
}

/// What one request got (the version, or why it failed) and how long it took.
type Sample = (Result<String, String>, Duration);

/// A bounded load over TLS: `threads` clients, each sending sequential `GET /version`
/// requests (a new connection each, curl) until stopped or `max` requests.
struct TlsLoad {
    stop: Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<Vec<Sample>>>,
}

impl TlsLoad {
    fn start(ip: &str, name: &str, root: &Path, threads: usize, max: usize) -> TlsLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..threads)
            .map(|_| {
                let (ip, name, root, stop) = (
                    ip.to_string(),
                    name.to_string(),
                    root.to_path_buf(),
                    stop.clone(),
                );
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    let deadline = Instant::now() + Duration::from_secs(300);
                    while !stop.load(Ordering::Relaxed)
                        && seen.len() < max
                        && Instant::now() < deadline
                    {
                        let t = Instant::now();
                        let r = https_get(&ip, &name, "/version", &root);
                        seen.push((r, t.elapsed()));
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    seen
                })
            })
            .collect();
        TlsLoad { stop, handles }
    }

    fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    }
}

fn switches(seen: &[Sample]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for v in seen.iter().filter_map(|(r, _)| r.as_ref().ok()) {
        if order.last() != Some(v) {
            order.push(v.clone());
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

/// The `kamal` network's gateway on `host`: where its containers reach this machine.
fn kamal_gateway(fleet: &Fleet, host: &str) -> String {
    fleet
        .ssh_ok(
            host,
            "docker network create kamal >/dev/null 2>&1; docker network inspect kamal --format '{{(index .IPAM.Config 0).Gateway}}'",
        )
        .trim()
        .to_string()
}

#[test]
fn acme_directory_through_deploy_serves_https_keeps_its_certificate_and_loses_no_request() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let web = fleet.require_hosts(1)[0].clone();
    let tmp = tempfile::tempdir().expect("tempdir");
    let gateway = kamal_gateway(fleet, &web);
    let pebble = Pebble::start(tmp.path(), &gateway, &web);
    let service = unique_name("e2e-acme");
    let name = format!("{service}.test");
    let directory = pebble.directory.clone();
    let project = Project::unguarded(fleet, &service, |d| {
        let d = one_web_host(d);
        let d = replaced(
            &d,
            &format!("  host: {name}\n"),
            &format!("  host: {name}\n  ssl: true\n"),
        );
        // The fleet's standard dray-proxy image (v0.9.2, built from this tree) serves
        // `--tls-acme-ca-certs`.
        format!("{d}\nx-dray:\n  proxy:\n    acme_directory: {directory}\n    acme_ca_certs: config/acme-ca.pem\n")
    });
    let _standard = standard_proxy(fleet, &project, Some(directory.clone()));
    std::fs::copy(&pebble.ca, project.path().join("config/acme-ca.pem")).expect("ca");
    git(project.path(), &["add", "-A"]);
    git(project.path(), &["commit", "-qm", "ACME CA"]);

    // The dry run shows the flags and the upload.
    let plan = project.dray_ok(&["deploy", "--dry-run", "--version", "v1"]);
    assert!(plan.contains(&format!("--tls --tls-acme-directory={directory} --tls-acme-ca-certs=/home/kamal-proxy/.apps-config/{service}/acme/ca.pem")), "{plan}");
    assert!(
        plan.contains(&format!("mkdir -p .kamal/proxy/apps-config/{service}/acme")),
        "{plan}"
    );

    // The first host's proxy runs the image with --tls-acme-ca-certs (routes kept).
    project.dray_ok(&["proxy", "reboot", "-y"]);
    let t = Instant::now();
    project.dray_ok(&["deploy", "--version", "v1"]);
    let deploy_time = t.elapsed();
    let on_host = fleet
        .read_file(
            &web,
            &format!("~/.kamal/proxy/apps-config/{service}/acme/ca.pem"),
        )
        .unwrap_or_default();
    assert!(on_host.contains("BEGIN CERTIFICATE"), "{on_host}");
    assert_eq!(pebble.orders(), 0, "no order before the first TLS request");

    // The first https request gets the certificate from pebble (trusting only pebble's root).
    let root = pebble.root();
    let t = Instant::now();
    let first = https_get(&web, &name, "/version", &root);
    let issue_time = t.elapsed();
    assert_eq!(
        first,
        Ok("v1".to_string()),
        "pebble:\n{}\nproxy:\n{}",
        pebble.log(),
        fleet
            .ssh(&web, "docker logs --tail 30 kamal-proxy 2>&1")
            .stdout
            .escape_ascii()
    );
    assert_eq!(pebble.orders(), 1, "{}", pebble.log());
    let fingerprint = served_fingerprint(&web, &name);
    assert!(fingerprint.contains("Fingerprint"), "{fingerprint}");
    // Plain HTTP is redirected to https.
    let (status, location, _) = http_get(&web, &name, "/version");
    assert_eq!(
        (status, location.as_str()),
        (301, format!("https://{name}/version").as_str())
    );

    // A proxy restart serves the same certificate, from its cache, without a new order.
    fleet.ssh_ok(&web, "docker restart kamal-proxy >/dev/null");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut after = https_get(&web, &name, "/version", &root);
    while after.is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        after = https_get(&web, &name, "/version", &root);
    }
    assert_eq!(after, Ok("v1".to_string()));
    assert_eq!(served_fingerprint(&web, &name), fingerprint);
    assert_eq!(pebble.orders(), 1, "{}", pebble.log());

    // deploy → deploy → rollback under a bounded load over TLS: no request lost.
    let load = TlsLoad::start(&web, &name, &root, 2, 5_000);
    std::thread::sleep(Duration::from_millis(500));
    project.dray_ok(&["deploy", "--version", "v2"]);
    std::thread::sleep(Duration::from_millis(500));
    project.dray_ok(&["deploy", "--version", "v3"]);
    std::thread::sleep(Duration::from_millis(500));
    project.dray_ok(&["rollback", "v2"]);
    std::thread::sleep(Duration::from_millis(500));
    let seen = load.finish();
    let failed: Vec<&String> = seen.iter().filter_map(|(r, _)| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {:?}",
        failed.len(),
        seen.len(),
        &failed[..failed.len().min(5)]
    );
    let order = switches(&seen);
    assert_eq!(order.first().map(String::as_str), Some("v1"), "{order:?}");
    assert_eq!(order.last().map(String::as_str), Some("v2"), "{order:?}");
    assert!(order.iter().any(|v| v == "v3"), "{order:?}");
    assert_eq!(pebble.orders(), 1, "deploys reuse the certificate");
    let durations: Vec<Duration> = seen.iter().map(|(_, d)| *d).collect();
    println!(
        "acme: deploy {deploy_time:?}, first https request (order, HTTP-01, issue) {issue_time:?}; \
         TLS load over deploy → deploy → rollback: {} requests, 0 failed, p50 {:?}, p99 {:?}",
        seen.len(),
        percentile(durations.clone(), 0.5),
        percentile(durations, 0.99)
    );
    project.cleanup_all(fleet);
}

/// The example app's web server replaced by `example/serve` under busybox `nc -ll -e`.
fn websocket_app(project: &Project) {
    let serve = include_str!("tls_fleet_serve.sh");
    let path = project.path().join("example/serve");
    write(&path, serve);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let start_path = project.path().join("example/start");
    let start = std::fs::read_to_string(&start_path).expect("start");
    write(
        &start_path,
        &replaced(
            &start,
            "httpd -f -p 80 -h \"$root\" &",
            "nc -ll -p 80 -e /app/serve &",
        ),
    );
    let docker_path = project.path().join("Dockerfile");
    let dockerfile = std::fs::read_to_string(&docker_path).expect("Dockerfile");
    write(
        &docker_path,
        &replaced(
            &dockerfile,
            "COPY example/start /app/start\n",
            "COPY example/start /app/start\nCOPY example/serve /app/serve\n",
        ),
    );
    git(project.path(), &["add", "-A"]);
    git(project.path(), &["commit", "-qm", "websocket echo"]);
}

/// A WebSocket through `ip`'s proxy: the upgrade answered with RFC 6455's accept for the RFC's
/// sample key, then lines both ways.
struct WebSocket {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl WebSocket {
    fn open(ip: &str, name: &str) -> WebSocket {
        let mut stream = TcpStream::connect((ip, 80)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            stream,
            "GET /cable HTTP/1.1\r\nHost: {name}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        .expect("upgrade request");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).expect("response head") == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line.to_ascii_lowercase());
        }
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(
            head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "{head}"
        );
        WebSocket { stream, reader }
    }

    fn echo(&mut self, message: &str) -> String {
        writeln!(self.stream, "{message}").expect("send");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("echo");
        line.trim().to_string()
    }
}

fn metric(text: &str, service: &str, status: u16) -> u64 {
    let series = format!(
        "kamal_proxy_http_requests_total{{method=\"GET\",service=\"{service}\",status=\"{status}\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn websocket_survives_a_deploy_until_closed_and_limits_and_metrics_answer() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let web = fleet.require_hosts(1)[0].clone();
    let service = unique_name("e2e-ws");
    let name = format!("{service}.test");
    let project = Project::unguarded(fleet, &service, |d| {
        let d = one_web_host(d);
        let d = replaced(
            &d,
            &format!("  host: {name}\n"),
            &format!("  host: {name}\n  buffering:\n    max_response_body: 100000\n"),
        );
        let d = replaced(
            &d,
            "    version: v0.9.2\n",
            "    version: v0.9.2\n    metrics_port: 9090\n",
        );
        format!("{d}\ndrain_timeout: 40\n")
    });
    let _standard = standard_proxy(fleet, &project, None);
    websocket_app(&project);
    project.dray_ok(&["proxy", "reboot", "-y"]);
    project.dray_ok(&["deploy", "--version", "v1"]);
    assert_eq!(http_get(&web, &name, "/version").0, 200);

    // buffering.max_response_body: a longer response gets 500, as from kamal-proxy.
    let (status, _, body) = http_get(&web, &name, "/bytes/1000");
    assert_eq!((status, body.len()), (200, 1000));
    let (status, _, _) = http_get(&web, &name, "/bytes/200000");
    assert_eq!(status, 500);

    // proxy.run.metrics_port: /metrics counts the requests.
    let metrics = || {
        fleet.ssh_ok(
            &web,
            "docker exec kamal-proxy wget -qO- http://127.0.0.1:9090/metrics",
        )
    };
    let route = format!("{service}-web");
    let before = metrics();
    println!(
        "metrics: the oversized response counted as 500: {}",
        metric(&before, &route, 500)
    );
    for _ in 0..20 {
        assert_eq!(http_get(&web, &name, "/version").0, 200);
    }
    let after = metrics();
    assert!(
        metric(&after, &route, 200) >= metric(&before, &route, 200) + 20,
        "{before}\n---\n{after}"
    );

    // A WebSocket opened on v1 stays on v1 across the deploy of v2 (new requests go to v2),
    // and the deploy waits for it (the old target drains) until the client closes it.
    let mut ws = WebSocket::open(&web, &name);
    assert_eq!(ws.echo("one"), "v1 one");
    let done = AtomicBool::new(false);
    let closed_at = std::sync::Mutex::new(None::<Instant>);
    std::thread::scope(|s| {
        let deploy = s.spawn(|| {
            let r = project.dray(&["deploy", "--version", "v2"]);
            done.store(true, Ordering::SeqCst);
            (r, Instant::now())
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while http_get(&web, &name, "/version").2.trim() != "v2" {
            assert!(Instant::now() < deadline, "v2 never served");
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_secs(2));
        assert!(
            !done.load(Ordering::SeqCst),
            "the deploy did not wait for the WebSocket"
        );
        assert_eq!(ws.echo("two"), "v1 two");
        let _ = ws.stream.shutdown(std::net::Shutdown::Both);
        drop(ws);
        if let Ok(mut c) = closed_at.lock() {
            *c = Some(Instant::now());
        }
        let ((code, out, err), finished) = deploy.join().expect("deploy thread");
        assert_eq!(code, 0, "{out}\n{err}");
        let closed = closed_at.lock().ok().and_then(|c| *c).expect("closed");
        let drain = finished.duration_since(closed);
        assert!(
            drain < Duration::from_secs(20),
            "the deploy ended {drain:?} after the close"
        );
        println!("websocket: the deploy ended {drain:?} after the client closed");
    });
    assert_eq!(http_get(&web, &name, "/version").2.trim(), "v2");
    let mut ws = WebSocket::open(&web, &name);
    assert_eq!(ws.echo("three"), "v2 three");
    let mut rest = Vec::new();
    let _ = ws.stream.shutdown(std::net::Shutdown::Write);
    let _ = ws.reader.read_to_end(&mut rest);
    project.cleanup_all(fleet);
}

//! `kamal-proxy supervisor upgrade` on loopback: binary A (a copy of the built dray-proxy)
//! serving under concurrent keep-alive load hands its sockets over to binary B (another copy):
//! no request fails, the routes stay, B's process serves afterwards; a replacement that cannot
//! serve leaves A serving.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use common::{deploy_args, Backend, Proxy};

/// A copy of the built binary at `dir/name` (its own file, as an image's would be).
///
/// `cp` writes it, not this process: a test thread that forks while this process holds the
/// copy open for writing would hand that descriptor to its child until the child's `exec`, and
/// executing the copy in that window fails with "Text file busy" (ETXTBSY). Once `cp` has
/// exited, no process holds the copy open for writing.
fn copy_binary(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let status = std::process::Command::new("cp")
        .arg(env!("CARGO_BIN_EXE_dray-proxy"))
        .arg(&path)
        .status()
        .expect("run cp");
    assert!(status.success(), "cp of the binary failed: {status}");
    path
}

/// A proxy running binary A from its own directory.
fn proxy_on_copy() -> Proxy {
    let mut proxy = Proxy::new();
    let dir = proxy.dir.join("a");
    std::fs::create_dir_all(&dir).expect("dir");
    proxy.binary = copy_binary(&dir, "dray-proxy");
    proxy.spawn();
    proxy
}

/// `supervisor status`'s server pid.
fn server_pid(proxy: &Proxy) -> u32 {
    let status = proxy.ok(&["supervisor", "status"]);
    status
        .lines()
        .find_map(|l| l.strip_prefix("server: pid "))
        .and_then(|l| l.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no server pid in {status:?}"))
}

/// `workers` keep-alive clients sending requests until `total` were sent; every tenth of
/// worker 0's is slow (in flight across the handover). (ok, failed, first failures).
fn spawn_load(
    port: u16,
    workers: usize,
    total: usize,
    done: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<(usize, usize, Vec<String>)> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("loader runtime");
        rt.block_on(async move {
            let client: Client<_, Empty<Bytes>> =
                Client::builder(TokioExecutor::new()).build_http();
            let sent = Arc::new(AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for w in 0..workers {
                let (client, done, sent) = (client.clone(), Arc::clone(&done), Arc::clone(&sent));
                tasks.push(tokio::spawn(async move {
                    let (mut ok, mut failed, mut why) = (0, 0, Vec::new());
                    loop {
                        let i = sent.fetch_add(1, Ordering::SeqCst);
                        if i >= total {
                            break;
                        }
                        let q = if w == 0 && i % 10 == 0 { "?ms=300" } else { "" };
                        let uri: hyper::Uri = format!("http://127.0.0.1:{port}/load{q}")
                            .parse()
                            .expect("uri");
                        let r = match client.get(uri).await {
                            Ok(resp) if resp.status() == 200 => resp
                                .into_body()
                                .collect()
                                .await
                                .map(|_| ())
                                .map_err(|e| format!("body: {e}")),
                            Ok(resp) => Err(format!("status {}", resp.status())),
                            Err(e) => Err(format!("{e:?}")),
                        };
                        match r {
                            Ok(()) => ok += 1,
                            Err(e) => {
                                failed += 1;
                                if why.len() < 5 {
                                    why.push(e);
                                }
                            }
                        }
                        done.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    (ok, failed, why)
                }));
            }
            let (mut ok, mut failed, mut why) = (0, 0, Vec::new());
            for t in tasks {
                let (o, f, w) = t.await.expect("loader task");
                ok += o;
                failed += f;
                why.extend(w);
            }
            (ok, failed, why)
        })
    })
}

fn wait_for(done: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "loader stalled");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn an_upgrade_under_load_fails_no_request_keeps_the_routes_and_b_serves() {
    let proxy = proxy_on_copy();
    let v1 = Backend::start("v1", true);
    proxy.ok(&deploy_args("app-web", &v1.target(), &[]));
    proxy.ok(&deploy_args(
        "other-web",
        &v1.target(),
        &["--host=other.test"],
    ));
    proxy.ok(&["stop", "other-web", "--message=Later"]);
    let before = server_pid(&proxy);
    let b = copy_binary(&proxy.dir, "dray-proxy-b");

    let done = Arc::new(AtomicUsize::new(0));
    let total = 4000;
    let load = spawn_load(proxy.port, 64, total, Arc::clone(&done));
    wait_for(&done, 800);
    let out = proxy.ok(&[
        "supervisor",
        "upgrade",
        &format!("--binary={}", b.display()),
        "--staged",
        "--drain-timeout=10s",
    ]);
    assert!(out.contains("handed over from pid"), "{out}");
    assert!(out.contains("2 service(s) kept"), "{out}");
    let seen_at_handover = done.load(Ordering::SeqCst);
    let (ok, failed, why) = load.join().expect("load");
    eprintln!(
        "{out}; {seen_at_handover} of {total} requests done when it returned, {failed} failed"
    );
    assert_eq!(failed, 0, "failed requests: {why:?}\n{}", proxy.log());
    assert_eq!(ok, total);
    assert!(
        seen_at_handover < total,
        "the handover happened after the load"
    );

    // B serves: a new server process, the old one gone, B installed as the binary.
    let after = server_pid(&proxy);
    assert_ne!(before, after);
    assert!(!process_alive(before), "the old server still runs");
    assert!(
        !b.exists(),
        "B was not installed (still at {})",
        b.display()
    );
    let status = proxy.ok(&["supervisor", "status"]);
    assert!(status.contains("handovers: 1"), "{status}");
    // The routes, stopped state included.
    assert_eq!(proxy.get("", "/x"), (200, "v1 /x".into()));
    let (code, body) = proxy.get("other.test", "/");
    assert_eq!(code, 503);
    assert!(body.contains("Later"), "{body}");
    // B takes control requests.
    proxy.ok(&["resume", "other-web"]);
    assert_eq!(proxy.get("other.test", "/"), (200, "v1 /".into()));
}

#[test]
fn a_replacement_that_cannot_serve_leaves_the_old_server_serving() {
    let proxy = proxy_on_copy();
    let v1 = Backend::start("v1", true);
    proxy.ok(&deploy_args("app-web", &v1.target(), &[]));
    let before = server_pid(&proxy);

    // Speaks the protocol, then fails to start (as a broken build would).
    let broken = proxy.dir.join("broken");
    std::fs::write(
        &broken,
        "#!/bin/sh\n[ \"$1 $2\" = 'supervisor protocol' ] && { echo 1; exit 0; }\necho 'cannot start' >&2\nexit 3\n",
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let done = Arc::new(AtomicUsize::new(0));
    let load = spawn_load(proxy.port, 16, 1500, Arc::clone(&done));
    wait_for(&done, 300);
    let out = proxy.cli(&[
        "supervisor",
        "upgrade",
        &format!("--binary={}", broken.display()),
        "--staged",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exited before it was ready"), "{err}");
    assert!(err.contains("goes on serving"), "{err}");
    assert!(!broken.exists(), "the failed binary was left behind");

    // Not a dray-proxy with the handover at all: refused before anything changes, and a
    // binary not staged for the upgrade is never removed.
    let out = proxy.cli(&["supervisor", "upgrade", "--binary=/bin/true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cannot take over the sockets"), "{err}");
    assert!(Path::new("/bin/true").exists());

    let (_, failed, why) = load.join().expect("load");
    assert_eq!(failed, 0, "{why:?}");
    assert_eq!(server_pid(&proxy), before);
    assert_eq!(proxy.get("", "/x"), (200, "v1 /x".into()));
    // Its control socket works again.
    proxy.ok(&["stop", "app-web"]);
    assert_eq!(proxy.get("", "/x").0, 503);
}

#[test]
fn the_server_without_a_supervisor_says_it_cannot_hand_over() {
    // What `supervisor status` answers where no supervisor listens (an older image's PID 1).
    let proxy = Proxy::new();
    let out = proxy.cli(&["supervisor", "status"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no dray-proxy supervisor"), "{err}");
    assert_eq!(proxy.ok(&["supervisor", "protocol"]).trim(), "1");
}

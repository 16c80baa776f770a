//! Remote execution on the local fleet: one SSH connection per host per run (counted by sshd),
//! the deploy lock (races, Kamal's format, release on signals), hostile strings arriving byte
//! for byte, secrets kept out of `ps`, and unreachable hosts named fast.
//!
//! Every test connects from its own loopback source address (`BindAddress` in a per-test ssh
//! config that includes the fleet's), so sshd's log counts exactly this test's connections while
//! other tests use the fleet too; every test uses its own service name (lock, audit log,
//! containers) and cleans up.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dray::command::CommandSpec;
use dray::config::Config;
use dray::remote::{fan_out, Remote, SshOptions, SshRemote};
use dray::shell::quote;

use crate::support::dray_cmd;
use crate::support::fleet::{unique_name, ContainerGuard, Fleet};

/// A deploy configuration in a temp dir, with an ssh config binding a unique source address.
struct App {
    dir: tempfile::TempDir,
    service: String,
    source: String,
}

impl App {
    /// `service` on `hosts` (role `web`), `extra` appended to the YAML.
    fn new(fleet: &Fleet, hosts: &[String], extra: &str) -> App {
        let dir = tempfile::tempdir().expect("tempdir");
        let service = unique_name("rt").replace('-', "");
        let source = Fleet::unique_source_address();
        let ssh_config = fleet.bound_ssh_config(dir.path(), &source);
        let hosts_yaml: String = hosts.iter().map(|h| format!("      - {h}\n")).collect();
        let yaml = format!(
            "service: {service}\nimage: dray-base\nservers:\n  web:\n    hosts:\n{hosts_yaml}\
             registry:\n  server: localhost:5000\nbuilder:\n  arch: amd64\n\
             ssh:\n  config: {}\n{extra}",
            ssh_config.display()
        );
        crate::support::write(&dir.path().join("config/deploy.yml"), &yaml);
        App {
            dir,
            service,
            source,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self) -> Config {
        let text = std::fs::read_to_string(self.path().join("config/deploy.yml")).expect("read");
        dray::config::load::load_str_without_commands(&text, "config/deploy.yml")
            .expect("config loads")
    }

    fn remote(&self) -> Arc<SshRemote> {
        let opts = SshOptions::from_config(&self.config(), self.path());
        Arc::new(SshRemote::new(opts).expect("remote"))
    }

    fn dray(&self, args: &[&str]) -> Command {
        let mut cmd = dray_cmd(self.path(), args);
        cmd.arg("--version").arg("v1");
        cmd
    }

    fn lock_dir(&self) -> String {
        format!(".kamal/lock-{}", self.service)
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn lock_exists(fleet: &Fleet, host: &str, dir: &str) -> bool {
    let out = fleet.ssh(host, &format!("test -d {}", quote(dir)));
    out.status.success()
}

fn remove_lock(fleet: &Fleet, host: &str, dir: &str) {
    let _ = fleet.ssh(host, &format!("rm -rf {}", quote(dir)));
}

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn twenty_commands_on_three_hosts_open_one_connection_per_host() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let app = App::new(fleet, &hosts, "");
    let before: Vec<usize> = hosts
        .iter()
        .map(|h| fleet.accepted_connections_from(h, &app.source))
        .collect();
    let remote = app.remote();
    let work: Vec<(String, Vec<CommandSpec>)> = hosts
        .iter()
        .map(|h| {
            let cmds = (0..20)
                .map(|i| CommandSpec::new(format!("probe {i}"), "echo").arg(format!("{h} {i}")))
                .collect();
            (h.clone(), cmds)
        })
        .collect();
    let started = Instant::now();
    let outcomes = rt().block_on(async {
        remote
            .connect_all(&hosts)
            .await
            .expect("all hosts reachable");
        // Also 20 at once on one host: more than MaxSessions, bounded by the remote.
        let burst: Vec<_> = (0..20)
            .map(|i| {
                let cmd = CommandSpec::new("burst", "sh")
                    .arg("-c")
                    .arg(format!("sleep 0.2; echo {i}"));
                let remote = remote.clone();
                let host = hosts[0].clone();
                tokio::spawn(async move { remote.run_checked(&host, &cmd).await })
            })
            .collect();
        for b in burst {
            b.await.expect("join").expect("burst command");
        }
        let outcomes = fan_out(remote.as_ref(), &work).await;
        remote.close().await;
        outcomes
    });
    eprintln!("80 commands on 3 hosts took {:?}", started.elapsed());
    for (outcome, host) in outcomes.iter().zip(&hosts) {
        assert_eq!(&outcome.host, host);
        assert!(outcome.success(), "{:?}", outcome.error);
        assert_eq!(outcome.outputs.len(), 20);
        assert_eq!(outcome.outputs[19].stdout, format!("{host} 19\n"));
    }
    for (host, before) in hosts.iter().zip(before) {
        let opened = fleet.accepted_connections_from(host, &app.source) - before;
        eprintln!("{host}: {opened} ssh connection(s) for the run");
        assert_eq!(opened, 1, "{host} accepted {opened} connections");
    }
}

#[test]
fn racing_lock_acquires_let_exactly_one_win() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(1).to_vec();
    let app = App::new(fleet, &hosts, "");
    let spawn = |msg: &str| {
        app.dray(&["lock", "acquire", "-m", msg])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dray")
    };
    let (a, b) = (spawn("first racer"), spawn("second racer"));
    let (a, b) = (
        a.wait_with_output().expect("wait"),
        b.wait_with_output().expect("wait"),
    );
    let won: Vec<bool> = [&a, &b].iter().map(|o| o.status.success()).collect();
    remove_lock(fleet, &hosts[0], &app.lock_dir());
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{a:?}\n{b:?}");
    let (winner, loser) = if won[0] { (&a, &b) } else { (&b, &a) };
    let winner_msg = if won[0] {
        "first racer"
    } else {
        "second racer"
    };
    assert!(text(winner).0.contains("Acquired the deploy lock"));
    assert_eq!(loser.status.code(), Some(1));
    let (_, err) = text(loser);
    assert!(err.contains("deploy lock already in place"), "{err}");
    assert!(err.contains(&format!("Message: {winner_msg}")), "{err}");
    assert!(
        err.contains("Locked by: ") && err.contains("Process: dray "),
        "{err}"
    );
    assert!(err.contains("dray lock release"), "{err}");
}

#[test]
fn a_lock_in_kamal_format_blocks_dray_and_status_decodes_it() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(1).to_vec();
    let host = &hosts[0];
    let app = App::new(fleet, &hosts, "");
    let dir = app.lock_dir();
    let details =
        "Locked by: Zoë Kamal at 2024-01-01T00:00:00Z\nVersion: abc123\nMessage: Manual hold";
    // As Kamal does it: mkdir, then the base64 of the details echoed into `details`.
    fleet.ssh_ok(
        host,
        &format!(
            "mkdir -p .kamal && mkdir {d} && echo \"$(printf %s {t} | base64)\" > {d}/details",
            d = quote(&dir),
            t = quote(details)
        ),
    );
    let acquire = app
        .dray(&["lock", "acquire", "-m", "mine"])
        .output()
        .expect("dray");
    let status = app.dray(&["lock", "status"]).output().expect("dray");
    let waiting = app
        .dray(&[
            "lock",
            "acquire",
            "-m",
            "mine",
            "--lock-wait",
            "--lock-wait-timeout",
            "30",
        ])
        .output()
        .expect("dray");
    let still_there = lock_exists(fleet, host, &dir);
    let release = app.dray(&["lock", "release"]).output().expect("dray");
    let gone = !lock_exists(fleet, host, &dir);
    remove_lock(fleet, host, &dir);

    assert_eq!(acquire.status.code(), Some(1));
    assert!(text(&acquire)
        .1
        .contains("Locked by: Zoë Kamal at 2024-01-01T00:00:00Z"));
    let (out, err) = text(&status);
    assert!(status.status.success(), "{err}");
    assert!(out.starts_with(details), "{out}");
    assert!(out.contains("\nAge: "), "{out}");
    // A manual lock is not waited for.
    assert_eq!(waiting.status.code(), Some(1));
    assert!(
        text(&waiting).1.contains("held manually"),
        "{:?}",
        text(&waiting)
    );
    assert!(still_there);
    assert!(text(&release).0.contains("Released the deploy lock"));
    assert!(gone);
}

/// Start `dray lock hold` and wait until it says it holds the lock.
fn hold_lock(app: &App) -> Child {
    let mut child = app
        .dray(&["lock", "hold", "--seconds", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dray");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "Acquired the deploy lock");
    child
}

#[test]
fn sigint_and_sigterm_release_a_held_lock() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(1).to_vec();
    let app = App::new(fleet, &hosts, "");
    for signal in ["-INT", "-TERM"] {
        let child = hold_lock(&app);
        assert!(lock_exists(fleet, &hosts[0], &app.lock_dir()));
        let sent = Instant::now();
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
        let out = child.wait_with_output().expect("wait");
        eprintln!(
            "{signal}: exited {:?} after {:?}",
            out.status.code(),
            sent.elapsed()
        );
        let released = !lock_exists(fleet, &hosts[0], &app.lock_dir());
        remove_lock(fleet, &hosts[0], &app.lock_dir());
        assert_eq!(out.status.code(), Some(130), "{:?}", text(&out));
        assert!(released, "lock directory left after {signal}");
        assert!(text(&out).1.contains("was released"));
    }
}

#[test]
fn hostile_strings_reach_the_server_byte_for_byte_and_secrets_stay_out_of_ps() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(1).to_vec();
    let host = &hosts[0];
    let canary = format!("/tmp/{}", unique_name("canary"));
    let hostile = format!(
        "it's \"quoted\" $(touch {canary}) `touch {canary}` ; touch {canary}; $HOME \\ back\nline 2 — Grüße 🚀 web-1.example.com:v1.2.3-rc'1"
    );
    let json = |s: &str| serde_json::to_string(s).expect("json");
    let extra = format!(
        "env:\n  clear:\n    HOSTILE: {h}\n    VERSION_LIKE: {v}\nlabels:\n  hostile: {h}\n  host-tag: {t}\n",
        h = json(&hostile),
        v = json("v1.0.0'; echo `id` $(id)"),
        t = json("web-1.example.com;$(id)\n\u{00e9}"),
    );
    let app = App::new(fleet, &hosts, &extra);
    let config = app.config();
    let role = config.role("web").expect("web role").clone();
    let version = "busybox"; // image localhost:5000/dray-base:busybox, the fleet's base image
    let engine = dray::docker::app::App::new(&config, &role, host);
    let name = engine.container_name(version);
    let _guard = ContainerGuard::new(fleet, host, &name);
    let secret = format!("s3cr3t-{}", unique_name("pw"));
    let env_content =
        dray::docker::env_file::content(&[("DB_PASSWORD", format!("{secret} {hostile}"))]);
    let expected_file = env_content.0.clone();
    let remote = app.remote();

    let run = CommandSpec::new("pull base image", "docker")
        .args(["pull", "localhost:5000/dray-base:busybox"]);
    let mut docker_run = engine.run(version, None);
    docker_run
        .args
        .push(dray::command::Arg::Raw("sleep 60".into()));
    let slow = CommandSpec::new("keep a secret", "sh")
        .arg("-c")
        .arg("cat > /dev/null; sleep 2")
        .stdin(secret.clone().into_bytes());
    let failing = CommandSpec::new("fail with a secret", "sh")
        .arg("-c")
        .arg("cat > /dev/null; echo nope >&2; exit 3")
        .stdin(secret.clone().into_bytes());
    let (ps, failure) = rt().block_on(async {
        remote.run_checked(host, &run).await.expect("pull");
        remote
            .run_checked(
                host,
                &dray::docker::env_file::write(&config, "web", host, env_content),
            )
            .await
            .expect("env file");
        remote
            .run_checked(host, &docker_run)
            .await
            .expect("docker run");
        let keeping = remote.run_checked(host, &slow);
        let looking = async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            remote
                .run_checked(
                    host,
                    &CommandSpec::new("list processes", "ps").args(["-eo", "args"]),
                )
                .await
        };
        let (kept, ps) = tokio::join!(keeping, looking);
        kept.expect("secret command");
        let failure = remote.run_checked(host, &failing).await.expect_err("fails");
        remote.close().await;
        (ps.expect("ps").stdout, failure)
    });

    // Secrets: not in any process's arguments on the host, nor in what dray would print.
    assert!(ps.contains("sleep 2"), "ps saw the command:\n{ps}");
    assert!(!ps.contains(&secret), "secret in ps output");
    let shown = format!("{failure}\n{slow:?}\n{}", slow.to_shell_redacted());
    assert!(shown.contains("fail with a secret on ") && shown.contains("exited 3"));
    assert!(!shown.contains(&secret), "secret in dray's output: {shown}");

    // The env file, byte for byte, mode 0600.
    let path = format!(".kamal/apps/{}/env/roles/web.env", app.service);
    let file = fleet.ssh(host, &format!("cat {}", quote(&path))).stdout;
    assert_eq!(file, expected_file);
    assert_eq!(
        fleet
            .ssh_ok(host, &format!("stat -c %a {}", quote(&path)))
            .trim(),
        "600"
    );

    // Env and labels, read back from Docker.
    let inspect = |fmt: &str| -> serde_json::Value {
        let out = fleet.ssh_ok(
            host,
            &format!("docker inspect --format {} {}", quote(fmt), quote(&name)),
        );
        serde_json::from_str(&out).expect("inspect json")
    };
    let env: Vec<String> = serde_json::from_value(inspect("{{json .Config.Env}}")).expect("env");
    assert!(env.contains(&format!("HOSTILE={hostile}")), "{env:#?}");
    assert!(
        env.contains(&"VERSION_LIKE=v1.0.0'; echo `id` $(id)".to_string()),
        "{env:#?}"
    );
    let labels = inspect("{{json .Config.Labels}}");
    assert_eq!(labels["hostile"].as_str(), Some(hostile.as_str()));
    assert_eq!(
        labels["host-tag"].as_str(),
        Some("web-1.example.com;$(id)\n\u{00e9}")
    );
    assert!(
        !fleet
            .ssh(host, &format!("test -e {}", quote(&canary)))
            .status
            .success(),
        "a command substitution ran on the host"
    );
    let _ = fleet.ssh(host, &format!("rm -rf .kamal/apps/{}", app.service));
}

#[test]
fn unreachable_hosts_fail_within_the_connect_timeout_naming_each() {
    let Some(fleet) = Fleet::get() else { return };
    // 127.0.0.99: nothing listens. A silent listener: accepts, never says a word.
    // (ssh.port applies to every host, as in Kamal, so it listens on port 22 of its own address.)
    let silent = std::net::TcpListener::bind("127.0.0.97:22").expect("bind 127.0.0.97:22");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("ssh_config");
    std::fs::write(
        &cfg,
        format!(
            "Host 127.0.0.99\n  StrictHostKeyChecking yes\nHost *\nInclude {}\n",
            fleet.ssh_config().display()
        ),
    )
    .expect("write");
    let yaml = format!(
        "service: rtunreach\nimage: x\nservers:\n  - 127.0.0.99\nregistry:\n  server: localhost:5000\nbuilder:\n  arch: amd64\nssh:\n  config: {}\n",
        cfg.display()
    );
    let config =
        dray::config::load::load_str_without_commands(&yaml, "deploy.yml").expect("config");
    let mut opts = SshOptions::from_config(&config, dir.path());
    opts.connect_timeout = Duration::from_secs(2);
    let remote = SshRemote::new(opts).expect("remote");
    let hosts = vec![
        "127.0.0.99".to_string(),
        "127.0.0.97".to_string(),
        fleet.hosts()[0].clone(),
    ];
    let started = Instant::now();
    let result = rt().block_on(async {
        let r = remote.connect_all(&hosts).await;
        remote.close().await;
        r
    });
    let took = started.elapsed();
    let err = result.expect_err("unreachable").to_string();
    eprintln!("connect_all failed after {took:?}:\n{err}");
    assert!(
        err.contains("cannot connect to 127.0.0.99: ") && err.contains("Connection refused"),
        "{err}"
    );
    assert!(err.contains("cannot connect to 127.0.0.97: "), "{err}");
    assert!(
        !err.contains(&format!("cannot connect to {}", fleet.hosts()[0])),
        "{err}"
    );
    assert!(took < Duration::from_secs(6), "took {took:?}");
    drop(silent);

    // And through the binary: exit 1, the host named, a hint.
    let app_dir = tempfile::tempdir().expect("tempdir");
    crate::support::write(&app_dir.path().join("config/deploy.yml"), &yaml);
    let started = Instant::now();
    let out = dray_cmd(
        app_dir.path(),
        &["server", "exec", "--version", "v1", "true"],
    )
    .env("DRAY_SSH_CONNECT_TIMEOUT", "3")
    .output()
    .expect("dray");
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot connect to 127.0.0.99"), "{err}");
    assert!(err.contains("hint: check that 127.0.0.99"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let _: PathBuf = cfg;
}

#[test]
fn lock_wait_waits_for_a_deploy_lock_and_kamal_lock_true_skips_it() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(1).to_vec();
    let app = App::new(fleet, &hosts, "");
    let mut holder = app
        .dray(&["lock", "hold", "--seconds", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dray");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line.trim(), "Acquired the deploy lock");

    // A child of a lock holder (KAMAL_LOCK=true) neither acquires nor releases.
    let child = app
        .dray(&["lock", "hold", "--seconds", "0"])
        .env("KAMAL_LOCK", "true")
        .output()
        .expect("dray");
    assert!(child.status.success(), "{:?}", text(&child));
    assert!(lock_exists(fleet, &hosts[0], &app.lock_dir()));

    let started = Instant::now();
    let waiter = app
        .dray(&[
            "lock",
            "acquire",
            "-m",
            "after the deploy",
            "--lock-wait",
            "--lock-wait-interval",
            "1",
            "--lock-wait-timeout",
            "20",
        ])
        .output()
        .expect("dray");
    let waited = started.elapsed();
    let status = app.dray(&["lock", "status"]).output().expect("dray");
    remove_lock(fleet, &hosts[0], &app.lock_dir());
    let _ = holder.wait();
    let (out, err) = text(&waiter);
    assert!(waiter.status.success(), "{err}");
    assert!(out.contains("Acquired the deploy lock"));
    assert!(err.contains("Deploy lock held, waiting"), "{err}");
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(text(&status).0.contains("Message: after the deploy"));
}

/// A line a script prints is seen while the script still runs, on both transports: what opens
/// the primary-role barrier at a settle's ready line before the old version's stop finishes.
#[test]
fn a_watched_line_is_seen_while_the_command_still_runs_on_both_transports() {
    let Some(fleet) = Fleet::get() else { return };
    let host = fleet.require_hosts(1)[0].clone();
    for native in [false, true] {
        let extra = if native {
            "x-dray:\n  ssh:\n    transport: native\n"
        } else {
            ""
        };
        let app = App::new(fleet, std::slice::from_ref(&host), extra);
        let opts = SshOptions::from_config(&app.config(), app.path());
        let remote: Arc<dyn Remote> = if native {
            Arc::new(dray::remote::NativeRemote::new(opts, false).expect("remote"))
        } else {
            Arc::new(SshRemote::new(opts).expect("remote"))
        };
        let cmd = CommandSpec::new("say ready, then keep going", "sh")
            .arg("-c")
            .arg("echo waiting; echo dray-ready; sleep 2; echo done");
        let seen_at: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
        let seen = || {
            if let Ok(mut s) = seen_at.lock() {
                s.get_or_insert_with(Instant::now);
            }
        };
        let (started, out, ended) = rt().block_on(async {
            remote
                .connect_all(std::slice::from_ref(&host))
                .await
                .expect("connects");
            let mut watch = dray::remote::Watch::new("dray-ready", &seen);
            let started = Instant::now();
            let out = remote.run_watched(&host, &cmd, &mut watch).await;
            let ended = Instant::now();
            remote.close().await;
            (started, out, ended)
        });
        let out = out.expect("ran");
        assert!(out.success(), "native {native}: {out:?}");
        assert_eq!(out.stdout, "waiting\ndray-ready\ndone\n");
        let seen_at = seen_at
            .lock()
            .ok()
            .and_then(|s| *s)
            .expect("the line was seen");
        assert!(
            ended.duration_since(seen_at) >= Duration::from_millis(1500),
            "native {native}: seen {:?} after the start, the command ended {:?} after it",
            seen_at.duration_since(started),
            ended.duration_since(started)
        );
    }
}

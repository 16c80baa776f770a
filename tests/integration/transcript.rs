//! The plan is the program: for each command that touches servers, the plan the command builds
//! (what `--dry-run` prints) runs on the one engine against a recording remote, in process, no
//! SSH; the commands sent to each host must be exactly the dry-run's lines, in order, holes
//! (`<old version>`, `<random hex 12>`, `<time>` …) aside. A command the engine sent that the
//! plan did not hold, or one it left out, fails the test.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use clap::Parser;
use dray::cli::Cli;
use dray::command::CommandSpec;
use dray::commands::session::{capture_plans, BuiltPlan};
use dray::engine::{Emitter, Engine, Event, Recorder};
use dray::remote::{BoxFuture, CommandOutput, Remote, RemoteError};

const CONFIG: &str = "\
service: shop
image: acme/shop
registry:
  server: registry.example.com
  username: deployer
  password:
    - REGISTRY_PASSWORD
servers:
  web:
    - 10.0.0.1
    - 10.0.0.2
  workers:
    hosts:
      - 10.0.0.3
    cmd: bin/jobs
env:
  secret:
    - DB_PASSWORD
proxy:
  host: shop.example.com
builder:
  arch: amd64
";

/// Answers every command as a healthy fleet would and keeps what it was sent, per host.
#[derive(Default)]
struct Recording {
    sent: Mutex<BTreeMap<String, Vec<String>>>,
}

impl Remote for Recording {
    fn run<'a>(
        &'a self,
        host: &'a str,
        cmd: &'a CommandSpec,
    ) -> BoxFuture<'a, Result<CommandOutput, RemoteError>> {
        let line = cmd.to_shell_redacted();
        if let Ok(mut sent) = self.sent.lock() {
            sent.entry(host.to_string()).or_default().push(line.clone());
        }
        let stdout = if line.contains("dray-old-version:") {
            "dray-old-version:v0\n".to_string()
        } else if cmd.purpose.starts_with("find running") {
            "v0\n".to_string()
        } else if line.contains("--quiet") && line.contains("container ls") {
            "0123abcd\n".to_string()
        } else {
            String::new()
        };
        Box::pin(async move {
            Ok(CommandOutput {
                status: Some(0),
                stdout,
                stderr: String::new(),
            })
        })
    }

    fn open_tunnel<'a>(
        &'a self,
        host: &'a str,
        tunnel: &'a dray::remote::Tunnel,
    ) -> BoxFuture<'a, Result<(), RemoteError>> {
        self.note(host, format!("ssh -O forward {}", tunnel.forward_arg()));
        Box::pin(async { Ok(()) })
    }

    fn close_tunnel<'a>(
        &'a self,
        host: &'a str,
        tunnel: &'a dray::remote::Tunnel,
    ) -> BoxFuture<'a, Result<(), RemoteError>> {
        self.note(host, format!("ssh -O cancel {}", tunnel.forward_arg()));
        Box::pin(async { Ok(()) })
    }
}

impl Recording {
    fn note(&self, host: &str, line: String) {
        if let Ok(mut sent) = self.sent.lock() {
            sent.entry(host.to_string()).or_default().push(line);
        }
    }
}

/// A project directory with the configuration and a secrets file.
fn project() -> tempfile::TempDir {
    project_with(CONFIG)
}

/// A project directory with `config` and a secrets file.
fn project_with(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("config")).expect("config dir");
    std::fs::create_dir_all(dir.path().join(".kamal")).expect(".kamal");
    std::fs::write(dir.path().join("config/deploy.yml"), config).expect("deploy.yml");
    std::fs::write(
        dir.path().join(".kamal/secrets"),
        "REGISTRY_PASSWORD=s3cr3t-registry\nDB_PASSWORD=s3cr3t-db\n",
    )
    .expect("secrets");
    dir
}

/// The plans `dray <args> --dry-run` prints, built by the command layer in `dir`.
fn plans(dir: &std::path::Path, args: &[&str]) -> Vec<BuiltPlan> {
    let config = dir.join("config/deploy.yml");
    // `--dry-run` before the command: after it, `app exec` would take it as the command's.
    let mut argv = vec![
        "dray",
        "--dry-run",
        "-c",
        config.to_str().expect("utf-8 path"),
    ];
    argv.extend(args);
    let cli = Cli::try_parse_from(&argv).expect("command line parses");
    let (result, plans) = capture_plans(dir, || dray::commands::run(cli, 0));
    if let Err(e) = result {
        panic!("{args:?}: {e}");
    }
    assert!(!plans.is_empty(), "{args:?} built no plan");
    plans
}

/// Each host's command lines as the dry-run prints them, in order (the lock holder's read,
/// which runs only when the lock is held, and the lock's heartbeat, left out).
fn dry_run_lines(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut skip_next = false;
    let mut skipping = false;
    // A boot's revert runs only when the release fails on another host: its commands are
    // left out until the next line that is not one of them.
    let mut reverting = false;
    for line in text.lines() {
        if line
            .trim()
            .starts_with("if the release fails on another host, switch back to")
        {
            reverting = true;
            continue;
        }
        if reverting {
            if line.starts_with("    [") {
                continue;
            }
            reverting = false;
        }
        // The heartbeat runs every few seconds while the lock is held: none in a run this short.
        if line.trim() == "if held, read the holder:"
            || line.trim() == "if the connection is lost during the start:"
            || (line.trim().starts_with("while held, every ") && line.trim().ends_with("s:"))
        {
            skip_next = true;
            continue;
        }
        let Some(rest) = line.strip_prefix("    [") else {
            continue;
        };
        let cmd = match rest.rfind("    # ") {
            Some(at) => &rest[..at],
            None => rest,
        };
        // A tunnel opened or closed on the host's master (no shell command).
        if let Some((host, tunnel)) = cmd.split_once("] tunnel: ") {
            skipping = false;
            out.entry(host.to_string())
                .or_default()
                .push(tunnel.to_string());
            continue;
        }
        if let Some((host, more)) = cmd.split_once("] > ") {
            // A script's next line.
            if let Some(last) = out.get_mut(host).and_then(|v| v.last_mut()) {
                if !skipping {
                    last.push('\n');
                    last.push_str(more);
                }
            }
            continue;
        }
        let Some((host, cmd)) = cmd.split_once("] $ ") else {
            continue;
        };
        skipping = std::mem::take(&mut skip_next) || host == "localhost" || host == "local";
        if skipping {
            continue;
        }
        out.entry(host.to_string())
            .or_default()
            .push(cmd.to_string());
    }
    out
}

const TOKENS: [&str; 9] = [
    "<old version>",
    "<running version>",
    "<container id>",
    "<existing container>",
    "<time>",
    "<runtime seconds>",
    "<random hex 6>",
    "<random hex 12>",
    "<random hex 16>",
];

/// A planned line as literal pieces, `None` standing for a hole.
fn pieces(planned: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    let mut rest = planned;
    loop {
        let next = TOKENS
            .iter()
            .filter_map(|t| rest.find(t).map(|at| (at, t.len())))
            .min();
        match next {
            Some((at, len)) => {
                out.push(Some(rest[..at].to_string()));
                out.push(None);
                rest = &rest[at + len..];
            }
            None => {
                out.push(Some(rest.to_string()));
                return out;
            }
        }
    }
}

fn match_pieces(pieces: &[Option<String>], sent: &str) -> bool {
    match pieces.split_first() {
        None => sent.is_empty(),
        Some((Some(lit), rest)) => sent
            .strip_prefix(lit.as_str())
            .is_some_and(|s| match_pieces(rest, s)),
        Some((None, rest)) => {
            let run = sent.bytes().take_while(|b| safe(*b)).count();
            (0..=run).rev().any(|k| match_pieces(rest, &sent[k..]))
        }
    }
}

/// Whether `sent` is `planned` with each hole token replaced by one shell-safe word.
fn matches_with_holes(planned: &str, sent: &str) -> bool {
    match_pieces(&pieces(planned), sent)
}

fn safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'+' | b'-')
}

/// Run each plan on the recording remote and compare with its dry-run, host by host.
fn assert_transcript_is_dry_run(args: &[&str]) {
    assert_transcript_of_config_is_dry_run(CONFIG, args);
}

/// [`assert_transcript_is_dry_run`] with `config`.
fn assert_transcript_of_config_is_dry_run(config: &str, args: &[&str]) {
    assert_transcript_in_project_is_dry_run(&project_with(config), args);
}

/// [`assert_transcript_is_dry_run`] in the project `dir`.
fn assert_transcript_in_project_is_dry_run(dir: &tempfile::TempDir, args: &[&str]) {
    for built in plans(dir.path(), args) {
        let text = dray::report::plan::plan_text(&built.plan);
        let expected = dry_run_lines(&text);
        let remote = Arc::new(Recording::default());
        let recorder = Recorder::default();
        let engine = Engine::new(
            &built.plan,
            &built.config,
            remote.clone(),
            built.root.clone(),
            Emitter::new(Box::new(recorder.clone())),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let outcome = rt.block_on(engine.run());
        assert!(
            outcome.failures.is_empty(),
            "{args:?} failed: {:?}\n{text}",
            outcome.error_text()
        );
        let sent = remote.sent.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(
            sent.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{args:?}: hosts\n{text}"
        );
        for (host, planned) in &expected {
            let got = &sent[host];
            assert_eq!(
                got.len(),
                planned.len(),
                "{args:?} on {host}: {} commands sent, {} planned\nsent:\n{}\nplan:\n{text}",
                got.len(),
                planned.len(),
                got.join("\n")
            );
            for (p, s) in planned.iter().zip(got) {
                assert!(
                    matches_with_holes(p, s),
                    "{args:?} on {host}:\nplanned: {p}\nsent:    {s}"
                );
            }
        }
        // No secret value in any event or sent line.
        let events = format!("{:?}", recorder.events());
        for secret in ["s3cr3t-registry", "s3cr3t-db"] {
            assert!(!events.contains(secret), "{args:?}: a secret in the events");
            assert!(!text.contains(secret), "{args:?}: a secret in the plan");
        }
        assert!(recorder
            .events()
            .iter()
            .any(|e| matches!(e, Event::RunFinished { ok: true, .. })));
    }
}

#[test]
fn holes_match_one_safe_word_each() {
    assert!(matches_with_holes(
        "stop app-<old version> now",
        "stop app-v1.2 now"
    ));
    assert!(matches_with_holes("x <time>", "x 2024-01-01T00:00:00Z"));
    assert!(!matches_with_holes(
        "stop app-<old version> now",
        "stop app-v1 2 now"
    ));
    assert!(!matches_with_holes("a b", "a b c"));
    assert!(matches_with_holes("a b", "a b"));
    assert!(matches_with_holes(
        "app-<running version>_<random hex 6>",
        "app-v0_ab12cd"
    ));
}

#[test]
fn deploy_sends_exactly_its_dry_run() {
    assert_transcript_is_dry_run(&["deploy", "--skip-push", "--version", "v1"]);
}

#[test]
fn deploy_with_a_local_registry_opens_and_closes_each_tunnel_as_its_dry_run_says() {
    let config = CONFIG.replace(
        "registry:\n  server: registry.example.com\n  username: deployer\n  password:\n    - REGISTRY_PASSWORD\n",
        "registry:\n  server: localhost:5555\n",
    );
    assert_ne!(config, CONFIG);
    assert_transcript_of_config_is_dry_run(&config, &["deploy", "--skip-push", "--version", "v1"]);
    assert_transcript_of_config_is_dry_run(
        &config,
        &["redeploy", "--skip-push", "--version", "v1"],
    );
}

#[test]
fn redeploy_sends_exactly_its_dry_run() {
    assert_transcript_is_dry_run(&["redeploy", "--skip-push", "--version", "v1"]);
}

#[test]
fn rollback_sends_exactly_its_dry_run() {
    assert_transcript_is_dry_run(&["rollback", "v0"]);
}

#[test]
fn app_boot_stop_and_exec_send_exactly_their_dry_run() {
    assert_transcript_is_dry_run(&["app", "boot", "--version", "v1"]);
    assert_transcript_is_dry_run(&["app", "stop", "--version", "v1"]);
    assert_transcript_is_dry_run(&["app", "exec", "--version", "v1", "echo", "hi"]);
    assert_transcript_is_dry_run(&["app", "exec", "--reuse", "--version", "v1", "ls"]);
}

#[test]
fn proxy_reboot_sends_exactly_its_dry_run() {
    assert_transcript_is_dry_run(&["proxy", "reboot", "-y", "--version", "v1"]);
    assert_transcript_is_dry_run(&["proxy", "reboot", "-y", "--rolling", "--version", "v1"]);
}

#[test]
fn proxy_upgrade_and_details_send_exactly_their_dry_run() {
    assert_transcript_is_dry_run(&["proxy", "upgrade", "-y", "--version", "v1"]);
    assert_transcript_is_dry_run(&["proxy", "upgrade", "-y", "--rolling", "--version", "v1"]);
    assert_transcript_is_dry_run(&["proxy", "details"]);
}

#[test]
fn server_bootstrap_and_build_pull_send_exactly_their_dry_run() {
    assert_transcript_is_dry_run(&["server", "bootstrap", "--version", "v1"]);
    assert_transcript_is_dry_run(&["build", "pull", "--version", "v1"]);
}

#[test]
fn prune_sends_exactly_its_dry_run() {
    assert_transcript_is_dry_run(&["prune", "all", "--version", "v1"]);
}

#[test]
fn lock_acquire_and_release_send_exactly_their_dry_run() {
    assert_transcript_is_dry_run(&["lock", "acquire", "-m", "db work", "--version", "v1"]);
    assert_transcript_is_dry_run(&["lock", "release"]);
}

#[test]
fn server_exec_sends_exactly_its_dry_run() {
    assert_transcript_is_dry_run(&["server", "exec", "--version", "v1", "uptime"]);
}

#[test]
fn global_options_before_an_alias_apply_to_its_expansion() {
    let dir = project();
    let config = dir.path().join("config/deploy.yml");
    let text = std::fs::read_to_string(&config).expect("deploy.yml");
    std::fs::write(
        &config,
        format!("{text}aliases:\n  shipit: deploy --skip-push --version 0.0.1\n"),
    )
    .expect("write");
    let path = config.to_str().expect("utf-8 path").to_string();
    let argv = [
        "dray",
        "--dry-run",
        "-c",
        path.as_str(),
        "--version",
        "1.2.3",
        "-h",
        "10.0.0.2",
        "-H",
        "shipit",
    ];
    let cli = Cli::try_parse_from(argv).expect("command line parses");
    let (result, plans) = capture_plans(dir.path(), || dray::commands::run(cli, 0));
    result.expect("alias runs");
    let plan = &plans[0].plan;
    // The command line wins over the alias's own `--version`; -h and -H reach the expansion.
    assert_eq!(
        plan.release.as_ref().map(|r| r.version.as_str()),
        Some("1.2.3")
    );
    assert_eq!(plan.targets.hosts, ["10.0.0.2"]);
    assert_eq!(plan.hooks().count(), 0);
}

/// Accessories: one with a file (ERB), a directory and a secret env, one proxied.
const ACCESSORIES: &str = "\
accessories:
  db:
    image: mysql:8
    host: 10.0.0.3
    env:
      secret:
        - DB_PASSWORD
    files:
      - config/my.cnf.erb:/etc/mysql/my.cnf
    directories:
      - local: data
        remote: /var/lib/mysql
        mode: \"0750\"
  site:
    image: nginx:1
    host: 10.0.0.1
    proxy:
      host: site.example.com
";

#[test]
fn accessory_commands_send_exactly_their_dry_run() {
    let dir = project_with(&format!("{CONFIG}{ACCESSORIES}"));
    std::fs::write(
        dir.path().join("config/my.cnf.erb"),
        "password=<%= ENV[\"DB_PASSWORD\"] %>\n",
    )
    .expect("my.cnf.erb");
    for args in [
        &["accessory", "boot", "all", "--version", "v1"][..],
        &["accessory", "reboot", "all", "--version", "v1"],
        &["accessory", "start", "site", "--version", "v1"],
        &["accessory", "stop", "all", "--version", "v1"],
        &["accessory", "details", "all", "--version", "v1"],
        &[
            "accessory",
            "exec",
            "--version",
            "v1",
            "db",
            "mysql --version",
        ],
        &["accessory", "logs", "db", "--version", "v1"],
        &["accessory", "remove", "all", "-y", "--version", "v1"],
    ] {
        assert_transcript_in_project_is_dry_run(&dir, args);
    }
}

#[test]
fn replicated_deploy_rollback_and_app_commands_send_exactly_their_dry_run() {
    let config = CONFIG.to_string() + "x-dray:\n  replicas:\n    web: 3\n    workers: 2\n";
    let dir = project_with(&config);
    for args in [
        &["deploy", "--skip-push", "--version", "v1"][..],
        &["rollback", "v0"][..],
        &["app", "stop", "--version", "v1"][..],
        &["app", "start", "--version", "v1"][..],
        &["app", "logs"][..],
    ] {
        assert_transcript_in_project_is_dry_run(&dir, args);
    }
}

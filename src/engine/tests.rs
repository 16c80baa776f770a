//! Engine unit tests over a fake [`Remote`]: no SSH, milliseconds each. They pin the run
//! loop's rules: the primary-role barrier, boot groups and `boot.limit`, cancellation at each
//! stage, partial failure (exit 3), the lock released on every path, and hook order.

use std::sync::{Arc, Mutex};

use crate::command::CommandSpec;
use crate::config::secrets::Secrets;
use crate::config::Config;
use crate::docker::test_support::config_with;
use crate::error::ExitCode;
use crate::plan::{build_plan, Filters, Plan, PlanInputs, PlanKind, Targets};
use crate::release::{Release, Resolved, VersionSource};
use crate::remote::{BoxFuture, CommandOutput, Remote, RemoteError};

use super::{CancelHandle, Emitter, Engine, Event, Outcome, Recorder};

const TWO_ROLES: &str = "\
service: app
image: dhh/app
registry:
  username: dhh
  password: secret
servers:
  web:
    - 1.1.1.1
    - 1.1.1.2
  workers:
    - 1.1.1.3
builder:
  arch: amd64
";

type Rule = Box<dyn Fn(&str, &CommandSpec) -> Option<CommandOutput> + Send + Sync>;

/// Answers by rules (first match wins, else success with no output), keeps `host: purpose`
/// in order, and may cancel the run when it sees a purpose.
#[derive(Default)]
struct Fake {
    rules: Vec<Rule>,
    sent: Mutex<Vec<(String, String)>>,
    cancel_on: Option<String>,
    cancel: Mutex<Option<CancelHandle>>,
    /// A host whose tunnels cannot open.
    refuse_tunnel_on: Option<String>,
}

impl Fake {
    fn with(
        mut self,
        rule: impl Fn(&str, &CommandSpec) -> Option<CommandOutput> + Send + Sync + 'static,
    ) -> Self {
        self.rules.push(Box::new(rule));
        self
    }

    fn sent(&self) -> Vec<(String, String)> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn purposes(&self) -> Vec<String> {
        self.sent()
            .into_iter()
            .map(|(h, p)| format!("{h}: {p}"))
            .collect()
    }
}

fn ok(stdout: &str) -> CommandOutput {
    CommandOutput {
        status: Some(0),
        stdout: stdout.into(),
        stderr: String::new(),
    }
}

fn failed(stdout: &str, stderr: &str) -> CommandOutput {
    CommandOutput {
        status: Some(1),
        stdout: stdout.into(),
        stderr: stderr.into(),
    }
}

impl Remote for Fake {
    fn run<'a>(
        &'a self,
        host: &'a str,
        cmd: &'a CommandSpec,
    ) -> BoxFuture<'a, Result<CommandOutput, RemoteError>> {
        if let Ok(mut s) = self.sent.lock() {
            s.push((host.to_string(), cmd.purpose.clone()));
        }
        if self
            .cancel_on
            .as_deref()
            .is_some_and(|p| cmd.purpose.starts_with(p))
        {
            if let Some(c) = self.cancel.lock().ok().and_then(|c| c.clone()) {
                c.cancel();
            }
        }
        let out = self
            .rules
            .iter()
            .find_map(|r| r(host, cmd))
            .unwrap_or_else(|| {
                if cmd.to_shell().contains("dray-old-version:") {
                    ok("dray-old-version:v0\n")
                } else {
                    ok("")
                }
            });
        Box::pin(async move { Ok(out) })
    }

    fn open_tunnel<'a>(
        &'a self,
        host: &'a str,
        tunnel: &'a crate::remote::Tunnel,
    ) -> BoxFuture<'a, Result<(), RemoteError>> {
        if let Ok(mut s) = self.sent.lock() {
            s.push((host.to_string(), format!("open {}", tunnel.forward_arg())));
        }
        let refused = self.refuse_tunnel_on.as_deref() == Some(host);
        Box::pin(async move {
            if refused {
                return Err(RemoteError::Exec {
                    host: host.to_string(),
                    purpose: format!("open the tunnel {}", tunnel.forward_arg()),
                    message: "remote port forwarding failed".into(),
                });
            }
            Ok(())
        })
    }

    fn close_tunnel<'a>(
        &'a self,
        host: &'a str,
        tunnel: &'a crate::remote::Tunnel,
    ) -> BoxFuture<'a, Result<(), RemoteError>> {
        if let Ok(mut s) = self.sent.lock() {
            s.push((host.to_string(), format!("close {}", tunnel.forward_arg())));
        }
        Box::pin(async { Ok(()) })
    }
}

fn resolved(version: &str) -> Resolved {
    Resolved {
        release: Release::new(
            "app",
            "dhh/app",
            None,
            version,
            "dev@example.com",
            "2024-01-01T00:00:00Z",
        ),
        source: VersionSource::Flag,
        uncommitted: Vec::new(),
        warnings: Vec::new(),
    }
}

fn plan(config: &Config, kind: PlanKind) -> Plan {
    plan_with(config, kind, false)
}

fn plan_with(config: &Config, kind: PlanKind, fold_round_trips: bool) -> Plan {
    let targets = Targets::resolve(config, &Filters::default()).expect("targets");
    let resolved = resolved("v1");
    build_plan(&PlanInputs {
        kind,
        config,
        resolved: &resolved,
        targets: &targets,
        skip_push: true,
        no_cache: false,
        skip_hooks: false,
        secrets: &Secrets::default(),
        lock_inherited: false,
        build_env: crate::plan::builder::BuildEnv::legacy(),
        lock_details: crate::lock::details("dev", "v1", crate::docker::lock::AUTOMATIC_MESSAGE),
        lock_wait: None,
        break_stale_lock: false,
        no_revert: false,
        error_pages: None,
        acme_ca: None,
        bootstrap: Vec::new(),
        accessories: Vec::new(),
        fold_round_trips,
    })
}

/// The commands a plan sends to `host` (each its own SSH session), in order; the commands
/// that run only on a failure (a lost start, a revert, a held lock) left out.
fn sessions_on(plan: &Plan, host: &str) -> Vec<String> {
    use crate::plan::Step;
    let mut out = Vec::new();
    for stage in &plan.stages {
        for step in &stage.steps {
            match step {
                Step::Hosts(h) => out.extend(
                    h.hosts
                        .iter()
                        .filter(|hc| hc.host == host)
                        .flat_map(|hc| hc.commands.iter().map(|c| c.line())),
                ),
                Step::Lock(l) if l.host == host => out.extend(l.commands.iter().map(|c| c.line())),
                Step::Unlock(u) if u.host == host => out.push(u.command.line()),
                Step::Boot(b) if b.host == host => out.extend(
                    b.before_barrier
                        .as_deref()
                        .into_iter()
                        .chain(b.commands.iter())
                        .map(|c| c.line()),
                ),
                Step::ReadBack(r) => out.extend(
                    r.rows
                        .iter()
                        .filter(|row| row.host == host && row.read_by.is_none())
                        .map(|row| row.command.line()),
                ),
                _ => {}
            }
        }
    }
    out
}

#[test]
fn folded_deploy_sends_four_or_five_sessions_to_a_host_and_no_nested_shell() {
    let config = config_with(TWO_ROLES, None);
    let folded = plan_with(&config, PlanKind::Deploy, true);
    let staged = plan(&config, PlanKind::Deploy);
    // pull; start (proxy, stale containers, boot); settle (on a primary-role host with the old
    // version's stop after its ready line); tag + prune + record + the result's read-back; on a
    // host whose role waits at the barrier, the start's first half before it.
    assert_eq!(sessions_on(&folded, "1.1.1.3").len(), 5);
    assert_eq!(sessions_on(&staged, "1.1.1.3").len(), 11);
    assert_eq!(sessions_on(&folded, "1.1.1.2").len(), 4);
    assert_eq!(sessions_on(&staged, "1.1.1.2").len(), 10);
    // The primary host also takes the lock and releases it (one session each).
    assert_eq!(sessions_on(&folded, "1.1.1.1").len(), 6);
    let names: Vec<&str> = folded.stages.iter().map(|s| s.name.as_str()).collect();
    assert!(!names.contains(&"proxy") && !names.contains(&"stale-containers"));
    assert!(!names.contains(&"prune") && !names.contains(&"record"));
    for host in ["1.1.1.1", "1.1.1.2", "1.1.1.3"] {
        for line in sessions_on(&folded, host) {
            // Only the proxy's first run (Kamal's `echo $(cat …) | xargs docker run`, when
            // `docker container start kamal-proxy` failed) still starts a nested shell.
            let nested = line.matches("sh -c").count();
            let allowed =
                usize::from(line.starts_with("sh -c ")) + line.matches("|| out=$(sh -c ").count();
            assert_eq!(nested, allowed, "{host}: {line}");
            assert!(
                !line.contains("| grep") && !line.contains("| xargs docker stop"),
                "{line}"
            );
        }
    }
}

fn run(
    plan: &Plan,
    config: &Config,
    remote: Arc<Fake>,
    root: &std::path::Path,
) -> (Outcome, Vec<Event>) {
    let recorder = Recorder::default();
    let engine = Engine::new(
        plan,
        config,
        remote.clone(),
        root.to_path_buf(),
        Emitter::new(Box::new(recorder.clone())),
    );
    if let Ok(mut c) = remote.cancel.lock() {
        *c = Some(engine.cancel_handle());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = rt.block_on(engine.run());
    (outcome, recorder.events())
}

fn released(remote: &Fake) -> bool {
    remote
        .sent()
        .iter()
        .any(|(_, p)| p.starts_with("release deploy lock"))
}

/// A settle that fails for `role` on `host`, as the host's script reports it.
fn settle_fails(
    host: &'static str,
    role: &'static str,
) -> impl Fn(&str, &CommandSpec) -> Option<CommandOutput> {
    move |h, cmd| {
        (h == host && cmd.purpose.starts_with(&format!("wait for {role}")))
            .then(|| failed("dray-failed:the container is exited\n", ""))
    }
}

#[test]
fn a_deploy_sends_only_planned_commands_and_ends_ok() {
    let config = config_with(TWO_ROLES, None);
    let dir = tempfile::tempdir().expect("dir");
    let p = plan(&config, PlanKind::Deploy);
    let remote = Arc::new(
        Fake::default().with(|_, cmd| cmd.purpose.starts_with("find running").then(|| ok("v1\n"))),
    );
    let (outcome, events) = run(&p, &config, remote.clone(), dir.path());
    assert_eq!(
        outcome.exit,
        ExitCode::Success,
        "{:?}",
        outcome.error_text()
    );
    assert_eq!(remote.sent().len(), p.remote_commands().len());
    let results: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::HostResult { ok: true, .. }))
        .collect();
    assert_eq!(results.len(), 3);
}

#[test]
fn the_tag_latest_trip_reads_the_result_back_and_only_a_host_where_it_failed_is_asked_again() {
    let config = config_with(TWO_ROLES, None);
    let dir = tempfile::tempdir().expect("dir");
    let p = plan_with(&config, PlanKind::Deploy, true);
    let remote = Arc::new(
        Fake::default()
            .with(|h, cmd| {
                (cmd.purpose.starts_with("tag, prune and record") && h == "1.1.1.3")
                    .then(|| failed("", "prune failed"))
            })
            .with(|_, cmd| {
                cmd.purpose
                    .starts_with("tag, prune and record")
                    .then(|| ok("dray-running-0:v1\n"))
            })
            .with(|_, cmd| cmd.purpose.starts_with("find running").then(|| ok("v0\n"))),
    );
    let (outcome, _) = run(&p, &config, remote.clone(), dir.path());
    // Every host booted; the tag-latest trip failed on one: a partial success.
    assert_eq!(
        outcome.exit,
        ExitCode::Partial,
        "{:?}",
        outcome.error_text()
    );
    let asked: Vec<String> = remote
        .purposes()
        .into_iter()
        .filter(|p| p.contains("find running"))
        .collect();
    assert_eq!(asked, ["1.1.1.3: find running workers version on 1.1.1.3"]);
    assert_eq!(
        outcome.read_back,
        [
            (
                "1.1.1.1".to_string(),
                "web".to_string(),
                Some("v1".to_string())
            ),
            ("1.1.1.2".into(), "web".into(), Some("v1".into())),
            ("1.1.1.3".into(), "workers".into(), Some("v0".into())),
        ]
    );
}

#[test]
fn a_failed_primary_container_keeps_other_roles_from_booting() {
    let config = config_with(TWO_ROLES, None);
    let dir = tempfile::tempdir().expect("dir");
    let p = plan(&config, PlanKind::Deploy);
    // Both web hosts fail; workers must not start at all.
    let remote = Arc::new(
        Fake::default()
            .with(settle_fails("1.1.1.1", "web"))
            .with(settle_fails("1.1.1.2", "web")),
    );
    let (outcome, events) = run(&p, &config, remote.clone(), dir.path());
    assert_eq!(outcome.exit, ExitCode::Failure);
    assert!(!remote
        .sent()
        .iter()
        .any(|(h, p)| h == "1.1.1.3" && p.starts_with("start workers")));
    let workers = events.iter().find_map(|e| match e {
        Event::HostResult { host, error, .. } if host == "1.1.1.3" => error.clone(),
        _ => None,
    });
    assert!(workers.is_some_and(|e| e.contains("first primary container is unhealthy")));
    assert!(released(&remote));
}

#[test]
fn a_waiting_role_prepares_before_the_barrier_and_starts_only_after_it_opened() {
    let config = config_with(TWO_ROLES, None);
    let dir = tempfile::tempdir().expect("dir");
    for fold in [false, true] {
        let p = plan_with(&config, PlanKind::Deploy, fold);
        // Every web container fails: the workers host prepared (old version, clash rename,
        // and with the fold the proxy and stale-container stages), started nothing.
        let remote = Arc::new(
            Fake::default()
                .with(settle_fails("1.1.1.1", "web"))
                .with(settle_fails("1.1.1.2", "web")),
        );
        let (outcome, _) = run(&p, &config, remote.clone(), dir.path());
        assert_eq!(outcome.exit, ExitCode::Failure);
        assert_eq!(
            sent_to(&remote, "1.1.1.3")
                .iter()
                .filter(|p| p.starts_with("prepare workers") || p.starts_with("start workers"))
                .collect::<Vec<_>>(),
            vec!["prepare workers app-workers-v1 on 1.1.1.3"],
            "fold {fold}"
        );
        // A healthy web container: the workers' start follows a web readiness wait and
        // its own prepare, with nothing sent to the workers host between them.
        let remote = Arc::new(Fake::default());
        let (outcome, _) = run(&p, &config, remote.clone(), dir.path());
        assert_eq!(
            outcome.exit,
            ExitCode::Success,
            "{:?}",
            outcome.error_text()
        );
        let sent = remote.purposes();
        let at = |prefix: &str| sent.iter().position(|p| p.starts_with(prefix));
        let prepare = at("1.1.1.3: prepare workers").expect("prepare");
        let start = at("1.1.1.3: start workers").expect("start");
        let first_ready = sent
            .iter()
            .position(|p| p.contains(": wait for web"))
            .expect("web settle");
        assert!(prepare < start && first_ready < start, "{sent:#?}");
        assert_eq!(
            sent[prepare + 1..start]
                .iter()
                .filter(|p| p.starts_with("1.1.1.3"))
                .count(),
            0,
            "{sent:#?}"
        );
    }
}

#[test]
fn one_healthy_primary_container_opens_the_barrier() {
    let config = config_with(TWO_ROLES, None);
    let dir = tempfile::tempdir().expect("dir");
    let p = plan(&config, PlanKind::Deploy);
    let remote = Arc::new(
        Fake::default()
            .with(settle_fails("1.1.1.2", "web"))
            .with(|h, cmd| {
                (cmd.purpose.starts_with("find running") && h != "1.1.1.2").then(|| ok("v1\n"))
            }),
    );
    let (outcome, _) = run(&p, &config, remote.clone(), dir.path());
    // One web host failed, the others reached v1: partial success, every error kept.
    assert_eq!(
        outcome.exit,
        ExitCode::Partial,
        "{:?}",
        outcome.error_text()
    );
    assert_eq!(outcome.failures.len(), 1);
    assert_eq!(outcome.failures[0].host(), Some("1.1.1.2"));
    assert!(remote
        .sent()
        .iter()
        .any(|(h, p)| h == "1.1.1.3" && p.starts_with("start workers")));
    assert!(released(&remote));
}

#[test]
fn boot_limit_boots_hosts_group_by_group_with_their_hooks() {
    let yaml = format!("{TWO_ROLES}boot:\n  limit: 1\n");
    let config = config_with(&yaml, None);
    let dir = tempfile::tempdir().expect("dir");
    let hooks = dir.path().join(".kamal/hooks");
    std::fs::create_dir_all(&hooks).expect("hooks dir");
    let log = dir.path().join("hooks.log");
    for name in [
        "pre-connect",
        "pre-deploy",
        "pre-app-boot",
        "post-app-boot",
        "post-deploy",
    ] {
        let path = hooks.join(name);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{name} $KAMAL_HOSTS\" >> {}\n",
                log.display()
            ),
        )
        .expect("hook");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let p = plan(&config, PlanKind::Deploy);
    let remote = Arc::new(Fake::default());
    let (_, _) = run(&p, &config, remote.clone(), dir.path());
    let starts: Vec<String> = remote
        .purposes()
        .into_iter()
        .filter(|p| p.contains(": start "))
        .collect();
    assert_eq!(
        starts,
        [
            "1.1.1.1: start web app-web-v1 on 1.1.1.1",
            "1.1.1.2: start web app-web-v1 on 1.1.1.2",
            "1.1.1.3: start workers app-workers-v1 on 1.1.1.3"
        ]
    );
    let order = std::fs::read_to_string(&log).expect("hook log");
    assert_eq!(
        order,
        "pre-connect 1.1.1.1,1.1.1.2,1.1.1.3\n\
         pre-deploy 1.1.1.1,1.1.1.2,1.1.1.3\n\
         pre-app-boot 1.1.1.1\npost-app-boot 1.1.1.1\n\
         pre-app-boot 1.1.1.2\npost-app-boot 1.1.1.2\n\
         pre-app-boot 1.1.1.3\npost-app-boot 1.1.1.3\n\
         post-deploy 1.1.1.1,1.1.1.2,1.1.1.3\n"
    );
}

#[test]
fn a_failing_hook_stops_the_run_and_releases_the_lock() {
    let config = config_with(TWO_ROLES, None);
    let dir = tempfile::tempdir().expect("dir");
    let hooks = dir.path().join(".kamal/hooks");
    std::fs::create_dir_all(&hooks).expect("hooks dir");
    let path = hooks.join("pre-deploy");
    std::fs::write(&path, "#!/bin/sh\necho red >&2\nexit 3\n").expect("hook");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let p = plan(&config, PlanKind::Deploy);
    let remote = Arc::new(Fake::default());
    let (outcome, _) = run(&p, &config, remote.clone(), dir.path());
    assert_eq!(outcome.exit, ExitCode::Failure);
    assert!(outcome
        .error_text()
        .is_some_and(|e| e.contains("pre-deploy")));
    assert!(!remote.purposes().iter().any(|p| p.contains(": start ")));
    assert!(released(&remote));
}

#[test]
fn cancelling_at_each_stage_starts_nothing_new_and_releases_the_lock() {
    let config = config_with(TWO_ROLES, None);
    let dir = tempfile::tempdir().expect("dir");
    let p = plan(&config, PlanKind::Deploy);
    // The first command of each stage that runs on hosts after the lock.
    for (at, later) in [
        ("pull", Some("acquire deploy lock")),
        ("acquire deploy lock", Some("boot the proxy")),
        ("boot the proxy", Some("stale")),
        ("stale", Some("start ")),
        ("start web", Some("tag latest")),
        ("tag latest", Some("prune")),
        ("prune", None),
    ] {
        let remote = Arc::new(Fake {
            cancel_on: Some(at.to_string()),
            ..Fake::default()
        });
        let (outcome, events) = run(&p, &config, remote.clone(), dir.path());
        assert_eq!(outcome.exit, ExitCode::Interrupted, "cancel at {at}");
        if let Some(later) = later {
            assert!(
                !remote.sent().iter().any(|(_, p)| p.starts_with(later)),
                "cancel at {at}: {later} still started"
            );
        }
        let took_lock = remote
            .sent()
            .iter()
            .any(|(_, p)| p.starts_with("acquire deploy lock"));
        assert_eq!(
            took_lock,
            released(&remote),
            "cancel at {at}: lock released"
        );
        assert!(events.iter().any(|e| matches!(
            e,
            Event::RunFinished {
                interrupted: true,
                ..
            }
        )));
    }
}

#[test]
fn a_held_lock_fails_before_anything_changes() {
    let config = config_with(TWO_ROLES, None);
    let dir = tempfile::tempdir().expect("dir");
    let p = plan(&config, PlanKind::Deploy);
    let remote = Arc::new(
        Fake::default()
            .with(|_, cmd| {
                cmd.purpose
                    .starts_with("acquire deploy lock")
                    .then(|| failed("", "mkdir: cannot create directory: File exists"))
            })
            .with(|_, cmd| {
                cmd.purpose.starts_with("read deploy lock").then(|| {
                    ok("Locked by: Ann at 2024-01-01T00:00:00Z\nVersion: v0\nMessage: Automatic deploy lock\n")
                })
            }),
    );
    let (outcome, _) = run(&p, &config, remote.clone(), dir.path());
    assert_eq!(outcome.exit, ExitCode::Failure);
    let text = outcome.error_text().unwrap_or_default();
    assert!(
        text.contains("deploy lock already in place") && text.contains("Locked by: Ann"),
        "{text}"
    );
    assert!(text.contains("hint: "), "{text}");
    // Not ours: never released, nothing booted.
    assert!(!released(&remote));
    assert!(!remote.purposes().iter().any(|p| p.contains(": start ")));
}

#[test]
fn every_failed_hosts_error_is_kept() {
    let config = config_with(TWO_ROLES, None);
    let dir = tempfile::tempdir().expect("dir");
    let p = plan(&config, PlanKind::Deploy);
    let remote = Arc::new(Fake::default().with(|h, cmd| {
        (cmd.purpose.starts_with("pull") && h != "1.1.1.1").then(|| failed("", "no such image"))
    }));
    let (outcome, events) = run(&p, &config, remote.clone(), dir.path());
    assert_eq!(outcome.exit, ExitCode::Failure);
    let hosts: Vec<_> = outcome.failures.iter().filter_map(|f| f.host()).collect();
    assert_eq!(hosts, ["1.1.1.2", "1.1.1.3"]);
    let with_errors = events
        .iter()
        .filter(|e| matches!(e, Event::HostResult { failures, .. } if !failures.is_empty()))
        .count();
    assert_eq!(with_errors, 2);
    // The host whose pull worked was never booted: "not started", not "failed".
    let first = events.iter().find_map(|e| match e {
        Event::HostResult { host, outcome, .. } if host == "1.1.1.1" => Some(*outcome),
        _ => None,
    });
    assert_eq!(first, Some(super::HostOutcome::NotStarted));
    // The pull failed before the lock: nothing to release.
    assert!(!released(&remote));
}

const LOCAL_REGISTRY: &str = "\
service: app
image: app
registry:
  server: localhost:5555
servers:
  web:
    - 1.1.1.1
    - 1.1.1.2
builder:
  arch: amd64
";

/// What `host` was sent, in order, as `purpose` or `open/close -R …`.
fn sent_to(remote: &Fake, host: &str) -> Vec<String> {
    remote
        .sent()
        .into_iter()
        .filter(|(h, _)| h == host)
        .map(|(_, p)| p)
        .collect()
}

#[test]
fn a_local_registry_pull_runs_inside_each_hosts_tunnel_closed_even_when_the_pull_fails() {
    let config = config_with(LOCAL_REGISTRY, None);
    let dir = tempfile::tempdir().expect("dir");
    let p = plan(&config, PlanKind::Deploy);
    let remote = Arc::new(Fake::default().with(|h, cmd| {
        (h == "1.1.1.2" && cmd.purpose.starts_with("pull ")).then(|| failed("", "refused"))
    }));
    let (outcome, _) = run(&p, &config, remote.clone(), dir.path());
    assert_eq!(
        outcome.exit,
        ExitCode::Failure,
        "{:?}",
        outcome.error_text()
    );
    let tunnel = "-R 127.0.0.1:5555:localhost:5555";
    for host in ["1.1.1.1", "1.1.1.2"] {
        let sent = sent_to(&remote, host);
        let open = sent.iter().position(|s| *s == format!("open {tunnel}"));
        let pull = sent
            .iter()
            .position(|s| s.starts_with("pull localhost:5555/app:v1"));
        let close = sent.iter().position(|s| *s == format!("close {tunnel}"));
        assert!(
            open < pull && pull < close && open.is_some(),
            "{host}: {sent:?}"
        );
        assert_eq!(
            sent.iter().filter(|s| s.contains(tunnel)).count(),
            2,
            "{sent:?}"
        );
        assert!(!sent.iter().any(|s| s.contains("log in")), "{sent:?}");
    }
    // The host whose pull failed sends nothing after closing its tunnel but the read-back.
    let failed_host = sent_to(&remote, "1.1.1.2");
    let after: Vec<&String> = failed_host
        .iter()
        .skip_while(|s| !s.starts_with("close "))
        .skip(1)
        .collect();
    assert!(
        after.iter().all(|s| s.starts_with("find running")),
        "{failed_host:?}"
    );
}

#[test]
fn a_tunnel_that_cannot_open_fails_its_host_before_the_pull() {
    let config = config_with(LOCAL_REGISTRY, None);
    let dir = tempfile::tempdir().expect("dir");
    let p = plan(&config, PlanKind::Deploy);
    let remote = Arc::new(Fake {
        refuse_tunnel_on: Some("1.1.1.1".into()),
        ..Fake::default()
    });
    let (outcome, _) = run(&p, &config, remote.clone(), dir.path());
    assert_ne!(outcome.exit, ExitCode::Success);
    let sent = sent_to(&remote, "1.1.1.1");
    assert!(!sent.iter().any(|s| s.starts_with("pull ")), "{sent:?}");
    let text = outcome.error_text().unwrap_or_default();
    assert!(
        text.contains("1.1.1.1") && text.contains("127.0.0.1:5555"),
        "{text}"
    );
}

#[test]
fn ctrl_c_during_a_tunnelled_pull_still_closes_every_opened_tunnel() {
    let config = config_with(LOCAL_REGISTRY, None);
    let dir = tempfile::tempdir().expect("dir");
    let p = plan(&config, PlanKind::Deploy);
    let remote = Arc::new(Fake {
        cancel_on: Some("pull ".into()),
        ..Fake::default()
    });
    let (outcome, _) = run(&p, &config, remote.clone(), dir.path());
    assert_eq!(outcome.exit, ExitCode::Interrupted);
    for host in ["1.1.1.1", "1.1.1.2"] {
        let sent = sent_to(&remote, host);
        let opened = sent.iter().filter(|s| s.starts_with("open ")).count();
        let closed = sent.iter().filter(|s| s.starts_with("close ")).count();
        assert_eq!(opened, closed, "{host}: {sent:?}");
        assert!(
            !sent.iter().any(|s| s.starts_with("start ")),
            "{host}: {sent:?}"
        );
    }
}

#[test]
fn say_names_once_the_hosts_whose_check_answered_and_the_others_go_on() {
    use crate::plan::{on_hosts, planned, stage, Hole, IfEmpty, SayStep, Step};
    let config = config_with(TWO_ROLES, None);
    let dir = tempfile::tempdir().expect("dir");
    let hosts: Vec<String> = ["1.1.1.3", "1.1.1.1", "1.1.1.2"].map(String::from).to_vec();
    let mut steps = on_hosts("check", &hosts, |_| {
        vec![planned(CommandSpec::new("check for a container", "docker"))
            .capture(Hole::ExistingContainer, IfEmpty::Keep)]
    });
    steps.push(Step::Say(SayStep {
        hosts: hosts.clone(),
        hole: Hole::ExistingContainer,
        text: "Skipping booting `db` on {hosts}, a container already exists".into(),
    }));
    steps.extend(on_hosts("boot", &hosts, |_| {
        vec![planned(CommandSpec::new("run the container", "docker"))
            .unless(Hole::ExistingContainer)]
    }));
    let targets = Targets::resolve(&config, &Filters::default()).expect("targets");
    let p = Plan::command(
        "accessory",
        Some("boot"),
        None,
        targets,
        vec![stage("boot db", steps)],
    );
    // 1.1.1.3 and 1.1.1.1 have one; 1.1.1.2 has none.
    let remote = Arc::new(Fake::default().with(|h, cmd| {
        (cmd.purpose == "check for a container" && h != "1.1.1.2").then(|| ok("abc123\n"))
    }));
    let (outcome, events) = run(&p, &config, remote.clone(), dir.path());
    assert_eq!(
        outcome.exit,
        ExitCode::Success,
        "{:?}",
        outcome.error_text()
    );
    let said: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Said { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    // One line, the hosts sorted as Kamal's `booted_hosts.sort.join(", ")`.
    assert_eq!(
        said,
        ["Skipping booting `db` on 1.1.1.1, 1.1.1.3, a container already exists"]
    );
    let runs: Vec<String> = remote
        .purposes()
        .into_iter()
        .filter(|p| p.ends_with("run the container"))
        .collect();
    assert_eq!(runs, ["1.1.1.2: run the container"]);
}

/// Every string and list of `spec` holds exactly its content (no spare capacity; an argument's
/// text is a `Text`, exact by construction).
fn exact(spec: &CommandSpec) -> bool {
    let tight = |s: &String| s.capacity() == s.len();
    tight(&spec.purpose) && tight(&spec.program) && spec.args.capacity() == spec.args.len()
}

/// Issue #19: a plan's equal argument texts (the same script on many hosts) are held once.
#[test]
fn a_deploy_plan_holds_each_argument_text_once() {
    use crate::command::{Arg, Text};
    let config = config_with(TWO_ROLES, None);
    for fold in [false, true] {
        let plan = plan_with(&config, PlanKind::Deploy, fold);
        let mut seen: Vec<&Text> = Vec::new();
        let mut repeated = 0;
        for (_, c) in plan.remote_commands() {
            for a in &c.spec.args {
                let (Arg::Literal(t) | Arg::Expanding(t) | Arg::Raw(t)) = a else {
                    continue;
                };
                match seen.iter().find(|s| **s == t) {
                    Some(s) => {
                        assert!(std::sync::Arc::ptr_eq(s, t), "fold {fold}: {t} held twice");
                        repeated += 1;
                    }
                    None => seen.push(t),
                }
            }
        }
        assert!(repeated > 10, "fold {fold}: only {repeated} texts repeat");
    }
}

/// Issue #19: a plan holds its commands for the whole run, one set per host (at 1,000 hosts
/// most of a deploy's memory), so none keeps the spare capacity its builder's `format!` and
/// `push` left: every command sent, and the ones kept for a failure (a lost start, a revert).
#[test]
fn a_deploy_plan_keeps_no_spare_capacity_in_its_commands() {
    use crate::plan::Step;
    let config = config_with(TWO_ROLES, None);
    for fold in [false, true] {
        let plan = plan_with(&config, PlanKind::Deploy, fold);
        let mut specs: Vec<&CommandSpec> = plan
            .remote_commands()
            .into_iter()
            .map(|(_, c)| &c.spec)
            .collect();
        let mut boots: Vec<&crate::plan::BootStep> = plan
            .steps()
            .filter_map(|s| match s {
                Step::Boot(b) => Some(b),
                _ => None,
            })
            .collect();
        assert!(!boots.is_empty());
        while let Some(b) = boots.pop() {
            specs.push(&b.if_start_lost.spec);
            specs.extend(b.commands.iter().map(|c| &c.spec));
            boots.extend(b.revert.as_deref());
        }
        let loose: Vec<&str> = specs
            .iter()
            .filter(|s| !exact(s))
            .map(|s| s.purpose.as_str())
            .collect();
        assert!(loose.is_empty(), "fold {fold}: spare capacity in {loose:?}");
    }
}

/// The filled copy of a command lives while it runs on its host: filling its holes leaves
/// no spare capacity either.
#[test]
fn a_filled_command_keeps_no_spare_capacity() {
    use crate::plan::Hole;
    let mut slots = super::host::Slots::default();
    slots.set(Hole::OldVersion, "v0".into());
    // holes at the start and in the middle: `replace` grows its buffer by doubling
    let body = "docker stop -t 30 app-web-x\n".repeat(20);
    let token = Hole::OldVersion.token();
    let script = format!("old={token}\n{body}echo {token}\n{body}");
    let spec = CommandSpec::new("settle", "sh").arg("-c").arg(script);
    let filled = slots.fill(&spec).expect("filled");
    assert!(filled.to_shell().contains("old=v0"));
    assert!(exact(&filled), "{:?}", filled.args);
}

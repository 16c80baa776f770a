//! `output:` end to end through the `dray` binary on the fleet: the file log Kamal 2.12 writes
//! (with a `-d` destination overriding its path), and OTLP/HTTP log records sent to a small
//! HTTP server this test starts on loopback that records what it receives (no real collector
//! here); with the collector not answering, the deploy still succeeds and ends quickly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::Project;

/// A secret value planted in `.kamal/secrets` and printed by a hook: never in a log.
const PLANTED: &str = "planted-output-secret-4711";

/// The example project with a planted registry password and a pre-deploy hook that prints
/// a line and the secret.
fn project(fleet: &Fleet, name: &str, edit: impl FnOnce(String) -> String) -> Project {
    let project = Project::new(fleet, &unique_name(name), edit);
    let secrets = format!("KAMAL_REGISTRY_USERNAME=dray-demo\nKAMAL_REGISTRY_PASSWORD={PLANTED}\n");
    crate::support::write(&project.path().join(".kamal/secrets"), &secrets);
    crate::support::write(&project.path().join(".kamal/secrets.staging"), &secrets);
    let hook = project.path().join(".kamal/hooks/pre-deploy");
    crate::support::write(
        &hook,
        "#!/bin/sh\necho \"pre-deploy says hello\"\necho \"password is $KAMAL_REGISTRY_PASSWORD\"\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    project
}

fn dray(project: &Project, args: &[&str]) -> std::process::Command {
    let mut cmd = crate::support::dray_cmd(project.path(), args);
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null");
    cmd
}

/// `  INFO [1a2b3c4d] ` (SSHKit's pretty prefix), the rest of the line.
fn after_prefix<'a>(line: &'a str, level: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(&format!("{level:>6} ["))?;
    let (uuid, rest) = rest.split_once("] ")?;
    (uuid.len() == 8 && uuid.chars().all(|c| c.is_ascii_hexdigit())).then_some(rest)
}

/// `  INFO <message>`: SSHKit's line for a message of no command (Kamal's `info` on a host, as
/// the boot barrier's "Waiting for the first healthy web container…").
fn message_of_no_command<'a>(line: &'a str, level: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(&format!("{level:>6} "))?;
    (!rest.starts_with('[') && !rest.starts_with('\t')).then_some(rest)
}

#[test]
fn deploy_with_output_file_writes_kamals_log_per_command_with_the_destination_path() {
    let Some(fleet) = Fleet::get() else { return };
    let project = project(fleet, "e2e-outfile", |d| {
        format!("{d}\noutput:\n  file:\n    path: log/base\n")
    });
    // The destination file overrides the path.
    crate::support::write(
        &project.path().join("config/deploy.staging.yml"),
        "output:\n  file:\n    path: log/staging/\n",
    );
    let out = dray(&project, &["deploy", "-d", "staging", "--version", "f1"])
        .output()
        .expect("run dray");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !project.path().join("log/base").exists(),
        "the destination's path wins"
    );
    let dir = project.path().join("log/staging");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .expect("log dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(files.len(), 1, "one file per command: {files:?}");
    let name = &files[0];
    // 2026-03-27T14-30-22_staging_deploy.log
    assert!(name.ends_with("_staging_deploy.log"), "{name}");
    let stamp = &name[..19];
    assert_eq!(stamp.len(), 19);
    for (i, c) in stamp.chars().enumerate() {
        match i {
            4 | 7 | 13 | 16 => assert_eq!(c, '-', "{name}"),
            10 => assert_eq!(c, 'T', "{name}"),
            _ => assert!(c.is_ascii_digit(), "{name}"),
        }
    }
    assert!(
        stderr.contains(&format!("Logs written to log/staging/{name}")),
        "{stderr}"
    );
    let log = std::fs::read_to_string(dir.join(name)).expect("log");
    assert!(!log.contains(PLANTED), "a secret in the log:\n{log}");
    let lines: Vec<&str> = log.lines().collect();
    // Kamal's `say` lines arrive as they are.
    for said in [
        "Build and push app image...",
        "Acquiring the deploy lock...",
        "Ensure kamal-proxy is running...",
        "Detect stale containers...",
        "Prune old containers and images...",
        "Releasing the deploy lock...",
    ] {
        assert!(lines.contains(&said), "no {said:?} in\n{log}");
    }
    // Lines of SSHKit's pretty format carry a level and a command id (a multi-line command
    // line continues on the lines after it, as SSHKit writes it).
    for line in &lines {
        if ["DEBUG ", "INFO ", "WARN ", "ERROR "]
            .iter()
            .any(|l| line.trim_start().starts_with(l))
        {
            assert!(
                ["DEBUG", "INFO", "WARN", "ERROR"].iter().any(|l| {
                    after_prefix(line, l).is_some() || message_of_no_command(line, l).is_some()
                }),
                "{line:?}"
            );
        }
    }
    if std::env::var_os("DRAY_TEST_SHOW_LOG").is_some() {
        eprintln!("{log}");
    }
    // Commands run on each host, each finished successfully.
    for host in fleet.require_hosts(3) {
        let ran = lines.iter().any(|l| {
            after_prefix(l, "INFO").is_some_and(|r| {
                r.starts_with("Running docker ") && r.ends_with(&format!(" on {host}"))
            })
        });
        assert!(ran, "no command on {host} in\n{log}");
    }
    assert!(lines
        .iter()
        .any(|l| after_prefix(l, "DEBUG").is_some_and(|r| r.starts_with("Command: docker "))));
    assert!(lines
        .iter()
        .any(|l| after_prefix(l, "INFO")
            .is_some_and(|r| r.starts_with("Finished in ")
                && r.ends_with(" with exit status 0 (successful)."))));
    // The hook: run locally, its output at debug, the secret redacted.
    let user_at = lines
        .iter()
        .find_map(|l| {
            after_prefix(l, "INFO")
                .and_then(|r| r.strip_prefix("Running /usr/bin/env .kamal/hooks/pre-deploy as "))
        })
        .unwrap_or_else(|| panic!("no pre-deploy hook in\n{log}"));
    assert!(user_at.ends_with("@localhost"), "{user_at}");
    assert!(lines
        .iter()
        .any(|l| after_prefix(l, "DEBUG") == Some("\tpre-deploy says hello")));
    assert!(
        lines
            .iter()
            .any(|l| after_prefix(l, "DEBUG") == Some("\tpassword is [REDACTED]")),
        "{log}"
    );
    for hook in ["pre-connect", "pre-build", "post-deploy"] {
        assert!(
            log.contains(&format!("Running /usr/bin/env .kamal/hooks/{hook} as ")),
            "{hook}"
        );
    }
    // The footer.
    let last = lines.last().expect("a last line");
    let secs = last
        .strip_prefix("# Completed in ")
        .and_then(|r| r.strip_suffix('s'))
        .unwrap_or_else(|| panic!("footer: {last:?}"));
    assert!(secs.parse::<f64>().is_ok_and(|s| s > 0.0), "{last}");
    project.cleanup(fleet);
}

/// What the loopback collector received: (request path, content type, JSON body).
pub(crate) type Received = Arc<Mutex<Vec<(String, String, serde_json::Value)>>>;

/// An HTTP server on loopback that answers every POST with 200 and records it.
pub(crate) fn collector() -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let received: Received = Arc::default();
    let rec = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let rec = rec.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    return;
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .to_string();
                let (mut length, mut content_type) = (0usize, String::new());
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                    let lower = header.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if let Some(v) = lower.strip_prefix("content-type:") {
                        content_type = v.trim().to_string();
                    }
                }
                let mut body = vec![0u8; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                if let Ok(mut r) = rec.lock() {
                    r.push((path, content_type, json));
                }
                let mut stream = reader.into_inner();
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
            });
        }
    });
    (port, received)
}

pub(crate) fn attr<'a>(attrs: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    attrs
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

#[test]
fn deploy_with_output_otel_ships_log_records_and_a_dead_collector_does_not_hold_it_up() {
    let Some(fleet) = Fleet::get() else { return };
    let (port, received) = collector();
    let project = project(fleet, "e2e-outotel", |d| {
        format!("{d}\noutput:\n  otel:\n    endpoint: http://127.0.0.1:{port}/\n")
    });
    let out = dray(&project, &["deploy", "--version", "o1"])
        .output()
        .expect("run dray");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("Logs sent to http://127.0.0.1:{port}/")),
        "{stderr}"
    );
    assert!(!stderr.contains("OTel log shipping failed"), "{stderr}");
    let got = received.lock().expect("received").clone();
    assert!(!got.is_empty(), "the collector received nothing");
    let mut records = Vec::new();
    for (path, content_type, body) in &got {
        assert_eq!(path, "/v1/logs");
        assert_eq!(content_type, "application/json");
        assert!(!body.to_string().contains(PLANTED), "a secret was sent");
        let rl = &body["resourceLogs"][0];
        let res = &rl["resource"]["attributes"];
        assert_eq!(
            attr(res, "kamal.deploy_version").expect("version")["stringValue"],
            "o1"
        );
        assert_eq!(
            attr(res, "service.name").expect("name")["stringValue"],
            "kamal"
        );
        assert_eq!(
            attr(res, "service.namespace").expect("service")["stringValue"],
            project.service.as_str()
        );
        assert!(attr(res, "kamal.run_id").is_some());
        assert!(attr(res, "kamal.performer").is_some());
        assert_eq!(rl["scopeLogs"][0]["scope"]["name"], "kamal");
        let batch = rl["scopeLogs"][0]["logRecords"]
            .as_array()
            .expect("records");
        assert!(batch.len() <= 100, "batches of at most 100");
        records.extend(batch.iter().cloned());
    }
    let event = |name: &str| {
        records
            .iter()
            .find(|r| r["eventName"] == name)
            .unwrap_or_else(|| panic!("no {name} event"))
            .clone()
    };
    let start = event("kamal.start");
    assert_eq!(
        attr(&start["attributes"], "kamal.command").expect("command")["stringValue"],
        "deploy"
    );
    assert_eq!(
        attr(&start["attributes"], "deployment.name").expect("name")["stringValue"],
        format!("deploy {}", project.service)
    );
    let complete = event("kamal.complete");
    assert_eq!(
        attr(&complete["attributes"], "deployment.status").expect("status")["stringValue"],
        "succeeded"
    );
    assert!(
        attr(&complete["attributes"], "kamal.runtime").expect("runtime")["doubleValue"].is_number()
    );
    for host in fleet.require_hosts(3) {
        assert!(
            records
                .iter()
                .any(|r| attr(&r["attributes"], "server.address")
                    .is_some_and(|v| v["stringValue"] == host.as_str())),
            "no record from {host}"
        );
    }
    assert!(records
        .iter()
        .any(|r| r["severityText"] == "DEBUG" && attr(&r["attributes"], "log.iostream").is_some()));
    assert!(records.iter().any(|r| r["body"]["stringValue"]
        .as_str()
        .is_some_and(|b| b.ends_with("\tpassword is [REDACTED]"))));

    // A collector that takes connections and never answers: the boot succeeds, and the run
    // ends within the shipper's bound after its last event.
    let hanging = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_port = hanging.local_addr().expect("addr").port();
    let config = project.path().join("config/deploy.yml");
    let text = std::fs::read_to_string(&config).expect("config");
    crate::support::write(
        &config,
        &text.replace(
            &format!("127.0.0.1:{port}/"),
            &format!("127.0.0.1:{dead_port}"),
        ),
    );
    let started = Instant::now();
    let mut child = dray(
        &project,
        &["app", "boot", "--version", "o1", "--output", "json"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn dray");
    let stdout = child.stdout.take().expect("stdout");
    let mut finished_at = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if line.contains("\"event\":\"run_finished\"") {
            assert!(line.contains("\"ok\":true"), "{line}");
            finished_at = Some(Instant::now());
        }
    }
    let out = child.wait_with_output().expect("wait");
    let ended = Instant::now();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let finished_at = finished_at.expect("a run_finished event");
    assert!(
        ended - finished_at < Duration::from_secs(10),
        "the end waited {:?} for the collector",
        ended - finished_at
    );
    assert!(started.elapsed() < Duration::from_secs(300));
    assert_eq!(
        stderr.matches("OTel log shipping failed").count(),
        1,
        "said once: {stderr}"
    );
    drop(hanging);
    project.cleanup(fleet);
}

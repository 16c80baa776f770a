//! `output:` — Kamal 2.12's output loggers, fed from the engine's events beside the reporter
//! ([`Tee`]):
//!
//! - `file: {path}`: for each command that changes the servers (Kamal's `modify` commands:
//!   [`modifies`]), one file `<path>/<%Y-%m-%dT%H-%M-%S>[_<destination>]_<command>[_<sub>].log`
//!   (local time; the directory is created; the file is opened for appending), holding every
//!   line Kamal's SSHKit formatter and `say` produce ([`lines`]) whatever `-v`/`-q` say, and a
//!   last line `# Completed in 12.3s` or `# FAILED: <class>: <message> (12.3s)`; then
//!   `Logs written to <file>` is printed.
//! - `otel: {endpoint}`: the same lines as OTLP/HTTP JSON log records to `<endpoint>/v1/logs`
//!   ([`otel`]), for every command that connects (as Kamal's formatter ships them), with
//!   `kamal.start` and `kamal.complete`/`kamal.failed` events around the `modify` commands.
//!
//! Best effort, as in Kamal: a log that cannot be written or a collector that is down is said
//! once on stderr and never fails the run. Every secret value the run read is replaced by
//! `[REDACTED]` before a line is written or sent (Kamal itself logs them in hook commands).

pub mod lines;
pub mod otel;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::engine::{Event, EventSink};
use crate::plan::{Plan, Step};

use lines::{Ending, LineFormatter, LogLine, Severity};
use otel::{AttrValue, Shipper};

/// Whether Kamal wraps `command [sub]` in `modify` (its commands that change the servers):
/// those get a file log and the OTel start/complete events. `app stale_containers` only
/// with `--stop` (a plan that takes the lock).
pub fn modifies(plan: &Plan) -> bool {
    let sub = plan.subcommand.as_deref().unwrap_or("");
    match plan.command.as_str() {
        "deploy" | "redeploy" | "rollback" | "setup" | "remove" | "upgrade" => true,
        "app" => match sub {
            "boot"
            | "start"
            | "stop"
            | "remove"
            | "live"
            | "maintenance"
            | "remove_container"
            | "remove_containers"
            | "remove_images"
            | "remove_app_directories" => true,
            "stale_containers" => plan.steps().any(|s| matches!(s, Step::Lock(_))),
            _ => false,
        },
        "accessory" => matches!(
            sub,
            "boot"
                | "upload"
                | "directories"
                | "reboot"
                | "start"
                | "stop"
                | "restart"
                | "pull_image"
                | "remove"
                | "remove_container"
                | "remove_image"
                | "remove_service_directory"
                | "upgrade"
        ),
        "proxy" => matches!(
            sub,
            "boot"
                | "reboot"
                | "upgrade"
                | "start"
                | "stop"
                | "restart"
                | "remove"
                | "remove_container"
                | "remove_image"
                | "remove_proxy_directory"
        ),
        "prune" => matches!(sub, "all" | "images" | "containers"),
        "server" => sub == "bootstrap",
        _ => false,
    }
}

/// Kamal's deploy commands: their events carry `deployment.*` attributes.
fn is_deploy(command: &str) -> bool {
    matches!(command, "deploy" | "redeploy" | "rollback" | "setup")
}

/// The file name Kamal gives a command's log.
pub fn file_name(
    at: chrono::DateTime<chrono::Local>,
    destination: Option<&str>,
    command: &str,
    subcommand: Option<&str>,
) -> String {
    let command: Vec<&str> = std::iter::once(command).chain(subcommand).collect();
    let mut parts = vec![at.format("%Y-%m-%dT%H-%M-%S").to_string()];
    parts.extend(destination.map(str::to_string));
    parts.push(command.join("_"));
    format!("{}.log", parts.join("_"))
}

/// Replaces secret values by `[REDACTED]`.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// Longest first, so a secret containing another is replaced whole.
    values: Vec<String>,
}

impl Redactor {
    /// Redact `values` (those shorter than 3 characters are left: they would mangle the log).
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut values: Vec<String> = values
            .into_iter()
            .filter(|v| v.chars().count() >= 3)
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Redactor { values }
    }

    /// `text` with every secret replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), crate::config::secrets::REDACTED);
            }
        }
        out
    }
}

/// The secret values a plan carries: hook variables marked secret, sensitive arguments and
/// local commands' environment.
pub fn plan_secrets(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    let mut spec = |s: &crate::command::CommandSpec| {
        for a in &s.args {
            if let crate::command::Arg::Sensitive { value, .. } = a {
                out.push(value.to_string());
                if let Some((_, v)) = value.split_once('=') {
                    out.push(v.to_string());
                }
            }
        }
        out.extend(s.env.iter().map(|(_, v)| v.clone()));
    };
    for (_, c) in plan.remote_commands() {
        spec(&c.spec);
    }
    for step in plan.steps() {
        match step {
            Step::Local(l) => l.commands.iter().for_each(|c| spec(&c.spec)),
            Step::Boot(b) => spec(&b.if_start_lost.spec),
            Step::Interactive(i) => spec(&i.command.spec),
            _ => {}
        }
    }
    for step in plan.steps() {
        if let Step::Hook(h) = step {
            out.extend(h.env.iter().filter(|v| v.secret).map(|v| v.value.clone()));
        }
    }
    out
}

/// Feeds every event to each sink in turn (the reporter, then the output log).
pub struct Tee(pub Vec<Box<dyn EventSink>>);

impl EventSink for Tee {
    fn emit(&mut self, event: &Event) {
        for s in &mut self.0 {
            s.emit(event);
        }
    }
}

/// A command's file log.
struct FileLog {
    /// The path as the configuration gives it (what `Logs written to` shows, as Kamal does).
    shown: PathBuf,
    file: std::fs::File,
}

/// The OTel side of a run.
struct OtelLog {
    shipper: Shipper,
    endpoint: String,
    run_id: String,
}

/// The `output:` loggers of one run.
pub struct OutputLog {
    formatter: LineFormatter,
    redactor: Redactor,
    /// `(dir, dir as configured, file name)` until the run starts.
    pending_file: Option<(PathBuf, PathBuf, String)>,
    file: Option<FileLog>,
    otel: Option<OtelLog>,
    modify: bool,
    command: String,
    service: String,
    /// The hook that failed, the stage that failed (for the failure class).
    failed_hook: Option<String>,
    failed_stage: Option<String>,
    stage: String,
}

/// A fresh random-looking UUID (v4 layout) for `kamal.run_id` / `deployment.id`.
fn run_id() -> String {
    use sha2::{Digest, Sha256};
    let seed = format!(
        "{:?}:{}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH),
        std::process::id()
    );
    let d = Sha256::digest(seed);
    let h: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-{}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        ["8", "9", "a", "b"][usize::from(d[8] & 3)],
        &h[17..20],
        &h[20..32]
    )
}

/// The local user, for `as user@localhost` (SSHKit takes `USER`).
fn local_user() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "root".into())
}

impl OutputLog {
    /// The loggers `config.output` asks for, for `plan` run in `root`; `None` when neither is
    /// configured (or nothing applies to this command).
    pub fn open(config: &Config, plan: &Plan, root: &Path) -> Option<OutputLog> {
        let modify = modifies(plan);
        let file_dir = config
            .output
            .file_path
            .as_ref()
            .filter(|_| modify)
            .map(|p| (root.join(p), PathBuf::from(p)));
        let endpoint = config.output.otel_endpoint.clone();
        if file_dir.is_none() && endpoint.is_none() {
            return None;
        }
        let destination = plan
            .release
            .as_ref()
            .and_then(|r| r.destination.clone())
            .or_else(|| config.destination.clone());
        let pending_file = file_dir.map(|(d, shown)| {
            let name = file_name(
                chrono::Local::now(),
                destination.as_deref(),
                &plan.command,
                plan.subcommand.as_deref(),
            );
            (d, shown, name)
        });
        let mut secrets = crate::config::secrets::loaded_values();
        secrets.extend(plan_secrets(plan));
        let otel = endpoint.map(|endpoint| {
            let run_id = run_id();
            // Kamal's tags without recorded_at and service_version, in its order.
            let performer = plan
                .release
                .as_ref()
                .map(|r| r.performer.clone())
                .unwrap_or_else(|| crate::release::performer(root, &|k| std::env::var(k).ok()));
            let mut resource = vec![
                ("service.name".to_string(), "kamal".to_string()),
                (
                    "service.version".to_string(),
                    env!("CARGO_PKG_VERSION").to_string(),
                ),
                ("kamal.run_id".to_string(), run_id.clone()),
                ("kamal.performer".to_string(), performer),
            ];
            if let Some(d) = &destination {
                resource.push(("deployment.environment.name".into(), d.clone()));
            }
            if let Some(r) = &plan.release {
                resource.push(("kamal.deploy_version".into(), r.version.clone()));
            }
            resource.push(("service.namespace".into(), config.service.clone()));
            OtelLog {
                shipper: Shipper::start(&endpoint, resource),
                endpoint,
                run_id,
            }
        });
        let hook_paths = plan
            .hooks()
            .map(|h| (h.hook.clone(), h.path.clone()))
            .collect();
        let command: Vec<&str> = std::iter::once(plan.command.as_str())
            .chain(plan.subcommand.as_deref())
            .collect();
        Some(OutputLog {
            formatter: LineFormatter::new(
                hook_paths,
                local_user(),
                plan.skip_push,
                plan.release.as_ref().map(|r| r.version.clone()),
            ),
            redactor: Redactor::new(secrets),
            pending_file,
            file: None,
            otel,
            modify,
            command: command.join(" "),
            service: config.service.clone(),
            failed_hook: None,
            failed_stage: None,
            stage: String::new(),
        })
    }

    fn start(&mut self) {
        if let Some((dir, shown, name)) = self.pending_file.take() {
            let path = dir.join(&name);
            let shown = shown.join(name);
            let opened = std::fs::create_dir_all(&dir).and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
            });
            match opened {
                Ok(file) => self.file = Some(FileLog { shown, file }),
                Err(e) => eprintln!(
                    "warning: output log {}: {e} (the run goes on without it)",
                    path.display()
                ),
            }
        }
        if self.modify {
            let attrs = self.deployment_attrs(None);
            let mut all = vec![("kamal.command", AttrValue::Str(self.command.clone()))];
            all.extend(attrs);
            self.event("kamal.start", Severity::Info, &all);
        }
    }

    fn deployment_attrs(&self, status: Option<&str>) -> Vec<(&'static str, AttrValue)> {
        let (true, Some(otel)) = (is_deploy(self.command.as_str()), &self.otel) else {
            return Vec::new();
        };
        let mut v = vec![
            ("deployment.id", AttrValue::Str(otel.run_id.clone())),
            (
                "deployment.name",
                AttrValue::Str(format!("{} {}", self.command, self.service)),
            ),
        ];
        if let Some(s) = status {
            v.push(("deployment.status", AttrValue::Str(s.to_string())));
        }
        v
    }

    fn event(&self, name: &str, severity: Severity, attrs: &[(&str, AttrValue)]) {
        if let Some(o) = &self.otel {
            let attrs: Vec<(&str, AttrValue)> = attrs
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        AttrValue::Str(s) => AttrValue::Str(self.redactor.redact(s)),
                        d => d.clone(),
                    };
                    (*k, v)
                })
                .collect();
            o.shipper.send(otel::event_record(name, severity, &attrs));
        }
    }

    fn write(&mut self, line: LogLine) {
        let line = LogLine {
            text: self.redactor.redact(&line.text),
            ..line
        };
        if let Some(f) = &mut self.file {
            let _ = writeln!(f.file, "{}", line.text);
        }
        if let Some(o) = &self.otel {
            // Kamal's shipper makes one record per line of a message.
            for text in line.text.lines() {
                o.shipper.send(otel::line_record(&LogLine {
                    text: text.to_string(),
                    ..line.clone()
                }));
            }
        }
    }

    /// The error class Kamal would name for how this run failed.
    fn failure_class(&self, interrupted: bool) -> &'static str {
        if interrupted {
            "Interrupt"
        } else if self.failed_hook.is_some() {
            "Kamal::Cli::HookError"
        } else if matches!(self.failed_stage.as_deref(), Some("lock" | "unlock")) {
            "Kamal::Cli::LockError"
        } else {
            "SSHKit::Runner::ExecuteError"
        }
    }

    fn finish(&mut self, ending: &Ending) {
        if let Some(mut f) = self.file.take() {
            let _ = writeln!(f.file, "{}", self.redactor.redact(&lines::footer(ending)));
            let _ = f.file.flush();
            eprintln!("Logs written to {}", f.shown.display());
        }
        if self.modify {
            let runtime = ("kamal.runtime", AttrValue::Double(ending.runtime));
            let command = ("kamal.command", AttrValue::Str(self.command.clone()));
            match &ending.failure {
                None => {
                    let mut attrs = vec![command, runtime];
                    attrs.extend(self.deployment_attrs(Some("succeeded")));
                    self.event("kamal.complete", Severity::Info, &attrs);
                }
                Some((class, message)) => {
                    let mut attrs = vec![
                        command,
                        runtime,
                        ("exception.type", AttrValue::Str(class.clone())),
                        ("exception.message", AttrValue::Str(message.clone())),
                    ];
                    attrs.extend(self.deployment_attrs(Some("failed")));
                    self.event("kamal.failed", Severity::Error, &attrs);
                }
            }
        }
        if let Some(mut o) = self.otel.take() {
            o.shipper.shutdown();
            if self.modify {
                eprintln!("Logs sent to {}", o.endpoint);
            }
        }
    }
}

impl EventSink for OutputLog {
    fn emit(&mut self, event: &Event) {
        match event {
            Event::RunStarted { .. } => self.start(),
            Event::StageStarted { stage, .. } => self.stage = stage.clone(),
            Event::HookFinished {
                hook,
                exit_code: Some(c),
                ..
            } if *c != 0 => self.failed_hook = Some(hook.clone()),
            Event::HookFinished {
                hook,
                exit_code: None,
                ..
            } => self.failed_hook = Some(hook.clone()),
            Event::StageFinished {
                stage, ok: false, ..
            } if self.failed_stage.is_none() => self.failed_stage = Some(stage.clone()),
            _ => {}
        }
        for line in self.formatter.lines(event) {
            self.write(line);
        }
        if let Event::RunFinished {
            ok,
            interrupted,
            seconds,
            error,
            ..
        } = event
        {
            let failure = (!ok).then(|| {
                (
                    self.failure_class(*interrupted).to_string(),
                    self.redactor
                        .redact(error.as_deref().unwrap_or(if *interrupted {
                            "interrupted"
                        } else {
                            "failed"
                        })),
                )
            });
            self.finish(&Ending {
                runtime: lines::runtime(*seconds),
                failure,
            });
        }
    }
}

impl Drop for OutputLog {
    fn drop(&mut self) {
        // A run that ended without `run_finished` (it should not): close what is open.
        if let Some(mut o) = self.otel.take() {
            o.shipper.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn file_names_are_time_destination_command_and_sub() {
        let at = chrono::Local
            .with_ymd_and_hms(2026, 3, 27, 14, 30, 22)
            .single()
            .expect("a local time");
        assert_eq!(
            file_name(at, None, "deploy", None),
            "2026-03-27T14-30-22_deploy.log"
        );
        assert_eq!(
            file_name(at, Some("production"), "app", Some("boot")),
            "2026-03-27T14-30-22_production_app_boot.log"
        );
    }

    #[test]
    fn the_redactor_replaces_secrets_longest_first() {
        let r = Redactor::new(vec!["ab".into(), "secret".into(), "secret-long".into()]);
        assert_eq!(
            r.redact("x secret-long y secret ab"),
            "x [REDACTED] y [REDACTED] ab"
        );
    }

    fn plan(command: &str, sub: Option<&str>, secret: &str) -> Plan {
        let targets = crate::plan::Targets {
            roles: vec!["web".into()],
            hosts: vec!["1.1.1.1".into()],
            primary_host: "1.1.1.1".into(),
            roles_filtered: false,
        };
        let hook = Step::Hook(crate::plan::HookStep {
            hook: "pre-deploy".into(),
            path: ".kamal/hooks/pre-deploy".into(),
            env: vec![crate::hooks::HookVar {
                name: "DB_PASSWORD".into(),
                value: secret.into(),
                secret: true,
            }],
        });
        Plan::command(
            command,
            sub,
            None,
            targets,
            vec![crate::plan::stage("pre-deploy", vec![hook])],
        )
    }

    fn config(dir: &Path) -> Config {
        let text = format!(
            "service: app\nimage: app\nregistry:\n  server: localhost:5555\nservers:\n  - 1.1.1.1\nbuilder:\n  arch: amd64\noutput:\n  file:\n    path: {}\n",
            dir.join("logs").display()
        );
        crate::config::load::load_str_without_commands(&text, "config/deploy.yml").expect("config")
    }

    fn run_started() -> Event {
        Event::RunStarted {
            command: "prune".into(),
            subcommand: Some("all".into()),
            kind: crate::plan::PlanKind::Command,
            version: None,
            image: None,
            hosts: vec!["1.1.1.1".into()],
            roles: vec!["web".into()],
            output: crate::plan::OutputStyle::Prefixed,
        }
    }

    #[test]
    fn a_failed_hook_ends_the_file_with_kamals_failed_line_and_no_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = "hunter2-very-secret";
        let mut log = OutputLog::open(
            &config(dir.path()),
            &plan("prune", Some("all"), secret),
            dir.path(),
        )
        .expect("a log");
        for e in [
            run_started(),
            Event::StageStarted {
                stage: "pre-deploy".into(),
                heading: None,
            },
            Event::HookStarted {
                hook: "pre-deploy".into(),
            },
            Event::HookOutput {
                hook: "pre-deploy".into(),
                line: format!("leaking {secret}"),
            },
            Event::HookFinished {
                hook: "pre-deploy".into(),
                exit_code: Some(1),
                seconds: 0.2,
            },
            Event::StageFinished {
                stage: "pre-deploy".into(),
                seconds: 0.2,
                ok: false,
            },
            Event::RunFinished {
                interrupted: false,
                ok: false,
                seconds: 1.26,
                exit_code: 1,
                error: Some("hook pre-deploy failed: exit status 1".into()),
            },
        ] {
            log.emit(&e);
        }
        let files: Vec<PathBuf> = std::fs::read_dir(dir.path().join("logs"))
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(files.len(), 1);
        let name = files[0]
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        assert!(name.ends_with("_prune_all.log"), "{name}");
        let text = std::fs::read_to_string(&files[0]).expect("log");
        assert!(!text.contains(secret), "{text}");
        assert!(text.contains("\tleaking [REDACTED]"), "{text}");
        assert_eq!(
            text.lines().last(),
            Some("# FAILED: Kamal::Cli::HookError: hook pre-deploy failed: exit status 1 (1.3s)")
        );
    }

    #[test]
    fn read_only_commands_get_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(OutputLog::open(
            &config(dir.path()),
            &plan("app", Some("details"), "x"),
            dir.path()
        )
        .is_none());
        assert!(modifies(&plan("deploy", None, "x")));
        assert!(modifies(&plan("app", Some("boot"), "x")));
        assert!(!modifies(&plan("app", Some("stale_containers"), "x")));
        assert!(!modifies(&plan("lock", Some("acquire"), "x")));
    }

    /// A loopback HTTP server answering 200 and keeping each request body.
    fn collector() -> (u16, std::sync::mpsc::Receiver<serde_json::Value>) {
        use std::io::{BufRead, BufReader, Read};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                if reader.read_exact(&mut body).is_ok() {
                    let _ = tx.send(serde_json::from_slice(&body).unwrap_or_default());
                }
                let _ = reader
                    .into_inner()
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            }
        });
        (port, rx)
    }

    #[test]
    fn a_failed_deploy_sends_start_lines_and_failed_with_the_exception() {
        let (port, bodies) = collector();
        let text = format!(
            "service: app\nimage: app\nregistry:\n  server: localhost:5555\nservers:\n  - 1.1.1.1\nbuilder:\n  arch: amd64\noutput:\n  otel:\n    endpoint: http://127.0.0.1:{port}\n"
        );
        let config = crate::config::load::load_str_without_commands(&text, "config/deploy.yml")
            .expect("config");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = OutputLog::open(&config, &plan("deploy", None, "s3cr3t-value"), dir.path())
            .expect("a log");
        for e in [
            run_started(),
            Event::CommandStarted {
                host: "1.1.1.1".into(),
                purpose: "p".into(),
                line: "docker ps".into(),
            },
            Event::CommandFinished {
                host: "1.1.1.1".into(),
                exit_code: Some(1),
                seconds: 0.5,
                stdout: String::new(),
                stderr: "no s3cr3t-value here\n".into(),
            },
            Event::RunFinished {
                interrupted: false,
                ok: false,
                seconds: 2.0,
                exit_code: 1,
                error: Some("docker ps exited 1".into()),
            },
        ] {
            log.emit(&e);
        }
        let body = bodies
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("a request");
        assert!(!body.to_string().contains("s3cr3t-value"), "{body}");
        let records = body["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
            .as_array()
            .expect("records")
            .clone();
        let attr = |r: &serde_json::Value, k: &str| {
            r["attributes"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["key"] == k))
                .map(|x| x["value"].clone())
        };
        assert_eq!(records[0]["eventName"], "kamal.start");
        assert_eq!(
            attr(&records[0], "kamal.command").expect("command")["stringValue"],
            "deploy"
        );
        let failed = records.last().expect("last");
        assert_eq!(failed["eventName"], "kamal.failed");
        assert_eq!(failed["severityText"], "ERROR");
        assert_eq!(
            attr(failed, "exception.type").expect("type")["stringValue"],
            "SSHKit::Runner::ExecuteError"
        );
        assert_eq!(
            attr(failed, "exception.message").expect("message")["stringValue"],
            "docker ps exited 1"
        );
        assert_eq!(
            attr(failed, "kamal.runtime").expect("runtime")["doubleValue"],
            2.0
        );
        assert_eq!(
            attr(failed, "deployment.status").expect("status")["stringValue"],
            "failed"
        );
        assert_eq!(
            attr(failed, "deployment.name").expect("name")["stringValue"],
            "deploy app"
        );
        assert!(records.iter().any(|r| r["body"]["stringValue"]
            .as_str()
            .is_some_and(|b| b.ends_with("\tno [REDACTED] here"))));
    }

    #[test]
    fn run_ids_look_like_uuids() {
        let id = run_id();
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
    }
}

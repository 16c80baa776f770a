//! Engine events as the lines Kamal 2.12's output loggers receive: SSHKit's `Pretty` format
//! (`  INFO [1a2b3c4d] Running … on host`, ` DEBUG [1a2b3c4d] \tstdout line`, `  INFO
//! [1a2b3c4d] Finished in 0.123 seconds with exit status 0 (successful).`), every level
//! whatever `-v`/`-q` say, without colour; plus the progress messages Kamal `say`s (`Build
//! and push app image...`), which arrive as they are; and the footer of the file log.

use std::collections::HashMap;

use crate::engine::Event;

/// The level of a line (SSHKit's `Logger` levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// `DEBUG`: command lines and output.
    Debug,
    /// `INFO`: `Running …`, `Finished …`, messages.
    Info,
    /// `WARN`.
    Warn,
    /// `ERROR`.
    Error,
}

impl Severity {
    /// SSHKit's name of the level.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
        }
    }

    /// The OTLP severity number (`DEBUG` 5, `INFO` 9, `WARN` 13, `ERROR` 17).
    pub fn number(self) -> u8 {
        match self {
            Severity::Debug => 5,
            Severity::Info => 9,
            Severity::Warn => 13,
            Severity::Error => 17,
        }
    }
}

/// One line for the loggers, with the context Kamal's formatter attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The text, without its newline.
    pub text: String,
    /// Its level (`Info` for messages).
    pub severity: Severity,
    /// The host of the command it belongs to (`server.address`).
    pub host: Option<String>,
    /// `stdout`/`stderr` for command output (`log.iostream`).
    pub iostream: Option<&'static str>,
}

impl LogLine {
    fn message(text: impl Into<String>) -> LogLine {
        LogLine {
            text: text.into(),
            severity: Severity::Info,
            host: None,
            iostream: None,
        }
    }
}

/// SSHKit's `format_message`: the level right-aligned in six columns, then `[uuid]` (none for
/// a message that belongs to no command, as SSHKit's `write_message` without a uuid).
pub fn pretty(severity: Severity, uuid: &str, message: &str) -> String {
    if uuid.is_empty() {
        format!("{:>6} {message}", severity.name())
    } else {
        format!("{:>6} [{uuid}] {message}", severity.name())
    }
}

/// The message Kamal `say`s before the work of a stage, if it says one.
fn stage_message(stage: &str, skip_push: bool, version: Option<&str>) -> Option<String> {
    if let ("boot", Some(v)) = (stage, version) {
        return Some(format!(
            "Start container with version {v} (or reboot if already running)..."
        ));
    }
    Some(
        match stage {
            "build" => "Build and push app image...",
            "pull" if skip_push => "Pull app image...",
            "proxy" => "Ensure kamal-proxy is running...",
            "stale-containers" => "Detect stale containers...",
            "prune" => "Prune old containers and images...",
            "lock" => "Acquiring the deploy lock...",
            "unlock" => "Releasing the deploy lock...",
            _ => return None,
        }
        .to_string(),
    )
}

/// Turns events into [`LogLine`]s, keeping which command each host is running.
#[derive(Debug)]
pub struct LineFormatter {
    /// Hook name → its path as Kamal runs it (`.kamal/hooks/pre-deploy`).
    hook_paths: HashMap<String, String>,
    /// The local user, for `as user@localhost`.
    user: String,
    skip_push: bool,
    version: Option<String>,
    stage: String,
    /// Per host (or hook), the uuid of the command running there.
    running: HashMap<String, String>,
    seed: u64,
    count: u64,
}

impl LineFormatter {
    /// A formatter for a plan whose hooks are at `hook_paths` (name, path), releasing
    /// `version` (if it has one).
    pub fn new(
        hook_paths: Vec<(String, String)>,
        user: String,
        skip_push: bool,
        version: Option<String>,
    ) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id());
        LineFormatter {
            hook_paths: hook_paths.into_iter().collect(),
            user,
            skip_push,
            version,
            stage: String::new(),
            running: HashMap::new(),
            seed,
            count: 0,
        }
    }

    /// A fresh 8-hex-digit command id, as SSHKit gives each command.
    fn uuid(&mut self) -> String {
        use sha2::{Digest, Sha256};
        self.count += 1;
        let digest = Sha256::digest(format!("{}:{}", self.seed, self.count));
        digest[..4].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Lock commands run at debug level in Kamal.
    fn command_level(&self) -> Severity {
        if self.stage == "lock" || self.stage == "unlock" {
            Severity::Debug
        } else {
            Severity::Info
        }
    }

    fn data(uuid: &str, host: &str, iostream: &'static str, text: &str) -> Vec<LogLine> {
        text.lines()
            .map(|l| LogLine {
                text: pretty(Severity::Debug, uuid, &format!("\t{l}")),
                severity: Severity::Debug,
                host: Some(host.to_string()),
                iostream: Some(iostream),
            })
            .collect()
    }

    fn finished(
        uuid: &str,
        host: &str,
        level: Severity,
        exit: Option<i32>,
        seconds: f64,
    ) -> LogLine {
        let status = exit.map(|c| c.to_string()).unwrap_or_default();
        let result = if exit == Some(0) {
            "successful"
        } else {
            "failed"
        };
        LogLine {
            text: pretty(
                level,
                uuid,
                &format!("Finished in {seconds:5.3} seconds with exit status {status} ({result})."),
            ),
            severity: level,
            host: Some(host.to_string()),
            iostream: None,
        }
    }

    /// The lines for `event` (none for most events).
    pub fn lines(&mut self, event: &Event) -> Vec<LogLine> {
        match event {
            Event::StageStarted { stage, .. } => {
                self.stage = stage.clone();
                stage_message(stage, self.skip_push, self.version.as_deref())
                    .map(|m| vec![LogLine::message(m)])
                    .unwrap_or_default()
            }
            Event::HookStarted { hook } => {
                let uuid = self.uuid();
                self.running.insert(format!("hook {hook}"), uuid.clone());
                let path = self
                    .hook_paths
                    .get(hook)
                    .cloned()
                    .unwrap_or_else(|| format!(".kamal/hooks/{hook}"));
                let line = format!("/usr/bin/env {path}");
                vec![
                    LogLine {
                        text: pretty(
                            Severity::Info,
                            &uuid,
                            &format!("Running {line} as {}@localhost", self.user),
                        ),
                        severity: Severity::Info,
                        host: Some("localhost".into()),
                        iostream: None,
                    },
                    LogLine {
                        text: pretty(Severity::Debug, &uuid, &format!("Command: {line}")),
                        severity: Severity::Debug,
                        host: Some("localhost".into()),
                        iostream: None,
                    },
                ]
            }
            Event::HookOutput { hook, line } => {
                let uuid = self
                    .running
                    .get(&format!("hook {hook}"))
                    .cloned()
                    .unwrap_or_default();
                Self::data(&uuid, "localhost", "stdout", line)
            }
            Event::HookFinished {
                hook,
                exit_code,
                seconds,
            } => {
                let uuid = self
                    .running
                    .remove(&format!("hook {hook}"))
                    .unwrap_or_default();
                vec![Self::finished(
                    &uuid,
                    "localhost",
                    Severity::Info,
                    *exit_code,
                    *seconds,
                )]
            }
            Event::CommandStarted { host, line, .. } => {
                let uuid = self.uuid();
                self.running.insert(host.clone(), uuid.clone());
                let level = self.command_level();
                let local = host == "localhost" || host == "local";
                let on = if local {
                    format!("as {}@localhost", self.user)
                } else {
                    format!("on {host}")
                };
                vec![
                    LogLine {
                        text: pretty(level, &uuid, &format!("Running {line} {on}")),
                        severity: level,
                        host: Some(host.clone()),
                        iostream: None,
                    },
                    LogLine {
                        text: pretty(Severity::Debug, &uuid, &format!("Command: {line}")),
                        severity: Severity::Debug,
                        host: Some(host.clone()),
                        iostream: None,
                    },
                ]
            }
            Event::CommandFinished {
                host,
                exit_code,
                seconds,
                stdout,
                stderr,
            } => {
                let uuid = self.running.remove(host).unwrap_or_default();
                let mut out = Self::data(&uuid, host, "stdout", stdout);
                out.extend(Self::data(&uuid, host, "stderr", stderr));
                out.push(Self::finished(
                    &uuid,
                    host,
                    self.command_level(),
                    *exit_code,
                    *seconds,
                ));
                out
            }
            Event::HostOutput { host, line } => match self.running.get(host) {
                Some(uuid) => Self::data(uuid, host, "stdout", line),
                // Not a command's output: Kamal's `info` on the host (the boot barrier's words),
                // `  INFO <line>`.
                None => line
                    .lines()
                    .map(|l| LogLine {
                        text: pretty(Severity::Info, "", l),
                        severity: Severity::Info,
                        host: Some(host.to_string()),
                        iostream: None,
                    })
                    .collect(),
            },
            Event::Warning { message } => vec![LogLine {
                text: message.clone(),
                severity: Severity::Warn,
                host: None,
                iostream: None,
            }],
            _ => Vec::new(),
        }
    }
}

/// How a run ended, for the footer and the `kamal.failed` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Ending {
    /// Seconds, rounded to a tenth as Kamal does.
    pub runtime: f64,
    /// The error class and message, when it failed.
    pub failure: Option<(String, String)>,
}

/// The last line of a file log: `# Completed in 12.3s` or `# FAILED: Class: message (12.3s)`.
pub fn footer(ending: &Ending) -> String {
    match &ending.failure {
        None => format!("# Completed in {:.1}s", ending.runtime),
        Some((class, message)) => {
            format!("# FAILED: {class}: {message} ({:.1}s)", ending.runtime)
        }
    }
}

/// Kamal's runtime: seconds rounded to one decimal.
pub fn runtime(seconds: f64) -> f64 {
    (seconds * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatter() -> LineFormatter {
        LineFormatter::new(
            vec![("pre-deploy".into(), ".kamal/hooks/pre-deploy".into())],
            "dhh".into(),
            false,
            Some("abc".into()),
        )
    }

    fn texts(lines: &[LogLine]) -> Vec<String> {
        lines.iter().map(|l| l.text.clone()).collect()
    }

    #[test]
    fn pretty_right_aligns_the_level_in_six_columns() {
        assert_eq!(
            pretty(Severity::Info, "1a2b3c4d", "Running x on h"),
            "  INFO [1a2b3c4d] Running x on h"
        );
        assert_eq!(
            pretty(Severity::Debug, "1a2b3c4d", "\tout"),
            " DEBUG [1a2b3c4d] \tout"
        );
    }

    #[test]
    fn a_remote_command_is_running_command_output_and_finished_under_one_uuid() {
        let mut f = formatter();
        let mut lines = f.lines(&Event::CommandStarted {
            host: "1.1.1.1".into(),
            purpose: "p".into(),
            line: "docker ps".into(),
        });
        lines.extend(f.lines(&Event::CommandFinished {
            host: "1.1.1.1".into(),
            exit_code: Some(0),
            seconds: 0.1234,
            stdout: "a\nb\n".into(),
            stderr: "warn\n".into(),
        }));
        let uuid = &lines[0].text[8..16];
        assert_eq!(
            texts(&lines),
            [
                format!("  INFO [{uuid}] Running docker ps on 1.1.1.1"),
                format!(" DEBUG [{uuid}] Command: docker ps"),
                format!(" DEBUG [{uuid}] \ta"),
                format!(" DEBUG [{uuid}] \tb"),
                format!(" DEBUG [{uuid}] \twarn"),
                format!(
                    "  INFO [{uuid}] Finished in 0.123 seconds with exit status 0 (successful)."
                ),
            ]
        );
        assert_eq!(lines[2].iostream, Some("stdout"));
        assert_eq!(lines[4].iostream, Some("stderr"));
        assert!(lines.iter().all(|l| l.host.as_deref() == Some("1.1.1.1")));
        assert_eq!(lines[0].severity, Severity::Info);
        assert_eq!(lines[2].severity, Severity::Debug);
    }

    #[test]
    fn a_failed_command_says_failed_with_its_status() {
        let mut f = formatter();
        f.lines(&Event::CommandStarted {
            host: "h".into(),
            purpose: "p".into(),
            line: "false".into(),
        });
        let lines = f.lines(&Event::CommandFinished {
            host: "h".into(),
            exit_code: Some(125),
            seconds: 1.5,
            stdout: String::new(),
            stderr: String::new(),
        });
        assert!(lines[0]
            .text
            .ends_with("Finished in 1.500 seconds with exit status 125 (failed)."));
    }

    #[test]
    fn hooks_run_locally_as_the_user_with_their_output_at_debug() {
        let mut f = formatter();
        let mut lines = f.lines(&Event::HookStarted {
            hook: "pre-deploy".into(),
        });
        lines.extend(f.lines(&Event::HookOutput {
            hook: "pre-deploy".into(),
            line: "checking".into(),
        }));
        lines.extend(f.lines(&Event::HookFinished {
            hook: "pre-deploy".into(),
            exit_code: Some(0),
            seconds: 0.01,
        }));
        let uuid = &lines[0].text[8..16];
        assert_eq!(
            texts(&lines),
            [
                format!(
                    "  INFO [{uuid}] Running /usr/bin/env .kamal/hooks/pre-deploy as dhh@localhost"
                ),
                format!(" DEBUG [{uuid}] Command: /usr/bin/env .kamal/hooks/pre-deploy"),
                format!(" DEBUG [{uuid}] \tchecking"),
                format!(
                    "  INFO [{uuid}] Finished in 0.010 seconds with exit status 0 (successful)."
                ),
            ]
        );
    }

    #[test]
    fn stages_say_what_kamal_says_and_lock_commands_are_debug() {
        let mut f = formatter();
        let said = f.lines(&Event::StageStarted {
            stage: "build".into(),
            heading: None,
        });
        assert_eq!(texts(&said), ["Build and push app image..."]);
        assert_eq!(
            texts(&f.lines(&Event::StageStarted {
                stage: "boot".into(),
                heading: None,
            })),
            ["Start container with version abc (or reboot if already running)..."]
        );
        assert!(f
            .lines(&Event::StageStarted {
                stage: "tag-latest".into(),
                heading: None,
            })
            .is_empty());
        let said = f.lines(&Event::StageStarted {
            stage: "lock".into(),
            heading: None,
        });
        assert_eq!(texts(&said), ["Acquiring the deploy lock..."]);
        let lines = f.lines(&Event::CommandStarted {
            host: "h".into(),
            purpose: "p".into(),
            line: "mkdir -p .kamal/lock-app".into(),
        });
        assert!(lines[0].text.starts_with(" DEBUG ["), "{:?}", lines[0]);
    }

    #[test]
    fn uuids_differ_per_command() {
        let mut f = formatter();
        let a = f.uuid();
        let b = f.uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 8);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn footers_match_kamal() {
        assert_eq!(
            footer(&Ending {
                runtime: runtime(12.34),
                failure: None
            }),
            "# Completed in 12.3s"
        );
        assert_eq!(
            footer(&Ending {
                runtime: runtime(5.0),
                failure: Some((
                    "Kamal::Cli::HookError".into(),
                    "Hook `pre-deploy` failed".into()
                ))
            }),
            "# FAILED: Kamal::Cli::HookError: Hook `pre-deploy` failed (5.0s)"
        );
    }
}

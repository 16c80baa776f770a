//! Reporters consume engine events: a live view per host on a terminal ([`live`]), plain
//! `[host] message` lines for CI logs (stderr), or one JSON object per event (`--output json`,
//! stdout).

pub mod live;

use std::io::Write;

use crate::engine::events::Event;

/// Something that renders events.
pub trait Reporter: Send {
    /// Render one event.
    fn emit(&mut self, event: &Event);
}

/// How much a human reporter shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// `-q`: errors and the summary only.
    Quiet,
    /// Default.
    Normal,
    /// `-v`: also every hook's output.
    Verbose,
}

/// One JSON object per line on stdout.
#[derive(Debug, Default)]
pub struct JsonReporter;

impl Reporter for JsonReporter {
    fn emit(&mut self, event: &Event) {
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

/// One row of the summary: host, role, version running, ok, error.
type ResultRow = (String, String, Option<String>, bool, Option<String>);

/// Plain lines on stderr, `[host]`-prefixed, then a summary table.
#[derive(Debug)]
pub struct HumanReporter {
    verbosity: Verbosity,
    /// Hooks whose output is shown (from `hooks_output` and `-v`).
    show_hook_output: Box<[String]>,
    results: Vec<ResultRow>,
    stages: Vec<(String, f64)>,
}

impl HumanReporter {
    /// A reporter at `verbosity`, showing the output of the hooks in `show_hook_output`.
    pub fn new(verbosity: Verbosity, show_hook_output: Vec<String>) -> Self {
        HumanReporter {
            verbosity,
            show_hook_output: show_hook_output.into_boxed_slice(),
            results: Vec::new(),
            stages: Vec::new(),
        }
    }

    fn line(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }
}

impl Reporter for HumanReporter {
    fn emit(&mut self, event: &Event) {
        let quiet = self.verbosity == Verbosity::Quiet;
        match event {
            Event::RunStarted {
                command,
                version,
                image,
                hosts,
                ..
            } if !quiet => self.line(&format!(
                "{command} {version} ({image}) to {}",
                hosts.join(", ")
            )),
            Event::StageStarted { stage } if !quiet => self.line(&format!("==> {stage}")),
            Event::StageFinished { stage, seconds, .. } => {
                self.stages.push((stage.clone(), *seconds));
            }
            Event::HookStarted { hook } if !quiet => self.line(&format!("  running hook {hook}")),
            Event::HookOutput { hook, line } if self.show_hook_output.iter().any(|h| h == hook) => {
                self.line(&format!("  {hook} | {line}"));
            }
            Event::HookFinished {
                hook,
                exit_code,
                seconds,
            } if !quiet => self.line(&format!(
                "  finished hook {hook} (exit {}, {seconds:.1}s)",
                exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into())
            )),
            Event::HostStepStarted { host, role, step } if self.verbosity == Verbosity::Verbose => {
                let role = role.as_deref().map(|r| format!(" {r}")).unwrap_or_default();
                self.line(&format!("  [{host}]{role} {step}…"));
            }
            Event::HostStepFinished {
                host,
                role,
                step,
                ok,
                seconds,
                error,
            } => {
                let role = role.as_deref().map(|r| format!(" {r}")).unwrap_or_default();
                if !ok {
                    self.line(&format!(
                        "  [{host}]{role} {step} FAILED after {seconds:.1}s: {}",
                        error.as_deref().unwrap_or("")
                    ));
                } else if !quiet {
                    self.line(&format!("  [{host}]{role} {step} ({seconds:.1}s)"));
                }
            }
            Event::HostOutput { host, line } => self.line(&format!("  [{host}] | {line}")),
            Event::LockAcquired { host } if !quiet => {
                self.line(&format!("  acquired the deploy lock on {host}"))
            }
            Event::LockReleased { host } if !quiet => {
                self.line(&format!("  released the deploy lock on {host}"))
            }
            Event::Warning { message } => self.line(&format!("warning: {message}")),
            Event::HostResult {
                host,
                role,
                version,
                ok,
                error,
            } => self.results.push((
                host.clone(),
                role.clone(),
                version.clone(),
                *ok,
                error.clone(),
            )),
            Event::RunFinished { ok, seconds, .. } => {
                let mut table = String::new();
                let host_w = self
                    .results
                    .iter()
                    .map(|r| r.0.len())
                    .max()
                    .unwrap_or(4)
                    .max(4);
                let role_w = self
                    .results
                    .iter()
                    .map(|r| r.1.len())
                    .max()
                    .unwrap_or(4)
                    .max(4);
                table.push_str(&format!(
                    "\n{:host_w$}  {:role_w$}  {:8}  running\n",
                    "host", "role", "result"
                ));
                for (host, role, version, ok, _) in &self.results {
                    table.push_str(&format!(
                        "{host:host_w$}  {role:role_w$}  {:8}  {}\n",
                        if *ok { "ok" } else { "FAILED" },
                        version.as_deref().unwrap_or("(nothing)")
                    ));
                }
                if !self.stages.is_empty() && !quiet {
                    table.push_str("\nstages: ");
                    let parts: Vec<String> = self
                        .stages
                        .iter()
                        .map(|(s, t)| format!("{s} {t:.1}s"))
                        .collect();
                    table.push_str(&parts.join(", "));
                    table.push('\n');
                }
                table.push_str(&format!(
                    "{} in {seconds:.1}s\n",
                    if *ok { "finished" } else { "failed" }
                ));
                self.line(&table);
            }
            _ => {}
        }
    }
}

//! The live view on a terminal (stderr is a TTY): one row per host with its current step and
//! elapsed time under a header like `deploy 2/3 hosts (0 failed)`, drawn with indicatif. When
//! the run ends the rows are cleared and the plain summary table is printed.

use std::collections::HashMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::HumanReporter;
use crate::engine::{Event, EventSink};

/// Live rows per host on stderr, then the human summary.
pub struct LiveReporter {
    multi: MultiProgress,
    header: ProgressBar,
    rows: HashMap<String, ProgressBar>,
    order: Vec<String>,
    done: HashMap<String, bool>,
    command: String,
    summary: HumanReporter,
}

impl LiveReporter {
    /// A live view whose final summary is rendered by `summary`.
    pub fn new(summary: HumanReporter) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let header = multi.add(ProgressBar::new_spinner());
        header.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        header.enable_steady_tick(Duration::from_millis(120));
        LiveReporter {
            multi,
            header,
            rows: HashMap::new(),
            order: Vec::new(),
            done: HashMap::new(),
            command: String::new(),
            summary,
        }
    }

    fn row(&mut self, host: &str) -> &ProgressBar {
        if !self.rows.contains_key(host) {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("  {prefix:<16} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(host.to_string());
            self.rows.insert(host.to_string(), bar);
            self.order.push(host.to_string());
        }
        &self.rows[host]
    }

    fn update_header(&self, stage: Option<&str>) {
        let finished = self.done.values().filter(|ok| **ok).count();
        let failed = self.done.values().filter(|ok| !**ok).count();
        let mut msg = format!(
            "{} {finished}/{} hosts ({failed} failed)",
            self.command,
            self.order.len().max(self.done.len())
        );
        if let Some(stage) = stage {
            msg.push_str(&format!(" — {stage}"));
        }
        self.header.set_message(msg);
    }
}

impl EventSink for LiveReporter {
    fn emit(&mut self, event: &Event) {
        match event {
            Event::RunStarted { command, hosts, .. } => {
                self.summary.start_quietly(event);
                self.command = command.clone();
                for h in hosts {
                    self.row(h).set_message("waiting");
                }
                self.update_header(None);
            }
            Event::StageStarted { stage, .. } => self.update_header(Some(stage)),
            Event::HookStarted { hook } => self
                .header
                .set_message(format!("{} — hook {hook}", self.command)),
            Event::HostStepStarted { host, role, step } => {
                let text = match role {
                    Some(r) => format!("{step} {r}"),
                    None => step.clone(),
                };
                let bar = self.row(host).clone();
                bar.reset_elapsed();
                bar.set_message(text);
            }
            Event::HostStepFinished {
                host,
                role,
                step,
                ok,
                error,
                ..
            } => {
                let text = match (ok, error) {
                    (true, _) => format!("{step} done"),
                    (false, e) => format!(
                        "{step}{} FAILED: {}",
                        role.as_deref().map(|r| format!(" {r}")).unwrap_or_default(),
                        e.as_deref().unwrap_or("").lines().next().unwrap_or("")
                    ),
                };
                self.row(host).set_message(text);
                if !ok {
                    self.done.insert(host.clone(), false);
                }
            }
            Event::HostResult { host, ok, .. } => {
                self.done
                    .entry(host.clone())
                    .and_modify(|v| *v &= *ok)
                    .or_insert(*ok);
                self.update_header(None);
            }
            Event::RunFinished { .. } => {
                for bar in self.rows.values() {
                    bar.finish_and_clear();
                }
                self.header.finish_and_clear();
                let _ = self.multi.clear();
            }
            _ => {}
        }
        // Failures, warnings, host output and the final table go through the plain reporter,
        // above the live rows.
        let passthrough = matches!(
            event,
            Event::Warning { .. }
                | Event::Output { .. }
                | Event::LockWaiting { .. }
                | Event::HostOutput { .. }
                | Event::HookOutput { .. }
                | Event::HostResult { .. }
                | Event::StageFinished { .. }
                | Event::RunFinished { .. }
        ) || matches!(event, Event::HostStepFinished { ok: false, .. });
        if passthrough {
            let summary = &mut self.summary;
            self.multi.suspend(|| summary.emit(event));
        }
    }
}

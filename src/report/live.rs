//! The live view on a terminal (stderr is a TTY): one row per host with its current step and
//! elapsed time under a header like `deploy 2/3 hosts (0 failed)`, drawn with indicatif. With
//! more hosts than [`MAX_ROWS`], one line of counts replaces the rows (`boot 312 · pull 40 ·
//! waiting 600 · done 45 · failed 3`), so a thousand hosts stay readable; failures are still
//! printed above it as they happen. When the run ends the rows are cleared and the plain
//! summary table is printed.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::HumanReporter;
use crate::engine::{Event, EventSink};

/// Above this many hosts the live view shows counts instead of one row per host.
pub const MAX_ROWS: usize = 16;

/// What each host is doing, counted by what it is doing: the summary line of a large run.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    state: HashMap<String, String>,
    counts: BTreeMap<String, usize>,
    /// Labels in the order they first appeared (steps run in plan order).
    order: Vec<String>,
}

impl Tally {
    /// `host` is now doing `label`.
    pub(crate) fn set(&mut self, host: &str, label: &str) {
        if let Some(old) = self.state.get(host) {
            if old == label {
                return;
            }
            if let Some(n) = self.counts.get_mut(old) {
                *n = n.saturating_sub(1);
            }
        }
        self.state.insert(host.to_string(), label.to_string());
        *self.counts.entry(label.to_string()).or_insert(0) += 1;
        if !self.order.iter().any(|l| l == label) {
            self.order.push(label.to_string());
        }
    }

    /// `waiting 600 · boot 312 · done 45 · failed 3`: every non-zero count, `done` and
    /// `failed` last.
    pub(crate) fn line(&self) -> String {
        let last = ["done", "failed"];
        let labels = self
            .order
            .iter()
            .map(String::as_str)
            .filter(|l| !last.contains(l))
            .chain(last);
        labels
            .filter_map(|l| match self.counts.get(l) {
                Some(&n) if n > 0 => Some(format!("{l} {n}")),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

/// Live rows per host on stderr (or one line of counts for many hosts), then the human
/// summary.
pub struct LiveReporter {
    multi: MultiProgress,
    header: ProgressBar,
    /// The line of counts, when there are more than [`MAX_ROWS`] hosts.
    counts: Option<ProgressBar>,
    tally: Tally,
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
            counts: None,
            tally: Tally::default(),
            rows: HashMap::new(),
            order: Vec::new(),
            done: HashMap::new(),
            command: String::new(),
            summary,
        }
    }

    /// Show `host` doing `text`: its row, or the line of counts (by `label`).
    fn show(&mut self, host: &str, label: &str, text: String) {
        match &self.counts {
            Some(bar) => {
                self.tally.set(host, label);
                bar.set_message(self.tally.line());
            }
            None => {
                let bar = self.row(host).clone();
                if label != "done" && label != "failed" {
                    bar.reset_elapsed();
                }
                bar.set_message(text);
            }
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
                if hosts.len() > MAX_ROWS {
                    let bar = self.multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("  {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    self.counts = Some(bar);
                    self.order = hosts.clone();
                }
                for h in hosts {
                    self.show(h, "waiting", "waiting".into());
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
                self.show(host, step, text);
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
                // With counts, a host stays counted under its step until the next one starts
                // or its result arrives.
                if !*ok || self.counts.is_none() {
                    let label = if *ok { "done" } else { "failed" };
                    self.show(host, label, text);
                }
                if !ok {
                    self.done.insert(host.clone(), false);
                }
            }
            Event::HostResult { host, ok, .. } => {
                if self.counts.is_some() {
                    let failed = !*ok || self.done.get(host) == Some(&false);
                    let label = if failed { "failed" } else { "done" };
                    self.show(host, label, label.to_string());
                }
                self.done
                    .entry(host.clone())
                    .and_modify(|v| *v &= *ok)
                    .or_insert(*ok);
                self.update_header(None);
            }
            Event::RunFinished { .. } => {
                for bar in self.rows.values().chain(self.counts.iter()) {
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
                | Event::Said { .. }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_hosts_make_one_line_of_counts() {
        let mut tally = Tally::default();
        for i in 0..1000 {
            tally.set(&format!("h{i}"), "waiting");
        }
        assert_eq!(tally.line(), "waiting 1000");
        for i in 0..400 {
            tally.set(&format!("h{i}"), "pull");
        }
        for i in 0..100 {
            tally.set(&format!("h{i}"), "boot");
        }
        for i in 0..40 {
            tally.set(&format!("h{i}"), "done");
        }
        tally.set("h999", "failed");
        tally.set("h999", "failed");
        assert_eq!(
            tally.line(),
            "waiting 599 · pull 300 · boot 60 · done 40 · failed 1"
        );
    }
}

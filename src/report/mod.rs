//! Reporters consume engine events ([`EventSink`]): a live view per host on a terminal
//! ([`live`]), plain `[host] message` lines for CI logs (stderr) and the command's output
//! (stdout), or one JSON object per event (`--output json`, stdout). [`plan`] renders plans
//! for `--dry-run`.

pub mod live;
pub mod output;
pub mod plan;

use std::collections::BTreeMap;
use std::io::Write;

use crate::engine::{Event, EventSink, HostOutcome};
use crate::plan::{OutputStyle, PlanKind};

/// How much a human reporter shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// `-q`: errors and the summary only.
    Quiet,
    /// Default.
    Normal,
    /// `-v`: also every hook's output and every command sent.
    Verbose,
}

/// One JSON object per line on stdout.
#[derive(Debug, Default)]
pub struct JsonReporter;

impl EventSink for JsonReporter {
    fn emit(&mut self, event: &Event) {
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

/// One row of the summary: host, role, version running, result, error.
type ResultRow = (String, String, Option<String>, HostOutcome, Option<String>);

/// Above this many rows the summary table groups hosts by role, result and version (one line
/// per group with its count) instead of one line per host; failed hosts are still named, in
/// the failures list below the table.
const TABLE_ROWS: usize = 40;

fn outcome_word(outcome: &HostOutcome) -> &'static str {
    match outcome {
        HostOutcome::Ok => "ok",
        HostOutcome::Failed => "FAILED",
        HostOutcome::NotStarted => "not started",
        HostOutcome::Reverted => "reverted",
    }
}

/// The summary of many hosts: `hosts  role  result  running` with a count per group, groups in
/// the order they first appear, and the first few hosts of each group that did not succeed.
fn grouped_table(results: &[ResultRow]) -> String {
    /// Role, result, version.
    type Key<'a> = (&'a str, &'a str, &'a str);
    let mut groups: Vec<(Key, Vec<&str>)> = Vec::new();
    for (host, role, version, outcome, _) in results {
        let key = (
            role.as_str(),
            outcome_word(outcome),
            version.as_deref().unwrap_or("(nothing)"),
        );
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, hosts)) => hosts.push(host),
            None => groups.push((key, vec![host])),
        }
    }
    let role_w = groups
        .iter()
        .map(|((r, _, _), _)| r.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "\n{:>5}  {:role_w$}  {:11}  running\n",
        "hosts", "role", "result"
    );
    for ((role, result, version), hosts) in &groups {
        out.push_str(&format!(
            "{:>5}  {role:role_w$}  {result:11}  {version}",
            hosts.len()
        ));
        if *result != "ok" {
            let shown: Vec<&str> = hosts.iter().take(5).copied().collect();
            let more = hosts.len().saturating_sub(shown.len());
            out.push_str(&format!("  ({}", shown.join(", ")));
            if more > 0 {
                out.push_str(&format!(" and {more} more"));
            }
            out.push(')');
        }
        out.push('\n');
    }
    out
}

/// Plain lines on stderr, `[host]`-prefixed, then a summary table (release plans); the
/// command's output on stdout.
#[derive(Debug)]
pub struct HumanReporter {
    verbosity: Verbosity,
    /// Hooks whose output is shown (from `hooks_output` and `-v`).
    show_hook_output: Box<[String]>,
    /// Hooks that show nothing, not even that they run (`hooks_output: quiet`, without `-v`).
    quiet_hooks: Box<[String]>,
    results: Vec<ResultRow>,
    stages: Vec<(String, f64)>,
    release: bool,
    output: OutputStyle,
    hosts: Vec<String>,
    /// Prefixed output waiting for its stage to end: per host, stdout (one text per shown
    /// command: a block of [`OutputStyle::ByHost`]) and stderr text.
    pending: BTreeMap<String, (Vec<String>, String)>,
    /// The running stage's heading ([`OutputStyle::ByHost`]).
    heading: Option<String>,
}

impl HumanReporter {
    /// A reporter at `verbosity`, showing the output of the hooks in `show_hook_output`.
    /// The same reporter, showing nothing of the hooks in `quiet` (not even that they run).
    pub fn with_quiet_hooks(mut self, quiet: Vec<String>) -> Self {
        self.quiet_hooks = quiet.into_boxed_slice();
        self
    }

    fn quiet_hook(&self, hook: &str) -> bool {
        self.quiet_hooks.iter().any(|h| h == hook)
    }

    pub fn new(verbosity: Verbosity, show_hook_output: Vec<String>) -> Self {
        HumanReporter {
            verbosity,
            show_hook_output: show_hook_output.into_boxed_slice(),
            quiet_hooks: Box::new([]),
            results: Vec::new(),
            stages: Vec::new(),
            release: true,
            output: OutputStyle::Prefixed,
            hosts: Vec::new(),
            pending: BTreeMap::new(),
            heading: None,
        }
    }

    /// Take the run's kind, output style and hosts from its `run_started` without printing it
    /// (the live view draws its own header).
    pub fn start_quietly(&mut self, event: &Event) {
        if let Event::RunStarted {
            kind,
            output,
            hosts,
            ..
        } = event
        {
            self.release = *kind != PlanKind::Command;
            self.output = *output;
            self.hosts = hosts.clone();
        }
    }

    fn line(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }

    /// Print the buffered output, hosts in target order (others, like `local`, first).
    fn flush(&mut self) {
        let mut order: Vec<String> = self
            .pending
            .keys()
            .filter(|h| !self.hosts.contains(h))
            .cloned()
            .collect();
        order.extend(self.hosts.iter().cloned());
        for host in order {
            if let Some((blocks, err)) = self.pending.remove(&host) {
                let out = blocks.concat();
                if self.output == OutputStyle::ByHost {
                    // Kamal's `puts_by_host` once per command (a role's, a host's).
                    let mut stdout = std::io::stdout().lock();
                    for block in &blocks {
                        let _ = write!(stdout, "{}", self.by_host(&host, block));
                    }
                    let _ = stdout.flush();
                } else if !out.is_empty() {
                    let mut stdout = std::io::stdout().lock();
                    let _ = write!(stdout, "{}", crate::audit::prefixed(&host, &out));
                    let _ = stdout.flush();
                }
                if !err.is_empty() {
                    let mut stderr = std::io::stderr().lock();
                    let _ = write!(stderr, "{}", crate::audit::prefixed(&host, &err));
                }
            }
        }
    }

    /// Kamal's `puts_by_host`: `<heading> Host: <host>` (not with `-q`), the output stripped, a
    /// blank line.
    fn by_host(&self, host: &str, out: &str) -> String {
        let mut text = String::new();
        if self.verbosity != Verbosity::Quiet {
            let heading = self.heading.as_deref().unwrap_or("App");
            text.push_str(&format!("{heading} Host: {host}\n"));
        }
        text.push_str(out.trim());
        text.push_str("\n\n");
        text
    }

    fn table(&self, ok: bool, seconds: f64) -> String {
        let quiet = self.verbosity == Verbosity::Quiet;
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
        if self.results.len() > TABLE_ROWS {
            table.push_str(&grouped_table(&self.results));
        } else {
            table.push_str(&format!(
                "\n{:host_w$}  {:role_w$}  {:11}  running\n",
                "host", "role", "result"
            ));
            for (host, role, version, outcome, _) in &self.results {
                table.push_str(&format!(
                    "{host:host_w$}  {role:role_w$}  {:11}  {}\n",
                    outcome_word(outcome),
                    version.as_deref().unwrap_or("(nothing)")
                ));
            }
        }
        let errors: Vec<String> = self
            .results
            .iter()
            .filter_map(|(h, r, _, _, e)| e.as_ref().map(|e| format!("  {h} {r}: {e}")))
            .collect();
        if !errors.is_empty() {
            table.push_str("\nfailures:\n");
            for e in errors {
                table.push_str(&e.replace('\n', "\n    "));
                table.push('\n');
            }
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
            if ok { "finished" } else { "failed" }
        ));
        table
    }
}

impl EventSink for HumanReporter {
    fn emit(&mut self, event: &Event) {
        let quiet = self.verbosity == Verbosity::Quiet;
        let verbose = self.verbosity == Verbosity::Verbose;
        // Progress lines are for releases; other commands show their output and errors.
        let progress = self.release && !quiet;
        match event {
            Event::RunStarted {
                command,
                kind,
                version,
                image,
                hosts,
                output,
                ..
            } => {
                self.release = *kind != PlanKind::Command;
                self.output = *output;
                self.hosts = hosts.clone();
                if self.release && !quiet {
                    self.line(&format!(
                        "{command} {} ({}) to {}",
                        version.as_deref().unwrap_or(""),
                        image.as_deref().unwrap_or(""),
                        hosts.join(", ")
                    ))
                }
            }
            Event::StageStarted { stage, heading } => {
                self.heading = heading.clone();
                if progress {
                    self.line(&format!("==> {stage}"));
                }
            }
            Event::StageFinished { stage, seconds, .. } => {
                self.stages.push((stage.clone(), *seconds));
                self.flush();
            }
            // Kamal's SSHKit line says `Running … <hook>`; a `hooks_output: quiet` hook shows
            // nothing, as in Kamal (its verbosity drops to errors).
            Event::HookStarted { hook }
                if (progress || (verbose && !self.release)) && !self.quiet_hook(hook) =>
            {
                self.line(&format!("  Running the {hook} hook"))
            }
            Event::HookOutput { hook, line } if self.show_hook_output.iter().any(|h| h == hook) => {
                self.line(&format!("  {hook} | {line}"));
            }
            Event::HookFinished {
                hook,
                exit_code,
                seconds,
            } if (progress || (verbose && !self.release)) && !self.quiet_hook(hook) => self.line(&format!(
                "  finished hook {hook} (exit {}, {seconds:.1}s)",
                exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into())
            )),
            Event::HostStepStarted { host, role, step } if verbose && self.release => {
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
            } if self.release => {
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
            Event::CommandStarted { host, line, .. } if verbose => {
                self.line(&format!("[{host}] $ {line}"))
            }
            Event::CommandIgnored { host, stderr, .. } if verbose => {
                let text = crate::audit::prefixed(host, stderr);
                self.line(text.trim_end());
            }
            Event::Output { host, text, stderr } => match self.output {
                OutputStyle::Plain if *stderr => {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "{text}");
                }
                OutputStyle::Plain => {
                    let mut out = std::io::stdout().lock();
                    let _ = write!(out, "{text}");
                    let _ = out.flush();
                }
                OutputStyle::Prefixed | OutputStyle::ByHost => {
                    let entry = self.pending.entry(host.clone()).or_default();
                    if *stderr {
                        entry.1.push_str(text);
                    } else {
                        entry.0.push(text.clone());
                    }
                }
            },
            Event::HostOutput { host, line } => self.line(&format!("  [{host}] | {line}")),
            Event::LockAcquired { host } if progress => {
                self.line(&format!("  acquired the deploy lock on {host}"))
            }
            Event::LockReleased { host } if progress => {
                self.line(&format!("  released the deploy lock on {host}"))
            }
            Event::LockWaiting {
                holder,
                timeout_seconds,
                interval_seconds,
                ..
            } if !quiet => self.line(&format!(
                "Deploy lock held, waiting (up to {timeout_seconds}s, every {interval_seconds}s):\n{holder}"
            )),
            // Kamal's `say`: on standard output, where scripts read it.
            Event::Said { text } => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
            Event::Warning { message } => self.line(&format!("warning: {message}")),
            Event::Reverted {
                host,
                role,
                version,
                ok,
                error,
            } => {
                if *ok {
                    self.line(&format!(
                        "  [{host}] {role} reverted to {version} (the release failed elsewhere)"
                    ));
                } else {
                    self.line(&format!(
                        "  [{host}] {role} REVERT to {version} FAILED: {}",
                        error.as_deref().unwrap_or("")
                    ));
                }
            }
            Event::HostResult {
                host,
                role,
                version,
                outcome,
                error,
                ..
            } => self.results.push((
                host.clone(),
                role.clone().unwrap_or_default(),
                version.clone(),
                *outcome,
                error.clone(),
            )),
            Event::RunFinished { ok, seconds, .. } => {
                self.flush();
                if self.release {
                    let table = self.table(*ok, *seconds);
                    self.line(&table);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(host: &str, role: &str, version: &str, outcome: HostOutcome) -> ResultRow {
        (
            host.into(),
            role.into(),
            Some(version.into()),
            outcome,
            None,
        )
    }

    #[test]
    fn many_hosts_are_summed_up_by_group_with_the_failed_ones_named() {
        let mut results: Vec<ResultRow> = (1..=998)
            .map(|i| {
                row(
                    &format!("10.0.{}.{}", i / 250, i % 250),
                    "web",
                    "v2",
                    HostOutcome::Ok,
                )
            })
            .collect();
        results.push(row("10.9.0.1", "web", "v1", HostOutcome::Failed));
        results.push(row("10.9.0.2", "workers", "v2", HostOutcome::Ok));
        let table = grouped_table(&results);
        assert_eq!(
            table,
            "\nhosts  role     result       running\n  \
             998  web      ok           v2\n    \
             1  web      FAILED       v1  (10.9.0.1)\n    \
             1  workers  ok           v2\n"
        );
        let many_failed: Vec<ResultRow> = (1..=8)
            .map(|i| row(&format!("h{i}"), "web", "v1", HostOutcome::NotStarted))
            .collect();
        assert!(grouped_table(&many_failed).contains("(h1, h2, h3, h4, h5 and 3 more)"));
    }

    #[test]
    fn few_hosts_keep_one_line_each() {
        let mut reporter = HumanReporter::new(Verbosity::Normal, Vec::new());
        reporter.results = (1..=3)
            .map(|i| row(&format!("h{i}"), "web", "v2", HostOutcome::Ok))
            .collect();
        let table = reporter.table(true, 1.0);
        assert!(table.contains("h1    web   ok           v2\n"), "{table}");
        reporter.results = (1..=TABLE_ROWS + 1)
            .map(|i| row(&format!("h{i}"), "web", "v2", HostOutcome::Ok))
            .collect();
        let table = reporter.table(true, 1.0);
        assert!(table.contains("   41  web   ok           v2\n"), "{table}");
        assert!(!table.contains("h1 "), "{table}");
    }
}

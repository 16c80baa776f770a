//! Running a host's planned commands: fill the holes, send, read the answer as the plan says
//! (fail, ignore, tolerate; capture a value for later commands; the user's output; notes).

use std::collections::HashMap;

use crate::command::{Arg, CommandSpec, Text};
use crate::plan::hole::is_safe_value;
use crate::plan::{CaptureFrom, Hole, IfEmpty, OnError, PlannedCommand, Shown};
use crate::remote::{CommandOutput, RemoteError};

use super::error::HostFailure;
use super::events::Event;
use super::Engine;

/// The values of a host's holes during a run.
#[derive(Debug, Clone, Default)]
pub struct Slots {
    pub(crate) values: HashMap<Hole, String>,
    /// Seconds since the run started, for [`Hole::Runtime`].
    pub runtime: u64,
}

impl Slots {
    /// The value of `hole`, made now for the holes the engine makes itself (random hex and
    /// the time, once per host and step), `None` when it was never filled.
    pub fn get(&mut self, hole: Hole) -> Option<String> {
        if let Some(v) = self.values.get(&hole) {
            return Some(v.clone());
        }
        let made = match hole {
            Hole::Random(n) => random_hex(n),
            Hole::Now => crate::release::format_recorded_at(chrono::Utc::now()),
            Hole::Runtime => self.runtime.to_string(),
            Hole::OldVersion
            | Hole::RunningVersion
            | Hole::ContainerId
            | Hole::ExistingContainer
            | Hole::VersionBefore => return None,
        };
        self.values.insert(hole, made.clone());
        Some(made)
    }

    /// Slots with [`Hole::VersionBefore`] filled: a revert's.
    pub fn before(version: &str) -> Self {
        let mut slots = Slots::default();
        slots.set(Hole::VersionBefore, version.to_string());
        slots
    }

    /// Fill `hole` with `value`.
    pub fn set(&mut self, hole: Hole, value: String) {
        self.values.insert(hole, value);
    }

    /// Whether `hole` holds a non-empty value.
    pub fn is_filled(&self, hole: Hole) -> bool {
        self.values.get(&hole).is_some_and(|v| !v.is_empty())
    }

    /// `text` with every hole token replaced by its value; `Err` names an unfilled hole.
    pub fn fill_text(&mut self, text: &str) -> Result<String, Hole> {
        let mut out = text.to_string();
        let holes = Hole::found_in(text);
        if holes.is_empty() {
            return Ok(out);
        }
        for hole in holes {
            let value = self.get(hole).ok_or(hole)?;
            out = out.replace(&hole.token(), &value);
        }
        // `replace` grows its buffer by doubling; the filled command lives while it runs.
        out.shrink_to_fit();
        Ok(out)
    }

    /// An argument's text with its holes filled: the plan's own (shared) text when it has none.
    fn fill_arg(&mut self, text: &Text) -> Result<Text, Hole> {
        if Hole::found_in(text).is_empty() {
            return Ok(text.clone());
        }
        Ok(self.fill_text(text)?.into())
    }

    /// `spec` with its holes filled (the engine sends this; nothing else changes).
    pub fn fill(&mut self, spec: &CommandSpec) -> Result<CommandSpec, Hole> {
        let mut filled = spec.clone();
        for arg in &mut filled.args {
            *arg = match arg {
                Arg::Literal(s) => Arg::Literal(self.fill_arg(s)?),
                Arg::Expanding(s) => Arg::Expanding(self.fill_arg(s)?),
                Arg::Raw(s) => Arg::Raw(self.fill_arg(s)?),
                Arg::Sensitive { value, shown } => Arg::Sensitive {
                    value: self.fill_arg(value)?,
                    shown: self.fill_arg(shown)?,
                },
            };
        }
        Ok(filled)
    }
}

impl Engine<'_> {
    /// Fill `cmd`'s holes and send it to `host`, reporting it first.
    pub(crate) async fn send(
        &self,
        host: &str,
        cmd: &PlannedCommand,
        slots: &mut Slots,
    ) -> Result<(CommandSpec, CommandOutput), SendError> {
        self.send_inner(host, cmd, slots, None).await
    }

    /// [`Engine::send`], with `watch` told of the command's output lines as they arrive.
    pub(crate) async fn send_watched(
        &self,
        host: &str,
        cmd: &PlannedCommand,
        slots: &mut Slots,
        watch: &mut crate::remote::Watch<'_>,
    ) -> Result<(CommandSpec, CommandOutput), SendError> {
        self.send_inner(host, cmd, slots, Some(watch)).await
    }

    async fn send_inner(
        &self,
        host: &str,
        cmd: &PlannedCommand,
        slots: &mut Slots,
        watch: Option<&mut crate::remote::Watch<'_>>,
    ) -> Result<(CommandSpec, CommandOutput), SendError> {
        let spec = slots.fill(&cmd.spec).map_err(SendError::Unfilled)?;
        if let Ok(mut t) = self.touched.lock() {
            t.insert(host.to_string());
        }
        self.emit.emit(Event::CommandStarted {
            host: host.to_string(),
            purpose: spec.purpose.clone(),
            line: spec.to_shell_redacted(),
        });
        let started = std::time::Instant::now();
        let result = match watch {
            Some(w) => self.remote.run_watched(host, &spec, w).await,
            None => self.remote.run(host, &spec).await,
        };
        let (exit_code, stdout, stderr) = match &result {
            Ok(out) => (out.status, out.stdout.clone(), out.stderr.clone()),
            Err(e) => (None, String::new(), e.to_string()),
        };
        self.emit.emit(Event::CommandFinished {
            host: host.to_string(),
            exit_code,
            seconds: started.elapsed().as_secs_f64(),
            stdout,
            stderr,
        });
        let out = result.map_err(SendError::Remote)?;
        Ok((spec, out))
    }

    /// Run `commands` on `host` in order, as the plan says; the first failure ends them.
    pub(crate) async fn run_commands(
        &self,
        stage: &str,
        host: &str,
        role: Option<&str>,
        commands: &[PlannedCommand],
        slots: &mut Slots,
    ) -> Result<(), HostFailure> {
        for cmd in commands {
            if let Some(hole) = cmd.when {
                if !slots.is_filled(hole) {
                    continue;
                }
            }
            if let Some(hole) = cmd.unless {
                if slots.is_filled(hole) {
                    continue;
                }
            }
            let (spec, out) = match self.send(host, cmd, slots).await {
                Ok(sent) => sent,
                Err(SendError::Remote(e)) if cmd.on_error == OnError::Ignore => {
                    self.emit.emit(Event::CommandIgnored {
                        host: host.to_string(),
                        purpose: cmd.purpose.clone(),
                        stderr: e.to_string(),
                    });
                    continue;
                }
                Err(e) => return Err(e.into_failure(stage, host, role, cmd)),
            };
            let mut out = out;
            if !out.success() {
                match &cmd.on_error {
                    OnError::Fail => {
                        self.show(host, cmd, &out);
                        let failure = HostFailure::remote(
                            stage,
                            role,
                            &RemoteError::failed(host, &spec, &out),
                        );
                        return Err(match &cmd.hint {
                            Some(h) => failure.with_hint(h.clone()),
                            None => failure,
                        });
                    }
                    OnError::Ignore => {
                        self.emit.emit(Event::CommandIgnored {
                            host: host.to_string(),
                            purpose: cmd.purpose.clone(),
                            stderr: out.stderr_tail(10),
                        });
                        self.show(host, cmd, &out);
                        if let Some(failed) = cmd.note.as_ref().and_then(|n| n.failed.as_ref()) {
                            let text = failed.replace("{stderr}", out.stderr.trim());
                            self.output(host, text, false);
                        }
                        continue;
                    }
                    OnError::Tolerate(text) if out.stderr.contains(text.as_str()) => {
                        out = CommandOutput {
                            status: Some(0),
                            ..Default::default()
                        };
                    }
                    OnError::Tolerate(_) => {
                        self.show(host, cmd, &out);
                        return Err(HostFailure::remote(
                            stage,
                            role,
                            &RemoteError::failed(host, &spec, &out),
                        ));
                    }
                }
            }
            self.show(host, cmd, &out);
            if let Some(roles) = &cmd.reads_back {
                self.keep_read_back(host, roles, &out.stdout);
            }
            if let Some(capture) = &cmd.capture {
                let found = match &capture.from {
                    CaptureFrom::Stdout => out.stdout.lines().next().unwrap_or("").trim(),
                    CaptureFrom::Marker(m) => {
                        crate::docker::boot::marker(&out.stdout, m).unwrap_or("")
                    }
                };
                let value = match (&capture.if_empty, found.is_empty()) {
                    (_, false) | (IfEmpty::Keep, true) => found.to_string(),
                    (IfEmpty::Use(v), true) => v.clone(),
                    (IfEmpty::Fail(message), true) => {
                        return Err(HostFailure::new(
                            stage,
                            host,
                            role,
                            &cmd.purpose,
                            message.clone(),
                        ))
                    }
                };
                if !is_safe_value(&value) {
                    return Err(HostFailure::new(
                        stage,
                        host,
                        role,
                        &cmd.purpose,
                        format!(
                            "{}: unexpected answer for {}: {value:?}",
                            cmd.purpose,
                            capture.hole.token()
                        ),
                    ));
                }
                slots.set(capture.hole, value);
            }
            if let Some(note) = &cmd.note {
                let said = note.only_with.is_none_or(|h| slots.is_filled(h));
                if said && !note.ok.is_empty() {
                    if let Ok(text) = slots.fill_text(&note.ok) {
                        self.output(host, text, false);
                    }
                }
            }
        }
        Ok(())
    }

    fn show(&self, host: &str, cmd: &PlannedCommand, out: &CommandOutput) {
        if cmd.shown != Shown::Nothing && !out.stdout.is_empty() {
            self.output(host, out.stdout.clone(), false);
        }
        if cmd.shown == Shown::Both && !out.stderr.is_empty() {
            self.output(host, out.stderr.clone(), true);
        }
    }

    /// Report output for the user.
    pub(crate) fn output(&self, host: &str, text: String, stderr: bool) {
        self.emit.emit(Event::Output {
            host: host.to_string(),
            text,
            stderr,
        });
    }
}

/// Why a command could not be sent.
#[derive(Debug)]
pub(crate) enum SendError {
    /// A hole had no value (an earlier command did not fill it).
    Unfilled(Hole),
    /// The remote could not run it.
    Remote(RemoteError),
}

impl SendError {
    pub(crate) fn into_failure(
        self,
        stage: &str,
        host: &str,
        role: Option<&str>,
        cmd: &PlannedCommand,
    ) -> HostFailure {
        match self {
            SendError::Unfilled(hole) => HostFailure::new(
                stage,
                host,
                role,
                &cmd.purpose,
                format!(
                    "{} on {host}: no value for {} (an earlier command did not find one)",
                    cmd.purpose,
                    hole.token()
                ),
            ),
            SendError::Remote(e) => HostFailure::remote(stage, role, &e),
        }
    }
}

/// Random lowercase hex of `len` digits (replaced-container suffixes, hostnames, exec names).
pub fn random_hex(len: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    while out.len() < len {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(len);
    out
}

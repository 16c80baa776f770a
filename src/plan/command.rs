//! A command as the plan holds it and the engine sends it: the spec, its line as shown, and
//! how its answer is read (fail or ignore, a captured value, the user's output, a note).

use serde::Serialize;

use crate::command::CommandSpec;

use super::Hole;

/// What a failing command means for its host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The host's step fails.
    #[default]
    Fail,
    /// Ignored, as Kamal ignores it (shown with `-v`).
    Ignore,
    /// Success with no output when standard error says this (e.g. `No such file or directory`).
    Tolerate(String),
}

/// Where a captured value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureFrom {
    /// The first line of standard output, trimmed.
    Stdout,
    /// The rest of the line that starts with this marker.
    Marker(String),
}

/// What to do when the captured value is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IfEmpty {
    /// Keep it empty.
    Keep,
    /// Use this value instead.
    Use(String),
    /// Fail the host with this message.
    Fail(String),
}

/// A value a command's output fills for later commands of the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capture {
    /// The hole it fills.
    pub hole: Hole,
    /// Where in the output.
    pub from: CaptureFrom,
    /// When nothing was found.
    pub if_empty: IfEmpty,
}

/// Which streams of a command are the command's output for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Shown {
    /// Neither (only `-v` and errors show them).
    #[default]
    Nothing,
    /// Standard output.
    Stdout,
    /// Standard output, and standard error on stderr.
    Both,
}

/// Text added to the host's output after a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// The text (holes filled), on success.
    pub ok: String,
    /// The text when an ignored command failed; `{stderr}` in it stands for the command's
    /// standard error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// Said only when this hole holds a non-empty value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only_with: Option<Hole>,
}

/// A command as the plan holds it and the engine sends it.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedCommand {
    /// What it is for.
    pub purpose: String,
    /// The spec itself, for the engine (secret values inside). Serialized as `line`: the
    /// command line exactly as the remote shell receives it, holes as their tokens, sensitive
    /// arguments redacted ([`PlannedCommand::line`]; made when shown, not kept beside the spec:
    /// at 1,000 hosts a second copy of every script was a fifth of a deploy's memory).
    #[serde(rename = "line", serialize_with = "redacted_line")]
    pub spec: CommandSpec,
    /// What goes on stdin (secrets redacted), if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// What a failure means.
    #[serde(skip_serializing_if = "is_fail")]
    pub on_error: OnError,
    /// Run only when this hole was filled with a non-empty value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<Hole>,
    /// Run only when this hole is empty (or was never filled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unless: Option<Hole>,
    /// A value read from its output for later commands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<Capture>,
    /// Which streams are shown to the user.
    #[serde(skip_serializing_if = "is_nothing")]
    pub shown: Shown,
    /// Text added to the host's output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<Note>,
    /// What to do when it fails (the failure's `hint:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The roles whose running version the command prints once its work succeeded, one
    /// [`read_back_marker`] line each (the result table's rows, read in this round trip instead
    /// of one more).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reads_back: Option<Box<[String]>>,
}

/// The marker of the line on which a command with [`PlannedCommand::reads_back`] prints the
/// version its `index`th role runs (an index, not the name: a role's name may hold any text).
pub fn read_back_marker(index: usize) -> String {
    format!("dray-running-{index}:")
}

fn redacted_line<S: serde::Serializer>(spec: &CommandSpec, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&spec.to_shell_redacted())
}

fn is_fail(e: &OnError) -> bool {
    *e == OnError::Fail
}

fn is_nothing(s: &Shown) -> bool {
    *s == Shown::Nothing
}

impl PlannedCommand {
    /// The command line exactly as the remote shell receives it, holes as their tokens,
    /// sensitive arguments redacted.
    pub fn line(&self) -> String {
        self.spec.to_shell_redacted()
    }

    /// Wrap a spec; `stdin_note` says what its stdin holds, already redacted.
    pub fn new(mut spec: CommandSpec, stdin_note: Option<String>) -> Self {
        // Kept for the whole run, once per host: no spare capacity (see `shrink_to_fit`).
        spec.shrink_to_fit();
        PlannedCommand {
            purpose: spec.purpose.clone(),
            stdin: stdin_note.or_else(|| spec.stdin.as_ref().map(|_| "[REDACTED]".to_string())),
            on_error: OnError::Fail,
            when: None,
            unless: None,
            capture: None,
            shown: Shown::Nothing,
            note: None,
            hint: None,
            reads_back: None,
            spec,
        }
    }

    /// Failures are ignored.
    pub fn ignore_errors(mut self) -> Self {
        self.on_error = OnError::Ignore;
        self
    }

    /// A failure whose standard error contains `text` is a success with no output.
    pub fn tolerate(mut self, text: &str) -> Self {
        self.on_error = OnError::Tolerate(text.to_string());
        self
    }

    /// Standard output is the user's output.
    pub fn show(mut self) -> Self {
        self.shown = Shown::Stdout;
        self
    }

    /// Standard output and error are the user's output.
    pub fn show_both(mut self) -> Self {
        self.shown = Shown::Both;
        self
    }

    /// Run only when `hole` holds a non-empty value.
    pub fn when(mut self, hole: Hole) -> Self {
        self.when = Some(hole);
        self
    }

    /// Run only when `hole` is empty or unfilled.
    pub fn unless(mut self, hole: Hole) -> Self {
        self.unless = Some(hole);
        self
    }

    /// Fill `hole` from standard output.
    pub fn capture(mut self, hole: Hole, if_empty: IfEmpty) -> Self {
        self.capture = Some(Capture {
            hole,
            from: CaptureFrom::Stdout,
            if_empty,
        });
        self
    }

    /// Fill `hole` from the line starting with `marker`.
    pub fn capture_marker(mut self, hole: Hole, marker: &str) -> Self {
        self.capture = Some(Capture {
            hole,
            from: CaptureFrom::Marker(marker.to_string()),
            if_empty: IfEmpty::Keep,
        });
        self
    }

    /// Once its work succeeded, it prints what each of `roles` runs ([`read_back_marker`]).
    pub fn reading_back(mut self, roles: Vec<String>) -> Self {
        self.reads_back = (!roles.is_empty()).then(|| roles.into_boxed_slice());
        self
    }

    /// When it fails, the failure's hint is `hint`.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Add `ok` to the host's output on success (and `failed` when ignored and failed).
    pub fn note(mut self, ok: impl Into<String>, failed: Option<String>) -> Self {
        self.note = Some(Note {
            ok: ok.into(),
            failed,
            only_with: None,
        });
        self
    }
}

/// A planned command from a spec, with nothing on stdin beyond what the spec says.
pub fn planned(spec: CommandSpec) -> PlannedCommand {
    PlannedCommand::new(spec, None)
}

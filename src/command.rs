//! Commands as data: builders return a [`CommandSpec`] and never spawn anything.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

/// An argument's text: shared, so that a plan's copies of one command on many hosts hold its
/// text once ([`TextPool`]).
pub type Text = Arc<str>;

/// One command to run locally or on a host, with the one-line purpose shown in errors and logs.
#[derive(Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// What the command is for, e.g. `boot web on 127.0.0.11`.
    pub purpose: String,
    /// The program, e.g. `docker`.
    pub program: String,
    /// Arguments, unquoted; quoting happens once, on the way to a shell.
    pub args: Vec<Arg>,
    /// Extra environment for local commands.
    pub env: Vec<(String, String)>,
    /// Bytes for standard input: the only way secrets travel.
    pub stdin: Option<Secret>,
}

/// One argument of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Arrives byte for byte.
    Literal(Text),
    /// Arrives byte for byte except `${NAME}`, which the remote shell expands (Kamal's quirk for
    /// clear env values and labels).
    Expanding(Text),
    /// Shell text inserted unquoted, so the remote shell parses it (words, quotes, `$VAR`).
    ///
    /// Only for text Kamal itself passes unquoted: a role's config-provided `cmd`, root
    /// `volumes`, the `app exec` command line, and the `$PWD` prefix of host paths. Never for
    /// values that did not come from the user's own configuration or command line.
    Raw(Text),
    /// Arrives byte for byte like [`Arg::Literal`], but is shown as `shown` wherever the command
    /// is displayed ([`CommandSpec::to_shell_redacted`], `Debug`), e.g. `KEY=[REDACTED]` for a
    /// build argument.
    Sensitive {
        /// The real argument.
        value: Text,
        /// What logs and plans show instead.
        shown: Text,
    },
}

impl Arg {
    /// The argument's text before quoting.
    pub fn as_str(&self) -> &str {
        match self {
            Arg::Literal(s) | Arg::Expanding(s) | Arg::Raw(s) => s,
            Arg::Sensitive { value, .. } => value,
        }
    }

    /// The argument quoted once for a POSIX shell ([`Arg::Raw`] is left as it is).
    pub fn quoted(&self) -> String {
        match self {
            Arg::Literal(s) => crate::shell::quote(s),
            Arg::Expanding(s) => crate::shell::quote_expanding(s),
            Arg::Raw(s) => s.to_string(),
            Arg::Sensitive { value, .. } => crate::shell::quote(value),
        }
    }

    /// The argument as logs and plans show it: [`Arg::quoted`], except that a
    /// [`Arg::Sensitive`] shows its redacted form.
    pub fn displayed(&self) -> String {
        match self {
            Arg::Sensitive { shown, .. } => crate::shell::quote(shown),
            other => other.quoted(),
        }
    }
}

/// Texts held once: [`TextPool::share`] returns the pool's copy of an equal text.
#[derive(Debug, Default)]
pub struct TextPool {
    texts: HashSet<Text>,
}

impl TextPool {
    /// The pool's copy of `text` (kept from now on when it had none).
    pub fn share(&mut self, text: &Text) -> Text {
        if let Some(held) = self.texts.get(text) {
            return held.clone();
        }
        self.texts.insert(text.clone());
        text.clone()
    }
}

/// Bytes that must never be printed: `Debug` and `Display` show `[REDACTED]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl CommandSpec {
    /// A command with a purpose, a program and no arguments yet.
    pub fn new(purpose: impl Into<String>, program: impl Into<String>) -> Self {
        CommandSpec {
            purpose: purpose.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
        }
    }

    /// The same command holding no spare capacity: every string and list exactly as long as
    /// its content. A plan keeps its commands for the whole run, one set per host, and the
    /// builders' `format!` and `push` leave up to half of each script's buffer unused (issue
    /// #19: at 1,000 hosts a third of a deploy's memory).
    pub fn shrink_to_fit(&mut self) {
        self.purpose.shrink_to_fit();
        self.program.shrink_to_fit();
        // an argument's text (`Text`) holds no spare capacity
        self.args.shrink_to_fit();
        self.env.shrink_to_fit();
        for (k, v) in &mut self.env {
            k.shrink_to_fit();
            v.shrink_to_fit();
        }
        if let Some(stdin) = &mut self.stdin {
            stdin.0.shrink_to_fit();
        }
    }

    /// Every argument's text taken from `pool`: equal texts of the commands that went through
    /// one pool are held once (a plan's per-host copies of a script, issue #19).
    pub fn share_args(&mut self, pool: &mut TextPool) {
        for arg in &mut self.args {
            match arg {
                Arg::Literal(s) | Arg::Expanding(s) | Arg::Raw(s) => *s = pool.share(s),
                Arg::Sensitive { value, shown } => {
                    *value = pool.share(value);
                    *shown = pool.share(shown);
                }
            }
        }
    }

    /// Append one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(Arg::Literal(arg.into().into()));
        self
    }

    /// Append one argument in which `${NAME}` is expanded by the remote shell.
    pub fn arg_expanding(mut self, arg: impl Into<String>) -> Self {
        self.args.push(Arg::Expanding(arg.into().into()));
        self
    }

    /// Append shell text unquoted: only for text Kamal passes unquoted (see [`Arg::Raw`]).
    pub fn arg_raw(mut self, text: impl Into<String>) -> Self {
        self.args.push(Arg::Raw(text.into().into()));
        self
    }

    /// Append an argument that is shown as `shown` in logs and plans (see [`Arg::Sensitive`]).
    pub fn arg_sensitive(mut self, value: impl Into<String>, shown: impl Into<String>) -> Self {
        self.args.push(Arg::Sensitive {
            value: value.into().into(),
            shown: shown.into().into(),
        });
        self
    }

    /// Append several arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args
            .extend(args.into_iter().map(|a| Arg::Literal(a.into().into())));
        self
    }

    /// Feed `bytes` on standard input.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(Secret(bytes.into()));
        self
    }

    /// The command line as a remote shell receives it: program and arguments each quoted once.
    pub fn to_shell(&self) -> String {
        let mut line = crate::shell::quote(&self.program);
        for arg in &self.args {
            line.push(' ');
            line.push_str(&arg.quoted());
        }
        line
    }

    /// The command line as logs, errors and `--dry-run` plans show it: like
    /// [`CommandSpec::to_shell`] with every [`Arg::Sensitive`] replaced by its redacted form.
    pub fn to_shell_redacted(&self) -> String {
        let mut line = crate::shell::quote(&self.program);
        for arg in &self.args {
            line.push(' ');
            line.push_str(&arg.displayed());
        }
        line
    }
}

impl fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandSpec")
            .field("purpose", &self.purpose)
            .field("line", &self.to_shell_redacted())
            .field("stdin", &self.stdin)
            .finish()
    }
}

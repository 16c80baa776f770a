//! Commands as data: builders return a [`CommandSpec`] and never spawn anything.

use std::fmt;

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
    Literal(String),
    /// Arrives byte for byte except `${NAME}`, which the remote shell expands (Kamal's quirk for
    /// clear env values and labels).
    Expanding(String),
}

impl Arg {
    /// The argument's text before quoting.
    pub fn as_str(&self) -> &str {
        match self {
            Arg::Literal(s) | Arg::Expanding(s) => s,
        }
    }

    /// The argument quoted once for a POSIX shell.
    pub fn quoted(&self) -> String {
        match self {
            Arg::Literal(s) => crate::shell::quote(s),
            Arg::Expanding(s) => crate::shell::quote_expanding(s),
        }
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

    /// Append one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(Arg::Literal(arg.into()));
        self
    }

    /// Append one argument in which `${NAME}` is expanded by the remote shell.
    pub fn arg_expanding(mut self, arg: impl Into<String>) -> Self {
        self.args.push(Arg::Expanding(arg.into()));
        self
    }

    /// Append several arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args
            .extend(args.into_iter().map(|a| Arg::Literal(a.into())));
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
}

impl fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandSpec")
            .field("purpose", &self.purpose)
            .field("line", &self.to_shell())
            .field("stdin", &self.stdin)
            .finish()
    }
}

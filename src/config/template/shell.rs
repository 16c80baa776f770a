//! Running the commands templates (backticks, `%x()`, `cmd()`) and secrets (`$(…)`) hold:
//! [`run_shell`] runs `/bin/sh -c` with exactly the given environment, [`CommandFailure`] says
//! why there is no output; and Ruby's [`chomp`] for what they print.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use super::context::CommandPolicy;
use super::error::lowercase_first;

/// Why a command gave no output: refused, not started, or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CommandFailure {
    /// [`CommandPolicy::Deny`].
    Denied,
    /// `/bin/sh` could not be started.
    Spawn(String),
    /// The command ran and failed.
    Failed {
        /// `exited with status 1`, `was killed by signal 9`.
        status: String,
        /// The last lines of its stderr, on one line.
        stderr_tail: String,
    },
}

impl std::fmt::Display for CommandFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandFailure::Denied => write!(f, "was not run: running commands is disabled here"),
            CommandFailure::Spawn(e) => write!(f, "could not start /bin/sh: {e}"),
            CommandFailure::Failed {
                status,
                stderr_tail,
            } if stderr_tail.is_empty() => write!(f, "{status}"),
            CommandFailure::Failed {
                status,
                stderr_tail,
            } => write!(f, "{status}: {stderr_tail}"),
        }
    }
}

/// Run `/bin/sh -c command` in `cwd` (when not empty) with exactly `env`; its stdout, as is.
pub(crate) fn run_shell(
    command: &str,
    cwd: &Path,
    env: &BTreeMap<String, String>,
    policy: CommandPolicy,
) -> Result<String, CommandFailure> {
    match policy {
        CommandPolicy::Deny => return Err(CommandFailure::Denied),
        CommandPolicy::Fake => return Ok(super::context::FAKE_OUTPUT.to_string()),
        CommandPolicy::Run => {}
    }
    let mut cmd = Command::new("/bin/sh");
    if super::isolate::in_child() {
        // A render child runs with a soft memory limit; its commands get it lifted.
        cmd.arg("-c")
            .arg("ulimit -S -d unlimited 2>/dev/null; exec /bin/sh -c \"$1\"")
            .arg("sh")
            .arg(command);
    } else {
        cmd.arg("-c").arg(command);
    }
    cmd.env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !cwd.as_os_str().is_empty() {
        cmd.current_dir(cwd);
    }
    let output = cmd
        .output()
        .map_err(|e| CommandFailure::Spawn(lowercase_first(&e.to_string())))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(CommandFailure::Failed {
        status: describe_status(output.status),
        stderr_tail: stderr_tail(&String::from_utf8_lossy(&output.stderr)),
    })
}

fn describe_status(status: std::process::ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("was killed by signal {signal}");
        }
    }
    "failed".to_string()
}

/// The last three non-empty lines of `stderr`, joined on one line, at most 300 characters.
fn stderr_tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(3)..].join("; ");
    let count = tail.chars().count();
    if count > 300 {
        format!("…{}", tail.chars().skip(count - 300).collect::<String>())
    } else {
        tail
    }
}

/// Ruby's `String#chomp`: one trailing `\r\n`, `\n` or `\r`.
pub(crate) fn chomp(s: &str) -> &str {
    s.strip_suffix("\r\n")
        .or_else(|| s.strip_suffix('\n'))
        .or_else(|| s.strip_suffix('\r'))
        .unwrap_or(s)
}

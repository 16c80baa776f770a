//! Running hooks: [`find_hook`] finds the file under `hooks_path`, [`run_hook`] runs it
//! locally with the environment from [`hook_env`](super::env::hook_env), streaming its output;
//! [`HookError`] says why it could not run or failed.

use super::env::HookVar;

/// A hook that could not run or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// The file exists but cannot be executed.
    #[error("hook `{name}` at {path} is not executable")]
    NotExecutable {
        /// The hook.
        name: String,
        /// Its path.
        path: String,
    },
    /// The hook could not be started.
    #[error("hook `{name}` could not be started: {message}")]
    Spawn {
        /// The hook.
        name: String,
        /// Why.
        message: String,
    },
    /// The hook exited non-zero.
    #[error("hook `{name}` failed with {status}{}", tail(.output_tail))]
    Failed {
        /// The hook.
        name: String,
        /// `exit status 3`, or `a signal`.
        status: String,
        /// The last lines of its output.
        output_tail: String,
    },
}

fn tail(text: &str) -> String {
    if text.trim().is_empty() {
        String::new()
    } else {
        format!(":\n{text}")
    }
}

impl crate::error::Diagnostic for HookError {
    fn hint(&self) -> Option<String> {
        match self {
            HookError::NotExecutable { path, .. } => Some(format!("chmod +x {path}")),
            HookError::Failed { .. } => Some("fix the hook, or skip hooks with -H".into()),
            HookError::Spawn { .. } => None,
        }
    }
    fn exit_code(&self) -> crate::error::ExitCode {
        crate::error::ExitCode::Failure
    }
}

/// The outcome of a hook that ran.
#[derive(Debug, Clone)]
pub struct HookRun {
    /// Combined standard output and error, in order.
    pub output: String,
    /// How long it took.
    pub elapsed: std::time::Duration,
}

/// The hook file, when it exists (`<hooks_path>/<name>`, relative to `root`).
pub fn find_hook(
    root: &std::path::Path,
    hooks_path: &str,
    name: &str,
) -> Option<std::path::PathBuf> {
    let path = root.join(hooks_path).join(name);
    path.is_file().then_some(path)
}

/// Run a hook locally from `root`, with no arguments and no stdin, with `env` added to the
/// process environment. Output lines are passed to `on_line` as they come.
pub async fn run_hook(
    name: &str,
    path: &std::path::Path,
    root: &std::path::Path,
    env: &[HookVar],
    mut on_line: impl FnMut(&str),
) -> Result<HookRun, HookError> {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::AsyncBufReadExt;

    let display = path.display().to_string();
    let executable = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    if !executable {
        return Err(HookError::NotExecutable {
            name: name.to_string(),
            path: display,
        });
    }
    let started = std::time::Instant::now();
    let mut cmd = tokio::process::Command::new(path);
    cmd.current_dir(root)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for var in env {
        cmd.env(&var.name, &var.value);
    }
    let mut child = cmd.spawn().map_err(|e| HookError::Spawn {
        name: name.to_string(),
        message: e.to_string(),
    })?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    if let Some(out) = child.stdout.take() {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        });
    }
    if let Some(err) = child.stderr.take() {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let mut output = String::new();
    while let Some(line) = rx.recv().await {
        on_line(&line);
        output.push_str(&line);
        output.push('\n');
    }
    let status = child.wait().await.map_err(|e| HookError::Spawn {
        name: name.to_string(),
        message: e.to_string(),
    })?;
    if !status.success() {
        let lines: Vec<&str> = output.lines().collect();
        return Err(HookError::Failed {
            name: name.to_string(),
            status: match status.code() {
                Some(c) => format!("exit status {c}"),
                None => "a signal".to_string(),
            },
            output_tail: lines[lines.len().saturating_sub(20)..].join("\n"),
        });
    }
    Ok(HookRun {
        output,
        elapsed: started.elapsed(),
    })
}

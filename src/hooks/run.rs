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
    /// The hook ran longer than `x-dray: hooks: timeout`; its process group was killed.
    #[error("hook `{name}` did not finish within {seconds}s and was killed{}", tail(.output_tail))]
    TimedOut {
        /// The hook.
        name: String,
        /// The limit.
        seconds: u64,
        /// The last lines of its output.
        output_tail: String,
    },
    /// The run was interrupted (ctrl-c, SIGTERM) while the hook ran; the signal was passed on to
    /// its process group.
    #[error("hook `{name}` was stopped: the run was interrupted")]
    Interrupted {
        /// The hook.
        name: String,
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
            HookError::TimedOut { seconds, .. } => Some(format!(
                "raise `x-dray: hooks: timeout` ({seconds}s) if the hook needs longer"
            )),
            HookError::Spawn { .. } | HookError::Interrupted { .. } => None,
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

/// The signal an interrupted run passes on to a running hook's process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// ctrl-c.
    Interrupt,
    /// SIGTERM (CI's cancel).
    Terminate,
}

impl StopSignal {
    fn as_nix(self) -> nix::sys::signal::Signal {
        match self {
            StopSignal::Interrupt => nix::sys::signal::Signal::SIGINT,
            StopSignal::Terminate => nix::sys::signal::Signal::SIGTERM,
        }
    }
}

/// How a hook run may be cut short.
#[derive(Debug, Clone, Default)]
pub struct HookLimits {
    /// Kill the hook's process group after this long (`x-dray: hooks: timeout`).
    pub timeout: Option<std::time::Duration>,
    /// Set when the run is interrupted: that signal goes to the hook's process group.
    pub stop: Option<tokio::sync::watch::Receiver<Option<StopSignal>>>,
}

/// How long a hook has to exit after SIGTERM before its process group gets SIGKILL.
const GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Send `signal` to the process group `pgid` (the hook and every process it started).
fn signal_group(pgid: u32, signal: nix::sys::signal::Signal) {
    if let Ok(pid) = i32::try_from(pgid) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// Run a hook locally from `root`, with no arguments and no stdin, with `env` added to the
/// process environment, in its own process group. Output lines are passed to `on_line` as they
/// come. When `limits.stop` is set, the group gets its signal (SIGINT or SIGTERM, as dray got);
/// when `limits.timeout` runs out, SIGTERM; then SIGKILL after a grace period. Nothing of a
/// stopped hook outlives the call.
pub async fn run_hook(
    name: &str,
    path: &std::path::Path,
    root: &std::path::Path,
    env: &[HookVar],
    limits: &HookLimits,
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
        .process_group(0)
        .kill_on_drop(true);
    for var in env {
        cmd.env(&var.name, &var.value);
    }
    let mut child = cmd.spawn().map_err(|e| HookError::Spawn {
        name: name.to_string(),
        message: e.to_string(),
    })?;
    let pgid = child.id();
    // Whatever happens to this call (even its future dropped), the group is killed.
    struct Reap(Option<u32>);
    impl Drop for Reap {
        fn drop(&mut self) {
            if let Some(pgid) = self.0 {
                signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
    let mut reap = Reap(pgid);
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
    let mut stop = limits.stop.clone();
    let deadline = limits.timeout.map(|t| tokio::time::Instant::now() + t);
    // Why the group was signalled, and when SIGKILL follows.
    let mut ended: Option<(bool, tokio::time::Instant)> = None;
    let mut lines_open = true;
    let status = loop {
        let ended_now = ended;
        let stop_changed = async {
            match stop.as_mut() {
                Some(rx) if ended_now.is_none() => loop {
                    if let Some(sig) = *rx.borrow_and_update() {
                        return sig;
                    }
                    if rx.changed().await.is_err() {
                        std::future::pending::<()>().await
                    }
                },
                _ => std::future::pending::<StopSignal>().await,
            }
        };
        let timer = async {
            match (ended_now, deadline) {
                (Some((_, kill_at)), _) => tokio::time::sleep_until(kill_at).await,
                (None, Some(d)) => tokio::time::sleep_until(d).await,
                (None, None) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            line = rx.recv(), if lines_open => match line {
                Some(line) => {
                    on_line(&line);
                    output.push_str(&line);
                    output.push('\n');
                }
                None => lines_open = false,
            },
            status = child.wait() => break status,
            sig = stop_changed => {
                if let Some(pgid) = pgid {
                    signal_group(pgid, sig.as_nix());
                }
                ended = Some((true, tokio::time::Instant::now() + GRACE));
            }
            _ = timer => match ended {
                Some(_) => {
                    if let Some(pgid) = pgid {
                        signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                    }
                }
                None => {
                    if let Some(pgid) = pgid {
                        signal_group(pgid, nix::sys::signal::Signal::SIGTERM);
                    }
                    ended = Some((false, tokio::time::Instant::now() + GRACE));
                }
            },
        }
    };
    // The hook exited. When it was stopped, what it left in its group goes too; a hook that
    // exited on its own may leave a process running on purpose (a tunnel, say), as with Kamal.
    match reap.0.take() {
        Some(pgid) if ended.is_some() => signal_group(pgid, nix::sys::signal::Signal::SIGKILL),
        _ => {}
    }
    // The rest of its output; a process it left behind may keep the pipes open: bounded.
    let drain = async {
        while let Some(line) = rx.recv().await {
            on_line(&line);
            output.push_str(&line);
            output.push('\n');
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drain).await;
    let status = status.map_err(|e| HookError::Spawn {
        name: name.to_string(),
        message: e.to_string(),
    })?;
    let lines: Vec<&str> = output.lines().collect();
    let output_tail = lines[lines.len().saturating_sub(20)..].join("\n");
    match ended {
        Some((true, _)) => {
            return Err(HookError::Interrupted {
                name: name.to_string(),
            })
        }
        Some((false, _)) => {
            return Err(HookError::TimedOut {
                name: name.to_string(),
                seconds: limits.timeout.map(|t| t.as_secs()).unwrap_or_default(),
                output_tail,
            })
        }
        None => {}
    }
    if !status.success() {
        return Err(HookError::Failed {
            name: name.to_string(),
            status: match status.code() {
                Some(c) => format!("exit status {c}"),
                None => "a signal".to_string(),
            },
            output_tail,
        });
    }
    Ok(HookRun {
        output,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn hook(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
        let path = dir.join("hook");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write hook");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    fn alive(marker: &str) -> bool {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .any(|p| {
                std::fs::read(p.path().join("cmdline"))
                    .map(|c| {
                        String::from_utf8_lossy(&c)
                            .replace('\0', " ")
                            .contains(marker)
                    })
                    .unwrap_or(false)
            })
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed_with_everything_it_started() {
        let dir = tempfile::tempdir().expect("dir");
        let marker = format!("{}.25", 400 + std::process::id() % 100);
        let path = hook(dir.path(), &format!("echo started\nsleep {marker} &\nwait"));
        let limits = HookLimits {
            timeout: Some(std::time::Duration::from_millis(500)),
            stop: None,
        };
        let started = std::time::Instant::now();
        let result = rt().block_on(run_hook(
            "pre-deploy",
            &path,
            dir.path(),
            &[],
            &limits,
            |_| {},
        ));
        match result {
            Err(HookError::TimedOut {
                seconds,
                output_tail,
                ..
            }) => {
                assert_eq!(seconds, 0);
                assert!(output_tail.contains("started"));
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(8));
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            !alive(&format!("sleep {marker}")),
            "the hook's child lives on"
        );
    }

    #[test]
    fn an_interrupted_run_stops_the_hook_at_once() {
        let dir = tempfile::tempdir().expect("dir");
        let path = hook(
            dir.path(),
            "trap 'echo got TERM; exit 0' TERM\nsleep 30 &\nwait",
        );
        let (tx, rx) = tokio::sync::watch::channel(None);
        let limits = HookLimits {
            timeout: None,
            stop: Some(rx),
        };
        let started = std::time::Instant::now();
        let result = rt().block_on(async {
            let run = run_hook("pre-deploy", &path, dir.path(), &[], &limits, |_| {});
            let stop = async {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                tx.send_replace(Some(StopSignal::Interrupt));
                std::future::pending::<()>().await
            };
            tokio::select! { r = run => r, _ = stop => unreachable!() }
        });
        assert!(
            matches!(result, Err(HookError::Interrupted { .. })),
            "{result:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(4));
    }
}

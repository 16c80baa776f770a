//! Hooks: which ones exist, where they fire, and the exact environment each receives
//! (Kamal 2.12's `Kamal::Tags` plus `run_hook` details), plus what a nested `dray` needs to reuse
//! the release (`DRAY_RELEASE`).

use serde::Serialize;

use crate::release::Release;

/// Hooks that receive every secret as an environment variable (Kamal 2.11+).
pub const HOOKS_WITH_SECRETS: &[&str] = &["pre-connect", "pre-deploy", "post-deploy"];

/// What a hook's environment is computed from.
#[derive(Debug, Clone)]
pub struct HookContext<'a> {
    /// The frozen release.
    pub release: &'a Release,
    /// `KAMAL_COMMAND`: the top-level command (`deploy`, `rollback`, `app`, …).
    pub command: &'a str,
    /// `KAMAL_SUBCOMMAND`, only when invoked as `dray <group> <sub>`.
    pub subcommand: Option<&'a str>,
    /// `KAMAL_HOSTS`: all targeted hosts, or the boot group.
    pub hosts: &'a [String],
    /// `KAMAL_ROLES`, only with `--roles`.
    pub roles: Option<&'a [String]>,
    /// `KAMAL_LOCK`: whether this run holds the deploy lock while the hook runs.
    pub lock: bool,
    /// `KAMAL_RUNTIME` seconds, `post-deploy` only.
    pub runtime: Option<u64>,
}

/// One variable of a hook's environment; secret values are marked so they can be redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookVar {
    /// The variable name.
    pub name: String,
    /// The value.
    pub value: String,
    /// Whether the value is a secret (printed as `[REDACTED]`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

/// The environment of hook `name`: `KAMAL_*` as Kamal sets them, `DRAY_RELEASE` for nested
/// runs, and the secrets for the hooks that get them.
pub fn hook_env<'s>(
    name: &str,
    ctx: &HookContext,
    secrets: impl IntoIterator<Item = (&'s str, &'s str)>,
) -> Vec<HookVar> {
    let mut vars = Vec::new();
    let mut push = |name: &str, value: String| {
        vars.push(HookVar {
            name: name.to_string(),
            value,
            secret: false,
        })
    };
    for (k, v) in ctx.release.to_env() {
        push(&k, v);
    }
    push("KAMAL_HOSTS", ctx.hosts.join(","));
    if let Some(roles) = ctx.roles {
        push("KAMAL_ROLES", roles.join(","));
    }
    push("KAMAL_LOCK", ctx.lock.to_string());
    push("KAMAL_COMMAND", ctx.command.to_string());
    if let Some(sub) = ctx.subcommand {
        push("KAMAL_SUBCOMMAND", sub.to_string());
    }
    if name == "post-deploy" {
        if let Some(runtime) = ctx.runtime {
            push("KAMAL_RUNTIME", runtime.to_string());
        }
    }
    if HOOKS_WITH_SECRETS.contains(&name) {
        for (k, v) in secrets {
            vars.push(HookVar {
                name: k.to_string(),
                value: v.to_string(),
                secret: true,
            });
        }
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release() -> Release {
        Release::new(
            "app",
            "reg/app",
            None,
            "0123456789abcdef",
            "dev@example.com",
            "2024-01-01T00:00:00Z",
        )
    }

    #[test]
    fn pre_deploy_gets_kamal_vars_and_secrets() {
        let release = release();
        let hosts = vec!["h1".to_string(), "h2".to_string()];
        let ctx = HookContext {
            release: &release,
            command: "deploy",
            subcommand: None,
            hosts: &hosts,
            roles: None,
            lock: true,
            runtime: None,
        };
        let env = hook_env("pre-deploy", &ctx, [("DB_PASSWORD", "s3cret")]);
        let get = |n: &str| env.iter().find(|v| v.name == n).map(|v| v.value.as_str());
        assert_eq!(get("KAMAL_VERSION"), Some("0123456789abcdef"));
        assert_eq!(get("KAMAL_SERVICE_VERSION"), Some("app@0123456"));
        assert_eq!(get("KAMAL_HOSTS"), Some("h1,h2"));
        assert_eq!(get("KAMAL_LOCK"), Some("true"));
        assert_eq!(get("KAMAL_COMMAND"), Some("deploy"));
        assert_eq!(get("KAMAL_SUBCOMMAND"), None);
        assert_eq!(get("KAMAL_ROLES"), None);
        assert!(env.iter().any(|v| v.name == "DB_PASSWORD" && v.secret));
        assert!(get("DRAY_RELEASE").is_some());
    }

    #[test]
    fn app_boot_hooks_get_no_secrets() {
        let release = release();
        let hosts = vec!["h1".to_string()];
        let ctx = HookContext {
            release: &release,
            command: "deploy",
            subcommand: None,
            hosts: &hosts,
            roles: None,
            lock: true,
            runtime: None,
        };
        let env = hook_env("pre-app-boot", &ctx, [("DB_PASSWORD", "s3cret")]);
        assert!(!env.iter().any(|v| v.name == "DB_PASSWORD"));
    }
}

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

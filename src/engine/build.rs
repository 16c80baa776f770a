//! Local steps: the build directory (a clean clone of `HEAD`, Kamal's clone semantics, or
//! `builder.context`), then the step's commands as planned (`docker build` + `docker push`, or
//! `docker buildx build --output=type=registry`; `docker login` for `registry login`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::command::Secret;
use crate::config::Config;
use crate::plan::{LocalStep, Shown};
use crate::remote::{CommandOutput, RemoteError};

use super::error::HostFailure;
use super::events::Event;

/// Where the image is built from.
#[derive(Debug, Clone)]
pub struct BuildDir {
    /// The directory `docker build` runs in.
    pub dir: PathBuf,
    /// The context argument (`.` in a clone, `builder.context` otherwise).
    pub context: String,
}

async fn run_local(
    program: &Path,
    args: &[String],
    cwd: &Path,
    env: &[(String, String)],
    stdin: Option<&Secret>,
) -> Result<CommandOutput, String> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if let (Some(mut pipe), Some(secret)) = (child.stdin.take(), stdin) {
        pipe.write_all(&secret.0)
            .await
            .map_err(|e| format!("cannot write to {}: {e}", program.display()))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    Ok(CommandOutput {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

async fn git(root: &Path, args: &[&str]) -> Result<String, String> {
    let git = which::which("git").map_err(|e| format!("git not found: {e}"))?;
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = run_local(&git, &args, root, &[], None).await?;
    if !out.success() {
        return Err(format!(
            "git {} failed: {}",
            args.join(" "),
            out.stderr_tail(5)
        ));
    }
    Ok(out.stdout.trim().to_string())
}

/// Prepare the build directory: with `builder.context`, the project itself; otherwise a clone
/// of the repository at `HEAD` in `$TMPDIR/kamal-clones/<service>-<hash of cwd>`, reset to
/// `HEAD` if it exists (Kamal 2's clone build, so uncommitted changes are not in the image).
pub async fn prepare(config: &Config, root: &Path) -> Result<BuildDir, String> {
    if let Some(context) = &config.builder.context {
        return Ok(BuildDir {
            dir: root.to_path_buf(),
            context: context.clone(),
        });
    }
    let top = PathBuf::from(git(root, &["rev-parse", "--show-toplevel"]).await?);
    let head = git(root, &["rev-parse", "HEAD"]).await?;
    let digest = Sha256::digest(root.to_string_lossy().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let clones = std::env::temp_dir().join("kamal-clones").join(format!(
        "{}-{}",
        config.service,
        &hex[..12]
    ));
    let name = top
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repo".into());
    let clone = clones.join(&name);
    let relative = root.strip_prefix(&top).unwrap_or(Path::new(""));
    let top_s = top.to_string_lossy().into_owned();
    if clone.join(".git").exists() {
        let steps: [&[&str]; 4] = [
            &["remote", "set-url", "origin", &top.to_string_lossy()],
            &["fetch", "--quiet", "origin"],
            &["reset", "--quiet", "--hard", &head],
            &["clean", "-fdxq"],
        ];
        let mut ok = true;
        for step in steps {
            if git(&clone, step).await.is_err() {
                ok = false;
                break;
            }
        }
        if !ok {
            fresh_clone(&clones, &top_s, &name).await?;
        }
    } else {
        fresh_clone(&clones, &top_s, &name).await?;
    }
    let cloned_head = git(&clone, &["rev-parse", "HEAD"]).await?;
    if cloned_head != head {
        fresh_clone(&clones, &top_s, &name).await?;
        git(&clone, &["reset", "--quiet", "--hard", &head]).await?;
    }
    Ok(BuildDir {
        dir: clone.join(relative),
        context: ".".into(),
    })
}

async fn fresh_clone(clones: &Path, top: &str, name: &str) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(clones);
    std::fs::create_dir_all(clones)
        .map_err(|e| format!("cannot create {}: {e}", clones.display()))?;
    git(
        clones,
        &["clone", "--quiet", "--recurse-submodules", top, name],
    )
    .await?;
    Ok(())
}

/// Run a local step's commands in `dir`, in order: each program found on `PATH`, its
/// environment and stdin as planned; the first failure ends the step.
pub async fn run_commands(
    engine: &super::Engine<'_>,
    stage: &str,
    step: &LocalStep,
    dir: &Path,
) -> Result<(), HostFailure> {
    let label = step.label.as_str();
    for cmd in &step.commands {
        let spec = &cmd.spec;
        let fail = |message: String| HostFailure::new(stage, label, None, &spec.purpose, message);
        let program = which::which(&spec.program).map_err(|e| {
            fail(format!(
                "{}: `{}` is not on PATH ({e})",
                spec.purpose, spec.program
            ))
            .with_hint(format!("install `{}` on this machine", spec.program))
        })?;
        engine.emit.emit(Event::CommandStarted {
            host: label.to_string(),
            purpose: spec.purpose.clone(),
            line: spec.to_shell_redacted(),
        });
        let args: Vec<String> = spec.args.iter().map(|a| a.as_str().to_string()).collect();
        let out = run_local(&program, &args, dir, &spec.env, spec.stdin.as_ref())
            .await
            .map_err(|m| fail(format!("{}: {m}", spec.purpose)))?;
        if cmd.shown != Shown::Nothing && !out.stdout.is_empty() {
            engine.output(label, out.stdout.clone(), false);
        }
        if !out.success() && cmd.on_error == crate::plan::OnError::Ignore {
            engine.emit.emit(Event::CommandIgnored {
                host: label.to_string(),
                purpose: spec.purpose.clone(),
                stderr: out.stderr_tail(10),
            });
            continue;
        }
        if !out.success() {
            let failure = HostFailure::remote(stage, None, &RemoteError::failed(label, spec, &out));
            return Err(match &cmd.hint {
                Some(h) => failure.with_hint(h.clone()),
                None => failure,
            });
        }
    }
    Ok(())
}

//! Local steps: the build directory (a clean clone of `HEAD`, Kamal's clone semantics, or
//! `builder.context`), then the step's commands as planned (`docker build` + `docker push`, or
//! `docker buildx build --output=type=registry`; `docker login` for `registry login`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::command::Secret;
use crate::config::Config;
use crate::plan::{EnsureBuilder, LocalStep, OnError, PlannedCommand, Shown};
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

/// What this machine offers a build: `docker buildx version` works, the local engine's arch
/// (`docker info --format '{{.Architecture}}'`, Kamal's `docker_arch`; this CPU's when the
/// engine does not answer), and `pack` on `PATH`.
pub fn probe_build_env() -> crate::plan::builder::BuildEnv {
    use crate::plan::builder::{docker_arch, BuildEnv};
    let mut env = BuildEnv::legacy();
    env.pack = which::which("pack").is_ok();
    let Ok(docker) = which::which("docker") else {
        return env;
    };
    let run = |args: &[&str]| {
        std::process::Command::new(&docker)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    env.buildx = run(&["buildx", "version"]).is_some();
    if let Some(arch) = run(&["info", "--format", "{{.Architecture}}"]) {
        if !arch.trim().is_empty() {
            env.arch = docker_arch(&arch);
        }
    }
    env
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

/// Run one planned command locally in `dir`: found on `PATH`, its environment and stdin as
/// planned; its output shown as the plan says. A failure is returned as data, with its output.
async fn run_one(
    engine: &super::Engine<'_>,
    stage: &str,
    label: &str,
    cmd: &PlannedCommand,
    dir: &Path,
) -> Result<CommandOutput, HostFailure> {
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
    let started = std::time::Instant::now();
    let result = run_local(&program, &args, dir, &spec.env, spec.stdin.as_ref()).await;
    let (exit_code, stdout, stderr) = match &result {
        Ok(out) => (out.status, out.stdout.clone(), out.stderr.clone()),
        Err(m) => (None, String::new(), m.to_string()),
    };
    engine.emit.emit(Event::CommandFinished {
        host: label.to_string(),
        exit_code,
        seconds: started.elapsed().as_secs_f64(),
        stdout,
        stderr,
    });
    let out = result.map_err(|m| fail(format!("{}: {m}", spec.purpose)))?;
    if cmd.shown != Shown::Nothing && !out.stdout.is_empty() {
        engine.output(label, out.stdout.clone(), false);
    }
    Ok(out)
}

/// Run `commands` locally in `dir`, in order; a failure ends them unless the command's
/// failures are ignored.
async fn run_all(
    engine: &super::Engine<'_>,
    stage: &str,
    label: &str,
    commands: &[PlannedCommand],
    dir: &Path,
) -> Result<(), HostFailure> {
    for cmd in commands {
        let result = run_one(engine, stage, label, cmd, dir).await;
        let ignored = cmd.on_error != OnError::Fail;
        match result {
            Ok(out) if out.success() => {}
            Ok(out) if ignored => engine.emit.emit(Event::CommandIgnored {
                host: label.to_string(),
                purpose: cmd.purpose.clone(),
                stderr: out.stderr_tail(10),
            }),
            Err(e) if ignored => engine.emit.emit(Event::CommandIgnored {
                host: label.to_string(),
                purpose: cmd.purpose.clone(),
                stderr: e.message,
            }),
            Ok(out) => {
                let failure =
                    HostFailure::remote(stage, None, &RemoteError::failed(label, &cmd.spec, &out));
                return Err(match &cmd.hint {
                    Some(h) => failure.with_hint(h.clone()),
                    None => failure,
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Kamal's builder check (`build push`): inspect the builder; when that fails saying it is
/// missing or does not fit, warn, remove what is left of it (failures ignored) and create it;
/// any other failure fails the build.
pub async fn ensure_builder(
    engine: &super::Engine<'_>,
    stage: &str,
    label: &str,
    eb: &EnsureBuilder,
    dir: &Path,
) -> Result<(), HostFailure> {
    let out = run_one(engine, stage, label, &eb.inspect, dir).await?;
    if out.success() {
        return Ok(());
    }
    let said = format!("{}\n{}", out.stdout, out.stderr);
    if !eb.missing_if.iter().any(|m| said.contains(m.as_str())) {
        return Err(HostFailure::remote(
            stage,
            None,
            &RemoteError::failed(label, &eb.inspect.spec, &out),
        ));
    }
    engine.emit.emit(Event::Warning {
        message: format!(
            "Missing compatible builder, so creating a new one first ({} builder {})",
            eb.target, eb.name
        ),
    });
    run_all(engine, stage, label, &eb.remove, dir).await?;
    run_all(engine, stage, label, &eb.create, dir).await
}

/// Run a local step's commands in `dir`, in order: each program found on `PATH`, its
/// environment and stdin as planned; the first failure (unless ignored) ends the step.
pub async fn run_commands(
    engine: &super::Engine<'_>,
    stage: &str,
    step: &LocalStep,
    dir: &Path,
) -> Result<(), HostFailure> {
    run_all(engine, stage, &step.label, &step.commands, dir).await
}

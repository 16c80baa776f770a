//! The local build: a clean clone of `HEAD` (Kamal's clone semantics) or `builder.context`,
//! then `docker build` + `docker push` (or `docker buildx build --output=type=registry`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::command::CommandSpec;
use crate::config::Config;
use crate::docker;
use crate::release::Release;
use crate::remote::{CommandOutput, RemoteError};

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
) -> Result<CommandOutput, String> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .output()
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
    let out = run_local(&git, &args, root, &[]).await?;
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

/// Build and push the release's image; returns the commands' combined output.
pub async fn build_and_push(
    config: &Config,
    release: &Release,
    dir: &BuildDir,
    no_cache: bool,
    secrets: &[(String, String)],
) -> Result<String, RemoteError> {
    let docker_bin = which::which("docker").map_err(|e| RemoteError::Exec {
        host: "localhost".into(),
        purpose: "build the image".into(),
        message: format!("the docker CLI is not on PATH ({e})"),
    })?;
    let opts = docker::build::BuildOptions {
        version: &release.version,
        context: &dir.context,
        no_cache,
        secrets,
    };
    let buildx = run_local(
        &docker_bin,
        &["buildx".into(), "version".into()],
        &dir.dir,
        &[],
    )
    .await
    .map(|o| o.success())
    .unwrap_or(false);
    let specs: Vec<CommandSpec> = if buildx {
        let builder = docker::build::builder_name(config, std::env::consts::ARCH);
        vec![docker::build::buildx_build(
            config,
            builder.as_deref(),
            &opts,
        )]
    } else {
        docker::build::docker_build_and_push(config, &opts)
    };
    let mut log = String::new();
    for spec in specs {
        let args: Vec<String> = spec.args.iter().map(|a| a.as_str().to_string()).collect();
        let out = run_local(&docker_bin, &args, &dir.dir, &spec.env)
            .await
            .map_err(|message| RemoteError::Exec {
                host: "localhost".into(),
                purpose: spec.purpose.clone(),
                message,
            })?;
        log.push_str(&out.stdout);
        log.push_str(&out.stderr);
        if !out.success() {
            return Err(RemoteError::failed("localhost", &spec, &out));
        }
    }
    Ok(log)
}

//! The build stage's step: what `builder:` asks for on this machine, as Kamal 2.12 does it
//! where `docker buildx` exists (builder inspected, created when missing, `docker buildx
//! build`), `pack build` for buildpacks, and an honest path without buildx: `docker build` +
//! `docker push` here, or on `builder.remote`'s engine (`docker -H ssh://… build`), for one arch
//! that engine builds natively. Whatever the legacy builder cannot do is refused before anything
//! runs ([`check`]), naming the key.

use crate::config::Config;
use crate::docker::build::{self, BuildOptions};
use crate::docker::builder::{self as bx, Target};
use crate::release::Release;

use super::{planned, BuildDir, EnsureBuilder, LocalStep};

/// What this machine offers the build (found once, before planning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildEnv {
    /// `docker buildx version` works.
    pub buildx: bool,
    /// The local docker engine's architecture, Kamal's spelling (`amd64`, `arm64`), from
    /// `docker info --format '{{.Architecture}}'`.
    pub arch: String,
    /// `pack` is on `PATH`.
    pub pack: bool,
}

impl BuildEnv {
    /// No buildx, no pack, this CPU's arch (tests, and machines without docker).
    pub fn legacy() -> Self {
        BuildEnv {
            buildx: false,
            arch: docker_arch(std::env::consts::ARCH),
            pack: false,
        }
    }
}

/// Kamal's `docker_arch`: `aarch64…` ⇒ `arm64`, `x86_64…` ⇒ `amd64`, anything else as it is.
pub fn docker_arch(reported: &str) -> String {
    let reported = reported.trim();
    if reported.contains("aarch64") {
        "arm64".into()
    } else if reported.contains("x86_64") {
        "amd64".into()
    } else {
        reported.to_string()
    }
}

/// A build this machine cannot do as configured, found before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct BuildRefusal {
    /// The configuration key (`builder.arch`, `builder.cache`, …).
    pub key: String,
    /// Why.
    pub message: String,
    /// What to do.
    pub hint: String,
}

impl crate::error::Diagnostic for BuildRefusal {
    fn hint(&self) -> Option<String> {
        Some(self.hint.clone())
    }
}

const INSTALL_BUILDX: &str =
    "install docker buildx on this machine (Debian/Ubuntu: the docker-buildx or docker-buildx-plugin package)";

fn refuse(key: &str, message: impl Into<String>, hint: impl Into<String>) -> BuildRefusal {
    BuildRefusal {
        key: key.to_string(),
        message: message.into(),
        hint: hint.into(),
    }
}

fn needs_buildx(key: &str, what: &str) -> BuildRefusal {
    refuse(
        key,
        format!("{what} needs docker buildx, which is not installed here (`docker buildx version` fails)"),
        format!("{INSTALL_BUILDX}, or remove `{key}`"),
    )
}

/// Refuse, before anything runs, a build this machine cannot do as configured: Kamal's check
/// that a local registry with a remote builder uses `ssh://`; `pack` without the `pack` CLI;
/// and without buildx every key only buildx implements (`cache`, `driver: cloud`, other
/// drivers, `provenance`, `sbom`, `secrets`, `ssh`) and any arch the legacy builder cannot
/// produce (several arches, or one that is not the building engine's).
pub fn check(config: &Config, env: &BuildEnv) -> Result<(), BuildRefusal> {
    let b = &config.builder;
    let target = bx::target(config, &env.arch);
    let (local_arches, remote_arches) = bx::arches(config, &env.arch);
    if let Some(remote) = &b.remote {
        if config.registry.is_local() && !remote_arches.is_empty() && !remote.starts_with("ssh://")
        {
            return Err(refuse(
                "builder.remote",
                "Local registry with remote builder requires an SSH URL (e.g., ssh://user@host)",
                "set `builder.remote` to ssh://user@host",
            ));
        }
    }
    if target == Target::Pack && !env.pack {
        return Err(refuse(
            "builder.pack",
            "buildpacks need the `pack` CLI, which is not on PATH",
            "install pack (https://buildpacks.io/docs/tools/pack/), or remove `builder.pack`",
        ));
    }
    if env.buildx || target == Target::Pack {
        return Ok(());
    }
    if target == Target::Cloud {
        return Err(needs_buildx(
            "builder.driver",
            &format!("the Docker Build Cloud driver `{}`", b.driver),
        ));
    }
    if b.driver != "docker" && b.driver != "docker-container" {
        return Err(needs_buildx(
            "builder.driver",
            &format!("the buildx driver `{}`", b.driver),
        ));
    }
    if let Some(kind) = &b.cache_type {
        return Err(needs_buildx(
            "builder.cache",
            &format!("the build cache (`type: {kind}`)"),
        ));
    }
    for (key, set) in [
        ("builder.provenance", b.provenance.is_some()),
        ("builder.sbom", b.sbom.is_some()),
        ("builder.secrets", !b.secrets.is_empty()),
        ("builder.ssh", b.ssh.is_some()),
    ] {
        if set {
            return Err(needs_buildx(key, &format!("`{key}`")));
        }
    }
    let arch_hint = format!(
        "{INSTALL_BUILDX}, or build one arch at a time on an engine of that arch (`builder.remote: ssh://user@host`)"
    );
    if !local_arches.is_empty() && !remote_arches.is_empty() {
        return Err(refuse(
            "builder.arch",
            format!(
                "building for {} here and {} on {} makes one multi-arch image, which needs docker buildx (not installed here)",
                local_arches.join(", "),
                remote_arches.join(", "),
                b.remote.as_deref().unwrap_or("")
            ),
            arch_hint,
        ));
    }
    let built = if remote_arches.is_empty() {
        &local_arches
    } else {
        &remote_arches
    };
    if built.len() > 1 {
        return Err(refuse(
            "builder.arch",
            format!(
                "a multi-arch image ({}) needs docker buildx, which is not installed here; the legacy `docker build` makes one arch",
                built.join(", ")
            ),
            arch_hint,
        ));
    }
    if let (Some(arch), true) = (built.first(), remote_arches.is_empty()) {
        if *arch != env.arch {
            return Err(refuse(
                "builder.arch",
                format!(
                    "`{arch}` is not the arch of this machine's docker engine ({}); building for another arch needs docker buildx, which is not installed here",
                    env.arch
                ),
                arch_hint,
            ));
        }
    }
    Ok(())
}

/// Kamal's check that `builder.dockerfile` exists (`Missing <file>`), relative to the
/// directory dray runs in as Kamal's is relative to its working directory; not for `pack`,
/// which uses none.
pub fn check_dockerfile(
    config: &Config,
    cwd: &std::path::Path,
    env: &BuildEnv,
) -> Result<(), BuildRefusal> {
    let file = &config.builder.dockerfile;
    if bx::target(config, &env.arch) == Target::Pack || cwd.join(file).exists() {
        return Ok(());
    }
    Err(refuse(
        "builder.dockerfile",
        format!("Missing {file}"),
        format!(
            "create {file} in {} or set `builder.dockerfile` to the Dockerfile's path",
            cwd.display()
        ),
    ))
}

/// What a build is asked for beyond the configuration: `--no-cache`, `--output` (Kamal's
/// `export_action`) and `build dev`'s dirty tags from the working directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildRequest<'a> {
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--output`: `registry` (pushed), `docker` (kept in the engine), or a buildx type.
    pub export: &'a str,
    /// `build dev`: tags end in `-dirty` and the working directory is built (no clone).
    pub dev: bool,
}

impl BuildRequest<'_> {
    /// A deploy's build: pushed to the registry, tags as they are.
    pub fn push(no_cache: bool) -> BuildRequest<'static> {
        BuildRequest {
            no_cache,
            export: "registry",
            dev: false,
        }
    }
}

/// Refuse an `--output` this machine cannot produce: without buildx, the legacy `docker
/// build` either pushes (`registry`) or keeps the image in the engine that built it
/// (`docker`, not on `builder.remote`'s engine, whose image would never reach this machine).
pub fn check_export(config: &Config, env: &BuildEnv, export: &str) -> Result<(), BuildRefusal> {
    let target = bx::target(config, &env.arch);
    if env.buildx || target == Target::Pack || export == "registry" {
        return Ok(());
    }
    if export != "docker" {
        return Err(refuse(
            "--output",
            format!("the output type `{export}` needs docker buildx, which is not installed here (`docker build` pushes to the registry or keeps the image in the engine: `registry`, `docker`)"),
            format!("{INSTALL_BUILDX}, or use --output registry or --output docker"),
        ));
    }
    if target == Target::Remote {
        return Err(refuse(
            "--output",
            format!(
                "`docker` keeps the image in the engine that built it, here {} (`builder.remote`), not on this machine; that needs docker buildx, which is not installed here",
                config.builder.remote.as_deref().unwrap_or("")
            ),
            format!("{INSTALL_BUILDX}, or use --output registry"),
        ));
    }
    Ok(())
}

/// The build stage's local step: where it runs, the Dockerfile it needs, the builder it
/// ensures, and its commands. `secrets` are `builder.secrets`' resolved values (for the
/// environment of the build process, never argv). Call [`check`] first.
pub fn build_step(
    config: &Config,
    release: &Release,
    no_cache: bool,
    env: &BuildEnv,
    secrets: &[(String, String)],
) -> LocalStep {
    build_step_for(config, release, &BuildRequest::push(no_cache), env, secrets)
}

/// [`build_step`] for any [`BuildRequest`] (`build push --output …`, `build dev`). Call
/// [`check`] and [`check_export`] first.
pub fn build_step_for(
    config: &Config,
    release: &Release,
    req: &BuildRequest,
    env: &BuildEnv,
    secrets: &[(String, String)],
) -> LocalStep {
    let b = &config.builder;
    let context = b.context.clone().unwrap_or_else(|| ".".into());
    let opts = BuildOptions {
        version: &release.version,
        context: &context,
        no_cache: req.no_cache,
        secrets,
        export: req.export,
        dirty: req.dev,
    };
    let target = bx::target(config, &env.arch);
    let mut ensure_builder = None;
    let commands = if target == Target::Pack {
        std::iter::once(bx::pack_inspect(config))
            .chain(bx::pack_build(config, &opts, &env.arch))
            .map(planned)
            .collect()
    } else if env.buildx {
        let name = bx::name(config, target);
        if let Some(name) = &name {
            ensure_builder = Some(EnsureBuilder {
                name: name.clone(),
                target: target.name().to_string(),
                inspect: planned(bx::inspect(config, target, name)),
                missing_if: bx::MISSING.iter().map(|s| s.to_string()).collect(),
                remove: bx::remove(target, name)
                    .into_iter()
                    .map(|c| planned(c).ignore_errors())
                    .collect(),
                create: bx::create(config, target, name, &env.arch)
                    .into_iter()
                    .map(|(c, ignored)| {
                        let c = planned(c);
                        if ignored {
                            c.ignore_errors()
                        } else {
                            c
                        }
                    })
                    .collect(),
            });
        }
        let mut cmd = build::buildx_build(config, name.as_deref(), &opts);
        if matches!(target, Target::Remote | Target::Hybrid) {
            // Kamal's `push_env` for remote builders.
            cmd.env
                .push(("BUILDKIT_NO_CLIENT_TOKEN".into(), "1".into()));
        }
        vec![planned(cmd)]
    } else {
        let engine = (target == Target::Remote)
            .then_some(b.remote.as_deref())
            .flatten();
        build::docker_build_and_push(config, &opts, engine)
            .into_iter()
            .map(planned)
            .collect()
    };
    let [image, _] = opts.tags(config);
    let purpose = match (target, env.buildx) {
        _ if !opts.pushes() => format!("build {image} (output type {})", req.export),
        (Target::Pack, _) => format!("build {} with pack and push it", release.image),
        (Target::Remote, false) => format!(
            "build and push {} on {}",
            release.image,
            b.remote.as_deref().unwrap_or("")
        ),
        _ => format!("build and push {}", release.image),
    };
    LocalStep {
        purpose,
        label: "localhost".into(),
        build_dir: Some(match &b.context {
            Some(c) => BuildDir::Context(c.clone()),
            // `build dev` builds the working directory as it is.
            None if req.dev => BuildDir::Context(".".into()),
            None => BuildDir::CloneOfHead,
        }),
        secret_env: b.secrets.clone(),
        ensure_builder,
        commands,
    }
}

#[cfg(test)]
#[path = "builder_tests.rs"]
mod tests;

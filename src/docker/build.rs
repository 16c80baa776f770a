//! Local image builds (`lib/kamal/commands/builder/*.rb`): `docker buildx build` pushing to the
//! registry, and a fallback for machines without buildx: `docker build` then `docker push` of
//! both tags.
//!
//! Build arguments may hold secrets (Kamal redacts them in logs): they are
//! [`Arg::Sensitive`](crate::command::Arg::Sensitive), shown as `--build-arg KEY=[REDACTED]`.
//! Build secrets travel as environment variables of the local `docker` process
//! ([`CommandSpec::env`]), named after the secret, never in argv.

use crate::command::CommandSpec;
use crate::config::model::Config;

/// What a build needs beyond the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions<'a> {
    /// The version to tag.
    pub version: &'a str,
    /// The build context: `.` inside the clean clone, or `builder.context`.
    pub context: &'a str,
    /// `--no-cache`.
    pub no_cache: bool,
    /// The resolved values of `builder.secrets`, `(name, value)`, for the environment.
    pub secrets: &'a [(String, String)],
    /// Where the result goes (Kamal's `export_action`, `--output`): `registry` (pushed), `docker`
    /// (kept in the building engine's image store), or any other `buildx --output` type.
    pub export: &'a str,
    /// `build dev`: both tags end in `-dirty`.
    pub dirty: bool,
}

impl BuildOptions<'_> {
    /// The two tags this build makes ([`tags`], with `-dirty` for `build dev`).
    pub fn tags(&self, config: &Config) -> [String; 2] {
        let tags = tags(config, self.version);
        if self.dirty {
            tags.map(|t| format!("{t}-dirty"))
        } else {
            tags
        }
    }

    /// Whether the result is pushed to the registry.
    pub fn pushes(&self) -> bool {
        self.export == "registry"
    }
}

/// `linux/<arch>,…` of every `builder.arch`.
fn platforms(config: &Config) -> Option<String> {
    platforms_of(&config.builder.arch)
}

/// `<repo>:<version>` and `<repo>:latest[-D]`.
pub fn tags(config: &Config, version: &str) -> [String; 2] {
    [
        format!("{}:{}", config.repository, version),
        format!("{}:{}", config.repository, config.latest_tag()),
    ]
}

/// `type=gha[,opts]` / `type=registry,ref=<server>/<image>-build-cache[,opts]` pairs.
fn cache(config: &Config) -> Option<(String, String)> {
    let b = &config.builder;
    let options = b.cache_options.as_deref();
    match b.cache_type.as_deref()? {
        "gha" => {
            let allowed: Vec<&str> = options
                .unwrap_or("")
                .split(',')
                .filter(|o| {
                    ["url=", "url_v2=", "token=", "scope=", "timeout="]
                        .iter()
                        .any(|p| o.starts_with(p))
                })
                .collect();
            let from = std::iter::once("type=gha")
                .chain(allowed)
                .collect::<Vec<_>>()
                .join(",");
            let to = std::iter::once("type=gha")
                .chain(options)
                .collect::<Vec<_>>()
                .join(",");
            Some((to, from))
        }
        "registry" => {
            let image = b
                .cache_image
                .clone()
                .unwrap_or_else(|| format!("{}-build-cache", config.image));
            let reference = match &config.registry.server {
                Some(s) => format!("ref={s}/{image}"),
                None => format!("ref={image}"),
            };
            let from = format!("type=registry,{reference}");
            let to = match options {
                Some(o) => format!("{from},{o}"),
                None => from.clone(),
            };
            Some((to, from))
        }
        _ => None,
    }
}

/// `--label service=S [--build-arg K=v…]` (args redacted in display).
fn label_and_args(mut cmd: CommandSpec, config: &Config) -> CommandSpec {
    cmd = cmd
        .arg("--label")
        .arg(format!("service={}", config.service));
    for (k, v) in &config.builder.args {
        cmd = cmd
            .arg("--build-arg")
            .arg_sensitive(format!("{k}={v}"), format!("{k}=[REDACTED]"));
    }
    cmd
}

/// Secret values as the local `docker` process's environment.
fn with_secret_env(mut cmd: CommandSpec, opts: &BuildOptions<'_>) -> CommandSpec {
    cmd.env.extend(opts.secrets.iter().cloned());
    cmd
}

/// `docker buildx build --output=type=registry --platform … [--builder B] -t IMG -t LATEST
/// [--cache-to … --cache-from …] --label service=S [--build-arg K=v] [--secret id=K] --file F
/// [--target T] [--ssh S] [--provenance P] [--sbom S] [--no-cache] <context>` (Kamal's order;
/// Kamal's trailing `2>&1` is the runner's business).
pub fn buildx_build(
    config: &Config,
    builder: Option<&str>,
    opts: &BuildOptions<'_>,
) -> CommandSpec {
    let b = &config.builder;
    let purpose = if opts.pushes() {
        "build and push image".to_string()
    } else {
        format!("build image (output type {})", opts.export)
    };
    let mut cmd = CommandSpec::new(purpose, "docker")
        .args(["buildx", "build"])
        .arg(format!("--output=type={}", opts.export));
    if let Some(p) = platforms(config) {
        cmd = cmd.arg("--platform").arg(p);
    }
    if let Some(name) = builder {
        cmd = cmd.arg("--builder").arg(name);
    }
    for tag in opts.tags(config) {
        cmd = cmd.arg("-t").arg(tag);
    }
    if let Some((to, from)) = cache(config) {
        cmd = cmd.arg("--cache-to").arg(to).arg("--cache-from").arg(from);
    }
    cmd = label_and_args(cmd, config);
    for s in &b.secrets {
        cmd = cmd.arg("--secret").arg(format!("id={s}"));
    }
    cmd = cmd.arg("--file").arg(&b.dockerfile);
    if let Some(t) = &b.target {
        cmd = cmd.arg("--target").arg(t);
    }
    if let Some(s) = &b.ssh {
        cmd = cmd.arg("--ssh").arg(s);
    }
    if let Some(p) = &b.provenance {
        cmd = cmd.arg("--provenance").arg(p);
    }
    if let Some(s) = &b.sbom {
        cmd = cmd.arg("--sbom").arg(s);
    }
    if opts.no_cache {
        cmd = cmd.arg("--no-cache");
    }
    with_secret_env(cmd.arg(opts.context), opts)
}

/// Without buildx: `docker [-H <engine>] build -t IMG -t LATEST --label service=S [--build-arg K=v]
/// [--secret id=K,env=K] --file F [--target T] [--ssh S] [--no-cache] [--platform P] <context>`.
/// Secrets and `ssh` need BuildKit, so `DOCKER_BUILDKIT=1` is set when either is used; the
/// secret names its env var explicitly because the classic CLI does not default to it. A
/// multi-arch `--platform` needs buildx: use this for one arch. `engine` (`ssh://user@host`,
/// `builder.remote`) builds on that engine instead of this machine's.
pub fn docker_build(config: &Config, opts: &BuildOptions<'_>, engine: Option<&str>) -> CommandSpec {
    let b = &config.builder;
    let mut cmd = match engine {
        Some(e) => CommandSpec::new(format!("build image on {e}"), "docker")
            .arg("-H")
            .arg(e),
        None => CommandSpec::new("build image", "docker"),
    }
    .arg("build");
    for tag in opts.tags(config) {
        cmd = cmd.arg("-t").arg(tag);
    }
    cmd = label_and_args(cmd, config);
    for s in &b.secrets {
        cmd = cmd.arg("--secret").arg(format!("id={s},env={s}"));
    }
    cmd = cmd.arg("--file").arg(&b.dockerfile);
    if let Some(t) = &b.target {
        cmd = cmd.arg("--target").arg(t);
    }
    if let Some(s) = &b.ssh {
        cmd = cmd.arg("--ssh").arg(s);
    }
    if opts.no_cache {
        cmd = cmd.arg("--no-cache");
    }
    if let Some(p) = platforms(config) {
        cmd = cmd.arg("--platform").arg(p);
    }
    if !b.secrets.is_empty() || b.ssh.is_some() {
        cmd.env.push(("DOCKER_BUILDKIT".into(), "1".into()));
    }
    with_secret_env(cmd.arg(opts.context), opts)
}

/// `docker [-H <engine>] push <tag>`.
pub fn push(tag: &str, engine: Option<&str>) -> CommandSpec {
    match engine {
        Some(e) => CommandSpec::new(format!("push {tag} from {e}"), "docker")
            .arg("-H")
            .arg(e),
        None => CommandSpec::new(format!("push {tag}"), "docker"),
    }
    .arg("push")
    .arg(tag)
}

/// The fallback in order: `docker build`, `docker push IMG`, `docker push LATEST` (the pushes
/// only for the `registry` output; `docker` keeps the image in the engine), all on
/// `engine` when given (the remote builder's engine pushes what it built; the local docker CLI
/// sends its registry credentials with each push).
pub fn docker_build_and_push(
    config: &Config,
    opts: &BuildOptions<'_>,
    engine: Option<&str>,
) -> Vec<CommandSpec> {
    let [image, latest] = opts.tags(config);
    let mut cmds = vec![docker_build(config, opts, engine)];
    if opts.pushes() {
        cmds.push(push(&image, engine));
        cmds.push(push(&latest, engine));
    }
    cmds
}

/// `linux/<arch>,…` of `arches`, `None` when there are none.
pub fn platforms_of(arches: &[String]) -> Option<String> {
    (!arches.is_empty()).then(|| {
        arches
            .iter()
            .map(|a| format!("linux/{a}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::test_support::{base, config_with, BASE};

    fn opts<'a>(secrets: &'a [(String, String)]) -> BuildOptions<'a> {
        BuildOptions {
            version: "123",
            context: ".",
            no_cache: false,
            secrets,
            export: "registry",
            dirty: false,
        }
    }

    #[test]
    fn buildx_default_matches_kamal() {
        let c = base();
        let name = crate::docker::builder::name(&c, crate::docker::builder::Target::Local);
        assert_eq!(name.as_deref(), Some("kamal-local-docker-container"));
        // Kamal CT "target specified arch locally by default" (without its `2>&1`).
        insta::assert_snapshot!(buildx_build(&c, name.as_deref(), &opts(&[])).to_shell(), @"docker buildx build --output=type=registry --platform linux/amd64 --builder kamal-local-docker-container -t dhh/app:123 -t dhh/app:latest --label service=app --file Dockerfile .");
    }

    #[test]
    fn buildx_full_with_destination_args_secrets_and_cache() {
        let yaml = BASE.replace(
            "builder:\n  arch: amd64\n",
            "builder:\n  arch: [amd64, arm64]\n  remote: ssh://app@127.0.0.1\n  cache:\n    type: gha\n    options: mode=max,scope=x\n  args:\n    RUBY_VERSION: 3.3.0\n    TOKEN: s3cr3t $x\n  secrets:\n    - GITHUB_TOKEN\n  target: prod\n  ssh: default\n  provenance: mode=max\n  sbom: true\n",
        );
        let c = config_with(&yaml, Some("staging"));
        use crate::docker::builder::{name as builder_name, target};
        let name = builder_name(&c, target(&c, "amd64"));
        assert_eq!(
            name.as_deref(),
            Some("kamal-hybrid-docker-container-ssh---app-127-0-0-1")
        );
        let secrets = vec![("GITHUB_TOKEN".to_string(), "ghp_x".to_string())];
        let mut o = opts(&secrets);
        o.no_cache = true;
        let cmd = buildx_build(&c, name.as_deref(), &o);
        assert_eq!(cmd.env, secrets);
        assert!(!format!("{cmd:?}").contains("s3cr3t"));
        assert!(!format!("{cmd:?}").contains("ghp_x"));
        insta::assert_snapshot!(cmd.to_shell());
        insta::assert_snapshot!(cmd.to_shell_redacted());
        assert_eq!(
            builder_name(&c, target(&c, "arm64")).as_deref(),
            Some("kamal-hybrid-docker-container-ssh---app-127-0-0-1")
        );
        assert_eq!(
            builder_name(&c, target(&c, "riscv")).as_deref(),
            Some("kamal-remote-ssh---app-127-0-0-1")
        );
    }

    #[test]
    fn fallback_build_and_push() {
        let yaml = BASE.replace(
            "builder:\n  arch: amd64\n",
            "builder:\n  arch: amd64\n  args:\n    A: 1\n  secrets:\n    - GITHUB_TOKEN\n",
        );
        let c = config_with(&yaml, Some("staging"));
        let secrets = vec![("GITHUB_TOKEN".to_string(), "ghp_x".to_string())];
        let cmds = docker_build_and_push(&c, &opts(&secrets), None);
        let lines: Vec<String> = cmds.iter().map(|c| c.to_shell_redacted()).collect();
        insta::assert_snapshot!(lines.join("\n"));
        assert!(cmds[0]
            .env
            .contains(&("DOCKER_BUILDKIT".to_string(), "1".to_string())));
        assert_eq!(cmds[1].purpose, "push dhh/app:123");
    }
}

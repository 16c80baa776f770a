//! The buildx builder a build uses, as Kamal 2.12 picks and manages it
//! (`lib/kamal/commands/builder.rb`, `builder/{local,remote,hybrid,cloud,pack}.rb`): which target
//! a configuration selects, the builder's name, and the commands that inspect, remove and
//! create it; `pack build` for buildpacks.

use crate::command::CommandSpec;
use crate::config::model::Config;

use super::build::BuildOptions;

/// The kind of build Kamal selects (`Kamal::Commands::Builder#target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `kamal-local[-registry]-<driver>` on this machine (or no builder with `driver: docker`).
    Local,
    /// Every arch on the remote builder: `kamal-remote-<remote>`.
    Remote,
    /// The local arch here, the others on the remote: `kamal-hybrid-<driver>-<remote>`.
    Hybrid,
    /// Cloud Native Buildpacks through `pack build`.
    Pack,
    /// Docker Build Cloud (`driver: cloud org/name`).
    Cloud,
}

impl Target {
    /// Kamal's name for it (`kamal build details` prints `Builder: <name>`).
    pub fn name(self) -> &'static str {
        match self {
            Target::Local => "local",
            Target::Remote => "remote",
            Target::Hybrid => "hybrid",
            Target::Pack => "pack",
            Target::Cloud => "cloud",
        }
    }
}

/// The arches built here and on the remote builder (`local_arches`, `remote_arches`).
/// `local_arch` is this machine's docker architecture (`amd64`, `arm64`).
pub fn arches(config: &Config, local_arch: &str) -> (Vec<String>, Vec<String>) {
    let b = &config.builder;
    let local: Vec<String> = if !b.local {
        Vec::new()
    } else if b.remote.is_some() {
        b.arch
            .iter()
            .filter(|a| *a == local_arch)
            .cloned()
            .collect()
    } else {
        b.arch.clone()
    };
    let remote = if b.remote.is_some() {
        b.arch
            .iter()
            .filter(|a| !local.contains(a))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    (local, remote)
}

/// Kamal's selection: remote arches and local ones ⇒ hybrid, remote only ⇒ remote, then pack,
/// cloud, local.
pub fn target(config: &Config, local_arch: &str) -> Target {
    let b = &config.builder;
    let (local_arches, remote_arches) = arches(config, local_arch);
    let local = b.local && (b.arch.is_empty() || !local_arches.is_empty());
    if !remote_arches.is_empty() {
        if local {
            Target::Hybrid
        } else {
            Target::Remote
        }
    } else if b.pack_builder.is_some() {
        Target::Pack
    } else if b.driver.starts_with("cloud") {
        Target::Cloud
    } else {
        Target::Local
    }
}

/// `kamal-remote-<remote with every character but a-z0-9_- as ->[-local-registry]`.
fn remote_suffix(config: &Config) -> String {
    let remote = config.builder.remote.as_deref().unwrap_or("");
    let mut suffix: String = remote
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if config.registry.is_local() {
        suffix.push_str("-local-registry");
    }
    suffix
}

/// The remote builder's docker context: `<builder name>-context`.
pub fn remote_context_name(builder: &str) -> String {
    format!("{builder}-context")
}

/// `--driver-opt network=host` with a local registry (the builder reaches it on the host).
fn driver_options(mut cmd: CommandSpec, config: &Config) -> CommandSpec {
    if config.registry.is_local() {
        cmd = cmd.arg("--driver-opt").arg("network=host");
    }
    cmd
}

fn docker(purpose: impl Into<String>) -> CommandSpec {
    CommandSpec::new(purpose, "docker")
}

/// The builder's name for `target`: `kamal-local[-registry]-<driver>`, `kamal-remote-…`,
/// `kamal-hybrid-<driver>-…`, the cloud driver with ` ` and `/` as `-`; `None` for `pack` and
/// for `driver: docker` (the engine's own builder).
pub fn name(config: &Config, target: Target) -> Option<String> {
    let b = &config.builder;
    match target {
        Target::Pack => None,
        Target::Remote => Some(format!("kamal-remote-{}", remote_suffix(config))),
        Target::Hybrid => Some(format!(
            "kamal-hybrid-{}-{}",
            b.driver,
            remote_suffix(config)
        )),
        Target::Cloud => Some(b.driver.replace([' ', '/'], "-")),
        Target::Local if b.driver == "docker" => None,
        Target::Local if config.registry.is_local() => {
            Some(format!("kamal-local-registry-{}", b.driver))
        }
        Target::Local => Some(format!("kamal-local-{}", b.driver)),
    }
}

/// Does the builder exist and fit (`inspect_builder`)? Local and cloud: `docker buildx inspect
/// <name>`. Remote and hybrid: the builder's endpoint is its context and the context points at
/// `builder.remote`, else `no compatible builder`, as one `sh -c` pipeline.
pub fn inspect(config: &Config, target: Target, name: &str) -> CommandSpec {
    match target {
        Target::Remote | Target::Hybrid => {
            let context = remote_context_name(name);
            let remote = config.builder.remote.as_deref().unwrap_or("");
            let q = crate::shell::quote;
            let script = format!(
                "docker buildx inspect {n} | grep -q {endpoint} && docker context inspect {c} --format '{{{{.Endpoints.docker.Host}}}}' | grep -xq {r} || (echo no compatible builder && exit 1)",
                n = q(name),
                endpoint = q(&format!("Endpoint:.*{context}")),
                c = q(&context),
                r = q(remote),
            );
            CommandSpec::new(format!("inspect the buildx builder {name}"), "sh")
                .arg("-c")
                .arg(script)
        }
        _ => docker(format!("inspect the buildx builder {name}")).args(["buildx", "inspect", name]),
    }
}

/// What `inspect`'s failure says when the builder is missing or does not fit, so it is (re)made
/// (Kamal's `/(context not found|no builder|no compatible builder|does not exist)/`).
pub const MISSING: [&str; 4] = [
    "context not found",
    "no builder",
    "no compatible builder",
    "does not exist",
];

/// Remove the builder (`remove`): remote and hybrid remove the context then the builder
/// (Kamal chains them with `;`), the others the builder.
pub fn remove(target: Target, name: &str) -> Vec<CommandSpec> {
    let rm = docker(format!("remove the buildx builder {name}")).args(["buildx", "rm", name]);
    match target {
        Target::Remote | Target::Hybrid => {
            let context = remote_context_name(name);
            vec![
                docker(format!("remove the docker context {context}"))
                    .args(["context", "rm", &context]),
                rm,
            ]
        }
        _ => vec![rm],
    }
}

/// Create the builder (`create`), each command with whether its failure is ignored (Kamal's
/// `chain` with `;` for the remote builder's context). Local: `docker buildx create --name N
/// --driver=D`; remote: a docker context for `builder.remote`, then a builder on it; hybrid: a
/// local builder for the local arches with the remote context appended for the others; cloud:
/// `docker buildx create --driver cloud org/name`.
pub fn create(
    config: &Config,
    target: Target,
    name: &str,
    local_arch: &str,
) -> Vec<(CommandSpec, bool)> {
    let b = &config.builder;
    let remote = b.remote.as_deref().unwrap_or("");
    let context = remote_context_name(name);
    let purpose = format!("create the buildx builder {name}");
    let create_context = || {
        docker(format!("create the docker context {context} for {remote}")).args([
            "context".to_string(),
            "create".to_string(),
            context.clone(),
            "--description".to_string(),
            format!("{name} host"),
            "--docker".to_string(),
            format!("host={remote}"),
        ])
    };
    match target {
        Target::Pack => Vec::new(),
        Target::Local => vec![(
            driver_options(
                docker(purpose).args([
                    "buildx".to_string(),
                    "create".to_string(),
                    "--name".to_string(),
                    name.to_string(),
                    format!("--driver={}", b.driver),
                ]),
                config,
            ),
            false,
        )],
        Target::Remote => vec![
            (create_context(), true),
            (
                driver_options(
                    docker(purpose).args(["buildx", "create", "--name", name]),
                    config,
                )
                .arg(&context),
                false,
            ),
        ],
        Target::Hybrid => {
            let (local_arches, remote_arches) = arches(config, local_arch);
            let mut local = docker(purpose.clone()).args(["buildx", "create"]);
            if let Some(p) = super::build::platforms_of(&local_arches) {
                local = local.arg("--platform").arg(p);
            }
            local = driver_options(
                local
                    .arg("--name")
                    .arg(name)
                    .arg(format!("--driver={}", b.driver)),
                config,
            );
            let mut append = docker(format!("append {remote} to the buildx builder {name}"))
                .args(["buildx", "create"]);
            if let Some(p) = super::build::platforms_of(&remote_arches) {
                append = append.arg("--platform").arg(p);
            }
            append = driver_options(append.arg("--append").arg("--name").arg(name), config)
                .arg(&context);
            vec![(local, false), (create_context(), false), (append, false)]
        }
        Target::Cloud => {
            let cmd = docker(purpose)
                .args(["buildx", "create", "--driver"])
                .args(b.driver.split_whitespace());
            vec![(cmd, false)]
        }
    }
}

/// `pack builder inspect <builder>` (Kamal's `inspect_builder` for pack).
pub fn pack_inspect(config: &Config) -> CommandSpec {
    let builder = config.builder.pack_builder.as_deref().unwrap_or("");
    CommandSpec::new(format!("inspect the pack builder {builder}"), "pack")
        .args(["builder", "inspect", builder])
}

/// `pack build <repository> --platform linux/<arch> --creation-time now --builder B
/// --buildpack … --buildpack paketo-buildpacks/image-labels -t IMG -t LATEST [--clear-cache]
/// --env BP_IMAGE_LABELS=service=S [--env K=v…] [--env SECRET…] --path <context>`, then
/// `docker push` of both tags (Kamal's `Pack#push`).
///
/// Unlike Kamal, which passes `--env SECRET=value`, a secret is passed by name (`--env SECRET`,
/// which `pack` reads from its environment) so its value is never in argv.
pub fn pack_build(config: &Config, opts: &BuildOptions<'_>, local_arch: &str) -> Vec<CommandSpec> {
    let b = &config.builder;
    let arch = arches(config, local_arch)
        .0
        .first()
        .cloned()
        .unwrap_or_else(|| local_arch.to_string());
    let [image, latest] = opts.tags(config);
    let mut cmd = CommandSpec::new("build the image with pack", "pack").args([
        "build".to_string(),
        config.repository.clone(),
        "--platform".to_string(),
        format!("linux/{arch}"),
        "--creation-time".to_string(),
        "now".to_string(),
        "--builder".to_string(),
        b.pack_builder.clone().unwrap_or_default(),
    ]);
    for bp in b
        .pack_buildpacks
        .iter()
        .map(String::as_str)
        .chain(["paketo-buildpacks/image-labels"])
    {
        cmd = cmd.arg("--buildpack").arg(bp);
    }
    cmd = cmd.arg("-t").arg(&image).arg("-t").arg(&latest);
    if opts.no_cache {
        cmd = cmd.arg("--clear-cache");
    }
    cmd = cmd
        .arg("--env")
        .arg(format!("BP_IMAGE_LABELS=service={}", config.service));
    for (k, v) in &b.args {
        cmd = cmd.arg("--env").arg(format!("{k}={v}"));
    }
    for s in &b.secrets {
        cmd = cmd.arg("--env").arg(s);
    }
    cmd = cmd.arg("--path").arg(opts.context);
    cmd.env.extend(opts.secrets.iter().cloned());
    let mut cmds = vec![cmd];
    if opts.pushes() {
        // Kamal's `export`: pushed only for the `registry` output.
        cmds.push(super::build::push(&image, None));
        cmds.push(super::build::push(&latest, None));
    }
    cmds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::test_support::{base, config_with, BASE};

    fn with(builder: &str) -> Config {
        config_with(&BASE.replace("builder:\n  arch: amd64\n", builder), None)
    }

    fn lines(cmds: &[(CommandSpec, bool)]) -> Vec<String> {
        cmds.iter()
            .map(|(c, ignored)| {
                format!(
                    "{}{}",
                    c.to_shell(),
                    if *ignored { "  # ignored" } else { "" }
                )
            })
            .collect()
    }

    #[test]
    fn local_builder_is_inspected_and_created_as_kamal_does() {
        let c = base();
        let t = target(&c, "amd64");
        assert_eq!(t, Target::Local);
        let n = name(&c, t).unwrap_or_default();
        assert_eq!(n, "kamal-local-docker-container");
        assert_eq!(
            inspect(&c, t, &n).to_shell(),
            "docker buildx inspect kamal-local-docker-container"
        );
        assert_eq!(
            lines(&create(&c, t, &n, "amd64")),
            ["docker buildx create --name kamal-local-docker-container --driver=docker-container"]
        );
        assert_eq!(
            remove(t, &n)[0].to_shell(),
            "docker buildx rm kamal-local-docker-container"
        );
    }

    #[test]
    fn docker_driver_has_no_builder() {
        let c = with("builder:\n  arch: amd64\n  driver: docker\n");
        assert_eq!(name(&c, target(&c, "amd64")), None);
    }

    #[test]
    fn local_registry_builder_uses_host_network() {
        let c = config_with(
            &BASE.replace(
                "  username: dhh\n  password: secret\n",
                "  server: localhost:5555\n",
            ),
            None,
        );
        let t = target(&c, "amd64");
        let n = name(&c, t).unwrap_or_default();
        assert_eq!(n, "kamal-local-registry-docker-container");
        assert_eq!(
            lines(&create(&c, t, &n, "amd64")),
            ["docker buildx create --name kamal-local-registry-docker-container --driver=docker-container --driver-opt network=host"]
        );
    }

    #[test]
    fn remote_builder_context_then_builder() {
        let c = with(
            "builder:\n  arch: [amd64, arm64]\n  remote: ssh://app@127.0.0.1\n  local: false\n",
        );
        let t = target(&c, "amd64");
        assert_eq!(t, Target::Remote);
        let n = name(&c, t).unwrap_or_default();
        assert_eq!(n, "kamal-remote-ssh---app-127-0-0-1");
        insta::assert_snapshot!(inspect(&c, t, &n).to_shell(), @r#"sh -c 'docker buildx inspect kamal-remote-ssh---app-127-0-0-1 | grep -q '\''Endpoint:.*kamal-remote-ssh---app-127-0-0-1-context'\'' && docker context inspect kamal-remote-ssh---app-127-0-0-1-context --format '\''{{.Endpoints.docker.Host}}'\'' | grep -xq ssh://app@127.0.0.1 || (echo no compatible builder && exit 1)'"#);
        insta::assert_snapshot!(lines(&create(&c, t, &n, "amd64")).join("\n"), @r"
        docker context create kamal-remote-ssh---app-127-0-0-1-context --description 'kamal-remote-ssh---app-127-0-0-1 host' --docker host=ssh://app@127.0.0.1  # ignored
        docker buildx create --name kamal-remote-ssh---app-127-0-0-1 kamal-remote-ssh---app-127-0-0-1-context
        ");
        let rm: Vec<String> = remove(t, &n).iter().map(CommandSpec::to_shell).collect();
        assert_eq!(
            rm,
            [
                "docker context rm kamal-remote-ssh---app-127-0-0-1-context",
                "docker buildx rm kamal-remote-ssh---app-127-0-0-1"
            ]
        );
    }

    #[test]
    fn hybrid_builder_local_arch_here_others_appended() {
        let c = with("builder:\n  arch: [amd64, arm64]\n  remote: ssh://app@127.0.0.1\n");
        let t = target(&c, "amd64");
        assert_eq!(t, Target::Hybrid);
        let n = name(&c, t).unwrap_or_default();
        assert_eq!(n, "kamal-hybrid-docker-container-ssh---app-127-0-0-1");
        insta::assert_snapshot!(lines(&create(&c, t, &n, "amd64")).join("\n"), @r"
        docker buildx create --platform linux/amd64 --name kamal-hybrid-docker-container-ssh---app-127-0-0-1 --driver=docker-container
        docker context create kamal-hybrid-docker-container-ssh---app-127-0-0-1-context --description 'kamal-hybrid-docker-container-ssh---app-127-0-0-1 host' --docker host=ssh://app@127.0.0.1
        docker buildx create --platform linux/arm64 --append --name kamal-hybrid-docker-container-ssh---app-127-0-0-1 kamal-hybrid-docker-container-ssh---app-127-0-0-1-context
        ");
        // Only the local arch: no remote arches, so Kamal builds locally.
        let c = with("builder:\n  arch: amd64\n  remote: ssh://app@127.0.0.1\n");
        assert_eq!(target(&c, "amd64"), Target::Local);
        assert_eq!(target(&c, "arm64"), Target::Remote);
    }

    #[test]
    fn cloud_builder_is_named_after_the_driver() {
        let c = with("builder:\n  arch: amd64\n  driver: cloud docker-org-name/builder-name\n");
        let t = target(&c, "amd64");
        assert_eq!(t, Target::Cloud);
        let n = name(&c, t).unwrap_or_default();
        assert_eq!(n, "cloud-docker-org-name-builder-name");
        assert_eq!(
            lines(&create(&c, t, &n, "amd64")),
            ["docker buildx create --driver cloud docker-org-name/builder-name"]
        );
    }

    #[test]
    fn pack_build_as_kamal_with_secrets_by_name() {
        let c = with("builder:\n  arch: amd64\n  args:\n    a: 1\n  secrets:\n    - token_a\n  pack:\n    builder: heroku/builder:24\n    buildpacks:\n      - heroku/ruby\n      - heroku/procfile\n");
        assert_eq!(target(&c, "amd64"), Target::Pack);
        let secrets = vec![("token_a".to_string(), "s3cret".to_string())];
        let opts = BuildOptions {
            version: "123",
            context: ".",
            no_cache: true,
            secrets: &secrets,
            export: "registry",
            dirty: false,
        };
        let cmds = pack_build(&c, &opts, "amd64");
        assert!(!format!("{:?}", cmds[0].args).contains("s3cret"));
        assert_eq!(cmds[0].env, secrets);
        let lines: Vec<String> = cmds.iter().map(CommandSpec::to_shell).collect();
        insta::assert_snapshot!(lines.join("\n"), @r"
        pack build dhh/app --platform linux/amd64 --creation-time now --builder heroku/builder:24 --buildpack heroku/ruby --buildpack heroku/procfile --buildpack paketo-buildpacks/image-labels -t dhh/app:123 -t dhh/app:latest --clear-cache --env BP_IMAGE_LABELS=service=app --env a=1 --env token_a --path .
        docker push dhh/app:123
        docker push dhh/app:latest
        ");
        assert_eq!(
            pack_inspect(&c).to_shell(),
            "pack builder inspect heroku/builder:24"
        );
    }
}

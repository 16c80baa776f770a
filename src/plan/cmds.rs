//! The commands each plan step runs, as [`PlannedCommand`]s built from the docker builders.

use crate::command::CommandSpec;
use crate::config::model::Role;
use crate::config::secrets::Secrets;
use crate::config::Config;
use crate::release::Release;

use super::PlannedCommand;

fn planned(spec: CommandSpec) -> PlannedCommand {
    PlannedCommand::new(spec, None)
}

fn sh(purpose: impl Into<String>, script: impl Into<String>) -> CommandSpec {
    CommandSpec::new(purpose, "sh").arg("-c").arg(script)
}

/// Build and push the image (buildx when present, else `docker build` + `docker push`).
pub fn build(
    config: &Config,
    release: &Release,
    no_cache: bool,
    buildx: bool,
) -> Vec<PlannedCommand> {
    let latest = release.latest_image();
    let context = config.builder.context.clone().unwrap_or_else(|| ".".into());
    let platforms: Vec<String> = config
        .builder
        .arch
        .iter()
        .map(|a| format!("linux/{a}"))
        .collect();
    let mut common: Vec<String> = vec![
        "-t".into(),
        release.image.clone(),
        "-t".into(),
        latest.clone(),
        "--label".into(),
        format!("service={}", config.service),
    ];
    for (k, _) in &config.builder.args {
        common.push("--build-arg".into());
        common.push(k.clone());
    }
    for s in &config.builder.secrets {
        common.push("--secret".into());
        common.push(format!("id={s}"));
    }
    common.push("--file".into());
    common.push(config.builder.dockerfile.clone());
    if let Some(t) = &config.builder.target {
        common.push("--target".into());
        common.push(t.clone());
    }
    if no_cache {
        common.push("--no-cache".into());
    }
    if buildx {
        let spec = CommandSpec::new(format!("build and push {}", release.image), "docker")
            .args(["buildx", "build", "--output=type=registry"])
            .arg("--platform")
            .arg(platforms.join(","))
            .args(common)
            .arg(context);
        vec![planned(spec)]
    } else {
        let build = CommandSpec::new(format!("build {}", release.image), "docker")
            .arg("build")
            .args(common)
            .arg(context);
        vec![
            planned(build),
            planned(
                CommandSpec::new(format!("push {}", release.image), "docker")
                    .args(["push", &release.image]),
            ),
            planned(CommandSpec::new(format!("push {latest}"), "docker").args(["push", &latest])),
        ]
    }
}

/// Log in, pull the image, check its `service` label.
pub fn pull(config: &Config, release: &Release, host: &str) -> Vec<PlannedCommand> {
    let mut out = Vec::new();
    if !config.registry.is_local() {
        let mut login =
            CommandSpec::new(format!("log in to the registry on {host}"), "docker").arg("login");
        if let Some(server) = &config.registry.server {
            login = login.arg(server.clone());
        }
        let user = match &config.registry.username {
            Some(crate::config::model::Credential::Value(v)) => v.clone(),
            Some(crate::config::model::Credential::Secret(name)) => format!("<secret {name}>"),
            None => String::new(),
        };
        login = login
            .args(["-u", &user, "--password-stdin"])
            .stdin(Vec::new());
        out.push(PlannedCommand::new(
            login,
            Some("the registry password [REDACTED]".into()),
        ));
    }
    out.push(planned(sh(
        format!("pull {} on {host}", release.image),
        format!(
            "docker image rm --force {img} 2> /dev/null; docker pull {img} && (docker inspect -f '{{{{ .Config.Labels.service }}}}' {img} | grep -x {svc} || (echo \"Image {img} is missing the 'service' label\" && exit 1))",
            img = crate::shell::quote(&release.image),
            svc = crate::shell::quote(&config.service),
        ),
    )));
    out
}

/// Take the deploy lock on the primary host.
pub fn lock_acquire(config: &Config, release: &Release, _hosts: &[String]) -> Vec<PlannedCommand> {
    let dir = lock_dir(config);
    vec![planned(
        sh(
            "acquire the deploy lock",
            format!("mkdir -p .kamal && mkdir {dir} && echo \"$(cat)\" > {dir}/details",),
        )
        .stdin(format!(
            "Locked by: {} at {}\nVersion: {}\nMessage: Automatic deploy lock",
            release.performer, release.recorded_at, release.version
        )),
    )]
}

/// Release the deploy lock.
pub fn lock_release(config: &Config) -> PlannedCommand {
    let dir = lock_dir(config);
    planned(sh(
        "release the deploy lock",
        format!("rm {dir}/details && rm -r {dir}"),
    ))
}

fn lock_dir(config: &Config) -> String {
    format!(".kamal/lock-{}", config.service_and_destination())
}

/// Whether the container of `version` exists (rollback check).
pub fn container_exists(config: &Config, role: &str, version: &str, host: &str) -> PlannedCommand {
    let name = format!("{}-{}", config.container_prefix(role), version);
    planned(
        CommandSpec::new(format!("find {name} on {host}"), "docker")
            .args(["container", "ls", "--all", "--filter"])
            .arg(format!("name=^{name}$"))
            .arg("--quiet"),
    )
}

/// Create the `kamal` network; start or run the proxy where a role needs it.
pub fn proxy_boot(_config: &Config, runs_proxy: bool) -> Vec<PlannedCommand> {
    let mut out = vec![planned(sh(
        "create the kamal network",
        "docker network create kamal 2> /dev/null || true",
    ))];
    if runs_proxy {
        out.push(planned(sh(
            "start kamal-proxy",
            "docker container start kamal-proxy",
        )));
    }
    out
}

/// Stop containers of other versions still running for this role.
pub fn stale_containers(config: &Config, role: &str, version: &str) -> PlannedCommand {
    let prefix = config.container_prefix(role);
    planned(sh(
        format!("stop stale {role} containers"),
        format!(
            "docker ps --filter label=service={} --filter label=destination={} --filter label=role={} --format '{{{{.Names}}}}' | grep -v -x {} | xargs -r docker stop",
            crate::shell::quote(&config.service),
            crate::shell::quote(config.destination.as_deref().unwrap_or("")),
            crate::shell::quote(role),
            crate::shell::quote(&format!("{prefix}-{version}")),
        ),
    ))
}

/// Boot `role` on `host`.
pub fn boot(
    config: &Config,
    role: &Role,
    release: &Release,
    host: &str,
    secrets: &Secrets,
) -> Vec<PlannedCommand> {
    let _ = secrets;
    let name = format!(
        "{}-{}",
        config.container_prefix(&role.name),
        release.version
    );
    let app = config.service_and_destination();
    let env_file = format!(".kamal/apps/{app}/env/roles/{}.env", role.name);
    let env = config.env_for(role, host);
    let mut run = CommandSpec::new(format!("boot {} on {host}", role.name), "docker")
        .args([
            "run",
            "--detach",
            "--restart",
            "unless-stopped",
            "--name",
            &name,
            "--network",
            "kamal",
        ])
        .arg("--env")
        .arg(format!("KAMAL_CONTAINER_NAME={name}"))
        .arg("--env")
        .arg(format!("KAMAL_VERSION={}", release.version))
        .arg("--env")
        .arg(format!("KAMAL_HOST={host}"));
    if let Some(d) = &config.destination {
        run = run.arg("--env").arg(format!("KAMAL_DESTINATION={d}"));
    }
    for (k, v) in &env.clear {
        run = run.arg("--env").arg_expanding(format!("{k}={v}"));
    }
    run = run.arg("--env-file").arg(env_file.clone());
    if role.logging.driver.is_none() && role.logging.options.is_empty() {
        run = run.args(["--log-opt", "max-size=10m"]);
    } else {
        if let Some(driver) = &role.logging.driver {
            run = run.args(["--log-driver", driver]);
        }
        for (k, v) in &role.logging.options {
            run = run.arg("--log-opt").arg(format!("{k}={v}"));
        }
    }
    run = run
        .args(["--label", &format!("service={}", config.service)])
        .args(["--label", &format!("role={}", role.name)]);
    run = match &config.destination {
        Some(d) => run.args(["--label", &format!("destination={d}")]),
        None => run.args(["--label", "destination"]),
    };
    for (k, v) in &role.labels {
        run = run.arg("--label").arg_expanding(format!("{k}={v}"));
    }
    run = run.arg(release.image.clone());
    if let Some(cmd) = &role.cmd {
        run = run.args(crate::commands::split_words(cmd).unwrap_or_else(|| vec![cmd.clone()]));
    }
    let env_note = env
        .secrets
        .iter()
        .map(|s| format!("{}=[REDACTED]", s.name))
        .collect::<Vec<_>>()
        .join("\n");
    vec![
        planned(sh(
            format!("write the {} env file on {host}", role.name),
            format!(
                "mkdir -p .kamal/apps/{app}/env/roles && umask 077 && cat > {}",
                crate::shell::quote(&env_file)
            ),
        ))
        .with_stdin_note(env_note),
        planned(run),
    ]
}

/// Tag the booted image as the latest.
pub fn tag_latest(_config: &Config, release: &Release) -> PlannedCommand {
    planned(
        CommandSpec::new("tag the latest image", "docker")
            .arg("tag")
            .arg(release.image.clone())
            .arg(release.latest_image()),
    )
}

/// Prune old containers and images of this service and destination.
pub fn prune(config: &Config, _release: &Release) -> Vec<PlannedCommand> {
    vec![planned(sh(
        "prune old containers",
        format!(
            "docker ps -q -a --filter label=service={} --filter label=destination={} --filter status=created --filter status=exited --filter status=dead | tail -n +{} | while read container_id; do docker rm $container_id; done",
            crate::shell::quote(&config.service),
            crate::shell::quote(config.destination.as_deref().unwrap_or("")),
            config.retain_containers + 1
        ),
    ))]
}

impl PlannedCommand {
    fn with_stdin_note(mut self, note: String) -> Self {
        self.stdin = Some(note);
        self
    }
}

//! The commands each plan step runs, as [`PlannedCommand`]s built from the docker builders in
//! [`crate::docker`] (the one place that knows Kamal's command lines).

use crate::command::CommandSpec;
use crate::config::model::{Credential, Role};
use crate::config::secrets::Secrets;
use crate::config::Config;
use crate::docker::{self, app::App};
use crate::release::Release;

use super::PlannedCommand;

fn planned(spec: CommandSpec) -> PlannedCommand {
    PlannedCommand::new(spec, None)
}

/// Build and push the image (buildx when present, else `docker build` + `docker push`).
pub fn build(
    config: &Config,
    release: &Release,
    no_cache: bool,
    buildx: bool,
) -> Vec<PlannedCommand> {
    let context = config.builder.context.clone().unwrap_or_else(|| ".".into());
    let opts = docker::build::BuildOptions {
        version: &release.version,
        context: &context,
        no_cache,
        secrets: &[],
    };
    if buildx {
        let builder = docker::build::builder_name(config, std::env::consts::ARCH);
        vec![planned(docker::build::buildx_build(
            config,
            builder.as_deref(),
            &opts,
        ))]
    } else {
        docker::build::docker_build_and_push(config, &opts)
            .into_iter()
            .map(planned)
            .collect()
    }
}

/// Log in, pull the image, check its `service` label.
pub fn pull(config: &Config, release: &Release, host: &str) -> Vec<PlannedCommand> {
    let mut out = Vec::new();
    let user = match &config.registry.username {
        Some(Credential::Value(v)) => v.clone(),
        Some(Credential::Secret(name)) => format!("<secret {name}>"),
        None => String::new(),
    };
    if let Some(login) = docker::registry::login(&config.registry, &user, "", host) {
        out.push(PlannedCommand::new(
            login,
            Some("the registry password [REDACTED]".into()),
        ));
    }
    out.push(planned(docker::registry::remove_image(
        config,
        &release.version,
        host,
    )));
    out.push(planned(docker::registry::pull(
        config,
        &release.version,
        host,
    )));
    out.push(planned(docker::registry::validate_image(
        config,
        &release.version,
        host,
    )));
    out
}

/// Take the deploy lock on the primary host.
pub fn lock_acquire(config: &Config, release: &Release, host: &str) -> Vec<PlannedCommand> {
    let details = docker::lock::LockDetails {
        locked_by: release.performer.clone(),
        locked_at: release.recorded_at.clone(),
        version: release.version.clone(),
        message: docker::lock::AUTOMATIC_MESSAGE.to_string(),
        machine: None,
        process: None,
    };
    vec![
        planned(docker::lock::ensure_locks_directory(host)),
        planned(docker::lock::acquire(config, host, &details)),
    ]
}

/// Release the deploy lock.
pub fn lock_release(config: &Config, host: &str) -> PlannedCommand {
    planned(docker::lock::release(config, host))
}

/// Whether the container of `version` exists (rollback check).
pub fn container_exists(config: &Config, role: &Role, version: &str, host: &str) -> PlannedCommand {
    planned(App::new(config, role, host).container_id(version))
}

/// Create the `kamal` network; start or run the proxy where a role needs it.
pub fn proxy_boot(config: &Config, host: &str, runs_proxy: bool) -> Vec<PlannedCommand> {
    let mut out = vec![planned(docker::proxy::create_network(host))];
    if runs_proxy {
        out.push(planned(docker::proxy::ensure_apps_config_directory(host)));
        out.push(planned(docker::proxy::boot(
            docker::proxy::run_config_for(config, host),
            host,
        )));
    }
    out
}

/// List the role's running versions (the stale ones, all but the new, are stopped).
pub fn stale_containers(config: &Config, role: &Role, host: &str) -> PlannedCommand {
    planned(App::new(config, role, host).list_versions())
}

/// Boot `role` on `host`: clash check, env file, `docker run`, readiness, stop the old version.
pub fn boot(
    config: &Config,
    role: &Role,
    release: &Release,
    host: &str,
    secrets: &Secrets,
) -> Vec<PlannedCommand> {
    let _ = secrets;
    let app = App::new(config, role, host);
    let env = config.env_for(role, host);
    let env_note = env
        .secrets
        .iter()
        .map(|s| format!("{}=[REDACTED]", s.name))
        .collect::<Vec<_>>()
        .join("\n");
    let mut write =
        docker::env_file::write(config, &role.name, host, crate::command::Secret(Vec::new()));
    write.purpose = format!("write the {} env file on {host}", role.name);
    let mut out = vec![
        planned(app.container_id(&release.version)),
        planned(app.current_running_version()),
        PlannedCommand::new(write, Some(env_note)),
        planned(app.run(&release.version, None)),
    ];
    if role.runs_proxy() {
        out.push(planned(app.container_id(&release.version)));
        if let Some(deploy) =
            docker::proxy::deploy(config, role, "<container id>", &release.version, host)
        {
            out.push(planned(deploy));
        }
    } else {
        out.push(planned(app.status(&release.version)));
    }
    out.push(planned(app.stop(Some("<old version>"))));
    out
}

/// Tag the booted image as the latest.
pub fn tag_latest(config: &Config, release: &Release, host: &str) -> PlannedCommand {
    planned(docker::app::tag_latest(config, &release.version, host))
}

/// Prune old containers and images of this service and destination.
pub fn prune(config: &Config, host: &str) -> Vec<PlannedCommand> {
    docker::prune::all(config, host)
        .into_iter()
        .map(planned)
        .collect()
}

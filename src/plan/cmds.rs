//! The commands each deploy step runs, as [`PlannedCommand`]s built from the docker builders in
//! [`crate::docker`] (the one place that knows Kamal's command lines). What is built here is
//! what the engine sends: batched scripts included, with run-time values as [`Hole`]s.

use crate::config::model::{Credential, Role};
use crate::config::secrets::Secrets;
use crate::config::Config;
use crate::docker::{self, app::App};
use crate::release::Release;

use super::{planned, Hole, IfEmpty, LockStep, LockWaitPlan, PlannedCommand, UnlockStep};

/// An audit line of this run, stamped when it is written ([`Hole::Now`]).
pub fn audit_line(
    release: &Release,
    role: Option<&str>,
    message: impl Into<String>,
) -> docker::audit::AuditLine {
    let mut line = crate::audit::line(release, role, message);
    line.recorded_at = Hole::Now.token();
    line
}

/// Record `message` in the audit log of `host` (a failure fails the host).
pub fn audit(
    config: &Config,
    release: &Release,
    host: &str,
    role: Option<&str>,
    message: impl Into<String>,
) -> PlannedCommand {
    planned(docker::audit::record(
        config,
        host,
        &audit_line(release, role, message),
    ))
}

/// A registry credential's value: the configured one, or the secret it names.
pub fn credential(c: &Option<Credential>, secrets: &Secrets) -> String {
    match c {
        Some(Credential::Value(v)) => v.clone(),
        Some(Credential::Secret(name)) => secrets.get(name).map(str::to_string).unwrap_or_default(),
        None => String::new(),
    }
}

/// What to check when `registry` refuses a login: the credentials and where they come from.
fn login_hint(config: &Config) -> String {
    let source = |c: &Option<Credential>, key: &str| match c {
        Some(Credential::Secret(name)) => format!("`registry.{key}` (the secret {name})"),
        _ => format!("`registry.{key}`"),
    };
    format!(
        "check {} and {} for {}; `dray registry login` tries the login alone",
        source(&config.registry.username, "username"),
        source(&config.registry.password, "password"),
        docker::registry::server_name(&config.registry),
    )
}

/// `docker login` on this machine before a build pushes, when the registry needs one (a
/// username is set and the registry is not a local one); the password on stdin.
pub fn local_login(config: &Config, secrets: &Secrets) -> Option<PlannedCommand> {
    if config.registry.is_local() || config.registry.username.is_none() {
        return None;
    }
    let user = credential(&config.registry.username, secrets);
    let password = credential(&config.registry.password, secrets);
    let login = docker::registry::login(&config.registry, &user, &password, "localhost")?;
    Some(
        PlannedCommand::new(login, Some("the registry password [REDACTED]".into()))
            .hint(login_hint(config)),
    )
}

/// With a local registry (`registry.server: localhost:PORT`): start (or run) its container on
/// this machine before the build pushes to it, as Kamal's `setup_local_registry` does.
pub fn local_registry_setup(config: &Config) -> Option<PlannedCommand> {
    let port = config.registry.local_port()?;
    let address = config
        .local_registry_address
        .as_deref()
        .unwrap_or("127.0.0.1");
    Some(planned(docker::registry::setup_local(port, address)))
}

/// With a local registry: the tunnel each host pulls through, Kamal's `-R
/// 127.0.0.1:PORT:localhost:PORT` (`port_forwarding.rb`): the host's `localhost:PORT` reaches
/// this machine's registry. `x-dray: local_registry: address` replaces the local end's
/// `localhost`.
pub fn pull_tunnel(config: &Config) -> Option<crate::remote::Tunnel> {
    let port = config.registry.local_port()?;
    Some(crate::remote::Tunnel {
        remote_host: "127.0.0.1".into(),
        remote_port: port,
        local_host: config
            .local_registry_address
            .clone()
            .unwrap_or_else(|| "localhost".into()),
        local_port: port,
    })
}

/// Log in, pull the image, check its `service` label, audit: one round trip.
pub fn pull(
    config: &Config,
    release: &Release,
    host: &str,
    secrets: &Secrets,
) -> Vec<PlannedCommand> {
    let user = credential(&config.registry.username, secrets);
    let password = credential(&config.registry.password, secrets);
    let login = docker::registry::login(&config.registry, &user, &password, host);
    let has_login = login.is_some();
    let line = audit_line(
        release,
        None,
        format!("Pulled image with version {}", release.version),
    );
    let cmd = docker::registry::pull_batch(config, &release.version, host, login, &line);
    let planned = PlannedCommand::new(
        cmd,
        has_login.then(|| "the registry password [REDACTED]".into()),
    );
    vec![if has_login {
        planned.hint(format!("if the login was refused: {}", login_hint(config)))
    } else {
        planned
    }]
}

/// Take the deploy lock on `host` with these details.
pub fn lock(
    config: &Config,
    host: &str,
    details: &docker::lock::LockDetails,
    wait: Option<LockWaitPlan>,
    break_stale: bool,
) -> LockStep {
    let stale_after = config.lock_stale_after;
    // Details with a heartbeat are refreshed while held, four times per `stale_after` (at
    // most every 30 s), so one late refresh never makes a working holder look stale.
    let heartbeat = details
        .heartbeat
        .as_ref()
        .zip(details.process.as_ref())
        .map(|(_, process)| {
            Box::new(super::HeartbeatPlan {
                command: planned(docker::lock::heartbeat(config, host, process)),
                interval_seconds: (stale_after / 4).clamp(1, 30),
            })
        });
    let take_over = if break_stale {
        let line = docker::audit::AuditLine {
            recorded_at: Hole::Now.token(),
            performer: details.locked_by.clone(),
            destination: config.destination.clone(),
            role: None,
            message: format!(
                "Broke a stale deploy lock (no heartbeat for over {stale_after}s) to run {}",
                details.command.as_deref().unwrap_or("dray")
            ),
        };
        vec![
            planned(docker::audit::record(config, host, &line)),
            planned(docker::lock::take_over(config, host, details)),
        ]
    } else {
        Vec::new()
    };
    LockStep {
        host: host.to_string(),
        commands: vec![planned(docker::lock::acquire_with_directory(
            config, host, details,
        ))],
        status: planned(docker::lock::status(config, host)),
        wait,
        release_at_end: true,
        announce: false,
        heartbeat,
        stale_after_seconds: stale_after,
        take_over,
    }
}

/// Release the deploy lock.
pub fn unlock(config: &Config, host: &str) -> UnlockStep {
    UnlockStep {
        host: host.to_string(),
        command: planned(docker::lock::release(config, host)),
        announce: false,
    }
}

/// Whether the container of `version` exists (rollback check): the host fails when not.
pub fn container_exists(config: &Config, role: &Role, version: &str, host: &str) -> PlannedCommand {
    planned(App::new(config, role, host).container_id(version)).capture(
        Hole::ContainerId,
        IfEmpty::Fail(format!(
            "the app version '{version}' is not available as a container on {host} (use 'dray app containers' for available versions)"
        )),
    )
}

/// Create the `kamal` network; start or run the proxy where a role needs it: one round trip.
pub fn proxy_boot(config: &Config, host: &str, runs_proxy: bool) -> Vec<PlannedCommand> {
    vec![planned(docker::proxy::boot_batch(config, host, runs_proxy))]
}

/// Stop the role's running containers other than the current one: one round trip.
pub fn stale_containers(config: &Config, role: &Role, host: &str) -> PlannedCommand {
    planned(App::new(config, role, host).stale_containers(docker::app::Stale::Stop))
}

/// Boot `role` on `host` in two round trips ([`docker::boot`]): start (clash rename, env file
/// with the secrets on stdin, old version, audit, `docker run`), then settle (readiness on the
/// host, then stop the old version; on failure diagnose and stop the new one).
pub fn boot(
    config: &Config,
    role: &Role,
    release: &Release,
    host: &str,
    secrets: &Secrets,
    preamble: Option<docker::boot::Preamble>,
) -> Vec<PlannedCommand> {
    let app = App::new(config, role, host);
    let version = &release.version;
    let (env, env_note) = boot_env(config, role, host, secrets);
    let audit = |message: String| audit_line(release, Some(&role.name), message);
    let hostname = docker::app::container_hostname(host, &Hole::Random(12).token());
    if role.replicated() {
        return boot_replicas(&app, version, &hostname, env, &env_note, &audit);
    }
    let start = docker::boot::start(
        &app,
        version,
        &hostname,
        &Hole::Random(16).token(),
        env,
        &audit,
        preamble,
    );
    let settle = docker::boot::settle(&app, version, Some(&Hole::OldVersion.token()));
    vec![
        PlannedCommand::new(start, Some(format!("the env file: {env_note}")))
            .capture_marker(Hole::OldVersion, docker::boot::OLD_VERSION_MARKER),
        planned(settle),
    ]
}

/// The boot of a (non-replicated) role that waits at the primary-role barrier, its start in
/// its two halves ([`docker::boot::prepare`], [`docker::boot::run`]): the prepare (old
/// version, the folded `preamble`, clash rename) to run before the barrier, then the start's
/// rest and the settle, as [`boot`]'s.
pub fn boot_after_barrier(
    config: &Config,
    role: &Role,
    release: &Release,
    host: &str,
    secrets: &Secrets,
    preamble: Option<docker::boot::Preamble>,
) -> (PlannedCommand, Vec<PlannedCommand>) {
    let app = App::new(config, role, host);
    let version = &release.version;
    let (env, env_note) = boot_env(config, role, host, secrets);
    let audit = |message: String| audit_line(release, Some(&role.name), message);
    let hostname = docker::app::container_hostname(host, &Hole::Random(12).token());
    let prepare = docker::boot::prepare(&app, version, &Hole::Random(16).token(), &audit, preamble);
    let run = docker::boot::run(&app, version, &hostname, env, &audit);
    let settle = docker::boot::settle(&app, version, Some(&Hole::OldVersion.token()));
    (
        planned(prepare).capture_marker(Hole::OldVersion, docker::boot::OLD_VERSION_MARKER),
        vec![
            PlannedCommand::new(run, Some(format!("the env file: {env_note}"))),
            planned(settle),
        ],
    )
}

/// A role's env file on `host` (its secrets' values) and the note the plan shows for it.
fn boot_env(
    config: &Config,
    role: &Role,
    host: &str,
    secrets: &Secrets,
) -> (crate::command::Secret, String) {
    let env = config.env_for(role, host);
    let pairs: Vec<(String, String)> = env
        .secrets
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                secrets.get(&s.key).map(str::to_string).unwrap_or_default(),
            )
        })
        .collect();
    let env_note = env
        .secrets
        .iter()
        .map(|s| format!("{}=[REDACTED]", s.name))
        .collect::<Vec<_>>()
        .join("\n");
    (docker::env_file::content(&pairs), env_note)
}

/// A replicated role's boot ([`docker::replicas`]): a start and a settle per replica, 2..N
/// then 1, one replica replaced at a time. The engine runs every command but the last as the
/// start and the last (replica 1's settle) as the settle.
fn boot_replicas(
    app: &App,
    version: &str,
    hostname: &str,
    env: crate::command::Secret,
    env_note: &str,
    audit: &dyn Fn(String) -> docker::audit::AuditLine,
) -> Vec<PlannedCommand> {
    let old = Hole::OldVersion.token();
    let order = app.replica_order();
    let mut env = Some(env);
    let replaced_hex = Hole::Random(16).token();
    let mut cmds = Vec::new();
    for (i, replica) in order.iter().enumerate() {
        let first = i == 0;
        let round = env.take().map(|env_content| docker::replicas::FirstRound {
            replaced_hex: &replaced_hex,
            env_content,
        });
        let start = docker::replicas::start(app, version, *replica, hostname, round, audit);
        cmds.push(if first {
            PlannedCommand::new(start, Some(format!("the env file: {env_note}")))
                .capture_marker(Hole::OldVersion, docker::boot::OLD_VERSION_MARKER)
        } else {
            planned(start)
        });
        let settle = docker::replicas::settle(
            app,
            version,
            *replica,
            &order[..i],
            i + 1 == order.len(),
            &old,
        );
        cmds.push(planned(settle));
    }
    cmds
}

/// Upload this version's error pages (`archive`: a tar of `4xx.html`/`5xx.html`).
pub fn upload_error_pages(
    config: &Config,
    host: &str,
    version: &str,
    archive: &[u8],
) -> PlannedCommand {
    PlannedCommand::new(
        docker::proxy_files::upload_error_pages(config, host, version, archive.to_vec()),
        Some(format!(
            "a tar archive of the error pages in {}",
            config.error_pages_path.as_deref().unwrap_or_default()
        )),
    )
}

/// Write the ACME directory's CA roots (`x-dray: proxy: acme_ca_certs`) where the proxy reads
/// them (`--tls-acme-ca-certs`).
pub fn upload_acme_ca(config: &Config, host: &str, archive: &[u8]) -> PlannedCommand {
    PlannedCommand::new(
        docker::proxy_files::upload_acme_ca(config, host, archive.to_vec()),
        Some(format!(
            "a tar archive of ca.pem ({})",
            config
                .acme
                .as_ref()
                .and_then(|a| a.ca_certs.as_deref())
                .unwrap_or_default()
        )),
    )
}

/// Copy `role`'s assets out of the new image and merge them with the running version's.
pub fn prepare_assets(
    config: &Config,
    role: &Role,
    version: &str,
    host: &str,
) -> Option<PlannedCommand> {
    docker::assets::prepare(&App::new(config, role, host), version).map(planned)
}

/// Write `role`'s custom certificate and key (secrets, on stdin) where the proxy reads them,
/// when the role runs the proxy with `ssl.certificate_pem` and `ssl.private_key_pem`.
pub fn upload_certificate(
    config: &Config,
    role: &Role,
    host: &str,
    secrets: &Secrets,
) -> Option<PlannedCommand> {
    let proxy = role.proxy.as_ref()?;
    let (cert, key) = (
        proxy.ssl_certificate_pem.as_deref()?,
        proxy.ssl_private_key_pem.as_deref()?,
    );
    let file = |name: &str, secret: &str| docker::proxy_files::ArchiveFile {
        name: name.to_string(),
        mode: 0o644,
        content: secrets
            .get(secret)
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_default(),
    };
    // An archive of two in-memory files cannot fail to build.
    let archive =
        docker::proxy_files::archive(&[file("cert.pem", cert), file("key.pem", key)]).ok()?;
    Some(PlannedCommand::new(
        docker::proxy_files::upload_certificate(config, &role.name, host, archive),
        Some(format!(
            "a tar archive of cert.pem (secret {cert}) and key.pem (secret {key}) [REDACTED]"
        )),
    ))
}

/// Stop the release's container of `role` (after its start was lost).
pub fn stop_new(config: &Config, role: &Role, release: &Release, host: &str) -> PlannedCommand {
    planned(App::new(config, role, host).stop(Some(&release.version))).ignore_errors()
}

/// Tag the booted image as the latest (audited).
pub fn tag_latest(config: &Config, release: &Release, host: &str) -> Vec<PlannedCommand> {
    vec![
        audit(
            config,
            release,
            host,
            None,
            format!("Tagging {} as the latest image", release.image),
        )
        .ignore_errors(),
        planned(docker::app::tag_latest(config, &release.version, host)),
    ]
}

/// Record `release`, made by `command`, in dray's release record on `host`.
pub fn record_release(
    config: &Config,
    release: &Release,
    command: &str,
    host: &str,
) -> PlannedCommand {
    planned(docker::releases::record(config, release, command, host))
}

/// A deploy's last work on a host as one round trip (`PlanInputs::fold_round_trips`), in
/// the order of the stages it replaces: the audit line and `docker tag` of tag-latest (the
/// audit's failure ignored, as there), the prune (`prune`), the release record (`record`:
/// the command's name). A failing part stops the script and names itself (the host is named
/// by the step's failure: the script is the same on every host of the same roles, so a plan
/// holds it once, issue #19).
/// Then, once all of it succeeded, what each of `read_back` runs on the host, for the result
/// table (one [`super::read_back_marker`] line per role): the result stage's read of the host
/// done in this round trip.
pub fn finish(
    config: &Config,
    release: &Release,
    host: &str,
    prune: bool,
    record: Option<&str>,
    read_back: &[&Role],
) -> PlannedCommand {
    let q = crate::shell::quote;
    let line = audit_line(
        release,
        None,
        format!("Tagging {} as the latest image", release.image),
    );
    let tag = docker::app::tag_latest(config, &release.version, host).to_shell();
    let mut script = format!(
        "{} || true\n{tag} || {{ echo {} >&2; exit 1; }}",
        docker::audit::record_script(config, &line),
        q(&format!("{tag} failed")),
    );
    // The prune runs in the background while the release is recorded and the running versions
    // are read: those read no container or image the prune removes (it removes only stopped
    // containers and unused images). Their lines are printed once it has ended, so no output of
    // the prune can break a marker line.
    if prune {
        script.push_str(&format!(
            "\n( {} || {{ echo {} >&2; exit 1; }} ) & dray_pruning=$!",
            docker::prune::all_script(config),
            q("prune failed"),
        ));
    }
    if let Some(command) = record {
        let rec = docker::releases::record(config, release, command, host);
        let text = docker::script::inner(&rec).unwrap_or_default();
        script.push_str(&format!(
            "\n{text} || {{ echo {} >&2; exit 1; }}",
            q(&format!("record release {} failed", release.version)),
        ));
    }
    for (i, role) in read_back.iter().enumerate() {
        script.push_str(&format!(
            "\n{}",
            App::new(config, role, host).current_version_assign(&format!("dray_cur{i}")),
        ));
    }
    if prune {
        script.push_str("\nwait $dray_pruning || exit 1");
    }
    for i in 0..read_back.len() {
        script.push_str(&format!(
            "\necho \"{}$dray_cur{i}\"",
            super::read_back_marker(i)
        ));
    }
    planned(docker::script::sh(
        format!("tag, prune and record on {host}"),
        script,
    ))
    .reading_back(read_back.iter().map(|r| r.name.clone()).collect())
}

/// Prune old containers and images of this service and destination: one round trip.
pub fn prune(config: &Config, host: &str) -> Vec<PlannedCommand> {
    vec![planned(docker::prune::all_batch(config, host))]
}

/// The version `role` runs on `host` now (for the result table).
pub fn running_version(config: &Config, role: &Role, host: &str) -> PlannedCommand {
    planned(App::new(config, role, host).current_running_version()).ignore_errors()
}

//! Canary releases (dray only; [`crate::plan::canary`], [`crate::docker::rollout`]):
//! `deploy --canary PERCENT [--canary-allow VALUE]` starts one (see [`check_start`] and
//! [`start_plan`], called by `deploy`), `canary status` shows the split and both versions'
//! health, `canary promote` completes the release, `canary abort` removes the canary. The canary
//! runs on the hosts of the primary role, which must run behind the proxy; its record on those
//! hosts lets another machine promote or abort it, and the deploy lock, held from the start to
//! the promotion or abort, keeps any other deploy out.

use crate::cli::{CanaryCommand, GlobalOptions};
use crate::config::Config;
use crate::docker::app::App;
use crate::docker::rollout::{self, CanaryRecord, VersionHealth};
use crate::error::{Error, Result};
use crate::plan::canary::{self as plans, CanaryInputs};
use crate::plan::{planned, stage, Plan, ReadBackRow, ReadBackStep, Step, Targets};

use super::session::Session;

/// What `deploy --canary` asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryRequest {
    /// `--canary PERCENT`, as given (checked by [`check_start`]).
    pub percent: i64,
    /// `--canary-allow VALUE…`.
    pub allow: Vec<String>,
}

/// The hosts of the primary role, which runs the canary; refused when it does not run behind
/// the proxy or when `--hosts`/`--roles`/`--primary` narrow the targets (a canary and its
/// promotion cover every host of the role).
pub fn canary_hosts(
    global: &GlobalOptions,
    config: &Config,
    targets: &Targets,
) -> Result<Vec<String>> {
    if global.hosts.is_some() || global.roles.is_some() || global.primary {
        return Err(Error::usage(
            "a canary runs on every host of the primary role: --hosts, --roles and --primary are refused",
        )
        .with_hint("drop the filter; the other roles get the version at `dray canary promote`"));
    }
    let role_name = &config.primary_role;
    let role = config.role(role_name).ok_or_else(|| {
        Error::usage(format!("the primary role {role_name} has no servers"))
            .with_hint("set `primary_role` to a role with hosts")
    })?;
    if !role.runs_proxy() {
        return Err(Error::usage(format!(
            "the primary role {role_name} does not run behind the proxy: a canary needs the proxy's rollout"
        ))
        .with_hint(format!(
            "give `servers.{role_name}` a proxy (`proxy: true` or a `proxy:` section), or deploy without --canary"
        )));
    }
    if role.replicated() {
        return Err(Error::usage(format!(
            "a canary of the primary role {role_name} with {} replicas per host is not supported yet",
            role.replicas
        ))
        .with_hint(format!(
            "deploy without --canary, or set `x-dray: replicas: {role_name}: 1` for the canary"
        )));
    }
    Ok(targets
        .hosts
        .iter()
        .filter(|h| role.host_names().any(|x| x == h.as_str()))
        .cloned()
        .collect())
}

/// Check `deploy --canary`'s request before anything runs: a share in 0..=100, cookie values a
/// cookie can carry, a `deploy` (not `setup` or `redeploy`), no parent's lock.
pub fn check_start(
    req: &CanaryRequest,
    kind: crate::plan::PlanKind,
    lock_inherited: bool,
) -> Result<u8> {
    if kind != crate::plan::PlanKind::Deploy {
        return Err(Error::usage(format!(
            "--canary is only for `dray deploy`, not `dray {}`",
            kind.name()
        ))
        .with_hint("run `dray deploy --canary PERCENT`"));
    }
    let percent = u8::try_from(req.percent)
        .ok()
        .filter(|p| *p <= 100)
        .ok_or_else(|| {
            Error::usage(format!("--canary {}: the share must be 0..=100", req.percent)).with_hint(
                "give the percentage of `kamal-rollout` cookie values the canary gets, e.g. --canary 20 (0 with --canary-allow: only those clients)",
            )
        })?;
    for v in &req.allow {
        if v.is_empty()
            || v.chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ',' | ';' | '"' | '\\'))
        {
            return Err(Error::usage(format!(
                "--canary-allow {v:?}: not a `kamal-rollout` cookie value"
            ))
            .with_hint("give each value on its own (repeat --canary-allow), without spaces, commas, semicolons or quotes"));
        }
    }
    if lock_inherited {
        return Err(Error::usage(
            "--canary under a parent's lock (KAMAL_LOCK=true): the canary keeps the lock after the run",
        )
        .with_hint("run `dray deploy --canary` on its own, not from a hook"));
    }
    Ok(percent)
}

/// The plan of `deploy --canary`: `deploy` (the same deploy's plan) cut to the canary's start.
pub fn start_plan(
    s: &Session,
    deploy: Plan,
    release: &crate::release::Release,
    secrets: &crate::config::secrets::Secrets,
    percent: u8,
    allow: &[String],
) -> Result<Plan> {
    let hosts = canary_hosts(s.global, &s.config, &s.targets)?;
    let record = CanaryRecord {
        version: release.version.clone(),
        role: s.config.primary_role.clone(),
        percent,
        allow: allow.to_vec(),
    };
    Ok(plans::start(
        deploy,
        &CanaryInputs {
            config: &s.config,
            release,
            targets: &s.targets,
            record: &record,
            hosts: &hosts,
            skip_hooks: s.global.skip_hooks,
            secrets,
        },
    ))
}

/// The lock details `deploy --canary` writes (no heartbeat: the lock outlives the run).
pub fn lock_details(s: &Session, version: &str) -> crate::docker::lock::LockDetails {
    s.lock_details(version, &plans::lock_message(version))
}

/// The hint of a `deploy --canary` that failed.
pub const FAILED_HINT: &str = "if the canary got as far as the lock, it is still held: `dray canary abort` removes whatever the canary started and releases it (`dray lock status` shows it)";

/// What the hosts say about the running canary.
struct Found {
    record: CanaryRecord,
    /// The lock's details text, when the lock is held.
    lock: Option<String>,
}

/// Read the canary's record on each canary host and the lock on the primary host; refused when
/// no canary runs, or the hosts disagree.
fn find(s: &Session, sub: &str, hosts: &[String]) -> Result<Found> {
    let config = &s.config;
    let primary = s.targets.primary_host.clone();
    let mut rows: Vec<ReadBackRow> = hosts
        .iter()
        .map(|h| ReadBackRow {
            host: h.clone(),
            role: "record".into(),
            command: planned(rollout::read_record(config, h)),
            read_by: None,
        })
        .collect();
    let status = crate::docker::lock::status(config, &primary);
    rows.push(ReadBackRow {
        host: primary.clone(),
        role: "lock".into(),
        command: planned(
            crate::command::CommandSpec::new(status.purpose.clone(), "sh")
                .arg("-c")
                .arg(format!("{} 2>/dev/null || true", status.to_shell())),
        ),
        read_by: None,
    });
    let mut connect = hosts.to_vec();
    if !connect.contains(&primary) {
        connect.push(primary);
    }
    let mut targets = s.targets.clone();
    targets.hosts = connect;
    let plan = Plan::command(
        "canary",
        Some(sub),
        None,
        targets,
        vec![stage("read", vec![Step::ReadBack(ReadBackStep { rows })])],
    );
    let answers = s.query(&plan)?;
    let mut lock = None;
    let mut records: Vec<(String, Option<CanaryRecord>)> = Vec::new();
    for (host, kind, text) in answers {
        let text = text.unwrap_or_default();
        if kind == "lock" {
            lock = (!text.trim().is_empty()).then(|| text.trim().to_string());
        } else {
            records.push((host, CanaryRecord::parse(&text)));
        }
    }
    let mut found: Vec<&CanaryRecord> = records.iter().filter_map(|(_, r)| r.as_ref()).collect();
    found.dedup();
    match found.as_slice() {
        [] => Err(Error::usage(format!(
            "no canary of {} is running (no record in ~/{} on {})",
            config.service_and_destination(),
            rollout::record_file(config),
            hosts.join(", ")
        ))
        .with_hint("`dray deploy --canary PERCENT` starts one")),
        [one] => Ok(Found {
            record: (*one).clone(),
            lock,
        }),
        _ => Err(Error::failure(format!(
            "the hosts disagree on the canary: {}",
            records
                .iter()
                .map(|(h, r)| format!(
                    "{h} {}",
                    r.as_ref().map(|r| r.version.as_str()).unwrap_or("-")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_hint("`dray canary abort` removes the canary everywhere")),
    }
}

/// Run `dray canary status|promote|abort`.
pub fn run(global: &GlobalOptions, command: &CanaryCommand) -> Result<()> {
    let s = Session::new(global)?;
    let hosts = canary_hosts(global, &s.config, &s.targets)?;
    let sub = match command {
        CanaryCommand::Status => "status",
        CanaryCommand::Promote => "promote",
        CanaryCommand::Abort => "abort",
    };
    let found = find(&s, sub, &hosts)?;
    let version = found.record.version.clone();
    if *command == CanaryCommand::Status {
        return status(&s, &hosts, &found);
    }
    // Promote and abort accept exactly the canary's lock, and release it.
    match &found.lock {
        Some(text) if plans::is_canary_lock(text, &version) => {}
        Some(text) => {
            return Err(Error::failure(format!(
                "the deploy lock is not the canary {version}'s:\n{text}"
            ))
            .with_hint("wait for its holder to finish, or release it (`dray lock release`) if nobody holds it"))
        }
        None => {
            return Err(Error::failure(format!(
                "the canary {version} runs but its deploy lock is gone"
            ))
            .with_hint(format!(
                "take it back with `dray lock acquire -m {:?} --version {version}`, then run `dray canary {sub}` again",
                plans::lock_message(&version)
            )))
        }
    }
    let mut g = global.clone();
    g.version = Some(version.clone());
    let release = super::resolve_release(&g, &s.config, &s.opts)?.release;
    let secrets = super::load_secrets(&s.config, &s.opts)?;
    let inp = CanaryInputs {
        config: &s.config,
        release: &release,
        targets: &s.targets,
        record: &found.record,
        hosts: &hosts,
        skip_hooks: global.skip_hooks,
        secrets: &secrets,
    };
    let unlock = crate::plan::cmds::unlock(&s.config, &s.targets.primary_host);
    let stages = match command {
        CanaryCommand::Promote => plans::promote(&inp, unlock),
        _ => plans::abort(&inp, unlock),
    };
    s.run(&Plan::command(
        "canary",
        Some(sub),
        Some(release.clone()),
        s.targets.clone(),
        stages,
    ))
}

/// `canary status`: the split, the lock, and per canary host both versions' health; an error
/// (exit 1) when the canary is not healthy on every host.
fn status(s: &Session, hosts: &[String], found: &Found) -> Result<()> {
    let config = &s.config;
    let record = &found.record;
    let Some(role) = config.role(&record.role) else {
        return Err(Error::failure(format!(
            "the canary's role {} is not in the configuration",
            record.role
        ))
        .with_hint("`dray canary abort` removes the canary"));
    };
    let rows = hosts
        .iter()
        .map(|h| ReadBackRow {
            host: h.clone(),
            role: role.name.clone(),
            command: planned(rollout::status(&App::new(config, role, h), &record.version)),
            read_by: None,
        })
        .collect();
    let mut targets = s.targets.clone();
    targets.hosts = hosts.to_vec();
    let plan = Plan::command(
        "canary",
        Some("status"),
        None,
        targets,
        vec![stage("read", vec![Step::ReadBack(ReadBackStep { rows })])],
    );
    let answers = s.query(&plan)?;
    println!(
        "Canary {} of {}: {}",
        record.version,
        record.role,
        plans::split_text(record)
    );
    match &found.lock {
        Some(text) if plans::is_canary_lock(text, &record.version) => {
            println!("Deploy lock: held by the canary")
        }
        Some(_) => println!("Deploy lock: held by someone else (`dray lock status`)"),
        None => println!("Deploy lock: not held (`dray canary promote|abort` will refuse)"),
    }
    let mut unhealthy = Vec::new();
    for (host, _, text) in answers {
        let lines = VersionHealth::parse(text.as_deref().unwrap_or(""));
        println!("{host}:");
        for (i, h) in lines.iter().enumerate() {
            let what = if i == 0 { "canary" } else { "old" };
            let health = if h.health.is_empty() {
                String::new()
            } else {
                format!(" {}", h.health)
            };
            println!(
                "  {what:<6} {} {}{health}, {} restarts: {}",
                h.version,
                h.state,
                h.restarts,
                if h.is_healthy() {
                    "healthy"
                } else {
                    "UNHEALTHY"
                }
            );
        }
        if !lines.first().is_some_and(VersionHealth::is_healthy) {
            unhealthy.push(host);
        }
    }
    if unhealthy.is_empty() {
        Ok(())
    } else {
        Err(Error::failure(format!(
            "the canary {} is not healthy on {}",
            record.version,
            unhealthy.join(", ")
        ))
        .with_hint("`dray canary abort` sends every request back to the old version; `dray app logs` shows the canary's output"))
    }
}

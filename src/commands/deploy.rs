//! `dray deploy`, `redeploy`, `rollback` and `app boot`: resolve the release once, check every
//! secret, build the plan, and print it (`--dry-run`) or run it.

use crate::cli::GlobalOptions;
use crate::error::Result;
use crate::plan::{build_plan, PlanInputs, PlanKind, Targets};

use super::session::Session;

/// What the deploy-like commands were asked.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// The command.
    pub kind: PlanKind,
    /// `--skip-push`.
    pub skip_push: bool,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--no-revert`.
    pub no_revert: bool,
    /// `--canary PERCENT [--canary-allow V…]` (deploy only).
    pub canary: Option<super::canary::CanaryRequest>,
}

/// Run `deploy`, `redeploy`, `rollback` or `app boot`.
pub fn run(global: &GlobalOptions, req: &DeployRequest) -> Result<()> {
    let s = Session::new(global)?;
    let canary = match &req.canary {
        Some(c) => {
            let percent = super::canary::check_start(c, req.kind, s.lock_inherited())?;
            super::canary::canary_hosts(global, &s.config, &s.targets)?;
            Some((percent, c.allow.clone()))
        }
        None => None,
    };
    let resolved = s.release()?;
    if req.skip_push
        && global.version.is_none()
        && !s.opts.env.contains_key("VERSION")
        && !global.quiet
    {
        // Kamal allows it (the git version is pulled); say what will be pulled.
        eprintln!(
            "warning: --skip-push without --version pulls {}, which must already be in the registry",
            resolved.release.image
        );
    }
    let secrets = super::load_secrets(&s.config, &s.opts)?;
    check_secrets(&s.config, &s.targets, &secrets, req)?;
    let building = !req.skip_push && !matches!(req.kind, PlanKind::Rollback | PlanKind::AppBoot);
    // What this machine can build, and a refusal of what it cannot, before anything runs.
    let build_env = if building {
        let env = crate::engine::build::probe_build_env();
        crate::plan::builder::check(&s.config, &env)?;
        // Kamal's `Missing <dockerfile>`, for a build that runs (a dry run only shows it).
        if !global.dry_run && super::session::capture_dir().is_none() {
            crate::plan::builder::check_dockerfile(&s.config, &s.opts.cwd, &env)?;
        }
        env
    } else {
        crate::plan::builder::BuildEnv::legacy()
    };
    let error_pages = read_error_pages(&s.config, &s.opts.cwd)?;
    let acme_ca = read_acme_ca(&s.config, &s.opts.cwd)?;
    let (bootstrap, accessories) = if req.kind == PlanKind::Setup {
        setup_stages(&s, &resolved.release, &secrets)?
    } else {
        (Vec::new(), Vec::new())
    };
    let plan = build_plan(&PlanInputs {
        kind: req.kind,
        config: &s.config,
        resolved: &resolved,
        targets: &s.targets,
        skip_push: req.skip_push,
        no_cache: req.no_cache,
        skip_hooks: global.skip_hooks,
        secrets: &secrets,
        lock_inherited: s.lock_inherited(),
        build_env,
        lock_details: match canary {
            Some(_) => super::canary::lock_details(&s, &resolved.release.version),
            None => s.working_lock_details(
                &resolved.release.version,
                crate::docker::lock::AUTOMATIC_MESSAGE,
            ),
        },
        lock_wait: s.lock_wait(),
        break_stale_lock: s.global.break_stale_lock,
        no_revert: req.no_revert,
        error_pages: error_pages.as_deref(),
        acme_ca: acme_ca.as_deref(),
        bootstrap,
        accessories,
        // Kamal runs `pre-app-boot` after the proxy and stale-container stages: with that hook
        // (or a canary, whose plan keeps the proxy stage) they stay stages of their own.
        fold_round_trips: canary.is_none()
            && (global.skip_hooks
                || crate::hooks::find_hook(&s.opts.cwd, &s.config.hooks_path, "pre-app-boot")
                    .is_none()),
    });
    match canary {
        Some((percent, allow)) => {
            let plan =
                super::canary::start_plan(&s, plan, &resolved.release, &secrets, percent, &allow)?;
            s.run(&plan).map_err(|mut e| {
                e.hint = Some(match e.hint.take() {
                    Some(h) => format!("{h}\n{}", super::canary::FAILED_HINT),
                    None => super::canary::FAILED_HINT.to_string(),
                });
                e
            })
        }
        None => s.run(&plan),
    }
}

/// `setup`'s own stages: the servers' bootstrap (`server bootstrap`, with the `docker-setup`
/// hook as `setup` runs it) and every accessory's boot (`accessory boot all`), their secrets
/// checked and files read before anything runs.
fn setup_stages(
    s: &Session,
    release: &crate::release::Release,
    secrets: &crate::config::secrets::Secrets,
) -> Result<(Vec<crate::plan::Stage>, Vec<crate::plan::Stage>)> {
    let config = &s.config;
    let hosts = crate::plan::server::bootstrap_hosts(config, &s.targets, s.global.hosts.as_deref());
    let roles = s
        .targets
        .roles_filtered
        .then_some(s.targets.roles.as_slice());
    let ctx = crate::hooks::HookContext {
        release,
        command: "setup",
        subcommand: None,
        hosts: &hosts,
        roles,
        lock: true,
        runtime: None,
    };
    let hook = (!s.global.skip_hooks).then_some(&ctx);
    let bootstrap = crate::plan::server::bootstrap_stages(config, &hosts, hook);
    let accessories: Vec<&crate::config::model::Accessory> = config.accessories.iter().collect();
    super::accessory_files::check_secrets(config, &accessories, secrets)?;
    let files = super::accessory_files::read(&accessories, secrets, &s.opts)?;
    let targeted = super::all_targeted_hosts(s);
    let booted = crate::plan::accessory::boot_stages(
        &crate::plan::accessory::AccessoryInputs {
            config,
            release,
            hosts: &targeted,
            secrets,
            files: &files,
        },
        &accessories,
    );
    Ok((bootstrap, booted))
}

/// `rollback` without a version: the release before the latest one in dray's record on the
/// targeted hosts ([`crate::docker::releases`]), read in one round trip per host. Refused when a
/// host has none, or when the hosts disagree (each host's answer is listed).
pub fn previous_release(global: &GlobalOptions) -> Result<String> {
    use crate::docker::releases;
    use crate::error::Error;
    use crate::plan::{stage, Plan, ReadBackRow, ReadBackStep, Step};
    let s = Session::new(global)?;
    let rows = s
        .targets
        .hosts
        .iter()
        .map(|h| ReadBackRow {
            host: h.clone(),
            role: String::new(),
            command: crate::plan::planned(releases::read(&s.config, h)),
            read_by: None,
        })
        .collect();
    let plan = Plan::command(
        "rollback",
        None,
        None,
        s.targets.clone(),
        vec![stage("read", vec![Step::ReadBack(ReadBackStep { rows })])],
    );
    let answers = s.query(&plan)?;
    let mut found: Vec<(String, Option<String>)> = Vec::new();
    for (host, _, text) in answers {
        let records = releases::parse(text.as_deref().unwrap_or(""));
        found.push((
            host,
            releases::previous(&records).map(|r| r.version.clone()),
        ));
    }
    let file = releases::file(&s.config);
    let missing: Vec<&str> = found
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(h, _)| h.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Error::usage(format!(
            "no previous release recorded on {}",
            missing.join(", ")
        ))
        .with_hint(format!(
            "dray records each release that reached every host in ~/{file}; give the version:              `dray rollback VERSION` (`dray app containers` lists those on the hosts)"
        )));
    }
    let mut versions: Vec<&str> = found.iter().filter_map(|(_, v)| v.as_deref()).collect();
    versions.dedup();
    match versions.as_slice() {
        [one] => Ok(one.to_string()),
        _ => Err(Error::usage(format!(
            "the hosts disagree on the previous release: {}",
            found
                .iter()
                .map(|(h, v)| format!("{h} {}", v.as_deref().unwrap_or("-")))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_hint("give the version: `dray rollback VERSION`")),
    }
}

/// Every secret the run will need exists, before anything runs: env secrets of the targeted
/// roles and hosts, registry credentials, and build secrets when building. A missing one names
/// the key and the files searched.
fn check_secrets(
    config: &crate::config::Config,
    targets: &Targets,
    secrets: &crate::config::secrets::Secrets,
    req: &DeployRequest,
) -> Result<()> {
    use crate::config::model::Credential;
    let mut keys: Vec<&str> = Vec::new();
    let mut owned: Vec<String> = Vec::new();
    for host in &targets.hosts {
        for role in targets.roles_on(config, host) {
            if let Some(role) = config.role(role) {
                owned.extend(
                    config
                        .env_for(role, host)
                        .secrets
                        .into_iter()
                        .map(|s| s.key),
                );
            }
        }
    }
    for c in [&config.registry.username, &config.registry.password] {
        if let Some(Credential::Secret(name)) = c {
            keys.push(name);
        }
    }
    let building = !req.skip_push && !matches!(req.kind, PlanKind::Rollback | PlanKind::AppBoot);
    if building {
        keys.extend(config.builder.secrets.iter().map(String::as_str));
    }
    keys.extend(owned.iter().map(String::as_str));
    // Custom certificates of the targeted proxy roles.
    for role in &targets.roles {
        if let Some(proxy) = config.role(role).and_then(|r| r.proxy.as_ref()) {
            if let (Some(cert), Some(key)) =
                (&proxy.ssl_certificate_pem, &proxy.ssl_private_key_pem)
            {
                keys.push(cert);
                keys.push(key);
            }
        }
    }
    for key in keys {
        secrets.get(key)?;
    }
    Ok(())
}

/// The error pages to upload, as Kamal finds them: the `4??.html` and `5??.html` files directly in
/// `error_pages_path` (relative to the project root), as a tar archive; `None` without the key
/// or without such files. A missing directory is an error (Kamal would point the proxy at a
/// directory it never uploaded).
fn read_error_pages(
    config: &crate::config::Config,
    root: &std::path::Path,
) -> Result<Option<Vec<u8>>> {
    use crate::error::Error;
    let Some(path) = config.error_pages_path.as_deref() else {
        return Ok(None);
    };
    let dir = root.join(path);
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        Error::usage(format!(
            "error_pages_path: cannot read the directory {}: {e}",
            dir.display()
        ))
        .with_hint("create it with 4xx.html / 5xx.html pages, or remove `error_pages_path`")
    })?;
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_error_page(&name) || !entry.path().is_file() {
            continue;
        }
        let content = std::fs::read(entry.path()).map_err(|e| {
            Error::usage(format!(
                "error_pages_path: cannot read {}: {e}",
                entry.path().display()
            ))
        })?;
        files.push(crate::docker::proxy_files::ArchiveFile {
            name,
            mode: 0o644,
            content,
        });
    }
    if files.is_empty() {
        return Ok(None);
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    crate::docker::proxy_files::archive(&files)
        .map(Some)
        .map_err(|e| Error::failure(format!("error_pages_path: cannot pack the pages: {e}")))
}

/// `x-dray: proxy: acme_ca_certs` (relative to the project root) as a tar archive of `ca.pem`;
/// `None` without the key. The file must hold at least one PEM certificate.
fn read_acme_ca(config: &crate::config::Config, root: &std::path::Path) -> Result<Option<Vec<u8>>> {
    use crate::error::Error;
    let Some(path) = config.acme.as_ref().and_then(|a| a.ca_certs.as_deref()) else {
        return Ok(None);
    };
    let file = root.join(path);
    let content = std::fs::read(&file).map_err(|e| {
        Error::usage(format!(
            "x-dray.proxy.acme_ca_certs: cannot read {}: {e}",
            file.display()
        ))
        .with_hint("a PEM file of the CA roots of the ACME directory, relative to the project root")
    })?;
    if !String::from_utf8_lossy(&content).contains("-----BEGIN CERTIFICATE-----") {
        return Err(Error::usage(format!(
            "x-dray.proxy.acme_ca_certs: {} holds no PEM certificate",
            file.display()
        ))
        .with_hint("give it the CA roots as `-----BEGIN CERTIFICATE-----` blocks"));
    }
    crate::docker::proxy_files::archive(&[crate::docker::proxy_files::ArchiveFile {
        name: "ca.pem".into(),
        mode: 0o644,
        content,
    }])
    .map(Some)
    .map_err(|e| Error::failure(format!("x-dray.proxy.acme_ca_certs: cannot pack it: {e}")))
}

/// `4??.html` or `5??.html` (Kamal's glob).
fn is_error_page(name: &str) -> bool {
    name.chars().count() == 8
        && (name.starts_with('4') || name.starts_with('5'))
        && name.ends_with(".html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_pages_match_kamals_glob() {
        for ok in ["404.html", "500.html", "4xx.html", "503.html"] {
            assert!(is_error_page(ok), "{ok}");
        }
        for no in [
            "index.html",
            "404.htm",
            "600.html",
            "4044.html",
            "404.html.bak",
        ] {
            assert!(!is_error_page(no), "{no}");
        }
    }
}

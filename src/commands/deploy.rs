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
}

/// Run `deploy`, `redeploy`, `rollback` or `app boot`.
pub fn run(global: &GlobalOptions, req: &DeployRequest) -> Result<()> {
    let s = Session::new(global)?;
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
        lock_details: s.lock_details(
            &resolved.release.version,
            crate::docker::lock::AUTOMATIC_MESSAGE,
        ),
        lock_wait: s.lock_wait(),
    });
    s.run(&plan)
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
    for key in keys {
        secrets.get(key)?;
    }
    Ok(())
}

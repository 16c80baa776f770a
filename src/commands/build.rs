//! `dray build push|pull|deliver|dev|create|remove|details` (Kamal's `lib/kamal/cli/build.rb`):
//! each builds its plan ([`crate::plan::image`]) and runs it on the engine. What this machine
//! cannot build as asked is refused before anything runs (exit 2).

use crate::cli::{BuildCommand, GlobalOptions};
use crate::error::Result;
use crate::plan::builder::{self, BuildEnv, BuildRequest};
use crate::plan::image::{self as plans, BuildInputs};
use crate::plan::{Plan, Stage};

use super::session::Session;

/// Run one `dray build` subcommand.
pub fn run(global: &GlobalOptions, command: &BuildCommand) -> Result<()> {
    let s = Session::new(global)?;
    let env = crate::engine::build::probe_build_env();
    let sub = match command {
        BuildCommand::Deliver { .. } => "deliver",
        BuildCommand::Push(_) => "push",
        BuildCommand::Pull => "pull",
        BuildCommand::Create => "create",
        BuildCommand::Remove => "remove",
        BuildCommand::Details => "details",
        BuildCommand::Dev(_) => "dev",
    };
    // Builder setup: this machine only, no release.
    let local_only = |stages: Vec<Stage>| -> Result<()> {
        let mut plan = Plan::command("build", Some(sub), None, s.targets.clone(), stages);
        plan.connect.clear();
        plan.targets.hosts.clear();
        s.run(&plan)
    };
    match command {
        BuildCommand::Details => return local_only(plans::details(&s.config, &env)),
        BuildCommand::Create => return local_only(plans::create(&s.config, &env)?),
        BuildCommand::Remove => return local_only(plans::remove(&s.config, &env)?),
        _ => {}
    }
    let resolved = s.release()?;
    let release = resolved.release;
    let secrets = super::load_secrets(&s.config, &s.opts)?;
    let building = !matches!(command, BuildCommand::Pull);
    if building {
        builder::check(&s.config, &env)?;
        if !global.dry_run && super::session::capture_dir().is_none() {
            builder::check_dockerfile(&s.config, &s.opts.cwd, &env)?;
        }
        for key in &s.config.builder.secrets {
            secrets.get(key)?;
        }
    }
    let inp = BuildInputs {
        config: &s.config,
        release: &release,
        targets: &s.targets,
        secrets: &secrets,
        env: &env,
        subcommand: sub,
        skip_hooks: global.skip_hooks,
        lock_inherited: s.lock_inherited(),
    };
    let (stages, remote) = match command {
        BuildCommand::Push(args) => {
            let req = request(&s, &env, &args.export, args.no_cache, false)?;
            (plans::push(&inp, &req), false)
        }
        BuildCommand::Dev(args) => {
            let req = request(&s, &env, &args.export, args.no_cache, true)?;
            if !global.quiet {
                warn_uncommitted(&s.opts.cwd);
            }
            (plans::dev(&inp, &req), false)
        }
        BuildCommand::Deliver { no_cache } => (plans::deliver(&inp, *no_cache), true),
        _ => (plans::pull(&inp, true), true),
    };
    let mut plan = Plan::command(
        "build",
        Some(sub),
        Some(release.clone()),
        s.targets.clone(),
        stages,
    );
    if !remote {
        plan.connect.clear();
        plan.targets.hosts.clear();
    }
    s.run(&plan)
}

fn request<'a>(
    s: &Session,
    env: &BuildEnv,
    output: &'a str,
    no_cache: bool,
    dev: bool,
) -> Result<BuildRequest<'a>> {
    builder::check_export(&s.config, env, output)?;
    Ok(BuildRequest {
        no_cache,
        export: output,
        dev,
    })
}

/// Kamal's warnings before `build dev`: files with uncommitted changes, and untracked files,
/// that the build context holds (unless `.dockerignore` leaves them out).
fn warn_uncommitted(cwd: &std::path::Path) {
    let git = |args: &[&str]| -> Vec<String> {
        std::process::Command::new("git")
            .current_dir(cwd)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    for (files, what) in [
        (
            git(&["ls-files", "--modified"]),
            "Files with uncommitted changes",
        ),
        (
            git(&["ls-files", "--others", "--exclude-standard"]),
            "Untracked files",
        ),
    ] {
        if files.is_empty() {
            continue;
        }
        eprintln!(
            "warning: {what} will be present in the dev image (unless .dockerignore excludes them):"
        );
        for f in files {
            eprintln!("  {f}");
        }
    }
}

//! `dray server exec [-i] CMD…` (Kamal's `server exec`): a plan ([`crate::plan::admin`]) on
//! every targeted host, or on the primary host attached to this terminal; `dray server
//! bootstrap` ([`crate::plan::server`]): Docker checked (installed where missing and allowed),
//! `.kamal` created, the `docker-setup` hook, under the lock.

use crate::cli::{GlobalOptions, ServerCommand};
use crate::error::{Error, Result};
use crate::hooks::{hook_env, HookContext};
use crate::plan::{admin, locked, server, HookStep, Plan, Step};

use super::session::Session;

/// Run `dray server …`.
pub fn run(global: &GlobalOptions, command: &ServerCommand) -> Result<()> {
    match command {
        ServerCommand::Exec {
            interactive,
            raw,
            cmd,
        } => {
            if *raw && *interactive {
                return Err(Error::usage("--raw cannot be combined with --interactive")
                    .with_hint("--raw prints each host's output as it is; -i runs a terminal"));
            }
            if *raw {
                let mut global = global.clone();
                global.quiet = true;
                return exec(&global, false, true, &cmd.join(" "));
            }
            exec(global, *interactive, false, &cmd.join(" "))
        }
        ServerCommand::Bootstrap => bootstrap(global),
    }
}

fn exec(global: &GlobalOptions, interactive: bool, raw: bool, line: &str) -> Result<()> {
    let s = Session::new(global)?;
    if interactive {
        let host = s.targets.primary_host.clone();
        if !global.quiet && !global.dry_run {
            eprintln!("Running '{line}' on {host} interactively...");
        }
        let mut targets = s.targets.clone();
        targets.hosts = vec![host.clone()];
        let stages = admin::server_exec_interactive(&host, line);
        return s.run(&Plan::command(
            "server",
            Some("exec"),
            None,
            targets,
            stages,
        ));
    }
    let release = s.release()?.release;
    if !global.quiet && !global.dry_run {
        eprintln!("Running '{line}' on {}...", s.targets.hosts.join(", "));
    }
    let stages = admin::server_exec(&s.config, &release, &s.targets.hosts, line);
    let mut plan = Plan::command(
        "server",
        Some("exec"),
        Some(release),
        s.targets.clone(),
        stages,
    );
    plan.output = if raw {
        crate::plan::OutputStyle::Plain
    } else {
        crate::plan::OutputStyle::ByHost
    };
    s.run(&plan)
}

/// `server bootstrap`: the `pre-connect` hook, then under the lock every host's Docker check
/// (and install) and run directory, then the `docker-setup` hook; the hosts are the targeted
/// ones and the accessories' ([`server::bootstrap_hosts`]).
fn bootstrap(global: &GlobalOptions) -> Result<()> {
    let s = Session::new(global)?;
    let release = s.release()?.release;
    let hosts = server::bootstrap_hosts(&s.config, &s.targets, global.hosts.as_deref());
    let mut targets = s.targets.clone();
    targets.hosts = hosts.clone();
    let roles = s
        .targets
        .roles_filtered
        .then_some(s.targets.roles.as_slice());
    let ctx = |lock: bool| HookContext {
        release: &release,
        command: "server",
        subcommand: Some("bootstrap"),
        hosts: &hosts,
        roles,
        lock,
        runtime: None,
    };
    let mut stages = Vec::new();
    if !global.skip_hooks {
        let secrets = super::load_secrets(&s.config, &s.opts)?;
        stages.push(crate::plan::stage(
            "connect",
            vec![Step::Hook(HookStep {
                hook: "pre-connect".into(),
                path: format!("{}/pre-connect", s.config.hooks_path),
                env: hook_env("pre-connect", &ctx(s.lock_inherited()), secrets.iter()),
            })],
        ));
    }
    let hook = ctx(true);
    stages.extend(locked(
        s.lock(&release.version),
        server::bootstrap_stages(&s.config, &hosts, (!global.skip_hooks).then_some(&hook)),
    ));
    s.run(&Plan::command(
        "server",
        Some("bootstrap"),
        Some(release.clone()),
        targets,
        stages,
    ))
}

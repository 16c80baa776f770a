//! `dray app …` (Kamal's `lib/kamal/cli/app.rb`): each subcommand builds its plan
//! ([`crate::plan::app`]) and runs it on the engine; those that change the servers take the
//! deploy lock, as Kamal does.

use crate::cli::{AppCommand, AppExecArgs, AppLogsArgs, GlobalOptions};
use crate::docker::app::{ExecOptions, Interactive, LogsOptions};
use crate::error::{Error, Result};
use crate::plan::app::{self as plans, AppInputs, ExecPlan};
use crate::plan::{locked, Plan, Stage};

use super::session::Session;

/// Run `dray app …`.
pub fn run(global: &GlobalOptions, command: &AppCommand) -> Result<()> {
    if let AppCommand::Boot = command {
        return boot(global);
    }
    if let AppCommand::Exec(args) = command {
        if args.raw && !global.quiet {
            // `--raw`: the output alone (Kamal runs the command at error verbosity).
            let mut global = global.clone();
            global.quiet = true;
            return run(&global, command);
        }
    }
    let s = Session::new(global)?;
    let inp = AppInputs {
        config: &s.config,
        targets: &s.targets,
    };
    let sub = subcommand(command);
    // Read-only commands: no release, no lock.
    // Their output is Kamal's `puts_by_host`: `App Host: <host>`, the output, a blank line.
    let read_only = |stages: Vec<Stage>| -> Result<()> {
        let mut plan = Plan::command("app", Some(sub), None, s.targets.clone(), stages);
        plan.output = crate::plan::OutputStyle::ByHost;
        s.run(&plan)
    };
    // Commands that change the servers: the release (audit lines), under the lock.
    let changing = |stages: &dyn Fn(&crate::release::Release) -> Vec<Stage>| -> Result<()> {
        let release = s.release()?.release;
        let stages = locked(s.lock(&release.version), stages(&release));
        s.run(&Plan::command(
            "app",
            Some(sub),
            Some(release),
            s.targets.clone(),
            stages,
        ))
    };
    match command {
        AppCommand::Boot => Ok(()),
        AppCommand::Start => changing(&|r| plans::start(&inp, r)),
        AppCommand::Stop => changing(&|r| plans::stop(&inp, r)),
        AppCommand::Details => read_only(plans::details(&inp)),
        AppCommand::Containers => read_only(plans::containers(&inp)),
        AppCommand::Images => read_only(plans::images(&inp)),
        AppCommand::Version => read_only(plans::version(&inp)),
        AppCommand::Logs(args) => logs(&s, &inp, args),
        AppCommand::Exec(args) => exec(&s, &inp, args),
        AppCommand::Remove => changing(&|r| plans::remove(&inp, r)),
        AppCommand::StaleContainers { stop: true } => {
            changing(&|_| plans::stale_containers(&inp, true))
        }
        AppCommand::StaleContainers { stop: false } => {
            read_only(plans::stale_containers(&inp, false))
        }
        AppCommand::Live | AppCommand::Maintenance { .. } => {
            let any = s
                .targets
                .roles
                .iter()
                .any(|r| s.config.role(r).is_some_and(|r| r.runs_proxy()));
            if !any {
                return Err(Error::usage("no targeted role runs kamal-proxy").with_hint(
                    "live and maintenance switch kamal-proxy routes; set `proxy:` on a role",
                ));
            }
            match command {
                AppCommand::Maintenance {
                    drain_timeout,
                    message,
                } => {
                    let drain = drain_timeout.unwrap_or(s.config.drain_timeout);
                    changing(&|_| plans::proxy_mode(&inp, Some((drain, message.as_deref()))))
                }
                _ => changing(&|_| plans::proxy_mode(&inp, None)),
            }
        }
    }
}

/// `KAMAL_SUBCOMMAND` of an `app` command.
fn subcommand(command: &AppCommand) -> &'static str {
    match command {
        AppCommand::Boot => "boot",
        AppCommand::Start => "start",
        AppCommand::Stop => "stop",
        AppCommand::Details => "details",
        AppCommand::Containers => "containers",
        AppCommand::Images => "images",
        AppCommand::Version => "version",
        AppCommand::Logs(_) => "logs",
        AppCommand::Exec(_) => "exec",
        AppCommand::Remove => "remove",
        AppCommand::StaleContainers { .. } => "stale_containers",
        AppCommand::Live => "live",
        AppCommand::Maintenance { .. } => "maintenance",
    }
}

/// `app boot`: the `AppBoot` release plan (lock, boot groups with their hooks, tag latest,
/// unlock) with `--version`, else Kamal's `latest[-<destination>]` tag.
fn boot(global: &GlobalOptions) -> Result<()> {
    let mut global = global.clone();
    if global.version.is_none() {
        global.version = Some(match &global.destination {
            Some(d) => format!("latest-{d}"),
            None => "latest".to_string(),
        });
    }
    super::deploy::run(
        &global,
        &super::deploy::DeployRequest {
            kind: crate::plan::PlanKind::AppBoot,
            skip_push: true,
            no_cache: false,
            no_revert: true,
            canary: None,
        },
    )
}

/// `app logs`: the last lines of each role's current container on every host, or `-f`
/// following the primary host's over `ssh -t`.
fn logs(s: &Session, inp: &AppInputs, args: &AppLogsArgs) -> Result<()> {
    let container_id = args.container_id.clone();
    let args = &args.logs;
    let unbounded = args.since.is_some() || args.grep.is_some();
    let default_lines = if args.follow { 10 } else { 100 };
    let opts = LogsOptions {
        container_id,
        timestamps: !args.skip_timestamps,
        since: args.since.clone(),
        lines: args.lines.or((!unbounded).then_some(default_lines)),
        grep: args.grep.clone(),
        grep_options: args.grep_options.clone(),
        follow: args.follow,
    };
    let stages = if args.follow {
        let host = &s.targets.primary_host;
        let stages = plans::follow_logs(inp, &opts)
            .ok_or_else(|| Error::usage(format!("no targeted role runs on {host}")))?;
        if !s.global.quiet && !s.global.dry_run {
            eprintln!("Following logs on {host}...");
        }
        stages
    } else {
        plans::logs(inp, &opts)
    };
    let mut plan = Plan::command("app", Some("logs"), None, s.targets.clone(), stages);
    if !args.follow {
        plan.output = crate::plan::OutputStyle::ByHost;
    }
    s.run(&plan)
}

/// `KEY=VALUE` pairs of `-e`.
fn env_pairs(env: &[String]) -> Result<Vec<(String, String)>> {
    env.iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Error::usage(format!("--env {pair}: expected KEY=VALUE"))
                .with_hint("e.g. `dray app exec -e RAILS_ENV=production 'bin/rails db:migrate'`")),
        })
        .collect()
}

/// `app exec`: in a new container of the running version (`--version` to choose, else
/// `latest[-D]` where none runs) or, with `--reuse`, in the running container; `-i` runs it over
/// `ssh -t` on the primary host. Audit "Executed cmd '<cmd>' on app version V".
fn exec(s: &Session, inp: &AppInputs, args: &AppExecArgs) -> Result<()> {
    if args.detach && (args.interactive || args.reuse) {
        return Err(
            Error::usage("--detach cannot be combined with --interactive or --reuse")
                .with_hint("--detach runs the command in a new container in the background"),
        );
    }
    if args.raw && (args.interactive || args.detach) {
        return Err(
            Error::usage("--raw cannot be combined with --interactive or --detach")
                .with_hint("--raw prints each host's output as it is"),
        );
    }
    let plan = ExecPlan {
        exec: ExecOptions {
            command: args.cmd.join(" "),
            env: env_pairs(&args.env)?,
            interactive: if args.interactive {
                Interactive::Tty
            } else {
                Interactive::No
            },
            detach: args.detach,
        },
        reuse: args.reuse,
        version: s.global.version.clone(),
    };
    if args.interactive {
        let host = &s.targets.primary_host;
        let stages = plans::exec_interactive(inp, &plan)
            .ok_or_else(|| Error::usage(format!("no targeted role runs on {host}")))?;
        if !s.global.quiet && !s.global.dry_run {
            eprintln!(
                "Launching interactive command via SSH from {} container on {host}...",
                if args.reuse { "existing" } else { "new" }
            );
        }
        return s.run(&Plan::command(
            "app",
            Some("exec"),
            None,
            s.targets.clone(),
            stages,
        ));
    }
    let release = s.release()?.release;
    let stages = plans::exec(inp, &release, &plan);
    let mut plan = Plan::command(
        "app",
        Some("exec"),
        Some(release),
        s.targets.clone(),
        stages,
    );
    plan.output = if args.raw {
        crate::plan::OutputStyle::Plain
    } else {
        crate::plan::OutputStyle::ByHost
    };
    s.run(&plan)
}

//! `dray server exec [-i] CMD…` (Kamal's `server exec`): a plan ([`crate::plan::admin`]) on
//! every targeted host, or on the primary host attached to this terminal.

use crate::cli::{GlobalOptions, ServerCommand};
use crate::error::{Error, Result};
use crate::plan::{admin, Plan};

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
        ServerCommand::Bootstrap => Err(Error::usage("`server bootstrap` is not implemented yet")
            .with_hint("see the open issues for the command's status")),
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
    if raw {
        plan.output = crate::plan::OutputStyle::Plain;
    }
    s.run(&plan)
}

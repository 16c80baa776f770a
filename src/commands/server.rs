//! `dray server exec [-i] CMD…` (Kamal's `server exec`), and the pieces the remote commands
//! (`server`, `lock`, `audit`) share: the runtime, the targets and the SSH remote of a run.

use std::sync::Arc;

use crate::cli::{GlobalOptions, ServerCommand};
use crate::command::CommandSpec;
use crate::config::{Config, LoadOptions};
use crate::error::{Error, ExitCode, Result};
use crate::plan::{Filters, Targets};
use crate::remote::{HostOutcome, Remote, SshOptions, SshRemote};

use super::{load_config, resolve_release};

/// A tokio runtime for one command (`main` is synchronous).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::failure(format!("cannot start the async runtime: {e}")))
}

/// The hosts `--hosts/--roles/--primary` select.
pub(crate) fn targets(config: &Config, global: &GlobalOptions) -> Result<Targets> {
    Targets::resolve(
        config,
        &Filters {
            hosts: global.hosts.as_deref(),
            roles: global.roles.as_deref(),
            primary: global.primary,
        },
    )
}

/// The run's SSH remote (nothing connected yet).
pub(crate) fn remote(config: &Config, opts: &LoadOptions) -> Result<Arc<SshRemote>> {
    Ok(Arc::new(SshRemote::new(SshOptions::from_config(
        config, &opts.cwd,
    ))?))
}

/// The error for failed hosts: exit 1 when every host failed, 3 when some succeeded.
pub(crate) fn host_failures(outcomes: &[HostOutcome]) -> Result<()> {
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.error.as_ref().map(|e| e.to_string()))
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    let exit = if failed.len() == outcomes.len() {
        ExitCode::Failure
    } else {
        ExitCode::Partial
    };
    Err(Error::failure(failed.join("\n")).with_exit(exit))
}

/// Run `dray server …`.
pub fn run(global: &GlobalOptions, command: &ServerCommand) -> Result<()> {
    match command {
        ServerCommand::Exec { interactive, cmd } => exec(global, *interactive, &cmd.join(" ")),
        ServerCommand::Bootstrap => Err(Error::usage("`server bootstrap` is not implemented yet")
            .with_hint("see the open issues for the command's status")),
    }
}

/// The user's command line for the remote shell, as Kamal sends it: unquoted, through `eval` in
/// the login shell, so the shell parses it exactly as if typed there.
pub fn user_command(host: &str, line: &str) -> CommandSpec {
    CommandSpec::new(format!("run `{line}` on {host}"), "eval").arg(line)
}

fn exec(global: &GlobalOptions, interactive: bool, line: &str) -> Result<()> {
    let (config, opts) = load_config(global)?;
    let targets = targets(&config, global)?;
    let remote = remote(&config, &opts)?;
    let rt = runtime()?;
    if interactive {
        let host = targets.primary_host.clone();
        if !global.quiet {
            eprintln!("Running '{line}' on {host} interactively...");
        }
        let mut ssh = rt.block_on(remote.interactive_command(&host, line))?;
        let status = ssh
            .status()
            .map_err(|e| Error::failure(format!("cannot run the local `ssh`: {e}")))?;
        return match status.code() {
            Some(0) => Ok(()),
            code => Err(Error::failure(format!(
                "`{line}` on {host} exited {}",
                code.map(|c| c.to_string())
                    .unwrap_or_else(|| "on a signal".into())
            ))),
        };
    }
    let resolved = resolve_release(global, &config, &opts)?;
    let hosts = targets.hosts.clone();
    if !global.quiet {
        eprintln!("Running '{line}' on {}...", hosts.join(", "));
    }
    let outcomes = rt.block_on(async {
        remote.connect_all(&hosts).await?;
        let work: Vec<(String, Vec<CommandSpec>)> = hosts
            .iter()
            .map(|host| {
                let audit = crate::audit::line(
                    &resolved.release,
                    None,
                    format!("Executed cmd '{line}' on {host}"),
                );
                let cmds = vec![
                    crate::docker::audit::record(&config, host, &audit),
                    user_command(host, line),
                ];
                if global.verbose {
                    for c in &cmds {
                        eprintln!("[{host}] $ {}", c.to_shell_redacted());
                    }
                }
                (host.clone(), cmds)
            })
            .collect();
        let outcomes = crate::remote::fan_out(remote.as_ref(), &work).await;
        remote.close().await;
        Ok::<_, Error>(outcomes)
    })?;
    for outcome in &outcomes {
        if let Some(out) = outcome.outputs.get(1) {
            print!("{}", crate::audit::prefixed(&outcome.host, &out.stdout));
            eprint!("{}", crate::audit::prefixed(&outcome.host, &out.stderr));
        }
    }
    host_failures(&outcomes)
}

//! `dray registry login|logout [-L] [-R]` (Kamal's `lib/kamal/cli/registry.rb`): locally (unless
//! `--skip-local`) and on every targeted host (unless `--skip-remote`). The password travels on
//! standard input (`--password-stdin`), never in an argument list.

use std::io::Write;
use std::process::Stdio;

use crate::cli::{GlobalOptions, RegistryCommand};
use crate::command::CommandSpec;
use crate::config::model::Credential;
use crate::error::{Error, Result};

use super::app::{report, Session};
use super::load_secrets;

/// Run `dray registry …`.
pub fn run(global: &GlobalOptions, command: &RegistryCommand) -> Result<()> {
    let (args, login) = match command {
        RegistryCommand::Login(a) => (a, true),
        RegistryCommand::Logout(a) => (a, false),
    };
    let s = Session::new(global)?;
    let registry = &s.config.registry;
    if registry.is_local() {
        let server = registry.server.clone().unwrap_or_default();
        return Err(Error::usage(format!(
            "cannot log {} a local registry ({server})",
            if login { "in to" } else { "out of" }
        ))
        .with_hint(
            "hosts reach a `localhost:PORT` registry through an SSH tunnel, without a login",
        ));
    }
    let build = |on: &str| -> Result<CommandSpec> {
        if !login {
            return Ok(crate::docker::registry::logout(registry, on));
        }
        let secrets = load_secrets(&s.config, &s.opts)?;
        let value = |c: &Option<Credential>, what: &str| -> Result<String> {
            match c {
                Some(Credential::Value(v)) => Ok(v.clone()),
                Some(Credential::Secret(name)) => Ok(secrets.get(name)?.to_string()),
                None => Err(Error::usage(format!("registry.{what} is not set"))
                    .with_hint(format!("set `registry.{what}` in the configuration"))),
            }
        };
        let user = value(&registry.username, "username")?;
        let password = value(&registry.password, "password")?;
        crate::docker::registry::login(registry, &user, &password, on)
            .ok_or_else(|| Error::usage("a local registry needs no login"))
    };
    let result = (|| {
        if !args.skip_local {
            run_local(&build("local")?, global.verbose)?;
        }
        if !args.skip_remote {
            let cmds: Vec<(String, CommandSpec)> = s
                .targets
                .hosts
                .iter()
                .map(|h| build(h).map(|c| (h.clone(), c)))
                .collect::<Result<_>>()?;
            let cmds = &cmds;
            let s = &s;
            s.block_on(async {
                let r = s
                    .each_host(|host| async move {
                        let Some((_, cmd)) = cmds.iter().find(|(h, _)| h == host) else {
                            return Ok(String::new());
                        };
                        s.checked(host, cmd).await
                    })
                    .await;
                report(&r)
            })?;
        }
        Ok(())
    })();
    s.close();
    result
}

/// Run `cmd` on this machine with its standard input; its output is printed as `[local]`.
fn run_local(cmd: &CommandSpec, verbose: bool) -> Result<()> {
    if verbose {
        eprintln!("[local] $ {}", cmd.to_shell_redacted());
    }
    let mut child = std::process::Command::new(&cmd.program)
        .args(cmd.args.iter().map(|a| a.as_str()))
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::failure(format!(
                "{}: cannot run `{}`: {e}",
                cmd.purpose, cmd.program
            ))
            .with_hint("is docker installed on this machine? `--skip-local` skips it")
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        if let Some(secret) = &cmd.stdin {
            stdin
                .write_all(&secret.0)
                .map_err(|e| Error::failure(format!("{}: {e}", cmd.purpose)))?;
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::failure(format!("{}: {e}", cmd.purpose)))?;
    print!(
        "{}",
        crate::audit::prefixed("local", &String::from_utf8_lossy(&out.stdout))
    );
    if out.status.success() {
        return Ok(());
    }
    Err(Error::failure(format!(
        "{}: `{}` exited {}:\n{}",
        cmd.purpose,
        cmd.to_shell_redacted(),
        out.status
            .code()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "on a signal".into()),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

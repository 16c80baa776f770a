//! `dray registry setup|remove|login|logout [-L] [-R]` (Kamal's `lib/kamal/cli/registry.rb`):
//! locally (unless `--skip-local`) and on every targeted host (unless `--skip-remote`). The
//! password travels on standard input (`--password-stdin`), never in an argument list. With a
//! local registry (`localhost:PORT`), `setup` starts its container on this machine and `remove`
//! removes it; `login` and `logout` refuse.

use crate::cli::{GlobalOptions, RegistryCommand};
use crate::config::model::Credential;
use crate::error::{Error, Result};
use crate::plan::Plan;

use super::load_secrets;
use super::session::Session;

/// Run `dray registry …`.
pub fn run(global: &GlobalOptions, command: &RegistryCommand) -> Result<()> {
    let (args, login, named) = match command {
        RegistryCommand::Setup(a) => (a, true, false),
        RegistryCommand::Remove(a) => (a, false, false),
        RegistryCommand::Login(a) => (a, true, true),
        RegistryCommand::Logout(a) => (a, false, true),
    };
    let s = Session::new(global)?;
    let registry = &s.config.registry;
    if registry.is_local() {
        let server = registry.server.clone().unwrap_or_default();
        if named {
            return Err(Error::usage(format!(
                "cannot log {} a local registry ({server})",
                if login { "in to" } else { "out of" }
            ))
            .with_hint(format!(
                "use `dray registry {}`: hosts reach a `localhost:PORT` registry through an SSH tunnel, without a login",
                if login { "setup" } else { "remove" }
            )));
        }
        let name = if login { "setup" } else { "remove" };
        let stages = crate::plan::admin::local_registry(&s.config, login, args.skip_local);
        let mut plan = Plan::command("registry", Some(name), None, s.targets.clone(), stages);
        plan.connect.clear();
        return s.run(&plan);
    }
    let (user, password) = if login {
        let secrets = load_secrets(&s.config, &s.opts)?;
        let value = |c: &Option<Credential>, what: &str| -> Result<String> {
            match c {
                Some(Credential::Value(v)) => Ok(v.clone()),
                Some(Credential::Secret(name)) => Ok(secrets.get(name)?.to_string()),
                None => Err(Error::usage(format!("registry.{what} is not set"))
                    .with_hint(format!("set `registry.{what}` in the configuration"))),
            }
        };
        (
            value(&registry.username, "username")?,
            value(&registry.password, "password")?,
        )
    } else {
        (String::new(), String::new())
    };
    let build = |on: &str| {
        if login {
            crate::docker::registry::login(registry, &user, &password, on)
                .unwrap_or_else(|| crate::docker::registry::logout(registry, on))
        } else {
            crate::docker::registry::logout(registry, on)
        }
    };
    let name = match command {
        RegistryCommand::Setup(_) => "setup",
        RegistryCommand::Remove(_) => "remove",
        RegistryCommand::Login(_) => "login",
        RegistryCommand::Logout(_) => "logout",
    };
    let stages = crate::plan::admin::registry(
        name,
        &s.targets.hosts,
        args.skip_local,
        args.skip_remote,
        build,
    );
    let mut plan = Plan::command("registry", Some(name), None, s.targets.clone(), stages);
    if args.skip_remote {
        plan.connect.clear();
    }
    s.run(&plan)
}

//! One handler per command: resolve settings → plan → engine.

pub mod accessory;
pub mod accessory_files;
pub mod app;
pub mod audit;
pub mod build;
pub mod canary;
pub mod config;
pub mod deploy;
pub mod details;
pub mod docs;
pub mod help;
pub mod init;
pub mod lock;
pub mod proxy;
pub mod proxy_boot_config;
pub mod prune;
pub mod registry;
pub mod remove;
pub mod secrets;
pub mod server;
pub mod session;
pub mod status;
pub mod upgrade;

use clap::Parser;

use crate::cli::{Cli, Command, GlobalOptions};
use crate::config::secrets::Secrets;
use crate::config::{Config, LoadOptions};
use crate::error::{Error, ExitCode, Result};

/// Parse the command line, run the command and return the process exit code.
pub fn main() -> i32 {
    let args = crate::cli::options_first(crate::cli::export_types_of_build(
        std::env::args().collect(),
    ));
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return match err.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => ExitCode::Usage.code(),
            };
        }
    };
    match run(cli, 0) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("{err}");
            err.exit.code()
        }
    }
}

/// Load the configuration named by the global options.
pub fn load_config(global: &GlobalOptions) -> Result<(Config, LoadOptions)> {
    let mut opts =
        LoadOptions::from_process(global.config_file.clone(), global.destination.clone())
            .map_err(|e| Error::failure(format!("cannot read the working directory: {e}")))?;
    if let Some(dir) = session::capture_dir() {
        opts.cwd = dir;
    }
    let config = crate::config::load(&opts)?;
    if !global.quiet {
        for warning in &config.warnings {
            eprintln!("warning: {warning}");
        }
    }
    Ok((config, opts))
}

/// Compute the frozen release once for this run: `--version` > `VERSION` > a parent dray's
/// release (inside its hooks) > git. Warnings (uncommitted files, an ignored parent) go to stderr.
pub fn resolve_release(
    global: &GlobalOptions,
    config: &Config,
    opts: &LoadOptions,
) -> Result<crate::release::Resolved> {
    let env_version = opts.env.get("VERSION").cloned();
    let lookup = |name: &str| opts.env.get(name).cloned();
    let mut inputs =
        crate::release::ResolveInputs::new(&config.service, &config.repository, &opts.cwd);
    inputs.destination = config.destination.as_deref();
    inputs.flag_version = global.version.as_deref();
    inputs.env_version = env_version.as_deref();
    inputs.env = &lookup;
    inputs.builder_context = config.builder.context.is_some();
    let resolved = crate::release::resolve(&inputs)?;
    if !global.quiet {
        for warning in &resolved.warnings {
            eprintln!("warning: {warning}");
        }
    }
    Ok(resolved)
}

/// Read the secrets files of a loaded configuration.
pub fn load_secrets(config: &Config, opts: &LoadOptions) -> Result<Secrets> {
    let secrets = Secrets::load(
        std::path::Path::new(&config.secrets_path),
        config.destination.as_deref(),
        &opts.cwd,
        &opts.template_env(),
    )?;
    Ok(secrets)
}

impl crate::error::Diagnostic for crate::config::secrets::SecretsError {
    fn hint(&self) -> Option<String> {
        match self {
            crate::config::secrets::SecretsError::Missing { key, .. } => Some(format!(
                "add `{key}=...` to one of the files, or remove it from the configuration"
            )),
            crate::config::secrets::SecretsError::Inline { hint, .. } => hint.clone(),
            _ => None,
        }
    }
}

/// `--canary` and `--canary-allow` of a deploy-like command.
fn canary_request(args: &crate::cli::DeployArgs) -> Option<canary::CanaryRequest> {
    args.canary.map(|percent| canary::CanaryRequest {
        percent,
        allow: args.canary_allow.clone(),
    })
}

/// Run one parsed command line; `depth` counts alias expansions.
pub fn run(cli: Cli, depth: usize) -> Result<()> {
    match cli.command {
        Command::Version => {
            println!("{}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Config => {
            let (config, opts) = load_config(&cli.global)?;
            let resolved = resolve_release(&cli.global, &config, &opts)?;
            let (tree, _) = crate::config::load::load_tree(&opts)?;
            print!(
                "{}",
                config::render(&config, &resolved.release.version, &tree)
            );
            Ok(())
        }
        Command::Secrets(sub) => secrets::run(&cli.global, &sub),
        Command::Setup(args) => deploy::run(
            &cli.global,
            &deploy::DeployRequest {
                kind: crate::plan::PlanKind::Setup,
                skip_push: args.skip_push,
                no_cache: args.no_cache,
                no_revert: args.no_revert,
                canary: canary_request(&args),
            },
        ),
        Command::Deploy(args) => deploy::run(
            &cli.global,
            &deploy::DeployRequest {
                kind: crate::plan::PlanKind::Deploy,
                skip_push: args.skip_push,
                no_cache: args.no_cache,
                no_revert: args.no_revert,
                canary: canary_request(&args),
            },
        ),
        Command::Redeploy(args) => deploy::run(
            &cli.global,
            &deploy::DeployRequest {
                kind: crate::plan::PlanKind::Redeploy,
                skip_push: args.skip_push,
                no_cache: args.no_cache,
                no_revert: args.no_revert,
                canary: canary_request(&args),
            },
        ),
        Command::Rollback {
            rollback_version,
            no_revert,
        } => {
            let mut global = cli.global.clone();
            global.version = Some(match rollback_version {
                Some(v) => v,
                None => deploy::previous_release(&cli.global)?,
            });
            deploy::run(
                &global,
                &deploy::DeployRequest {
                    kind: crate::plan::PlanKind::Rollback,
                    skip_push: true,
                    no_cache: false,
                    no_revert,
                    canary: None,
                },
            )
        }
        Command::Init { .. } => {
            let cwd = std::env::current_dir()
                .map_err(|e| Error::failure(format!("cannot read the working directory: {e}")))?;
            init::run(&cwd)
        }
        Command::Alias(args) => run_alias(&cli.global, args, depth),
        Command::Lock(sub) => lock::run(&cli.global, &sub),
        Command::Canary(sub) => {
            // An alias called `canary` in a Kamal configuration wins, as `status` does.
            let aliased = load_config(&cli.global)
                .map(|(c, _)| c.aliases.iter().any(|(n, _)| n == "canary"))
                .unwrap_or(false);
            if aliased {
                run_alias(&cli.global, vec!["canary".into()], depth)
            } else {
                canary::run(&cli.global, &sub)
            }
        }
        Command::Server(sub) => server::run(&cli.global, &sub),
        Command::Audit => audit::run(&cli.global),
        Command::Details => details::run(&cli.global),
        Command::Status => {
            // A Kamal configuration may define an alias called `status`: it wins, as in Kamal.
            let aliased = load_config(&cli.global)
                .map(|(c, _)| c.aliases.iter().any(|(n, _)| n == "status"))
                .unwrap_or(false);
            if aliased {
                run_alias(&cli.global, vec!["status".into()], depth)
            } else {
                status::run(&cli.global)
            }
        }
        Command::Remove { confirmed } => remove::run(&cli.global, confirmed),
        Command::App(sub) => app::run(&cli.global, &sub),
        Command::Accessory(sub) => accessory::run(&cli.global, &sub),
        Command::Prune(sub) => prune::run(&cli.global, &sub),
        Command::Proxy(sub) => proxy::run(&cli.global, &sub),
        Command::Registry(sub) => registry::run(&cli.global, &sub),
        Command::Build(sub) => build::run(&cli.global, &sub),
        Command::Docs { section } => docs::run(section.as_deref()),
        Command::Help { command } => help::run(&command),
        Command::Upgrade(_) => upgrade::run(),
    }
}

/// `aliases:` of the configuration file (and destination file) as written, unvalidated.
fn aliases_as_written(global: &GlobalOptions) -> Option<Vec<(String, String)>> {
    let opts =
        LoadOptions::from_process(global.config_file.clone(), global.destination.clone()).ok()?;
    let (tree, _) = crate::config::load::load_tree(&opts).ok()?;
    match &tree.get("aliases")?.value {
        crate::config::node::Value::Map(pairs) => Some(
            pairs
                .iter()
                .filter_map(|(k, v)| Some((k.as_key()?, v.value.scalar_string()?)))
                .collect(),
        ),
        _ => None,
    }
}

/// Expand an alias from `aliases:` and run the command it names, with the extra arguments
/// appended (Kamal's `Kamal::Cli::Alias::Command`).
fn run_alias(global: &GlobalOptions, args: Vec<String>, depth: usize) -> Result<()> {
    let Some(name) = args.first() else {
        return Err(Error::usage("no command given"));
    };
    let unknown = || {
        Error::usage(format!("unknown command `{name}`"))
            .with_hint("run `dray --help` for the commands, or define it under `aliases:`")
    };
    let aliases = match load_config(global) {
        Ok((config, _)) => config.aliases,
        // A configuration that is only whole with a destination (`require_destination`, the
        // servers in the destination files) still has its aliases (`staging_deploy: deploy -d
        // staging`), as in Kamal: read them from the file as written.
        Err(err) => aliases_as_written(global)
            .ok_or(err)
            .map_err(|_| unknown())?,
    };
    let Some((_, line)) = aliases.iter().find(|(n, _)| n == name) else {
        return Err(unknown());
    };
    let line = line.clone();
    let line = &line;
    if depth > 8 {
        return Err(Error::usage(format!("alias `{name}` expands into itself")));
    }
    let mut argv = vec!["dray".to_string()];
    argv.extend(
        split_words(line).ok_or_else(|| {
            Error::usage(format!("alias `{name}`: unbalanced quotes in `{line}`"))
        })?,
    );
    argv.extend(args.iter().skip(1).cloned());
    // Global options given before the alias name apply to the expansion too.
    argv.extend(global_args(global));
    let argv = crate::cli::options_first(crate::cli::export_types_of_build(argv));
    let cli = Cli::try_parse_from(&argv).map_err(|e| Error::usage(e.to_string()))?;
    run(cli, depth + 1)
}

fn global_args(g: &GlobalOptions) -> Vec<String> {
    let mut out = Vec::new();
    if g.config_file.as_os_str() != "config/deploy.yml" {
        out.push("-c".into());
        out.push(g.config_file.display().to_string());
    }
    if let Some(d) = &g.destination {
        out.push("-d".into());
        out.push(d.clone());
    }
    if let Some(v) = &g.version {
        out.extend(["--version".into(), v.clone()]);
    }
    if g.primary {
        out.push("--primary".into());
    }
    if let Some(h) = &g.hosts {
        out.extend(["--hosts".into(), h.clone()]);
    }
    if let Some(r) = &g.roles {
        out.extend(["--roles".into(), r.clone()]);
    }
    if g.skip_hooks {
        out.push("--skip-hooks".into());
    }
    if g.lock_wait {
        out.push("--lock-wait".into());
    }
    if g.break_stale_lock {
        out.push("--break-stale-lock".into());
    }
    if g.lock_wait_timeout != 900 {
        out.extend([
            "--lock-wait-timeout".into(),
            g.lock_wait_timeout.to_string(),
        ]);
    }
    if g.lock_wait_interval != 15 {
        out.extend([
            "--lock-wait-interval".into(),
            g.lock_wait_interval.to_string(),
        ]);
    }
    if g.verbose {
        out.push("-v".into());
    }
    if g.quiet {
        out.push("-q".into());
    }
    if g.dry_run {
        out.push("--dry-run".into());
    }
    if g.output == crate::cli::OutputFormat::Json {
        out.extend(["--output".into(), "json".into()]);
    }
    out
}

/// Split a command line into words as a POSIX shell would (quotes, backslashes), without
/// expansions, as Ruby's `Shellwords.shellsplit`. `None` when quotes are unbalanced.
pub fn split_words(line: &str) -> Option<Vec<String>> {
    crate::shell::shellsplit(line)
}

/// Ask `question` on the terminal; `false` without one (a script must pass `-y`).
pub(crate) fn confirm(question: &str) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    answer.trim() == "y"
}

/// Kamal's `KAMAL.hosts`: the hosts of the `--hosts`/`--roles`/`--primary` selection when one
/// is given, else every host of the configuration (roles', then accessories').
pub(crate) fn all_targeted_hosts(s: &session::Session) -> Vec<String> {
    let g = s.global;
    if g.hosts.is_some() || g.roles.is_some() || g.primary {
        s.targets.hosts.clone()
    } else {
        s.config.all_hosts().into_iter().map(String::from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#"app exec -i --reuse "bin/rails console""#),
            Some(vec![
                "app".into(),
                "exec".into(),
                "-i".into(),
                "--reuse".into(),
                "bin/rails console".into()
            ])
        );
        assert_eq!(
            split_words("a 'b c' d\\ e"),
            Some(vec!["a".into(), "b c".into(), "d e".into()])
        );
        assert_eq!(split_words("a 'b"), None);
    }
}

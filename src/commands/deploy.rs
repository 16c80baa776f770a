//! `dray deploy`, `redeploy` and `rollback`: resolve the release once, build the plan, and
//! (for now) print it with `--dry-run`.

use crate::cli::{GlobalOptions, OutputFormat};
use crate::error::{Error, Result};
use crate::plan::{build_plan, Filters, Plan, PlanInputs, PlanKind, Step, Targets};

use super::{load_config, load_secrets, resolve_release};

/// What the deploy-like commands were asked.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// The command.
    pub kind: PlanKind,
    /// `--skip-push`.
    pub skip_push: bool,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--output`.
    pub output: OutputFormat,
}

/// Run `deploy`, `redeploy` or `rollback`.
pub fn run(global: &GlobalOptions, req: &DeployRequest) -> Result<()> {
    let (config, opts) = load_config(global)?;
    let resolved = resolve_release(global, &config, &opts)?;
    if req.skip_push && global.version.is_none() && !opts.env.contains_key("VERSION") {
        // Kamal allows it (the git version is pulled); say what will be pulled.
        if !global.quiet {
            eprintln!(
                "warning: --skip-push without --version pulls {}, which must already be in the registry",
                resolved.release.image
            );
        }
    }
    let targets = Targets::resolve(
        &config,
        &Filters {
            hosts: global.hosts.as_deref(),
            roles: global.roles.as_deref(),
            primary: global.primary,
        },
    )?;
    let secrets = load_secrets(&config, &opts)?;
    check_secrets(&config, &targets, &secrets, req)?;
    let plan = build_plan(&PlanInputs {
        kind: req.kind,
        config: &config,
        resolved: &resolved,
        targets: &targets,
        skip_push: req.skip_push,
        no_cache: req.no_cache,
        skip_hooks: global.skip_hooks,
        secrets: &secrets,
        lock_inherited: opts.env.get("KAMAL_LOCK").is_some_and(|v| v == "true"),
        buildx: false,
    });
    if !req.dry_run {
        return execute(global, req, &config, &secrets, &plan, &opts.cwd);
    }
    match req.output {
        OutputFormat::Json => println!("{}", plan_json(&plan)),
        OutputFormat::Human => print!("{}", plan_text(&plan)),
    }
    Ok(())
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

/// Which hooks show their output (Kamal's `hooks_output`, overridden by `-v`/`-q`).
fn hooks_showing_output(global: &GlobalOptions, config: &crate::config::Config) -> Vec<String> {
    use crate::config::model::{HookOutputLevel, HOOK_NAMES};
    HOOK_NAMES
        .iter()
        .filter(|h| {
            if global.verbose {
                return true;
            }
            if global.quiet {
                return false;
            }
            config.hook_output(h) == Some(HookOutputLevel::Verbose)
        })
        .map(|h| h.to_string())
        .collect()
}

/// Run the plan with the engine; ctrl-c once stops new work (the lock is released), twice aborts.
fn execute(
    global: &GlobalOptions,
    req: &DeployRequest,
    config: &crate::config::Config,
    secrets: &crate::config::secrets::Secrets,
    plan: &Plan,
    root: &std::path::Path,
) -> Result<()> {
    use crate::report::{HumanReporter, JsonReporter, Reporter, Verbosity};
    let verbosity = if global.quiet {
        Verbosity::Quiet
    } else if global.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let reporter: Box<dyn Reporter> = match req.output {
        OutputFormat::Json => Box::new(JsonReporter),
        OutputFormat::Human => {
            let human = HumanReporter::new(verbosity, hooks_showing_output(global, config));
            // The live view only where a person watches: stderr is a terminal, not -v/-q.
            let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
            if tty && verbosity == Verbosity::Normal && std::env::var_os("CI").is_none() {
                Box::new(crate::report::live::LiveReporter::new(human))
            } else {
                Box::new(human)
            }
        }
    };
    let remote = std::sync::Arc::new(
        crate::remote::SshRemote::new(crate::remote::SshOptions::from_config(config, root))
            .map_err(Error::from)?,
    );
    let mut engine = crate::engine::Engine::new(
        plan,
        config,
        secrets,
        remote,
        root.to_path_buf(),
        crate::engine::Emitter::new(reporter),
    );
    engine.no_cache = req.no_cache;
    if global.lock_wait {
        engine.lock_wait = Some(crate::lock::LockWait {
            timeout: std::time::Duration::from_secs(global.lock_wait_timeout),
            interval: std::time::Duration::from_secs(global.lock_wait_interval),
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::failure(format!("cannot start the runtime: {e}")))?;
    let cancel = engine.cancel_handle();
    let outcome = runtime.block_on(async {
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let mut signals = 0;
            loop {
                tokio::select! {
                    r = tokio::signal::ctrl_c() => if r.is_err() { break },
                    _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {},
                }
                signals += 1;
                if signals == 1 {
                    eprintln!("interrupted: finishing what is in flight, then releasing the lock (ctrl-c again to abort)");
                    cancel.cancel();
                } else {
                    std::process::exit(crate::error::ExitCode::Interrupted.code());
                }
            }
        });
        engine.run().await
    });
    match outcome.error {
        None => Ok(()),
        Some(message) => Err(Error::failure(message).with_exit(outcome.exit)),
    }
}

/// The plan as one JSON document; secret values are redacted.
pub fn plan_json(plan: &Plan) -> String {
    let mut value = match serde_json::to_value(plan) {
        Ok(v) => v,
        Err(e) => return format!("{{\"error\": \"{e}\"}}"),
    };
    redact_json(&mut value);
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if map.get("secret") == Some(&serde_json::Value::Bool(true)) {
                map.insert(
                    "value".into(),
                    serde_json::Value::String("[REDACTED]".into()),
                );
            }
            map.values_mut().for_each(redact_json);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

/// The plan as text: stages in order, each hook with its environment, each host's commands.
pub fn plan_text(plan: &Plan) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let r = &plan.release;
    let _ = writeln!(
        out,
        "plan: {} {} (version from {})",
        plan.command.name(),
        r.version,
        plan.version_source
    );
    let _ = writeln!(out, "image: {}", r.image);
    let _ = writeln!(out, "hosts: {}", plan.targets.hosts.join(", "));
    let _ = writeln!(out, "roles: {}", plan.targets.roles.join(", "));
    for (i, stage) in plan.stages.iter().enumerate() {
        let _ = writeln!(out, "\n{}. {}", i + 1, stage.name);
        for step in &stage.steps {
            match step {
                Step::Hook(h) => {
                    let _ = writeln!(out, "  hook {} ({})", h.hook, h.path);
                    for var in &h.env {
                        let value = if var.secret {
                            "[REDACTED]"
                        } else {
                            var.value.as_str()
                        };
                        let _ = writeln!(out, "    {}={}", var.name, value);
                    }
                }
                Step::Local(l) => {
                    let _ = writeln!(out, "  local: {}", l.purpose);
                    for c in &l.commands {
                        let _ = writeln!(out, "    $ {}", c.line);
                    }
                }
                Step::Hosts(h) => {
                    let _ = writeln!(out, "  {}", h.purpose);
                    for hc in &h.hosts {
                        for c in &hc.commands {
                            let _ = writeln!(out, "    [{}] $ {}", hc.host, c.line);
                            if let Some(stdin) = &c.stdin {
                                let _ = writeln!(
                                    out,
                                    "    [{}]   stdin: {}",
                                    hc.host,
                                    stdin.replace('\n', "\\n")
                                );
                            }
                        }
                    }
                }
                Step::Boot(b) => {
                    let _ = writeln!(
                        out,
                        "  boot {} on {} (group {}) as {}",
                        b.role,
                        b.host,
                        b.group + 1,
                        b.container
                    );
                    for c in &b.commands {
                        let _ = writeln!(out, "    [{}] $ {}", b.host, c.line);
                        if let Some(stdin) = &c.stdin {
                            let _ = writeln!(
                                out,
                                "    [{}]   stdin: {}",
                                b.host,
                                stdin.replace('\n', "\\n")
                            );
                        }
                    }
                }
                Step::Wait(w) => {
                    let _ = writeln!(out, "  wait {}s", w.seconds);
                }
            }
        }
    }
    out
}

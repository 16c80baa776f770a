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
        return Err(
            Error::usage(format!("`{}` is not implemented yet", req.kind.name()))
                .with_hint("`--dry-run` prints the plan; running it comes with the engine"),
        );
    }
    match req.output {
        OutputFormat::Json => println!("{}", plan_json(&plan)),
        OutputFormat::Human => print!("{}", plan_text(&plan)),
    }
    Ok(())
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

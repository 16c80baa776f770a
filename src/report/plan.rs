//! `--dry-run`: the plan as text or one JSON document, secrets redacted, holes shown as their
//! tokens (`<old version>`, `<random hex 12>`, `<time>`). Every command line printed here is
//! sent as it is, holes filled.

use std::fmt::Write;

use crate::plan::{OnError, Plan, PlannedCommand, Step};

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

fn command(out: &mut String, host: &str, c: &PlannedCommand) {
    let mut flags = Vec::new();
    if let Some(h) = c.when {
        flags.push(format!("only with {}", h.token()));
    }
    if let Some(h) = c.unless {
        flags.push(format!("only without {}", h.token()));
    }
    match &c.on_error {
        OnError::Fail => {}
        OnError::Ignore => flags.push("failure ignored".into()),
        OnError::Tolerate(t) => flags.push(format!("ok if stderr says {t:?}")),
    }
    if let Some(cap) = &c.capture {
        flags.push(format!("output fills {}", cap.hole.token()));
    }
    if let Some(roles) = &c.reads_back {
        flags.push(format!(
            "its last lines read back what {} runs",
            roles.join(", ")
        ));
    }
    let flags = if flags.is_empty() {
        String::new()
    } else {
        format!("    # {}", flags.join("; "))
    };
    // A script's lines after the first are marked `>`, as a shell's continuation prompt.
    let text = c.line();
    let mut lines = text.split('\n');
    let _ = write!(out, "    [{host}] $ {}", lines.next().unwrap_or(""));
    for line in lines {
        let _ = write!(out, "\n    [{host}] > {line}");
    }
    let _ = writeln!(out, "{flags}");
    if let Some(stdin) = &c.stdin {
        let _ = writeln!(out, "    [{host}]   stdin: {}", stdin.replace('\n', "\\n"));
    }
}

/// The plan as text: stages in order, each hook with its environment, each host's commands.
pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    let sub = plan
        .subcommand
        .as_deref()
        .map(|s| format!(" {s}"))
        .unwrap_or_default();
    match (&plan.release, plan.version_source) {
        (Some(r), Some(source)) => {
            let _ = writeln!(
                out,
                "plan: {}{sub} {} (version from {source})",
                plan.command, r.version
            );
            let _ = writeln!(out, "image: {}", r.image);
        }
        (Some(r), None) => {
            let _ = writeln!(out, "plan: {}{sub} (version {})", plan.command, r.version);
        }
        (None, _) => {
            let _ = writeln!(out, "plan: {}{sub}", plan.command);
        }
    }
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
                    if let Some(dir) = &l.build_dir {
                        let _ = match dir {
                            crate::plan::BuildDir::CloneOfHead => writeln!(
                                out,
                                "    in a clean clone of HEAD ($TMPDIR/kamal-clones/…)"
                            ),
                            crate::plan::BuildDir::Context(c) => {
                                writeln!(out, "    in the project, context {c}")
                            }
                        };
                    }
                    for name in &l.secret_env {
                        let _ = writeln!(out, "    env {name}=[REDACTED]");
                    }
                    if let Some(eb) = &l.ensure_builder {
                        let _ =
                            writeln!(out, "    use the {} buildx builder {}:", eb.target, eb.name);
                        command(&mut out, &l.label, &eb.inspect);
                        let _ = writeln!(
                            out,
                            "    if that fails saying {}: remove it and create it:",
                            eb.missing_if
                                .iter()
                                .map(|m| format!("{m:?}"))
                                .collect::<Vec<_>>()
                                .join(" or ")
                        );
                        for c in eb.remove.iter().chain(&eb.create) {
                            command(&mut out, &l.label, c);
                        }
                        let _ = writeln!(out, "    then:");
                    }
                    for c in &l.commands {
                        command(&mut out, &l.label, c);
                    }
                }
                Step::Hosts(h) => {
                    let _ = writeln!(out, "  {}", h.purpose);
                    for hc in &h.hosts {
                        if let Some(t) = &h.tunnel {
                            let _ = writeln!(
                                out,
                                "    [{}] tunnel: ssh -O forward {}    # on the host's master, for these commands",
                                hc.host,
                                t.forward_arg()
                            );
                        }
                        for c in &hc.commands {
                            command(&mut out, &hc.host, c);
                        }
                        if let Some(t) = &h.tunnel {
                            let _ = writeln!(
                                out,
                                "    [{}] tunnel: ssh -O cancel {}    # closed whatever they did",
                                hc.host,
                                t.forward_arg()
                            );
                        }
                    }
                }
                Step::Lock(l) => {
                    let _ = writeln!(
                        out,
                        "  acquire the deploy lock on {}{}",
                        l.host,
                        match l.wait {
                            Some(w) => format!(
                                " (waiting up to {}s, every {}s)",
                                w.timeout_seconds, w.interval_seconds
                            ),
                            None => String::new(),
                        }
                    );
                    for c in &l.commands {
                        command(&mut out, &l.host, c);
                    }
                    let _ = writeln!(out, "    if held, read the holder:");
                    command(&mut out, &l.host, &l.status);
                    if !l.take_over.is_empty() {
                        let _ = writeln!(
                            out,
                            "    if its heartbeat is over {}s old, take it over:",
                            l.stale_after_seconds
                        );
                        for c in &l.take_over {
                            command(&mut out, &l.host, c);
                        }
                    }
                    if let Some(h) = &l.heartbeat {
                        let _ = writeln!(out, "    while held, every {}s:", h.interval_seconds);
                        command(&mut out, &l.host, &h.command);
                    }
                }
                Step::Unlock(u) => {
                    let _ = writeln!(out, "  release the deploy lock on {}", u.host);
                    command(&mut out, &u.host, &u.command);
                }
                Step::LockStatus(s) => {
                    let _ = writeln!(out, "  read the deploy lock on {}", s.host);
                    command(&mut out, &s.host, &s.command);
                }
                Step::Boot(b) => {
                    let _ = writeln!(
                        out,
                        "  boot {} on {} (group {}{}) as {}",
                        b.role,
                        b.host,
                        b.group + 1,
                        if b.parallel_roles {
                            ", roles in parallel"
                        } else {
                            ""
                        },
                        b.container
                    );
                    if let Some(c) = &b.before_barrier {
                        let _ = writeln!(out, "    before the primary-role barrier:");
                        command(&mut out, &b.host, c);
                        let _ = writeln!(out, "    once it opened:");
                    }
                    for c in &b.commands {
                        command(&mut out, &b.host, c);
                    }
                    if b.opens_barrier_when_ready {
                        let _ = writeln!(
                            out,
                            "    the primary-role barrier opens at its line {}, before the old version's stop",
                            crate::docker::boot::READY_MARKER
                        );
                    }
                    let _ = writeln!(out, "    if the connection is lost during the start:");
                    command(&mut out, &b.host, &b.if_start_lost);
                    if let Some(r) = &b.revert {
                        let _ = writeln!(
                            out,
                            "    if the release fails on another host, switch back to {}:",
                            crate::plan::Hole::VersionBefore.token()
                        );
                        for c in &r.commands {
                            command(&mut out, &r.host, c);
                        }
                    }
                }
                Step::Wait(w) => {
                    let _ = writeln!(out, "  wait {}s", w.seconds);
                }
                Step::Say(s) => {
                    let _ = writeln!(
                        out,
                        "  say, if any of {} answered {}: {}",
                        s.hosts.join(", "),
                        s.hole.token(),
                        s.text
                    );
                }
                Step::ReadBack(r) => {
                    let _ = writeln!(out, "  read back what each host runs");
                    for row in &r.rows {
                        if let Some(stage) = &row.read_by {
                            let _ = writeln!(
                                out,
                                "    [{}] {}: read by the {stage} trip; only where it did not finish:",
                                row.host, row.role
                            );
                        }
                        command(&mut out, &row.host, &row.command);
                    }
                }
                Step::Interactive(i) => {
                    let _ = writeln!(out, "  on this terminal (ssh -t)");
                    command(&mut out, &i.host, &i.command);
                }
            }
        }
    }
    out
}

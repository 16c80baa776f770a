//! The boot of a replicated role (`x-dray: replicas: { <role>: N }`) on one host: the replicas
//! are replaced **one at a time**, 2..N first and replica 1 (Kamal's exact name) last, so at
//! most one container more than N runs at any moment and Kamal's `docker ps --latest` reads
//! the plain version afterwards.
//!
//! Each replica `k` is a round of two round trips, [`start`] and [`settle`], as a single
//! container's boot ([`super::boot`]):
//!
//! - start: (first round only) rename every clashing replica of the version, write the env file
//!   (secrets on stdin), print the version running now, audit; then `docker run` replica `k`.
//! - settle, behind the proxy: one `kamal-proxy deploy` with a `--target` per replica — the new
//!   replicas booted so far and the old replicas not yet replaced (without the old replica `k`)
//!   — which waits for the new one's health check; then stop the old replica `k`. Without the
//!   proxy: Docker's health (or `readiness_delay`), then stop the old replica `k`.
//!
//! A failure in round `k` stops the new replica `k`, starts again the old replicas that earlier
//! rounds stopped, routes the proxy back to every old replica and stops the new replicas: the
//! host runs the old version alone, as after a failed single-container boot.
//!
//! The old version is the `<old version>` hole the first start prints; the old replicas are
//! found by name at run time (`<prefix>-$old[-r<j>]`, running ones only).

use crate::command::{CommandSpec, Secret};
use crate::shell::quote;

use super::app::{App, LogsOptions};
use super::audit::AuditLine;
use super::boot::{FAILED_MARKER, OLD_VERSION_MARKER, UNHEALTHY_MARKER};
use super::env_file;
use super::script::{container_id_script, sh, words};

/// A word in the deploy command standing for the `--target` flags built at run time.
const TARGETS: &str = "DRAYREPLICATARGETS";

/// What only the first round's start does: rename clashing replicas to
/// `<version>_replaced_<replaced_hex>[-r<j>]`, write the env file (`env_content`, on stdin).
#[derive(Debug)]
pub struct FirstRound<'s> {
    /// 16 random hex digits.
    pub replaced_hex: &'s str,
    /// The env file's content.
    pub env_content: Secret,
}

/// Round `replica`'s start. `first`: the first round also renames clashing replicas, writes
/// the env file and prints the running version.
pub fn start(
    app: &App<'_>,
    version: &str,
    replica: u32,
    hostname: &str,
    first: Option<FirstRound<'_>>,
    audit: &dyn Fn(String) -> AuditLine,
) -> CommandSpec {
    let config = app.config();
    let host = app.host();
    let name = app.replica_name(version, replica);
    let line = |message: String| super::audit::record(config, host, &audit(message)).to_shell();
    let mut script = String::from("set -e\n");
    let mut stdin = None;
    if let Some(first) = first {
        stdin = Some(first.env_content);
        let replaced = App::replaced_version(version, first.replaced_hex);
        for r in app.replica_order() {
            let clashing = app.replica_name(version, r);
            script.push_str(&format!(
                "if [ -n \"$({clash})\" ]; then\n  {audit}\n  docker rename {from} {to}\nfi\n",
                clash = container_id_script(&clashing),
                audit = line(format!("Renaming container {clashing} to {replaced}")),
                from = quote(&clashing),
                to = quote(&app.replica_name(&replaced, r)),
            ));
        }
        script.push_str(&format!(
            "{env_file}\nold=$({current} || true)\necho {marker}\"$old\"\n{audit_boot}\n",
            env_file =
                env_file::write(config, &app.role().name, host, Secret(Vec::new())).to_shell(),
            current = app.current_running_version().to_shell(),
            marker = quote(OLD_VERSION_MARKER),
            audit_boot = line(format!(
                "Booted app version {version} ({} replicas)",
                app.role().replicas
            )),
        ));
    }
    script.push_str(&format!(
        "{} > /dev/null",
        app.run_replica(version, Some(hostname), replica).to_shell()
    ));
    let mut cmd = sh(
        format!("start {} {name} on {host}", app.role().name),
        script,
    );
    cmd.stdin = stdin;
    cmd
}

/// Shell text: the name of old replica `replica` (`$old` holds the old version).
fn old_name(app: &App<'_>, replica: u32) -> String {
    let suffix = if replica > 1 {
        format!("-r{replica}")
    } else {
        String::new()
    };
    format!(
        "{}\"$old\"{}",
        quote(&format!("{}-", app.container_prefix())),
        if suffix.is_empty() {
            String::new()
        } else {
            quote(&suffix)
        }
    )
}

/// Shell text: the `name=^…$` filter of old replica `replica`.
fn old_filter(app: &App<'_>, replica: u32) -> String {
    let suffix = if replica > 1 {
        format!("-r{replica}$")
    } else {
        "$".to_string()
    };
    format!(
        "{}\"$old\"{}",
        quote(&format!("name=^{}-", app.container_prefix())),
        quote(&suffix)
    )
}

/// `docker stop` of the container(s) the script text `source` lists, quietly.
fn stop_quietly(app: &App<'_>, source: &str) -> String {
    let mut stop = vec!["xargs".to_string(), "docker".into(), "stop".into()];
    stop.extend(app.stop_args());
    format!(
        "{{ {source} | {} > /dev/null 2>&1 || true; }}",
        words(&stop)
    )
}

/// The role's `kamal-proxy deploy` of `version` with the word `$targets` for its targets.
fn deploy_to_targets(app: &App<'_>, version: &str) -> String {
    let role = app.role();
    let port = role.proxy.as_ref().map(|p| p.app_port).unwrap_or_default();
    super::proxy::deploy(app.config(), role, TARGETS, version, app.host())
        .map(|c| c.to_shell())
        .unwrap_or_default()
        .replace(&format!("--target={TARGETS}:{port}"), "$targets")
}

/// Shell text appending `--target=<id>:<port>` of the container `filter` finds (a quoted
/// `name=` filter) to `$targets`; `required`: fail when there is none.
fn add_target(app: &App<'_>, filter: &str, running_only: bool, required: Option<&str>) -> String {
    let port = app
        .role()
        .proxy
        .as_ref()
        .map(|p| p.app_port)
        .unwrap_or_default();
    let ls = if running_only {
        "docker ps"
    } else {
        "docker container ls --all"
    };
    let missing = match required {
        Some(why) => format!("[ -n \"$t\" ] || fail {}\n", quote(why)),
        None => String::new(),
    };
    format!(
        "t=$({ls} --filter {filter} --quiet | head -1)\n{missing}[ -z \"$t\" ] || targets=\"$targets --target=$t:{port}\"\n"
    )
}

/// Round `replica`'s settle: readiness (the proxy's deploy with every replica's target, or
/// Docker's health), then stop the old replica. `done`: the replicas earlier rounds replaced
/// (in order); `last`: the final round (it also removes older versions' assets and error
/// pages). `old` is the version that ran before (a hole filled at run time).
pub fn settle(
    app: &App<'_>,
    version: &str,
    replica: u32,
    done: &[u32],
    last: bool,
    old: &str,
) -> CommandSpec {
    let config = app.config();
    let role = app.role();
    let host = app.host();
    let name = app.replica_name(version, replica);
    let new_filter = |r: u32| quote(&format!("name=^{}$", app.replica_name(version, r)));
    let logs = app
        .logs(&LogsOptions {
            container_id: Some(name.clone()),
            lines: Some(20),
            ..Default::default()
        })
        .to_shell();
    // Undo the earlier rounds: the old replicas they stopped run again and take the traffic
    // back, then the new ones stop.
    let mut restore = String::new();
    if !done.is_empty() {
        restore.push_str("if [ -n \"$old\" ] && [ \"$old\" != ");
        restore.push_str(&quote(version));
        restore.push_str(" ]; then\n");
        for r in done {
            restore.push_str(&format!(
                "  docker start {} > /dev/null 2>&1 || true\n",
                old_name(app, *r)
            ));
        }
        if role.runs_proxy() {
            restore.push_str("  targets=\n");
            for r in app.replica_order() {
                for l in add_target(app, &old_filter(app, r), true, None).lines() {
                    restore.push_str(&format!("  {l}\n"));
                }
            }
            restore.push_str(&format!(
                "  [ -z \"$targets\" ] || {} > /dev/null 2>&1 || true\n",
                deploy_to_targets(app, old)
            ));
        }
        restore.push_str("fi\n");
        for r in done {
            restore.push_str(&format!(
                "{}\n",
                stop_quietly(app, &container_id_script(&app.replica_name(version, *r)))
            ));
        }
    }
    // An intermediate round's failure is read from its standard error.
    let to_stderr = if last { "" } else { " echo \"$1\" >&2;" };
    let script_fail = format!(
        "restore() {{\n{restore}true\n}}\n\
         fail() {{ echo {marker}\"$1\";{to_stderr} {logs} || true; {health} || true; {stop_new}; restore; exit 1; }}\n",
        marker = quote(FAILED_MARKER),
        health = app.health_log_named(&name).to_shell(),
        stop_new = stop_quietly(app, &container_id_script(&name)),
    );
    let read_state = super::boot::read_wait_state(&app.wait_state_named(&name).to_shell());
    let wait = if role.runs_proxy() {
        let mut targets = String::from("targets=\n");
        for r in std::iter::once(replica).chain(done.iter().copied()) {
            targets.push_str(&add_target(
                app,
                &new_filter(r),
                false,
                Some(&format!(
                    "failed to get endpoint for {} on {host}, did the container boot?",
                    app.replica_name(version, r)
                )),
            ));
        }
        let rest: Vec<u32> = app
            .replica_order()
            .into_iter()
            .filter(|r| *r != replica && !done.contains(r))
            .collect();
        if !rest.is_empty() {
            targets.push_str("if [ -n \"$old\" ]; then\n");
            for r in rest {
                for l in add_target(app, &old_filter(app, r), true, None).lines() {
                    targets.push_str(&format!("  {l}\n"));
                }
            }
            targets.push_str("fi\n");
        }
        format!(
            "{targets}\
             if ! out=$({deploy} 2>&1); then\n\
             \x20 case \"$out\" in *healthy*|*timeout*) echo {unhealthy} ;; esac\n\
             \x20 fail \"kamal-proxy deploy: $(printf '%s' \"$out\" | tail -n 3)\"\n\
             fi\n\
             {read_state}\n\
             if [ \"$state\" != running ] || [ \"$restarts\" != 0 ]; then\n\
             \x20 fail \"the container is ${{state:-gone}} (restarted $restarts times, exit code ${{code:-none}})\"\n\
             fi",
            deploy = deploy_to_targets(app, version),
            unhealthy = quote(UNHEALTHY_MARKER),
        )
    } else {
        super::boot::poll_ready(config, &read_state, &name)
    };
    let clean_up: String = if last {
        super::boot::clean_up_after_stop(config, role, version)
    } else {
        String::new()
    };
    let stop_old = format!(
        "[ -z \"$old\" ] || [ \"$old\" = {v} ] || {{ {stop}{clean_up}; }}",
        v = quote(version),
        stop = stop_quietly(
            app,
            &format!(
                "docker container ls --all --filter {} --quiet",
                old_filter(app, replica)
            )
        ),
    );
    sh(
        format!("wait for {} {name} on {host}", role.name),
        format!("old={}\n{script_fail}{wait}\n{stop_old}", quote(old)),
    )
}

/// `app start` of a replicated role: route the proxy to every running replica of `version`
/// (a hole filled at run time), in one `kamal-proxy deploy`; exit 1 when none runs.
pub fn route_all(app: &App<'_>, version: &str) -> CommandSpec {
    let mut script = format!("old={}\ntargets=\n", quote(version));
    for r in app.replica_order() {
        script.push_str(&add_target(app, &old_filter(app, r), true, None));
    }
    script.push_str(&format!(
        "[ -n \"$targets\" ] || exit 1\n{}",
        deploy_to_targets(app, version)
    ));
    sh(
        format!(
            "route {} to its replicas on {}",
            app.role().name,
            app.host()
        ),
        script,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::test_support::config_with;

    use crate::docker::test_support::audit_line as line;

    fn replicated() -> crate::config::Config {
        config_with(
            "service: app\nimage: app\nregistry:\n  server: localhost:5000\nbuilder:\n  arch: amd64\nservers:\n  web:\n    - 1.1.1.1\nproxy:\n  app_port: 3000\nx-dray:\n  replicas:\n    web: 3\n",
            None,
        )
    }

    #[test]
    fn replicas_boot_two_to_n_then_kamals_name_last() {
        let config = replicated();
        let role = config.role("web").expect("web");
        let app = App::new(&config, role, "1.1.1.1");
        assert_eq!(app.replica_order(), vec![2, 3, 1]);
        assert_eq!(app.replica_name("v1", 1), "app-web-v1");
        assert_eq!(app.replica_name("v1", 3), "app-web-v1-r3");
        let run = app.run_replica("v1", None, 2).to_shell();
        assert!(run.contains("--name app-web-v1-r2"), "{run}");
        assert!(run.contains("--label dray.replica=2"), "{run}");
        let run = app.run_replica("v1", None, 1).to_shell();
        assert!(!run.contains("dray.replica"), "{run}");
    }

    #[test]
    fn only_the_first_start_renames_writes_the_env_file_and_reads_the_old_version() {
        let config = replicated();
        let role = config.role("web").expect("web");
        let app = App::new(&config, role, "1.1.1.1");
        let round = FirstRound {
            replaced_hex: "abcd",
            env_content: Secret(b"S=1\n".to_vec()),
        };
        let first = start(&app, "v2", 2, "h", Some(round), &line);
        let shell = first.to_shell();
        assert!(shell.contains(OLD_VERSION_MARKER));
        assert!(shell.contains("app-web-v2_replaced_abcd-r3"), "{shell}");
        assert!(first.stdin.is_some());
        let later = start(&app, "v2", 3, "h", None, &line);
        assert!(!later.to_shell().contains(OLD_VERSION_MARKER));
        assert!(later.stdin.is_none());
    }

    #[test]
    fn settle_routes_to_new_and_remaining_old_replicas_then_stops_the_old_one() {
        let config = replicated();
        let role = config.role("web").expect("web");
        let app = App::new(&config, role, "1.1.1.1");
        let shell = settle(&app, "v2", 3, &[2], false, "v1").to_shell();
        assert!(shell.contains("$targets"), "{shell}");
        assert!(!shell.contains(TARGETS), "{shell}");
        assert!(shell.contains("name=^app-web-v2-r3$"), "{shell}");
        assert!(shell.contains("name=^app-web-v2-r2$"), "{shell}");
        // The old replica 1 still serves; old 3 is stopped after the switch.
        assert!(shell.contains("'-r3$'"), "{shell}");
        assert!(shell.contains("docker start"), "{shell}");
    }
}

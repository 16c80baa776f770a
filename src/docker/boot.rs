//! A role's boot on a host as **two** remote round trips instead of Kamal's dozen, each one
//! `sh -c` script composed from the single-command builders (so every word is still quoted once):
//!
//! 1. [`start`]: rename a clashing container, write the env file (secrets on stdin), print the
//!    version running now, audit, `docker run`.
//! 2. [`settle`]: wait for readiness on the host itself — `kamal-proxy deploy` for proxy roles,
//!    a bounded poll of Docker's health (or running for `readiness_delay`) otherwise — then stop
//!    the old version; on failure print the container's log tail and health log, stop the new
//!    container and exit non-zero, so the old one keeps serving.
//!
//! The scripts print marker lines the engine reads: `dray-old-version:<v>` and
//! `dray-failed:<reason>`, and `dray-unhealthy` when it did not become healthy.

use crate::command::{CommandSpec, Secret};
use crate::config::model::Config;
use crate::shell::quote;

use super::app::{App, LogsOptions};
use super::audit::{self, AuditLine};
use super::env_file;
use super::script::sh;

/// Prefix of the line carrying the version that ran before the boot.
pub const OLD_VERSION_MARKER: &str = "dray-old-version:";
/// Prefix of the line saying why the new container failed.
pub const FAILED_MARKER: &str = "dray-failed:";
/// The line saying that the new container did not become healthy (unhealthy, or not healthy
/// within `deploy_timeout`): raising `deploy_timeout` may help.
pub const UNHEALTHY_MARKER: &str = "dray-unhealthy";
/// The line a settle prints once the new container is ready, before the old one's stop
/// ([`settle_announcing_ready`]).
pub const READY_MARKER: &str = "dray-ready";

/// Round trip 1: clash rename, env file from stdin, old version, audit, `docker run`.
/// `audit` builds an audit line from a message (time and performer filled by the caller).
/// `preamble`: what a deploy folds in (its proxy boot and stale-container stop, see
/// [`Preamble`]), run after the reads; it may read `$old`, the version running before.
///
/// One shell and only the `docker` calls, `mkdir` (when a directory is missing), and the env
/// file's `cat`, `chmod` and `mv`: the old version is read once, before the clash rename (a
/// renamed current container's version is the renamed one, as a fresh read would say), and
/// `docker run` replaces the shell (`exec`).
///
/// [`prepare`] and [`run`] are its two halves, for a role that waits at the primary-role
/// barrier: the first before the barrier, the second once it opened.
pub fn start(
    app: &App<'_>,
    version: &str,
    hostname: &str,
    replaced_hex: &str,
    env_content: Secret,
    audit: &dyn Fn(String) -> AuditLine,
    preamble: Option<Preamble>,
) -> CommandSpec {
    let script = format!(
        "{}\n{}",
        prepare_script(app, version, replaced_hex, audit, preamble),
        run_script(app, version, hostname, audit, true),
    );
    let mut cmd = sh(
        format!(
            "start {} {} on {}",
            app.role().name,
            app.container_name(version),
            app.host()
        ),
        script,
    );
    cmd.stdin = Some(env_content);
    cmd
}

/// The first half of [`start`], for a role waiting at the primary-role barrier: what Kamal's
/// `Boot#run` does before `wait_at_barrier` (the old version read, a clashing container
/// renamed) after the `preamble` (the proxy and stale-container stages a deploy folds in,
/// which Kamal runs on every host before any boot). Prints the old version's marker. No
/// container starts and nothing is written for the new version, so a barrier that closes
/// leaves the host as Kamal's would.
pub fn prepare(
    app: &App<'_>,
    version: &str,
    replaced_hex: &str,
    audit: &dyn Fn(String) -> AuditLine,
    preamble: Option<Preamble>,
) -> CommandSpec {
    sh(
        format!(
            "prepare {} {} on {}",
            app.role().name,
            app.container_name(version),
            app.host()
        ),
        format!(
            "{}\necho {}\"$old\"",
            prepare_script(app, version, replaced_hex, audit, preamble),
            quote(OLD_VERSION_MARKER),
        ),
    )
}

/// The second half of [`start`] after [`prepare`], once the barrier opened: the env file (on
/// stdin), the audit line, `docker run` (Kamal's `start_new_version`).
pub fn run(
    app: &App<'_>,
    version: &str,
    hostname: &str,
    env_content: Secret,
    audit: &dyn Fn(String) -> AuditLine,
) -> CommandSpec {
    let mut cmd = sh(
        format!(
            "start {} {} on {}",
            app.role().name,
            app.container_name(version),
            app.host()
        ),
        format!(
            "set -e\n{}",
            run_script(app, version, hostname, audit, false)
        ),
    );
    cmd.stdin = Some(env_content);
    cmd
}

/// `set -e`, `$old`, the preamble, the clash rename.
fn prepare_script(
    app: &App<'_>,
    version: &str,
    replaced_hex: &str,
    audit: &dyn Fn(String) -> AuditLine,
    preamble: Option<Preamble>,
) -> String {
    let config = app.config();
    let replaced = App::replaced_version(version, replaced_hex);
    // The clash check is read with the old version, before the preamble: neither the proxy's
    // boot nor the stale containers' stop (stopped, not removed or renamed) changes it.
    let (current, preamble) = match preamble {
        None => (
            app.current_version_and_clash_assign("old", "dray_clash", version),
            String::new(),
        ),
        Some(p) => p.reads_and_script(app, version),
    };
    format!(
        "set -e\n\
         {current}\n\
         {preamble}\
         if [ -n \"$dray_clash\" ]; then\n  {audit_rename}\n  {rename}\n  [ \"$old\" != {v} ] || old={replaced_q}\nfi",
        audit_rename = audit::record_script(
            config,
            &audit(format!("Renaming container {version} to {replaced}"))
        ),
        rename = app.rename(version, replaced_hex).to_shell(),
        v = quote(version),
        replaced_q = quote(&replaced),
    )
}

/// The env file, the old version's marker (with `marker`: [`start`] prints it here), the
/// audit line, `exec docker run`.
fn run_script(
    app: &App<'_>,
    version: &str,
    hostname: &str,
    audit: &dyn Fn(String) -> AuditLine,
    marker: bool,
) -> String {
    let config = app.config();
    let marker = if marker {
        format!("echo {}\"$old\"\n", quote(OLD_VERSION_MARKER))
    } else {
        String::new()
    };
    format!(
        "{env_file}\n\
         {marker}\
         {audit_boot}\n\
         exec {run} > /dev/null",
        env_file = env_file::write_script(config, &app.role().name),
        audit_boot = audit::record_script(config, &audit(format!("Booted app version {version}"))),
        run = app.run(version, Some(hostname)).to_shell(),
    )
}

/// What a deploy folds into a role's start on a host (Kamal's proxy and stale-containers
/// stages, in their order, then the boot): the `kamal` network and, on the host's first role,
/// the proxy, then this role's running containers other than `$old` stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preamble {
    /// On the host's first role: `Some(runs_proxy)` (the network, and the proxy where a role
    /// on the host runs it); `None` on the others.
    proxy: Option<bool>,
}

/// The [`Preamble`] of a role's start: `proxy` is `Some(runs_proxy)` on the host's first role.
pub fn start_preamble(proxy: Option<bool>) -> Preamble {
    Preamble { proxy }
}

impl Preamble {
    /// The start's reads (the old version into `$old`, the clash into `$dray_clash`) and the
    /// script text that follows them.
    ///
    /// A non-replicated role reads everything before the first effect side by side (issue
    /// #19): the old version, the clash, the role's running containers (the stale stop's
    /// listing) and, without the proxy's boot, the network's creation (the new container's
    /// `docker run`, after all of it, needs it; the proxy boots after the reads, its
    /// network created beside them): one `docker` call's time, then the proxy's start and the
    /// stale containers' `docker stop`s only. A replicated role reads them one after the
    /// other ([`Self::serial`]).
    fn reads_and_script(self, app: &App<'_>, version: &str) -> (String, String) {
        if app.role().replicated() {
            return (
                app.current_version_and_clash_assign("old", "dray_clash", version),
                format!("{}\n", self.serial(app)),
            );
        }
        let network = self
            .proxy
            .map(|_| super::proxy::create_network(app.host()).to_shell());
        let reads = app.start_reads_assign(
            "old",
            "dray_clash",
            version,
            Some(("dray_stale", network.as_deref())),
        );
        let proxy = if self.proxy == Some(true) {
            format!("{}\n", super::proxy::start_script(app.config(), app.host()))
        } else {
            String::new()
        };
        (
            reads,
            format!("{proxy}{}\n", app.stale_stop_of("dray_stale", "old")),
        )
    }

    /// The preamble after the reads, one stage after the other: the network and proxy, then
    /// the stale stop (without the proxy the network is created beside the stale containers'
    /// listing and stop).
    fn serial(self, app: &App<'_>) -> String {
        let stale = app.stale_stop_script("old");
        match self.proxy {
            Some(true) => format!(
                "{}\n{stale}",
                super::proxy::boot_script(app.config(), app.host(), true)
            ),
            Some(false) => format!(
                "{{ {}; }} & dray_net=$!\n{stale}\nwait $dray_net",
                super::proxy::boot_script(app.config(), app.host(), false)
            ),
            None => stale,
        }
    }
}

/// Round trip 2: readiness on the host, then stop `old` (when it differs); on failure, the
/// diagnostics and a stop of the new container.
///
/// Readiness cannot be fooled by a container that crashes and is restarted by its restart
/// policy: at every check the container must be running and never have restarted. Without a
/// proxy it must then be healthy (Docker health check) or have run for `readiness_delay`; behind
/// the proxy, `kamal-proxy deploy` waits for its health check, and a container that restarted or
/// stopped meanwhile sends the traffic back to the old container before failing.
pub fn settle(app: &App<'_>, version: &str, old: Option<&str>) -> CommandSpec {
    settle_with(app, version, old, false)
}

/// [`settle`] that prints [`READY_MARKER`] once the new container is ready, before it stops
/// `old`: the engine opens the primary-role barrier at that line while the script goes on to
/// the stop, as Kamal's `Boot#run` releases the barrier before `stop_old_version` (the other
/// roles do not wait for the stop), in the one round trip.
pub fn settle_announcing_ready(app: &App<'_>, version: &str, old: &str) -> CommandSpec {
    settle_with(app, version, Some(old), true)
}

/// What follows the old container's stop, `; <script> || true` each: Kamal removes older
/// versions' assets and error pages once the old container stopped.
pub(super) fn clean_up_after_stop(
    config: &crate::config::Config,
    role: &crate::config::model::Role,
    version: &str,
) -> String {
    [
        super::assets::clean_up_script(config, role, version),
        config
            .error_pages_path
            .as_ref()
            .map(|_| super::proxy_files::clean_up_error_pages_script(config, version)),
    ]
    .into_iter()
    .flatten()
    .map(|c| format!("; {c} || true"))
    .collect()
}

fn stop_old_script(app: &App<'_>, version: &str, old: &str) -> String {
    let config = app.config();
    let role = app.role();
    let clean_up = clean_up_after_stop(config, role, version);
    format!(
        "[ -z \"$old\" ] || [ \"$old\" = {v} ] || {{ {stop} > /dev/null 2>&1 || true{clean_up}; }}",
        v = quote(version),
        stop = if role.replicated() {
            app.stop(Some(old)).to_shell()
        } else {
            app.stop_script(old)
        }
    )
}

fn settle_with(app: &App<'_>, version: &str, old: Option<&str>, announce: bool) -> CommandSpec {
    let config = app.config();
    let host = app.host();
    let role = app.role();
    let name = app.container_name(version);
    let flat = !role.replicated();
    // A non-replicated role's container is found by its exact name: `docker logs`, `inspect`
    // and `stop` take it directly, with no `ls | xargs` and no nested shell.
    let (logs, health, stop_new) = if flat {
        (
            format!("docker logs --tail 20 {} 2>&1", quote(&name)),
            format!(
                "docker inspect --type container --format {} {}",
                quote("{{json .State.Health}}"),
                quote(&name)
            ),
            app.stop_script(version),
        )
    } else {
        (
            app.logs(&LogsOptions {
                container_id: Some(name.clone()),
                lines: Some(20),
                ..Default::default()
            })
            .to_shell(),
            app.health_log(version).to_shell(),
            app.stop(Some(version)).to_shell(),
        )
    };
    let fail = format!(
        "fail() {{ echo {marker}\"$1\"; {logs} || true; {health} || true; {stop_new} > /dev/null 2>&1 || true; exit 1; }}",
        marker = quote(FAILED_MARKER),
    );
    // `state` prints: status, restart count, exit code, creation time, health (empty without a
    // check).
    let state = if flat {
        format!(
            "docker inspect --type container --format {} {}",
            quote(super::app::WAIT_STATE_FORMAT),
            quote(&name)
        )
    } else {
        app.wait_state_named(&name).to_shell()
    };
    let read_state = read_wait_state(&state);
    let wait = if role.runs_proxy() {
        const PLACEHOLDER: &str = "DRAYTARGETID";
        let deploy_to = |target: &str, v: &str| {
            super::proxy::deploy(config, role, PLACEHOLDER, v, host)
                .map(|c| c.to_shell())
                .unwrap_or_default()
                .replace(PLACEHOLDER, target)
        };
        let route_back = match old {
            Some(old) => format!(
                "old_id=$({find_old}) || old_id=\n\
                 \x20 old_id=${{old_id%%[!0-9a-f]*}}\n\
                 \x20 [ -z \"$old\" ] || [ -z \"$old_id\" ] || {deploy_old} > /dev/null 2>&1 || true\n",
                find_old = app.container_id(old).to_shell(),
                deploy_old = deploy_to("\"$old_id\"", old),
            ),
            None => String::new(),
        };
        format!(
            "id=$({find}) || id=\n\
             id=${{id%%[!0-9a-f]*}}\n\
             [ -n \"$id\" ] || fail {no_endpoint}\n\
             if ! out=$({deploy} 2>&1); then\n\
             \x20 case \"$out\" in *healthy*|*timeout*) echo {unhealthy_marker} ;; esac\n\
             \x20 fail \"kamal-proxy deploy: $(printf '%s' \"$out\" | tail -n 3)\"\n\
             fi\n\
             {read_state}\n\
             if [ \"$state\" != running ] || [ \"$restarts\" != 0 ]; then\n\
             \x20 {route_back}\
             \x20 fail \"the container is ${{state:-gone}} (restarted $restarts times, exit code ${{code:-none}}); traffic is back on the old container\"\n\
             fi",
            find = app.container_id(version).to_shell(),
            deploy = deploy_to("\"$id\"", version),
            unhealthy_marker = quote(UNHEALTHY_MARKER),
            no_endpoint = quote(&format!(
                "failed to get endpoint for {} on {host}, did the container boot?",
                role.name
            )),
        )
    } else {
        poll_ready(config, &read_state, &name)
    };
    // `old` may be a hole the engine fills at run time: whether it is empty or the new
    // version is decided on the host.
    let (set_old, stop_old) = match old {
        Some(old) => (
            format!("old={}\n", quote(old)),
            stop_old_script(app, version, old),
        ),
        None => (String::new(), "true".to_string()),
    };
    let ready = if announce {
        format!("echo {READY_MARKER}\n")
    } else {
        String::new()
    };
    sh(
        format!("wait for {} {} on {host}", role.name, name),
        format!("{set_old}{fail}\n{wait}\n{ready}{stop_old}"),
    )
}

/// How often [`poll_ready`] reads the container's state when `docker events` cannot tell it when
/// to: as often as the bare script a deploy is measured against (`scripts/bench`).
pub(crate) const POLL_SECONDS: &str = "0.1";

/// The shell that reads a readiness wait's state with `state` (a command printing
/// [`super::app::WAIT_STATE_FORMAT`]) into `state`, `restarts`, `code`, `created` and `health`.
pub(crate) fn read_wait_state(state: &str) -> String {
    format!(
        "set -- $({state} 2>/dev/null || true)\n\
         state=${{1:-}}; restarts=${{2:-0}}; code=${{3:-}}; created=${{4:-}}; health=${{5:-}}"
    )
}

/// A bounded wait until the container `name` (whose state `read_state`, from
/// [`read_wait_state`], reads) is ready: healthy (Docker health check), or running for
/// `readiness_delay`; `fail` (defined by the caller) otherwise.
///
/// Between two reads the script does not poll: one `docker events` call, replaying from the
/// container's creation, blocks until the container's health changes, it dies or it is removed
/// (each ends the wait at the next read), or until the time the next decision is due (the
/// deadline, or the end of `readiness_delay`). A healthy container is noticed as Docker records
/// it, and a wait costs three `docker` calls (read, events, read) instead of one `docker
/// inspect` per tenth of a second. Where `docker events` reports nothing (it failed, or the
/// container is not running yet), the next read follows after [`POLL_SECONDS`].
///
/// The clock is the kernel's uptime read with the shell's own `read` (`date +%s` where
/// `/proc/uptime` cannot be read); `date +%s` once more gives the offset to the epoch that
/// `docker events --until` takes.
pub(crate) fn poll_ready(config: &Config, read_state: &str, name: &str) -> String {
    format!(
        "clock() {{ if read -r now _ < /proc/uptime 2>/dev/null; then now=${{now%%.*}}; else now=$(date +%s); fi; }}\n\
         clock; deadline=$((now + {timeout})); since=; off=$(($(date +%s) - now))\n\
         woken() {{ {{ docker events --since \"$created\" --until $((off + $1)) --filter container={name} --filter event=die --filter event=destroy --filter event=health_status --format x 2>/dev/null & echo \"p:$!\"; wait; }} | {{ p=; e=; while read -r l; do case $l in p:*) p=${{l#p:}} ;; *) e=1 ;; esac; [ -z \"$p\" ] || [ -z \"$e\" ] || {{ kill \"$p\" 2>/dev/null; exit 0; }}; done; [ -n \"$e\" ]; }}; }}\n\
         while :; do\n\
         \x20 {read_state}\n\
         \x20 clock\n\
         \x20 [ -n \"$state\" ] || fail 'the container is gone'\n\
         \x20 [ \"$restarts\" = 0 ] || fail \"the container restarted $restarts times (exit code $code)\"\n\
         \x20 case \"$state\" in\n\
         \x20   running) ;;\n\
         \x20   created) since= ;;\n\
         \x20   *) fail \"the container is $state (exit code $code)\" ;;\n\
         \x20 esac\n\
         \x20 case \"$health\" in\n\
         \x20   healthy) [ \"$state\" = running ] && break ;;\n\
         \x20   unhealthy) echo {unhealthy_marker}; fail 'the container is unhealthy' ;;\n\
         \x20   starting) ;;\n\
         \x20   *) if [ \"$state\" = running ]; then [ -n \"$since\" ] || since=$now; [ $((now - since)) -ge {delay} ] && break; fi ;;\n\
         \x20 esac\n\
         \x20 [ \"$now\" -lt \"$deadline\" ] || {{ echo {unhealthy_marker}; fail \"not healthy within deploy_timeout ({timeout}s), last status $state${{health:+ $health}}\"; }}\n\
         \x20 due=$deadline; [ -z \"$since\" ] || [ $((since + {delay})) -ge \"$due\" ] || due=$((since + {delay}))\n\
         \x20 {{ [ \"$state\" = running ] && [ -n \"$created\" ] && woken \"$due\"; }} || sleep {poll} 2>/dev/null || sleep 1\n\
         done",
        timeout = config.deploy_timeout,
        poll = POLL_SECONDS,
        unhealthy_marker = quote(UNHEALTHY_MARKER),
        delay = config.readiness_delay,
        name = quote(name),
        read_state = read_state.replace('\n', "\n  "),
    )
}

/// The marker value in `output`, if present.
pub fn marker<'a>(output: &'a str, marker: &str) -> Option<&'a str> {
    output
        .lines()
        .find_map(|l| l.strip_prefix(marker))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::test_support::{base, write_stand_in_docker};

    use crate::docker::test_support::audit_line as line;

    #[test]
    fn start_carries_the_env_file_on_stdin_only() {
        let config = base();
        let role = config.role("web").expect("web");
        let app = App::new(&config, role, "1.1.1.1");
        let cmd = start(
            &app,
            "999",
            "h-1",
            "abcd",
            Secret(b"SECRET=shh\n".to_vec()),
            &line,
            None,
        );
        let shell = cmd.to_shell();
        assert!(!shell.contains("shh"));
        assert!(shell.contains("docker run"));
        assert!(shell.contains(OLD_VERSION_MARKER));
        assert_eq!(
            cmd.stdin.as_ref().map(|s| s.0.clone()),
            Some(b"SECRET=shh\n".to_vec())
        );
    }

    #[test]
    fn settle_polls_or_deploys_and_stops_the_old_version() {
        let config = base();
        let role = config.role("web").expect("web");
        let app = App::new(&config, role, "1.1.1.1");
        let shell = settle(&app, "999", Some("998")).to_shell();
        assert!(shell.contains("app-web-998"));
        assert!(shell.contains(FAILED_MARKER));
    }

    /// The script of a `sh -c` command, and whether it starts another shell or a pipeline.
    fn nested(cmd: &CommandSpec) -> Vec<&'static str> {
        let script = crate::docker::script::inner(cmd).expect("sh -c");
        ["sh -c", "| grep", "| xargs", "| head", "| while", "$(cat"]
            .into_iter()
            .filter(|p| script.contains(p))
            .collect()
    }

    #[test]
    fn start_and_settle_start_no_nested_shell_or_pipeline() {
        let config = base();
        for role in ["web", "workers"] {
            let role = config.role(role).expect("role");
            let app = App::new(&config, role, "1.1.1.1");
            // Without the proxy's first boot (its `run` fallback is Kamal's `echo $(cat …) |
            // xargs docker run`, started only when `docker container start` failed).
            let start_with = |proxy| {
                start(
                    &app,
                    "999",
                    "h-1",
                    "abcd",
                    Secret(Vec::new()),
                    &line,
                    Some(start_preamble(proxy)),
                )
            };
            let with_proxy = start_with(Some(true));
            assert!(crate::docker::script::inner(&with_proxy).is_some_and(|s| s
                .contains("until out=$(docker container start kamal-proxy 2>&1) || out=$(sh -c ")));
            let start = start_with(Some(false));
            assert_eq!(nested(&start), Vec::<&str>::new(), "start of {}", role.name);
            // `docker run` replaces the shell.
            assert!(crate::docker::script::inner(&start)
                .is_some_and(|s| s.contains("\nexec docker run ")));
            let settle = settle(&app, "999", Some("998"));
            assert_eq!(
                nested(&settle),
                Vec::<&str>::new(),
                "settle of {}",
                role.name
            );
            // The wait's clock is the shell's `read` of the uptime (`date` only without it, and
            // once for the epoch offset `docker events --until` takes).
            let text = crate::docker::script::inner(&settle).unwrap_or_default();
            if !role.runs_proxy() {
                assert!(text.contains("read -r now _ < /proc/uptime"));
                assert_eq!(text.matches("$(date").count(), 2);
            }
        }
    }

    #[test]
    fn start_reads_the_old_version_once_and_follows_a_clash_rename() {
        let config = base();
        let role = config.role("workers").expect("workers");
        let app = App::new(&config, role, "1.1.1.1");
        let shell = start(&app, "999", "h-1", "abcd", Secret(Vec::new()), &line, None).to_shell();
        assert_eq!(shell.matches("docker ps --latest").count(), 2, "{shell}");
        assert!(shell.contains("[ \"$old\" != 999 ] || old=999_replaced_abcd"));
    }

    #[test]
    fn the_old_version_is_read_without_docker_image_ls() {
        // `docker image ls` is the slowest `docker` call of the start; the `ancestor` filter
        // takes the latest image's reference directly.
        let config = base();
        let role = config.role("web").expect("web");
        let app = App::new(&config, role, "1.1.1.1");
        let shell = start(&app, "999", "h-1", "abcd", Secret(Vec::new()), &line, None).to_shell();
        assert!(!shell.contains("docker image ls"), "{shell}");
        assert!(
            shell.contains("--filter ancestor=dhh/app:latest &"),
            "{shell}"
        );
    }

    /// The start's two reads side by side, run by `sh` against a stand-in `docker`: the old
    /// version from the `latest` image's container, else the latest running one; the clash
    /// id when a container has the new name; both empty when the listings fail (nothing on
    /// standard output, as `docker` when the engine is down).
    #[test]
    fn the_old_version_and_the_clash_are_read_side_by_side() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = r#"#!/bin/sh
[ -z "$FAIL" ] || { echo 'Cannot connect to the Docker daemon' >&2; exit 1; }
case "$*" in
  *ancestor=*) [ -z "$A" ] || echo "a $A" ;;
  ps*) [ -z "$B" ] || echo "$B" ;;
  'container ls'*) sleep 0.2; [ -z "$C" ] || echo "c $C" ;;
esac
"#;
        write_stand_in_docker(dir.path(), fake);
        let config = base();
        let role = config.role("web").expect("web");
        let app = App::new(&config, role, "1.1.1.1");
        let script = format!(
            "set -e\n{}\necho \"$old|$dray_clash\"",
            app.current_version_and_clash_assign("old", "dray_clash", "999")
        );
        let run = |vars: &[(&str, &str)]| {
            let mut cmd = std::process::Command::new("sh");
            cmd.arg("-c")
                .arg(&script)
                .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()));
            for (k, v) in vars {
                cmd.env(k, v);
            }
            let out = cmd.output().expect("sh");
            assert!(out.status.success(), "{out:?}");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        assert_eq!(
            run(&[("A", "app-web-12"), ("B", "app-web-11"), ("C", "f00")]),
            "12|f00"
        );
        assert_eq!(run(&[("B", "app-web-11")]), "11|");
        assert_eq!(run(&[("C", "f00")]), "|f00");
        assert_eq!(run(&[]), "|");
        assert_eq!(run(&[("A", "app-web-12"), ("FAIL", "1")]), "|");
    }

    /// A deploy's start reads everything before its first effect side by side: the old
    /// version, the clash, the role's running containers and the network's creation. The
    /// stand-in `docker` makes each of the four wait until all four have started (so read one
    /// after the other, the first would give up after 5 s and the test fail), then the stale
    /// containers (running, not the old version) are stopped, and nothing else is listed.
    #[test]
    fn a_deploys_start_reads_the_stale_containers_and_creates_the_network_beside_the_old_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = r#"#!/bin/sh
log=$DRAY_TEST_DIR/calls
together() {
  : > "$DRAY_TEST_DIR/started.$1"
  i=0
  while [ "$(ls "$DRAY_TEST_DIR" | grep -c '^started\.')" -lt 4 ]; do
    i=$((i + 1)); [ "$i" -lt 500 ] || { echo "alone: $1" >> "$log"; exit 1; }
    sleep 0.01
  done
}
case "$*" in
  *'a {{.Names}}'*) together a; echo read-old >> "$log"; echo "a app-web-12" ;;
  *'c {{.ID}}'*) together c; echo read-clash >> "$log" ;;
  *'s {{.Names}}'*) together s; echo read-running >> "$log"; printf 's app-web-12\ns app-web-10\ns app-web-9\n' ;;
  'network create kamal') together n; echo network >> "$log"; echo "network id" ;;
  *) echo "$*" >> "$log" ;;
esac
"#;
        write_stand_in_docker(dir.path(), fake);
        let config = base();
        let role = config.role("web").expect("web");
        let app = App::new(&config, role, "1.1.1.1");
        let cmd = prepare(&app, "13", "abcd", &line, Some(start_preamble(Some(false))));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(crate::docker::script::inner(&cmd).expect("sh -c"))
            .current_dir(dir.path())
            .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
            .env("DRAY_TEST_DIR", dir.path())
            .output()
            .expect("sh");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("{OLD_VERSION_MARKER}12")
        );
        let calls = std::fs::read_to_string(dir.path().join("calls")).expect("calls");
        let calls: Vec<&str> = calls.lines().collect();
        let (reads, rest) = calls.split_at(4.min(calls.len()));
        let mut reads = reads.to_vec();
        reads.sort_unstable();
        assert_eq!(
            reads,
            ["network", "read-clash", "read-old", "read-running"],
            "{calls:?}"
        );
        // Every running container of the role but the old version's, after all the reads.
        assert_eq!(rest, ["stop app-web-10", "stop app-web-9"], "{calls:?}");
    }

    #[test]
    fn the_readiness_wait_blocks_on_docker_events_instead_of_polling() {
        let config = base();
        let role = config.role("workers").expect("workers");
        let app = App::new(&config, role, "1.1.1.1");
        let text = crate::docker::script::inner(&settle(&app, "999", Some("998")))
            .unwrap_or_default()
            .to_string();
        // One `docker events` from the container's creation, for what ends a wait, until the
        // next decision is due; a tenth-of-a-second poll only where it reports nothing.
        assert!(
            text.contains(
                "docker events --since \"$created\" --until $((off + $1)) --filter container=app-workers-999 --filter event=die --filter event=destroy --filter event=health_status"
            ),
            "{text}"
        );
        assert!(
            text.contains("woken \"$due\"; } || sleep 0.1 2>/dev/null || sleep 1\n"),
            "{text}"
        );
        assert_eq!(text.matches("docker inspect").count(), 2, "{text}");
    }

    /// The wait run by `sh` against a stand-in `docker` on PATH that records its calls: a
    /// container that turns healthy is noticed at the health event, with one read before and
    /// one after it, and no poll in between.
    #[test]
    fn the_readiness_wait_reads_the_state_twice_around_one_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let calls = dir.path().join("calls");
        // inspect: `starting` on the first read, `healthy` after; events: one health event
        // after 0.3 s, then it would stream on (the wait kills it).
        let fake = format!(
            "#!/bin/sh\necho \"$1\" >> {calls}\ncase $1 in\n\
             inspect) if [ -e {calls}.read ]; then h=healthy; else : > {calls}.read; h=starting; fi; echo \"running 0 0 2026-01-01T00:00:00.5Z $h\" ;;\n\
             events) sleep 0.3; echo x; exec sleep 30 ;;\n\
             esac\n",
            calls = calls.display()
        );
        write_stand_in_docker(dir.path(), &fake);
        let config = base();
        let role = config.role("workers").expect("workers");
        let app = App::new(&config, role, "1.1.1.1");
        let script = crate::docker::script::inner(&settle(&app, "999", None))
            .unwrap_or_default()
            .to_string();
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let started = std::time::Instant::now();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env("PATH", path)
            .output()
            .expect("sh");
        assert!(out.status.success(), "{out:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let calls = std::fs::read_to_string(&calls).expect("calls");
        assert_eq!(calls, "inspect\nevents\ninspect\n");
    }

    #[test]
    fn markers_are_read_back() {
        let out = "noise\ndray-old-version:abc\n";
        assert_eq!(marker(out, OLD_VERSION_MARKER), Some("abc"));
        assert_eq!(marker("dray-old-version:\n", OLD_VERSION_MARKER), Some(""));
    }
}

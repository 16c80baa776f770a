//! Canary releases through the proxy's rollout commands (kamal-proxy's `rollout deploy|set|stop`,
//! `internal/cmd/rollout_*.go`, which dray-proxy serves too): the command lines, the scripts of a
//! canary's start, promotion, abort and status on one host, and dray's record of the running
//! canary on the hosts.
//!
//! kamal-proxy sends a request to the rollout target when its `kamal-rollout` cookie's value is
//! in the `--list`, or when the value's FNV-1a hash falls in the `--percent`; a request without
//! the cookie always goes to the service's main target. An app must therefore set that cookie
//! (a user or session id) for a percentage canary to take effect.
//!
//! The record, `.kamal/apps/<service>[-<destination>]/dray-canary` on each canary host, holds
//! `key=value` lines (`version`, `role`, `percent`, `allow`) so that `dray canary
//! status|promote|abort` work from any machine.

use crate::command::CommandSpec;
use crate::config::model::{Config, Role};
use crate::shell::quote;

use super::app::App;
use super::boot::FAILED_MARKER;
use super::proxy::CONTAINER_NAME;
use super::script::{sh, words};

/// The cookie whose value decides the split (kamal-proxy's `RolloutCookieName`).
pub const COOKIE: &str = "kamal-rollout";

/// What the canary's record on a host says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryRecord {
    /// The canary's version.
    pub version: String,
    /// The role that runs it (the primary role).
    pub role: String,
    /// The share of cookie values routed to it, 0..=100.
    pub percent: u8,
    /// `kamal-rollout` cookie values always routed to it.
    pub allow: Vec<String>,
}

impl CanaryRecord {
    /// The record's text: `key=value` lines.
    pub fn text(&self) -> String {
        format!(
            "version={}\nrole={}\npercent={}\nallow={}\n",
            self.version,
            self.role,
            self.percent,
            self.allow.join(",")
        )
    }

    /// Read a record's text; `None` when it is empty or lacks the version, role or percent.
    pub fn parse(text: &str) -> Option<CanaryRecord> {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(|v| v.trim().to_string())
        };
        let version = field("version").filter(|v| !v.is_empty())?;
        let role = field("role").filter(|v| !v.is_empty())?;
        let percent = field("percent")?.parse().ok().filter(|p| *p <= 100)?;
        let allow = field("allow")
            .map(|a| {
                a.split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Some(CanaryRecord {
            version,
            role,
            percent,
            allow,
        })
    }
}

/// The record's file, relative to the SSH user's home.
pub fn record_file(config: &Config) -> String {
    format!(
        ".kamal/apps/{}/dray-canary",
        config.service_and_destination()
    )
}

/// Write `record` on `host`.
pub fn write_record(config: &Config, record: &CanaryRecord, host: &str) -> CommandSpec {
    let file = quote(&record_file(config));
    sh(
        format!("record the canary {} on {host}", record.version),
        format!(
            "mkdir -p \"$(dirname {file})\" && printf '%s' {} > {file}.tmp && mv {file}.tmp {file}",
            quote(&record.text())
        ),
    )
}

/// Print the record on `host` (nothing when there is none).
pub fn read_record(config: &Config, host: &str) -> CommandSpec {
    sh(
        format!("read the canary record on {host}"),
        format!("cat {} 2>/dev/null || true", quote(&record_file(config))),
    )
}

/// Remove the record on `host`.
pub fn remove_record(config: &Config, host: &str) -> CommandSpec {
    sh(
        format!("remove the canary record on {host}"),
        format!("rm -f {}", quote(&record_file(config))),
    )
}

/// `docker exec kamal-proxy kamal-proxy rollout <sub> <S-R[-D]>`.
fn rollout(config: &Config, role: &Role, sub: &str, purpose: String) -> CommandSpec {
    CommandSpec::new(purpose, "docker")
        .args(["exec", CONTAINER_NAME, "kamal-proxy", "rollout", sub])
        .arg(config.container_prefix(&role.name))
}

/// `kamal-proxy rollout deploy <S-R[-D]> --target=<target>:<port> --deploy-timeout=Ns
/// --drain-timeout=Ns`: the rollout target beside the main one, once it is healthy. `None` when
/// the role does not run behind the proxy.
pub fn deploy(config: &Config, role: &Role, target: &str, host: &str) -> Option<CommandSpec> {
    let proxy = role.proxy.as_ref()?;
    Some(
        rollout(
            config,
            role,
            "deploy",
            format!("deploy the {} canary to the proxy on {host}", role.name),
        )
        .arg(format!("--target={target}:{}", proxy.app_port))
        .arg(format!("--deploy-timeout={}s", config.deploy_timeout))
        .arg(format!("--drain-timeout={}s", config.drain_timeout)),
    )
}

/// `kamal-proxy rollout set <S-R[-D]> --percent=N [--list=a,b]`: the split.
pub fn set(config: &Config, role: &Role, percent: u8, allow: &[String], host: &str) -> CommandSpec {
    let mut cmd = rollout(
        config,
        role,
        "set",
        format!("route {percent}% to the {} canary on {host}", role.name),
    )
    .arg(format!("--percent={percent}"));
    if !allow.is_empty() {
        cmd = cmd.arg(format!("--list={}", allow.join(",")));
    }
    cmd
}

/// `kamal-proxy rollout stop <S-R[-D]>`: every request to the main target again.
pub fn stop(config: &Config, role: &Role, host: &str) -> CommandSpec {
    rollout(
        config,
        role,
        "stop",
        format!("stop the {} rollout on {host}", role.name),
    )
}

/// `docker container ls --all --filter name=^<name>$ --quiet | head -1` as script text.
fn find(app: &App<'_>, version: &str) -> String {
    format!("{} | head -1", app.container_id(version).to_shell())
}

/// Refuse a canary of the version the role already runs on the host.
pub fn check_not_running(app: &App<'_>, version: &str) -> CommandSpec {
    sh(
        format!(
            "check that {} does not run {version} on {}",
            app.role().name,
            app.host()
        ),
        format!(
            "current=$({} || true)\n[ \"$current\" != {v} ] || {{ echo {msg} >&2; exit 1; }}",
            app.current_running_version().to_shell(),
            v = quote(version),
            msg = quote(&format!(
                "{} already runs version {version} on {}: a canary needs a new version",
                app.role().name,
                app.host()
            )),
        ),
    )
}

/// After the canary's container started (`docker run`, [`super::boot::start`]): deploy it as the
/// rollout target (health-checked by the proxy), set the split, and check it is still running
/// and never restarted. On failure: the reason, the container's log tail, a stop of the canary
/// and an exit 1, so the old version alone serves.
pub fn start(app: &App<'_>, version: &str, percent: u8, allow: &[String]) -> CommandSpec {
    let config = app.config();
    let role = app.role();
    let host = app.host();
    const PLACEHOLDER: &str = "DRAYTARGETID";
    let deploy = deploy(config, role, PLACEHOLDER, host)
        .map(|c| c.to_shell().replace(PLACEHOLDER, "\"$id\""))
        .unwrap_or_else(|| "false".into());
    let logs = app
        .logs(&super::app::LogsOptions {
            container_id: Some(app.container_name(version)),
            lines: Some(20),
            ..Default::default()
        })
        .to_shell();
    let script = format!(
        "fail() {{ echo {marker}\"$1\"; {logs} || true; {stop} > /dev/null 2>&1 || true; {rm} > /dev/null 2>&1 || true; exit 1; }}\n\
         id=$({find})\n\
         [ -n \"$id\" ] || fail {no_container}\n\
         out=$({deploy} 2>&1) || fail \"kamal-proxy rollout deploy: $(printf '%s' \"$out\" | tail -n 3)\"\n\
         out=$({set} 2>&1) || {{ {rollout_stop} > /dev/null 2>&1 || true; fail \"kamal-proxy rollout set: $(printf '%s' \"$out\" | tail -n 3)\"; }}\n\
         set -- $({state} 2>/dev/null || true)\n\
         if [ \"${{1:-}}\" != running ] || [ \"${{2:-0}}\" != 0 ]; then\n\
         \x20 {rollout_stop} > /dev/null 2>&1 || true\n\
         \x20 fail \"the canary is ${{1:-gone}} (restarted ${{2:-0}} times); traffic is back on the old version\"\n\
         fi",
        marker = quote(FAILED_MARKER),
        stop = app.stop(Some(version)).to_shell(),
        rm = remove_container_script(app, version),
        find = find(app, version),
        no_container = quote(&format!(
            "the canary container {} did not start on {host}",
            app.container_name(version)
        )),
        set = set(config, role, percent, allow, host).to_shell(),
        rollout_stop = stop(config, role, host).to_shell(),
        state = app.state(version).to_shell(),
    );
    sh(
        format!(
            "deploy the {} canary {} on {host}",
            role.name,
            app.container_name(version)
        ),
        script,
    )
}

fn remove_container_script(app: &App<'_>, version: &str) -> String {
    format!("{} | xargs -r docker rm -f", find(app, version))
}

/// Promote the canary on the host: the proxy's main target becomes the canary's container
/// (`kamal-proxy deploy`, which drains the old one), the rollout stops, and every other running
/// container of the role stops.
pub fn promote(app: &App<'_>, version: &str, deploy_version: &str) -> CommandSpec {
    let config = app.config();
    let role = app.role();
    let host = app.host();
    const PLACEHOLDER: &str = "DRAYTARGETID";
    let deploy = super::proxy::deploy(config, role, PLACEHOLDER, deploy_version, host)
        .map(|c| c.to_shell().replace(PLACEHOLDER, "\"$id\""))
        .unwrap_or_else(|| "false".into());
    let mut stop_words = vec![
        "xargs".to_string(),
        "-r".into(),
        "docker".into(),
        "stop".into(),
    ];
    stop_words.extend(app.stop_args());
    let script = format!(
        "set -e\n\
         id=$({find})\n\
         [ -n \"$id\" ] || {{ echo {no_container} >&2; exit 1; }}\n\
         {deploy} > /dev/null\n\
         {rollout_stop} > /dev/null 2>&1 || true\n\
         {list} | while read v; do\n\
         \x20 [ -n \"$v\" ] && [ \"$v\" != {v} ] || continue\n\
         \x20 docker container ls --all --filter {prefix}\"$v\"'$' --quiet | {stop} > /dev/null 2>&1 || true\n\
         done",
        find = find(app, version),
        no_container = quote(&format!(
            "the canary container {} is gone on {host}: `dray canary abort` ends the canary",
            app.container_name(version)
        )),
        rollout_stop = stop(config, role, host).to_shell(),
        list = app.list_versions().to_shell(),
        v = quote(version),
        prefix = quote(&format!("name=^{}-", app.container_prefix())),
        stop = words(&stop_words),
    );
    sh(
        format!("promote the {} canary {version} on {host}", role.name),
        script,
    )
}

/// Abort the canary on the host: the rollout stops (every request to the old version), then,
/// after the in-flight requests had a moment, the canary's container is stopped and removed.
/// Each part tolerates what is already gone, so an abort after a half-started canary works.
pub fn abort(app: &App<'_>, version: &str) -> CommandSpec {
    let config = app.config();
    let role = app.role();
    let host = app.host();
    sh(
        format!("abort the {} canary {version} on {host}", role.name),
        format!(
            "{rollout_stop} > /dev/null 2>&1 || true\n\
             [ -z \"$({find})\" ] || sleep 1\n\
             {stop} > /dev/null 2>&1 || true\n\
             {rm} > /dev/null",
            rollout_stop = stop(config, role, host).to_shell(),
            find = find(app, version),
            stop = app.stop(Some(version)).to_shell(),
            rm = remove_container_script(app, version),
        ),
    )
}

/// The health of the role's containers on the host, one line per running version:
/// `<version> <status> <restarts> <exit code> [<health>]`, the canary's included (also when it
/// is no longer running).
pub fn status(app: &App<'_>, version: &str) -> CommandSpec {
    sh(
        format!("read the {} canary's health on {}", app.role().name, app.host()),
        format!(
            "s=$({canary} 2>/dev/null || true); echo {v} \"${{s:-gone}}\"\n\
             {list} | while read v; do\n\
             \x20 [ -n \"$v\" ] && [ \"$v\" != {v} ] || continue\n\
             \x20 echo \"$v\" $(docker container ls --all --filter {prefix}\"$v\"'$' --quiet | head -1 | xargs docker inspect --format {format} 2>/dev/null || true)\n\
             done",
            canary = app.state(version).to_shell(),
            v = quote(version),
            list = app.list_versions().to_shell(),
            prefix = quote(&format!("name=^{}-", app.container_prefix())),
            format = quote(super::app::STATE_FORMAT),
        ),
    )
}

/// One line of [`status`]'s output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionHealth {
    /// The version.
    pub version: String,
    /// Docker's status (`running`, `exited`, …), `gone` when there is no container.
    pub state: String,
    /// Restarts since it started.
    pub restarts: u64,
    /// Docker's health (`healthy`, `unhealthy`, `starting`), empty without a health check.
    pub health: String,
}

impl VersionHealth {
    /// Running, never restarted, and not unhealthy or still starting.
    pub fn is_healthy(&self) -> bool {
        self.state == "running"
            && self.restarts == 0
            && (self.health.is_empty() || self.health == "healthy")
    }

    /// Read [`status`]'s output.
    pub fn parse(text: &str) -> Vec<VersionHealth> {
        text.lines()
            .filter_map(|line| {
                let mut w = line.split_whitespace();
                let version = w.next()?.to_string();
                let state = w.next().unwrap_or("gone").to_string();
                let restarts = w.next().and_then(|r| r.parse().ok()).unwrap_or(0);
                let _exit = w.next();
                let health = w.next().unwrap_or("").to_string();
                Some(VersionHealth {
                    version,
                    state,
                    restarts,
                    health,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::test_support::{base, config_with, BASE};

    fn proxied() -> Config {
        config_with(&format!("{BASE}proxy:\n  host: example.com\n"), None)
    }

    #[test]
    fn rollout_commands_are_kamal_proxys() {
        let c = proxied();
        let web = c.role("web").expect("web");
        insta::assert_snapshot!(deploy(&c, web, "abc", "1.1.1.1").expect("proxy").to_shell(), @"docker exec kamal-proxy kamal-proxy rollout deploy app-web --target=abc:80 --deploy-timeout=30s --drain-timeout=30s");
        insta::assert_snapshot!(set(&c, web, 20, &[], "1.1.1.1").to_shell(), @"docker exec kamal-proxy kamal-proxy rollout set app-web --percent=20");
        insta::assert_snapshot!(set(&c, web, 0, &["alice".into(), "bob".into()], "1.1.1.1").to_shell(), @"docker exec kamal-proxy kamal-proxy rollout set app-web --percent=0 --list=alice,bob");
        insta::assert_snapshot!(stop(&c, web, "1.1.1.1").to_shell(), @"docker exec kamal-proxy kamal-proxy rollout stop app-web");
        assert!(deploy(&base(), base().role("workers").expect("w"), "x", "h").is_none());
    }

    #[test]
    fn record_round_trips() {
        let r = CanaryRecord {
            version: "v2".into(),
            role: "web".into(),
            percent: 20,
            allow: vec!["alice".into(), "bob".into()],
        };
        assert_eq!(CanaryRecord::parse(&r.text()), Some(r.clone()));
        let none = CanaryRecord {
            allow: Vec::new(),
            ..r
        };
        assert_eq!(CanaryRecord::parse(&none.text()), Some(none));
        assert_eq!(CanaryRecord::parse(""), None);
        assert_eq!(
            CanaryRecord::parse("version=v\nrole=web\npercent=101\n"),
            None
        );
    }

    #[test]
    fn health_lines_are_read() {
        let h = VersionHealth::parse("v2 running 0 0 healthy\nv1 running 0 0\nv3 gone\n");
        assert!(h[0].is_healthy() && h[1].is_healthy());
        assert!(!h[2].is_healthy());
        assert!(!VersionHealth::parse("v2 running 2 0")[0].is_healthy());
        assert!(!VersionHealth::parse("v2 running 0 0 unhealthy")[0].is_healthy());
    }

    #[test]
    fn scripts_leave_the_old_version_alone_on_failure() {
        let c = proxied();
        let web = c.role("web").expect("web");
        let app = App::new(&c, web, "1.1.1.1");
        let s = start(&app, "v2", 20, &[]).to_shell();
        assert!(s.contains("rollout deploy app-web"));
        assert!(s.contains("rollout set app-web --percent=20"));
        assert!(!s.contains("app-web-v1"));
        let a = abort(&app, "v2").to_shell();
        assert!(a.contains("rollout stop app-web"));
        assert!(a.contains("app-web-v2"));
        let p = promote(&app, "v2", "v2").to_shell();
        assert!(p.contains("kamal-proxy deploy app-web"));
        assert!(p.contains("rollout stop app-web"));
    }
}

//! The `kamal` network, the kamal-proxy container (`lib/kamal/commands/proxy.rb`, §8.2) and the
//! `kamal-proxy` calls for app roles (`lib/kamal/commands/app/proxy.rb`,
//! `configuration/proxy.rb`, §8.1).
//!
//! kamal-proxy flag values are [`Arg::Literal`](crate::command::Arg::Literal): they are host
//! names, paths and durations, where a remote `${VAR}` expansion would make no sense.

use std::net::Ipv6Addr;

use crate::command::CommandSpec;
use crate::config::model::{Config, Proxy, ProxyRun, Role};
use crate::shell::quote;

use super::app::option_args;
use super::script::sh;

/// The proxy container's name.
pub const CONTAINER_NAME: &str = "kamal-proxy";
/// The oldest kamal-proxy Kamal 2.12 boots, and the image version of the legacy form.
pub const MINIMUM_VERSION: &str = "v0.9.2";
/// Where the host's `.kamal/proxy/apps-config` is mounted in the proxy container.
pub const APPS_CONTAINER_DIRECTORY: &str = "/home/kamal-proxy/.apps-config";
/// The host directory holding per-app proxy files (error pages, certificates).
pub const APPS_DIRECTORY: &str = ".kamal/proxy/apps-config";
/// The ACME directory's CA roots (`x-dray: proxy: acme_ca_certs`) in an app's directory.
pub const ACME_CA_FILE: &str = "acme/ca.pem";

/// `docker network create kamal`.
pub fn create_network(host: &str) -> CommandSpec {
    CommandSpec::new(format!("create kamal network on {host}"), "docker")
        .args(["network", "create", "kamal"])
}

/// The `proxy.run` settings in force on `host`: those of the first role on it running the
/// proxy with `run` set, else of a proxied accessory on it (validation makes them identical).
pub fn run_config_for<'a>(config: &'a Config, host: &str) -> Option<&'a ProxyRun> {
    let roles = config
        .roles
        .iter()
        .filter(|r| r.host_names().any(|h| h == host))
        .filter_map(|r| r.proxy.as_ref());
    let accessories = config
        .accessories
        .iter()
        .filter(|a| a.hosts.iter().any(|h| h == host))
        .filter_map(|a| a.proxy.as_ref());
    roles.chain(accessories).find_map(|p| p.run.as_ref())
}

/// The fixed start of every proxy `docker run`.
fn run_base(purpose: String) -> CommandSpec {
    CommandSpec::new(purpose, "docker")
        .args(["run", "--name", CONTAINER_NAME, "--network", "kamal"])
        .args(["--detach", "--restart", "unless-stopped", "--volume"])
        .arg("kamal-proxy-config:/home/kamal-proxy/.config/kamal-proxy")
        .arg("--volume")
        .arg_raw(format!(
            "\"$PWD\"/{}",
            quote(&format!("{APPS_DIRECTORY}:{APPS_CONTAINER_DIRECTORY}"))
        ))
}

/// `[ip:]port` with IPv6 addresses bracketed.
fn publish(bind_ip: Option<&str>, port: u64, container_port: u64) -> String {
    match bind_ip {
        None => format!("{port}:{container_port}"),
        Some(ip) if ip.parse::<Ipv6Addr>().is_ok() => format!("[{ip}]:{port}:{container_port}"),
        Some(ip) => format!("{ip}:{port}:{container_port}"),
    }
}

/// `docker run` of the proxy container: with `proxy.run` the full command
/// (`… --publish 80:80 --publish 443:443 --log-opt max-size=10m [--expose=N] [options] IMAGE
/// kamal-proxy run [--debug] [--metrics-port N]`), without it Kamal's legacy form reading
/// `.kamal/proxy/{options,image,image_version,run_command}` through `xargs`.
pub fn run(run: Option<&ProxyRun>, host: &str) -> CommandSpec {
    let purpose = format!("run kamal-proxy on {host}");
    let Some(r) = run else {
        let base = run_base(String::new());
        return sh(
            purpose,
            format!(
                "echo $(cat .kamal/proxy/options 2> /dev/null || echo \"--publish 80:80 --publish 443:443 --log-opt max-size=10m\") $(cat .kamal/proxy/image 2> /dev/null || echo \"basecamp/kamal-proxy\"):$(cat .kamal/proxy/image_version 2> /dev/null || echo \"{MINIMUM_VERSION}\") $(cat .kamal/proxy/run_command 2> /dev/null || echo \"\") | xargs {}",
                base.to_shell()
            ),
        );
    };
    let mut cmd = run_base(purpose);
    if r.publish {
        let ips: Vec<Option<&str>> = if r.bind_ips.is_empty() {
            vec![None]
        } else {
            r.bind_ips.iter().map(|ip| Some(ip.as_str())).collect()
        };
        for ip in ips {
            cmd = cmd
                .arg("--publish")
                .arg(publish(ip, r.http_port, 80))
                .arg("--publish")
                .arg(publish(ip, r.https_port, 443));
        }
    }
    if !r.log_max_size.trim().is_empty() {
        cmd = cmd
            .arg("--log-opt")
            .arg(format!("max-size={}", r.log_max_size));
    }
    if let Some(port) = r.metrics_port {
        cmd = cmd.arg(format!("--expose={port}"));
    }
    cmd = option_args(cmd, &r.options);
    let image = match &r.registry {
        Some(reg) => format!("{reg}/{}:{}", r.repository, r.version),
        None => format!("{}:{}", r.repository, r.version),
    };
    cmd = cmd.arg(image).args(["kamal-proxy", "run"]);
    if r.debug {
        cmd = cmd.arg("--debug");
    }
    if let Some(port) = r.metrics_port {
        cmd = cmd.arg("--metrics-port").arg(port.to_string());
    }
    cmd
}

/// `docker container start kamal-proxy`.
pub fn start(host: &str) -> CommandSpec {
    CommandSpec::new(format!("start kamal-proxy on {host}"), "docker").args([
        "container",
        "start",
        CONTAINER_NAME,
    ])
}

/// `docker container stop kamal-proxy`.
pub fn stop(host: &str) -> CommandSpec {
    CommandSpec::new(format!("stop kamal-proxy on {host}"), "docker").args([
        "container",
        "stop",
        CONTAINER_NAME,
    ])
}

/// `proxy boot`: `docker container start kamal-proxy || <run>`.
pub fn boot(run_config: Option<&ProxyRun>, host: &str) -> CommandSpec {
    sh(
        format!("boot kamal-proxy on {host}"),
        format!(
            "docker container start {CONTAINER_NAME} || {}",
            run(run_config, host).to_shell()
        ),
    )
}

/// The proxy stage of a deploy as one round trip: the `kamal` network ("already exists" is
/// fine, as for Kamal) and, where a role needs it, the proxy, started or run. Two deploys
/// booting the same host's proxy race on its name (one creates it while the other's `run`
/// fails): the boot is retried up to 5 times, a second apart, and then finds it and starts it.
pub fn boot_batch(config: &Config, host: &str, runs_proxy: bool) -> CommandSpec {
    sh(
        format!("boot the proxy on {host}"),
        boot_script(config, host, runs_proxy),
    )
}

/// [`boot_batch`]'s script text, to run on its own or at the head of a boot's start: the
/// network, and where a role needs it the proxy. A running proxy costs one `docker container
/// start` (no nested shell: Kamal's `start || run` is split in two command substitutions, so
/// the `run` and its `cat`s and `xargs` start only when the start failed). Exits non-zero with
/// the engine's words on standard error when the proxy does not start.
pub fn boot_script(config: &Config, host: &str, runs_proxy: bool) -> String {
    let mut script = format!(
        "{} > /dev/null 2>&1 || true",
        create_network(host).to_shell()
    );
    if runs_proxy {
        script.push('\n');
        script.push_str(&start_script(config, host));
    }
    script
}

/// [`boot_script`]'s part after the network: the apps' config directory, then the proxy
/// container started (or run), tried up to 5 times a second apart.
pub fn start_script(config: &Config, host: &str) -> String {
    let dir = quote(APPS_DIRECTORY);
    format!(
        "{{ [ -d {dir} ] || {}; }} || exit 1\nn=0\n\
         until out=$({} 2>&1) || out=$({} 2>&1); do\n\
         \x20 n=$((n + 1))\n\
         \x20 [ \"$n\" -lt 5 ] || {{ echo {} >&2; printf '%s\\n' \"$out\" >&2; exit 1; }}\n\
         \x20 sleep 1\n\
         done",
        ensure_apps_config_directory(host).to_shell(),
        start(host).to_shell(),
        run(run_config_for(config, host), host).to_shell(),
        quote(&format!("kamal-proxy did not start on {host}:")),
    )
}

/// `proxy remove` on one host as one round trip: unless `force`, keep the proxy while apps are
/// still installed (`.kamal/apps/*`); else stop and remove its container, image and directory
/// (each failure ignored, as Kamal does).
pub fn remove_batch(host: &str, force: bool) -> CommandSpec {
    let keep = if force {
        String::new()
    } else {
        "apps=$(ls .kamal/apps 2>/dev/null | wc -l)\n\
         if [ \"$apps\" != 0 ]; then echo \"kamal-proxy kept: $apps app(s) still installed (use --force)\"; exit 0; fi\n"
            .to_string()
    };
    let steps = [
        stop(host),
        remove_container(host),
        CommandSpec::new(format!("remove kamal-proxy image on {host}"), "docker")
            .args(["image", "prune", "--all", "--force", "--filter"])
            .arg("label=org.opencontainers.image.title=kamal-proxy"),
        CommandSpec::new(format!("remove proxy directory on {host}"), "rm")
            .args(["-r", ".kamal/proxy"]),
    ]
    .iter()
    .map(|c| format!("{} > /dev/null 2>&1 || true\n", c.to_shell()))
    .collect::<String>();
    sh(
        format!("remove kamal-proxy on {host}"),
        format!("{keep}{steps}echo 'removed kamal-proxy'"),
    )
}

/// `docker container restart kamal-proxy`.
pub fn restart(host: &str) -> CommandSpec {
    CommandSpec::new(format!("restart kamal-proxy on {host}"), "docker").args([
        "container",
        "restart",
        CONTAINER_NAME,
    ])
}

/// `docker ps --filter name=^kamal-proxy$` (`proxy details`).
pub fn details(host: &str) -> CommandSpec {
    CommandSpec::new(format!("show kamal-proxy on {host}"), "docker")
        .args(["ps", "--filter"])
        .arg(format!("name=^{CONTAINER_NAME}$"))
}

/// What `proxy logs` reads: the proxy container's log lines.
#[derive(Debug, Clone, Default)]
pub struct ProxyLogs {
    /// Leave out `--timestamps`.
    pub skip_timestamps: bool,
    /// `--since`.
    pub since: Option<String>,
    /// `--tail`.
    pub lines: Option<u64>,
    /// `| grep`.
    pub grep: Option<String>,
    /// `--tail 10 --follow` (Kamal's `follow_logs`: `since` and `lines` do not apply).
    pub follow: bool,
}

/// `docker logs kamal-proxy [--timestamps] [--since S] [--tail N] 2>&1 [| grep G]`.
pub fn logs(host: &str, opts: &ProxyLogs) -> CommandSpec {
    let mut words = vec!["docker".to_string(), "logs".into(), CONTAINER_NAME.into()];
    if !opts.skip_timestamps {
        words.push("--timestamps".into());
    }
    if opts.follow {
        words.extend(["--tail".into(), "10".into(), "--follow".into()]);
    } else {
        if let Some(since) = &opts.since {
            words.extend(["--since".into(), since.clone()]);
        }
        let lines = opts
            .lines
            .or((opts.since.is_none() && opts.grep.is_none()).then_some(100));
        if let Some(n) = lines {
            words.extend(["--tail".into(), n.to_string()]);
        }
    }
    let mut script = format!("{} 2>&1", crate::shell::join(&words));
    if let Some(grep) = &opts.grep {
        script.push_str(&format!(" | grep {}", quote(grep)));
    }
    sh(format!("read kamal-proxy logs on {host}"), script)
}

/// `docker container prune --force --filter label=org.opencontainers.image.title=kamal-proxy`.
pub fn remove_container(host: &str) -> CommandSpec {
    CommandSpec::new(format!("remove kamal-proxy container on {host}"), "docker")
        .args(["container", "prune", "--force", "--filter"])
        .arg("label=org.opencontainers.image.title=kamal-proxy")
}

/// `mkdir -p .kamal/proxy/apps-config`.
pub fn ensure_apps_config_directory(host: &str) -> CommandSpec {
    CommandSpec::new(format!("create proxy apps-config on {host}"), "mkdir")
        .arg("-p")
        .arg(APPS_DIRECTORY)
}

/// The running proxy's image version:
/// `docker inspect kamal-proxy --format '{{.Config.Image}}' | awk -F: '{print $NF}'`.
pub fn version(host: &str) -> CommandSpec {
    sh(
        format!("read kamal-proxy version on {host}"),
        format!(
            "docker inspect {CONTAINER_NAME} --format {} | awk -F: {}",
            quote("{{.Config.Image}}"),
            quote("{print $NF}")
        ),
    )
}

/// Where `proxy upgrade` puts the new binary in the proxy container (the supervisor moves it
/// over `/usr/local/bin/dray-proxy` once it serves, or removes it when the handover failed).
pub const UPGRADE_STAGING: &str = "/tmp";
/// The binary's path in a dray-proxy image.
pub const DRAY_PROXY_BINARY: &str = "/usr/local/bin/dray-proxy";

/// The proxy image `proxy.run` names on a host, as a shell word (without `proxy.run`, Kamal's
/// legacy files under `.kamal/proxy`).
fn image_word(run: Option<&ProxyRun>) -> String {
    match run {
        Some(r) => quote(&match &r.registry {
            Some(reg) => format!("{reg}/{}:{}", r.repository, r.version),
            None => format!("{}:{}", r.repository, r.version),
        }),
        None => format!(
            "\"$(cat .kamal/proxy/image 2> /dev/null || echo basecamp/kamal-proxy):$(cat .kamal/proxy/image_version 2> /dev/null || echo {MINIMUM_VERSION})\""
        ),
    }
}

/// `proxy upgrade` on one host as one round trip. Where the container's PID 1 is dray-proxy's
/// supervisor: the new image's `dray-proxy` streamed into the running container (`docker
/// create` + `docker cp … - | docker cp - …`, the temporary container removed, nothing left
/// on the host) and `kamal-proxy supervisor upgrade`: the new binary takes over the listening
/// sockets and the saved routes, the old server drains (up to `drain_timeout` seconds) — no
/// connection refused or failed; a failure leaves the old server serving. Elsewhere (kamal-proxy,
/// a dray-proxy image without the supervisor, no container) the proxy is rebooted as Kamal's
/// `proxy reboot` does — stop, remove, run — with a message saying that drops connections.
pub fn upgrade_batch(run_config: Option<&ProxyRun>, host: &str, drain_timeout: u64) -> CommandSpec {
    let c = CONTAINER_NAME;
    let quiet = |cmd: CommandSpec| format!("{} > /dev/null 2>&1 || true", cmd.to_shell());
    let script = format!(
        "image={image}
if docker exec {c} kamal-proxy supervisor status > /dev/null 2>&1; then
  docker pull \"$image\" > /dev/null 2>&1 || true
  cid=$(docker create \"$image\") || {{ echo \"cannot create a container of $image\" >&2; exit 1; }}
  if docker cp \"$cid\":{bin} - | docker cp - {c}:{staging}; then copied=1; else copied=0; fi
  docker rm \"$cid\" > /dev/null 2>&1 || true
  if [ \"$copied\" != 1 ]; then
    echo \"$image has no {bin}: only a dray-proxy image can take over the sockets (for kamal-proxy: dray proxy reboot, which drops connections)\" >&2
    exit 1
  fi
  exec docker exec {c} kamal-proxy supervisor upgrade --binary={staging}/dray-proxy --staged --drain-timeout={drain_timeout}s
fi
old=$(docker container inspect {c} --format '{{{{.Config.Image}}}}' 2> /dev/null)
if [ -z \"$old\" ]; then
  echo \"no {c} container on {host}: running $image\"
elif docker cp {c}:{bin} - > /dev/null 2>&1; then
  echo \"{c} on {host} runs $old, a dray-proxy image without the supervisor, which cannot hand over its sockets: rebooting it (stop, remove, run) drops connections; from $image on, upgrades hand over without\"
else
  echo \"{c} on {host} runs $old (kamal-proxy), whose reboot drops connections, as with Kamal: rebooting it (stop, remove, run)\"
fi
{stop}
{prune}
{mkdir} || exit 1
{run}",
        image = image_word(run_config),
        bin = DRAY_PROXY_BINARY,
        staging = UPGRADE_STAGING,
        stop = quiet(stop(host)),
        prune = quiet(remove_container(host)),
        mkdir = ensure_apps_config_directory(host).to_shell(),
        run = run(run_config, host).to_shell(),
    );
    sh(format!("upgrade kamal-proxy on {host}"), script)
}

/// `docker exec kamal-proxy kamal-proxy supervisor status`, or a line saying there is no
/// supervisor (the running binary is then the image's): what runs, beside the image's
/// metadata, after an upgrade swapped the binary.
pub fn supervisor_status(host: &str) -> CommandSpec {
    sh(
        format!("read the dray-proxy supervisor on {host}"),
        format!(
            "docker exec {CONTAINER_NAME} kamal-proxy supervisor status 2> /dev/null || echo {}",
            quote("no dray-proxy supervisor: the server is the image's own binary")
        ),
    )
}

/// `docker exec kamal-proxy kamal-proxy <args…>`.
fn proxy_exec(purpose: String) -> CommandSpec {
    CommandSpec::new(purpose, "docker").args(["exec", CONTAINER_NAME, "kamal-proxy"])
}

/// `Ns`.
fn seconds(n: u64) -> String {
    format!("{n}s")
}

/// `--flag` for true, `--flag=false` for false.
fn bool_flag(out: &mut Vec<String>, flag: &str, value: Option<bool>) {
    match value {
        Some(true) => out.push(format!("--{flag}")),
        Some(false) => out.push(format!("--{flag}=false")),
        None => {}
    }
}

/// `kamal-proxy deploy` flags after the service name, in Kamal's order: `--target=<target>:<port>`
/// then host, tls, certificate paths, timeouts, health check, buffering, path prefixes,
/// forwarding, redirect, logged headers, error pages. `tls_role` names the role directory of a
/// custom certificate; for a role (not an accessory) serving TLS with ACME, `x-dray: proxy:`
/// adds dray-proxy's `--tls-acme-directory` and `--tls-acme-ca-certs` after the certificate
/// paths (kamal-proxy has neither).
pub fn deploy_args(
    config: &Config,
    proxy: &Proxy,
    tls_role: Option<&str>,
    target: &str,
    version: &str,
) -> Vec<String> {
    let app_dir = format!(
        "{APPS_CONTAINER_DIRECTORY}/{}",
        config.service_and_destination()
    );
    let mut a = vec![format!("--target={target}:{}", proxy.app_port)];
    a.extend(proxy.hosts.iter().map(|h| format!("--host={h}")));
    if proxy.ssl {
        a.push("--tls".into());
    }
    if proxy.ssl_certificate_pem.is_some() && proxy.ssl_private_key_pem.is_some() {
        let tls_dir = match tls_role {
            Some(r) => format!("{app_dir}/tls/{r}"),
            None => format!("{app_dir}/tls"),
        };
        a.push(format!("--tls-certificate-path={tls_dir}/cert.pem"));
        a.push(format!("--tls-private-key-path={tls_dir}/key.pem"));
    } else if let (true, Some(_), Some(acme)) = (proxy.ssl, tls_role, &config.acme) {
        a.push(format!("--tls-acme-directory={}", acme.directory));
        if acme.ca_certs.is_some() {
            a.push(format!("--tls-acme-ca-certs={app_dir}/{ACME_CA_FILE}"));
        }
    }
    a.push(format!(
        "--deploy-timeout={}",
        seconds(config.deploy_timeout)
    ));
    a.push(format!("--drain-timeout={}", seconds(config.drain_timeout)));
    if let Some(i) = proxy.healthcheck_interval {
        a.push(format!("--health-check-interval={}", seconds(i)));
    }
    if let Some(t) = proxy.healthcheck_timeout {
        a.push(format!("--health-check-timeout={}", seconds(t)));
    }
    if let Some(p) = &proxy.healthcheck_path {
        a.push(format!("--health-check-path={p}"));
    }
    if let Some(t) = proxy.response_timeout {
        a.push(format!("--target-timeout={}", seconds(t)));
    }
    bool_flag(&mut a, "buffer-requests", Some(proxy.buffer_requests));
    bool_flag(&mut a, "buffer-responses", Some(proxy.buffer_responses));
    if let Some(m) = proxy.buffer_memory {
        a.push(format!("--buffer-memory={m}"));
    }
    if let Some(m) = proxy.max_request_body {
        a.push(format!("--max-request-body={m}"));
    }
    if let Some(m) = proxy.max_response_body {
        a.push(format!("--max-response-body={m}"));
    }
    a.extend(
        proxy
            .path_prefixes
            .iter()
            .map(|p| format!("--path-prefix={p}")),
    );
    bool_flag(&mut a, "strip-path-prefix", proxy.strip_path_prefix);
    bool_flag(&mut a, "forward-headers", proxy.forward_headers);
    bool_flag(&mut a, "tls-redirect", proxy.ssl_redirect);
    a.extend(
        proxy
            .log_request_headers
            .iter()
            .map(|h| format!("--log-request-header={h}")),
    );
    a.extend(
        proxy
            .log_response_headers
            .iter()
            .map(|h| format!("--log-response-header={h}")),
    );
    if config.error_pages_path.is_some() {
        a.push(format!("--error-pages={app_dir}/error_pages/{version}"));
    }
    a
}

/// `docker exec kamal-proxy kamal-proxy deploy <S-R[-D]> --target=<cid>:<port> …`: route the
/// role's traffic to container `target`, waiting until it is healthy. `None` when the role does
/// not run behind the proxy.
pub fn deploy(
    config: &Config,
    role: &Role,
    target: &str,
    version: &str,
    host: &str,
) -> Option<CommandSpec> {
    let proxy = role.proxy.as_ref()?;
    Some(
        proxy_exec(format!("route {} to new container on {host}", role.name))
            .arg("deploy")
            .arg(config.container_prefix(&role.name))
            .args(deploy_args(
                config,
                proxy,
                Some(&role.name),
                target,
                version,
            )),
    )
}

/// `kamal-proxy remove <S-R[-D]>` (`app stop`).
pub fn remove(config: &Config, role: &Role, host: &str) -> CommandSpec {
    proxy_exec(format!("remove {} route on {host}", role.name))
        .arg("remove")
        .arg(config.container_prefix(&role.name))
}

/// `kamal-proxy resume <S-R[-D]>` (`app live`).
pub fn resume(config: &Config, role: &Role, host: &str) -> CommandSpec {
    proxy_exec(format!("resume {} on {host}", role.name))
        .arg("resume")
        .arg(config.container_prefix(&role.name))
}

/// `kamal-proxy stop <S-R[-D]> [--drain-timeout=Ns] [--message=M]` (`app maintenance`).
pub fn stop_app(
    config: &Config,
    role: &Role,
    drain_timeout: Option<u64>,
    message: Option<&str>,
    host: &str,
) -> CommandSpec {
    let mut cmd = proxy_exec(format!("put {} in maintenance on {host}", role.name))
        .arg("stop")
        .arg(config.container_prefix(&role.name));
    if let Some(t) = drain_timeout {
        cmd = cmd.arg(format!("--drain-timeout={}", seconds(t)));
    }
    if let Some(m) = message {
        cmd = cmd.arg(format!("--message={m}"));
    }
    cmd
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;

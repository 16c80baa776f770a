//! Validation: raw structs + the parsed tree (for positions) → the [`Config`] model, applying
//! Kamal 2.12's defaults and semantic checks, each error pointing at the offending key.
//!
//! [`validate()`] checks the top-level keys and assembles the model from the sections, each
//! checked in its own file:
//!
//! - `registry.rs`: `registry`; `env.rs`: `env`; `logging.rs`: `logging`;
//! - `role.rs`: one role under `servers`; `proxy.rs`: `proxy` (root, role, accessory);
//! - `builder.rs`: `builder`; `accessory.rs`: one accessory; `boot.rs`: `boot`;
//!   `hooks_output.rs`: `hooks_output`; `aliases.rs`: `aliases` and [`COMMAND_NAMES`];
//!   `ssh.rs`: `ssh`;
//! - `context.rs`: what they share, errors at a key path and readers of raw values.

mod accessory;
mod aliases;
mod boot;
mod builder;
mod context;
mod env;
mod hooks_output;
mod logging;
mod numbers;
mod proxy;
mod registry;
mod replicas;
mod role;
mod ssh;

use super::error::{did_you_mean, ConfigError};
use super::load_options::LoadOptions;
use super::model::*;
use super::node::Node;
use super::raw::*;
use super::sources::Sources;
use accessory::validate_accessory;

/// `x-dray: lock: stale_after` when not set: 10 minutes.
const DEFAULT_LOCK_STALE_AFTER: u64 = 600;
/// Its largest value: a week.
const MAX_LOCK_STALE_AFTER: u64 = 7 * 24 * 3600;
use aliases::validate_aliases;
use boot::validate_boot;
use builder::validate_builder;
use context::{pairs, s, strings, Ctx};
use env::validate_env;
use hooks_output::validate_hooks_output;
use logging::validate_logging;
use proxy::resolve_proxy;
use registry::validate_registry;
use role::{validate_role, RoleDefaults};
use ssh::validate_ssh;

pub use aliases::COMMAND_NAMES;
pub use numbers::{check_numbers, NumericKey, MAX_BYTES, MAX_SECONDS, NUMERIC_KEYS};

/// The Kamal version whose behaviour dray matches; `minimum_version` is compared with it.
pub const KAMAL_COMPAT_VERSION: &str = "2.12.0";

fn valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `x-dray: proxy:`: an `https://` ACME directory, used by at least one role serving TLS
/// with ACME (`proxy.ssl: true` without a certificate), and no accessory doing so (their
/// routes do not get it); `acme_ca_certs` only with `acme_directory`.
fn validate_acme(
    cx: &Ctx,
    raw: &RawConfig,
    roles: &[Role],
    accessories: &[Accessory],
) -> Result<Option<Acme>, ConfigError> {
    let Some(p) = raw.x_dray.as_ref().and_then(|d| d.proxy.as_ref()) else {
        return Ok(None);
    };
    let acme_tls = |p: &Option<Proxy>| {
        p.as_ref()
            .is_some_and(|p| p.ssl && p.ssl_certificate_pem.is_none())
    };
    let Some(directory) = p.acme_directory.clone() else {
        if p.acme_ca_certs.is_some() {
            return Err(cx
                .err(
                    "x-dray.proxy.acme_ca_certs",
                    "needs `x-dray.proxy.acme_directory`",
                )
                .hint("name the ACME directory whose TLS these roots sign, or remove the key"));
        }
        return Ok(None);
    };
    if !directory.starts_with("https://") || directory.len() == "https://".len() {
        return Err(cx
            .err(
                "x-dray.proxy.acme_directory",
                format!("must be an https:// URL, not {directory:?}"),
            )
            .hint("e.g. `https://acme.example.internal/directory`"));
    }
    if let Some(a) = accessories.iter().find(|a| acme_tls(&a.proxy)) {
        return Err(cx
            .err(
                "x-dray.proxy.acme_directory",
                format!(
                    "applies to the app's roles only, but accessory {} serves TLS with ACME",
                    a.name
                ),
            )
            .hint("give the accessory a custom certificate (`proxy.ssl.certificate_pem`), or remove `x-dray.proxy`"));
    }
    if !roles.iter().any(|r| acme_tls(&r.proxy)) {
        return Err(cx
            .err(
                "x-dray.proxy.acme_directory",
                "no role serves TLS with ACME (`proxy.ssl: true` without a certificate)",
            )
            .hint("set `proxy.ssl: true`, or remove `x-dray.proxy`"));
    }
    if p.acme_ca_certs
        .as_deref()
        .is_some_and(|c| c.trim().is_empty())
    {
        return Err(cx
            .err("x-dray.proxy.acme_ca_certs", "must name a PEM file")
            .hint("a path relative to the project root, or remove the key"));
    }
    Ok(Some(Acme {
        directory,
        ca_certs: p.acme_ca_certs.clone(),
    }))
}

/// Validate `raw` into the model.
pub fn validate(
    raw: RawConfig,
    tree: &Node,
    sources: &Sources,
    opts: &LoadOptions,
) -> Result<Config, ConfigError> {
    let cx = Ctx { tree, sources };

    if raw.require_destination == Some(true) && opts.destination.is_none() {
        return Err(cx
            .err("require_destination", "you must specify a destination")
            .hint("pass -d <destination>, e.g. `dray deploy -d production`"));
    }

    // service
    let service = s(&raw.service).ok_or_else(|| {
        ConfigError::new("missing required key `service`")
            .at(cx.file_only())
            .hint("add `service: <name>` at the top of the file")
    })?;
    if !valid_service_name(&service) {
        return Err(cx.err(
            "service",
            "service name can only include alphanumeric characters, hyphens, and underscores",
        ));
    }

    if let Some(min) = s(&raw.minimum_version) {
        if version_less(KAMAL_COMPAT_VERSION, &min) {
            return Err(cx.err(
                "minimum_version",
                format!("current version is {KAMAL_COMPAT_VERSION}, minimum required is {min}"),
            ));
        }
    }

    // registry and image
    let registry = validate_registry(&cx, "registry", raw.registry.as_ref(), true)?;
    let image = match s(&raw.image) {
        Some(image) => image,
        None if registry.is_local() => service.clone(),
        None => {
            return Err(ConfigError::new("missing required key `image`")
                .at(cx.file_only())
                .hint("add `image: <user>/<name>`, the repository to push to"))
        }
    };
    let repository = match &registry.server {
        Some(server) => format!("{server}/{image}"),
        None => image.clone(),
    };

    // env
    let env = validate_env(&cx, "env", raw.env.as_ref(), true)?;
    let env_tags = match &raw.env {
        Some(e) => e
            .tags
            .iter()
            .map(|(tag, tag_env)| {
                validate_env(&cx, &format!("env.tags.{tag}"), Some(tag_env), false)
                    .map(|env| (tag.clone(), env))
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };

    let logging = validate_logging(raw.logging.as_ref());
    let labels = pairs(&raw.labels);
    let root_proxy = raw.proxy.clone();
    let retain_containers = match raw.retain_containers {
        None => 5,
        // In range: check_numbers ran on the tree (1 to 100000).
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| cx.err("retain_containers", "must retain at least 1 container"))?,
    };

    // servers and roles
    let primary_role = s(&raw.primary_role).unwrap_or_else(|| "web".to_string());
    let allow_empty_roles = raw.allow_empty_roles.unwrap_or(false);
    let defaults = RoleDefaults {
        primary_role: &primary_role,
        logging: &logging,
        labels: &labels,
        root_proxy: root_proxy.as_ref(),
        asset_path: s(&raw.asset_path),
        stop_timeout: raw.stop_timeout,
        allow_empty_roles,
    };
    let mut roles = Vec::new();
    match &raw.servers {
        None => {
            if raw.accessories.as_ref().is_none_or(|a| a.is_empty()) {
                return Err(ConfigError::new("no servers or accessories specified")
                    .at(cx.file_only())
                    .hint("add `servers:` with at least one host"));
            }
        }
        Some(RawServers::List(hosts)) => {
            let settings = RawRoleSettings {
                hosts: Some(hosts.clone()),
                ..Default::default()
            };
            roles.push(validate_role(&cx, "servers", "web", &settings, &defaults)?);
        }
        Some(RawServers::Roles(map)) => {
            let mut names: Vec<&String> = map.0.iter().map(|(k, _)| k).collect();
            names.sort();
            for name in names {
                let path = format!("servers.{name}");
                if !valid_service_name(name) {
                    return Err(cx.err(
                        &path,
                        "role name can only include alphanumeric characters, hyphens, and underscores",
                    ));
                }
                let settings = match map.get(name) {
                    Some(RawRole::Hosts(hosts)) => RawRoleSettings {
                        hosts: Some(hosts.clone()),
                        ..Default::default()
                    },
                    Some(RawRole::Settings(s)) => (**s).clone(),
                    None => RawRoleSettings::default(),
                };
                roles.push(validate_role(&cx, &path, name, &settings, &defaults)?);
            }
        }
    }
    if raw.servers.is_some() {
        match roles.iter().find(|r| r.name == primary_role) {
            None => {
                let known: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
                let path = if raw.primary_role.is_some() {
                    "primary_role"
                } else {
                    "servers"
                };
                let mut err = cx.err(
                    path,
                    format!("the primary_role `{primary_role}` isn't defined"),
                );
                err = match did_you_mean(&primary_role, known.iter().copied()) {
                    Some(s) => err.hint(format!("did you mean `{s}`? roles: {}", known.join(", "))),
                    None => err.hint(format!(
                        "set `primary_role:` to one of the roles under `servers`: {}",
                        known.join(", ")
                    )),
                };
                return Err(err);
            }
            Some(role) if role.hosts.is_empty() => {
                return Err(cx.err(
                    &format!("servers.{primary_role}"),
                    format!("no servers specified for the {primary_role} primary_role"),
                ));
            }
            Some(_) => {}
        }
    }

    replicas::apply(
        &cx,
        raw.x_dray.as_ref().and_then(|d| d.replicas.as_ref()),
        &mut roles,
    )?;

    for role in &roles {
        if let Some(p) = &role.proxy {
            if p.ssl && p.ssl_certificate_pem.is_none() && role.hosts.len() > 1 {
                return Err(cx
                    .err(
                        &format!("servers.{}", role.name),
                        format!(
                            "SSL is only supported on a single server unless you provide custom certificates, found {} servers for role {}",
                            role.hosts.len(),
                            role.name
                        ),
                    )
                    .hint("set `ssl.certificate_pem` and `ssl.private_key_pem`, or use one host"));
            }
        }
    }

    // Kamal's `ensure_unique_hosts_for_ssl_roles`: one SSL host belongs to one role.
    let mut ssl_hosts: Vec<(&str, &str)> = Vec::new();
    for role in &roles {
        let Some(p) = role.proxy.as_ref().filter(|p| p.ssl) else {
            continue;
        };
        for host in &p.hosts {
            if let Some((_, other)) = ssl_hosts.iter().find(|(h, _)| h == host) {
                return Err(cx
                    .err(
                        &format!("servers.{}.proxy", role.name),
                        format!("different roles can't share the same host for SSL: {host}"),
                    )
                    .hint(format!(
                        "roles {other} and {} both serve {host} with ssl; give each role its own host",
                        role.name
                    )));
            }
            ssl_hosts.push((host, &role.name));
        }
    }

    // builder
    let builder = validate_builder(&cx, raw.builder.as_ref())?;

    // accessories
    let mut accessories = Vec::new();
    for (name, acc) in raw.accessories.iter().flat_map(|a| a.iter()) {
        accessories.push(validate_accessory(
            &cx, &service, name, acc, &roles, &logging,
        )?);
    }

    // Kamal's `ensure_no_conflicting_proxy_runs`: one proxy per host, so the `proxy.run` of
    // every role and accessory on a host must agree.
    {
        let mut runs: Vec<(&str, &ProxyRun, String)> = Vec::new();
        let role_runs = roles.iter().flat_map(|r| {
            let run = r.proxy.as_ref().and_then(|p| p.run.as_ref());
            r.host_names()
                .filter_map(move |h| run.map(|run| (h, run, format!("servers.{}", r.name))))
        });
        let accessory_runs = accessories.iter().flat_map(|a| {
            let run = a.proxy.as_ref().and_then(|p| p.run.as_ref());
            a.hosts.iter().filter_map(move |h| {
                run.map(|run| (h.as_str(), run, format!("accessories.{}", a.name)))
            })
        });
        for (host, run, path) in role_runs.chain(accessory_runs) {
            if let Some((_, _, other)) = runs.iter().find(|(h, r, _)| *h == host && *r != run) {
                return Err(cx
                    .err(
                        &format!("{path}.proxy.run"),
                        format!("conflicting proxy run configurations for host {host}"),
                    )
                    .hint(format!(
                        "{other} and {path} run the proxy differently on {host}; one proxy serves a host"
                    )));
            }
            runs.push((host, run, path));
        }
    }

    // boot
    let all_hosts_count = {
        let mut hosts: Vec<&str> = roles.iter().flat_map(|r| r.host_names()).collect();
        hosts.extend(
            accessories
                .iter()
                .flat_map(|a| a.hosts.iter().map(|h| h.as_str())),
        );
        hosts.sort();
        hosts.dedup();
        hosts.len()
    };
    let boot = validate_boot(&cx, raw.boot.as_ref(), all_hosts_count)?;

    // hooks
    let hooks_path = s(&raw.hooks_path).unwrap_or_else(|| ".kamal/hooks".to_string());
    for legacy in ["pre-traefik-reboot", "post-traefik-reboot"] {
        if opts.cwd.join(&hooks_path).join(legacy).exists() {
            return Err(ConfigError::new(format!(
                "found {hooks_path}/{legacy}: traefik hooks are no longer used"
            ))
            .at(cx.file_only())
            .hint("rename it to pre-proxy-reboot / post-proxy-reboot"));
        }
    }
    let hooks_output = validate_hooks_output(&cx, raw.hooks_output.as_ref())?;

    // output: Kamal raises when a logger lacks its setting
    if let Some(o) = &raw.output {
        if o.file.as_ref().is_some_and(|f| s(&f.path).is_none()) {
            return Err(cx
                .err("output.file", "file path is required")
                .hint("add `path: <directory>` under `output: file:`"));
        }
        if o.otel.as_ref().is_some_and(|f| s(&f.endpoint).is_none()) {
            return Err(cx
                .err("output.otel", "OTel endpoint is required")
                .hint("add `endpoint: http://<collector>:4318` under `output: otel:`"));
        }
    }

    // aliases
    let aliases = pairs(&raw.aliases);
    validate_aliases(&cx, &aliases)?;

    let mut ssh = validate_ssh(&cx, raw.ssh.as_ref())?;
    if let Some(transport) = raw
        .x_dray
        .as_ref()
        .and_then(|d| d.ssh.as_ref())
        .and_then(|s| s.transport)
    {
        ssh.transport = transport;
    }
    let sshkit = Sshkit {
        max_concurrent_starts: raw
            .sshkit
            .as_ref()
            .and_then(|s| s.max_concurrent_starts)
            .unwrap_or(30),
        pool_idle_timeout: raw
            .sshkit
            .as_ref()
            .and_then(|s| s.pool_idle_timeout)
            .unwrap_or(900),
        dns_retries: raw.sshkit.as_ref().and_then(|s| s.dns_retries).unwrap_or(3),
    };

    let proxy = match &root_proxy {
        Some(p) => Some(resolve_proxy(&cx, "proxy", p)?),
        None => None,
    };

    let hook_timeout = raw
        .x_dray
        .as_ref()
        .and_then(|d| d.hooks.as_ref())
        .and_then(|h| h.timeout);
    if hook_timeout == Some(0) {
        return Err(cx
            .err("x-dray.hooks.timeout", "must be at least 1 (seconds)")
            .hint("leave it out for no timeout, as in Kamal"));
    }
    let post_deploy_locked = raw
        .x_dray
        .as_ref()
        .and_then(|d| d.hooks.as_ref())
        .and_then(|h| h.post_deploy_locked)
        .unwrap_or(false);
    let lock_stale_after = raw
        .x_dray
        .as_ref()
        .and_then(|d| d.lock.as_ref())
        .and_then(|l| l.stale_after)
        .unwrap_or(DEFAULT_LOCK_STALE_AFTER);
    if !(1..=MAX_LOCK_STALE_AFTER).contains(&lock_stale_after) {
        return Err(cx
            .err(
                "x-dray.lock.stale_after",
                format!("must be between 1 and {MAX_LOCK_STALE_AFTER} (seconds)"),
            )
            .hint("leave it out for 600 (10 minutes)"));
    }
    let local_registry_address = raw
        .x_dray
        .as_ref()
        .and_then(|d| d.local_registry.as_ref())
        .and_then(|l| l.address.clone());
    if let Some(a) = &local_registry_address {
        if a.parse::<std::net::IpAddr>().is_err() {
            return Err(cx
                .err("x-dray.local_registry.address", "must be an IP address")
                .hint("e.g. `127.0.0.2`; leave it out for Kamal's `127.0.0.1`"));
        }
    }
    let acme = validate_acme(&cx, &raw, &roles, &accessories)?;
    Ok(Config {
        acme,
        local_registry_address,
        hook_timeout,
        post_deploy_locked,
        lock_stale_after,
        service,
        image,
        repository,
        destination: opts.destination.clone(),
        registry,
        roles,
        primary_role,
        env,
        env_tags,
        labels,
        volumes: strings(&raw.volumes),
        builder,
        ssh,
        sshkit,
        proxy,
        boot,
        logging,
        accessories,
        aliases,
        hooks_path,
        hooks_output,
        secrets_path: s(&raw.secrets_path).unwrap_or_else(|| ".kamal/secrets".to_string()),
        error_pages_path: s(&raw.error_pages_path),
        asset_path: s(&raw.asset_path),
        require_destination: raw.require_destination.unwrap_or(false),
        allow_empty_roles,
        retain_containers,
        minimum_version: s(&raw.minimum_version),
        readiness_delay: raw.readiness_delay.unwrap_or(7),
        deploy_timeout: raw.deploy_timeout.unwrap_or(30),
        drain_timeout: raw.drain_timeout.unwrap_or(30),
        stop_timeout: raw.stop_timeout,
        output: Output {
            file_path: raw
                .output
                .as_ref()
                .and_then(|o| o.file.as_ref())
                .and_then(|f| s(&f.path)),
            otel_endpoint: raw
                .output
                .as_ref()
                .and_then(|o| o.otel.as_ref())
                .and_then(|o| s(&o.endpoint)),
        },
        files: sources.files.clone(),
        warnings: sources.warnings.clone(),
    })
}

/// Compare dotted versions numerically: is `a` < `b`?
fn version_less(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> {
        v.split('.')
            .map(|p| {
                p.chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect::<String>()
            })
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    let (a, b) = (parse(a), parse(b));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x < y;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_less("2.12.0", "2.13"));
        assert!(!version_less("2.12.0", "2.9.1"));
        assert!(!version_less("2.12.0", "2.12.0"));
    }
}

#[cfg(test)]
mod dray_settings_tests {
    use crate::config::load::load_str_without_commands;

    const BASE: &str = "service: app\nimage: app\nregistry:\n  server: localhost:5555\nservers:\n  - 1.1.1.1\nbuilder:\n  arch: amd64\n";

    #[test]
    fn x_dray_hooks_timeout_is_read_and_other_extension_keys_are_ignored() {
        let text = format!("{BASE}x-dray:\n  hooks:\n    timeout: 30\nx-other:\n  anything: 1\n");
        let config = load_str_without_commands(&text, "config/deploy.yml").expect("loads");
        assert_eq!(config.hook_timeout, Some(30));
        let plain = load_str_without_commands(BASE, "config/deploy.yml").expect("loads");
        assert_eq!(plain.hook_timeout, None);
    }

    #[test]
    fn x_dray_proxy_acme_is_read_and_refused_where_nothing_would_use_it() {
        let ssl = "proxy:\n  host: a.test\n  ssl: true\n";
        let acme = "x-dray:\n  proxy:\n    acme_directory: https://10.0.0.1:14000/dir\n    acme_ca_certs: ca.pem\n";
        let config = load_str_without_commands(&format!("{BASE}{ssl}{acme}"), "config/deploy.yml")
            .expect("loads");
        let a = config.acme.expect("acme");
        assert_eq!(a.directory, "https://10.0.0.1:14000/dir");
        assert_eq!(a.ca_certs.as_deref(), Some("ca.pem"));
        let refused = |text: String, key: &str, says: &str| {
            let err = load_str_without_commands(&text, "config/deploy.yml").expect_err("refused");
            assert!(err.hint.is_some(), "{err}");
            let err = err.to_string();
            assert!(err.contains(key) && err.contains(says), "{err}");
        };
        // No role serving TLS with ACME: without ssl, and with a custom certificate.
        refused(
            format!("{BASE}proxy:\n  host: a.test\n{acme}"),
            "x-dray.proxy.acme_directory",
            "no role",
        );
        refused(
            format!("{BASE}proxy:\n  host: a.test\n  ssl:\n    certificate_pem: C\n    private_key_pem: K\n{acme}"),
            "x-dray.proxy.acme_directory",
            "no role",
        );
        refused(
            format!("{BASE}{ssl}x-dray:\n  proxy:\n    acme_directory: http://10.0.0.1/dir\n"),
            "x-dray.proxy.acme_directory",
            "https://",
        );
        refused(
            format!("{BASE}{ssl}x-dray:\n  proxy:\n    acme_ca_certs: ca.pem\n"),
            "x-dray.proxy.acme_ca_certs",
            "acme_directory",
        );
        refused(
            format!("{BASE}{ssl}accessories:\n  db:\n    image: db\n    host: 1.1.1.1\n    proxy:\n      host: db.test\n      ssl: true\n{acme}"),
            "x-dray.proxy.acme_directory",
            "accessory db",
        );
        let plain =
            load_str_without_commands(&format!("{BASE}{ssl}"), "config/deploy.yml").expect("loads");
        assert_eq!(plain.acme, None);
    }

    #[test]
    fn x_dray_ssh_transport_is_read_and_unknown_ones_refused() {
        use crate::config::model::SshTransport;
        let cfg = load_str_without_commands(BASE, "deploy.yml").expect("loads");
        assert_eq!(cfg.ssh.transport, SshTransport::Openssh);
        let text = format!("{BASE}x-dray:\n  ssh:\n    transport: native\n");
        let cfg = load_str_without_commands(&text, "deploy.yml").expect("loads");
        assert_eq!(cfg.ssh.transport, SshTransport::Native);
        let text = format!("{BASE}x-dray:\n  ssh:\n    transport: libssh\n");
        let err = load_str_without_commands(&text, "deploy.yml")
            .expect_err("refused")
            .to_string();
        assert!(err.contains("x-dray.ssh.transport"), "{err}");
        assert!(err.contains("native"), "{err}");
    }

    #[test]
    fn unknown_or_zero_x_dray_settings_are_refused_with_their_key() {
        let text = format!("{BASE}x-dray:\n  hook:\n    timeout: 30\n");
        let err = load_str_without_commands(&text, "config/deploy.yml")
            .expect_err("refused")
            .to_string();
        assert!(err.contains("hook"), "{err}");
        let text = format!("{BASE}x-dray:\n  hooks:\n    timeout: 0\n");
        let err = load_str_without_commands(&text, "config/deploy.yml")
            .expect_err("refused")
            .to_string();
        assert!(err.contains("x-dray.hooks.timeout"), "{err}");
    }

    #[test]
    fn local_registry_port_and_address_are_read_and_checked() {
        let plain = load_str_without_commands(BASE, "config/deploy.yml").expect("loads");
        assert_eq!(plain.registry.local_port(), Some(5555));
        assert_eq!(plain.local_registry_address, None);
        let text = format!("{BASE}x-dray:\n  local_registry:\n    address: 127.0.0.2\n");
        let config = load_str_without_commands(&text, "config/deploy.yml").expect("loads");
        assert_eq!(config.local_registry_address.as_deref(), Some("127.0.0.2"));
        let text = format!("{BASE}x-dray:\n  local_registry:\n    address: my-laptop\n");
        let err = load_str_without_commands(&text, "config/deploy.yml")
            .expect_err("refused")
            .to_string();
        assert!(err.contains("x-dray.local_registry.address"), "{err}");
        let text = BASE.replace("localhost:5555", "localhost:abc");
        let err = load_str_without_commands(&text, "config/deploy.yml")
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("registry.server") && err.contains("port"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod output_tests {
    use crate::config::load::load_str_without_commands;

    const BASE: &str = "service: app\nimage: app\nregistry:\n  server: localhost:5555\nservers:\n  - 1.1.1.1\nbuilder:\n  arch: amd64\n";

    #[test]
    fn output_file_and_otel_are_read() {
        let text = format!(
            "{BASE}output:\n  file:\n    path: log/kamal/\n  otel:\n    endpoint: http://otel:4318\n"
        );
        let config = load_str_without_commands(&text, "config/deploy.yml").expect("loads");
        assert_eq!(config.output.file_path.as_deref(), Some("log/kamal/"));
        assert_eq!(
            config.output.otel_endpoint.as_deref(),
            Some("http://otel:4318")
        );
    }

    #[test]
    fn a_logger_without_its_setting_is_refused_as_kamal_does() {
        let text = format!("{BASE}output:\n  file: {{}}\n");
        let err = load_str_without_commands(&text, "config/deploy.yml")
            .expect_err("refused")
            .to_string();
        assert!(err.contains("file path is required"), "{err}");
        let text = format!("{BASE}output:\n  otel: {{}}\n");
        let err = load_str_without_commands(&text, "config/deploy.yml")
            .expect_err("refused")
            .to_string();
        assert!(err.contains("OTel endpoint is required"), "{err}");
        let text = format!("{BASE}output: {{}}\n");
        load_str_without_commands(&text, "config/deploy.yml").expect("an empty output loads");
    }
}

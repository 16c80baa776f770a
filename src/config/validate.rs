//! Validation: raw structs + the parsed tree (for positions) → the [`Config`] model, applying
//! Kamal 2.12's defaults and semantic checks, each error pointing at the offending key.

use super::de::{KeyPath, Segment};
use super::error::{ConfigError, Position};
use super::load_options::LoadOptions;
use super::model::*;
use super::node::Node;
use super::raw::*;
use super::sources::{locate, Sources};

/// The Kamal version whose behaviour dray matches; `minimum_version` is compared with it.
pub const KAMAL_COMPAT_VERSION: &str = "2.12.0";

struct Ctx<'a> {
    tree: &'a Node,
    sources: &'a Sources,
}

impl Ctx<'_> {
    /// An error at the key path written as `a.b[2].c`.
    fn err(&self, path: &str, message: impl Into<String>) -> ConfigError {
        let key_path = parse_path(path);
        let position = locate(self.tree, &key_path).and_then(|n| self.sources.position(n.loc));
        ConfigError::new(message)
            .key(path)
            .at(position.or_else(|| self.file_only()))
    }

    fn file_only(&self) -> Option<Position> {
        self.sources.files.first().map(|f| Position {
            file: f.clone(),
            line: 0,
            column: 0,
        })
    }
}

fn parse_path(path: &str) -> KeyPath {
    let mut segs = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            segs.push(Segment::Key(rest[..open].to_string()));
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let close = stripped.find(']').unwrap_or(stripped.len());
                if let Ok(i) = stripped[..close].parse() {
                    segs.push(Segment::Index(i));
                }
                rest = stripped.get(close + 1..).unwrap_or("");
            }
        } else {
            segs.push(Segment::Key(rest.to_string()));
        }
    }
    KeyPath(segs)
}

fn s(v: &Option<Scalar>) -> Option<String> {
    v.as_ref().map(|s| s.0.clone())
}

fn strings(v: &Option<Vec<Scalar>>) -> Vec<String> {
    v.iter().flatten().map(|s| s.0.clone()).collect()
}

fn pairs(v: &Option<OrderedMap<Scalar>>) -> Vec<(String, String)> {
    v.iter()
        .flat_map(|m| m.iter())
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

fn options(v: &Option<OrderedMap<OptionValue>>) -> Vec<(String, OptionValue)> {
    v.iter()
        .flat_map(|m| m.iter())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
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
        Some(n) if n >= 1 => u32::try_from(n).unwrap_or(u32::MAX),
        Some(_) => return Err(cx.err("retain_containers", "must retain at least 1 container")),
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
                err = match super::error::did_you_mean(&primary_role, known.iter().copied()) {
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

    // builder
    let builder = validate_builder(&cx, raw.builder.as_ref())?;

    // accessories
    let mut accessories = Vec::new();
    for (name, acc) in raw.accessories.iter().flat_map(|a| a.iter()) {
        accessories.push(validate_accessory(
            &cx, &service, name, acc, &roles, &logging,
        )?);
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

    // aliases
    let aliases = pairs(&raw.aliases);
    for (name, _) in &aliases {
        let path = format!("aliases.{name}");
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
            || name.is_empty()
        {
            return Err(cx.err(
                &path,
                "alias name can only contain lowercase letters, numbers, dashes and underscores",
            ));
        }
        if crate::cli::COMMAND_NAMES.contains(&name.as_str()) {
            return Err(cx.err(
                &path,
                format!("alias `{name}` conflicts with a built-in command"),
            ));
        }
    }

    let ssh = validate_ssh(&cx, raw.ssh.as_ref())?;
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

    Ok(Config {
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

fn credential(v: &Option<SecretOrValue>) -> Option<Credential> {
    match v {
        Some(SecretOrValue::Value(s)) => Some(Credential::Value(s.clone())),
        Some(SecretOrValue::Secret(names)) => names.first().map(|n| Credential::Secret(n.clone())),
        None => None,
    }
}

fn validate_registry(
    cx: &Ctx,
    path: &str,
    raw: Option<&RawRegistry>,
    root: bool,
) -> Result<Registry, ConfigError> {
    let empty = RawRegistry::default();
    let raw = match raw {
        Some(raw) => raw,
        None if root => {
            return Err(ConfigError::new("missing required key `username`")
                .key(path)
                .at(cx.file_only())
                .hint("add `registry:` with `server`, `username` and `password`"))
        }
        None => &empty,
    };
    let registry = Registry {
        server: s(&raw.server),
        username: credential(&raw.username),
        password: credential(&raw.password),
    };
    for (key, value) in [("username", &raw.username), ("password", &raw.password)] {
        if let Some(SecretOrValue::Secret(names)) = value {
            if names.len() != 1 {
                return Err(cx.err(
                    &format!("{path}.{key}"),
                    "expected a string, or a list with exactly one secret name",
                ));
            }
        }
    }
    if !registry.is_local() {
        if registry.username.is_none() {
            return Err(cx.err(path, "missing required key `username`"));
        }
        if registry.password.is_none() {
            return Err(cx.err(path, "missing required key `password`"));
        }
    }
    Ok(registry)
}

fn validate_env(
    cx: &Ctx,
    path: &str,
    raw: Option<&RawEnv>,
    root: bool,
) -> Result<Env, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Env::default());
    };
    if !root && !raw.tags.is_empty() {
        return Err(cx.err(
            &format!("{path}.tags"),
            "tags are only allowed in the root env",
        ));
    }
    let mut secrets = Vec::new();
    for (i, entry) in raw.secret.iter().enumerate() {
        let (name, key) = match entry.split_once(':') {
            Some((n, k)) => (n, k),
            None => (entry.as_str(), entry.as_str()),
        };
        if name.is_empty() || key.is_empty() {
            return Err(cx.err(
                &format!("{path}.secret[{i}]"),
                format!("expected NAME or NAME:SECRET_KEY, found `{entry}`"),
            ));
        }
        secrets.push(SecretRef {
            name: name.to_string(),
            key: key.to_string(),
        });
    }
    Ok(Env {
        clear: raw
            .clear
            .iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect(),
        secrets,
    })
}

fn validate_logging(raw: Option<&RawLogging>) -> Logging {
    match raw {
        Some(l) => Logging {
            driver: s(&l.driver),
            options: pairs(&l.options),
        },
        None => Logging::default(),
    }
}

struct RoleDefaults<'a> {
    primary_role: &'a str,
    logging: &'a Logging,
    labels: &'a [(String, String)],
    root_proxy: Option<&'a RawProxy>,
    asset_path: Option<String>,
    stop_timeout: Option<u64>,
    allow_empty_roles: bool,
}

const RESTART_POLICIES: &str = "no, always, unless-stopped, on-failure or on-failure:N";

fn valid_restart(policy: &str) -> bool {
    match policy {
        "no" | "always" | "unless-stopped" | "on-failure" => true,
        p => p
            .strip_prefix("on-failure:")
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())),
    }
}

fn check_options(
    cx: &Ctx,
    path: &str,
    options: &[(String, OptionValue)],
) -> Result<(), ConfigError> {
    for (key, value) in options {
        if key == "restart" {
            let ok = match value {
                OptionValue::Value(v) => valid_restart(v),
                // YAML 1.1 reads `restart: no` as false.
                OptionValue::Flag(false) => true,
                _ => false,
            };
            if !ok {
                return Err(cx.err(
                    &format!("{path}.options.restart"),
                    format!("invalid restart policy, expected one of {RESTART_POLICIES}"),
                ));
            }
        }
    }
    Ok(())
}

fn validate_role(
    cx: &Ctx,
    path: &str,
    name: &str,
    raw: &RawRoleSettings,
    d: &RoleDefaults,
) -> Result<Role, ConfigError> {
    let hosts: Vec<Host> = raw
        .hosts
        .iter()
        .flatten()
        .map(|h| Host {
            name: h.host.clone(),
            tags: h.tags.clone(),
        })
        .collect();
    for (i, host) in hosts.iter().enumerate() {
        if host.name.trim().is_empty() || host.name.contains(char::is_whitespace) {
            let host_path = if raw.hosts.is_some() && path != "servers" {
                format!("{path}.hosts[{i}]")
            } else {
                format!("{path}[{i}]")
            };
            return Err(cx.err(&host_path, format!("invalid host name `{}`", host.name)));
        }
    }
    if hosts.is_empty() && !d.allow_empty_roles && name != d.primary_role {
        return Err(cx
            .err(path, format!("no servers specified for the {name} role"))
            .hint("add hosts, or set `allow_empty_roles: true`"));
    }
    let options = options(&raw.options);
    check_options(cx, path, &options)?;
    let role_labels = pairs(&raw.labels);
    for (key, _) in &role_labels {
        if ["service", "role", "destination"].contains(&key.as_str()) {
            return Err(cx.err(
                &format!("{path}.labels.{key}"),
                format!("the `{key}` label is set by dray and cannot be overridden"),
            ));
        }
    }
    let mut labels = d.labels.to_vec();
    for (k, v) in role_labels {
        match labels.iter_mut().find(|(key, _)| *key == k) {
            Some(e) => e.1 = v,
            None => labels.push((k, v)),
        }
    }
    let mut logging = d.logging.clone();
    if let Some(l) = &raw.logging {
        if let Some(driver) = s(&l.driver) {
            logging.driver = Some(driver);
        }
        for (k, v) in pairs(&l.options) {
            match logging.options.iter_mut().find(|(key, _)| *key == k) {
                Some(e) => e.1 = v,
                None => logging.options.push((k, v)),
            }
        }
    }
    let env = validate_env(cx, &format!("{path}.env"), raw.env.as_ref(), false)?;
    let is_primary = name == d.primary_role;
    let proxy_raw: Option<RawProxy> = match (&raw.proxy, is_primary) {
        (Some(BoolOr::Bool(false)), _) => None,
        (Some(BoolOr::Bool(true)), _) | (None, true) => {
            Some(d.root_proxy.cloned().unwrap_or_default())
        }
        (None, false) => None,
        (Some(BoolOr::Settings(p)), _) => Some(merge_proxy(d.root_proxy, p)),
    };
    let proxy = match &proxy_raw {
        Some(p) => Some(resolve_proxy(cx, &format!("{path}.proxy"), p)?),
        None => None,
    };
    Ok(Role {
        name: name.to_string(),
        hosts,
        cmd: s(&raw.cmd),
        options,
        logging,
        proxy,
        labels,
        env,
        asset_path: s(&raw.asset_path).or_else(|| d.asset_path.clone()),
        stop_timeout: raw.stop_timeout.or(d.stop_timeout),
    })
}

/// A role's proxy hash deep-merged over the root one.
fn merge_proxy(root: Option<&RawProxy>, role: &RawProxy) -> RawProxy {
    let Some(root) = root else {
        return role.clone();
    };
    fn pick<T: Clone>(role: &Option<T>, root: &Option<T>) -> Option<T> {
        role.clone().or_else(|| root.clone())
    }
    RawProxy {
        host: pick(&role.host, &root.host),
        hosts: pick(&role.hosts, &root.hosts),
        app_port: pick(&role.app_port, &root.app_port),
        ssl: pick(&role.ssl, &root.ssl),
        ssl_redirect: pick(&role.ssl_redirect, &root.ssl_redirect),
        forward_headers: pick(&role.forward_headers, &root.forward_headers),
        response_timeout: pick(&role.response_timeout, &root.response_timeout),
        path_prefix: pick(&role.path_prefix, &root.path_prefix),
        path_prefixes: pick(&role.path_prefixes, &root.path_prefixes),
        strip_path_prefix: pick(&role.strip_path_prefix, &root.strip_path_prefix),
        healthcheck: match (&role.healthcheck, &root.healthcheck) {
            (Some(a), Some(b)) => Some(RawHealthcheck {
                interval: a.interval.or(b.interval),
                path: a.path.clone().or_else(|| b.path.clone()),
                timeout: a.timeout.or(b.timeout),
            }),
            (a, b) => pick(a, b),
        },
        buffering: match (&role.buffering, &root.buffering) {
            (Some(a), Some(b)) => Some(RawBuffering {
                requests: a.requests.or(b.requests),
                responses: a.responses.or(b.responses),
                max_request_body: a.max_request_body.or(b.max_request_body),
                max_response_body: a.max_response_body.or(b.max_response_body),
                memory: a.memory.or(b.memory),
            }),
            (a, b) => pick(a, b),
        },
        logging: pick(&role.logging, &root.logging),
        run: pick(&role.run, &root.run),
    }
}

fn resolve_proxy(cx: &Ctx, path: &str, raw: &RawProxy) -> Result<Proxy, ConfigError> {
    if raw.host.is_some() && raw.hosts.is_some() {
        return Err(cx.err(
            &format!("{path}.hosts"),
            "specify one of `host` or `hosts`, not both",
        ));
    }
    let hosts: Vec<String> = match (&raw.host, &raw.hosts) {
        (Some(h), _) => {
            h.0.split(',')
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect()
        }
        (None, Some(hs)) => hs.iter().map(|h| h.0.clone()).collect(),
        (None, None) => Vec::new(),
    };
    let (ssl, cert, key) = match &raw.ssl {
        None | Some(BoolOr::Bool(false)) => (false, None, None),
        Some(BoolOr::Bool(true)) => (true, None, None),
        Some(BoolOr::Settings(s)) => {
            let cert = s.certificate_pem.as_ref().map(|c| c.0.clone());
            let key = s.private_key_pem.as_ref().map(|c| c.0.clone());
            if cert.is_none() || key.is_none() {
                return Err(cx.err(
                    &format!("{path}.ssl"),
                    "a custom certificate needs both `certificate_pem` and `private_key_pem`",
                ));
            }
            (true, cert, key)
        }
    };
    if ssl && hosts.is_empty() {
        return Err(cx
            .err(
                &format!("{path}.ssl"),
                "must set a host to enable automatic SSL",
            )
            .hint("add `host:` to the proxy settings"));
    }
    let mut path_prefixes: Vec<String> = match (&raw.path_prefix, &raw.path_prefixes) {
        (Some(p), _) => p.0.split(',').map(|p| p.trim().to_string()).collect(),
        (None, Some(ps)) => ps.iter().map(|p| p.0.clone()).collect(),
        (None, None) => Vec::new(),
    };
    path_prefixes.retain(|p| !p.is_empty());
    let logging = raw.logging.as_ref();
    let run = raw.run.as_ref().map(|r| ProxyRun {
        http_port: r.http_port.unwrap_or(80),
        https_port: r.https_port.unwrap_or(443),
        metrics_port: r.metrics_port,
        debug: r.debug.unwrap_or(false),
        log_max_size: s(&r.log_max_size).unwrap_or_else(|| "10m".into()),
        publish: r.publish.unwrap_or(true),
        bind_ips: strings(&r.bind_ips),
        registry: s(&r.registry),
        repository: s(&r.repository).unwrap_or_else(|| "basecamp/kamal-proxy".into()),
        version: s(&r.version).unwrap_or_else(|| "v0.9.2".into()),
        options: options(&r.options),
    });
    if let Some(r) = &raw.run {
        if r.publish == Some(false)
            && (r.http_port.is_some() || r.https_port.is_some() || r.bind_ips.is_some())
        {
            return Err(cx.err(
                &format!("{path}.run.publish"),
                "cannot set http_port, https_port or bind_ips when publish is false",
            ));
        }
    }
    Ok(Proxy {
        hosts,
        app_port: raw.app_port.unwrap_or(80),
        ssl,
        ssl_certificate_pem: cert,
        ssl_private_key_pem: key,
        ssl_redirect: raw.ssl_redirect,
        forward_headers: raw.forward_headers,
        response_timeout: raw.response_timeout,
        path_prefixes,
        strip_path_prefix: raw.strip_path_prefix,
        healthcheck_interval: raw.healthcheck.as_ref().and_then(|h| h.interval),
        healthcheck_path: raw.healthcheck.as_ref().and_then(|h| s(&h.path)),
        healthcheck_timeout: raw.healthcheck.as_ref().and_then(|h| h.timeout),
        buffer_requests: raw
            .buffering
            .as_ref()
            .and_then(|b| b.requests)
            .unwrap_or(true),
        buffer_responses: raw
            .buffering
            .as_ref()
            .and_then(|b| b.responses)
            .unwrap_or(true),
        max_request_body: raw.buffering.as_ref().and_then(|b| b.max_request_body),
        max_response_body: raw.buffering.as_ref().and_then(|b| b.max_response_body),
        buffer_memory: raw.buffering.as_ref().and_then(|b| b.memory),
        log_request_headers: match logging.and_then(|l| l.request_headers.as_ref()) {
            Some(h) => h.iter().map(|s| s.0.clone()).collect(),
            None => vec![
                "Cache-Control".into(),
                "Last-Modified".into(),
                "User-Agent".into(),
            ],
        },
        log_response_headers: logging
            .and_then(|l| l.response_headers.as_ref())
            .map(|h| h.iter().map(|s| s.0.clone()).collect())
            .unwrap_or_default(),
        run,
    })
}

fn validate_builder(cx: &Ctx, raw: Option<&RawBuilder>) -> Result<Builder, ConfigError> {
    let Some(raw) = raw else {
        return Err(ConfigError::new("missing required key `builder`")
            .at(cx.file_only())
            .hint("add `builder:` with `arch: amd64` (or arm64)"));
    };
    let arch: Vec<String> = raw
        .arch
        .iter()
        .flat_map(|a| a.0.iter())
        .map(|a| a.0.clone())
        .collect();
    if arch.is_empty() {
        return Err(cx
            .err("builder", "builder arch not set")
            .hint("add `arch: amd64` (or arm64) under `builder:`"));
    }
    for (i, a) in arch.iter().enumerate() {
        if a != "amd64" && a != "arm64" {
            let path = if raw.arch.as_ref().is_some_and(|a| a.0.len() > 1) {
                format!("builder.arch[{i}]")
            } else {
                "builder.arch".to_string()
            };
            return Err(cx.err(
                &path,
                format!("unsupported arch `{a}`, expected amd64 or arm64"),
            ));
        }
    }
    let local = raw.local.unwrap_or(true);
    let remote = s(&raw.remote);
    if !local && remote.is_none() {
        return Err(cx.err(
            "builder.local",
            "cannot disable local builds, no remote is set",
        ));
    }
    if raw.pack.is_some() && arch.len() > 1 {
        return Err(cx.err(
            "builder.pack",
            "buildpacks only support building for one arch",
        ));
    }
    if let Some(kind) = raw.cache.as_ref().and_then(|c| s(&c.kind)) {
        if kind != "gha" && kind != "registry" {
            return Err(cx.err(
                "builder.cache.type",
                format!("invalid cache type: {kind}, expected gha or registry"),
            ));
        }
    }
    Ok(Builder {
        arch,
        remote,
        local,
        pack_builder: raw.pack.as_ref().and_then(|p| s(&p.builder)),
        pack_buildpacks: raw
            .pack
            .as_ref()
            .map(|p| strings(&p.buildpacks))
            .unwrap_or_default(),
        cache_type: raw.cache.as_ref().and_then(|c| s(&c.kind)),
        cache_options: raw.cache.as_ref().and_then(|c| s(&c.options)),
        cache_image: raw.cache.as_ref().and_then(|c| s(&c.image)),
        context: s(&raw.context),
        dockerfile: s(&raw.dockerfile).unwrap_or_else(|| "Dockerfile".into()),
        target: s(&raw.target),
        args: pairs(&raw.args),
        secrets: strings(&raw.secrets),
        ssh: s(&raw.ssh),
        driver: s(&raw.driver).unwrap_or_else(|| "docker-container".into()),
        provenance: s(&raw.provenance),
        sbom: s(&raw.sbom),
    })
}

fn validate_ssh(cx: &Ctx, raw: Option<&RawSsh>) -> Result<Ssh, ConfigError> {
    let default = RawSsh::default();
    let raw = raw.unwrap_or(&default);
    let port = match &raw.port {
        Some(p) => p.0.parse::<u16>().map_err(|_| {
            cx.err(
                "ssh.port",
                format!("expected a port number, found `{}`", p.0),
            )
        })?,
        None => 22,
    };
    let config = match &raw.config {
        None => SshConfigFiles::Default,
        Some(OneOrMany(items)) => match items.as_slice() {
            [one] if one.0 == "true" => SshConfigFiles::Default,
            [one] if one.0 == "false" => SshConfigFiles::None,
            items => SshConfigFiles::Files(items.iter().map(|s| s.0.clone()).collect()),
        },
    };
    Ok(Ssh {
        user: s(&raw.user).unwrap_or_else(|| "root".into()),
        port,
        proxy: s(&raw.proxy),
        proxy_command: s(&raw.proxy_command),
        log_level: s(&raw.log_level).unwrap_or_else(|| "fatal".into()),
        keys_only: raw.keys_only,
        keys: strings(&raw.keys),
        key_data: strings(&raw.key_data),
        config,
        forward_agent: raw.forward_agent,
    })
}

fn validate_boot(cx: &Ctx, raw: Option<&RawBoot>, all_hosts: usize) -> Result<Boot, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Boot::default());
    };
    let limit = match &raw.limit {
        None => None,
        Some(Scalar(text)) => {
            let t = text.trim();
            if let Some(pct) = t.strip_suffix('%') {
                let pct: u64 = pct.trim().parse().map_err(|_| {
                    cx.err(
                        "boot.limit",
                        format!("expected a number or a percentage, found `{t}`"),
                    )
                })?;
                Some(((all_hosts as u64 * pct) / 100).max(1) as usize)
            } else {
                let n: usize = t.parse().map_err(|_| {
                    cx.err(
                        "boot.limit",
                        format!("expected a number or a percentage, found `{t}`"),
                    )
                })?;
                if n == 0 {
                    return Err(cx.err("boot.limit", "must be at least 1"));
                }
                Some(n)
            }
        }
    };
    Ok(Boot {
        limit,
        wait: raw.wait,
        parallel_roles: raw.parallel_roles.unwrap_or(false),
    })
}

fn level(cx: &Ctx, path: &str, value: &str) -> Result<HookOutputLevel, ConfigError> {
    match value.trim_start_matches(':') {
        "quiet" => Ok(HookOutputLevel::Quiet),
        "verbose" => Ok(HookOutputLevel::Verbose),
        other => Err(cx.err(
            path,
            format!("invalid hooks_output `{other}`, expected quiet or verbose"),
        )),
    }
}

fn validate_hooks_output(
    cx: &Ctx,
    raw: Option<&RawHooksOutput>,
) -> Result<HooksOutput, ConfigError> {
    match raw {
        None => Ok(HooksOutput::default()),
        Some(RawHooksOutput::All(v)) => Ok(HooksOutput {
            all: Some(level(cx, "hooks_output", v)?),
            per_hook: Vec::new(),
        }),
        Some(RawHooksOutput::PerHook(map)) => {
            let mut per_hook = Vec::new();
            for (hook, value) in map.iter() {
                let path = format!("hooks_output.{hook}");
                if !HOOK_NAMES.contains(&hook.as_str()) {
                    let mut err = cx.err(&path, format!("unknown hook `{hook}`"));
                    if let Some(s) = super::error::did_you_mean(hook, HOOK_NAMES.iter().copied()) {
                        err = err.hint(format!("did you mean `{s}`?"));
                    }
                    return Err(err);
                }
                per_hook.push((hook.clone(), level(cx, &path, &value.0)?));
            }
            Ok(HooksOutput {
                all: None,
                per_hook,
            })
        }
    }
}

fn file_spec(spec: &RawFileSpec) -> Option<FileSpec> {
    match spec {
        RawFileSpec::Short(text) => {
            let mut parts = text.splitn(3, ':');
            let local = parts.next()?.to_string();
            let remote = parts.next()?.to_string();
            Some(FileSpec {
                local,
                remote,
                mode: None,
                owner: None,
                options: parts.next().map(str::to_string),
            })
        }
        RawFileSpec::Long(l) => Some(FileSpec {
            local: s(&l.local)?,
            remote: s(&l.remote)?,
            mode: s(&l.mode),
            owner: s(&l.owner),
            options: s(&l.options),
        }),
    }
}

/// An accessory's `files` or `directories` (`key`), each `local:remote` or a map.
fn file_specs(
    cx: &Ctx,
    path: &str,
    key: &str,
    specs: Option<&[RawFileSpec]>,
) -> Result<Vec<FileSpec>, ConfigError> {
    specs
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            file_spec(f).ok_or_else(|| {
                cx.err(
                    &format!("{path}.{key}[{i}]"),
                    "expected `local:remote` or a map with `local` and `remote`",
                )
            })
        })
        .collect()
}

fn validate_accessory(
    cx: &Ctx,
    service: &str,
    name: &str,
    raw: &RawAccessory,
    roles: &[Role],
    logging: &Logging,
) -> Result<Accessory, ConfigError> {
    let path = format!("accessories.{name}");
    let image = s(&raw.image).ok_or_else(|| cx.err(&path, "missing required key `image`"))?;
    let set: Vec<&str> = [
        ("host", raw.host.is_some()),
        ("hosts", raw.hosts.is_some()),
        ("role", raw.role.is_some()),
        ("roles", raw.roles.is_some()),
        ("tag", raw.tag.is_some()),
        ("tags", raw.tags.is_some()),
    ]
    .iter()
    .filter(|(_, present)| *present)
    .map(|(k, _)| *k)
    .collect();
    if set.len() != 1 {
        return Err(cx
            .err(
                &path,
                "specify one of `host`, `hosts`, `role`, `roles`, `tag` or `tags`",
            )
            .hint(if set.is_empty() {
                "none is set".to_string()
            } else {
                format!("found {}", set.join(", "))
            }));
    }
    let mut hosts: Vec<String> = Vec::new();
    let mut push = |h: &str| {
        if !hosts.iter().any(|x| x == h) {
            hosts.push(h.to_string());
        }
    };
    if let Some(h) = &raw.host {
        push(&h.0);
    }
    for h in raw.hosts.iter().flatten() {
        push(&h.0);
    }
    let role_names: Vec<String> = raw
        .role
        .iter()
        .map(|r| r.0.clone())
        .chain(strings(&raw.roles))
        .collect();
    for (i, role_name) in role_names.iter().enumerate() {
        let key = if raw.role.is_some() {
            format!("{path}.role")
        } else {
            format!("{path}.roles[{i}]")
        };
        let role = roles.iter().find(|r| r.name == *role_name).ok_or_else(|| {
            cx.err(
                &key,
                format!("role `{role_name}` is not defined under servers"),
            )
        })?;
        for h in role.host_names() {
            push(h);
        }
    }
    let tag_names: Vec<String> = raw
        .tag
        .iter()
        .map(|t| t.0.clone())
        .chain(strings(&raw.tags))
        .collect();
    for tag in &tag_names {
        for role in roles {
            for h in role.hosts.iter().filter(|h| h.tags.contains(tag)) {
                push(&h.name);
            }
        }
    }
    let options = options(&raw.options);
    check_options(cx, &path, &options)?;
    let registry = match &raw.registry {
        Some(r) => Some(validate_registry(
            cx,
            &format!("{path}.registry"),
            Some(&RawRegistry {
                server: r.server.clone(),
                username: r.username.clone(),
                password: r.password.clone(),
            }),
            false,
        )?),
        None => None,
    };
    let image = match registry.as_ref().and_then(|r| r.server.as_ref()) {
        Some(server) => format!("{server}/{image}"),
        None => image,
    };
    let env = validate_env(cx, &format!("{path}.env"), raw.env.as_ref(), false)?;
    let files = file_specs(cx, &path, "files", raw.files.as_deref())?;
    let directories = file_specs(cx, &path, "directories", raw.directories.as_deref())?;
    let proxy = match &raw.proxy {
        Some(p) => Some(resolve_proxy(cx, &format!("{path}.proxy"), p)?),
        None => None,
    };
    let _ = logging;
    Ok(Accessory {
        name: name.to_string(),
        service: s(&raw.service).unwrap_or_else(|| format!("{service}-{name}")),
        image,
        registry,
        hosts,
        cmd: s(&raw.cmd),
        port: s(&raw.port),
        labels: pairs(&raw.labels),
        options,
        env,
        files,
        directories,
        volumes: strings(&raw.volumes),
        network: s(&raw.network).unwrap_or_else(|| "kamal".into()),
        proxy,
    })
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

    #[test]
    fn restart_policies() {
        for ok in [
            "no",
            "always",
            "unless-stopped",
            "on-failure",
            "on-failure:3",
        ] {
            assert!(valid_restart(ok), "{ok}");
        }
        for bad in ["sometimes", "on-failure:", "on-failure:x"] {
            assert!(!valid_restart(bad), "{bad}");
        }
    }

    #[test]
    fn key_paths_parse() {
        assert_eq!(
            parse_path("servers.web.hosts[1]").to_string(),
            "servers.web.hosts[1]"
        );
    }
}

//! `dray config`: the resolved configuration as YAML, Kamal's `kamal config` keys first, then
//! what dray adds (destination, env per role with secrets redacted, proxy, registry).

use serde::Serialize;

use crate::config::model::{Config, Credential, Env, OptionValue, Proxy, SshConfigFiles};
use crate::config::node::{Node, Value as NodeValue};

/// What secret values are shown as.
pub const REDACTED: &str = "[REDACTED]";

/// Kamal's `Configuration#to_h`, printed with Ruby's symbol keys ([`symbolize`]).
#[derive(Serialize)]
struct KamalView<'a> {
    roles: Vec<&'a str>,
    hosts: Vec<&'a str>,
    primary_host: Option<&'a str>,
    version: &'a str,
    repository: &'a str,
    absolute_image: String,
    service_with_version: String,
    volume_args: Vec<String>,
    ssh_options: SshView<'a>,
    /// `sshkit` as written (Kamal's `sshkit.to_h`).
    sshkit: serde_json::Value,
    /// `builder` as written (Kamal's `builder.to_h`).
    builder: serde_json::Value,
    /// `accessories` as written (Kamal's `raw_config.accessories`), when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    accessories: Option<serde_json::Value>,
    logging: Vec<String>,
}

/// What dray adds after Kamal's keys, with plain keys.
#[derive(Serialize)]
struct DrayView<'a> {
    /// The accessories as dray resolved them (hosts, env).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    accessories_resolved: Vec<AccessoryView<'a>>,
    service: &'a str,
    image: &'a str,
    destination: Option<&'a str>,
    primary_role: &'a str,
    registry: RegistryView<'a>,
    servers: Vec<RoleView<'a>>,
    proxy: Option<&'a Proxy>,
    boot: &'a crate::config::model::Boot,
    retain_containers: u32,
    readiness_delay: u64,
    deploy_timeout: u64,
    drain_timeout: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_timeout: Option<u64>,
    hooks_path: &'a str,
    secrets_path: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aliases: Vec<KeyValue<'a>>,
}

#[derive(Serialize)]
struct KeyValue<'a> {
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct SshView<'a> {
    user: &'a str,
    port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy_command: Option<&'a str>,
    keepalive: bool,
    keepalive_interval: u32,
    log_level: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    keys: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keys_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    forward_agent: Option<bool>,
    /// `ssh.config` as Kamal prints it: the files, `false`, or nothing for the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<serde_json::Value>,
}

/// A node of the configuration as written, as a value to print.
fn as_written(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        NodeValue::Null => J::Null,
        NodeValue::Bool(b) => J::Bool(*b),
        NodeValue::Int(i) => J::from(*i),
        NodeValue::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        NodeValue::Str(s) => J::String(s.clone()),
        NodeValue::Seq(items) => J::Array(items.iter().map(as_written).collect()),
        NodeValue::Map(pairs) => J::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.value.scalar_string().unwrap_or_default(), as_written(v)))
                .collect(),
        ),
    }
}

#[derive(Serialize)]
struct RegistryView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

#[derive(Serialize)]
struct RoleView<'a> {
    role: &'a str,
    hosts: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: Option<&'a str>,
    proxy: bool,
    env: EnvView,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    labels: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    options: Vec<String>,
}

#[derive(Serialize)]
struct EnvView {
    clear: Vec<String>,
    secret: Vec<String>,
}

#[derive(Serialize)]
struct AccessoryView<'a> {
    name: &'a str,
    service: &'a str,
    image: &'a str,
    hosts: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: Option<&'a str>,
    env: EnvView,
}

fn env_view(env: &Env) -> EnvView {
    EnvView {
        clear: env.clear.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        secret: env
            .secrets
            .iter()
            .map(|s| format!("{}={REDACTED}", s.name))
            .collect(),
    }
}

fn credential_view(c: &Option<Credential>, clear_value: bool) -> Option<String> {
    c.as_ref().map(|c| match c {
        Credential::Value(v) if clear_value => v.clone(),
        Credential::Value(_) => REDACTED.to_string(),
        Credential::Secret(name) => format!("{REDACTED} (secret {name})"),
    })
}

/// Docker's `--log-driver`/`--log-opt` arguments for a logging setting (Kamal's default:
/// `--log-opt max-size="10m"`).
pub fn logging_args(logging: &crate::config::model::Logging) -> Vec<String> {
    let mut args = Vec::new();
    if logging.driver.is_none() && logging.options.is_empty() {
        args.push("--log-opt".to_string());
        args.push("max-size=\"10m\"".to_string());
        return args;
    }
    if let Some(driver) = &logging.driver {
        args.push("--log-driver".to_string());
        args.push(format!("\"{driver}\""));
    }
    for (k, v) in &logging.options {
        args.push("--log-opt".to_string());
        args.push(format!("{k}=\"{v}\""));
    }
    args
}

fn option_strings(options: &[(String, OptionValue)]) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in options {
        match v {
            OptionValue::Flag(true) => out.push(format!("--{k}")),
            OptionValue::Flag(false) => {}
            OptionValue::Value(v) => out.push(format!("--{k}={v}")),
            OptionValue::List(items) => out.extend(items.iter().map(|i| format!("--{k}={i}"))),
        }
    }
    out
}

/// Render the resolved configuration as YAML: Kamal's `Configuration#to_h` first (`sshkit`,
/// `builder` and `accessories` as written in `tree`, the merged configuration), then dray's
/// resolved view.
pub fn render(config: &Config, version: &str, tree: &Node) -> String {
    let written = |key: &str| tree.get(key).map(as_written);
    let kamal = KamalView {
        roles: config.roles.iter().map(|r| r.name.as_str()).collect(),
        hosts: config.all_hosts(),
        primary_host: config.primary_host(),
        version,
        repository: &config.repository,
        absolute_image: format!("{}:{version}", config.repository),
        service_with_version: format!("{}-{version}", config.service),
        volume_args: config
            .volumes
            .iter()
            .flat_map(|v| ["--volume".to_string(), v.clone()])
            .collect(),
        ssh_options: SshView {
            user: &config.ssh.user,
            port: config.ssh.port,
            proxy: config.ssh.proxy.as_deref(),
            proxy_command: config.ssh.proxy_command.as_deref(),
            keepalive: true,
            keepalive_interval: 30,
            log_level: &config.ssh.log_level,
            keys: config.ssh.keys.iter().map(String::as_str).collect(),
            keys_only: config.ssh.keys_only,
            forward_agent: config.ssh.forward_agent,
            config: match &config.ssh.config {
                SshConfigFiles::Default => None,
                SshConfigFiles::None => Some(serde_json::Value::Bool(false)),
                SshConfigFiles::Files(files) => Some(serde_json::json!(files)),
            },
        },
        sshkit: written("sshkit").unwrap_or_else(|| serde_json::json!({})),
        builder: written("builder").unwrap_or_else(|| serde_json::json!({})),
        accessories: written("accessories"),
        logging: logging_args(&config.logging),
    };
    let dray = DrayView {
        accessories_resolved: config
            .accessories
            .iter()
            .map(|a| AccessoryView {
                name: &a.name,
                service: &a.service,
                image: &a.image,
                hosts: &a.hosts,
                port: a.port.as_deref(),
                cmd: a.cmd.as_deref(),
                env: env_view(&a.env),
            })
            .collect(),
        service: &config.service,
        image: &config.image,
        destination: config.destination.as_deref(),
        primary_role: &config.primary_role,
        registry: RegistryView {
            server: config.registry.server.as_deref(),
            username: credential_view(&config.registry.username, true),
            password: credential_view(&config.registry.password, false),
        },
        servers: config
            .roles
            .iter()
            .map(|r| RoleView {
                role: &r.name,
                hosts: r.host_names().collect(),
                cmd: r.cmd.as_deref(),
                proxy: r.runs_proxy(),
                env: env_view(&{
                    let mut env = config.env.clone();
                    env.merge(&r.env);
                    env
                }),
                labels: r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                options: option_strings(&r.options),
            })
            .collect(),
        proxy: config.proxy.as_ref(),
        boot: &config.boot,
        retain_containers: config.retain_containers,
        readiness_delay: config.readiness_delay,
        deploy_timeout: config.deploy_timeout,
        drain_timeout: config.drain_timeout,
        stop_timeout: config.stop_timeout,
        hooks_path: &config.hooks_path,
        secrets_path: &config.secrets_path,
        aliases: config
            .aliases
            .iter()
            .map(|(name, value)| KeyValue { name, value })
            .collect(),
    };
    let default_log_level = tree
        .get("ssh")
        .and_then(|ssh| ssh.get("log_level"))
        .is_none();
    match (
        serde_saphyr::to_string(&kamal),
        serde_saphyr::to_string(&dray),
    ) {
        (Ok(kamal), Ok(dray)) => format!("---\n{}{dray}", symbolize(&kamal, default_log_level)),
        (Err(err), _) | (_, Err(err)) => format!("# cannot render the configuration: {err}\n"),
    }
}

/// Kamal's keys as Ruby's `to_yaml` writes them: `Configuration#to_h` has symbol keys
/// (`:roles:`), and so has its `ssh_options` (`:user:`), whose default log level is the symbol
/// `:fatal`. Only the keys dray itself wrote are changed: the top level and `ssh_options`'
/// children; values (user text, `builder`, `accessories` as written) are left as they are.
fn symbolize(text: &str, default_log_level: bool) -> String {
    let key = |line: &str| -> Option<usize> {
        let end = line.find(':')?;
        let name = &line[..end];
        (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .then_some(end)
    };
    let mut out = String::with_capacity(text.len() + 64);
    let mut in_ssh = false;
    for line in text.lines() {
        if let Some(end) = key(line) {
            in_ssh = &line[..end] == "ssh_options";
            out.push(':');
            out.push_str(line);
        } else if let Some(inner) = line.strip_prefix("  ").filter(|_| in_ssh) {
            match key(inner) {
                Some(_) if default_log_level && inner == "log_level: fatal" => {
                    out.push_str("  :log_level: :fatal")
                }
                Some(_) => {
                    out.push_str("  :");
                    out.push_str(inner);
                }
                None => out.push_str(line),
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

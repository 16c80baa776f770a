//! The validated configuration model: defaults applied, cross-references checked, roles and
//! proxies resolved. This is what every later layer reads.

use std::path::PathBuf;

use serde::Serialize;

pub use super::raw::OptionValue;

/// The whole, validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// `service`: container name prefix and `service` label.
    pub service: String,
    /// `x-dray: hooks: timeout`: seconds a hook may run before its process group is killed
    /// and the run fails (none by default, as in Kamal).
    pub hook_timeout: Option<u64>,
    /// `x-dray: hooks: post_deploy_locked`: run `post-deploy` before the deploy lock is
    /// released (Kamal runs it after), so a hook that migrates or notifies cannot race the next
    /// deploy.
    pub post_deploy_locked: bool,
    /// `x-dray: lock: stale_after`: seconds after its holder's last heartbeat that a deploy
    /// lock is stale (default 600).
    pub lock_stale_after: u64,
    /// `x-dray: local_registry: address`: with a local registry (`registry.server:
    /// localhost:PORT`), the address on this machine that `kamal-docker-registry` publishes its
    /// port on and that each host's SSH tunnel connects to. `None`: Kamal's, `127.0.0.1` for
    /// the container and `localhost` for the tunnel. Only worth setting where the deploying
    /// machine and its servers share one network stack (dray's local fleet).
    pub local_registry_address: Option<String>,
    /// `x-dray: proxy:`: the ACME directory the proxy gets certificates from for `ssl: true`
    /// roles (dray-proxy only); `None`: the proxy's default, Let's Encrypt.
    pub acme: Option<Acme>,
    /// `image` (defaults to `service` with a local registry).
    pub image: String,
    /// `<registry.server>/<image>`.
    pub repository: String,
    /// The `-d` destination.
    pub destination: Option<String>,
    /// `registry`.
    pub registry: Registry,
    /// Roles in Kamal's order (sorted by name, as `servers:` keys are).
    pub roles: Vec<Role>,
    /// `primary_role` (default `web`).
    pub primary_role: String,
    /// Root `env`.
    pub env: Env,
    /// Root `env.tags`: per host tag.
    pub env_tags: Vec<(String, Env)>,
    /// Root `labels`.
    pub labels: Vec<(String, String)>,
    /// Root `volumes`.
    pub volumes: Vec<String>,
    /// `builder`.
    pub builder: Builder,
    /// `ssh`.
    pub ssh: Ssh,
    /// `sshkit`.
    pub sshkit: Sshkit,
    /// Root `proxy` settings (what roles inherit).
    pub proxy: Option<Proxy>,
    /// `boot`.
    pub boot: Boot,
    /// Root `logging`.
    pub logging: Logging,
    /// `accessories`, in file order.
    pub accessories: Vec<Accessory>,
    /// `aliases`: name → command line.
    pub aliases: Vec<(String, String)>,
    /// `hooks_path` (default `.kamal/hooks`).
    pub hooks_path: String,
    /// `hooks_output`.
    pub hooks_output: HooksOutput,
    /// `secrets_path` (default `.kamal/secrets`).
    pub secrets_path: String,
    /// `error_pages_path`.
    pub error_pages_path: Option<String>,
    /// Root `asset_path`.
    pub asset_path: Option<String>,
    /// `require_destination`.
    pub require_destination: bool,
    /// `allow_empty_roles`.
    pub allow_empty_roles: bool,
    /// `retain_containers` (default 5, at least 1).
    pub retain_containers: u32,
    /// `minimum_version`.
    pub minimum_version: Option<String>,
    /// `readiness_delay` seconds (default 7).
    pub readiness_delay: u64,
    /// `deploy_timeout` seconds (default 30).
    pub deploy_timeout: u64,
    /// `drain_timeout` seconds (default 30).
    pub drain_timeout: u64,
    /// Root `stop_timeout` seconds.
    pub stop_timeout: Option<u64>,
    /// `output`.
    pub output: Output,
    /// The files the configuration was read from, base first.
    pub files: Vec<PathBuf>,
    /// What loading noticed but accepted (a key written twice): `file:line: message`, for
    /// stderr.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// `registry`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Registry {
    /// `server` (Docker Hub when absent).
    pub server: Option<String>,
    /// `username`.
    pub username: Option<Credential>,
    /// `password`.
    pub password: Option<Credential>,
}

impl Registry {
    /// Kamal's local registry mode: `server: localhost:<port>` (plain `localhost` is not).
    pub fn is_local(&self) -> bool {
        self.server
            .as_deref()
            .is_some_and(|s| s.starts_with("localhost:"))
    }

    /// The port of a local registry (`localhost:<port>`); `None` for any other registry, or a
    /// port that is no number (validation refuses those).
    pub fn local_port(&self) -> Option<u16> {
        if !self.is_local() {
            return None;
        }
        self.server
            .as_deref()
            .and_then(|s| s.strip_prefix("localhost:"))
            .and_then(|p| p.parse().ok())
    }
}

/// A value written in the configuration, or the name of a secret that holds it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Credential {
    /// Written as is.
    Value(String),
    /// Read from the secret of this name.
    Secret(String),
}

/// One role under `servers`.
#[derive(Debug, Clone, Serialize)]
pub struct Role {
    /// The role name.
    pub name: String,
    /// Hosts with their tags.
    pub hosts: Vec<Host>,
    /// `cmd`.
    pub cmd: Option<String>,
    /// `options`: docker run options, in order.
    pub options: Vec<(String, OptionValue)>,
    /// `logging`, merged over the root.
    pub logging: Logging,
    /// The proxy settings when this role runs behind the proxy.
    pub proxy: Option<Proxy>,
    /// Root labels with the role's over them.
    pub labels: Vec<(String, String)>,
    /// The role's own `env` (merged over the root by [`Config::env_for`]).
    pub env: Env,
    /// `asset_path` (role, else root).
    pub asset_path: Option<String>,
    /// `stop_timeout` (role, else root).
    pub stop_timeout: Option<u64>,
    /// `x-dray: replicas: <role>`: containers of the role per host (1, Kamal's, by default).
    #[serde(skip_serializing_if = "is_one")]
    pub replicas: u32,
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl Role {
    /// Whether this role runs behind the proxy.
    pub fn runs_proxy(&self) -> bool {
        self.proxy.is_some()
    }

    /// Whether the role runs several containers per host (`x-dray: replicas`).
    pub fn replicated(&self) -> bool {
        self.replicas > 1
    }

    /// The host names.
    pub fn host_names(&self) -> impl Iterator<Item = &str> {
        self.hosts.iter().map(|h| h.name.as_str())
    }
}

/// A host and its tags.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Host {
    /// The host name or address.
    pub name: String,
    /// Tags for per-tag env.
    pub tags: Vec<String>,
}

/// Environment for containers: clear values and secret references.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct Env {
    /// `KEY: value`, in order.
    pub clear: Vec<(String, String)>,
    /// Secret variables.
    pub secrets: Vec<SecretRef>,
}

impl Env {
    /// Merge `other` over `self`: clear values replaced by key, secret lists united.
    pub fn merge(&mut self, other: &Env) {
        for (k, v) in &other.clear {
            match self.clear.iter_mut().find(|(key, _)| key == k) {
                Some(existing) => existing.1 = v.clone(),
                None => self.clear.push((k.clone(), v.clone())),
            }
        }
        for s in &other.secrets {
            if !self.secrets.contains(s) {
                self.secrets.push(s.clone());
            }
        }
    }
}

/// A secret environment variable: `NAME` or `NAME:SECRET_KEY`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SecretRef {
    /// The variable in the container.
    pub name: String,
    /// The key in the secrets files.
    pub key: String,
}

/// `builder`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Builder {
    /// `arch`: `amd64`, `arm64`.
    pub arch: Vec<String>,
    /// `remote`.
    pub remote: Option<String>,
    /// `local` (default true).
    pub local: bool,
    /// `pack.builder`.
    pub pack_builder: Option<String>,
    /// `pack.buildpacks`.
    pub pack_buildpacks: Vec<String>,
    /// `cache.type`.
    pub cache_type: Option<String>,
    /// `cache.options`.
    pub cache_options: Option<String>,
    /// `cache.image`.
    pub cache_image: Option<String>,
    /// `context`: unset means a clean clone of HEAD.
    pub context: Option<String>,
    /// `dockerfile` (default `Dockerfile`).
    pub dockerfile: String,
    /// `target`.
    pub target: Option<String>,
    /// `args`.
    pub args: Vec<(String, String)>,
    /// `secrets`.
    pub secrets: Vec<String>,
    /// `ssh`.
    pub ssh: Option<String>,
    /// `driver` (default `docker-container`).
    pub driver: String,
    /// `provenance`.
    pub provenance: Option<String>,
    /// `sbom`.
    pub sbom: Option<String>,
}

/// `ssh`.
#[derive(Debug, Clone, Serialize)]
pub struct Ssh {
    /// `user` (default `root`).
    pub user: String,
    /// `port` (default 22).
    pub port: u16,
    /// `proxy`: a jump host, `host` or `user@host`.
    pub proxy: Option<String>,
    /// `proxy_command`.
    pub proxy_command: Option<String>,
    /// `log_level` (default `fatal`).
    pub log_level: String,
    /// `keys_only`.
    pub keys_only: Option<bool>,
    /// `keys`.
    pub keys: Vec<String>,
    /// `key_data`: names of secrets holding keys.
    pub key_data: Vec<String>,
    /// `config`: which OpenSSH config files to read.
    pub config: SshConfigFiles,
    /// `forward_agent`.
    pub forward_agent: Option<bool>,
    /// `x-dray: ssh: transport`: which SSH client runs the commands (default OpenSSH).
    pub transport: SshTransport,
}

/// `x-dray: ssh: transport`: the SSH client of a run.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SshTransport {
    /// The system OpenSSH client, one master per host (the default).
    #[default]
    Openssh,
    /// dray's in-process client (russh), resolving each host with `ssh -G`; OpenSSH for the
    /// hosts whose settings it cannot honour.
    Native,
}

/// `ssh.config`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SshConfigFiles {
    /// `true` (default): the usual OpenSSH files.
    Default,
    /// `false`: none.
    None,
    /// These files.
    Files(Vec<String>),
}

/// `sshkit`.
#[derive(Debug, Clone, Serialize)]
pub struct Sshkit {
    /// `max_concurrent_starts` (default 30).
    pub max_concurrent_starts: u64,
    /// `pool_idle_timeout` (default 900).
    pub pool_idle_timeout: u64,
    /// `dns_retries` (default 3).
    pub dns_retries: u64,
}

/// Proxy settings of a role or accessory (root settings merged with the role's).
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Proxy {
    /// `host`/`hosts`.
    pub hosts: Vec<String>,
    /// `app_port` (default 80).
    pub app_port: u64,
    /// `ssl`.
    pub ssl: bool,
    /// `ssl.certificate_pem` secret name (custom certificate).
    pub ssl_certificate_pem: Option<String>,
    /// `ssl.private_key_pem` secret name.
    pub ssl_private_key_pem: Option<String>,
    /// `ssl_redirect`.
    pub ssl_redirect: Option<bool>,
    /// `forward_headers`.
    pub forward_headers: Option<bool>,
    /// `response_timeout` seconds.
    pub response_timeout: Option<u64>,
    /// `path_prefix`/`path_prefixes`.
    pub path_prefixes: Vec<String>,
    /// `strip_path_prefix`.
    pub strip_path_prefix: Option<bool>,
    /// `healthcheck.interval` seconds.
    pub healthcheck_interval: Option<u64>,
    /// `healthcheck.path`.
    pub healthcheck_path: Option<String>,
    /// `healthcheck.timeout` seconds.
    pub healthcheck_timeout: Option<u64>,
    /// `buffering.requests` (default true).
    pub buffer_requests: bool,
    /// `buffering.responses` (default true).
    pub buffer_responses: bool,
    /// `buffering.max_request_body`.
    pub max_request_body: Option<u64>,
    /// `buffering.max_response_body`.
    pub max_response_body: Option<u64>,
    /// `buffering.memory`.
    pub buffer_memory: Option<u64>,
    /// `logging.request_headers` (default Cache-Control, Last-Modified, User-Agent).
    pub log_request_headers: Vec<String>,
    /// `logging.response_headers`.
    pub log_response_headers: Vec<String>,
    /// `run`: how the proxy container is started.
    pub run: Option<ProxyRun>,
}

/// `x-dray: proxy: acme_directory` and `acme_ca_certs`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Acme {
    /// `acme_directory`: the directory URL (`https://…`), sent as dray-proxy's
    /// `--tls-acme-directory`.
    pub directory: String,
    /// `acme_ca_certs`: a local PEM file (relative to the project root) of roots the proxy
    /// trusts for the directory's TLS; uploaded to each proxy host and sent as dray-proxy's
    /// `--tls-acme-ca-certs`.
    pub ca_certs: Option<String>,
}

/// `proxy.run`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProxyRun {
    /// `http_port` (default 80).
    pub http_port: u64,
    /// `https_port` (default 443).
    pub https_port: u64,
    /// `metrics_port`.
    pub metrics_port: Option<u64>,
    /// `debug`.
    pub debug: bool,
    /// `log_max_size` (default `10m`).
    pub log_max_size: String,
    /// `publish` (default true).
    pub publish: bool,
    /// `bind_ips`.
    pub bind_ips: Vec<String>,
    /// `registry`.
    pub registry: Option<String>,
    /// `repository` (default `basecamp/kamal-proxy`).
    pub repository: String,
    /// `version` (default `v0.9.2`).
    pub version: String,
    /// `options`.
    pub options: Vec<(String, OptionValue)>,
}

/// `boot`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Boot {
    /// `limit` resolved to a host count.
    pub limit: Option<usize>,
    /// `wait` seconds after each group.
    pub wait: Option<u64>,
    /// `parallel_roles`.
    pub parallel_roles: bool,
}

/// `logging`.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Logging {
    /// `driver`.
    pub driver: Option<String>,
    /// `options`.
    pub options: Vec<(String, String)>,
}

/// `hooks_output`.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct HooksOutput {
    /// The level for every hook.
    pub all: Option<HookOutputLevel>,
    /// Per-hook levels.
    pub per_hook: Vec<(String, HookOutputLevel)>,
}

/// `quiet` or `verbose`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HookOutputLevel {
    /// Hide everything.
    Quiet,
    /// Show the hook's output.
    Verbose,
}

/// `output`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Output {
    /// `output.file.path`.
    pub file_path: Option<String>,
    /// `output.otel.endpoint`.
    pub otel_endpoint: Option<String>,
}

/// One accessory.
#[derive(Debug, Clone, Serialize)]
pub struct Accessory {
    /// The key under `accessories`.
    pub name: String,
    /// `service` (default `<service>-<name>`).
    pub service: String,
    /// `image` (prefixed with the accessory registry's server).
    pub image: String,
    /// The accessory's own `registry`.
    pub registry: Option<Registry>,
    /// The hosts it runs on, resolved from host/hosts/role/roles/tag/tags.
    pub hosts: Vec<String>,
    /// `cmd`.
    pub cmd: Option<String>,
    /// `port`.
    pub port: Option<String>,
    /// `labels`.
    pub labels: Vec<(String, String)>,
    /// `options`.
    pub options: Vec<(String, OptionValue)>,
    /// `env`.
    pub env: Env,
    /// `files`.
    pub files: Vec<FileSpec>,
    /// `directories`.
    pub directories: Vec<FileSpec>,
    /// `volumes`.
    pub volumes: Vec<String>,
    /// `network` (default `kamal`).
    pub network: String,
    /// `proxy`.
    pub proxy: Option<Proxy>,
}

/// An accessory file or directory.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileSpec {
    /// Local path.
    pub local: String,
    /// Remote path.
    pub remote: String,
    /// Mode.
    pub mode: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Docker volume options.
    pub options: Option<String>,
}

/// The Kamal hooks, in firing order.
pub const HOOK_NAMES: &[&str] = &[
    "pre-connect",
    "pre-build",
    "pre-deploy",
    "pre-app-boot",
    "post-app-boot",
    "post-deploy",
    "docker-setup",
    "pre-proxy-reboot",
    "post-proxy-reboot",
];

impl Config {
    /// The role called `name`.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// The primary role.
    pub fn primary(&self) -> Option<&Role> {
        self.role(&self.primary_role)
    }

    /// The first host of the primary role.
    pub fn primary_host(&self) -> Option<&str> {
        self.primary()
            .and_then(|r| r.hosts.first())
            .map(|h| h.name.as_str())
    }

    /// All app hosts, hosts of the primary role first, each once.
    pub fn app_hosts(&self) -> Vec<&str> {
        let mut hosts: Vec<&str> = Vec::new();
        let primary = self.primary().into_iter();
        let others = self.roles.iter().filter(|r| r.name != self.primary_role);
        for role in primary.chain(others) {
            for host in role.host_names() {
                if !hosts.contains(&host) {
                    hosts.push(host);
                }
            }
        }
        hosts
    }

    /// All hosts as Kamal lists them (`config.all_hosts`): hosts of the roles in role order,
    /// then accessory hosts, each once.
    pub fn all_hosts(&self) -> Vec<&str> {
        let mut hosts: Vec<&str> = Vec::new();
        for host in self.roles.iter().flat_map(|r| r.host_names()) {
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        for acc in &self.accessories {
            for host in &acc.hosts {
                if !hosts.contains(&host.as_str()) {
                    hosts.push(host);
                }
            }
        }
        hosts
    }

    /// `<service>` or `<service>-<destination>`: the app directory and lock/audit suffix.
    pub fn service_and_destination(&self) -> String {
        match &self.destination {
            Some(d) => format!("{}-{}", self.service, d),
            None => self.service.clone(),
        }
    }

    /// The container-name prefix of a role: `<service>-<role>[-<destination>]`.
    pub fn container_prefix(&self, role: &str) -> String {
        match &self.destination {
            Some(d) => format!("{}-{}-{}", self.service, role, d),
            None => format!("{}-{}", self.service, role),
        }
    }

    /// `latest` or `latest-<destination>`.
    pub fn latest_tag(&self) -> String {
        match &self.destination {
            Some(d) => format!("latest-{d}"),
            None => "latest".to_string(),
        }
    }

    /// The env of `role` on `host`: root, then the role's, then each of the host's tags.
    pub fn env_for(&self, role: &Role, host: &str) -> Env {
        let mut env = self.env.clone();
        env.merge(&role.env);
        if let Some(h) = role.hosts.iter().find(|h| h.name == host) {
            for tag in &h.tags {
                if let Some((_, tag_env)) = self.env_tags.iter().find(|(t, _)| t == tag) {
                    env.merge(tag_env);
                }
            }
        }
        env
    }

    /// The output level of `hook`.
    pub fn hook_output(&self, hook: &str) -> Option<HookOutputLevel> {
        self.hooks_output
            .per_hook
            .iter()
            .find(|(h, _)| h == hook)
            .map(|(_, l)| *l)
            .or(self.hooks_output.all)
    }
}

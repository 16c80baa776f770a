//! The command line, shaped like kamal-proxy's (`run`, `deploy`, `remove`, `stop`, `resume`,
//! `list`), so `docker exec kamal-proxy kamal-proxy deploy …` from Kamal or dray parses as is.
//! Every flag of kamal-proxy's `deploy`, `rollout` and `run` (v0.9.2 and main) is served (see
//! [`DeployArgs`], [`RolloutCommand`]) but `run --http3`, refused with a message (no QUIC
//! stack); never accepted and ignored.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::duration::parse_duration;
use super::service::{HealthCheck, ServiceSpec, ServiceState, TargetOptions, TlsSettings};

/// `dray-proxy` (also installed as `kamal-proxy`).
#[derive(Debug, Parser)]
#[command(
    name = "kamal-proxy",
    about = "dray-proxy: an HTTP proxy for zero downtime deployments, kamal-proxy compatible"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Run(RunArgs),
    /// Deploy a target for a service: health-check it, switch traffic, drain the old one.
    Deploy(Box<DeployArgs>),
    /// Remove a service.
    #[command(alias = "rm")]
    Remove(ServiceArg),
    /// Stop a service (maintenance: answer 503 with a message).
    Stop(StopArgs),
    /// Resume a stopped service.
    Resume(ServiceArg),
    /// kamal-proxy's `pause` (hold requests until `resume`): refused, dray-proxy does not
    /// hold requests.
    Pause(PauseArgs),
    /// List the services.
    #[command(alias = "ls")]
    List,
    /// Manage rollout settings (kamal-proxy's `rollout deploy|set|stop`).
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// dray-proxy only: the supervisor that `run` is (its status, a handover to a new binary).
    #[command(subcommand)]
    Supervisor(SupervisorCommand),
}

/// `supervisor` subcommands (dray-proxy only; see [`crate::supervisor`]).
#[derive(Debug, Subcommand)]
pub enum SupervisorCommand {
    /// The supervisor's and the serving server's pids and versions.
    Status,
    /// Hand the listening sockets over to a new binary without refusing a connection: start
    /// it, wait until it serves the saved routes, drain and stop the old server; the new
    /// binary replaces this one. On any failure the old server goes on serving.
    Upgrade(UpgradeArgs),
    /// The handover protocol this binary speaks (a number).
    Protocol,
}

/// `supervisor upgrade` flags.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The new dray-proxy binary (in the container).
    #[arg(long)]
    pub binary: std::path::PathBuf,
    /// The binary was put there for this upgrade: moved into place when the handover worked,
    /// removed when it failed (without: copied into place, never removed).
    #[arg(long)]
    pub staged: bool,
    /// Longest wait for the old server's in-flight requests and WebSockets.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub drain_timeout: Duration,
    /// Longest wait for the old server to pause its control socket and the new one to serve.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub ready_timeout: Duration,
}

/// `rollout` subcommands.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Deploy the rollout target (health-checked like `deploy`) beside the service's target.
    Deploy(RolloutDeployArgs),
    /// Set the traffic split: requests whose `kamal-rollout` cookie is in the allowlist, or
    /// hashes into the percentage, go to the rollout target.
    Set(RolloutSetArgs),
    /// Stop the rollout: every request goes to the service's target again.
    Stop(ServiceArg),
}

/// `rollout deploy` flags.
#[derive(Debug, Args)]
pub struct RolloutDeployArgs {
    /// The service.
    pub service: String,
    /// Target `host:port`, one or more (load balanced).
    #[arg(long, required = true, value_delimiter = ',')]
    pub target: Vec<String>,
    /// Read targets `host:port` of the rollout (reads go to them, as with `deploy`).
    #[arg(long, value_delimiter = ',')]
    pub read_target: Vec<String>,
    /// Longest wait for the rollout target to become healthy.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub deploy_timeout: Duration,
    /// Longest wait for in-flight requests on the replaced rollout target.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub drain_timeout: Duration,
}

/// `rollout set` flags (one of `--percent`, `--list` is required).
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("split").required(true).multiple(true).args(["percent", "list"])))]
pub struct RolloutSetArgs {
    /// The service.
    pub service: String,
    /// Percentage of traffic to send to the rollout target.
    #[arg(long, allow_negative_numbers = true)]
    pub percent: Option<i64>,
    /// `kamal-rollout` cookie values always sent to the rollout target.
    #[arg(long, value_delimiter = ',')]
    pub list: Vec<String>,
}

impl RolloutDeployArgs {
    /// The targets and read targets, or why they cannot be served.
    pub fn targets(&self) -> Result<(Vec<String>, Vec<String>), String> {
        both_targets(&self.target, &self.read_target)
    }
}

/// The `--target`s and `--read-target`s, checked: none in both.
fn both_targets(
    targets: &[String],
    read_targets: &[String],
) -> Result<(Vec<String>, Vec<String>), String> {
    let targets = check_targets(targets, "--target", true)?;
    let read_targets = check_targets(read_targets, "--read-target", false)?;
    if let Some(t) = read_targets.iter().find(|t| targets.contains(t)) {
        return Err(format!(
            "target {t:?} is given as both --target and --read-target"
        ));
    }
    Ok((targets, read_targets))
}

/// The `--target`s (or `--read-target`s), checked: each `host:port`, none twice; at least one
/// when `required`.
fn check_targets(targets: &[String], flag: &str, required: bool) -> Result<Vec<String>, String> {
    let targets = non_empty(targets);
    if targets.is_empty() && required {
        return Err(format!("a {flag} is required"));
    }
    for (i, target) in targets.iter().enumerate() {
        if !target.contains(':') {
            return Err(format!("target {target:?} must be host:port"));
        }
        if targets[..i].contains(target) {
            return Err(format!("target {target:?} is given twice"));
        }
    }
    Ok(targets)
}

/// `run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Include debugging logs.
    #[arg(long, env = "DEBUG", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool, default_value = "false")]
    pub debug: bool,
    /// Port to serve HTTP traffic on.
    #[arg(long, env = "HTTP_PORT", default_value_t = 80)]
    pub http_port: u16,
    /// Port to serve HTTPS traffic on (services deployed with `--tls`).
    #[arg(long, env = "HTTPS_PORT", default_value_t = 443)]
    pub https_port: u16,
    /// Port to serve Prometheus metrics on, at `/metrics` (0: no metrics).
    #[arg(long, env = "METRICS_PORT", default_value_t = 0)]
    pub metrics_port: u16,
    /// HTTP/3: refused (dray-proxy has no QUIC stack).
    #[arg(long)]
    pub http3: bool,
    /// Do not log each request.
    #[arg(long, env = "DRAY_PROXY_QUIET", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool, default_value = "false")]
    pub quiet: bool,
}

/// A service name argument.
#[derive(Debug, Args)]
pub struct ServiceArg {
    /// The service.
    pub service: String,
}

/// kamal-proxy's `pause` flags (parsed so the refusal names the command, not a flag).
#[derive(Debug, Args)]
pub struct PauseArgs {
    /// The service.
    pub service: String,
    /// How long in-flight requests may take to complete.
    #[arg(long, value_parser = parse_duration)]
    pub drain_timeout: Option<Duration>,
    /// How long to hold requests before shedding them.
    #[arg(long, value_parser = parse_duration)]
    pub max_pause: Option<Duration>,
}

/// `stop` flags.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// The service.
    pub service: String,
    /// How long in-flight requests may take to complete.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub drain_timeout: Duration,
    /// Message shown to clients while stopped.
    #[arg(long, default_value = "")]
    pub message: String,
}

/// `deploy` flags: every flag Kamal 2.12 can send, plus a few more of kamal-proxy's.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The service.
    pub service: String,
    /// Target `host:port`, one or more (load balanced: each health-checked at deploy, requests
    /// to the healthy one with the fewest in flight).
    #[arg(long, required = true, value_delimiter = ',')]
    pub target: Vec<String>,
    /// Read targets `host:port`: `GET`/`HEAD` requests (not WebSockets, unless
    /// `--read-target-websockets`) go to them, unless the client wrote within the writer
    /// affinity timeout.
    #[arg(long, value_delimiter = ',')]
    pub read_target: Vec<String>,
    /// Host(s) served (none: every host).
    #[arg(long, value_delimiter = ',')]
    pub host: Vec<String>,
    /// Path prefix(es) served.
    #[arg(long, value_delimiter = ',')]
    pub path_prefix: Vec<String>,
    /// Strip the path prefix before forwarding (default true).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub strip_path_prefix: Option<bool>,
    /// Serve the hosts on the https port (needs `--host`, and the root path). The certificate:
    /// `--tls-certificate-path`/`--tls-private-key-path`, else ACME on the first TLS request.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub tls: Option<bool>,
    /// With `--tls` and no `--host`: ask this URL (`?host=H`; a path is asked of the
    /// target) before issuing a certificate for a host; 200 allows it.
    #[arg(long)]
    pub tls_on_demand_url: Option<String>,
    /// ACME from Let's Encrypt's staging directory.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub tls_staging: Option<bool>,
    /// ACME directory URL (dray-proxy only; default Let's Encrypt).
    #[arg(long)]
    pub tls_acme_directory: Option<String>,
    /// PEM file of roots trusted for the ACME directory's TLS, besides the Mozilla roots
    /// (dray-proxy only; a test CA such as pebble's).
    #[arg(long)]
    pub tls_acme_ca_certs: Option<String>,
    /// PEM certificate chain for the hosts (read again at each deploy).
    #[arg(long)]
    pub tls_certificate_path: Option<String>,
    /// PEM private key of the certificate.
    #[arg(long)]
    pub tls_private_key_path: Option<String>,
    /// Where ACME accounts and certificates are kept (default `<state dir>/certs`).
    #[arg(long)]
    pub tls_acme_cache_path: Option<String>,
    /// Redirect plain HTTP to https with a 301 (default true).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub tls_redirect: Option<bool>,
    /// Redirect requests for the other hosts to this one (301).
    #[arg(long)]
    pub canonical_host: Option<String>,
    /// Longest wait for the new target to become healthy.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub deploy_timeout: Duration,
    /// Longest wait for in-flight requests on the old target.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub drain_timeout: Duration,
    /// Skip the health check.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub force: Option<bool>,
    /// Time between health checks.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub health_check_interval: Duration,
    /// Time one health check may take.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub health_check_timeout: Duration,
    /// Path of the health check.
    #[arg(long, default_value = "/up")]
    pub health_check_path: String,
    /// Port of the health check (0: the target's).
    #[arg(long, default_value_t = 0)]
    pub health_check_port: u16,
    /// `Host` header of health checks.
    #[arg(long)]
    pub health_check_host: Option<String>,
    /// After a write, how long the client's reads still go to the targets rather than the
    /// read targets (the `kamal-writer` cookie; default 1s, 0: none). Needs `--read-target`.
    #[arg(long, value_parser = parse_duration)]
    pub writer_affinity_timeout: Option<Duration>,
    /// WebSocket upgrades go to the read targets too. Needs `--read-target`.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub read_target_websockets: Option<bool>,
    /// Longest wait for the target's response.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub target_timeout: Duration,
    /// Read the whole request body before forwarding it (else it is streamed).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub buffer_requests: Option<bool>,
    /// Read the whole response body before sending it (else it is streamed;
    /// `text/event-stream` and upgraded connections are never buffered).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub buffer_responses: Option<bool>,
    /// Bytes of a buffered body kept in memory (default 1 MB); the rest is spilled to a
    /// temporary file.
    #[arg(long, allow_negative_numbers = true)]
    pub buffer_memory: Option<i64>,
    /// Largest buffered request body (0: no limit); a longer one gets 413.
    #[arg(long, allow_negative_numbers = true)]
    pub max_request_body: Option<i64>,
    /// Largest buffered response body (0: no limit); a longer one gets 500, as kamal-proxy.
    #[arg(long, allow_negative_numbers = true)]
    pub max_response_body: Option<i64>,
    /// Directory of `<status>.html` pages (Go templates; 503 gets `{{ .Message }}`) served
    /// instead of the built-in ones for the errors the proxy answers.
    #[arg(long)]
    pub error_pages: Option<String>,
    /// Request headers to log.
    #[arg(long, value_delimiter = ',')]
    pub log_request_header: Vec<String>,
    /// Response headers to log.
    #[arg(long, value_delimiter = ',')]
    pub log_response_header: Vec<String>,
    /// Request paths (after the path prefix) not counted in the metrics.
    #[arg(long, value_delimiter = ',')]
    pub exclude_metrics_path: Vec<String>,
    /// Trust and extend the client's `X-Forwarded-*` headers (default: true without TLS).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub forward_headers: Option<bool>,
    /// Request header holding the original client IP; when present, it replaces
    /// `X-Forwarded-For` (then extended with the peer's address when forwarding headers).
    #[arg(long)]
    pub client_ip_header: Option<String>,
    /// Put the target's cookies below the path prefix (with `--strip-path-prefix`): a
    /// `Set-Cookie` for no domain or the request's host gets `Path=<prefix>/<its path>`.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub scope_cookie_paths: Option<bool>,
}

impl DeployArgs {
    /// The service this deploy describes, or why it cannot be served.
    pub fn to_spec(&self) -> Result<ServiceSpec, String> {
        let (targets, read_targets) = both_targets(&self.target, &self.read_target)?;
        // Without read targets these would do nothing: refused rather than ignored
        // (kamal-proxy accepts them and ignores them).
        if read_targets.is_empty() {
            let pointless = [
                (
                    "--writer-affinity-timeout",
                    self.writer_affinity_timeout.is_some(),
                ),
                (
                    "--read-target-websockets",
                    self.read_target_websockets.is_some(),
                ),
            ];
            if let Some((flag, _)) = pointless.iter().find(|(_, given)| *given) {
                return Err(format!(
                    "{flag} needs --read-target (it decides which requests go to the read targets)"
                ));
            }
        }
        // kamal-proxy's own checks (`deploy`'s preRun).
        if self.max_request_body.is_some() && self.buffer_requests.is_none() {
            return Err(
                "max-request-body can only be set when request buffering is enabled".into(),
            );
        }
        if self.max_response_body.is_some() && self.buffer_responses.is_none() {
            return Err(
                "max-response-body can only be set when response buffering is enabled".into(),
            );
        }
        let size = |flag: &str, v: Option<i64>, default: u64| -> Result<u64, String> {
            match v {
                None => Ok(default),
                Some(n) => u64::try_from(n).map_err(|_| format!("--{flag} must not be negative")),
            }
        };
        let max_request_body = size("max-request-body", self.max_request_body, 0)?;
        let max_response_body = size("max-response-body", self.max_response_body, 0)?;
        let buffer_memory = size(
            "buffer-memory",
            self.buffer_memory,
            super::service::DEFAULT_BUFFER_MEMORY,
        )?;
        let tls = self.tls.unwrap_or(false);
        let hosts = non_empty(&self.host);
        let path_prefixes = non_empty(&self.path_prefix);
        let (cert, key) = (
            given(&self.tls_certificate_path),
            given(&self.tls_private_key_path),
        );
        if cert.is_some() != key.is_some() {
            return Err(
                "--tls-certificate-path and --tls-private-key-path must be given together".into(),
            );
        }
        let on_demand = given(&self.tls_on_demand_url);
        if on_demand.is_some() && !tls {
            return Err("TLS must be enabled to use a TLS on-demand URL".into());
        }
        if tls {
            if let Some(url) = on_demand {
                if !hosts.is_empty() {
                    return Err("cannot set hosts when using a TLS on-demand URL".into());
                }
                if cert.is_some() || key.is_some() {
                    return Err(
                        "cannot use a custom TLS certificate with a TLS on-demand URL".into(),
                    );
                }
                if given(&self.canonical_host).is_some() {
                    return Err("cannot set a canonical host when using a TLS on-demand URL".into());
                }
                super::acme::on_demand::OnDemandUrl::parse(url)?;
            } else if hosts.is_empty() {
                return Err("host must be set when using TLS".into());
            }
            if !path_prefixes.is_empty()
                && !path_prefixes
                    .iter()
                    .any(|p| super::service::normalize_prefix(p) == "/")
            {
                return Err("TLS settings must be specified on the root path service".into());
            }
        }
        let canonical_host = given(&self.canonical_host).map(str::to_string);
        if let Some(c) = &canonical_host {
            if !hosts.is_empty() && !hosts.contains(c) {
                return Err(format!(
                    "canonical-host '{c}' must be present in the hosts list: [{}]",
                    hosts.join(" ")
                ));
            }
        }
        let acme_directory = match given(&self.tls_acme_directory) {
            Some(d) => Some(d.to_string()),
            None if self.tls_staging.unwrap_or(false) => {
                Some(super::acme::LETS_ENCRYPT_STAGING.to_string())
            }
            None => None,
        };
        let acme_ca_certs = given(&self.tls_acme_ca_certs).map(str::to_string);
        if let Some(path) = &acme_ca_certs {
            if !tls {
                return Err("TLS must be enabled to use --tls-acme-ca-certs".into());
            }
            if cert.is_some() {
                return Err("cannot use --tls-acme-ca-certs with a custom TLS certificate".into());
            }
            super::acme::read_roots(std::path::Path::new(path))?;
        }
        let mut spec = ServiceSpec {
            name: self.service.clone(),
            target: String::new(),
            targets: Vec::new(),
            read_targets,
            writer_affinity_timeout: self
                .writer_affinity_timeout
                .unwrap_or(super::service::DEFAULT_WRITER_AFFINITY),
            read_targets_accept_websockets: self.read_target_websockets.unwrap_or(false),
            hosts,
            path_prefixes,
            strip_path_prefix: self.strip_path_prefix.unwrap_or(true),
            tls,
            tls_settings: TlsSettings {
                certificate_path: cert.map(str::to_string),
                private_key_path: key.map(str::to_string),
                redirect: self.tls_redirect.unwrap_or(true),
                acme_directory,
                acme_cache_path: given(&self.tls_acme_cache_path).map(str::to_string),
                acme_ca_certs,
                on_demand_url: on_demand.map(str::to_string),
            },
            canonical_host,
            error_pages: given(&self.error_pages).map(str::to_string),
            options: TargetOptions {
                health_check: HealthCheck {
                    path: self.health_check_path.clone(),
                    interval: self.health_check_interval.max(Duration::from_millis(10)),
                    timeout: self.health_check_timeout,
                    host: self.health_check_host.clone(),
                    port: self.health_check_port,
                },
                target_timeout: self.target_timeout,
                forward_headers: self.forward_headers.unwrap_or(!tls),
                log_request_headers: non_empty(&self.log_request_header),
                log_response_headers: non_empty(&self.log_response_header),
                buffer_requests: self.buffer_requests.unwrap_or(false),
                buffer_responses: self.buffer_responses.unwrap_or(false),
                buffer_memory,
                max_request_body,
                max_response_body,
                scope_cookie_paths: self.scope_cookie_paths.unwrap_or(false),
            },
            exclude_metrics_paths: non_empty(&self.exclude_metrics_path),
            client_ip_header: given(&self.client_ip_header).map(str::to_string),
            state: ServiceState::Running,
            rollout: None,
            extra: Default::default(),
        };
        spec.set_targets(targets);
        Ok(spec)
    }
}

/// A flag's value, trimmed, when given and not empty.
fn given(o: &Option<String>) -> Option<&str> {
    o.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn non_empty(v: &[String]) -> Vec<String> {
    v.iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" | "" => Ok(false),
        other => Err(format!("invalid boolean {other:?}")),
    }
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;

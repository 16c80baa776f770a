//! The command line, shaped like kamal-proxy's (`run`, `deploy`, `remove`, `stop`, `resume`,
//! `list`), so `docker exec kamal-proxy kamal-proxy deploy …` from Kamal or dray parses as is.
//! Flags dray-proxy does not implement (TLS, buffering, …) are accepted and ignored.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::duration::parse_duration;
use super::service::{HealthCheck, ServiceSpec, ServiceState, TargetOptions};

/// `dray-proxy` (also installed as `kamal-proxy`).
#[derive(Debug, Parser)]
#[command(
    name = "kamal-proxy",
    version,
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
    /// List the services.
    #[command(alias = "ls")]
    List,
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
    /// Port to serve HTTPS traffic on (accepted; dray-proxy serves no TLS).
    #[arg(long, env = "HTTPS_PORT", default_value_t = 443)]
    pub https_port: u16,
    /// Metrics port (accepted; dray-proxy publishes no metrics).
    #[arg(long, env = "METRICS_PORT", default_value_t = 0)]
    pub metrics_port: u16,
    /// HTTP/3 (accepted and ignored).
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
    /// Target `host:port` (one; kamal-proxy's load balancing over several is not supported).
    #[arg(long, required = true, value_delimiter = ',')]
    pub target: Vec<String>,
    /// Read-only targets (accepted; not supported).
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
    /// TLS (accepted; dray-proxy serves HTTP only).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub tls: Option<bool>,
    /// Accepted and ignored.
    #[arg(long)]
    pub tls_on_demand_url: Option<String>,
    /// Accepted and ignored.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub tls_staging: Option<bool>,
    /// Accepted and ignored.
    #[arg(long)]
    pub tls_certificate_path: Option<String>,
    /// Accepted and ignored.
    #[arg(long)]
    pub tls_private_key_path: Option<String>,
    /// Accepted and ignored.
    #[arg(long)]
    pub tls_acme_cache_path: Option<String>,
    /// Accepted and ignored.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub tls_redirect: Option<bool>,
    /// Accepted and ignored.
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
    /// Accepted and ignored.
    #[arg(long, value_parser = parse_duration)]
    pub writer_affinity_timeout: Option<Duration>,
    /// Accepted and ignored.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub read_target_websockets: Option<bool>,
    /// Longest wait for the target's response.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub target_timeout: Duration,
    /// Accepted and ignored (requests stream).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub buffer_requests: Option<bool>,
    /// Accepted and ignored (responses stream).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub buffer_responses: Option<bool>,
    /// Accepted and ignored.
    #[arg(long)]
    pub buffer_memory: Option<i64>,
    /// Accepted and ignored.
    #[arg(long)]
    pub max_request_body: Option<i64>,
    /// Accepted and ignored.
    #[arg(long)]
    pub max_response_body: Option<i64>,
    /// Accepted and ignored.
    #[arg(long)]
    pub error_pages: Option<String>,
    /// Request headers to log.
    #[arg(long, value_delimiter = ',')]
    pub log_request_header: Vec<String>,
    /// Response headers to log.
    #[arg(long, value_delimiter = ',')]
    pub log_response_header: Vec<String>,
    /// Accepted and ignored.
    #[arg(long, value_delimiter = ',')]
    pub exclude_metrics_path: Vec<String>,
    /// Trust and extend the client's `X-Forwarded-*` headers (default: true without TLS).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub forward_headers: Option<bool>,
    /// Accepted and ignored.
    #[arg(long)]
    pub client_ip_header: Option<String>,
    /// Accepted and ignored.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    pub scope_cookie_paths: Option<bool>,
}

impl DeployArgs {
    /// The service this deploy describes, or why it cannot be served.
    pub fn to_spec(&self) -> Result<ServiceSpec, String> {
        let target = match self.target.as_slice() {
            [one] => one.trim().to_string(),
            [] => return Err("a --target is required".into()),
            _ => return Err("dray-proxy serves one target per service".into()),
        };
        if !target.contains(':') {
            return Err(format!("target {target:?} must be host:port"));
        }
        let tls = self.tls.unwrap_or(false);
        Ok(ServiceSpec {
            name: self.service.clone(),
            target,
            hosts: non_empty(&self.host),
            path_prefixes: non_empty(&self.path_prefix),
            strip_path_prefix: self.strip_path_prefix.unwrap_or(true),
            tls,
            options: TargetOptions {
                health_check: HealthCheck {
                    path: self.health_check_path.clone(),
                    interval: self.health_check_interval.max(Duration::from_millis(10)),
                    timeout: self.health_check_timeout,
                    host: self.health_check_host.clone(),
                },
                target_timeout: self.target_timeout,
                forward_headers: self.forward_headers.unwrap_or(!tls),
                log_request_headers: non_empty(&self.log_request_header),
                log_response_headers: non_empty(&self.log_response_header),
            },
            state: ServiceState::Running,
        })
    }
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

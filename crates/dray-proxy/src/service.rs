//! A service as deployed: its name, where it is served (hosts, path prefixes), its target and
//! the per-target options. This is what `deploy` sends, what `list` shows and what the state
//! file keeps.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The health check of a target: `GET <path>` every `interval`, each within `timeout`; a 2xx
/// answer is healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// Path requested, `/up` by default.
    pub path: String,
    /// Time between two checks.
    #[serde(with = "millis")]
    pub interval: Duration,
    /// Time one check may take.
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// `Host` header sent with checks; the target's own authority when `None`.
    pub host: Option<String>,
    /// Port checked instead of the target's (`--health-check-port`); 0 for the target's.
    #[serde(default)]
    pub port: u16,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: "/up".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            host: None,
            port: 0,
        }
    }
}

/// Options applying to requests proxied to the service's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetOptions {
    /// The health check run before traffic is switched to a new target.
    pub health_check: HealthCheck,
    /// Longest wait for the target's response headers (answers 504 past it).
    #[serde(with = "millis")]
    pub target_timeout: Duration,
    /// Trust the client's `X-Forwarded-*` headers and extend them, instead of replacing them.
    pub forward_headers: bool,
    /// Request headers copied into the request log.
    pub log_request_headers: Vec<String>,
    /// Response headers copied into the request log.
    pub log_response_headers: Vec<String>,
    /// Read the whole request body before forwarding it (`--buffer-requests`).
    #[serde(default)]
    pub buffer_requests: bool,
    /// Read the whole response body before sending it (`--buffer-responses`).
    #[serde(default)]
    pub buffer_responses: bool,
    /// Bytes of a buffered body kept in memory; the rest goes to a temporary file
    /// (`--buffer-memory`, 1 MB by default).
    #[serde(default = "default_buffer_memory")]
    pub buffer_memory: u64,
    /// Largest buffered request body, 0 for no limit (`--max-request-body`; 413 past it).
    #[serde(default)]
    pub max_request_body: u64,
    /// Scope the `Path` of the target's `Set-Cookie`s (those for no domain or the request's
    /// host) below the matched, stripped path prefix (`--scope-cookie-paths`).
    #[serde(default)]
    pub scope_cookie_paths: bool,
    /// Largest buffered response body, 0 for no limit (`--max-response-body`; 500 past it,
    /// as kamal-proxy answers).
    #[serde(default)]
    pub max_response_body: u64,
}

/// kamal-proxy's `DefaultMaxMemoryBufferSize`: 1 MB.
pub const DEFAULT_BUFFER_MEMORY: u64 = 1024 * 1024;

fn default_buffer_memory() -> u64 {
    DEFAULT_BUFFER_MEMORY
}

impl Default for TargetOptions {
    fn default() -> Self {
        TargetOptions {
            health_check: HealthCheck::default(),
            target_timeout: Duration::from_secs(30),
            forward_headers: true,
            log_request_headers: Vec::new(),
            log_response_headers: Vec::new(),
            buffer_requests: false,
            buffer_responses: false,
            buffer_memory: DEFAULT_BUFFER_MEMORY,
            max_request_body: 0,
            max_response_body: 0,
            scope_cookie_paths: false,
        }
    }
}

/// Whether a service answers requests or is in maintenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ServiceState {
    /// Requests go to the target.
    #[default]
    Running,
    /// Requests get a 503 page carrying `message` (`kamal-proxy stop`).
    Stopped {
        /// Shown to clients; may be empty.
        message: String,
    },
}

/// How a TLS service gets its certificate, and whether plain HTTP is redirected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsSettings {
    /// PEM certificate chain (`--tls-certificate-path`); with the key, no ACME.
    pub certificate_path: Option<String>,
    /// PEM private key (`--tls-private-key-path`).
    pub private_key_path: Option<String>,
    /// Answer plain HTTP with a 301 to https (`--tls-redirect`, default true).
    pub redirect: bool,
    /// ACME directory URL; `None` for Let's Encrypt (`--tls-staging`: its staging directory).
    pub acme_directory: Option<String>,
    /// Where ACME accounts and certificates are kept (`--tls-acme-cache-path`); `None` for
    /// `<state dir>/certs`. Scoped below it by the SHA-256 of the directory URL, as
    /// kamal-proxy does, so its files and ours are interchangeable.
    pub acme_cache_path: Option<String>,
    /// PEM roots trusted, besides the Mozilla roots and `DRAY_PROXY_ACME_CA_CERTS`, for the
    /// ACME directory's TLS (`--tls-acme-ca-certs`, dray-proxy only; read at each deploy and
    /// start).
    pub acme_ca_certs: Option<String>,
    /// `--tls-on-demand-url`: for a service without hosts, the endpoint approving each host
    /// before its certificate is issued.
    pub on_demand_url: Option<String>,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            certificate_path: None,
            private_key_path: None,
            redirect: true,
            acme_directory: None,
            acme_cache_path: None,
            acme_ca_certs: None,
            on_demand_url: None,
        }
    }
}

impl TlsSettings {
    /// The certificate and key files, when both are given (no ACME then).
    pub fn files(&self) -> Option<(&str, &str)> {
        match (&self.certificate_path, &self.private_key_path) {
            (Some(c), Some(k)) if !c.is_empty() && !k.is_empty() => Some((c, k)),
            _ => None,
        }
    }
}

/// kamal-proxy's `DefaultWriterAffinityTimeout`.
pub const DEFAULT_WRITER_AFFINITY: Duration = Duration::from_secs(1);

fn default_writer_affinity() -> Duration {
    DEFAULT_WRITER_AFFINITY
}

/// A service's rollout (kamal-proxy's rollout slot and `RolloutController`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutSpec {
    /// `host:port` of the rollout target (`rollout deploy --target`); with several, the first
    /// of `targets`.
    pub target: String,
    /// Every rollout target, when there are several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Read targets of the rollout (`rollout deploy --read-target`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_targets: Vec<String>,
    /// The traffic split (`rollout set`); `None` before it and after `rollout stop`, when every
    /// request goes to the service's own target.
    #[serde(default)]
    pub split: Option<RolloutSplit>,
}

/// Which requests go to the rollout target: those whose `kamal-rollout` cookie value is in
/// `allowlist`, or whose 32-bit FNV-1a hash is at most `percentage`% of `u32::MAX`. Requests
/// without the cookie never do (kamal-proxy's `RolloutController`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutSplit {
    /// `rollout set --percent`.
    pub percentage: i64,
    /// `rollout set --list`.
    #[serde(default)]
    pub allowlist: Vec<String>,
}

/// The cookie naming a request's rollout group.
pub const ROLLOUT_COOKIE: &str = "kamal-rollout";

impl RolloutSplit {
    /// Whether a request with this `kamal-rollout` cookie value goes to the rollout target.
    pub fn uses_rollout(&self, value: &str) -> bool {
        if value.is_empty() {
            return false;
        }
        if self.allowlist.iter().any(|v| v == value) {
            return true;
        }
        let split_point = f64::from(u32::MAX) * (self.percentage as f64 / 100.0);
        f64::from(fnv1a32(value.as_bytes())) <= split_point
    }
}

/// 32-bit FNV-1a.
fn fnv1a32(data: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in data {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Everything `deploy` says about a service, kept across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// The service name (`<service>-<role>[-<destination>]` from Kamal).
    pub name: String,
    /// `host:port` of the target as given (a container id and port, under Docker); with
    /// several, the first of [`ServiceSpec::targets`] (what an older dray-proxy serves).
    pub target: String,
    /// Every target (`--target a,b,c`, load balanced), when there are several; empty for one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Read targets (`--read-target`): reads (`GET`, `HEAD`) go to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_targets: Vec<String>,
    /// After a write, how long the client's reads still go to the (writer) targets
    /// (`--writer-affinity-timeout`, kamal-proxy's default 1s; 0 for no affinity).
    #[serde(default = "default_writer_affinity", with = "millis")]
    pub writer_affinity_timeout: Duration,
    /// WebSocket upgrades count as reads (`--read-target-websockets`).
    #[serde(default)]
    pub read_targets_accept_websockets: bool,
    /// Host names served; empty for the default (catch-all) service.
    pub hosts: Vec<String>,
    /// Path prefixes served; empty means `/`.
    pub path_prefixes: Vec<String>,
    /// Remove the matched prefix from the path before forwarding.
    pub strip_path_prefix: bool,
    /// Served on the https port (`--tls`).
    pub tls: bool,
    /// Certificate source and redirect, with `tls`.
    #[serde(default)]
    pub tls_settings: TlsSettings,
    /// Redirect every request to this host (`--canonical-host`).
    #[serde(default)]
    pub canonical_host: Option<String>,
    /// Directory of `<status>.html` pages for the errors the proxy answers (`--error-pages`).
    #[serde(default)]
    pub error_pages: Option<String>,
    /// Per-target options.
    pub options: TargetOptions,
    /// Request paths (after the matched prefix) not counted in the metrics
    /// (`--exclude-metrics-path`).
    #[serde(default)]
    pub exclude_metrics_paths: Vec<String>,
    /// A request header holding the client's IP (`--client-ip-header`): when a request has
    /// it, its value replaces the request's `X-Forwarded-For` before forwarding.
    #[serde(default)]
    pub client_ip_header: Option<String>,
    /// The rollout target and its traffic split (`rollout deploy|set|stop`).
    #[serde(default)]
    pub rollout: Option<RolloutSpec>,
    /// Running or in maintenance.
    #[serde(default)]
    pub state: ServiceState,
    /// Fields of the state file this version does not know (a newer dray-proxy's), kept as
    /// they are when the state is written back.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl RolloutSpec {
    /// The rollout's (writer) targets.
    pub fn writer_targets(&self) -> Vec<String> {
        writers(&self.target, &self.targets)
    }
}

fn writers(first: &str, all: &[String]) -> Vec<String> {
    if all.is_empty() {
        vec![first.to_string()]
    } else {
        all.to_vec()
    }
}

impl ServiceSpec {
    /// The (writer) targets: `targets`, or the one `target`.
    pub fn writer_targets(&self) -> Vec<String> {
        writers(&self.target, &self.targets)
    }

    /// Set the writer targets (the first also as `target`).
    pub fn set_targets(&mut self, targets: Vec<String>) {
        self.target = targets.first().cloned().unwrap_or_default();
        self.targets = if targets.len() > 1 {
            targets
        } else {
            Vec::new()
        };
    }

    /// Serves the root path (`/`), where kamal-proxy takes a host's TLS settings from.
    pub fn serves_root(&self) -> bool {
        self.effective_prefixes().iter().any(|p| p == "/")
    }

    /// The path prefixes with the default `/` when none was given.
    pub fn effective_prefixes(&self) -> Vec<String> {
        if self.path_prefixes.is_empty() {
            vec!["/".into()]
        } else {
            self.path_prefixes
                .iter()
                .map(|p| normalize_prefix(p))
                .collect()
        }
    }
}

/// A path prefix with a leading `/` and no trailing `/` (except the root itself).
pub fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

/// Durations stored as whole milliseconds in the state file.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn rollout_split_by_allowlist_and_percentage() {
        let none = RolloutSplit {
            percentage: 0,
            allowlist: vec!["beta".into()],
        };
        assert!(none.uses_rollout("beta"));
        assert!(!none.uses_rollout("other"));
        assert!(!none.uses_rollout(""));
        let all = RolloutSplit {
            percentage: 100,
            allowlist: vec![],
        };
        assert!(all.uses_rollout("anyone"));
        assert!(!all.uses_rollout(""));
    }

    #[test]
    fn prefixes_are_normalized() {
        assert_eq!(normalize_prefix("/api/"), "/api");
        assert_eq!(normalize_prefix("api"), "/api");
        assert_eq!(normalize_prefix("/"), "/");
        assert_eq!(normalize_prefix(""), "/");
    }
}

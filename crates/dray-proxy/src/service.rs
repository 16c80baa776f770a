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
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: "/up".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            host: None,
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
}

impl Default for TargetOptions {
    fn default() -> Self {
        TargetOptions {
            health_check: HealthCheck::default(),
            target_timeout: Duration::from_secs(30),
            forward_headers: true,
            log_request_headers: Vec::new(),
            log_response_headers: Vec::new(),
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

/// Everything `deploy` says about a service, kept across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// The service name (`<service>-<role>[-<destination>]` from Kamal).
    pub name: String,
    /// `host:port` of the target as given (a container id and port, under Docker).
    pub target: String,
    /// Host names served; empty for the default (catch-all) service.
    pub hosts: Vec<String>,
    /// Path prefixes served; empty means `/`.
    pub path_prefixes: Vec<String>,
    /// Remove the matched prefix from the path before forwarding.
    pub strip_path_prefix: bool,
    /// TLS was asked for (not served by dray-proxy; kept for `list`).
    pub tls: bool,
    /// Per-target options.
    pub options: TargetOptions,
    /// Running or in maintenance.
    #[serde(default)]
    pub state: ServiceState,
}

impl ServiceSpec {
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
    fn prefixes_are_normalized() {
        assert_eq!(normalize_prefix("/api/"), "/api");
        assert_eq!(normalize_prefix("api"), "/api");
        assert_eq!(normalize_prefix("/"), "/");
        assert_eq!(normalize_prefix(""), "/");
    }
}

//! kamal-proxy's own state file, `kamal-proxy.state` in the same directory: a JSON array of
//! its services (Go's `marshalledService`: `options`, `target_options`, `active_targets`,
//! `active_readers`, `rollout_targets`, `rollout_readers`, `pause_controller`,
//! `rollout_controller`; durations in nanoseconds). dray-proxy writes it next to its own state
//! after every change, and reads it at start when it is newer than its own (kamal-proxy ran
//! last) or its own is missing, so either proxy can replace the other and keep the routes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::service::{
    HealthCheck, RolloutSpec, RolloutSplit, ServiceSpec, ServiceState, TargetOptions, TlsSettings,
};

/// The file's name inside the state directory.
pub const KAMAL_STATE_FILE: &str = "kamal-proxy.state";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct KService {
    name: String,
    options: KOptions,
    target_options: KTargetOptions,
    active_targets: Option<Vec<String>>,
    active_readers: Option<Vec<String>>,
    rollout_targets: Option<Vec<String>>,
    rollout_readers: Option<Vec<String>>,
    pause_controller: Option<KPause>,
    rollout_controller: Option<KRollout>,
    // Older kamal-proxy versions (one target, hosts at the top).
    #[serde(skip_serializing_if = "Option::is_none")]
    active_target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollout_target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hosts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_prefixes: Option<Vec<String>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct KOptions {
    hosts: Option<Vec<String>>,
    path_prefixes: Option<Vec<String>>,
    tls_enabled: bool,
    tls_certificate_path: String,
    tls_private_key_path: String,
    tls_on_demand_url: String,
    tls_redirect: bool,
    canonical_host: String,
    acme_directory: String,
    acme_cache_path: String,
    error_page_path: String,
    strip_prefix: bool,
    writer_affinity_timeout: i64,
    read_targets_accept_websockets: bool,
    exclude_metrics_paths: Option<Vec<String>>,
    client_ip_header: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct KHealthCheck {
    path: String,
    port: i64,
    interval: i64,
    timeout: i64,
    host: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct KTargetOptions {
    health_check_config: KHealthCheck,
    response_timeout: i64,
    buffer_requests: bool,
    buffer_responses: bool,
    max_memory_buffer_size: i64,
    max_request_body_size: i64,
    max_response_body_size: i64,
    log_request_headers: Option<Vec<String>>,
    log_response_headers: Option<Vec<String>>,
    forward_headers: bool,
    scope_cookie_paths: bool,
}

/// `PauseState`: 0 running, 1 paused, 2 stopped.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct KPause {
    state: i64,
    stop_message: String,
    fail_after: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct KRollout {
    percentage: i64,
    percentage_split_point: f64,
    allowlist: Option<Vec<String>>,
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn from_nanos(n: i64) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(0))
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn size(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn export(spec: &ServiceSpec) -> KService {
    let o = &spec.options;
    let hc = &o.health_check;
    let (rollout_targets, rollout_readers, rollout_controller) = match &spec.rollout {
        Some(r) => (
            Some(r.writer_targets()),
            Some(r.read_targets.clone()),
            r.split.as_ref().map(|s| KRollout {
                percentage: s.percentage,
                percentage_split_point: f64::from(u32::MAX) * (s.percentage as f64 / 100.0),
                allowlist: Some(s.allowlist.clone()),
            }),
        ),
        None => (Some(Vec::new()), Some(Vec::new()), None),
    };
    let pause = match &spec.state {
        ServiceState::Running => KPause::default(),
        ServiceState::Stopped { message } => KPause {
            state: 2,
            stop_message: message.clone(),
            fail_after: 0,
        },
    };
    KService {
        name: spec.name.clone(),
        options: KOptions {
            hosts: Some(spec.hosts.clone()),
            path_prefixes: Some(spec.effective_prefixes()),
            tls_enabled: spec.tls,
            tls_certificate_path: opt(&spec.tls_settings.certificate_path),
            tls_private_key_path: opt(&spec.tls_settings.private_key_path),
            tls_on_demand_url: opt(&spec.tls_settings.on_demand_url),
            tls_redirect: spec.tls_settings.redirect,
            canonical_host: opt(&spec.canonical_host),
            acme_directory: opt(&spec.tls_settings.acme_directory),
            acme_cache_path: opt(&spec.tls_settings.acme_cache_path),
            error_page_path: opt(&spec.error_pages),
            strip_prefix: spec.strip_path_prefix,
            writer_affinity_timeout: nanos(spec.writer_affinity_timeout),
            read_targets_accept_websockets: spec.read_targets_accept_websockets,
            exclude_metrics_paths: Some(spec.exclude_metrics_paths.clone()),
            client_ip_header: opt(&spec.client_ip_header),
        },
        target_options: KTargetOptions {
            health_check_config: KHealthCheck {
                path: hc.path.clone(),
                port: i64::from(hc.port),
                interval: nanos(hc.interval),
                timeout: nanos(hc.timeout),
                host: opt(&hc.host),
            },
            response_timeout: nanos(o.target_timeout),
            buffer_requests: o.buffer_requests,
            buffer_responses: o.buffer_responses,
            max_memory_buffer_size: signed(o.buffer_memory),
            max_request_body_size: signed(o.max_request_body),
            max_response_body_size: signed(o.max_response_body),
            log_request_headers: Some(o.log_request_headers.clone()),
            log_response_headers: Some(o.log_response_headers.clone()),
            forward_headers: o.forward_headers,
            scope_cookie_paths: o.scope_cookie_paths,
        },
        active_targets: Some(spec.writer_targets()),
        active_readers: Some(spec.read_targets.clone()),
        rollout_targets,
        rollout_readers,
        pause_controller: Some(pause),
        rollout_controller,
        ..KService::default()
    }
}

/// A kamal-proxy service as dray-proxy serves it; warnings for what it cannot keep.
fn import(k: KService, warnings: &mut Vec<String>) -> Result<ServiceSpec, String> {
    let o = k.options;
    let t = k.target_options;
    let mut writers = k.active_targets.unwrap_or_default();
    if writers.is_empty() {
        writers.extend(k.active_target.filter(|t| !t.is_empty()));
    }
    if writers.is_empty() {
        return Err(format!("service {} has no target", k.name));
    }
    let mut rollout_writers = k.rollout_targets.unwrap_or_default();
    if rollout_writers.is_empty() {
        rollout_writers.extend(k.rollout_target.filter(|t| !t.is_empty()));
    }
    let hosts = o
        .hosts
        .filter(|h| !h.is_empty())
        .or(k.hosts)
        .unwrap_or_default();
    let prefixes = o
        .path_prefixes
        .filter(|p| !p.is_empty())
        .or(k.path_prefixes)
        .unwrap_or_default();
    let state = match k.pause_controller.unwrap_or_default() {
        KPause {
            state: 2,
            stop_message,
            ..
        } => ServiceState::Stopped {
            message: stop_message,
        },
        KPause { state: 1, .. } => {
            // dray-proxy has no `pause` (requests queued): closest is not serving until
            // `resume`, as a paused service does not either.
            warnings.push(format!(
                "service {} was paused by kamal-proxy; dray-proxy has no pause, it is stopped \
                 until `resume`",
                k.name
            ));
            ServiceState::Stopped {
                message: String::new(),
            }
        }
        _ => ServiceState::Running,
    };
    let rollout = (!rollout_writers.is_empty()).then(|| {
        let mut r = RolloutSpec {
            target: rollout_writers[0].clone(),
            targets: Vec::new(),
            read_targets: k.rollout_readers.unwrap_or_default(),
            split: k.rollout_controller.map(|c| RolloutSplit {
                percentage: c.percentage,
                allowlist: c.allowlist.unwrap_or_default(),
            }),
        };
        if rollout_writers.len() > 1 {
            r.targets = rollout_writers;
        }
        r
    });
    let hc = t.health_check_config;
    let defaults = HealthCheck::default();
    let mut spec = ServiceSpec {
        name: k.name,
        target: String::new(),
        targets: Vec::new(),
        read_targets: k.active_readers.unwrap_or_default(),
        writer_affinity_timeout: from_nanos(o.writer_affinity_timeout),
        read_targets_accept_websockets: o.read_targets_accept_websockets,
        hosts,
        path_prefixes: prefixes,
        strip_path_prefix: o.strip_prefix,
        tls: o.tls_enabled,
        tls_settings: TlsSettings {
            certificate_path: non_empty(o.tls_certificate_path),
            private_key_path: non_empty(o.tls_private_key_path),
            redirect: o.tls_redirect,
            acme_directory: non_empty(o.acme_directory),
            acme_cache_path: non_empty(o.acme_cache_path),
            // dray-proxy's own flag; kamal-proxy has no such setting.
            acme_ca_certs: None,
            on_demand_url: non_empty(o.tls_on_demand_url),
        },
        canonical_host: non_empty(o.canonical_host),
        error_pages: non_empty(o.error_page_path),
        options: TargetOptions {
            health_check: HealthCheck {
                path: if hc.path.is_empty() {
                    defaults.path
                } else {
                    hc.path
                },
                interval: if hc.interval > 0 {
                    from_nanos(hc.interval)
                } else {
                    defaults.interval
                },
                timeout: if hc.timeout > 0 {
                    from_nanos(hc.timeout)
                } else {
                    defaults.timeout
                },
                host: non_empty(hc.host),
                port: u16::try_from(hc.port).unwrap_or(0),
            },
            target_timeout: from_nanos(t.response_timeout),
            forward_headers: t.forward_headers,
            log_request_headers: t.log_request_headers.unwrap_or_default(),
            log_response_headers: t.log_response_headers.unwrap_or_default(),
            buffer_requests: t.buffer_requests,
            buffer_responses: t.buffer_responses,
            buffer_memory: if t.max_memory_buffer_size > 0 {
                size(t.max_memory_buffer_size)
            } else {
                super::service::DEFAULT_BUFFER_MEMORY
            },
            max_request_body: size(t.max_request_body_size),
            max_response_body: size(t.max_response_body_size),
            scope_cookie_paths: t.scope_cookie_paths,
        },
        exclude_metrics_paths: o.exclude_metrics_paths.unwrap_or_default(),
        client_ip_header: non_empty(o.client_ip_header),
        rollout,
        state,
        extra: Default::default(),
    };
    spec.set_targets(writers);
    Ok(spec)
}

/// The services as kamal-proxy writes them.
pub fn to_kamal(services: &[ServiceSpec]) -> Result<String, String> {
    let list: Vec<KService> = services.iter().map(export).collect();
    serde_json::to_string(&list).map_err(|e| e.to_string())
}

/// kamal-proxy's state: the services and warnings for what dray-proxy cannot keep as is.
pub fn from_kamal(text: &str) -> Result<(Vec<ServiceSpec>, Vec<String>), String> {
    let list: Option<Vec<KService>> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut warnings = Vec::new();
    let mut services = Vec::new();
    for k in list.unwrap_or_default() {
        services.push(import(k, &mut warnings)?);
    }
    Ok((services, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state file as kamal-proxy (main, v0.9.x) writes it: two services, one with several
    /// targets, a read target, a stopped one with a rollout.
    const KAMAL: &str = r#"[{"name":"app-web","options":{"hosts":["app.test"],"path_prefixes":["/"],
      "tls_enabled":true,"tls_certificate_path":"","tls_private_key_path":"","tls_on_demand_url":"",
      "tls_redirect":true,"canonical_host":"","acme_directory":"","acme_cache_path":"/c/certs",
      "error_page_path":"","strip_prefix":true,"writer_affinity_timeout":2000000000,
      "read_targets_accept_websockets":true,"exclude_metrics_paths":null,"client_ip_header":"CF-Connecting-IP"},
      "target_options":{"health_check_config":{"path":"/up","port":0,"interval":1000000000,
      "timeout":5000000000,"host":""},"response_timeout":30000000000,"buffer_requests":true,
      "buffer_responses":true,"max_memory_buffer_size":1048576,"max_request_body_size":0,
      "max_response_body_size":0,"log_request_headers":null,"log_response_headers":null,
      "forward_headers":false,"scope_cookie_paths":false},"active_targets":["a:80","b:80"],
      "active_readers":["r:80"],"rollout_targets":null,"rollout_readers":null,
      "pause_controller":{"state":0,"stop_message":"","fail_after":0},"rollout_controller":null},
      {"name":"api-web","options":{"hosts":null,"path_prefixes":["/api"],"strip_prefix":false,
      "tls_redirect":true},"target_options":{"health_check_config":{"path":"/health","port":9000,
      "interval":500000000,"timeout":2000000000,"host":"api.test"},"response_timeout":10000000000},
      "active_targets":["c:3000"],"rollout_targets":["d:3000"],
      "pause_controller":{"state":2,"stop_message":"Back soon","fail_after":0},
      "rollout_controller":{"percentage":20,"percentage_split_point":858993459,"allowlist":["beta"]}},
      {"name":"old","active_target":"e:80","hosts":["old.test"],"options":{},"target_options":{}}]"#;

    #[test]
    fn kamal_proxy_state_is_read_with_every_setting() {
        let (services, warnings) = from_kamal(KAMAL).expect("parses");
        assert!(warnings.is_empty(), "{warnings:?}");
        let app = &services[0];
        assert_eq!(app.writer_targets(), vec!["a:80", "b:80"]);
        assert_eq!(app.target, "a:80");
        assert_eq!(app.read_targets, vec!["r:80"]);
        assert_eq!(app.writer_affinity_timeout, Duration::from_secs(2));
        assert!(app.read_targets_accept_websockets && app.tls && app.tls_settings.redirect);
        assert_eq!(
            app.tls_settings.acme_cache_path.as_deref(),
            Some("/c/certs")
        );
        assert_eq!(app.client_ip_header.as_deref(), Some("CF-Connecting-IP"));
        assert!(app.options.buffer_requests && !app.options.forward_headers);
        assert_eq!(app.options.target_timeout, Duration::from_secs(30));
        let api = &services[1];
        assert_eq!(api.effective_prefixes(), vec!["/api"]);
        assert!(!api.strip_path_prefix);
        assert_eq!(api.options.health_check.port, 9000);
        assert_eq!(api.options.health_check.host.as_deref(), Some("api.test"));
        assert_eq!(
            api.options.health_check.interval,
            Duration::from_millis(500)
        );
        assert_eq!(
            api.state,
            ServiceState::Stopped {
                message: "Back soon".into()
            }
        );
        let rollout = api.rollout.as_ref().expect("rollout");
        assert_eq!(rollout.writer_targets(), vec!["d:3000"]);
        assert_eq!(
            rollout.split,
            Some(RolloutSplit {
                percentage: 20,
                allowlist: vec!["beta".into()]
            })
        );
        // An older kamal-proxy's service: one target, hosts at the top, defaults.
        let old = &services[2];
        assert_eq!(
            (old.target.as_str(), old.hosts.clone()),
            ("e:80", vec!["old.test".to_string()])
        );
        assert_eq!(old.options.health_check.path, "/up");
    }

    #[test]
    fn what_dray_proxy_writes_reads_back_the_same() {
        let (services, _) = from_kamal(KAMAL).expect("parses");
        let text = to_kamal(&services).expect("writes");
        let (again, _) = from_kamal(&text).expect("reads back");
        for (a, b) in services.iter().zip(&again) {
            let mut a = a.clone();
            // Written as kamal-proxy normalizes them: the root prefix explicit.
            a.path_prefixes = a.effective_prefixes();
            assert_eq!(&a, b);
        }
        // In kamal-proxy's field names.
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v[0]["active_targets"], serde_json::json!(["a:80", "b:80"]));
        assert_eq!(v[0]["active_readers"], serde_json::json!(["r:80"]));
        assert_eq!(
            v[0]["options"]["writer_affinity_timeout"],
            2_000_000_000_i64
        );
        assert_eq!(v[1]["pause_controller"]["state"], 2);
        assert_eq!(v[1]["rollout_targets"], serde_json::json!(["d:3000"]));
        assert_eq!(v[1]["rollout_controller"]["percentage"], 20);
    }

    #[test]
    fn a_paused_service_is_stopped_with_a_warning() {
        let text = r#"[{"name":"p","active_targets":["a:80"],"pause_controller":{"state":1}}]"#;
        let (services, warnings) = from_kamal(text).expect("parses");
        assert!(matches!(services[0].state, ServiceState::Stopped { .. }));
        assert_eq!(warnings.len(), 1);
        assert!(from_kamal(r#"[{"name":"none"}]"#).is_err());
    }
}

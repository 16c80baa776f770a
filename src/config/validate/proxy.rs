//! `proxy` (root, role, accessory): a role's settings merged over the root ones, then checked
//! and resolved with kamal-proxy's defaults.

use super::context::{options, s, strings, Ctx};
use crate::config::error::ConfigError;
use crate::config::model::{Proxy, ProxyRun};
use crate::config::raw::{BoolOr, RawBuffering, RawHealthcheck, RawProxy};

/// A role's proxy hash deep-merged over the root one.
pub(super) fn merge_proxy(root: Option<&RawProxy>, role: &RawProxy) -> RawProxy {
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

pub(super) fn resolve_proxy(cx: &Ctx, path: &str, raw: &RawProxy) -> Result<Proxy, ConfigError> {
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

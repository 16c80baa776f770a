//! Proxying one request: route it, answer maintenance and error pages, rewrite the URI and
//! `X-Forwarded-*` headers, forward it over a pooled keep-alive connection, log it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body as _, Incoming};
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Map, Value};

use super::acme::{Acme, CHALLENGE_PREFIX};
use super::body::{BufferError, Buffered, ProxyBody, RequestBody};
use super::loaded::CertSource;
use super::log::{self, Level};
use super::metrics::Metrics;
use super::pages;
use super::redirect::{redirect, redirect_url};
use super::router::{normalize_host, strip_prefix};
use super::service::ServiceState;
use super::services::{Live, Routed, Services};
use super::target::InflightGuard;

/// Shared by all connections of the HTTP listener.
#[derive(Debug)]
pub struct Handler {
    services: Arc<Services>,
    acme: Arc<Acme>,
    client: Client<HttpConnector, RequestBody>,
    log_requests: bool,
    metrics: Option<Arc<Metrics>>,
}

/// Headers meaningful only for one connection, never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

impl Handler {
    /// A handler over `services` (and `acme`'s challenges), with one upstream connection pool.
    /// Requests are counted in `metrics` when given (`--metrics-port`).
    pub fn new(
        services: Arc<Services>,
        acme: Arc<Acme>,
        log_requests: bool,
        metrics: Option<Arc<Metrics>>,
    ) -> Handler {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(connector);
        Handler {
            services,
            acme,
            client,
            log_requests,
            metrics,
        }
    }

    /// Answer one request from `remote`, received over TLS when `secure`.
    pub async fn handle(
        self: Arc<Self>,
        remote: SocketAddr,
        secure: bool,
        req: Request<Incoming>,
    ) -> Result<Response<ProxyBody>, Infallible> {
        let started = Instant::now();
        let host = request_host(&req);
        let path = req.uri().path().to_string();
        let routed = self
            .services
            .route(&host, &path, req.method(), req.headers());
        let (live, prefix, tls, guard, writer_affinity) = match routed {
            Routed::Found {
                live,
                prefix,
                tls,
                guard,
                writer_affinity,
            } => (live, prefix, tls, guard, writer_affinity),
            Routed::NotFound => {
                let resp = pages::page(StatusCode::NOT_FOUND, "");
                let done = self.done(&req, &[], remote, started, "", true);
                self.finish(done, &resp, None, &[]);
                return Ok(resp);
            }
        };
        let opts = &live.spec.options;
        // The path as the target sees it: what `--exclude-metrics-path` is matched against.
        let forwarded_path = if live.spec.strip_path_prefix {
            strip_prefix(&prefix, &path)
        } else {
            path.as_str()
        };
        let metered = !live
            .spec
            .exclude_metrics_paths
            .iter()
            .any(|p| p == forwarded_path);
        let done = self.done(
            &req,
            &opts.log_request_headers,
            remote,
            started,
            &live.spec.name,
            metered,
        );
        // What the proxy answers itself, in kamal-proxy's order: ACME challenges, TLS on a
        // service without it, redirects, maintenance.
        let own = if let Some(resp) = self.acme_challenge(&live, &host, &path) {
            Some(resp)
        } else if secure && !tls.enabled {
            Some(error_page(&live, StatusCode::SERVICE_UNAVAILABLE, None))
        } else if let Some(url) = redirect_url(&live.spec, tls, secure, &host, req.uri()) {
            Some(redirect(&url, req.method(), req.version()))
        } else if let ServiceState::Stopped { message } = &live.spec.state {
            Some(
                if is_health_check(&req, &live.spec.options.health_check.path) {
                    // Downstream health checks keep passing while stopped (kamal-proxy).
                    Response::new(ProxyBody::text(""))
                } else {
                    error_page(&live, StatusCode::SERVICE_UNAVAILABLE, Some(message))
                },
            )
        } else {
            None
        };
        let guard = match (own, guard) {
            (None, Some(g)) => g,
            (own, _) => {
                let resp =
                    own.unwrap_or_else(|| error_page(&live, StatusCode::SERVICE_UNAVAILABLE, None));
                self.finish(done, &resp, None, &[]);
                return Ok(resp);
            }
        };
        let target = Arc::clone(guard.target());
        let mut resp = self
            .forward(&live, forwarded_path, &host, remote, secure, req, guard)
            .await;
        if opts.scope_cookie_paths && live.spec.strip_path_prefix && prefix != "/" {
            scope_cookies(resp.headers_mut(), &prefix, &host);
        }
        if writer_affinity {
            set_writer_affinity(resp.headers_mut(), live.spec.writer_affinity_timeout);
        }
        self.finish(
            done,
            &resp,
            Some(target.authority()),
            &opts.log_response_headers,
        );
        Ok(resp)
    }

    /// Send the request to the guard's target and answer with its response (streamed, or
    /// buffered with `--buffer-responses`; a `101 Switching Protocols` becomes a tunnel).
    #[allow(clippy::too_many_arguments)]
    async fn forward(
        &self,
        live: &Live,
        forwarded_path: &str,
        host: &str,
        remote: SocketAddr,
        secure: bool,
        mut req: Request<Incoming>,
        guard: InflightGuard,
    ) -> Response<ProxyBody> {
        let opts = &live.spec.options;
        let target = Arc::clone(guard.target());
        let addr = match target.addr() {
            Some(a) => a,
            None => match target.resolve().await {
                Ok(a) => a,
                Err(_) => return error_page(live, StatusCode::BAD_GATEWAY, None),
            },
        };
        // The upstream URI: the resolved address, the (stripped) path and the query.
        let pq = match req.uri().query() {
            Some(q) => format!("{forwarded_path}?{q}"),
            None => forwarded_path.to_string(),
        };
        let uri = match Uri::builder()
            .scheme("http")
            .authority(addr.to_string())
            .path_and_query(pq)
            .build()
        {
            Ok(u) => u,
            Err(_) => return error_page(live, StatusCode::BAD_REQUEST, None),
        };
        // WebSockets and other upgrades: the client's connection, once upgraded, is joined
        // to the target's.
        let upgrade = upgrade_protocol(&req);
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
        *req.uri_mut() = uri;
        let from_h2 = req.version() >= Version::HTTP_2;
        *req.version_mut() = Version::HTTP_11;
        let headers = req.headers_mut();
        remove_hop_by_hop(headers);
        if let Some(protocol) = &upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, protocol.clone());
        }
        if from_h2 {
            join_cookies(headers);
        }
        if let Some(name) = &live.spec.client_ip_header {
            // kamal-proxy's ClientIPMiddleware: the header's value becomes the client's
            // `X-Forwarded-For`.
            if let Some(ip) = headers
                .get(name.as_str())
                .filter(|v| !v.is_empty())
                .cloned()
            {
                headers.insert(HeaderName::from_static("x-forwarded-for"), ip);
            }
        }
        set_forwarded(headers, remote, host, secure, opts.forward_headers);
        set_target_header(headers, target.authority(), opts.forward_headers);
        if !headers.contains_key(header::HOST) {
            if let Ok(v) = HeaderValue::from_str(host) {
                headers.insert(header::HOST, v);
            }
        }
        let (mut parts, body) = req.into_parts();
        // A body known to be empty (GET, HEAD) is sent as it is, with its headers.
        let body = if opts.buffer_requests && upgrade.is_none() && !body.is_end_stream() {
            match Buffered::read(body, opts.max_request_body, opts.buffer_memory).await {
                Ok(b) => {
                    set_length(&mut parts.headers, b.len());
                    RequestBody::Buffered(b)
                }
                Err(BufferError::TooLarge) => {
                    return error_page(live, StatusCode::PAYLOAD_TOO_LARGE, None);
                }
                Err(BufferError::Read(e)) => {
                    log::event(
                        Level::Info,
                        "Malformed request",
                        &[
                            ("path", forwarded_path.into()),
                            ("error", e.to_string().into()),
                        ],
                    );
                    return error_page(live, StatusCode::BAD_REQUEST, None);
                }
                Err(BufferError::Spill(e)) => {
                    log::event(
                        Level::Error,
                        "Error buffering request",
                        &[
                            ("path", forwarded_path.into()),
                            ("error", e.to_string().into()),
                        ],
                    );
                    return error_page(live, StatusCode::INTERNAL_SERVER_ERROR, None);
                }
            }
        } else {
            RequestBody::Stream(body)
        };
        let req = Request::from_parts(parts, body);

        let upstream = tokio::time::timeout(opts.target_timeout, self.client.request(req)).await;
        match upstream {
            Ok(Ok(mut resp)) => {
                if let (StatusCode::SWITCHING_PROTOCOLS, Some(client_upgrade)) =
                    (resp.status(), client_upgrade)
                {
                    let target_upgrade = hyper::upgrade::on(&mut resp);
                    let (mut parts, _) = resp.into_parts();
                    let protocol = parts.headers.get(header::UPGRADE).cloned();
                    remove_hop_by_hop(&mut parts.headers);
                    parts
                        .headers
                        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                    if let Some(p) = protocol {
                        parts.headers.insert(header::UPGRADE, p);
                    }
                    tokio::spawn(tunnel(client_upgrade, target_upgrade, guard));
                    return Response::from_parts(parts, ProxyBody::text(""));
                }
                let (mut parts, body) = resp.into_parts();
                remove_hop_by_hop(&mut parts.headers);
                // Nothing to hold for an empty body (HEAD, 204, 304): its headers, such as a
                // HEAD's `Content-Length`, are sent as the target wrote them.
                if !opts.buffer_responses || body.is_end_stream() || is_event_stream(&parts.headers)
                {
                    return Response::from_parts(
                        parts,
                        ProxyBody::Upstream {
                            inner: body,
                            guard: Some(guard),
                        },
                    );
                }
                let buffered =
                    Buffered::read(body, opts.max_response_body, opts.buffer_memory).await;
                drop(guard);
                match buffered {
                    Ok(b) => {
                        set_length(&mut parts.headers, b.len());
                        Response::from_parts(parts, ProxyBody::Buffered(b))
                    }
                    Err(BufferError::TooLarge) => {
                        log::event(
                            Level::Info,
                            "Response exceeded max response limit",
                            &[("path", forwarded_path.into())],
                        );
                        error_page(live, StatusCode::INTERNAL_SERVER_ERROR, None)
                    }
                    Err(e) => {
                        log::event(
                            Level::Error,
                            "Error buffering response",
                            &[
                                ("path", forwarded_path.into()),
                                ("error", format!("{e:?}").into()),
                            ],
                        );
                        error_page(live, StatusCode::BAD_GATEWAY, None)
                    }
                }
            }
            Ok(Err(e)) => {
                if e.is_connect() {
                    // The container may have a new address (restarted): look it up again.
                    let t = Arc::clone(&target);
                    tokio::spawn(async move {
                        let _ = t.resolve().await;
                    });
                }
                log::event(
                    Level::Debug,
                    "Upstream error",
                    &[
                        ("target", target.authority().into()),
                        ("error", e.to_string().into()),
                    ],
                );
                error_page(live, StatusCode::BAD_GATEWAY, None)
            }
            Err(_) => error_page(live, StatusCode::GATEWAY_TIMEOUT, None),
        }
    }

    /// What is kept of a request for its log line and its metrics.
    fn done(
        &self,
        req: &Request<Incoming>,
        req_headers: &[String],
        remote: SocketAddr,
        started: Instant,
        service: &str,
        metered: bool,
    ) -> Done {
        Done {
            logged: self
                .log_requests
                .then(|| LoggedRequest::of(req, req_headers)),
            method: req.method().clone(),
            remote,
            started,
            service: service.to_string(),
            metered,
        }
    }

    /// The request's log line (unless `--quiet`) and its count in the metrics (when they
    /// are on and its path is not excluded), once its response headers are known.
    fn finish(
        &self,
        done: Done,
        resp: &Response<ProxyBody>,
        target: Option<&str>,
        resp_headers: &[String],
    ) {
        let elapsed = done.started.elapsed();
        if let (Some(metrics), true) = (&self.metrics, done.metered) {
            metrics.track(&done.service, &done.method, resp.status().as_u16(), elapsed);
        }
        let Some(lr) = done.logged else {
            return;
        };
        let mut m = lr.fields;
        m.insert("time".into(), log::now().into());
        m.insert("level".into(), "INFO".into());
        m.insert("msg".into(), "Request".into());
        m.insert("service".into(), done.service.into());
        m.insert("target".into(), target.unwrap_or("").into());
        m.insert("status".into(), resp.status().as_u16().into());
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        m.insert("duration".into(), nanos.into());
        m.insert("remote_addr".into(), done.remote.ip().to_string().into());
        m.insert(
            "resp_content_length".into(),
            header_str(resp.headers(), header::CONTENT_LENGTH).into(),
        );
        m.insert(
            "resp_content_type".into(),
            header_str(resp.headers(), header::CONTENT_TYPE).into(),
        );
        for h in resp_headers {
            m.insert(
                log::header_key("resp", h),
                header_values(resp.headers(), h).into(),
            );
        }
        log::write_line(&Value::Object(m));
    }
}

/// A request being answered: its log fields, method, client, start and service.
struct Done {
    logged: Option<LoggedRequest>,
    method: Method,
    remote: SocketAddr,
    started: Instant,
    service: String,
    metered: bool,
}

/// Join an upgraded client connection to the target's until either side closes, or the
/// target is closed after its drain timeout; the request counts in flight until then.
async fn tunnel(client: OnUpgrade, target: OnUpgrade, guard: InflightGuard) {
    let (client, upstream) = tokio::join!(client, target);
    let (Ok(client), Ok(upstream)) = (client, upstream) else {
        return;
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    let t = Arc::clone(guard.target());
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        _ = t.closed() => {}
    }
    drop(guard);
}

/// The protocol a request asks to upgrade to (`Connection: upgrade` and `Upgrade: …`, HTTP/1).
fn upgrade_protocol<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.version() >= Version::HTTP_2 {
        return None;
    }
    let asks = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !asks {
        return None;
    }
    req.headers().get(header::UPGRADE).cloned()
}

/// `text/event-stream` responses are streamed even with `--buffer-responses` (kamal-proxy).
fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
}

/// kamal-proxy's `CookieScope`: each `Set-Cookie` for no domain or for `host` (without its
/// port) gets `Path=<prefix>/<its path without slashes at the ends>`. The `Path` attribute is
/// replaced in place (or added); the cookie's other attributes stay as the target wrote them.
fn scope_cookies(headers: &mut HeaderMap, prefix: &str, host: &str) {
    let host = host_without_port(host);
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for value in cookies {
        let scoped = value
            .to_str()
            .ok()
            .and_then(|v| scope_cookie(v, prefix, host))
            .and_then(|v| HeaderValue::from_str(&v).ok())
            .unwrap_or(value);
        headers.append(header::SET_COOKIE, scoped);
    }
}

/// One `Set-Cookie` value scoped below `prefix`; `None` to leave it (not a cookie, or for
/// another domain).
fn scope_cookie(value: &str, prefix: &str, host: &str) -> Option<String> {
    let mut parts: Vec<String> = value.split(';').map(|p| p.trim().to_string()).collect();
    let (name, _) = parts.first()?.split_once('=')?;
    if name.trim().is_empty() {
        return None;
    }
    let attr = |p: &str, key: &str| -> Option<String> {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().to_string())
    };
    let domain = parts.iter().skip(1).find_map(|p| attr(p, "domain"));
    if domain
        .as_deref()
        .is_some_and(|d| !d.is_empty() && d != host)
    {
        return None;
    }
    let at = parts
        .iter()
        .skip(1)
        .position(|p| attr(p, "path").is_some())
        .map(|i| i + 1);
    let old = at.and_then(|i| attr(&parts[i], "path")).unwrap_or_default();
    let rest = old.trim_matches('/');
    let path = if rest.is_empty() {
        prefix.to_string()
    } else {
        format!("{}/{rest}", prefix.trim_end_matches('/'))
    };
    match at {
        Some(i) => parts[i] = format!("Path={path}"),
        None => parts.push(format!("Path={path}")),
    }
    Some(parts.join("; "))
}

/// `host:port` → `host` (`[v6]:port` → `v6`), as Go's `net.SplitHostPort`; else as is.
fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        if let Some((h, _)) = rest.split_once(']') {
            return h;
        }
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// A buffered body is sent with its length.
fn set_length(headers: &mut HeaderMap, len: u64) {
    headers.remove(header::TRANSFER_ENCODING);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
}

impl Handler {
    /// The answer to an HTTP-01 challenge for a service getting its certificate by ACME:
    /// the key authorization (200), 404 for an unknown token, 403 for a host it does not serve.
    fn acme_challenge(&self, live: &Live, host: &str, path: &str) -> Option<Response<ProxyBody>> {
        let token = path.strip_prefix(CHALLENGE_PREFIX)?;
        if !matches!(live.loaded.cert, Some(CertSource::Acme(_))) {
            return None;
        }
        let host = normalize_host(host);
        // An on-demand service has no hosts: its tokens exist only for hosts it approved.
        let on_demand = live.spec.tls_settings.on_demand_url.is_some();
        let (status, body) =
            if !on_demand && !live.spec.hosts.iter().any(|h| normalize_host(h) == host) {
                (
                    StatusCode::FORBIDDEN,
                    format!("host {host:?} not configured\n"),
                )
            } else {
                match self.acme.challenge(token) {
                    Some(answer) => (StatusCode::OK, answer),
                    None => (StatusCode::NOT_FOUND, "no such challenge\n".to_string()),
                }
            };
        let mut resp = Response::new(ProxyBody::text(body));
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Some(resp)
    }
}

/// The service's error page for `status` (its `--error-pages` one, else the built-in).
fn error_page(live: &Live, status: StatusCode, message: Option<&str>) -> Response<ProxyBody> {
    pages::error_page(status, live.loaded.pages.as_deref(), message)
}

/// `GET`/`HEAD` of the health check path.
fn is_health_check<B>(req: &Request<B>, path: &str) -> bool {
    (req.method() == Method::GET || req.method() == Method::HEAD) && req.uri().path() == path
}

/// The request fields of a log line, taken before the request is consumed.
struct LoggedRequest {
    fields: Map<String, Value>,
}

impl LoggedRequest {
    fn of<B>(req: &Request<B>, headers: &[String]) -> LoggedRequest {
        let mut m = Map::new();
        m.insert("host".into(), request_host(req).into());
        m.insert("method".into(), req.method().as_str().into());
        m.insert("path".into(), req.uri().path().into());
        m.insert("query".into(), req.uri().query().unwrap_or("").into());
        m.insert("proto".into(), format!("{:?}", req.version()).into());
        m.insert(
            "req_content_length".into(),
            header_str(req.headers(), header::CONTENT_LENGTH).into(),
        );
        m.insert(
            "user_agent".into(),
            header_str(req.headers(), header::USER_AGENT).into(),
        );
        m.insert(
            "req_content_type".into(),
            header_str(req.headers(), header::CONTENT_TYPE).into(),
        );
        for h in headers {
            m.insert(
                log::header_key("req", h),
                header_values(req.headers(), h).into(),
            );
        }
        LoggedRequest { fields: m }
    }
}

/// Every value of `name`, joined with `,` (kamal-proxy's logged headers).
fn header_values(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
}

fn header_str<K: header::AsHeaderName>(headers: &HeaderMap, key: K) -> String {
    headers
        .get(key)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The request's host: the `Host` header, else the URI authority.
fn request_host<B>(req: &Request<B>) -> String {
    req.headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default()
}

/// HTTP/2 clients may send one `cookie` field per cookie; an HTTP/1.1 target expects one
/// line, joined with `; ` (RFC 9113 §8.2.3).
fn join_cookies(headers: &mut HeaderMap) {
    let parts: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if parts.len() < 2 {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&parts.join("; ")) {
        headers.insert(header::COOKIE, v);
    }
}

/// Drop hop-by-hop headers, including those the `Connection` header names.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for h in HOP_BY_HOP {
        headers.remove(h);
    }
}

/// After a write to a service with read targets: the `kamal-writer` cookie, valid for
/// `timeout`, so the client's next reads still go to the writers (kamal-proxy's
/// `loadBalancerResponseWriter`), unless the target answered `X-Writer-Affinity: false`. That
/// header is not passed on.
fn set_writer_affinity(headers: &mut HeaderMap, timeout: std::time::Duration) {
    const OPT_OUT: &str = "x-writer-affinity";
    let opted_out = headers
        .get(OPT_OUT)
        .is_some_and(|v| v.as_bytes() == b"false");
    headers.remove(OPT_OUT);
    if opted_out {
        return;
    }
    let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
    let until = super::services::unix_millis().saturating_add(timeout_ms);
    // Go's `http.Cookie` `Expires`: a second after the value, in HTTP date format.
    let expires = chrono::DateTime::from_timestamp_millis(until.saturating_add(1000))
        .map(|t| t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .unwrap_or_default();
    let cookie = format!(
        "{}={until}; Path=/; Expires={expires}; HttpOnly",
        super::services::WRITER_COOKIE
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        headers.append(header::SET_COOKIE, v);
    }
}

/// kamal-proxy's `X-Kamal-Target`: the target's address as deployed, after the client's
/// values when headers are forwarded.
fn set_target_header(headers: &mut HeaderMap, target: &str, trust: bool) {
    const NAME: &str = "x-kamal-target";
    let value = if trust {
        let prior: Vec<&str> = headers
            .get_all(NAME)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if prior.is_empty() {
            target.to_string()
        } else {
            format!("{}, {target}", prior.join(", "))
        }
    } else {
        target.to_string()
    };
    headers.remove(NAME);
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(HeaderName::from_static(NAME), v);
    }
}

/// `X-Forwarded-For/Proto/Host`: extended from the client's when `trust` (kamal-proxy's
/// `--forward-headers`), else replaced.
fn set_forwarded(
    headers: &mut HeaderMap,
    remote: SocketAddr,
    host: &str,
    secure: bool,
    trust: bool,
) {
    const XFF: &str = "x-forwarded-for";
    const XFP: &str = "x-forwarded-proto";
    const XFH: &str = "x-forwarded-host";
    let ip = remote.ip().to_string();
    let proto = if secure { "https" } else { "http" };
    let prior = |h: &HeaderMap, k: &str| -> Option<String> {
        let vals: Vec<&str> = h
            .get_all(k)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!vals.is_empty()).then(|| vals.join(", "))
    };
    let (xff, xfp, xfh) = if trust {
        (
            match prior(headers, XFF) {
                Some(p) => format!("{p}, {ip}"),
                None => ip,
            },
            prior(headers, XFP).unwrap_or_else(|| proto.into()),
            prior(headers, XFH).unwrap_or_else(|| host.to_string()),
        )
    } else {
        (ip, proto.into(), host.to_string())
    };
    for (k, v) in [(XFF, xff), (XFP, xfp), (XFH, xfh)] {
        headers.remove(k);
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(HeaderName::from_static(k), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_headers_extend_or_replace() {
        let remote: SocketAddr = "10.0.0.9:5000".parse().expect("addr");
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let mut trusted = h.clone();
        set_forwarded(&mut trusted, remote, "app.test", false, true);
        assert_eq!(trusted["x-forwarded-for"], "1.2.3.4, 10.0.0.9");
        assert_eq!(trusted["x-forwarded-proto"], "https");
        assert_eq!(trusted["x-forwarded-host"], "app.test");
        let mut secure = h.clone();
        set_forwarded(&mut h, remote, "app.test", false, false);
        assert_eq!(h["x-forwarded-for"], "10.0.0.9");
        assert_eq!(h["x-forwarded-proto"], "http");
        set_forwarded(&mut secure, remote, "app.test", true, false);
        assert_eq!(secure["x-forwarded-proto"], "https");
    }

    #[test]
    fn writes_get_the_writer_affinity_cookie_unless_opted_out() {
        let mut h = HeaderMap::new();
        set_writer_affinity(&mut h, std::time::Duration::from_secs(2));
        let cookie = h[header::SET_COOKIE].to_str().expect("ascii");
        let value: i64 = cookie
            .strip_prefix("kamal-writer=")
            .and_then(|c| c.split(';').next())
            .and_then(|v| v.parse().ok())
            .expect("a time in ms");
        let now = super::super::services::unix_millis();
        assert!((now + 1500..=now + 2100).contains(&value), "{cookie}");
        assert!(cookie.ends_with(" GMT; HttpOnly"), "{cookie}");
        assert!(cookie.contains("; Path=/; Expires="), "{cookie}");
        let mut h = HeaderMap::new();
        h.insert("x-writer-affinity", HeaderValue::from_static("false"));
        set_writer_affinity(&mut h, std::time::Duration::from_secs(2));
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn the_target_header_names_the_target() {
        let mut h = HeaderMap::new();
        h.insert("x-kamal-target", HeaderValue::from_static("lb:80"));
        let mut replaced = h.clone();
        set_target_header(&mut h, "app:3000", true);
        assert_eq!(h["x-kamal-target"], "lb:80, app:3000");
        set_target_header(&mut replaced, "app:3000", false);
        assert_eq!(replaced["x-kamal-target"], "app:3000");
    }

    #[test]
    fn http2_cookie_fields_are_joined() {
        let mut h = HeaderMap::new();
        h.append("cookie", HeaderValue::from_static("a=1"));
        h.append("cookie", HeaderValue::from_static("b=2"));
        join_cookies(&mut h);
        assert_eq!(h.get_all("cookie").iter().count(), 1);
        assert_eq!(h["cookie"], "a=1; b=2");
    }

    #[test]
    fn cookies_are_scoped_below_the_prefix() {
        let scope = |v: &str| scope_cookie(v, "/app", "app.test");
        assert_eq!(scope("a=1").as_deref(), Some("a=1; Path=/app"));
        assert_eq!(
            scope("a=1; Path=/; HttpOnly").as_deref(),
            Some("a=1; Path=/app; HttpOnly")
        );
        assert_eq!(
            scope("a=1; path=/x/y/; Domain=app.test").as_deref(),
            Some("a=1; Path=/app/x/y; Domain=app.test")
        );
        assert_eq!(scope("a=1; Domain=other.test"), None);
        assert_eq!(scope("garbage"), None);
        assert_eq!(host_without_port("app.test:8080"), "app.test");
        assert_eq!(host_without_port("[::1]:80"), "::1");
        assert_eq!(host_without_port("app.test"), "app.test");
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("close, x-private"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }
}

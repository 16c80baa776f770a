//! The redirects kamal-proxy answers itself: plain HTTP to https for a TLS service (with
//! `--tls-redirect`, its default) and any host to the `--canonical-host`, as a 301 shaped like
//! Go's `http.Redirect`.

use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode, Uri, Version};

use super::body::ProxyBody;
use super::pages;
use super::service::ServiceSpec;
use super::services::TlsMode;

/// Where kamal-proxy redirects a request, if it does: to https when the service has TLS with
/// redirect and the request came in plain, and to the canonical host; the host loses its port,
/// the path and query are kept.
pub fn redirect_url(
    spec: &ServiceSpec,
    tls: TlsMode,
    secure: bool,
    host: &str,
    uri: &Uri,
) -> Option<String> {
    let bare = host_without_port(host);
    let scheme = if secure { "https" } else { "http" };
    let want_scheme = if tls.redirect && !secure {
        "https"
    } else {
        scheme
    };
    let want_host = match spec.canonical_host.as_deref() {
        Some(c) if !c.is_empty() && c != bare => c,
        _ => bare,
    };
    if want_scheme == scheme && want_host == bare {
        return None;
    }
    let pq = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    Some(format!("{want_scheme}://{want_host}{pq}"))
}

/// `host[:port]` → `host` (IPv6 literals keep their brackets).
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

/// A 301 as Go's `http.Redirect` writes it (a link for `GET`), closing HTTP/1 connections.
pub fn redirect(url: &str, method: &Method, version: Version) -> Response<ProxyBody> {
    let body = if method == Method::GET {
        format!(
            "<a href=\"{}\">Moved Permanently</a>.\n\n",
            pages::escape(url)
        )
    } else {
        String::new()
    };
    let mut resp = Response::new(ProxyBody::text(body));
    *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(url) {
        h.insert(header::LOCATION, v);
    }
    if method == Method::GET || method == Method::HEAD {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
    if version < Version::HTTP_2 {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_path_and_query_and_drop_the_port() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "kamal-proxy",
            "deploy",
            "s",
            "--target=t:80",
            "--host=app.test",
        ])
        .expect("parses");
        let crate::cli::Command::Deploy(d) = cli.command else {
            panic!("not a deploy");
        };
        let spec = d.to_spec().expect("spec");
        let tls = TlsMode {
            enabled: true,
            redirect: true,
        };
        let uri: Uri = "/a/b?x=1".parse().expect("uri");
        assert_eq!(
            redirect_url(&spec, tls, false, "app.test:8080", &uri).as_deref(),
            Some("https://app.test/a/b?x=1")
        );
        assert_eq!(redirect_url(&spec, tls, true, "app.test", &uri), None);
        let off = TlsMode {
            enabled: true,
            redirect: false,
        };
        assert_eq!(redirect_url(&spec, off, false, "app.test", &uri), None);
        assert_eq!(host_without_port("[::1]:443"), "[::1]");
        let resp = redirect("https://a.test/<x>", &Method::GET, Version::HTTP_11);
        assert_eq!(resp.status(), 301);
        assert_eq!(resp.headers()["connection"], "close");
        let resp = redirect("https://a.test/", &Method::GET, Version::HTTP_2);
        assert!(!resp.headers().contains_key("connection"));
    }
}

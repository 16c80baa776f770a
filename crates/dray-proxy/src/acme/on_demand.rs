//! `deploy --tls --tls-on-demand-url=URL` (kamal-proxy's on-demand TLS): a service without
//! hosts serving TLS for any name its endpoint approves. Before a certificate is issued for a
//! host that has none (in memory or in the cache directory), `GET URL?host=<host>` is asked,
//! within 2 s, redirects not followed; only a 200 allows the issuance.
//!
//! - `URL` an absolute `http(s)://` URL: asked as is (its `host` query parameter replaced).
//! - `URL` a path (`/allow?x=1`): asked of the service's own target, with `Host: <host>`, so
//!   the application decides. (kamal-proxy sends it through the service's middleware; here it
//!   goes straight to the target.)

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Uri};
use http_body_util::{BodyExt, Empty, Limited};

use crate::target::Target;

/// kamal-proxy's `tlsOnDemandCheckTimeout`.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// kamal-proxy's `tlsOnDemandCheckMaxBodyBytes`: the denial body kept for the log.
const MAX_BODY: usize = 256;

/// A checked `--tls-on-demand-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnDemandUrl {
    /// A path (with its query) on the service itself.
    Local(String),
    /// An absolute `http`/`https` URL.
    External(Uri),
}

impl OnDemandUrl {
    /// Parse `url` as kamal-proxy's `parseTLSOnDemandURL`.
    pub fn parse(url: &str) -> Result<OnDemandUrl, String> {
        if url.starts_with("//") {
            return Err("tls-on-demand-url must be a path or an absolute http(s) URL".into());
        }
        if url.starts_with('/') {
            url.parse::<http::uri::PathAndQuery>()
                .map_err(|e| format!("unable to parse tls-on-demand-url: {e}"))?;
            return Ok(OnDemandUrl::Local(url.to_string()));
        }
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("unable to parse tls-on-demand-url: {e}"))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            Some(other) => {
                return Err(format!("unsupported scheme {other:?} in tls-on-demand-url"))
            }
            None => {
                return Err(format!(
                    "unable to parse tls-on-demand-url: {url:?} is not absolute"
                ))
            }
        }
        if uri.host().unwrap_or("").is_empty() {
            return Err("missing host in tls-on-demand-url".into());
        }
        Ok(OnDemandUrl::External(uri))
    }
}

/// How to ask whether a host may get a certificate.
#[derive(Debug, Clone)]
pub struct OnDemandCheck {
    /// The endpoint.
    pub url: OnDemandUrl,
    /// The service's target (for a [`OnDemandUrl::Local`] path).
    pub target: Arc<Target>,
}

/// `path_and_query` with its `host` parameter set to `host` (others kept; keys sorted, as Go's
/// `url.Values.Encode`).
pub fn with_host(path_and_query: &str, host: &str) -> String {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .filter(|(k, _)| k != "host")
        .collect();
    pairs.push(("host".into(), encode(host)));
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let query: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{path}?{}", query.join("&"))
}

/// Query escaping of a host name (letters, digits, `-._~` kept).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The client the checks go through (http and https).
pub type ProbeClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Empty<Bytes>,
>;

/// Ask the endpoint about `host`: `Ok` on a 200, else why not.
pub async fn allowed(
    client: &ProbeClient,
    check: &OnDemandCheck,
    host: &str,
) -> Result<(), String> {
    let req = match &check.url {
        OnDemandUrl::Local(pq) => {
            let addr = match check.target.addr() {
                Some(a) => a,
                None => check.target.resolve().await?,
            };
            Request::get(format!("http://{addr}{}", with_host(pq, host)))
                .header(header::HOST, host)
                .body(Empty::new())
        }
        OnDemandUrl::External(uri) => {
            let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
            let scheme = uri.scheme_str().unwrap_or("http");
            Request::get(format!("{scheme}://{authority}{}", with_host(pq, host)))
                .body(Empty::new())
        }
    }
    .map_err(|e| format!("tls-on-demand-url request: {e}"))?;
    let ask = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("tls-on-demand-url: {e}"))?;
        let status = resp.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        // Only the first bytes of a denial are kept.
        let mut body = Vec::new();
        let mut limited = Limited::new(resp.into_body(), 64 * 1024);
        while let Some(Ok(frame)) = limited.frame().await {
            if let Ok(data) = frame.into_data() {
                body.extend_from_slice(&data);
            }
            if body.len() >= MAX_BODY {
                break;
            }
        }
        body.truncate(MAX_BODY);
        Err(format!(
            "{host} is not allowed to get a certificate (status: {status}, body: {:?})",
            String::from_utf8_lossy(&body)
        ))
    };
    tokio::time::timeout(CHECK_TIMEOUT, ask)
        .await
        .map_err(|_| format!("tls-on-demand-url: no answer within {CHECK_TIMEOUT:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_as_kamal_proxy_does() {
        assert_eq!(
            OnDemandUrl::parse("/allow?x=1"),
            Ok(OnDemandUrl::Local("/allow?x=1".into()))
        );
        assert!(matches!(
            OnDemandUrl::parse("https://auth.example/check"),
            Ok(OnDemandUrl::External(_))
        ));
        assert_eq!(
            OnDemandUrl::parse("//auth.example/check"),
            Err("tls-on-demand-url must be a path or an absolute http(s) URL".into())
        );
        assert_eq!(
            OnDemandUrl::parse("ftp://auth.example/check"),
            Err("unsupported scheme \"ftp\" in tls-on-demand-url".into())
        );
        assert!(OnDemandUrl::parse("auth.example").is_err());
    }

    #[test]
    fn the_host_parameter_is_set() {
        assert_eq!(with_host("/allow", "a.test"), "/allow?host=a.test");
        assert_eq!(
            with_host("/allow?z=1&host=old&a=2", "a.test"),
            "/allow?a=2&host=a.test&z=1"
        );
    }
}

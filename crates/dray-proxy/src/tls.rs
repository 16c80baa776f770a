//! TLS on the https port: one rustls configuration whose certificate is chosen per connection
//! from the SNI name, as kamal-proxy's `Router.GetCertificate`: the service serving that host's
//! root path, if it has `--tls`, gives its certificate: its own files (read at each deploy) or
//! one from ACME ([`super::acme`]), obtained before the handshake goes on when there is none
//! yet. A hello without SNI gets the first TLS service's first host. ALPN offers `h2` and
//! `http/1.1`. The crypto provider is ring.

use std::sync::Arc;
use std::time::Duration;

use rustls::server::{Acceptor, ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use super::acme::Acme;
use super::certs::provider;
use super::loaded::CertSource;
use super::log::{self, Level};
use super::router::normalize_host;
use super::services::Services;

/// Longest wait for a TLS client's hello, then for the rest of its handshake; and for an ACME
/// certificate.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
const ISSUE_TIMEOUT: Duration = Duration::from_secs(90);

/// The https side: the shared configuration and what picks certificates.
#[derive(Debug)]
pub struct TlsServer {
    config: Arc<ServerConfig>,
    services: Arc<Services>,
    acme: Arc<Acme>,
}

impl TlsServer {
    /// The configuration over `services` (their certificates) and `acme`.
    pub fn new(services: Arc<Services>, acme: Arc<Acme>) -> Result<TlsServer, String> {
        let resolver = Arc::new(SniResolver {
            services: Arc::clone(&services),
            acme: Arc::clone(&acme),
        });
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsServer {
            config: Arc::new(config),
            services,
            acme,
        })
    }

    /// The TLS handshake on `stream`: read the hello, make sure an ACME service's certificate
    /// is there (issuing it if need be), then finish with the shared configuration.
    pub async fn accept(&self, stream: TcpStream) -> Result<TlsStream<TcpStream>, String> {
        let start = tokio::time::timeout(
            HELLO_TIMEOUT,
            LazyConfigAcceptor::new(Acceptor::default(), stream),
        )
        .await
        .map_err(|_| "no TLS hello in time".to_string())?
        .map_err(|e| e.to_string())?;
        let sni = start.client_hello().server_name().map(str::to_string);
        if let Some((host, CertSource::Acme(scope))) = self.services.tls_source(sni.as_deref()) {
            if self.acme.cached(&scope, &host).is_none() {
                // In its own task: an issuance the hello stops waiting for still completes
                // (and is cached) rather than being abandoned half-way.
                let (acme, s, h) = (Arc::clone(&self.acme), scope.clone(), host.clone());
                let check = self.services.on_demand(&host);
                let task = tokio::spawn(async move { acme.ensure(&s, &h, check.as_ref()).await });
                let error = match tokio::time::timeout(ISSUE_TIMEOUT, task).await {
                    Ok(Ok(Ok(()))) => None,
                    Ok(Ok(Err(e))) => Some(e),
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some("timed out".to_string()),
                };
                if let Some(e) = error {
                    log::event(
                        Level::Error,
                        "ACME: unable to get a certificate",
                        &[("host", host.into()), ("error", e.into())],
                    );
                }
            }
        }
        tokio::time::timeout(HELLO_TIMEOUT, start.into_stream(Arc::clone(&self.config)))
            .await
            .map_err(|_| "TLS handshake not finished in time".to_string())?
            .map_err(|e| e.to_string())
    }
}

/// Picks the certificate for a hello (after [`TlsServer::accept`] made sure it is there).
#[derive(Debug)]
struct SniResolver {
    services: Arc<Services>,
    acme: Arc<Acme>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let (host, source) = self.services.tls_source(hello.server_name())?;
        match source {
            CertSource::Static(key) => Some(key),
            CertSource::Acme(scope) => self.acme.cached(&scope, &normalize_host(&host)),
        }
    }
}

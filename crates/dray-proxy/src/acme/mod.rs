//! ACME (RFC 8555) certificates for `--tls` services without certificate files, answering
//! HTTP-01 challenges on the http port, as kamal-proxy's autocert manager does:
//!
//! - A certificate is obtained on the first TLS hello naming one of the service's hosts (one
//!   certificate per host; wildcard hosts are refused at deploy).
//! - Files, kamal-proxy's autocert cache layout, so either proxy reuses the other's:
//!   `<cache>/<sha256 of the --tls-acme-directory value, "" by default>/acme_account+key` (the
//!   account's ECDSA P-256 key, PEM) and `…/<host>` (the certificate's private key PEM, then
//!   its chain). `<cache>` is `--tls-acme-cache-path`, default `<state dir>/certs`. A restart
//!   reads them back instead of issuing again.
//! - Renewal: every [`RENEW_CHECK`] (`DRAY_PROXY_ACME_RENEW_INTERVAL`), certificates within
//!   [`RENEW_BEFORE`] (`DRAY_PROXY_ACME_RENEW_BEFORE`) of their end are issued again, for hosts
//!   still served with ACME. An expired certificate is never served: the next hello issues.
//! - The directory: Let's Encrypt, its staging directory with `--tls-staging`, or any with
//!   `--tls-acme-directory` (a dray-proxy flag). Its TLS is checked against the Mozilla roots
//!   plus the PEM file in `DRAY_PROXY_ACME_CA_CERTS` (a test CA such as pebble's), and the
//!   service's `--tls-acme-ca-certs` file (a dray-proxy flag, read at deploy).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AuthorizationStatus, BodyWrapper, ChallengeType, Identifier, Key, NewOrder,
    OrderStatus, RetryPolicy,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use self::files::{account_key_from_pem, pem_encode, write_private};
use super::certs;
use super::log::{self, Level};
use super::service::TlsSettings;

/// Let's Encrypt's directory, the default.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (`--tls-staging`).
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
/// The path prefix of HTTP-01 challenges.
pub const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";
/// Renew certificates this long before they end (autocert's default).
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often certificates are checked for renewal.
pub const RENEW_CHECK: Duration = Duration::from_secs(3600);
/// After a failed issuance, TLS hellos for that host wait this long before the next try (so
/// a host that cannot validate does not hit the CA's rate limits on every connection).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);
/// The account key's file name in a scope's directory (autocert's).
const ACCOUNT_KEY_FILE: &str = "acme_account+key";

/// Whether a host's certificate still comes from an ACME scope (renewals skip the others);
/// the server answers it from its services.
pub type StillServed = dyn Fn(&AcmeScope, &str) -> bool + Send + Sync;

/// One ACME account and cache: the directory URL and the scoped cache directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AcmeScope {
    /// The directory URL.
    pub directory: String,
    /// `<cache>/<sha256(directory option)>`.
    pub cache_dir: PathBuf,
    /// `--tls-acme-ca-certs`: more roots trusted for the directory's TLS.
    pub ca_certs: Option<PathBuf>,
}

impl AcmeScope {
    /// The scope of a service's settings; `state_dir` gives the default cache.
    pub fn of(settings: &TlsSettings, state_dir: &Path) -> AcmeScope {
        let option = settings.acme_directory.clone().unwrap_or_default();
        let base = match settings.acme_cache_path.as_deref() {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => state_dir.join("certs"),
        };
        let hash: String = Sha256::digest(option.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        AcmeScope {
            directory: if option.is_empty() {
                LETS_ENCRYPT.to_string()
            } else {
                option
            },
            cache_dir: base.join(hash),
            ca_certs: settings
                .acme_ca_certs
                .as_deref()
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        }
    }
}

mod files;
pub mod on_demand;

type HttpClient = Client<HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>;
type CertKey = (AcmeScope, String);

/// A certificate in memory.
#[derive(Debug, Clone)]
struct Issued {
    key: Arc<CertifiedKey>,
    not_after: SystemTime,
}

/// The ACME side of the proxy: accounts, certificates, pending challenges.
pub struct Acme {
    http: HttpClient,
    accounts: tokio::sync::Mutex<HashMap<AcmeScope, Account>>,
    certs: RwLock<HashMap<CertKey, Issued>>,
    challenges: Mutex<HashMap<String, String>>,
    issuing: Mutex<HashMap<CertKey, Arc<tokio::sync::Mutex<()>>>>,
    failed: Mutex<HashMap<CertKey, Instant>>,
    /// `--tls-on-demand-url` checks (http and https, the same roots).
    probe: on_demand::ProbeClient,
    renew_before: Duration,
}

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Acme")
            .field("renew_before", &self.renew_before)
            .finish_non_exhaustive()
    }
}

impl Acme {
    /// The ACME client, trusting the Mozilla roots and `DRAY_PROXY_ACME_CA_CERTS`.
    pub fn new() -> Result<Acme, String> {
        let config = client_config(None)?;
        let probe_connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config.clone())
            .https_or_http()
            .enable_http1()
            .build();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .build();
        let renew_before = env_duration("DRAY_PROXY_ACME_RENEW_BEFORE").unwrap_or(RENEW_BEFORE);
        Ok(Acme {
            http: Client::builder(TokioExecutor::new()).build(connector),
            accounts: tokio::sync::Mutex::new(HashMap::new()),
            certs: RwLock::new(HashMap::new()),
            challenges: Mutex::new(HashMap::new()),
            issuing: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
            probe: Client::builder(TokioExecutor::new()).build(probe_connector),
            renew_before,
        })
    }

    /// The certificate for `host` in memory, if it has not expired.
    pub fn cached(&self, scope: &AcmeScope, host: &str) -> Option<Arc<CertifiedKey>> {
        let certs = self.certs.read().ok()?;
        let issued = certs.get(&(scope.clone(), host.to_string()))?;
        (issued.not_after > SystemTime::now()).then(|| Arc::clone(&issued.key))
    }

    /// The key authorization for an HTTP-01 challenge `token`, while it is pending.
    pub fn challenge(&self, token: &str) -> Option<String> {
        self.challenges.lock().ok()?.get(token).cloned()
    }

    /// Make sure a valid certificate for `host` is in memory: from the cache directory, else
    /// issued now (after `on_demand` approves the host, for an on-demand service). One
    /// issuance per host at a time.
    pub async fn ensure(
        &self,
        scope: &AcmeScope,
        host: &str,
        on_demand: Option<&on_demand::OnDemandCheck>,
    ) -> Result<(), String> {
        let key = (scope.clone(), host.to_string());
        let lock = self.issue_lock(&key);
        let _serial = lock.lock().await;
        if self.cached(scope, host).is_some() {
            return Ok(());
        }
        match read_cached(scope, host) {
            Ok(Some(issued)) if issued.not_after > SystemTime::now() => {
                log::event(
                    Level::Info,
                    "ACME: certificate loaded from cache",
                    &[("host", host.into())],
                );
                self.insert(key, issued);
                return Ok(());
            }
            Ok(_) => {}
            Err(e) => log::event(
                Level::Warn,
                "ACME: cached certificate unreadable",
                &[("host", host.into()), ("error", e.into())],
            ),
        }
        if let Some(check) = on_demand {
            on_demand::allowed(&self.probe, check, host)
                .await
                .inspect_err(|e| {
                    log::event(
                        Level::Warn,
                        "TLS on-demand check denied host",
                        &[("host", host.into()), ("error", e.clone().into())],
                    );
                })?;
        }
        let last_failure = self.failed.lock().ok().and_then(|f| f.get(&key).copied());
        if let Some(at) = last_failure {
            let wait = RETRY_AFTER_FAILURE.saturating_sub(at.elapsed());
            if !wait.is_zero() {
                return Err(format!(
                    "the last attempt failed; next attempt in {}s",
                    wait.as_secs().max(1)
                ));
            }
        }
        match self.issue(scope, host).await {
            Ok(issued) => {
                if let Ok(mut f) = self.failed.lock() {
                    f.remove(&key);
                }
                self.insert(key, issued);
                Ok(())
            }
            Err(e) => {
                if let Ok(mut f) = self.failed.lock() {
                    f.insert(key, Instant::now());
                }
                Err(e)
            }
        }
    }

    /// Renew, once, the certificates in memory that are due and still served with ACME
    /// (`served(scope, host)`: whether that host's certificate still comes from this scope).
    pub async fn renew_due(&self, served: &StillServed) {
        let due: Vec<CertKey> = match self.certs.read() {
            Ok(certs) => certs
                .iter()
                .filter(|(_, i)| {
                    i.not_after
                        .duration_since(SystemTime::now())
                        .map_or(true, |left| left < self.renew_before)
                })
                .map(|(k, _)| k.clone())
                .collect(),
            Err(_) => return,
        };
        for key in due {
            let (scope, host) = &key;
            if !served(scope, host) {
                continue;
            }
            let lock = self.issue_lock(&key);
            let _serial = lock.lock().await;
            match self.issue(scope, host).await {
                Ok(issued) => {
                    log::event(
                        Level::Info,
                        "ACME: certificate renewed",
                        &[("host", host.clone().into())],
                    );
                    self.insert(key.clone(), issued);
                }
                Err(e) => log::event(
                    Level::Error,
                    "ACME: renewal failed",
                    &[("host", host.clone().into()), ("error", e.into())],
                ),
            }
        }
    }

    /// Check for renewals every `DRAY_PROXY_ACME_RENEW_INTERVAL` ([`RENEW_CHECK`]), forever.
    pub async fn renew_loop(self: Arc<Self>, served: Arc<StillServed>) {
        let every = env_duration("DRAY_PROXY_ACME_RENEW_INTERVAL").unwrap_or(RENEW_CHECK);
        loop {
            tokio::time::sleep(every).await;
            self.renew_due(served.as_ref()).await;
        }
    }

    fn insert(&self, key: CertKey, issued: Issued) {
        match self.certs.write() {
            Ok(mut c) => c.insert(key, issued),
            Err(poisoned) => poisoned.into_inner().insert(key, issued),
        };
    }

    fn issue_lock(&self, key: &CertKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.issuing.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        Arc::clone(locks.entry(key.clone()).or_default())
    }

    /// Order a certificate for `host`, answer its HTTP-01 challenge, save it in the cache.
    async fn issue(&self, scope: &AcmeScope, host: &str) -> Result<Issued, String> {
        log::event(
            Level::Info,
            "ACME: requesting a certificate",
            &[
                ("host", host.into()),
                ("directory", scope.directory.clone().into()),
            ],
        );
        let account = self.account(scope).await?;
        let ids = [Identifier::Dns(host.to_string())];
        let mut order = account
            .new_order(&NewOrder::new(&ids))
            .await
            .map_err(|e| format!("new order: {e}"))?;
        let mut tokens = Vec::new();
        let outcome = self.authorize(&mut order, &mut tokens).await;
        let ready = match outcome {
            Ok(()) => order
                .poll_ready(&RetryPolicy::default())
                .await
                .map_err(|e| format!("order: {e}")),
            Err(e) => Err(e),
        };
        if let Ok(mut ch) = self.challenges.lock() {
            for t in &tokens {
                ch.remove(t);
            }
        }
        match ready? {
            OrderStatus::Ready => {}
            other => return Err(format!("order is {other:?}, not ready")),
        }
        let key_pem = order
            .finalize()
            .await
            .map_err(|e| format!("finalize: {e}"))?;
        let chain_pem = order
            .poll_certificate(&RetryPolicy::default())
            .await
            .map_err(|e| format!("certificate: {e}"))?;
        let key = certs::certified_key_from_pem(chain_pem.as_bytes(), key_pem.as_bytes())?;
        let not_after = certs::not_after(&key).ok_or("certificate without an end date")?;
        // A cache that cannot be written costs a new issuance after a restart, not this one.
        if let Err(e) = write_private(
            &scope.cache_dir.join(host),
            format!("{key_pem}{chain_pem}").as_bytes(),
        ) {
            log::event(
                Level::Warn,
                "ACME: certificate not cached",
                &[("host", host.into()), ("error", e.into())],
            );
        }
        log::event(
            Level::Info,
            "ACME: certificate issued",
            &[("host", host.into())],
        );
        Ok(Issued {
            key: Arc::new(key),
            not_after,
        })
    }

    async fn authorize(
        &self,
        order: &mut instant_acme::Order,
        tokens: &mut Vec<String>,
    ) -> Result<(), String> {
        let mut authorizations = order.authorizations();
        while let Some(next) = authorizations.next().await {
            let mut authz = next.map_err(|e| format!("authorization: {e}"))?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => return Err(format!("authorization is {other:?}")),
            }
            let mut challenge = authz
                .challenge(ChallengeType::Http01)
                .ok_or("the ACME server offers no http-01 challenge")?;
            let token = challenge.token.clone();
            let answer = challenge.key_authorization().as_str().to_string();
            if let Ok(mut ch) = self.challenges.lock() {
                ch.insert(token.clone(), answer);
            }
            tokens.push(token);
            challenge
                .set_ready()
                .await
                .map_err(|e| format!("challenge: {e}"))?;
        }
        Ok(())
    }

    /// The scope's account: its key from the cache directory (made on first use), registered
    /// (or found again) on the directory once per process.
    async fn account(&self, scope: &AcmeScope) -> Result<Account, String> {
        let mut accounts = self.accounts.lock().await;
        if let Some(a) = accounts.get(scope) {
            return Ok(a.clone());
        }
        let path = scope.cache_dir.join(ACCOUNT_KEY_FILE);
        let pkcs8 = match std::fs::read(&path) {
            Ok(pem) => account_key_from_pem(&pem)
                .map_err(|e| format!("account key {}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (_, pkcs8) = Key::generate_pkcs8().map_err(|e| e.to_string())?;
                let pem = pem_encode("PRIVATE KEY", pkcs8.secret_pkcs8_der());
                write_private(&path, pem.as_bytes())?;
                pkcs8
            }
            Err(e) => return Err(format!("account key {}: {e}", path.display())),
        };
        let key = Key::from_pkcs8_der(pkcs8.clone_key()).map_err(|e| e.to_string())?;
        let http = match &scope.ca_certs {
            None => self.http.clone(),
            Some(path) => {
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(client_config(Some(path))?)
                    .https_only()
                    .enable_http1()
                    .build();
                Client::builder(TokioExecutor::new()).build(connector)
            }
        };
        let (account, _) = Account::builder_with_http(Box::new(http))
            .create_from_key((key, PrivateKeyDer::Pkcs8(pkcs8)), scope.directory.clone())
            .await
            .map_err(|e| format!("account on {}: {e}", scope.directory))?;
        accounts.insert(scope.clone(), account.clone());
        Ok(account)
    }
}

/// The certificates of a PEM file (at least one), to trust as roots.
pub fn read_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bad = |e: String| format!("{}: {e}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// The TLS client settings for ACME directories: the Mozilla roots, `DRAY_PROXY_ACME_CA_CERTS`
/// and `extra` (a service's `--tls-acme-ca-certs`).
fn client_config(extra: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = std::env::var_os("DRAY_PROXY_ACME_CA_CERTS").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        let bad = |e: String| format!("DRAY_PROXY_ACME_CA_CERTS={}: {e}", path.display());
        for cert in CertificateDer::pem_file_iter(&path).map_err(|e| bad(e.to_string()))? {
            roots
                .add(cert.map_err(|e| bad(e.to_string()))?)
                .map_err(|e| bad(e.to_string()))?;
        }
    }
    if let Some(path) = extra {
        for cert in read_roots(path)? {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(certs::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A certificate from the cache file `<scope>/<host>` (key then chain), if there is one.
fn read_cached(scope: &AcmeScope, host: &str) -> Result<Option<Issued>, String> {
    let path = scope.cache_dir.join(host);
    let pem = match std::fs::read(&path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let key = certs::certified_key_from_pem(&pem, &pem)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let not_after = certs::not_after(&key).ok_or("certificate without an end date")?;
    Ok(Some(Issued {
        key: Arc::new(key),
        not_after,
    }))
}

fn env_duration(key: &str) -> Option<Duration> {
    let v = std::env::var(key).ok()?;
    super::duration::parse_duration(&v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_hash_the_directory_option_as_kamal_proxy() {
        let state = Path::new("/state");
        let s = AcmeScope::of(&TlsSettings::default(), state);
        assert_eq!(s.directory, LETS_ENCRYPT);
        // sha256("")
        assert_eq!(
            s.cache_dir,
            Path::new(
                "/state/certs/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            )
        );
        let staging = TlsSettings {
            acme_directory: Some(LETS_ENCRYPT_STAGING.into()),
            acme_cache_path: Some("/c".into()),
            ..TlsSettings::default()
        };
        let s = AcmeScope::of(&staging, state);
        assert_eq!(s.directory, LETS_ENCRYPT_STAGING);
        assert!(s.cache_dir.starts_with("/c"));
    }

    #[tokio::test]
    async fn a_failed_issuance_is_not_retried_at_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let acme = Acme::new().expect("acme");
        let scope = AcmeScope {
            directory: "https://127.0.0.1:1/dir".into(),
            cache_dir: dir.path().join("scope"),
            ca_certs: None,
        };
        let first = acme
            .ensure(&scope, "a.test", None)
            .await
            .expect_err("no server");
        assert!(first.contains("127.0.0.1:1"), "{first}");
        let second = acme
            .ensure(&scope, "a.test", None)
            .await
            .expect_err("backoff");
        assert!(second.contains("next attempt"), "{second}");
        assert!(acme.cached(&scope, "a.test").is_none());
        // The account key was made and kept for the next attempt.
        assert!(dir.path().join("scope").join(ACCOUNT_KEY_FILE).exists());
    }
}

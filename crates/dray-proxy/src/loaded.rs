//! What a deploy loads for a service besides its target, from the files its flags name: the
//! certificate (its own PEM files, or the ACME scope it is issued in) and the error pages.
//! Loaded at each deploy (an error fails it) and at restore (an error is logged).

use std::path::Path;
use std::sync::Arc;

use rustls::sign::CertifiedKey;

use super::acme::AcmeScope;
use super::certs;
use super::log::{self, Level};
use super::pages::ErrorPages;
use super::service::ServiceSpec;

/// Where a TLS service's certificate comes from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// Its own files, read at deploy (and at restore).
    Static(Arc<CertifiedKey>),
    /// ACME, in this account and cache scope.
    Acme(AcmeScope),
}

/// What a deploy loads besides the spec: the certificate and the error pages.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The certificate source, with `--tls`.
    pub cert: Option<CertSource>,
    /// The `--error-pages` templates.
    pub pages: Option<Arc<ErrorPages>>,
}

/// Load what `spec` needs besides its target: its certificate (files or ACME scope) and
/// its error pages; an error says which file and why.
pub fn load(spec: &ServiceSpec, state_dir: Option<&Path>) -> Result<Loaded, String> {
    Ok(Loaded {
        cert: load_cert(spec, state_dir)?,
        pages: load_pages(spec)?,
    })
}

fn load_cert(spec: &ServiceSpec, state_dir: Option<&Path>) -> Result<Option<CertSource>, String> {
    if !spec.tls {
        return Ok(None);
    }
    if let Some((cert, key)) = spec.tls_settings.files() {
        let key = certs::load_certified_key(cert.as_ref(), key.as_ref())?;
        return Ok(Some(CertSource::Static(key)));
    }
    if spec.hosts.iter().any(|h| h.contains('*')) {
        return Err("automatic TLS does not support wildcards".into());
    }
    let state_dir = state_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| std::env::temp_dir().join("kamal-proxy"));
    Ok(Some(CertSource::Acme(AcmeScope::of(
        &spec.tls_settings,
        &state_dir,
    ))))
}

/// Like [`load`], for a restored service: what fails is logged and left out.
pub fn load_restored(spec: &ServiceSpec, state_dir: Option<&Path>) -> Loaded {
    let warn = |e: String| {
        log::event(
            Level::Warn,
            "Cannot load for restored service",
            &[("service", spec.name.clone().into()), ("error", e.into())],
        );
    };
    Loaded {
        cert: load_cert(spec, state_dir).unwrap_or_else(|e| {
            warn(e);
            None
        }),
        pages: load_pages(spec).unwrap_or_else(|e| {
            warn(e);
            None
        }),
    }
}

/// A service's `--error-pages`, parsed.
fn load_pages(spec: &ServiceSpec) -> Result<Option<Arc<ErrorPages>>, String> {
    match spec.error_pages.as_deref() {
        Some(dir) if !dir.is_empty() => ErrorPages::load(Path::new(dir)).map(|p| Some(Arc::new(p))),
        _ => Ok(None),
    }
}

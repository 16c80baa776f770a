//! Certificates as rustls holds them: the crypto provider (ring), PEM files and PEM bytes to a
//! [`CertifiedKey`], and a certificate's expiry. Used by the TLS server, the service loader
//! and ACME alike.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// The crypto provider everything here uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Read a PEM certificate chain and its PEM private key (PKCS#8, PKCS#1 or SEC1), checking
/// that they belong together. Errors name the file, never the key's content.
pub fn load_certified_key(cert_path: &Path, key_path: &Path) -> Result<Arc<CertifiedKey>, String> {
    let certs = std::fs::read(cert_path)
        .map_err(|e| format!("unable to load certificate {}: {e}", cert_path.display()))?;
    let key = std::fs::read(key_path)
        .map_err(|e| format!("unable to load private key {}: {e}", key_path.display()))?;
    certified_key_from_pem(&certs, &key)
        .map(Arc::new)
        .map_err(|e| {
            format!(
                "unable to load certificate {} with key {}: {e}",
                cert_path.display(),
                key_path.display()
            )
        })
}

/// A certificate chain and key from PEM text.
pub fn certified_key_from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad certificate PEM: {e}"))?;
    if chain.is_empty() {
        return Err("no certificate in the PEM file".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => "no private key in the PEM file".to_string(),
        _ => "bad private key PEM".to_string(),
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| e.to_string())
}

/// When the leaf certificate of `key` expires.
pub fn not_after(key: &CertifiedKey) -> Option<SystemTime> {
    cert_not_after(key.cert.first()?)
}

/// `notAfter` of an X.509 certificate (DER).
pub fn cert_not_after(cert: &[u8]) -> Option<SystemTime> {
    let (_, certificate, _) = der_next(cert)?;
    let (_, mut tbs, _) = der_next(certificate)?;
    // [0] version (optional), serial, signature algorithm, issuer, validity.
    let (tag, _, rest) = der_next(tbs)?;
    if tag == 0xA0 {
        tbs = rest;
        let (_, _, rest) = der_next(tbs)?;
        tbs = rest;
    } else {
        tbs = rest;
    }
    let (_, _, rest) = der_next(tbs)?; // signature algorithm
    let (_, _, rest) = der_next(rest)?; // issuer
    let (_, validity, _) = der_next(rest)?;
    let (_, _, rest) = der_next(validity)?; // notBefore
    let (tag, time, _) = der_next(rest)?;
    let text = std::str::from_utf8(time).ok()?;
    let full = match tag {
        // UTCTime: YYMMDDHHMMSSZ, years 50..99 are 19xx.
        0x17 => {
            let yy: u32 = text.get(..2)?.parse().ok()?;
            format!("{}{text}", if yy >= 50 { "19" } else { "20" })
        }
        0x18 => text.to_string(),
        _ => return None,
    };
    let t = chrono::NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%SZ").ok()?;
    let secs = u64::try_from(t.and_utc().timestamp()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// One DER element: its tag, its content and what follows it.
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        let cert = params.self_signed(&key).expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn pem_files_load_and_mismatches_are_refused() {
        let (cert, key) = self_signed(&["a.test"]);
        let (_, other_key) = self_signed(&["b.test"]);
        let ck = certified_key_from_pem(cert.as_bytes(), key.as_bytes()).expect("loads");
        let expiry = not_after(&ck).expect("not after");
        // rcgen's default validity ends in 4096.
        assert!(expiry > SystemTime::now() + Duration::from_secs(3600 * 24 * 365 * 100));
        assert!(certified_key_from_pem(cert.as_bytes(), other_key.as_bytes()).is_err());
        assert!(certified_key_from_pem(b"", key.as_bytes()).is_err());
        let err = certified_key_from_pem(cert.as_bytes(), b"junk").expect_err("no key");
        assert!(err.contains("no private key"), "{err}");
    }

    #[test]
    fn not_after_reads_utc_time() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["a.test".to_string()]).expect("params");
        params.not_after = rcgen::date_time_ymd(2031, 5, 17);
        let cert = params.self_signed(&key).expect("cert");
        let t = cert_not_after(cert.der()).expect("parsed");
        let secs = t.duration_since(UNIX_EPOCH).expect("after epoch").as_secs();
        assert_eq!(secs, 1_936_742_400); // 2031-05-17T00:00:00Z
    }
}

//! The ACME files: keys and certificates as PEM, kamal-proxy's (Go's) key encodings, and
//! writes only the owner can read.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// The account key as PKCS#8: ours is PKCS#8 already, kamal-proxy's is SEC1 (P-256).
pub fn account_key_from_pem(pem: &[u8]) -> Result<PrivatePkcs8KeyDer<'static>, String> {
    match PrivateKeyDer::from_pem_slice(pem).map_err(|_| "not a PEM private key".to_string())? {
        PrivateKeyDer::Pkcs8(k) => Ok(k),
        PrivateKeyDer::Sec1(k) => Ok(PrivatePkcs8KeyDer::from(sec1_p256_to_pkcs8(
            k.secret_sec1_der(),
        ))),
        _ => Err("not an ECDSA key".into()),
    }
}

/// Wrap a SEC1 P-256 key in PKCS#8 (RFC 5208 with the id-ecPublicKey/prime256v1 algorithm).
pub fn sec1_p256_to_pkcs8(sec1: &[u8]) -> Vec<u8> {
    const ALGORITHM: [u8; 21] = [
        0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
        0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ];
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(&ALGORITHM);
    body.push(0x04);
    der_len(&mut body, sec1.len());
    body.extend_from_slice(sec1);
    let mut out = vec![0x30];
    der_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, (len & 0xff) as u8]);
    }
}

/// PEM text of one DER item.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Write a file only its owner reads (0600), atomically, making its directory (0700).
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(fail)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(data).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use instant_acme::Key;

    use super::*;

    #[test]
    fn account_keys_in_sec1_become_pkcs8() {
        let (_, pkcs8) = Key::generate_pkcs8().expect("key");
        let pem = pem_encode("PRIVATE KEY", pkcs8.secret_pkcs8_der());
        let back = account_key_from_pem(pem.as_bytes()).expect("pkcs8 pem");
        assert_eq!(back.secret_pkcs8_der(), pkcs8.secret_pkcs8_der());
        // A SEC1 key (what Go's x509.MarshalECPrivateKey writes), made by rcgen's PKCS#8.
        let rc = rcgen::KeyPair::generate().expect("rcgen key");
        let der = rc.serialize_der();
        // PKCS#8 → its inner SEC1 → PKCS#8 again loads as an account key.
        let sec1 = inner_octet_string(&der).expect("inner key");
        let wrapped = sec1_p256_to_pkcs8(sec1);
        assert!(Key::from_pkcs8_der(PrivatePkcs8KeyDer::from(wrapped)).is_ok());
    }

    /// The privateKey OCTET STRING of a PKCS#8 document.
    fn inner_octet_string(der: &[u8]) -> Option<&[u8]> {
        let body = &der[2..];
        let body = if der[1] & 0x80 != 0 {
            &der[2 + usize::from(der[1] & 0x7f)..]
        } else {
            body
        };
        let rest = &body[3 + 21..];
        assert_eq!(rest[0], 0x04);
        let (len, start) = if rest[1] < 0x80 {
            (usize::from(rest[1]), 2)
        } else {
            (usize::from(rest[2]), 3)
        };
        rest.get(start..start + len)
    }

    #[test]
    fn written_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("scope").join("a.test");
        write_private(&path, b"secret").expect("write");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).expect("read"), b"secret");
    }
}

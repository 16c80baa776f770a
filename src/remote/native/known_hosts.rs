//! Host-key verification as OpenSSH does it: the `known_hosts` files `ssh -G` names, their
//! host patterns (lists, `*`/`?` wildcards, `!` negation, `[host]:port`, hashed `|1|` names)
//! and markers (`@revoked`; a `@cert-authority` line means the host needs OpenSSH).

use std::path::{Path, PathBuf};

use hmac::{KeyInit as _, Mac as _};
use russh::keys::PublicKey;

/// The keys the `known_hosts` files record for one host.
#[derive(Debug, Default)]
pub struct HostKeys {
    /// Recorded keys with their file and line.
    pub keys: Vec<(PublicKey, PathBuf, usize)>,
    /// `@revoked` keys.
    pub revoked: Vec<PublicKey>,
    /// A `@cert-authority` line matches the host (certificates: OpenSSH only).
    pub cert_authority: bool,
}

/// What the server's key is to the `known_hosts` files.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Recorded for the host.
    Known,
    /// The host has other keys recorded (file and line of the first): refused.
    Mismatch(PathBuf, usize),
    /// Revoked: refused.
    Revoked,
    /// Nothing recorded for the host.
    Unknown,
}

/// The name looked up: `host`, or `[host]:port` off port 22.
pub fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Read every file of `files` (missing ones are empty) for `name` (see [`lookup_name`]).
pub fn scan(files: &[PathBuf], name: &str) -> HostKeys {
    let mut found = HostKeys::default();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let mut first = words.next().unwrap_or_default();
            let marker = if first.starts_with('@') {
                let m = first;
                first = words.next().unwrap_or_default();
                Some(m)
            } else {
                None
            };
            if !patterns_match(first, name) {
                continue;
            }
            let (Some(_kind), Some(base64)) = (words.next(), words.next()) else {
                continue;
            };
            match marker {
                Some("@cert-authority") => found.cert_authority = true,
                Some("@revoked") => {
                    if let Ok(key) = russh::keys::parse_public_key_base64(base64) {
                        found.revoked.push(key);
                    }
                }
                Some(_) => {}
                None => {
                    if let Ok(key) = russh::keys::parse_public_key_base64(base64) {
                        found.keys.push((key, file.clone(), i + 1));
                    }
                }
            }
        }
    }
    found
}

impl HostKeys {
    /// Judge the server's `key`.
    pub fn check(&self, key: &PublicKey) -> Verdict {
        if self.revoked.iter().any(|r| r.key_data() == key.key_data()) {
            return Verdict::Revoked;
        }
        if self
            .keys
            .iter()
            .any(|(k, _, _)| k.key_data() == key.key_data())
        {
            return Verdict::Known;
        }
        match self.keys.first() {
            Some((_, file, line)) => Verdict::Mismatch(file.clone(), *line),
            None => Verdict::Unknown,
        }
    }

    /// The algorithms of the recorded keys, to ask the server for one of those first (as
    /// OpenSSH orders its host-key algorithms).
    pub fn algorithms(&self) -> Vec<russh::keys::Algorithm> {
        let mut algs: Vec<russh::keys::Algorithm> = Vec::new();
        for (key, _, _) in &self.keys {
            let alg = key.algorithm();
            if !algs.contains(&alg) {
                algs.push(alg);
            }
        }
        algs
    }
}

/// Append `name key` to `file` (`StrictHostKeyChecking accept-new`/`no` for a new host).
pub fn learn(file: &Path, name: &str, key: &PublicKey) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = key
        .to_openssh()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    writeln!(f, "{name} {text}")
}

/// Whether a comma-separated host pattern list matches `name`: some pattern matches and no
/// negated one does.
fn patterns_match(list: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in list.split(',') {
        if let Some(hashed) = pattern.strip_prefix("|1|") {
            if hashed_match(hashed, name) {
                matched = true;
            }
        } else if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard(negated, name) {
                return false;
            }
        } else if wildcard(pattern, name) {
            matched = true;
        }
    }
    matched
}

/// `salt|hash` (base64 both): HMAC-SHA1 of `name` keyed with the salt.
fn hashed_match(hashed: &str, name: &str) -> bool {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (engine.decode(salt), engine.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// `*` and `?` wildcards, case-insensitive (host names).
fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let n: Vec<char> = name.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIIMr41btrNLe2/ShFdXY/DGmMpuzSyXq8T/kkFvsLG8u";
    const ED_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIHV6tyDBdY9wKoa9c1WGFQCL/H7MK8iYASkENBm3oxpi";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).expect("key")
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn patterns_follow_openssh() {
        assert!(patterns_match("web1,10.0.0.1", "10.0.0.1"));
        assert!(patterns_match("*.example.com", "a.example.com"));
        assert!(patterns_match("10.0.0.?", "10.0.0.7"));
        assert!(!patterns_match(
            "*.example.com,!bad.example.com",
            "bad.example.com"
        ));
        assert!(patterns_match("[web1]:2222", "[web1]:2222"));
        assert!(!patterns_match("web1", "[web1]:2222"));
        // `ssh-keygen -H` of "127.0.0.11".
        let hashed = "|1|9L0WT6yNdtckyWTrH6zpTB5SpRQ=|LJ/M9lIX1YVZuPEzST+6yGA2ujk=";
        assert!(patterns_match(hashed, "127.0.0.11"));
        assert!(!patterns_match(hashed, "127.0.0.12"));
    }

    #[test]
    fn a_recorded_key_is_known_another_is_a_mismatch_named_by_line() {
        let (_d, path) = file(&format!(
            "# comment\nother ssh-ed25519 {ED_B}\nweb1,10.0.0.1 ssh-ed25519 {ED_A}\n"
        ));
        let keys = scan(std::slice::from_ref(&path), "web1");
        assert_eq!(keys.check(&key(ED_A)), Verdict::Known);
        assert_eq!(keys.check(&key(ED_B)), Verdict::Mismatch(path.clone(), 3));
        assert_eq!(scan(&[path], "web2").check(&key(ED_A)), Verdict::Unknown);
    }

    #[test]
    fn markers_revoke_and_send_certificates_to_openssh() {
        let (_d, path) = file(&format!(
            "@revoked * ssh-ed25519 {ED_B}\n@cert-authority *.example.com ssh-ed25519 {ED_A}\nweb1 ssh-ed25519 {ED_B}\n"
        ));
        let keys = scan(std::slice::from_ref(&path), "web1");
        assert_eq!(keys.check(&key(ED_B)), Verdict::Revoked);
        assert!(!keys.cert_authority);
        assert!(scan(&[path], "a.example.com").cert_authority);
    }

    #[test]
    fn learnt_keys_are_found_again() {
        let (_d, path) = file("");
        learn(&path, "[web1]:2222", &key(ED_A)).expect("learn");
        let keys = scan(&[path], &lookup_name("web1", 2222));
        assert_eq!(keys.check(&key(ED_A)), Verdict::Known);
    }
}

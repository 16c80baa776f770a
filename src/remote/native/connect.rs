//! One native connection: TCP (or a `direct-tcpip` channel of the jump host's connection),
//! the key exchange with the offered algorithms, the host key checked against `known_hosts`,
//! and public-key authentication with the agent's keys and the identity files.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use russh::client::{Config, Handle, Handler, Session};
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{kex, Preferred};

use super::known_hosts::{self, HostKeys, Verdict};
use super::resolved::{Resolved, Strict};

/// The russh handler: checks the host key, records the negotiated key exchange.
pub struct Client {
    /// The host as the user named it (for messages).
    host: String,
    /// The name its keys are looked up by (`[name]:port` off 22).
    lookup: String,
    keys: Arc<HostKeys>,
    strict: Strict,
    /// Where a new host's key is learnt (the first user known hosts file).
    learn_file: Option<PathBuf>,
    /// Why the host key was refused.
    refusal: Arc<Mutex<Option<String>>>,
    /// The negotiated key exchange.
    kex: Arc<Mutex<Option<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(_) => {
                *lock(&self.refusal) = Some(format!(
                    "{} presented a host certificate, which the native transport does not verify",
                    self.host
                ));
                return Ok(false);
            }
        };
        let fingerprint = key.fingerprint(Default::default());
        let refuse = |why: String| {
            *lock(&self.refusal) = Some(why);
            Ok(false)
        };
        match self.keys.check(key) {
            Verdict::Known => Ok(true),
            Verdict::Revoked => refuse(format!(
                "the host key of {} ({fingerprint}) is marked @revoked in known_hosts",
                self.host
            )),
            Verdict::Mismatch(file, line) => refuse(format!(
                "the host key of {} ({} {fingerprint}) does not match the key recorded for `{}` in {}:{line} — possible man-in-the-middle, refused",
                self.host,
                key.algorithm(),
                self.lookup,
                file.display()
            )),
            Verdict::Unknown => match (self.strict, &self.learn_file) {
                (Strict::Yes, _) | (_, None) => refuse(format!(
                    "the host key of {} ({} {fingerprint}) is not in known_hosts (looked up as `{}`) and StrictHostKeyChecking is yes",
                    self.host,
                    key.algorithm(),
                    self.lookup
                )),
                (Strict::AcceptNew | Strict::No, Some(file)) => {
                    if let Err(e) = known_hosts::learn(file, &self.lookup, key) {
                        return refuse(format!(
                            "cannot record the host key of {} in {}: {e}",
                            self.host,
                            file.display()
                        ));
                    }
                    // As OpenSSH says it (on stderr, whatever the log level).
                    eprintln!(
                        "warning: permanently added {} ({} {fingerprint}) to {}",
                        self.lookup,
                        key.algorithm(),
                        file.display()
                    );
                    Ok(true)
                }
            },
        }
    }

    async fn kex_done(
        &mut self,
        _shared_secret: Option<&[u8]>,
        names: &russh::Names,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        *lock(&self.kex) = Some(names.kex.as_ref().to_string());
        Ok(())
    }
}

/// An established, authenticated connection.
pub struct Connected {
    /// The connection.
    pub handle: Handle<Client>,
    /// The negotiated key exchange.
    pub kex: String,
}

// What a connection costs, measured with heaptrack at 200 hosts (docs in the memory report of
// issue 19): most of it is russh's own and not set by `Config`: four tokio mpsc channels per
// connection (handle → session `Msg`, session → handle `Reply`, and the session's priority and
// inbound-channel `Msg` channels) each allocate a 32-slot block up front, and `Msg` is 552
// bytes, so about 4 × 17 KiB = 69 KiB per connection, plus the session task. What `Config`
// does bound is below: the buffers that grow with a command's output.

/// The largest channel data packet the server may send us (russh's default is 32 KiB). russh
/// reads every packet into one buffer per connection that keeps the capacity of the largest
/// packet it ever held, for the whole run, on every host: at 16 KiB a host whose commands
/// printed a lot keeps at most about 16 KiB (32 KiB with `Vec`'s growth), not 32 (64).
pub(crate) const MAX_PACKET: u32 = 16 * 1024;

/// Data messages queued per session channel before the connection waits for the reader
/// (russh's default is 100): one tokio block of 32 slots, so a command printing fast holds at
/// most 32 × [`MAX_PACKET`] = 512 KiB queued, not 100 × 32 KiB = 3.2 MB. The reader
/// ([`super::exec`]) drains it as it comes.
pub(crate) const CHANNEL_BUFFER: usize = 32;

/// The channel window (flow control), OpenSSH's own 2 MiB: what the server may send before it
/// waits for us. Not memory by itself (what arrives is bounded by [`CHANNEL_BUFFER`]); kept at
/// OpenSSH's value so that big outputs stream as fast as over OpenSSH.
pub(crate) const WINDOW: u32 = 2 * 1024 * 1024;

/// The russh configuration for `r`: its key exchanges, host-key algorithms ordered by what
/// `known_hosts` records (as OpenSSH does), keep-alives, the per-connection buffer bounds.
fn config(r: &Resolved, keys: &HostKeys) -> Config {
    let mut kexes: Vec<kex::Name> = r
        .kex
        .iter()
        .filter_map(|k| match *k {
            "mlkem768x25519-sha256" => Some(kex::MLKEM768X25519_SHA256),
            "curve25519-sha256" => Some(kex::CURVE25519),
            _ => None,
        })
        .collect();
    kexes.push(kex::EXTENSION_SUPPORT_AS_CLIENT);
    kexes.push(kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT);
    let mut algs = keys.algorithms();
    for alg in Preferred::DEFAULT.key.iter() {
        if !algs.contains(alg) {
            algs.push(alg.clone());
        }
    }
    Config {
        preferred: Preferred {
            kex: Cow::Owned(kexes),
            key: Cow::Owned(algs),
            ..Preferred::DEFAULT
        },
        keepalive_interval: (!r.alive_interval.is_zero()).then_some(r.alive_interval),
        keepalive_max: r.alive_count,
        nodelay: true,
        window_size: WINDOW,
        maximum_packet_size: MAX_PACKET,
        channel_buffer_size: CHANNEL_BUFFER,
        ..Config::default()
    }
}

/// Connect to `r` (through `via`, the last jump host's connection, if any) and authenticate.
/// `host` is the name the user gave (for messages).
pub async fn connect(
    host: &str,
    r: &Resolved,
    via: Option<&Handle<Client>>,
) -> Result<Connected, String> {
    let lookup = known_hosts::lookup_name(&r.host_key_name, r.port);
    let keys = Arc::new(known_hosts::scan(&r.known_hosts, &lookup));
    if keys.cert_authority {
        // Checked before connecting by the caller; kept here as the last guard.
        return Err(format!(
            "known_hosts has a @cert-authority line for `{lookup}` (use transport openssh)"
        ));
    }
    let refusal = Arc::new(Mutex::new(None));
    let kex = Arc::new(Mutex::new(None));
    let client = Client {
        host: host.to_string(),
        lookup: lookup.clone(),
        keys: keys.clone(),
        strict: r.strict,
        learn_file: r.known_hosts.first().cloned(),
        refusal: refusal.clone(),
        kex: kex.clone(),
    };
    let config = Arc::new(config(r, &keys));
    let session = match via {
        Some(jump) => {
            let channel = jump
                .channel_open_direct_tcpip(r.hostname.clone(), u32::from(r.port), "127.0.0.1", 0)
                .await
                .map_err(|e| {
                    format!(
                        "the jump host refused to connect to {}:{}: {e}",
                        r.hostname, r.port
                    )
                })?;
            russh::client::connect_stream(config, channel.into_stream(), client).await
        }
        None => {
            let stream = tcp(r).await?;
            russh::client::connect_stream(config, stream, client).await
        }
    };
    let mut handle = session.map_err(|e| match lock(&refusal).take() {
        Some(why) => why,
        None => format!("ssh handshake with {}:{} failed: {e}", r.hostname, r.port),
    })?;
    let kex = lock(&kex).clone().unwrap_or_default();
    authenticate(&mut handle, r).await?;
    Ok(Connected { handle, kex })
}

/// A TCP connection to `r`'s host name and port, from `BindAddress` when set.
async fn tcp(r: &Resolved) -> Result<tokio::net::TcpStream, String> {
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((r.hostname.as_str(), r.port))
        .await
        .map_err(|e| format!("could not resolve hostname {}: {e}", r.hostname))?
        .collect();
    let bind: Option<std::net::IpAddr> = match &r.bind_address {
        Some(a) => Some(
            a.parse()
                .map_err(|_| format!("BindAddress {a} is not an IP address"))?,
        ),
        None => None,
    };
    let mut last = format!("no address for {}", r.hostname);
    for addr in addrs {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(|e| e.to_string())?;
        if let Some(ip) = bind {
            if ip.is_ipv4() != addr.is_ipv4() {
                continue;
            }
            socket
                .bind(std::net::SocketAddr::new(ip, 0))
                .map_err(|e| format!("cannot bind to BindAddress {ip}: {e}"))?;
        }
        match socket.connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = format!("connect to {addr}: {e}"),
        }
    }
    Err(last)
}

/// The public half of an identity file: `<file>.pub`, else the private key when unencrypted.
fn identity_public(path: &std::path::Path) -> Option<PublicKey> {
    let mut pubfile = path.as_os_str().to_owned();
    pubfile.push(".pub");
    russh::keys::load_public_key(PathBuf::from(pubfile))
        .ok()
        .or_else(|| {
            russh::keys::load_secret_key(path, None)
                .ok()
                .map(|k| k.public_key().clone())
        })
}

/// Public-key authentication as OpenSSH orders it: the agent's keys (with `IdentitiesOnly`
/// only those of the identity files), then the identity files themselves.
async fn authenticate(handle: &mut Handle<Client>, r: &Resolved) -> Result<(), String> {
    if !r.pubkey {
        return Err("PubkeyAuthentication is no; the native transport authenticates with keys only (use transport openssh)".into());
    }
    let mut tried: Vec<String> = Vec::new();
    let rsa_hash = handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten();
    let wanted: Vec<PublicKey> = r
        .identity_files
        .iter()
        .filter_map(|f| identity_public(f))
        .collect();
    if let Some(socket) = &r.agent {
        match AgentClient::connect_uds(socket).await {
            Ok(mut agent) => {
                let identities = agent.request_identities().await.unwrap_or_default();
                for identity in identities {
                    let key = identity.public_key().into_owned();
                    if r.identities_only && !wanted.iter().any(|w| w.key_data() == key.key_data()) {
                        continue;
                    }
                    let hash = matches!(key.algorithm(), russh::keys::Algorithm::Rsa { .. })
                        .then_some(rsa_hash)
                        .flatten();
                    tried.push(format!("agent key {}", key.fingerprint(Default::default())));
                    match handle
                        .authenticate_publickey_with(r.user.clone(), key, hash, &mut agent)
                        .await
                    {
                        Ok(result) if result.success() => return Ok(()),
                        Ok(_) => {}
                        Err(e) => tracing::debug!("agent signing failed: {e}"),
                    }
                }
            }
            Err(e) => tracing::debug!("no agent at {}: {e}", socket.display()),
        }
    }
    let mut skipped: Vec<String> = Vec::new();
    for file in &r.identity_files {
        if !file.exists() {
            continue;
        }
        let key = match russh::keys::load_secret_key(file, None) {
            Ok(k) => k,
            Err(e) => {
                skipped.push(format!("{} ({e})", file.display()));
                continue;
            }
        };
        let hash = matches!(key.algorithm(), russh::keys::Algorithm::Rsa { .. })
            .then_some(rsa_hash)
            .flatten();
        tried.push(file.display().to_string());
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
        match handle.authenticate_publickey(r.user.clone(), key).await {
            Ok(result) if result.success() => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(format!("authentication as {} failed: {e}", r.user)),
        }
    }
    let mut msg = format!(
        "Permission denied (publickey) for {}@{}: tried {}",
        r.user,
        r.hostname,
        if tried.is_empty() {
            "no key (no agent key, no identity file)".to_string()
        } else {
            tried.join(", ")
        }
    );
    if !skipped.is_empty() {
        msg.push_str(&format!(
            "; could not load {} (an encrypted key must be in ssh-agent for the native transport)",
            skipped.join(", ")
        ));
    }
    Err(msg)
}

#[cfg(test)]
mod tests {
    //! Key exchange against an in-process russh server: the fleet's sshd (OpenSSH 9.2) has no
    //! ML-KEM, so a server that offers it is made here (a stand-in for OpenSSH 9.9+).
    use super::*;
    use std::time::Duration;

    struct Server;

    impl russh::server::Handler for Server {
        type Error = russh::Error;

        async fn auth_publickey(
            &mut self,
            _user: &str,
            _key: russh::server::VerifiedPublicKey<'_>,
        ) -> Result<russh::server::Auth, Self::Error> {
            Ok(russh::server::Auth::Accept)
        }
    }

    fn keygen(dir: &std::path::Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        let ok = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&path)
            .status()
            .expect("ssh-keygen")
            .success();
        assert!(ok);
        path
    }

    /// Connect to a russh server offering `server_kex`, the client offering `client_kex`: the
    /// negotiated key exchange.
    async fn negotiate(server_kex: &'static [kex::Name], client_kex: Vec<&'static str>) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let host_key = keygen(dir.path(), "host");
        let client_key = keygen(dir.path(), "client");
        let host = russh::keys::load_secret_key(&host_key, None).expect("host key");
        let known = dir.path().join("known_hosts");
        let public = host.public_key().to_openssh().expect("openssh");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::fs::write(&known, format!("[127.0.0.1]:{port} {public}\n")).expect("known_hosts");
        let config = Arc::new(russh::server::Config {
            keys: vec![host],
            preferred: Preferred {
                kex: Cow::Borrowed(server_kex),
                ..Preferred::DEFAULT
            },
            inactivity_timeout: Some(Duration::from_secs(10)),
            ..Default::default()
        });
        tokio::spawn(async move {
            if let Ok((socket, _)) = listener.accept().await {
                if let Ok(session) = russh::server::run_stream(config, socket, Server).await {
                    let _ = session.await;
                }
            }
        });
        let r = Resolved {
            hostname: "127.0.0.1".into(),
            port,
            user: "deploy".into(),
            identity_files: vec![client_key],
            identities_only: true,
            pubkey: true,
            agent: None,
            jumps: vec![],
            kex: client_kex,
            known_hosts: vec![known],
            host_key_name: "127.0.0.1".into(),
            strict: Strict::Yes,
            connect_timeout: None,
            alive_interval: Duration::ZERO,
            alive_count: 3,
            bind_address: None,
        };
        let connected = connect("test-host", &r, None).await.expect("connects");
        connected.kex
    }

    /// The per-connection buffer bounds are what russh gets (reverting them to russh's
    /// defaults, 32 KiB packets and 100 queued messages per channel, fails here).
    #[test]
    fn the_connection_buffers_are_bounded() {
        let r = Resolved {
            hostname: "127.0.0.1".into(),
            port: 22,
            user: "deploy".into(),
            identity_files: vec![],
            identities_only: false,
            pubkey: true,
            agent: None,
            jumps: vec![],
            kex: super::super::resolved::NATIVE_KEX.to_vec(),
            known_hosts: vec![],
            host_key_name: "127.0.0.1".into(),
            strict: Strict::Yes,
            connect_timeout: None,
            alive_interval: Duration::ZERO,
            alive_count: 3,
            bind_address: None,
        };
        let c = config(&r, &HostKeys::default());
        assert_eq!(c.maximum_packet_size, 16 * 1024);
        assert_eq!(c.channel_buffer_size, 32);
        assert_eq!(c.window_size, 2 * 1024 * 1024, "OpenSSH's window");
        let defaults = Config::default();
        assert!(c.maximum_packet_size < defaults.maximum_packet_size);
        assert!(c.channel_buffer_size < defaults.channel_buffer_size);
        // What one channel can hold queued: at most 512 KiB.
        assert!(c.channel_buffer_size * c.maximum_packet_size as usize <= 512 * 1024);
    }

    #[tokio::test]
    async fn ml_kem_is_negotiated_with_a_server_that_has_it() {
        let kex = negotiate(
            &[kex::MLKEM768X25519_SHA256, kex::CURVE25519],
            super::super::resolved::NATIVE_KEX.to_vec(),
        )
        .await;
        assert_eq!(kex, "mlkem768x25519-sha256");
    }

    #[tokio::test]
    async fn curve25519_without_ml_kem_on_the_server_or_by_the_users_choice() {
        let without = negotiate(
            &[kex::CURVE25519],
            super::super::resolved::NATIVE_KEX.to_vec(),
        )
        .await;
        assert_eq!(without, "curve25519-sha256");
        let chosen = negotiate(
            &[kex::MLKEM768X25519_SHA256, kex::CURVE25519],
            vec!["curve25519-sha256"],
        )
        .await;
        assert_eq!(chosen, "curve25519-sha256");
    }
}

//! A host's client settings as OpenSSH resolves them (`ssh -G` against the run's generated
//! config), read into what the native client needs, and the reasons it cannot honour them
//! (the host then goes over OpenSSH).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// Key exchanges the native client offers, most preferred first: the ML-KEM hybrid
/// (post-quantum), then classical curve25519.
pub const NATIVE_KEX: [&str; 2] = ["mlkem768x25519-sha256", "curve25519-sha256"];

/// Whether `kex` resists a quantum adversary (a hybrid with a post-quantum KEM).
pub fn is_post_quantum(kex: &str) -> bool {
    kex.starts_with("mlkem") || kex.starts_with("sntrup")
}

/// `ssh -G` output: one `key value` per line, keys lowercase; repeated keys kept in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GOutput(pub HashMap<String, Vec<String>>);

impl GOutput {
    /// Parse `ssh -G` output.
    pub fn parse(text: &str) -> GOutput {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            map.entry(key.to_ascii_lowercase())
                .or_default()
                .push(value.trim().to_string());
        }
        GOutput(map)
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.first()).map(String::as_str)
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    fn is_yes(&self, key: &str) -> bool {
        matches!(self.get(key), Some("yes" | "true"))
    }
}

/// The settings OpenSSH must have at their defaults for the native client to honour a host:
/// the algorithm lists it does not choose from (it keeps russh's), and features it lacks.
/// Compared with the defaults of the local `ssh` (`ssh -F /dev/null -G`).
const MUST_BE_DEFAULT: [&str; 10] = [
    "ciphers",
    "macs",
    "hostkeyalgorithms",
    "pubkeyacceptedalgorithms",
    "addressfamily",
    "connectionattempts",
    "requesttty",
    "canonicalizehostname",
    "rekeylimit",
    "tunnel",
];

/// Settings whose mere presence needs OpenSSH.
const MUST_BE_ABSENT: [&str; 10] = [
    "certificatefile",
    "localforward",
    "remoteforward",
    "dynamicforward",
    "sendenv",
    "setenv",
    "pkcs11provider",
    "localcommand",
    "remotecommand",
    "knownhostscommand",
];

/// Settings that need OpenSSH when `yes`.
const MUST_NOT_BE_YES: [&str; 7] = [
    "gssapiauthentication",
    "forwardagent",
    "forwardx11",
    "hostbasedauthentication",
    "permitlocalcommand",
    "enablesshkeysign",
    "verifyhostkeydns",
];

/// A host's settings for the native client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Where to connect (`HostName`).
    pub hostname: String,
    /// `Port`.
    pub port: u16,
    /// `User`.
    pub user: String,
    /// `IdentityFile`s, `~` expanded.
    pub identity_files: Vec<PathBuf>,
    /// `IdentitiesOnly`.
    pub identities_only: bool,
    /// `PubkeyAuthentication`.
    pub pubkey: bool,
    /// The agent's socket (`IdentityAgent`, else `$SSH_AUTH_SOCK`); `None`: no agent.
    pub agent: Option<PathBuf>,
    /// `ProxyJump` hops, first first (`user@host:port` each).
    pub jumps: Vec<String>,
    /// Key exchanges to offer, in order.
    pub kex: Vec<&'static str>,
    /// `UserKnownHostsFile`s then `GlobalKnownHostsFile`s, `~` expanded.
    pub known_hosts: Vec<PathBuf>,
    /// The name host keys are looked up by (`HostKeyAlias`, else the host name).
    pub host_key_name: String,
    /// `StrictHostKeyChecking`: `yes`, `accept-new` or `no`.
    pub strict: Strict,
    /// `ConnectTimeout`.
    pub connect_timeout: Option<Duration>,
    /// `ServerAliveInterval` (0: none).
    pub alive_interval: Duration,
    /// `ServerAliveCountMax`.
    pub alive_count: usize,
    /// `BindAddress`.
    pub bind_address: Option<String>,
}

/// `StrictHostKeyChecking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strict {
    /// `yes`/`ask`: unknown hosts are refused.
    Yes,
    /// `accept-new`: unknown hosts are learnt.
    AcceptNew,
    /// `no`/`off`: unknown hosts are learnt (a changed key is still refused).
    No,
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Expand `${VAR}` and a leading `~` in an `IdentityAgent` value.
fn expand_agent(value: &str) -> Option<PathBuf> {
    if value.eq_ignore_ascii_case("none") {
        return None;
    }
    if value == "SSH_AUTH_SOCK" {
        return std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from);
    }
    if let Some(var) = value.strip_prefix('$') {
        let var = var.trim_start_matches('{').trim_end_matches('}');
        return std::env::var_os(var).map(PathBuf::from);
    }
    Some(expand_home(value))
}

/// Read `g` (one host's `ssh -G`) for the native client; `Err` names what needs OpenSSH.
/// `defaults` is `ssh -F /dev/null -G` of the same local ssh, to tell the user's settings
/// from OpenSSH's defaults.
pub fn resolve(g: &GOutput, defaults: &GOutput) -> Result<Resolved, String> {
    if let Some(cmd) = g.get("proxycommand").filter(|c| *c != "none") {
        return Err(format!("ProxyCommand `{cmd}`"));
    }
    if let Some(cm) = g
        .get("controlmaster")
        .filter(|v| !matches!(*v, "false" | "no"))
    {
        return Err(format!("ControlMaster {cm}"));
    }
    for key in MUST_BE_ABSENT {
        if let Some(v) = g.get(key).filter(|v| !v.is_empty() && *v != "none") {
            return Err(format!("{key} {v}"));
        }
    }
    for key in MUST_NOT_BE_YES {
        if g.is_yes(key) {
            return Err(format!("{key} yes"));
        }
    }
    for key in MUST_BE_DEFAULT {
        if g.get(key) != defaults.get(key) {
            return Err(format!("{key} {}", g.get(key).unwrap_or("(unset)")));
        }
    }
    let kex = offered_kex(g.get("kexalgorithms"), defaults.get("kexalgorithms"))?;
    let hostname = g.get("hostname").unwrap_or_default().to_string();
    if hostname.is_empty() {
        return Err("no HostName".into());
    }
    let port = g
        .get("port")
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(22);
    let strict = match g.get("stricthostkeychecking") {
        Some("accept-new") => Strict::AcceptNew,
        Some("false" | "no" | "off") => Strict::No,
        _ => Strict::Yes,
    };
    let mut known_hosts: Vec<PathBuf> = Vec::new();
    for key in ["userknownhostsfile", "globalknownhostsfile"] {
        for value in g.all(key) {
            known_hosts.extend(
                value
                    .split_whitespace()
                    .filter(|f| *f != "none")
                    .map(expand_home),
            );
        }
    }
    let jumps = match g.get("proxyjump") {
        None | Some("none") => Vec::new(),
        Some(list) => list.split(',').map(|h| h.trim().to_string()).collect(),
    };
    let seconds = |key: &str| g.get(key).and_then(|v| v.parse::<u64>().ok());
    Ok(Resolved {
        host_key_name: g
            .get("hostkeyalias")
            .filter(|a| *a != "none")
            .unwrap_or(&hostname)
            .to_string(),
        hostname,
        port,
        user: g.get("user").unwrap_or("root").to_string(),
        identity_files: g
            .all("identityfile")
            .iter()
            .map(|f| expand_home(f))
            .collect(),
        identities_only: g.is_yes("identitiesonly"),
        pubkey: !matches!(g.get("pubkeyauthentication"), Some("no" | "false")),
        agent: match g.get("identityagent") {
            Some(v) => expand_agent(v),
            None => std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from),
        },
        jumps,
        kex,
        known_hosts,
        strict,
        connect_timeout: seconds("connecttimeout")
            .filter(|s| *s > 0)
            .map(Duration::from_secs),
        alive_interval: Duration::from_secs(seconds("serveraliveinterval").unwrap_or(0)),
        alive_count: seconds("serveralivecountmax")
            .and_then(|c| usize::try_from(c).ok())
            .unwrap_or(3),
        bind_address: g
            .get("bindaddress")
            .filter(|a| !a.is_empty() && *a != "none")
            .map(str::to_string),
    })
}

/// The key exchanges to offer: [`NATIVE_KEX`] when the user left `KexAlgorithms` at
/// OpenSSH's default; otherwise those of ours the user's list has, in the user's order.
/// None of ours in the user's list: `Err` (the host needs OpenSSH).
pub fn offered_kex(user: Option<&str>, default: Option<&str>) -> Result<Vec<&'static str>, String> {
    let Some(list) = user.filter(|u| Some(*u) != default) else {
        return Ok(NATIVE_KEX.to_vec());
    };
    let ours: Vec<&'static str> = list
        .split(',')
        .filter_map(|name| {
            let name = name.trim();
            // `curve25519-sha256@libssh.org` is the same algorithm under its old name.
            let name = if name == "curve25519-sha256@libssh.org" {
                "curve25519-sha256"
            } else {
                name
            };
            NATIVE_KEX.iter().copied().find(|k| *k == name)
        })
        .fold(Vec::new(), |mut acc, k| {
            if !acc.contains(&k) {
                acc.push(k);
            }
            acc
        });
    if ours.is_empty() {
        Err(format!(
            "KexAlgorithms {list} (the native client has {})",
            NATIVE_KEX.join(", ")
        ))
    } else {
        Ok(ours)
    }
}

/// A `ProxyJump` hop, `[user@]host[:port]`, split (an IPv6 address in brackets).
pub fn split_jump(hop: &str) -> (Option<&str>, &str, Option<u16>) {
    let hop = hop.strip_prefix("ssh://").unwrap_or(hop);
    let (user, rest) = match hop.rsplit_once('@') {
        Some((u, r)) => (Some(u), r),
        None => (None, hop),
    };
    if let Some(inner) = rest.strip_prefix('[') {
        if let Some((host, tail)) = inner.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (user, host, port);
        }
    }
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (user, host, port.parse().ok()),
        _ => (user, rest, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: &str = "ciphers c1,c2\nmacs m1\nhostkeyalgorithms h1\npubkeyacceptedalgorithms p1\naddressfamily any\nconnectionattempts 1\nrequesttty auto\ncanonicalizehostname false\nrekeylimit 0 0\ntunnel false\nkexalgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,ecdh-sha2-nistp256\n";

    fn host(extra: &str) -> Result<Resolved, String> {
        let text = format!(
            "{DEFAULTS}hostname 10.0.0.1\nport 2222\nuser deploy\nidentityfile ~/.ssh/id_ed25519\nidentitiesonly yes\nuserknownhostsfile /k/a /k/b\nglobalknownhostsfile /etc/ssh/ssh_known_hosts\nstricthostkeychecking true\nhostkeyalias web1\nconnecttimeout 7\nserveraliveinterval 30\nserveralivecountmax 3\ncontrolmaster false\n{extra}"
        );
        resolve(&GOutput::parse(&text), &GOutput::parse(DEFAULTS))
    }

    #[test]
    fn settings_are_read_from_ssh_g() {
        let r = host("identityagent none\nproxyjump bastion,ops@gw:2200\n").expect("native");
        assert_eq!(r.hostname, "10.0.0.1");
        assert_eq!(r.port, 2222);
        assert_eq!(r.user, "deploy");
        assert!(r.identities_only);
        assert_eq!(r.agent, None);
        assert_eq!(r.jumps, ["bastion", "ops@gw:2200"]);
        assert_eq!(r.host_key_name, "web1");
        assert_eq!(r.strict, Strict::Yes);
        assert_eq!(r.connect_timeout, Some(Duration::from_secs(7)));
        assert_eq!(
            r.known_hosts,
            [
                PathBuf::from("/k/a"),
                PathBuf::from("/k/b"),
                PathBuf::from("/etc/ssh/ssh_known_hosts")
            ]
        );
        assert_eq!(r.kex, NATIVE_KEX);
    }

    #[test]
    fn what_the_native_client_lacks_goes_to_openssh_named() {
        for (extra, named) in [
            ("proxycommand nc %h %p\n", "ProxyCommand"),
            ("controlmaster auto\n", "ControlMaster auto"),
            ("certificatefile /k/id-cert.pub\n", "certificatefile"),
            ("gssapiauthentication yes\n", "gssapiauthentication"),
            ("forwardagent yes\n", "forwardagent"),
            ("ciphers aes256-ctr\n", "ciphers aes256-ctr"),
        ] {
            // `ssh -G` prints a key once; `get` reads the first line, the user's value here.
            let text = format!("{extra}{DEFAULTS}hostname h\ncontrolmaster false\n");
            let err = resolve(&GOutput::parse(&text), &GOutput::parse(DEFAULTS)).expect_err(extra);
            assert!(err.contains(named), "{extra}: {err}");
        }
    }

    #[test]
    fn kex_offers_ml_kem_first_unless_the_user_chose() {
        let default = Some("sntrup761x25519-sha512@openssh.com,curve25519-sha256");
        assert_eq!(offered_kex(default, default), Ok(NATIVE_KEX.to_vec()));
        assert_eq!(offered_kex(None, default), Ok(NATIVE_KEX.to_vec()));
        assert_eq!(
            offered_kex(
                Some("curve25519-sha256@libssh.org,mlkem768x25519-sha256"),
                default
            ),
            Ok(vec!["curve25519-sha256", "mlkem768x25519-sha256"])
        );
        let err = offered_kex(Some("sntrup761x25519-sha512@openssh.com"), default)
            .expect_err("needs openssh");
        assert!(err.contains("KexAlgorithms sntrup761"), "{err}");
        assert!(is_post_quantum("mlkem768x25519-sha256"));
        assert!(!is_post_quantum("curve25519-sha256"));
    }

    #[test]
    fn jump_hops_split_user_host_port() {
        assert_eq!(split_jump("bastion"), (None, "bastion", None));
        assert_eq!(split_jump("ops@gw:2200"), (Some("ops"), "gw", Some(2200)));
        assert_eq!(split_jump("[::1]:22"), (None, "::1", Some(22)));
        assert_eq!(
            split_jump("ssh://a@127.0.0.11"),
            (Some("a"), "127.0.0.11", None)
        );
    }
}

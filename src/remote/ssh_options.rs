//! The options of [`super::SshRemote`] (from the `ssh:`/`sshkit:` configuration and the
//! environment) and the ssh config file each run generates from them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use openssh::KnownHosts;

use crate::config::model::{Config, SshConfigFiles, SshTransport};

/// Default seconds to wait for a connection (overridable with `DRAY_SSH_CONNECT_TIMEOUT`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The environment variable that overrides the connect timeout, in seconds.
pub const CONNECT_TIMEOUT_ENV: &str = "DRAY_SSH_CONNECT_TIMEOUT";

/// Default concurrent commands per host: below sshd's default `MaxSessions` of 10.
pub const DEFAULT_SESSIONS_PER_HOST: usize = 8;

/// How dray connects to hosts: the `ssh:` and `sshkit:` sections plus dray's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    /// `ssh.user` (default `root`).
    pub user: String,
    /// `ssh.port` (default 22).
    pub port: u16,
    /// `ssh.proxy`: a jump host, `host` or `user@host` (the user defaults to `root`).
    pub proxy: Option<String>,
    /// `ssh.proxy_command`, written as `ProxyCommand` (wins over `proxy`).
    pub proxy_command: Option<String>,
    /// `ssh.keys`: identity files, absolute or relative to the working directory (`~` allowed).
    pub keys: Vec<String>,
    /// `ssh.key_data`: the private keys themselves (secret values), written by the remote into
    /// its private run directory (mode 0600) and used as identity files.
    pub key_data: Vec<crate::command::Secret>,
    /// `ssh.keys_only`: `IdentitiesOnly`.
    pub keys_only: Option<bool>,
    /// `ssh.forward_agent`: `ForwardAgent`.
    pub forward_agent: Option<bool>,
    /// `ssh.log_level` (Kamal's Net::SSH level), mapped to OpenSSH's `LogLevel`.
    pub log_level: String,
    /// `ssh.config`: which OpenSSH config files to include.
    pub config_files: SshConfigFiles,
    /// Where relative paths in `keys` and `config` start.
    pub cwd: PathBuf,
    /// How long a connection may take (`ConnectTimeout`, and a bound on the whole start).
    pub connect_timeout: Duration,
    /// `ServerAliveInterval` (Kamal: keepalive every 30 s).
    pub keepalive_interval: Duration,
    /// `sshkit.max_concurrent_starts`: masters starting at once.
    pub max_concurrent_starts: usize,
    /// `sshkit.pool_idle_timeout`: a master exits after this long without sessions.
    pub idle_timeout: Duration,
    /// Commands running at once on one host.
    pub sessions_per_host: usize,
    /// `sshkit.dns_retries`: connection attempts again after a name did not resolve.
    pub dns_retries: u32,
    /// `x-dray: ssh: transport`: OpenSSH (default) or the in-process client.
    pub transport: SshTransport,
}

impl SshOptions {
    /// The options of a loaded configuration, relative paths starting at `cwd`; the connect
    /// timeout comes from `DRAY_SSH_CONNECT_TIMEOUT` (seconds) when set.
    pub fn from_config(config: &Config, cwd: &Path) -> SshOptions {
        let ssh = &config.ssh;
        let connect_timeout = std::env::var(CONNECT_TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        SshOptions {
            user: ssh.user.clone(),
            port: ssh.port,
            proxy: ssh.proxy.clone(),
            proxy_command: ssh.proxy_command.clone(),
            keys: ssh.keys.clone(),
            key_data: Vec::new(),
            keys_only: ssh.keys_only,
            forward_agent: ssh.forward_agent,
            log_level: ssh.log_level.clone(),
            config_files: ssh.config.clone(),
            cwd: cwd.to_path_buf(),
            connect_timeout,
            keepalive_interval: Duration::from_secs(30),
            max_concurrent_starts: usize::try_from(config.sshkit.max_concurrent_starts)
                .unwrap_or(usize::MAX)
                .max(1),
            idle_timeout: Duration::from_secs(config.sshkit.pool_idle_timeout.max(60)),
            sessions_per_host: DEFAULT_SESSIONS_PER_HOST,
            dns_retries: u32::try_from(config.sshkit.dns_retries).unwrap_or(u32::MAX),
            transport: ssh.transport,
        }
    }

    /// The jump host with its user (`root` unless given), as `ssh -J` wants it.
    pub(super) fn jump_host(&self) -> Option<String> {
        if self.proxy_command.is_some() {
            return None;
        }
        self.proxy.as_ref().map(|p| {
            if p.contains('@') {
                p.clone()
            } else {
                format!("root@{p}")
            }
        })
    }

    fn absolute(&self, path: &str) -> String {
        if path.starts_with('/') || path.starts_with('~') {
            path.to_string()
        } else {
            self.cwd.join(path).display().to_string()
        }
    }
}

/// What the `ssh` command line sets before any file is read (`-l`, `-p`, `-o`, `-J`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandLine {
    /// `-l`.
    pub user: Option<String>,
    /// `-p`.
    pub port: Option<u16>,
    /// `-o ConnectTimeout=`.
    pub connect_timeout: Option<u64>,
    /// `-o ServerAliveInterval=`.
    pub alive_interval: Option<u64>,
    /// `-J`.
    pub jump: Option<String>,
}

impl CommandLine {
    /// The `ssh` arguments: `-F config`, then `-l`, `-p`, `-o`, `-J` as set.
    pub fn args(&self, config: &Path) -> Vec<String> {
        let mut args = vec!["-F".to_string(), config.display().to_string()];
        if let Some(user) = &self.user {
            args.extend(["-l".into(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".into(), port.to_string()]);
        }
        if let Some(t) = self.connect_timeout {
            args.extend(["-o".into(), format!("ConnectTimeout={t}")]);
        }
        if let Some(t) = self.alive_interval {
            args.extend(["-o".into(), format!("ServerAliveInterval={t}")]);
        }
        if let Some(jump) = &self.jump {
            args.extend(["-J".into(), jump.clone()]);
        }
        args
    }
}

/// OpenSSH's `LogLevel` for Kamal's `ssh.log_level`. Never quieter than `ERROR`: the master's
/// log is where a failed connection's reason is read from.
pub(super) fn openssh_log_level(kamal: &str) -> &'static str {
    match kamal.to_ascii_lowercase().as_str() {
        "debug" => "DEBUG",
        "info" => "INFO",
        _ => "ERROR",
    }
}

/// The ssh config a run writes: `ssh:` settings, `Include`s of the user's files, dray's defaults.
///
/// Fails when a value would break out of its line (a newline in a path or command).
pub fn generated_config(opts: &SshOptions) -> Result<String, String> {
    let mut text = String::from("# written by dray for one run; see src/remote/ssh.rs\nHost *\n");
    let mut line = |key: &str, value: &str| -> Result<(), String> {
        if value.contains(['\n', '\r']) {
            return Err(format!("ssh: {key} must be one line"));
        }
        let _ = writeln!(text, "  {key} {value}");
        Ok(())
    };
    if let Some(cmd) = &opts.proxy_command {
        line("ProxyCommand", cmd)?;
    }
    for key in &opts.keys {
        line("IdentityFile", &config_quote(&opts.absolute(key)))?;
    }
    if let Some(only) = opts.keys_only {
        line("IdentitiesOnly", yes_no(only))?;
    }
    if let Some(forward) = opts.forward_agent {
        line("ForwardAgent", yes_no(forward))?;
    }
    line("LogLevel", openssh_log_level(&opts.log_level))?;
    let includes: Vec<String> = match &opts.config_files {
        SshConfigFiles::Default => vec!["~/.ssh/config".into(), "/etc/ssh/ssh_config".into()],
        SshConfigFiles::None => Vec::new(),
        SshConfigFiles::Files(files) => files.iter().map(|f| opts.absolute(f)).collect(),
    };
    for file in includes {
        line("Include", &config_quote(&file))?;
    }
    text.push_str("Host *\n  StrictHostKeyChecking yes\n");
    Ok(text)
}

pub(super) fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// A path for an ssh config line: double-quoted when it has spaces.
pub(super) fn config_quote(path: &str) -> String {
    if path.contains([' ', '\t']) {
        format!("\"{path}\"")
    } else {
        path.to_string()
    }
}

/// The host-key policy in `ssh -G` output (`stricthostkeychecking …`).
pub(super) fn known_hosts_policy(resolved: &str) -> KnownHosts {
    let value = resolved
        .lines()
        .find_map(|l| l.strip_prefix("stricthostkeychecking "))
        .map(|v| v.trim().to_ascii_lowercase());
    match value.as_deref() {
        Some("accept-new") => KnownHosts::Add,
        Some("no" | "false" | "off") => KnownHosts::Accept,
        _ => KnownHosts::Strict,
    }
}

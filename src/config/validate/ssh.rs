//! `ssh`: user, port, proxy, keys and which OpenSSH config files to read.

use super::context::{s, strings, Ctx};
use crate::config::error::ConfigError;
use crate::config::model::{Ssh, SshConfigFiles};
use crate::config::raw::{OneOrMany, RawSsh};

pub(super) fn validate_ssh(cx: &Ctx, raw: Option<&RawSsh>) -> Result<Ssh, ConfigError> {
    let default = RawSsh::default();
    let raw = raw.unwrap_or(&default);
    let port = match &raw.port {
        Some(p) => {
            p.0.trim()
                .parse::<u16>()
                .ok()
                .filter(|port| *port >= 1)
                .ok_or_else(|| {
                    cx.err(
                        "ssh.port",
                        format!("expected a port number from 1 to 65535, found `{}`", p.0),
                    )
                    .hint("a port number from 1 to 65535")
                })?
        }
        None => 22,
    };
    let config = match &raw.config {
        None => SshConfigFiles::Default,
        Some(OneOrMany(items)) => match items.as_slice() {
            [one] if one.0 == "true" => SshConfigFiles::Default,
            [one] if one.0 == "false" => SshConfigFiles::None,
            items => SshConfigFiles::Files(items.iter().map(|s| s.0.clone()).collect()),
        },
    };
    Ok(Ssh {
        user: s(&raw.user).unwrap_or_else(|| "root".into()),
        port,
        proxy: s(&raw.proxy),
        proxy_command: s(&raw.proxy_command),
        log_level: s(&raw.log_level).unwrap_or_else(|| "fatal".into()),
        keys_only: raw.keys_only,
        keys: strings(&raw.keys),
        key_data: strings(&raw.key_data),
        config,
        forward_agent: raw.forward_agent,
        transport: Default::default(),
    })
}

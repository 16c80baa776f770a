//! `dray status`: one script per host that prints, in marked sections, everything the status
//! needs from that host — each targeted role's containers, the proxy's routes, the latest
//! recorded release, the accessories' containers and, on the lock's host, the deploy lock.
//!
//! Sections start with a line `@<kind>[ <name>]`: `@now` (epoch seconds), `@role R`, `@proxy`,
//! `@record`, `@accessory A`, `@lock` (the lock directory's epoch mtime, then its details).

use crate::command::CommandSpec;
use crate::config::model::{Accessory, Role};
use crate::config::Config;
use crate::shell::quote;

use super::script::sh;
use super::App;

/// What to read on one host.
#[derive(Debug, Clone, Copy)]
pub struct HostQuery<'a> {
    /// The host.
    pub host: &'a str,
    /// Its targeted roles.
    pub roles: &'a [&'a Role],
    /// Whether it runs the proxy (its routes are listed).
    pub proxy: bool,
    /// Its accessories.
    pub accessories: &'a [&'a Accessory],
    /// Whether the deploy lock lives here.
    pub lock: bool,
}

/// The status script of one host.
pub fn script(config: &Config, q: &HostQuery) -> CommandSpec {
    let mut lines = vec!["echo @now".to_string(), "date +%s".to_string()];
    for role in q.roles {
        lines.push(format!("echo {}", quote(&format!("@role {}", role.name))));
        lines.push(App::new(config, role, q.host).listing_script());
    }
    if q.proxy {
        lines.push("echo @proxy".into());
        lines.push("docker exec kamal-proxy kamal-proxy list 2>/dev/null || true".into());
    }
    lines.push("echo @record".into());
    lines.push(format!(
        "tail -n 1 {} 2>/dev/null || true",
        quote(&super::releases::file(config))
    ));
    for acc in q.accessories {
        lines.push(format!(
            "echo {}",
            quote(&format!("@accessory {}", acc.name))
        ));
        lines.push(format!(
            "docker ps --all --filter {} --format {}",
            quote(&format!("name=^{}$", acc.service)),
            quote("{{.Names}}\t{{.State}}")
        ));
    }
    if q.lock {
        let dir = quote(&super::lock::lock_dir(config));
        let details = quote(&super::lock::details_file(config));
        lines.push("echo @lock".into());
        lines.push(format!(
            "if [ -d {dir} ]; then stat -c %Y {dir}; base64 -d {details} 2>/dev/null || true; fi"
        ));
    }
    sh(format!("read the status of {}", q.host), lines.join("\n"))
}

/// One host's answer, split into its sections: `(kind, name, lines)`.
pub fn sections(text: &str) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(head) = line.strip_prefix('@') {
            let (kind, name) = head.split_once(' ').unwrap_or((head, ""));
            out.push((kind.to_string(), name.to_string(), Vec::new()));
        } else if let Some(last) = out.last_mut() {
            if !line.trim().is_empty() {
                last.2.push(line.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_split_into_sections() {
        let text = "@now\n1700000000\n@role web\napp-web-v1\trunning\n\n@proxy\n@record\n";
        let s = sections(text);
        assert_eq!(s.len(), 4);
        assert_eq!(s[1].0, "role");
        assert_eq!(s[1].1, "web");
        assert_eq!(s[1].2, ["app-web-v1\trunning"]);
        assert!(s[2].2.is_empty());
    }
}

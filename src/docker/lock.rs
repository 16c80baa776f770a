//! The deploy lock (`lib/kamal/commands/lock.rb`, §6.1): a directory `.kamal/lock-S[-D]` on the
//! primary host, created atomically by `mkdir`, holding base64 `details`, readable by Kamal and
//! by us alike.

use base64::Engine as _;

use crate::command::CommandSpec;
use crate::config::model::Config;
use crate::shell::quote;

use super::script::sh;

/// The message of locks taken by deploys, which `--lock-wait` is willing to wait for.
pub const AUTOMATIC_MESSAGE: &str = "Automatic deploy lock";

/// What the lock records about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockDetails {
    /// `git config user.name`, else `Unknown`.
    pub locked_by: String,
    /// UTC ISO 8601, e.g. `2024-01-01T00:00:00Z`.
    pub locked_at: String,
    /// The version being deployed.
    pub version: String,
    /// `Automatic deploy lock` or the `lock acquire -m` message.
    pub message: String,
    /// Our extension: the machine holding the lock.
    pub machine: Option<String>,
    /// Our extension: the holding process, e.g. `dray 4242`.
    pub process: Option<String>,
    /// Our extension: the command holding it, e.g. `dray deploy`.
    pub command: Option<String>,
    /// Our extension: when the holder last said it is alive (UTC ISO 8601); only locks whose
    /// holder refreshes it while it works (deploys, not `lock acquire`) have one.
    pub heartbeat: Option<String>,
}

impl LockDetails {
    /// `Locked by: <name> at <time>\nVersion: <V>\nMessage: <msg>` as Kamal writes it, then our
    /// `Machine:` and `Process:` lines. Kamal only prints the text (and `--lock-wait` looks for
    /// `Automatic deploy lock` in it), so the extra lines after `Message:` show up in its
    /// `lock status` and change nothing else.
    pub fn text(&self) -> String {
        let mut text = format!(
            "Locked by: {} at {}\nVersion: {}\nMessage: {}",
            self.locked_by, self.locked_at, self.version, self.message
        );
        if let Some(m) = &self.machine {
            text.push_str(&format!("\nMachine: {m}"));
        }
        if let Some(p) = &self.process {
            text.push_str(&format!("\nProcess: {p}"));
        }
        if let Some(c) = &self.command {
            text.push_str(&format!("\nCommand: {c}"));
        }
        if let Some(h) = &self.heartbeat {
            text.push_str(&format!("\n{HEARTBEAT}{h}"));
        }
        text.trim().to_string()
    }
}

/// Ruby's `Base64.encode64`: standard alphabet with padding, a newline after every 60
/// characters and at the end (nothing at all for empty input). `base64 -d` and Ruby's decoder
/// both skip the newlines, so either side reads the other's file.
pub fn encode64(bytes: &[u8]) -> String {
    let flat = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(flat.len() + flat.len() / 60 + 1);
    for chunk in flat.as_bytes().chunks(60) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// The details line the holder refreshes while it works.
pub const HEARTBEAT: &str = "Heartbeat: ";

/// Refresh the `Heartbeat:` line of the lock's details on `host` with the host's time, only
/// while the lock is still held by `process` (after a takeover the old holder writes nothing);
/// the new details replace the old in one `mv`, so a reader never sees half a file.
pub fn heartbeat(config: &Config, host: &str, process: &str) -> CommandSpec {
    let details = quote(&details_file(config));
    let process_line = quote(&format!("Process: {process}"));
    let script = format!(
        r#"old=$(base64 -d {details} 2>/dev/null) || exit 0
printf '%s\n' "$old" | grep -qxF {process_line} || exit 0
{{ printf '%s\n' "$old" | grep -v '^{HEARTBEAT}'; echo "{HEARTBEAT}$(date -u +%Y-%m-%dT%H:%M:%SZ)"; }} | base64 > {details}.tmp && mv {details}.tmp {details}"#
    );
    sh(
        format!("refresh the deploy lock's heartbeat on {host}"),
        script,
    )
}

/// Take over a stale lock on `host`: remove it and take it anew with `details` (a deploy that
/// races in between wins, and this one then finds the lock held).
pub fn take_over(config: &Config, host: &str, details: &LockDetails) -> CommandSpec {
    sh(
        format!("take over the stale deploy lock on {host}"),
        format!(
            "rm -f {} && rm -rf {} && mkdir {} && echo {} > {}",
            quote(&details_file(config)),
            quote(&lock_dir(config)),
            quote(&lock_dir(config)),
            quote(&encode64(details.text().as_bytes())),
            quote(&details_file(config))
        ),
    )
}

/// `.kamal/lock-<service>[-<dest>]`.
pub fn lock_dir(config: &Config) -> String {
    format!(".kamal/lock-{}", config.service_and_destination())
}

/// `.kamal/lock-S[-D]/details`.
pub fn details_file(config: &Config) -> String {
    format!("{}/details", lock_dir(config))
}

/// `mkdir -p .kamal` on `host` (every targeted host, before acquiring).
pub fn ensure_locks_directory(host: &str) -> CommandSpec {
    CommandSpec::new(format!("create .kamal on {host}"), "mkdir")
        .arg("-p")
        .arg(".kamal")
}

/// `mkdir .kamal/lock-S[-D] && echo "<base64>" > .kamal/lock-S[-D]/details`: fails with
/// `cannot create directory` on stderr when the lock is held.
pub fn acquire(config: &Config, host: &str, details: &LockDetails) -> CommandSpec {
    sh(
        format!("acquire deploy lock on {host}"),
        format!(
            "mkdir {} && echo {} > {}",
            quote(&lock_dir(config)),
            quote(&encode64(details.text().as_bytes())),
            quote(&details_file(config))
        ),
    )
}

/// [`ensure_locks_directory`] and [`acquire`] in one round trip: `mkdir` of `.kamal` only when
/// it is missing (its failure said in words the engine never takes for a held lock), then
/// Kamal's atomic `mkdir` of the lock directory and the details.
pub fn acquire_with_directory(config: &Config, host: &str, details: &LockDetails) -> CommandSpec {
    let acquire = acquire(config, host, details);
    sh(
        acquire.purpose.clone(),
        format!(
            "[ -d .kamal ] || mkdir -p .kamal 2>/dev/null || {{ echo {} >&2; exit 1; }}\n{}",
            quote(&format!(
                "no .kamal directory on {host} (mkdir -p .kamal failed)"
            )),
            super::script::inner(&acquire).unwrap_or_default()
        ),
    )
}

/// `rm .kamal/lock-S[-D]/details && rm -r .kamal/lock-S[-D]`.
pub fn release(config: &Config, host: &str) -> CommandSpec {
    sh(
        format!("release deploy lock on {host}"),
        format!(
            "rm {} && rm -r {}",
            quote(&details_file(config)),
            quote(&lock_dir(config))
        ),
    )
}

/// `stat .kamal/lock-S[-D] > /dev/null && cat .kamal/lock-S[-D]/details | base64 -d`.
pub fn status(config: &Config, host: &str) -> CommandSpec {
    sh(
        format!("read deploy lock on {host}"),
        format!(
            "stat {} > /dev/null && cat {} | base64 -d",
            quote(&lock_dir(config)),
            quote(&details_file(config))
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::test_support::{base, config_with, BASE};

    fn details(name: &str, message: &str) -> LockDetails {
        LockDetails {
            locked_by: name.into(),
            locked_at: "2024-01-01T00:00:00Z".into(),
            version: "123".into(),
            message: message.into(),
            machine: Some("laptop".into()),
            process: Some("dray 4242".into()),
            command: None,
            heartbeat: None,
        }
    }

    #[test]
    fn encode64_wraps_like_ruby() {
        assert_eq!(encode64(b""), "");
        assert_eq!(encode64(b"hi"), "aGk=\n");
        // Ruby: Base64.encode64("a" * 50) => "YWFh…YWFh\nYWFhYWE=\n" (60 chars, then the rest).
        let encoded = encode64(&[b'a'; 50]);
        let lines: Vec<&str> = encoded.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), 60);
        assert_eq!(lines[1], "YWFhYWE=");
        assert!(encoded.ends_with('\n'));
    }

    #[test]
    fn details_text_and_roundtrip() {
        let d = details("Сергей Федоров", AUTOMATIC_MESSAGE);
        insta::assert_snapshot!(d.text(), @r"
        Locked by: Сергей Федоров at 2024-01-01T00:00:00Z
        Version: 123
        Message: Automatic deploy lock
        Machine: laptop
        Process: dray 4242
        ");
        let encoded = encode64(d.text().as_bytes());
        assert!(encoded.is_ascii());
        let joined: String = encoded.lines().collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(joined)
            .expect("decodes");
        assert_eq!(String::from_utf8(decoded).expect("utf-8"), d.text());
    }

    #[test]
    fn lock_commands_match_kamal() {
        let prod = config_with(BASE, Some("production"));
        // Kamal CT: "stat .kamal/lock-app-production > /dev/null && cat .kamal/lock-app-production/details | base64 -d"
        insta::assert_snapshot!(status(&prod, "1.1.1.1").to_shell(), @"sh -c 'stat .kamal/lock-app-production > /dev/null && cat .kamal/lock-app-production/details | base64 -d'");
        insta::assert_snapshot!(release(&prod, "1.1.1.1").to_shell(), @"sh -c 'rm .kamal/lock-app-production/details && rm -r .kamal/lock-app-production'");
        insta::assert_snapshot!(acquire(&base(), "1.1.1.1", &details("dev", "Hello")).to_shell());
        insta::assert_snapshot!(ensure_locks_directory("1.1.1.1").to_shell(), @"mkdir -p .kamal");
    }
}

//! Audit log lines (`lib/kamal/commands/auditor.rb`, §6.2): appended to
//! `.kamal/<service>[-<dest>]-audit.log` on each host a command changes.

use crate::command::CommandSpec;
use crate::config::model::Config;
use crate::shell::quote;

use super::script::sh;

/// One audit line: `[<recorded_at>] [<performer>] [<destination>] [<role>] <message>`, with
/// absent tags left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLine {
    /// UTC ISO 8601 time, e.g. `2024-01-01T00:00:00Z`.
    pub recorded_at: String,
    /// `git config user.email`, else `whoami`.
    pub performer: String,
    /// The destination.
    pub destination: Option<String>,
    /// The role, for role-specific events.
    pub role: Option<String>,
    /// The message, e.g. `Booted app version abc`.
    pub message: String,
}

impl AuditLine {
    /// The line as Kamal writes it.
    pub fn text(&self) -> String {
        let mut line = format!("[{}] [{}]", self.recorded_at, self.performer);
        for tag in [&self.destination, &self.role].into_iter().flatten() {
            line.push_str(&format!(" [{tag}]"));
        }
        line.push(' ');
        line.push_str(&self.message);
        line
    }
}

/// `.kamal/<service>[-<dest>]-audit.log`.
pub fn log_file(config: &Config) -> String {
    format!(".kamal/{}-audit.log", config.service_and_destination())
}

/// `mkdir -p .kamal && echo <line> >> .kamal/S[-D]-audit.log` on `host`.
///
/// Kamal passes the line through `String#dump` in double quotes, so a `${VAR}` in a message would
/// expand; here the line arrives byte for byte.
pub fn record(config: &Config, host: &str, line: &AuditLine) -> CommandSpec {
    sh(
        format!("record audit line on {host}"),
        format!(
            "mkdir -p .kamal && echo {} >> {}",
            quote(&line.text()),
            quote(&log_file(config))
        ),
    )
}

/// [`record`] as script text for a batched script: the same line appended to the same file,
/// with `mkdir` started only when `.kamal` is missing.
pub fn record_script(config: &Config, line: &AuditLine) -> String {
    format!(
        "{{ [ -d .kamal ] || mkdir -p .kamal; }} && echo {} >> {}",
        quote(&line.text()),
        quote(&log_file(config))
    )
}

/// `tail -n 50 .kamal/S[-D]-audit.log` (`dray audit`).
pub fn reveal(config: &Config, host: &str) -> CommandSpec {
    CommandSpec::new(format!("read audit log on {host}"), "tail")
        .args(["-n", "50"])
        .arg(log_file(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::test_support::{base, staging};

    fn line(destination: Option<&str>, role: Option<&str>, message: &str) -> AuditLine {
        AuditLine {
            recorded_at: "2024-01-01T00:00:00Z".into(),
            performer: "dev@example.com".into(),
            destination: destination.map(Into::into),
            role: role.map(Into::into),
            message: message.into(),
        }
    }

    #[test]
    fn record_without_destination() {
        let cmd = record(
            &base(),
            "1.1.1.1",
            &line(None, None, "app removed container"),
        );
        assert_eq!(cmd.purpose, "record audit line on 1.1.1.1");
        insta::assert_snapshot!(cmd.to_shell(), @r#"sh -c 'mkdir -p .kamal && echo '\''[2024-01-01T00:00:00Z] [dev@example.com] app removed container'\'' >> .kamal/app-audit.log'"#);
    }

    #[test]
    fn record_with_destination_and_role() {
        let l = line(Some("staging"), Some("web"), "Booted app version it's $(x)");
        assert_eq!(
            l.text(),
            "[2024-01-01T00:00:00Z] [dev@example.com] [staging] [web] Booted app version it's $(x)"
        );
        insta::assert_snapshot!(record(&staging(), "1.1.1.1", &l).to_shell());
        insta::assert_snapshot!(reveal(&staging(), "1.1.1.1").to_shell(), @"tail -n 50 .kamal/app-staging-audit.log");
    }
}

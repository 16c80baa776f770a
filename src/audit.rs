//! The audit log on hosts (§6.2): lines in Kamal's format appended to
//! `.kamal/<service>[-<dest>]-audit.log` on each host a command changes, and `dray audit`, the
//! last 50 lines of each host's log. The commands come from [`crate::docker::audit`]; plans
//! hold them (`plan::cmds::audit`); this module stamps lines and prefixes output.

use crate::docker::audit::AuditLine;
use crate::release::Release;

/// An audit line for `message`, stamped with the run's release (time, performer, destination).
pub fn line(release: &Release, role: Option<&str>, message: impl Into<String>) -> AuditLine {
    AuditLine {
        recorded_at: release.recorded_at.clone(),
        performer: release.performer.clone(),
        destination: release.destination.clone(),
        role: role.map(str::to_string),
        message: message.into(),
    }
}

/// Text with each line prefixed by `[host] `, hosts in the given order.
pub fn prefixed(host: &str, text: &str) -> String {
    text.lines().map(|l| format!("[{host}] {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_prefixed_by_host() {
        assert_eq!(prefixed("h1", "a\nb\n"), "[h1] a\n[h1] b\n");
        assert_eq!(prefixed("h1", ""), "");
    }

    #[test]
    fn line_takes_the_release_identity() {
        let r = Release::new(
            "app",
            "reg/app",
            Some("staging"),
            "v1",
            "dev@x",
            "2024-01-01T00:00:00Z",
        );
        let l = line(&r, None, "Executed cmd 'ls' on h1");
        assert_eq!(
            l.text(),
            "[2024-01-01T00:00:00Z] [dev@x] [staging] Executed cmd 'ls' on h1"
        );
    }
}

//! dray's record of successful releases, kept beside Kamal's files (Kamal never reads it):
//! `.kamal/apps/<service>[-<destination>]/dray-releases`, one line per release that reached
//! every targeted host, `<recorded_at> <version> <command>`, the last [`KEPT`] kept. `rollback`
//! without a version and `status` read it.

use crate::command::CommandSpec;
use crate::config::Config;
use crate::release::Release;
use crate::shell::quote;

use super::script::sh;

/// How many releases the file keeps.
pub const KEPT: usize = 50;

/// The file, relative to the SSH user's home.
pub fn file(config: &Config) -> String {
    format!(
        ".kamal/apps/{}/dray-releases",
        config.service_and_destination()
    )
}

/// Append `release` (made by `command`) to the record on `host`, keeping the last [`KEPT`].
pub fn record(config: &Config, release: &Release, command: &str, host: &str) -> CommandSpec {
    let path = file(config);
    let dir = quote(path.rsplit_once('/').map_or(".", |(d, _)| d));
    let file = quote(&path);
    let line = format!("{} {} {command}", release.recorded_at, release.version);
    sh(
        format!("record release {} on {host}", release.version),
        format!(
            "{{ [ -d {dir} ] || mkdir -p {dir}; }} && printf '%s\\n' {line} >> {file} && \
             {{ n=0; while IFS= read -r _; do n=$((n + 1)); done < {file}; \
             [ \"$n\" -le {KEPT} ] || {{ tail -n {KEPT} {file} > {file}.tmp && mv {file}.tmp {file}; }}; }}",
            line = quote(&line),
        ),
    )
}

/// Print the record on `host` (nothing when there is none).
pub fn read(config: &Config, host: &str) -> CommandSpec {
    sh(
        format!("read the release record on {host}"),
        format!("cat {} 2>/dev/null || true", quote(&file(config))),
    )
}

/// One recorded release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// When it was made (the release's `recorded_at`).
    pub at: String,
    /// Its version.
    pub version: String,
    /// The command that made it (`deploy`, `rollback`, …).
    pub command: String,
}

/// The lines of a record, oldest first; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Recorded> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some(Recorded {
                at: words.next()?.to_string(),
                version: words.next()?.to_string(),
                command: words.next().unwrap_or("").to_string(),
            })
        })
        .collect()
}

/// The release before the latest: the newest recorded version other than the latest one.
pub fn previous(records: &[Recorded]) -> Option<&Recorded> {
    let latest = records.last()?;
    records.iter().rev().find(|r| r.version != latest.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_release_is_the_newest_other_version() {
        let text = "2026-01-01T00:00:00Z v1 deploy\ngarbage\n2026-01-02T00:00:00Z v2 deploy\n\
                    2026-01-03T00:00:00Z v2 redeploy\n";
        let records = parse(text);
        assert_eq!(records.len(), 3);
        assert_eq!(previous(&records).map(|r| r.version.as_str()), Some("v1"));
        assert_eq!(previous(&parse("t v1 deploy\n")), None);
        assert_eq!(previous(&[]), None);
        let back = parse("t v1 deploy\nt v2 deploy\nt v1 rollback\n");
        assert_eq!(previous(&back).map(|r| r.version.as_str()), Some("v2"));
    }
}

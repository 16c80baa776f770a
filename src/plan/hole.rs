//! Typed holes: values a plan cannot know when it is built (the version a host runs, a
//! container id, a random name suffix, the time of an audit line). A hole is written into a
//! command as its token, e.g. `<old version>`, which `--dry-run` shows as it is; the engine
//! replaces each token by the value it found or made at run time, and nothing else changes.
//!
//! Every value that fills a hole is checked to be one shell-safe word (letters, digits and
//! `._:+-`), so a token can sit anywhere in a command, at any quoting depth, and the filled
//! command still parses exactly as the planned one.

use serde::Serialize;

/// A value the engine fills at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hole {
    /// The version a role ran on the host before this boot (read by the boot's first script).
    OldVersion,
    /// The version a role runs on the host now (read by an earlier command of the step).
    RunningVersion,
    /// The id of a container (read by an earlier command of the step).
    ContainerId,
    /// The version a role ran before this run switched it: what an all-or-nothing release
    /// reverts to (filled from the boot's [`Hole::OldVersion`]).
    VersionBefore,
    /// The id of a container that existed before the step changed anything (an accessory's
    /// boot skips a host where it is filled; its reboot sets it aside).
    ExistingContainer,
    /// Random lowercase hex of this many digits, made once per host and step.
    Random(usize),
    /// The time the command runs, UTC ISO 8601 (`2024-01-01T00:00:00Z`).
    Now,
    /// Seconds since the run started (`KAMAL_RUNTIME` of `post-deploy`).
    Runtime,
}

/// Every hole with a fixed token (random holes have one per length).
const FIXED: [Hole; 7] = [
    Hole::OldVersion,
    Hole::VersionBefore,
    Hole::RunningVersion,
    Hole::ContainerId,
    Hole::ExistingContainer,
    Hole::Now,
    Hole::Runtime,
];

impl Hole {
    /// The token written into commands and shown by `--dry-run`.
    pub fn token(self) -> String {
        match self {
            Hole::OldVersion => "<old version>".into(),
            Hole::RunningVersion => "<running version>".into(),
            Hole::ContainerId => "<container id>".into(),
            Hole::ExistingContainer => "<existing container>".into(),
            Hole::VersionBefore => "<version before>".into(),
            Hole::Random(n) => format!("<random hex {n}>"),
            Hole::Now => "<time>".into(),
            Hole::Runtime => "<runtime seconds>".into(),
        }
    }

    /// The holes whose tokens occur in `text`, in a stable order.
    pub fn found_in(text: &str) -> Vec<Hole> {
        let mut out: Vec<Hole> = FIXED
            .iter()
            .copied()
            .filter(|h| text.contains(&h.token()))
            .collect();
        let mut rest = text;
        while let Some(at) = rest.find("<random hex ") {
            let tail = &rest[at + "<random hex ".len()..];
            let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
            if let (Ok(n), true) = (
                digits.parse::<usize>(),
                tail[digits.len()..].starts_with('>'),
            ) {
                if !out.contains(&Hole::Random(n)) {
                    out.push(Hole::Random(n));
                }
            }
            rest = tail;
        }
        out
    }
}

/// Whether `value` may fill a hole: one word of letters, digits and `._:+-` (possibly empty).
pub fn is_safe_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'+' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_are_found_by_their_tokens() {
        let text = "docker stop app-web-<old version> <random hex 12> <random hex 6> <time>";
        assert_eq!(
            Hole::found_in(text),
            vec![
                Hole::OldVersion,
                Hole::Now,
                Hole::Random(12),
                Hole::Random(6)
            ]
        );
        assert!(Hole::found_in("<random hex x>").is_empty());
    }

    #[test]
    fn every_token_is_a_shell_placeholder() {
        for hole in
            FIXED
                .iter()
                .copied()
                .chain([Hole::Random(6), Hole::Random(12), Hole::Random(16)])
        {
            assert!(crate::shell::PLACEHOLDERS.contains(&hole.token().as_str()));
        }
    }

    #[test]
    fn only_single_safe_words_fill_holes() {
        assert!(is_safe_value("v1.2_3-rc+4"));
        assert!(is_safe_value("2024-01-01T00:00:00Z"));
        assert!(is_safe_value(""));
        assert!(!is_safe_value("a b"));
        assert!(!is_safe_value("x'y"));
        assert!(!is_safe_value("$(id)"));
    }
}

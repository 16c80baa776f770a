//! Configuration errors: every one names the file, line and column where one exists, and the
//! key path: `config/deploy.yml:14:7: servers.web.hosts[1]: expected a host name, found a map`.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Diagnostic, ExitCode};

/// Where in which file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The file, as given (relative to where dray runs when it was).
    pub file: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: u32,
    /// 1-based column, 0 when unknown.
    pub column: u32,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        Ok(())
    }
}

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where, when known.
    pub position: Option<Position>,
    /// The key path (`servers.web.hosts[1]`), empty for the whole file.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl ConfigError {
    /// An error with a message only.
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError {
            position: None,
            key: String::new(),
            message: message.into(),
            hint: None,
        }
    }

    /// Set the position.
    pub fn at(mut self, position: Option<Position>) -> Self {
        self.position = position;
        self
    }

    /// Set the key path.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// Set the hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(pos) = &self.position {
            write!(f, "{pos}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Diagnostic for ConfigError {
    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
    fn exit_code(&self) -> ExitCode {
        ExitCode::Usage
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, c)| *distance <= limit || c.starts_with(word) && word.len() >= 3)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_for_typos_only() {
        let keys = ["service", "servers", "retain_containers"];
        assert_eq!(did_you_mean("servcie", keys), Some("service"));
        assert_eq!(
            did_you_mean("retain_container", keys),
            Some("retain_containers")
        );
        assert_eq!(did_you_mean("zzz", keys), None);
    }

    #[test]
    fn display_has_position_key_and_message() {
        let err = ConfigError::new("expected a host name, found a map")
            .key("servers.web.hosts[1]")
            .at(Some(Position {
                file: "config/deploy.yml".into(),
                line: 14,
                column: 7,
            }));
        assert_eq!(
            err.to_string(),
            "config/deploy.yml:14:7: servers.web.hosts[1]: expected a host name, found a map"
        );
    }
}

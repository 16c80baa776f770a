//! Docker's tag grammar, which every version must follow whatever its source: [`validate_tag`],
//! and [`TagError`], the rule a tag breaks and a valid tag close to it.

use std::fmt;

use crate::error::{Diagnostic, ExitCode};

/// The longest Docker tag, in characters.
pub const MAX_TAG_LEN: usize = 128;

/// A version that is not a valid Docker tag, and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagError {
    /// The offending tag.
    pub tag: String,
    /// The rule it breaks.
    pub rule: TagRule,
}

/// The Docker tag rule (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`) a tag breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagRule {
    /// The tag is empty.
    Empty,
    /// The tag has more than [`MAX_TAG_LEN`] characters.
    TooLong {
        /// Its length in characters.
        len: usize,
    },
    /// The tag starts with `.` or `-`.
    Leading {
        /// The first character.
        ch: char,
    },
    /// A character outside `[A-Za-z0-9_.-]`.
    InvalidChar {
        /// The character.
        ch: char,
        /// Its position, counted in characters from 1.
        position: usize,
    },
}

impl fmt::Display for TagRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagRule::Empty => f.write_str("a Docker tag cannot be empty"),
            TagRule::TooLong { len } => write!(
                f,
                "it is {len} characters long, a Docker tag has at most {MAX_TAG_LEN}"
            ),
            TagRule::Leading { ch } => write!(
                f,
                "a Docker tag cannot start with `{ch}` (it must start with a letter, a digit or `_`)"
            ),
            TagRule::InvalidChar { ch, position } => match ch {
                '+' | '/' => write!(
                    f,
                    "`{ch}` is not allowed in a Docker tag (character {position})"
                ),
                ' ' => write!(f, "a space is not allowed in a Docker tag (character {position})"),
                _ => write!(
                    f,
                    "{} is not allowed in a Docker tag (character {position}); only letters, \
                     digits, `_`, `.` and `-` are",
                    describe_char(*ch)
                ),
            },
        }
    }
}

/// `` `@` ``, `` `é` (U+00E9) ``, `a tab`, … for error messages.
fn describe_char(ch: char) -> String {
    match ch {
        '\t' => "a tab".to_owned(),
        '\n' | '\r' => "a line break".to_owned(),
        c if c.is_ascii_graphic() => format!("`{c}`"),
        c if c.is_control() || c.is_whitespace() => format!("U+{:04X}", c as u32),
        c => format!("`{c}` (U+{:04X})", c as u32),
    }
}

impl TagError {
    /// A valid tag close to this one, for the hint: `+`, `/` and whitespace replaced by `-`.
    /// `None` when that does not give a valid tag.
    pub fn suggestion(&self) -> Option<String> {
        if !matches!(self.rule, TagRule::InvalidChar { .. }) {
            return None;
        }
        let replaced: String = self
            .tag
            .chars()
            .map(|c| match c {
                '+' | '/' => '-',
                c if c.is_whitespace() => '-',
                c => c,
            })
            .collect();
        validate_tag(&replaced).ok().map(|()| replaced)
    }

    /// The tag as shown in messages: escaped, and cut when very long.
    pub(super) fn shown(&self) -> String {
        let escaped: String = self.tag.escape_debug().to_string();
        if escaped.chars().count() > 40 {
            let head: String = escaped.chars().take(32).collect();
            format!("{head}…")
        } else {
            escaped
        }
    }
}

impl fmt::Display for TagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rule {
            TagRule::Empty => write!(f, "invalid tag: {}", self.rule),
            _ => write!(f, "invalid tag `{}`: {}", self.shown(), self.rule),
        }
    }
}

impl std::error::Error for TagError {}

impl Diagnostic for TagError {
    fn hint(&self) -> Option<String> {
        match (&self.rule, self.suggestion()) {
            (TagRule::InvalidChar { ch, .. }, Some(suggestion)) if ch.is_whitespace() => {
                Some(format!("use `{suggestion}`, or remove the whitespace"))
            }
            (TagRule::InvalidChar { ch, .. }, Some(suggestion)) => {
                Some(format!("use `{suggestion}` (`{ch}` replaced by `-`)"))
            }
            _ => Some(format!(
                "a Docker tag is 1 to {MAX_TAG_LEN} letters, digits, `_`, `.` and `-`, and does \
                 not start with `.` or `-`"
            )),
        }
    }

    fn exit_code(&self) -> ExitCode {
        ExitCode::Usage
    }
}

/// Checks `tag` against Docker's tag grammar, `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
///
/// The first invalid character is reported before the leading-character and length rules.
pub fn validate_tag(tag: &str) -> Result<(), TagError> {
    let fail = |rule| {
        Err(TagError {
            tag: tag.to_owned(),
            rule,
        })
    };
    if tag.is_empty() {
        return fail(TagRule::Empty);
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if let Some((index, ch)) = tag.chars().enumerate().find(|&(_, c)| !valid(c)) {
        return fail(TagRule::InvalidChar {
            ch,
            position: index + 1,
        });
    }
    // Only ASCII from here on: bytes are characters.
    match tag.as_bytes()[0] {
        first @ (b'.' | b'-') => fail(TagRule::Leading {
            ch: char::from(first),
        }),
        _ if tag.len() > MAX_TAG_LEN => fail(TagRule::TooLong { len: tag.len() }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_rules() {
        let long = "a".repeat(129);
        let max = "a".repeat(128);
        let ok = [
            "1.2.3",
            "_x",
            "v1.2.3-beta",
            "abc_uncommitted_0123",
            max.as_str(),
            "A",
        ];
        for tag in ok {
            assert_eq!(validate_tag(tag), Ok(()), "{tag}");
        }
        let cases: &[(&str, TagRule)] = &[
            ("", TagRule::Empty),
            (&long, TagRule::TooLong { len: 129 }),
            (".x", TagRule::Leading { ch: '.' }),
            ("-x", TagRule::Leading { ch: '-' }),
            (
                "1.2.3+build123",
                TagRule::InvalidChar {
                    ch: '+',
                    position: 6,
                },
            ),
            (
                "a/b",
                TagRule::InvalidChar {
                    ch: '/',
                    position: 2,
                },
            ),
            (
                "a b",
                TagRule::InvalidChar {
                    ch: ' ',
                    position: 2,
                },
            ),
            (
                "a@b",
                TagRule::InvalidChar {
                    ch: '@',
                    position: 2,
                },
            ),
            (
                "éa:",
                TagRule::InvalidChar {
                    ch: 'é',
                    position: 1,
                },
            ),
            (
                "ab:",
                TagRule::InvalidChar {
                    ch: ':',
                    position: 3,
                },
            ),
        ];
        for (tag, rule) in cases {
            let err = validate_tag(tag).expect_err(tag);
            assert_eq!(&err.rule, rule, "{tag}");
        }
    }

    #[test]
    fn tag_messages_name_the_rule() {
        let message = |tag: &str| validate_tag(tag).expect_err(tag).to_string();
        assert_eq!(
            message("1.2.3+build123"),
            "invalid tag `1.2.3+build123`: `+` is not allowed in a Docker tag (character 6)"
        );
        assert_eq!(message(""), "invalid tag: a Docker tag cannot be empty");
        assert!(message(&"a".repeat(129)).contains("129 characters long"));
        assert!(message(&"a".repeat(129)).contains("at most 128"));
        assert!(message("-x").contains("cannot start with `-`"));
        assert!(message("a/b").contains("`/` is not allowed"));
        assert!(message("a b").contains("a space is not allowed"));
        assert!(message("a\tb").contains("a tab is not allowed"));
        assert!(message("aé").contains("`é` (U+00E9) is not allowed"));
        assert!(message("a@b").contains("only letters, digits"));
    }

    #[test]
    fn plus_suggests_a_dash() {
        let err = validate_tag("1.2.3+build123").expect_err("invalid");
        assert_eq!(err.suggestion().as_deref(), Some("1.2.3-build123"));
        let hint = err.hint().unwrap_or_default();
        assert!(hint.contains("`1.2.3-build123`"), "{hint}");
        assert_eq!(err.exit_code(), ExitCode::Usage);
        let slash = validate_tag("feature/x").expect_err("invalid");
        assert_eq!(slash.suggestion().as_deref(), Some("feature-x"));
        // No suggestion when replacing would not give a valid tag.
        assert_eq!(validate_tag("+x").expect_err("invalid").suggestion(), None);
        assert_eq!(
            validate_tag("a+b@c").expect_err("invalid").suggestion(),
            None
        );
    }

    #[test]
    fn tag_error_converts_to_usage_error() {
        fn check() -> crate::error::Result<()> {
            validate_tag("1.2.3+build123")?;
            Ok(())
        }
        let err = check().expect_err("invalid");
        assert_eq!(err.exit, ExitCode::Usage);
        assert!(err.message.contains("`+` is not allowed in a Docker tag"));
        assert!(err.hint.unwrap_or_default().contains("1.2.3-build123"));
    }
}

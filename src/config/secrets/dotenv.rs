//! Dotenv parsing: [`parse_dotenv`] reads one secrets file in the syntax Ruby's dotenv 3 gem
//! parses, as Kamal 2 uses it; values are then substituted (`subst.rs`).
//!
//! - `KEY=value`, `KEY: value`, an optional `export ` prefix; keys are `[A-Za-z0-9_.]+`; a bare
//!   `KEY` is an empty value; `export KEY` alone only checks that `KEY` is already defined.
//! - Unquoted values end at `#` or the end of the line and are trimmed; `\x` becomes `x`.
//! - `'single quotes'` are literal: no escapes, no substitution.
//! - `"double quotes"` may span lines; `\"` and `\\` are unescaped, `\n` and `\r` stay as the two
//!   characters `\n` (dotenv 3; `DOTENV_LINEBREAK_MODE=legacy`, in the file or the environment,
//!   turns them into line breaks), and substitution applies.
//! - Blank lines and `#` comment lines are skipped.
//!
//! Where dray differs from dotenv, it is stricter: a line that is not an assignment, a comment or
//! blank is an error (dotenv skips it).

use std::borrow::Cow;

use super::error::SecretsError;
use super::subst::{lookup, DotenvContext, Expander, MAX_TOTAL_BYTES};

/// Insert or overwrite `key`, keeping its first position (as a Ruby hash does).
pub(super) fn set(values: &mut Vec<(String, String)>, key: String, value: String) {
    match values.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => values.push((key, value)),
    }
}

/// Parse one dotenv text into `values`: earlier keys (of previous files) are visible to
/// substitution, and a key defined again is overwritten in place.
pub fn parse_dotenv(
    text: &str,
    ctx: &DotenvContext<'_>,
    values: &mut Vec<(String, String)>,
) -> Result<(), SecretsError> {
    let text: Cow<'_, str> = if text.contains('\r') {
        Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(text)
    };
    let t = text.as_ref();
    let mut pos = 0;
    let mut line = 1;
    while pos < t.len() {
        let line_end = line_end(t, pos);
        let content = t[pos..line_end].trim_start();
        let next = if content.is_empty() || content.starts_with('#') {
            line_end
        } else {
            let start = line_end - content.len();
            let (entry, next) =
                parse_entry(t, start, line_end).ok_or_else(|| SecretsError::Parse {
                    file: ctx.file.to_path_buf(),
                    line,
                    message: "invalid line: expected `KEY=value`, a `# comment` or a blank line"
                        .to_string(),
                })?;
            apply(entry, ctx, values, line)?;
            next
        };
        line += t[pos..next].bytes().filter(|&b| b == b'\n').count() + 1;
        pos = next + 1;
    }
    Ok(())
}

/// One assignment as written.
struct Entry<'a> {
    key: &'a str,
    exported: bool,
    /// The raw value text (quotes included), `None` when nothing follows the separator.
    value: Option<&'a str>,
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

fn line_end(t: &str, from: usize) -> usize {
    t[from..].find('\n').map_or(t.len(), |p| from + p)
}

fn skip_blanks(t: &str, from: usize, to: usize) -> usize {
    let s = &t[from..to];
    to - s.trim_start_matches([' ', '\t']).len()
}

/// Whether the rest of a line is blank or a comment.
fn is_line_tail(s: &str) -> bool {
    let s = s.trim_start_matches([' ', '\t']);
    s.is_empty() || s.starts_with('#')
}

/// Parse the entry starting at `start` (first non-blank of its line); `None` when invalid.
/// Also returns the offset of the end of the entry's last line.
fn parse_entry(t: &str, start: usize, line_end: usize) -> Option<(Entry<'_>, usize)> {
    let mut i = start;
    let mut exported = false;
    if t[start..line_end].starts_with("export") {
        let key_at = skip_blanks(t, start + 6, line_end);
        if key_at > start + 6 && t[key_at..line_end].starts_with(is_key_char) {
            exported = true;
            i = key_at;
        }
    }
    let key_len = t[i..line_end]
        .find(|c: char| !is_key_char(c))
        .unwrap_or(line_end - i);
    if key_len == 0 {
        return None;
    }
    let key = &t[i..i + key_len];
    i += key_len;

    let after_blanks = skip_blanks(t, i, line_end);
    let value_start = if t[after_blanks..line_end].starts_with('=') {
        after_blanks + 1
    } else if t[i..line_end].starts_with(':') && t[i + 1..line_end].starts_with([' ', '\t']) {
        i + 2
    } else if is_line_tail(&t[i..line_end]) {
        let entry = Entry {
            key,
            exported,
            value: None,
        };
        return Some((entry, line_end));
    } else {
        return None;
    };
    if value_start >= line_end || t[value_start..].starts_with('#') {
        let entry = Entry {
            key,
            exported,
            value: None,
        };
        return Some((entry, line_end));
    }

    let v = skip_blanks(t, value_start, line_end);
    if let Some(quote) = t[v..line_end]
        .chars()
        .next()
        .filter(|c| *c == '\'' || *c == '"')
    {
        if let Some(close) = closing_quote(t, v, quote) {
            let entry = Entry {
                key,
                exported,
                value: Some(&t[v..=close]),
            };
            return Some((entry, self::line_end(t, close)));
        }
    }
    let end = t[value_start..line_end]
        .find('#')
        .map_or(line_end, |p| value_start + p);
    let entry = Entry {
        key,
        exported,
        value: Some(&t[value_start..end]),
    };
    Some((entry, line_end))
}

/// The closing quote of a quoted value opened at `open`, as dotenv's `'(?:\\'|[^'])*'` finds it:
/// possibly on a later line, and followed only by blanks and an optional comment.
fn closing_quote(t: &str, open: usize, quote: char) -> Option<usize> {
    let b = t.as_bytes();
    let q = quote as u8;
    // Greedy: the first quote not preceded by a backslash; then, backtracking, escaped ones.
    let mut escaped = Vec::new();
    let mut greedy = None;
    for j in open + 1..b.len() {
        if b[j] == q {
            if b[j - 1] == b'\\' {
                escaped.push(j);
            } else {
                greedy = Some(j);
                break;
            }
        }
    }
    greedy
        .into_iter()
        .chain(escaped.into_iter().rev())
        .find(|&c| is_line_tail(&t[c + 1..line_end(t, c)]))
}

fn apply(
    entry: Entry<'_>,
    ctx: &DotenvContext<'_>,
    values: &mut Vec<(String, String)>,
    line: usize,
) -> Result<(), SecretsError> {
    let Some(raw) = entry.value else {
        if entry.exported {
            if !values.iter().any(|(k, _)| k == entry.key) {
                return Err(SecretsError::Parse {
                    file: ctx.file.to_path_buf(),
                    line,
                    message: format!(
                        "`export {key}` has no value and {key} is not defined above",
                        key = entry.key
                    ),
                });
            }
            return Ok(());
        }
        set(values, entry.key.to_string(), String::new());
        return Ok(());
    };
    let value = parse_value(raw, entry.key, ctx, values, line)?;
    let total: usize = values.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total + entry.key.len() + value.len() > MAX_TOTAL_BYTES {
        return Err(SecretsError::Parse {
            file: ctx.file.to_path_buf(),
            line,
            message: format!(
                "the secrets hold more than {MAX_TOTAL_BYTES} bytes with {} (the secrets total size budget)",
                entry.key
            ),
        });
    }
    set(values, entry.key.to_string(), value);
    Ok(())
}

/// Ruby's `String#strip` set.
fn is_ruby_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | '\0')
}

fn parse_value(
    raw: &str,
    key: &str,
    ctx: &DotenvContext<'_>,
    values: &[(String, String)],
    line: usize,
) -> Result<String, SecretsError> {
    let stripped = raw.trim_matches(is_ruby_space);
    let quote = stripped
        .chars()
        .next()
        .filter(|&c| (c == '\'' || c == '"') && stripped.len() >= 2 && stripped.ends_with(c));
    let inner = match quote {
        Some(_) => &stripped[1..stripped.len() - 1],
        None => stripped,
    };
    if quote == Some('\'') {
        return Ok(inner.to_string());
    }
    let legacy = lookup(values, ctx.env, "DOTENV_LINEBREAK_MODE") == "legacy";
    let unescaped = unescape(inner, quote == Some('"'), legacy);
    Expander {
        ctx,
        values,
        key,
        line,
    }
    .expand(&unescaped, true, "")
}

/// dotenv's unescaping: `\x` becomes `x`, except `\$` (kept for substitution) and, in double
/// quotes, `\n` / `\r` (kept as written, or line breaks in legacy mode).
fn unescape(s: &str, double: bool, legacy: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => out.push('\\'),
            Some('$') => out.push_str("\\$"),
            Some(e @ ('n' | 'r')) if double => match (legacy, e) {
                (true, 'n') => out.push('\n'),
                (true, _) => out.push('\r'),
                (false, _) => {
                    out.push('\\');
                    out.push(e);
                }
            },
            Some(other) => out.push(other),
        }
    }
    out
}

//! Secrets: `.kamal/secrets-common` then `.kamal/secrets` (or `.kamal/secrets.<dest>`), in
//! dotenv syntax with `$VAR`, `${VAR}` and `$(cmd)` substitution.
//!
//! The syntax is the one Ruby's dotenv 3 gem parses, as Kamal 2 uses it:
//!
//! - `KEY=value`, `KEY: value`, an optional `export ` prefix; keys are `[A-Za-z0-9_.]+`; a bare
//!   `KEY` is an empty value; `export KEY` alone only checks that `KEY` is already defined.
//! - Unquoted values end at `#` or the end of the line and are trimmed; `\x` becomes `x`.
//! - `'single quotes'` are literal: no escapes, no substitution.
//! - `"double quotes"` may span lines; `\"` and `\\` are unescaped, `\n` and `\r` stay as the two
//!   characters `\n` (dotenv 3; `DOTENV_LINEBREAK_MODE=legacy`, in the file or the environment,
//!   turns them into line breaks), and substitution applies.
//! - Blank lines and `#` comment lines are skipped.
//! - `$VAR` and `${VAR}` are replaced by the value of an earlier key (of any file read so far;
//!   the last definition wins), else the environment, else nothing. `\$` is a literal `$`.
//! - `$(command)` (nested parentheses allowed) is replaced by the command's output without its
//!   trailing newline. Variables are substituted into the command first; it runs with
//!   `/bin/sh -c` in the project directory, with the environment plus the keys defined so far.
//!   `\$(…)` stays literal. A failing command is an error naming the file, line, key, command
//!   and exit status; known secret values are redacted from the stderr it quotes.
//!
//! Where dray differs from dotenv, it is stricter or more predictable: a line that is not an
//! assignment, a comment or blank is an error (dotenv skips it); an unterminated `$(` is an
//! error (dotenv keeps it as text); command output is inserted as is (dotenv substitutes `$VAR`
//! inside it again).
//!
//! Kamal runs `$(kamal secrets fetch …)` and `$(kamal secrets extract …)` in-process, with its
//! password-manager adapters (1Password, Bitwarden, …). dray runs every command in the shell, so
//! those lines work when a `kamal` (or a future `dray secrets`) executable is on the `PATH`;
//! dray's own adapters are out of scope for now.
//!
//! Secret values never appear in error messages or in `Debug` output.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::template::{chomp, lowercase_first, run_shell, CommandFailure, CommandPolicy};

/// What `Debug` shows instead of a secret value.
pub const REDACTED: &str = "[REDACTED]";

/// The secrets of one run, in file order (later files override earlier keys).
#[derive(Clone, Default)]
pub struct Secrets {
    values: Vec<(String, String)>,
    files: Vec<PathBuf>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted<'a>(&'a [(String, String)]);
        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|(k, _)| (k, REDACTED)))
                    .finish()
            }
        }
        f.debug_struct("Secrets")
            .field("values", &Redacted(&self.values))
            .field("files", &self.files)
            .finish()
    }
}

/// A secrets file that could not be read, or a secret that is not there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// A key was asked for that no file defines.
    #[error("secret '{key}' not found in {}", files_list(.files))]
    Missing {
        /// The key asked for.
        key: String,
        /// The files searched, in order.
        files: Vec<PathBuf>,
    },
    /// A file has a syntax error, or a `$(cmd)` failed.
    #[error("{}:{line}: {message}", .file.display())]
    Parse {
        /// The secrets file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What went wrong.
        message: String,
    },
    /// A file exists but could not be read (permissions, a directory, not UTF-8).
    #[error("{}: {message}", .file.display())]
    Read {
        /// The secrets file.
        file: PathBuf,
        /// What went wrong.
        message: String,
    },
}

fn files_list(files: &[PathBuf]) -> String {
    if files.is_empty() {
        return "no secret files".to_string();
    }
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Secrets {
    /// Load `<secrets_path>-common`, then `<secrets_path>` or, with a destination,
    /// `<secrets_path>.<destination>`. Missing files are skipped. `secrets_path` is relative to
    /// `cwd` unless absolute. `env` is the environment for `$VAR` and for `$(cmd)`.
    pub fn load(
        secrets_path: &Path,
        destination: Option<&str>,
        cwd: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<Secrets, SecretsError> {
        Secrets::load_with_policy(secrets_path, destination, cwd, env, CommandPolicy::Run)
    }

    /// [`Secrets::load`], with the choice of whether `$(cmd)` may run.
    /// [`Secrets::files`] holds the paths as given (relative to `cwd` when `secrets_path` is).
    pub fn load_with_policy(
        secrets_path: &Path,
        destination: Option<&str>,
        cwd: &Path,
        env: &BTreeMap<String, String>,
        commands: CommandPolicy,
    ) -> Result<Secrets, SecretsError> {
        let mut common = secrets_path.as_os_str().to_owned();
        common.push("-common");
        let mut specific = secrets_path.as_os_str().to_owned();
        if let Some(dest) = destination {
            specific.push(".");
            specific.push(dest);
        }
        let files = vec![PathBuf::from(common), PathBuf::from(specific)];

        let mut values = Vec::new();
        for file in &files {
            let full = cwd.join(file);
            let bytes = match std::fs::read(&full) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(SecretsError::Read {
                        file: file.clone(),
                        message: lowercase_first(&e.to_string()),
                    })
                }
            };
            let text = String::from_utf8(bytes).map_err(|_| SecretsError::Read {
                file: file.clone(),
                message: "not valid UTF-8".to_string(),
            })?;
            let ctx = DotenvContext {
                file,
                cwd,
                env,
                commands,
            };
            parse_dotenv(&text, &ctx, &mut values)?;
        }
        Ok(Secrets { values, files })
    }

    /// Build from known values (tests, and a parent dray handing secrets down). A key given
    /// twice keeps its first position and its last value.
    pub fn from_pairs(values: Vec<(String, String)>, files: Vec<PathBuf>) -> Secrets {
        let mut deduped: Vec<(String, String)> = Vec::with_capacity(values.len());
        for (key, value) in values {
            set(&mut deduped, key, value);
        }
        Secrets {
            values: deduped,
            files,
        }
    }

    /// The value of `key`, or an error naming the key and the files searched.
    pub fn get(&self, key: &str) -> Result<&str, SecretsError> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| SecretsError::Missing {
                key: key.to_string(),
                files: self.files.clone(),
            })
    }

    /// Every key and value, in file order, last definition of a key winning.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The files that were searched, in order (whether or not they existed).
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

/// Insert or overwrite `key`, keeping its first position (as a Ruby hash does).
fn set(values: &mut Vec<(String, String)>, key: String, value: String) {
    match values.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => values.push((key, value)),
    }
}

/// Where a dotenv text comes from and what its substitutions may use.
#[derive(Debug, Clone, Copy)]
pub struct DotenvContext<'a> {
    /// The file, for error messages.
    pub file: &'a Path,
    /// The directory `$(cmd)` runs in.
    pub cwd: &'a Path,
    /// The environment for `$VAR` (after earlier keys) and for `$(cmd)`.
    pub env: &'a BTreeMap<String, String>,
    /// Whether `$(cmd)` may run.
    pub commands: CommandPolicy,
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

/// The value of `$name`: an earlier key, else the environment, else empty.
fn lookup<'a>(
    values: &'a [(String, String)],
    env: &'a BTreeMap<String, String>,
    name: &str,
) -> &'a str {
    values
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .or_else(|| env.get(name).map(String::as_str))
        .unwrap_or("")
}

/// The offset of the `)` closing the `(` at `open`: nested parentheses count, `\x` is skipped.
fn matching_paren(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = open;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 1,
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
        j += 1;
    }
    None
}

struct Expander<'a> {
    ctx: &'a DotenvContext<'a>,
    values: &'a [(String, String)],
    key: &'a str,
    line: usize,
}

impl Expander<'_> {
    fn error(&self, message: String) -> SecretsError {
        SecretsError::Parse {
            file: self.ctx.file.to_path_buf(),
            line: self.line,
            message,
        }
    }

    /// Substitute `$VAR`, `${VAR}` and, with `commands`, `$(cmd)`. `done` is the output of this
    /// value so far (redacted from error messages).
    fn expand(&self, s: &str, commands: bool, done: &str) -> Result<String, SecretsError> {
        let b = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut plain = 0;
        let mut i = 0;
        while i < b.len() {
            match (b[i], b.get(i + 1)) {
                (b'\\', Some(b'$')) => {
                    out.push_str(&s[plain..i]);
                    match (commands, b.get(i + 2)) {
                        (true, Some(b'(')) => match matching_paren(b, i + 2) {
                            Some(close) if close > i + 3 => {
                                out.push_str("$(");
                                out.push_str(&self.expand(&s[i + 3..close], false, done)?);
                                out.push(')');
                                i = close + 1;
                            }
                            _ => {
                                out.push_str("\\$");
                                i += 2;
                            }
                        },
                        (false, Some(b'(')) => {
                            out.push_str("\\$");
                            i += 2;
                        }
                        _ => {
                            out.push('$');
                            i += 2;
                        }
                    }
                    plain = i;
                }
                (b'$', Some(b'(')) if commands => {
                    out.push_str(&s[plain..i]);
                    let Some(close) = matching_paren(b, i + 1) else {
                        return Err(
                            self.error(format!("unterminated `$(` in {}: missing `)`", self.key))
                        );
                    };
                    if close == i + 2 {
                        out.push_str("$()");
                    } else {
                        let written = &s[i + 2..close];
                        let so_far = format!("{done}{out}");
                        let command = self.expand(written, false, &so_far)?;
                        out.push_str(chomp(&self.run(written, &command, &so_far)?));
                    }
                    i = close + 1;
                    plain = i;
                }
                (b'$', Some(b'(')) => i += 2,
                (b'$', _) => {
                    out.push_str(&s[plain..i]);
                    let mut j = i + 1;
                    if b.get(j) == Some(&b'{') {
                        j += 1;
                    }
                    let name_start = j;
                    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                        j += 1;
                    }
                    let name = &s[name_start..j];
                    if b.get(j) == Some(&b'}') {
                        j += 1;
                    }
                    if name.is_empty() {
                        out.push_str(&s[i..j]);
                    } else {
                        out.push_str(lookup(self.values, self.ctx.env, name));
                    }
                    i = j;
                    plain = i;
                }
                _ => i += 1,
            }
        }
        out.push_str(&s[plain..]);
        Ok(out)
    }

    /// Run `command` (written in the file as `written`); its raw output.
    fn run(&self, written: &str, command: &str, so_far: &str) -> Result<String, SecretsError> {
        let mut env = self.ctx.env.clone();
        env.extend(self.values.iter().cloned());
        run_shell(command, self.ctx.cwd, &env, self.ctx.commands).map_err(|failure| {
            let failure = match failure {
                CommandFailure::Failed {
                    status,
                    stderr_tail,
                } => CommandFailure::Failed {
                    status,
                    stderr_tail: self.redact(&stderr_tail, so_far),
                },
                other => other,
            };
            self.error(format!("command `$({written})` for {} {failure}", self.key))
        })
    }

    /// `text` with every known secret value (3 characters or more) replaced by [`REDACTED`].
    fn redact(&self, text: &str, so_far: &str) -> String {
        let mut secrets: Vec<&str> = self
            .values
            .iter()
            .map(|(_, v)| v.as_str())
            .chain(std::iter::once(so_far))
            .filter(|v| v.chars().count() >= 3)
            .collect();
        // Longest first, so that a value containing another is replaced whole.
        secrets.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut out = text.to_string();
        for secret in secrets {
            out = out.replace(secret, REDACTED);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(vars: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.insert("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into());
        env
    }

    fn parse_with(
        text: &str,
        vars: &[(&str, &str)],
        commands: CommandPolicy,
    ) -> Result<Vec<(String, String)>, SecretsError> {
        let env = env(vars);
        let cwd = std::env::temp_dir();
        let ctx = DotenvContext {
            file: Path::new(".kamal/secrets"),
            cwd: &cwd,
            env: &env,
            commands,
        };
        let mut values = Vec::new();
        parse_dotenv(text, &ctx, &mut values).map(|()| values)
    }

    fn parse(text: &str) -> Vec<(String, String)> {
        match parse_with(text, &[], CommandPolicy::Run) {
            Ok(values) => values,
            Err(e) => panic!("parse failed: {e}"),
        }
    }

    fn one(text: &str) -> String {
        let values = parse(text);
        assert_eq!(values.len(), 1, "{values:?}");
        values[0].1.clone()
    }

    fn parse_err(text: &str) -> (usize, String) {
        match parse_with(text, &[], CommandPolicy::Run) {
            Err(SecretsError::Parse { line, message, .. }) => (line, message),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unquoted_values_are_trimmed_and_end_at_a_comment() {
        assert_eq!(one("FOO=bar"), "bar");
        assert_eq!(one("FOO =  bar  "), "bar");
        assert_eq!(one("  FOO=bar # comment"), "bar");
        assert_eq!(one("FOO=abc#def"), "abc");
        assert_eq!(one("FOO=a b c"), "a b c");
        assert_eq!(one("FOO=bar\\ baz"), "bar baz");
        assert_eq!(one("FOO=a\\nb"), "anb");
        assert_eq!(one("FOO=\\\\x"), "\\x");
        assert_eq!(one("FOO=a'b"), "a'b");
    }

    #[test]
    fn separators_export_and_empty_values() {
        assert_eq!(
            parse("export A=1\nB: 2\nC=\nD\n"),
            pairs(&[("A", "1"), ("B", "2"), ("C", ""), ("D", "")])
        );
        assert_eq!(parse("export=1"), pairs(&[("export", "1")]));
        assert_eq!(parse("A.B_1=x"), pairs(&[("A.B_1", "x")]));
        assert_eq!(parse("A=2\nexport A"), pairs(&[("A", "2")]));
        let (line, message) = parse_err("A=2\nexport NOT_SET");
        assert_eq!(line, 2);
        assert!(
            message.contains("`export NOT_SET` has no value"),
            "{message}"
        );
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(
            one("FOO='bar $HOME $(echo x) \\n'"),
            "bar $HOME $(echo x) \\n"
        );
        assert_eq!(one("FOO= 'x'  # c"), "x");
        assert_eq!(one("FOO='a\\'b'"), "a\\'b");
        assert_eq!(one("FOO='ba#r'"), "ba#r");
    }

    #[test]
    fn double_quotes_unescape_and_keep_backslash_n_like_dotenv_3() {
        assert_eq!(one(r#"FOO="a\"b""#), "a\"b");
        assert_eq!(one(r#"FOO="a\\x""#), "a\\x");
        assert_eq!(one(r#"FOO="a\nb""#), "a\\nb");
        assert_eq!(one(r#"FOO="a\tb""#), "atb");
        assert_eq!(one(r#"FOO="ba#r" # c"#), "ba#r");
        assert_eq!(one(r#"FOO="""#), "");
        assert_eq!(one(r#"FOO="bar\$ \$\$""#), "bar$ $$");
        assert_eq!(one(r#"FOO="bar $ ""#), "bar $ ");
    }

    #[test]
    fn legacy_linebreak_mode_expands_backslash_n() {
        let values = parse("DOTENV_LINEBREAK_MODE=legacy\nFOO=\"a\\nb\\rc\"");
        assert_eq!(values[1].1, "a\nb\rc");
    }

    #[test]
    fn quoted_values_may_span_lines() {
        let text = "A=first\nexport B=\"line 1\nline 2\" # c\nC='x\n\ny'\nD=last";
        assert_eq!(
            parse(text),
            pairs(&[
                ("A", "first"),
                ("B", "line 1\nline 2"),
                ("C", "x\n\ny"),
                ("D", "last")
            ])
        );
        // line numbers keep counting across multi-line values
        let (line, _) = parse_err("B=\"1\n2\n3\"\nnot valid\n");
        assert_eq!(line, 4);
    }

    #[test]
    fn quotes_followed_by_text_are_an_unquoted_value_like_dotenv() {
        assert_eq!(one(r#"FOO="x" trailing"#), "\"x\" trailing");
        assert_eq!(one(r#"FOO="unterminated"#), "\"unterminated");
        assert_eq!(one("FOO='a' 'b'"), "a' 'b");
    }

    #[test]
    fn comments_blank_lines_and_crlf() {
        let text = "# header\r\n\r\n  # indented comment\r\nA=1\r\n\t\r\nB=2 # tail\rC=3";
        assert_eq!(parse(text), pairs(&[("A", "1"), ("B", "2"), ("C", "3")]));
    }

    #[test]
    fn variables_from_earlier_keys_then_environment_then_empty() {
        let values = parse_with(
            "A=one\nB=$A-${A}-$HOME_DIR-${NOPE}x\nC=\"q $A\"\nD=$A}\nE=${A",
            &[("HOME_DIR", "/h"), ("A", "from-env")],
            CommandPolicy::Deny,
        )
        .expect("parse");
        assert_eq!(values[1].1, "one-one-/h-x");
        assert_eq!(values[2].1, "q one");
        assert_eq!(values[3].1, "one");
        assert_eq!(values[4].1, "one");
    }

    #[test]
    fn escaped_dollar_stays_literal() {
        assert_eq!(one(r#"FOO="foo\$BAR""#), "foo$BAR");
        assert_eq!(one(r#"FOO="foo\${BAR} x""#), "foo${BAR} x");
        assert_eq!(one("FOO=a$"), "a$");
        assert_eq!(one("FOO=${}"), "${}");
    }

    #[test]
    fn redefinition_overwrites_in_place() {
        assert_eq!(
            parse("A=1\nB=2\nA=3\nC=$A"),
            pairs(&[("A", "3"), ("B", "2"), ("C", "3")])
        );
    }

    #[test]
    fn command_substitution_runs_and_chomps() {
        assert_eq!(one("FOO=$(echo hello)"), "hello");
        // dotenv unescapes `\n` to `n` before running the command; `\\n` reaches it as `\n`
        assert_eq!(one("FOO=$(printf 'a\\n\\n')"), "ann");
        assert_eq!(one("FOO=$(printf 'a\\\\n\\\\n')"), "a\n");
        assert_eq!(one("FOO=x-$(echo hi)-y"), "x-hi-y");
        assert_eq!(
            one(r#"FOO="$(echo "Quotes won't be a problem")""#),
            "Quotes won't be a problem"
        );
    }

    #[test]
    fn command_substitution_with_nested_parentheses() {
        assert_eq!(one(r#"FOO=$(echo "$(echo "$(echo hello)")")"#), "hello");
        assert_eq!(one("FOO=$(echo $((1 + 2)))"), "3");
    }

    #[test]
    fn command_sees_variables_and_earlier_keys() {
        assert_eq!(parse("A=bar\nB=$(echo $A)")[1].1, "bar");
        assert_eq!(parse("A='passwo(rd'\nB=$(echo '$A')")[1].1, "passwo(rd");
        // earlier keys are in the command's environment too
        assert_eq!(parse("A=exported\nB=$(printenv A)")[1].1, "exported");
        // output is inserted as is, not substituted again
        assert_eq!(parse("A=1\nB=$A$(echo $A)")[1].1, "11");
    }

    #[test]
    fn escaped_command_substitution_stays_literal() {
        assert_eq!(
            one(r#"FOO=escaped-\$(echo hello)"#),
            "escaped-$(echo hello)"
        );
        assert_eq!(
            parse_with(r#"FOO="\$(echo $X)""#, &[("X", "x")], CommandPolicy::Deny).expect("parse")
                [0]
            .1,
            "$(echo x)"
        );
        assert_eq!(one("FOO=$()"), "$()");
    }

    #[test]
    fn unterminated_command_substitution_is_an_error() {
        let (line, message) = parse_err("A=1\nB=$(echo hi\n");
        assert_eq!(line, 2);
        assert!(message.contains("unterminated `$(`"), "{message}");
        assert!(message.contains(" B"), "{message}");
    }

    #[test]
    fn failing_command_names_file_line_command_and_status_without_values() {
        let err = parse_with(
            "TOKEN=supersecret\nPASS=$(echo \"$TOKEN is wrong\" >&2; exit 4)",
            &[],
            CommandPolicy::Run,
        )
        .expect_err("fails");
        let text = err.to_string();
        assert!(text.starts_with(".kamal/secrets:2: "), "{text}");
        assert!(
            text.contains("$(echo \"$TOKEN is wrong\" >&2; exit 4)"),
            "{text}"
        );
        assert!(text.contains("exited with status 4"), "{text}");
        assert!(text.contains("[REDACTED] is wrong"), "{text}");
        assert!(!text.contains("supersecret"), "{text}");
    }

    #[test]
    fn denied_commands_never_run() {
        let err = parse_with(
            "A=$(touch /tmp/dray-should-not-exist)",
            &[],
            CommandPolicy::Deny,
        )
        .expect_err("denied");
        assert!(err.to_string().contains("disabled"), "{err}");
    }

    #[test]
    fn invalid_lines_are_errors_with_their_line() {
        for (text, line) in [
            ("A=1\nlol$wut", 2),
            ("FOO bar", 1),
            ("A=1\n\nFOO.BAR-BAZ=x", 3),
            ("=x", 1),
            ("FOO : x", 1),
        ] {
            let (got, message) = parse_err(text);
            assert_eq!(got, line, "{text}");
            assert!(message.starts_with("invalid line"), "{message}");
        }
    }

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn load_reads_common_then_plain_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), ".kamal/secrets-common", "A=common\nB=common\n");
        write(dir.path(), ".kamal/secrets", "B=plain\nC=$A\n");
        write(dir.path(), ".kamal/secrets.prod", "B=prod\n");
        let s =
            Secrets::load(Path::new(".kamal/secrets"), None, dir.path(), &env(&[])).expect("load");
        assert_eq!(s.get("A"), Ok("common"));
        assert_eq!(s.get("B"), Ok("plain"));
        assert_eq!(s.get("C"), Ok("common"));
        assert_eq!(
            s.files(),
            [
                PathBuf::from(".kamal/secrets-common"),
                PathBuf::from(".kamal/secrets")
            ]
        );
    }

    #[test]
    fn load_with_destination_reads_the_destination_file_not_the_plain_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), ".kamal/secrets-common", "A=common\nB=common\n");
        write(dir.path(), ".kamal/secrets", "ONLY_PLAIN=1\n");
        write(dir.path(), ".kamal/secrets.prod", "B=prod\n");
        let s = Secrets::load(
            Path::new(".kamal/secrets"),
            Some("prod"),
            dir.path(),
            &env(&[]),
        )
        .expect("load");
        assert_eq!(s.get("B"), Ok("prod"));
        assert_eq!(s.get("A"), Ok("common"));
        assert!(s.get("ONLY_PLAIN").is_err());
        assert_eq!(s.files()[1], PathBuf::from(".kamal/secrets.prod"));
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [("A", "common"), ("B", "prod")]
        );
    }

    #[test]
    fn load_skips_missing_files_and_missing_secret_names_key_and_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Secrets::load(
            Path::new("config/secrets"),
            Some("staging"),
            dir.path(),
            &env(&[]),
        )
        .expect("load");
        assert_eq!(s.iter().count(), 0);
        let err = s.get("DB_PASSWORD").expect_err("missing");
        assert_eq!(
            err.to_string(),
            "secret 'DB_PASSWORD' not found in config/secrets-common, config/secrets.staging"
        );
    }

    #[test]
    fn load_accepts_an_absolute_secrets_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "s/secrets", "A=1\n");
        let path = dir.path().join("s/secrets");
        let s = Secrets::load(&path, None, Path::new("/nonexistent"), &env(&[])).expect("load");
        assert_eq!(s.get("A"), Ok("1"));
    }

    #[test]
    fn load_reports_parse_errors_with_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), ".kamal/secrets-common", "OK=1\nbroken line\n");
        let err = Secrets::load(Path::new(".kamal/secrets"), None, dir.path(), &env(&[]))
            .expect_err("parse error");
        assert_eq!(
            err,
            SecretsError::Parse {
                file: PathBuf::from(".kamal/secrets-common"),
                line: 2,
                message: "invalid line: expected `KEY=value`, a `# comment` or a blank line".into(),
            }
        );
    }

    #[test]
    fn load_reports_unreadable_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".kamal/secrets")).expect("mkdir");
        let err = Secrets::load(Path::new(".kamal/secrets"), None, dir.path(), &env(&[]))
            .expect_err("a directory");
        assert!(matches!(err, SecretsError::Read { .. }), "{err:?}");
        write(dir.path(), "bin/secrets-common", "");
        std::fs::write(dir.path().join("bin/secrets-common"), [b'A', b'=', 0xff]).expect("write");
        let err = Secrets::load(Path::new("bin/secrets"), None, dir.path(), &env(&[]))
            .expect_err("not utf-8");
        assert_eq!(err.to_string(), "bin/secrets-common: not valid UTF-8");
    }

    #[test]
    fn debug_output_redacts_values() {
        let s = Secrets::from_pairs(pairs(&[("KEY", "hunter2"), ("KEY", "hunter3")]), vec![]);
        let debug = format!("{s:?}");
        assert!(debug.contains("\"KEY\": \"[REDACTED]\""), "{debug}");
        assert!(!debug.contains("hunter"), "{debug}");
        assert_eq!(s.get("KEY"), Ok("hunter3"));
        assert_eq!(s.iter().count(), 1);
    }

    const VALID: &str = "# c\nexport A=1\nB: 'two'\nC=\"x $A ${B}\n y\" # t\nD=$(echo hi)\nE=\\$(lit)\nF=$(echo $(echo n))\nG\n";

    proptest! {

        #[test]
        fn parse_never_panics_on_random_text(s in "\\PC{0,200}") {
            let _ = parse_with(&s, &[("A", "1")], CommandPolicy::Deny);
        }

        #[test]
        fn parse_never_panics_on_dotenv_soup(
            parts in prop::collection::vec(prop::sample::select(vec![
                "A", "B_1", ".", "=", ": ", "export ", "'", "\"", "\\", "$", "(", ")", "{", "}",
                "#", " ", "\t", "\n", "\r\n", "\r", "x", "é", "$(", "\\$(", "${A}",
            ]), 0..40)
        ) {
            let _ = parse_with(&parts.concat(), &[("A", "1")], CommandPolicy::Deny);
        }

        #[test]
        fn parse_never_panics_on_mutated_valid_input(
            edits in prop::collection::vec((0usize..200, 0u8..3, prop::char::any()), 1..8)
        ) {
            let mut chars: Vec<char> = VALID.chars().collect();
            for (pos, op, c) in edits {
                if chars.is_empty() {
                    chars.push(c);
                    continue;
                }
                let i = pos % chars.len();
                match op {
                    0 => chars.insert(i, c),
                    1 => { chars.remove(i); }
                    _ => chars[i] = c,
                }
            }
            let s: String = chars.into_iter().collect();
            let _ = parse_with(&s, &[("A", "1")], CommandPolicy::Deny);
        }
    }
}

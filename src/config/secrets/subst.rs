//! Substitution in dotenv values: `$VAR`, `${VAR}` and `$(command)`, with the context it needs
//! ([`DotenvContext`]).
//!
//! - `$VAR` and `${VAR}` are replaced by the value of an earlier key (of any file read so far;
//!   the last definition wins), else the environment, else nothing. `\$` is a literal `$`.
//! - `$(command)` (nested parentheses allowed) is replaced by the command's output without its
//!   trailing newline. Variables are substituted into the command first; it runs with
//!   `/bin/sh -c` in the project directory, with the environment plus the keys defined so far.
//!   `\$(…)` stays literal. A failing command is an error naming the file, line, key, command
//!   and exit status; known secret values are redacted from the stderr it quotes.
//! - `$(kamal secrets …)` and `$(dray secrets …)` run in this process instead (`inline.rs`),
//!   with the same environment for the vendor CLIs.
//!
//! Where dray differs from dotenv: an unterminated `$(` is an error (dotenv keeps it as text), and
//! command output is inserted as is (dotenv substitutes `$VAR` inside it again).

use std::collections::BTreeMap;
use std::path::Path;

use super::error::{SecretsError, REDACTED};
// The shell runner and the policy directly (not through `template`, which reads dotenv
// files with this module for ERB's `Dotenv.load`).
use crate::config::template::context::CommandPolicy;
use crate::config::template::shell::{chomp, run_shell, CommandFailure};

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

/// The value of `$name`: an earlier key, else the environment, else empty.
pub(super) fn lookup<'a>(
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

/// Substitutes into the value of `key`, written at `line`, with the keys defined so far.
pub(super) struct Expander<'a> {
    pub(super) ctx: &'a DotenvContext<'a>,
    pub(super) values: &'a [(String, String)],
    pub(super) key: &'a str,
    pub(super) line: usize,
}

/// Budget: the longest value a secret may expand to (`$A$A` doubling on every line would
/// otherwise grow without bound).
pub(super) const MAX_VALUE_BYTES: usize = 1 << 20;
/// Budget: the most bytes all secrets together may hold.
pub(super) const MAX_TOTAL_BYTES: usize = 16 << 20;

impl Expander<'_> {
    /// Refuse a value grown past [`MAX_VALUE_BYTES`].
    fn within_budget(&self, out: &str, done: &str) -> Result<(), SecretsError> {
        if out.len() + done.len() > MAX_VALUE_BYTES {
            return Err(self.error(format!(
                "{} expands to more than {MAX_VALUE_BYTES} bytes (the secret value size budget)",
                self.key
            )));
        }
        Ok(())
    }

    fn error(&self, message: String) -> SecretsError {
        SecretsError::Parse {
            file: self.ctx.file.to_path_buf(),
            line: self.line,
            message,
        }
    }

    /// Substitute `$VAR`, `${VAR}` and, with `commands`, `$(cmd)`. `done` is the output of this
    /// value so far (redacted from error messages).
    pub(super) fn expand(
        &self,
        s: &str,
        commands: bool,
        done: &str,
    ) -> Result<String, SecretsError> {
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
                        self.within_budget(&out, done)?;
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
                        self.within_budget(&out, done)?;
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
        if let Some(words) = super::inline::secrets_command(command) {
            if self.ctx.commands == CommandPolicy::Deny {
                return Err(self.error(format!(
                    "command `$({written})` for {} {}",
                    self.key,
                    CommandFailure::Denied
                )));
            }
            let runner = super::adapters::Runner {
                env: &env,
                cwd: self.ctx.cwd,
            };
            return words
                .and_then(|words| super::inline::run(&words, &runner))
                .map_err(|e| SecretsError::Inline {
                    file: self.ctx.file.to_path_buf(),
                    line: self.line,
                    message: self.redact(
                        &format!("`$({written})` for {}: {}", self.key, e.message),
                        so_far,
                    ),
                    hint: e.hint,
                });
        }
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

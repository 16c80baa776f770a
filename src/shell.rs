//! Quoting for POSIX shells: every argument is quoted exactly once on its way to a remote shell.

/// Quote `arg` for a POSIX shell so that it arrives as exactly one word, byte for byte.
///
/// Plain words (letters, digits and `-_./:=@%+,`) are left as they are; everything else is put in
/// single quotes, with embedded single quotes written as `'\''`.
pub fn quote(arg: &str) -> String {
    if !arg.is_empty() && without_placeholders(arg).bytes().all(is_plain) {
        return arg.to_string();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('\'');
    for ch in arg.chars() {
        if ch == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(ch);
        }
    }
    out.push('\'');
    out
}

/// Quote `arg` in double quotes so that it arrives byte for byte except `${NAME}` references,
/// which the remote shell expands. Every other `$`, backticks, `"` and `\\` are escaped.
pub fn quote_expanding(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    let bytes = arg.as_bytes();
    let mut i = 0;
    while i < arg.len() {
        if bytes[i] == b'$' {
            if let Some(len) = braced_var_len(&arg[i..]) {
                out.push_str(&arg[i..i + len]);
                i += len;
                continue;
            }
        }
        let ch = arg[i..].chars().next().unwrap_or_default();
        if matches!(ch, '$' | '`' | '"' | '\\') {
            out.push('\\');
        }
        out.push(ch);
        i += ch.len_utf8();
    }
    out.push('"');
    out
}

/// Length of a `${NAME}` reference at the start of `s`, if there is one.
fn braced_var_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix("${")?;
    let end = rest.find('}')?;
    let name = &rest[..end];
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some(end + 3)
}

/// The plan's hole tokens (`crate::plan::Hole::token`): a word that is plain but for them is
/// left unquoted, because the engine replaces each by one plain word before the command is
/// sent, so the line `--dry-run` shows is the line sent, quotes and all, holes aside.
pub const PLACEHOLDERS: &[&str] = &[
    "<old version>",
    "<running version>",
    "<container id>",
    "<existing container>",
    "<version before>",
    "<random hex 6>",
    "<random hex 12>",
    "<random hex 16>",
    "<time>",
    "<runtime seconds>",
];

fn without_placeholders(arg: &str) -> std::borrow::Cow<'_, str> {
    if !arg.contains('<') {
        return std::borrow::Cow::Borrowed(arg);
    }
    let mut out = arg.to_string();
    for p in PLACEHOLDERS {
        out = out.replace(p, "x");
    }
    std::borrow::Cow::Owned(out)
}

/// Quote every argument and join them with spaces.
pub fn join<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for (i, arg) in args.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&quote(arg.as_ref()));
    }
    out
}

fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b)
}

/// Ruby's `Shellwords.shellsplit`: words, with quotes and backslashes removed; `None` on an
/// unmatched quote.
pub fn shellsplit(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('$' | '`' | '"' | '\\' | '\n') => word.push(c),
                            c => {
                                word.push('\\');
                                word.push(c);
                            }
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// Shell-style wildcard match (`*` any run, `?` one character), case-sensitive: Ruby's
/// `File.fnmatch` for `--hosts`/`--roles`, OpenSSH's `match_pattern` for `Host` lines.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_plain() {
        assert_eq!(quote("docker"), "docker");
        assert_eq!(quote("--label=service=app"), "--label=service=app");
    }

    #[test]
    fn specials_are_single_quoted() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("`x`;\n"), "'`x`;\n'");
        assert_eq!(quote("héllo"), "'héllo'");
    }

    #[test]
    fn expanding_keeps_braced_vars_only() {
        assert_eq!(quote_expanding("${HOST_TOKEN}"), "\"${HOST_TOKEN}\"");
        assert_eq!(
            quote_expanding("a $HOME `x` \\ \" ${1}"),
            "\"a \\$HOME \\`x\\` \\\\ \\\" \\${1}\""
        );
    }

    #[test]
    fn join_quotes_each_once() {
        assert_eq!(join(["echo", "a b", "c"]), "echo 'a b' c");
    }
}

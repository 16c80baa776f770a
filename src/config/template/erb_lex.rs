//! Lexing the Ruby inside one ERB tag into [`Token`]s: string literals (with their `#{…}`
//! interpolations kept as code to parse), shell literals, integers, names, constants and
//! punctuation, with `#` comments dropped and the line breaks that end a statement kept as
//! [`Tok::Newline`].

/// A piece of a double-quoted string, backtick or `%x()` literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StrPart {
    /// Literal text, escapes already applied.
    Lit(String),
    /// The code of a `#{…}`, at its offset in the tag's code.
    Code { code: String, at: usize },
}

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    /// `"…"`, `'…'`, `%q()`, `%Q()`.
    Str(Vec<StrPart>),
    /// `` `…` ``, `%x()`.
    Shell(Vec<StrPart>),
    /// `%w[a b]`.
    Words(Vec<String>),
    /// `42`.
    Int(i64),
    /// A local name, keyword or method name (`present?` and `load!` included).
    Ident(String),
    /// A constant path: `ENV`, `Kamal::Utils`.
    Const(String),
    /// `&:strip`.
    AmpSym(String),
    /// Operators and brackets.
    Punct(&'static str),
    /// The end of a statement: a line break or `;`.
    Newline,
}

/// A token at its offset in the tag's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) at: usize,
}

/// Ruby the lexer does not know, at an offset of the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LexError {
    pub(super) at: usize,
    pub(super) message: String,
}

const PUNCTS: [&str; 26] = [
    "||=", "&&", "||", "==", "!=", "&.", "**", "=~", "<=", ">=", "!", "?", ":", "(", ")", "[", "]",
    "{", "}", ",", ".", "=", "|", "+", "<", ">",
];

/// Split `code` into tokens; `base` is added to every offset (for interpolated code).
pub(super) fn lex(code: &str, base: usize) -> Result<Vec<Token>, LexError> {
    let mut lexer = Lexer {
        s: code,
        pos: 0,
        base,
        out: Vec::new(),
        depth: 0,
    };
    lexer.run()?;
    Ok(lexer.out)
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
    base: usize,
    out: Vec<Token>,
    /// Open `(`, `[` and `{`: line breaks inside them do not end a statement.
    depth: usize,
}

impl Lexer<'_> {
    fn err(&self, at: usize, message: impl Into<String>) -> LexError {
        LexError {
            at: self.base + at,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn push(&mut self, tok: Tok, at: usize) {
        self.out.push(Token {
            tok,
            at: self.base + at,
        });
    }

    /// Whether a line break here continues the statement: after an operator, a comma or an
    /// opening bracket, or before a line starting with `.`, `&&` or `||`.
    fn continues(&self) -> bool {
        if self.depth > 0 {
            return true;
        }
        let before = matches!(
            self.out.last().map(|t| &t.tok),
            Some(Tok::Punct(
                "&&" | "||"
                    | "=="
                    | "!="
                    | "?"
                    | ":"
                    | ","
                    | "."
                    | "&."
                    | "="
                    | "||="
                    | "+"
                    | "!"
                    | "<"
                    | ">"
                    | "<="
                    | ">="
                    | "("
                    | "["
                    | "{"
            ))
        );
        let next = self.s[self.pos..].trim_start();
        before
            || next.starts_with("&.")
            || (next.starts_with('.') && !next.starts_with(".."))
            || next.starts_with("&&")
            || next.starts_with("||")
    }

    fn run(&mut self) -> Result<(), LexError> {
        while let Some(c) = self.peek() {
            let at = self.pos;
            match c {
                '\n' | ';' => {
                    self.pos += 1;
                    if c == '\n' {
                        // the whole run of blank space at once: one look ahead per run
                        let rest = &self.s[self.pos..];
                        self.pos += rest.len() - rest.trim_start().len();
                    }
                    if (c == ';' || !self.continues())
                        && !matches!(self.out.last().map(|t| &t.tok), Some(Tok::Newline) | None)
                    {
                        self.push(Tok::Newline, at);
                    }
                }
                '\\' if self.s[self.pos + 1..].starts_with('\n') => self.pos += 2,
                c if c.is_whitespace() => self.pos += c.len_utf8(),
                '#' => {
                    self.pos = self.s[self.pos..]
                        .find('\n')
                        .map_or(self.s.len(), |p| self.pos + p);
                }
                '"' => {
                    self.pos += 1;
                    let parts = self.interpolated('"', None)?;
                    self.push(Tok::Str(parts), at);
                }
                '`' => {
                    self.pos += 1;
                    let parts = self.interpolated('`', None)?;
                    self.push(Tok::Shell(parts), at);
                }
                '\'' => {
                    self.pos += 1;
                    let text = self.single_quoted('\'', None)?;
                    self.push(Tok::Str(vec![StrPart::Lit(text)]), at);
                }
                '%' if self.percent_literal(at)? => {}
                '0'..='9' => {
                    let rest = &self.s[self.pos..];
                    let len = rest
                        .find(|c: char| !c.is_ascii_digit() && c != '_')
                        .unwrap_or(rest.len());
                    let digits: String = rest[..len].chars().filter(|&c| c != '_').collect();
                    let value = digits
                        .parse::<i64>()
                        .map_err(|_| self.err(at, "integer out of range"))?;
                    self.pos += len;
                    self.push(Tok::Int(value), at);
                }
                '&' if self.s[self.pos..].starts_with("&:") => {
                    self.pos += 2;
                    let name = self.name();
                    if name.is_empty() {
                        return Err(self.err(at, "expected a method name after `&:`"));
                    }
                    self.push(Tok::AmpSym(name), at);
                }
                c if c.is_ascii_uppercase() => {
                    let mut path = self.name();
                    while self.s[self.pos..].starts_with("::")
                        && self.s[self.pos + 2..].starts_with(|c: char| c.is_ascii_uppercase())
                    {
                        self.pos += 2;
                        path.push_str("::");
                        path.push_str(&self.name());
                    }
                    self.push(Tok::Const(path), at);
                }
                c if c.is_ascii_lowercase() || c == '_' => {
                    let name = self.name();
                    self.push(Tok::Ident(name), at);
                }
                _ => {
                    let rest = &self.s[self.pos..];
                    let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) else {
                        return Err(self.err(at, format!("unexpected `{c}`")));
                    };
                    match *p {
                        "(" | "[" | "{" => self.depth += 1,
                        ")" | "]" | "}" => self.depth = self.depth.saturating_sub(1),
                        _ => {}
                    }
                    self.pos += p.len();
                    self.push(Tok::Punct(p), at);
                }
            }
        }
        Ok(())
    }

    /// A name: `[A-Za-z0-9_]+`, with a final `?` or `!` (not of `!=`, `?:`).
    fn name(&mut self) -> String {
        let rest = &self.s[self.pos..];
        let mut len = rest
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(rest.len());
        let after = &rest[len..];
        if (after.starts_with('?') || after.starts_with('!'))
            && !after[1..].starts_with('=')
            && !after[1..].starts_with(':')
        {
            len += 1;
        }
        self.pos += len;
        rest[..len].to_string()
    }

    /// `%x(…)`, `%q(…)`, `%Q(…)`, `%w(…)`, `%(…)`; false when `%` starts none of them.
    fn percent_literal(&mut self, at: usize) -> Result<bool, LexError> {
        let rest = &self.s[self.pos + 1..];
        let (kind, skip) = match rest.chars().next() {
            Some(k @ ('x' | 'q' | 'Q' | 'w')) => (k, 2),
            Some(c) if "([{<|!/".contains(c) => ('Q', 1),
            _ => return Ok(false),
        };
        let Some(open) = self.s[self.pos + skip..].chars().next() else {
            return Ok(false);
        };
        let (close, nest) = match open {
            '(' => (')', Some('(')),
            '[' => (']', Some('[')),
            '{' => ('}', Some('{')),
            '<' => ('>', Some('<')),
            c if c.is_ascii_punctuation() => (c, None),
            _ => return Ok(false),
        };
        self.pos += skip + open.len_utf8();
        let tok = match kind {
            'x' => Tok::Shell(self.interpolated(close, nest)?),
            'Q' => Tok::Str(self.interpolated(close, nest)?),
            'q' => Tok::Str(vec![StrPart::Lit(self.single_quoted(close, nest)?)]),
            _ => Tok::Words(
                self.single_quoted(close, nest)?
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
            ),
        };
        self.push(tok, at);
        Ok(true)
    }

    fn next_char(&mut self, start: usize) -> Result<char, LexError> {
        let c = self
            .peek()
            .ok_or_else(|| self.err(start, "unterminated string literal"))?;
        self.pos += c.len_utf8();
        Ok(c)
    }

    /// The rest of a single-quoted literal up to `close` (`\'` and `\\` unescaped).
    fn single_quoted(&mut self, close: char, open: Option<char>) -> Result<String, LexError> {
        let start = self.pos.saturating_sub(1);
        let mut out = String::new();
        let mut depth = 0usize;
        loop {
            let c = self.next_char(start)?;
            if c == close && depth == 0 {
                return Ok(out);
            }
            if c == close {
                depth -= 1;
            } else if Some(c) == open {
                depth += 1;
            }
            if c == '\\' {
                let e = self.next_char(start)?;
                if e != close && e != '\\' && Some(e) != open {
                    out.push('\\');
                }
                out.push(e);
            } else {
                out.push(c);
            }
        }
    }

    /// The rest of a double-quoted literal (also backticks and `%x`) up to `close`, with its
    /// escapes and `#{…}` interpolations.
    fn interpolated(&mut self, close: char, open: Option<char>) -> Result<Vec<StrPart>, LexError> {
        let start = self.pos.saturating_sub(1);
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut depth = 0usize;
        loop {
            let c = self.next_char(start)?;
            if c == close && depth == 0 {
                break;
            }
            if c == close {
                depth -= 1;
            } else if Some(c) == open {
                depth += 1;
            }
            match c {
                '\\' => {
                    let e = self.next_char(start)?;
                    lit.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        's' => ' ',
                        'e' => '\u{1b}',
                        'a' => '\u{7}',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'v' => '\u{b}',
                        other => other,
                    });
                }
                '#' if self.s[self.pos..].starts_with('{') => {
                    self.pos += 1;
                    let code_start = self.pos;
                    let end = interpolation_end(self.s, code_start)
                        .ok_or_else(|| self.err(start, "unterminated `#{` in a string"))?;
                    if !lit.is_empty() {
                        parts.push(StrPart::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(StrPart::Code {
                        code: self.s[code_start..end].to_string(),
                        at: self.base + code_start,
                    });
                    self.pos = end + 1;
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() || parts.is_empty() {
            parts.push(StrPart::Lit(lit));
        }
        Ok(parts)
    }
}

/// The offset of the `}` closing an interpolation whose code starts at `from`: braces nest and
/// string literals inside are skipped.
fn interpolation_end(s: &str, from: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            q @ (b'"' | b'\'' | b'`') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

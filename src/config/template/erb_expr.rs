//! The Ruby an ERB output tag may hold, parsed: `term || term || …`, each [`Term`] a
//! [`Primary`] (`ENV[…]`, `ENV.fetch(…)`, a string literal, a shell command,
//! `Kamal::Utils.docker_arch`) followed by [`Method`] calls. Anything else does not parse.

/// What a term starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Primary {
    /// `ENV["X"]`
    Env(String),
    /// `ENV.fetch("X")`, `ENV.fetch("X", "d")`
    Fetch(String, Option<String>),
    /// `"text"`, `'text'`
    Literal(String),
    /// `` `cmd` ``, `%x(cmd)`
    Shell(String),
    /// `Kamal::Utils.docker_arch`
    DockerArch,
}

/// A method called on a term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Strip,
    Lstrip,
    Rstrip,
    Chomp,
    ToS,
}

/// One operand of `||`: a primary and the methods called on it, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Term {
    pub(super) primary: Primary,
    pub(super) methods: Vec<Method>,
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, lit: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    fn next_char(&mut self) -> Option<char> {
        let c = self.rest().chars().next()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// A Ruby string literal, `"…"` or `'…'`; `None` if there is none or it interpolates.
    fn string(&mut self) -> Option<String> {
        self.skip_ws();
        match self.next_char()? {
            '"' => self.double_quoted('"', None),
            '\'' => {
                let mut out = String::new();
                loop {
                    match self.next_char()? {
                        '\'' => return Some(out),
                        '\\' => match self.next_char()? {
                            c @ ('\'' | '\\') => out.push(c),
                            c => {
                                out.push('\\');
                                out.push(c);
                            }
                        },
                        c => out.push(c),
                    }
                }
            }
            _ => None,
        }
    }

    /// The rest of a double-quoted Ruby literal (also backticks and `%x`), up to `close`;
    /// `open` nests when given. `None` when unterminated or interpolating (`#{`).
    fn double_quoted(&mut self, close: char, open: Option<char>) -> Option<String> {
        let mut out = String::new();
        let mut depth = 0usize;
        loop {
            let c = self.next_char()?;
            if c == close && depth == 0 {
                return Some(out);
            }
            if c == close {
                depth -= 1;
            } else if Some(c) == open {
                depth += 1;
            }
            match c {
                '\\' => {
                    let escaped = self.next_char()?;
                    out.push(match escaped {
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
                '#' if self.rest().starts_with('{') => return None,
                c => out.push(c),
            }
        }
    }
}

/// Parse the Ruby of an output tag into `term || term || …`; `None` when it is anything else.
pub(super) fn parse_expr(code: &str) -> Option<Vec<Term>> {
    let mut cur = Cursor { s: code, pos: 0 };
    let mut terms = vec![parse_term(&mut cur)?];
    while cur.eat("||") {
        terms.push(parse_term(&mut cur)?);
    }
    cur.skip_ws();
    cur.rest().is_empty().then_some(terms)
}

fn parse_term(cur: &mut Cursor<'_>) -> Option<Term> {
    cur.skip_ws();
    let primary = if cur.eat("ENV") {
        if cur.eat("[") {
            let name = cur.string()?;
            cur.eat("]").then_some(Primary::Env(name))?
        } else if cur.eat(".") && cur.eat("fetch") && cur.eat("(") {
            let name = cur.string()?;
            let default = if cur.eat(",") {
                Some(cur.string()?)
            } else {
                None
            };
            cur.eat(")").then_some(Primary::Fetch(name, default))?
        } else {
            return None;
        }
    } else if cur.eat("Kamal::Utils.docker_arch") {
        Primary::DockerArch
    } else if cur.eat("`") {
        Primary::Shell(cur.double_quoted('`', None)?)
    } else if cur.eat("%x") {
        let open = cur.next_char()?;
        let (close, nest) = match open {
            '(' => (')', Some('(')),
            '[' => (']', Some('[')),
            '{' => ('}', Some('{')),
            '<' => ('>', Some('<')),
            c if c.is_ascii_punctuation() => (c, None),
            _ => return None,
        };
        Primary::Shell(cur.double_quoted(close, nest)?)
    } else if cur.rest().starts_with(['"', '\'']) {
        Primary::Literal(cur.string()?)
    } else {
        return None;
    };
    let mut methods = Vec::new();
    while cur.eat(".") {
        cur.skip_ws();
        let rest = cur.rest();
        let len = rest
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(rest.len());
        methods.push(match &rest[..len] {
            "strip" => Method::Strip,
            "lstrip" => Method::Lstrip,
            "rstrip" => Method::Rstrip,
            "chomp" => Method::Chomp,
            "to_s" => Method::ToS,
            _ => return None,
        });
        cur.pos += len;
    }
    Some(Term { primary, methods })
}

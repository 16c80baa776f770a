//! Parsing the Ruby of one ERB tag: [`parse_output`] for `<%= … %>` (one [`Expr`]) and
//! [`parse_code`] for `<% … %>` (a list of [`Stmt`]s: assignments, `require`, `Dotenv.load`,
//! and the markers of `if`/`elsif`/`else`/`unless`/`each`/`for`/`end` blocks, which may span
//! tags). Ruby outside this subset is a [`ParseError`].
//!
//! Precedence is Ruby's: `!`, then `+`, then `==`/`!=`, then `&&`, then `||`, then `? :`,
//! then `not`/`and`/`or`.

use super::erb_lex::{lex, LexError, StrPart, Tok, Token};

/// How deep expressions may nest: parentheses, interpolations, and each operator or method of
/// a chain (`a || b || c` is two deep), as the evaluator recurses that deep.
const MAX_DEPTH: usize = 64;

/// An expression at its offset in the tag's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Expr {
    pub(super) kind: ExprKind,
    pub(super) at: usize,
}

/// A piece of an interpolating literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Part {
    Lit(String),
    Expr(Expr),
}

/// What an expression is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ExprKind {
    Nil,
    Bool(bool),
    Int(i64),
    /// A string literal, interpolations included.
    Str(Vec<Part>),
    /// `` `cmd` ``, `%x(cmd)`.
    Shell(Vec<Part>),
    /// `[a, b]`, `%w[a b]`.
    Array(Vec<Expr>),
    /// `&:name`, only as a method argument.
    Symbol(String),
    /// A local variable.
    Var(String),
    /// `ENV["X"]`.
    Env(Box<Expr>),
    /// `ENV.fetch("X")`, with the default of its second argument or its block.
    EnvFetch(Box<Expr>, Option<Box<Expr>>),
    /// `ENV.key?("X")` (also `has_key?`, `include?`, `member?`).
    EnvKey(Box<Expr>),
    /// `Kamal::Utils.docker_arch`.
    DockerArch,
    /// `File.read("x")`.
    FileRead(Box<Expr>),
    /// `File.exist?("x")`.
    FileExist(Box<Expr>),
    /// `recv.name(args)`; `safe` for `&.`.
    Call {
        recv: Box<Expr>,
        name: String,
        args: Vec<Expr>,
        safe: bool,
    },
    /// `recv[index]`.
    Index(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// `a == b` (`negated`: `!=`).
    Eq {
        left: Box<Expr>,
        right: Box<Expr>,
        negated: bool,
    },
    /// `a + b`.
    Add(Box<Expr>, Box<Expr>),
    Ternary(Box<Expr>, Box<Expr>, Box<Expr>),
}

/// A statement of a code tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stmt {
    /// An expression evaluated for nothing (or a no-op such as `require "dotenv"`).
    Expr(Expr),
    /// `name = value`; `or_assign` for `||=`.
    Assign {
        name: String,
        value: Expr,
        or_assign: bool,
        at: usize,
    },
    /// `Dotenv.load(files…)` (`.env` without files), `Dotenv.load!` (`must`: a missing file
    /// is an error), `Dotenv.overload` (`overload`: set values win), `require "dotenv/load"`.
    DotenvLoad {
        files: Vec<Expr>,
        must: bool,
        overload: bool,
        at: usize,
    },
    /// `if cond` (`negated`: `unless cond`).
    If {
        cond: Expr,
        negated: bool,
        at: usize,
    },
    Elsif {
        cond: Expr,
        at: usize,
    },
    Else {
        at: usize,
    },
    /// `items.each do |x|`, `items.each_with_index do |x, i|`, `for x in items`.
    Each {
        items: Expr,
        var: String,
        index: Option<String>,
        at: usize,
    },
    End {
        at: usize,
    },
}

/// Ruby outside the subset, at an offset of the tag's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ParseError {
    pub(super) at: usize,
    pub(super) message: String,
}

impl From<LexError> for ParseError {
    fn from(e: LexError) -> Self {
        ParseError {
            at: e.at,
            message: e.message,
        }
    }
}

/// Methods that may be called on values, with how many arguments they take.
const METHODS: &[(&str, usize, usize)] = &[
    ("to_s", 0, 0),
    ("to_i", 0, 0),
    ("to_str", 0, 0),
    ("strip", 0, 0),
    ("lstrip", 0, 0),
    ("rstrip", 0, 0),
    ("chomp", 0, 1),
    ("chop", 0, 0),
    ("upcase", 0, 0),
    ("downcase", 0, 0),
    ("capitalize", 0, 0),
    ("squish", 0, 0),
    ("present?", 0, 0),
    ("blank?", 0, 0),
    ("presence", 0, 0),
    ("nil?", 0, 0),
    ("empty?", 0, 0),
    ("any?", 0, 0),
    ("delete_prefix", 1, 1),
    ("delete_suffix", 1, 1),
    ("start_with?", 1, 8),
    ("end_with?", 1, 8),
    ("include?", 1, 1),
    ("split", 0, 2),
    ("lines", 0, 0),
    ("join", 0, 1),
    ("first", 0, 0),
    ("last", 0, 0),
    ("length", 0, 0),
    ("size", 0, 0),
    ("count", 0, 0),
    ("reverse", 0, 0),
    ("uniq", 0, 0),
    ("compact", 0, 0),
    ("sort", 0, 0),
    ("map", 1, 1),
    ("reject", 1, 1),
    ("select", 1, 1),
    ("to_a", 0, 0),
    ("tr", 2, 2),
    ("sub", 2, 2),
    ("gsub", 2, 2),
    ("freeze", 0, 0),
    ("dup", 0, 0),
    ("itself", 0, 0),
];

/// Whether `name` is a method the evaluator knows (`map(&:name)` takes one without arguments).
pub(super) fn is_method(name: &str) -> bool {
    METHODS.iter().any(|(m, _, _)| *m == name)
}

const KEYWORDS: &[&str] = &[
    "if", "elsif", "else", "end", "unless", "do", "then", "for", "in", "while", "until", "not",
    "and", "or", "def", "class", "module", "case", "when", "begin", "rescue", "return", "yield",
];

/// Parse the Ruby of an output tag: one expression.
pub(super) fn parse_output(code: &str) -> Result<Expr, ParseError> {
    let tokens = lex(code, 0)?;
    let mut p = Parser::new(tokens, code.len());
    p.skip_newlines();
    let expr = p.statement_expr()?;
    p.skip_newlines();
    p.finish()?;
    Ok(expr)
}

/// Parse the Ruby of a code tag: its statements, in order.
pub(super) fn parse_code(code: &str) -> Result<Vec<Stmt>, ParseError> {
    let tokens = lex(code, 0)?;
    let mut p = Parser::new(tokens, code.len());
    let mut stmts = Vec::new();
    loop {
        p.skip_newlines();
        if p.at_end() {
            return Ok(stmts);
        }
        stmts.push(p.statement()?);
        if !p.at_end() && !p.eat_newline() {
            return Err(p.unexpected());
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    end: usize,
    depth: usize,
}

impl Parser {
    fn new(tokens: Vec<Token>, end: usize) -> Parser {
        Parser {
            tokens,
            pos: 0,
            end,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.tok)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + n).map(|t| &t.tok)
    }

    fn here(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |t| t.at)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    fn bump(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        let yes = self.is_punct(p);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn is_ident(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w == word)
    }

    fn eat_ident(&mut self, word: &str) -> bool {
        let yes = self.is_ident(word);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn eat_newline(&mut self) -> bool {
        let yes = matches!(self.peek(), Some(Tok::Newline));
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn skip_newlines(&mut self) {
        while self.eat_newline() {}
    }

    fn finish(&self) -> Result<(), ParseError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn error(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            at,
            message: message.into(),
        }
    }

    fn unexpected(&self) -> ParseError {
        let what = match self.peek() {
            None => "the end of the tag".to_string(),
            Some(Tok::Ident(w)) | Some(Tok::Const(w)) => format!("`{w}`"),
            Some(Tok::Punct(p)) => format!("`{p}`"),
            Some(Tok::Newline) => "the end of the line".to_string(),
            Some(Tok::Int(i)) => format!("`{i}`"),
            Some(_) => "a literal".to_string(),
        };
        self.error(self.here(), format!("unexpected {what}"))
    }

    fn expect_punct(&mut self, p: &str) -> Result<(), ParseError> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(self.here(), "the expression nests too deeply"));
        }
        Ok(())
    }

    fn statement(&mut self) -> Result<Stmt, ParseError> {
        let at = self.here();
        if self.eat_ident("if") {
            let cond = self.statement_expr()?;
            self.eat_ident("then");
            return Ok(Stmt::If {
                cond,
                negated: false,
                at,
            });
        }
        if self.eat_ident("unless") {
            let cond = self.statement_expr()?;
            self.eat_ident("then");
            return Ok(Stmt::If {
                cond,
                negated: true,
                at,
            });
        }
        if self.eat_ident("elsif") {
            let cond = self.statement_expr()?;
            self.eat_ident("then");
            return Ok(Stmt::Elsif { cond, at });
        }
        if self.eat_ident("else") {
            return Ok(Stmt::Else { at });
        }
        if self.eat_ident("end") {
            return Ok(Stmt::End { at });
        }
        if self.eat_ident("for") {
            let var = self.local_name()?;
            if !self.eat_ident("in") {
                return Err(self.unexpected());
            }
            let items = self.statement_expr()?;
            self.eat_ident("do");
            return Ok(Stmt::Each {
                items,
                var,
                index: None,
                at,
            });
        }
        if self.eat_ident("require") {
            let name = self.require_name()?;
            if name == "dotenv/load" {
                return Ok(Stmt::DotenvLoad {
                    files: Vec::new(),
                    must: false,
                    overload: false,
                    at,
                });
            }
            return Ok(Stmt::Expr(Expr {
                kind: ExprKind::Nil,
                at,
            }));
        }
        if matches!(self.peek(), Some(Tok::Const(c)) if c == "Dotenv") {
            return self.dotenv(at);
        }
        if let (Some(Tok::Ident(name)), Some(Tok::Punct(op @ ("=" | "||=")))) =
            (self.peek(), self.peek_at(1))
        {
            let (name, or_assign) = (name.clone(), *op == "||=");
            if KEYWORDS.contains(&name.as_str()) || name.ends_with(['?', '!']) {
                return Err(self.unexpected());
            }
            self.pos += 2;
            self.skip_newlines();
            let value = self.statement_expr()?;
            return Ok(Stmt::Assign {
                name,
                value,
                or_assign,
                at,
            });
        }
        let expr = self.statement_expr()?;
        if self.eat_ident("do") {
            return self.each_block(expr, at);
        }
        Ok(Stmt::Expr(expr))
    }

    /// `items.each do |x|` with `do` just eaten: `expr` must be the `.each` call.
    fn each_block(&mut self, expr: Expr, at: usize) -> Result<Stmt, ParseError> {
        let ExprKind::Call {
            recv, name, args, ..
        } = expr.kind
        else {
            return Err(self.error(at, "`do` after something other than `.each`"));
        };
        let with_index = match name.as_str() {
            "each" => false,
            "each_with_index" => true,
            _ => return Err(self.error(expr.at, format!("unsupported block method `{name}`"))),
        };
        if !args.is_empty() {
            return Err(self.error(expr.at, format!("`{name}` takes no arguments")));
        }
        self.expect_punct("|")?;
        let var = self.local_name()?;
        let index = if self.eat_punct(",") {
            Some(self.local_name()?)
        } else {
            None
        };
        self.expect_punct("|")?;
        if with_index != index.is_some() {
            return Err(self.error(
                at,
                format!("`{name}` with the wrong number of block variables"),
            ));
        }
        Ok(Stmt::Each {
            items: *recv,
            var,
            index,
            at,
        })
    }

    fn local_name(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Some(Tok::Ident(name))
                if !KEYWORDS.contains(&name.as_str()) && !name.ends_with(['?', '!']) =>
            {
                let name = name.clone();
                self.pos += 1;
                Ok(name)
            }
            _ => Err(self.unexpected()),
        }
    }

    /// The literal name after `require`, with or without parentheses.
    fn require_name(&mut self) -> Result<String, ParseError> {
        let paren = self.eat_punct("(");
        let name = match self.bump() {
            Some(Token {
                tok: Tok::Str(parts),
                ..
            }) => match parts.as_slice() {
                [StrPart::Lit(s)] => s.clone(),
                _ => return Err(self.error(self.here(), "`require` of a computed name")),
            },
            _ => {
                self.pos -= 1;
                return Err(self.unexpected());
            }
        };
        if paren {
            self.expect_punct(")")?;
        }
        Ok(name)
    }

    /// `Dotenv.load(…)`, `Dotenv.load!(…)`, `Dotenv.overload(…)`.
    fn dotenv(&mut self, at: usize) -> Result<Stmt, ParseError> {
        self.pos += 1;
        self.expect_punct(".")?;
        let (must, overload) = match self.bump().map(|t| t.tok) {
            Some(Tok::Ident(m)) if m == "load" => (false, false),
            Some(Tok::Ident(m)) if m == "load!" => (true, false),
            Some(Tok::Ident(m)) if m == "overload" => (false, true),
            Some(Tok::Ident(m)) if m == "overload!" => (true, true),
            _ => {
                self.pos -= 1;
                return Err(self.error(self.here(), "unsupported `Dotenv` method"));
            }
        };
        let files = if self.eat_punct("(") {
            self.args_until(")")?
        } else if matches!(self.peek(), Some(Tok::Str(_))) {
            self.bare_args()?
        } else {
            Vec::new()
        };
        Ok(Stmt::DotenvLoad {
            files,
            must,
            overload,
            at,
        })
    }

    /// Arguments without parentheses: `expr, expr` to the end of the statement.
    fn bare_args(&mut self) -> Result<Vec<Expr>, ParseError> {
        let mut args = vec![self.ternary()?];
        while self.eat_punct(",") {
            args.push(self.ternary()?);
        }
        Ok(args)
    }

    /// `expr, expr …` up to `close` (eaten); a trailing comma is allowed.
    fn args_until(&mut self, close: &str) -> Result<Vec<Expr>, ParseError> {
        let mut args = Vec::new();
        loop {
            self.skip_newlines();
            if self.eat_punct(close) {
                return Ok(args);
            }
            args.push(self.ternary()?);
            self.skip_newlines();
            if !self.eat_punct(",") {
                self.expect_punct(close)?;
                return Ok(args);
            }
        }
    }

    /// The loosest expression: `not`, `and`, `or`.
    fn statement_expr(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let mut chained = 1;
        let mut left = self.not_word()?;
        loop {
            let at = self.here();
            let make = if self.eat_ident("and") {
                ExprKind::And
            } else if self.eat_ident("or") {
                ExprKind::Or
            } else {
                break;
            };
            self.enter()?;
            chained += 1;
            let right = self.not_word()?;
            left = bin(make, left, right, at);
        }
        self.depth -= chained;
        Ok(left)
    }

    fn not_word(&mut self) -> Result<Expr, ParseError> {
        let at = self.here();
        if self.eat_ident("not") {
            self.enter()?;
            let inner = self.not_word()?;
            self.depth -= 1;
            return Ok(Expr {
                kind: ExprKind::Not(Box::new(inner)),
                at,
            });
        }
        self.ternary()
    }

    fn ternary(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let cond = self.or()?;
        let at = self.here();
        let out = if self.eat_punct("?") {
            self.skip_newlines();
            let yes = self.ternary()?;
            self.skip_newlines();
            self.expect_punct(":")?;
            self.skip_newlines();
            let no = self.ternary()?;
            Expr {
                kind: ExprKind::Ternary(Box::new(cond), Box::new(yes), Box::new(no)),
                at,
            }
        } else {
            cond
        };
        self.depth -= 1;
        Ok(out)
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        let mut chained = 0;
        loop {
            let at = self.here();
            if !self.eat_punct("||") {
                self.depth -= chained;
                return Ok(left);
            }
            self.enter()?;
            chained += 1;
            let right = self.and()?;
            left = bin(ExprKind::Or, left, right, at);
        }
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.equality()?;
        let mut chained = 0;
        loop {
            let at = self.here();
            if !self.eat_punct("&&") {
                self.depth -= chained;
                return Ok(left);
            }
            self.enter()?;
            chained += 1;
            let right = self.equality()?;
            left = bin(ExprKind::And, left, right, at);
        }
    }

    fn equality(&mut self) -> Result<Expr, ParseError> {
        let left = self.additive()?;
        let at = self.here();
        let negated = if self.eat_punct("==") {
            false
        } else if self.eat_punct("!=") {
            true
        } else {
            if self.is_punct("=~") || self.is_punct("<") || self.is_punct(">") {
                return Err(self.unexpected());
            }
            return Ok(left);
        };
        let right = self.additive()?;
        Ok(Expr {
            kind: ExprKind::Eq {
                left: Box::new(left),
                right: Box::new(right),
                negated,
            },
            at,
        })
    }

    fn additive(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        let mut chained = 0;
        loop {
            let at = self.here();
            if !self.eat_punct("+") {
                self.depth -= chained;
                return Ok(left);
            }
            self.enter()?;
            chained += 1;
            let right = self.unary()?;
            left = bin(ExprKind::Add, left, right, at);
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let at = self.here();
        if self.eat_punct("!") {
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr {
                kind: ExprKind::Not(Box::new(inner)),
                at,
            });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut expr = self.primary()?;
        let mut chained = 0;
        loop {
            let at = self.here();
            if self.is_punct(".") || self.is_punct("&.") || self.is_punct("[") {
                self.enter()?;
                chained += 1;
            }
            if self.is_punct(".") || self.is_punct("&.") {
                let safe = self.is_punct("&.");
                self.pos += 1;
                self.skip_newlines();
                let name = match self.bump().map(|t| t.tok) {
                    Some(Tok::Ident(name)) => name,
                    _ => {
                        self.pos -= 1;
                        return Err(self.unexpected());
                    }
                };
                let args = if self.eat_punct("(") {
                    self.args_until(")")?
                } else {
                    Vec::new()
                };
                if name == "each" || name == "each_with_index" {
                    expr = Expr {
                        kind: ExprKind::Call {
                            recv: Box::new(expr),
                            name,
                            args,
                            safe,
                        },
                        at,
                    };
                    continue;
                }
                let Some((_, min, max)) = METHODS.iter().find(|(m, _, _)| *m == name) else {
                    return Err(self.error(at, format!("unsupported method `{name}`")));
                };
                if args.len() < *min || args.len() > *max {
                    return Err(self.error(
                        at,
                        format!("wrong number of arguments for `{name}` ({})", args.len()),
                    ));
                }
                expr = Expr {
                    kind: ExprKind::Call {
                        recv: Box::new(expr),
                        name,
                        args,
                        safe,
                    },
                    at,
                };
            } else if self.is_punct("[") {
                self.pos += 1;
                self.enter()?;
                let index = self.ternary()?;
                self.depth -= 1;
                self.expect_punct("]")?;
                expr = Expr {
                    kind: ExprKind::Index(Box::new(expr), Box::new(index)),
                    at,
                };
            } else {
                self.depth -= chained;
                return Ok(expr);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let at = self.here();
        let Some(token) = self.bump() else {
            return Err(self.error(at, "expected an expression"));
        };
        let kind = match token.tok {
            Tok::Str(parts) => ExprKind::Str(self.parts(parts)?),
            Tok::Shell(parts) => ExprKind::Shell(self.parts(parts)?),
            Tok::Words(words) => ExprKind::Array(
                words
                    .into_iter()
                    .map(|w| Expr {
                        kind: ExprKind::Str(vec![Part::Lit(w)]),
                        at,
                    })
                    .collect(),
            ),
            Tok::Int(i) => ExprKind::Int(i),
            Tok::AmpSym(name) => ExprKind::Symbol(name),
            Tok::Punct("(") => {
                self.enter()?;
                self.skip_newlines();
                let inner = self.statement_expr()?;
                self.skip_newlines();
                self.depth -= 1;
                self.expect_punct(")")?;
                return Ok(inner);
            }
            Tok::Punct("[") => {
                self.enter()?;
                let items = self.args_until("]")?;
                self.depth -= 1;
                ExprKind::Array(items)
            }
            Tok::Ident(word) => match word.as_str() {
                "nil" => ExprKind::Nil,
                "true" => ExprKind::Bool(true),
                "false" => ExprKind::Bool(false),
                w if KEYWORDS.contains(&w) || w.ends_with(['?', '!']) => {
                    self.pos -= 1;
                    return Err(self.unexpected());
                }
                _ if self.is_punct("(") => {
                    return Err(self.error(at, format!("unsupported method `{word}`")));
                }
                _ => ExprKind::Var(word),
            },
            Tok::Const(name) => return self.constant(name, at),
            _ => {
                self.pos -= 1;
                return Err(self.unexpected());
            }
        };
        Ok(Expr { kind, at })
    }

    /// `ENV…`, `Kamal::Utils.docker_arch`, `File.read(…)`, `File.exist?(…)`.
    fn constant(&mut self, name: String, at: usize) -> Result<Expr, ParseError> {
        let unsupported = |p: &Parser| p.error(at, format!("unsupported constant `{name}`"));
        match name.as_str() {
            "ENV" if self.is_punct("[") => {
                self.pos += 1;
                let key = self.ternary()?;
                self.expect_punct("]")?;
                Ok(Expr {
                    kind: ExprKind::Env(Box::new(key)),
                    at,
                })
            }
            "ENV" | "File" | "Kamal::Utils" => {
                if !self.eat_punct(".") {
                    return Err(unsupported(self));
                }
                let method_at = self.here();
                let method = match self.bump().map(|t| t.tok) {
                    Some(Tok::Ident(m)) => m,
                    _ => return Err(unsupported(self)),
                };
                let args = if self.eat_punct("(") {
                    self.args_until(")")?
                } else {
                    Vec::new()
                };
                let one = |p: &Parser, args: Vec<Expr>| -> Result<Box<Expr>, ParseError> {
                    match <[Expr; 1]>::try_from(args) {
                        Ok([a]) => Ok(Box::new(a)),
                        Err(args) => Err(p.error(
                            method_at,
                            format!("wrong number of arguments for `{method}` ({})", args.len()),
                        )),
                    }
                };
                let kind = match (name.as_str(), method.as_str()) {
                    ("ENV", "fetch") => {
                        let block = self.fetch_block()?;
                        let mut args = args.into_iter();
                        let (Some(key), default, None) = (args.next(), args.next(), args.next())
                        else {
                            return Err(
                                self.error(method_at, "`ENV.fetch` takes one or two arguments")
                            );
                        };
                        ExprKind::EnvFetch(Box::new(key), default.or(block).map(Box::new))
                    }
                    ("ENV", "key?" | "has_key?" | "include?" | "member?") => {
                        ExprKind::EnvKey(one(self, args)?)
                    }
                    ("File", "read") => ExprKind::FileRead(one(self, args)?),
                    ("File", "exist?" | "file?") => ExprKind::FileExist(one(self, args)?),
                    ("Kamal::Utils", "docker_arch") if args.is_empty() => ExprKind::DockerArch,
                    _ => {
                        return Err(self.error(at, format!("unsupported method `{name}.{method}`")))
                    }
                };
                Ok(Expr { kind, at })
            }
            _ => Err(unsupported(self)),
        }
    }

    /// The `{ "default" }` block of `ENV.fetch("X") { … }`, if there is one.
    fn fetch_block(&mut self) -> Result<Option<Expr>, ParseError> {
        if !self.eat_punct("{") {
            return Ok(None);
        }
        if self.eat_punct("|") {
            self.local_name()?;
            self.expect_punct("|")?;
        }
        self.skip_newlines();
        let value = self.statement_expr()?;
        self.skip_newlines();
        self.expect_punct("}")?;
        Ok(Some(value))
    }

    fn parts(&mut self, parts: Vec<StrPart>) -> Result<Vec<Part>, ParseError> {
        parts
            .into_iter()
            .map(|part| match part {
                StrPart::Lit(s) => Ok(Part::Lit(s)),
                StrPart::Code { code, at } => {
                    self.enter()?;
                    let tokens = lex(&code, at)?;
                    let mut inner = Parser {
                        tokens,
                        pos: 0,
                        end: at + code.len(),
                        depth: self.depth,
                    };
                    inner.skip_newlines();
                    let expr = inner.statement_expr()?;
                    inner.skip_newlines();
                    inner.finish()?;
                    self.depth -= 1;
                    Ok(Part::Expr(expr))
                }
            })
            .collect()
    }
}

fn bin(make: fn(Box<Expr>, Box<Expr>) -> ExprKind, left: Expr, right: Expr, at: usize) -> Expr {
    Expr {
        kind: make(Box::new(left), Box::new(right)),
        at,
    }
}

//! Parsing the Ruby of one ERB tag: [`parse_output`] for `<%= … %>` (one [`Expr`]) and
//! [`parse_code`] for `<% … %>` (a list of [`Stmt`]s: assignments, `require`, `Dotenv.load`,
//! and the markers of `if`/`elsif`/`else`/`unless`/`each`/`for`/`end` blocks, which may span
//! tags). Ruby outside this subset is a [`ParseError`]. The [`Parser`] over the tag's tokens
//! is here; its statements are in `erb_stmt.rs`, its expressions in `erb_expr.rs`.

use super::erb_ast::{Expr, ExprKind, ParseError, Stmt};
use super::erb_lex::{lex, Tok, Token};

/// How deep expressions may nest: parentheses, interpolations, and each operator or method of
/// a chain (`a || b || c` is two deep), as the evaluator recurses that deep.
pub(super) const MAX_DEPTH: usize = 64;

/// Parse the Ruby of an output tag: one expression.
pub(super) fn parse_output(code: &str) -> Result<Expr, ParseError> {
    let tokens = lex(code, 0)?;
    let mut p = Parser::new(tokens, code.len());
    p.skip_newlines();
    let mut expr = p.statement_expr()?;
    // `<%= value if cond %>` writes nothing when the condition fails
    if let Some((cond, negated)) = p.modifier()? {
        let at = expr.at;
        let nil = Expr {
            kind: ExprKind::Nil,
            at,
        };
        let (yes, no) = if negated { (nil, expr) } else { (expr, nil) };
        expr = Expr {
            kind: ExprKind::Ternary(Box::new(cond), Box::new(yes), Box::new(no)),
            at,
        };
    }
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
        let stmt = p.statement()?;
        let simple = matches!(
            stmt,
            Stmt::Expr(_) | Stmt::Assign { .. } | Stmt::DotenvLoad { .. }
        );
        match p.modifier()? {
            Some((cond, negated)) if simple => stmts.push(Stmt::Guarded {
                stmt: Box::new(stmt),
                cond,
                negated,
            }),
            Some(_) => return Err(p.error(p.here(), "a modifier `if` after a block")),
            None => stmts.push(stmt),
        }
        if !p.at_end() && !p.eat_newline() {
            return Err(p.unexpected());
        }
    }
}

/// A cursor over the tokens of one tag (or one interpolation).
pub(super) struct Parser {
    pub(super) tokens: Vec<Token>,
    pub(super) pos: usize,
    pub(super) end: usize,
    pub(super) depth: usize,
}

impl Parser {
    /// A trailing `if cond` / `unless cond` (`true`: `unless`).
    pub(super) fn modifier(&mut self) -> Result<Option<(Expr, bool)>, ParseError> {
        let negated = if self.eat_ident("if") {
            false
        } else if self.eat_ident("unless") {
            true
        } else {
            return Ok(None);
        };
        let cond = self.statement_expr()?;
        Ok(Some((cond, negated)))
    }

    pub(super) fn new(tokens: Vec<Token>, end: usize) -> Parser {
        Parser {
            tokens,
            pos: 0,
            end,
            depth: 0,
        }
    }

    pub(super) fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.tok)
    }

    pub(super) fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + n).map(|t| &t.tok)
    }

    pub(super) fn here(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |t| t.at)
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    pub(super) fn bump(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    pub(super) fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
    }

    pub(super) fn eat_punct(&mut self, p: &str) -> bool {
        let yes = self.is_punct(p);
        if yes {
            self.pos += 1;
        }
        yes
    }

    pub(super) fn is_ident(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w == word)
    }

    pub(super) fn eat_ident(&mut self, word: &str) -> bool {
        let yes = self.is_ident(word);
        if yes {
            self.pos += 1;
        }
        yes
    }

    pub(super) fn eat_newline(&mut self) -> bool {
        let yes = matches!(self.peek(), Some(Tok::Newline));
        if yes {
            self.pos += 1;
        }
        yes
    }

    pub(super) fn skip_newlines(&mut self) {
        while self.eat_newline() {}
    }

    pub(super) fn finish(&self) -> Result<(), ParseError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    pub(super) fn error(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            at,
            message: message.into(),
        }
    }

    pub(super) fn unexpected(&self) -> ParseError {
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

    pub(super) fn expect_punct(&mut self, p: &str) -> Result<(), ParseError> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    pub(super) fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(self.here(), "the expression nests too deeply"));
        }
        Ok(())
    }
}

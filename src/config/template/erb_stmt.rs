//! Parsing the statements of a code tag: `if`/`unless`/`elsif`/`else`/`end`, `for` and
//! `.each do |x|`, `require`, `Dotenv.load`, assignments, and expressions.

use super::erb_ast::{Expr, ExprKind, ParseError, Stmt, KEYWORDS};
use super::erb_lex::{StrPart, Tok, Token};
use super::erb_parser::Parser;

impl Parser {
    pub(super) fn statement(&mut self) -> Result<Stmt, ParseError> {
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
    pub(super) fn each_block(&mut self, expr: Expr, at: usize) -> Result<Stmt, ParseError> {
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

    pub(super) fn local_name(&mut self) -> Result<String, ParseError> {
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
    pub(super) fn require_name(&mut self) -> Result<String, ParseError> {
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
    pub(super) fn dotenv(&mut self, at: usize) -> Result<Stmt, ParseError> {
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
    pub(super) fn bare_args(&mut self) -> Result<Vec<Expr>, ParseError> {
        let mut args = vec![self.ternary()?];
        while self.eat_punct(",") {
            args.push(self.ternary()?);
        }
        Ok(args)
    }
}

//! Parsing expressions, in Ruby's precedence: `!`, then `+`, then `==`/`!=`, then `&&`, then
//! `||`, then `? :`, then `not`/`and`/`or`; method calls, `[…]`, literals, `ENV`, `File` and
//! `Kamal::Utils`.

use super::erb_ast::{Expr, ExprKind, ParseError, Part, KEYWORDS, METHODS};
use super::erb_lex::{lex, StrPart, Tok};
use super::erb_parser::Parser;

impl Parser {
    /// `expr, expr …` up to `close` (eaten); a trailing comma is allowed.
    pub(super) fn args_until(&mut self, close: &str) -> Result<Vec<Expr>, ParseError> {
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
    pub(super) fn statement_expr(&mut self) -> Result<Expr, ParseError> {
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

    pub(super) fn not_word(&mut self) -> Result<Expr, ParseError> {
        self.negation(|p| p.eat_ident("not"), Self::not_word, Self::ternary)
    }

    pub(super) fn ternary(&mut self) -> Result<Expr, ParseError> {
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

    /// `next (op next)*`, left-associative; each chained operator counts one level of depth.
    fn left_assoc(
        &mut self,
        op: &str,
        make: fn(Box<Expr>, Box<Expr>) -> ExprKind,
        next: fn(&mut Self) -> Result<Expr, ParseError>,
    ) -> Result<Expr, ParseError> {
        let mut left = next(self)?;
        let mut chained = 0;
        loop {
            let at = self.here();
            if !self.eat_punct(op) {
                self.depth -= chained;
                return Ok(left);
            }
            self.enter()?;
            chained += 1;
            let right = next(self)?;
            left = bin(make, left, right, at);
        }
    }

    pub(super) fn or(&mut self) -> Result<Expr, ParseError> {
        self.left_assoc("||", ExprKind::Or, Self::and)
    }

    pub(super) fn and(&mut self) -> Result<Expr, ParseError> {
        self.left_assoc("&&", ExprKind::And, Self::equality)
    }

    pub(super) fn equality(&mut self) -> Result<Expr, ParseError> {
        let left = self.comparison()?;
        let at = self.here();
        let negated = if self.eat_punct("==") {
            false
        } else if self.eat_punct("!=") {
            true
        } else {
            if self.is_punct("=~") {
                return Err(self.unexpected());
            }
            return Ok(left);
        };
        let right = self.comparison()?;
        Ok(Expr {
            kind: ExprKind::Eq {
                left: Box::new(left),
                right: Box::new(right),
                negated,
            },
            at,
        })
    }

    pub(super) fn comparison(&mut self) -> Result<Expr, ParseError> {
        let left = self.additive()?;
        let at = self.here();
        let op = match self.peek() {
            Some(Tok::Punct(op @ ("<" | "<=" | ">" | ">="))) => *op,
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.additive()?;
        Ok(Expr {
            kind: ExprKind::Compare {
                left: Box::new(left),
                right: Box::new(right),
                op,
            },
            at,
        })
    }

    pub(super) fn additive(&mut self) -> Result<Expr, ParseError> {
        self.left_assoc("+", ExprKind::Add, Self::unary)
    }

    pub(super) fn unary(&mut self) -> Result<Expr, ParseError> {
        self.negation(|p| p.eat_punct("!"), Self::unary, Self::postfix)
    }

    /// `not x` / `!x`: when `eat` takes the operator, the negation of the operand (`operand`,
    /// one level deeper), else `otherwise`.
    fn negation(
        &mut self,
        eat: fn(&mut Self) -> bool,
        operand: fn(&mut Self) -> Result<Expr, ParseError>,
        otherwise: fn(&mut Self) -> Result<Expr, ParseError>,
    ) -> Result<Expr, ParseError> {
        let at = self.here();
        if !eat(self) {
            return otherwise(self);
        }
        self.enter()?;
        let inner = operand(self)?;
        self.depth -= 1;
        Ok(Expr {
            kind: ExprKind::Not(Box::new(inner)),
            at,
        })
    }

    pub(super) fn postfix(&mut self) -> Result<Expr, ParseError> {
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

    pub(super) fn primary(&mut self) -> Result<Expr, ParseError> {
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
    pub(super) fn constant(&mut self, name: String, at: usize) -> Result<Expr, ParseError> {
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
    pub(super) fn fetch_block(&mut self) -> Result<Option<Expr>, ParseError> {
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

    pub(super) fn parts(&mut self, parts: Vec<StrPart>) -> Result<Vec<Part>, ParseError> {
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

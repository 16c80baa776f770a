//! Running a compiled ERB [`Program`]: one interpreter over [`Value`]s with the file's local
//! variables and environment writes the text, the values of output tags and the blocks' bodies;
//! statements assign, load dotenv files and open blocks. Expressions are evaluated in
//! `erb_eval.rs`.

use std::collections::BTreeMap;
use std::path::Path;

use super::context::read_limited;
use super::context::{CommandPolicy, TemplateContext};
use super::erb_ast::Stmt;
pub(super) use super::erb_program::{compile, Program};
use super::erb_program::{erb_tags, error_offset, snippet, Item};
use super::erb_value::{Value, MAX_VALUE_BYTES};
use super::error::io_message;
use super::error::TemplateError;
use super::scan::{ErbTag, Segment};

/// How many loop iterations one file may run.
const MAX_ITERATIONS: usize = 100_000;

/// What running a program writes: segments of the file and values.
#[derive(Debug)]
pub(super) enum Piece {
    Segment(usize),
    Value(String),
}

/// Run `program` over `segments`, in the context; `ctx.env` gets what `Dotenv.load` loads.
pub(super) fn run(
    source: &str,
    segments: &[Segment<'_>],
    program: &Program,
    ctx: &mut TemplateContext,
    policy: CommandPolicy,
) -> Result<Vec<Piece>, TemplateError> {
    let mut interp = Interp {
        source,
        tags: erb_tags(segments).collect(),
        segments,
        ctx,
        policy,
        locals: BTreeMap::new(),
        arch: None,
        out: Vec::new(),
        out_bytes: 0,
        iterations: 0,
    };
    interp.block(&program.items)?;
    Ok(interp.out)
}

pub(super) struct Interp<'a> {
    pub(super) source: &'a str,
    pub(super) segments: &'a [Segment<'a>],
    pub(super) tags: Vec<&'a ErbTag>,
    pub(super) ctx: &'a mut TemplateContext,
    pub(super) policy: CommandPolicy,
    pub(super) locals: BTreeMap<String, Value>,
    /// `Kamal::Utils.docker_arch`, once asked.
    pub(super) arch: Option<String>,
    pub(super) out: Vec<Piece>,
    pub(super) out_bytes: usize,
    pub(super) iterations: usize,
}

impl Interp<'_> {
    pub(super) fn tag(&self, t: usize) -> &ErbTag {
        self.tags[t]
    }

    /// An error at offset `at` of tag `t`'s code, naming the expression.
    pub(super) fn fail(
        &self,
        t: usize,
        at: usize,
        message: impl std::fmt::Display,
    ) -> TemplateError {
        let tag = self.tag(t);
        TemplateError::at(
            self.source,
            error_offset(tag, at),
            format!("{message} in `{}`", snippet(self.source, tag, at)),
        )
    }

    fn write(&mut self, t: usize, text: String) -> Result<(), TemplateError> {
        self.out_bytes += text.len();
        if self.out_bytes > MAX_VALUE_BYTES {
            return Err(self.fail(
                t,
                0,
                format!("the rendered file grows past {MAX_VALUE_BYTES} bytes"),
            ));
        }
        self.out.push(Piece::Value(text));
        Ok(())
    }

    fn block(&mut self, items: &[Item]) -> Result<(), TemplateError> {
        for item in items {
            match item {
                Item::Segment(i) => {
                    let len = match &self.segments[*i] {
                        Segment::Text { text, .. } | Segment::Tera { text, .. } => text.len(),
                        Segment::Erb(_) => 0,
                    };
                    self.out_bytes += len;
                    if self.out_bytes > MAX_VALUE_BYTES {
                        let t = self.tags.len().saturating_sub(1);
                        return Err(self.fail(
                            t,
                            0,
                            format!("the rendered file grows past {MAX_VALUE_BYTES} bytes"),
                        ));
                    }
                    self.out.push(Piece::Segment(*i));
                }
                Item::Empty => self.out.push(Piece::Value(String::new())),
                Item::Output { expr, tag } => {
                    let v = self.eval(expr, *tag)?;
                    self.write(*tag, v.to_s())?;
                }
                Item::Stmt { stmt, tag } => self.stmt(stmt, *tag)?,
                Item::If {
                    branches,
                    otherwise,
                } => {
                    let mut taken = false;
                    for branch in branches {
                        let v = self.eval(&branch.cond, branch.tag)?;
                        if v.truthy() != branch.negated {
                            self.block(&branch.body)?;
                            taken = true;
                            break;
                        }
                    }
                    if let (false, Some(body)) = (taken, otherwise) {
                        self.block(body)?;
                    }
                }
                Item::Each {
                    items,
                    var,
                    index,
                    tag,
                    body,
                } => {
                    let list = match self.eval(items, *tag)? {
                        Value::Array(list) => list,
                        other => {
                            return Err(self.fail(
                                *tag,
                                items.at,
                                format!("undefined method `each` for {}", other.class()),
                            ))
                        }
                    };
                    let saved = (
                        self.locals.get(var).cloned(),
                        index.as_ref().and_then(|i| self.locals.get(i).cloned()),
                    );
                    for (i, v) in list.into_iter().enumerate() {
                        self.iterations += 1;
                        if self.iterations > MAX_ITERATIONS {
                            return Err(self.fail(
                                *tag,
                                items.at,
                                format!("loops run more than {MAX_ITERATIONS} times"),
                            ));
                        }
                        self.locals.insert(var.clone(), v);
                        if let Some(index) = index {
                            let i = Value::Int(i64::try_from(i).unwrap_or(i64::MAX));
                            self.locals.insert(index.clone(), i);
                        }
                        self.block(body)?;
                    }
                    self.restore(var, saved.0);
                    if let Some(index) = index {
                        self.restore(index, saved.1);
                    }
                }
            }
        }
        Ok(())
    }

    fn restore(&mut self, name: &str, saved: Option<Value>) {
        match saved {
            Some(v) => self.locals.insert(name.to_string(), v),
            None => self.locals.remove(name),
        };
    }

    fn stmt(&mut self, stmt: &Stmt, t: usize) -> Result<(), TemplateError> {
        match stmt {
            Stmt::Expr(expr) => {
                self.eval(expr, t)?;
            }
            Stmt::Guarded {
                stmt,
                cond,
                negated,
            } => {
                if self.eval(cond, t)?.truthy() != *negated {
                    self.stmt(stmt, t)?;
                }
            }
            Stmt::Assign {
                name,
                value,
                or_assign,
                ..
            } => {
                if *or_assign && self.locals.get(name).is_some_and(Value::truthy) {
                    return Ok(());
                }
                let v = self.eval(value, t)?;
                self.locals.insert(name.clone(), v);
            }
            Stmt::DotenvLoad {
                files,
                must,
                overload,
                at,
            } => {
                let mut names = Vec::new();
                for file in files {
                    match self.eval(file, t)? {
                        Value::Str(s) => names.push(s),
                        other => {
                            return Err(self.fail(
                                t,
                                file.at,
                                format!(
                                    "no implicit conversion of {} into String (Dotenv.load)",
                                    other.class()
                                ),
                            ))
                        }
                    }
                }
                if names.is_empty() {
                    names.push(".env".to_string());
                }
                for name in names {
                    self.dotenv(&name, *must, *overload, t, *at)?;
                }
            }
            // Blocks are compiled away.
            Stmt::If { .. }
            | Stmt::Elsif { .. }
            | Stmt::Else { .. }
            | Stmt::Each { .. }
            | Stmt::End { .. } => {}
        }
        Ok(())
    }

    /// Load one dotenv file into the environment, as `Dotenv.load` does: a missing file is
    /// skipped (an error for `load!`), set variables are kept (replaced for `overload`).
    fn dotenv(
        &mut self,
        name: &str,
        must: bool,
        overload: bool,
        t: usize,
        at: usize,
    ) -> Result<(), TemplateError> {
        let path = self.ctx.cwd.join(name);
        let text = match read_limited(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must => return Ok(()),
            Err(e) => {
                return Err(self.fail(
                    t,
                    at,
                    format!("cannot read `{name}` (Dotenv.load): {}", io_message(&e)),
                ))
            }
        };
        let mut values = Vec::new();
        let dotenv_ctx = crate::config::secrets::subst::DotenvContext {
            file: Path::new(name),
            cwd: &self.ctx.cwd,
            env: &self.ctx.env,
            commands: self.policy,
        };
        crate::config::secrets::dotenv::parse_dotenv(&text, &dotenv_ctx, &mut values)
            .map_err(|e| self.fail(t, at, format!("cannot load `{name}`: {e}")))?;
        for (key, value) in values {
            if overload || !self.ctx.env.contains_key(&key) {
                self.ctx.env.insert(key, value);
            }
        }
        Ok(())
    }
}

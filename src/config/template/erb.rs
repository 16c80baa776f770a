//! ERB evaluation: the tags of a file compiled into a [`Program`] (text, output tags,
//! statements, and `if`/`unless`/`each` blocks that span tags), run by one interpreter over
//! [`Value`]s with the file's local variables and environment. Ruby outside the subset is an
//! error at its tag with the tera form to write instead.

use std::collections::BTreeMap;
use std::path::Path;

use super::context::{CommandPolicy, TemplateContext};
use super::erb_expr::{
    is_method, parse_code, parse_output, Expr, ExprKind, ParseError, Part, Stmt,
};
use super::erb_value::{self as value, Value, MAX_VALUE_BYTES};
use super::error::TemplateError;
use super::scan::{ErbTag, Segment, TagKind};
use super::shell::run_shell;

/// How many loop iterations one file may run.
const MAX_ITERATIONS: usize = 100_000;
/// How deep blocks may nest.
const MAX_BLOCK_DEPTH: usize = 32;
/// The largest file the files `File.read` and `Dotenv.load` read.
const MAX_READ_BYTES: u64 = super::super::node::MAX_INPUT_BYTES as u64;

/// One thing a program does, in order.
#[derive(Debug)]
enum Item {
    /// Copy segment `i` (text or tera) as is.
    Segment(usize),
    /// Write the value of an output tag.
    Output { expr: Expr, tag: usize },
    /// A comment or a tag that writes nothing.
    Empty,
    /// Run a statement.
    Stmt { stmt: Stmt, tag: usize },
    /// `if`/`elsif`/`else` (or `unless`): the first branch whose condition holds runs.
    If {
        branches: Vec<Branch>,
        otherwise: Option<Vec<Item>>,
    },
    /// `each`/`each_with_index`/`for`: the body once per item.
    Each {
        items: Expr,
        var: String,
        index: Option<String>,
        tag: usize,
        body: Vec<Item>,
    },
}

#[derive(Debug)]
struct Branch {
    cond: Expr,
    negated: bool,
    tag: usize,
    body: Vec<Item>,
}

/// A file's ERB, compiled.
#[derive(Debug)]
pub(super) struct Program {
    items: Vec<Item>,
    /// The tag of the first `if`/`unless`/`each`/`for`, if any.
    first_block: Option<usize>,
}

impl Program {
    /// The offset of the first block tag (`if`, `each`, …), when the program has blocks.
    pub(super) fn first_block(&self, segments: &[Segment<'_>]) -> Option<usize> {
        let tag = self.first_block?;
        erb_tags(segments).nth(tag).map(|t| t.start)
    }
}

fn erb_tags<'a>(segments: &'a [Segment<'a>]) -> impl Iterator<Item = &'a ErbTag> {
    segments.iter().filter_map(|s| match s {
        Segment::Erb(tag) => Some(tag),
        _ => None,
    })
}

/// An open block while compiling.
enum Open {
    Root,
    If {
        done: Vec<Branch>,
        /// The branch being compiled; `None` once in `else`.
        current: Option<(Expr, bool, usize)>,
    },
    Each {
        items: Expr,
        var: String,
        index: Option<String>,
    },
}

struct Frame {
    open: Open,
    items: Vec<Item>,
    tag: usize,
}

/// Compile the segments of `source` into a program; Ruby outside the subset, or blocks that
/// do not match, are errors at their tag.
pub(super) fn compile(source: &str, segments: &[Segment<'_>]) -> Result<Program, TemplateError> {
    let mut stack = vec![Frame {
        open: Open::Root,
        items: Vec::new(),
        tag: 0,
    }];
    let mut first_block = None;
    let mut tag_index = 0usize;
    for (i, segment) in segments.iter().enumerate() {
        let Segment::Erb(tag) = segment else {
            push(&mut stack, Item::Segment(i));
            continue;
        };
        let t = tag_index;
        tag_index += 1;
        let commented = in_yaml_comment(source, tag.start);
        match tag.kind {
            TagKind::Comment => push(&mut stack, Item::Empty),
            TagKind::Output => match parse_output(&tag.code) {
                Ok(expr) => push(&mut stack, Item::Output { expr, tag: t }),
                // An ERB tag we cannot read inside a YAML comment (the `kamal init` template
                // has one) would only produce comment text: leave it empty.
                Err(_) if commented => push(&mut stack, Item::Empty),
                Err(e) => return Err(unsupported(source, tag, &e)),
            },
            TagKind::Code => {
                let stmts = match parse_code(&tag.code) {
                    Ok(stmts) => stmts,
                    Err(_) if commented => Vec::new(),
                    Err(e) => return Err(unsupported(source, tag, &e)),
                };
                push(&mut stack, Item::Empty);
                for stmt in stmts {
                    if matches!(stmt, Stmt::If { .. } | Stmt::Each { .. }) {
                        first_block.get_or_insert(t);
                    }
                    compile_stmt(source, tag, t, stmt, &mut stack)?;
                }
            }
        }
    }
    let Some(root) = stack.pop() else {
        return Err(TemplateError::at(
            source,
            0,
            "internal error: no root block",
        ));
    };
    if let Open::Root = root.open {
        return Ok(Program {
            items: root.items,
            first_block,
        });
    }
    let tag = erb_tags(segments).nth(root.tag);
    let (offset, snippet) = tag.map_or((0, String::new()), |tag| {
        (tag.start, snippet(source, tag, 0))
    });
    Err(
        TemplateError::at(source, offset, format!("`{snippet}` is never closed"))
            .hint("close the block with <% end %>"),
    )
}

fn push(stack: &mut [Frame], item: Item) {
    if let Some(frame) = stack.last_mut() {
        frame.items.push(item);
    }
}

fn compile_stmt(
    source: &str,
    tag: &ErbTag,
    t: usize,
    stmt: Stmt,
    stack: &mut Vec<Frame>,
) -> Result<(), TemplateError> {
    let misplaced = |at: usize, what: &str| {
        TemplateError::at(
            source,
            error_offset(tag, at),
            format!(
                "`{what}` without an open `if` in `{}`",
                snippet(source, tag, at)
            ),
        )
    };
    match stmt {
        Stmt::If { cond, negated, .. } => {
            if stack.len() > MAX_BLOCK_DEPTH {
                return Err(TemplateError::at(
                    source,
                    tag.start,
                    format!("blocks nest more than {MAX_BLOCK_DEPTH} deep"),
                ));
            }
            stack.push(Frame {
                open: Open::If {
                    done: Vec::new(),
                    current: Some((cond, negated, t)),
                },
                items: Vec::new(),
                tag: t,
            });
        }
        Stmt::Each {
            items, var, index, ..
        } => {
            if stack.len() > MAX_BLOCK_DEPTH {
                return Err(TemplateError::at(
                    source,
                    tag.start,
                    format!("blocks nest more than {MAX_BLOCK_DEPTH} deep"),
                ));
            }
            stack.push(Frame {
                open: Open::Each { items, var, index },
                items: Vec::new(),
                tag: t,
            });
        }
        Stmt::Elsif { cond, at } => {
            let Some(Frame {
                open: Open::If { done, current },
                items,
                ..
            }) = stack.last_mut()
            else {
                return Err(misplaced(at, "elsif"));
            };
            let Some((c, negated, ctag)) = current.take() else {
                return Err(misplaced(at, "elsif"));
            };
            done.push(Branch {
                cond: c,
                negated,
                tag: ctag,
                body: std::mem::take(items),
            });
            *current = Some((cond, false, t));
        }
        Stmt::Else { at } => {
            let Some(Frame {
                open: Open::If { done, current },
                items,
                ..
            }) = stack.last_mut()
            else {
                return Err(misplaced(at, "else"));
            };
            let Some((c, negated, ctag)) = current.take() else {
                return Err(misplaced(at, "else"));
            };
            done.push(Branch {
                cond: c,
                negated,
                tag: ctag,
                body: std::mem::take(items),
            });
        }
        Stmt::End { at } => {
            if stack.len() < 2 {
                return Err(TemplateError::at(
                    source,
                    error_offset(tag, at),
                    format!(
                        "`end` without an open block in `{}`",
                        snippet(source, tag, at)
                    ),
                ));
            }
            let Some(frame) = stack.pop() else {
                return Ok(());
            };
            let item = match frame.open {
                Open::Root => return Ok(()),
                Open::If { mut done, current } => match current {
                    Some((cond, negated, ctag)) => {
                        done.push(Branch {
                            cond,
                            negated,
                            tag: ctag,
                            body: frame.items,
                        });
                        Item::If {
                            branches: done,
                            otherwise: None,
                        }
                    }
                    None => Item::If {
                        branches: done,
                        otherwise: Some(frame.items),
                    },
                },
                Open::Each { items, var, index } => Item::Each {
                    items,
                    var,
                    index,
                    tag: frame.tag,
                    body: frame.items,
                },
            };
            push(stack, item);
        }
        stmt => push(stack, Item::Stmt { stmt, tag: t }),
    }
    Ok(())
}

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

struct Interp<'a> {
    source: &'a str,
    segments: &'a [Segment<'a>],
    tags: Vec<&'a ErbTag>,
    ctx: &'a mut TemplateContext,
    policy: CommandPolicy,
    locals: BTreeMap<String, Value>,
    /// `Kamal::Utils.docker_arch`, once asked.
    arch: Option<String>,
    out: Vec<Piece>,
    out_bytes: usize,
    iterations: usize,
}

impl Interp<'_> {
    fn tag(&self, t: usize) -> &ErbTag {
        self.tags[t]
    }

    /// An error at offset `at` of tag `t`'s code, naming the expression.
    fn fail(&self, t: usize, at: usize, message: impl std::fmt::Display) -> TemplateError {
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
        let dotenv_ctx = crate::config::secrets::DotenvContext {
            file: Path::new(name),
            cwd: &self.ctx.cwd,
            env: &self.ctx.env,
            commands: self.policy,
        };
        crate::config::secrets::parse_dotenv(&text, &dotenv_ctx, &mut values)
            .map_err(|e| self.fail(t, at, format!("cannot load `{name}`: {e}")))?;
        for (key, value) in values {
            if overload || !self.ctx.env.contains_key(&key) {
                self.ctx.env.insert(key, value);
            }
        }
        Ok(())
    }

    fn eval(&mut self, expr: &Expr, t: usize) -> Result<Value, TemplateError> {
        let at = expr.at;
        let v = match &expr.kind {
            ExprKind::Nil => Value::Nil,
            ExprKind::Bool(b) => Value::Bool(*b),
            ExprKind::Int(i) => Value::Int(*i),
            ExprKind::Str(parts) => Value::Str(self.interpolate(parts, t)?),
            ExprKind::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.eval(item, t)?);
                }
                Value::Array(out)
            }
            ExprKind::Symbol(name) => {
                return Err(self.fail(t, at, format!("`&:{name}` outside `map`")))
            }
            ExprKind::Var(name) => match self.locals.get(name) {
                Some(v) => v.clone(),
                None => {
                    return Err(self
                        .fail(t, at, format!("undefined local variable or method `{name}`"))
                        .hint(format!(
                            "assign it first in a code tag: <% {name} = ENV.fetch(\"X\", \"default\") %>"
                        )))
                }
            },
            ExprKind::Env(key) => {
                let key = self.env_key(key, t)?;
                self.ctx.env.get(&key).cloned().map_or(Value::Nil, Value::Str)
            }
            ExprKind::EnvKey(key) => {
                let key = self.env_key(key, t)?;
                Value::Bool(self.ctx.env.contains_key(&key))
            }
            ExprKind::EnvFetch(key, default) => {
                let key = self.env_key(key, t)?;
                match (self.ctx.env.get(&key), default) {
                    (Some(v), _) => Value::Str(v.clone()),
                    (None, Some(d)) => self.eval(d, t)?,
                    (None, None) => {
                        return Err(self
                            .fail(
                                t,
                                at,
                                format!("environment variable `{key}` is not set (ENV.fetch without a default)"),
                            )
                            .hint(format!(
                                r#"set {key}, or give a default: <%= ENV.fetch("{key}", "…") %> or {{{{ env(name="{key}", default="…") }}}}"#
                            )))
                    }
                }
            }
            ExprKind::DockerArch => Value::Str(self.docker_arch()),
            ExprKind::FileRead(path) => {
                let name = self.string_arg(path, t, "File.read")?;
                match read_limited(&self.ctx.cwd.join(&name)) {
                    Ok(text) => Value::Str(text),
                    Err(e) => {
                        return Err(self.fail(
                            t,
                            at,
                            format!(
                                "cannot read `{name}` (File.read, relative to {}): {}",
                                self.ctx.cwd.display(),
                                io_message(&e)
                            ),
                        ))
                    }
                }
            }
            ExprKind::FileExist(path) => {
                let name = self.string_arg(path, t, "File.exist?")?;
                Value::Bool(self.ctx.cwd.join(name).exists())
            }
            ExprKind::Shell(parts) => {
                let command = self.interpolate(parts, t)?;
                match run_shell(&command, &self.ctx.cwd, &self.ctx.env, self.policy) {
                    Ok(out) => Value::Str(out),
                    Err(failure) => return Err(self
                        .fail(t, at, format!("command `{command}` {failure}"))
                        .hint("Kamal ignores a failing backtick command, dray does not: append `|| true` to the command if its failure is expected")),
                }
            }
            ExprKind::Call {
                recv,
                name,
                args,
                safe,
            } => {
                let recv_value = self.eval(recv, t)?;
                if *safe && recv_value == Value::Nil {
                    return Ok(Value::Nil);
                }
                let mut arg_values = Vec::with_capacity(args.len());
                for arg in args {
                    arg_values.push(match (&arg.kind, name.as_str()) {
                        (ExprKind::Symbol(m), "map" | "select" | "reject") if is_method(m) => {
                            Value::Str(m.clone())
                        }
                        (ExprKind::Symbol(m), _) => {
                            return Err(self.fail(t, arg.at, format!("unsupported method `{m}`")))
                        }
                        _ => self.eval(arg, t)?,
                    });
                }
                if matches!(name.as_str(), "map" | "select" | "reject")
                    && !matches!(args.first().map(|a| &a.kind), Some(ExprKind::Symbol(_)))
                {
                    return Err(self.fail(
                        t,
                        at,
                        format!("`{name}` takes a method name here: `{name}(&:strip)`"),
                    ));
                }
                let was_nil = recv_value == Value::Nil;
                match value::call(recv_value, name, &arg_values) {
                    Ok(v) => v,
                    Err(message) if was_nil => {
                        return Err(self
                            .fail(t, at, message)
                            .hint(r#"give a default first: ENV.fetch("X", "default").strip, or call it with &. (ENV["X"]&.strip)"#))
                    }
                    Err(message) => return Err(self.fail(t, at, message)),
                }
            }
            ExprKind::Index(recv, index) => {
                let r = self.eval(recv, t)?;
                let i = self.eval(index, t)?;
                value::index(&r, &i).map_err(|m| self.fail(t, at, m))?
            }
            ExprKind::Not(inner) => Value::Bool(!self.eval(inner, t)?.truthy()),
            ExprKind::And(a, b) => {
                let left = self.eval(a, t)?;
                if left.truthy() {
                    self.eval(b, t)?
                } else {
                    left
                }
            }
            ExprKind::Or(a, b) => {
                let left = self.eval(a, t)?;
                if left.truthy() {
                    left
                } else {
                    self.eval(b, t)?
                }
            }
            ExprKind::Eq {
                left,
                right,
                negated,
            } => {
                let l = self.eval(left, t)?;
                let r = self.eval(right, t)?;
                Value::Bool(value::equal(&l, &r) != *negated)
            }
            ExprKind::Add(a, b) => {
                let l = self.eval(a, t)?;
                let r = self.eval(b, t)?;
                value::add(l, r).map_err(|m| self.fail(t, at, m))?
            }
            ExprKind::Ternary(cond, yes, no) => {
                if self.eval(cond, t)?.truthy() {
                    self.eval(yes, t)?
                } else {
                    self.eval(no, t)?
                }
            }
        };
        if v.weight() > MAX_VALUE_BYTES {
            return Err(self.fail(t, at, format!("a value grows past {MAX_VALUE_BYTES} bytes")));
        }
        Ok(v)
    }

    fn interpolate(&mut self, parts: &[Part], t: usize) -> Result<String, TemplateError> {
        let mut out = String::new();
        for part in parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Expr(e) => out.push_str(&self.eval(e, t)?.to_s()),
            }
            if out.len() > MAX_VALUE_BYTES {
                return Err(self.fail(
                    t,
                    0,
                    format!("a string grows past {MAX_VALUE_BYTES} bytes"),
                ));
            }
        }
        Ok(out)
    }

    fn env_key(&mut self, key: &Expr, t: usize) -> Result<String, TemplateError> {
        match self.eval(key, t)? {
            Value::Str(s) => Ok(s),
            other => Err(self.fail(
                t,
                key.at,
                format!(
                    "no implicit conversion of {} into String (ENV key)",
                    other.class()
                ),
            )),
        }
    }

    fn string_arg(&mut self, arg: &Expr, t: usize, what: &str) -> Result<String, TemplateError> {
        match self.eval(arg, t)? {
            Value::Str(s) => Ok(s),
            other => Err(self.fail(
                t,
                arg.at,
                format!(
                    "no implicit conversion of {} into String ({what})",
                    other.class()
                ),
            )),
        }
    }

    /// `Kamal::Utils.docker_arch`: `docker info --format '{{.Architecture}}'`, stripped,
    /// `aarch64` → `arm64` and `x86_64` → `amd64`; asked once per file. When Docker cannot
    /// answer (not installed, not running, commands denied), the architecture of the machine
    /// dray runs on, which a local Docker engine runs nearly always (Kamal would get an empty
    /// string there).
    fn docker_arch(&mut self) -> String {
        if let Some(arch) = &self.arch {
            return arch.clone();
        }
        let arch = match docker_info_arch(&self.ctx.cwd, &self.ctx.env, self.policy) {
            Ok(arch) => arch,
            Err(why) => {
                let arch = host_arch().to_string();
                tracing::warn!(
                    "Kamal::Utils.docker_arch: {why}; using this machine's architecture, {arch}"
                );
                arch
            }
        };
        self.arch = Some(arch.clone());
        arch
    }
}

/// The architecture dray was built for, in Docker's names.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Ask the local Docker for its architecture, as Kamal does (no shell).
fn docker_info_arch(
    cwd: &Path,
    env: &BTreeMap<String, String>,
    policy: CommandPolicy,
) -> Result<String, String> {
    if policy == CommandPolicy::Deny {
        return Err("`docker info` was not run: running commands is disabled here".to_string());
    }
    let mut cmd = std::process::Command::new("docker");
    cmd.args(["info", "--format", "{{.Architecture}}"])
        .env_clear()
        .envs(env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if !cwd.as_os_str().is_empty() {
        cmd.current_dir(cwd);
    }
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run `docker info`: {}", io_message(&e)))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let arch = stdout.trim();
    if !output.status.success() || arch.is_empty() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let last: String = last.trim().chars().take(200).collect();
        return Err(format!(
            "`docker info` gave no architecture ({}){}",
            output.status,
            if last.is_empty() {
                String::new()
            } else {
                format!(": {last}")
            }
        ));
    }
    Ok(if arch.contains("aarch64") {
        "arm64".to_string()
    } else if arch.contains("x86_64") {
        "amd64".to_string()
    } else {
        arch.to_string()
    })
}

/// Read a text file of at most [`MAX_READ_BYTES`].
fn read_limited(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(MAX_READ_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_READ_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_READ_BYTES} bytes"
        )));
    }
    Ok(text)
}

/// An I/O error without Rust's ` (os error 2)` suffix, lowercase.
fn io_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(p) => &text[..p],
        None => &text,
    };
    super::error::lowercase_first(text)
}

/// Where an error at offset `at` of the tag's code is reported: the tag itself when it is on
/// the tag's first line, else the start of its line.
fn error_offset(tag: &ErbTag, at: usize) -> usize {
    let first_line_end = tag.code.find('\n').unwrap_or(tag.code.len());
    if at <= first_line_end {
        return tag.start;
    }
    let line_start = tag.code[..at.min(tag.code.len())]
        .rfind('\n')
        .map_or(0, |p| p + 1);
    let indent = tag.code[line_start..].len() - tag.code[line_start..].trim_start().len();
    (tag.code_start + line_start + indent).min(tag.end)
}

/// The expression an error names: the tag when it is one line, else the line of `at` in it; at
/// most 80 characters.
fn snippet(source: &str, tag: &ErbTag, at: usize) -> String {
    let text = &source[tag.start..tag.end];
    let line = if text.contains('\n') {
        let code = &tag.code;
        let at = at.min(code.len());
        let start = code[..at].rfind('\n').map_or(0, |p| p + 1);
        let end = code[at..].find('\n').map_or(code.len(), |p| at + p);
        code[start..end].trim()
    } else {
        text
    };
    let line = if line.is_empty() {
        text.lines().next().unwrap_or(text)
    } else {
        line
    };
    let mut out: String = line.chars().take(80).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    out
}

/// Whether `offset` is on a line that is a YAML comment before it.
fn in_yaml_comment(source: &str, offset: usize) -> bool {
    let line_start = source[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    source[line_start..offset].trim_start().starts_with('#')
}

/// The error for Ruby outside the subset, with the tera form to write instead.
fn unsupported(source: &str, tag: &ErbTag, e: &ParseError) -> TemplateError {
    let snippet = snippet(source, tag, e.at);
    let code = tag.code.trim();
    let first_word = code
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .unwrap_or("");
    let hint = match (tag.kind, first_word) {
        (TagKind::Code, "case" | "when") => {
            r#"use if/elsif, or a tera condition: {% if env(name="X", default="") == "value" %}…{% else %}…{% endif %}"#
                .to_string()
        }
        (TagKind::Code, "while" | "until" | "loop") => {
            "use .each, or a tera loop: {% for item in [\"a\", \"b\"] %}…{% endfor %}".to_string()
        }
        (TagKind::Code, _) if code.contains(".times") || code.contains(".each_") => {
            "use .each, or a tera loop: {% for item in [\"a\", \"b\"] %}…{% endfor %}".to_string()
        }
        (TagKind::Code, _) if code.starts_with('=') => {
            "`<%-` starts a code tag in ERB; write `<%=` to output a value".to_string()
        }
        (TagKind::Code, _) => {
            "dray's ERB supports assignments, if/elsif/else/unless, .each, require and Dotenv.load in code tags; otherwise use tera: {% set name = env(name=\"X\") %} … {{ name }}".to_string()
        }
        (_, _) if code.starts_with('=') => "write `<%=`, not `<%==`".to_string(),
        (_, _)
            if !code.is_empty()
                && code.chars().all(|c| {
                    c.is_ascii_digit() || c.is_ascii_whitespace() || "+-*/%().".contains(c)
                }) =>
        {
            format!("use tera: {{{{ {code} }}}}")
        }
        (_, _) => r#"dray's ERB supports ENV[…], ENV.fetch, literals, ==, !=, &&, ||, !, ? :, string methods (.strip, .split, .present?, …), File.read, `cmd` and Kamal::Utils.docker_arch; otherwise use tera: {{ env(name="X", default="d") }} or {{ cmd(command="…") }}"#
            .to_string(),
    };
    TemplateError::at(
        source,
        error_offset(tag, e.at),
        format!("unsupported ERB `{snippet}`: {}", e.message),
    )
    .hint(hint)
}

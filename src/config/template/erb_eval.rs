//! Evaluating ERB expressions: the value of each [`ExprKind`] as Ruby computes it, reading the
//! environment, files, commands and the local Docker's architecture.

use std::collections::BTreeMap;
use std::path::Path;

use super::context::{read_limited, CommandPolicy};
use super::erb::Interp;
use super::erb_ast::{is_method, Expr, ExprKind, Part};
use super::erb_methods;
use super::erb_value::{self as value, Value, MAX_VALUE_BYTES};
use super::error::{io_message, TemplateError};
use super::shell::run_shell;

impl Interp<'_> {
    pub(super) fn eval(&mut self, expr: &Expr, t: usize) -> Result<Value, TemplateError> {
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
                    // An interpolated command may hold values from the environment (secrets):
                    // it is named by the tag as written, not as run.
                    Err(failure) if parts.iter().any(|p| matches!(p, Part::Expr(_))) => return Err(self
                        .fail(t, at, format!("the command {failure}"))
                        .hint("Kamal ignores a failing backtick command, dray does not: append `|| true` to the command if its failure is expected")),
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
                match erb_methods::call(recv_value, name, &arg_values) {
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
            ExprKind::Compare { left, right, op } => {
                let l = self.eval(left, t)?;
                let r = self.eval(right, t)?;
                Value::Bool(value::compare(&l, &r, op).map_err(|m| self.fail(t, at, m))?)
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
    if policy != CommandPolicy::Run {
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

//! ERB evaluation: the value of each tag of the subset (`ENV[…]`, `ENV.fetch(…)`, `||`,
//! literals, backticks and `%x()`, `.strip`/`.chomp`/…, `Kamal::Utils.docker_arch`), and for
//! any other Ruby an error at the tag with the tera form to write instead.

use super::context::{CommandPolicy, TemplateContext};
use super::erb_expr::{parse_expr, Method, Primary, Term};
use super::error::TemplateError;
use super::scan::{ErbTag, TagKind};
use super::shell::{chomp, run_shell};

/// The snippet of a tag shown in messages: its first line, at most 80 characters.
fn tag_snippet(source: &str, tag: &ErbTag) -> String {
    let text = &source[tag.start..tag.end];
    let first = text.lines().next().unwrap_or(text);
    let mut snippet: String = first.chars().take(80).collect();
    if snippet.len() < text.len() {
        snippet.push('…');
    }
    snippet
}

/// The value of one ERB tag, evaluated in the context (comments and YAML-commented tags are
/// empty); an error for Ruby outside the subset.
pub(super) fn eval_tag(
    source: &str,
    tag: &ErbTag,
    ctx: &TemplateContext,
    policy: CommandPolicy,
) -> Result<String, TemplateError> {
    // An ERB tag we cannot evaluate inside a YAML comment (the `kamal init` template has one)
    // would only produce comment text: leave it empty instead of failing.
    if in_yaml_comment(source, tag.start) && !matches!(tag.kind, TagKind::Comment) {
        let supported = matches!(tag.kind, TagKind::Output) && parse_expr(&tag.code).is_some();
        if !supported {
            return Ok(String::new());
        }
    }
    match tag.kind {
        TagKind::Comment => Ok(String::new()),
        TagKind::Code if is_ruby_comment(&tag.code) => Ok(String::new()),
        TagKind::Code => Err(unsupported(source, tag)),
        TagKind::Output => match parse_expr(&tag.code) {
            Some(terms) => eval_expr(source, tag, &terms, ctx, policy),
            None => Err(unsupported(source, tag)),
        },
    }
}

/// Whether `offset` is on a line that is a YAML comment before it.
fn in_yaml_comment(source: &str, offset: usize) -> bool {
    let line_start = source[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    source[line_start..offset].trim_start().starts_with('#')
}

/// Code that does nothing: blank, or only `#` comment lines.
fn is_ruby_comment(code: &str) -> bool {
    code.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#')
    })
}

fn unsupported(source: &str, tag: &ErbTag) -> TemplateError {
    let snippet = tag_snippet(source, tag);
    let code = tag.code.trim();
    let first_word = code
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .unwrap_or("");
    let hint = match (tag.kind, first_word) {
        (TagKind::Code, "if" | "unless" | "elsif" | "else" | "end") => {
            r#"use a tera condition: {% if env(name="X", default="") == "value" %}…{% else %}…{% endif %}"#
                .to_string()
        }
        (TagKind::Code, "for" | "while" | "until") => {
            "use a tera loop: {% for item in [\"a\", \"b\"] %}…{% endfor %}".to_string()
        }
        (TagKind::Code, _) if code.contains(".each") || code.contains(".times") => {
            "use a tera loop: {% for item in [\"a\", \"b\"] %}…{% endfor %}".to_string()
        }
        (TagKind::Code, _) if code.starts_with('=') => {
            "`<%-` starts a code tag in ERB; write `<%=` to output a value".to_string()
        }
        (TagKind::Code, _) => "use tera: {% set name = env(name=\"X\") %} … {{ name }}".to_string(),
        (_, _) if code.starts_with('=') => "write `<%=`, not `<%==`".to_string(),
        (_, _) if code.contains("#{") => {
            r#"Ruby interpolation is not supported; use tera: {{ env(name="X") }}-suffix or {{ cmd(command="…") }}"#
                .to_string()
        }
        (_, _)
            if !code.is_empty()
                && code.chars().all(|c| {
                    c.is_ascii_digit() || c.is_ascii_whitespace() || "+-*/%().".contains(c)
                }) =>
        {
            format!("use tera: {{{{ {code} }}}}")
        }
        (_, _) => r#"dray's ERB supports ENV["X"], ENV.fetch("X"[, "default"]), `cmd`, %x(cmd), "literals", || and .strip/.chomp; otherwise use tera: {{ env(name="X", default="d") }} or {{ cmd(command="…") }}"#
            .to_string(),
    };
    TemplateError::at(source, tag.start, format!("unsupported ERB `{snippet}`")).hint(hint)
}

fn eval_expr(
    source: &str,
    tag: &ErbTag,
    terms: &[Term],
    ctx: &TemplateContext,
    policy: CommandPolicy,
) -> Result<String, TemplateError> {
    for term in terms {
        if let Some(value) = eval_term(source, tag, term, ctx, policy)? {
            return Ok(value);
        }
    }
    // `nil.to_s`
    Ok(String::new())
}

fn eval_term(
    source: &str,
    tag: &ErbTag,
    term: &Term,
    ctx: &TemplateContext,
    policy: CommandPolicy,
) -> Result<Option<String>, TemplateError> {
    let mut value = match &term.primary {
        Primary::Env(name) => ctx.env.get(name).cloned(),
        Primary::Fetch(name, default) => match (ctx.env.get(name), default) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(d)) => Some(d.clone()),
            (None, None) => {
                return Err(TemplateError::at(
                    source,
                    tag.start,
                    format!("environment variable `{name}` is not set (ENV.fetch without a default)"),
                )
                .hint(format!(
                    r#"set {name}, or give a default: <%= ENV.fetch("{name}", "…") %> or {{{{ env(name="{name}", default="…") }}}}"#
                )));
            }
        },
        Primary::Literal(s) => Some(s.clone()),
        Primary::DockerArch => Some(docker_arch().to_string()),
        Primary::Shell(command) => match run_shell(command, &ctx.cwd, &ctx.env, policy) {
            Ok(out) => Some(out),
            Err(failure) => {
                return Err(TemplateError::at(
                    source,
                    tag.start,
                    format!("command `{command}` {failure}"),
                )
                .hint("Kamal ignores a failing backtick command, dray does not: append `|| true` to the command if its failure is expected"));
            }
        },
    };
    for method in &term.methods {
        value = match (method, value) {
            (Method::ToS, v) => Some(v.unwrap_or_default()),
            (_, None) => {
                return Err(TemplateError::at(
                    source,
                    tag.start,
                    format!(
                        "undefined method `{}` for nil in `{}`: the environment variable is not set",
                        method_name(*method),
                        tag_snippet(source, tag)
                    ),
                )
                .hint(r#"give a default first: ENV.fetch("X", "default").strip"#));
            }
            (Method::Strip, Some(v)) => Some(v.trim_matches(is_ruby_space).to_string()),
            (Method::Lstrip, Some(v)) => Some(v.trim_start_matches(is_ruby_space).to_string()),
            (Method::Rstrip, Some(v)) => Some(v.trim_end_matches(is_ruby_space).to_string()),
            (Method::Chomp, Some(v)) => Some(chomp(&v).to_string()),
        };
    }
    Ok(value)
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Strip => "strip",
        Method::Lstrip => "lstrip",
        Method::Rstrip => "rstrip",
        Method::Chomp => "chomp",
        Method::ToS => "to_s",
    }
}

/// Ruby's `String#strip` set: ASCII whitespace and NUL.
fn is_ruby_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | '\0')
}

/// What `Kamal::Utils.docker_arch` answers, from the architecture dray was built for.
fn docker_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

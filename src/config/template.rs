//! Templates in configuration files: tera, plus the ERB subset real Kamal configs use.
//!
//! [`render`] turns the text of one configuration file into plain YAML text, before any YAML
//! parsing. Two syntaxes are accepted in the same file:
//!
//! - **tera**: `{{ … }}`, `{% … %}`, `{# … #}`, with the functions `env(name="X", default="d")`
//!   (also available as `get_env`, reading the context's environment, not the process's) and
//!   `cmd(command="…")` (runs `sh -c` in the context's directory, output with trailing newlines
//!   removed).
//! - **ERB** (Kamal's `ERB.new(text, trim_mode: "-")`), limited to the forms real Kamal configs
//!   use: `<%= ENV["X"] %>` (unset is empty, as Ruby's `nil.to_s`), `<%= ENV.fetch("X") %>`
//!   (unset is an error), `<%= ENV.fetch("X", "d") %>`, `<%= ENV["X"] || "d" %>` (any chain of
//!   `||`), string literals, `` <%= `cmd` %> `` and `<%= %x(cmd) %>` (output kept as is, trailing
//!   newline included, as in Ruby), the methods `.strip`, `.lstrip`, `.rstrip`, `.chomp` and
//!   `.to_s` on any of these, `<%= Kamal::Utils.docker_arch %>` (`amd64` or `arm64`, from the
//!   machine dray runs on), `<%# comments %>`, `<%%` for a literal `<%`, and the trim marks
//!   `-%>` (drops the newline that follows) and `<%-` (drops the indentation before it). Any
//!   other Ruby is an error at the tag's line and column, with the tera form to use in the hint.
//!
//! # Order of evaluation
//!
//! One scan of the original text splits it into plain text, ERB tags and tera tags (ERB is not
//! recognised inside a tera tag or `{% raw %}` block, and `{{` inside an ERB tag is not tera).
//! Every ERB tag is then evaluated, in file order, to its value. When the file has no tera tag,
//! the output is the text with each ERB tag replaced by its value, and tera never runs. When it
//! has tera tags, each ERB tag is replaced by a call to an internal tera function that returns
//! the tag's value, and the whole file is rendered by tera once. Either way, the value of an ERB
//! tag is never read again as a template (a value containing `{{` or `<%` stays as it is), and
//! tera output is never read as ERB. One consequence: ERB tags inside a tera `{% if %}` branch
//! that is not taken are still evaluated.
//!
//! # Commands
//!
//! Backticks, `%x()` and `cmd()` run `/bin/sh -c <command>` in [`TemplateContext::cwd`] with
//! exactly [`TemplateContext::env`] as the environment and no stdin. Unlike Ruby's backticks, a
//! command that exits non-zero is an error (with its exit status and the end of its stderr):
//! a silently empty registry password or version is worse than a clear stop. Append `|| true`
//! to a command whose failure is expected. [`render_with_policy`] with [`CommandPolicy::Deny`]
//! renders without ever starting a process (property tests, offline inspection).
//!
//! Files without any `{{`, `{%`, `{#` or `<%` are returned unchanged without further work.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// What a template may read: the environment (a snapshot, with `KAMAL_DESTINATION` set) and the
/// directory commands run in.
#[derive(Debug, Clone, Default)]
pub struct TemplateContext {
    /// Environment variables visible to `env(...)` and ERB `ENV[...]`.
    pub env: BTreeMap<String, String>,
    /// Working directory for `cmd(...)` and ERB backticks / `%x()`.
    pub cwd: PathBuf,
}

/// A template that could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct TemplateError {
    /// 1-based line in the source file.
    pub line: usize,
    /// 1-based column in the source file.
    pub column: usize,
    /// What went wrong.
    pub message: String,
    /// What to write instead, e.g. the tera form of an unsupported ERB tag.
    pub hint: Option<String>,
}

impl TemplateError {
    fn at(source: &str, offset: usize, message: impl Into<String>) -> TemplateError {
        let (line, column) = line_col(source, offset);
        TemplateError {
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> TemplateError {
        self.hint = Some(hint.into());
        self
    }
}

/// Whether rendering a template (or loading secrets) may start processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CommandPolicy {
    /// Run commands with `/bin/sh -c` (the default).
    #[default]
    Run,
    /// Never start a process: every command is an error naming it.
    Deny,
}

/// Render `source` (the text of one configuration file) into plain YAML text.
pub fn render(source: &str, ctx: &TemplateContext) -> Result<String, TemplateError> {
    render_with_policy(source, ctx, CommandPolicy::Run)
}

/// [`render`], with the choice of whether commands (`cmd()`, backticks, `%x()`) may run.
pub fn render_with_policy(
    source: &str,
    ctx: &TemplateContext,
    policy: CommandPolicy,
) -> Result<String, TemplateError> {
    if !has_template_syntax(source) {
        return Ok(source.to_string());
    }
    let segments = scan(source)?;
    let mut values = Vec::new();
    for segment in &segments {
        if let Segment::Erb(tag) = segment {
            values.push(eval_tag(source, tag, ctx, policy)?);
        }
    }
    if !segments.iter().any(|s| matches!(s, Segment::Tera { .. })) {
        let mut out = String::with_capacity(source.len());
        let mut values = values.iter();
        for segment in &segments {
            match segment {
                Segment::Text { text, .. } => out.push_str(text),
                Segment::Erb(_) => out.push_str(values.next().map_or("", String::as_str)),
                Segment::Tera { .. } => {}
            }
        }
        return Ok(out);
    }
    render_tera(source, &segments, values, ctx, policy)
}

fn has_template_syntax(source: &str) -> bool {
    source.as_bytes().windows(2).any(|w| {
        matches!(
            (w[0], w[1]),
            (b'{', b'{') | (b'{', b'%') | (b'{', b'#') | (b'<', b'%')
        )
    })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    (line, source[line_start..offset].chars().count() + 1)
}

// ---------------------------------------------------------------------------------------------
// Scanning

#[derive(Debug)]
enum Segment<'a> {
    /// Plain text, copied as is.
    Text { start: usize, text: &'a str },
    /// An ERB tag.
    Erb(ErbTag),
    /// A tera tag, comment or raw block, verbatim.
    Tera { start: usize, text: &'a str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    /// `<%= … %>`
    Output,
    /// `<%# … %>`
    Comment,
    /// `<% … %>` and `<%- … %>`
    Code,
}

#[derive(Debug)]
struct ErbTag {
    /// Offset of `<%`.
    start: usize,
    /// Offset just after `%>`.
    end: usize,
    kind: TagKind,
    /// The Ruby between the delimiters, `%%>` already turned into `%>`.
    code: String,
}

fn scan(source: &str) -> Result<Vec<Segment<'_>>, TemplateError> {
    let bytes = source.as_bytes();
    let mut segments = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'<', b'%') => {
                if bytes.get(i + 2) == Some(&b'%') {
                    // `<%%` is a literal `<%`.
                    push_text(&mut segments, source, text_start, i + 2);
                    i += 3;
                    text_start = i;
                    continue;
                }
                let (kind, code_start, trim_indent) = match bytes.get(i + 2) {
                    Some(b'=') => (TagKind::Output, i + 3, false),
                    Some(b'#') => (TagKind::Comment, i + 3, false),
                    Some(b'-') => (TagKind::Code, i + 3, true),
                    _ => (TagKind::Code, i + 2, false),
                };
                let mut text_end = i;
                if trim_indent {
                    let mut ws = i;
                    while ws > text_start && matches!(bytes[ws - 1], b' ' | b'\t') {
                        ws -= 1;
                    }
                    if ws == 0 || bytes[ws - 1] == b'\n' {
                        text_end = ws;
                    }
                }
                push_text(&mut segments, source, text_start, text_end);
                let Some((code, end, next)) = erb_tag_end(source, code_start) else {
                    return Err(
                        TemplateError::at(source, i, "unterminated ERB tag: missing `%>`")
                            .hint("close the tag with `%>`, or write `<%%` for a literal `<%`"),
                    );
                };
                segments.push(Segment::Erb(ErbTag {
                    start: i,
                    end,
                    kind,
                    code,
                }));
                i = next;
                text_start = next;
            }
            (b'{', b'{' | b'%' | b'#') => {
                push_text(&mut segments, source, text_start, i);
                let end = tera_tag_end(source, i);
                segments.push(Segment::Tera {
                    start: i,
                    text: &source[i..end],
                });
                i = end;
                text_start = end;
            }
            _ => i += 1,
        }
    }
    push_text(&mut segments, source, text_start, bytes.len());
    Ok(segments)
}

fn push_text<'a>(segments: &mut Vec<Segment<'a>>, source: &'a str, start: usize, end: usize) {
    if end > start {
        segments.push(Segment::Text {
            start,
            text: &source[start..end],
        });
    }
}

/// Find the end of an ERB tag whose code starts at `from`: the code, the offset after the
/// closing delimiter, and where the text resumes (after the newline `-%>` removes).
fn erb_tag_end(source: &str, from: usize) -> Option<(String, usize, usize)> {
    let bytes = source.as_bytes();
    let mut code = String::new();
    let mut piece = from;
    let mut j = from;
    while j < bytes.len() {
        let rest = &bytes[j..];
        if rest.starts_with(b"%%>") {
            code.push_str(&source[piece..j]);
            code.push_str("%>");
            j += 3;
            piece = j;
        } else if rest.starts_with(b"-%>") {
            code.push_str(&source[piece..j]);
            let end = j + 3;
            let next = if bytes[end..].starts_with(b"\n") {
                end + 1
            } else if bytes[end..].starts_with(b"\r\n") {
                end + 2
            } else {
                end
            };
            return Some((code, end, next));
        } else if rest.starts_with(b"%>") {
            code.push_str(&source[piece..j]);
            return Some((code, j + 2, j + 2));
        } else {
            j += 1;
        }
    }
    None
}

/// The end of the tera tag, comment or raw block starting at `start` (the end of the text when
/// it is not closed: tera then reports it).
fn tera_tag_end(source: &str, start: usize) -> usize {
    let bytes = source.as_bytes();
    let len = bytes.len();
    if bytes[start + 1] == b'#' {
        return find_from(source, start + 2, "#}").map_or(len, |p| p + 2);
    }
    let close: &[u8] = if bytes[start + 1] == b'{' {
        b"}}"
    } else {
        b"%}"
    };
    let mut j = start + 2;
    let mut end = len;
    while j < len {
        match bytes[j] {
            quote @ (b'"' | b'\'' | b'`') => {
                j = bytes[j + 1..]
                    .iter()
                    .position(|&b| b == quote)
                    .map_or(len, |p| j + 1 + p + 1);
            }
            _ if bytes[j..].starts_with(close) => {
                end = j + 2;
                break;
            }
            _ => j += 1,
        }
    }
    if bytes[start + 1] == b'%' && end < len && is_tag_named(&source[start + 2..end - 2], "raw") {
        return raw_block_end(source, end);
    }
    end
}

/// Whether the inside of a `{% … %}` tag is exactly `name` (with optional `-` trim marks).
fn is_tag_named(inner: &str, name: &str) -> bool {
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    inner.trim() == name
}

fn raw_block_end(source: &str, from: usize) -> usize {
    let mut j = from;
    while let Some(open) = find_from(source, j, "{%") {
        let Some(close) = find_from(source, open + 2, "%}") else {
            break;
        };
        if is_tag_named(&source[open + 2..close], "endraw") {
            return close + 2;
        }
        j = open + 2;
    }
    source.len()
}

fn find_from(source: &str, from: usize, needle: &str) -> Option<usize> {
    source.get(from..)?.find(needle).map(|p| from + p)
}

// ---------------------------------------------------------------------------------------------
// ERB evaluation

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

fn eval_tag(
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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Primary {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Strip,
    Lstrip,
    Rstrip,
    Chomp,
    ToS,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    primary: Primary,
    methods: Vec<Method>,
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
fn parse_expr(code: &str) -> Option<Vec<Term>> {
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

/// Ruby's `String#chomp`: one trailing `\r\n`, `\n` or `\r`.
pub(crate) fn chomp(s: &str) -> &str {
    s.strip_suffix("\r\n")
        .or_else(|| s.strip_suffix('\n'))
        .or_else(|| s.strip_suffix('\r'))
        .unwrap_or(s)
}

/// What `Kamal::Utils.docker_arch` answers, from the architecture dray was built for.
fn docker_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Commands

/// Why a command gave no output: refused, not started, or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CommandFailure {
    /// [`CommandPolicy::Deny`].
    Denied,
    /// `/bin/sh` could not be started.
    Spawn(String),
    /// The command ran and failed.
    Failed {
        /// `exited with status 1`, `was killed by signal 9`.
        status: String,
        /// The last lines of its stderr, on one line.
        stderr_tail: String,
    },
}

impl std::fmt::Display for CommandFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandFailure::Denied => write!(f, "was not run: running commands is disabled here"),
            CommandFailure::Spawn(e) => write!(f, "could not start /bin/sh: {e}"),
            CommandFailure::Failed {
                status,
                stderr_tail,
            } if stderr_tail.is_empty() => write!(f, "{status}"),
            CommandFailure::Failed {
                status,
                stderr_tail,
            } => write!(f, "{status}: {stderr_tail}"),
        }
    }
}

/// Run `/bin/sh -c command` in `cwd` (when not empty) with exactly `env`; its stdout, as is.
pub(crate) fn run_shell(
    command: &str,
    cwd: &Path,
    env: &BTreeMap<String, String>,
    policy: CommandPolicy,
) -> Result<String, CommandFailure> {
    if policy == CommandPolicy::Deny {
        return Err(CommandFailure::Denied);
    }
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !cwd.as_os_str().is_empty() {
        cmd.current_dir(cwd);
    }
    let output = cmd
        .output()
        .map_err(|e| CommandFailure::Spawn(lowercase_first(&e.to_string())))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(CommandFailure::Failed {
        status: describe_status(output.status),
        stderr_tail: stderr_tail(&String::from_utf8_lossy(&output.stderr)),
    })
}

fn describe_status(status: std::process::ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("was killed by signal {signal}");
        }
    }
    "failed".to_string()
}

/// The last three non-empty lines of `stderr`, joined on one line, at most 300 characters.
fn stderr_tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(3)..].join("; ");
    let count = tail.chars().count();
    if count > 300 {
        format!("…{}", tail.chars().skip(count - 300).collect::<String>())
    } else {
        tail
    }
}

/// `s` with its first character lowercased (error messages from std and tera start uppercase).
pub(crate) fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// tera

/// Name of the internal function returning the value of ERB tag `i`.
const ERB_FN: &str = "__dray_erb";

/// Where a piece of the text given to tera came from.
struct Span {
    /// Offset in the tera text.
    tera: usize,
    /// Offset in the original file.
    orig: usize,
    /// Copied verbatim (offsets inside map one to one) or generated (all map to `orig`).
    verbatim: bool,
}

/// What the tera functions report about the call that failed, to find it in the file.
#[derive(Debug, Clone, Default)]
struct FailedCall {
    function: &'static str,
    needle: String,
    hint: Option<String>,
}

type FailedSlot = Arc<Mutex<Option<FailedCall>>>;

/// Longest tera tag accepted: tera parses and evaluates expressions recursively, so an
/// unbounded tag could exhaust the stack (an abort, not an error).
const MAX_TAG_LEN: usize = 4096;
/// Deepest nesting of tera blocks (`if`, `for`, …) accepted, for the same reason.
const MAX_BLOCK_DEPTH: usize = 64;
/// Most elements `range()` may produce.
const MAX_RANGE_LEN: i64 = 100_000;
/// Stack of the thread tera runs on; with the limits above it cannot overflow.
const TERA_STACK: usize = 32 << 20;

/// Refuse tera input deep enough to exhaust tera's recursion.
fn check_tera_limits(source: &str, segments: &[Segment<'_>]) -> Result<(), TemplateError> {
    let mut depth = 0usize;
    for segment in segments {
        let Segment::Tera { start, text } = segment else {
            continue;
        };
        let is_raw = text.strip_prefix("{%").is_some_and(|inner| {
            inner
                .find("%}")
                .is_some_and(|close| is_tag_named(&inner[..close], "raw"))
        });
        if is_raw || text.starts_with("{#") {
            continue;
        }
        if text.len() > MAX_TAG_LEN {
            return Err(TemplateError::at(
                source,
                *start,
                format!("tera tag longer than {MAX_TAG_LEN} bytes"),
            )
            .hint("split the expression, e.g. with {% set part = … %}"));
        }
        if let Some(inner) = text.strip_prefix("{%") {
            let word = inner
                .trim_start_matches('-')
                .split_whitespace()
                .next()
                .unwrap_or("");
            match word {
                "if" | "for" | "macro" | "block" | "filter" => {
                    depth += 1;
                    if depth > MAX_BLOCK_DEPTH {
                        return Err(TemplateError::at(
                            source,
                            *start,
                            format!("tera blocks nested more than {MAX_BLOCK_DEPTH} deep"),
                        ));
                    }
                }
                "endif" | "endfor" | "endmacro" | "endblock" | "endfilter" => {
                    depth = depth.saturating_sub(1);
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// tera's `range`, refusing to build more than [`MAX_RANGE_LEN`] elements.
fn bounded_range(args: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let int = |name: &str, default: Option<i64>| -> tera::Result<i64> {
        match args.get(name) {
            Some(v) => v.as_i64().ok_or_else(|| {
                tera::Error::msg(format!("range(): `{name}` must be an integer, found {v}"))
            }),
            None => default.ok_or_else(|| tera::Error::msg("range(): missing argument `end`")),
        }
    };
    let (start, end, step) = (
        int("start", Some(0))?,
        int("end", None)?,
        int("step_by", Some(1))?,
    );
    if step <= 0 {
        return Err(tera::Error::msg("range(): `step_by` must be positive"));
    }
    if start > end {
        return Err(tera::Error::msg("range(): `start` is greater than `end`"));
    }
    if (end - start) / step > MAX_RANGE_LEN {
        return Err(tera::Error::msg(format!(
            "range(): more than {MAX_RANGE_LEN} elements"
        )));
    }
    let mut values = Vec::new();
    let mut i = start;
    while i < end {
        values.push(tera::Value::from(i));
        i += step;
    }
    Ok(tera::Value::Array(values))
}

fn render_tera(
    source: &str,
    segments: &[Segment<'_>],
    erb_values: Vec<String>,
    ctx: &TemplateContext,
    policy: CommandPolicy,
) -> Result<String, TemplateError> {
    check_tera_limits(source, segments)?;
    let mut text = String::with_capacity(source.len() + 64);
    let mut spans = Vec::with_capacity(segments.len() * 2);
    let mut erb_index = 0usize;
    let mut push = |text: &mut String, piece: &str, orig: usize, verbatim: bool| {
        spans.push(Span {
            tera: text.len(),
            orig,
            verbatim,
        });
        text.push_str(piece);
    };
    for segment in segments {
        match segment {
            // A text ending in `{` is protected so that it cannot form `{{` with what follows.
            Segment::Text { start, text: t } if t.ends_with('{') => {
                push(&mut text, "{% raw %}", *start, false);
                push(&mut text, t, *start, true);
                push(&mut text, "{% endraw %}", *start + t.len(), false);
            }
            Segment::Text { start, text: t } | Segment::Tera { start, text: t } => {
                push(&mut text, t, *start, true);
            }
            Segment::Erb(tag) => {
                let call = format!("{{{{ {ERB_FN}(i={erb_index}) }}}}");
                push(&mut text, &call, tag.start, false);
                erb_index += 1;
            }
        }
    }

    let failed: FailedSlot = Arc::default();
    let mut tera = tera::Tera::default();
    let env = Arc::new(ctx.env.clone());
    let env_fn = make_env_fn(Arc::clone(&env), Arc::clone(&failed));
    tera.register_function("env", env_fn.clone());
    tera.register_function("get_env", env_fn);
    tera.register_function(
        "cmd",
        make_cmd_fn(env, ctx.cwd.clone(), policy, Arc::clone(&failed)),
    );
    let erb_values = Arc::new(erb_values);
    tera.register_function(ERB_FN, move |args: &HashMap<String, tera::Value>| {
        let i = args.get("i").and_then(tera::Value::as_u64).unwrap_or(0);
        let value = usize::try_from(i)
            .ok()
            .and_then(|i| erb_values.get(i))
            .cloned()
            .unwrap_or_default();
        Ok(tera::Value::String(value))
    });

    tera.register_function("range", bounded_range);

    // On its own thread: a known stack size, whatever thread (a tokio worker) calls us.
    let rendered = std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("dray-tera".into())
            .stack_size(TERA_STACK)
            .spawn_scoped(scope, || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    tera.render_str(&text, &tera::Context::new())
                }))
            });
        match handle {
            Ok(handle) => handle.join().ok(),
            Err(_) => None,
        }
    });
    match rendered.and_then(|r| r.ok()) {
        Some(Ok(out)) => Ok(out),
        Some(Err(e)) => {
            let failed = failed.lock().ok().and_then(|mut f| f.take());
            Err(map_tera_error(source, segments, &text, &spans, &e, failed))
        }
        None => Err(TemplateError::at(
            source,
            first_tera_offset(segments),
            "the tera template engine failed on this file",
        )),
    }
}

fn record(failed: &FailedSlot, call: FailedCall) {
    if let Ok(mut slot) = failed.lock() {
        *slot = Some(call);
    }
}

fn string_arg<'v>(
    args: &'v HashMap<String, tera::Value>,
    function: &str,
    name: &str,
) -> tera::Result<&'v str> {
    match args.get(name) {
        Some(tera::Value::String(s)) => Ok(s),
        Some(other) => Err(tera::Error::msg(format!(
            "{function}(): `{name}` must be a string, found {other}"
        ))),
        None => Err(tera::Error::msg(format!(
            "{function}(): missing argument `{name}`, write {function}({name}=\"…\")"
        ))),
    }
}

fn make_env_fn(
    env: Arc<BTreeMap<String, String>>,
    failed: FailedSlot,
) -> impl Fn(&HashMap<String, tera::Value>) -> tera::Result<tera::Value> + Clone + Send + Sync {
    move |args| {
        let name = string_arg(args, "env", "name")?;
        match (env.get(name), args.get("default")) {
            (Some(v), _) => Ok(tera::Value::String(v.clone())),
            (None, Some(default)) => Ok(default.clone()),
            (None, None) => {
                record(
                    &failed,
                    FailedCall {
                        function: "env",
                        needle: name.to_string(),
                        hint: Some(format!(
                            r#"set {name}, or give a default: {{{{ env(name="{name}", default="…") }}}}"#
                        )),
                    },
                );
                Err(tera::Error::msg(format!(
                    "environment variable `{name}` is not set"
                )))
            }
        }
    }
}

fn make_cmd_fn(
    env: Arc<BTreeMap<String, String>>,
    cwd: PathBuf,
    policy: CommandPolicy,
    failed: FailedSlot,
) -> impl Fn(&HashMap<String, tera::Value>) -> tera::Result<tera::Value> + Send + Sync {
    move |args| {
        let command = string_arg(args, "cmd", "command")?;
        match run_shell(command, &cwd, &env, policy) {
            Ok(out) => Ok(tera::Value::String(
                out.trim_end_matches(['\n', '\r']).to_string(),
            )),
            Err(failure) => {
                record(
                    &failed,
                    FailedCall {
                        function: "cmd",
                        needle: command.to_string(),
                        hint: None,
                    },
                );
                Err(tera::Error::msg(format!("command `{command}` {failure}")))
            }
        }
    }
}

fn first_tera_offset(segments: &[Segment<'_>]) -> usize {
    segments
        .iter()
        .find_map(|s| match s {
            Segment::Tera { start, .. } => Some(*start),
            _ => None,
        })
        .unwrap_or(0)
}

/// Translate an offset in the tera text back to the original file.
fn to_original(spans: &[Span], offset: usize) -> usize {
    let idx = spans
        .partition_point(|s| s.tera <= offset)
        .saturating_sub(1);
    match spans.get(idx) {
        Some(span) if span.verbatim => span.orig + (offset - span.tera),
        Some(span) => span.orig,
        None => 0,
    }
}

fn map_tera_error(
    source: &str,
    segments: &[Segment<'_>],
    text: &str,
    spans: &[Span],
    error: &tera::Error,
    failed: Option<FailedCall>,
) -> TemplateError {
    let mut chain = vec![error.to_string()];
    let mut cause = std::error::Error::source(error);
    while let Some(e) = cause {
        chain.push(e.to_string());
        cause = e.source();
    }
    let innermost = chain.last().cloned().unwrap_or_default();

    if chain[0].starts_with("Failed to parse") {
        // A pest error: ` --> L:C` and `= expected …`.
        let location = innermost.lines().find_map(|l| {
            let (line, col) = l.trim().strip_prefix("-->")?.trim().split_once(':')?;
            Some((line.parse::<usize>().ok()?, col.parse::<usize>().ok()?))
        });
        let detail = innermost
            .lines()
            .find_map(|l| l.trim().strip_prefix("= "))
            .unwrap_or_else(|| innermost.lines().next().unwrap_or(""))
            .to_string();
        let offset = location
            .and_then(|(line, col)| offset_of(text, line, col))
            .map_or_else(|| first_tera_offset(segments), |o| to_original(spans, o));
        let mut err = TemplateError::at(
            source,
            offset,
            format!("invalid tera syntax: {}", lowercase_first(&detail)),
        );
        if source.contains("{{.") || source.contains("{{ .") {
            err = err.hint("a `{{` meant literally (e.g. a docker --format template) must be wrapped in {% raw %}…{% endraw %}");
        }
        return err;
    }

    let message = lowercase_first(
        innermost
            .trim_end_matches('.')
            .replace(" while rendering '__tera_one_off'", "")
            .trim(),
    );
    let tera_segments = || {
        segments.iter().filter_map(|s| match s {
            Segment::Tera { start, text } => Some((*start, *text)),
            _ => None,
        })
    };
    let (offset, hint) = match failed {
        Some(call) => {
            let found = tera_segments().find(|(_, t)| {
                t.contains(&format!("{}(", call.function)) && t.contains(call.needle.as_str())
            });
            let offset = found.map_or_else(
                || first_tera_offset(segments),
                |(start, t)| start + t.find(call.needle.as_str()).unwrap_or(0),
            );
            (offset, call.hint)
        }
        None => {
            // `Variable `x` not found in context`: find the name in the tags.
            let name = innermost
                .split('`')
                .nth(1)
                .filter(|_| innermost.starts_with("Variable"));
            let offset = name
                .and_then(|n| tera_segments().find_map(|(start, t)| t.find(n).map(|p| start + p)))
                .unwrap_or_else(|| first_tera_offset(segments));
            let hint = name.map(|n| {
                format!(r#"templates have no variables; for the environment write {{{{ env(name="{n}") }}}}"#)
            });
            (offset, hint)
        }
    };
    let mut err = TemplateError::at(source, offset, message);
    err.hint = hint;
    err
}

/// Byte offset of a 1-based line and column (in characters).
fn offset_of(text: &str, line: usize, col: usize) -> Option<usize> {
    let mut start = 0;
    for _ in 1..line {
        start += text.get(start..)?.find('\n')? + 1;
    }
    let line_text = &text[start..];
    let within = line_text
        .char_indices()
        .nth(col.saturating_sub(1))
        .map_or(line_text.len(), |(i, _)| i);
    Some(start + within)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ctx(vars: &[(&str, &str)]) -> TemplateContext {
        let mut env: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.insert("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into());
        TemplateContext {
            env,
            cwd: std::env::temp_dir(),
        }
    }

    fn ok(source: &str, vars: &[(&str, &str)]) -> String {
        match render(source, &ctx(vars)) {
            Ok(out) => out,
            Err(e) => panic!("render failed: {e} (hint: {:?})", e.hint),
        }
    }

    fn err(source: &str, vars: &[(&str, &str)]) -> TemplateError {
        match render(source, &ctx(vars)) {
            Ok(out) => panic!("expected an error, rendered {out:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn text_without_template_syntax_is_returned_unchanged() {
        let yaml = "service: app\nimage: a/b\nenv: { clear: { A: 1 } }\n<% not a tag start? no\n";
        assert!(has_template_syntax(yaml));
        let plain = "service: app\nimage: a/b # 100% < 5 {x}\n";
        assert!(!has_template_syntax(plain));
        assert_eq!(ok(plain, &[]), plain);
    }

    #[test]
    fn erb_env_index_with_double_and_single_quotes() {
        assert_eq!(ok(r#"a: <%= ENV["X"] %>"#, &[("X", "1")]), "a: 1");
        assert_eq!(ok("a: <%= ENV['X'] %>", &[("X", "1")]), "a: 1");
    }

    #[test]
    fn erb_env_index_unset_is_empty_like_nil_to_s() {
        assert_eq!(ok(r#"a: "<%= ENV["NOPE"] %>""#, &[]), r#"a: """#);
    }

    #[test]
    fn erb_env_fetch_set_unset_and_default() {
        assert_eq!(ok(r#"<%= ENV.fetch("X") %>"#, &[("X", "v")]), "v");
        assert_eq!(ok(r#"<%= ENV.fetch('X', 'd') %>"#, &[]), "d");
        assert_eq!(ok(r#"<%= ENV.fetch( "X" , "d" ) %>"#, &[("X", "v")]), "v");
    }

    #[test]
    fn erb_env_fetch_without_default_names_the_variable() {
        let e = err("a: 1\nb: <%= ENV.fetch(\"DB_HOST\") %>\n", &[]);
        assert_eq!((e.line, e.column), (2, 4));
        assert!(e.message.contains("`DB_HOST` is not set"), "{}", e.message);
        assert!(e
            .hint
            .unwrap_or_default()
            .contains(r#"ENV.fetch("DB_HOST", "#));
    }

    #[test]
    fn erb_or_default_and_chains() {
        assert_eq!(ok(r#"<%= ENV["X"] || "d" %>"#, &[]), "d");
        assert_eq!(ok(r#"<%= ENV["X"] || "d" %>"#, &[("X", "v")]), "v");
        // an empty string is truthy in Ruby
        assert_eq!(ok(r#"<%= ENV["X"] || "d" %>"#, &[("X", "")]), "");
        assert_eq!(
            ok(r#"<%= ENV["A"] || ENV["B"] || 'c' %>"#, &[("B", "b")]),
            "b"
        );
        assert_eq!(ok(r#"<%= ENV["A"] || ENV["B"] %>"#, &[]), "");
    }

    #[test]
    fn erb_or_does_not_run_the_right_side_when_the_left_is_set() {
        let out = render_with_policy(
            r#"<%= ENV["X"] || `echo no` %>"#,
            &ctx(&[("X", "yes")]),
            CommandPolicy::Deny,
        );
        assert_eq!(out, Ok("yes".to_string()));
    }

    #[test]
    fn erb_backticks_keep_the_trailing_newline_like_ruby() {
        assert_eq!(ok("v: <%= `echo hi` %>", &[]), "v: hi\n");
        assert_eq!(ok("v: <%= %x(echo hi) %>", &[]), "v: hi\n");
        assert_eq!(ok("v: <%= %x{printf '%s' \"(a)\"} %>", &[]), "v: (a)");
        assert_eq!(ok("v: <%= %x(echo \"(nested)\") %>", &[]), "v: (nested)\n");
        assert_eq!(ok("v: <%= `echo hi`.strip %>", &[]), "v: hi");
        assert_eq!(ok("v: <%= `printf 'a\\n\\n'`.chomp %>", &[]), "v: a\n");
    }

    #[test]
    fn erb_backticks_see_the_context_environment_and_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("VERSION"), "1.2.3\n").expect("write");
        let mut c = ctx(&[("GREETING", "hello")]);
        c.cwd = dir.path().to_path_buf();
        let out = render("<%= `echo $GREETING` %><%= `cat VERSION`.strip %>", &c);
        assert_eq!(out, Ok("hello\n1.2.3".to_string()));
    }

    #[test]
    fn backtick_output_with_newline_still_parses_as_the_intended_yaml() {
        let source = "env:\n  clear:\n    COMMIT: <%= `echo abc123` %>\n    OTHER: x\n";
        let out = ok(source, &[]);
        assert_eq!(out, "env:\n  clear:\n    COMMIT: abc123\n\n    OTHER: x\n");
        let parsed: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>> =
            serde_saphyr::from_str(&out).expect("yaml");
        assert_eq!(parsed["env"]["clear"]["COMMIT"], "abc123");
        assert_eq!(parsed["env"]["clear"]["OTHER"], "x");
    }

    #[test]
    fn erb_failing_command_reports_status_and_stderr() {
        let e = err("a: <%= `echo oops >&2; exit 3` %>", &[]);
        assert_eq!((e.line, e.column), (1, 4));
        assert!(e.message.contains("exited with status 3"), "{}", e.message);
        assert!(e.message.contains("oops"), "{}", e.message);
        assert!(e.hint.unwrap_or_default().contains("|| true"));
    }

    #[test]
    fn denied_commands_never_run() {
        let c = ctx(&[]);
        for source in [
            "<%= `touch x` %>",
            "<%= %x(touch x) %>",
            "{{ cmd(command=\"touch x\") }}",
        ] {
            let e = render_with_policy(source, &c, CommandPolicy::Deny).expect_err(source);
            assert!(e.message.contains("disabled"), "{}", e.message);
        }
    }

    #[test]
    fn erb_docker_arch_is_amd64_or_arm64() {
        let out = ok("arch: <%= Kamal::Utils.docker_arch %>", &[]);
        let expected = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        assert_eq!(out, format!("arch: {expected}"));
    }

    #[test]
    fn unsupported_erb_inside_a_yaml_comment_renders_empty() {
        let source = "# ruby: <%= \"#{RUBY_ENGINE}\" %>\nservice: app\n";
        assert_eq!(ok(source, &[]), "# ruby: \nservice: app\n");
        let e = err("service: <%= \"#{RUBY_ENGINE}\" %>\n", &[]);
        assert!(e.message.contains("unsupported ERB"));
    }

    #[test]
    fn erb_comments_and_literal_delimiters() {
        assert_eq!(ok("a<%# anything ENV %>b", &[]), "ab");
        assert_eq!(ok("a <%% b %%> c", &[]), "a <% b %%> c");
        assert_eq!(ok(r#"<%= "x %%> y" %>"#, &[]), "x %> y");
        assert_eq!(ok("a<% # ruby comment %>b", &[]), "ab");
        assert_eq!(ok(r#"<%= "a\tb" %>|<%= 'a\nb' %>"#, &[]), "a\tb|a\\nb");
    }

    #[test]
    fn erb_trim_marks_follow_ruby_trim_mode_dash() {
        assert_eq!(ok("a: 1\n<%# note -%>\nb: 2\n", &[]), "a: 1\nb: 2\n");
        assert_eq!(ok("x: <%= \"1\" -%>\ny: 2\n", &[]), "x: 1y: 2\n");
        assert_eq!(ok("a\r\n<%# c -%>\r\nb", &[]), "a\r\nb");
        // `<%-` removes the indentation before it, only at the start of a line
        assert_eq!(ok("a:\n    <%- # c -%>\n  b: 1\n", &[]), "a:\n  b: 1\n");
        assert_eq!(ok("a: x  <%- # c %>y", &[]), "a: x  y");
        // `-%>` without a newline after it
        assert_eq!(ok("<%= 'a' -%>b", &[]), "ab");
    }

    #[test]
    fn unsupported_erb_is_an_error_with_position_and_tera_hint() {
        let e = err("a: 1\n  <% if ENV[\"X\"] %>\nb: 2\n<% end %>\n", &[]);
        assert_eq!((e.line, e.column), (2, 3));
        assert!(
            e.message.contains("unsupported ERB `<% if ENV[\"X\"] %>`"),
            "{}",
            e.message
        );
        assert!(e.hint.unwrap_or_default().contains("{% if env("));

        let e = err("n: <%= 1 + 2 %>", &[]);
        assert_eq!((e.line, e.column), (1, 4));
        assert_eq!(e.hint.as_deref(), Some("use tera: {{ 1 + 2 }}"));

        let e = err("h: <%= Kamal::Utils.something %>", &[]);
        assert!(e.hint.unwrap_or_default().contains("{{ env(name="));

        let e = err("h: <%= \"#{ENV['X']}-x\" %>", &[]);
        assert!(e.hint.unwrap_or_default().contains("interpolation"));

        let e = err("h: <%= `echo #{x}` %>", &[]);
        assert!(e.message.contains("unsupported ERB"));

        let e = err("l:\n<% [1,2].each do |i| %>\n", &[]);
        assert!(e.hint.unwrap_or_default().contains("{% for"));

        let e = err("<%-= ENV['X'] %>", &[]);
        assert!(e.hint.unwrap_or_default().contains("<%="));
    }

    #[test]
    fn unsupported_erb_column_counts_characters() {
        let e = err("é: <%= 1 + 2 %>", &[]);
        assert_eq!((e.line, e.column), (1, 4));
    }

    #[test]
    fn unterminated_erb_tag_is_an_error() {
        let e = err("a: 1\nb: <%= ENV['X']\n", &[]);
        assert_eq!((e.line, e.column), (2, 4));
        assert!(e.message.contains("unterminated ERB tag"));
    }

    #[test]
    fn nil_method_call_is_an_error() {
        let e = err("a: <%= ENV['X'].strip %>", &[]);
        assert!(
            e.message.contains("undefined method `strip` for nil"),
            "{}",
            e.message
        );
        assert_eq!(ok("a: <%= ENV['X'].to_s %>", &[]), "a: ");
    }

    #[test]
    fn tera_env_with_and_without_default() {
        assert_eq!(ok(r#"a: {{ env(name="X") }}"#, &[("X", "1")]), "a: 1");
        assert_eq!(ok(r#"a: {{ env(name="X", default="d") }}"#, &[]), "a: d");
        assert_eq!(ok(r#"a: {{ get_env(name="X") }}"#, &[("X", "1")]), "a: 1");
    }

    #[test]
    fn tera_env_missing_names_the_variable_and_its_location() {
        let e = err("a: 1\nb: {{ env(name=\"REGISTRY\") }}\n", &[]);
        assert_eq!(e.line, 2);
        assert_eq!(e.column, 17, "points at the name");
        assert!(e.message.contains("`REGISTRY` is not set"), "{}", e.message);
        assert!(e.hint.unwrap_or_default().contains("default="));
    }

    #[test]
    fn tera_cmd_chomps_and_reports_failures() {
        assert_eq!(
            ok(r#"v: {{ cmd(command="printf 'a\n\n'") }}!"#, &[]),
            "v: a!"
        );
        let e = err("x: 1\nv: {{ cmd(command=\"echo bad >&2; false\") }}", &[]);
        assert_eq!(e.line, 2);
        assert!(
            e.message.contains("exited with status 1: bad"),
            "{}",
            e.message
        );
    }

    #[test]
    fn tera_syntax_error_maps_to_the_original_line() {
        let e = err("a: <%= 'x' -%>\n\nb: 1\nc: {{ foo bar }}\n", &[]);
        assert_eq!(e.line, 4);
        assert!(
            e.message.starts_with("invalid tera syntax"),
            "{}",
            e.message
        );
    }

    #[test]
    fn tera_unknown_variable_is_located_and_hinted() {
        let e = err("a: 1\nb: {{ nope }}\n", &[]);
        assert_eq!((e.line, e.column), (2, 7));
        assert!(e.message.contains("`nope`"), "{}", e.message);
        assert!(e.hint.unwrap_or_default().contains("env(name=\"nope\")"));
    }

    #[test]
    fn go_template_braces_get_the_raw_hint() {
        let e = err(
            "aliases:\n  ps: app exec 'docker ps --format {{.Names}}'\n",
            &[],
        );
        assert_eq!(e.line, 2);
        assert!(e.hint.unwrap_or_default().contains("{% raw %}"));
        let out = ok("f: '{% raw %}{{.Names}}{% endraw %}'", &[]);
        assert_eq!(out, "f: '{{.Names}}'");
    }

    #[test]
    fn erb_and_tera_mix_and_values_are_not_reinterpreted() {
        let vars = [("A", "{{ boom }}"), ("B", "<%= ENV['A'] %>")];
        let out = ok("a: <%= ENV['A'] %>\nb: {{ env(name=\"B\") }}\n", &vars);
        assert_eq!(out, "a: {{ boom }}\nb: <%= ENV['A'] %>\n");
        // ERB only: values are not tera input either
        assert_eq!(ok("a: <%= ENV['A'] %>", &vars), "a: {{ boom }}");
    }

    #[test]
    fn erb_next_to_braces_does_not_form_tera_tags() {
        assert_eq!(ok("a: {<%= 'x' %>}\nb: {{ 1 }}", &[]), "a: {x}\nb: 1");
        assert_eq!(
            ok("a: {<%# c %>{ x }}\nb: {{ 1 }}", &[]),
            "a: {{ x }}\nb: 1"
        );
    }

    #[test]
    fn erb_inside_tera_raw_or_tags_is_left_to_tera() {
        assert_eq!(
            ok("{% raw %}<%= ENV['A'] %>{% endraw %}", &[("A", "x")]),
            "<%= ENV['A'] %>"
        );
        assert_eq!(ok(r#"{{ "<%= 1 %>" }}"#, &[]), "<%= 1 %>");
        assert_eq!(ok(r#"<%= "{{ x }}" %>"#, &[]), "{{ x }}");
    }

    #[test]
    fn tera_whitespace_control_and_blocks_work_with_erb() {
        let source = "{% if env(name=\"X\", default=\"\") == \"1\" -%}\na: <%= ENV['X'] %>\n{%- else -%}\na: none\n{%- endif %}\n";
        assert_eq!(ok(source, &[("X", "1")]), "a: 1\n");
        assert_eq!(ok(source, &[]), "a: none\n");
    }

    #[test]
    fn deeply_nested_tera_is_refused_or_rendered_never_overflowing() {
        let c = ctx(&[]);
        let deny = |s: &str| render_with_policy(s, &c, CommandPolicy::Deny);
        // the deepest expressions that fit in a tag render (or fail) without exhausting the stack
        let parens = format!("{{{{ {}1{} }}}}", "(".repeat(2040), ")".repeat(2040));
        assert_eq!(deny(&parens), Ok("1".to_string()));
        let sum = format!("{{{{ 1{} }}}}", "+1".repeat(2040));
        assert_eq!(deny(&sum), Ok("2041".to_string()));
        let nots = format!("{{{{ {}true }}}}", "not ".repeat(1000));
        assert!(deny(&nots).is_ok() || deny(&nots).is_err());
        let filters = format!("{{{{ \"a\"{} }}}}", "|upper".repeat(680));
        assert!(deny(&filters).is_ok() || deny(&filters).is_err());

        let too_long = format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000));
        let e = deny(&too_long).expect_err("too long");
        assert!(e.message.contains("longer than 4096"), "{}", e.message);

        let nested =
            |n: usize| format!("{}x{}", "{% if true %}".repeat(n), "{% endif %}".repeat(n));
        assert_eq!(deny(&nested(64)), Ok("x".to_string()));
        let e = deny(&nested(65)).expect_err("too deep");
        assert!(e.message.contains("nested more than 64"), "{}", e.message);
    }

    #[test]
    fn malformed_tera_tags_are_errors_not_panics() {
        for source in [
            "{%}",
            "a {%} b <%= 'x' %>",
            "{%%}",
            "{{}}",
            "{#",
            "{% raw %}",
            "{{ \"}}",
        ] {
            assert!(
                render_with_policy(source, &ctx(&[]), CommandPolicy::Deny).is_err(),
                "{source}"
            );
        }
    }

    #[test]
    fn tera_range_is_bounded() {
        assert_eq!(
            ok("{% for i in range(end=3) %}{{ i }}{% endfor %}", &[]),
            "012"
        );
        let e = err("{{ range(end=1000000000) | length }}", &[]);
        assert!(e.message.contains("more than 100000"), "{}", e.message);
    }

    fn mutate(base: &str, edits: &[(usize, u8, char)]) -> String {
        let mut chars: Vec<char> = base.chars().collect();
        for &(pos, op, c) in edits {
            if chars.is_empty() {
                chars.push(c);
                continue;
            }
            let i = pos % chars.len();
            match op % 3 {
                0 => chars.insert(i, c),
                1 => {
                    chars.remove(i);
                }
                _ => chars[i] = c,
            }
        }
        chars.into_iter().collect()
    }

    const VALID: &str = "service: app\nimage: <%= ENV.fetch(\"IMG\", \"a/b\") %>\n<%# c -%>\nenv:\n  clear:\n    A: {{ env(name=\"X\", default=\"d\") }}\n    B: <%= ENV['X'] || 'z' %>\n    C: <%= `git rev-parse HEAD`.strip %>\n{% if 1 == 1 %}d: {{ cmd(command=\"x\") }}{% endif %}\n    E: {% raw %}{{.Names}}{% endraw %}\n";

    proptest! {

        #[test]
        fn render_never_panics_on_random_text(s in "\\PC{0,200}") {
            let _ = render_with_policy(&s, &ctx(&[("X", "1")]), CommandPolicy::Deny);
        }

        #[test]
        fn render_never_panics_on_template_soup(
            parts in prop::collection::vec(prop::sample::select(vec![
                "<%", "<%=", "<%#", "<%-", "<%%", "%>", "-%>", "%%>", "{{", "}}", "{%", "%}", "{#", "#}",
                "raw", "endraw", "ENV", "[", "]", "\"", "'", "`", "X", "\n", " ", "(", ")", "%x",
                ".fetch", ",", "||", ".strip", "env(name=\"X\")", "cmd(command=\"a\")", "é", "{", "-",
                "if", "end", "\r\n", "Kamal::Utils.docker_arch", "#{",
            ]), 0..40)
        ) {
            let s: String = parts.concat();
            let _ = render_with_policy(&s, &ctx(&[("X", "1")]), CommandPolicy::Deny);
        }

        #[test]
        fn render_never_panics_on_mutated_valid_input(
            edits in prop::collection::vec((0usize..400, 0u8..3, prop::char::any()), 1..8)
        ) {
            let s = mutate(VALID, &edits);
            let _ = render_with_policy(&s, &ctx(&[("X", "1")]), CommandPolicy::Deny);
        }
    }
}

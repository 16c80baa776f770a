//! Pages the proxy answers itself: maintenance (503 with the `stop --message`), not found,
//! bad gateway, gateway timeout, and a service's own pages from `deploy --error-pages=<dir>`.
//!
//! As in kamal-proxy, a service's directory holds Go templates named `<status>.html` (every
//! `*.html` file is parsed at deploy; none, or one that does not parse, fails the deploy). The
//! maintenance page gets `{{ .Message }}`, the `stop --message`, HTML-escaped; the other pages
//! get no data (`.Message` is empty). A status without its own page gets the built-in one. The
//! subset of Go's template language understood: `{{ .Message }}`, `{{ . }}`,
//! `{{ if .Message }}…{{ else }}…{{ end }}`, `{{ with .Message }}…{{ end }}`, comments
//! `{{/* … */}}` and the `{{-`/`-}}` trim markers.

use std::collections::HashMap;
use std::path::Path;

use http::{header, Response, StatusCode};

use super::body::ProxyBody;

/// A small HTML page for `status`, showing `message` when not empty.
pub fn page(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let title = status.canonical_reason().unwrap_or("Error");
    let detail = if message.is_empty() {
        String::new()
    } else {
        format!("<p>{}</p>", escape(message))
    };
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body><h1>{} {title}</h1>{detail}</body></html>\n",
        status.as_u16()
    );
    html_response(status, html)
}

/// The error answer for `status`: the service's own page when it has one, else the built-in.
pub fn error_page(
    status: StatusCode,
    pages: Option<&ErrorPages>,
    message: Option<&str>,
) -> Response<ProxyBody> {
    match pages.and_then(|p| p.render(status.as_u16(), message)) {
        Some(html) => html_response(status, html),
        None => page(status, message.unwrap_or("")),
    }
}

fn html_response(status: StatusCode, html: String) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::text(html));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    resp
}

/// A service's error pages: `<name>.html` → its parsed template.
#[derive(Debug)]
pub struct ErrorPages {
    templates: HashMap<String, Vec<Node>>,
}

impl ErrorPages {
    /// Parse every `*.html` file of `dir`; an error when there is none or one does not parse.
    pub fn load(dir: &Path) -> Result<ErrorPages, String> {
        let fail =
            |why: String| format!("unable to load error pages from {}: {why}", dir.display());
        let entries = std::fs::read_dir(dir).map_err(|e| fail(e.to_string()))?;
        let mut templates = HashMap::new();
        for entry in entries {
            let entry = entry.map_err(|e| fail(e.to_string()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".html") || !entry.path().is_file() {
                continue;
            }
            let text =
                std::fs::read_to_string(entry.path()).map_err(|e| fail(format!("{name}: {e}")))?;
            let nodes = parse(&text).map_err(|e| fail(format!("{name}: {e}")))?;
            templates.insert(name, nodes);
        }
        if templates.is_empty() {
            return Err(fail("no *.html file".into()));
        }
        Ok(ErrorPages { templates })
    }

    /// The page for `status` with `message` (the maintenance message), if the directory has one.
    pub fn render(&self, status: u16, message: Option<&str>) -> Option<String> {
        let nodes = self.templates.get(&format!("{status}.html"))?;
        let mut out = String::new();
        let root = match message {
            Some(m) => Dot::Root(Some(m)),
            None => Dot::Root(None),
        };
        render(nodes, &root, &mut out);
        Some(out)
    }
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Text(String),
    Print(Expr),
    If(Expr, Vec<Node>, Vec<Node>),
    With(Expr, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expr {
    /// `.`
    Dot,
    /// `.Message`
    Message,
}

/// The data a template runs on: the root (with or without a message) or a string (`with`).
enum Dot<'a> {
    Root(Option<&'a str>),
    Str(&'a str),
}

impl<'a> Dot<'a> {
    fn eval(&self, e: Expr) -> Dot<'a> {
        match (e, self) {
            (Expr::Dot, Dot::Root(m)) => Dot::Root(*m),
            (Expr::Dot, Dot::Str(s)) => Dot::Str(s),
            (Expr::Message, Dot::Root(m)) => Dot::Str(m.unwrap_or("")),
            // A string has no fields: empty, as Go renders a missing value in HTML.
            (Expr::Message, Dot::Str(_)) => Dot::Str(""),
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Dot::Root(m) => m.is_some(),
            Dot::Str(s) => !s.is_empty(),
        }
    }

    fn text(&self) -> &str {
        match self {
            Dot::Root(_) => "",
            Dot::Str(s) => s,
        }
    }
}

fn render(nodes: &[Node], dot: &Dot<'_>, out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Print(e) => out.push_str(&escape(dot.eval(*e).text())),
            Node::If(e, then, other) => {
                let branch = if dot.eval(*e).truthy() { then } else { other };
                render(branch, dot, out);
            }
            Node::With(e, then, other) => {
                let v = dot.eval(*e);
                if v.truthy() {
                    render(then, &v, out);
                } else {
                    render(other, dot, out);
                }
            }
        }
    }
}

/// One `{{ … }}` action.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    Print(Expr),
    If(Expr),
    With(Expr),
    Else,
    End,
    Comment,
}

fn parse_action(inner: &str) -> Result<Action, String> {
    let a = inner.trim();
    if a.starts_with("/*") && a.ends_with("*/") {
        return Ok(Action::Comment);
    }
    let expr = |e: &str| match e.trim() {
        "." => Ok(Expr::Dot),
        ".Message" => Ok(Expr::Message),
        other => Err(format!("unsupported template expression {other:?}")),
    };
    if let Some(rest) = a.strip_prefix("if ") {
        return Ok(Action::If(expr(rest)?));
    }
    if let Some(rest) = a.strip_prefix("with ") {
        return Ok(Action::With(expr(rest)?));
    }
    match a {
        "else" => Ok(Action::Else),
        "end" => Ok(Action::End),
        other => Ok(Action::Print(expr(other)?)),
    }
}

/// Split the text into text and actions, applying the trim markers.
fn tokenize(src: &str) -> Result<Vec<Result<String, Action>>, String> {
    let mut out: Vec<Result<String, Action>> = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        let after = &rest[start + 2..];
        let (trim_left, after) = match after.strip_prefix("- ") {
            Some(a) => (true, a),
            None => (false, after),
        };
        if trim_left {
            text = text.trim_end();
        }
        if !text.is_empty() {
            out.push(Ok(text.to_string()));
        }
        let end = after
            .find("}}")
            .ok_or_else(|| "unclosed action".to_string())?;
        let mut inner = &after[..end];
        let mut next = &after[end + 2..];
        if let Some(i) = inner.strip_suffix(" -") {
            inner = i;
            next = next.trim_start();
        }
        out.push(Err(parse_action(inner)?));
        rest = next;
    }
    if !rest.is_empty() {
        out.push(Ok(rest.to_string()));
    }
    Ok(out)
}

fn parse(src: &str) -> Result<Vec<Node>, String> {
    let tokens = tokenize(src)?;
    let mut it = tokens.into_iter();
    let (nodes, closing) = parse_block(&mut it)?;
    match closing {
        None => Ok(nodes),
        Some(Action::Else) => Err("unexpected {{else}}".into()),
        Some(_) => Err("unexpected {{end}}".into()),
    }
}

/// Nodes up to an `else`/`end` (returned) or the end of input (`None`).
fn parse_block(
    it: &mut impl Iterator<Item = Result<String, Action>>,
) -> Result<(Vec<Node>, Option<Action>), String> {
    let mut nodes = Vec::new();
    while let Some(tok) = it.next() {
        match tok {
            Ok(text) => nodes.push(Node::Text(text)),
            Err(Action::Comment) => {}
            Err(Action::Print(e)) => nodes.push(Node::Print(e)),
            Err(a @ (Action::Else | Action::End)) => return Ok((nodes, Some(a))),
            Err(Action::If(e)) => nodes.push(parse_branches(it, e, Node::If)?),
            Err(Action::With(e)) => nodes.push(parse_branches(it, e, Node::With)?),
        }
    }
    Ok((nodes, None))
}

/// The two branches of an `if`/`with` whose action was just read.
fn parse_branches(
    it: &mut impl Iterator<Item = Result<String, Action>>,
    e: Expr,
    make: fn(Expr, Vec<Node>, Vec<Node>) -> Node,
) -> Result<Node, String> {
    let (then, closing) = parse_block(it)?;
    let other = match closing {
        Some(Action::End) => Vec::new(),
        Some(Action::Else) => match parse_block(it)? {
            (other, Some(Action::End)) => other,
            _ => return Err("missing {{end}}".into()),
        },
        _ => return Err("missing {{end}}".into()),
    };
    Ok(make(e, then, other))
}

/// HTML-escape text as Go's html/template does in text.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '+' => out.push_str("&#43;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_page_escapes_the_message() {
        assert_eq!(escape("<b>a&b</b>"), "&lt;b&gt;a&amp;b&lt;/b&gt;");
        let resp = page(StatusCode::SERVICE_UNAVAILABLE, "Back soon");
        assert_eq!(resp.status(), 503);
    }

    fn pages(files: &[(&str, &str)]) -> ErrorPages {
        let mut templates = HashMap::new();
        for (name, src) in files {
            templates.insert(name.to_string(), parse(src).expect("parses"));
        }
        ErrorPages { templates }
    }

    #[test]
    fn templates_show_the_message_or_the_else_branch() {
        let p = pages(&[
            (
                "503.html",
                "<p>{{ if .Message }}{{ .Message }}{{ else }}Down{{ end }}</p>",
            ),
            ("502.html", "<h1>Bad {{- .Message -}} </h1>"),
        ]);
        assert_eq!(
            p.render(503, Some("Back at <5>")).as_deref(),
            Some("<p>Back at &lt;5&gt;</p>")
        );
        assert_eq!(p.render(503, Some("")).as_deref(), Some("<p>Down</p>"));
        assert_eq!(p.render(503, None).as_deref(), Some("<p>Down</p>"));
        assert_eq!(p.render(502, None).as_deref(), Some("<h1>Bad</h1>"));
        assert_eq!(p.render(504, None), None);
    }

    #[test]
    fn with_comments_and_trim_markers() {
        let p = pages(&[(
            "503.html",
            "a {{- /* note */ -}} b {{ with .Message }}[{{ . }}]{{ else }}none{{ end }}",
        )]);
        assert_eq!(p.render(503, Some("m")).as_deref(), Some("ab [m]"));
        assert_eq!(p.render(503, None).as_deref(), Some("ab none"));
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in [
            "{{ if .Message }}x",
            "{{ end }}",
            "{{ .Other }}",
            "{{ .Message",
            "{{ printf \"%s\" .Message }}",
        ] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn a_directory_without_pages_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = ErrorPages::load(dir.path()).expect_err("empty dir");
        assert!(err.contains("no *.html"), "{err}");
        std::fs::write(dir.path().join("503.html"), "<p>{{ .Message }}</p>").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "{{ bad").expect("write");
        let p = ErrorPages::load(dir.path()).expect("loads");
        assert_eq!(p.render(503, Some("x")).as_deref(), Some("<p>x</p>"));
        std::fs::write(dir.path().join("502.html"), "{{ if }}").expect("write");
        assert!(ErrorPages::load(dir.path()).is_err());
    }
}

//! Scanning: one pass over the original text splits it into plain text, ERB tags (with their
//! trim marks applied) and tera tags, comments and raw blocks, kept verbatim for tera.

use super::error::TemplateError;

/// A piece of the file: plain text, an ERB tag or a tera tag.
#[derive(Debug)]
pub(super) enum Segment<'a> {
    /// Plain text, copied as is.
    Text { start: usize, text: &'a str },
    /// An ERB tag.
    Erb(ErbTag),
    /// A tera tag, comment or raw block, verbatim.
    Tera { start: usize, text: &'a str },
}

/// The kind of an ERB tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TagKind {
    /// `<%= … %>`
    Output,
    /// `<%# … %>`
    Comment,
    /// `<% … %>` and `<%- … %>`
    Code,
}

/// One ERB tag, as found by [`scan`].
#[derive(Debug)]
pub(super) struct ErbTag {
    /// Offset of `<%`.
    pub(super) start: usize,
    /// Offset just after `%>`.
    pub(super) end: usize,
    pub(super) kind: TagKind,
    /// Offset of the code (just after `<%`, `<%=`, `<%#` or `<%-`).
    pub(super) code_start: usize,
    /// The Ruby between the delimiters, `%%>` already turned into `%>`.
    pub(super) code: String,
}

/// Split `source` into plain text, ERB tags and tera tags, in one pass (ERB is not recognised
/// inside a tera tag or `{% raw %}` block, and `{{` inside an ERB tag is not tera).
pub(super) fn scan(source: &str) -> Result<Vec<Segment<'_>>, TemplateError> {
    scan_with(source, true)
}

/// [`scan`], with tera tags recognised or (`tera` false: ERB alone, as Ruby's `ERB.new` reads a
/// file) kept as plain text.
pub(super) fn scan_with(source: &str, tera: bool) -> Result<Vec<Segment<'_>>, TemplateError> {
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
                    code_start,
                    code,
                }));
                i = next;
                text_start = next;
            }
            (b'{', b'{' | b'%' | b'#') if tera => {
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
pub(super) fn is_tag_named(inner: &str, name: &str) -> bool {
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

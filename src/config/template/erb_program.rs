//! Compiling a file's ERB tags into a [`Program`]: text, output tags, statements, and the
//! `if`/`unless`/`each` blocks that span tags, matched here; and the errors of tags, Ruby
//! outside the subset (with the tera form to write instead) and blocks that do not match.

use super::erb_ast::{Expr, ParseError, Stmt};
use super::erb_parser::{parse_code, parse_output};
use super::error::TemplateError;
use super::scan::{ErbTag, Segment, TagKind};

/// How deep blocks may nest.
const MAX_BLOCK_DEPTH: usize = 32;

/// One thing a program does, in order.
#[derive(Debug)]
pub(super) enum Item {
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
pub(super) struct Branch {
    pub(super) cond: Expr,
    pub(super) negated: bool,
    pub(super) tag: usize,
    pub(super) body: Vec<Item>,
}

/// A file's ERB, compiled.
#[derive(Debug)]
pub(super) struct Program {
    pub(super) items: Vec<Item>,
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

pub(super) fn erb_tags<'a>(segments: &'a [Segment<'a>]) -> impl Iterator<Item = &'a ErbTag> {
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

/// At `elsif`/`else`: end the open `if`'s current branch with the items compiled so far, and
/// give back its (now empty) current branch for the next one; `None` outside an `if` or after
/// its `else`.
fn close_branch(stack: &mut [Frame]) -> Option<&mut Option<(Expr, bool, usize)>> {
    let Some(Frame {
        open: Open::If { done, current },
        items,
        ..
    }) = stack.last_mut()
    else {
        return None;
    };
    let (cond, negated, tag) = current.take()?;
    done.push(Branch {
        cond,
        negated,
        tag,
        body: std::mem::take(items),
    });
    Some(current)
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
    let mut comments = CommentLines::default();
    for (i, segment) in segments.iter().enumerate() {
        let Segment::Erb(tag) = segment else {
            push(&mut stack, Item::Segment(i));
            continue;
        };
        let t = tag_index;
        tag_index += 1;
        let commented = comments.is_comment(source, tag.start);
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
            let current = close_branch(stack).ok_or_else(|| misplaced(at, "elsif"))?;
            *current = Some((cond, false, t));
        }
        Stmt::Else { at } => {
            close_branch(stack).ok_or_else(|| misplaced(at, "else"))?;
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

/// Where an error at offset `at` of the tag's code is reported: the tag itself when it is on
/// the tag's first line, else the start of its line.
pub(super) fn error_offset(tag: &ErbTag, at: usize) -> usize {
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
pub(super) fn snippet(source: &str, tag: &ErbTag, at: usize) -> String {
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

/// Whether offsets, asked in increasing order, are on a line that is a YAML comment before
/// them; each line is looked at once (a megabyte-long line of tags stays linear).
#[derive(Default)]
struct CommentLines {
    /// Where the last offset asked was.
    scanned: usize,
    /// The start of its line, and whether that line is a comment before the offset.
    line: Option<(usize, bool)>,
}

impl CommentLines {
    fn is_comment(&mut self, source: &str, offset: usize) -> bool {
        let from = self.scanned.min(offset);
        let line_start = match source[from..offset].rfind('\n') {
            Some(p) => from + p + 1,
            None if self.line.is_some() => self.line.map_or(0, |(start, _)| start),
            None => 0,
        };
        self.scanned = offset;
        match self.line {
            Some((start, comment)) if start == line_start => comment,
            _ => {
                let comment = source[line_start..offset].trim_start().starts_with('#');
                self.line = Some((line_start, comment));
                comment
            }
        }
    }
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

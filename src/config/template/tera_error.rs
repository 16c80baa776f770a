//! Tera errors mapped back to the original file: [`Span`]s record where each piece of the text
//! given to tera came from, [`FailedCall`] which `env()`/`cmd()` call failed, and
//! [`map_tera_error`] turns tera's message into a [`TemplateError`] at the right line and column.

use super::error::{lowercase_first, TemplateError};
use super::scan::Segment;

/// Where a piece of the text given to tera came from.
pub(super) struct Span {
    /// Offset in the tera text.
    pub(super) tera: usize,
    /// Offset in the original file.
    pub(super) orig: usize,
    /// Copied verbatim (offsets inside map one to one) or generated (all map to `orig`).
    pub(super) verbatim: bool,
}

/// What the tera functions report about the call that failed, to find it in the file.
#[derive(Debug, Clone, Default)]
pub(super) struct FailedCall {
    pub(super) function: &'static str,
    pub(super) needle: String,
    pub(super) hint: Option<String>,
}

/// The offset of the first tera tag, where an error without a better position points.
pub(super) fn first_tera_offset(segments: &[Segment<'_>]) -> usize {
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

/// A tera error as a [`TemplateError`] at the line and column of the original file, with a hint
/// for the usual mistakes.
pub(super) fn map_tera_error(
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

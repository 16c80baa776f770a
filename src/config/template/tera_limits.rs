//! Limits that keep tera's recursion from exhausting the stack (an abort, not an error): the
//! longest tag, the deepest block nesting, the largest `range()`, and the stack tera runs on.

use std::collections::HashMap;

use super::error::TemplateError;
use super::scan::{is_tag_named, Segment};

/// Longest tera tag accepted: tera parses and evaluates expressions recursively, so an
/// unbounded tag could exhaust the stack (an abort, not an error).
pub(super) const MAX_TAG_LEN: usize = 4096;
/// Deepest nesting of tera blocks (`if`, `for`, …) accepted, for the same reason.
pub(super) const MAX_BLOCK_DEPTH: usize = 64;
/// Most elements `range()` may produce.
pub(super) const MAX_RANGE_LEN: i64 = 100_000;
/// Stack of the thread tera runs on; with the limits above it cannot overflow.
pub(super) const TERA_STACK: usize = 32 << 20;

/// Refuse tera input deep enough to exhaust tera's recursion.
pub(super) fn check_tera_limits(
    source: &str,
    segments: &[Segment<'_>],
) -> Result<(), TemplateError> {
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
pub(super) fn bounded_range(args: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
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

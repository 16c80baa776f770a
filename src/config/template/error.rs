//! [`TemplateError`]: a template that could not be rendered, at a line and column of the
//! original file, with a hint; and the wording helper its messages share.

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
    pub(super) fn at(source: &str, offset: usize, message: impl Into<String>) -> TemplateError {
        let (line, column) = line_col(source, offset);
        TemplateError {
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    pub(super) fn hint(mut self, hint: impl Into<String>) -> TemplateError {
        self.hint = Some(hint.into());
        self
    }
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

/// `s` with its first character lowercased (error messages from std and tera start uppercase).
pub(crate) fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// An I/O error without Rust's ` (os error 2)` suffix, lowercase.
pub(crate) fn io_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(p) => &text[..p],
        None => &text,
    };
    lowercase_first(text)
}

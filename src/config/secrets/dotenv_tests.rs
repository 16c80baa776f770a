//! Tests of the dotenv syntax: keys, separators, quotes, comments, line endings and invalid
//! lines, and that no input panics.

use proptest::prelude::*;

use super::test_support::{one, pairs, parse, parse_err, parse_with};
use crate::config::template::CommandPolicy;

#[test]
fn unquoted_values_are_trimmed_and_end_at_a_comment() {
    assert_eq!(one("FOO=bar"), "bar");
    assert_eq!(one("FOO =  bar  "), "bar");
    assert_eq!(one("  FOO=bar # comment"), "bar");
    assert_eq!(one("FOO=abc#def"), "abc");
    assert_eq!(one("FOO=a b c"), "a b c");
    assert_eq!(one("FOO=bar\\ baz"), "bar baz");
    assert_eq!(one("FOO=a\\nb"), "anb");
    assert_eq!(one("FOO=\\\\x"), "\\x");
    assert_eq!(one("FOO=a'b"), "a'b");
}

#[test]
fn separators_export_and_empty_values() {
    assert_eq!(
        parse("export A=1\nB: 2\nC=\nD\n"),
        pairs(&[("A", "1"), ("B", "2"), ("C", ""), ("D", "")])
    );
    assert_eq!(parse("export=1"), pairs(&[("export", "1")]));
    assert_eq!(parse("A.B_1=x"), pairs(&[("A.B_1", "x")]));
    assert_eq!(parse("A=2\nexport A"), pairs(&[("A", "2")]));
    let (line, message) = parse_err("A=2\nexport NOT_SET");
    assert_eq!(line, 2);
    assert!(
        message.contains("`export NOT_SET` has no value"),
        "{message}"
    );
}

#[test]
fn single_quotes_are_literal() {
    assert_eq!(
        one("FOO='bar $HOME $(echo x) \\n'"),
        "bar $HOME $(echo x) \\n"
    );
    assert_eq!(one("FOO= 'x'  # c"), "x");
    assert_eq!(one("FOO='a\\'b'"), "a\\'b");
    assert_eq!(one("FOO='ba#r'"), "ba#r");
}

#[test]
fn double_quotes_unescape_and_keep_backslash_n_like_dotenv_3() {
    assert_eq!(one(r#"FOO="a\"b""#), "a\"b");
    assert_eq!(one(r#"FOO="a\\x""#), "a\\x");
    assert_eq!(one(r#"FOO="a\nb""#), "a\\nb");
    assert_eq!(one(r#"FOO="a\tb""#), "atb");
    assert_eq!(one(r#"FOO="ba#r" # c"#), "ba#r");
    assert_eq!(one(r#"FOO="""#), "");
    assert_eq!(one(r#"FOO="bar\$ \$\$""#), "bar$ $$");
    assert_eq!(one(r#"FOO="bar $ ""#), "bar $ ");
}

#[test]
fn legacy_linebreak_mode_expands_backslash_n() {
    let values = parse("DOTENV_LINEBREAK_MODE=legacy\nFOO=\"a\\nb\\rc\"");
    assert_eq!(values[1].1, "a\nb\rc");
}

#[test]
fn quoted_values_may_span_lines() {
    let text = "A=first\nexport B=\"line 1\nline 2\" # c\nC='x\n\ny'\nD=last";
    assert_eq!(
        parse(text),
        pairs(&[
            ("A", "first"),
            ("B", "line 1\nline 2"),
            ("C", "x\n\ny"),
            ("D", "last")
        ])
    );
    // line numbers keep counting across multi-line values
    let (line, _) = parse_err("B=\"1\n2\n3\"\nnot valid\n");
    assert_eq!(line, 4);
}

#[test]
fn quotes_followed_by_text_are_an_unquoted_value_like_dotenv() {
    assert_eq!(one(r#"FOO="x" trailing"#), "\"x\" trailing");
    assert_eq!(one(r#"FOO="unterminated"#), "\"unterminated");
    assert_eq!(one("FOO='a' 'b'"), "a' 'b");
}

#[test]
fn comments_blank_lines_and_crlf() {
    let text = "# header\r\n\r\n  # indented comment\r\nA=1\r\n\t\r\nB=2 # tail\rC=3";
    assert_eq!(parse(text), pairs(&[("A", "1"), ("B", "2"), ("C", "3")]));
}

#[test]
fn redefinition_overwrites_in_place() {
    assert_eq!(
        parse("A=1\nB=2\nA=3\nC=$A"),
        pairs(&[("A", "3"), ("B", "2"), ("C", "3")])
    );
}

#[test]
fn invalid_lines_are_errors_with_their_line() {
    for (text, line) in [
        ("A=1\nlol$wut", 2),
        ("FOO bar", 1),
        ("A=1\n\nFOO.BAR-BAZ=x", 3),
        ("=x", 1),
        ("FOO : x", 1),
    ] {
        let (got, message) = parse_err(text);
        assert_eq!(got, line, "{text}");
        assert!(message.starts_with("invalid line"), "{message}");
    }
}

const VALID: &str = "# c\nexport A=1\nB: 'two'\nC=\"x $A ${B}\n y\" # t\nD=$(echo hi)\nE=\\$(lit)\nF=$(echo $(echo n))\nG\n";

proptest! {

    #[test]
    fn parse_never_panics_on_random_text(s in "\\PC{0,200}") {
        let _ = parse_with(&s, &[("A", "1")], CommandPolicy::Deny);
    }

    #[test]
    fn parse_never_panics_on_dotenv_soup(
        parts in prop::collection::vec(prop::sample::select(vec![
            "A", "B_1", ".", "=", ": ", "export ", "'", "\"", "\\", "$", "(", ")", "{", "}",
            "#", " ", "\t", "\n", "\r\n", "\r", "x", "é", "$(", "\\$(", "${A}",
        ]), 0..40)
    ) {
        let _ = parse_with(&parts.concat(), &[("A", "1")], CommandPolicy::Deny);
    }

    #[test]
    fn parse_never_panics_on_mutated_valid_input(
        edits in prop::collection::vec((0usize..200, 0u8..3, prop::char::any()), 1..8)
    ) {
        let mut chars: Vec<char> = VALID.chars().collect();
        for (pos, op, c) in edits {
            if chars.is_empty() {
                chars.push(c);
                continue;
            }
            let i = pos % chars.len();
            match op {
                0 => chars.insert(i, c),
                1 => { chars.remove(i); }
                _ => chars[i] = c,
            }
        }
        let s: String = chars.into_iter().collect();
        let _ = parse_with(&s, &[("A", "1")], CommandPolicy::Deny);
    }
}

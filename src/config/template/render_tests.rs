//! Tests of the whole of [`render`](super::render): text without template syntax is returned
//! unchanged, commands are denied in every syntax, and no input panics.

use proptest::prelude::*;

use super::test_support::{ctx, ok};
use super::{has_template_syntax, render_with_policy, CommandPolicy};

#[test]
fn text_without_template_syntax_is_returned_unchanged() {
    let yaml = "service: app\nimage: a/b\nenv: { clear: { A: 1 } }\n<% not a tag start? no\n";
    assert!(has_template_syntax(yaml));
    let plain = "service: app\nimage: a/b # 100% < 5 {x}\n";
    assert!(!has_template_syntax(plain));
    assert_eq!(ok(plain, &[]), plain);
}

#[test]
fn erb_alone_leaves_tera_syntax_as_text() {
    let c = ctx(&[("GREETING", "hi")]);
    let out = super::render_erb(
        "{{ not tera }} {% nor this %} <%= ENV[\"GREETING\"] %>{# kept #}\n",
        &c,
    )
    .expect("renders");
    assert_eq!(out, "{{ not tera }} {% nor this %} hi{# kept #}\n");
    assert!(super::render_erb("<%= ENV.fetch(\"MISSING\") %>", &c).is_err());
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
            "<% x = ", "x", "else", "elsif", "unless", ".each do |v|", "v", "?", ":", "==", "!=",
            "&&", "!", "}", ".split(\",\")", ".present?", "nil", "&.", "%w[a b]", "Dotenv.load",
            "File.exist?(\"x\")", "for v in", "+", "{ \"d\" }", ";", "1",
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

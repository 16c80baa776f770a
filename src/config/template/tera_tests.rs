//! Tests of tera templates, through [`render`](super::render): functions, errors mapped to the
//! original file, ERB and tera in one file, and the limits.

use super::test_support::{ctx, err, ok};
use super::{render_with_policy, CommandPolicy};

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

    let nested = |n: usize| format!("{}x{}", "{% if true %}".repeat(n), "{% endif %}".repeat(n));
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

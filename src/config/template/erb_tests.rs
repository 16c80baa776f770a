//! Tests of the ERB subset, through [`render`]: values, defaults, commands, trim marks, and
//! errors with their positions and hints.

use std::collections::BTreeMap;

use super::test_support::{ctx, err, ok};
use super::{render, render_with_policy, CommandPolicy};

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
fn unsupported_erb_inside_a_yaml_comment_renders_empty() {
    let source = "# ruby: <%= \"#{RUBY_ENGINE}\" %>\nservice: app\n";
    assert_eq!(ok(source, &[]), "# ruby: \nservice: app\n");
    let e = err("service: <%= \"#{RUBY_ENGINE}\" %>\n", &[]);
    assert!(e.message.contains("RUBY_ENGINE"), "{}", e.message);
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
    let e = err("a: 1\n  <% while ENV[\"X\"] %>\nb: 2\n<% end %>\n", &[]);
    assert_eq!((e.line, e.column), (2, 3));
    assert!(
        e.message
            .contains("unsupported ERB `<% while ENV[\"X\"] %>`"),
        "{}",
        e.message
    );
    assert!(e.hint.unwrap_or_default().contains("{% for"));

    let e = err("n: <%= 2 * 3 %>", &[]);
    assert_eq!((e.line, e.column), (1, 4));
    assert_eq!(e.hint.as_deref(), Some("use tera: {{ 2 * 3 }}"));

    let e = err("h: <%= Kamal::Utils.something %>", &[]);
    assert!(e.hint.unwrap_or_default().contains("{{ env(name="));
    let e = err("h: <%= RUBY_ENGINE %>", &[]);
    assert!(
        e.message.contains("unsupported constant `RUBY_ENGINE`"),
        "{}",
        e.message
    );
    let e = err("h: <%= ENV['X'].gsub(/a/, 'b') %>", &[]);
    assert!(e.message.contains("unsupported ERB"), "{}", e.message);
    let e = err("h: <%= ENV['X'].frobnicate %>", &[]);
    assert!(
        e.message.contains("unsupported method `frobnicate`"),
        "{}",
        e.message
    );

    let e = err("l:\n<% 3.times do |i| %>\n", &[]);
    assert!(e.hint.unwrap_or_default().contains("{% for"));

    let e = err("<%-= ENV['X'] %>", &[]);
    assert!(e.hint.unwrap_or_default().contains("<%="));
}

#[test]
fn unsupported_erb_column_counts_characters() {
    let e = err("é: <%= 2 * 3 %>", &[]);
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

//! Tests of the Ruby the ERB subset evaluates, through [`render`]: operators, methods, local
//! variables, blocks, files, `Dotenv.load` and `Kamal::Utils.docker_arch`, each as Ruby would.

use super::test_support::{ctx, err, ok};
use super::{render, render_file, render_with_policy, CommandPolicy, TemplateContext};

#[test]
fn comparisons_and_the_ternary() {
    let src = r#"<%= ENV["X"] == "a" ? "yes" : "no" %>"#;
    assert_eq!(ok(src, &[("X", "a")]), "yes");
    assert_eq!(ok(src, &[("X", "b")]), "no");
    assert_eq!(ok(src, &[]), "no");
    assert_eq!(ok(r#"<%= ENV["X"] != "a" %>"#, &[("X", "b")]), "true");
    assert_eq!(ok(r#"<%= ENV["X"] == nil %>"#, &[]), "true");
    // Ruby: 1 == "1" is false
    assert_eq!(ok(r#"<%= 1 == "1" %>"#, &[]), "false");
    assert_eq!(
        ok(
            r#"<%= ENV["A"] == "1" ? ENV["B"] == "2" ? "ab" : "a" : "none" %>"#,
            &[("A", "1"), ("B", "2")]
        ),
        "ab"
    );
}

#[test]
fn and_or_not_and_parentheses_follow_ruby_precedence() {
    let vars = &[("A", "1"), ("E", "")];
    assert_eq!(ok(r#"<%= ENV["A"] && ENV["B"] %>"#, vars), "");
    assert_eq!(ok(r#"<%= ENV["A"] && "b" %>"#, vars), "b");
    assert_eq!(ok(r#"<%= !ENV["B"] %>"#, vars), "true");
    assert_eq!(ok(r#"<%= !ENV["E"] %>"#, vars), "false");
    assert_eq!(ok(r#"<%= !(ENV["A"] == "1") %>"#, vars), "false");
    assert_eq!(ok(r#"<%= (ENV["B"] || "x") + "-y" %>"#, vars), "x-y");
    assert_eq!(ok(r#"<%= ENV["B"] || ENV["A"] && "z" %>"#, vars), "z");
    assert_eq!(ok(r#"<%= false || nil %>"#, vars), "");
    assert_eq!(
        ok(r#"<%= ENV["B"] || ENV["A"] == "1" ? "t" : "f" %>"#, vars),
        "t"
    );
}

#[test]
fn env_fetch_forms() {
    assert_eq!(
        ok(r#"<%= ENV.fetch("A", ENV.fetch("B", "c")) %>"#, &[]),
        "c"
    );
    assert_eq!(
        ok(
            r#"<%= ENV.fetch("A", ENV.fetch("B", "c")) %>"#,
            &[("B", "b")]
        ),
        "b"
    );
    assert_eq!(ok(r#"<%= ENV.fetch("A") { "d" } %>"#, &[]), "d");
    assert_eq!(
        ok(r#"<%= ENV.fetch("A") { |k| "d" } %>"#, &[("A", "a")]),
        "a"
    );
    assert_eq!(ok(r#"<%= ENV.fetch("A", nil).nil? %>"#, &[]), "true");
    assert_eq!(ok(r#"<%= ENV.key?("A") %>"#, &[("A", "")]), "true");
    let e = err("x: 1\ny: <%= ENV.fetch(\"A\", ENV.fetch(\"B\")) %>", &[]);
    assert_eq!((e.line, e.column), (2, 4));
    assert!(e.message.contains("`B` is not set"), "{}", e.message);
    assert!(
        e.message
            .contains("in `<%= ENV.fetch(\"A\", ENV.fetch(\"B\")) %>`"),
        "{}",
        e.message
    );
}

#[test]
fn string_methods_as_ruby_and_active_support() {
    let vars = &[("V", "  v1.2.3\n"), ("E", " "), ("L", "a,b,,c,,")];
    assert_eq!(
        ok(r#"<%= ENV["V"].strip.delete_prefix("v") %>"#, vars),
        "1.2.3"
    );
    assert_eq!(
        ok(r#"<%= ENV["V"].strip.delete_suffix(".3") %>"#, vars),
        "v1.2"
    );
    assert_eq!(ok(r#"<%= ENV["V"].chomp %>|"#, vars), "  v1.2.3|");
    assert_eq!(
        ok(r#"<%= ENV["E"].present? %> <%= ENV["E"].blank? %>"#, vars),
        "false true"
    );
    assert_eq!(
        ok(
            r#"<%= ENV["NONE"].blank? %> <%= ENV["NONE"].present? %>"#,
            vars
        ),
        "true false"
    );
    assert_eq!(ok(r#"<%= ENV["E"].presence || "d" %>"#, vars), "d");
    assert_eq!(ok(r#"<%= ENV["V"].presence || "d" %>"#, vars), "  v1.2.3\n");
    assert_eq!(
        ok(r#"<%= ENV["E"].empty? %> <%= "".empty? %>"#, vars),
        "false true"
    );
    assert_eq!(
        ok(r#"<%= "Ab".upcase %><%= "Ab".downcase %>"#, vars),
        "ABab"
    );
    assert_eq!(
        ok(r#"<%= " 42abc".to_i + 1 %> <%= "x".to_i %>"#, vars),
        "43 0"
    );
    assert_eq!(
        ok(r#"<%= ENV["L"].split(",") %>"#, vars),
        r#"["a", "b", "", "c"]"#
    );
    assert_eq!(ok(r#"<%= " a  b ".split %>"#, vars), r#"["a", "b"]"#);
    assert_eq!(
        ok(r#"<%= "a, b".split(",").map(&:strip).join("|") %>"#, vars),
        "a|b"
    );
    assert_eq!(
        ok(
            r#"<%= "a,b".split(",").first %>-<%= "a,b".split(",").last %>"#,
            vars
        ),
        "a-b"
    );
    assert_eq!(
        ok(
            r#"<%= "x-y".start_with?("x") %> <%= "x-y".include?("z") %>"#,
            vars
        ),
        "true false"
    );
    assert_eq!(
        ok(
            r#"<%= ENV["NONE"]&.strip %>|<%= ENV["NONE"].to_s.strip %>"#,
            vars
        ),
        "|"
    );
    assert_eq!(
        ok(
            r#"<%= %w[a b].join(",") %> <%= ["a", 1, nil].to_s %>"#,
            vars
        ),
        r#"a,b ["a", 1, nil]"#
    );
    assert_eq!(
        ok(
            r#"<%= "a.b".tr(".", "-") %> <%= "a.b.c".sub(".", "") %>"#,
            vars
        ),
        "a-b ab.c"
    );
}

#[test]
fn string_interpolation_and_concatenation() {
    let vars = &[("X", "web"), ("N", "2")];
    assert_eq!(ok(r##"<%= "#{ENV['X']}-suffix" %>"##, vars), "web-suffix");
    assert_eq!(
        ok(
            r##"<%= "#{ENV["X"]}-#{ENV.fetch("N", "1").to_i + 1}" %>"##,
            vars
        ),
        "web-3"
    );
    assert_eq!(ok(r#"<%= "a\#{b}" %>"#, vars), "a#{b}");
    assert_eq!(ok(r#"<%= 'no #{ENV["X"]}' %>"#, vars), r#"no #{ENV["X"]}"#);
    assert_eq!(ok(r#"<%= "app-" + ENV["X"] %>"#, vars), "app-web");
    assert_eq!(ok("<%= `echo #{ENV['X']}`.strip %>", vars), "web");
    let e = err(r#"<%= "a" + ENV["NONE"] %>"#, vars);
    assert!(
        e.message
            .contains("no implicit conversion of nil into String"),
        "{}",
        e.message
    );
}

#[test]
fn local_variables_set_in_code_tags() {
    let src = "<% host = ENV.fetch(\"HOST\", \"x.example\") %>\nproxy:\n  host: <%= host %>\n";
    assert_eq!(ok(src, &[]), "\nproxy:\n  host: x.example\n");
    assert_eq!(ok(src, &[("HOST", "h")]), "\nproxy:\n  host: h\n");
    let src = "<%-\n  # where the app runs\n  host = ENV.fetch(\"HOST\", \"x\")\n  port = 8080\n  url = \"#{host}:#{port}\"\n-%>\nurl: <%= url %>\n";
    assert_eq!(ok(src, &[]), "url: x:8080\n");
    assert_eq!(ok("<% a = nil; a ||= 'd' %><%= a %>", &[]), "d");
    let e = err("a: 1\nb: <%= hots %>\n", &[]);
    assert_eq!((e.line, e.column), (2, 4));
    assert!(
        e.message
            .contains("undefined local variable or method `hots`"),
        "{}",
        e.message
    );
}

#[test]
fn if_elsif_else_and_unless_blocks() {
    let src = "<% if ENV[\"ENV\"] == \"prod\" -%>\nhost: prod\n<% elsif ENV[\"ENV\"] == \"stage\" -%>\nhost: stage\n<% else -%>\nhost: dev\n<% end -%>\nx: 1\n";
    assert_eq!(ok(src, &[("ENV", "prod")]), "host: prod\nx: 1\n");
    assert_eq!(ok(src, &[("ENV", "stage")]), "host: stage\nx: 1\n");
    assert_eq!(ok(src, &[]), "host: dev\nx: 1\n");
    let src = "<%- unless ENV[\"NO_PROXY\"].present? -%>\nproxy:\n  ssl: true\n<%- end -%>\n";
    assert_eq!(ok(src, &[]), "proxy:\n  ssl: true\n");
    assert_eq!(ok(src, &[("NO_PROXY", "1")]), "");
    // blocks nest, and a block may open and close in one tag
    let src = "<% if true %><% if ENV['A'] %>a<% else %>b<% end %><% end %>|<% if false; x = 1; else; x = 2; end %><%= x %>";
    assert_eq!(ok(src, &[]), "b|2");
    // the branch not taken is not evaluated
    assert_eq!(
        ok("<% if false %><%= ENV.fetch('NOPE') %><% end %>ok", &[]),
        "ok"
    );
}

#[test]
fn block_errors_name_the_tag() {
    let e = err("a: 1\n<% if ENV['A'] %>\nb: 2\n", &[]);
    assert_eq!((e.line, e.column), (2, 1));
    assert!(e.message.contains("is never closed"), "{}", e.message);
    let e = err("a: 1\n<% end %>\n", &[]);
    assert_eq!(e.line, 2);
    assert!(
        e.message.contains("`end` without an open block"),
        "{}",
        e.message
    );
    let e = err("<% else %>", &[]);
    assert!(
        e.message.contains("`else` without an open `if`"),
        "{}",
        e.message
    );
    let e = err("<% if true %><% else %><% else %><% end %>", &[]);
    assert!(e.message.contains("`else` without"), "{}", e.message);
}

#[test]
fn each_loops_over_arrays_and_splits() {
    let src = "servers:\n<% ENV.fetch(\"HOSTS\", \"a,b\").split(\",\").each do |host| -%>\n  - <%= host.strip %>\n<% end -%>\n";
    assert_eq!(ok(src, &[]), "servers:\n  - a\n  - b\n");
    assert_eq!(
        ok(src, &[("HOSTS", "x, y ,z")]),
        "servers:\n  - x\n  - y\n  - z\n"
    );
    let src = "<% %w[a b].each_with_index do |v, i| %><%= i %>=<%= v %> <% end %>";
    assert_eq!(ok(src, &[]), "0=a 1=b ");
    let src = "<% for x in [1, 2] %><%= x %><% end %>";
    assert_eq!(ok(src, &[]), "12");
    // the block variable does not outlive the block
    let e = err("<% [1].each do |v| %><% end %><%= v %>", &[]);
    assert!(
        e.message.contains("undefined local variable"),
        "{}",
        e.message
    );
    let e = err("<% 'abc'.each do |c| %><% end %>", &[]);
    assert!(
        e.message.contains("undefined method `each` for a String"),
        "{}",
        e.message
    );
}

#[test]
fn loops_and_values_are_bounded() {
    let src = "<% a = ENV['W'].split(',') %><% a.each do |x| %><% a.each do |y| %><% a.each do |z| %>.<% end %><% end %><% end %>";
    let w = vec!["x"; 100].join(",");
    let e = err(src, &[("W", w.as_str())]);
    assert!(e.message.contains("more than"), "{}", e.message);
    let src = "<% s = 'ab' %><% ENV['W'].split(',').each do |x| %><% s = s + s %><% end %>";
    let w = vec!["x"; 40].join(",");
    let e = err(src, &[("W", w.as_str())]);
    assert!(e.message.contains("grows past"), "{}", e.message);
    let deep = format!("<%= {}1{} %>", "(".repeat(200), ")".repeat(200));
    let e = err(&deep, &[]);
    assert!(e.message.contains("nests too deeply"), "{}", e.message);
    for long in [
        format!("<%= {}'a' %>", "nil || ".repeat(5000)),
        format!("<%= 'a'{} %>", ".strip".repeat(5000)),
        format!("<%= {}1 %>", "!".repeat(5000)),
        format!("<%= 'a'{} %>", " + 'a'".repeat(5000)),
    ] {
        let e = err(&long, &[]);
        assert!(e.message.contains("nests too deeply"), "{}", e.message);
    }
    // a chain of ordinary length is fine
    let ok_chain = format!("<%= {}'a' %>", "nil || ".repeat(20));
    assert_eq!(ok(&ok_chain, &[]), "a");
}

#[test]
fn file_read_is_relative_to_the_working_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".ruby-version"), "ruby-3.3.1\n").expect("write");
    let mut c = ctx(&[]);
    c.cwd = dir.path().to_path_buf();
    let out = render(
        r#"a: <%= File.read(".ruby-version").strip %>|<%= File.read(".ruby-version").strip.delete_prefix("ruby-") %>|<%= File.exist?("nope") %>"#,
        &c,
    );
    assert_eq!(out, Ok("a: ruby-3.3.1|3.3.1|false".to_string()));
    let e = render("a: 1\nb: <%= File.read('VERSION') %>", &c).expect_err("missing file");
    assert_eq!((e.line, e.column), (2, 4));
    assert!(e.message.contains("cannot read `VERSION`"), "{}", e.message);
    assert!(e.message.contains("no such file"), "{}", e.message);
}

#[test]
fn dotenv_load_sets_what_is_not_set_yet() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".env"), "HOST=from-env\nKEEP=file\n").expect("write");
    std::fs::write(dir.path().join(".env.other"), "OTHER=o\n").expect("write");
    let mut c = ctx(&[("KEEP", "process")]);
    c.cwd = dir.path().to_path_buf();
    let src = "<% require \"dotenv\"; Dotenv.load(\".env\") %>\nhost: <%= ENV[\"HOST\"] %>\nkeep: <%= ENV['KEEP'] %>\n";
    assert_eq!(
        render(src, &c),
        Ok("\nhost: from-env\nkeep: process\n".to_string())
    );
    let src = "<%- require 'dotenv/load' -%>\nhost: <%= ENV.fetch('HOST') %>\n";
    assert_eq!(render(src, &c), Ok("host: from-env\n".to_string()));
    let src = "<% Dotenv.load %><% Dotenv.load '.env.other', '.missing' %><%= ENV['HOST'] %> <%= ENV['OTHER'] %>";
    assert_eq!(render(src, &c), Ok("from-env o".to_string()));
    let src = "<% Dotenv.overload %><%= ENV['KEEP'] %>";
    assert_eq!(render(src, &c), Ok("file".to_string()));
    let e = render("<% Dotenv.load!('.missing') %>", &c).expect_err("load! of a missing file");
    assert!(
        e.message.contains("cannot read `.missing`"),
        "{}",
        e.message
    );

    // what a file loads is seen by the files rendered after it
    let mut c2: TemplateContext = c.clone();
    let out = render_file("<% Dotenv.load %>", &mut c2, CommandPolicy::Run);
    assert_eq!(out, Ok(String::new()));
    assert_eq!(c2.env.get("HOST").map(String::as_str), Some("from-env"));
    assert_eq!(c2.env.get("KEEP").map(String::as_str), Some("process"));
}

fn fake_docker(arch: &str) -> (tempfile::TempDir, TemplateContext) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("docker");
    let script = format!(
        "#!/bin/sh\necho \"$@\" >> \"{}/calls\"\n[ \"$1 $2 $3\" = \"info --format {{{{.Architecture}}}}\" ] && echo {arch}\n",
        dir.path().display()
    );
    std::fs::write(&bin, script).expect("write");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut c = ctx(&[]);
    c.env.insert(
        "PATH".into(),
        format!("{}:/usr/bin:/bin", dir.path().display()),
    );
    (dir, c)
}

#[test]
fn docker_arch_asks_docker_info_once_and_maps_the_name() {
    let src = r#"arch: <%= Kamal::Utils.docker_arch == "arm64" ? "amd64" : "arm64" %> <%= Kamal::Utils.docker_arch %>"#;
    let (dir, c) = fake_docker("aarch64");
    assert_eq!(render(src, &c), Ok("arch: amd64 arm64".to_string()));
    let calls = std::fs::read_to_string(dir.path().join("calls")).expect("calls");
    assert_eq!(calls, "info --format {{.Architecture}}\n");
    let (_dir, c) = fake_docker("x86_64");
    assert_eq!(render(src, &c), Ok("arch: arm64 amd64".to_string()));
    let (_dir, c) = fake_docker("riscv64");
    assert_eq!(
        render("<%= Kamal::Utils.docker_arch %>", &c),
        Ok("riscv64".to_string())
    );
    // docker is not asked when the template does not use it
    let (dir, c) = fake_docker("x86_64");
    assert_eq!(render("<%= 'a' %>", &c), Ok("a".to_string()));
    assert!(!dir.path().join("calls").exists());
}

#[test]
fn docker_arch_without_docker_is_the_machines_architecture() {
    let expected = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let mut c = ctx(&[]);
    c.env.insert("PATH".into(), "/nonexistent".into());
    assert_eq!(
        render("<%= Kamal::Utils.docker_arch %>", &c),
        Ok(expected.to_string())
    );
    // a denied command is not run, and the answer is the same
    let (dir, c) = fake_docker("riscv64");
    let out = render_with_policy("<%= Kamal::Utils.docker_arch %>", &c, CommandPolicy::Deny);
    assert_eq!(out, Ok(expected.to_string()));
    assert!(!dir.path().join("calls").exists());
}

#[test]
fn errors_in_multi_line_code_tags_point_at_their_line() {
    let e = err("a: 1\n<%\n  x = 1\n  y = ENV.fetch(\"NOPE\")\n%>\n", &[]);
    assert_eq!((e.line, e.column), (4, 3));
    assert!(
        e.message.contains("in `y = ENV.fetch(\"NOPE\")`"),
        "{}",
        e.message
    );
    let e = err("a: 1\n<%\n  x = 1\n  y = 2 * 3\n%>\n", &[]);
    assert_eq!(e.line, 4);
    assert!(
        e.message.contains("unsupported ERB `y = 2 * 3`"),
        "{}",
        e.message
    );
}

#[test]
fn erb_blocks_and_tera_tags_do_not_mix_but_assignments_do() {
    let e = err("<% if true %>a<% end %>\nb: {{ 1 }}\n", &[]);
    assert!(
        e.message.contains("cannot be mixed with tera"),
        "{}",
        e.message
    );
    assert_eq!(
        ok(
            "<% x = ENV['X'] || 'd' %>a: <%= x %>\nb: {{ env(name=\"X\", default=\"t\") }}\n",
            &[]
        ),
        "a: d\nb: t\n"
    );
}

#[test]
fn ordering_comparisons_on_integers_and_strings() {
    let vars = &[("N", "3")];
    assert_eq!(
        ok(
            r#"<%= ENV["N"].to_i > 2 %> <%= ENV["N"].to_i <= 2 %>"#,
            vars
        ),
        "true false"
    );
    assert_eq!(
        ok(r#"<%= "a" < "b" %> <%= 1 + 1 >= 2 %>"#, vars),
        "true true"
    );
    assert_eq!(
        ok(r#"<%= ENV["N"].to_i > 1 ? "many" : "one" %>"#, vars),
        "many"
    );
    let e = err(r#"<%= ENV["N"] > 1 %>"#, vars);
    assert!(
        e.message
            .contains("comparison of a String with an Integer failed"),
        "{}",
        e.message
    );
    let e = err(r#"<%= ENV["NONE"] > "1" %>"#, vars);
    assert!(
        e.message.contains("undefined method `>` for nil"),
        "{}",
        e.message
    );
}

#[test]
fn modifier_if_and_unless() {
    let vars = &[("PROD", "1")];
    assert_eq!(
        ok(
            r#"<%= "ssl" if ENV["PROD"] %>|<%= "dev" unless ENV["PROD"] %>"#,
            vars
        ),
        "ssl|"
    );
    let src = "<% host = 'dev.example' %><% host = 'prod.example' if ENV['PROD'] %><%= host %>";
    assert_eq!(ok(src, vars), "prod.example");
    assert_eq!(ok(src, &[]), "dev.example");
    let e = err("<% if true if true %><% end %>", &[]);
    assert!(e.message.contains("unsupported ERB"), "{}", e.message);
}

#[test]
fn a_long_line_of_tags_renders_in_linear_time() {
    let line = format!("# {}\n", "<%= x.frob %>".repeat(60_000));
    let started = std::time::Instant::now();
    assert_eq!(ok(&line, &[]), "# \n");
    let line = format!("{}{}\n", " ".repeat(300_000), "<%= 'x' %>".repeat(60_000));
    assert_eq!(ok(&line, &[]).len(), 300_000 + 60_000 + 1);
    // Not a speed figure (that is benchmarks' job): a quadratic lexer takes many minutes here,
    // a linear one well under a second, so a wide bound holds on a loaded 2-core machine.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn code_tags_span_lines_as_ruby_reads_them() {
    let src = "<% [1, 2].each do |x|\n  y = x %><%= y %><% end %>";
    assert_eq!(ok(src, &[]), "12");
    let src = "<%\n  v = ENV.fetch('A', 'a') ==\n    'a' &&\n    ENV['B'].nil?\n  w = ENV.fetch('A', 'x')\n    .upcase\n%><%= v %> <%= w %>";
    assert_eq!(ok(src, &[]), "true X");
    let blank = format!(
        "<%{}x = 1{}%><%= x %>",
        "\n".repeat(200_000),
        "\n \n".repeat(100_000)
    );
    let started = std::time::Instant::now();
    assert_eq!(ok(&blank, &[]), "1");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn error_messages_never_show_environment_values() {
    let secret = "424242424242";
    let vars = &[("SECRET", secret)];
    for src in [
        "<%= `printf %s #{ENV['SECRET']}; exit 1` %>",
        "<%= 1 > ENV['SECRET'] %>",
        "<%= ENV['SECRET'] + 1 %>",
        "<%= ENV['SECRET'].frob %>",
        "<%= (ENV['SECRET'] + '99999999999999999999').to_i %>",
        "<% ENV['SECRET'].each do |x| %><% end %>",
    ] {
        let e = err(src, vars);
        let shown = format!("{} {:?}", e.message, e.hint);
        assert!(
            !shown.contains(secret) || src.contains(secret),
            "{src}: {shown}"
        );
    }
}

//! ERB as real Kamal configs write it, through `dray config`: the forms of Kamal's own fixtures
//! (`deploy.erb.yml`, the remote-builder ones), `Dotenv.load`, local variables, `if`/`each`
//! blocks and `File.read`; and duplicate keys, where the last one wins as in Psych.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use crate::support::{dray_cmd, write};

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        write(&dir.path().join(path), text);
    }
    dir
}

/// `dray config --version abc` in `dir` with `vars` set, a fake `docker` answering
/// `docker info` with `arch` first on the `PATH`.
fn config_with(dir: &Path, args: &[&str], vars: &[(&str, &str)], arch: &str) -> Output {
    let bin = dir.join("fake-bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let docker = bin.join("docker");
    std::fs::write(
        &docker,
        format!("#!/bin/sh\n[ \"$1\" = info ] && echo {arch}\n"),
    )
    .expect("write docker");
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = dray_cmd(dir, &[&["config", "--version", "abc"], args].concat());
    cmd.env("PATH", path);
    for var in [
        "DRAY_ERB_HOST",
        "DRAY_ERB_ROLE",
        "DRAY_ERB_HOSTS",
        "DRAY_ERB_MODE",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(vars.iter().copied());
    cmd.output().expect("run dray")
}

fn config_ok(dir: &Path, args: &[&str], vars: &[(&str, &str)], arch: &str) -> (String, String) {
    let out = config_with(dir, args, vars, arch);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "dray config failed:\n{stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// The shape of Kamal's `test/fixtures/deploy_with_remote_builder.yml`.
const REMOTE_BUILDER: &str = r#"service: app
image: dhh/app
servers:
  web:
    - "1.1.1.1"
  workers:
    - "1.1.1.3"
registry:
  username: <%= "my-user" %>
  password: <%= "my-password" %>
builder:
  arch: <%= Kamal::Utils.docker_arch == "arm64" ? "amd64" : "arm64" %>
  remote: ssh://app@1.1.1.5
"#;

#[test]
fn erb_remote_builder_arch_is_the_other_one_than_the_local_docker() {
    let dir = project(&[("config/deploy.yml", REMOTE_BUILDER)]);
    let (stdout, _) = config_ok(dir.path(), &[], &[], "aarch64");
    assert!(stdout.contains("builder:\n  arch: amd64\n"), "{stdout}");
    assert!(stdout.contains("username: my-user"), "{stdout}");
    let (stdout, _) = config_ok(dir.path(), &[], &[], "x86_64");
    assert!(stdout.contains("builder:\n  arch: arm64\n"), "{stdout}");
}

const DOTENV_AND_BLOCKS: &str = r##"<% require "dotenv"; Dotenv.load(".env") -%>
<%-
  # one place for what changes per deploy
  host = ENV.fetch("DRAY_ERB_HOST", "app.example.com")
  ruby = File.read(".ruby-version").strip.delete_prefix("ruby-")
-%>
service: app
image: acme/app
servers:
  web:
<% ENV.fetch("DRAY_ERB_HOSTS", "10.0.0.1,10.0.0.2").split(",").each do |ip| -%>
    - <%= ip.strip %>
<% end -%>
<% if ENV["DRAY_ERB_MODE"] == "jobs" -%>
  workers:
    hosts: [10.0.0.9]
    cmd: bin/jobs
<% end -%>
proxy:
  host: <%= host %>
registry:
  username: <%= ENV.fetch("DRAY_ERB_USER", ENV.fetch("DRAY_ERB_FALLBACK_USER", "deployer")) %>
  password: [KAMAL_REGISTRY_PASSWORD]
builder:
  arch: amd64
env:
  clear:
    RUBY_VERSION: "<%= ruby %>"
    FROM_DOTENV: <%= ENV["DRAY_ERB_FROM_FILE"].presence || "missing" %>
    LABEL: "<%= "#{host}-#{ENV.fetch('DRAY_ERB_ROLE', 'web').upcase}" %>"
"##;

#[test]
fn erb_dotenv_locals_blocks_and_file_read_render_as_kamal_would() {
    let dir = project(&[
        ("config/deploy.yml", DOTENV_AND_BLOCKS),
        (
            ".env",
            "DRAY_ERB_FROM_FILE=dotenv-value\nDRAY_ERB_HOST=from-dotenv.example\n",
        ),
        (".ruby-version", "ruby-3.3.4\n"),
    ]);
    let (stdout, _) = config_ok(
        dir.path(),
        &[],
        &[("DRAY_ERB_HOST", "set.example")],
        "x86_64",
    );
    assert!(
        stdout.starts_with("---\n:roles:\n- web\n:hosts:\n- \"10.0.0.1\"\n- \"10.0.0.2\"\n"),
        "{stdout}"
    );
    // a variable already set wins over the dotenv file, as Dotenv.load does
    assert!(stdout.contains("RUBY_VERSION=3.3.4"), "{stdout}");
    assert!(stdout.contains("FROM_DOTENV=dotenv-value"), "{stdout}");
    assert!(stdout.contains("LABEL=set.example-WEB"), "{stdout}");
    assert!(stdout.contains("username: deployer"), "{stdout}");

    let (stdout, _) = config_ok(
        dir.path(),
        &[],
        &[("DRAY_ERB_MODE", "jobs"), ("DRAY_ERB_HOSTS", "10.1.1.1")],
        "x86_64",
    );
    assert!(
        stdout.starts_with(
            "---\n:roles:\n- web\n- workers\n:hosts:\n- \"10.1.1.1\"\n- \"10.0.0.9\"\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("LABEL=from-dotenv.example-WEB"), "{stdout}");
}

#[test]
fn erb_dotenv_loaded_by_the_base_file_is_seen_by_the_destination_file() {
    let base = "<% Dotenv.load -%>\nservice: app\nimage: acme/app\nregistry:\n  username: u\n  password: [P]\nbuilder:\n  arch: amd64\n";
    let staging = "servers:\n  web:\n    - <%= ENV.fetch(\"DRAY_ERB_STAGING_HOST\") %>\n";
    let dir = project(&[
        ("config/deploy.yml", base),
        ("config/deploy.staging.yml", staging),
        (".env", "DRAY_ERB_STAGING_HOST=10.9.9.9\n"),
    ]);
    let (stdout, _) = config_ok(dir.path(), &["-d", "staging"], &[], "x86_64");
    assert!(stdout.contains("hosts:\n- \"10.9.9.9\"\n"), "{stdout}");
}

#[test]
fn erb_errors_name_the_file_line_and_expression() {
    let text = REMOTE_BUILDER.replace(
        "  remote: ssh://app@1.1.1.5\n",
        "  remote: <%= ENV.fetch(\"DRAY_ERB_REMOTE\") %>\n",
    );
    let dir = project(&[("config/deploy.yml", &text)]);
    let out = config_with(dir.path(), &[], &[], "x86_64");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr
            .contains("config/deploy.yml:13:11: environment variable `DRAY_ERB_REMOTE` is not set"),
        "{stderr}"
    );
    assert!(
        stderr.contains("in `<%= ENV.fetch(\"DRAY_ERB_REMOTE\") %>`"),
        "{stderr}"
    );

    let text = REMOTE_BUILDER.replace("\"my-user\"", "\"my-user\".gsub(/-/, '')");
    let dir = project(&[("config/deploy.yml", &text)]);
    let out = config_with(dir.path(), &[], &[], "x86_64");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("config/deploy.yml:9:13: unsupported ERB"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");

    let text = format!(
        "{}version: <%= File.read(\"VERSION\").strip %>\n",
        REMOTE_BUILDER
    );
    let dir = project(&[("config/deploy.yml", &text)]);
    let out = config_with(dir.path(), &[], &[], "x86_64");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("config/deploy.yml:14:10: cannot read `VERSION`"),
        "{stderr}"
    );
}

#[test]
fn erb_duplicate_keys_the_last_one_wins_with_a_warning() {
    let text = format!("{REMOTE_BUILDER}servers:\n  web:\n    - \"2.2.2.2\"\nimage: dhh/other\n");
    let dir = project(&[("config/deploy.yml", &text)]);
    let (stdout, stderr) = config_ok(dir.path(), &[], &[], "x86_64");
    assert!(
        stdout.starts_with("---\n:roles:\n- web\n:hosts:\n- \"2.2.2.2\"\n"),
        "{stdout}"
    );
    assert!(stdout.contains("repository: dhh/other"), "{stdout}");
    assert!(
        stderr.contains(
            "warning: config/deploy.yml:14:1: duplicate key `servers`: this value replaces the one at config/deploy.yml:3:1"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("config/deploy.yml:17:1: duplicate key `image`"),
        "{stderr}"
    );
    let out = config_with(dir.path(), &["-q"], &[], "x86_64");
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("duplicate key"));
}

#[test]
fn erb_code_tags_and_tera_in_one_file_render_in_the_render_child() {
    let text = REMOTE_BUILDER.replace(
        "  remote: ssh://app@1.1.1.5\n",
        "  remote: {{ env(name=\"DRAY_ERB_REMOTE\", default=\"ssh://none\") }}\n",
    );
    let text = format!("<% Dotenv.load; user = ENV.fetch('DRAY_ERB_USER', 'x') -%>\n{text}")
        .replace("<%= \"my-user\" %>", "<%= user %>");
    let dir = project(&[
        ("config/deploy.yml", &text),
        (
            ".env",
            "DRAY_ERB_USER=from-dotenv\nDRAY_ERB_REMOTE=ssh://b@1.1.1.9\n",
        ),
    ]);
    let (stdout, _) = config_ok(dir.path(), &[], &[], "x86_64");
    assert!(stdout.contains("username: from-dotenv"), "{stdout}");

    let blocks = format!("<% if true %>\n<% end %>\n{text}");
    let dir = project(&[("config/deploy.yml", &blocks)]);
    let out = config_with(dir.path(), &[], &[], "x86_64");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "config/deploy.yml:1:1: ERB blocks (if, unless, each) cannot be mixed with tera tags"
        ),
        "{stderr}"
    );
}

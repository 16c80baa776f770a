//! Configuration loading through the `dray` binary: good configs print, each class of bad input
//! fails with exit 2 and a message naming the file, line, column and key.

use std::path::Path;

use crate::support::{dray, write};

const BASE: &str = "\
service: app
image: user/app
servers:
  web:
    - 10.0.0.1
    - 10.0.0.2
  workers:
    hosts:
      - 10.0.0.3
    cmd: bin/jobs
registry:
  username: user
  password:
    - KAMAL_REGISTRY_PASSWORD
builder:
  arch: amd64
";

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        write(&dir.path().join(path), text);
    }
    dir
}

fn fails_with(dir: &Path, args: &[&str], expected: &[&str]) -> String {
    let out = dray(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    for e in expected {
        assert!(stderr.contains(e), "expected {e:?} in:\n{stderr}");
    }
    stderr
}

#[test]
fn config_prints_roles_hosts_and_primary_host() {
    let dir = project(&[("config/deploy.yml", BASE)]);
    let out = dray(dir.path(), &["config", "--version", "abc"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Kamal's `Configuration#to_h` through Ruby's `to_yaml`: symbol keys.
    assert!(
        stdout.starts_with("---\n:roles:\n- web\n- workers\n"),
        "{stdout}"
    );
    assert!(stdout.contains("\n:primary_host: \"10.0.0.1\""), "{stdout}");
    assert!(
        stdout.contains("\n:absolute_image: user/app:abc"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n:ssh_options:\n  :user: root\n  :port: 22\n"),
        "{stdout}"
    );
    assert!(stdout.contains("\n  :log_level: :fatal\n"), "{stdout}");
    // What dray adds: plain keys.
    assert!(stdout.contains("\nservice: app\n"), "{stdout}");
}

#[test]
fn unknown_key_names_location_and_suggests() {
    let text = BASE.replace("builder:", "buidler:");
    let dir = project(&[("config/deploy.yml", &text)]);
    fails_with(
        dir.path(),
        &["config"],
        &[
            "config/deploy.yml:15:1: buidler: unknown key `buidler`",
            "hint: did you mean `builder`?",
        ],
    );
}

#[test]
fn unknown_nested_key_names_its_path() {
    let text = BASE.replace("    cmd: bin/jobs", "    cmd: bin/jobs\n    lables: x");
    let dir = project(&[("config/deploy.yml", &text)]);
    fails_with(
        dir.path(),
        &["config"],
        &[
            "config/deploy.yml:11:5: servers.workers.lables: unknown key `lables`",
            "did you mean `labels`?",
        ],
    );
}

#[test]
fn wrong_type_names_the_item() {
    let text = BASE.replace("    - 10.0.0.2", "    - [10.0.0.2, 10.0.0.4]");
    let dir = project(&[("config/deploy.yml", &text)]);
    fails_with(
        dir.path(),
        &["config"],
        &[
            "config/deploy.yml:6:7: servers.web[1]: expected a host name",
            "found a list",
        ],
    );
}

#[test]
fn wrong_scalar_type_is_named() {
    let text = format!("{BASE}retain_containers: many\n");
    let dir = project(&[("config/deploy.yml", &text)]);
    fails_with(
        dir.path(),
        &["config"],
        &["config/deploy.yml:17:20: retain_containers: expected a whole number, found the string \"many\""],
    );
}

#[test]
fn missing_required_key_is_named() {
    let text = BASE.replace("builder:\n  arch: amd64\n", "");
    let dir = project(&[("config/deploy.yml", &text)]);
    fails_with(
        dir.path(),
        &["config"],
        &[
            "config/deploy.yml: missing required key `builder`",
            "hint: add `builder:`",
        ],
    );
}

#[test]
fn unknown_primary_role_is_refused() {
    let text = format!("{BASE}primary_role: wbe\n");
    let dir = project(&[("config/deploy.yml", &text)]);
    fails_with(
        dir.path(),
        &["config"],
        &[
            "config/deploy.yml:17:15: primary_role: the primary_role `wbe` isn't defined",
            "did you mean `web`?",
        ],
    );
}

#[test]
fn retain_containers_must_be_positive() {
    let text = format!("{BASE}retain_containers: 0\n");
    let dir = project(&[("config/deploy.yml", &text)]);
    fails_with(
        dir.path(),
        &["config"],
        &["retain_containers: 0 is out of range: expected a whole number from 1 to 100000"],
    );
}

#[test]
fn invalid_restart_policy_is_refused() {
    let text = BASE.replace(
        "    cmd: bin/jobs",
        "    cmd: bin/jobs\n    options:\n      restart: sometimes",
    );
    let dir = project(&[("config/deploy.yml", &text)]);
    fails_with(
        dir.path(),
        &["config"],
        &["config/deploy.yml:12:16: servers.workers.options.restart: invalid restart policy"],
    );
}

#[test]
fn missing_destination_file_is_named() {
    let dir = project(&[("config/deploy.yml", BASE)]);
    fails_with(
        dir.path(),
        &["config", "-d", "staging"],
        &[
            "configuration file not found in config/deploy.staging.yml",
            "destination `staging`",
        ],
    );
}

#[test]
fn require_destination_without_d_is_refused() {
    let text = format!("{BASE}require_destination: true\n");
    let dir = project(&[("config/deploy.yml", &text)]);
    fails_with(
        dir.path(),
        &["config"],
        &[
            "require_destination: you must specify a destination",
            "hint: pass -d",
        ],
    );
}

#[test]
fn destination_overlay_merges_maps_and_replaces_lists() {
    let overlay = "servers:\n  web:\n    - 10.1.0.1\nenv:\n  clear:\n    MODE: staging\n";
    let base = format!("{BASE}env:\n  clear:\n    MODE: prod\n    KEEP: yes-please\n");
    let dir = project(&[
        ("config/deploy.yml", &base),
        ("config/deploy.staging.yml", overlay),
    ]);
    let out = dray(dir.path(), &["config", "-d", "staging", "--version", "v1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("- \"10.1.0.1\""), "{stdout}");
    assert!(!stdout.contains("10.0.0.2"), "{stdout}");
    assert!(stdout.contains("MODE=staging"), "{stdout}");
    assert!(stdout.contains("KEEP=yes-please"), "{stdout}");
    assert!(stdout.contains("destination: staging"), "{stdout}");
}

#[test]
fn an_error_in_the_overlay_points_at_the_overlay() {
    let overlay = "servers:\n  web:\n    hosts: 12\n";
    let dir = project(&[
        ("config/deploy.yml", BASE),
        ("config/deploy.staging.yml", overlay),
    ]);
    fails_with(
        dir.path(),
        &["config", "-d", "staging"],
        &["config/deploy.staging.yml:3:12: servers.web.hosts: expected"],
    );
}

#[test]
fn extension_keys_anchors_and_merge_keys_are_accepted() {
    let text = format!(
        "x-env: &env\n  clear:\n    A: one\n{}env:\n  <<: *env\n",
        BASE
    );
    let dir = project(&[("config/deploy.yml", &text)]);
    let out = dray(dir.path(), &["config", "--version", "v1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("A=one"));
}

#[test]
fn accessory_needs_exactly_one_placement() {
    let text = format!(
        "{BASE}accessories:\n  db:\n    image: mysql:8\n    host: 10.0.0.1\n    roles: [web]\n"
    );
    let dir = project(&[("config/deploy.yml", &text)]);
    fails_with(
        dir.path(),
        &["config"],
        &[
            "accessories.db: specify one of `host`, `hosts`, `role`, `roles`, `tag` or `tags`",
            "found host, roles",
        ],
    );
}

#[test]
fn missing_config_file_says_how_to_create_one() {
    let dir = project(&[]);
    fails_with(
        dir.path(),
        &["config"],
        &[
            "configuration file not found in config/deploy.yml",
            "dray init",
        ],
    );
}

#[test]
fn an_unknown_accessory_exits_2_naming_the_choices() {
    let dir = project(&[("config/deploy.yml", BASE)]);
    fails_with(
        dir.path(),
        &["accessory", "boot", "db"],
        &[
            "no accessory by the name of 'db'",
            "the configuration defines no `accessories:`",
        ],
    );
}

#[test]
fn init_writes_the_stubs_once_and_they_load() {
    let dir = project(&[]);
    let out = dray(dir.path(), &["init"]);
    assert!(out.status.success());
    for path in [
        "config/deploy.yml",
        ".kamal/secrets",
        ".kamal/hooks/pre-deploy.sample",
        ".kamal/hooks/post-proxy-reboot.sample",
    ] {
        assert!(dir.path().join(path).exists(), "{path}");
    }
    write(&dir.path().join("config/deploy.yml"), "service: mine\n");
    let out = dray(dir.path(), &["init"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("config/deploy.yml already exists"));
    let kept = std::fs::read_to_string(dir.path().join("config/deploy.yml")).expect("read");
    assert_eq!(kept, "service: mine\n");
    let fresh = project(&[]);
    dray(fresh.path(), &["init"]);
    let out = dray(fresh.path(), &["config", "--version", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn unsupported_erb_names_the_line_and_the_tera_form() {
    // `if` blocks are ERB dray evaluates (tests/integration/erb.rs); `while` is not
    let text = BASE.replace(
        "image: user/app",
        "image: <% while true %>user/app<% end %>",
    );
    let dir = project(&[("config/deploy.yml", &text)]);
    let stderr = fails_with(
        dir.path(),
        &["config"],
        &[
            "config/deploy.yml:2:8:",
            "unsupported ERB `<% while true %>`",
            "hint:",
        ],
    );
    assert!(
        stderr.contains("{%"),
        "the hint shows the tera form: {stderr}"
    );
}

#[test]
fn a_missing_secret_names_the_key_and_the_files_before_anything_runs() {
    let dir = project(&[
        ("config/deploy.yml", BASE),
        (".kamal/secrets-common", "OTHER=1\n"),
    ]);
    fails_with(
        dir.path(),
        &["deploy", "--dry-run", "--version", "1"],
        &[
            "secret 'KAMAL_REGISTRY_PASSWORD' not found in",
            ".kamal/secrets-common",
            ".kamal/secrets",
        ],
    );
}

#[test]
fn an_unterminated_command_substitution_names_the_file_and_line() {
    let dir = project(&[
        ("config/deploy.yml", BASE),
        (".kamal/secrets", "A=1\nKAMAL_REGISTRY_PASSWORD=$(echo x\n"),
    ]);
    fails_with(
        dir.path(),
        &["secrets", "print"],
        &[".kamal/secrets:2:", "unterminated `$(`"],
    );
}

#[test]
fn two_roles_claiming_one_ssl_host_are_refused() {
    let yaml = "service: app\nimage: user/app\nregistry: {username: u, password: p}\nbuilder: {arch: amd64}\nservers:\n  web:\n    hosts: [10.0.0.1]\n    proxy: {host: app.example.com, ssl: true}\n  admin:\n    hosts: [10.0.0.2]\n    proxy: {host: app.example.com, ssl: true}\n";
    let dir = project(&[("config/deploy.yml", yaml)]);
    fails_with(
        dir.path(),
        &["config", "--version", "v1"],
        &[
            "config/deploy.yml:",
            "different roles can't share the same host for SSL: app.example.com",
        ],
    );
}

#[test]
fn different_proxy_runs_for_one_host_are_refused() {
    let yaml = "service: app\nimage: user/app\nregistry: {username: u, password: p}\nbuilder: {arch: amd64}\nservers:\n  web:\n    hosts: [10.0.0.1]\n    proxy: {host: a.example.com, run: {http_port: 8080}}\n  api:\n    hosts: [10.0.0.1]\n    proxy: {host: b.example.com, run: {http_port: 9090}}\n";
    let dir = project(&[("config/deploy.yml", yaml)]);
    fails_with(
        dir.path(),
        &["config", "--version", "v1"],
        &[
            "config/deploy.yml:",
            "conflicting proxy run configurations for host 10.0.0.1",
        ],
    );
}

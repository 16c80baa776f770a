//! Every Kamal-shaped fixture (`tests/fixtures/kamal/`, written by us in the shapes of Kamal's
//! documentation examples, `kamal init` template and integration-test apps) loads, ERB included,
//! and `dray config` agrees with what Kamal 2.12 printed for the same file on the keys both print.

use std::path::{Path, PathBuf};

use dray::config::node::{parse, Node, Value};

use crate::support::dray_cmd;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kamal")
}

fn config_output(dir: &Path, args: &[&str]) -> String {
    let mut cmd = dray_cmd(dir, args);
    cmd.env("DRAY_FIXTURE_REGION", "eu");
    for var in [
        "DRAY_FIXTURE_IMAGE",
        "DRAY_FIXTURE_TEAM",
        "DRAY_FIXTURE_DEPLOYER",
        "DRAY_FIXTURE_RETAIN",
        "DRAY_FIXTURE_SSH_USER",
        "RBENV_VERSION",
        "rvm_ruby_string",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().expect("run dray");
    assert!(
        out.status.success(),
        "dray {} in {} failed:\n{}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn scalars(node: Option<&Node>) -> Vec<String> {
    match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items.iter().filter_map(|i| i.as_key()).collect(),
        Some(v) => v.scalar_string().into_iter().collect(),
        None => Vec::new(),
    }
}

/// Compare the keys Kamal and dray both print.
fn assert_matches_kamal(ours: &str, expected_file: &str) {
    let expected_text =
        std::fs::read_to_string(fixtures().join("expected").join(expected_file)).expect("expected");
    let theirs = parse(&expected_text).expect("kamal output parses");
    let ours = parse(ours).expect("our output parses");
    for key in [
        "roles",
        "hosts",
        "primary_host",
        "version",
        "repository",
        "absolute_image",
        "service_with_version",
        "volume_args",
        "logging",
    ] {
        assert_eq!(
            scalars(ours.get(&format!(":{key}"))),
            scalars(theirs.get(&format!(":{key}"))),
            "{expected_file}: `{key}` differs"
        );
    }
}

#[test]
fn docs_examples_assembled_load_and_match_kamal() {
    let out = config_output(
        &fixtures(),
        &["config", "-c", "docs-all.yml", "--version", "abc1234"],
    );
    assert_matches_kamal(&out, "docs-all.config.yml");
}

#[test]
fn init_template_loads_and_matches_kamal() {
    let out = config_output(
        &fixtures(),
        &["config", "-c", "template.yml", "--version", "abc1234"],
    );
    assert_matches_kamal(&out, "template.config.yml");
}

#[test]
fn destination_overlays_load_and_match_kamal() {
    let dir = fixtures().join("dest");
    for (dest, expected) in [
        ("staging", "dest-staging.config.yml"),
        ("production", "dest-production.config.yml"),
    ] {
        let out = config_output(
            &dir,
            &[
                "config",
                "-c",
                "deploy.yml",
                "-d",
                dest,
                "--version",
                "abc1234",
            ],
        );
        assert_matches_kamal(&out, expected);
    }
}

#[test]
fn destination_fixtures_require_a_destination() {
    for dir in ["dest", "integration-app_with_destinations"] {
        let out = dray_cmd(&fixtures().join(dir), &["config", "-c", "deploy.yml"])
            .output()
            .expect("run dray");
        assert_eq!(out.status.code(), Some(2), "{dir}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("you must specify a destination"));
    }
}

#[test]
fn every_integration_app_config_loads() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixtures()).expect("fixtures dir") {
        let dir = entry.expect("entry").path();
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !name.starts_with("integration-") {
            continue;
        }
        seen += 1;
        if name == "integration-app_with_destinations" {
            for dest in ["staging", "production"] {
                config_output(&dir, &["config", "-c", "deploy.yml", "-d", dest]);
            }
        } else {
            config_output(&dir, &["config", "-c", "deploy.yml"]);
        }
    }
    assert!(
        seen >= 7,
        "expected the integration app fixtures, found {seen}"
    );
}

//! `deploy --dry-run` plans: one version everywhere, nested dray reuses the parent's release,
//! bad tags are refused before anything runs, and snapshots pin the plans.

use std::path::Path;
use std::process::Command;

use crate::support::{dray_cmd, write};

const CONFIG: &str = "\
service: app
image: team/app
servers:
  web:
    - 10.0.0.1
    - 10.0.0.2
  workers:
    hosts:
      - 10.0.0.3
    cmd: bin/jobs
registry:
  server: registry.example:5000
  username: deployer
  password:
    - REGISTRY_PASSWORD
builder:
  arch: amd64
env:
  clear:
    MODE: production
  secret:
    - DB_PASSWORD
";

const SECRETS: &str = "REGISTRY_PASSWORD=hunter2-registry\nDB_PASSWORD=hunter2-db\n";

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["-c", "user.email=dev@example.com", "-c", "user.name=Dev"])
        .args(args)
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

/// A git repo with the config committed.
fn repo(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(&dir.path().join("config/deploy.yml"), config);
    write(&dir.path().join(".kamal/secrets"), SECRETS);
    write(&dir.path().join(".gitignore"), ".kamal/secrets\n");
    write(&dir.path().join("app.txt"), "v1\n");
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-qm", "init"]);
    dir
}

fn plan_json(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let mut all = vec!["deploy", "--dry-run", "--output", "json"];
    all.extend_from_slice(args);
    let mut cmd = dray_cmd(dir, &all);
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run dray");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("plan is JSON")
}

fn head(dir: &Path) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .expect("git");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every place the version shows up in a plan, as found by scanning the JSON.
fn versions_in(plan: &serde_json::Value, service: &str) -> Vec<String> {
    let mut found = Vec::new();
    found.push(
        plan["release"]["version"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    let image = plan["release"]["image"].as_str().unwrap_or_default();
    found.push(
        image
            .rsplit_once(':')
            .map(|x| x.1)
            .unwrap_or_default()
            .to_string(),
    );
    fn walk(v: &serde_json::Value, service: &str, found: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if let (Some(name), Some(value)) = (map.get("name"), map.get("value")) {
                    if name == "KAMAL_VERSION" {
                        found.push(value.as_str().unwrap_or_default().to_string());
                    }
                    if name == "KAMAL_SERVICE_VERSION" {
                        let v = value.as_str().unwrap_or_default();
                        found.push(format!("service-version:{v}"));
                    }
                }
                if let Some(c) = map.get("container").and_then(|c| c.as_str()) {
                    found.push(
                        c.rsplit_once(&format!("{service}-"))
                            .map(|x| x.1)
                            .unwrap_or(c)
                            .split_once('-')
                            .map(|x| x.1)
                            .unwrap_or_default()
                            .to_string(),
                    );
                }
                if let Some(line) = map.get("line").and_then(|l| l.as_str()) {
                    for word in line.split_whitespace() {
                        if let Some(v) = word.strip_prefix("KAMAL_VERSION=") {
                            found.push(v.trim_matches('\'').to_string());
                        }
                    }
                }
                // A boot's revert switches back to the version before, by design.
                map.iter()
                    .filter(|(k, _)| k.as_str() != "revert")
                    .for_each(|(_, x)| walk(x, service, found));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|x| walk(x, service, found)),
            _ => {}
        }
    }
    walk(plan, service, &mut found);
    found
}

fn assert_one_version(plan: &serde_json::Value, expected: &str) {
    let found = versions_in(plan, "app");
    let hooks = found
        .iter()
        .filter(|v| v.starts_with("service-version:"))
        .count();
    assert!(hooks >= 4, "hooks seen: {found:?}");
    let abbreviated = if expected.contains('_') {
        expected.to_string()
    } else {
        expected.chars().take(7).collect()
    };
    for v in &found {
        match v.strip_prefix("service-version:") {
            Some(sv) => assert_eq!(sv, format!("app@{abbreviated}")),
            None => assert_eq!(v, expected, "all versions: {found:?}"),
        }
    }
    assert!(found.len() > 10, "too few occurrences: {found:?}");
}

#[test]
fn clean_tree_uses_head_everywhere() {
    let dir = repo(CONFIG);
    let plan = plan_json(dir.path(), &[], &[]);
    assert_one_version(&plan, &head(dir.path()));
}

#[test]
fn dirty_tree_default_build_uses_head_and_warns() {
    let dir = repo(CONFIG);
    write(&dir.path().join("app.txt"), "v2\n");
    let out = dray_cmd(dir.path(), &["deploy", "--dry-run", "--output", "json"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("app.txt"), "{stderr}");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_one_version(&plan, &head(dir.path()));
}

#[test]
fn dirty_tree_with_context_two_processes_agree_and_edits_change_it() {
    let config = CONFIG.replace("  arch: amd64", "  arch: amd64\n  context: .");
    let dir = repo(&config);
    write(&dir.path().join("app.txt"), "v2\n");
    let first = plan_json(dir.path(), &[], &[]);
    let second = plan_json(dir.path(), &[], &[]);
    let v1 = first["release"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        v1,
        second["release"]["version"].as_str().unwrap_or_default()
    );
    assert!(
        v1.starts_with(&format!("{}_uncommitted_", head(dir.path()))),
        "{v1}"
    );
    assert_one_version(&first, &v1);
    write(&dir.path().join("app.txt"), "v3\n");
    let third = plan_json(dir.path(), &[], &[]);
    assert_ne!(third["release"]["version"].as_str().unwrap_or_default(), v1);
}

#[test]
fn flag_beats_env_beats_git() {
    let dir = repo(CONFIG);
    let plan = plan_json(dir.path(), &["--version", "1.2.3"], &[("VERSION", "4.5.6")]);
    assert_one_version(&plan, "1.2.3");
    let plan = plan_json(dir.path(), &[], &[("VERSION", "4.5.6")]);
    assert_one_version(&plan, "4.5.6");
}

#[test]
fn skip_push_with_version_pulls_that_tag_and_builds_nothing() {
    let dir = repo(CONFIG);
    let plan = plan_json(dir.path(), &["--skip-push", "--version", "1.2.3"], &[]);
    assert_one_version(&plan, "1.2.3");
    let stages: Vec<&str> = plan["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        !stages.contains(&"build") && !stages.contains(&"pre-build"),
        "{stages:?}"
    );
    assert!(stages.contains(&"pull"));
}

#[test]
fn a_hook_running_dray_gets_the_parents_version_without_flags() {
    let dir = repo(CONFIG);
    let parent = plan_json(dir.path(), &["--version", "7.7.7"], &[]);
    let pre_deploy = parent["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["steps"].as_array().into_iter().flatten())
        .find(|s| s["hook"] == "pre-deploy")
        .expect("pre-deploy hook");
    let env: Vec<(String, String)> = pre_deploy["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["secret"] != true)
        .map(|v| {
            (
                v["name"].as_str().unwrap_or_default().to_string(),
                v["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let child = plan_json(dir.path(), &[], &env_refs);
    assert_eq!(child["version_source"], "parent");
    assert_one_version(&child, "7.7.7");
    assert_eq!(
        child["release"]["recorded_at"],
        parent["release"]["recorded_at"]
    );
}

#[test]
fn bad_tags_fail_with_exit_2_naming_the_rule() {
    let dir = repo(CONFIG);
    let long = "a".repeat(129);
    for (tag, rule) in [
        ("1.2.3+build123", "`+` is not allowed in a Docker tag"),
        ("-x", "start"),
        ("a/b", "`/`"),
        (long.as_str(), "128"),
        ("", "empty"),
    ] {
        let flag = format!("--version={tag}");
        let out = dray_cmd(dir.path(), &["deploy", "--dry-run", &flag])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{tag}: {stderr}");
        assert!(
            stderr.contains(rule),
            "{tag}: expected {rule:?} in {stderr}"
        );
        assert!(out.stdout.is_empty(), "{tag}: printed a plan");
    }
    let out = dray_cmd(
        dir.path(),
        &["deploy", "--dry-run", "--version", "1.2.3+build123"],
    )
    .output()
    .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1.2.3-build123"));
}

#[test]
fn secrets_never_appear_in_plans() {
    let dir = repo(CONFIG);
    for output in ["json", "human"] {
        let out = dray_cmd(
            dir.path(),
            &["deploy", "--dry-run", "--output", output, "--version", "1"],
        )
        .output()
        .expect("run");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("hunter2"), "{output} plan leaks a secret");
        assert!(
            text.contains("DB_PASSWORD"),
            "{output} plan should name secret keys"
        );
    }
}

/// Snapshot of the text plan with the machine-dependent parts filtered.
fn snapshot_plan(name: &str, config: &str, files: &[(&str, &str)], args: &[&str]) {
    let dir = repo(config);
    for (path, text) in files {
        write(&dir.path().join(path), text);
    }
    let mut all = args.to_vec();
    all.push("--dry-run");
    let out = dray_cmd(dir.path(), &all)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]");
    settings.add_filter(r#""performer":"[^"]*""#, r#""performer":"[PERFORMER]""#);
    settings.add_filter(r"KAMAL_PERFORMER=.*", "KAMAL_PERFORMER=[PERFORMER]");
    // The lock's heartbeat names the holding process.
    settings.add_filter(r"Process: dray \d+", "Process: dray [PID]");
    settings.add_filter(r"[0-9a-f]{40}", "[SHA]");
    // The lock details (base64 of "Locked by: … at <time>…") change with the time.
    // (a script's continuation lines are marked `[host] >`).
    settings.add_filter(
        r"TG9ja2Vk(?:[A-Za-z0-9+/=]|\n    \[[^\]]+\] > )*",
        "[LOCK DETAILS BASE64]",
    );
    settings.set_snapshot_path("snapshots");
    settings.bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn snapshot_single_role() {
    let config = CONFIG.replace(
        "  workers:\n    hosts:\n      - 10.0.0.3\n    cmd: bin/jobs\n",
        "",
    );
    snapshot_plan(
        "plan_single_role",
        &config,
        &[],
        &["deploy", "--version", "1.0.0"],
    );
}

#[test]
fn snapshot_web_workers_boot_limit_2() {
    let config = CONFIG.replace("    - 10.0.0.2\n", "    - 10.0.0.2\n    - 10.0.0.4\n")
        + "boot:\n  limit: 2\n  wait: 3\n";
    snapshot_plan(
        "plan_boot_limit",
        &config,
        &[],
        &["deploy", "--version", "1.0.0"],
    );
}

#[test]
fn snapshot_destination() {
    snapshot_plan(
        "plan_destination",
        CONFIG,
        &[
            (
                "config/deploy.staging.yml",
                "servers:\n  web:\n    - 10.9.0.1\n  workers:\n    - 10.9.0.2\n",
            ),
            (".kamal/secrets.staging", SECRETS),
        ],
        &["deploy", "-d", "staging", "--version", "1.0.0"],
    );
}

#[test]
fn snapshot_skip_push() {
    snapshot_plan(
        "plan_skip_push",
        CONFIG,
        &[],
        &["deploy", "--skip-push", "--version", "1.2.3"],
    );
}

#[test]
fn snapshot_rollback() {
    snapshot_plan("plan_rollback", CONFIG, &[], &["rollback", "0.9.0"]);
}

#[test]
fn snapshot_roles_workers() {
    snapshot_plan(
        "plan_roles_workers",
        CONFIG,
        &[],
        &["deploy", "--roles", "workers", "--version", "1.0.0"],
    );
}

#[test]
fn snapshot_local_registry() {
    // Kamal's local registry: its container before pre-build, no login anywhere, each host's
    // pull inside its own tunnel.
    let config = CONFIG
        .replace(
            "registry:\n  server: registry.example:5000\n  username: deployer\n  password:\n    - REGISTRY_PASSWORD\n",
            "registry:\n  server: localhost:5555\n",
        )
        .replace(
            "  workers:\n    hosts:\n      - 10.0.0.3\n    cmd: bin/jobs\n",
            "",
        );
    snapshot_plan(
        "plan_local_registry",
        &config,
        &[],
        &["deploy", "--version", "1.0.0"],
    );
}

#[test]
fn snapshot_replicas_web_three_workers_two() {
    // `x-dray: replicas`: web ×3 behind the proxy, workers ×2 without it, replaced one at a
    // time (2..N, then Kamal's name last); prune counts versions.
    let config = CONFIG.to_string() + "x-dray:\n  replicas:\n    web: 3\n    workers: 2\n";
    snapshot_plan(
        "plan_replicas",
        &config,
        &[],
        &["deploy", "--version", "1.0.0"],
    );
}

#[test]
fn snapshot_replicas_app_commands() {
    let config = CONFIG.to_string() + "x-dray:\n  replicas:\n    web: 3\n";
    for (name, args) in [
        (
            "plan_replicas_app_stop",
            &["app", "stop", "--version", "1.0.0"][..],
        ),
        (
            "plan_replicas_app_start",
            &["app", "start", "--version", "1.0.0"][..],
        ),
        ("plan_replicas_app_logs", &["app", "logs", "-r", "web"][..]),
    ] {
        snapshot_plan(name, &config, &[], args);
    }
}

#[test]
fn one_replica_plans_exactly_as_kamals_one_container() {
    let dry_run = |config: &str| {
        let dir = repo(config);
        let out = dray_cmd(dir.path(), &["deploy", "--version", "1.0.0", "--dry-run"])
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The lock stage and the release's time differ from run to run.
        let mut in_lock = false;
        let mut lines = Vec::new();
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            let stage = l.split_once(". ").filter(|(n, _)| n.parse::<u32>().is_ok());
            if let Some((_, name)) = stage {
                in_lock = name == "lock";
            }
            if !in_lock
                && !l.contains("RECORDED_AT")
                && !l.contains("recorded_at")
                && !l.contains("dray-releases")
            {
                lines.push(l.to_string());
            }
        }
        lines
    };
    let one = CONFIG.to_string() + "x-dray:\n  replicas:\n    web: 1\n    workers: 1\n";
    assert_eq!(dry_run(&one), dry_run(CONFIG));
}

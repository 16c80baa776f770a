//! A corpus of deploy.yml files written the way real teams write them
//! (`tests/fixtures/realistic/<project>/`: `config/deploy.yml`, destination files, `.kamal/secrets*`,
//! hooks), each loaded through the binary: `dray config` and
//! `dray deploy --dry-run --skip-push --version 1.0.0 [-d <destination>]`.
//!
//! Each deploy.yml starts with comment lines that say what must happen:
//!
//! - `# expect: plans`: both commands succeed (for every destination listed);
//! - `# expect: deploy-refused <text>`: `dray config` succeeds, the deploy exits 2 saying `text`;
//! - `# expect: refused <key.path>`: both exit 2 at load, naming the key path and saying
//!   "not supported yet by dray";
//! - `# destinations: staging production`: run once per destination (`-d`), not without one;
//! - `# env: NAME=value`: set for the run (what ERB reads);
//! - `# plan-has: text` / `# plan-has@<destination>: text`: the deploy plan contains `text`.
//!
//! No secret value of the project's secrets files may appear in any output.

use std::path::{Path, PathBuf};

use crate::support::{dray_cmd, write};

/// What a deploy.yml's leading comments ask for.
#[derive(Debug, Default)]
struct Expect {
    /// `None`: plans; `Some(path)`: refused naming `path`.
    refused: Option<String>,
    /// `# expect: deploy-refused <text>`: the config loads, the deploy exits 2 saying `text`.
    deploy_refused: Option<String>,
    destinations: Vec<String>,
    env: Vec<(String, String)>,
    /// (destination or `None` for every run, text).
    plan_has: Vec<(Option<String>, String)>,
}

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/realistic")
}

fn parse_expect(text: &str) -> Result<Expect, String> {
    let mut expect = Expect::default();
    let mut seen_expect = false;
    for line in text.lines() {
        let Some(comment) = line.strip_prefix('#') else {
            break;
        };
        let comment = comment.trim();
        let Some((key, value)) = comment.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "expect" => {
                seen_expect = true;
                if value == "plans" {
                    expect.refused = None;
                } else if let Some(text) = value.strip_prefix("deploy-refused ") {
                    expect.deploy_refused = Some(text.trim().to_string());
                } else if let Some(path) = value.strip_prefix("refused ") {
                    expect.refused = Some(path.trim().to_string());
                } else {
                    return Err(format!("unknown expectation `{value}`"));
                }
            }
            "destinations" => {
                expect.destinations = value.split_whitespace().map(String::from).collect();
            }
            "env" => {
                let (name, v) = value
                    .split_once('=')
                    .ok_or_else(|| format!("`# env:` wants NAME=value, got `{value}`"))?;
                expect.env.push((name.to_string(), v.to_string()));
            }
            k if k == "plan-has" || k.starts_with("plan-has@") => {
                let dest = k.strip_prefix("plan-has@").map(String::from);
                expect.plan_has.push((dest, value.to_string()));
            }
            _ => {}
        }
    }
    if !seen_expect {
        return Err("no `# expect:` line at the top".into());
    }
    Ok(expect)
}

/// Copy `from` into `to`, recursively; hooks are made executable.
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&path, &target);
        } else {
            write(&target, &std::fs::read_to_string(&path).expect("read"));
            if path.parent().and_then(|p| p.file_name()) == Some("hooks".as_ref()) {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                    .expect("chmod");
            }
        }
    }
}

/// Every secret value in the project's `.kamal/secrets*` files (long enough to search for).
fn secret_values(dir: &Path) -> Vec<String> {
    let mut values = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir.join(".kamal")) else {
        return values;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.starts_with("secrets") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            if let Some((_, v)) = line.split_once('=') {
                let v = v.trim().trim_matches('"').trim_matches('\'');
                if v.len() >= 8 && !v.contains('$') {
                    values.push(v.to_string());
                }
            }
        }
    }
    values
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(dir: &Path, expect: &Expect, args: &[&str]) -> Run {
    let mut cmd = dray_cmd(dir, args);
    for (k, v) in &expect.env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run dray");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// What is wrong with one project, if anything.
fn check(project: &Path) -> Vec<String> {
    let deploy_yml = project.join("config/deploy.yml");
    let text = std::fs::read_to_string(&deploy_yml).unwrap_or_default();
    let expect = match parse_expect(&text) {
        Ok(e) => e,
        Err(e) => return vec![e],
    };
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(project, dir.path());
    let secrets = secret_values(dir.path());
    let destinations: Vec<Option<&str>> = if expect.destinations.is_empty() {
        vec![None]
    } else {
        expect
            .destinations
            .iter()
            .map(|d| Some(d.as_str()))
            .collect()
    };
    let mut problems = Vec::new();
    for dest in destinations {
        let mut config_args = vec!["config", "--version", "1.0.0"];
        let mut deploy_args = vec!["deploy", "--dry-run", "--skip-push", "--version", "1.0.0"];
        if let Some(d) = dest {
            config_args.extend(["-d", d]);
            deploy_args.extend(["-d", d]);
        }
        let label = dest.map(|d| format!(" -d {d}")).unwrap_or_default();
        for (name, args) in [("config", &config_args), ("deploy", &deploy_args)] {
            let out = run(dir.path(), &expect, args);
            let first_error = out
                .stderr
                .lines()
                .find(|l| l.starts_with("error:"))
                .unwrap_or_else(|| out.stderr.lines().next().unwrap_or(""))
                .to_string();
            if let (Some(text), "deploy") = (&expect.deploy_refused, name) {
                if out.code != Some(2) || !out.stderr.contains(text.as_str()) {
                    problems.push(format!(
                        "`dray deploy{label}` should be refused saying `{text}`: {first_error}"
                    ));
                }
                continue;
            }
            match &expect.refused {
                None => {
                    if out.code != Some(0) {
                        problems.push(format!("`dray {name}{label}` failed: {first_error}"));
                        continue;
                    }
                    if name == "deploy" {
                        if !out.stdout.starts_with("plan: deploy") {
                            problems.push(format!("`dray deploy{label}` printed no plan"));
                        }
                        for (only, wanted) in &expect.plan_has {
                            if only.as_deref().is_some_and(|o| Some(o) != dest) {
                                continue;
                            }
                            if !out.stdout.contains(wanted.as_str()) {
                                problems.push(format!(
                                    "`dray deploy{label}`: the plan has no `{wanted}`"
                                ));
                            }
                        }
                    }
                }
                Some(path) => {
                    let refused = out.code == Some(2)
                        && out.stderr.contains("not supported yet by dray")
                        && out.stderr.contains(path.as_str());
                    if !refused {
                        let what = if out.code == Some(0) {
                            "accepted it".to_string()
                        } else {
                            format!("failed otherwise: {first_error}")
                        };
                        problems.push(format!(
                            "`dray {name}{label}` should refuse `{path}` as not supported yet, \
                             {what}"
                        ));
                    }
                }
            }
            for secret in &secrets {
                if out.stdout.contains(secret.as_str()) || out.stderr.contains(secret.as_str()) {
                    problems.push(format!("`dray {name}{label}` shows a secret value"));
                }
            }
        }
    }
    problems
}

#[test]
fn expectations_parse() {
    let e = parse_expect(
        "# expect: refused accessories\n# destinations: staging production\n\
         # env: HOST=10.0.0.1\n# plan-has@staging: --env\nservice: x\n# expect: plans\n",
    )
    .expect("parses");
    assert_eq!(e.refused.as_deref(), Some("accessories"));
    assert_eq!(e.destinations, ["staging", "production"]);
    assert_eq!(e.env, [("HOST".to_string(), "10.0.0.1".to_string())]);
    assert_eq!(
        e.plan_has,
        [(Some("staging".to_string()), "--env".to_string())]
    );
    assert!(parse_expect("service: x\n").is_err());
}

#[test]
fn the_corpus_is_big_enough() {
    let count = std::fs::read_dir(corpus())
        .expect("corpus dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().join("config/deploy.yml").is_file())
        })
        .count();
    assert!(count >= 30, "only {count} projects in the corpus");
}

#[test]
fn every_realistic_config_does_what_its_header_says() {
    let mut projects: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("config/deploy.yml").is_file())
        .collect();
    projects.sort();
    let mut failures = Vec::new();
    for project in &projects {
        let name = project
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        for problem in check(project) {
            failures.push(format!("{name}: {problem}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems in {} projects:\n  {}",
        failures.len(),
        projects.len(),
        failures.join("\n  ")
    );
}

//! Benchmarks of dray's pure parts (no processes, no network): config load + validation of the
//! example `deploy.yml`, plan building for 200 hosts in 2 roles, and shell quoting.
//! Run with `cargo bench --bench pure`; `scripts/bench` runs it and reports the figures in
//! `docs/benchmarks.md`.

use std::hint::black_box;

use dray::config::load::load_str_without_commands;
use dray::config::secrets::Secrets;
use dray::config::Config;
use dray::plan::{build_plan, Filters, PlanInputs, PlanKind, Targets};
use dray::release::{Release, Resolved, VersionSource};

fn main() {
    divan::main();
}

const EXAMPLE: &str = include_str!("../deploy.yml");

/// The example deploy.yml with `n` hosts: web on the first n-1 (n ≥ 2), workers on the last.
fn config_with_hosts(n: usize) -> String {
    let host = |i: usize| format!("      - 10.0.{}.{}\n", i / 250, i % 250 + 1);
    let web: String = (0..n.saturating_sub(1).max(1)).map(host).collect();
    let workers: String = if n >= 2 { host(n - 1) } else { String::new() };
    let mut servers = format!("servers:\n  web:\n    hosts:\n{web}    proxy: false\n");
    if !workers.is_empty() {
        servers.push_str(&format!(
            "  workers:\n    hosts:\n{workers}    cmd: /app/start worker\n"
        ));
    }
    let start = EXAMPLE.find("servers:").expect("servers:");
    let end = EXAMPLE.find("# Kamal treats").expect("registry comment");
    format!("{}{}\n{}", &EXAMPLE[..start], servers, &EXAMPLE[end..])
}

fn load(text: &str) -> Config {
    load_str_without_commands(text, "config/deploy.yml").expect("config loads")
}

fn resolved(config: &Config) -> Resolved {
    Resolved {
        release: Release::new(
            &config.service,
            &config.repository,
            None,
            "bench-1",
            "bench@example.com",
            "2026-01-01T00:00:00Z",
        ),
        source: VersionSource::Flag,
        uncommitted: Vec::new(),
        warnings: Vec::new(),
    }
}

/// Config load + validation (template render, YAML parse, deserialize, validate) of the example
/// deploy.yml, from text already in memory.
#[divan::bench]
fn config_load_example(bencher: divan::Bencher) {
    bencher.bench(|| load(black_box(EXAMPLE)));
}

/// The same for the generated 200-host configuration.
#[divan::bench]
fn config_load_200_hosts(bencher: divan::Bencher) {
    let text = config_with_hosts(200);
    bencher.bench(|| load(black_box(&text)));
}

/// Targets + plan of `deploy --skip-push --version bench-1` (hooks included) for 1, 3, 5, 50
/// and 200 hosts (web on all but the last host, workers on the last).
#[divan::bench(args = [1, 3, 5, 50, 200])]
fn plan_deploy(bencher: divan::Bencher, hosts: usize) {
    let config = load(&config_with_hosts(hosts));
    let resolved = resolved(&config);
    let secrets = Secrets::default();
    bencher.bench(|| {
        let targets = Targets::resolve(&config, &Filters::default()).expect("targets");
        build_plan(&PlanInputs {
            kind: PlanKind::Deploy,
            config: &config,
            resolved: &resolved,
            targets: &targets,
            skip_push: true,
            no_cache: false,
            skip_hooks: false,
            secrets: &secrets,
            lock_inherited: false,
            build_env: dray::plan::builder::BuildEnv::legacy(),
            error_pages: None,
            acme_ca: None,
            bootstrap: Vec::new(),
            accessories: Vec::new(),
            fold_round_trips: true,
            lock_details: dray::lock::details(
                "bench",
                &resolved.release.version,
                dray::docker::lock::AUTOMATIC_MESSAGE,
            ),
            lock_wait: None,
            break_stale_lock: false,
            no_revert: false,
        })
    });
}

/// Quoting words for the remote shell: a plain word, a word with spaces, one with quotes.
#[divan::bench(args = ["127.0.0.1:5000/dray-demo:v1", "APP_GREETING=hello from dray", "{{.State.Health.Status}} it's"])]
fn shell_quote(arg: &str) -> String {
    dray::shell::quote(black_box(arg))
}

/// Quoting the argv of a typical `docker run` (30 words) into one command line.
#[divan::bench]
fn shell_join_docker_run() -> String {
    let argv = [
        "docker",
        "run",
        "--detach",
        "--restart",
        "unless-stopped",
        "--name",
        "dray-demo-web-v1",
        "--network",
        "kamal",
        "--env",
        "KAMAL_CONTAINER_NAME=dray-demo-web-v1",
        "--env",
        "KAMAL_VERSION=v1",
        "--env",
        "KAMAL_HOST=127.0.0.11",
        "--env",
        "APP_GREETING=hello from dray",
        "--env-file",
        ".kamal/apps/dray-demo/env/roles/web.env",
        "--log-opt",
        "max-size=10m",
        "--label",
        "service=dray-demo",
        "--label",
        "role=web",
        "--label",
        "destination",
        "127.0.0.1:5000/dray-demo:v1",
        "/app/start",
        "web",
    ];
    dray::shell::join(black_box(argv.iter()))
}

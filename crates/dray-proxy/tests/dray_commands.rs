//! The command lines dray's own builders (`dray::docker::proxy`, `src/docker/proxy.rs` at the
//! repository root) produce parse with dray-proxy's command line, with the values they carry.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;

use dray::command::CommandSpec;
use dray::config::{load, Config, LoadOptions};
use dray::docker::proxy;
use dray_proxy::cli::{Cli, Command};

const BASE: &str = "\
service: app
image: dhh/app
registry:
  username: dhh
  password: secret
servers:
  web:
    - 1.1.1.1
builder:
  arch: amd64
";

fn config(extra: &str) -> Config {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("config");
    std::fs::create_dir_all(&cfg).expect("config dir");
    std::fs::write(cfg.join("deploy.yml"), format!("{BASE}{extra}")).expect("write deploy.yml");
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").expect("write Dockerfile");
    let opts = LoadOptions {
        config_file: "config/deploy.yml".into(),
        destination: None,
        cwd: dir.path().to_path_buf(),
        env: BTreeMap::new(),
    };
    match load(&opts) {
        Ok(c) => c,
        Err(e) => panic!("config does not load: {e}"),
    }
}

/// The argv after `docker exec kamal-proxy`, as the proxy's own binary receives it.
fn proxy_argv(cmd: &CommandSpec) -> Vec<String> {
    let args: Vec<String> = cmd.args.iter().map(|a| a.as_str().to_string()).collect();
    assert_eq!(&args[..3], ["exec", "kamal-proxy", "kamal-proxy"]);
    args[2..].to_vec()
}

fn parse(argv: &[String]) -> Command {
    match Cli::try_parse_from(argv) {
        Ok(cli) => cli.command,
        Err(e) => panic!("{argv:?} does not parse: {e}"),
    }
}

#[test]
fn kamal_default_deploy_parses() {
    let c = config("");
    let web = c.role("web").expect("web");
    let cmd = proxy::deploy(&c, web, "172.1.0.2", "999", "1.1.1.1").expect("proxy role");
    let Command::Deploy(d) = parse(&proxy_argv(&cmd)) else {
        panic!("not a deploy");
    };
    assert_eq!(d.service, "app-web");
    let spec = d.to_spec().expect("spec");
    assert_eq!(spec.target, "172.1.0.2:80");
    assert!(spec.hosts.is_empty());
    assert_eq!(d.deploy_timeout, Duration::from_secs(30));
    assert_eq!(d.drain_timeout, Duration::from_secs(30));
    assert_eq!(d.buffer_requests, Some(true));
    assert_eq!(d.buffer_responses, Some(true));
    // Kamal's defaults: both buffered, 1 MB in memory, no limits.
    assert!(spec.options.buffer_requests && spec.options.buffer_responses);
    assert_eq!(spec.options.buffer_memory, 1024 * 1024);
    assert_eq!(
        (
            spec.options.max_request_body,
            spec.options.max_response_body
        ),
        (0, 0)
    );
    assert_eq!(
        spec.options.log_request_headers,
        ["Cache-Control", "Last-Modified", "User-Agent"]
    );
    assert_eq!(spec.options.health_check.path, "/up");
    assert!(spec.strip_path_prefix);
    assert!(spec.options.forward_headers);
}

#[test]
fn deploy_with_every_flag_dray_emits_parses() {
    let yaml = "error_pages_path: public\nproxy:\n  hosts: [example.com, www.example.com]\n  app_port: 3000\n  ssl:\n    certificate_pem: CERT\n    private_key_pem: KEY\n  ssl_redirect: false\n  forward_headers: false\n  response_timeout: 10\n  path_prefixes: [/, /api]\n  strip_path_prefix: false\n  healthcheck:\n    interval: 3\n    path: /health\n    timeout: 4\n  buffering:\n    requests: false\n    responses: true\n    max_request_body: 1000\n    max_response_body: 2000\n    memory: 3000\n  logging:\n    request_headers: [X-Request-Id]\n    response_headers: [X-Runtime]\n";
    let c = config(yaml);
    let web = c.role("web").expect("web");
    let cmd = proxy::deploy(&c, web, "abc123", "999", "1.1.1.1").expect("proxy role");
    let Command::Deploy(d) = parse(&proxy_argv(&cmd)) else {
        panic!("not a deploy");
    };
    // The buffering settings reach the service's options.
    let spec = d.to_spec().expect("spec");
    assert!(!spec.options.buffer_requests);
    assert!(spec.options.buffer_responses);
    assert_eq!(spec.options.max_request_body, 1000);
    assert_eq!(spec.options.max_response_body, 2000);
    assert_eq!(spec.options.buffer_memory, 3000);
    assert_eq!(spec.options.log_request_headers, ["X-Request-Id"]);
    assert_eq!(spec.options.log_response_headers, ["X-Runtime"]);
    assert_eq!(spec.target, "abc123:3000");
    assert_eq!(spec.hosts, ["example.com", "www.example.com"]);
    // kamal-proxy refuses TLS on a service that does not serve the root path.
    assert_eq!(spec.path_prefixes, ["/", "/api"]);
    assert!(!spec.strip_path_prefix);
    assert!(spec.tls);
    assert!(!spec.options.forward_headers);
    assert_eq!(d.tls_redirect, Some(false));
    assert!(!spec.tls_settings.redirect);
    assert!(spec.tls_settings.files().is_some());
    assert!(spec.error_pages.is_some());
    assert_eq!(d.buffer_requests, Some(false));
    assert_eq!(d.max_response_body, Some(2000));
    assert_eq!(d.buffer_memory, Some(3000));
    assert!(d
        .tls_certificate_path
        .as_deref()
        .is_some_and(|p| p.ends_with("/tls/web/cert.pem")));
    assert!(d
        .error_pages
        .as_deref()
        .is_some_and(|p| p.ends_with("/999")));
    assert_eq!(spec.options.target_timeout, Duration::from_secs(10));
    assert_eq!(spec.options.health_check.interval, Duration::from_secs(3));
    assert_eq!(spec.options.health_check.timeout, Duration::from_secs(4));
    assert_eq!(spec.options.health_check.path, "/health");
    assert_eq!(spec.options.log_request_headers, ["X-Request-Id"]);
    assert_eq!(spec.options.log_response_headers, ["X-Runtime"]);
}

#[test]
fn remove_stop_resume_parse() {
    let c = config("");
    let web = c.role("web").expect("web");
    let Command::Remove(r) = parse(&proxy_argv(&proxy::remove(&c, web, "h"))) else {
        panic!("not a remove");
    };
    assert_eq!(r.service, "app-web");
    let Command::Resume(r) = parse(&proxy_argv(&proxy::resume(&c, web, "h"))) else {
        panic!("not a resume");
    };
    assert_eq!(r.service, "app-web");
    let stop = proxy::stop_app(&c, web, Some(10), Some("Back soon, promise"), "h");
    let Command::Stop(s) = parse(&proxy_argv(&stop)) else {
        panic!("not a stop");
    };
    assert_eq!(s.service, "app-web");
    assert_eq!(s.drain_timeout, Duration::from_secs(10));
    assert_eq!(s.message, "Back soon, promise");
    let Command::Stop(s) = parse(&proxy_argv(&proxy::stop_app(&c, web, None, None, "h"))) else {
        panic!("not a stop");
    };
    assert_eq!(s.message, "");
}

#[test]
fn run_command_of_the_container_parses() {
    let c = config("proxy:\n  run:\n    metrics_port: 9090\n    debug: true\n");
    let cmd = proxy::run(proxy::run_config_for(&c, "1.1.1.1"), "1.1.1.1");
    let args: Vec<String> = cmd.args.iter().map(|a| a.as_str().to_string()).collect();
    let at = args
        .iter()
        .rposition(|a| a == "kamal-proxy")
        .expect("image command");
    let Command::Run(r) = parse(&args[at..]) else {
        panic!("not a run");
    };
    assert!(r.debug);
    assert_eq!(r.metrics_port, 9090);
    assert_eq!(r.http_port, 80);
}

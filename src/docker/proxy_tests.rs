//! Snapshot tests of the proxy commands, against Kamal's `test/commands/proxy_test.rb` and the
//! deploy strings of `test/commands/app_test.rb`.

use super::*;
use crate::docker::test_support::{base, config_with, staging, BASE};

fn with_proxy(proxy_yaml: &str, destination: Option<&str>) -> Config {
    config_with(&format!("{BASE}{proxy_yaml}"), destination)
}

#[test]
fn network_and_legacy_run_match_kamal() {
    insta::assert_snapshot!(create_network("1.1.1.1").to_shell(), @"docker network create kamal");
    // Kamal CT "run" (legacy, no proxy.run), wrapped in one `sh -c`.
    insta::assert_snapshot!(run(None, "1.1.1.1").to_shell());
    insta::assert_snapshot!(start("1.1.1.1").to_shell(), @"docker container start kamal-proxy");
    insta::assert_snapshot!(stop("1.1.1.1").to_shell(), @"docker container stop kamal-proxy");
    insta::assert_snapshot!(remove_container("1.1.1.1").to_shell(), @"docker container prune --force --filter label=org.opencontainers.image.title=kamal-proxy");
    insta::assert_snapshot!(ensure_apps_config_directory("1.1.1.1").to_shell(), @"mkdir -p .kamal/proxy/apps-config");
    insta::assert_snapshot!(version("1.1.1.1").to_shell());
}

#[test]
fn run_with_proxy_run() {
    let c = with_proxy("proxy:\n  run:\n    registry: registry:4443\n", None);
    let r = run_config_for(&c, "1.1.1.1");
    assert!(r.is_some());
    // Kamal CT "registry run config".
    insta::assert_snapshot!(run(r, "1.1.1.1").to_shell(), @r#"docker run --name kamal-proxy --network kamal --detach --restart unless-stopped --volume kamal-proxy-config:/home/kamal-proxy/.config/kamal-proxy --volume "$PWD"/.kamal/proxy/apps-config:/home/kamal-proxy/.apps-config --publish 80:80 --publish 443:443 --log-opt max-size=10m registry:4443/basecamp/kamal-proxy:v0.9.2 kamal-proxy run"#);
    let full = with_proxy(
        "proxy:\n  run:\n    bind_ips: [0.0.0.0, \"::1\"]\n    http_port: 8080\n    metrics_port: 9090\n    debug: true\n    log_max_size: 50m\n    version: v1.2.3\n    options:\n      cpus: 2\n",
        None,
    );
    insta::assert_snapshot!(run(run_config_for(&full, "1.1.1.1"), "1.1.1.1").to_shell());
    let unpublished = with_proxy("proxy:\n  run:\n    publish: false\n", None);
    insta::assert_snapshot!(boot(run_config_for(&unpublished, "1.1.1.1"), "1.1.1.1").to_shell());
}

#[test]
fn deploy_matches_kamal() {
    let c = base();
    let web = c.role("web").expect("web");
    let cmd = deploy(&c, web, "172.1.0.2", "999", "1.1.1.1").expect("proxy role");
    assert_eq!(cmd.purpose, "route web to new container on 1.1.1.1");
    // Kamal CT "deploy".
    insta::assert_snapshot!(cmd.to_shell(), @"docker exec kamal-proxy kamal-proxy deploy app-web --target=172.1.0.2:80 --deploy-timeout=30s --drain-timeout=30s --buffer-requests --buffer-responses --log-request-header=Cache-Control --log-request-header=Last-Modified --log-request-header=User-Agent");
    assert!(deploy(&c, c.role("workers").expect("workers"), "x", "1", "h").is_none());
    // Kamal CT "deploy with SSL targeting multiple hosts".
    let ssl = with_proxy(
        "proxy:\n  ssl: true\n  hosts: [example.com, anotherexample.com]\n",
        None,
    );
    insta::assert_snapshot!(deploy(&ssl, ssl.role("web").expect("web"), "172.1.0.2", "999", "1.1.1.1").expect("proxy").to_shell(), @"docker exec kamal-proxy kamal-proxy deploy app-web --target=172.1.0.2:80 --host=example.com --host=anotherexample.com --tls --deploy-timeout=30s --drain-timeout=30s --buffer-requests --buffer-responses --log-request-header=Cache-Control --log-request-header=Last-Modified --log-request-header=User-Agent");
}

#[test]
fn deploy_with_every_flag() {
    let yaml = "error_pages_path: public\nproxy:\n  host: example.com\n  app_port: 3000\n  ssl:\n    certificate_pem: CERT\n    private_key_pem: KEY\n  ssl_redirect: false\n  forward_headers: true\n  response_timeout: 10\n  path_prefixes: [/api, /v2]\n  strip_path_prefix: false\n  healthcheck:\n    interval: 3\n    path: /health\n    timeout: 4\n  buffering:\n    requests: false\n    responses: true\n    max_request_body: 1000\n    max_response_body: 2000\n    memory: 3000\n  logging:\n    request_headers: [X-Request-Id]\n    response_headers: [X-Runtime]\n";
    let c = with_proxy(yaml, Some("staging"));
    let web = c.role("web").expect("web");
    insta::assert_snapshot!(deploy(&c, web, "abc123", "999", "1.1.1.1")
        .expect("proxy")
        .to_shell());
}

#[test]
fn x_dray_acme_directory_and_ca_go_to_tls_roles_only() {
    let ssl = "proxy:\n  ssl: true\n  host: example.com\n";
    let c = with_proxy(
        &format!("{ssl}x-dray:\n  proxy:\n    acme_directory: https://10.0.0.1:14000/dir\n    acme_ca_certs: ca.pem\n"),
        Some("staging"),
    );
    let web = c.role("web").expect("web");
    insta::assert_snapshot!(deploy(&c, web, "abc123", "999", "1.1.1.1").expect("proxy").to_shell(), @"docker exec kamal-proxy kamal-proxy deploy app-web-staging --target=abc123:80 --host=example.com --tls --tls-acme-directory=https://10.0.0.1:14000/dir --tls-acme-ca-certs=/home/kamal-proxy/.apps-config/app-staging/acme/ca.pem --deploy-timeout=30s --drain-timeout=30s --buffer-requests --buffer-responses --log-request-header=Cache-Control --log-request-header=Last-Modified --log-request-header=User-Agent");
    // Without the CA file: the directory alone.
    let c = with_proxy(
        &format!("{ssl}x-dray:\n  proxy:\n    acme_directory: https://10.0.0.1:14000/dir\n"),
        None,
    );
    let cmd = deploy(&c, c.role("web").expect("web"), "abc", "1", "h")
        .expect("proxy")
        .to_shell();
    assert!(
        cmd.contains(" --tls --tls-acme-directory=https://10.0.0.1:14000/dir --deploy-timeout"),
        "{cmd}"
    );
    assert!(!cmd.contains("--tls-acme-ca-certs"), "{cmd}");
    // An accessory's route (no role directory) never gets them.
    let proxy = c.role("web").and_then(|r| r.proxy.as_ref()).expect("proxy");
    let args = deploy_args(&c, proxy, None, "abc", "1").join(" ");
    assert!(!args.contains("acme"), "{args}");
}

#[test]
fn remove_resume_stop_match_kamal() {
    let c = base();
    let web = c.role("web").expect("web");
    insta::assert_snapshot!(remove(&c, web, "1.1.1.1").to_shell(), @"docker exec kamal-proxy kamal-proxy remove app-web");
    insta::assert_snapshot!(resume(&c, web, "1.1.1.1").to_shell(), @"docker exec kamal-proxy kamal-proxy resume app-web");
    insta::assert_snapshot!(stop_app(&c, web, None, None, "1.1.1.1").to_shell(), @"docker exec kamal-proxy kamal-proxy stop app-web");
    let s = staging();
    insta::assert_snapshot!(stop_app(&s, s.role("web").expect("web"), Some(10), Some("Back soon"), "1.1.1.1").to_shell(), @"docker exec kamal-proxy kamal-proxy stop app-web-staging --drain-timeout=10s '--message=Back soon'");
}

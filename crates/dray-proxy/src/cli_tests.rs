//! kamal-proxy's command-line habits: Go-style bools, comma lists, durations, bad targets.
//! (That the command lines dray itself emits parse is `tests/dray_commands.rs`.)

use std::time::Duration;

use clap::Parser;

use super::*;

fn parse(argv: &[String]) -> Command {
    match Cli::try_parse_from(argv) {
        Ok(cli) => cli.command,
        Err(e) => panic!("{argv:?} does not parse: {e}"),
    }
}

#[test]
fn go_style_bools_and_lists() {
    let argv: Vec<String> = [
        "kamal-proxy",
        "deploy",
        "s",
        "--target",
        "t:80",
        "--host=a.test,b.test",
        "--strip-path-prefix=f",
        "--forward-headers=0",
        "--deploy-timeout=1m30s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let Command::Deploy(d) = parse(&argv) else {
        panic!("not a deploy");
    };
    let spec = d.to_spec().expect("spec");
    assert_eq!(spec.hosts, ["a.test", "b.test"]);
    assert!(!spec.strip_path_prefix);
    assert!(!spec.options.forward_headers);
    assert_eq!(d.deploy_timeout, Duration::from_secs(90));
}

#[test]
fn bad_targets_are_refused() {
    let argv = |t: &str| -> Vec<String> {
        ["kamal-proxy", "deploy", "s", t]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let Command::Deploy(d) = parse(&argv("--target=a:1,b:2")) else {
        panic!("not a deploy");
    };
    assert!(d.to_spec().is_err());
    let Command::Deploy(d) = parse(&argv("--target=nohost")) else {
        panic!("not a deploy");
    };
    assert!(d.to_spec().is_err());
    assert!(Cli::try_parse_from(["kamal-proxy", "deploy", "s"]).is_err());
}

fn deploy(flags: &[&str]) -> Result<crate::service::ServiceSpec, String> {
    let mut argv = vec!["kamal-proxy", "deploy", "s", "--target=t:80"];
    argv.extend(flags);
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let Command::Deploy(d) = parse(&argv) else {
        panic!("not a deploy");
    };
    d.to_spec()
}

#[test]
fn tls_needs_hosts_the_root_path_and_both_files() {
    let err = |flags: &[&str]| deploy(flags).expect_err("refused");
    assert_eq!(err(&["--tls"]), "host must be set when using TLS");
    assert_eq!(
        err(&["--tls", "--host=a.test", "--path-prefix=/api"]),
        "TLS settings must be specified on the root path service"
    );
    assert!(err(&["--host=a.test", "--tls", "--tls-certificate-path=/c.pem"]).contains("together"));
    assert!(err(&["--host=a.test,b.test", "--canonical-host=c.test"]).contains("canonical-host"));
    let spec = deploy(&["--tls", "--host=a.test", "--path-prefix=/,/api"]).expect("root path");
    assert!(spec.tls && spec.tls_settings.redirect);
    assert_eq!(spec.tls_settings.files(), None);
    let spec = deploy(&[
        "--tls",
        "--host=a.test",
        "--tls-redirect=false",
        "--tls-staging",
    ])
    .expect("spec");
    assert!(!spec.tls_settings.redirect);
    assert_eq!(
        spec.tls_settings.acme_directory.as_deref(),
        Some(crate::acme::LETS_ENCRYPT_STAGING)
    );
    // Without TLS the forwarded headers are trusted by default, with TLS not.
    assert!(deploy(&[]).expect("spec").options.forward_headers);
    assert!(!spec.options.forward_headers);
}

#[test]
fn limits_not_enforced_yet_are_refused() {
    for flag in [
        "--max-request-body=1000",
        "--max-response-body=1000",
        "--buffer-memory=1000",
    ] {
        let cli = Cli::try_parse_from(["kamal-proxy", "deploy", "s", "--target=a:80", flag])
            .expect("parses");
        let Command::Deploy(d) = cli.command else {
            panic!("not a deploy")
        };
        let err = d.to_spec().expect_err(flag);
        assert!(err.contains("not supported yet by dray-proxy"), "{err}");
    }
}

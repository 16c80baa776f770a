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
    // Several targets, load balanced; the first is also `target` (what older versions read).
    let Command::Deploy(d) = parse(&argv("--target=a:1,b:2")) else {
        panic!("not a deploy");
    };
    let spec = d.to_spec().expect("two targets");
    assert_eq!(spec.target, "a:1");
    assert_eq!(spec.writer_targets(), vec!["a:1", "b:2"]);
    let Command::Deploy(d) = parse(&argv("--target=a:1")) else {
        panic!("not a deploy");
    };
    let spec = d.to_spec().expect("one target");
    assert_eq!((spec.target.as_str(), spec.targets.len()), ("a:1", 0));
    let Command::Deploy(d) = parse(&argv("--target=a:1,a:1")) else {
        panic!("not a deploy");
    };
    assert_eq!(
        d.to_spec().expect_err("twice"),
        "target \"a:1\" is given twice"
    );
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
fn buffering_limits_as_kamal_proxy_checks_them() {
    let deploy = |flags: &[&str]| {
        let mut argv = vec!["kamal-proxy", "deploy", "s", "--target=a:80"];
        argv.extend(flags);
        let cli = Cli::try_parse_from(argv).expect("parses");
        let Command::Deploy(d) = cli.command else {
            panic!("not a deploy")
        };
        d.to_spec()
    };
    // kamal-proxy's preRun: a limit needs its buffering flag given.
    assert_eq!(
        deploy(&["--max-request-body=1000"]).expect_err("no buffering flag"),
        "max-request-body can only be set when request buffering is enabled"
    );
    assert_eq!(
        deploy(&["--max-response-body=1000"]).expect_err("no buffering flag"),
        "max-response-body can only be set when response buffering is enabled"
    );
    assert!(deploy(&["--buffer-memory=-1"]).is_err());
    let spec = deploy(&[
        "--buffer-requests",
        "--max-request-body=1000",
        "--buffer-responses",
        "--max-response-body=2000",
        "--buffer-memory=10",
    ])
    .expect("spec");
    let o = &spec.options;
    assert!(o.buffer_requests && o.buffer_responses);
    assert_eq!(
        (o.max_request_body, o.max_response_body, o.buffer_memory),
        (1000, 2000, 10)
    );
    let plain = deploy(&[]).expect("spec");
    assert!(!plain.options.buffer_requests && !plain.options.buffer_responses);
    assert_eq!(plain.options.buffer_memory, 1024 * 1024);
}

#[test]
fn rollout_commands_parse() {
    let cli = Cli::try_parse_from([
        "kamal-proxy",
        "rollout",
        "set",
        "s",
        "--percent=25",
        "--list=a,b",
    ])
    .expect("parses");
    let Command::Rollout(RolloutCommand::Set(s)) = cli.command else {
        panic!("not a rollout set")
    };
    assert_eq!(
        (s.percent, s.list),
        (Some(25), vec!["a".to_string(), "b".to_string()])
    );
    assert!(Cli::try_parse_from(["kamal-proxy", "rollout", "set", "s"]).is_err());
    let cli = Cli::try_parse_from(["kamal-proxy", "rollout", "deploy", "s", "--target=a:80"])
        .expect("parses");
    let Command::Rollout(RolloutCommand::Deploy(d)) = cli.command else {
        panic!("not a rollout deploy")
    };
    assert_eq!(
        d.targets().expect("target"),
        (vec!["a:80".to_string()], Vec::new())
    );
    assert!(Cli::try_parse_from(["kamal-proxy", "rollout", "stop", "s"]).is_ok());
}

#[test]
fn tls_on_demand_url_rules_are_kamal_proxys() {
    let deploy = |flags: &[&str]| {
        let mut argv = vec!["kamal-proxy", "deploy", "s", "--target=a:80"];
        argv.extend(flags);
        let cli = Cli::try_parse_from(argv).expect("parses");
        let Command::Deploy(d) = cli.command else {
            panic!("not a deploy")
        };
        d.to_spec()
    };
    let err = |flags: &[&str]| deploy(flags).expect_err("refused");
    assert_eq!(
        err(&["--tls-on-demand-url=/allow"]),
        "TLS must be enabled to use a TLS on-demand URL"
    );
    assert_eq!(
        err(&["--tls", "--host=a.test", "--tls-on-demand-url=/allow"]),
        "cannot set hosts when using a TLS on-demand URL"
    );
    assert_eq!(
        err(&[
            "--tls",
            "--tls-on-demand-url=/allow",
            "--tls-certificate-path=c",
            "--tls-private-key-path=k"
        ]),
        "cannot use a custom TLS certificate with a TLS on-demand URL"
    );
    assert_eq!(
        err(&[
            "--tls",
            "--tls-on-demand-url=/allow",
            "--canonical-host=a.test"
        ]),
        "cannot set a canonical host when using a TLS on-demand URL"
    );
    assert!(err(&["--tls", "--tls-on-demand-url=ftp://x/allow"]).contains("unsupported scheme"));
    let spec = deploy(&["--tls", "--tls-on-demand-url=https://auth.test/allow"]).expect("spec");
    assert_eq!(
        spec.tls_settings.on_demand_url.as_deref(),
        Some("https://auth.test/allow")
    );
    assert_eq!(err(&["--tls"]), "host must be set when using TLS");
}

#[test]
fn read_target_flags_are_served_and_refused_without_read_targets() {
    let deploy = |flags: &[&str]| {
        let mut argv = vec!["kamal-proxy", "deploy", "s", "--target=a:80"];
        argv.extend(flags);
        let cli = Cli::try_parse_from(argv).expect("parses");
        let Command::Deploy(d) = cli.command else {
            panic!("not a deploy")
        };
        d.to_spec()
    };
    let spec = deploy(&["--read-target=r1:80,r2:80"]).expect("read targets");
    assert_eq!(spec.read_targets, vec!["r1:80", "r2:80"]);
    assert_eq!(spec.writer_affinity_timeout, Duration::from_secs(1));
    assert!(!spec.read_targets_accept_websockets);
    let spec = deploy(&[
        "--read-target=r:80",
        "--writer-affinity-timeout=250ms",
        "--read-target-websockets",
    ])
    .expect("read targets");
    assert_eq!(spec.writer_affinity_timeout, Duration::from_millis(250));
    assert!(spec.read_targets_accept_websockets);
    for flag in ["--writer-affinity-timeout=1s", "--read-target-websockets"] {
        let err = deploy(&[flag]).expect_err(flag);
        assert!(err.contains("needs --read-target"), "{err}");
    }
    let err = deploy(&["--read-target=a:80"]).expect_err("both");
    assert!(err.contains("both --target and --read-target"), "{err}");
    let cli = Cli::try_parse_from([
        "kamal-proxy",
        "rollout",
        "deploy",
        "s",
        "--target=a:80,b:80",
        "--read-target=r:80",
    ])
    .expect("parses");
    let Command::Rollout(RolloutCommand::Deploy(d)) = cli.command else {
        panic!("not a rollout deploy")
    };
    assert_eq!(
        d.targets().expect("targets"),
        (
            vec!["a:80".to_string(), "b:80".to_string()],
            vec!["r:80".to_string()]
        )
    );
}

#[test]
fn acme_ca_certs_are_read_at_deploy_and_need_acme_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.pem");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["ca.test".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    std::fs::write(&ca, cert.pem()).expect("write");
    let flag = format!("--tls-acme-ca-certs={}", ca.display());
    let spec = deploy(&["--tls", "--host=a.test", &flag]).expect("spec");
    assert_eq!(
        spec.tls_settings.acme_ca_certs.as_deref(),
        Some(ca.display().to_string().as_str())
    );
    let scope = crate::acme::AcmeScope::of(&spec.tls_settings, dir.path());
    assert_eq!(scope.ca_certs.as_deref(), Some(ca.as_path()));
    let err = |flags: &[&str]| deploy(flags).expect_err("refused");
    assert!(err(&[&flag]).contains("TLS must be enabled"));
    assert!(err(&[
        "--tls",
        "--host=a.test",
        "--tls-certificate-path=/c.pem",
        "--tls-private-key-path=/k.pem",
        &flag
    ])
    .contains("custom TLS certificate"));
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").expect("write");
    let e = err(&[
        "--tls",
        "--host=a.test",
        &format!("--tls-acme-ca-certs={}", empty.display()),
    ]);
    assert!(e.contains("no PEM certificate"), "{e}");
    let e = err(&[
        "--tls",
        "--host=a.test",
        "--tls-acme-ca-certs=/nonexistent.pem",
    ]);
    assert!(e.contains("/nonexistent.pem"), "{e}");
}

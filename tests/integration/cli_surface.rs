//! Every subcommand of the CLI does something: none answers "not implemented yet". Each leaf
//! of the clap tree runs with `--dry-run` (nothing touches a host) in a project whose
//! configuration has the app, an accessory and a remote registry, with placeholder values for
//! its required arguments; whatever it answers, it is never the refusal of a missing command.

use clap::CommandFactory;

use crate::support::{dray, write};

/// Every leaf command path (`["app", "exec"]`, …), hidden ones included.
fn leaves(cmd: &clap::Command, prefix: Vec<String>, out: &mut Vec<(Vec<String>, Vec<String>)>) {
    let subs: Vec<&clap::Command> = cmd.get_subcommands().collect();
    if subs.is_empty() {
        let required: Vec<String> = cmd
            .get_positionals()
            .filter(|a| a.is_required_set())
            .map(|a| a.get_id().to_string())
            .collect();
        out.push((prefix, required));
        return;
    }
    for sub in subs {
        let mut path = prefix.clone();
        path.push(sub.get_name().to_string());
        leaves(sub, path, out);
    }
}

#[test]
fn no_subcommand_answers_not_implemented() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        &dir.path().join("config/deploy.yml"),
        "service: surface\nimage: surface\nservers:\n  web:\n    - 192.0.2.10\n\
         registry:\n  server: registry.example.com\n  username: u\n  password:\n    - PW\n\
         builder:\n  arch: amd64\n\
         accessories:\n  db:\n    image: busybox\n    host: 192.0.2.10\n",
    );
    write(&dir.path().join(".kamal/secrets"), "PW=secret\n");
    let mut all = Vec::new();
    leaves(&dray::cli::Cli::command(), Vec::new(), &mut all);
    assert!(all.len() > 60, "{} leaves", all.len());
    for (path, required) in all {
        if path == ["alias"] {
            continue;
        }
        let mut args: Vec<String> = path.clone();
        args.extend(required.iter().map(|_| "db".to_string()));
        // Without a version, rollback asks the hosts for the previous release.
        if path == ["rollback"] {
            args.push("v1".into());
        }
        args.push("--dry-run".into());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = dray(dir.path(), &argv);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.contains("not implemented"),
            "dray {}: {text}",
            args.join(" ")
        );
    }
}

/// `proxy logs` takes Kamal's options only, and `--follow` follows the first proxy host's log
/// on this terminal, as Kamal's does; app and accessory logs share their options.
#[test]
fn proxy_logs_options_are_kamals_and_follow_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        &dir.path().join("config/deploy.yml"),
        "service: surface\nimage: surface\nservers:\n  web:\n    - 192.0.2.10\n    - 192.0.2.11\n\
         registry:\n  server: registry.example.com\n  username: u\n  password:\n    - PW\n\
         builder:\n  arch: amd64\nproxy:\n  host: a.example\n",
    );
    write(&dir.path().join(".kamal/secrets"), "PW=secret\n");
    let out = dray(
        dir.path(),
        &["proxy", "logs", "-f", "-g", "GET", "--dry-run"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("on this terminal"), "{text}");
    assert!(
        text.contains("docker logs kamal-proxy --timestamps --tail 10 --follow 2>&1 | grep GET"),
        "{text}"
    );
    assert!(
        !text.contains("192.0.2.11"),
        "the first proxy host only: {text}"
    );
    for refused in [
        ["proxy", "logs", "--container-id", "x"],
        ["proxy", "logs", "--grep-options", "-i"],
    ] {
        let out = dray(dir.path(), &refused);
        assert_eq!(out.status.code(), Some(2), "{refused:?}");
    }
    let out = dray(
        dir.path(),
        &["app", "logs", "--grep-options=-i", "-g", "x", "--dry-run"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

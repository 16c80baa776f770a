//! `dray accessory …` without the fleet: the realistic corpus's accessories plan every
//! accessory command with no secret in the plan, and what cannot run is refused first.

use crate::support::write;

/// Every project of the realistic corpus with accessories plans each accessory command, and no
/// value of its secrets files is in the plan.
#[test]
fn realistic_projects_with_accessories_plan_every_accessory_command() {
    let corpus =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/realistic");
    let mut planned = 0;
    for entry in std::fs::read_dir(&corpus).expect("corpus") {
        let dir = entry.expect("entry").path();
        let deploy = std::fs::read_to_string(dir.join("config/deploy.yml")).unwrap_or_default();
        if !deploy.contains("\naccessories:") {
            continue;
        }
        let mut secrets: Vec<String> = Vec::new();
        for f in std::fs::read_dir(dir.join(".kamal")).into_iter().flatten() {
            let path = f.expect("entry").path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("secrets"))
            {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                secrets.extend(
                    text.lines()
                        .filter_map(|l| l.split_once('=').map(|(_, v)| v.trim().to_string()))
                        .filter(|v| v.len() > 5 && !v.starts_with('$')),
                );
            }
        }
        for sub in [
            &["boot", "all"][..],
            &["reboot", "all"],
            &["details", "all"],
            &["remove", "all", "-y"],
        ] {
            let mut args = vec!["--dry-run", "--version", "1.0.0", "accessory"];
            args.extend_from_slice(sub);
            let out = crate::support::dray_cmd(&dir, &args)
                .output()
                .expect("run dray");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}: {args:?}\n{text}",
                dir.display()
            );
            for s in &secrets {
                assert!(
                    !text.contains(s.as_str()),
                    "{}: a secret in {args:?}",
                    dir.display()
                );
            }
        }
        planned += 1;
    }
    assert!(planned >= 5, "{planned} projects with accessories");
}

/// What an accessory command cannot do is refused before anything runs, naming the file, the
/// secret or the option.
#[test]
fn missing_files_and_secrets_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "service: app\nimage: app\nservers: [10.0.0.1]\nregistry: {username: u, password: p}\nbuilder: {arch: amd64}\naccessories:\n  db:\n    image: mysql:8\n    host: 10.0.0.1\n    env:\n      secret: [DB_PASSWORD]\n    files:\n      - config/my.cnf:/etc/mysql/my.cnf\n";
    write(&dir.path().join("config/deploy.yml"), config);
    let run = |args: &[&str]| {
        let mut argv = vec!["--dry-run", "--version", "v1", "accessory"];
        argv.extend_from_slice(args);
        let out = crate::support::dray(dir.path(), &argv);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["boot", "db"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("DB_PASSWORD"), "{err}");
    write(
        &dir.path().join(".kamal/secrets"),
        "DB_PASSWORD=pw-123456\n",
    );
    let (code, err) = run(&["boot", "db"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("accessories.db.files: missing file: config/my.cnf"),
        "{err}"
    );
    std::fs::create_dir_all(dir.path().join("config/my.cnf")).expect("dir");
    let (code, err) = run(&["boot", "db"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is a directory"), "{err}");
    // Commands that upload nothing do not need the file.
    assert_eq!(run(&["details", "db"]).0, Some(0));
    let (code, err) = run(&["exec", "db", "--raw", "-i", "sh"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--raw cannot be combined with --interactive"),
        "{err}"
    );
}

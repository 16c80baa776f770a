//! Plan snapshots of the accessory commands: the exact command lines per host.

use super::*;
use crate::config::secrets::Secrets;
use crate::docker::test_support::config_with;
use crate::plan::{Filters, Plan};

const CONFIG: &str = r#"
service: app
image: dhh/app
registry:
  username: dhh
  password: secret
servers:
  web:
    - 1.1.1.1
  db:
    - 1.1.1.2
    - 1.1.1.3
builder:
  arch: amd64
accessories:
  mysql:
    image: mysql:8.0
    host: 1.1.1.5
    port: "127.0.0.1:3306:3306"
    env:
      clear:
        MYSQL_ROOT_HOST: "%"
      secret:
        - MYSQL_ROOT_PASSWORD
    files:
      - config/my.cnf.erb:/etc/mysql/my.cnf
      - local: config/init.sql
        remote: /docker-entrypoint-initdb.d/init.sql
        mode: "0644"
        owner: "999:999"
    directories:
      - local: data
        remote: /var/lib/mysql
        mode: "0750"
        owner: "999:999"
  cache:
    image: redis:7
    role: db
    cmd: redis-server --appendonly yes
"#;

fn release() -> Release {
    Release::new(
        "app",
        "dhh/app",
        None,
        "v1",
        "dev@example.com",
        "2024-01-01T00:00:00Z",
    )
}

fn plan(sub: &str, build: impl Fn(&AccessoryInputs, &[&Accessory]) -> Vec<Stage>) -> String {
    let config = config_with(CONFIG, None);
    let secrets = Secrets::from_pairs(
        vec![("MYSQL_ROOT_PASSWORD".into(), "hunter2-secret".into())],
        Vec::new(),
    );
    let release = release();
    let accs = select(&config, "mysql").expect("mysql");
    let targets = targets(&config, &Filters::default(), &accs).expect("targets");
    let files = vec![FileContent {
        accessory: "mysql".into(),
        local: "config/my.cnf.erb".into(),
        content: b"[mysqld]\npassword=hunter2-secret\n".to_vec(),
    }];
    let inp = AccessoryInputs {
        config: &config,
        release: &release,
        hosts: &targets.hosts,
        secrets: &secrets,
        files: &files,
    };
    // The lock's lines hold the time; `locked` is pinned by the dry-run test.
    let stages = build(&inp, &accs);
    let text = crate::report::plan::plan_text(&Plan::command(
        "accessory",
        Some(sub),
        Some(release.clone()),
        targets,
        stages,
    ));
    assert!(!text.contains("hunter2"), "a secret in the plan:\n{text}");
    text
}

#[test]
fn boot_of_one_accessory_plans_kamals_commands() {
    insta::assert_snapshot!(plan("boot", boot_stages));
}

#[test]
fn remove_of_one_accessory_plans_kamals_commands() {
    insta::assert_snapshot!(plan("remove", remove_stages));
}

#[test]
fn details_and_selection() {
    let config = config_with(CONFIG, None);
    let all = select(&config, "all").expect("all");
    assert_eq!(
        all.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["mysql", "cache"]
    );
    let err = select(&config, "nope").expect_err("unknown");
    assert!(
        err.to_string()
            .contains("no accessory by the name of 'nope'"),
        "{err}"
    );
    assert!(
        err.to_string().contains("options: mysql, cache, or all"),
        "{err}"
    );
    let t = targets(
        &config,
        &Filters {
            hosts: Some("1.1.1.3,1.1.1.5"),
            ..Filters::default()
        },
        &all,
    )
    .expect("targets");
    assert_eq!(t.hosts, ["1.1.1.5", "1.1.1.3"]);
    assert_eq!(t.primary_host, "1.1.1.3");
    let by_role = targets(
        &config,
        &Filters {
            roles: Some("db"),
            ..Filters::default()
        },
        &all,
    )
    .expect("targets");
    assert_eq!(by_role.hosts, ["1.1.1.2", "1.1.1.3"]);
    let stages = details_stages(&config, &all, &by_role.hosts);
    let lines: Vec<String> = stages
        .iter()
        .flat_map(|s| &s.steps)
        .flat_map(|s| match s {
            super::super::Step::Hosts(h) => h
                .hosts
                .iter()
                .flat_map(|hc| {
                    hc.commands
                        .iter()
                        .map(|c| format!("{} {}", hc.host, c.line()))
                })
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(
        lines,
        [
            "1.1.1.2 docker ps --filter label=service=app-cache",
            "1.1.1.3 docker ps --filter label=service=app-cache"
        ]
    );
}

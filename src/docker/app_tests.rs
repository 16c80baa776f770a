//! Snapshot tests of the app container commands, against Kamal's `test/commands/app_test.rb`
//! where it pins a string (compared by effective argv, not Ruby quoting).

use super::*;
use crate::docker::test_support::{base, config_with, staging, BASE};

/// A config exercising every part of `docker run`.
const RICH: &str = r#"
service: app
image: dhh/app
registry:
  username: dhh
  password: secret
servers:
  web:
    hosts:
      - 1.1.1.1: tag1
    labels:
      traefik.enable: "true"
    options:
      memory: 2g
      cap-add: true
      add-host:
        - "a:1.2.3.4"
        - "b:${HOST_IP}"
      init: false
      restart: on-failure
    logging:
      options:
        max-file: "3"
  workers:
    hosts:
      - 1.1.1.2
    cmd: bin/jobs --queue "default" $QUEUE_ARGS
    stop_timeout: 60
env:
  clear:
    HOST_TOKEN: "${HOST_TOKEN}"
    SUBST: "$(rm -rf /)"
    TICKS: "`id`"
    QUOTES: "it's \"quoted\""
    SEMI: "a; b"
    NEWLINE: "line1\nline2"
    UNICODE: "héllo ✓"
    BLANK: ""
  secret:
    - RAILS_MASTER_KEY
  tags:
    tag1:
      TAGGED: yes-tag
labels:
  my-label: "${LABEL_VAL} and $HOME"
volumes:
  - /local/path:/container/path
  - $PWD/data:/data
logging:
  driver: local
  options:
    max-size: 100m
asset_path: /rails/public/assets
proxy:
  host: example.com
builder:
  arch: amd64
"#;

fn app<'a>(config: &'a Config, role: &str, host: &'a str) -> App<'a> {
    match config.role(role) {
        Some(r) => App::new(config, r, host),
        None => panic!("no role {role}"),
    }
}

#[test]
fn run_matches_kamal() {
    let c = base();
    let cmd = app(&c, "web", "1.1.1.1").run("999", None);
    assert_eq!(cmd.purpose, "boot web on 1.1.1.1");
    // Kamal CT "run": docker run --detach --restart unless-stopped --name app-web-999 --network kamal
    // --env KAMAL_CONTAINER_NAME="app-web-999" --env KAMAL_VERSION="999" --env KAMAL_HOST="1.1.1.1"
    // --env-file .kamal/apps/app/env/roles/web.env --log-opt max-size="10m" --label service="app"
    // --label role="web" --label destination dhh/app:999
    insta::assert_snapshot!(cmd.to_shell(), @r#"docker run --detach --restart unless-stopped --name app-web-999 --network kamal --env KAMAL_CONTAINER_NAME=app-web-999 --env KAMAL_VERSION=999 --env KAMAL_HOST=1.1.1.1 --env-file .kamal/apps/app/env/roles/web.env --log-opt "max-size=10m" --label "service=app" --label "role=web" --label destination dhh/app:999"#);
}

#[test]
fn run_with_destination_and_hostname_matches_kamal() {
    let c = staging();
    let hostname = container_hostname("1.1.1.1", "0123456789ab");
    let cmd = app(&c, "web", "1.1.1.1").run("999", Some(&hostname));
    // Kamal CT "run with destination" (+ "run with hostname").
    insta::assert_snapshot!(cmd.to_shell(), @r#"docker run --detach --restart unless-stopped --name app-web-staging-999 --network kamal --hostname 1.1.1.1-0123456789ab --env KAMAL_CONTAINER_NAME=app-web-staging-999 --env KAMAL_VERSION=999 --env KAMAL_HOST=1.1.1.1 --env KAMAL_DESTINATION=staging --env-file .kamal/apps/app-staging/env/roles/web.env --log-opt "max-size=10m" --label "service=app" --label "role=web" --label "destination=staging" dhh/app:999"#);
}

#[test]
fn run_with_everything() {
    let c = config_with(RICH, Some("production"));
    insta::assert_snapshot!(app(&c, "web", "1.1.1.1").run("999", None).to_shell());
    insta::assert_snapshot!(app(&c, "workers", "1.1.1.2").run("999", None).to_shell());
}

#[test]
fn run_argv_arrives_byte_for_byte() {
    let c = config_with(RICH, None);
    let line = app(&c, "web", "1.1.1.1").run("999", None).to_shell();
    // Run the line through a real shell with `docker` replaced by printf, as the server would.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("docker() {{ printf '%s\\n' \"$@\"; }}; HOST_TOKEN=tok; LABEL_VAL=lv; HOST_IP=9.9.9.9; {line}"))
        .output()
        .expect("sh runs");
    let argv = String::from_utf8(out.stdout).expect("utf-8");
    assert!(argv.contains("\nHOST_TOKEN=tok\n"), "{argv}");
    assert!(argv.contains("\nSUBST=$(rm -rf /)\n"), "{argv}");
    assert!(argv.contains("\nTICKS=`id`\n"), "{argv}");
    assert!(argv.contains("\nQUOTES=it's \"quoted\"\n"), "{argv}");
    assert!(argv.contains("\nSEMI=a; b\n"), "{argv}");
    assert!(argv.contains("\nNEWLINE=line1\nline2\n"), "{argv}");
    assert!(argv.contains("\nUNICODE=héllo ✓\n"), "{argv}");
    assert!(argv.contains("\n--env\nBLANK\n"), "{argv}");
    assert!(argv.contains("\nmy-label=lv and $HOME\n"), "{argv}");
    assert!(argv.contains("\nb:9.9.9.9\n"), "{argv}");
}

#[test]
fn run_with_custom_options_and_cmd_matches_kamal() {
    let yaml = BASE.replace(
        "  workers:\n    - 1.1.1.2\n",
        "  jobs:\n    hosts:\n      - 1.1.1.2\n    cmd: bin/jobs\n    options:\n      mount: somewhere\n      cap-add: true\n",
    );
    let c = config_with(&yaml, None);
    // Kamal CT "run with custom options": … --label destination --mount "somewhere" --cap-add dhh/app:999 bin/jobs
    insta::assert_snapshot!(app(&c, "jobs", "1.1.1.2").run("999", None).to_shell(), @r#"docker run --detach --restart unless-stopped --name app-jobs-999 --network kamal --env KAMAL_CONTAINER_NAME=app-jobs-999 --env KAMAL_VERSION=999 --env KAMAL_HOST=1.1.1.2 --env-file .kamal/apps/app/env/roles/jobs.env --log-opt "max-size=10m" --label "service=app" --label "role=jobs" --label destination --mount "somewhere" --cap-add dhh/app:999 bin/jobs"#);
}

#[test]
fn names() {
    let c = staging();
    let a = app(&c, "web", "1.1.1.1");
    assert_eq!(a.container_name("999"), "app-web-staging-999");
    assert_eq!(
        a.exec_container_name("999", "a1b2c3"),
        "app-web-staging-exec-999-a1b2c3"
    );
    assert_eq!(
        App::replaced_version("999", "0123456789abcdef"),
        "999_replaced_0123456789abcdef"
    );
    let long = format!("{}.example.com", "a".repeat(46));
    assert_eq!(
        container_hostname(&long, "x"),
        format!("{}-x", "a".repeat(46) + ".exam")
    );
    assert_eq!(
        container_hostname(&format!("{}.b", "a".repeat(50)), "x"),
        format!("{}-x", "a".repeat(50))
    );
}

#[test]
fn container_queries_match_kamal() {
    let c = base();
    let a = app(&c, "web", "1.1.1.1");
    // Kamal CT "container_id_for": docker container ls --all --filter 'name=^app-999$' --quiet
    insta::assert_snapshot!(a.container_id("999").to_shell(), @"docker container ls --all --filter 'name=^app-web-999$' --quiet");
    insta::assert_snapshot!(a.rename("999", "0123456789abcdef").to_shell(), @"docker rename app-web-999 app-web-999_replaced_0123456789abcdef");
    insta::assert_snapshot!(a.start("999").to_shell(), @"docker start app-web-999");
    insta::assert_snapshot!(a.current_running_version().to_shell());
    insta::assert_snapshot!(a.current_running_container_id().to_shell());
    insta::assert_snapshot!(a.state("999").to_shell());
    insta::assert_snapshot!(a.health_log("999").to_shell());
    insta::assert_snapshot!(a.list_versions().to_shell(), @"sh -c 'docker ps --filter label=service=app --filter label=destination= --filter label=role=web --format '\\''{{.Names}}'\\'' | while read line; do echo \"${line#app-web-}\"; done'");
    let s = staging();
    insta::assert_snapshot!(app(&s, "web", "1.1.1.1")
        .current_running_version()
        .to_shell());
}

#[test]
fn stop_args_follow_role_kind() {
    // Kamal CT "stop with custom drain timeout" / "stop with stop_timeout" / "stop with version".
    let yaml = BASE.replace("builder:", "drain_timeout: 20\nbuilder:");
    let c = config_with(&yaml, None);
    insta::assert_snapshot!(app(&c, "web", "1.1.1.1").stop(Some("123")).to_shell(), @"sh -c 'docker container ls --all --filter '\\''name=^app-web-123$'\\'' --quiet | xargs docker stop'");
    insta::assert_snapshot!(app(&c, "workers", "1.1.1.2").stop(None).to_shell());
    let rich = config_with(RICH, None);
    assert_eq!(app(&rich, "workers", "1.1.1.2").stop_args(), ["-t", "60"]);
    assert!(app(&rich, "web", "1.1.1.1").stop_args().is_empty());
    assert_eq!(
        app(&c, "workers", "1.1.1.2").stop(Some("1")).purpose,
        "stop workers 1 on 1.1.1.2"
    );
}

#[test]
fn details_and_tags_match_kamal() {
    let c = staging();
    let a = app(&c, "web", "1.1.1.1");
    insta::assert_snapshot!(a.info().to_shell(), @"docker ps --filter label=service=app --filter label=destination=staging --filter label=role=web");
    insta::assert_snapshot!(a.list_containers().to_shell(), @"docker container ls --all --filter label=service=app --filter label=destination=staging --filter label=role=web");
    insta::assert_snapshot!(a.tag_latest("999").to_shell(), @"docker tag dhh/app:999 dhh/app:latest-staging");
    insta::assert_snapshot!(list_images(&c, "1.1.1.1").to_shell(), @"docker image ls dhh/app");
}

#[test]
fn logs_with_options() {
    let c = base();
    let a = app(&c, "web", "1.1.1.1");
    let default = LogsOptions {
        timestamps: true,
        ..Default::default()
    };
    insta::assert_snapshot!(a.logs(&default).to_shell());
    let with_id = LogsOptions {
        container_id: Some("C137".into()),
        ..default.clone()
    };
    insta::assert_snapshot!(a.logs(&with_id).to_shell(), @"sh -c 'echo C137 | xargs docker logs --timestamps 2>&1'");
    let full = LogsOptions {
        container_id: Some("C137".into()),
        timestamps: false,
        since: Some("5m".into()),
        lines: Some(100),
        grep: Some("it's my-id".into()),
        grep_options: Some("-C 2".into()),
        follow: true,
    };
    insta::assert_snapshot!(a.logs(&full).to_shell());
}

#[test]
fn exec_new_and_existing() {
    let c = config_with(RICH, None);
    let a = app(&c, "web", "1.1.1.1");
    let opts = ExecOptions {
        command: "bin/rails db:setup".into(),
        env: vec![("foo".into(), "bar ${X}".into())],
        interactive: Interactive::No,
        detach: false,
    };
    insta::assert_snapshot!(a.exec_new("999", "a1b2c3", &opts).to_shell());
    let b = base();
    let plain = ExecOptions {
        env: vec![],
        ..opts.clone()
    };
    // Kamal CT "execute in new container": docker run --rm --name app-web-exec-999-[0-9a-f]{6} --network kamal
    // --env-file .kamal/apps/app/env/roles/web.env --log-opt max-size="10m" dhh/app:999 bin/rails db:setup
    insta::assert_snapshot!(app(&b, "web", "1.1.1.1").exec_new("999", "a1b2c3", &plain).to_shell(), @r#"docker run --rm --name app-web-exec-999-a1b2c3 --network kamal --env-file .kamal/apps/app/env/roles/web.env --log-opt "max-size=10m" dhh/app:999 bin/rails db:setup"#);
    let detached = ExecOptions {
        detach: true,
        ..plain.clone()
    };
    insta::assert_snapshot!(app(&b, "web", "1.1.1.1").exec_new("999", "a1b2c3", &detached).to_shell(), @r#"docker run --detach --name app-web-exec-999-a1b2c3 --network kamal --env-file .kamal/apps/app/env/roles/web.env --log-opt "max-size=10m" dhh/app:999 bin/rails db:setup"#);
    // Kamal CT "execute in existing container with env": docker exec --env foo="bar" app-web-999 bin/rails db:setup
    let reuse = ExecOptions {
        env: vec![("foo".into(), "bar".into())],
        interactive: Interactive::Tty,
        ..plain
    };
    insta::assert_snapshot!(app(&b, "web", "1.1.1.1").exec_existing("999", &reuse).to_shell(), @r#"docker exec -it --env "foo=bar" app-web-999 bin/rails db:setup"#);
}

//! The accessory commands against Kamal's `test/commands/accessory_test.rb` (compared by the
//! effective argv a shell gives docker, not Ruby's quoting).

use super::*;
use crate::docker::test_support::config_with;

/// Kamal's accessory command test configuration, plus files and directories.
pub(crate) const KAMAL: &str = r#"
service: app
image: dhh/app
registry:
  server: private.registry
  username: dhh
  password: secret
servers:
  - 1.1.1.1
builder:
  arch: amd64
accessories:
  mysql:
    image: private.registry/mysql:8.0
    host: 1.1.1.5
    port: "3306"
    env:
      clear:
        MYSQL_ROOT_HOST: "%"
      secret:
        - MYSQL_ROOT_PASSWORD
    options:
      cpus: "4"
      memory: 2GB
    files:
      - config/my.cnf.erb:/etc/mysql/my.cnf
      - local: config/secret.key
        remote: /etc/mysql/secret.key
        mode: "0600"
        owner: "mysql:mysql"
        options: Z
    directories:
      - mysql-data:/var/lib/mysql:z
      - /abs/logs:/var/log/mysql
  redis:
    image: redis:latest
    host: 1.1.1.6
    port: "6379:6379"
    labels:
      cache: "true"
    env:
      SOMETHING: else
    volumes:
      - /var/lib/redis:/data
  busybox:
    service: custom-busybox
    image: busybox:latest
    registry:
      server: other.registry
      username: user
      password: pw
    host: 1.1.1.7
    proxy:
      host: busybox.example.com
"#;

fn acc<'a>(c: &'a Config, name: &str) -> &'a Accessory {
    c.accessories
        .iter()
        .find(|a| a.name == name)
        .expect("accessory")
}

/// What a POSIX shell hands the program (with `$PWD` as `/home/u`).
fn argv(cmd: &CommandSpec) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "PWD=/home/u; for a in {}; do printf '%s|' \"$a\"; done",
            cmd.to_shell()
        ))
        .output()
        .expect("sh");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn run_is_kamals_docker_run() {
    let c = config_with(KAMAL, None);
    let redis = Acc::new(&c, acc(&c, "redis"), "1.1.1.6");
    assert_eq!(
        argv(&redis.run()),
        "docker|run|--name|app-redis|--detach|--restart|unless-stopped|--network|kamal|--log-opt|max-size=10m|--publish|6379:6379|--env|KAMAL_HOST=1.1.1.6|--env|SOMETHING=else|--env-file|.kamal/apps/app/env/accessories/redis.env|--volume|/var/lib/redis:/data|--label|service=app-redis|--label|cache=true|redis:latest|"
    );
    let busybox = Acc::new(&c, acc(&c, "busybox"), "1.1.1.7");
    assert_eq!(
        argv(&busybox.run()),
        "docker|run|--name|custom-busybox|--detach|--restart|unless-stopped|--network|kamal|--log-opt|max-size=10m|--env|KAMAL_HOST=1.1.1.7|--env-file|.kamal/apps/app/env/accessories/busybox.env|--label|service=custom-busybox|other.registry/busybox:latest|"
    );
    let mysql = Acc::new(&c, acc(&c, "mysql"), "1.1.1.5");
    assert_eq!(
        argv(&mysql.run()),
        "docker|run|--name|app-mysql|--detach|--restart|unless-stopped|--network|kamal|--log-opt|max-size=10m|--publish|3306:3306|--env|KAMAL_HOST=1.1.1.5|--env|MYSQL_ROOT_HOST=%|--env-file|.kamal/apps/app/env/accessories/mysql.env|--volume|/home/u/app-mysql/etc/mysql/my.cnf:/etc/mysql/my.cnf|--volume|/home/u/app-mysql/etc/mysql/secret.key:/etc/mysql/secret.key:Z|--volume|/home/u/app-mysql/mysql-data:/var/lib/mysql:z|--volume|/abs/logs:/var/log/mysql|--label|service=app-mysql|--cpus|4|--memory|2GB|private.registry/mysql:8.0|"
    );
}

#[test]
fn small_commands_are_kamals() {
    let c = config_with(KAMAL, None);
    let m = Acc::new(&c, acc(&c, "mysql"), "1.1.1.5");
    assert_eq!(m.start().to_shell(), "docker container start app-mysql");
    assert_eq!(m.stop().to_shell(), "docker container stop app-mysql");
    assert_eq!(
        m.info(false, false).to_shell(),
        "docker ps --filter label=service=app-mysql"
    );
    assert_eq!(
        m.info(true, true).to_shell(),
        "docker ps -a -q --filter label=service=app-mysql"
    );
    assert_eq!(
        m.remove_container().to_shell(),
        "docker container prune --force --filter label=service=app-mysql"
    );
    assert_eq!(
        m.remove_image().to_shell(),
        "docker image rm --force private.registry/mysql:8.0"
    );
    assert_eq!(m.remove_service_directory().to_shell(), "rm -rf app-mysql");
    assert_eq!(
        m.pull_image().to_shell(),
        "docker image pull private.registry/mysql:8.0"
    );
    assert_eq!(
        m.container_id(true).to_shell(),
        "docker container ls --filter 'name=^app-mysql$' --quiet"
    );
    assert_eq!(
        argv(&m.exec_new("mysql -u root", false)),
        "docker|run|--rm|--network|kamal|--env|MYSQL_ROOT_HOST=%|--env-file|.kamal/apps/app/env/accessories/mysql.env|--volume|/home/u/app-mysql/etc/mysql/my.cnf:/etc/mysql/my.cnf|--volume|/home/u/app-mysql/etc/mysql/secret.key:/etc/mysql/secret.key:Z|--volume|/home/u/app-mysql/mysql-data:/var/lib/mysql:z|--volume|/abs/logs:/var/log/mysql|--cpus|4|--memory|2GB|private.registry/mysql:8.0|mysql|-u|root|"
    );
    assert_eq!(
        argv(&m.exec_existing("mysql -u root", false)),
        "docker|exec|app-mysql|mysql|-u|root|"
    );
    assert_eq!(
        m.stop_others("abc").to_shell(),
        "sh -c 'docker ps -q --filter label=service=app-mysql | { grep -v -x abc || true; } | xargs -r docker container stop'"
    );
    let b = Acc::new(&c, acc(&c, "busybox"), "1.1.1.7");
    assert_eq!(
        b.proxy_remove().to_shell(),
        "docker exec kamal-proxy kamal-proxy remove custom-busybox"
    );
    assert_eq!(
        b.proxy_deploy("abc", "v1").map(|c| c.to_shell()).as_deref(),
        Some("docker exec kamal-proxy kamal-proxy deploy custom-busybox --target=abc:80 --host=busybox.example.com --deploy-timeout=30s --drain-timeout=30s --buffer-requests --buffer-responses --log-request-header=Cache-Control --log-request-header=Last-Modified --log-request-header=User-Agent")
    );
}

#[test]
fn logs_are_kamals() {
    let c = config_with(KAMAL, None);
    let m = Acc::new(&c, acc(&c, "mysql"), "1.1.1.5");
    let opts = LogsOptions {
        timestamps: true,
        since: Some("5m".into()),
        lines: Some(100),
        grep: Some("thing".into()),
        grep_options: Some("-C 2".into()),
        follow: false,
    };
    assert_eq!(
        m.logs(&opts).to_shell(),
        "sh -c 'docker logs app-mysql --since 5m --tail 100 --timestamps 2>&1 | grep thing -C 2'"
    );
    let follow = LogsOptions {
        follow: true,
        grep: Some("x".into()),
        ..opts
    };
    assert_eq!(
        m.logs(&follow).to_shell(),
        "sh -c 'docker logs app-mysql --timestamps --tail 10 --follow 2>&1 | grep x -C 2'"
    );
}

#[test]
fn paths_are_kamals() {
    let c = config_with(KAMAL, None);
    let m = acc(&c, "mysql");
    assert_eq!(
        env_file(&c, "mysql"),
        ".kamal/apps/app/env/accessories/mysql.env"
    );
    assert_eq!(file_host_path(m, &m.files[0]), "app-mysql/etc/mysql/my.cnf");
    assert_eq!(dirname("app-mysql/etc/mysql/my.cnf"), "app-mysql/etc/mysql");
    assert_eq!(
        argv(&make_directory(
            &directory_host_path(m, &m.directories[0]),
            "h"
        )),
        "mkdir|-p|/home/u/app-mysql/mysql-data|"
    );
    assert_eq!(
        argv(&chmod(
            "0750",
            &directory_host_path(m, &m.directories[1]),
            "h"
        )),
        "chmod|0750|/abs/logs|"
    );
    let staging = config_with(KAMAL, Some("staging"));
    assert_eq!(
        env_file(&staging, "mysql"),
        ".kamal/apps/app-staging/env/accessories/mysql.env"
    );
    let w = Acc::new(&c, m, "h").write_env_file(crate::command::Secret(b"K=v\n".to_vec()));
    assert!(!w.to_shell().contains("K=v"));
    assert_eq!(
        w.to_shell(),
        "sh -c 'umask 077 && cat > .kamal/apps/app/env/accessories/mysql.env.tmp && chmod 600 .kamal/apps/app/env/accessories/mysql.env.tmp && mv -f .kamal/apps/app/env/accessories/mysql.env.tmp .kamal/apps/app/env/accessories/mysql.env'"
    );
}

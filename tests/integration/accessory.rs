//! `dray accessory …` end to end on the fleet: two accessories booted with `all` (files plain
//! and ERB, a directory, a secret env, one on the hosts of a role), what Kamal would leave on
//! the hosts (names, labels, paths, modes, owners), reboot keeping a data directory, details,
//! logs, exec, remove leaving nothing. The proxied accessory is in `accessory_proxy.rs`, plans
//! and refusals without the fleet in `accessory_plans.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::fleet::{unique_name, Fleet};
use crate::support::procs::ProcessWatch;
use crate::support::project::Project;
use crate::support::write;

/// A secret value planted in `.kamal/secrets`, searched for in every process's argv.
const TOKEN: &str = "acc-token-4f1d9c2be7a85310";

/// One HTTP/1.1 GET; `(status, body)`.
pub(crate) fn get(addr: &str, host: Option<&str>, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(
        &addr.parse().map_err(|e| format!("{addr}: {e}"))?,
        Duration::from_secs(2),
    )
    .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let host = host.unwrap_or("localhost");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad response: {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .trim()
        .to_string();
    Ok((status, body))
}

/// Wait (bounded) until `addr` answers 200 at `path`.
pub(crate) fn answers(addr: &str, host: Option<&str>, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match get(addr, host, path) {
            Ok((200, body)) => return body,
            other if Instant::now() > deadline => panic!("{addr}{path}: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// A port for this run (tests share the fleet, and hosts share this machine's ports space by
/// address).
fn port(offset: u16) -> u16 {
    20000 + (std::process::id() % 20000) as u16 + offset
}

/// Removes everything the accessories may have left on the hosts, even when the test fails.
pub(crate) struct Cleanup<'a> {
    pub(crate) fleet: &'a Fleet,
    pub(crate) project: &'a Project,
    pub(crate) services: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for host in self.fleet.hosts() {
            for s in &self.services {
                let _ = self.fleet.ssh(
                    host,
                    &format!(
                        "docker ps -aq --filter label=service={s} | xargs -r docker rm -f >/dev/null 2>&1; rm -rf {s}; docker exec kamal-proxy kamal-proxy remove {s} >/dev/null 2>&1; true"
                    ),
                );
            }
        }
        self.project.cleanup(self.fleet);
    }
}

pub(crate) fn project(fleet: &Fleet, prefix: &str, accessories: &str) -> Project {
    let project = Project::new(fleet, &unique_name(prefix), |d| {
        format!("{d}\naccessories:\n{accessories}")
    });
    let secrets = project.path().join(".kamal/secrets");
    let mut text = std::fs::read_to_string(&secrets).expect("secrets");
    text.push_str(&format!("STORE_TOKEN={TOKEN}\n"));
    write(&secrets, &text);
    project
}

fn stat(fleet: &Fleet, host: &str, path: &str) -> String {
    fleet
        .ssh_ok(host, &format!("stat -c '%a %u:%g' {path}"))
        .trim()
        .to_string()
}

#[test]
fn accessories_boot_reboot_exec_logs_and_remove_as_kamal_does() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let (p1, p2) = (port(0), port(1));
    let image = fleet.base_image().to_string();
    let accessories = format!(
        r#"  store:
    image: {image}
    host: {h1}
    port: "{p1}:8080"
    cmd: httpd -f -p 8080 -h /srv/www
    env:
      clear:
        GREETING: hello from the store
      secret:
        - STORE_TOKEN
    files:
      - config/index.html.erb:/srv/www/index.html
      - local: config/plain.txt
        remote: /srv/plain.txt
        mode: "0640"
        owner: "1000:1000"
    directories:
      - local: data
        remote: /data
        mode: "0750"
        owner: "1000:1000"
    labels:
      tier: storage
  cache:
    image: {image}
    role: web
    port: "{p2}"
    cmd: httpd -f -p {p2} -h /etc
"#,
        h1 = hosts[0],
    );
    let project = project(fleet, "e2e-acc", &accessories);
    let store = format!("{}-store", project.service);
    let cache = format!("{}-cache", project.service);
    let _cleanup = Cleanup {
        fleet,
        project: &project,
        services: vec![store.clone(), cache.clone()],
    };
    write(
        &project.path().join("config/index.html.erb"),
        "<%= ENV[\"GREETING\"] %> token=<%= ENV[\"STORE_TOKEN\"] %>\n",
    );
    write(
        &project.path().join("config/plain.txt"),
        "plain {{ as is }} <%= not erb %>\n",
    );

    // The dry-run shows the commands the boot runs.
    let plan = project.dray_ok(&["accessory", "boot", "all", "--dry-run"]);
    assert!(
        plan.contains(&format!("docker run --name {store} --detach")),
        "{plan}"
    );
    assert!(
        plan.contains("stdin: the env file: STORE_TOKEN=[REDACTED]"),
        "{plan}"
    );
    assert!(!plan.contains(TOKEN), "{plan}");
    assert!(plan.contains("acquire the deploy lock"), "{plan}");
    assert!(plan.contains("pre-connect"), "{plan}");

    let watch = ProcessWatch::start();
    let (code, out, err) = project.dray(&["accessory", "boot", "all"]);
    let seen = watch.finish();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains(TOKEN) && !err.contains(TOKEN), "{out}\n{err}");
    let leaked: Vec<_> = seen.iter().filter(|s| s.cmdline.contains(TOKEN)).collect();
    assert!(leaked.is_empty(), "the secret in argv: {leaked:?}");
    assert!(
        seen.iter()
            .any(|s| s.cmdline.contains(&format!("--name {store}"))),
        "the watch saw the boot"
    );
    let hooks = project.hook_log();
    assert!(
        hooks.contains("hook=pre-connect")
            && hooks.contains("KAMAL_COMMAND=accessory")
            && hooks.contains("KAMAL_SUBCOMMAND=boot"),
        "{hooks}"
    );

    // Kamal's names, labels and paths on the host.
    let h1 = &hosts[0];
    let labels = fleet.ssh_ok(
        h1,
        &format!("docker inspect {store} --format '{{{{json .Config.Labels}}}} {{{{.HostConfig.RestartPolicy.Name}}}} {{{{range $k, $v := .NetworkSettings.Networks}}}}{{{{$k}}}}{{{{end}}}}'"),
    );
    assert!(
        labels.contains(&format!("\"service\":\"{store}\"")),
        "{labels}"
    );
    assert!(labels.contains("\"tier\":\"storage\""), "{labels}");
    assert!(labels.contains("unless-stopped kamal"), "{labels}");
    let env_file = format!(".kamal/apps/{}/env/accessories/store.env", project.service);
    assert_eq!(stat(fleet, h1, &env_file), "600 0:0");
    let audit = fleet
        .read_file(h1, &format!("~/.kamal/{}-audit.log", project.service))
        .unwrap_or_default();
    assert!(audit.contains("Booted store accessory"), "{audit}");
    assert_eq!(
        fleet.read_file(h1, &format!("~/{env_file}")).as_deref(),
        Some(format!("STORE_TOKEN={TOKEN}\n").as_str())
    );
    assert_eq!(
        stat(fleet, h1, &format!("{store}/srv/www/index.html")),
        "755 0:0"
    );
    assert_eq!(
        stat(fleet, h1, &format!("{store}/srv/plain.txt")),
        "640 1000:1000"
    );
    assert_eq!(stat(fleet, h1, &format!("{store}/data")), "750 1000:1000");
    assert_eq!(
        fleet
            .read_file(h1, &format!("~/{store}/srv/plain.txt"))
            .as_deref(),
        Some("plain {{ as is }} <%= not erb %>\n")
    );
    let mounts = fleet.ssh_ok(
        h1,
        &format!("docker inspect {store} --format '{{{{range .Mounts}}}}{{{{.Source}}}}:{{{{.Destination}}}} {{{{end}}}}'"),
    );
    let home = fleet.ssh_ok(h1, "pwd").trim().to_string();
    for m in [
        format!("{home}/{store}/srv/www/index.html:/srv/www/index.html"),
        format!("{home}/{store}/srv/plain.txt:/srv/plain.txt"),
        format!("{home}/{store}/data:/data"),
    ] {
        assert!(mounts.contains(&m), "{m} in {mounts}");
    }

    // They answer: the store's rendered template, the cache on both web hosts.
    let body = answers(&format!("{h1}:{p1}"), None, "/index.html");
    assert_eq!(body, format!("hello from the store token={TOKEN}"));
    for h in &hosts[..2] {
        assert!(fleet.docker_ps(h).contains(&cache), "{h}");
        answers(&format!("{h}:{p2}"), None, "/hostname");
    }
    assert!(!fleet.docker_ps(&hosts[2]).contains(&cache));

    // A second boot skips the hosts that have it, as Kamal does.
    let again = project.dray_ok(&["accessory", "boot", "cache"]);
    assert!(again.contains("Skipping booting `cache`"), "{again}");

    // exec (new container and --reuse), details, logs.
    let out = project.dray_ok(&[
        "accessory",
        "exec",
        "store",
        "--reuse",
        "sh -c 'echo kept > /data/marker'",
    ]);
    let _ = out;
    let out = project.dray_ok(&["accessory", "exec", "store", "cat /srv/plain.txt"]);
    assert!(out.contains("plain {{ as is }}"), "{out}");
    let out = project.dray_ok(&["accessory", "details", "all"]);
    assert!(out.contains(&store) && out.contains(&cache), "{out}");
    let (code, out, err) = project.dray(&["accessory", "logs", "store", "-n", "5"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, _, err) = project.dray(&["accessory", "boot", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no accessory by the name of 'nope'"), "{err}");

    // Reboot keeps the data directory.
    let old = fleet.ssh_ok(
        h1,
        &format!("docker inspect {store} --format '{{{{.Id}}}}'"),
    );
    project.dray_ok(&["accessory", "reboot", "store"]);
    let new = fleet.ssh_ok(
        h1,
        &format!("docker inspect {store} --format '{{{{.Id}}}}'"),
    );
    assert_ne!(old, new, "a new container");
    let out = project.dray_ok(&["accessory", "exec", "store", "--reuse", "cat /data/marker"]);
    assert!(out.contains("kept"), "{out}");
    answers(&format!("{h1}:{p1}"), None, "/index.html");

    // stop / start / restart.
    project.dray_ok(&["accessory", "stop", "cache", "-h", &hosts[1]]);
    let running = fleet.ssh_ok(&hosts[1], "docker ps --format '{{.Names}}'");
    assert!(!running.contains(&cache), "{running}");
    assert!(fleet
        .ssh_ok(&hosts[0], "docker ps --format '{{.Names}}'")
        .contains(&cache));
    project.dray_ok(&["accessory", "start", "cache"]);
    project.dray_ok(&["accessory", "restart", "cache"]);
    answers(&format!("{}:{p2}", hosts[1]), None, "/hostname");

    // remove -y leaves nothing of them.
    project.dray_ok(&["accessory", "remove", "all", "-y"]);
    for h in &hosts {
        let names = fleet.docker_ps(h);
        assert!(
            !names.contains(&store) && !names.contains(&cache),
            "{h}: {names:?}"
        );
        assert_eq!(
            fleet.read_file(h, &format!("~/{store}/srv/plain.txt")),
            None
        );
        assert_eq!(fleet.read_file(h, &format!("~/{env_file}")), None);
        let images = fleet.ssh_ok(h, &format!("docker image ls -q {image}"));
        assert!(images.trim().is_empty(), "{h}: image left: {images}");
    }
}

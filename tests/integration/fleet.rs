//! The local fleet looks like separate servers: own containers, own home, own hostname, own
//! address for published ports, and a server-side count of SSH connections.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use dray::shell::quote;

use crate::support::fleet::{unique_name, ContainerGuard, Fleet};

/// `docker run` of a tiny web server answering `GET /id` with `id`; PID 1 traps TERM.
fn web_server_cmd(fleet: &Fleet, name: &str, publish: &str, network: &str, id: &str) -> String {
    let script = format!(
        "mkdir -p /tmp/w && echo {id} > /tmp/w/id && trap 'exit 0' TERM && \
         httpd -f -p 80 -h /tmp/w & wait",
        id = quote(id)
    );
    format!(
        "docker run -d --name {name} --network {network} -p {publish} {image} sh -c {script} 2>&1",
        name = quote(name),
        network = quote(network),
        publish = quote(publish),
        image = quote(fleet.base_image()),
        script = quote(&script)
    )
}

/// A port free on all of `hosts`' addresses right now.
fn free_port(hosts: &[String]) -> u16 {
    for _ in 0..50 {
        let listener = TcpListener::bind((hosts[0].as_str(), 0)).expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local address").port();
        drop(listener);
        if hosts
            .iter()
            .all(|h| TcpListener::bind((h.as_str(), port)).is_ok())
        {
            return port;
        }
    }
    panic!("no port free on all of {hosts:?}");
}

/// `GET /id` on addr; `None` if nothing listens there.
fn http_get_id(addr: &str, port: u16) -> Option<String> {
    let addr: SocketAddr = format!("{addr}:{port}").parse().expect("socket address");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set read timeout");
    stream
        .write_all(b"GET /id HTTP/1.0\r\nHost: fleet\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let ok = head.starts_with("HTTP/1.") && head.contains(" 200 ");
    ok.then(|| body.trim().to_string())
}

/// Poll until `addr:port` answers `GET /id`, at most `limit`.
fn wait_for_id(addr: &str, port: u16, limit: Duration) -> Option<String> {
    let start = Instant::now();
    loop {
        if let Some(id) = http_get_id(addr, port) {
            return Some(id);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn container_started_through_host1_ssh_is_absent_on_host2() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(2);
    let name = unique_name("iso");
    let _guard = ContainerGuard::new(fleet, &hosts[0], &name);
    fleet.ssh_ok(
        &hosts[0],
        &format!(
            "docker run -d --name {} {} sh -c 'trap \"exit 0\" TERM; sleep 600 & wait' >/dev/null 2>&1",
            quote(&name),
            quote(fleet.base_image())
        ),
    );

    assert!(
        fleet.docker_ps(&hosts[0]).contains(&name),
        "{name} not listed on {}",
        hosts[0]
    );
    for other in &fleet.hosts()[1..] {
        assert!(
            !fleet.docker_ps(other).contains(&name),
            "{name}, started on {}, is visible on {other}",
            hosts[0]
        );
    }
}

#[test]
fn file_written_under_home_through_host1_is_absent_on_host2() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(2);
    let name = unique_name("home");
    let path = format!("~/.kamal/e2e/{name}");
    fleet.ssh_ok(
        &hosts[0],
        &format!(
            "mkdir -p ~/.kamal/e2e && echo {} > ~/.kamal/e2e/{}",
            quote(&hosts[0]),
            quote(&name)
        ),
    );

    let on_host1 = fleet.read_file(&hosts[0], &path);
    let elsewhere: Vec<_> = fleet.hosts()[1..]
        .iter()
        .map(|h| (h.clone(), fleet.read_file(h, &path)))
        .collect();
    fleet.ssh_ok(&hosts[0], &format!("rm -f ~/.kamal/e2e/{}", quote(&name)));

    assert_eq!(on_host1.as_deref().map(str::trim), Some(hosts[0].as_str()));
    for (host, content) in elsewhere {
        assert_eq!(
            content, None,
            "{path} written on {} is visible on {host}",
            hosts[0]
        );
    }
    // The machine's own /root does not see it either.
    let machine_home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    assert!(!std::path::Path::new(&machine_home)
        .join(".kamal/e2e")
        .join(&name)
        .exists());
}

#[test]
fn hostname_differs_per_host() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3);
    let names: Vec<String> = hosts
        .iter()
        .map(|h| fleet.ssh_ok(h, "hostname").trim().to_string())
        .collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        names.len(),
        "hostnames {names:?} of {hosts:?}"
    );
    let machine = fleet.ssh_ok(&hosts[0], "cat /proc/sys/kernel/hostname");
    assert_eq!(
        machine.trim(),
        names[0],
        "hostname and the kernel's disagree"
    );
}

#[test]
fn three_ssh_invocations_count_three_connections() {
    let Some(fleet) = Fleet::get() else { return };
    let host = &fleet.require_hosts(1)[0];
    let source = Fleet::unique_source_address();
    let before = fleet.accepted_connections_from(host, &source);
    let total_before = fleet.accepted_connections(host);
    for i in 0..3 {
        let out = fleet
            .ssh_command(host)
            .arg("-o")
            .arg(format!("BindAddress={source}"))
            .arg(format!("echo {i}"))
            .output()
            .expect("run ssh");
        assert!(out.status.success(), "ssh {i}: {out:?}");
    }
    assert_eq!(fleet.accepted_connections_from(host, &source) - before, 3);
    assert!(fleet.accepted_connections(host) - total_before >= 3);
}

#[test]
fn three_commands_over_one_multiplexed_master_count_one_connection() {
    let Some(fleet) = Fleet::get() else { return };
    let host = &fleet.require_hosts(1)[0];
    let source = Fleet::unique_source_address();
    let control_dir = tempfile::tempdir().expect("temp dir for the control socket");
    let control_path = control_dir.path().join("master");
    let control = format!("ControlPath={}", control_path.display());
    let before = fleet.accepted_connections_from(host, &source);

    let master = fleet
        .ssh_command(host)
        .args(["-o", "ControlMaster=yes", "-o", &control, "-o"])
        .arg(format!("BindAddress={source}"))
        .args(["-f", "-N"])
        .status()
        .expect("start the ssh master");
    assert!(master.success(), "ssh master failed: {master}");
    let mut outputs = Vec::new();
    for i in 0..3 {
        let out = fleet
            .ssh_command(host)
            .args(["-o", "ControlMaster=no", "-o", &control])
            .arg(format!("echo {i}; docker ps -q | wc -l"))
            .output()
            .expect("run ssh over the master");
        outputs.push(out);
    }
    let _ = Command::new("ssh")
        .arg("-F")
        .arg(fleet.ssh_config())
        .args(["-o", &control, "-O", "exit"])
        .arg(host)
        .output();

    for (i, out) in outputs.iter().enumerate() {
        assert!(out.status.success(), "command {i} over the master: {out:?}");
    }
    assert_eq!(fleet.accepted_connections_from(host, &source) - before, 1);
}

#[test]
fn published_port_of_host_n_answers_on_host_n_address_only() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3);
    let port = free_port(hosts);
    let kamal_port = free_port(hosts);
    let target = &hosts[1];
    let name = unique_name("port");
    let kamal_name = unique_name("port-kamal");
    let _guard = ContainerGuard::new(fleet, target, &name);
    let _kamal_guard = ContainerGuard::new(fleet, target, &kamal_name);

    // The default bridge (daemon-wide `ip`) and the pre-created `kamal` network
    // (`host_binding_ipv4`) both publish on the host's own address, with no address given.
    fleet.ssh_ok(
        target,
        &web_server_cmd(fleet, &name, &format!("{port}:80"), "bridge", &name),
    );
    fleet.ssh_ok(
        target,
        &web_server_cmd(
            fleet,
            &kamal_name,
            &format!("{kamal_port}:80"),
            "kamal",
            &kamal_name,
        ),
    );

    for (p, id) in [(port, &name), (kamal_port, &kamal_name)] {
        assert_eq!(
            wait_for_id(target, p, Duration::from_secs(20)).as_ref(),
            Some(id),
            "port {p} on {target}"
        );
        for other in hosts.iter().filter(|h| *h != target) {
            assert_eq!(
                http_get_id(other, p),
                None,
                "port {p} of {target} answers on {other}"
            );
        }
        assert_eq!(
            http_get_id("127.0.0.1", p),
            None,
            "port {p} answers on 127.0.0.1"
        );
    }
}

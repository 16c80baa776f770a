//! The native SSH transport (`x-dray: ssh: transport: native`) on the local fleet: a real
//! deploy, ProxyJump through one fleet host to another, a key held only by an `ssh-agent`,
//! a host key mismatch refused and named, secrets on stdin and in no process's argv, and a
//! host whose settings need OpenSSH going there.
//!
//! Each test writes its own ssh config (its own `Host` block first, then `Include` of the
//! fleet's), uses its own service name and cleans up what it made.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use dray::command::CommandSpec;
use dray::remote::{NativeRemote, Remote, SshOptions};

use crate::support::fleet::{unique_name, Fleet};
use crate::support::procs::ProcessWatch;
use crate::support::project::Project;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A native remote for `hosts` whose ssh config is `ssh_config` (then the fleet's).
fn remote(dir: &Path, hosts: &[&str], ssh_config: &str) -> NativeRemote {
    let config_path = dir.join("ssh_config");
    std::fs::write(&config_path, ssh_config).expect("ssh config");
    let hosts_yaml: String = hosts.iter().map(|h| format!("      - {h}\n")).collect();
    let yaml = format!(
        "service: {}\nimage: dray-base\nservers:\n  web:\n    hosts:\n{hosts_yaml}\
         registry:\n  server: localhost:5000\nbuilder:\n  arch: amd64\n\
         ssh:\n  config: {}\nx-dray:\n  ssh:\n    transport: native\n",
        unique_name("nat").replace('-', ""),
        config_path.display()
    );
    let config = dray::config::load::load_str_without_commands(&yaml, "config/deploy.yml")
        .expect("config loads");
    assert_eq!(config.ssh.transport, dray::remote::SshTransport::Native);
    let opts = SshOptions::from_config(&config, dir);
    NativeRemote::new(opts, false).expect("remote")
}

fn echo(line: &str) -> CommandSpec {
    CommandSpec::new("say where from", "sh").arg("-c").arg(line)
}

/// The process owning the local TCP socket `127.0.0.1:<port>` (the client end of a connection
/// to a host's sshd), from `ss`.
fn socket_owner(port: &str) -> Option<u32> {
    let out = Command::new("ss")
        .args([
            "-tnpH",
            "state",
            "established",
            &format!("( sport = :{port} )"),
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text.find("pid=")? + 4;
    text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// `pid` and its ancestors' command lines (for failure messages).
fn ancestry(mut pid: u32) -> String {
    let mut out = Vec::new();
    for _ in 0..8 {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        out.push(format!(
            "{pid}: {}",
            String::from_utf8_lossy(&cmdline).replace('\0', " ")
        ));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        match stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
        {
            Some(p) if p > 1 => pid = p,
            _ => break,
        }
    }
    out.join(" <- ")
}

/// Whether `pid` or one of its ancestors runs with `needle` in its command line.
fn descends_from(mut pid: u32, needle: &str) -> bool {
    for _ in 0..16 {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            return true;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            return false;
        };
        if ppid <= 1 {
            return false;
        }
        pid = ppid;
    }
    false
}

#[test]
fn native_transport_deploys_the_example_app() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let service = unique_name("natdeploy").replace('-', "");
    let project = Project::new(fleet, &service, |yaml| {
        format!("{yaml}\nx-dray:\n  ssh:\n    transport: native\n")
    });
    // The run's own temporary directory: its generated ssh config (the `-F` of any `ssh -G` it
    // runs) is in there, so this run's processes are told from other tests'.
    let tmp = project.path().join(".run-tmp");
    std::fs::create_dir_all(&tmp).expect("run tmpdir");
    let tmp_name = tmp.display().to_string();
    let watch = ProcessWatch::start();
    let out = crate::support::dray_cmd(project.path(), &["deploy", "-v"])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("DOCKER_CONFIG", project.path().join(".docker-config"))
        .env("TMPDIR", &tmp)
        .output()
        .expect("run dray");
    let (code, stdout, stderr) = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    let seen = watch.finish();
    let running: Vec<Vec<String>> = hosts.iter().map(|h| fleet.docker_ps(h)).collect();
    project.cleanup_all(fleet);
    assert_eq!(code, 0, "deploy failed:\n{stdout}\n{stderr}");
    for (host, names) in hosts.iter().zip(&running) {
        assert!(
            stderr.contains(&format!("{host} | ssh: native, key exchange ")),
            "{host} not on the native transport:\n{stderr}"
        );
        assert!(
            names.iter().any(|n| n.starts_with(&service)),
            "no {service} container on {host}: {names:?}"
        );
    }
    // The fleet's sshd is OpenSSH 9.2 (no ML-KEM): the classical key exchange is named.
    assert!(
        stderr.contains("negotiated the classical key exchange curve25519-sha256 with 3 hosts"),
        "{stderr}"
    );
    // No OpenSSH master started for this deploy (only `ssh -G` resolutions).
    let project_dir = project.path().display().to_string();
    let masters: Vec<&str> = seen
        .iter()
        .map(|s| s.cmdline.as_str())
        .filter(|c| c.starts_with("ssh ") && c.contains(" -M ") && c.contains(&project_dir))
        .collect();
    assert!(masters.is_empty(), "OpenSSH masters: {masters:?}");
    // The fleet's ssh config is plain: each host's settings are read in-process; no `ssh -G`
    // of this run reads its generated config (the one it runs reads `-F /dev/null`, OpenSSH's
    // defaults).
    let resolutions: Vec<&str> = seen
        .iter()
        .map(|s| s.cmdline.as_str())
        .filter(|c| c.starts_with("ssh ") && c.contains(" -G ") && c.contains(&tmp_name))
        .collect();
    assert!(
        resolutions.is_empty(),
        "a host resolved by `ssh -G`: {resolutions:?}"
    );
    assert!(
        !stderr.contains("settings from `ssh -G` per host"),
        "{stderr}"
    );
}

#[test]
fn proxy_jump_reaches_host_two_through_host_one() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let (h1, h2, h3) = (&hosts[0], &hosts[1], &hosts[2]);
    let dir = tempfile::tempdir().expect("tempdir");
    let remote = remote(
        dir.path(),
        &[h2, h3],
        &format!(
            "Host {h2}\n  ProxyJump {h1}\nHost *\nInclude {}\n",
            fleet.ssh_config().display()
        ),
    );
    let where_from = echo("echo $SSH_CONNECTION");
    let host1_sshd = "/hosts/1/etc/sshd_config";
    let (jumped, direct) = rt().block_on(async {
        let jumped = remote
            .run_checked(h2, &where_from)
            .await
            .expect("via host 1");
        let direct = remote.run_checked(h3, &where_from).await.expect("direct");
        assert!(remote.is_native(h2).await, "{h2} went over OpenSSH");
        // Look at the sockets while the connections are up: (what the host saw, whether the
        // client end belongs to host 1's sshd, that process and its ancestors).
        let owner = |out: &dray::remote::CommandOutput| {
            let port = out
                .stdout
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            let pid =
                socket_owner(&port).unwrap_or_else(|| panic!("no local socket for {}", out.stdout));
            (
                out.stdout.clone(),
                descends_from(pid, host1_sshd),
                ancestry(pid),
            )
        };
        let result = (owner(&jumped), owner(&direct));
        remote.close().await;
        result
    });
    // Host 2's sshd saw a connection whose client end belongs to host 1's sshd (all hosts
    // share this machine's loopback and PID namespace, so the source address alone would not
    // tell; the owner of the socket does).
    let (text, from_host1, chain) = jumped;
    assert!(text.ends_with(&format!("{h2} 22\n")), "{text}");
    assert!(
        from_host1,
        "the connection to {h2} ({text}) is not from host 1's sshd: {chain}"
    );
    let (text, from_host1, chain) = direct;
    assert!(
        !from_host1,
        "the direct connection to {h3} ({text}) came through host 1: {chain}"
    );
}

/// An `ssh-agent` of the test, killed on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path, key: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent");
        let agent = Agent { child, socket };
        for _ in 0..100 {
            if agent.socket.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let added = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &agent.socket)
            .output()
            .expect("ssh-add");
        assert!(added.status.success(), "ssh-add: {added:?}");
        agent
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_key_held_only_by_the_agent_authenticates_and_nothing_without_it() {
    let Some(fleet) = Fleet::get() else { return };
    let host = fleet.require_hosts(1)[0].clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(dir.path(), &fleet.dir().join("ssh/id_ed25519"));
    // No IdentityFile anywhere (the fleet's config is not included): only the agent has a key.
    let block = |agent_line: &str| {
        format!(
            "Host {host}\n  HostName {host}\n  User root\n  {agent_line}\n  UserKnownHostsFile {kh}\n  GlobalKnownHostsFile /dev/null\n  HostKeyAlias {host}\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
            kh = fleet.dir().join("ssh/known_hosts").display()
        )
    };
    let with_agent = remote(
        dir.path(),
        &[&host],
        &block(&format!("IdentityAgent {}", agent.socket.display())),
    );
    let out = rt().block_on(async {
        let out = with_agent.run_checked(&host, &echo("echo agent-ok")).await;
        assert!(
            with_agent.is_native(&host).await,
            "not on the native client"
        );
        with_agent.close().await;
        out
    });
    assert_eq!(out.expect("via the agent").stdout, "agent-ok\n");

    let other = tempfile::tempdir().expect("tempdir");
    let without = remote(other.path(), &[&host], &block("IdentityAgent none"));
    let err = rt().block_on(async {
        let r = without.connect_all(std::slice::from_ref(&host)).await;
        without.close().await;
        r.expect_err("no key without the agent").to_string()
    });
    assert!(err.contains(&host), "{err}");
    assert!(err.contains("Permission denied (publickey)"), "{err}");
    drop(agent);
}

#[test]
fn a_host_key_mismatch_is_refused_and_named() {
    let Some(fleet) = Fleet::get() else { return };
    let host = fleet.require_hosts(1)[0].clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = dir.path().join("wrong");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&wrong)
        .output()
        .expect("ssh-keygen");
    assert!(made.status.success());
    let public = std::fs::read_to_string(dir.path().join("wrong.pub")).expect("pub");
    let known = dir.path().join("known_hosts");
    let public: Vec<&str> = public.split_whitespace().take(2).collect();
    std::fs::write(&known, format!("{host} {}\n", public.join(" "))).expect("known_hosts");
    let remote = remote(
        dir.path(),
        &[&host],
        &format!(
            "Host {host}\n  UserKnownHostsFile {}\nInclude {}\n",
            known.display(),
            fleet.ssh_config().display()
        ),
    );
    let err = rt().block_on(async {
        let r = remote.connect_all(std::slice::from_ref(&host)).await;
        let ran = remote.run(&host, &echo("echo should-not-run")).await;
        remote.close().await;
        assert!(
            ran.is_err(),
            "a command ran on a host with a mismatched key"
        );
        r.expect_err("refused").to_string()
    });
    assert!(err.contains(&format!("cannot connect to {host}")), "{err}");
    assert!(err.contains("does not match the key recorded"), "{err}");
    assert!(err.contains(&format!("{}:1", known.display())), "{err}");
}

#[test]
fn secrets_go_on_stdin_never_in_any_argv() {
    let Some(fleet) = Fleet::get() else { return };
    let host = fleet.require_hosts(1)[0].clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let remote = remote(
        dir.path(),
        &[&host],
        &format!("Include {}\n", fleet.ssh_config().display()),
    );
    let secret = format!("s3cr3t-{}", unique_name("native"));
    let cmd = CommandSpec::new("keep a secret", "sh")
        .arg("-c")
        .arg("sha256sum; sleep 1")
        .stdin(secret.clone().into_bytes());
    let watch = ProcessWatch::start();
    let out = rt().block_on(async {
        let out = remote.run_checked(&host, &cmd).await;
        assert!(remote.is_native(&host).await, "not on the native client");
        remote.close().await;
        out
    });
    let seen = watch.finish();
    let out = out.expect("ran");
    use sha2::Digest as _;
    let digest = format!("{:x}", sha2::Sha256::digest(secret.as_bytes()));
    assert!(
        out.stdout.starts_with(&digest),
        "stdin not delivered: {out:?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.cmdline.contains("sha256sum; sleep 1")),
        "the watch did not see the command"
    );
    let leaked: Vec<&str> = seen
        .iter()
        .map(|s| s.cmdline.as_str())
        .filter(|c| c.contains(&secret))
        .collect();
    assert!(leaked.is_empty(), "secret in argv: {leaked:?}");
    assert!(!format!("{cmd:?}{}", cmd.to_shell_redacted()).contains(&secret));
}

#[test]
fn a_host_needing_openssh_goes_there_and_still_runs() {
    let Some(fleet) = Fleet::get() else { return };
    let host = fleet.require_hosts(1)[0].clone();
    let dir = tempfile::tempdir().expect("tempdir");
    // A ProxyCommand: the native client cannot run one, OpenSSH can.
    let remote = remote(
        dir.path(),
        &[&host],
        &format!(
            "Host {host}\n  ProxyCommand ssh -F {f} -W %h:%p %h\nInclude {f}\n",
            f = fleet.ssh_config().display()
        ),
    );
    let out = rt().block_on(async {
        let out = remote.run_checked(&host, &echo("echo over-openssh")).await;
        assert!(
            !remote.is_native(&host).await,
            "a ProxyCommand host on the native client"
        );
        remote.close().await;
        out
    });
    assert_eq!(out.expect("over OpenSSH").stdout, "over-openssh\n");
}

#[test]
fn a_config_with_match_is_resolved_by_openssh_and_the_host_stays_native() {
    let Some(fleet) = Fleet::get() else { return };
    let host = fleet.require_hosts(1)[0].clone();
    let dir = tempfile::tempdir().expect("tempdir");
    // `Match` is not read in-process: `ssh -G` resolves the host, the native client connects.
    let remote = remote(
        dir.path(),
        &[&host],
        &format!(
            "Match host {host}\n  ServerAliveCountMax 4\nInclude {f}\n",
            f = fleet.ssh_config().display()
        ),
    );
    let watch = ProcessWatch::start();
    let out = rt().block_on(async {
        let out = remote
            .run_checked(&host, &echo("echo resolved-by-openssh"))
            .await;
        assert!(
            remote.is_native(&host).await,
            "the host left the native client"
        );
        remote.close().await;
        out
    });
    let seen = watch.finish();
    let out = out.expect("the command runs");
    assert_eq!(out.stdout.trim(), "resolved-by-openssh");
    assert!(
        seen.iter()
            .any(|s| s.cmdline.starts_with("ssh ") && s.cmdline.ends_with(&format!("-G {host}"))),
        "no `ssh -G {host}`: {:?}",
        seen.iter().map(|s| &s.cmdline).collect::<Vec<_>>()
    );
}

/// The per-connection buffer bounds (16 KiB packets, 32 queued messages per channel) do not cut
/// big outputs: a command printing 6 MB on stdout and 3 MB on stderr at once, reading 4 MB of
/// stdin, arrives whole and in order over the native transport.
#[test]
fn native_transport_carries_several_megabytes_whole_both_ways() {
    let Some(fleet) = Fleet::get() else { return };
    let host = fleet.require_hosts(1)[0].clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let remote = remote(
        dir.path(),
        &[&host],
        &format!("Include {}\n", fleet.ssh_config().display()),
    );
    // Numbered lines, so that a lost, doubled or reordered packet shows. stderr streams while
    // stdin is still being written, then stdout follows.
    let script = "seq 1 400000 | sed 's/$/ err/' >&2 & wc -c; seq 1 800000 | sed 's/$/ out/'; wait";
    let input: Vec<u8> = (0..4_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let cmd = CommandSpec::new("print a lot", "sh")
        .arg("-c")
        .arg(script)
        .stdin(input);
    let started = std::time::Instant::now();
    let out = rt().block_on(async {
        let out = remote.run_checked(&host, &cmd).await;
        assert!(remote.is_native(&host).await, "not on the native client");
        remote.close().await;
        out
    });
    let elapsed = started.elapsed();
    let out = out.expect("ran");
    let expect =
        |n: u32, tag: &str| -> String { (1..=n).map(|i| format!("{i} {tag}\n")).collect() };
    let want = format!("4000000\n{}", expect(800_000, "out"));
    assert!(out.stdout.len() > 6_000_000, "{} bytes", out.stdout.len());
    assert!(
        out.stdout == want,
        "stdout not whole or out of order ({} bytes, {} expected)",
        out.stdout.len(),
        want.len()
    );
    assert!(
        out.stderr == expect(400_000, "err"),
        "stderr not whole ({} bytes)",
        out.stderr.len()
    );
    eprintln!("9+ MB over the native transport in {elapsed:?}");
}

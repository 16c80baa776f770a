//! Registries on the fleet, through the `dray` binary: a registry that needs a login (the
//! fleet's htpasswd registry on 127.0.0.1:5001), and Kamal's local registry mode
//! (`registry.server: localhost:PORT`, hosts pulling through SSH reverse tunnels).

use std::path::Path;
use std::process::Output;

use crate::support::deployer::served_version;
use crate::support::fleet::{unique_name, AuthRegistry, Fleet};
use crate::support::procs::ProcessWatch;
use crate::support::project::{git, Project};

/// Run dray in the project with its own Docker client config (the local login's credentials
/// land there, not in the machine's `~/.docker`).
fn dray(project: &Project, docker_config: &Path, args: &[&str]) -> Output {
    crate::support::dray_cmd(project.path(), args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("DOCKER_CONFIG", docker_config)
        // Its ssh run directories under the test's own directory: tests running meanwhile
        // have masters of their own.
        .env("TMPDIR", docker_config)
        .output()
        .expect("run dray")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The example app with `registry: {server: <auth registry>, username: <user>, password:
/// [KAMAL_REGISTRY_PASSWORD]}` and `password` in `.kamal/secrets`.
fn auth_project(fleet: &Fleet, auth: &AuthRegistry, password: &str) -> Project {
    let project = Project::new(fleet, &unique_name("e2e-login"), |d| {
        let edited = d.replace(
            "  server: 127.0.0.1:5000\n  username:\n    - KAMAL_REGISTRY_USERNAME\n",
            &format!("  server: {}\n  username: {}\n", auth.address, auth.user),
        );
        assert_ne!(edited, d, "the registry section of deploy.yml changed");
        edited
    });
    set_password(&project, password);
    project
}

fn set_password(project: &Project, password: &str) {
    crate::support::write(
        &project.path().join(".kamal/secrets"),
        &format!("KAMAL_REGISTRY_PASSWORD={password}\n"),
    );
    git(project.path(), &["add", "-A"]);
    git(
        project.path(),
        &["commit", "-qm", "registry password", "--allow-empty"],
    );
}

/// Whether a Docker client config (`config.json`) holds credentials for `registry`.
fn has_credentials(config_json: Option<&str>, registry: &str) -> bool {
    config_json.is_some_and(|c| c.contains(&format!("\"{registry}\"")))
}

/// Containers and images of the project off every host, and the hosts logged out.
fn cleanup(fleet: &Fleet, project: &Project, registry: &str) {
    project.cleanup_from(
        fleet,
        registry,
        &format!("docker logout {registry} >/dev/null 2>&1"),
    );
}

#[test]
fn deploy_through_a_registry_that_needs_a_login() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let auth = fleet.auth_registry();
    let project = auth_project(fleet, &auth, &auth.password);
    let docker_config = tempfile::tempdir().expect("tempdir");

    // No host holds credentials for the registry, and without them a pull is refused.
    for host in &hosts {
        let _ = fleet.ssh(
            host,
            &format!("docker logout {} >/dev/null 2>&1", auth.address),
        );
        let config = fleet.read_file(host, "~/.docker/config.json");
        assert!(
            !has_credentials(config.as_deref(), &auth.address),
            "{host}: {config:?}"
        );
    }
    let refused = fleet.ssh(
        &hosts[0],
        &format!("docker pull {}/nothing:here", auth.address),
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no basic auth credentials"),
        "{refused:?}"
    );

    let watch = ProcessWatch::start();
    let out = dray(&project, docker_config.path(), &["deploy"]);
    let scans = watch.scans();
    let seen = watch.finish();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    let version = project.head();

    // The hosts pulled the image from the registry and run it.
    for host in &hosts {
        let images = fleet.ssh_ok(
            host,
            &format!(
                "docker image ls --format '{{{{.Repository}}}}:{{{{.Tag}}}}' {}/{}",
                auth.address, project.service
            ),
        );
        assert!(images.contains(&version), "{host}: {images}");
    }
    for host in &hosts[..2] {
        assert_eq!(
            served_version(fleet, host, &project.service, "web"),
            version
        );
    }
    assert_eq!(
        served_version(fleet, &hosts[2], &project.service, "workers"),
        version
    );

    // Logged in on this machine (the push needed it) and on each host (the pull needed it).
    let local = std::fs::read_to_string(docker_config.path().join("config.json")).ok();
    assert!(
        has_credentials(local.as_deref(), &auth.address),
        "{local:?}"
    );
    for host in &hosts {
        let config = fleet.read_file(host, "~/.docker/config.json");
        assert!(
            has_credentials(config.as_deref(), &auth.address),
            "{host}: {config:?}"
        );
    }

    // The local login ran before the push, with the password on stdin: no process on this
    // machine or on any host (they share its process table) had it in its arguments.
    assert!(scans > 100, "the process watch scanned {scans} times");
    let login = format!(
        "docker login {} -u {} --password-stdin",
        auth.address, auth.user
    );
    let first = |needle: &str| seen.iter().find(|s| s.cmdline.contains(needle));
    let logged_in = first(&login).unwrap_or_else(|| panic!("no `{login}` seen:\n{seen:#?}"));
    let pushed = first(&format!("docker push {}/{}", auth.address, project.service))
        .unwrap_or_else(|| panic!("no push seen:\n{seen:#?}"));
    assert!(logged_in.at < pushed.at, "{logged_in:?} after {pushed:?}");
    let leaks: Vec<_> = seen
        .iter()
        .filter(|s| s.cmdline.contains(&auth.password))
        .collect();
    assert!(leaks.is_empty(), "the password in argv: {leaks:#?}");
    assert!(
        !shown.contains(&auth.password),
        "the password in dray's output"
    );

    // A wrong password: the local login fails before the build, naming the registry and
    // where the login ran; nothing on the hosts changes.
    let wrong = format!("{}-wrong", auth.password);
    set_password(&project, &wrong);
    let out = dray(&project, docker_config.path(), &["deploy"]);
    let shown = text(&out);
    assert_ne!(out.status.code(), Some(0), "{shown}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("log in to registry {} on localhost", auth.address)),
        "{shown}"
    );
    assert!(
        stderr.contains("KAMAL_REGISTRY_PASSWORD"),
        "no hint: {shown}"
    );
    let pushed_again = std::process::Command::new("curl")
        .args(["-fsS", "-u", &format!("{}:{}", auth.user, auth.password)])
        .arg(format!(
            "http://{}/v2/{}/tags/list",
            auth.address, project.service
        ))
        .output()
        .expect("curl");
    assert!(
        !String::from_utf8_lossy(&pushed_again.stdout).contains(&project.head()),
        "the build pushed after a refused login"
    );
    assert!(!shown.contains(&wrong), "the password in dray's output");

    // A wrong password on the hosts (`--skip-push`: no local login): every host's pull fails
    // at its login, each named with the registry, before the lock and before anything is
    // stopped: the running version keeps running everywhere.
    let out = dray(
        &project,
        docker_config.path(),
        &["deploy", "--skip-push", "--version", &version],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for host in &hosts {
        assert!(
            stderr.contains(&format!(
                "registry {} refused the login on {host}",
                auth.address
            )),
            "{host} not named with the registry:\n{shown}"
        );
    }
    assert!(!shown.contains(&wrong), "the password in dray's output");
    for host in &hosts[..2] {
        assert_eq!(
            served_version(fleet, host, &project.service, "web"),
            version
        );
    }
    assert_eq!(
        served_version(fleet, &hosts[2], &project.service, "workers"),
        version
    );
    cleanup(fleet, &project, &auth.address);
}

/// The port of the test's local registry (`registry.server: localhost:5555`, as `kamal init`
/// writes it). Only this test uses it.
const LOCAL_PORT: u16 = 5555;

/// `docker` on the builder engine (the deploying side's Docker).
fn builder_docker(fleet: &Fleet, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new("docker");
    if let Some(h) = fleet.builder_docker_host() {
        cmd.env("DOCKER_HOST", h);
    }
    cmd.args(args).output().expect("run docker")
}

/// Kamal's local registry runs the image `registry:3`, which cannot be pulled here (no Docker
/// Hub): build a stand-in of that name on the builder engine from Debian's
/// `/usr/bin/docker-registry` (with the shared libraries it links) on the fleet's busybox base
/// image, listening on :5000 with its storage under /var/lib/registry, as `registry:3` does.
fn ensure_registry_image(fleet: &Fleet) {
    if builder_docker(fleet, &["image", "inspect", "registry:3"])
        .status
        .success()
    {
        return;
    }
    let ctx = tempfile::tempdir().expect("tempdir");
    let root = ctx.path().join("rootfs");
    let copy = |from: &str| {
        let to = root.join(from.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copy {from}: {e}"));
    };
    copy("/usr/bin/docker-registry");
    let ldd = std::process::Command::new("ldd")
        .arg("/usr/bin/docker-registry")
        .output()
        .expect("ldd");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            copy(p);
        }
    }
    crate::support::write(
        &root.join("etc/docker/registry/config.yml"),
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: :5000\n",
    );
    crate::support::write(
        &ctx.path().join("Dockerfile"),
        &format!(
            "FROM {}\nCOPY rootfs/ /\nEXPOSE 5000\nCMD [\"/usr/bin/docker-registry\", \"serve\", \"/etc/docker/registry/config.yml\"]\n",
            fleet.base_image()
        ),
    );
    let ctx_path = ctx.path().display().to_string();
    let out = builder_docker(fleet, &["build", "-q", "-t", "registry:3", &ctx_path]);
    assert!(out.status.success(), "build registry:3: {}", text(&out));
}

/// Who listens on TCP port `port` of this machine, as `address:port process` lines.
fn listeners(port: u16) -> Vec<String> {
    let out = std::process::Command::new("ss")
        .args(["-Hltnpe", &format!("sport = :{port}")])
        .output()
        .expect("ss");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let named = l
                .split("((\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(str::to_owned);
            // `ss` reads /proc before it asks the kernel for the sockets, so a listener opened
            // in between has no process: look its inode up in /proc now (it is most likely still
            // open); "?" only if it is gone already.
            let process = named
                .or_else(|| {
                    l.split_whitespace()
                        .find_map(|w| w.strip_prefix("ino:"))
                        .and_then(socket_owner)
                })
                .unwrap_or_else(|| "?".to_owned());
            format!("{} {process}", f.get(3).unwrap_or(&"?"))
        })
        .collect()
}

/// The command name of a process holding the socket with inode `inode`, from /proc.
fn socket_owner(inode: &str) -> Option<String> {
    let link = std::path::PathBuf::from(format!("socket:[{inode}]"));
    for proc_dir in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(fds) = std::fs::read_dir(proc_dir.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == link))
        {
            let comm = std::fs::read_to_string(proc_dir.path().join("comm")).ok()?;
            return Some(comm.trim().to_owned());
        }
    }
    None
}

/// Samples [`listeners`] until stopped: every distinct line seen.
struct ListenerWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<std::collections::BTreeSet<String>>,
}

impl ListenerWatch {
    fn start(port: u16) -> ListenerWatch {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                seen.extend(listeners(port));
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            seen
        });
        ListenerWatch { stop, thread }
    }

    fn finish(self) -> std::collections::BTreeSet<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("listener watch")
    }
}

/// Kamal's local registry mode on the fleet: `registry.server: localhost:5555`; dray starts
/// `kamal-docker-registry` (`registry:3`) on the builder engine, pushes
/// `localhost:5555/<service>:<version>` there, and each host pulls that name through an SSH
/// reverse tunnel opened on its master for the pull and closed after it. No `docker login` runs.
///
/// Why it looks like this on the fleet: every host and the builder share this machine's network
/// stack, so one `127.0.0.1:5555` would be the registry, the tunnel's remote end on every host
/// and the tunnel's target all at once (on real machines those are three different loopbacks).
/// So the fleet gives the builder engine its own `localhost`, 127.0.0.2 (a private /etc/hosts
/// in its mount namespace, `scripts/fleet`), and the configuration says, with dray's own
/// `x-dray: local_registry: address: 127.0.0.2`, that the registry container publishes on
/// 127.0.0.2:5555 and the tunnels' local ends connect there. Everything the hosts see is
/// Kamal's: the tunnel's remote end is `127.0.0.1:5555` and they pull `localhost:5555/…`. What
/// proves the hosts pull through the tunnel and reach no registry otherwise: before and after
/// the deploy nothing listens on 127.0.0.1:5555 and a pull of the very image (which the
/// registry holds) fails on the host; during the deploy the only listener ever seen there is
/// sshd (the tunnel's remote end). For the same reason the hosts are deployed one at a time:
/// two hosts' tunnels would both need this machine's one 127.0.0.1:5555 (on real machines each
/// host has its own, and dray opens them in parallel).
#[test]
fn deploy_with_a_local_registry_pulls_through_ssh_tunnels() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(2).to_vec();
    let loopback = std::env::var("DRAY_FLEET_BUILDER_LOOPBACK")
        .expect("DRAY_FLEET_BUILDER_LOOPBACK: bring the fleet up again (scripts/fleet up 3)");
    ensure_registry_image(fleet);
    let _ = builder_docker(fleet, &["rm", "-f", "kamal-docker-registry"]);
    let project = Project::new(fleet, &unique_name("e2e-localreg"), |d| {
        let edited = d.replace(
            "registry:\n  server: 127.0.0.1:5000\n  username:\n    - KAMAL_REGISTRY_USERNAME\n  password:\n    - KAMAL_REGISTRY_PASSWORD\n",
            &format!(
                "registry:\n  server: localhost:{LOCAL_PORT}\nx-dray:\n  local_registry:\n    address: {loopback}\n"
            ),
        );
        assert_ne!(edited, d, "the registry section of deploy.yml changed");
        edited
    });
    let docker_config = tempfile::tempdir().expect("tempdir");
    let on_loopback = |l: &String| l.starts_with(&format!("127.0.0.1:{LOCAL_PORT} "));
    assert!(
        !listeners(LOCAL_PORT).iter().any(on_loopback),
        "{:?}",
        listeners(LOCAL_PORT)
    );

    // The plan shows the registry container and each host's tunnel.
    let out = dray(
        &project,
        docker_config.path(),
        &["deploy", "--dry-run", "-h", &hosts[0]],
    );
    let plan = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        plan.contains(&format!(
            "docker start kamal-docker-registry || docker run --detach -p {loopback}:{LOCAL_PORT}:5000 --name kamal-docker-registry registry:3"
        )),
        "{plan}"
    );
    assert!(
        plan.contains(&format!(
            "[{}] tunnel: ssh -O forward -R 127.0.0.1:{LOCAL_PORT}:{loopback}:{LOCAL_PORT}",
            hosts[0]
        )),
        "{plan}"
    );
    assert!(!plan.contains("docker login"), "{plan}");

    // Host 1: build, push to the local registry, pull through the tunnel.
    let procs = ProcessWatch::start();
    let ports = ListenerWatch::start(LOCAL_PORT);
    let out = dray(&project, docker_config.path(), &["deploy", "-h", &hosts[0]]);
    let during = ports.finish();
    let seen = procs.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let version = project.head();
    assert_eq!(
        served_version(fleet, &hosts[0], &project.service, "web"),
        version
    );
    let image = format!("localhost:{LOCAL_PORT}/{}:{version}", project.service);
    let local_image = fleet.ssh_ok(&hosts[0], &format!("docker image ls -q {image}"));
    assert!(
        !local_image.trim().is_empty(),
        "{image} not on {}",
        hosts[0]
    );
    // `ss` names no process ("?") for a socket it sees before it finds the socket's file
    // descriptor in /proc (a listener just opened or just closing): those samples say nothing.
    let sshd = format!("127.0.0.1:{LOCAL_PORT} sshd");
    let unknown = format!("127.0.0.1:{LOCAL_PORT} ?");
    let remote_ends: Vec<&String> = during.iter().filter(|l| on_loopback(l)).collect();
    assert!(
        remote_ends.contains(&&sshd) && remote_ends.iter().all(|l| **l == sshd || **l == unknown),
        "listeners on port {LOCAL_PORT} during the deploy: {during:?}"
    );
    // The sampler sees every process of the machine: logins of other tests running meanwhile
    // name the fleet's own registries (127.0.0.1:5000, :5001); any other login is this deploy's.
    let logins: Vec<_> = seen
        .iter()
        .filter(|s| {
            s.cmdline.contains("docker login")
                && !s.cmdline.contains("127.0.0.1:5000")
                && !s.cmdline.contains("127.0.0.1:5001")
        })
        .collect();
    assert!(logins.is_empty(), "{logins:#?}");
    assert!(
        seen.iter()
            .any(|s| s.cmdline.contains(&format!("docker push {image}"))),
        "no push seen"
    );

    // Host 2 has no route to the registry without a tunnel, though the registry holds the image.
    let tags = std::process::Command::new("curl")
        .args([
            "-fsS",
            &format!(
                "http://{loopback}:{LOCAL_PORT}/v2/{}/tags/list",
                project.service
            ),
        ])
        .output()
        .expect("curl");
    assert!(
        String::from_utf8_lossy(&tags.stdout).contains(&version),
        "{tags:?}"
    );
    let direct = fleet.ssh(&hosts[1], &format!("docker pull {image}"));
    assert!(
        !direct.status.success(),
        "{} pulled without a tunnel",
        hosts[1]
    );
    assert!(
        String::from_utf8_lossy(&direct.stderr).contains("connection refused"),
        "{direct:?}"
    );

    // Host 2, the image already pushed: the pull goes through its own tunnel.
    let out = dray(
        &project,
        docker_config.path(),
        &[
            "deploy",
            "--skip-push",
            "--version",
            &version,
            "-h",
            &hosts[1],
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        served_version(fleet, &hosts[1], &project.service, "web"),
        version
    );
    assert!(!text(&out).contains("docker login"));

    // The tunnels are gone: nothing listens on 127.0.0.1:5555, a pull fails again, and no ssh
    // process dray started is left.
    assert!(
        !listeners(LOCAL_PORT).iter().any(on_loopback),
        "{:?}",
        listeners(LOCAL_PORT)
    );
    let again = fleet.ssh(
        &hosts[0],
        &format!("docker image rm {image} >/dev/null 2>&1; docker pull {image}"),
    );
    assert!(
        !again.status.success(),
        "{} still pulls after the deploy",
        hosts[0]
    );
    let left: Vec<_> = seen
        .iter()
        .filter(|s| {
            s.cmdline.starts_with("ssh")
                && s.cmdline
                    .contains(&format!("{}/dray-ssh-", docker_config.path().display()))
        })
        .filter(|s| {
            std::fs::read(format!("/proc/{}/cmdline", s.pid))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim_end() == s.cmdline)
                .unwrap_or(false)
        })
        .collect();
    assert!(left.is_empty(), "ssh processes left: {left:#?}");

    // `registry remove` removes the container; `registry login` refuses a local registry.
    let out = dray(&project, docker_config.path(), &["registry", "remove"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !builder_docker(fleet, &["container", "inspect", "kamal-docker-registry"])
            .status
            .success()
    );
    let out = dray(&project, docker_config.path(), &["registry", "login"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("registry setup"),
        "{}",
        text(&out)
    );
    cleanup(fleet, &project, &format!("localhost:{LOCAL_PORT}"));
}

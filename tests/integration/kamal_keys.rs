//! Keys of deploy.yml that change what runs on the servers, end to end through the `dray` binary
//! on the local fleet, each as Kamal 2.12 does it: asset bridging (`asset_path`), error pages
//! (`error_pages_path`), custom certificates (`proxy.ssl.certificate_pem`), `boot.parallel_roles`,
//! `ssh.key_data`, `--raw`, `hooks_output`.

use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::{git, Project};
use crate::support::write;

fn dray(project: &Project, args: &[&str]) -> (i32, String, String) {
    project.dray(args)
}

fn dray_ok(project: &Project, args: &[&str]) -> String {
    project.dray_ok(args)
}

/// `(status, body)` of `GET path` through the proxy on `host`, for `<service>.test`.
fn get(host: &str, service: &str, path: &str) -> (String, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-m", "5", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Host: {service}.test"))
        .arg(format!("http://{host}{path}"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.to_string(), body.trim().to_string())
}

fn cleanup(fleet: &Fleet, project: &Project) {
    project.cleanup_all(fleet);
}

fn web_container(fleet: &Fleet, host: &str, service: &str) -> String {
    fleet
        .ssh_ok(
            host,
            &format!("docker ps --filter label=service={service} --filter label=role=web --format '{{{{.Names}}}}' | head -1"),
        )
        .trim()
        .to_string()
}

/// The image's assets are `assets/` of the project, at `/tmp/www/assets` (which the example
/// app's httpd serves).
fn commit_assets(project: &Project, files: &[(&str, &str)], message: &str) {
    let dir = project.path().join("assets");
    let _ = std::fs::remove_dir_all(&dir);
    for (name, text) in files {
        write(&dir.join(name), text);
    }
    git(project.path(), &["add", "-A"]);
    git(project.path(), &["commit", "-qm", message]);
}

#[test]
fn assets_of_both_versions_are_served_during_and_after_a_deploy() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let service = unique_name("e2e-assets");
    let project = Project::new(fleet, &service, |d| {
        format!("{d}\nasset_path: /tmp/www/assets:ro\n")
    });
    let dockerfile = project.path().join("Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).expect("Dockerfile");
    write(
        &dockerfile,
        &text.replace(
            "COPY example/start /app/start\n",
            "COPY example/start /app/start\nCOPY assets/ /tmp/www/assets/\n",
        ),
    );
    let ignore = project.path().join(".dockerignore");
    let text = std::fs::read_to_string(&ignore).unwrap_or_default();
    write(&ignore, &format!("{text}!assets/\n"));
    commit_assets(&project, &[("app-1.css", "one")], "assets v1");
    dray_ok(&project, &["deploy", "--version", "v1"]);
    for host in &hosts[..2] {
        assert_eq!(
            get(host, &service, "/assets/app-1.css"),
            ("200".into(), "one".into())
        );
    }

    // v2 drops app-1.css and adds app-2.css. Before the new containers boot (pre-app-boot), the
    // old ones already serve the new file; afterwards the new ones still serve the old file.
    commit_assets(&project, &[("app-2.css", "two")], "assets v2");
    let during = project.path().join("during.log");
    let hook = format!(
        "#!/bin/sh\nfor h in {} {}; do for f in app-1.css app-2.css; do curl -s -m 5 -H 'Host: {service}.test' http://$h/assets/$f; echo; done; curl -s -m 5 -H 'Host: {service}.test' http://$h/version; done > {}\n",
        hosts[0],
        hosts[1],
        during.display()
    );
    let hook_path = project.path().join(".kamal/hooks/pre-app-boot");
    write(&hook_path, &hook);
    git(project.path(), &["commit", "-qam", "pre-app-boot hook"]);
    dray_ok(&project, &["deploy", "--version", "v2"]);
    let seen = std::fs::read_to_string(&during).expect("the hook ran");
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        ["one", "two", "v1", "one", "two", "v1"],
        "the old containers serve both versions' assets before the new ones boot"
    );
    for host in &hosts[..2] {
        assert_eq!(get(host, &service, "/version"), ("200".into(), "v2".into()));
        assert_eq!(
            get(host, &service, "/assets/app-1.css"),
            ("200".into(), "one".into()),
            "{host}"
        );
        assert_eq!(
            get(host, &service, "/assets/app-2.css"),
            ("200".into(), "two".into()),
            "{host}"
        );
        // `:ro` mounts the volume read-only.
        let c = web_container(fleet, host, &service);
        let touch = fleet.ssh(host, &format!("docker exec {c} touch /tmp/www/assets/x"));
        assert!(
            !touch.status.success(),
            "the asset volume is writable on {host}"
        );
        // Only the running version's directories are left.
        let left = fleet.ssh_ok(
            host,
            &format!(
                "ls .kamal/apps/{service}/assets/extracted .kamal/apps/{service}/assets/volumes"
            ),
        );
        assert!(!left.contains("web-v1"), "{host}: {left}");
        assert!(left.contains("web-v2"), "{host}: {left}");
    }
    // The worker (no proxy) bridges nothing.
    let left = fleet.ssh_ok(
        &hosts[2],
        &format!("ls -d .kamal/apps/{service}/assets 2>/dev/null || true"),
    );
    assert!(left.trim().is_empty(), "{left}");
    cleanup(fleet, &project);
}

#[test]
fn ssh_key_data_connects_with_a_key_held_in_a_secret() {
    let Some(fleet) = Fleet::get() else { return };
    let host = fleet.require_hosts(1)[0].clone();
    // The fleet's ssh config without its identity files: the key comes from the secret alone.
    let keyless = tempfile::tempdir().expect("tempdir");
    let config = std::fs::read_to_string(fleet.ssh_config()).expect("ssh config");
    let stripped: String = config
        .lines()
        .filter(|l| !l.trim_start().starts_with("IdentityFile"))
        .map(|l| format!("{l}\n"))
        .collect();
    let keyless_config = keyless.path().join("config");
    write(&keyless_config, &stripped);
    let key = std::fs::read_to_string(fleet.dir().join("ssh/id_ed25519")).expect("fleet key");
    let service = unique_name("e2e-keydata");
    let with_key = |d: String| {
        d.replace(
            &format!("  config: {}", fleet.ssh_config().display()),
            &format!(
                "  config: {}\n  keys_only: true\n  key_data:\n    - SSH_DEPLOY_KEY",
                keyless_config.display()
            ),
        )
    };
    let project = Project::new(fleet, &service, with_key);
    let secrets = project.path().join(".kamal/secrets");
    let text = std::fs::read_to_string(&secrets).unwrap_or_default();
    write(
        &secrets,
        &format!("{text}\nSSH_DEPLOY_KEY=\"{}\"\n", key.trim_end()),
    );
    git(project.path(), &["add", "-A"]);
    git(project.path(), &["commit", "-qm", "key data"]);
    let out = dray_ok(
        &project,
        &[
            "server", "exec", "--hosts", &host, "--raw", "echo", "reached",
        ],
    );
    assert_eq!(out, "reached\n", "--raw prints the output alone");
    // Without the key: no identity, no connection.
    let deploy = project.path().join("config/deploy.yml");
    let text = std::fs::read_to_string(&deploy).expect("deploy.yml");
    write(
        &deploy,
        &text.replace("  key_data:\n    - SSH_DEPLOY_KEY\n", ""),
    );
    let (code, _, err) = dray(&project, &["server", "exec", "--hosts", &host, "true"]);
    assert_ne!(code, 0, "connected without the key: {err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");
}

#[test]
fn names_that_do_not_resolve_are_tried_sshkit_dns_retries_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        &dir.path().join("config/deploy.yml"),
        "service: dns\nimage: dns\nservers: [dray-nowhere.invalid]\nregistry: {server: 127.0.0.1:5000, username: u, password: p}\nbuilder: {arch: amd64}\nsshkit: {dns_retries: 2}\nssh: {config: false}\n",
    );
    git(dir.path(), &["init", "-q"]);
    let out = crate::support::dray_cmd(dir.path(), &["server", "exec", "--version", "v1", "true"])
        .env("DRAY_LOG", "warn")
        .output()
        .expect("run dray");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("attempt 1/2"), "{err}");
    assert!(err.contains("attempt 2/2"), "{err}");
    assert!(!err.contains("attempt 3/2"), "{err}");
}

#[test]
fn error_pages_are_uploaded_per_version_and_served_by_the_proxy() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let service = unique_name("e2e-pages");
    let project = Project::new(fleet, &service, |d| {
        format!("{d}\nerror_pages_path: public/errors\n")
    });
    write(
        &project.path().join("public/errors/503.html"),
        "<h1>custom maintenance: {{ .Message }}</h1>\n",
    );
    write(
        &project.path().join("public/errors/502.html"),
        "<h1>custom 502</h1>\n",
    );
    write(&project.path().join("public/errors/README"), "not a page\n");
    git(project.path(), &["add", "-A"]);
    git(project.path(), &["commit", "-qm", "error pages"]);
    dray_ok(&project, &["deploy", "--version", "v1"]);
    let dir = format!(".kamal/proxy/apps-config/{service}/error_pages");
    for host in &hosts[..2] {
        let listed = fleet.ssh_ok(host, &format!("ls {dir}/v1"));
        assert_eq!(
            listed.split_whitespace().collect::<Vec<_>>(),
            ["502.html", "503.html"],
            "{host}"
        );
    }
    dray_ok(&project, &["app", "maintenance", "--message", "back soon"]);
    for host in &hosts[..2] {
        let (status, body) = get(host, &service, "/version");
        assert_eq!(status, "503", "{host}: {body}");
        assert!(
            body.contains("custom maintenance: back soon"),
            "{host}: {body}"
        );
    }
    dray_ok(&project, &["app", "live"]);
    assert_eq!(
        get(&hosts[0], &service, "/version"),
        ("200".into(), "v1".into())
    );
    // The next version's pages replace the old ones once the old container stopped.
    dray_ok(&project, &["deploy", "--version", "v2"]);
    for host in &hosts[..2] {
        let listed = fleet.ssh_ok(host, &format!("ls {dir}"));
        assert_eq!(listed.trim(), "v2", "{host}");
    }
    cleanup(fleet, &project);
}

/// A self-signed certificate for `name` in `dir`: (cert PEM, key PEM).
fn certificate(dir: &std::path::Path, name: &str, tag: &str) -> (String, String) {
    let cert = dir.join(format!("cert-{tag}.pem"));
    let key = dir.join(format!("key-{tag}.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .arg("-subj")
        .arg(format!("/CN={name}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{name}"))
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        std::fs::read_to_string(cert).expect("cert"),
        std::fs::read_to_string(key).expect("key"),
    )
}

/// `GET /version` over https through `host`'s proxy, trusting only `ca` (a PEM file).
fn https_version(host: &str, service: &str, ca: &std::path::Path) -> Result<String, String> {
    let out = std::process::Command::new("curl")
        .args(["-s", "-S", "-m", "5", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{service}.test:443:{host}"))
        .arg(format!("https://{service}.test/version"))
        .output()
        .expect("run curl");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn custom_certificates_are_uploaded_to_kamals_path_and_served() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let service = unique_name("e2e-certs");
    let project = Project::new(fleet, &service, |d| {
        let edited = d.replace(
            &format!("proxy:\n  host: {service}.test\n"),
            &format!("proxy:\n  host: {service}.test\n  ssl:\n    certificate_pem: CERT_PEM\n    private_key_pem: KEY_PEM\n"),
        );
        assert_ne!(edited, d);
        edited
    });
    let pems = tempfile::tempdir().expect("tempdir");
    let name = format!("{service}.test");
    let secrets_path = project.path().join(".kamal/secrets");
    let base_secrets = std::fs::read_to_string(&secrets_path).unwrap_or_default();
    let set_certificate = |tag: &str| {
        let (cert, key) = certificate(pems.path(), &name, tag);
        write(
            &secrets_path,
            &format!(
                "{base_secrets}\nCERT_PEM=\"{}\"\nKEY_PEM=\"{}\"\n",
                cert.trim_end(),
                key.trim_end()
            ),
        );
        git(project.path(), &["add", "-A"]);
        git(
            project.path(),
            &["commit", "-qm", &format!("certificate {tag}")],
        );
        pems.path().join(format!("cert-{tag}.pem"))
    };
    let first = set_certificate("one");
    let out = dray_ok(&project, &["deploy", "--version", "v1"]);
    assert!(!out.contains("PRIVATE KEY"), "{out}");
    for host in &hosts[..2] {
        assert_eq!(
            https_version(host, &service, &first),
            Ok("v1".to_string()),
            "{host}"
        );
        let on_host = fleet
            .read_file(
                host,
                &format!("~/.kamal/proxy/apps-config/{service}/tls/web/cert.pem"),
            )
            .unwrap_or_default();
        assert!(on_host.contains("BEGIN CERTIFICATE"), "{host}: {on_host}");
        // Plain HTTP is redirected (ssl_redirect defaults to true).
        let (status, _) = get(host, &service, "/version");
        assert_eq!(status, "301", "{host}");
    }
    // A new certificate is served after the next deploy; the old one is no longer trusted.
    let second = set_certificate("two");
    dray_ok(&project, &["deploy", "--version", "v2"]);
    for host in &hosts[..2] {
        assert_eq!(
            https_version(host, &service, &second),
            Ok("v2".to_string()),
            "{host}"
        );
        assert!(
            https_version(host, &service, &first).is_err(),
            "{host} still serves the old certificate"
        );
    }
    cleanup(fleet, &project);
}

/// The hooks named in the project's hook log, in order, with the version each saw.
fn hooks_seen(project: &Project) -> Vec<(String, String)> {
    crate::support::deployer::hook_versions(&project.hook_log())
}

#[test]
fn hooks_output_skip_hooks_and_redeploy_hook_order() {
    let Some(fleet) = Fleet::get() else { return };
    let service = unique_name("e2e-hooksout");
    let project = Project::new(fleet, &service, |d| {
        format!("{d}\nhooks_output:\n  pre-deploy: verbose\n")
    });
    // Two hooks that speak: only pre-deploy's words are shown.
    for (hook, word) in [
        ("pre-deploy", "PRE-DEPLOY-SPEAKS"),
        ("post-deploy", "POST-DEPLOY-SPEAKS"),
    ] {
        let path = project.path().join(".kamal/hooks").join(hook);
        let text = std::fs::read_to_string(&path).expect("hook");
        write(
            &path,
            &text.replacen("set -eu\n", &format!("set -eu\necho {word}\n"), 1),
        );
    }
    git(project.path(), &["commit", "-qam", "hooks speak"]);
    let (code, out, err) = dray(&project, &["deploy", "--version", "v1"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let all = format!("{out}{err}");
    assert!(all.contains("PRE-DEPLOY-SPEAKS"), "{all}");
    assert!(!all.contains("POST-DEPLOY-SPEAKS"), "{all}");
    // -q hides even the verbose hook's output.
    let (code, out, err) = dray(&project, &["redeploy", "-q", "--version", "v2"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        !format!("{out}{err}").contains("PRE-DEPLOY-SPEAKS"),
        "{out}{err}"
    );
    // redeploy runs the deploy's hooks in the deploy's order, each seeing the version booted.
    let seen = hooks_seen(&project);
    let redeploy: Vec<&(String, String)> = seen[6..].iter().collect();
    assert_eq!(
        redeploy.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>(),
        [
            "pre-connect",
            "pre-build",
            "pre-deploy",
            "pre-app-boot",
            "post-app-boot",
            "post-deploy"
        ],
        "{seen:?}"
    );
    assert!(redeploy.iter().all(|(_, v)| v == "v2"), "{seen:?}");
    assert_eq!(
        crate::support::deployer::served_version(fleet, &fleet.hosts()[0], &service, "web"),
        "v2"
    );
    // -H: no hook runs at all.
    let before = project.hook_log();
    dray_ok(&project, &["deploy", "-H", "--version", "v3"]);
    assert_eq!(project.hook_log(), before, "a hook ran with -H");
    assert_eq!(
        crate::support::deployer::served_version(fleet, &fleet.hosts()[0], &service, "web"),
        "v3"
    );
    cleanup(fleet, &project);
}

/// The `(event, role)` of the boot steps on `host`, in the order the JSON stream has them.
fn boot_events(stdout: &str, host: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["step"] == "boot" && e["host"] == host)
        .map(|e| {
            (
                e["event"].as_str().unwrap_or_default().to_string(),
                e["role"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn boot_parallel_roles_boots_a_hosts_roles_at_once() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let service = unique_name("e2e-parallel");
    // web and workers both on the first host.
    let project = Project::new(fleet, &service, |d| {
        let edited = d.replace(
            &format!("  workers:\n    hosts:\n      - {}\n", hosts[2]),
            &format!("  workers:\n    hosts:\n      - {}\n", hosts[0]),
        );
        assert_ne!(edited, d);
        edited
    });
    let started = |s: &str| ("host_step_started".to_string(), s.to_string());
    let finished = |s: &str| ("host_step_finished".to_string(), s.to_string());
    // Kamal's default: one role after the other on a host.
    let out = dray_ok(&project, &["deploy", "--version", "v1", "--output", "json"]);
    assert_eq!(
        boot_events(&out, &hosts[0]),
        [
            started("web"),
            finished("web"),
            started("workers"),
            finished("workers")
        ]
    );
    // parallel_roles: the workers' boot starts with the web's (and still waits for the first web
    // container's verdict before it starts a container).
    let deploy = project.path().join("config/deploy.yml");
    let text = std::fs::read_to_string(&deploy).expect("deploy.yml");
    write(&deploy, &format!("{text}\nboot:\n  parallel_roles: true\n"));
    git(project.path(), &["commit", "-qam", "parallel roles"]);
    let out = dray_ok(&project, &["deploy", "--version", "v2", "--output", "json"]);
    let events = boot_events(&out, &hosts[0]);
    assert_eq!(
        &events[..2],
        [started("web"), started("workers")],
        "{events:?}"
    );
    for role in ["web", "workers"] {
        assert_eq!(
            crate::support::deployer::served_version(fleet, &hosts[0], &service, role),
            "v2"
        );
    }
    // `app exec --raw`: the command's output alone, once per role on the host.
    let out = dray_ok(
        &project,
        &[
            "app",
            "exec",
            "--raw",
            "--hosts",
            &hosts[0],
            "--version",
            "v2",
            "echo",
            "raw-out",
        ],
    );
    assert_eq!(out, "raw-out\nraw-out\n");
    cleanup(fleet, &project);
}

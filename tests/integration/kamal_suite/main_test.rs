//! Kamal's `test/integration/main_test.rb` ("deploy with traefik" is not ported: it needs
//! Traefik from Docker Hub, and this machine is offline).

use serde_json::{json, Value};

use super::{KamalApp, VMS};
use crate::support::fleet::Fleet;
use crate::support::project::exclusive_fleet;

/// `YAML.load(kamal(:config))`. Ruby's YAML writes Kamal's keys and the default log level as
/// symbols (`:roles:`, `:fatal`), and so does dray: read here as the strings `":roles"`,
/// `":fatal"`, so `config[":roles"]` is Kamal's `config[:roles]`.
fn config_of(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("config is not YAML: {e}\n{text}"))
}

fn hosts(v: &[&str]) -> Value {
    json!(v)
}

/// `test "config"`.
#[test]
fn kamal_main_config() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let k = KamalApp::new(fleet, "app");
    let config = config_of(&k.kamal_stdout(&["config"]));
    let version = k.latest_app_version();
    let s = &k.service;

    assert_eq!(config[":roles"], json!(["web"]));
    assert_eq!(config[":hosts"], hosts(&VMS));
    assert_eq!(config[":primary_host"], json!("vm1"));
    assert_eq!(config[":version"], json!(version));
    // PORT: the fleet's registry and this run's service in place of localhost:5000/app.
    assert_eq!(config[":repository"], json!(format!("127.0.0.1:5000/{s}")));
    assert_eq!(
        config[":absolute_image"],
        json!(format!("127.0.0.1:5000/{s}:{version}"))
    );
    assert_eq!(
        config[":service_with_version"],
        json!(format!("{s}-{version}"))
    );
    assert_eq!(config[":volume_args"], json!([]));
    // PORT: the app's `ssh: config:` names the run's ssh config (vm1..vm3), which Kamal adds
    // to `ssh_options` as `config`.
    let ssh_config = k.dir.path().join("ssh_config").display().to_string();
    assert_eq!(
        config[":ssh_options"],
        json!({":user": "root", ":port": 22, ":keepalive": true, ":keepalive_interval": 30, ":log_level": ":fatal", ":config": [ssh_config]})
    );
    assert_eq!(
        config[":builder"],
        json!({"driver": "docker", "arch": docker_arch(), "args": {"COMMIT_SHA": version}})
    );
    assert_eq!(config[":logging"], json!(["--log-opt", "max-size=\"10m\""]));
}

/// `Kamal::Utils.docker_arch` of the builder's engine.
fn docker_arch() -> String {
    let out = std::process::Command::new("docker")
        .args(["info", "--format", "{{.Architecture}}"])
        .output()
        .expect("docker info");
    match String::from_utf8_lossy(&out.stdout).trim() {
        "aarch64" => "arm64".into(),
        "x86_64" => "amd64".into(),
        other => other.to_string(),
    }
}

/// `test "aliases"`.
#[test]
fn kamal_main_aliases() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let k = KamalApp::new(fleet, "app_with_roles");
    k.kamal(&["deploy"]);

    // PORT: Kamal's version is Kamal::VERSION; dray's `version` prints dray's.
    let output = k.kamal_stdout(&["whome"]);
    assert_eq!(output.trim(), env!("CARGO_PKG_VERSION"));

    let output = k.kamal(&["worker_hostname"]);
    assert!(ends_with_hostname(&output, "App Host: vm3\n"), "{output}");

    let output = k.kamal(&["worker_hostname_quiet"]);
    assert!(ends_with_hostname(&output, ""), "{output}");
    assert!(!output.contains("App Host:"), "{output}");

    let output = k.kamal(&["uname", "-o"]);
    assert!(output.contains("App Host: vm1\nGNU/Linux"), "{output}");

    let output = k.kamal(&["uname_quiet", "-o"]);
    assert!(output.contains("GNU/Linux"), "{output}");
}

/// `/#{before}vm3-[0-9a-f]{12}$/` (multi-line `$`: at the end of a line).
fn ends_with_hostname(output: &str, before: &str) -> bool {
    output
        .match_indices(&format!("{before}vm3-"))
        .any(|(i, m)| {
            let rest = &output[i + m.len()..];
            let hex: String = rest.chars().take(12).collect();
            hex.len() == 12
                && hex
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                && matches!(rest[12..].chars().next(), None | Some('\n'))
        })
}

/// `test "deploy with destinations"`.
#[test]
fn kamal_main_deploy_with_destinations() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let k = KamalApp::new(fleet, "app_with_destinations");

    k.kamal(&["staging_deploy"]);
    // PORT: the load balancer in front of vm1 and vm2 is vm1's proxy (staging is vm1).
    k.wait_for("vm1", "/version", 200);
    assert_eq!(k.app_response().0, 200);

    let config = config_of(&k.kamal_stdout(&["staging_config"]));
    assert_eq!(config[":hosts"], hosts(&["vm1"]));

    let config = config_of(&k.kamal_stdout(&["production_config"]));
    assert_eq!(config[":hosts"], hosts(&["vm2", "vm3"]));
}

/// `test "app with roles"`.
#[test]
fn kamal_main_app_with_roles() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let k = KamalApp::new(fleet, "app_with_roles");
    let s = k.service.clone();
    let version = k.latest_app_version();

    k.assert_app_is_down();

    k.kamal(&["deploy"]);

    k.assert_app_is_up(Some(&version));
    k.assert_hooks_ran(&["pre-connect", "pre-build", "pre-deploy", "post-deploy"]);
    assert!(k.container_running("vm3", &format!("{s}-workers-{version}")));

    let second_version = k.update_app_rev();

    k.kamal(&["redeploy"]);
    k.assert_app_is_up(Some(&second_version));
    assert!(k.container_running("vm3", &format!("{s}-workers-{second_version}")));
}

/// `test "two apps"`: the proxy stays while another app is on the host, and goes with the
/// last one. PORT: on the shared fleet "the last app" needs hosts without other apps, so the
/// scenario runs with every host's `.kamal` put aside ([`super::FreshFleet`]).
#[test]
fn kamal_main_two_apps() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let app = KamalApp::new(fleet, "app");
    let roles = KamalApp::new(fleet, "app_with_roles");
    let _fresh = super::FreshFleet::new(fleet, &app.service);

    app.kamal(&["deploy"]);
    let app1_version = app.latest_app_version();

    roles.kamal(&["deploy"]);
    let app2_version = roles.latest_app_version();

    app.assert_app_is_up(Some(&app1_version));
    roles.assert_app_is_up(Some(&app2_version));

    app.kamal(&["remove", "-y"]);
    app.assert_app_directory_removed();
    assert!(app.proxy_running());

    roles.kamal(&["remove", "-y"]);
    roles.assert_app_directory_removed();
    assert!(!roles.proxy_running());
}

/// `test "deploy with a custom certificate"`. PORT: the certificate is made for the run (for
/// the run's host name), and "the load balancer" is vm1's proxy on 443.
#[test]
fn kamal_main_deploy_with_a_custom_certificate() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let k = KamalApp::new(fleet, "app_with_custom_certificate");
    let host = format!("{}.test", k.service);
    let certs = k.path().join("certs");
    std::fs::create_dir_all(&certs).expect("certs");
    let out = std::process::Command::new("openssl")
        .current_dir(&certs)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-keyout", "key.pem", "-out", "cert.pem", "-subj"])
        .arg(format!("/CN={host}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{host}"))
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    k.git(&["add", "."]);
    k.git(&["commit", "-qm", "certs"]);
    let first_version = k.latest_app_version();

    k.kamal(&["setup"]);

    let curl = || {
        std::process::Command::new("curl")
            .args(["-s", "--max-time", "5", "--cacert"])
            .arg(certs.join("cert.pem"))
            .arg("--resolve")
            .arg(format!("{host}:443:{}", k.addr("vm1")))
            .arg(format!("https://{host}/version"))
            .output()
            .expect("curl")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut out = curl();
    while !out.status.success() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        out = curl();
    }
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), first_version);
}

/// `test "setup and remove"`. PORT: Kamal's VMs are empty, so it asserts that no image or
/// container at all is left; the fleet's hosts are shared, so here none of this app's (its
/// service and its accessories') and no kamal-proxy, on hosts whose `.kamal` is put aside.
#[test]
fn kamal_main_setup_and_remove() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let mut k = KamalApp::new(fleet, "app");
    let busybox = format!("custom-busybox-{}", k.service);
    k.extra_services.push(busybox.clone());
    let _fresh = super::FreshFleet::new(fleet, &k.service);
    let ours = |vm: &str| -> (usize, usize) {
        let host = k.addr(vm);
        let images = fleet.ssh_ok(
            &host,
            &format!("docker image ls -q 127.0.0.1:5000/{}", k.service),
        );
        let containers = fleet.ssh_ok(
            &host,
            &format!(
                "docker ps -aq --filter label=service={}; docker ps -aq --filter label=service={busybox}; docker ps -aq --filter name=^kamal-proxy$",
                k.service
            ),
        );
        (images.lines().count(), containers.lines().count())
    };

    k.kamal(&[
        "proxy",
        "boot_config",
        "set",
        "--publish=false",
        "--docker-options=label=traefik.http.services.kamal_proxy.loadbalancer.server.scheme=http",
        "label=traefik.http.routers.kamal_proxy.rule=PathPrefix\\(\\`/\\`\\)",
        "label=traefik.http.routers.kamal_proxy.priority=2",
    ]);

    // Check remove completes when nothing has been setup yet
    k.kamal(&["remove", "-y"]);
    for vm in super::VMS {
        assert_eq!(ours(vm), (0, 0), "{vm}");
    }

    k.kamal(&["setup"]);
    for vm in super::VMS {
        let (images, containers) = ours(vm);
        assert!(containers > 0, "{vm}: no containers");
        // vm3 runs only the busybox2 accessory (the fleet's base image, not the app's).
        assert!(images > 0 || vm == "vm3", "{vm}: no images");
    }

    k.kamal(&["remove", "-y"]);
    for vm in super::VMS {
        assert_eq!(ours(vm), (0, 0), "{vm}");
    }
    k.assert_app_directory_removed();
}

/// `test "deploy, redeploy, rollback, details and audit"`.
#[test]
fn kamal_main_deploy_redeploy_rollback_details_and_audit() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    // PORT: the OTel collector is a loopback HTTP server in the test (Kamal's is a container).
    let (port, received) = crate::output::collector();
    let endpoint = format!("http://127.0.0.1:{port}");
    let k = KamalApp::with_otel(fleet, "app", &endpoint);
    let s = k.service.clone();
    let logs_dir = k.dir.path().join("kamal-deploy-logs");
    let first_version = k.latest_app_version();

    k.assert_app_is_down();

    let deploy_output = k.kamal(&["deploy"]);
    k.assert_app_is_up(Some(&first_version));
    k.assert_hooks_ran(&[
        "pre-connect",
        "pre-build",
        "pre-deploy",
        "pre-app-boot",
        "post-app-boot",
        "post-deploy",
    ]);
    assert_hook_output(&deploy_output);
    assert!(
        deploy_output.contains(&format!("Logs written to {}/", logs_dir.display()))
            && deploy_output.contains("_deploy.log"),
        "{deploy_output}"
    );
    assert!(
        deploy_output.contains(&format!("Logs sent to {endpoint}")),
        "{deploy_output}"
    );
    assert_deploy_log(
        &logs_dir,
        "_deploy.log",
        &["Build and push app image", "Running docker", "post-deploy"],
    );

    assert_envs(&k, &first_version);

    let output = k.kamal(&["app", "exec", "--verbose", "ls", "-r", "web"]);
    assert_hook_env_variables(&k, &output, &first_version);

    let second_version = k.update_app_rev();

    k.kamal(&["redeploy"]);
    k.assert_app_is_up(Some(&second_version));
    k.assert_hooks_ran(&[
        "pre-connect",
        "pre-build",
        "pre-deploy",
        "pre-app-boot",
        "post-app-boot",
        "post-deploy",
    ]);
    assert_deploy_log(
        &logs_dir,
        "_redeploy.log",
        &["Build and push app image", "Running docker"],
    );

    // assert_accumulated_assets
    for version in [first_version.as_str(), second_version.as_str(), ".hidden"] {
        let (code, body) = k.wait_for("vm1", &format!("/versions/{version}"), 200);
        assert_eq!(code, 200, "/versions/{version}: {body}");
    }
    // assert_asset_volume_read_only
    let mounts = fleet.ssh_ok(
        &k.addr("vm1"),
        &format!("docker inspect {s}-web-{second_version} --format '{{{{json .Mounts}}}}'"),
    );
    assert!(
        mounts
            .split("},{")
            .any(|m| m.contains("/usr/share/nginx/html/versions") && m.contains("\"RW\":false")),
        "Expected asset volume to be mounted read-only (:ro): {mounts}"
    );

    k.kamal(&["rollback", &first_version]);
    k.assert_hooks_ran(&[
        "pre-connect",
        "pre-deploy",
        "pre-app-boot",
        "post-app-boot",
        "post-deploy",
    ]);
    k.assert_app_is_up(Some(&first_version));
    assert_deploy_log(
        &logs_dir,
        "_rollback.log",
        &["Running docker", "pre-connect"],
    );

    let details = k.kamal(&["details"]);
    for line in [
        "Proxy Host: vm1",
        "Proxy Host: vm2",
        "App Host: vm1",
        "App Host: vm2",
    ] {
        assert!(details.contains(line), "{line} in\n{details}");
    }
    // PORT: the fleet's kamal-proxy image, dray-proxy, at kamal-proxy's minimum version.
    assert!(details.contains("dray-proxy:v0.9.2"), "{details}");
    assert!(
        details.contains(&format!("127.0.0.1:5000/{s}:{first_version}")),
        "{details}"
    );

    let audit = k.kamal(&["audit"]);
    let booted = |v: &str| format!("Booted app version {v}");
    let a = audit.find(&booted(&first_version));
    let b = a.and_then(|a| audit[a..].find(&booted(&second_version)).map(|b| a + b));
    let c = b.and_then(|b| audit[b..].find(&booted(&first_version)));
    assert!(c.is_some(), "{audit}");

    assert_otel_logs(&k, &received);
}

/// `assert_deploy_log`: the newest `*<suffix>` file has `lines` and the footer.
fn assert_deploy_log(dir: &std::path::Path, suffix: &str, lines: &[&str]) {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("the deploy logs directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    let file = files
        .last()
        .unwrap_or_else(|| panic!("no *{suffix} in {}", dir.display()));
    let content = std::fs::read_to_string(file).expect("read log");
    for line in lines {
        assert!(
            content.contains(line),
            "{line:?} not in {}:\n{content}",
            file.display()
        );
    }
    let completed = content.lines().any(|l| {
        l.strip_prefix("# Completed in ")
            .and_then(|r| r.strip_suffix('s'))
            .is_some_and(|n| n.contains('.') && n.parse::<f64>().is_ok())
    });
    assert!(completed, "no `# Completed in N.Ns` in {}", file.display());
}

/// `assert_hook_output`.
fn assert_hook_output(output: &str) {
    // pre-deploy hook (hooks_output: :verbose) shows everything
    assert!(has_running(output, "pre-deploy"), "{output}");
    assert!(output.contains("Deployed!"), "{output}");
    // pre-build hook (hooks_output: :quiet) hides everything
    assert!(!has_running(output, "pre-build"), "{output}");
    assert!(!output.contains("About to build and push"), "{output}");
    // post-deploy hook (no hooks_output setting) shows Running but hides output
    assert!(has_running(output, "post-deploy"), "{output}");
    assert!(!output.contains("Finished deploy!"), "{output}");
}

/// `/Running.*<hook>/`.
fn has_running(output: &str, hook: &str) -> bool {
    output
        .lines()
        .any(|l| l.find("Running").is_some_and(|i| l[i..].contains(hook)))
}

/// `assert_envs`.
fn assert_envs(k: &KamalApp, version: &str) {
    let env = |vm: &str| {
        k.fleet.ssh_ok(
            &k.addr(vm),
            &format!("docker exec {}-web-{version} env", k.service),
        )
    };
    let (vm1, vm2) = (env("vm1"), env("vm2"));
    let has =
        |env: &str, key: &str, value: &str| env.lines().any(|l| l == format!("{key}={value}"));
    let lacks = |env: &str, key: &str| !env.lines().any(|l| l.contains(key));
    assert!(has(&vm1, "KAMAL_HOST", "vm1"), "{vm1}");
    assert!(has(&vm1, "CLEAR_TOKEN", "4321"), "{vm1}");
    assert!(has(&vm1, "HOST_TOKEN", "abcd"), "{vm1}");
    assert!(has(&vm1, "SECRET_TOKEN", "1234 with \"中文\""), "{vm1}");
    assert!(lacks(&vm1, "CLEAR_TAG"), "{vm1}");
    assert!(lacks(&vm1, "SECRET_TAG"), "{vm1}");
    assert!(has(&vm2, "CLEAR_TAG", "tagged"), "{vm2}");
    assert!(has(&vm2, "SECRET_TAG", "TAGME"), "{vm2}");
    assert!(
        has(&vm2, "INTERPOLATED_SECRET1", "1TERCES_DETALOPRETNI"),
        "{vm2}"
    );
    assert!(
        has(&vm2, "INTERPOLATED_SECRET2", "2TERCES_DETALOPRETNI"),
        "{vm2}"
    );
    assert!(
        has(&vm2, "INTERPOLATED_SECRET3", "文中_DETALOPRETNI"),
        "{vm2}"
    );
    assert!(
        has(&vm2, "INTERPOLATED_SECRET4", ")(_DETALOPRETNI"),
        "{vm2}"
    );
}

/// `assert_hook_env_variables` (the pre-connect hook prints its environment).
fn assert_hook_env_variables(k: &KamalApp, output: &str, version: &str) {
    for line in [
        format!("KAMAL_VERSION={version}"),
        format!("KAMAL_SERVICE={}", k.service),
        format!("KAMAL_SERVICE_VERSION={}@{}", k.service, &version[..7]),
        "KAMAL_COMMAND=app".to_string(),
        "KAMAL_PERFORMER=deployer@example.com".to_string(),
        "KAMAL_HOSTS=vm1,vm2".to_string(),
        "KAMAL_ROLES=web".to_string(),
    ] {
        assert!(output.contains(&line), "{line} not in\n{output}");
    }
    let recorded = output.lines().any(|l| {
        l.split("KAMAL_RECORDED_AT=").nth(1).is_some_and(|t| {
            let t: Vec<char> = t.chars().take(20).collect();
            t.len() == 20 && t[4] == '-' && t[10] == 'T' && t[19] == 'Z'
        })
    });
    assert!(recorded, "{output}");
}

/// `assert_otel_logs`.
fn assert_otel_logs(k: &KamalApp, received: &crate::output::Received) {
    use crate::output::attr;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let records = loop {
        let got = received.lock().map(|g| g.clone()).unwrap_or_default();
        let records: Vec<Value> = got
            .iter()
            .flat_map(|(_, _, body)| {
                body["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        let events = records
            .iter()
            .filter(|r| r["eventName"].is_string())
            .count();
        if events >= 6 || std::time::Instant::now() > deadline {
            break (got, records);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let (payloads, records) = records;
    let res = &payloads.first().expect("a payload").2["resourceLogs"][0]["resource"]["attributes"];
    let s = |v: Option<&Value>| v.and_then(|v| v["stringValue"].as_str().map(str::to_string));
    assert_eq!(s(attr(res, "service.name")).as_deref(), Some("kamal"));
    assert_eq!(s(attr(res, "service.namespace")), Some(k.service.clone()));
    // PORT: Kamal::VERSION is dray's version.
    assert_eq!(
        s(attr(res, "service.version")).as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    for key in ["kamal.run_id", "kamal.performer", "kamal.deploy_version"] {
        assert!(s(attr(res, key)).is_some_and(|v| !v.is_empty()), "{key}");
    }
    let named =
        |name: &str| -> Vec<&Value> { records.iter().filter(|r| r["eventName"] == name).collect() };
    let (starts, completes) = (named("kamal.start"), named("kamal.complete"));
    assert_eq!(starts.len(), 3, "kamal.start events");
    assert_eq!(completes.len(), 3, "kamal.complete events");
    for command in ["deploy", "redeploy", "rollback"] {
        let of = |events: &[&Value]| -> Value {
            events
                .iter()
                .find(|e| s(attr(&e["attributes"], "kamal.command")).as_deref() == Some(command))
                .map(|e| (*e).clone())
                .unwrap_or_else(|| panic!("no event for {command}"))
        };
        let start = of(&starts);
        assert!(s(attr(&start["attributes"], "deployment.id")).is_some());
        assert_eq!(
            s(attr(&start["attributes"], "deployment.name")),
            Some(format!("{command} {}", k.service))
        );
        let complete = of(&completes);
        assert!(attr(&complete["attributes"], "kamal.runtime")
            .is_some_and(|v| v["doubleValue"].is_f64()));
        assert_eq!(
            s(attr(&complete["attributes"], "deployment.status")).as_deref(),
            Some("succeeded")
        );
    }
    let tagged: Vec<&Value> = records
        .iter()
        .filter(|r| s(attr(&r["attributes"], "server.address")).is_some())
        .collect();
    assert!(tagged.len() > 5, "host-tagged log lines: {}", tagged.len());
    for vm in ["vm1", "vm2"] {
        assert!(
            tagged
                .iter()
                .any(|r| s(attr(&r["attributes"], "server.address")).as_deref() == Some(vm)),
            "{vm}"
        );
    }
    assert!(records
        .iter()
        .any(|r| s(attr(&r["attributes"], "log.iostream")).as_deref() == Some("stdout")));
    let lines: Vec<&str> = records
        .iter()
        .filter(|r| !r["eventName"].is_string())
        .filter_map(|r| r["body"]["stringValue"].as_str())
        .collect();
    assert!(lines.len() > 10, "raw log lines: {}", lines.len());
    assert!(lines.iter().any(|l| l.contains("Running docker")));
}

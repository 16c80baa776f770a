//! Kamal's `test/integration/app_test.rb`.

use super::KamalApp;
use crate::support::fleet::Fleet;
use crate::support::project::exclusive_fleet;

/// `App Host: <vm>` headings in `output`.
fn headings(output: &str) -> usize {
    output.matches("App Host:").count()
}

/// A line of busybox `ps` for PID 1 running `command`. PORT: Kamal's nginx image's `ps` prints
/// `1 root      0:00 ps`; the fleet's busybox has no TIME column: `    1 root     ps`.
fn pid1_runs(output: &str, command: &str) -> bool {
    output.lines().any(|l| {
        let mut words = l.split_whitespace();
        words.next() == Some("1")
            && words.next() == Some("root")
            && words.next().is_some_and(|w| w == command)
    })
}

/// `test "stop, start, boot, logs, images, containers, exec, remove"`.
#[test]
fn kamal_app_stop_start_boot_logs_images_containers_exec_remove() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let k = KamalApp::new(fleet, "app");
    let version = k.latest_app_version();
    let repo = format!("127.0.0.1:5000/{}", k.service);

    k.kamal(&["deploy"]);
    k.assert_app_is_up(None);

    k.kamal(&["app", "stop"]);
    k.assert_app_not_found();

    k.kamal(&["app", "start"]);
    // kamal app start does not wait
    k.wait_for_app_to_be_up();

    let output = k.kamal(&["app", "boot", "--verbose"]);
    assert!(output.contains("Booting app on vm1,vm2..."), "{output}");
    assert!(output.contains("Booted app on vm1,vm2..."), "{output}");

    k.wait_for_app_to_be_up();

    let logs = k.kamal(&["app", "logs"]);
    assert!(logs.contains("App Host: vm1"), "{logs}");
    assert!(logs.contains("App Host: vm2"), "{logs}");
    // PORT: nginx's access log line `GET /version HTTP/1.1` is busybox httpd's `url:/version`.
    assert!(logs.contains("url:/version"), "{logs}");

    let images = k.kamal(&["app", "images"]);
    assert!(images.contains("App Host: vm1"), "{images}");
    assert!(images.contains("App Host: vm2"), "{images}");
    let image_line = |tag: &str| {
        images.lines().any(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some(repo.as_str()) && w.next() == Some(tag)
        }) || images.contains(&format!("{repo}:{tag}"))
    };
    assert!(image_line(&version), "{images}");
    assert!(image_line("latest"), "{images}");

    let containers = k.kamal(&["app", "containers"]);
    assert!(containers.contains("App Host: vm1"), "{containers}");
    assert!(containers.contains("App Host: vm2"), "{containers}");
    assert!(
        containers.contains(&format!("{repo}:{version}")),
        "{containers}"
    );
    assert!(
        containers.contains(&format!("{repo}:latest")),
        "{containers}"
    );

    let exec_output = k.kamal(&["app", "exec", "ps"]);
    assert!(exec_output.contains("App Host: vm1"), "{exec_output}");
    assert!(exec_output.contains("App Host: vm2"), "{exec_output}");
    assert!(pid1_runs(&exec_output, "ps"), "{exec_output}");

    let exec_output = k.kamal(&["app", "exec", "--reuse", "ps"]);
    assert!(exec_output.contains("App Host: vm2"), "{exec_output}");
    assert!(exec_output.contains("App Host: vm1"), "{exec_output}");
    // PORT: PID 1 is busybox httpd where Kamal's image runs nginx.
    assert!(pid1_runs(&exec_output, "httpd"), "{exec_output}");

    let binary = "head -c 512 /dev/zero";
    let md5 = |cmd: &str| {
        let out = std::process::Command::new("sh")
            .current_dir(k.path())
            .arg("-c")
            .arg(format!("{cmd} | md5sum"))
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("DOCKER_CONFIG", k.dir.path().join("docker-config"))
            .output()
            .expect("sh");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string()
    };
    let expected_md5 = md5(binary);
    let piped_md5 = md5(&format!(
        "{} app exec --reuse --raw --primary '{binary}'",
        crate::support::dray_bin().display()
    ));
    assert_eq!(expected_md5, piped_md5);

    k.kamal(&["app", "maintenance"]);
    k.assert_app_error_code(503, None);

    k.kamal(&["app", "live"]);
    k.assert_app_is_up(None);

    k.kamal(&["app", "remove"]);

    k.assert_app_not_found();
    k.assert_app_directory_removed();
}

/// `test "parallel roles"`.
#[test]
fn kamal_app_parallel_roles() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let k = KamalApp::new(fleet, "app_with_parallel_roles");
    let s = k.service.clone();
    let version = k.latest_app_version();

    k.kamal(&["deploy"]);

    k.assert_app_is_up(Some(&version));
    assert!(k.container_running("vm1", &format!("{s}-web-{version}")));
    assert!(k.container_running("vm1", &format!("{s}-workers-{version}")));
    assert!(k.container_running("vm2", &format!("{s}-web-{version}")));

    k.kamal(&["app", "stop"]);
    k.assert_app_not_found();

    k.kamal(&["app", "start"]);
    k.wait_for_app_to_be_up();

    // PORT: Kamal's default output logs each command ("Running docker … on vm1"); dray's shows
    // them with --verbose, as `[vm1] $ docker …`.
    let ran_on = |output: &str, needle: &str, vm: &str| {
        output
            .lines()
            .any(|l| l.starts_with(&format!("[{vm}] $ ")) && l.contains(needle))
    };
    let logs = k.kamal(&["app", "logs", "--verbose"]);
    assert!(ran_on(&logs, "role=web", "vm1"), "{logs}");
    assert!(ran_on(&logs, "role=web", "vm2"), "{logs}");
    assert!(ran_on(&logs, "role=workers", "vm1"), "{logs}");

    // Images runs once per host (not per role)
    let images = k.kamal(&["app", "images"]);
    assert!(images.contains("App Host: vm1"), "{images}");
    assert!(images.contains("App Host: vm2"), "{images}");
    assert_eq!(headings(&images), 2, "{images}");

    // Containers runs once per host (not per role)
    let containers = k.kamal(&["app", "containers"]);
    assert!(containers.contains("App Host: vm1"), "{containers}");
    assert!(containers.contains("App Host: vm2"), "{containers}");
    assert!(containers.contains(&format!("{s}-web")), "{containers}");
    assert!(containers.contains(&format!("{s}-workers")), "{containers}");
    assert_eq!(headings(&containers), 2, "{containers}");

    // Exec runs per role per host: web on vm1, web on vm2, workers on vm1
    let exec_output = k.kamal(&["app", "exec", "--verbose", "hostname"]);
    assert!(
        ran_on(&exec_output, &format!("{s}-web-exec-"), "vm1"),
        "{exec_output}"
    );
    assert!(
        ran_on(&exec_output, &format!("{s}-web-exec-"), "vm2"),
        "{exec_output}"
    );
    assert!(
        ran_on(&exec_output, &format!("{s}-workers-exec-"), "vm1"),
        "{exec_output}"
    );
    assert_eq!(headings(&exec_output), 3, "{exec_output}");

    k.kamal(&["app", "maintenance"]);
    k.assert_app_error_code(503, None);

    k.kamal(&["app", "live"]);
    k.assert_app_is_up(None);
}

/// `test "custom error pages"`.
#[test]
fn kamal_app_custom_error_pages() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let k = KamalApp::new(fleet, "app_with_roles");

    k.kamal(&["deploy"]);
    k.assert_app_is_up(None);

    k.kamal(&["app", "maintenance"]);
    k.assert_app_error_code(503, Some("Custom Maintenance Page"));

    k.kamal(&["app", "live"]);
    // Kamal's suite runs this through a shell, which takes the quotes off.
    k.kamal(&["app", "maintenance", "--message", "Testing Maintence Mode"]);
    k.assert_app_error_code(503, Some("Custom Maintenance Page: Testing Maintence Mode"));

    let _second_version = k.update_app_rev();

    k.kamal(&["redeploy"]);

    k.kamal(&["app", "maintenance"]);
    k.assert_app_error_code(503, Some("Custom Maintenance Page"));
}

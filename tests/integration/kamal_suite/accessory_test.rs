//! Kamal's `test/integration/accessory_test.rb`.

use std::time::{Duration, Instant};

use super::KamalApp;
use crate::support::fleet::Fleet;
use crate::support::project::exclusive_fleet;

/// `accessory details <name>` shows the running container. PORT: Kamal's accessories run
/// `busybox:1.36.0` from Docker Hub; here the fleet's busybox image (`dray-base:busybox`).
fn accessory_running(k: &KamalApp, name: &str) -> bool {
    let details = k.kamal(&["accessory", "details", name]);
    details.lines().any(|l| {
        l.split_once("dray-base:busybox")
            .is_some_and(|(_, rest)| rest.trim_start().starts_with("\"sh -c 'echo \\\"Start"))
    })
}

/// `test "boot, stop, start, restart, logs, remove"`.
#[test]
fn kamal_accessory_boot_stop_start_restart_logs_remove() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let mut k = KamalApp::new(fleet, "app");
    let busybox = format!("custom-busybox-{}", k.service);
    k.extra_services.push(busybox.clone());

    k.kamal(&["accessory", "boot", "busybox"]);
    assert!(accessory_running(&k, "busybox"));
    let vm1 = k.addr("vm1");
    let mounts = fleet.ssh_ok(
        &vm1,
        &format!("docker inspect {busybox} --format '{{{{json .Mounts}}}}'"),
    );
    assert!(
        mounts
            .split("},{")
            .any(|m| m.contains("\"Destination\":\"/data\"") && m.contains("\"RW\":false")),
        "Expected read-only mount option (:ro) to be applied: {mounts}"
    );
    let file_stat = fleet.ssh_ok(
        &vm1,
        &format!("stat -c '%a %u:%g' {busybox}/etc/busybox.conf"),
    );
    assert_eq!(file_stat.trim(), "640 1000:1000", "file mode and owner");
    let dir_stat = fleet.ssh_ok(&vm1, &format!("stat -c '%a %u:%g' {busybox}/data"));
    assert_eq!(dir_stat.trim(), "750 1000:1000", "directory mode and owner");

    k.kamal(&["accessory", "stop", "busybox"]);
    assert!(!accessory_running(&k, "busybox"));

    k.kamal(&["accessory", "start", "busybox"]);
    assert!(accessory_running(&k, "busybox"));

    k.kamal(&["accessory", "restart", "busybox"]);
    assert!(accessory_running(&k, "busybox"));

    let logs = k.kamal(&["accessory", "logs", "busybox"]);
    assert!(logs.contains("Starting busybox..."), "{logs}");

    let boot = k.kamal(&["accessory", "boot", "busybox"]);
    assert!(
        boot.contains("Skipping booting `busybox` on vm1, vm2, a container already exists"),
        "{boot}"
    );

    k.kamal(&["accessory", "remove", "busybox", "-y"]);
    assert!(!accessory_running(&k, "busybox"));
}

/// `test "proxied: boot, stop, start, restart, logs, remove"`.
#[test]
fn kamal_accessory_proxied_boot_stop_start_restart_logs_remove() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let mut k = KamalApp::new(fleet, "app_with_proxied_accessory");
    let netcat = format!("netcat-{}", k.service);
    k.extra_services.push(netcat.clone());
    k.extra_services
        .push(format!("custom-busybox-{}", k.service));
    // PORT: the accessory's proxy host is unique per run (`netcat-<service>.test`).
    let host = format!("{netcat}.test");
    let netcat_is = |code: u16| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = k.response_on("vm1", &host, "/up").0;
            if got == code || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    k.kamal(&["proxy", "boot"]);

    k.kamal(&["accessory", "boot", "netcat"]);
    assert!(accessory_running(&k, "netcat"));
    assert_eq!(netcat_is(200), 200);

    k.kamal(&["accessory", "stop", "netcat"]);
    assert!(!accessory_running(&k, "netcat"));
    assert_eq!(netcat_is(404), 404);

    k.kamal(&["accessory", "start", "netcat"]);
    assert!(accessory_running(&k, "netcat"));
    assert_eq!(netcat_is(200), 200);

    k.kamal(&["accessory", "restart", "netcat"]);
    assert!(accessory_running(&k, "netcat"));
    assert_eq!(netcat_is(200), 200);

    k.kamal(&["accessory", "remove", "netcat", "-y"]);
    assert!(!accessory_running(&k, "netcat"));
    assert_eq!(netcat_is(404), 404);
}

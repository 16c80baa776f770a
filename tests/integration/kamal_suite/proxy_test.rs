//! Kamal's `test/integration/proxy_test.rb` (its setup: `@app = "app_with_roles"`).

use super::KamalApp;
use crate::support::fleet::Fleet;
use crate::support::project::exclusive_fleet;

/// `test "boot, reboot, stop, start, restart, logs, remove"`. PORT: the fleet's proxies are
/// shared; the scenario runs with every host's `.kamal` put aside ([`super::FreshFleet`]) and
/// boots the proxy again at the end for the other tests.
#[test]
fn kamal_proxy_boot_reboot_stop_start_restart_logs_remove() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let k = KamalApp::new(fleet, "app_with_roles");
    let _fresh = super::FreshFleet::new(fleet, &k.service);

    k.kamal(&["proxy", "boot"]);
    assert!(k.proxy_running());

    let output = k.kamal(&["proxy", "reboot", "-y", "--verbose"]);
    assert!(k.proxy_running());
    k.assert_hooks_ran(&["pre-proxy-reboot", "post-proxy-reboot"]);
    assert!(
        output.contains("Rebooting kamal-proxy on vm1,vm2..."),
        "{output}"
    );
    assert!(
        output.contains("Rebooted kamal-proxy on vm1,vm2"),
        "{output}"
    );

    let output = k.kamal(&["proxy", "reboot", "--rolling", "-y", "--verbose"]);
    assert!(k.proxy_running());
    k.assert_hooks_ran(&["pre-proxy-reboot", "post-proxy-reboot"]);
    assert!(
        output.contains("Rebooting kamal-proxy on vm1..."),
        "{output}"
    );
    assert!(output.contains("Rebooted kamal-proxy on vm1"), "{output}");
    assert!(
        output.contains("Rebooting kamal-proxy on vm2..."),
        "{output}"
    );
    assert!(output.contains("Rebooted kamal-proxy on vm2"), "{output}");

    k.kamal(&["proxy", "boot"]);
    assert!(k.proxy_running());

    // Check booting when booted doesn't raise an error
    k.kamal(&["proxy", "stop"]);
    assert!(!k.proxy_running());

    // Check booting when stopped works
    k.kamal(&["proxy", "boot"]);
    assert!(k.proxy_running());

    k.kamal(&["proxy", "stop"]);
    assert!(!k.proxy_running());

    k.kamal(&["proxy", "start"]);
    assert!(k.proxy_running());

    k.kamal(&["proxy", "restart"]);
    assert!(k.proxy_running());

    let logs = k.kamal(&["proxy", "logs"]);
    // PORT: on Kamal's fresh VMs the proxy starts without state; the fleet's kamal-proxy-config
    // volume keeps other tests' routes, which the proxy restores instead.
    assert!(
        logs.contains("No previous state to restore") || logs.contains("Restored saved state"),
        "{logs}"
    );

    k.kamal(&["proxy", "remove"]);
    assert!(!k.proxy_running());
}

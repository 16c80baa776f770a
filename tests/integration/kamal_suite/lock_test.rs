//! Kamal's `test/integration/lock_test.rb`.

use super::KamalApp;
use crate::support::fleet::Fleet;
use crate::support::project::exclusive_fleet;

/// `test "acquire, release, status"`.
#[test]
fn kamal_lock_acquire_release_status() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let k = KamalApp::new(fleet, "app");

    k.kamal(&["lock", "acquire", "-m", "Integration Tests"]);

    let status = k.kamal(&["lock", "status"]);
    let expected = format!(
        "\nVersion: {}\nMessage: Integration Tests",
        k.latest_app_version()
    );
    let at = status.find("Locked by: Deployer at ");
    assert!(at.is_some(), "{status}");
    assert!(status.contains(&expected), "{status}");

    let (code, error) = k.kamal_status(&["deploy"]);
    assert_ne!(code, 0, "{error}");
    // dray names itself in the hint: `dray lock help` where Kamal says `kamal lock help`.
    assert!(
        error.contains("Deploy lock found. Run 'dray lock help' for more information"),
        "{error}"
    );

    k.kamal(&["lock", "release"]);

    let status = k.kamal(&["lock", "status"]);
    assert!(status.contains("There is no deploy lock"), "{status}");
}

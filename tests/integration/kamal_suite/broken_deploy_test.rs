//! Kamal's `test/integration/broken_deploy_test.rb`.

use super::KamalApp;
use crate::support::fleet::Fleet;
use crate::support::project::exclusive_fleet;

/// `test "deploying a bad image"`.
#[test]
fn kamal_broken_deploy_deploying_a_bad_image() {
    let Some(fleet) = Fleet::get() else { return };
    let _alone = exclusive_fleet();
    let k = KamalApp::new(fleet, "app_with_roles");
    let s = k.service.clone();
    let first_version = k.latest_app_version();

    k.kamal(&["deploy"]);

    k.assert_app_is_up(Some(&first_version));
    assert!(k.container_running("vm3", &format!("{s}-workers-{first_version}")));

    let second_version = k.break_app();

    let (code, output) = k.kamal_status(&["deploy"]);
    assert_ne!(code, 0, "{output}");

    assert!(
        output.contains(
            "Waiting for the first healthy web container before booting workers on vm3..."
        ),
        "{output}"
    );
    assert!(
        output.contains("First web container is unhealthy on vm1, not booting any other roles")
            || output
                .contains("First web container is unhealthy on vm2, not booting any other roles"),
        "{output}"
    );
    assert!(
        output.contains("First web container is unhealthy, not booting workers on vm3"),
        "{output}"
    );
    // PORT: nginx's `[emerg] unexpected end of file … default.conf:2` is the stand-in's
    // refusal of the broken config (tests/fixtures/kamal-suite/shared/nginx).
    assert!(
        output
            .contains("httpd: [emerg] no \"listen\" directive in /etc/nginx/conf.d/default.conf:1"),
        "{output}"
    );
    k.assert_app_is_up(Some(&first_version));
    assert!(k.container_running("vm3", &format!("{s}-workers-{first_version}")));
    assert!(!k.container_running("vm3", &format!("{s}-workers-{second_version}")));
}

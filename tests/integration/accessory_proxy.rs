//! A proxied accessory on the fleet: it answers through the host's proxy (dray-proxy) and
//! `accessory reboot` under a bounded load fails no request (the old container serves until the
//! proxy switched to the new one).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::accessory::{answers, get, Cleanup};
use crate::support::fleet::{unique_name, Fleet};
use crate::support::project::Project;
use crate::support::write;

#[test]
fn a_proxied_accessory_answers_through_the_proxy_and_reboots_without_a_failed_request() {
    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(2).to_vec();
    let host = &hosts[1];
    let image = fleet.base_image().to_string();
    let service = unique_name("e2e-accp");
    let vhost = format!("{service}-site.test");
    let accessories = format!(
        r#"  site:
    image: {image}
    host: {host}
    cmd: httpd -f -p 8080 -h /srv/www
    files:
      - config/index.html:/srv/www/index.html
      - config/up:/srv/www/up
    proxy:
      host: {vhost}
      app_port: 8080
      healthcheck:
        path: /up
        interval: 1
        timeout: 2
"#
    );
    let project = Project::new(fleet, &service, |d| {
        format!("{d}\ndeploy_timeout: 6\naccessories:\n{accessories}")
    });
    let site = format!("{}-site", project.service);
    let _cleanup = Cleanup {
        fleet,
        project: &project,
        services: vec![site.clone()],
    };
    write(&project.path().join("config/index.html"), "site v1\n");
    write(&project.path().join("config/up"), "OK\n");
    // The host's proxy (Kamal's accessory boot expects it running, as after a deploy).
    project.dray_ok(&["proxy", "boot", "-h", host]);
    project.dray_ok(&["accessory", "boot", "site"]);
    let addr = format!("{host}:80");
    assert_eq!(answers(&addr, Some(&vhost), "/index.html"), "site v1");

    // Reboot under a bounded load: no request fails.
    write(&project.path().join("config/index.html"), "site v2\n");
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, addr, vhost) = (stop.clone(), addr.clone(), vhost.clone());
        std::thread::spawn(move || {
            let mut seen: Vec<Result<String, String>> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::Relaxed) && seen.len() < 20_000 && Instant::now() < deadline
            {
                seen.push(match get(&addr, Some(&vhost), "/index.html") {
                    Ok((200, body)) => Ok(body),
                    Ok((status, body)) => Err(format!("{status} {body}")),
                    Err(e) => Err(e),
                });
                std::thread::sleep(Duration::from_millis(2));
            }
            seen
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    project.dray_ok(&["accessory", "reboot", "site"]);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let seen = load.join().unwrap_or_default();
    let failed: Vec<&String> = seen.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed requests: {:?}",
        failed.len(),
        seen.len(),
        &failed[..failed.len().min(5)]
    );
    assert_eq!(seen.last().and_then(|r| r.as_deref().ok()), Some("site v2"));
    println!(
        "accessory reboot under load: {} requests, 0 failed",
        seen.len()
    );
    let names = fleet.docker_ps(host);
    assert_eq!(
        names.iter().filter(|n| n.starts_with(&site)).count(),
        1,
        "the old container is gone: {names:?}"
    );

    // A reboot whose new container never gets healthy fails, and the old one keeps serving.
    let deploy = project.path().join("config/deploy.yml");
    let text = std::fs::read_to_string(&deploy).expect("deploy.yml");
    write(&deploy, &text.replace("path: /up", "path: /never-there"));
    write(&project.path().join("config/index.html"), "site v3\n");
    let (code, out, err) = project.dray(&["accessory", "reboot", "site"]);
    assert_ne!(code, 0, "{out}\n{err}");
    assert_eq!(
        get(&addr, Some(&vhost), "/index.html"),
        Ok((200, "site v2".into()))
    );

    // remove -y leaves nothing, not even the container the failed reboot kept serving.
    project.dray_ok(&["accessory", "remove", "site", "-y"]);
    let names = fleet.docker_ps(host);
    assert!(!names.iter().any(|n| n.starts_with(&site)), "{names:?}");
    let (status, _) = get(&addr, Some(&vhost), "/index.html").expect("request");
    assert_ne!(status, 200, "the route is gone");
}

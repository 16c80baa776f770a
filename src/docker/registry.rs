//! Registry and image commands (`lib/kamal/commands/registry.rb`, `builder/base.rb`): login with
//! the password on stdin, logout, pull, image removal and the `service` label check.

use crate::command::CommandSpec;
use crate::config::model::{Config, Registry};
use crate::shell::quote;

use super::script::{sh, words};

/// `docker login [<server>] -u <user> --password-stdin` on `on` (a host, or `local`), the
/// password on stdin. Kamal passes `-p <password>`; we never put a secret in argv. The user name
/// is shown redacted, as Kamal shows it. `None` for a local registry (Kamal logs in nowhere).
pub fn login(registry: &Registry, username: &str, password: &str, on: &str) -> Option<CommandSpec> {
    if registry.is_local() {
        return None;
    }
    let mut cmd = CommandSpec::new(
        format!("log in to registry {} on {on}", server_name(registry)),
        "docker",
    )
    .arg("login");
    if let Some(server) = &registry.server {
        cmd = cmd.arg(server);
    }
    cmd = cmd
        .arg("-u")
        .arg_sensitive(username, "[REDACTED]")
        .arg("--password-stdin");
    Some(cmd.stdin(password.as_bytes().to_vec()))
}

/// The local registry's container (Kamal's name).
pub const LOCAL_REGISTRY_CONTAINER: &str = "kamal-docker-registry";
/// The local registry's image (Kamal's).
pub const LOCAL_REGISTRY_IMAGE: &str = "registry:3";

/// `docker start kamal-docker-registry || docker run --detach -p <address>:<port>:5000 --name
/// kamal-docker-registry registry:3` on this machine (Kamal's `registry setup` with a local
/// registry). `address` is `127.0.0.1` unless `x-dray: local_registry: address` says otherwise.
pub fn setup_local(port: u16, address: &str) -> CommandSpec {
    let run = [
        "docker",
        "run",
        "--detach",
        "-p",
        &format!("{address}:{port}:5000"),
        "--name",
        LOCAL_REGISTRY_CONTAINER,
        LOCAL_REGISTRY_IMAGE,
    ];
    sh(
        "start the local registry on this machine",
        format!(
            "{} || {}",
            words(&["docker", "start", LOCAL_REGISTRY_CONTAINER]),
            words(&run)
        ),
    )
}

/// `docker stop kamal-docker-registry && docker rm kamal-docker-registry` on this machine.
pub fn remove_local() -> CommandSpec {
    sh(
        "remove the local registry on this machine",
        format!(
            "{} && {}",
            words(&["docker", "stop", LOCAL_REGISTRY_CONTAINER]),
            words(&["docker", "rm", LOCAL_REGISTRY_CONTAINER])
        ),
    )
}

/// The registry as messages name it: its server, or Docker Hub.
pub fn server_name(registry: &Registry) -> &str {
    registry.server.as_deref().unwrap_or("Docker Hub")
}

/// `docker logout [<server>]` on `on`.
pub fn logout(registry: &Registry, on: &str) -> CommandSpec {
    let cmd = CommandSpec::new(format!("log out of registry on {on}"), "docker").arg("logout");
    match &registry.server {
        Some(server) => cmd.arg(server),
        None => cmd,
    }
}

/// The pull of a deploy as one round trip: log in (password on stdin), drop the old copy of
/// the image, pull it, check its `service` label, record the audit line. The script is shown
/// with the username redacted.
pub fn pull_batch(
    config: &Config,
    version: &str,
    host: &str,
    login: Option<CommandSpec>,
    audit: &super::audit::AuditLine,
) -> CommandSpec {
    let img = image(config, version);
    // The label check without a nested shell and `grep`: the inspect's output compared in a
    // `case`; the audit line appended by this shell.
    let rest = format!(
        "{} > /dev/null 2>&1 || true\n{} > /dev/null\n\
         case \"$(docker inspect -f {} {})\" in {}) ;; *) echo {} >&2; exit 1 ;; esac\n{}",
        remove_image(config, version, host).to_shell(),
        pull(config, version, host).to_shell(),
        quote("{{ .Config.Labels.service }}"),
        quote(&img),
        quote(&config.service),
        quote(&format!("Image {img} is missing the 'service' label")),
        super::audit::record_script(config, audit),
    );
    // A refused login says so in its own line, naming the registry and the host, beside
    // Docker's answer.
    let refused = quote(&format!(
        "{} refused the login on {host}",
        login_server(config)
    ));
    let (script, shown) = match &login {
        Some(l) => (
            format!(
                "set -e\n{} > /dev/null || {{ echo {refused} >&2; exit 1; }}\n{rest}",
                l.to_shell()
            ),
            format!(
                "set -e\n{} > /dev/null || {{ echo {refused} >&2; exit 1; }}\n{rest}",
                l.to_shell_redacted()
            ),
        ),
        None => (format!("set -e\n{rest}"), format!("set -e\n{rest}")),
    };
    let mut cmd = CommandSpec::new(format!("pull {} on {host}", image(config, version)), "sh")
        .arg("-c")
        .arg_sensitive(script, shown);
    cmd.stdin = login.and_then(|l| l.stdin);
    cmd
}

fn login_server(config: &Config) -> String {
    format!("registry {}", server_name(&config.registry))
}

/// `<repository>:<version>`.
pub fn image(config: &Config, version: &str) -> String {
    format!("{}:{}", config.repository, version)
}

/// `docker image rm --force <image>` (before a pull; its failure is ignored).
pub fn remove_image(config: &Config, version: &str, host: &str) -> CommandSpec {
    CommandSpec::new(format!("remove old image on {host}"), "docker")
        .args(["image", "rm", "--force"])
        .arg(image(config, version))
}

/// `docker pull <image>`.
pub fn pull(config: &Config, version: &str, host: &str) -> CommandSpec {
    CommandSpec::new(format!("pull image on {host}"), "docker")
        .arg("pull")
        .arg(image(config, version))
}

/// `docker inspect -f '{{ .Config.Labels.service }}' IMG | grep -x S || (echo "Image IMG is
/// missing the 'service' label" && exit 1)`.
pub fn validate_image(config: &Config, version: &str, host: &str) -> CommandSpec {
    let img = image(config, version);
    sh(
        format!("check image service label on {host}"),
        format!(
            "docker inspect -f {} {} | grep -x {} || (echo {} && exit 1)",
            quote("{{ .Config.Labels.service }}"),
            quote(&img),
            quote(&config.service),
            quote(&format!("Image {img} is missing the 'service' label")),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::test_support::{base, config_with, BASE};

    #[test]
    fn login_puts_password_on_stdin() {
        let c = config_with(
            &BASE.replace("registry:\n", "registry:\n  server: hub.docker.com\n"),
            None,
        );
        let cmd = login(&c.registry, "dhh", "more-secret'\"", "1.1.1.1").expect("not local");
        assert_eq!(cmd.purpose, "log in to registry hub.docker.com on 1.1.1.1");
        assert_eq!(
            cmd.stdin.as_ref().map(|s| s.0.clone()),
            Some(b"more-secret'\"".to_vec())
        );
        assert!(!cmd.to_shell().contains("more-secret"));
        assert!(!format!("{cmd:?}").contains("more-secret"));
        assert!(!format!("{cmd:?}").contains("dhh"));
        insta::assert_snapshot!(cmd.to_shell(), @"docker login hub.docker.com -u dhh --password-stdin");
        insta::assert_snapshot!(cmd.to_shell_redacted(), @"docker login hub.docker.com -u '[REDACTED]' --password-stdin");
        insta::assert_snapshot!(logout(&c.registry, "1.1.1.1").to_shell(), @"docker logout hub.docker.com");
    }

    #[test]
    fn docker_hub_and_local_registry() {
        let c = base();
        let cmd = login(&c.registry, "dhh", "secret", "local").expect("not local");
        insta::assert_snapshot!(cmd.to_shell(), @"docker login -u dhh --password-stdin");
        let local = config_with(
            "service: app\nimage: app\nregistry:\n  server: localhost:5555\nservers:\n  - 1.1.1.1\nbuilder:\n  arch: amd64\n",
            None,
        );
        assert!(login(&local.registry, "", "", "local").is_none());
    }

    #[test]
    fn local_registry_container_as_kamal_runs_it() {
        insta::assert_snapshot!(setup_local(5555, "127.0.0.1").to_shell(), @"sh -c 'docker start kamal-docker-registry || docker run --detach -p 127.0.0.1:5555:5000 --name kamal-docker-registry registry:3'");
        insta::assert_snapshot!(remove_local().to_shell(), @"sh -c 'docker stop kamal-docker-registry && docker rm kamal-docker-registry'");
    }

    #[test]
    fn pull_and_check() {
        let c = base();
        insta::assert_snapshot!(remove_image(&c, "999", "1.1.1.1").to_shell(), @"docker image rm --force dhh/app:999");
        insta::assert_snapshot!(pull(&c, "999", "1.1.1.1").to_shell(), @"docker pull dhh/app:999");
        insta::assert_snapshot!(validate_image(&c, "999", "1.1.1.1").to_shell());
    }
}

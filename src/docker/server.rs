//! `server bootstrap`'s command on a host (Kamal 2.12's `lib/kamal/commands/docker.rb` and
//! `lib/kamal/cli/server.rb#bootstrap`), as one script per host: Docker present (`docker -v`)
//! or, when the SSH user may install it (root, or passwordless `sudo` — Kamal's `superuser?`),
//! installed with Kamal's command (Docker's convenience script from https://get.docker.com,
//! fetched with `curl`, else `wget`) and the user added to the `docker` group; then the
//! `.kamal` run directory.

use crate::command::CommandSpec;
use crate::shell::quote;

/// Kamal's `install`: Docker's convenience script, fetched with curl or wget, piped to `sh`.
pub const INSTALL: &str = r#"sh -c 'curl -fsSL https://get.docker.com || wget -O - https://get.docker.com || echo "exit 1"' | sh"#;

/// Kamal's `superuser?`: root, or allowed to run `usermod` through sudo without a password.
pub const SUPERUSER: &str = r#"[ "${EUID:-$(id -u)}" -eq 0 ] || sudo -nl usermod >/dev/null"#;

/// Kamal's `root?` or `in_docker_group?`.
const ROOT_OR_IN_GROUP: &str =
    r#"[ "${EUID:-$(id -u)}" -eq 0 ] || id -nG "${USER:-$(id -un)}" | grep -qw docker"#;

/// Kamal's `add_to_docker_group`.
const ADD_TO_GROUP: &str = r#"sudo -n usermod -aG docker "${USER:-$(id -un)}""#;

/// Where Docker's manual installation is described.
pub const MANUAL_INSTALL: &str = "https://docs.docker.com/engine/install/";

/// The bootstrap of `host`: prints `Docker is installed`, or installs it (the install's own
/// output goes to standard error, so a failure shows its last lines) and says so; then creates
/// `.kamal`. Fails, naming the host, when Docker is missing and cannot be installed, or when the
/// install fails — before `.kamal` is created.
pub fn bootstrap(host: &str) -> CommandSpec {
    let cannot = quote(&format!(
        "Docker is not installed on {host} and can't be automatically installed without having \
         root access and either `wget` or `curl`"
    ));
    let installing = quote(&format!("Missing Docker on {host}. Installing…"));
    let failed = quote(&format!(
        "installing Docker on {host} failed: fetching https://get.docker.com with curl, \
         then wget, and running it with sh did not succeed"
    ));
    let script = format!(
        "if docker -v >/dev/null 2>&1; then\n\
         \x20 echo 'Docker is installed'\n\
         else\n\
         \x20 if ! {{ {SUPERUSER}; }} 2>/dev/null; then echo {cannot} >&2; exit 1; fi\n\
         \x20 echo {installing}\n\
         \x20 if ! {{ {INSTALL}; }} >&2; then echo {failed} >&2; exit 1; fi\n\
         \x20 if ! {{ {ROOT_OR_IN_GROUP}; }}; then\n\
         \x20   {ADD_TO_GROUP} || exit 1\n\
         \x20   echo \"Added ${{USER:-$(id -un)}} to the docker group (new SSH connections have it)\"\n\
         \x20 fi\n\
         \x20 echo 'Installed Docker'\n\
         fi\n\
         mkdir -p .kamal"
    );
    CommandSpec::new(format!("ensure Docker is installed on {host}"), "sh")
        .arg("-c")
        .arg(script)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_script_is_kamals_checks_install_and_run_directory() {
        insta::assert_snapshot!(bootstrap("10.0.0.1").to_shell());
    }

    /// The script's branches, run by a real `sh` with `docker`, `curl`, `wget` and `id` replaced
    /// by fakes on `PATH` (no Docker and no internet here): what it prints, what it creates.
    fn run(dir: &std::path::Path, fakes: &[(&str, &str)]) -> (i32, String, String) {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).expect("bin");
        for (name, body) in fakes {
            let path = bin.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("fake");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let cmd = bootstrap("h1");
        let script = cmd.args[1].as_str().to_string();
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            // The script reads the user from `$USER`/`$EUID` first: the stand-in `id` decides.
            .env_remove("USER")
            .env_remove("EUID")
            .output()
            .expect("sh");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn docker_present_creates_the_run_directory_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (code, out, _) = run(
            dir.path(),
            &[("docker", "echo Docker version 28"), ("curl", "exit 99")],
        );
        assert_eq!((code, out.as_str()), (0, "Docker is installed\n"));
        assert!(dir.path().join(".kamal").is_dir());
    }

    #[test]
    fn a_failed_install_names_the_host_and_creates_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (code, out, err) = run(
            dir.path(),
            &[
                ("docker", "exit 127"),
                (
                    "curl",
                    "echo 'curl: (6) Could not resolve host: get.docker.com' >&2; exit 6",
                ),
                (
                    "wget",
                    "echo 'wget: unable to resolve host address' >&2; exit 4",
                ),
                ("id", "echo 0"),
            ],
        );
        assert_eq!(code, 1, "{out}{err}");
        assert_eq!(out, "Missing Docker on h1. Installing…\n");
        assert!(
            err.contains("Could not resolve host: get.docker.com"),
            "{err}"
        );
        assert!(err.contains("installing Docker on h1 failed"), "{err}");
        assert!(!dir.path().join(".kamal").exists());
    }

    #[test]
    fn without_root_or_sudo_it_is_kamals_refusal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (code, _, err) = run(
            dir.path(),
            &[
                ("docker", "exit 127"),
                ("id", "echo 1000"),
                ("sudo", "exit 1"),
                ("curl", "touch curl-ran"),
            ],
        );
        assert_eq!(code, 1);
        assert!(
            err.contains("Docker is not installed on h1 and can't be automatically installed"),
            "{err}"
        );
        assert!(!dir.path().join("curl-ran").exists());
        assert!(!dir.path().join(".kamal").exists());
    }

    #[test]
    fn an_install_as_a_sudoer_adds_the_user_to_the_docker_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (code, out, err) = run(
            dir.path(),
            &[
                ("docker", "exit 127"),
                (
                    "id",
                    "case \"$1\" in -u) echo 1000;; -un) echo app;; *) echo app;; esac",
                ),
                ("sudo", "echo \"sudo $*\" >> sudo-log"),
                ("curl", "echo 'echo installing'"),
            ],
        );
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("Added app to the docker group"), "{out}");
        let log = std::fs::read_to_string(dir.path().join("sudo-log")).expect("log");
        assert_eq!(log, "sudo -nl usermod\nsudo -n usermod -aG docker app\n");
        assert!(dir.path().join(".kamal").is_dir());
    }
}

//! Files the proxy reads from the host's `.kamal/proxy/apps-config` (mounted in the proxy
//! container at `/home/kamal-proxy/.apps-config`): the error pages of a version
//! (`<A>/error_pages/<V>/4xx.html, 5xx.html`, Kamal's `Kamal::Cli::App::ErrorPages`) and a role's
//! custom TLS certificate (`<A>/tls/<R>/{cert,key}.pem`, Kamal's `SslCertificates`).
//!
//! Both travel as a tar archive on stdin (the private key is a secret: never in argv), unpacked
//! on the host by `tar`, which every server has.

use crate::command::{CommandSpec, Secret};
use crate::config::model::Config;
use crate::shell::quote;

use super::proxy::APPS_DIRECTORY;
use super::script::{sh, words};

/// One file of an archive: name inside it, mode, content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFile {
    /// Path inside the archive (relative).
    pub name: String,
    /// Unix mode.
    pub mode: u32,
    /// Content.
    pub content: Vec<u8>,
}

/// A tar archive of `files` (regular files only, owner root, time 0).
pub fn archive(files: &[ArchiveFile]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for f in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(f.content.len() as u64);
        header.set_mode(f.mode);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mtime(0);
        builder.append_data(&mut header, &f.name, f.content.as_slice())?;
    }
    builder.into_inner()
}

/// `.kamal/proxy/apps-config/<service>[-<dest>]`.
pub fn app_directory(config: &Config) -> String {
    format!("{APPS_DIRECTORY}/{}", config.service_and_destination())
}

/// `.kamal/proxy/apps-config/<A>/error_pages`.
pub fn error_pages_directory(config: &Config) -> String {
    format!("{}/error_pages", app_directory(config))
}

/// `.kamal/proxy/apps-config/<A>/tls/<role>`.
pub fn tls_directory(config: &Config, role: &str) -> String {
    format!("{}/tls/{role}", app_directory(config))
}

fn unpack(purpose: String, dir: &str, archive: Vec<u8>) -> CommandSpec {
    let script = format!(
        "{} && {}",
        words(&["mkdir", "-p", dir]),
        words(&["tar", "-x", "-o", "-C", dir, "-f", "-"]),
    );
    let mut cmd = sh(purpose, script);
    cmd.stdin = Some(Secret(archive));
    cmd
}

/// Upload `version`'s error pages (`pages` named `4xx.html`/`5xx.html`) into
/// `error_pages/<version>/`.
pub fn upload_error_pages(
    config: &Config,
    host: &str,
    version: &str,
    archive: Vec<u8>,
) -> CommandSpec {
    unpack(
        format!("upload the error pages of {version} on {host}"),
        &format!("{}/{version}", error_pages_directory(config)),
        archive,
    )
}

/// Upload `role`'s certificate and key (`cert.pem`, `key.pem` in the archive).
pub fn upload_certificate(
    config: &Config,
    role: &str,
    host: &str,
    archive: Vec<u8>,
) -> CommandSpec {
    unpack(
        format!("write the TLS certificate of {role} on {host}"),
        &tls_directory(config, role),
        archive,
    )
}

/// Upload the ACME directory's CA roots (`x-dray: proxy: acme_ca_certs`; `ca.pem` in the
/// archive) to `<A>/acme/`.
pub fn upload_acme_ca(config: &Config, host: &str, archive: Vec<u8>) -> CommandSpec {
    unpack(
        format!("write the ACME directory's CA roots on {host}"),
        &format!("{}/acme", app_directory(config)),
        archive,
    )
}

/// Script text, run after the old version stopped: remove the error pages of every version but
/// `version` (Kamal's `clean_up_error_pages`).
pub fn clean_up_error_pages_script(config: &Config, version: &str) -> String {
    format!(
        "find {} -mindepth 1 -maxdepth 1 ! -name {} -exec rm -rf {{}} +",
        quote(&error_pages_directory(config)),
        quote(version)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::test_support::base;

    #[test]
    fn uploads_unpack_stdin_into_kamal_paths() {
        let config = base();
        let cmd = upload_error_pages(&config, "1.1.1.1", "999", vec![1, 2]);
        insta::assert_snapshot!(cmd.to_shell(), @"sh -c 'mkdir -p .kamal/proxy/apps-config/app/error_pages/999 && tar -x -o -C .kamal/proxy/apps-config/app/error_pages/999 -f -'");
        let cmd = upload_certificate(&config, "web", "1.1.1.1", vec![1]);
        assert!(cmd
            .to_shell()
            .contains(".kamal/proxy/apps-config/app/tls/web"));
        assert!(cmd.stdin.is_some());
    }

    #[test]
    fn archives_hold_the_files_with_their_modes() {
        let bytes = archive(&[ArchiveFile {
            name: "404.html".into(),
            mode: 0o644,
            content: b"<h1>gone</h1>".to_vec(),
        }])
        .expect("archive");
        let mut a = tar::Archive::new(bytes.as_slice());
        let entries: Vec<_> = a
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                (
                    e.path().expect("path").display().to_string(),
                    e.header().mode().expect("mode"),
                )
            })
            .collect();
        assert_eq!(entries, vec![("404.html".to_string(), 0o644)]);
    }

    #[test]
    fn clean_up_keeps_the_version() {
        let config = base();
        assert_eq!(
            clean_up_error_pages_script(&config, "999"),
            "find .kamal/proxy/apps-config/app/error_pages -mindepth 1 -maxdepth 1 ! -name 999 -exec rm -rf {} +"
        );
    }
}

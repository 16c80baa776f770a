//! Where accessory files, directories and the env file live on a host, as Kamal lays them out
//! (`lib/kamal/configuration/accessory.rb`), and the small commands that create them: files at
//! `<service_name><remote>` relative to the home directory, directories at
//! `$PWD/<service_name>/<local>` unless absolute, the env file at
//! `.kamal/apps/<service>[-<dest>]/env/accessories/<name>.env`.

use crate::command::CommandSpec;
use crate::config::model::{Accessory, Config, FileSpec};
use crate::shell::quote;

use super::app::is_blank;
use super::script::sh;

/// `.kamal/apps/<service>[-<dest>]/env/accessories`.
pub fn env_directory(config: &Config) -> String {
    format!(
        ".kamal/apps/{}/env/accessories",
        config.service_and_destination()
    )
}

/// `.kamal/apps/<service>[-<dest>]/env/accessories/<name>.env`.
pub fn env_file(config: &Config, name: &str) -> String {
    format!("{}/{name}.env", env_directory(config))
}

/// Where an accessory file lands on the host: `<service_name><remote>` (Kamal concatenates, so
/// `/etc/my.cnf` becomes `<service_name>/etc/my.cnf`), relative to the home directory.
pub fn file_host_path(acc: &Accessory, file: &FileSpec) -> String {
    format!("{}{}", acc.service, file.remote)
}

/// A directory's host path as `mkdir`/`chmod` see it: the absolute path as written, else
/// `$PWD/<service_name>/<local>` (`$PWD` expanded by the remote shell).
pub fn directory_host_path(acc: &Accessory, dir: &FileSpec) -> HostPath {
    if dir.local.starts_with('/') {
        HostPath::Literal(dir.local.clone())
    } else {
        HostPath::Home(format!("{}/{}", acc.service, dir.local))
    }
}

/// A host path: as written (absolute, or relative to the home directory where Kamal writes it so), or under `$PWD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPath {
    /// As written.
    Literal(String),
    /// Relative to the home directory, passed as `"$PWD"/'<path>'`.
    Home(String),
}

impl HostPath {
    pub(super) fn push(&self, cmd: CommandSpec) -> CommandSpec {
        match self {
            HostPath::Literal(p) => cmd.arg(p),
            HostPath::Home(p) => cmd.arg_raw(format!("\"$PWD\"/{}", quote(p))),
        }
    }
}

/// `--volume` of a file or directory: `$PWD/<host path>:<remote>[:<options>]`.
pub(super) fn path_volume(host_path: &HostPath, remote: &str, options: Option<&str>) -> HostPath {
    let opts = options
        .filter(|o| !is_blank(o))
        .map(|o| format!(":{o}"))
        .unwrap_or_default();
    match host_path {
        HostPath::Literal(p) => HostPath::Literal(format!("{p}:{remote}{opts}")),
        HostPath::Home(p) => HostPath::Home(format!("{p}:{remote}{opts}")),
    }
}

/// The directory of a relative or absolute file path (Ruby's `Pathname#dirname`).
pub fn dirname(path: &str) -> String {
    match path.rsplit_once('/') {
        Some(("", _)) => "/".to_string(),
        Some((d, _)) => d.to_string(),
        None => ".".to_string(),
    }
}

/// `mkdir -p <path>`.
pub fn make_directory(path: &HostPath, host: &str) -> CommandSpec {
    path.push(CommandSpec::new(format!("create directory on {host}"), "mkdir").arg("-p"))
}

/// `chmod <mode> <path>`.
pub fn chmod(mode: &str, path: &HostPath, host: &str) -> CommandSpec {
    path.push(CommandSpec::new(format!("set mode on {host}"), "chmod").arg(mode))
}

/// `chown <owner> <path>`.
pub fn chown(owner: &str, path: &HostPath, host: &str) -> CommandSpec {
    path.push(CommandSpec::new(format!("set owner on {host}"), "chown").arg(owner))
}

/// `umask 077 && cat > <path>.tmp [&& chmod <mode> <path>.tmp] && mv -f <path>.tmp <path>`: the
/// content (on the command's stdin) is never readable by others midway.
pub fn write_file(purpose: String, path: &str, mode: Option<&str>) -> CommandSpec {
    let tmp = format!("{path}.tmp");
    let chmod = mode
        .map(|m| format!(" && chmod {} {}", quote(m), quote(&tmp)))
        .unwrap_or_default();
    sh(
        purpose,
        format!(
            "umask 077 && cat > {tmp}{chmod} && mv -f {tmp} {path}",
            tmp = quote(&tmp),
            path = quote(path),
        ),
    )
}

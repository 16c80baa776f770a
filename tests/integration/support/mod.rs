//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of the `dray` binary under test.
pub fn dray_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dray"))
}

/// Run `dray` with `args` in `dir`, with no inherited `VERSION`, `DRAY_RELEASE`, `DRAY_LOG` or
/// `KAMAL_*`.
pub fn dray(dir: &Path, args: &[&str]) -> Output {
    dray_cmd(dir, args).output().expect("run dray")
}

/// A `dray` command in `dir`, environment cleaned of release-related variables.
pub fn dray_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(dray_bin());
    cmd.current_dir(dir).args(args);
    for (key, _) in std::env::vars() {
        if key == "VERSION"
            || key == "DRAY_LOG"
            || key.starts_with("KAMAL_")
            || key.starts_with("DRAY_RELEASE")
        {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Write `text` to `path`, creating parent directories.
pub fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create dirs");
    }
    std::fs::write(path, text).expect("write file");
}

pub mod deployer;
pub mod fleet;
pub mod procs;
pub mod project;
pub mod ssh_cli;

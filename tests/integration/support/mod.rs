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

/// A port free on 127.0.0.1 now, for a server the test starts to listen on.
///
/// Below the kernel's ephemeral range rather than port 0: the kernel also hands ports of that
/// range out as the source ports of outgoing connections, which tests running at once make many
/// of, so a `:0` port can be taken before the server binds it. Each test process starts at its
/// own place in the range (spread by pid) and walks it. (dray-proxy's tests hold the same
/// helper.)
pub fn free_local_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let low = ephemeral_low.saturating_sub(12_000).max(1024);
    let span = ephemeral_low.saturating_sub(low).max(1);
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let Ok(port) = u16::try_from(low + offset) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {low}..{ephemeral_low}");
}

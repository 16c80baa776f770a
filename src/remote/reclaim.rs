//! Reclaiming what a killed run left behind: the `dray-ssh-*` run directory of a process that
//! is gone, and the ssh masters still using it.

use std::path::Path;

/// The file in a run directory naming the process that owns it.
pub(super) const OWNER_FILE: &str = "owner";

/// Run directories (`dray-ssh-*` beside `ours`) whose owner process is gone (it was killed
/// before it could clean up): stop the ssh masters still using them and remove them.
pub(super) fn reclaim_stale_run_dirs(ours: &Path) {
    let Some(parent) = ours.parent() else { return };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let stale = dir != ours
            && entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("dray-ssh-"))
            && std::fs::read_to_string(dir.join(OWNER_FILE))
                .ok()
                .and_then(|p| p.trim().parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if !stale {
            continue;
        }
        stop_processes_using(&dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// SIGTERM to every `ssh` process whose command line names `dir` (the masters of a run).
pub(super) fn stop_processes_using(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(p.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        let mut args = cmdline.split('\0');
        let is_ssh = args
            .next()
            .is_some_and(|a| a == "ssh" || a.ends_with("/ssh"));
        if is_ssh && cmdline.contains(&needle) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

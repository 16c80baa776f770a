//! Watching the machine's process table while a command runs: every fleet host shares this
//! machine's PID namespace (hosts are mount and UTS namespaces only), so one scan of `/proc` sees
//! dray, its local `docker` commands, the ssh clients, and the shells and `docker` commands each
//! host's sshd runs. Tests use it to prove a secret is in no process's arguments, anywhere.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One process seen: its command line (arguments joined by spaces) and when it was first seen.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The PID.
    pub pid: u32,
    /// `argv`, joined with spaces.
    pub cmdline: String,
    /// First seen, from the watch's start.
    pub at: Duration,
}

/// Samples `/proc/*/cmdline` every millisecond or so until stopped.
pub struct ProcessWatch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeMap<(u32, String), Duration>>>,
    thread: Option<JoinHandle<()>>,
    scans: Arc<Mutex<u64>>,
}

impl ProcessWatch {
    /// Start watching.
    pub fn start() -> ProcessWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<BTreeMap<(u32, String), Duration>>> = Arc::default();
        let scans: Arc<Mutex<u64>> = Arc::default();
        let (s, m, n) = (stop.clone(), seen.clone(), scans.clone());
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let me = std::process::id();
            while !s.load(Ordering::Relaxed) {
                for (pid, cmdline) in scan(me) {
                    if let Ok(mut map) = m.lock() {
                        map.entry((pid, cmdline)).or_insert_with(|| start.elapsed());
                    }
                }
                if let Ok(mut n) = n.lock() {
                    *n += 1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        ProcessWatch {
            stop,
            seen,
            thread: Some(thread),
            scans,
        }
    }

    /// Stop and return every process seen, in the order first seen.
    pub fn finish(mut self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let map = self.seen.lock().map(|m| m.clone()).unwrap_or_default();
        let mut out: Vec<Seen> = map
            .into_iter()
            .map(|((pid, cmdline), at)| Seen { pid, cmdline, at })
            .collect();
        out.sort_by_key(|s| s.at);
        out
    }

    /// How many scans of `/proc` ran so far.
    pub fn scans(&self) -> u64 {
        self.scans.lock().map(|n| *n).unwrap_or(0)
    }
}

impl Drop for ProcessWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn scan(me: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            if raw.is_empty() {
                continue;
            }
            let text = String::from_utf8_lossy(&raw)
                .trim_end_matches('\0')
                .replace('\0', " ");
            out.push((pid, text));
        }
    }
    out
}

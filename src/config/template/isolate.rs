//! Rendering a file with tera in a child process, within budgets (issue 23).
//!
//! tera has no hooks for loop iterations, recursion or string growth, so a small template can
//! loop for hours, double a string into gigabytes or overflow the stack (an abort, not an
//! error). A file with tera tags is therefore rendered by a child: the running `dray` binary
//! started again with [`CHILD_ENV`] set, the file and its context on stdin, the result on
//! stdout. The child runs with OS limits set before it renders, and the parent watches it:
//!
//! - **memory** ([`MEMORY_BUDGET`]): the child's data segment (`RLIMIT_DATA`, soft), so an
//!   allocation past it fails and the child aborts;
//! - **CPU time** ([`CPU_BUDGET`]): the child's own CPU time, polled by the parent, which kills
//!   it past the budget (time spent in `cmd()` commands is not counted);
//! - **wall-clock time** ([`WALL_BUDGET`]): the same, for a render waiting on commands;
//! - **call depth** ([`STACK_BUDGET`]): the stack of the thread the child renders on; deep macro
//!   recursion overflows it and the child dies;
//! - **output size** ([`OUTPUT_BUDGET`]): the parent reads at most that much of the output.
//!
//! Each refusal is a [`TemplateError`] at the file's first tera tag naming the budget and its
//! value. Processes that do not call [`enter`] (unit tests, benchmarks) render in-process,
//! within the static limits of `tera_limits.rs` only.
//!
//! The child reads requests and writes replies as frames (an 8-byte little-endian length, then
//! that many bytes) until its stdin ends. `dray` starts a fresh child for every file and stops
//! it after the reply. The fuzz harness calls [`reuse_children`], so that an idle child
//! serves the next render instead of a new process: the budgets then count per render (CPU time
//! from the render's start, a fresh stack for each render), a child whose data segment grew
//! past half the memory budget is retired, and a render refused for memory by a reused child is
//! tried again in a fresh one, so that the answer never depends on what the child did before.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::context::{CommandPolicy, TemplateContext};
use super::error::TemplateError;

/// Set (to `1`) in the environment of a render child.
pub const CHILD_ENV: &str = "DRAY_RENDER_CHILD";
/// Budget: memory the child may allocate.
pub const MEMORY_BUDGET: u64 = 64 << 20;
/// Budget: CPU time the child may use.
pub const CPU_BUDGET: Duration = Duration::from_millis(500);
/// Budget: wall-clock time of one render, commands included.
pub const WALL_BUDGET: Duration = Duration::from_secs(120);
/// Budget: the stack of the thread the child renders on (bounds the call depth).
pub const STACK_BUDGET: usize = 16 << 20;
/// Budget: the largest output of one render.
pub const OUTPUT_BUDGET: usize = super::super::node::MAX_INPUT_BYTES;

/// The binary that renders, once [`enter`] ran in this process.
static CHILD_EXE: OnceLock<PathBuf> = OnceLock::new();
/// Whether this process is a render child.
static IN_CHILD: AtomicBool = AtomicBool::new(false);
/// Whether idle render children are kept for the next render ([`reuse_children`]).
static REUSE: AtomicBool = AtomicBool::new(false);
/// Idle render children, when they are reused.
static POOL: Mutex<Vec<Server>> = Mutex::new(Vec::new());
/// The largest request a child reads (the source is at most 1 MiB; the rest is environment).
const REQUEST_LIMIT: u64 = MEMORY_BUDGET / 2;
/// The stderr a child may write that is kept (the end of it names how a child died).
const STDERR_KEPT: usize = 64 << 10;

/// CPU time (ms) the render children used, children started, and the largest peak resident
/// memory (bytes) of one, since the last [`take_child_stats`].
static STAT_CPU_MS: AtomicU64 = AtomicU64::new(0);
static STAT_STARTED: AtomicU64 = AtomicU64::new(0);
static STAT_PEAK: AtomicU64 = AtomicU64::new(0);

/// What render children did since the last call (the fuzz harness reads it per case).
#[derive(Debug, Clone, Copy, Default)]
pub struct ChildStats {
    /// CPU time the children used for their renders.
    pub cpu: Duration,
    /// Children started.
    pub started: u64,
    /// The largest peak resident memory of a child that answered (its whole life, when reused).
    pub peak_rss_bytes: u64,
}

/// [`ChildStats`] since the last call, and start counting again.
pub fn take_child_stats() -> ChildStats {
    ChildStats {
        cpu: Duration::from_millis(STAT_CPU_MS.swap(0, Ordering::Relaxed)),
        started: STAT_STARTED.swap(0, Ordering::Relaxed),
        peak_rss_bytes: STAT_PEAK.swap(0, Ordering::Relaxed),
    }
}

/// Keep idle render children for the next render instead of starting one per file (the fuzz
/// harness: no process start per case). Off in `dray`.
pub fn reuse_children(on: bool) {
    REUSE.store(on, Ordering::Relaxed);
    if !on {
        if let Ok(mut pool) = POOL.lock() {
            pool.clear();
        }
    }
}

/// Called first thing by `main`: in a render child, render and return the exit code; otherwise
/// remember the binary so that renders run in children, and return `None`.
pub fn enter() -> Option<i32> {
    if std::env::var_os(CHILD_ENV).is_some() {
        return Some(child_main());
    }
    if let Ok(exe) = std::env::current_exe() {
        let _ = CHILD_EXE.set(exe);
    }
    None
}

/// Render in children started from `exe` (tests and the fuzz harness use the built `dray`).
pub fn use_child_exe(exe: PathBuf) {
    let _ = CHILD_EXE.set(exe);
}

/// Whether this process is a render child (commands it runs get their limits lifted).
pub(super) fn in_child() -> bool {
    IN_CHILD.load(Ordering::Relaxed)
}

/// The binary to render with, if rendering is isolated in this process.
pub(super) fn child_exe() -> Option<&'static PathBuf> {
    if in_child() {
        return None;
    }
    CHILD_EXE.get()
}

fn child_main() -> i32 {
    IN_CHILD.store(true, Ordering::Relaxed);
    // Nothing of a panic reaches the user: the parent reports it.
    std::panic::set_hook(Box::new(|_| {}));
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    for (resource, soft) in [
        (Resource::RLIMIT_DATA, MEMORY_BUDGET),
        (Resource::RLIMIT_CORE, 0),
    ] {
        if let Ok((_, hard)) = getrlimit(resource) {
            let _ = setrlimit(resource, soft.min(hard), hard);
        }
    }
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    loop {
        let request = match read_frame(&mut stdin, REQUEST_LIMIT) {
            Ok(Some(request)) => request,
            Ok(None) => return 0,
            Err(_) => return 3,
        };
        let Some(reply) = answer(&request) else {
            return 3;
        };
        drop(request);
        if write_frame(&mut stdout, reply.as_bytes()).is_err() {
            return 3;
        }
    }
}

/// The reply to one request: `ok\n` and the output, or `err\n` and the error as JSON.
fn answer(request: &[u8]) -> Option<String> {
    let request = serde_json::from_slice::<serde_json::Value>(request).ok()?;
    let source = request["source"].as_str().unwrap_or_default();
    let env: BTreeMap<String, String> = request["env"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let mut ctx = TemplateContext {
        env,
        cwd: PathBuf::from(request["cwd"].as_str().unwrap_or_default()),
    };
    let policy = match request["policy"].as_str() {
        Some("run") => CommandPolicy::Run,
        Some("fake") => CommandPolicy::Fake,
        _ => CommandPolicy::Deny,
    };
    Some(
        match super::render_in_process(source, &mut ctx, policy, STACK_BUDGET) {
            Ok(out) => format!("ok\n{out}"),
            Err(e) => format!(
                "err\n{}",
                serde_json::json!({
                    "line": e.line, "column": e.column, "message": e.message, "hint": e.hint,
                })
            ),
        },
    )
}

/// Why a frame could not be read.
#[derive(Debug)]
enum FrameError {
    /// The stream ended inside the frame, or reading failed.
    Io,
    /// The frame is longer than the limit.
    TooLarge,
}

/// Read one frame of at most `limit` bytes; `None` when the stream ends before it.
fn read_frame(input: &mut impl Read, limit: u64) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; 8];
    let mut got = 0;
    while got < header.len() {
        match input.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Io),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(FrameError::Io),
        }
    }
    let len = u64::from_le_bytes(header);
    if len > limit {
        return Err(FrameError::TooLarge);
    }
    let mut body = Vec::new();
    input
        .take(len)
        .read_to_end(&mut body)
        .map_err(|_| FrameError::Io)?;
    if body.len() as u64 != len {
        return Err(FrameError::Io);
    }
    Ok(Some(body))
}

fn write_frame(output: &mut impl Write, body: &[u8]) -> std::io::Result<()> {
    output.write_all(&(body.len() as u64).to_le_bytes())?;
    output.write_all(body)?;
    output.flush()
}

/// Which budget a render exceeded.
enum Exceeded {
    Memory,
    Cpu,
    Wall,
    Stack,
    Output,
}

impl Exceeded {
    fn error(&self, source: &str, offset: usize) -> TemplateError {
        let (message, hint) = match self {
            Exceeded::Memory => (
                format!("the template needs more than the memory budget ({} MiB)", MEMORY_BUDGET >> 20),
                "a string built by repeated concatenation, or a loop building a large value, grows without bound",
            ),
            Exceeded::Cpu => (
                format!("the template takes more than the CPU time budget ({} ms)", CPU_BUDGET.as_millis()),
                "loops (nested `for` over large ranges), recursion or deeply nested calls make it slow",
            ),
            Exceeded::Wall => (
                format!("the template takes more than the total time budget ({} s)", WALL_BUDGET.as_secs()),
                "a command run by cmd() or backticks does not finish",
            ),
            Exceeded::Stack => (
                format!("the template goes deeper than the recursion and call depth budget ({} MiB of stack)", STACK_BUDGET >> 20),
                "a macro calling itself without end, or calls nested too deep",
            ),
            Exceeded::Output => (
                format!("the template output is larger than the output size budget ({OUTPUT_BUDGET} bytes)"),
                "loops or repetition produce too much text; a configuration is at most 1 MiB",
            ),
        };
        TemplateError::at(source, offset, message).hint(hint)
    }
}

/// A running render child.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    /// Reads the child's stderr to its end, keeping the first [`STDERR_KEPT`] bytes.
    stderr: Option<JoinHandle<Vec<u8>>>,
    /// Renders it answered.
    renders: u32,
}

impl Server {
    fn start(exe: &PathBuf) -> std::io::Result<Server> {
        let mut child = Command::new(exe)
            .env(CHILD_ENV, "1")
            // An allocation failure prints no backtrace (reading the debug info takes memory).
            .env("RUST_BACKTRACE", "0")
            .env("RUST_LIB_BACKTRACE", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        STAT_STARTED.fetch_add(1, Ordering::Relaxed);
        let stderr = child.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let room = STDERR_KEPT.saturating_sub(kept.len()).min(n);
                    kept.extend_from_slice(&buf[..room]);
                }
                kept
            })
        });
        Ok(Server {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            child,
            stderr,
            renders: 0,
        })
    }

    /// Send one request and wait for its reply within the budgets. The server comes back when
    /// it can serve again.
    fn render(mut self, request: &[u8]) -> (Result<Vec<u8>, Failure>, Option<Server>) {
        let pid = self.child.id();
        let started = Instant::now();
        let cpu_before = if self.renders == 0 {
            Duration::ZERO
        } else {
            cpu_time(pid).unwrap_or_default()
        };
        let (tx, rx) = mpsc::channel();
        let stdout = self.stdout.take();
        let reader = std::thread::spawn(move || {
            let mut stdout = stdout;
            let reply = match stdout.as_mut() {
                Some(pipe) => read_frame(pipe, (OUTPUT_BUDGET + 4096) as u64),
                None => Err(FrameError::Io),
            };
            let _ = tx.send(());
            (reply, stdout)
        });
        // The child reads the whole request before it writes anything: no deadlock.
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = write_frame(stdin, request);
        }
        let mut pause = Duration::from_millis(1);
        let mut cpu_used = Duration::ZERO;
        let exceeded = loop {
            match rx.recv_timeout(pause) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break None,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            cpu_used = cpu_time(pid).unwrap_or_default().saturating_sub(cpu_before);
            if cpu_used > CPU_BUDGET {
                break Some(Exceeded::Cpu);
            }
            if started.elapsed() > WALL_BUDGET {
                break Some(Exceeded::Wall);
            }
            pause = (pause * 2).min(Duration::from_millis(10));
        };
        if let Some(cpu) = cpu_time(pid) {
            cpu_used = cpu.saturating_sub(cpu_before);
        }
        let cpu_ms = u64::try_from(cpu_used.as_millis()).unwrap_or(u64::MAX);
        STAT_CPU_MS.fetch_add(cpu_ms, Ordering::Relaxed);
        if let Some(exceeded) = exceeded {
            self.stop();
            let _ = reader.join();
            return (Err(Failure::Exceeded(exceeded)), None);
        }
        let (reply, stdout) = match reader.join() {
            Ok(done) => done,
            Err(_) => (Err(FrameError::Io), None),
        };
        self.stdout = stdout;
        match reply {
            Ok(Some(reply)) => {
                self.renders += 1;
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let peak = status_kb(&status, "VmHWM:").saturating_mul(1024);
                STAT_PEAK.fetch_max(peak, Ordering::Relaxed);
                let data = status_kb(&status, "VmData:").saturating_mul(1024);
                let keep = data <= MEMORY_BUDGET / 2;
                (Ok(reply), keep.then_some(self))
            }
            Err(FrameError::TooLarge) => {
                self.stop();
                (Err(Failure::Exceeded(Exceeded::Output)), None)
            }
            Ok(None) | Err(FrameError::Io) => {
                // The child died: how it died is in its status and stderr.
                self.stdin = None;
                let status = self.child.wait().ok();
                let stderr = self
                    .stderr
                    .take()
                    .and_then(|h| h.join().ok())
                    .unwrap_or_default();
                (Err(Failure::Died { status, stderr }), None)
            }
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // An idle child exits when its stdin ends; one that does not is killed.
        self.stdin = None;
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            self.stop();
        }
    }
}

/// Why a render in a child gave no reply.
enum Failure {
    Exceeded(Exceeded),
    Start(String),
    Died {
        status: Option<std::process::ExitStatus>,
        stderr: Vec<u8>,
    },
}

/// Render `source` in a child started from `exe`; `offset` is where budget errors point.
pub(super) fn render_in_child(
    exe: &PathBuf,
    source: &str,
    ctx: &TemplateContext,
    policy: CommandPolicy,
    offset: usize,
) -> Result<String, TemplateError> {
    let failed = |message: String| TemplateError::at(source, offset, message);
    let request = serde_json::json!({
        "source": source,
        "env": ctx.env,
        "cwd": ctx.cwd.to_string_lossy(),
        "policy": match policy {
            CommandPolicy::Run => "run",
            CommandPolicy::Deny => "deny",
            CommandPolicy::Fake => "fake",
        },
    })
    .to_string();
    let reuse = REUSE.load(Ordering::Relaxed);
    let idle = if reuse {
        POOL.lock().ok().and_then(|mut pool| pool.pop())
    } else {
        None
    };
    let reused = idle.is_some();
    let mut outcome = attempt(exe, idle, request.as_bytes());
    if reused && matches!(&outcome, Err(f) if is_memory(f)) {
        // What a reused child allocated before may be what made this one fail: ask a new one.
        outcome = attempt(exe, None, request.as_bytes());
    }
    let reply = match outcome {
        Ok(reply) => reply,
        Err(Failure::Exceeded(exceeded)) => return Err(exceeded.error(source, offset)),
        Err(Failure::Start(e)) => {
            return Err(failed(format!(
                "could not start the template renderer: {e}"
            )))
        }
        Err(failure @ Failure::Died { .. }) if is_memory(&failure) => {
            return Err(Exceeded::Memory.error(source, offset))
        }
        Err(Failure::Died { status, stderr }) => {
            use std::os::unix::process::ExitStatusExt;
            let err_text = String::from_utf8_lossy(&stderr);
            if err_text.contains("overflowed its stack") {
                return Err(Exceeded::Stack.error(source, offset));
            }
            return Err(match status.and_then(|s| s.signal()) {
                Some(9) | Some(24) => Exceeded::Cpu.error(source, offset),
                Some(sig) => failed(format!("the template renderer died (signal {sig})")),
                None => failed(format!(
                    "the template renderer failed ({}): {}",
                    status.map_or_else(|| "no status".to_string(), |s| s.to_string()),
                    err_text.trim()
                )),
            });
        }
    };
    let text = String::from_utf8_lossy(&reply);
    if let Some(output) = text.strip_prefix("ok\n") {
        if output.len() > OUTPUT_BUDGET {
            return Err(Exceeded::Output.error(source, offset));
        }
        return Ok(output.to_string());
    }
    let reply = text
        .strip_prefix("err\n")
        .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok())
        .ok_or_else(|| failed("the template renderer gave no result".to_string()))?;
    let number = |key: &str| {
        reply[key]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(1)
    };
    Err(TemplateError {
        line: number("line"),
        column: number("column"),
        message: reply["message"].as_str().unwrap_or_default().to_string(),
        hint: reply["hint"].as_str().map(str::to_string),
    })
}

/// One render by `server` (or a new child), the server going back to the pool when reused.
fn attempt(exe: &PathBuf, server: Option<Server>, request: &[u8]) -> Result<Vec<u8>, Failure> {
    let server = match server {
        Some(server) => server,
        None => Server::start(exe).map_err(|e| Failure::Start(e.to_string()))?,
    };
    let (outcome, back) = server.render(request);
    if let Some(server) = back {
        if REUSE.load(Ordering::Relaxed) {
            if let Ok(mut pool) = POOL.lock() {
                pool.push(server);
            }
        }
    }
    outcome
}

/// Whether a child died of an allocation past the memory budget.
fn is_memory(failure: &Failure) -> bool {
    match failure {
        Failure::Exceeded(Exceeded::Memory) => true,
        Failure::Died { stderr, .. } => {
            let text = String::from_utf8_lossy(stderr);
            text.contains("memory allocation") || text.contains("capacity overflow")
        }
        _ => false,
    }
}

/// A `Name:   123 kB` line of `/proc/<pid>/status`, in kB (0 when missing).
fn status_kb(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// User plus system CPU time of process `pid`, from `/proc/<pid>/stat` (Linux).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of proc(5), counted from the state (field 3).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Clock ticks: 100 per second on every Linux dray runs on (USER_HZ).
    Some(Duration::from_millis(
        utime.saturating_add(stime).saturating_mul(10),
    ))
}

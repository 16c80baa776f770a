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

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
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
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        return 3;
    }
    let Ok(request) = serde_json::from_str::<serde_json::Value>(&input) else {
        return 3;
    };
    drop(input);
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
    let policy = if request["deny"].as_bool().unwrap_or(true) {
        CommandPolicy::Deny
    } else {
        CommandPolicy::Run
    };
    let reply = match super::render_in_process(source, &mut ctx, policy, STACK_BUDGET) {
        Ok(out) => format!("ok\n{out}"),
        Err(e) => format!(
            "err\n{}",
            serde_json::json!({
                "line": e.line, "column": e.column, "message": e.message, "hint": e.hint,
            })
        ),
    };
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(reply.as_bytes()).is_err() || stdout.flush().is_err() {
        return 3;
    }
    0
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
        "deny": policy == CommandPolicy::Deny,
    })
    .to_string();
    let mut child = Command::new(exe)
        .env(CHILD_ENV, "1")
        // An allocation failure prints no backtrace (reading the debug info takes memory).
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("could not start the template renderer: {e}")))?;
    let started = Instant::now();
    let stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(request.as_bytes());
        }
    });
    let stdout = reader(child.stdout.take(), OUTPUT_BUDGET + 4096);
    let stderr = reader(child.stderr.take(), 64 << 10);
    let outcome = watch(&mut child, started, &stdout.1);
    let _ = writer.join();
    let out = stdout.0.join().unwrap_or_default();
    let err = stderr.0.join().unwrap_or_default();
    let status = match outcome {
        Ok(status) => status,
        Err(exceeded) => return Err(exceeded.error(source, offset)),
    };
    if out.len() > OUTPUT_BUDGET + 4096 {
        return Err(Exceeded::Output.error(source, offset));
    }
    let err_text = String::from_utf8_lossy(&err);
    if !status.success() || out.is_empty() {
        use std::os::unix::process::ExitStatusExt;
        if err_text.contains("overflowed its stack") {
            return Err(Exceeded::Stack.error(source, offset));
        }
        if err_text.contains("memory allocation") || err_text.contains("capacity overflow") {
            return Err(Exceeded::Memory.error(source, offset));
        }
        return Err(match status.signal() {
            Some(9) | Some(24) => Exceeded::Cpu.error(source, offset),
            Some(sig) => failed(format!("the template renderer died (signal {sig})")),
            None => failed(format!(
                "the template renderer failed ({status}): {}",
                err_text.trim()
            )),
        });
    }
    let text = String::from_utf8_lossy(&out);
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

type Reader = (std::thread::JoinHandle<Vec<u8>>, std::sync::Arc<AtomicBool>);

/// Read `pipe` to its end on a thread, keeping at most `cap + 1` bytes; the flag is set when
/// more than `cap` came (the reader then stops reading).
fn reader(pipe: Option<impl Read + Send + 'static>, cap: usize) -> Reader {
    let over = std::sync::Arc::new(AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&over);
    let handle = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(pipe) = pipe {
            let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
            let _ = pipe.take(limit).read_to_end(&mut buf);
        }
        if buf.len() > cap {
            flag.store(true, Ordering::Relaxed);
        }
        buf
    });
    (handle, over)
}

/// Wait for the child, killing it when it exceeds a budget.
fn watch(
    child: &mut Child,
    started: Instant,
    output_over: &AtomicBool,
) -> Result<std::process::ExitStatus, Exceeded> {
    let pid = child.id();
    let mut pause = Duration::from_millis(1);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(status);
        }
        let exceeded = if output_over.load(Ordering::Relaxed) {
            Some(Exceeded::Output)
        } else if cpu_time(pid).is_some_and(|t| t > CPU_BUDGET) {
            Some(Exceeded::Cpu)
        } else if started.elapsed() > WALL_BUDGET {
            Some(Exceeded::Wall)
        } else {
            None
        };
        if let Some(exceeded) = exceeded {
            let _ = child.kill();
            let _ = child.wait();
            return Err(exceeded);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
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

//! Fuzzing the whole load path (issue 23): mutations of Kamal-shaped fixtures (configs and
//! secrets files), with tera, ERB, YAML, number and dotenv-substitution fragments spliced in,
//! loaded as `config/deploy.yml`, the `staging` overlay, `.kamal/secrets-common` and
//! `.kamal/secrets.staging`. No input may panic, use more than 1 s of CPU time or more than
//! 500 MB of memory. Ignored in ordinary test runs: `scripts/fuzz` runs it.
//!
//! How a run is organised:
//!
//! - the supervisor ([`the_load_path_survives_mutated_fixtures`]) starts `DRAY_FUZZ_WORKERS`
//!   (default 8) worker processes, which are this test binary running [`fuzz_worker`], each
//!   with its own seed and share of the cases, and sums up what they report;
//! - a worker runs its cases in-process, one after the other, with commands faked
//!   ([`CommandPolicy::Fake`]: backticks, `cmd()` and `$(…)` print `fake-output`, no process
//!   is started) and tera rendered by render children of the built `dray` that are reused
//!   across cases (no process start per case);
//! - per case, the worker measures its CPU time (the worker's own, from `getrusage`, plus what
//!   the render children used, from `/proc/<pid>/stat`), its wall-clock time and its memory:
//!   the worker's peak resident memory is reset before the case (`/proc/self/clear_refs`) and
//!   read after it (`VmHWM`), and the render children's peak is read the same way (they are
//!   also held to 64 MiB of data by their own budget). The worker also runs under an
//!   `RLIMIT_AS` of 4 GiB, so a runaway case dies (and is reported by the supervisor from the
//!   case files the worker wrote) instead of eating the machine.
//!
//! The time bound counts CPU time, not wall-clock time, so that a loaded machine (CI, or
//! `nice -n 19` on shared cores) does not fail a case; a case whose wall-clock time passes
//! `DRAY_FUZZ_WALL_LIMIT_S` (default 30 s) fails too (a hang that uses no CPU).
//!
//! Knobs: `DRAY_FUZZ_CPU_LIMIT_MS` and `DRAY_FUZZ_WALL_LIMIT_S` (the bounds above),
//! `DRAY_FUZZ_CASES` (default 2000), `DRAY_FUZZ_SECONDS` (stop after that many seconds,
//! whichever comes first), `DRAY_FUZZ_SEED` (reproduce a run), `DRAY_FUZZ_WORKERS`. Each
//! worker writes its figures to `progress.txt` in its directory every 50 cases.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dray::config::secrets::Secrets;
use dray::config::template::CommandPolicy;
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};

/// Fragments spliced into the config seeds: template syntax, hostile forms, YAML anchors and
/// numbers.
const FRAGMENTS: &[&str] = &[
    "{{ env(name='HOME', default='h') }}",
    "{% for i in range(end=1000) %}{{ i }}{% endfor %}",
    "{% macro f() %}{{self::f()}}{% endmacro %}{{self::f()}}",
    "{% set a = 'xx' %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a }}",
    "{{ 'zz' | int(base=99) }}",
    "{{ -9223372036854775808 % -1 }}",
    "{{ cmd(command='echo hi') }}",
    "<%= ENV['HOME'] %>",
    "<%= ENV.fetch('X', 'd') %>",
    "<%= `echo hi` %>",
    "<% 3.times do |i| %>x<% end %>",
    "{% if true %}",
    "{% endif %}",
    "{% raw %}{{ x }}{% endraw %}",
    "9223372036854775808%",
    "99999999999999999999",
    "18446744073709551616",
    "4294967296",
    "65536",
    "-1",
    "0",
    "1e309",
    "&a ",
    "*a",
    "<<: *a",
    "\n  - ",
    "\n    ",
    ": ",
    "{{",
    "}}",
    "<%",
    "%>",
];

/// Fragments spliced into the secrets seeds: dotenv syntax and substitutions.
const SECRET_FRAGMENTS: &[&str] = &[
    "$(printf x)",
    "$(echo $(echo nested))",
    "$(kamal secrets fetch --adapter 1password --account a --from V/I A B)",
    "$(kamal secrets extract A ${SECRETS})",
    "${A}",
    "${${A}}",
    "${A:-d}",
    "$A$A$A$A",
    "\nA=$A$A$A$A\n",
    "\nB=${B}${B}${B}${B}\n",
    "\\$(",
    "\\$",
    "$(",
    "${",
    ")",
    "}",
    "=",
    "'",
    "\"",
    "\\n",
    "#",
    "export ",
    "\nKEY=",
    "\n",
];

/// The largest CPU time a case may take (`DRAY_FUZZ_CPU_LIMIT_MS` overrides it: scripts/test
/// runs the debug build, several times slower, with 2 s).
const CPU_LIMIT: Duration = Duration::from_secs(1);
/// The largest peak resident memory a case may reach.
const MEMORY_LIMIT: u64 = 500 * 1000 * 1000;
/// A worker's address space: a backstop, far above [`MEMORY_LIMIT`].
const WORKER_ADDRESS_SPACE: u64 = 4 << 30;

fn fixture_files(matches: impl Fn(&Path) -> bool) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    let mut stack = vec![root.join("kamal"), root.join("realistic")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if matches(&path) {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    out.push(text);
                }
            }
        }
    }
    out.sort();
    out
}

fn config_seeds() -> Vec<String> {
    fixture_files(|p| p.extension().is_some_and(|e| e == "yml"))
}

fn secrets_seeds() -> Vec<String> {
    fixture_files(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("secrets"))
    })
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, usize),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn apply(text: &str, edits: &[Edit], fragments: &[&str]) -> String {
    let mut b = text.as_bytes().to_vec();
    for edit in edits {
        let len = b.len().max(1);
        match *edit {
            Edit::Insert(at, f) => {
                let at = at % len;
                let frag = fragments[f % fragments.len()].as_bytes();
                b.splice(at.min(b.len())..at.min(b.len()), frag.iter().copied());
            }
            Edit::Delete(at, n) => {
                let at = (at % len).min(b.len());
                let end = (at + n % 64).min(b.len());
                b.drain(at..end);
            }
            Edit::Duplicate(at, n) => {
                let at = (at % len).min(b.len());
                let end = (at + n % 256).min(b.len());
                let piece = b[at..end].to_vec();
                b.splice(end..end, piece);
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, f)| Edit::Insert(a, f)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, n)| Edit::Duplicate(a, n)),
    ]
}

/// The files of one case.
struct Case {
    base: String,
    overlay: String,
    secrets_common: String,
    secrets: String,
}

impl Case {
    fn write(&self, dir: &Path) {
        crate::support::write(&dir.join("config/deploy.yml"), &self.base);
        crate::support::write(&dir.join("config/deploy.staging.yml"), &self.overlay);
        crate::support::write(&dir.join(".kamal/secrets-common"), &self.secrets_common);
        crate::support::write(&dir.join(".kamal/secrets.staging"), &self.secrets);
    }
}

/// What one case cost.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    cpu: Duration,
    wall: Duration,
    peak_bytes: u64,
    /// Render children started for it (0 when an idle one served it).
    children_started: u64,
}

fn process_cpu() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let t = |tv: nix::sys::time::TimeVal| {
                Duration::from_secs(u64::try_from(tv.tv_sec()).unwrap_or(0))
                    + Duration::from_micros(u64::try_from(tv.tv_usec()).unwrap_or(0))
            };
            t(u.user_time()) + t(u.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}

fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Load the case's files as dray does (config, overlay, secrets), commands faked.
fn load_case(dir: &Path, case: &Case) -> Cost {
    case.write(dir);
    let opts = dray::config::LoadOptions {
        config_file: PathBuf::from("config/deploy.yml"),
        destination: Some("staging".to_string()),
        cwd: dir.to_path_buf(),
        env: BTreeMap::from([("HOME".to_string(), "/home/fuzz".to_string())]),
    };
    reset_peak_memory();
    let _ = dray::config::template::take_render_child_stats();
    let cpu_before = process_cpu();
    let started = Instant::now();
    let config = std::panic::catch_unwind(|| {
        dray::config::load_with_policy(&opts, CommandPolicy::Fake).map(|_| ())
    });
    let secrets = std::panic::catch_unwind(|| {
        Secrets::load_with_policy(
            Path::new(".kamal/secrets"),
            Some("staging"),
            dir,
            &opts.env,
            CommandPolicy::Fake,
        )
        .map(|_| ())
    });
    let wall = started.elapsed();
    let children = dray::config::template::take_render_child_stats();
    let cost = Cost {
        cpu: process_cpu().saturating_sub(cpu_before) + children.cpu,
        wall,
        peak_bytes: peak_memory().max(children.peak_rss_bytes),
        children_started: children.started,
    };
    assert!(config.is_ok(), "the config load panicked");
    assert!(secrets.is_ok(), "the secrets load panicked");
    cost
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// One worker: `DRAY_FUZZ_WORKER` set by the supervisor. Prints one `fuzz-result` line.
#[test]
#[ignore = "fuzzing: run with scripts/fuzz"]
fn fuzz_worker() {
    if std::env::var_os("DRAY_FUZZ_WORKER").is_none() {
        return;
    }
    {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_AS) {
            let _ = setrlimit(Resource::RLIMIT_AS, WORKER_ADDRESS_SPACE.min(hard), hard);
        }
    }
    dray::config::template::use_render_child_exe(PathBuf::from(env!("CARGO_BIN_EXE_dray")));
    dray::config::template::reuse_render_children(true);
    let cases = env_u64("DRAY_FUZZ_CASES").unwrap_or(1000);
    let deadline = env_u64("DRAY_FUZZ_SECONDS").map(|s| Instant::now() + Duration::from_secs(s));
    let seed = env_u64("DRAY_FUZZ_SEED").unwrap_or(0);
    let wall_limit = Duration::from_secs(env_u64("DRAY_FUZZ_WALL_LIMIT_S").unwrap_or(30));
    let cpu_limit = env_u64("DRAY_FUZZ_CPU_LIMIT_MS").map_or(CPU_LIMIT, Duration::from_millis);
    let dir = PathBuf::from(std::env::var("DRAY_FUZZ_DIR").expect("DRAY_FUZZ_DIR"));
    let configs = config_seeds();
    let secrets = secrets_seeds();
    assert!(!configs.is_empty() && !secrets.is_empty(), "no seeds");

    let strategy = (
        (0..configs.len(), 0..configs.len()),
        (0..secrets.len(), 0..secrets.len()),
        proptest::collection::vec(edit(), 0..8),
        proptest::collection::vec(edit(), 0..4),
        proptest::collection::vec(edit(), 0..4),
        proptest::collection::vec(edit(), 0..6),
    );
    let mut done: u64 = 0;
    let slowest = std::cell::Cell::new(Cost::default());
    let slowest_wall = std::cell::Cell::new(Duration::ZERO);
    let peak = std::cell::Cell::new(0u64);
    let started_children = std::cell::Cell::new(0u64);
    let mut chunk: u64 = 0;
    let started = Instant::now();
    while done < cases && deadline.is_none_or(|d| Instant::now() < d) {
        let n = (cases - done).min(50);
        let mut config = ProptestConfig::with_cases(u32::try_from(n).unwrap_or(50));
        config.failure_persistence = None;
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&chunk.to_le_bytes());
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
        let result = runner.run(&strategy, |((a, b), (s, t), ea, eb, es, et)| {
            let case = Case {
                base: apply(&configs[a], &ea, FRAGMENTS),
                overlay: apply(&configs[b], &eb, FRAGMENTS),
                secrets_common: apply(&secrets[s], &es, SECRET_FRAGMENTS),
                secrets: apply(&secrets[t], &et, SECRET_FRAGMENTS),
            };
            let cost = load_case(&dir, &case);
            let shown = || {
                format!(
                    "--- config/deploy.yml\n{}\n--- config/deploy.staging.yml\n{}\n--- .kamal/secrets-common\n{}\n--- .kamal/secrets.staging\n{}",
                    case.base, case.overlay, case.secrets_common, case.secrets
                )
            };
            prop_assert!(cost.cpu < cpu_limit, "{:?} of CPU time on:\n{}", cost.cpu, shown());
            prop_assert!(cost.wall < wall_limit, "{:?} (wall-clock) on:\n{}", cost.wall, shown());
            prop_assert!(
                cost.peak_bytes < MEMORY_LIMIT,
                "{} MB of memory on:\n{}",
                cost.peak_bytes / 1_000_000,
                shown()
            );
            if cost.cpu > slowest.get().cpu {
                slowest.set(cost);
                crate::support::write(&dir.join("slowest.txt"), &shown());
            }
            slowest_wall.set(slowest_wall.get().max(cost.wall));
            peak.set(peak.get().max(cost.peak_bytes));
            started_children.set(started_children.get() + cost.children_started);
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        done += n;
        chunk += 1;
        // Where a run stopped from outside stood: the supervisor sums these when a worker
        // gives no result.
        crate::support::write(
            &dir.join("progress.txt"),
            &format!(
                "executions={done} seconds={:.3} slowest_cpu_ms={} slowest_wall_ms={} peak_bytes={}\n",
                started.elapsed().as_secs_f64(),
                slowest.get().cpu.as_millis(),
                slowest_wall.get().as_millis(),
                peak.get()
            ),
        );
    }
    let stats = started.elapsed();
    let (slowest, slowest_wall, peak) = (slowest.get(), slowest_wall.get(), peak.get());
    println!(
        "fuzz-result executions={done} seconds={:.3} slowest_cpu_ms={} slowest_cpu_case_wall_ms={} slowest_wall_ms={} peak_bytes={peak} render_children={}",
        stats.as_secs_f64(),
        slowest.cpu.as_millis(),
        slowest.wall.as_millis(),
        slowest_wall.as_millis(),
        started_children.get(),
    );
}

/// A worker's `fuzz-result` figures.
#[derive(Debug, Default)]
struct WorkerResult {
    executions: u64,
    slowest_cpu_ms: u64,
    slowest_wall_ms: u64,
    peak_bytes: u64,
    render_children: u64,
}

fn parse_result(stdout: &str) -> Option<WorkerResult> {
    // libtest prints `test fuzz::fuzz_worker ... ` before the worker's own output.
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("fuzz-result ").map(|(_, r)| r))?;
    let field = |name: &str| -> Option<u64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))?
            .parse()
            .ok()
    };
    Some(WorkerResult {
        executions: field("executions")?,
        slowest_cpu_ms: field("slowest_cpu_ms")?,
        slowest_wall_ms: field("slowest_wall_ms")?,
        peak_bytes: field("peak_bytes")?,
        render_children: field("render_children")?,
    })
}

#[test]
#[ignore = "fuzzing: run with scripts/fuzz"]
fn the_load_path_survives_mutated_fixtures() {
    let seconds = env_u64("DRAY_FUZZ_SECONDS");
    let cases =
        env_u64("DRAY_FUZZ_CASES").unwrap_or(if seconds.is_some() { u64::MAX } else { 2000 });
    // Cases wait on render children more than they compute (a round trip per tera file, longer
    // on a loaded machine): more workers than cores keep the cores busy.
    let workers = env_u64("DRAY_FUZZ_WORKERS").unwrap_or(8).max(1);
    let seed = env_u64("DRAY_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    let exe = std::env::current_exe().expect("test binary");
    // One work directory per profile (target/<profile>/fuzz-work): a CI-length run in the
    // dev profile does not disturb a long one in the fuzz profile.
    let out = exe
        .parent()
        .and_then(Path::parent)
        .map(|profile_dir| profile_dir.join("fuzz-work"))
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz"));
    let _ = std::fs::remove_dir_all(&out);
    eprintln!(
        "fuzz: seed {seed}, {workers} workers, work files in {}",
        out.display()
    );
    let started = Instant::now();
    let children: Vec<_> = (0..workers)
        .map(|i| {
            let dir = out.join(format!("worker-{i}"));
            std::fs::create_dir_all(&dir).expect("worker dir");
            let share = cases / workers + u64::from(i < cases % workers);
            let child = Command::new(&exe)
                .args(["fuzz::fuzz_worker", "--exact", "--ignored", "--nocapture"])
                .args(["--test-threads", "1"])
                .env("DRAY_FUZZ_WORKER", i.to_string())
                .env("DRAY_FUZZ_CASES", share.to_string())
                .env("DRAY_FUZZ_SEED", (seed.wrapping_add(i)).to_string())
                .env("DRAY_FUZZ_DIR", &dir)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start a fuzz worker");
            (dir, child)
        })
        .collect();
    let mut total = WorkerResult::default();
    let mut failures = Vec::new();
    for (dir, child) in children {
        let output = child.wait_with_output().expect("fuzz worker");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        match parse_result(&stdout) {
            Some(r) if output.status.success() => {
                total.executions += r.executions;
                total.slowest_cpu_ms = total.slowest_cpu_ms.max(r.slowest_cpu_ms);
                total.slowest_wall_ms = total.slowest_wall_ms.max(r.slowest_wall_ms);
                total.peak_bytes = total.peak_bytes.max(r.peak_bytes);
                total.render_children += r.render_children;
                if r.slowest_cpu_ms == total.slowest_cpu_ms {
                    let _ = std::fs::copy(dir.join("slowest.txt"), out.join("slowest.txt"));
                }
            }
            _ => {
                // A worker that died (or failed a case) left the case it ran in its files.
                let mut files = String::new();
                for f in [
                    "config/deploy.yml",
                    "config/deploy.staging.yml",
                    ".kamal/secrets-common",
                    ".kamal/secrets.staging",
                ] {
                    let text = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
                    files.push_str(&format!("--- {f}\n{text}\n"));
                }
                let tail: String = {
                    let chars: Vec<char> = stderr.chars().collect();
                    chars[chars.len().saturating_sub(20_000)..].iter().collect()
                };
                failures.push(format!(
                    "worker in {} failed ({}):\n{stdout}\n{tail}\nlast case written:\n{files}",
                    dir.display(),
                    output.status
                ));
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fuzz: {} executions in {secs:.1} s, {:.0} per second; slowest case {} ms of CPU time \
         ({}), slowest wall-clock {} ms; peak memory of a case {} MB; {} render children started",
        total.executions,
        total.executions as f64 / secs,
        total.slowest_cpu_ms,
        out.join("slowest.txt").display(),
        total.slowest_wall_ms,
        total.peak_bytes / 1_000_000,
        total.render_children,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

//! Fuzzing the whole load path (issue 23): mutations of Kamal-shaped fixtures, with tera, ERB
//! and YAML fragments spliced in, loaded as `config/deploy.yml` plus a destination overlay.
//! No input may panic, take more than 1 s or fail without an error. Ignored in ordinary test
//! runs: `scripts/fuzz [CASES]` runs it (`DRAY_FUZZ_CASES`, default 2000).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;

/// Fragments spliced into the seeds: template syntax, hostile forms, YAML anchors and numbers.
const FRAGMENTS: &[&str] = &[
    "{{ env(name='HOME', default='h') }}",
    "{% for i in range(end=1000) %}{{ i }}{% endfor %}",
    "{% macro f() %}{{self::f()}}{% endmacro %}{{self::f()}}",
    "{% set a = 'xx' %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a }}",
    "{{ 'zz' | int(base=99) }}",
    "{{ -9223372036854775808 % -1 }}",
    "<%= ENV['HOME'] %>",
    "<%= ENV.fetch('X', 'd') %>",
    "{% if true %}",
    "{% endif %}",
    "{% raw %}{{ x }}{% endraw %}",
    "9223372036854775808%",
    "99999999999999999999",
    "-1",
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

fn seeds() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kamal");
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yml") {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    out.push(text);
                }
            }
        }
    }
    out.sort();
    out
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, usize),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut b = text.as_bytes().to_vec();
    for edit in edits {
        let len = b.len().max(1);
        match *edit {
            Edit::Insert(at, f) => {
                let at = at % len;
                let frag = FRAGMENTS[f % FRAGMENTS.len()].as_bytes();
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

fn load_once(dir: &Path, base: &str, overlay: &str) -> Duration {
    crate::support::write(&dir.join("config/deploy.yml"), base);
    crate::support::write(&dir.join("config/deploy.staging.yml"), overlay);
    let opts = dray::config::LoadOptions {
        config_file: dir.join("config/deploy.yml"),
        destination: Some("staging".to_string()),
        cwd: dir.to_path_buf(),
        env: BTreeMap::new(),
    };
    let started = Instant::now();
    let result = std::panic::catch_unwind(|| dray::config::load(&opts).map(|_| ()));
    let elapsed = started.elapsed();
    assert!(result.is_ok(), "panic on:\n{base}\n---\n{overlay}");
    elapsed
}

#[test]
#[ignore = "fuzzing: run with scripts/fuzz"]
fn the_load_path_survives_mutated_fixtures() {
    dray::config::template::use_render_child_exe(PathBuf::from(env!("CARGO_BIN_EXE_dray")));
    let cases: u32 = std::env::var("DRAY_FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2000);
    let seeds = seeds();
    assert!(!seeds.is_empty(), "no seeds");
    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let mut config = ProptestConfig::with_cases(cases);
    config.failure_persistence = None;
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let strategy = (
        0..seeds.len(),
        0..seeds.len(),
        proptest::collection::vec(edit(), 0..8),
        proptest::collection::vec(edit(), 0..4),
    );
    let result = runner.run(&strategy, |(a, b, edits_a, edits_b)| {
        let base = apply(&seeds[a], &edits_a);
        let overlay = apply(&seeds[b], &edits_b);
        let elapsed = load_once(dir.path(), &base, &overlay);
        prop_assert!(
            elapsed < Duration::from_secs(1),
            "{elapsed:?} on:\n{base}\n---\n{overlay}"
        );
        Ok(())
    });
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fuzz: {cases} executions in {secs:.1} s, {:.0} per second",
        f64::from(cases) / secs
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

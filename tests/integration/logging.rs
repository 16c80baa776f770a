//! `DRAY_LOG`: debug logging to stderr, only when it is set.

use crate::support::dray_cmd;

fn version(dray_log: Option<&str>) -> std::process::Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = dray_cmd(dir.path(), &["version"]);
    match dray_log {
        Some(v) => cmd.env("DRAY_LOG", v),
        None => cmd.env_remove("DRAY_LOG"),
    };
    cmd.output().expect("run dray")
}

#[test]
fn without_dray_log_nothing_is_logged() {
    let out = version(None);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let out = version(Some(""));
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn dray_log_debug_logs_to_stderr_only() {
    let plain = version(None);
    let out = version(Some("debug"));
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEBUG"), "{stderr}");
    assert!(stderr.contains("dray starting"), "{stderr}");
    assert_eq!(out.stdout, plain.stdout, "stdout is the same with DRAY_LOG");
    // A filter that leaves dray out logs nothing of dray's.
    let out = version(Some("warn"));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn a_bad_dray_log_is_a_warning() {
    let out = version(Some("dray=notalevel"));
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("warning: DRAY_LOG=dray=notalevel"),
        "{stderr}"
    );
}

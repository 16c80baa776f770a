//! The git queries: `HEAD`'s commit and the uncommitted paths ([`ChangedPath`]), run side by side
//! with stable, lock-free options, and the version they give (`<sha>` or
//! `<sha>_uncommitted_<16 hex>`); the performer's `git config` reads use the same runner.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::error::ReleaseError;
use super::uncommitted::{read_untracked, uncommitted_digest};

/// One uncommitted path from `git status --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChangedPath {
    /// The two status letters (`XY`), e.g. ` M`, `A `, `??`, `R `.
    pub status: String,
    /// The path, relative to the repository root (a directory ends with `/`).
    pub path: String,
    /// For a rename or copy, the original path.
    pub from: Option<String>,
}

impl fmt::Display for ChangedPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.from {
            Some(from) => write!(f, "{from} -> {}", self.path),
            None => f.write_str(&self.path),
        }
    }
}

/// The version git gives, and the uncommitted paths seen on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GitVersion {
    /// `HEAD`'s SHA, possibly with the `_uncommitted_` suffix.
    pub(super) version: String,
    /// The uncommitted paths.
    pub(super) uncommitted: Vec<ChangedPath>,
}

impl GitVersion {
    /// `HEAD`'s full SHA; with `builder_context` and a dirty tree, `<sha>_uncommitted_<16 hex>`.
    ///
    /// Runs `git rev-parse` and `git status` side by side; in the dirty `builder_context` case
    /// also `git diff` and `git ls-files` side by side.
    pub(super) fn compute(dir: &Path, builder_context: bool) -> Result<GitVersion, ReleaseError> {
        let git = Git::locate()?;
        let head = git.start(dir, &HEAD_ARGS)?;
        let status = git.start(dir, &STATUS_ARGS)?;
        let (root, sha) = parse_head(dir, head.output()?)?;
        let uncommitted =
            parse_porcelain_v1_z(&status.stdout()?).map_err(|detail| ReleaseError::GitOutput {
                command: command_line(&STATUS_ARGS),
                detail,
            })?;
        let version = if uncommitted.is_empty() || !builder_context {
            sha
        } else {
            let diff = git.start(&root, &DIFF_ARGS)?;
            let listing = git.start(&root, &UNTRACKED_ARGS)?.stdout()?;
            let mut untracked = Vec::new();
            for path in listing.split(|&b| b == 0).filter(|p| !p.is_empty()) {
                let content = read_untracked(&root.join(OsStr::from_bytes(path)))?;
                untracked.push((path.to_vec(), content));
            }
            let diff = diff.stdout()?;
            format!("{sha}_uncommitted_{}", uncommitted_digest(&diff, untracked))
        };
        Ok(GitVersion {
            version,
            uncommitted,
        })
    }
}

/// The repository root and `HEAD`'s full SHA, in one call.
const HEAD_ARGS: [&str; 4] = ["rev-parse", "--show-toplevel", "--verify", "HEAD"];

/// The uncommitted paths, repository-relative whatever the directory.
const STATUS_ARGS: [&str; 4] = ["status", "--porcelain=v1", "-z", "--untracked-files=normal"];

/// The tracked change (staged and unstaged) as bytes that do not depend on the user's diff
/// settings. Runs at the repository root, so `diff.relative` cannot narrow it.
const DIFF_ARGS: [&str; 9] = [
    "diff",
    "HEAD",
    "--binary",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-renames",
    "--src-prefix=a/",
    "--dst-prefix=b/",
];

/// Every untracked, non-ignored file of the repository (run at its root).
const UNTRACKED_ARGS: [&str; 4] = ["ls-files", "--others", "--exclude-standard", "-z"];

/// The `git` program, found with `which`.
pub(super) struct Git {
    program: PathBuf,
}

impl Git {
    pub(super) fn locate() -> Result<Git, ReleaseError> {
        which::which("git")
            .map(|program| Git { program })
            .map_err(|err| ReleaseError::GitMissing {
                reason: err.to_string(),
            })
    }

    /// `git -C <dir> <args>`, with stable (untranslated) messages and no optional locks, so a
    /// read never competes with the user's own git commands for `index.lock`.
    pub(super) fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg("-C")
            .arg(dir)
            .args(args)
            .env("LC_ALL", "C")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .stdin(Stdio::null());
        cmd
    }

    /// Starts a git command with its output captured.
    fn start<'a>(&self, dir: &Path, args: &'a [&'a str]) -> Result<Running<'a>, ReleaseError> {
        let child = self
            .command(dir, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| ReleaseError::GitFailed {
                command: command_line(args),
                dir: dir.to_owned(),
                detail: format!("cannot start {}: {err}", self.program.display()),
            })?;
        Ok(Running {
            child: Some(child),
            dir: dir.to_owned(),
            args,
        })
    }
}

/// A started git command.
struct Running<'a> {
    child: Option<Child>,
    dir: PathBuf,
    args: &'a [&'a str],
}

impl Running<'_> {
    /// Waits for it and returns everything it printed, whatever its exit status.
    fn output(mut self) -> Result<std::process::Output, ReleaseError> {
        let child = self.child.take().ok_or_else(|| ReleaseError::GitOutput {
            command: command_line(self.args),
            detail: "already collected".to_owned(),
        })?;
        child
            .wait_with_output()
            .map_err(|err| ReleaseError::GitFailed {
                command: command_line(self.args),
                dir: self.dir.clone(),
                detail: format!("cannot read its output: {err}"),
            })
    }

    /// Waits for it and returns its standard output; a non-zero exit is an error with the tail
    /// of its standard error.
    fn stdout(self) -> Result<Vec<u8>, ReleaseError> {
        let (dir, args) = (self.dir.clone(), self.args);
        let out = self.output()?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(failed(&dir, args, &out))
        }
    }
}

impl Drop for Running<'_> {
    /// Stops and reaps a read-only git command whose result is no longer needed (an earlier
    /// step failed).
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads the output of [`HEAD_ARGS`], telling "not a repository" and "no commits" apart.
fn parse_head(dir: &Path, out: std::process::Output) -> Result<(PathBuf, String), ReleaseError> {
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(if stderr.contains("not a git repository") {
            ReleaseError::NotARepo {
                dir: dir.to_owned(),
            }
        } else if stderr.contains("Needed a single revision") || stderr.contains("unknown revision")
        {
            ReleaseError::NoCommits {
                dir: dir.to_owned(),
            }
        } else {
            failed(dir, &HEAD_ARGS, &out)
        });
    }
    let unexpected = |detail: String| ReleaseError::GitOutput {
        command: command_line(&HEAD_ARGS),
        detail,
    };
    // Split the bytes, not a lossy string: the root may not be UTF-8.
    let mut lines = out.stdout.split(|&b| b == b'\n');
    let root = lines
        .next()
        .filter(|root| !root.is_empty())
        .ok_or_else(|| unexpected("no repository root".to_owned()))?;
    let sha = lines
        .next()
        .map(|sha| String::from_utf8_lossy(sha).trim().to_owned())
        .unwrap_or_default();
    let is_sha = matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_sha {
        return Err(unexpected(format!("`{sha}` is not a commit SHA")));
    }
    Ok((PathBuf::from(OsStr::from_bytes(root)), sha))
}

fn command_line(args: &[&str]) -> String {
    let mut line = "git".to_owned();
    for arg in args {
        line.push(' ');
        line.push_str(arg);
    }
    line
}

/// A `GitFailed` error with the exit status and the last lines of standard error.
fn failed(dir: &Path, args: &[&str], out: &std::process::Output) -> ReleaseError {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(3)..].join("; ");
    let status = match out.status.code() {
        Some(code) => format!("exit {code}"),
        None => "killed by a signal".to_owned(),
    };
    ReleaseError::GitFailed {
        command: command_line(args),
        dir: dir.to_owned(),
        detail: if tail.is_empty() {
            status
        } else {
            format!("{status}: {tail}")
        },
    }
}

/// Parses `git status --porcelain=v1 -z`: `XY <path>\0`, and for a rename or copy
/// `XY <new path>\0<old path>\0`.
fn parse_porcelain_v1_z(out: &[u8]) -> Result<Vec<ChangedPath>, String> {
    let mut fields = out.split(|&b| b == 0);
    let mut paths = Vec::new();
    while let Some(field) = fields.next() {
        if field.is_empty() {
            continue;
        }
        if field.len() < 4 || field[2] != b' ' {
            return Err(format!(
                "malformed entry `{}`",
                String::from_utf8_lossy(field).escape_debug()
            ));
        }
        let (x, y) = (field[0], field[1]);
        let from = if matches!(x, b'R' | b'C') || matches!(y, b'R' | b'C') {
            let from = fields
                .next()
                .filter(|f| !f.is_empty())
                .ok_or_else(|| "a rename without its original path".to_owned())?;
            Some(String::from_utf8_lossy(from).into_owned())
        } else {
            None
        };
        paths.push(ChangedPath {
            status: String::from_utf8_lossy(&field[..2]).into_owned(),
            path: String::from_utf8_lossy(&field[3..]).into_owned(),
            from,
        });
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porcelain_parsing_handles_renames_and_odd_paths() {
        let out = b" M src/a.rs\0R  new name.txt\0old name.txt\0?? dir/\0A  \xc3\xa9.txt\0";
        let paths = parse_porcelain_v1_z(out).expect("parses");
        assert_eq!(paths.len(), 4);
        assert_eq!(paths[0].status, " M");
        assert_eq!(paths[0].path, "src/a.rs");
        assert_eq!(paths[1].path, "new name.txt");
        assert_eq!(paths[1].from.as_deref(), Some("old name.txt"));
        assert_eq!(paths[1].to_string(), "old name.txt -> new name.txt");
        assert_eq!(paths[2].path, "dir/");
        assert_eq!(paths[3].path, "é.txt");
        assert!(parse_porcelain_v1_z(b"").expect("empty").is_empty());
        assert!(parse_porcelain_v1_z(b"R  only\0").is_err());
        assert!(parse_porcelain_v1_z(b"garbage\0").is_err());
    }
}

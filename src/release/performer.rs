//! Who runs the release: Kamal's `KAMAL_PERFORMER` ([`performer`], looked up while git computes
//! the version) and the deploy lock's `Locked by:` name ([`lock_performer`]).

use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::git::Git;

/// Kamal's `KAMAL_PERFORMER`: `git config user.email` (run in `dir`, trimmed, non-empty), else
/// the user name (`USER` through `env`, else `id -un`), else `unknown`.
pub fn performer(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> String {
    PerformerLookup::start(dir).finish(env)
}

/// [`performer`] in two halves, so `git config user.email` runs while the version is computed.
pub(super) struct PerformerLookup {
    child: Option<Child>,
}

impl PerformerLookup {
    pub(super) fn start(dir: &Path) -> PerformerLookup {
        let child = Git::locate().ok().and_then(|git| {
            git.command(dir, &["config", "--get", "user.email"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .ok()
        });
        PerformerLookup { child }
    }

    pub(super) fn finish(mut self, env: &dyn Fn(&str) -> Option<String>) -> String {
        let email = self
            .child
            .take()
            .and_then(|child| child.wait_with_output().ok())
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .filter(|email| !email.is_empty());
        if let Some(email) = email {
            return email;
        }
        if let Some(user) = env("USER")
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
        {
            return user;
        }
        Command::new("id")
            .arg("-un")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .filter(|user| !user.is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    }
}

impl Drop for PerformerLookup {
    /// Reaps the `git config` child when resolution failed before [`PerformerLookup::finish`].
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

/// The lock's `Locked by:` name (reference §6.1): `git config user.name` (run in `dir`, trimmed,
/// non-empty), else `Unknown`.
pub fn lock_performer(dir: &Path) -> String {
    git_config(dir, "user.name").unwrap_or_else(|| "Unknown".to_owned())
}

/// `git config <key>` in `dir`, trimmed; `None` when git is missing, fails, or the value is empty.
fn git_config(dir: &Path, key: &str) -> Option<String> {
    let git = Git::locate().ok()?;
    let out = git.command(dir, &["config", "--get", key]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let value = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!value.is_empty()).then_some(value)
}

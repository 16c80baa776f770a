//! Helpers for commands that need a shell: pipelines, `&&` chains and redirections become one
//! `sh -c '<script>'` command whose script quotes its own words once.

use crate::command::CommandSpec;
use crate::shell::quote;

/// `sh -c '<script>'` with `purpose`.
pub(crate) fn sh(purpose: impl Into<String>, script: impl Into<String>) -> CommandSpec {
    CommandSpec::new(purpose, "sh").arg("-c").arg(script)
}

/// Words quoted once each and joined with spaces, for use inside a script.
pub(crate) fn words<S: AsRef<str>>(words: &[S]) -> String {
    crate::shell::join(words.iter().map(|w| w.as_ref()))
}

/// `docker container ls --all --filter name=^<name>$ --quiet` as script text.
pub(crate) fn container_id_script(name: &str) -> String {
    format!(
        "docker container ls --all --filter {} --quiet",
        quote(&format!("name=^{name}$"))
    )
}

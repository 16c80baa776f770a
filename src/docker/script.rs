//! Helpers for commands that need a shell: pipelines, `&&` chains and redirections become one
//! `sh -c '<script>'` command whose script quotes its own words once.

use crate::command::CommandSpec;
use crate::shell::quote;

/// `sh -c '<script>'` with `purpose`.
pub(crate) fn sh(purpose: impl Into<String>, script: impl Into<String>) -> CommandSpec {
    CommandSpec::new(purpose, "sh").arg("-c").arg(script)
}

/// The script of a `sh -c <script>` command (what [`sh`] builds), to inline it in a batched
/// script instead of starting another shell; `None` for any other command.
pub(crate) fn inner(cmd: &CommandSpec) -> Option<&str> {
    match (cmd.program.as_str(), cmd.args.as_slice()) {
        ("sh", [flag, script]) if flag.as_str() == "-c" => Some(script.as_str()),
        _ => None,
    }
}

/// Words quoted once each and joined with spaces, for use inside a script.
pub(crate) fn words<S: AsRef<str>>(words: &[S]) -> String {
    crate::shell::join(words.iter().map(|w| w.as_ref()))
}

/// `command` (script text, run in its own `sh -c`), tried again while Docker answers that
/// another prune runs: up to 10 times, a second apart; its output as it printed it, its error
/// and a non-zero exit otherwise.
pub(crate) fn retry_while_busy(command: &str) -> String {
    format!(
        "n=0; while :; do \
         if out=$({command} 2>&1); then printf '%s\\n' \"$out\"; exit 0; fi; \
         case \"$out\" in *'prune operation is already running'*) ;; *) printf '%s\\n' \"$out\" >&2; exit 1 ;; esac; \
         n=$((n + 1)); [ \"$n\" -lt 10 ] || {{ printf '%s\\n' \"$out\" >&2; exit 1; }}; \
         sleep 1; done"
    )
}

/// [`retry_while_busy`] as a `{ … }` group for a batched script: the same tries in the same
/// shell (no `exit`, no nested shell), its status that of the last try.
pub(crate) fn retry_while_busy_inline(command: &str) -> String {
    format!(
        "{{ rc=0; n=0; while :; do \
         if out=$({command} 2>&1); then printf '%s\\n' \"$out\"; break; fi; \
         case \"$out\" in *'prune operation is already running'*) ;; *) printf '%s\\n' \"$out\" >&2; rc=1; break ;; esac; \
         n=$((n + 1)); [ \"$n\" -lt 10 ] || {{ printf '%s\\n' \"$out\" >&2; rc=1; break; }}; \
         sleep 1; done; [ \"$rc\" = 0 ]; }}"
    )
}

/// `docker container ls --all --filter name=^<name>$ --quiet` as script text.
pub(crate) fn container_id_script(name: &str) -> String {
    format!(
        "docker container ls --all --filter {} --quiet",
        quote(&format!("name=^{name}$"))
    )
}

//! Rendering with tera: the text given to tera (ERB tags replaced by calls to an internal function
//! returning their values, text that could form `{{` protected), the `env()`, `get_env()`, `cmd()`
//! and bounded `range()` functions, and one render on its own thread.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::context::{CommandPolicy, TemplateContext};
use super::error::TemplateError;
use super::scan::Segment;
use super::shell::run_shell;
use super::tera_error::{first_tera_offset, map_tera_error, FailedCall, Span};
use super::tera_limits::{bounded_range, check_tera_limits};

/// Name of the internal function returning the value of ERB tag `i`.
const ERB_FN: &str = "__dray_erb";

/// Where the tera functions record the call that failed.
type FailedSlot = Arc<Mutex<Option<FailedCall>>>;

/// Render the whole file with tera once, each ERB tag replaced by a call returning its value
/// (`erb_values`, in file order), on a thread with a known stack.
pub(super) fn render_tera(
    source: &str,
    segments: &[Segment<'_>],
    erb_values: Vec<String>,
    ctx: &TemplateContext,
    policy: CommandPolicy,
    stack: usize,
) -> Result<String, TemplateError> {
    check_tera_limits(source, segments)?;
    let mut text = String::with_capacity(source.len() + 64);
    let mut spans = Vec::with_capacity(segments.len() * 2);
    let mut erb_index = 0usize;
    let mut push = |text: &mut String, piece: &str, orig: usize, verbatim: bool| {
        spans.push(Span {
            tera: text.len(),
            orig,
            verbatim,
        });
        text.push_str(piece);
    };
    for segment in segments {
        match segment {
            // A text ending in `{` is protected so that it cannot form `{{` with what follows.
            Segment::Text { start, text: t } if t.ends_with('{') => {
                push(&mut text, "{% raw %}", *start, false);
                push(&mut text, t, *start, true);
                push(&mut text, "{% endraw %}", *start + t.len(), false);
            }
            Segment::Text { start, text: t } | Segment::Tera { start, text: t } => {
                push(&mut text, t, *start, true);
            }
            Segment::Erb(tag) => {
                let call = format!("{{{{ {ERB_FN}(i={erb_index}) }}}}");
                push(&mut text, &call, tag.start, false);
                erb_index += 1;
            }
        }
    }

    let failed: FailedSlot = Arc::default();
    let mut tera = tera::Tera::default();
    let env = Arc::new(ctx.env.clone());
    let env_fn = make_env_fn(Arc::clone(&env), Arc::clone(&failed));
    tera.register_function("env", env_fn.clone());
    tera.register_function("get_env", env_fn);
    tera.register_function(
        "cmd",
        make_cmd_fn(env, ctx.cwd.clone(), policy, Arc::clone(&failed)),
    );
    let erb_values = Arc::new(erb_values);
    tera.register_function(ERB_FN, move |args: &HashMap<String, tera::Value>| {
        let i = args.get("i").and_then(tera::Value::as_u64).unwrap_or(0);
        let value = usize::try_from(i)
            .ok()
            .and_then(|i| erb_values.get(i))
            .cloned()
            .unwrap_or_default();
        Ok(tera::Value::String(value))
    });

    tera.register_function("range", bounded_range);

    // On its own thread: a known stack size, whatever thread (a tokio worker) calls us.
    let rendered = std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("dray-tera".into())
            .stack_size(stack)
            .spawn_scoped(scope, || {
                catch_quietly(|| tera.render_str(&text, &tera::Context::new()))
            });
        match handle {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err("the render thread failed".to_string())),
            Err(e) => Err(format!("no thread to render on: {e}")),
        }
    });
    match rendered {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => {
            let failed = failed.lock().ok().and_then(|mut f| f.take());
            Err(map_tera_error(source, segments, &text, &spans, &e, failed))
        }
        Err(panic) => Err(TemplateError::at(
            source,
            first_tera_offset(segments),
            format!("the tera template engine failed on this file: {panic}"),
        )
        .hint("an operation tera cannot do, e.g. an integer overflow or a base outside 2..=36 in int(base=…)")),
    }
}

thread_local! {
    /// Set while [`catch_quietly`] runs on this thread: its panics print nothing.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f`, a panic in it caught and returned as its message, without the default hook
/// printing it (or a backtrace hint) to the user. Panics on other threads print as usual.
fn catch_quietly<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string())
    })
}

fn record(failed: &FailedSlot, call: FailedCall) {
    if let Ok(mut slot) = failed.lock() {
        *slot = Some(call);
    }
}

fn string_arg<'v>(
    args: &'v HashMap<String, tera::Value>,
    function: &str,
    name: &str,
) -> tera::Result<&'v str> {
    match args.get(name) {
        Some(tera::Value::String(s)) => Ok(s),
        Some(other) => Err(tera::Error::msg(format!(
            "{function}(): `{name}` must be a string, found {other}"
        ))),
        None => Err(tera::Error::msg(format!(
            "{function}(): missing argument `{name}`, write {function}({name}=\"…\")"
        ))),
    }
}

fn make_env_fn(
    env: Arc<BTreeMap<String, String>>,
    failed: FailedSlot,
) -> impl Fn(&HashMap<String, tera::Value>) -> tera::Result<tera::Value> + Clone + Send + Sync {
    move |args| {
        let name = string_arg(args, "env", "name")?;
        match (env.get(name), args.get("default")) {
            (Some(v), _) => Ok(tera::Value::String(v.clone())),
            (None, Some(default)) => Ok(default.clone()),
            (None, None) => {
                record(
                    &failed,
                    FailedCall {
                        function: "env",
                        needle: name.to_string(),
                        hint: Some(format!(
                            r#"set {name}, or give a default: {{{{ env(name="{name}", default="…") }}}}"#
                        )),
                    },
                );
                Err(tera::Error::msg(format!(
                    "environment variable `{name}` is not set"
                )))
            }
        }
    }
}

fn make_cmd_fn(
    env: Arc<BTreeMap<String, String>>,
    cwd: PathBuf,
    policy: CommandPolicy,
    failed: FailedSlot,
) -> impl Fn(&HashMap<String, tera::Value>) -> tera::Result<tera::Value> + Send + Sync {
    move |args| {
        let command = string_arg(args, "cmd", "command")?;
        match run_shell(command, &cwd, &env, policy) {
            Ok(out) => Ok(tera::Value::String(
                out.trim_end_matches(['\n', '\r']).to_string(),
            )),
            Err(failure) => {
                record(
                    &failed,
                    FailedCall {
                        function: "cmd",
                        needle: command.to_string(),
                        hint: None,
                    },
                );
                Err(tera::Error::msg(format!("command `{command}` {failure}")))
            }
        }
    }
}

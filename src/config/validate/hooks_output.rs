//! `hooks_output`: `quiet` or `verbose`, for all hooks or per hook name.

use super::context::Ctx;
use crate::config::error::{did_you_mean, ConfigError};
use crate::config::model::{HookOutputLevel, HooksOutput, HOOK_NAMES};
use crate::config::raw::RawHooksOutput;

fn level(cx: &Ctx, path: &str, value: &str) -> Result<HookOutputLevel, ConfigError> {
    match value.trim_start_matches(':') {
        "quiet" => Ok(HookOutputLevel::Quiet),
        "verbose" => Ok(HookOutputLevel::Verbose),
        other => Err(cx.err(
            path,
            format!("invalid hooks_output `{other}`, expected quiet or verbose"),
        )),
    }
}

pub(super) fn validate_hooks_output(
    cx: &Ctx,
    raw: Option<&RawHooksOutput>,
) -> Result<HooksOutput, ConfigError> {
    match raw {
        None => Ok(HooksOutput::default()),
        Some(RawHooksOutput::All(v)) => Ok(HooksOutput {
            all: Some(level(cx, "hooks_output", v)?),
            per_hook: Vec::new(),
        }),
        Some(RawHooksOutput::PerHook(map)) => {
            let mut per_hook = Vec::new();
            for (hook, value) in map.iter() {
                let path = format!("hooks_output.{hook}");
                if !HOOK_NAMES.contains(&hook.as_str()) {
                    let mut err = cx.err(&path, format!("unknown hook `{hook}`"));
                    if let Some(s) = did_you_mean(hook, HOOK_NAMES.iter().copied()) {
                        err = err.hint(format!("did you mean `{s}`?"));
                    }
                    return Err(err);
                }
                per_hook.push((hook.clone(), level(cx, &path, &value.0)?));
            }
            Ok(HooksOutput {
                all: None,
                per_hook,
            })
        }
    }
}

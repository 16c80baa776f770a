//! Helpers shared by the template tests: a context with `PATH`, and rendering that must succeed
//! or fail.

use std::collections::BTreeMap;

use super::{render, TemplateContext, TemplateError};

pub(super) fn ctx(vars: &[(&str, &str)]) -> TemplateContext {
    let mut env: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.insert("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into());
    TemplateContext {
        env,
        cwd: std::env::temp_dir(),
    }
}

pub(super) fn ok(source: &str, vars: &[(&str, &str)]) -> String {
    match render(source, &ctx(vars)) {
        Ok(out) => out,
        Err(e) => panic!("render failed: {e} (hint: {:?})", e.hint),
    }
}

pub(super) fn err(source: &str, vars: &[(&str, &str)]) -> TemplateError {
    match render(source, &ctx(vars)) {
        Ok(out) => panic!("expected an error, rendered {out:?}"),
        Err(e) => e,
    }
}

//! `env` (root, role, accessory and `env.tags.*`): clear values and secret references.

use super::context::Ctx;
use crate::config::error::ConfigError;
use crate::config::model::{Env, SecretRef};
use crate::config::raw::RawEnv;

pub(super) fn validate_env(
    cx: &Ctx,
    path: &str,
    raw: Option<&RawEnv>,
    root: bool,
) -> Result<Env, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Env::default());
    };
    if !root && !raw.tags.is_empty() {
        return Err(cx.err(
            &format!("{path}.tags"),
            "tags are only allowed in the root env",
        ));
    }
    let mut secrets = Vec::new();
    for (i, entry) in raw.secret.iter().enumerate() {
        let (name, key) = match entry.split_once(':') {
            Some((n, k)) => (n, k),
            None => (entry.as_str(), entry.as_str()),
        };
        if name.is_empty() || key.is_empty() {
            return Err(cx.err(
                &format!("{path}.secret[{i}]"),
                format!("expected NAME or NAME:SECRET_KEY, found `{entry}`"),
            ));
        }
        secrets.push(SecretRef {
            name: name.to_string(),
            key: key.to_string(),
        });
    }
    Ok(Env {
        clear: raw
            .clear
            .iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect(),
        secrets,
    })
}

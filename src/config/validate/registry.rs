//! `registry` (and an accessory's `registry`): the server and the credentials, each a value or
//! the name of one secret.

use super::context::{s, Ctx};
use crate::config::error::ConfigError;
use crate::config::model::{Credential, Registry};
use crate::config::raw::{RawRegistry, SecretOrValue};

fn credential(v: &Option<SecretOrValue>) -> Option<Credential> {
    match v {
        Some(SecretOrValue::Value(s)) => Some(Credential::Value(s.clone())),
        Some(SecretOrValue::Secret(names)) => names.first().map(|n| Credential::Secret(n.clone())),
        None => None,
    }
}

pub(super) fn validate_registry(
    cx: &Ctx,
    path: &str,
    raw: Option<&RawRegistry>,
    root: bool,
) -> Result<Registry, ConfigError> {
    let empty = RawRegistry::default();
    let raw = match raw {
        Some(raw) => raw,
        None if root => {
            return Err(ConfigError::new("missing required key `username`")
                .key(path)
                .at(cx.file_only())
                .hint("add `registry:` with `server`, `username` and `password`"))
        }
        None => &empty,
    };
    let registry = Registry {
        server: s(&raw.server),
        username: credential(&raw.username),
        password: credential(&raw.password),
    };
    for (key, value) in [("username", &raw.username), ("password", &raw.password)] {
        if let Some(SecretOrValue::Secret(names)) = value {
            if names.len() != 1 {
                return Err(cx.err(
                    &format!("{path}.{key}"),
                    "expected a string, or a list with exactly one secret name",
                ));
            }
        }
    }
    if registry.is_local() && registry.local_port().is_none() {
        return Err(cx
            .err(
                &format!("{path}.server"),
                "a local registry needs a port number",
            )
            .hint("write it as `localhost:PORT`, e.g. `localhost:5555`"));
    }
    if !registry.is_local() {
        if registry.username.is_none() {
            return Err(cx.err(path, "missing required key `username`"));
        }
        if registry.password.is_none() {
            return Err(cx.err(path, "missing required key `password`"));
        }
    }
    Ok(registry)
}

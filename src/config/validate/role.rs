//! `servers`: one role, its hosts and the settings it inherits from the root (logging, labels,
//! proxy, asset path, stop timeout), and the Docker options check roles and accessories share.

use super::context::{options, pairs, s, Ctx};
use super::env::validate_env;
use super::proxy::{merge_proxy, resolve_proxy};
use crate::config::error::ConfigError;
use crate::config::model::{Host, Logging, OptionValue, Role};
use crate::config::raw::{BoolOr, RawProxy, RawRoleSettings};

/// What a role inherits from the root of the file.
pub(super) struct RoleDefaults<'a> {
    pub(super) primary_role: &'a str,
    pub(super) logging: &'a Logging,
    pub(super) labels: &'a [(String, String)],
    pub(super) root_proxy: Option<&'a RawProxy>,
    pub(super) asset_path: Option<String>,
    pub(super) stop_timeout: Option<u64>,
    pub(super) allow_empty_roles: bool,
}

const RESTART_POLICIES: &str = "no, always, unless-stopped, on-failure or on-failure:N";

fn valid_restart(policy: &str) -> bool {
    match policy {
        "no" | "always" | "unless-stopped" | "on-failure" => true,
        p => p
            .strip_prefix("on-failure:")
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())),
    }
}

pub(super) fn check_options(
    cx: &Ctx,
    path: &str,
    options: &[(String, OptionValue)],
) -> Result<(), ConfigError> {
    for (key, value) in options {
        if key == "restart" {
            let ok = match value {
                OptionValue::Value(v) => valid_restart(v),
                // YAML 1.1 reads `restart: no` as false.
                OptionValue::Flag(false) => true,
                _ => false,
            };
            if !ok {
                return Err(cx.err(
                    &format!("{path}.options.restart"),
                    format!("invalid restart policy, expected one of {RESTART_POLICIES}"),
                ));
            }
        }
    }
    Ok(())
}

pub(super) fn validate_role(
    cx: &Ctx,
    path: &str,
    name: &str,
    raw: &RawRoleSettings,
    d: &RoleDefaults,
) -> Result<Role, ConfigError> {
    let hosts: Vec<Host> = raw
        .hosts
        .iter()
        .flatten()
        .map(|h| Host {
            name: h.host.clone(),
            tags: h.tags.clone(),
        })
        .collect();
    for (i, host) in hosts.iter().enumerate() {
        if host.name.trim().is_empty() || host.name.contains(char::is_whitespace) {
            let host_path = if raw.hosts.is_some() && path != "servers" {
                format!("{path}.hosts[{i}]")
            } else {
                format!("{path}[{i}]")
            };
            return Err(cx.err(&host_path, format!("invalid host name `{}`", host.name)));
        }
    }
    if hosts.is_empty() && !d.allow_empty_roles && name != d.primary_role {
        return Err(cx
            .err(path, format!("no servers specified for the {name} role"))
            .hint("add hosts, or set `allow_empty_roles: true`"));
    }
    let options = options(&raw.options);
    check_options(cx, path, &options)?;
    let role_labels = pairs(&raw.labels);
    for (key, _) in &role_labels {
        if ["service", "role", "destination"].contains(&key.as_str()) {
            return Err(cx.err(
                &format!("{path}.labels.{key}"),
                format!("the `{key}` label is set by dray and cannot be overridden"),
            ));
        }
    }
    let mut labels = d.labels.to_vec();
    for (k, v) in role_labels {
        match labels.iter_mut().find(|(key, _)| *key == k) {
            Some(e) => e.1 = v,
            None => labels.push((k, v)),
        }
    }
    let mut logging = d.logging.clone();
    if let Some(l) = &raw.logging {
        if let Some(driver) = s(&l.driver) {
            logging.driver = Some(driver);
        }
        for (k, v) in pairs(&l.options) {
            match logging.options.iter_mut().find(|(key, _)| *key == k) {
                Some(e) => e.1 = v,
                None => logging.options.push((k, v)),
            }
        }
    }
    let env = validate_env(cx, &format!("{path}.env"), raw.env.as_ref(), false)?;
    let is_primary = name == d.primary_role;
    let proxy_raw: Option<RawProxy> = match (&raw.proxy, is_primary) {
        (Some(BoolOr::Bool(false)), _) => None,
        (Some(BoolOr::Bool(true)), _) | (None, true) => {
            Some(d.root_proxy.cloned().unwrap_or_default())
        }
        (None, false) => None,
        (Some(BoolOr::Settings(p)), _) => Some(merge_proxy(d.root_proxy, p)),
    };
    let proxy = match &proxy_raw {
        Some(p) => Some(resolve_proxy(cx, &format!("{path}.proxy"), p)?),
        None => None,
    };
    Ok(Role {
        name: name.to_string(),
        hosts,
        cmd: s(&raw.cmd),
        options,
        logging,
        proxy,
        labels,
        env,
        asset_path: s(&raw.asset_path).or_else(|| d.asset_path.clone()),
        stop_timeout: raw.stop_timeout.or(d.stop_timeout),
        replicas: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        for ok in [
            "no",
            "always",
            "unless-stopped",
            "on-failure",
            "on-failure:3",
        ] {
            assert!(valid_restart(ok), "{ok}");
        }
        for bad in ["sometimes", "on-failure:", "on-failure:x"] {
            assert!(!valid_restart(bad), "{bad}");
        }
    }
}

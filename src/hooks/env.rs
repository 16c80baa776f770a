//! The environment of a hook, computed without running anything (the plan shows it, the engine
//! passes it): the `KAMAL_*` variables exactly as Kamal 2.12 sets them (`Kamal::Tags` plus the
//! `run_hook` details), `DRAY_RELEASE` so that a nested `dray` reuses the release (see
//! [`Release::to_env`]), and the secrets for the hooks in [`HOOKS_WITH_SECRETS`].

use serde::Serialize;

use crate::release::Release;

/// Hooks that receive every secret as an environment variable (Kamal 2.11+).
pub const HOOKS_WITH_SECRETS: &[&str] = &["pre-connect", "pre-deploy", "post-deploy"];

/// What a hook's environment is computed from.
#[derive(Debug, Clone)]
pub struct HookContext<'a> {
    /// The frozen release.
    pub release: &'a Release,
    /// `KAMAL_COMMAND`: the top-level command (`deploy`, `rollback`, `app`, …).
    pub command: &'a str,
    /// `KAMAL_SUBCOMMAND`, only when invoked as `dray <group> <sub>`.
    pub subcommand: Option<&'a str>,
    /// `KAMAL_HOSTS`: all targeted hosts, or the boot group.
    pub hosts: &'a [String],
    /// `KAMAL_ROLES`, only with `--roles`.
    pub roles: Option<&'a [String]>,
    /// `KAMAL_LOCK`: whether this run holds the deploy lock while the hook runs.
    pub lock: bool,
    /// `KAMAL_RUNTIME` seconds, `post-deploy` only.
    pub runtime: Option<u64>,
}

/// One variable of a hook's environment; secret values are marked so they can be redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookVar {
    /// The variable name.
    pub name: String,
    /// The value.
    pub value: String,
    /// Whether the value is a secret (printed as `[REDACTED]`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

/// The environment of hook `name`: `KAMAL_*` as Kamal sets them, `DRAY_RELEASE` for nested
/// runs, and the secrets for the hooks that get them.
pub fn hook_env<'s>(
    name: &str,
    ctx: &HookContext,
    secrets: impl IntoIterator<Item = (&'s str, &'s str)>,
) -> Vec<HookVar> {
    let mut vars = Vec::new();
    let mut push = |name: &str, value: String| {
        vars.push(HookVar {
            name: name.to_string(),
            value,
            secret: false,
        })
    };
    for (k, v) in ctx.release.to_env() {
        push(&k, v);
    }
    push("KAMAL_HOSTS", ctx.hosts.join(","));
    if let Some(roles) = ctx.roles {
        push("KAMAL_ROLES", roles.join(","));
    }
    push("KAMAL_LOCK", ctx.lock.to_string());
    push("KAMAL_COMMAND", ctx.command.to_string());
    if let Some(sub) = ctx.subcommand {
        push("KAMAL_SUBCOMMAND", sub.to_string());
    }
    if name == "post-deploy" {
        if let Some(runtime) = ctx.runtime {
            push("KAMAL_RUNTIME", runtime.to_string());
        }
    }
    if HOOKS_WITH_SECRETS.contains(&name) {
        for (k, v) in secrets {
            vars.push(HookVar {
                name: k.to_string(),
                value: v.to_string(),
                secret: true,
            });
        }
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release() -> Release {
        Release::new(
            "app",
            "reg/app",
            None,
            "0123456789abcdef",
            "dev@example.com",
            "2024-01-01T00:00:00Z",
        )
    }

    #[test]
    fn pre_deploy_gets_kamal_vars_and_secrets() {
        let release = release();
        let hosts = vec!["h1".to_string(), "h2".to_string()];
        let ctx = HookContext {
            release: &release,
            command: "deploy",
            subcommand: None,
            hosts: &hosts,
            roles: None,
            lock: true,
            runtime: None,
        };
        let env = hook_env("pre-deploy", &ctx, [("DB_PASSWORD", "s3cret")]);
        let get = |n: &str| env.iter().find(|v| v.name == n).map(|v| v.value.as_str());
        assert_eq!(get("KAMAL_VERSION"), Some("0123456789abcdef"));
        assert_eq!(get("KAMAL_SERVICE_VERSION"), Some("app@0123456"));
        assert_eq!(get("KAMAL_HOSTS"), Some("h1,h2"));
        assert_eq!(get("KAMAL_LOCK"), Some("true"));
        assert_eq!(get("KAMAL_COMMAND"), Some("deploy"));
        assert_eq!(get("KAMAL_SUBCOMMAND"), None);
        assert_eq!(get("KAMAL_ROLES"), None);
        assert!(env.iter().any(|v| v.name == "DB_PASSWORD" && v.secret));
        assert!(get("DRAY_RELEASE").is_some());
    }

    #[test]
    fn app_boot_hooks_get_no_secrets() {
        let release = release();
        let hosts = vec!["h1".to_string()];
        let ctx = HookContext {
            release: &release,
            command: "deploy",
            subcommand: None,
            hosts: &hosts,
            roles: None,
            lock: true,
            runtime: None,
        };
        let env = hook_env("pre-app-boot", &ctx, [("DB_PASSWORD", "s3cret")]);
        assert!(!env.iter().any(|v| v.name == "DB_PASSWORD"));
    }
}

//! `aliases`: the names a configuration may give its aliases, and [`COMMAND_NAMES`], Kamal's
//! top-level commands, which an alias may not shadow.

use super::context::Ctx;
use crate::config::error::ConfigError;

/// Kamal's top-level command names, used to refuse aliases that shadow them. The command line
/// (`src/cli`) has exactly these subcommands; a test there keeps the two in step.
pub const COMMAND_NAMES: &[&str] = &[
    "setup",
    "deploy",
    "redeploy",
    "rollback",
    "details",
    "audit",
    "config",
    "docs",
    "init",
    "remove",
    "upgrade",
    "version",
    "app",
    "build",
    "proxy",
    "accessory",
    "lock",
    "prune",
    "registry",
    "secrets",
    "server",
    "help",
];

/// Check the alias names: lowercase letters, digits, `-` and `_`, and no built-in command.
pub(super) fn validate_aliases(cx: &Ctx, aliases: &[(String, String)]) -> Result<(), ConfigError> {
    for (name, _) in aliases {
        let path = format!("aliases.{name}");
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
            || name.is_empty()
        {
            return Err(cx.err(
                &path,
                "alias name can only contain lowercase letters, numbers, dashes and underscores",
            ));
        }
        if COMMAND_NAMES.contains(&name.as_str()) {
            return Err(cx.err(
                &path,
                format!("alias `{name}` conflicts with a built-in command"),
            ));
        }
    }
    Ok(())
}

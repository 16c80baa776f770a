//! `dray docs [SECTION]`: dray's own description of each configuration section Kamal's
//! `kamal docs` lists, with an example dray accepts (`docs/config/<section>.md`).

use crate::error::{Error, Result};

/// The sections, in Kamal's order, and their text.
pub const SECTIONS: &[(&str, &str)] = &[
    (
        "configuration",
        include_str!("../../docs/config/configuration.md"),
    ),
    ("accessory", include_str!("../../docs/config/accessory.md")),
    ("alias", include_str!("../../docs/config/alias.md")),
    ("boot", include_str!("../../docs/config/boot.md")),
    ("builder", include_str!("../../docs/config/builder.md")),
    ("env", include_str!("../../docs/config/env.md")),
    ("logging", include_str!("../../docs/config/logging.md")),
    ("output", include_str!("../../docs/config/output.md")),
    ("proxy", include_str!("../../docs/config/proxy.md")),
    ("registry", include_str!("../../docs/config/registry.md")),
    ("role", include_str!("../../docs/config/role.md")),
    ("servers", include_str!("../../docs/config/servers.md")),
    ("ssh", include_str!("../../docs/config/ssh.md")),
    ("sshkit", include_str!("../../docs/config/sshkit.md")),
    ("x-dray", include_str!("../../docs/config/x-dray.md")),
];

/// The text of `section` (`None`: the whole file's), as Kamal accepts the names (any case,
/// `accessories` for `accessory`, …).
pub fn text(section: Option<&str>) -> Result<&'static str> {
    let wanted = section.unwrap_or("configuration").to_lowercase();
    let wanted = match wanted.as_str() {
        "accessories" => "accessory",
        "aliases" => "alias",
        "roles" => "role",
        "server" => "servers",
        "x_dray" | "dray" => "x-dray",
        other => other,
    };
    SECTIONS
        .iter()
        .find(|(name, _)| *name == wanted)
        .map(|(_, text)| *text)
        .ok_or_else(|| {
            let names: Vec<&str> = SECTIONS.iter().map(|(n, _)| *n).collect();
            Error::usage(format!(
                "no documentation for `{}`",
                section.unwrap_or_default()
            ))
            .with_hint(format!("the sections are: {}", names.join(", ")))
        })
}

/// Print the section.
pub fn run(section: Option<&str>) -> Result<()> {
    print!("{}", text(section)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ```yaml block of a section.
    fn example(text: &str) -> &str {
        let start = text.find("```yaml\n").map(|i| i + 8).unwrap_or(0);
        let end = text[start..].find("```").map(|i| start + i).unwrap_or(0);
        &text[start..end]
    }

    /// What an example leaves out to be a whole configuration.
    fn whole(yaml: &str) -> String {
        let has =
            |key: &str| yaml.starts_with(&format!("{key}:")) || yaml.contains(&format!("\n{key}:"));
        let mut out = String::new();
        for (key, value) in [
            ("service", "service: app\n"),
            ("image", "image: acme/app\n"),
            ("servers", "servers:\n  web:\n    - 192.0.2.1\n"),
            (
                "registry",
                "registry:\n  username: acme\n  password: secret\n",
            ),
            ("builder", "builder:\n  arch: amd64\n"),
        ] {
            if !has(key) {
                out.push_str(value);
            }
        }
        out.push_str(yaml);
        out
    }

    #[test]
    fn every_sections_example_is_a_configuration_dray_accepts() {
        for (name, text) in SECTIONS {
            let yaml = example(text);
            assert!(!yaml.trim().is_empty(), "{name} has no example");
            let yaml = whole(yaml);
            let loaded =
                std::panic::catch_unwind(|| crate::docker::test_support::config_with(&yaml, None));
            assert!(
                loaded.is_ok(),
                "the example of `{name}` does not load:\n{yaml}"
            );
        }
    }

    #[test]
    fn unknown_sections_are_refused_with_the_list() {
        let err = text(Some("nope"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("no documentation for `nope`"), "{err}");
        assert!(err.contains("configuration, accessory, alias"), "{err}");
        assert!(text(Some("Proxy")).is_ok());
        assert!(text(None).is_ok_and(|t| t.starts_with("# The configuration file")));
    }
}

//! `x-dray: replicas: { <role>: N }`: N containers of a role on each of its hosts. The role must
//! exist and N be a whole number from 1 (Kamal's one container) to
//! [`super::numbers::MAX_REPLICAS`] (checked with the other numbers, before deserialization).
//! A combination dray cannot run is refused here: several containers cannot publish one host
//! port (`options: publish`).

use crate::config::error::{did_you_mean, ConfigError};
use crate::config::model::{OptionValue, Role};
use crate::config::raw::OrderedMap;

use super::context::Ctx;

/// Set each named role's `replicas`.
pub(super) fn apply(
    cx: &Ctx,
    replicas: Option<&OrderedMap<u64>>,
    roles: &mut [Role],
) -> Result<(), ConfigError> {
    let Some(replicas) = replicas else {
        return Ok(());
    };
    for (name, n) in &replicas.0 {
        let path = format!("x-dray.replicas.{name}");
        let known: Vec<String> = roles.iter().map(|r| r.name.clone()).collect();
        let Some(role) = roles.iter_mut().find(|r| &r.name == name) else {
            let err = cx.err(&path, format!("the role `{name}` isn't defined"));
            return Err(match did_you_mean(name, known.iter().map(String::as_str)) {
                Some(s) => err.hint(format!("did you mean `{s}`? roles: {}", known.join(", "))),
                None => err.hint(format!(
                    "name one of the roles under `servers`: {}",
                    known.join(", ")
                )),
            });
        };
        let n = u32::try_from(*n).ok().filter(|n| *n >= 1).ok_or_else(|| {
            cx.err(&path, "must be a whole number of containers, at least 1")
                .hint("1 is Kamal's one container per host")
        })?;
        let publishes = role
            .options
            .iter()
            .any(|(k, v)| k == "publish" && !matches!(v, OptionValue::Flag(false)));
        if n > 1 && publishes {
            return Err(cx
                .err(
                    &path,
                    format!(
                        "{n} replicas of `{name}` cannot share the host port of `servers.{name}.options.publish`"
                    ),
                )
                .hint("serve the replicas through the proxy, or leave `replicas` at 1 for this role"));
        }
        role.replicas = n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::error::ConfigError;
    use crate::config::model::Config;

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        crate::config::load::load_str_without_commands(text, "config/deploy.yml")
    }

    const BASE: &str = "service: app\nimage: app\nregistry:\n  server: localhost:5000\nservers:\n  web:\n    - 1.1.1.1\n  workers:\n    hosts:\n      - 1.1.1.2\n    cmd: bin/work\nbuilder:\n  arch: amd64\n";

    #[test]
    fn replicas_are_set_per_role_and_default_to_one() {
        let config =
            load_text(&format!("{BASE}x-dray:\n  replicas:\n    web: 3\n")).expect("valid");
        assert_eq!(config.role("web").map(|r| r.replicas), Some(3));
        assert_eq!(config.role("workers").map(|r| r.replicas), Some(1));
        let plain = load_text(BASE).expect("valid");
        assert!(plain.roles.iter().all(|r| r.replicas == 1));
    }

    #[test]
    fn replicas_of_an_unknown_role_name_the_key_and_suggest() {
        let err = load_text(&format!("{BASE}x-dray:\n  replicas:\n    wbe: 2\n"))
            .expect_err("unknown role");
        let hint = err.hint.clone().unwrap_or_default();
        let err = err.to_string();
        assert!(err.contains("deploy.yml:16"), "{err}");
        assert!(err.contains("x-dray.replicas.wbe"), "{err}");
        assert!(hint.contains("did you mean `web`"), "{hint}");
    }

    #[test]
    fn replicas_must_be_a_whole_number_of_at_least_one() {
        for bad in ["0", "-2", "1.5", "three", "1000"] {
            let err = load_text(&format!("{BASE}x-dray:\n  replicas:\n    web: {bad}\n"))
                .expect_err(bad)
                .to_string();
            assert!(err.contains("x-dray.replicas.web"), "{bad}: {err}");
        }
    }

    #[test]
    fn replicas_that_would_share_a_published_port_are_refused() {
        let text = "service: app\nimage: app\nregistry:\n  server: localhost:5000\nbuilder:\n  arch: amd64\nservers:\n  web:\n    hosts:\n      - 1.1.1.1\n    options:\n      publish: 8080:80\nx-dray:\n  replicas:\n    web: 2\n";
        let err = load_text(text).expect_err("publish");
        assert!(err.hint.is_some());
        let err = err.to_string();
        assert!(err.contains("cannot share the host port"), "{err}");
    }
}

//! The nested-`dray` hand-down: [`Release::from_parent_env`] reads the release a parent `dray`
//! exported for its hooks, and [`ParentLookup`] says whether it applies.
//!
//! A `dray` running a hook exports [`Release::to_env`]: `DRAY_RELEASE` (the [`Release`] as JSON)
//! next to Kamal's `KAMAL_*` variables. A nested `dray` (e.g. `dray app exec …` inside a
//! `pre-deploy` hook) uses that release instead of recomputing one, but only when
//!
//! - its `service` and `destination` equal the nested run's configuration (a hook deploying
//!   another service or destination gets its own version), and
//! - `KAMAL_VERSION` in the same environment equals the release's `version`. Kamal never reads
//!   `KAMAL_VERSION`, so a hook that changed it is not silently obeyed either: the parent release
//!   is ignored, a [`Warning::ParentIgnored`] says why, and resolution goes on with git (pass
//!   `--version "$KAMAL_VERSION"` to deploy that version).
//!
//! `DRAY_RELEASE=` (empty) opts out. A child using the parent's version keeps the parent's
//! identity: `performer`, and `recorded_at`. The same holds when
//! `--version`/`VERSION` name the parent's version, which is what Kamal-style hooks
//! (`--version "$KAMAL_VERSION"`) do.

use super::identity::{Release, PARENT_RELEASE_ENV};
use super::warning::{ParentMismatch, Warning};

impl Release {
    /// The release handed down by a parent `dray`, read through `env` (see the module
    /// documentation for the rules): [`ParentLookup::Found`] only when `DRAY_RELEASE` parses, its
    /// service and destination equal `service` and `destination`, and `KAMAL_VERSION` equals its
    /// version.
    pub fn from_parent_env(
        env: &dyn Fn(&str) -> Option<String>,
        service: &str,
        destination: Option<&str>,
    ) -> ParentLookup {
        let json = match env(PARENT_RELEASE_ENV) {
            Some(json) if !json.trim().is_empty() => json,
            _ => return ParentLookup::Absent,
        };
        let ignored = |reason| ParentLookup::Ignored(Warning::ParentIgnored { reason });
        let parent: Release = match serde_json::from_str(&json) {
            Ok(parent) => parent,
            Err(err) => {
                return ignored(ParentMismatch::Unreadable {
                    error: err.to_string(),
                })
            }
        };
        if parent.service != service {
            return ignored(ParentMismatch::Service {
                parent: parent.service,
                current: service.to_owned(),
            });
        }
        if parent.destination.as_deref() != destination {
            return ignored(ParentMismatch::Destination {
                parent: parent.destination,
                current: destination.map(str::to_owned),
            });
        }
        match env("KAMAL_VERSION") {
            Some(kamal_version) if kamal_version == parent.version => ParentLookup::Found(parent),
            kamal_version => ignored(ParentMismatch::KamalVersion {
                kamal_version,
                parent_version: parent.version,
            }),
        }
    }
}

/// The result of looking for a parent `dray`'s release; see [`Release::from_parent_env`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParentLookup {
    /// No parent release (`DRAY_RELEASE` unset or empty).
    Absent,
    /// A parent release that matches this run.
    Found(Release),
    /// A parent release that does not apply, and why.
    Ignored(Warning),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::test_support::{env_of, lookup, parent_env, sample};

    #[test]
    fn parent_release_is_found_when_everything_matches() {
        let parent = sample(Some("staging"));
        let env = lookup(parent_env(&parent));
        assert_eq!(
            Release::from_parent_env(&env, "app", Some("staging")),
            ParentLookup::Found(parent)
        );
    }

    #[test]
    fn parent_release_absent_or_opted_out() {
        let none = env_of(&[]);
        assert_eq!(
            Release::from_parent_env(&none, "app", None),
            ParentLookup::Absent
        );
        let empty = env_of(&[("DRAY_RELEASE", ""), ("KAMAL_VERSION", "x")]);
        assert_eq!(
            Release::from_parent_env(&empty, "app", None),
            ParentLookup::Absent
        );
    }

    fn ignored_reason(lookup: ParentLookup) -> ParentMismatch {
        match lookup {
            ParentLookup::Ignored(Warning::ParentIgnored { reason }) => reason,
            other => panic!("expected an ignored parent, got {other:?}"),
        }
    }

    #[test]
    fn parent_release_for_another_service_or_destination_is_ignored() {
        let parent = sample(Some("staging"));
        let env = lookup(parent_env(&parent));
        let reason = ignored_reason(Release::from_parent_env(&env, "other", Some("staging")));
        assert!(matches!(reason, ParentMismatch::Service { .. }));
        assert!(reason.to_string().contains("service `app`"));
        let reason = ignored_reason(Release::from_parent_env(&env, "app", None));
        assert_eq!(
            reason.to_string(),
            "it is for destination `staging`, this run is for no destination"
        );
        let reason = ignored_reason(Release::from_parent_env(&env, "app", Some("production")));
        assert!(matches!(reason, ParentMismatch::Destination { .. }));
    }

    #[test]
    fn parent_release_is_ignored_when_kamal_version_was_changed() {
        let parent = sample(None);
        let mut vars = parent_env(&parent);
        for (k, v) in &mut vars {
            if k == "KAMAL_VERSION" {
                *v = "1.2.3".to_owned();
            }
        }
        let reason = ignored_reason(Release::from_parent_env(&lookup(vars.clone()), "app", None));
        let text = Warning::ParentIgnored {
            reason: reason.clone(),
        }
        .to_string();
        assert!(text.starts_with("ignoring the release handed down by the parent dray"));
        assert!(text.contains("KAMAL_VERSION is `1.2.3`"), "{text}");
        assert!(text.contains("--version \"$KAMAL_VERSION\""), "{text}");

        vars.retain(|(k, _)| k != "KAMAL_VERSION");
        let reason = ignored_reason(Release::from_parent_env(&lookup(vars), "app", None));
        assert!(matches!(
            reason,
            ParentMismatch::KamalVersion {
                kamal_version: None,
                ..
            }
        ));
    }

    #[test]
    fn unreadable_parent_release_is_ignored() {
        let env = env_of(&[("DRAY_RELEASE", "{not json"), ("KAMAL_VERSION", "x")]);
        let reason = ignored_reason(Release::from_parent_env(&env, "app", None));
        assert!(matches!(reason, ParentMismatch::Unreadable { .. }));
    }
}

//! [`Warning`]: what the user should know before anything runs (uncommitted changes left out of
//! the image, a parent release not used), and [`ParentMismatch`], why a parent's release was not
//! used.

use std::fmt;

use super::git::ChangedPath;
use super::identity::PARENT_RELEASE_ENV;

/// How many uncommitted paths a warning lists before summarising the rest.
const LISTED_PATHS: usize = 20;

/// Why a parent's release was not used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ParentMismatch {
    /// `DRAY_RELEASE` is not a release in JSON.
    Unreadable {
        /// The JSON error.
        error: String,
    },
    /// The parent deploys another service.
    Service {
        /// The parent's service.
        parent: String,
        /// This run's service.
        current: String,
    },
    /// The parent deploys another destination.
    Destination {
        /// The parent's destination.
        parent: Option<String>,
        /// This run's destination.
        current: Option<String>,
    },
    /// `KAMAL_VERSION` was changed or removed after the parent set it.
    KamalVersion {
        /// `KAMAL_VERSION` as found, if set.
        kamal_version: Option<String>,
        /// The parent release's version.
        parent_version: String,
    },
}

impl fmt::Display for ParentMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn dest(d: &Option<String>) -> String {
            match d {
                Some(d) => format!("destination `{d}`"),
                None => "no destination".to_owned(),
            }
        }
        match self {
            ParentMismatch::Unreadable { error } => {
                write!(f, "{PARENT_RELEASE_ENV} is not valid: {error}")
            }
            ParentMismatch::Service { parent, current } => {
                write!(
                    f,
                    "it is for service `{parent}`, this run is for `{current}`"
                )
            }
            ParentMismatch::Destination { parent, current } => write!(
                f,
                "it is for {}, this run is for {}",
                dest(parent),
                dest(current)
            ),
            ParentMismatch::KamalVersion {
                kamal_version: Some(kamal_version),
                parent_version,
            } => write!(
                f,
                "KAMAL_VERSION is `{kamal_version}` but the parent's version is \
                 `{parent_version}`; dray reads the version from --version or VERSION, not \
                 KAMAL_VERSION (pass --version \"$KAMAL_VERSION\" to use it)"
            ),
            ParentMismatch::KamalVersion {
                kamal_version: None,
                parent_version,
            } => write!(
                f,
                "KAMAL_VERSION is unset but the parent's version is `{parent_version}`"
            ),
        }
    }
}

/// Something the user should know that does not stop the run. Serialized with a `kind` tag
/// for the JSON plan; `Display` gives the human message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Warning {
    /// The tree is dirty and the default build uses a clean clone of `HEAD`: these changes will
    /// not be in the image.
    UncommittedNotInImage {
        /// The uncommitted paths.
        paths: Vec<ChangedPath>,
    },
    /// A parent `dray`'s release was found but not used.
    ParentIgnored {
        /// Why.
        reason: ParentMismatch,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::UncommittedNotInImage { paths } => {
                write!(
                    f,
                    "the build uses a clean clone of HEAD, so these uncommitted changes will not \
                     be in the image: "
                )?;
                for (i, path) in paths.iter().take(LISTED_PATHS).enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{path}")?;
                }
                if paths.len() > LISTED_PATHS {
                    write!(f, " and {} more", paths.len() - LISTED_PATHS)?;
                }
                Ok(())
            }
            Warning::ParentIgnored { reason } => {
                write!(
                    f,
                    "ignoring the release handed down by the parent dray: {reason}"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_warning_lists_paths() {
        let paths = (0..25)
            .map(|i| ChangedPath {
                status: "??".to_owned(),
                path: format!("f{i}"),
                from: None,
            })
            .collect();
        let text = Warning::UncommittedNotInImage { paths }.to_string();
        assert!(text.contains("will not be in the image: f0, f1"), "{text}");
        assert!(text.ends_with("f19 and 5 more"), "{text}");
    }

    #[test]
    fn warnings_serialize_with_a_kind() {
        let warning = Warning::ParentIgnored {
            reason: ParentMismatch::Unreadable {
                error: "eof".to_owned(),
            },
        };
        let json = serde_json::to_value(&warning).expect("serializes");
        assert_eq!(json["kind"], "parent-ignored");
        assert_eq!(json["reason"]["kind"], "unreadable");
    }
}

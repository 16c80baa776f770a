//! Version resolution: [`resolve`] computes the release once from [`ResolveInputs`] (`--version`
//! > `VERSION` > a parent's release > git), with the performer and the time, into [`Resolved`].

use std::fmt;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::error::ReleaseError;
use super::git::{ChangedPath, GitVersion};
use super::identity::{Release, VersionSource};
use super::parent::ParentLookup;
use super::performer::PerformerLookup;
use super::tag::validate_tag;
use super::warning::Warning;

/// Everything [`resolve`] reads, gathered by the caller.
pub struct ResolveInputs<'a> {
    /// `service` from the configuration.
    pub service: &'a str,
    /// `<registry.server>/<image>`, computed by the configuration.
    pub repository: &'a str,
    /// The `-d` destination.
    pub destination: Option<&'a str>,
    /// `--version`.
    pub flag_version: Option<&'a str>,
    /// `VERSION` from the environment (set but empty is an error, not "unset").
    pub env_version: Option<&'a str>,
    /// Environment lookup for `DRAY_RELEASE`, `KAMAL_VERSION` and `USER`.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Whether `builder.context` is set (build from the working tree, not a clone of `HEAD`).
    pub builder_context: bool,
    /// The project directory: git runs there, and the performer's git config is read there.
    pub project_dir: &'a Path,
    /// The time to record; `None` means now.
    pub now: Option<DateTime<Utc>>,
}

impl<'a> ResolveInputs<'a> {
    /// Inputs with no version given, no destination, the default build, the process
    /// environment and the current time.
    pub fn new(service: &'a str, repository: &'a str, project_dir: &'a Path) -> Self {
        ResolveInputs {
            service,
            repository,
            destination: None,
            flag_version: None,
            env_version: None,
            env: &process_env,
            builder_context: false,
            project_dir,
            now: None,
        }
    }
}

impl fmt::Debug for ResolveInputs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolveInputs")
            .field("service", &self.service)
            .field("repository", &self.repository)
            .field("destination", &self.destination)
            .field("flag_version", &self.flag_version)
            .field("env_version", &self.env_version)
            .field("builder_context", &self.builder_context)
            .field("project_dir", &self.project_dir)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Reads a variable from this process's environment (`None` when unset or not UTF-8).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// What [`resolve`] found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Resolved {
    /// The frozen release.
    pub release: Release,
    /// Where its version came from.
    pub source: VersionSource,
    /// The uncommitted paths, when git was asked (source [`VersionSource::Git`]) and the tree is
    /// dirty; the build stage can list them without running git again.
    pub uncommitted: Vec<ChangedPath>,
    /// Warnings to show before anything runs.
    pub warnings: Vec<Warning>,
}

/// Computes the release once: the version (`--version` > `VERSION` > parent > git), the
/// performer and the time. See the module documentation.
///
/// An explicit version is validated before git is run. Git is only run when no version was
/// given (and, for the performer, `git config` when there is no parent release to inherit).
pub fn resolve(inputs: &ResolveInputs<'_>) -> Result<Resolved, ReleaseError> {
    let invalid = |from, error| ReleaseError::InvalidVersion { from, error };
    let explicit = match (inputs.flag_version, inputs.env_version) {
        (Some(flag), _) => Some((flag, VersionSource::Flag)),
        (None, Some(env)) => Some((env, VersionSource::Env)),
        (None, None) => None,
    };
    if let Some((version, source)) = explicit {
        validate_tag(version).map_err(|error| invalid(source, error))?;
    }

    let mut warnings = Vec::new();
    let parent = match Release::from_parent_env(inputs.env, inputs.service, inputs.destination) {
        ParentLookup::Absent => None,
        ParentLookup::Found(parent) => Some(parent),
        ParentLookup::Ignored(warning) => {
            // Only worth saying when the parent would have decided the version.
            if explicit.is_none() {
                warnings.push(warning);
            }
            None
        }
    };

    // Whether the parent's identity will be kept; otherwise look the performer up now, while
    // git computes the version.
    let inherits = match (&parent, explicit) {
        (Some(parent), Some((version, _))) => parent.version == version,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let performer_lookup = (!inherits).then(|| PerformerLookup::start(inputs.project_dir));

    let mut uncommitted = Vec::new();
    let (version, source) = match (explicit, &parent) {
        (Some((version, source)), _) => (version.to_owned(), source),
        (None, Some(parent)) => {
            validate_tag(&parent.version).map_err(|error| invalid(VersionSource::Parent, error))?;
            (parent.version.clone(), VersionSource::Parent)
        }
        (None, None) => {
            let git = GitVersion::compute(inputs.project_dir, inputs.builder_context)?;
            if !git.uncommitted.is_empty() && !inputs.builder_context {
                warnings.push(Warning::UncommittedNotInImage {
                    paths: git.uncommitted.clone(),
                });
            }
            uncommitted = git.uncommitted;
            validate_tag(&git.version).map_err(|error| invalid(VersionSource::Git, error))?;
            (git.version, VersionSource::Git)
        }
    };

    let mut release = Release::new(
        inputs.service,
        inputs.repository,
        inputs.destination,
        &version,
        "",
        "",
    );
    match parent.filter(|parent| parent.version == version) {
        Some(parent) => {
            release.performer = parent.performer;
            release.recorded_at = parent.recorded_at;
        }
        None => {
            release.performer = performer_lookup
                .unwrap_or_else(|| PerformerLookup::start(inputs.project_dir))
                .finish(inputs.env);
            release.recorded_at = format_recorded_at(inputs.now.unwrap_or_else(Utc::now));
        }
    }
    Ok(Resolved {
        release,
        source,
        uncommitted,
        warnings,
    })
}

/// UTC ISO 8601 with seconds precision and `Z`, as Kamal's `Time.now.utc.iso8601`.
pub fn format_recorded_at(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Diagnostic, ExitCode};
    use crate::release::test_support::{env_of, lookup, parent_env, sample};

    #[test]
    fn recorded_at_is_iso8601_seconds_utc() {
        let time = DateTime::parse_from_rfc3339("2024-01-01T12:00:00.123+02:00")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(format_recorded_at(time), "2024-01-01T10:00:00Z");
    }

    fn inputs<'a>(dir: &'a Path, env: &'a dyn Fn(&str) -> Option<String>) -> ResolveInputs<'a> {
        ResolveInputs {
            env,
            ..ResolveInputs::new("app", "registry.example.com/org/app", dir)
        }
    }

    #[test]
    fn explicit_version_is_validated_before_git() {
        // A directory that is not a repository: the tag error must win.
        let dir = tempfile::tempdir().expect("tempdir");
        let env = env_of(&[]);
        let mut input = inputs(dir.path(), &env);
        input.flag_version = Some("1.2.3+build123");
        let err = resolve(&input).expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "invalid version `1.2.3+build123` from --version: `+` is not allowed in a Docker tag \
             (character 6)"
        );
        assert_eq!(err.exit_code(), ExitCode::Usage);
        input.flag_version = None;
        input.env_version = Some("");
        let err = resolve(&input).expect_err("empty");
        assert_eq!(
            err.to_string(),
            "invalid version from VERSION: a Docker tag cannot be empty"
        );
    }

    #[test]
    fn parent_identity_is_inherited_only_for_the_same_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let parent = sample(None);
        let env = lookup(parent_env(&parent));
        let mut input = inputs(dir.path(), &env);

        let got = resolve(&input).expect("parent");
        assert_eq!(got.source, VersionSource::Parent);
        assert_eq!(got.release, parent);

        // `--version "$KAMAL_VERSION"` (Kamal-style hook) keeps the identity.
        input.flag_version = Some(&parent.version);
        let got = resolve(&input).expect("flag");
        assert_eq!(got.source, VersionSource::Flag);
        assert_eq!(got.release, parent);

        // Another version is another release.
        input.flag_version = Some("9.9.9");
        input.now = Some(DateTime::from_timestamp(0, 0).expect("epoch"));
        let got = resolve(&input).expect("flag");
        assert_eq!(got.release.version, "9.9.9");
        assert_eq!(got.release.recorded_at, "1970-01-01T00:00:00Z");

        // Another repository keeps the version and identity.
        input.flag_version = None;
        input.repository = "other.example.com/app";
        let got = resolve(&input).expect("parent");
        assert_eq!(
            got.release.image,
            format!("other.example.com/app:{}", parent.version)
        );
        assert_eq!(got.release.recorded_at, parent.recorded_at);
    }
}

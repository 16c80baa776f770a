//! The frozen release: the version and everything derived from it, computed once per run.
//!
//! [`resolve`] is the single entry point. It picks the version, in this order:
//!
//! 1. `--version`;
//! 2. the `VERSION` environment variable;
//! 3. the release handed down by a parent `dray` whose hook started this process
//!    ([`Release::from_parent_env`]);
//! 4. git: the full `HEAD` commit, with an `_uncommitted_<16 hex>` suffix when the tree is dirty
//!    and `builder.context` is set (the build then uses the working tree, not a clone of `HEAD`).
//!
//! Whatever its source, the version must be a valid Docker tag ([`validate_tag`]).
//!
//! # The parent hand-down
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
//! identity: `performer`, `recorded_at` and (same repository only) `digest`. The same holds when
//! `--version`/`VERSION` name the parent's version, which is what Kamal-style hooks
//! (`--version "$KAMAL_VERSION"`) do.
//!
//! # The `_uncommitted_` suffix
//!
//! Kamal appends 16 *random* hex characters, so every process computes a different version (see
//! the reference, §4.3). Here the 16 hex characters are the start of a SHA-256 over the content
//! of the change (see [`uncommitted_digest`]): the same tree gives the same version in any
//! process, and any edit gives another. Nothing here is random or time-dependent except
//! `recorded_at`.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::error::{Diagnostic, ExitCode};

/// The environment variable a parent `dray` sets for its hooks: the [`Release`] as JSON.
pub const PARENT_RELEASE_ENV: &str = "DRAY_RELEASE";

/// The longest Docker tag, in characters.
pub const MAX_TAG_LEN: usize = 128;

/// How many uncommitted paths a warning lists before summarising the rest.
const LISTED_PATHS: usize = 20;

/// Where the version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionSource {
    /// `--version`.
    Flag,
    /// The `VERSION` environment variable.
    Env,
    /// A parent `dray` whose hook started this process.
    Parent,
    /// `git rev-parse HEAD` (possibly with the `_uncommitted_` suffix).
    Git,
}

impl fmt::Display for VersionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VersionSource::Flag => "--version",
            VersionSource::Env => "VERSION",
            VersionSource::Parent => "the parent dray (DRAY_RELEASE)",
            VersionSource::Git => "git",
        })
    }
}

/// A release identity computed once and handed to every stage, hook and nested `dray`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Release {
    /// `service` from the configuration.
    pub service: String,
    /// The version: the image tag, container-name suffix and `KAMAL_VERSION`.
    pub version: String,
    /// `<registry.server>/<image>` (no tag).
    pub repository: String,
    /// `<repository>:<version>`.
    pub image: String,
    /// `latest` or `latest-<destination>`.
    pub latest_tag: String,
    /// The `-d` destination.
    pub destination: Option<String>,
    /// `git config user.email`, else the user name.
    pub performer: String,
    /// When the release was computed, UTC ISO 8601 (`2024-01-01T12:00:00Z`).
    pub recorded_at: String,
    /// The pushed image digest, once known.
    pub digest: Option<String>,
}

impl Release {
    /// A release with the derived fields (`image`, `latest_tag`) filled in and no digest.
    pub fn new(
        service: &str,
        repository: &str,
        destination: Option<&str>,
        version: &str,
        performer: &str,
        recorded_at: &str,
    ) -> Release {
        Release {
            service: service.to_owned(),
            version: version.to_owned(),
            repository: repository.to_owned(),
            image: format!("{repository}:{version}"),
            latest_tag: latest_tag(destination),
            destination: destination.map(str::to_owned),
            performer: performer.to_owned(),
            recorded_at: recorded_at.to_owned(),
            digest: None,
        }
    }

    /// `<repository>:<latest_tag>`.
    pub fn latest_image(&self) -> String {
        format!("{}:{}", self.repository, self.latest_tag)
    }

    /// `KAMAL_SERVICE_VERSION` for this release; see [`service_version`].
    pub fn service_version(&self) -> String {
        service_version(&self.service, &self.version)
    }

    /// The release as one line of JSON, the value of [`PARENT_RELEASE_ENV`].
    pub fn to_json(&self) -> String {
        // Serializing a struct of strings cannot fail: there are no maps with non-string keys
        // and no custom `Serialize` implementations that could return an error.
        serde_json::to_string(self).expect("a release of plain strings always serializes")
    }

    /// The environment a parent `dray` gives its hooks for this release: `DRAY_RELEASE` and the
    /// `KAMAL_*` variables derived from the release, in Kamal's order (`KAMAL_DESTINATION` only
    /// with a destination).
    pub fn to_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (PARENT_RELEASE_ENV.to_owned(), self.to_json()),
            ("KAMAL_RECORDED_AT".to_owned(), self.recorded_at.clone()),
            ("KAMAL_PERFORMER".to_owned(), self.performer.clone()),
        ];
        if let Some(destination) = &self.destination {
            env.push(("KAMAL_DESTINATION".to_owned(), destination.clone()));
        }
        env.push(("KAMAL_VERSION".to_owned(), self.version.clone()));
        env.push(("KAMAL_SERVICE_VERSION".to_owned(), self.service_version()));
        env.push(("KAMAL_SERVICE".to_owned(), self.service.clone()));
        env
    }

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

/// `latest` without a destination, `latest-<destination>` with one.
pub fn latest_tag(destination: Option<&str>) -> String {
    match destination {
        Some(destination) => format!("latest-{destination}"),
        None => "latest".to_owned(),
    }
}

/// Kamal's `KAMAL_SERVICE_VERSION`: `<service>@` followed by the whole version if it contains
/// `_`, else by its first 7 characters.
///
/// This is Kamal's `abbreviated_version`, meant for commit SHAs. It also cuts other versions,
/// which is a Kamal quirk kept for compatibility: `v1.2.3-beta` gives `app@v1.2.3-`, and
/// `2024.01.15` gives `app@2024.01`. Characters are counted, not bytes.
pub fn service_version(service: &str, version: &str) -> String {
    if version.contains('_') {
        format!("{service}@{version}")
    } else {
        let short: String = version.chars().take(7).collect();
        format!("{service}@{short}")
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

/// One uncommitted path from `git status --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChangedPath {
    /// The two status letters (`XY`), e.g. ` M`, `A `, `??`, `R `.
    pub status: String,
    /// The path, relative to the repository root (a directory ends with `/`).
    pub path: String,
    /// For a rename or copy, the original path.
    pub from: Option<String>,
}

impl fmt::Display for ChangedPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.from {
            Some(from) => write!(f, "{from} -> {}", self.path),
            None => f.write_str(&self.path),
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
            if parent.repository == release.repository {
                release.digest = parent.digest;
            }
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

// ---------------------------------------------------------------------------------------------
// Tags

/// A version that is not a valid Docker tag, and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagError {
    /// The offending tag.
    pub tag: String,
    /// The rule it breaks.
    pub rule: TagRule,
}

/// The Docker tag rule (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`) a tag breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagRule {
    /// The tag is empty.
    Empty,
    /// The tag has more than [`MAX_TAG_LEN`] characters.
    TooLong {
        /// Its length in characters.
        len: usize,
    },
    /// The tag starts with `.` or `-`.
    Leading {
        /// The first character.
        ch: char,
    },
    /// A character outside `[A-Za-z0-9_.-]`.
    InvalidChar {
        /// The character.
        ch: char,
        /// Its position, counted in characters from 1.
        position: usize,
    },
}

impl fmt::Display for TagRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagRule::Empty => f.write_str("a Docker tag cannot be empty"),
            TagRule::TooLong { len } => write!(
                f,
                "it is {len} characters long, a Docker tag has at most {MAX_TAG_LEN}"
            ),
            TagRule::Leading { ch } => write!(
                f,
                "a Docker tag cannot start with `{ch}` (it must start with a letter, a digit or `_`)"
            ),
            TagRule::InvalidChar { ch, position } => match ch {
                '+' | '/' => write!(
                    f,
                    "`{ch}` is not allowed in a Docker tag (character {position})"
                ),
                ' ' => write!(f, "a space is not allowed in a Docker tag (character {position})"),
                _ => write!(
                    f,
                    "{} is not allowed in a Docker tag (character {position}); only letters, \
                     digits, `_`, `.` and `-` are",
                    describe_char(*ch)
                ),
            },
        }
    }
}

/// `` `@` ``, `` `é` (U+00E9) ``, `a tab`, … for error messages.
fn describe_char(ch: char) -> String {
    match ch {
        '\t' => "a tab".to_owned(),
        '\n' | '\r' => "a line break".to_owned(),
        c if c.is_ascii_graphic() => format!("`{c}`"),
        c if c.is_control() || c.is_whitespace() => format!("U+{:04X}", c as u32),
        c => format!("`{c}` (U+{:04X})", c as u32),
    }
}

impl TagError {
    /// A valid tag close to this one, for the hint: `+`, `/` and whitespace replaced by `-`.
    /// `None` when that does not give a valid tag.
    pub fn suggestion(&self) -> Option<String> {
        if !matches!(self.rule, TagRule::InvalidChar { .. }) {
            return None;
        }
        let replaced: String = self
            .tag
            .chars()
            .map(|c| match c {
                '+' | '/' => '-',
                c if c.is_whitespace() => '-',
                c => c,
            })
            .collect();
        validate_tag(&replaced).ok().map(|()| replaced)
    }

    /// The tag as shown in messages: escaped, and cut when very long.
    fn shown(&self) -> String {
        let escaped: String = self.tag.escape_debug().to_string();
        if escaped.chars().count() > 40 {
            let head: String = escaped.chars().take(32).collect();
            format!("{head}…")
        } else {
            escaped
        }
    }
}

impl fmt::Display for TagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rule {
            TagRule::Empty => write!(f, "invalid tag: {}", self.rule),
            _ => write!(f, "invalid tag `{}`: {}", self.shown(), self.rule),
        }
    }
}

impl std::error::Error for TagError {}

impl Diagnostic for TagError {
    fn hint(&self) -> Option<String> {
        match (&self.rule, self.suggestion()) {
            (TagRule::InvalidChar { ch, .. }, Some(suggestion)) if ch.is_whitespace() => {
                Some(format!("use `{suggestion}`, or remove the whitespace"))
            }
            (TagRule::InvalidChar { ch, .. }, Some(suggestion)) => {
                Some(format!("use `{suggestion}` (`{ch}` replaced by `-`)"))
            }
            _ => Some(format!(
                "a Docker tag is 1 to {MAX_TAG_LEN} letters, digits, `_`, `.` and `-`, and does \
                 not start with `.` or `-`"
            )),
        }
    }

    fn exit_code(&self) -> ExitCode {
        ExitCode::Usage
    }
}

/// Checks `tag` against Docker's tag grammar, `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
///
/// The first invalid character is reported before the leading-character and length rules.
pub fn validate_tag(tag: &str) -> Result<(), TagError> {
    let fail = |rule| {
        Err(TagError {
            tag: tag.to_owned(),
            rule,
        })
    };
    if tag.is_empty() {
        return fail(TagRule::Empty);
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if let Some((index, ch)) = tag.chars().enumerate().find(|&(_, c)| !valid(c)) {
        return fail(TagRule::InvalidChar {
            ch,
            position: index + 1,
        });
    }
    // Only ASCII from here on: bytes are characters.
    match tag.as_bytes()[0] {
        first @ (b'.' | b'-') => fail(TagRule::Leading {
            ch: char::from(first),
        }),
        _ if tag.len() > MAX_TAG_LEN => fail(TagRule::TooLong { len: tag.len() }),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Why no release could be computed.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The version (from any source) is not a valid Docker tag.
    #[error("{}", invalid_version_message(*.from, .error))]
    InvalidVersion {
        /// Where the version came from.
        from: VersionSource,
        /// The broken rule.
        error: TagError,
    },
    /// No version given and the project is not in a git repository.
    #[error(
        "no version given and {} is not in a git repository, so there is no commit to use",
        .dir.display()
    )]
    NotARepo {
        /// The project directory.
        dir: PathBuf,
    },
    /// No version given and the repository has no commit yet.
    #[error("no version given and the git repository at {} has no commits yet", .dir.display())]
    NoCommits {
        /// The project directory.
        dir: PathBuf,
    },
    /// No version given and `git` is not installed.
    #[error("no version given and git was not found in PATH ({reason})")]
    GitMissing {
        /// What `which` said.
        reason: String,
    },
    /// A git command could not be started or exited non-zero.
    #[error("`{command}` failed in {}: {detail}", .dir.display())]
    GitFailed {
        /// The command line.
        command: String,
        /// Where it ran.
        dir: PathBuf,
        /// The exit status and the tail of its standard error, or why it did not start.
        detail: String,
    },
    /// A git command printed something unexpected.
    #[error("unexpected output from `{command}`: {detail}")]
    GitOutput {
        /// The command line.
        command: String,
        /// What was wrong.
        detail: String,
    },
    /// An untracked file could not be read to derive the `_uncommitted_` suffix.
    #[error("cannot read the untracked file {} to derive the version: {source}", .path.display())]
    ReadUntracked {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

fn invalid_version_message(from: VersionSource, error: &TagError) -> String {
    match error.rule {
        TagRule::Empty => format!("invalid version from {from}: {}", error.rule),
        _ => format!(
            "invalid version `{}` from {from}: {}",
            error.shown(),
            error.rule
        ),
    }
}

impl Diagnostic for ReleaseError {
    fn hint(&self) -> Option<String> {
        const GIVE_VERSION: &str = "pass --version VERSION or set VERSION";
        match self {
            ReleaseError::InvalidVersion { error, .. } => error.hint(),
            ReleaseError::NotARepo { .. } => Some(format!(
                "{GIVE_VERSION}, or run dray inside the app's git repository"
            )),
            ReleaseError::NoCommits { .. } => Some(format!("commit first, or {GIVE_VERSION}")),
            ReleaseError::GitMissing { .. } => Some(format!("install git, or {GIVE_VERSION}")),
            ReleaseError::GitFailed { .. }
            | ReleaseError::GitOutput { .. }
            | ReleaseError::ReadUntracked { .. } => Some(GIVE_VERSION.to_owned()),
        }
    }

    fn exit_code(&self) -> ExitCode {
        match self {
            ReleaseError::InvalidVersion { .. }
            | ReleaseError::NotARepo { .. }
            | ReleaseError::NoCommits { .. }
            | ReleaseError::GitMissing { .. } => ExitCode::Usage,
            ReleaseError::GitFailed { .. }
            | ReleaseError::GitOutput { .. }
            | ReleaseError::ReadUntracked { .. } => ExitCode::Failure,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Performer

/// Kamal's `KAMAL_PERFORMER`: `git config user.email` (run in `dir`, trimmed, non-empty), else
/// the user name (`USER` through `env`, else `id -un`), else `unknown`.
pub fn performer(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> String {
    PerformerLookup::start(dir).finish(env)
}

/// [`performer`] in two halves, so `git config user.email` runs while the version is computed.
struct PerformerLookup {
    child: Option<Child>,
}

impl PerformerLookup {
    fn start(dir: &Path) -> PerformerLookup {
        let child = Git::locate().ok().and_then(|git| {
            git.command(dir, &["config", "--get", "user.email"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .ok()
        });
        PerformerLookup { child }
    }

    fn finish(mut self, env: &dyn Fn(&str) -> Option<String>) -> String {
        let email = self
            .child
            .take()
            .and_then(|child| child.wait_with_output().ok())
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .filter(|email| !email.is_empty());
        if let Some(email) = email {
            return email;
        }
        if let Some(user) = env("USER")
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
        {
            return user;
        }
        Command::new("id")
            .arg("-un")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .filter(|user| !user.is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    }
}

impl Drop for PerformerLookup {
    /// Reaps the `git config` child when resolution failed before [`PerformerLookup::finish`].
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

/// The lock's `Locked by:` name (reference §6.1): `git config user.name` (run in `dir`, trimmed,
/// non-empty), else `Unknown`.
pub fn lock_performer(dir: &Path) -> String {
    git_config(dir, "user.name").unwrap_or_else(|| "Unknown".to_owned())
}

/// `git config <key>` in `dir`, trimmed; `None` when git is missing, fails, or the value is empty.
fn git_config(dir: &Path, key: &str) -> Option<String> {
    let git = Git::locate().ok()?;
    let out = git.command(dir, &["config", "--get", key]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let value = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!value.is_empty()).then_some(value)
}

// ---------------------------------------------------------------------------------------------
// Git

/// The version git gives, and the uncommitted paths seen on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GitVersion {
    version: String,
    uncommitted: Vec<ChangedPath>,
}

impl GitVersion {
    /// `HEAD`'s full SHA; with `builder_context` and a dirty tree, `<sha>_uncommitted_<16 hex>`.
    ///
    /// Runs `git rev-parse` and `git status` side by side; in the dirty `builder_context` case
    /// also `git diff` and `git ls-files` side by side.
    fn compute(dir: &Path, builder_context: bool) -> Result<GitVersion, ReleaseError> {
        let git = Git::locate()?;
        let head = git.start(dir, &HEAD_ARGS)?;
        let status = git.start(dir, &STATUS_ARGS)?;
        let (root, sha) = parse_head(dir, head.output()?)?;
        let uncommitted =
            parse_porcelain_v1_z(&status.stdout()?).map_err(|detail| ReleaseError::GitOutput {
                command: command_line(&STATUS_ARGS),
                detail,
            })?;
        let version = if uncommitted.is_empty() || !builder_context {
            sha
        } else {
            let diff = git.start(&root, &DIFF_ARGS)?;
            let listing = git.start(&root, &UNTRACKED_ARGS)?.stdout()?;
            let mut untracked = Vec::new();
            for path in listing.split(|&b| b == 0).filter(|p| !p.is_empty()) {
                let content = read_untracked(&root.join(OsStr::from_bytes(path)))?;
                untracked.push((path.to_vec(), content));
            }
            let diff = diff.stdout()?;
            format!("{sha}_uncommitted_{}", uncommitted_digest(&diff, untracked))
        };
        Ok(GitVersion {
            version,
            uncommitted,
        })
    }
}

/// The repository root and `HEAD`'s full SHA, in one call.
const HEAD_ARGS: [&str; 4] = ["rev-parse", "--show-toplevel", "--verify", "HEAD"];

/// The uncommitted paths, repository-relative whatever the directory.
const STATUS_ARGS: [&str; 4] = ["status", "--porcelain=v1", "-z", "--untracked-files=normal"];

/// The tracked change (staged and unstaged) as bytes that do not depend on the user's diff
/// settings. Runs at the repository root, so `diff.relative` cannot narrow it.
const DIFF_ARGS: [&str; 9] = [
    "diff",
    "HEAD",
    "--binary",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-renames",
    "--src-prefix=a/",
    "--dst-prefix=b/",
];

/// Every untracked, non-ignored file of the repository (run at its root).
const UNTRACKED_ARGS: [&str; 4] = ["ls-files", "--others", "--exclude-standard", "-z"];

/// The `git` program, found with `which`.
struct Git {
    program: PathBuf,
}

impl Git {
    fn locate() -> Result<Git, ReleaseError> {
        which::which("git")
            .map(|program| Git { program })
            .map_err(|err| ReleaseError::GitMissing {
                reason: err.to_string(),
            })
    }

    /// `git -C <dir> <args>`, with stable (untranslated) messages and no optional locks, so a
    /// read never competes with the user's own git commands for `index.lock`.
    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg("-C")
            .arg(dir)
            .args(args)
            .env("LC_ALL", "C")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .stdin(Stdio::null());
        cmd
    }

    /// Starts a git command with its output captured.
    fn start<'a>(&self, dir: &Path, args: &'a [&'a str]) -> Result<Running<'a>, ReleaseError> {
        let child = self
            .command(dir, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| ReleaseError::GitFailed {
                command: command_line(args),
                dir: dir.to_owned(),
                detail: format!("cannot start {}: {err}", self.program.display()),
            })?;
        Ok(Running {
            child: Some(child),
            dir: dir.to_owned(),
            args,
        })
    }
}

/// A started git command.
struct Running<'a> {
    child: Option<Child>,
    dir: PathBuf,
    args: &'a [&'a str],
}

impl Running<'_> {
    /// Waits for it and returns everything it printed, whatever its exit status.
    fn output(mut self) -> Result<std::process::Output, ReleaseError> {
        let child = self.child.take().ok_or_else(|| ReleaseError::GitOutput {
            command: command_line(self.args),
            detail: "already collected".to_owned(),
        })?;
        child
            .wait_with_output()
            .map_err(|err| ReleaseError::GitFailed {
                command: command_line(self.args),
                dir: self.dir.clone(),
                detail: format!("cannot read its output: {err}"),
            })
    }

    /// Waits for it and returns its standard output; a non-zero exit is an error with the tail
    /// of its standard error.
    fn stdout(self) -> Result<Vec<u8>, ReleaseError> {
        let (dir, args) = (self.dir.clone(), self.args);
        let out = self.output()?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(failed(&dir, args, &out))
        }
    }
}

impl Drop for Running<'_> {
    /// Stops and reaps a read-only git command whose result is no longer needed (an earlier
    /// step failed).
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads the output of [`HEAD_ARGS`], telling "not a repository" and "no commits" apart.
fn parse_head(dir: &Path, out: std::process::Output) -> Result<(PathBuf, String), ReleaseError> {
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(if stderr.contains("not a git repository") {
            ReleaseError::NotARepo {
                dir: dir.to_owned(),
            }
        } else if stderr.contains("Needed a single revision") || stderr.contains("unknown revision")
        {
            ReleaseError::NoCommits {
                dir: dir.to_owned(),
            }
        } else {
            failed(dir, &HEAD_ARGS, &out)
        });
    }
    let unexpected = |detail: String| ReleaseError::GitOutput {
        command: command_line(&HEAD_ARGS),
        detail,
    };
    // Split the bytes, not a lossy string: the root may not be UTF-8.
    let mut lines = out.stdout.split(|&b| b == b'\n');
    let root = lines
        .next()
        .filter(|root| !root.is_empty())
        .ok_or_else(|| unexpected("no repository root".to_owned()))?;
    let sha = lines
        .next()
        .map(|sha| String::from_utf8_lossy(sha).trim().to_owned())
        .unwrap_or_default();
    let is_sha = matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_sha {
        return Err(unexpected(format!("`{sha}` is not a commit SHA")));
    }
    Ok((PathBuf::from(OsStr::from_bytes(root)), sha))
}

fn command_line(args: &[&str]) -> String {
    let mut line = "git".to_owned();
    for arg in args {
        line.push(' ');
        line.push_str(arg);
    }
    line
}

/// A `GitFailed` error with the exit status and the last lines of standard error.
fn failed(dir: &Path, args: &[&str], out: &std::process::Output) -> ReleaseError {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(3)..].join("; ");
    let status = match out.status.code() {
        Some(code) => format!("exit {code}"),
        None => "killed by a signal".to_owned(),
    };
    ReleaseError::GitFailed {
        command: command_line(args),
        dir: dir.to_owned(),
        detail: if tail.is_empty() {
            status
        } else {
            format!("{status}: {tail}")
        },
    }
}

/// Parses `git status --porcelain=v1 -z`: `XY <path>\0`, and for a rename or copy
/// `XY <new path>\0<old path>\0`.
fn parse_porcelain_v1_z(out: &[u8]) -> Result<Vec<ChangedPath>, String> {
    let mut fields = out.split(|&b| b == 0);
    let mut paths = Vec::new();
    while let Some(field) = fields.next() {
        if field.is_empty() {
            continue;
        }
        if field.len() < 4 || field[2] != b' ' {
            return Err(format!(
                "malformed entry `{}`",
                String::from_utf8_lossy(field).escape_debug()
            ));
        }
        let (x, y) = (field[0], field[1]);
        let from = if matches!(x, b'R' | b'C') || matches!(y, b'R' | b'C') {
            let from = fields
                .next()
                .filter(|f| !f.is_empty())
                .ok_or_else(|| "a rename without its original path".to_owned())?;
            Some(String::from_utf8_lossy(from).into_owned())
        } else {
            None
        };
        paths.push(ChangedPath {
            status: String::from_utf8_lossy(&field[..2]).into_owned(),
            path: String::from_utf8_lossy(&field[3..]).into_owned(),
            from,
        });
    }
    Ok(paths)
}

/// What an untracked path holds, as far as the `_uncommitted_` digest is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UntrackedContent {
    /// A regular file: the SHA-256 of its bytes.
    File([u8; 32]),
    /// A symbolic link: its target.
    Symlink(Vec<u8>),
    /// A directory (git lists a nested repository as `dir/`).
    Directory,
    /// Gone between listing and reading.
    Missing,
}

impl UntrackedContent {
    /// The content of a regular file given as bytes.
    pub fn file(bytes: &[u8]) -> UntrackedContent {
        UntrackedContent::File(Sha256::digest(bytes).into())
    }
}

/// Reads one untracked path without following symbolic links; regular files are streamed into
/// the hash, so large files are not held in memory.
fn read_untracked(path: &Path) -> Result<UntrackedContent, ReleaseError> {
    let read_error = |source| ReleaseError::ReadUntracked {
        path: path.to_owned(),
        source,
    };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(UntrackedContent::Missing),
        Err(err) => return Err(read_error(err)),
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).map_err(read_error)?;
        Ok(UntrackedContent::Symlink(
            target.as_os_str().as_bytes().to_vec(),
        ))
    } else if meta.is_dir() {
        Ok(UntrackedContent::Directory)
    } else {
        let mut file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Ok(UntrackedContent::Missing)
            }
            Err(err) => return Err(read_error(err)),
        };
        let mut hasher = Sha256::new();
        io::copy(&mut file, &mut hasher).map_err(read_error)?;
        Ok(UntrackedContent::File(hasher.finalize().into()))
    }
}

/// The 16 hex characters of the `_uncommitted_` suffix: the start of a SHA-256 over
///
/// - a format label (`dray-uncommitted-v1`), so a future change of the inputs cannot collide;
/// - the tracked change, `git diff HEAD --binary` (staged and unstaged), length-prefixed;
/// - the number of untracked, non-ignored paths, then for each, sorted by its bytes: the
///   length-prefixed path (relative to the repository root) and a kind byte followed by the
///   content's SHA-256 (file), the length-prefixed target (symbolic link) or nothing
///   (directory, missing).
///
/// Lengths are 8-byte little-endian. The result depends on nothing but these bytes.
pub fn uncommitted_digest(diff: &[u8], mut untracked: Vec<(Vec<u8>, UntrackedContent)>) -> String {
    fn framed(hasher: &mut Sha256, bytes: &[u8]) {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    untracked.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hasher = Sha256::new();
    framed(&mut hasher, b"dray-uncommitted-v1");
    framed(&mut hasher, diff);
    hasher.update((untracked.len() as u64).to_le_bytes());
    for (path, content) in &untracked {
        framed(&mut hasher, path);
        match content {
            UntrackedContent::File(digest) => {
                hasher.update([0]);
                hasher.update(digest);
            }
            UntrackedContent::Symlink(target) => {
                hasher.update([1]);
                framed(&mut hasher, target);
            }
            UntrackedContent::Directory => hasher.update([2]),
            UntrackedContent::Missing => hasher.update([3]),
        }
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn sample(destination: Option<&str>) -> Release {
        Release::new(
            "app",
            "registry.example.com/org/app",
            destination,
            "0123456789abcdef0123456789abcdef01234567",
            "dev@example.com",
            "2024-01-01T12:00:00Z",
        )
    }

    #[test]
    fn tag_rules() {
        let long = "a".repeat(129);
        let max = "a".repeat(128);
        let ok = [
            "1.2.3",
            "_x",
            "v1.2.3-beta",
            "abc_uncommitted_0123",
            max.as_str(),
            "A",
        ];
        for tag in ok {
            assert_eq!(validate_tag(tag), Ok(()), "{tag}");
        }
        let cases: &[(&str, TagRule)] = &[
            ("", TagRule::Empty),
            (&long, TagRule::TooLong { len: 129 }),
            (".x", TagRule::Leading { ch: '.' }),
            ("-x", TagRule::Leading { ch: '-' }),
            (
                "1.2.3+build123",
                TagRule::InvalidChar {
                    ch: '+',
                    position: 6,
                },
            ),
            (
                "a/b",
                TagRule::InvalidChar {
                    ch: '/',
                    position: 2,
                },
            ),
            (
                "a b",
                TagRule::InvalidChar {
                    ch: ' ',
                    position: 2,
                },
            ),
            (
                "a@b",
                TagRule::InvalidChar {
                    ch: '@',
                    position: 2,
                },
            ),
            (
                "éa:",
                TagRule::InvalidChar {
                    ch: 'é',
                    position: 1,
                },
            ),
            (
                "ab:",
                TagRule::InvalidChar {
                    ch: ':',
                    position: 3,
                },
            ),
        ];
        for (tag, rule) in cases {
            let err = validate_tag(tag).expect_err(tag);
            assert_eq!(&err.rule, rule, "{tag}");
        }
    }

    #[test]
    fn tag_messages_name_the_rule() {
        let message = |tag: &str| validate_tag(tag).expect_err(tag).to_string();
        assert_eq!(
            message("1.2.3+build123"),
            "invalid tag `1.2.3+build123`: `+` is not allowed in a Docker tag (character 6)"
        );
        assert_eq!(message(""), "invalid tag: a Docker tag cannot be empty");
        assert!(message(&"a".repeat(129)).contains("129 characters long"));
        assert!(message(&"a".repeat(129)).contains("at most 128"));
        assert!(message("-x").contains("cannot start with `-`"));
        assert!(message("a/b").contains("`/` is not allowed"));
        assert!(message("a b").contains("a space is not allowed"));
        assert!(message("a\tb").contains("a tab is not allowed"));
        assert!(message("aé").contains("`é` (U+00E9) is not allowed"));
        assert!(message("a@b").contains("only letters, digits"));
    }

    #[test]
    fn plus_suggests_a_dash() {
        let err = validate_tag("1.2.3+build123").expect_err("invalid");
        assert_eq!(err.suggestion().as_deref(), Some("1.2.3-build123"));
        let hint = err.hint().unwrap_or_default();
        assert!(hint.contains("`1.2.3-build123`"), "{hint}");
        assert_eq!(err.exit_code(), ExitCode::Usage);
        let slash = validate_tag("feature/x").expect_err("invalid");
        assert_eq!(slash.suggestion().as_deref(), Some("feature-x"));
        // No suggestion when replacing would not give a valid tag.
        assert_eq!(validate_tag("+x").expect_err("invalid").suggestion(), None);
        assert_eq!(
            validate_tag("a+b@c").expect_err("invalid").suggestion(),
            None
        );
    }

    #[test]
    fn tag_error_converts_to_usage_error() {
        fn check() -> crate::error::Result<()> {
            validate_tag("1.2.3+build123")?;
            Ok(())
        }
        let err = check().expect_err("invalid");
        assert_eq!(err.exit, ExitCode::Usage);
        assert!(err.message.contains("`+` is not allowed in a Docker tag"));
        assert!(err.hint.unwrap_or_default().contains("1.2.3-build123"));
    }

    #[test]
    fn service_version_abbreviates_like_kamal() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(service_version("app", sha), "app@0123456");
        // Kamal's quirk, kept: any version without `_` is cut to 7 characters.
        assert_eq!(service_version("app", "v1.2.3-beta"), "app@v1.2.3-");
        assert_eq!(service_version("app", "1.2"), "app@1.2");
        let dirty = format!("{sha}_uncommitted_0011223344556677");
        assert_eq!(service_version("app", &dirty), format!("app@{dirty}"));
        // Characters, not bytes.
        assert_eq!(service_version("app", "ééééééééé"), "app@ééééééé");
    }

    #[test]
    fn release_derives_image_and_latest_tag() {
        let r = sample(None);
        assert_eq!(
            r.image,
            "registry.example.com/org/app:0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(r.latest_tag, "latest");
        assert_eq!(r.latest_image(), "registry.example.com/org/app:latest");
        assert_eq!(sample(Some("staging")).latest_tag, "latest-staging");
    }

    #[test]
    fn to_env_exports_release_and_kamal_variables() {
        let r = sample(Some("staging"));
        let env = r.to_env();
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "DRAY_RELEASE",
                "KAMAL_RECORDED_AT",
                "KAMAL_PERFORMER",
                "KAMAL_DESTINATION",
                "KAMAL_VERSION",
                "KAMAL_SERVICE_VERSION",
                "KAMAL_SERVICE"
            ]
        );
        let get = |name: &str| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(get("KAMAL_SERVICE_VERSION"), "app@0123456");
        assert_eq!(get("KAMAL_VERSION"), r.version);
        let back: Release = serde_json::from_str(&get("DRAY_RELEASE")).expect("json");
        assert_eq!(back, r);
        assert!(!sample(None)
            .to_env()
            .iter()
            .any(|(k, _)| k == "KAMAL_DESTINATION"));
    }

    fn parent_env(r: &Release) -> Vec<(String, String)> {
        r.to_env()
    }

    fn lookup(vars: Vec<(String, String)>) -> impl Fn(&str) -> Option<String> {
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

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

    #[test]
    fn digest_is_deterministic_and_order_independent() {
        let a = (b"a.txt".to_vec(), UntrackedContent::file(b"one"));
        let b = (b"b.txt".to_vec(), UntrackedContent::file(b"two"));
        let first = uncommitted_digest(b"diff", vec![a.clone(), b.clone()]);
        assert_eq!(first.len(), 16);
        assert!(first
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(
            first,
            uncommitted_digest(b"diff", vec![b.clone(), a.clone()])
        );
        // Every input matters.
        assert_ne!(
            first,
            uncommitted_digest(b"diff2", vec![a.clone(), b.clone()])
        );
        assert_ne!(first, uncommitted_digest(b"diff", vec![a.clone()]));
        let b_edited = (b"b.txt".to_vec(), UntrackedContent::file(b"two!"));
        assert_ne!(
            first,
            uncommitted_digest(b"diff", vec![a.clone(), b_edited])
        );
        let b_moved = (b"c.txt".to_vec(), UntrackedContent::file(b"two"));
        assert_ne!(first, uncommitted_digest(b"diff", vec![a, b_moved]));
        // Framing: moving bytes between the path and the diff changes the digest.
        let x = (b"ab".to_vec(), UntrackedContent::Directory);
        let y = (b"b".to_vec(), UntrackedContent::Directory);
        assert_ne!(
            uncommitted_digest(b"", vec![x]),
            uncommitted_digest(b"a", vec![y])
        );
        // A symlink is not a file with the same bytes.
        assert_ne!(
            uncommitted_digest(
                b"",
                vec![(b"l".to_vec(), UntrackedContent::Symlink(b"t".to_vec()))]
            ),
            uncommitted_digest(b"", vec![(b"l".to_vec(), UntrackedContent::file(b"t"))])
        );
    }

    #[test]
    fn porcelain_parsing_handles_renames_and_odd_paths() {
        let out = b" M src/a.rs\0R  new name.txt\0old name.txt\0?? dir/\0A  \xc3\xa9.txt\0";
        let paths = parse_porcelain_v1_z(out).expect("parses");
        assert_eq!(paths.len(), 4);
        assert_eq!(paths[0].status, " M");
        assert_eq!(paths[0].path, "src/a.rs");
        assert_eq!(paths[1].path, "new name.txt");
        assert_eq!(paths[1].from.as_deref(), Some("old name.txt"));
        assert_eq!(paths[1].to_string(), "old name.txt -> new name.txt");
        assert_eq!(paths[2].path, "dir/");
        assert_eq!(paths[3].path, "é.txt");
        assert!(parse_porcelain_v1_z(b"").expect("empty").is_empty());
        assert!(parse_porcelain_v1_z(b"R  only\0").is_err());
        assert!(parse_porcelain_v1_z(b"garbage\0").is_err());
    }

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
        let mut parent = sample(None);
        parent.digest = Some("sha256:abc".to_owned());
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
        assert_eq!(got.release.digest, None);

        // Another repository keeps the version and identity but not the digest.
        input.flag_version = None;
        input.repository = "other.example.com/app";
        let got = resolve(&input).expect("parent");
        assert_eq!(
            got.release.image,
            format!("other.example.com/app:{}", parent.version)
        );
        assert_eq!(got.release.recorded_at, parent.recorded_at);
        assert_eq!(got.release.digest, None);
    }
}

//! The frozen release: the version and everything derived from it, computed once per run.
//!
//! OWNER: release helper. Interface only until implemented.

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

/// Everything version resolution reads, gathered by the caller (no hidden environment reads).
#[derive(Debug, Clone, Default)]
pub struct VersionInputs<'a> {
    /// `--version`.
    pub flag: Option<&'a str>,
    /// `VERSION` from the environment.
    pub env_version: Option<&'a str>,
    /// The release handed down by a parent `dray` (see [`Release::from_parent_env`]).
    pub parent: Option<&'a Release>,
    /// Whether `builder.context` is set (build from the working tree, not a clone of HEAD).
    pub builder_context: bool,
}

//! [`Release`], the frozen identity of one run (service, version, image, performer,
//! time), with [`VersionSource`], where its version came from, and what derives from the
//! version alone: the `latest` tag and Kamal's `KAMAL_SERVICE_VERSION`. A release exports itself
//! as the environment of a hook ([`Release::to_env`], with [`PARENT_RELEASE_ENV`]).

use std::fmt;

/// The environment variable a parent `dray` sets for its hooks: the [`Release`] as JSON.
pub const PARENT_RELEASE_ENV: &str = "DRAY_RELEASE";

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
}

impl Release {
    /// A release with the derived fields (`image`, `latest_tag`) filled in.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::test_support::sample;

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
}

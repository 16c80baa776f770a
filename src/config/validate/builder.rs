//! `builder`: architectures, local or remote builds, buildpacks and the cache.

use super::context::{pairs, s, strings, Ctx};
use crate::config::error::ConfigError;
use crate::config::model::Builder;
use crate::config::raw::RawBuilder;

pub(super) fn validate_builder(cx: &Ctx, raw: Option<&RawBuilder>) -> Result<Builder, ConfigError> {
    let Some(raw) = raw else {
        return Err(ConfigError::new("missing required key `builder`")
            .at(cx.file_only())
            .hint("add `builder:` with `arch: amd64` (or arm64)"));
    };
    let arch: Vec<String> = raw
        .arch
        .iter()
        .flat_map(|a| a.0.iter())
        // `linux/amd64` is the platform of `amd64`: Kamal adds the `linux/` itself.
        .map(|a| a.0.strip_prefix("linux/").unwrap_or(&a.0).to_string())
        .collect();
    if arch.is_empty() {
        return Err(cx
            .err("builder", "builder arch not set")
            .hint("add `arch: amd64` (or arm64) under `builder:`"));
    }
    for (i, a) in arch.iter().enumerate() {
        if a != "amd64" && a != "arm64" {
            let path = if raw.arch.as_ref().is_some_and(|a| a.0.len() > 1) {
                format!("builder.arch[{i}]")
            } else {
                "builder.arch".to_string()
            };
            return Err(cx.err(
                &path,
                format!("unsupported arch `{a}`, expected amd64 or arm64"),
            ));
        }
    }
    let local = raw.local.unwrap_or(true);
    let remote = s(&raw.remote);
    if !local && remote.is_none() {
        return Err(cx.err(
            "builder.local",
            "cannot disable local builds, no remote is set",
        ));
    }
    if raw.pack.is_some() && arch.len() > 1 {
        return Err(cx.err(
            "builder.pack",
            "buildpacks only support building for one arch",
        ));
    }
    if let Some(kind) = raw.cache.as_ref().and_then(|c| s(&c.kind)) {
        if kind != "gha" && kind != "registry" {
            return Err(cx.err(
                "builder.cache.type",
                format!("invalid cache type: {kind}, expected gha or registry"),
            ));
        }
    }
    Ok(Builder {
        arch,
        remote,
        local,
        pack_builder: raw.pack.as_ref().and_then(|p| s(&p.builder)),
        pack_buildpacks: raw
            .pack
            .as_ref()
            .map(|p| strings(&p.buildpacks))
            .unwrap_or_default(),
        cache_type: raw.cache.as_ref().and_then(|c| s(&c.kind)),
        cache_options: raw.cache.as_ref().and_then(|c| s(&c.options)),
        cache_image: raw.cache.as_ref().and_then(|c| s(&c.image)),
        context: s(&raw.context),
        dockerfile: s(&raw.dockerfile).unwrap_or_else(|| "Dockerfile".into()),
        target: s(&raw.target),
        args: pairs(&raw.args),
        secrets: strings(&raw.secrets),
        ssh: s(&raw.ssh),
        driver: s(&raw.driver).unwrap_or_else(|| "docker-container".into()),
        provenance: s(&raw.provenance),
        sbom: s(&raw.sbom),
    })
}

//! `accessories`: one accessory, its hosts (by host, role or tag), registry, env, files,
//! directories and proxy.

use super::context::{options, pairs, s, strings, Ctx};
use super::env::validate_env;
use super::proxy::resolve_proxy;
use super::registry::validate_registry;
use super::role::check_options;
use crate::config::error::ConfigError;
use crate::config::model::{Accessory, FileSpec, Logging, Role};
use crate::config::raw::{RawAccessory, RawFileSpec, RawRegistry};

fn file_spec(spec: &RawFileSpec) -> Option<FileSpec> {
    match spec {
        RawFileSpec::Short(text) => {
            let mut parts = text.splitn(3, ':');
            let local = parts.next()?.to_string();
            let remote = parts.next()?.to_string();
            Some(FileSpec {
                local,
                remote,
                mode: None,
                owner: None,
                options: parts.next().map(str::to_string),
            })
        }
        RawFileSpec::Long(l) => Some(FileSpec {
            local: s(&l.local)?,
            remote: s(&l.remote)?,
            mode: s(&l.mode),
            owner: s(&l.owner),
            options: s(&l.options),
        }),
    }
}

/// An accessory's `files` or `directories` (`key`), each `local:remote` or a map.
fn file_specs(
    cx: &Ctx,
    path: &str,
    key: &str,
    specs: Option<&[RawFileSpec]>,
) -> Result<Vec<FileSpec>, ConfigError> {
    specs
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            file_spec(f).ok_or_else(|| {
                cx.err(
                    &format!("{path}.{key}[{i}]"),
                    "expected `local:remote` or a map with `local` and `remote`",
                )
            })
        })
        .collect()
}

pub(super) fn validate_accessory(
    cx: &Ctx,
    service: &str,
    name: &str,
    raw: &RawAccessory,
    roles: &[Role],
    logging: &Logging,
) -> Result<Accessory, ConfigError> {
    let path = format!("accessories.{name}");
    let image = s(&raw.image).ok_or_else(|| cx.err(&path, "missing required key `image`"))?;
    let set: Vec<&str> = [
        ("host", raw.host.is_some()),
        ("hosts", raw.hosts.is_some()),
        ("role", raw.role.is_some()),
        ("roles", raw.roles.is_some()),
        ("tag", raw.tag.is_some()),
        ("tags", raw.tags.is_some()),
    ]
    .iter()
    .filter(|(_, present)| *present)
    .map(|(k, _)| *k)
    .collect();
    if set.len() != 1 {
        return Err(cx
            .err(
                &path,
                "specify one of `host`, `hosts`, `role`, `roles`, `tag` or `tags`",
            )
            .hint(if set.is_empty() {
                "none is set".to_string()
            } else {
                format!("found {}", set.join(", "))
            }));
    }
    let mut hosts: Vec<String> = Vec::new();
    let mut push = |h: &str| {
        if !hosts.iter().any(|x| x == h) {
            hosts.push(h.to_string());
        }
    };
    if let Some(h) = &raw.host {
        push(&h.0);
    }
    for h in raw.hosts.iter().flatten() {
        push(&h.0);
    }
    let role_names: Vec<String> = raw
        .role
        .iter()
        .map(|r| r.0.clone())
        .chain(strings(&raw.roles))
        .collect();
    for (i, role_name) in role_names.iter().enumerate() {
        let key = if raw.role.is_some() {
            format!("{path}.role")
        } else {
            format!("{path}.roles[{i}]")
        };
        let role = roles.iter().find(|r| r.name == *role_name).ok_or_else(|| {
            cx.err(
                &key,
                format!("role `{role_name}` is not defined under servers"),
            )
        })?;
        for h in role.host_names() {
            push(h);
        }
    }
    let tag_names: Vec<String> = raw
        .tag
        .iter()
        .map(|t| t.0.clone())
        .chain(strings(&raw.tags))
        .collect();
    for tag in &tag_names {
        for role in roles {
            for h in role.hosts.iter().filter(|h| h.tags.contains(tag)) {
                push(&h.name);
            }
        }
    }
    let options = options(&raw.options);
    check_options(cx, &path, &options)?;
    let registry = match &raw.registry {
        Some(r) => Some(validate_registry(
            cx,
            &format!("{path}.registry"),
            Some(&RawRegistry {
                server: r.server.clone(),
                username: r.username.clone(),
                password: r.password.clone(),
            }),
            false,
        )?),
        None => None,
    };
    let image = match registry.as_ref().and_then(|r| r.server.as_ref()) {
        Some(server) => format!("{server}/{image}"),
        None => image,
    };
    let env = validate_env(cx, &format!("{path}.env"), raw.env.as_ref(), false)?;
    let files = file_specs(cx, &path, "files", raw.files.as_deref())?;
    let directories = file_specs(cx, &path, "directories", raw.directories.as_deref())?;
    let proxy = match &raw.proxy {
        Some(p) => Some(resolve_proxy(cx, &format!("{path}.proxy"), p)?),
        None => None,
    };
    let _ = logging;
    if let Some(port) = &raw.port {
        check_port_spec(cx, &format!("{path}.port"), &port.0)?;
    }
    Ok(Accessory {
        name: name.to_string(),
        service: s(&raw.service).unwrap_or_else(|| format!("{service}-{name}")),
        image,
        registry,
        hosts,
        cmd: s(&raw.cmd),
        port: s(&raw.port),
        labels: pairs(&raw.labels),
        options,
        env,
        files,
        directories,
        volumes: strings(&raw.volumes),
        network: s(&raw.network).unwrap_or_else(|| "kamal".into()),
        proxy,
    })
}

/// The numbers of an accessory's `port` (`3306`, `127.0.0.1:3306:3306`, `53:53/udp`): each
/// port part must be from 1 to 65535 (an address part, with dots or brackets, is left to
/// Docker).
fn check_port_spec(cx: &Ctx, path: &str, spec: &str) -> Result<(), ConfigError> {
    let ports = spec.split('/').next().unwrap_or_default();
    for part in ports.split(':') {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if !part.parse::<u16>().is_ok_and(|p| p >= 1) {
            return Err(cx
                .err(
                    path,
                    format!(
                        "port `{part}` of `{spec}` is out of range: expected a port number from 1 to 65535"
                    ),
                )
                .hint("a port number from 1 to 65535, as in 3306 or 127.0.0.1:3306:3306"));
        }
    }
    Ok(())
}

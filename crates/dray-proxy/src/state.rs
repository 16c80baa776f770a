//! Where dray-proxy keeps its files, and the saved services (JSON), written after every change
//! and read back at start so a restarted proxy keeps its routes. kamal-proxy's own state file
//! (`kamal-proxy.state`, [`super::kamal_state`]) is written beside it, and read instead when
//! it is the newer one (kamal-proxy ran last) or the only one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::kamal_state::KAMAL_STATE_FILE;
use super::service::ServiceSpec;

/// The state file's name inside the state directory.
pub const STATE_FILE: &str = "dray-proxy.state.json";
/// The control socket's file name.
pub const SOCKET_FILE: &str = "kamal-proxy.sock";

/// The state directory: `$XDG_CONFIG_HOME/kamal-proxy`, else `$HOME/.config/kamal-proxy`
/// (in the container: `/home/kamal-proxy/.config/kamal-proxy`, the `kamal-proxy-config`
/// volume), else `/tmp/kamal-proxy`.
pub fn state_dir() -> PathBuf {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(xdg) = non_empty("XDG_CONFIG_HOME") {
        return PathBuf::from(xdg).join("kamal-proxy");
    }
    if let Some(home) = non_empty("HOME") {
        return PathBuf::from(home).join(".config").join("kamal-proxy");
    }
    std::env::temp_dir().join("kamal-proxy")
}

/// The control socket, as kamal-proxy finds it: `$KAMAL_PROXY_SOCKET`, else
/// `$XDG_RUNTIME_DIR/kamal-proxy.sock`, else `/tmp/kamal-proxy.sock`.
pub fn socket_path() -> PathBuf {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = non_empty("KAMAL_PROXY_SOCKET") {
        return PathBuf::from(p);
    }
    let dir = non_empty("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    dir.join(SOCKET_FILE)
}

/// The saved form of the proxy's services. Fields this version does not know, at the top or
/// in a service, are kept as they are when the state is written again (a newer dray-proxy's,
/// after a downgrade).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SavedState {
    /// Format version, 1.
    pub version: u32,
    /// Every service, in name order.
    pub services: Vec<ServiceSpec>,
    /// Unknown top-level fields.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Read the saved services in `dir`: dray-proxy's state, or kamal-proxy's when that is newer
/// or the only one; `Ok(None)` when there is no state file yet.
pub fn load(dir: &Path) -> Result<Option<SavedState>, String> {
    let path = dir.join(STATE_FILE);
    let theirs = dir.join(KAMAL_STATE_FILE);
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let kamal_newer = match (mtime(&path), mtime(&theirs)) {
        (None, Some(_)) => true,
        (Some(ours), Some(kamal)) => kamal > ours,
        _ => false,
    };
    if kamal_newer {
        let text = std::fs::read_to_string(&theirs)
            .map_err(|e| format!("cannot read {}: {e}", theirs.display()))?;
        let (services, warnings) = super::kamal_state::from_kamal(&text)
            .map_err(|e| format!("cannot parse {}: {e}", theirs.display()))?;
        for w in warnings {
            super::log::event(
                super::log::Level::Warn,
                "Restoring kamal-proxy's state",
                &[("warning", w.into())],
            );
        }
        super::log::event(
            super::log::Level::Info,
            "Restoring kamal-proxy's state",
            &[("path", theirs.display().to_string().into())],
        );
        return Ok(Some(SavedState {
            version: 1,
            services,
            extra: Default::default(),
        }));
    }
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("cannot parse {}: {e}", path.display()))
}

/// Write the services (and the unknown top-level fields `extra`) to `dir` atomically
/// (temporary file, then rename).
pub fn save(
    dir: &Path,
    services: &[ServiceSpec],
    extra: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut services = services.to_vec();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    let state = SavedState {
        version: 1,
        services,
        extra: extra.clone(),
    };
    // kamal-proxy's first, so ours is never the older one.
    let kamal = super::kamal_state::to_kamal(&state.services)?;
    let theirs = dir.join(KAMAL_STATE_FILE);
    let tmp = dir.join(format!("{KAMAL_STATE_FILE}.tmp"));
    std::fs::write(&tmp, kamal).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &theirs)
        .map_err(|e| format!("cannot write {}: {e}", theirs.display()))?;
    let text = serde_json::to_string_pretty(&state).map_err(|e| e.to_string())?;
    let path = dir.join(STATE_FILE);
    let tmp = dir.join(format!("{STATE_FILE}.tmp"));
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::service::{ServiceState, TargetOptions};

    #[test]
    fn state_round_trips_through_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(load(dir.path()), Ok(None));
        let options = TargetOptions {
            target_timeout: Duration::from_millis(1500),
            log_request_headers: vec!["User-Agent".into()],
            ..TargetOptions::default()
        };
        let services = vec![
            ServiceSpec {
                name: "b".into(),
                target: "abc123:3000".into(),
                targets: vec!["abc123:3000".into(), "def456:3000".into()],
                read_targets: vec!["r1:3000".into()],
                writer_affinity_timeout: Duration::from_millis(2500),
                read_targets_accept_websockets: true,
                hosts: vec!["b.test".into()],
                path_prefixes: vec!["/api".into()],
                strip_path_prefix: true,
                tls: false,
                tls_settings: Default::default(),
                canonical_host: None,
                error_pages: Some("/pages/v1".into()),
                options: options.clone(),
                state: ServiceState::Stopped {
                    message: "Back <soon>".into(),
                },
                exclude_metrics_paths: Vec::new(),
                client_ip_header: None,
                rollout: None,
                extra: Default::default(),
            },
            ServiceSpec {
                name: "a".into(),
                target: "127.0.0.1:80".into(),
                targets: Vec::new(),
                read_targets: Vec::new(),
                writer_affinity_timeout: crate::service::DEFAULT_WRITER_AFFINITY,
                read_targets_accept_websockets: false,
                hosts: vec![],
                path_prefixes: vec![],
                strip_path_prefix: true,
                tls: true,
                tls_settings: crate::service::TlsSettings {
                    certificate_path: Some("/tls/cert.pem".into()),
                    private_key_path: Some("/tls/key.pem".into()),
                    redirect: false,
                    acme_directory: None,
                    acme_cache_path: None,
                    acme_ca_certs: None,
                    on_demand_url: None,
                },
                canonical_host: Some("a.test".into()),
                error_pages: None,
                options,
                state: ServiceState::Running,
                exclude_metrics_paths: Vec::new(),
                client_ip_header: None,
                rollout: None,
                extra: Default::default(),
            },
        ];
        save(dir.path(), &services, &Default::default()).expect("save");
        let loaded = load(dir.path()).expect("load").expect("some state");
        assert_eq!(loaded.version, 1);
        let mut expected = services.clone();
        expected.reverse();
        assert_eq!(loaded.services, expected);
    }

    #[test]
    fn unknown_fields_survive_a_load_and_save() {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = r#"{"version":1,"future_top":{"a":1},"services":[{"name":"s","target":"t:80",
            "hosts":[],"path_prefixes":[],"strip_path_prefix":true,"tls":false,
            "options":{"health_check":{"path":"/up","interval":1000,"timeout":5000,"host":null},
            "target_timeout":30000,"forward_headers":true,"log_request_headers":[],
            "log_response_headers":[]},"state":{"state":"running"},"future_field":[1,2]}]}"#;
        std::fs::write(dir.path().join(STATE_FILE), text).expect("write");
        let loaded = load(dir.path()).expect("load").expect("state");
        // An older state (no TLS settings): the defaults.
        assert!(loaded.services[0].tls_settings.redirect);
        save(dir.path(), &loaded.services, &loaded.extra).expect("save");
        let again: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(STATE_FILE)).expect("read"),
        )
        .expect("json");
        assert_eq!(again["future_top"]["a"], 1);
        assert_eq!(again["services"][0]["future_field"][1], 2);
    }

    #[test]
    fn the_newer_of_the_two_state_files_is_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        // Only kamal-proxy's: read.
        std::fs::write(
            dir.path().join(KAMAL_STATE_FILE),
            r#"[{"name":"k","active_targets":["k:80","l:80"],"options":{"hosts":["k.test"]}}]"#,
        )
        .expect("write");
        let loaded = load(dir.path()).expect("load").expect("state");
        assert_eq!(loaded.services[0].name, "k");
        assert_eq!(loaded.services[0].writer_targets(), vec!["k:80", "l:80"]);
        // Saving writes both; ours is then read.
        let mut services = loaded.services.clone();
        services[0].name = "ours".into();
        save(dir.path(), &services, &Default::default()).expect("save");
        assert_eq!(
            load(dir.path()).expect("load").expect("state").services[0].name,
            "ours"
        );
        let kamal = std::fs::read_to_string(dir.path().join(KAMAL_STATE_FILE)).expect("kamal");
        assert!(kamal.contains(r#""name":"ours""#), "{kamal}");
        // kamal-proxy wrote after us: its state wins.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(
            dir.path().join(KAMAL_STATE_FILE),
            r#"[{"name":"later","active_targets":["m:80"]}]"#,
        )
        .expect("write");
        assert_eq!(
            load(dir.path()).expect("load").expect("state").services[0].name,
            "later"
        );
    }

    #[test]
    fn corrupt_state_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(STATE_FILE), "{not json").expect("write");
        assert!(load(dir.path()).is_err());
    }
}

//! Booting one role on one host, Kamal's `Kamal::Cli::App::Boot#run`: clash check, old
//! version, primary-role barrier, env file, `docker run`, readiness (proxy deploy, or Docker
//! health / readiness delay), on failure stop the new container, on success stop the old one.

use tokio::sync::watch;

use crate::config::model::Role;
use crate::config::secrets::Secrets;
use crate::config::Config;
use crate::docker::{self, app::App};
use crate::release::Release;
use crate::remote::Remote;

use super::events::Event;
use super::Emitter;

/// The primary-role barrier: other roles wait for the first primary container's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarrierState {
    /// No primary container has finished booting yet.
    Pending,
    /// A primary container became healthy: other roles may boot.
    Open,
    /// A primary container failed: other roles must not boot.
    Closed,
}

/// Shared by every boot of one run.
#[derive(Debug, Clone)]
pub struct Barrier {
    tx: std::sync::Arc<watch::Sender<BarrierState>>,
}

impl Default for Barrier {
    fn default() -> Self {
        Barrier {
            tx: std::sync::Arc::new(watch::channel(BarrierState::Pending).0),
        }
    }
}

impl Barrier {
    /// Open unless already decided.
    pub fn open(&self) {
        self.tx.send_if_modified(|s| {
            if *s == BarrierState::Pending {
                *s = BarrierState::Open;
                true
            } else {
                false
            }
        });
    }

    /// Close unless already decided.
    pub fn close(&self) {
        self.tx.send_if_modified(|s| {
            if *s == BarrierState::Pending {
                *s = BarrierState::Closed;
                true
            } else {
                false
            }
        });
    }

    /// Wait for the verdict; `true` when open.
    pub async fn wait(&self) -> bool {
        let mut rx = self.tx.subscribe();
        loop {
            match *rx.borrow_and_update() {
                BarrierState::Open => return true,
                BarrierState::Closed => return false,
                BarrierState::Pending => {}
            }
            if rx.changed().await.is_err() {
                return false;
            }
        }
    }
}

/// Everything one boot needs.
pub struct BootContext<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// The role.
    pub role: &'a Role,
    /// The host.
    pub host: &'a str,
    /// The frozen release.
    pub release: &'a Release,
    /// Secret values for the env file.
    pub secrets: &'a Secrets,
    /// Runs commands.
    pub remote: &'a dyn Remote,
    /// Whether this role is the gatekeeper (the first targeted role).
    pub primary: bool,
    /// The run's barrier.
    pub barrier: &'a Barrier,
    /// Where events go.
    pub emit: &'a Emitter,
}

/// Random lowercase hex of `len` digits (replaced-container suffixes, hostnames, exec names).
pub fn random_hex(len: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    while out.len() < len {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(len);
    out
}

impl BootContext<'_> {
    /// Boot the role on the host in two round trips (see [`docker::boot`]). On failure the new
    /// container is stopped and the old one keeps running; the error says why.
    pub async fn run(&self) -> Result<(), String> {
        let app = App::new(self.config, self.role, self.host);
        let version = &self.release.version;
        let host = self.host;

        // Other roles wait for the first primary container's verdict.
        if !self.primary && !self.barrier.wait().await {
            return Err(format!(
                "first primary container is unhealthy, not booting {} on {host}",
                self.role.name
            ));
        }

        let env = self.config.env_for(self.role, host);
        let mut pairs = Vec::new();
        for s in &env.secrets {
            let value = self.secrets.get(&s.key).map_err(|e| e.to_string())?;
            pairs.push((s.name.clone(), value.to_string()));
        }
        let audit = |message: String| docker::audit::AuditLine {
            recorded_at: crate::release::format_recorded_at(chrono::Utc::now()),
            performer: self.release.performer.clone(),
            destination: self.config.destination.clone(),
            role: Some(self.role.name.clone()),
            message,
        };
        let hostname = docker::app::container_hostname(host, &random_hex(12));
        let start = docker::boot::start(
            &app,
            version,
            &hostname,
            &random_hex(16),
            docker::env_file::content(&pairs),
            &audit,
        );
        let started = match self.remote.run_checked(host, &start).await {
            Ok(out) => out,
            Err(e) => {
                if self.primary {
                    self.barrier.close();
                }
                return Err(e.to_string());
            }
        };
        let old = docker::boot::marker(&started.stdout, docker::boot::OLD_VERSION_MARKER)
            .unwrap_or("")
            .to_string();

        let settle = docker::boot::settle(&app, version, Some(&old));
        let settled = self
            .remote
            .run(host, &settle)
            .await
            .map_err(|e| e.to_string());
        let failure = match &settled {
            Ok(out) if out.success() => None,
            Ok(out) => {
                for line in out.stdout.lines().chain(out.stderr.lines()) {
                    if !line.starts_with(docker::boot::FAILED_MARKER) {
                        self.emit.emit(Event::HostOutput {
                            host: host.to_string(),
                            line: line.to_string(),
                        });
                    }
                }
                let why = docker::boot::marker(&out.stdout, docker::boot::FAILED_MARKER)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("exit status {:?}", out.status));
                let hint = if why.contains("health") || why.contains("deploy_timeout") {
                    format!(
                        "\nhint: raise `deploy_timeout` ({}s) if the app needs longer to become healthy",
                        self.config.deploy_timeout
                    )
                } else {
                    String::new()
                };
                Some(format!(
                    "{} container on {host}: {why}{hint}",
                    self.role.name
                ))
            }
            Err(e) => Some(e.clone()),
        };
        match failure {
            None => {
                if self.primary {
                    self.barrier.open();
                }
                Ok(())
            }
            Some(why) => {
                if self.primary {
                    self.barrier.close();
                }
                Err(why)
            }
        }
    }
}

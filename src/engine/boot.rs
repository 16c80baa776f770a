//! Booting one role on one host, Kamal's `Kamal::Cli::App::Boot#run`: clash check, old
//! version, primary-role barrier, env file, `docker run`, readiness (proxy deploy, or Docker
//! health / readiness delay), on failure stop the new container, on success stop the old one.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::config::model::Role;
use crate::config::secrets::Secrets;
use crate::config::Config;
use crate::docker::{self, app::App};
use crate::release::Release;
use crate::remote::{Remote, RemoteError};

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

fn random_hex(len: usize) -> String {
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
    async fn audit(&self, message: String) {
        let line = docker::audit::AuditLine {
            recorded_at: crate::release::format_recorded_at(chrono::Utc::now()),
            performer: self.release.performer.clone(),
            destination: self.config.destination.clone(),
            role: Some(self.role.name.clone()),
            message,
        };
        let _ = self
            .remote
            .run(
                self.host,
                &docker::audit::record(self.config, self.host, &line),
            )
            .await;
    }

    /// Boot the role on the host. On failure the new container is stopped and the old one
    /// keeps running; the error says why.
    pub async fn run(&self) -> Result<(), String> {
        let app = App::new(self.config, self.role, self.host);
        let version = &self.release.version;
        let remote = self.remote;
        let host = self.host;
        let err = |e: RemoteError| e.to_string();

        // a. a container of this version already exists: rename it out of the way.
        let existing = remote
            .run_checked(host, &app.container_id(version))
            .await
            .map_err(err)?;
        if !existing.stdout.trim().is_empty() {
            let hex = random_hex(16);
            self.audit(format!(
                "Renaming container {version} to {}",
                App::replaced_version(version, &hex)
            ))
            .await;
            remote
                .run_checked(host, &app.rename(version, &hex))
                .await
                .map_err(err)?;
        }

        // b. the version running now.
        let old = remote
            .run(host, &app.current_running_version())
            .await
            .map_err(err)?
            .stdout
            .trim()
            .to_string();

        // c. other roles wait for the first primary container.
        if !self.primary && !self.barrier.wait().await {
            return Err(format!(
                "first primary container is unhealthy, not booting {} on {host}",
                self.role.name
            ));
        }

        // d. env file and container.
        let env = self.config.env_for(self.role, host);
        let mut pairs = Vec::new();
        for s in &env.secrets {
            let value = self.secrets.get(&s.key).map_err(|e| e.to_string())?;
            pairs.push((s.name.clone(), value.to_string()));
        }
        self.audit(format!("Booted app version {version}")).await;
        remote
            .run_checked(
                host,
                &docker::env_file::write(
                    self.config,
                    &self.role.name,
                    host,
                    docker::env_file::content(&pairs),
                ),
            )
            .await
            .map_err(err)?;
        let hostname = docker::app::container_hostname(host, &random_hex(12));
        let run = remote
            .run_checked(host, &app.run(version, Some(&hostname)))
            .await;
        if let Err(e) = run {
            if self.primary {
                self.barrier.close();
            }
            return Err(e.to_string());
        }

        // e. readiness.
        let ready = if self.role.runs_proxy() {
            self.proxy_deploy(&app).await
        } else {
            self.wait_healthy(&app).await
        };
        if let Err(why) = ready {
            if self.primary {
                self.barrier.close();
            }
            self.show_failure(&app).await;
            let _ = remote.run(host, &app.stop(Some(version))).await;
            return Err(why);
        }
        if self.primary {
            self.barrier.open();
        }

        // h. stop the old version.
        if !old.is_empty() && old != *version {
            let _ = remote.run(host, &app.stop(Some(&old))).await;
        }
        Ok(())
    }

    async fn proxy_deploy(&self, app: &App<'_>) -> Result<(), String> {
        let version = &self.release.version;
        let out = self
            .remote
            .run_checked(self.host, &app.container_id(version))
            .await
            .map_err(|e| e.to_string())?;
        let id = out.stdout.lines().next().unwrap_or("").trim().to_string();
        if id.is_empty() {
            return Err(format!(
                "failed to get endpoint for {} on {}, did the container boot?",
                self.role.name, self.host
            ));
        }
        let Some(deploy) = docker::proxy::deploy(self.config, self.role, &id, version, self.host)
        else {
            return Ok(());
        };
        self.remote
            .run_checked(self.host, &deploy)
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "{e}\nhint: the proxy's health check did not pass within deploy_timeout ({}s)",
                    self.config.deploy_timeout
                )
            })
    }

    async fn wait_healthy(&self, app: &App<'_>) -> Result<(), String> {
        let version = &self.release.version;
        let deadline = Instant::now() + Duration::from_secs(self.config.deploy_timeout);
        let delay = Duration::from_secs(self.config.readiness_delay);
        let mut running_since: Option<Instant> = None;
        loop {
            let status = self
                .remote
                .run(self.host, &app.status(version))
                .await
                .map_err(|e| e.to_string())?
                .stdout
                .trim()
                .to_string();
            match status.as_str() {
                "healthy" => return Ok(()),
                "running" => {
                    let since = *running_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= delay {
                        return Ok(());
                    }
                }
                "starting" | "created" | "restarting" => {}
                other => {
                    return Err(format!(
                        "{} container on {} is {}",
                        self.role.name,
                        self.host,
                        if other.is_empty() { "gone" } else { other }
                    ))
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} container on {} not healthy within deploy_timeout ({}s), last status `{status}`\nhint: raise `deploy_timeout` in the configuration if the app needs longer to start",
                    self.role.name, self.host, self.config.deploy_timeout
                ));
            }
            let step = if status == "running" {
                Duration::from_millis(500)
            } else {
                Duration::from_secs(1)
            };
            tokio::time::sleep(step).await;
        }
    }

    async fn show_failure(&self, app: &App<'_>) {
        let version = &self.release.version;
        let logs = app.logs(&docker::app::LogsOptions {
            container_id: Some(app.container_name(version)),
            lines: Some(20),
            ..Default::default()
        });
        for cmd in [logs, app.health_log(version)] {
            if let Ok(out) = self.remote.run(self.host, &cmd).await {
                for line in out.stdout.lines().chain(out.stderr.lines()) {
                    self.emit.emit(Event::HostOutput {
                        host: self.host.to_string(),
                        line: line.to_string(),
                    });
                }
            }
        }
    }
}

//! The control socket: the CLI subcommands (`deploy`, `remove`, `stop`, `resume`, `list`) send
//! one JSON line to the running server over a unix socket and read one JSON line back.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::log;
use super::service::ServiceSpec;
use super::services::Services;

/// A command for the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "lowercase")]
pub enum Request {
    /// Route the service to a new (healthy) target.
    Deploy {
        /// The service as it should be.
        spec: Box<ServiceSpec>,
        /// Longest wait for the target to become healthy, in ms.
        deploy_timeout_ms: u64,
        /// Longest wait for the old target to drain, in ms.
        drain_timeout_ms: u64,
        /// Skip the health check.
        force: bool,
    },
    /// Forget a service.
    Remove {
        /// The service.
        service: String,
    },
    /// Put a service in maintenance.
    Stop {
        /// The service.
        service: String,
        /// Longest wait for in-flight requests, in ms.
        drain_timeout_ms: u64,
        /// Shown on the 503 page.
        message: String,
    },
    /// End maintenance.
    Resume {
        /// The service.
        service: String,
    },
    /// Describe the services.
    List,
    /// `rollout deploy`: a rollout target beside the service's.
    #[serde(rename = "rollout_deploy")]
    RolloutDeploy {
        /// The service.
        service: String,
        /// `host:port` of each (writer) target.
        targets: Vec<String>,
        /// `host:port` of each read target.
        #[serde(default)]
        read_targets: Vec<String>,
        /// Longest wait for the target to become healthy, in ms.
        deploy_timeout_ms: u64,
        /// Longest wait for the replaced rollout target to drain, in ms.
        drain_timeout_ms: u64,
    },
    /// `rollout set`: the traffic split.
    #[serde(rename = "rollout_set")]
    RolloutSet {
        /// The service.
        service: String,
        /// `--percent`.
        percentage: i64,
        /// `--list`.
        allowlist: Vec<String>,
    },
    /// `rollout stop`.
    #[serde(rename = "rollout_stop")]
    RolloutStop {
        /// The service.
        service: String,
    },
}

/// The server's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// Whether the command succeeded.
    pub ok: bool,
    /// Text for the user (the `list` table, or the error).
    pub message: String,
}

impl Response {
    fn from_result(r: Result<String, String>) -> Response {
        match r {
            Ok(message) => Response { ok: true, message },
            Err(message) => Response { ok: false, message },
        }
    }
}

/// Listen on the control socket at `path`, replacing a stale socket file.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A socket left by a previous (killed) server.
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path)
}

/// Answer control requests until the task is dropped.
pub async fn serve(listener: UnixListener, services: Arc<Services>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let services = Arc::clone(&services);
        tokio::spawn(async move {
            if let Err(e) = handle(stream, services).await {
                log::event(
                    log::Level::Warn,
                    "control connection failed",
                    &[("error", e.to_string().into())],
                );
            }
        });
    }
}

/// Answer one control connection: one request line, one response line.
pub async fn handle(stream: UnixStream, services: Arc<Services>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(req) => Response::from_result(dispatch(req, &services).await),
        Err(e) => Response {
            ok: false,
            message: format!("bad control request: {e}"),
        },
    };
    let mut out = serde_json::to_string(&response).map_err(std::io::Error::other)?;
    out.push('\n');
    write.write_all(out.as_bytes()).await?;
    write.shutdown().await
}

async fn dispatch(req: Request, services: &Services) -> Result<String, String> {
    match req {
        Request::Deploy {
            spec,
            deploy_timeout_ms,
            drain_timeout_ms,
            force,
        } => {
            services
                .deploy(
                    *spec,
                    Duration::from_millis(deploy_timeout_ms),
                    Duration::from_millis(drain_timeout_ms),
                    force,
                )
                .await
        }
        Request::Remove { service } => services.remove(&service),
        Request::Stop {
            service,
            drain_timeout_ms,
            message,
        } => {
            services
                .stop(&service, Duration::from_millis(drain_timeout_ms), message)
                .await
        }
        Request::Resume { service } => services.resume(&service),
        Request::List => Ok(services.list()),
        Request::RolloutDeploy {
            service,
            targets,
            read_targets,
            deploy_timeout_ms,
            drain_timeout_ms,
        } => {
            services
                .rollout_deploy(
                    &service,
                    &targets,
                    &read_targets,
                    Duration::from_millis(deploy_timeout_ms),
                    Duration::from_millis(drain_timeout_ms),
                )
                .await
        }
        Request::RolloutSet {
            service,
            percentage,
            allowlist,
        } => services.rollout_set(&service, percentage, allowlist),
        Request::RolloutStop { service } => services.rollout_stop(&service),
    }
}

/// Send `req` to the server listening at `path` and wait for its answer.
pub async fn send(path: &Path, req: &Request) -> Result<Response, String> {
    let stream = UnixStream::connect(path).await.map_err(|e| {
        format!(
            "cannot reach the proxy at {} (is `kamal-proxy run` running?): {e}",
            path.display()
        )
    })?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    line.push('\n');
    write
        .write_all(line.as_bytes())
        .await
        .map_err(|e| format!("cannot send to the proxy: {e}"))?;
    let mut answer = String::new();
    BufReader::new(read)
        .read_line(&mut answer)
        .await
        .map_err(|e| format!("no answer from the proxy: {e}"))?;
    serde_json::from_str(&answer).map_err(|e| format!("bad answer from the proxy: {e}"))
}

//! `run`: the HTTP listener, the control socket, state restore, and shutdown on SIGTERM or
//! SIGINT (the process is PID 1 in its container).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

use super::control;
use super::handler::Handler;
use super::log::{self, Level};
use super::services::Services;
use super::state;

/// Where and how the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address the HTTP listener binds.
    pub http_addr: SocketAddr,
    /// The state directory (routes saved there).
    pub state_dir: PathBuf,
    /// The control socket.
    pub socket: PathBuf,
    /// Log each request.
    pub log_requests: bool,
}

/// Run until SIGTERM or SIGINT; in-flight requests get up to 10 s to finish.
pub async fn run(config: ServerConfig) -> Result<(), String> {
    let services = Arc::new(Services::new(Some(config.state_dir.clone())));
    match state::load(&config.state_dir) {
        Ok(Some(saved)) => services.restore(saved.services).await,
        Ok(None) => log::event(Level::Info, "No previous state to restore", &[]),
        Err(e) => log::event(Level::Warn, "Cannot restore state", &[("error", e.into())]),
    }
    let listener = TcpListener::bind(config.http_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.http_addr))?;
    let control_listener = control::bind(&config.socket)
        .map_err(|e| format!("cannot listen on {}: {e}", config.socket.display()))?;
    let mut control_task = tokio::spawn(control::serve(control_listener, Arc::clone(&services)));
    let handler = Arc::new(Handler::new(Arc::clone(&services), config.log_requests));
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    log::event(
        Level::Info,
        "Server started",
        &[
            ("http", config.http_addr.to_string().into()),
            ("socket", config.socket.display().to_string().into()),
            ("state", config.state_dir.display().to_string().into()),
        ],
    );
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        log::event(Level::Warn, "Accept failed", &[("error", e.to_string().into())]);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let handler = Arc::clone(&handler);
                tokio::spawn(async move {
                    let service = service_fn(move |req| Arc::clone(&handler).handle(remote, req));
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            r = &mut control_task => {
                return Err(format!("the control socket stopped: {r:?}"));
            }
        }
    }
    log::event(Level::Info, "Shutting down", &[]);
    drop(listener);
    services.drain_all(Duration::from_secs(10)).await;
    control_task.abort();
    let _ = std::fs::remove_file(&config.socket);
    Ok(())
}

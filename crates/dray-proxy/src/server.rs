//! `run`: the HTTP and HTTPS listeners, the control socket, state restore, ACME renewals, and
//! shutdown on SIGTERM or SIGINT (the process is PID 1 in its container).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};

use super::acme::Acme;
use super::control;
use super::handler::Handler;
use super::log::{self, Level};
use super::metrics::{self, Metrics};
use super::services::Services;
use super::state;
use super::tls::TlsServer;

/// Where and how the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address the HTTP listener binds.
    pub http_addr: SocketAddr,
    /// Address the HTTPS listener binds.
    pub https_addr: SocketAddr,
    /// The state directory (routes saved there).
    pub state_dir: PathBuf,
    /// The control socket.
    pub socket: PathBuf,
    /// Log each request.
    pub log_requests: bool,
    /// Address of the Prometheus metrics listener (`--metrics-port`), if any.
    pub metrics_addr: Option<SocketAddr>,
}

/// Run until SIGTERM or SIGINT; in-flight requests get up to 10 s to finish.
pub async fn run(config: ServerConfig) -> Result<(), String> {
    let services = Arc::new(Services::new(Some(config.state_dir.clone())));
    match state::load(&config.state_dir) {
        Ok(Some(saved)) => services.restore(saved).await,
        Ok(None) => log::event(Level::Info, "No previous state to restore", &[]),
        Err(e) => log::event(Level::Warn, "Cannot restore state", &[("error", e.into())]),
    }
    let acme = Arc::new(Acme::new()?);
    let tls = Arc::new(TlsServer::new(Arc::clone(&services), Arc::clone(&acme))?);
    let listener = TcpListener::bind(config.http_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.http_addr))?;
    let tls_listener = TcpListener::bind(config.https_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.https_addr))?;
    let control_listener = control::bind(&config.socket)
        .map_err(|e| format!("cannot listen on {}: {e}", config.socket.display()))?;
    let mut control_task = tokio::spawn(control::serve(control_listener, Arc::clone(&services)));
    let renewals = tokio::spawn(Arc::clone(&acme).renew_loop(still_served(Arc::clone(&services))));
    let metrics = match config.metrics_addr {
        Some(addr) => {
            let m = Arc::new(Metrics::new());
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            tokio::spawn(serve_metrics(l, Arc::clone(&m), Arc::clone(&services)));
            log::event(
                Level::Info,
                "Metrics enabled",
                &[("address", addr.to_string().into())],
            );
            Some(m)
        }
        None => None,
    };
    let handler = Arc::new(Handler::new(
        Arc::clone(&services),
        Arc::clone(&acme),
        config.log_requests,
        metrics,
    ));
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    log::event(
        Level::Info,
        "Server started",
        &[
            ("http", config.http_addr.to_string().into()),
            ("https", config.https_addr.to_string().into()),
            ("socket", config.socket.display().to_string().into()),
            ("state", config.state_dir.display().to_string().into()),
        ],
    );
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Some((stream, remote)) = accepted_or_wait(accepted).await else {
                    continue;
                };
                let handler = Arc::clone(&handler);
                tokio::spawn(async move {
                    let service =
                        service_fn(move |req| Arc::clone(&handler).handle(remote, false, req));
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
            accepted = tls_listener.accept() => {
                let Some((stream, remote)) = accepted_or_wait(accepted).await else {
                    continue;
                };
                let handler = Arc::clone(&handler);
                let tls = Arc::clone(&tls);
                tokio::spawn(async move {
                    let stream = match tls.accept(stream).await {
                        Ok(s) => s,
                        Err(e) => {
                            log::event(
                                Level::Debug,
                                "TLS handshake failed",
                                &[("remote", remote.to_string().into()), ("error", e.into())],
                            );
                            return;
                        }
                    };
                    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                    let service =
                        service_fn(move |req| Arc::clone(&handler).handle(remote, true, req));
                    let io = TokioIo::new(stream);
                    let _ = if h2 {
                        http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, service)
                            .await
                    } else {
                        http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(io, service)
                            .with_upgrades()
                            .await
                    };
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
    drop(tls_listener);
    renewals.abort();
    services.drain_all(Duration::from_secs(10)).await;
    control_task.abort();
    let _ = std::fs::remove_file(&config.socket);
    Ok(())
}

/// The metrics listener: every path answers the exposition text (as kamal-proxy's
/// `promhttp.Handler`).
async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>, services: Arc<Services>) {
    loop {
        let Some((stream, _)) = accepted_or_wait(listener.accept().await).await else {
            continue;
        };
        let metrics = Arc::clone(&metrics);
        let services = Arc::clone(&services);
        tokio::spawn(async move {
            let service = service_fn(move |_req: http::Request<hyper::body::Incoming>| {
                let text = metrics.render(&services.in_flight());
                let resp = http::Response::builder()
                    .header(http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)
                    .body(http_body_util::Full::new(bytes::Bytes::from(text)));
                async move { resp }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// An accepted connection (with `TCP_NODELAY`), or `None` after a short pause on an error.
async fn accepted_or_wait(
    accepted: std::io::Result<(TcpStream, SocketAddr)>,
) -> Option<(TcpStream, SocketAddr)> {
    match accepted {
        Ok((stream, remote)) => {
            let _ = stream.set_nodelay(true);
            Some((stream, remote))
        }
        Err(e) => {
            log::event(
                Level::Warn,
                "Accept failed",
                &[("error", e.to_string().into())],
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
            None
        }
    }
}

/// Whether `host`'s certificate still comes from ACME `scope` (what renewals check first).
pub fn still_served(services: Arc<Services>) -> Arc<crate::acme::StillServed> {
    Arc::new(move |scope, host| {
        matches!(
            services.tls_source(Some(host)),
            Some((_, crate::loaded::CertSource::Acme(s))) if s == *scope
        )
    })
}

//! The server of `run`: the HTTP and HTTPS listeners (bound here, or inherited from the
//! supervisor, [`crate::handoff`]), the control socket, state restore, ACME renewals, and the
//! drain on SIGTERM or SIGINT or when the supervisor hands over to a new server: no new
//! connection, responses with `Connection: close`, idle keep-alive connections closed after
//! [`IDLE_GRACE`], in-flight requests and WebSockets given the drain timeout.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch, Notify};

use std::sync::atomic::{AtomicUsize, Ordering};

use super::acme::Acme;
use super::control;
use super::handler::Handler;
use super::handoff::{FromChild, Inherited, ToChild};
use super::log::{self, Level};
use super::metrics::{self, Metrics};
use super::services::Services;
use super::state;
use super::supervised::ControlOp;
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

/// How long a draining server keeps an idle keep-alive connection open: a client that sends
/// its next request meanwhile is answered (with `Connection: close`) rather than finding the
/// connection closed under it.
pub const IDLE_GRACE: Duration = Duration::from_millis(1500);

/// Serve a hyper connection; once draining, let it run `grace` more (its requests are answered
/// with `Connection: close`), then shut it down gracefully (an idle one closes at once, a busy
/// one after its response) and let it finish.
macro_rules! serve_draining {
    ($conn:expr, $drain:expr, $grace:expr) => {{
        let conn = $conn;
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            () = draining_begins($drain) => {
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = tokio::time::sleep($grace) => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.as_mut().await;
                    }
                }
            }
        }
    }};
}

/// Run until SIGTERM or SIGINT (in-flight requests get up to 10 s to finish), or until the
/// supervisor asks this server to drain: on sockets bound here, or on those `inherited` from
/// the supervisor ([`crate::handoff`]).
pub async fn run(config: ServerConfig, inherited: Option<Inherited>) -> Result<(), String> {
    let services = Arc::new(Services::new(Some(config.state_dir.clone())));
    let restored = match state::load(&config.state_dir) {
        Ok(Some(saved)) => {
            let n = saved.services.len();
            services.restore(saved).await;
            n
        }
        Ok(None) => {
            log::event(Level::Info, "No previous state to restore", &[]);
            0
        }
        Err(e) => {
            log::event(Level::Warn, "Cannot restore state", &[("error", e.into())]);
            0
        }
    };
    let acme = Arc::new(Acme::new()?);
    let tls = Arc::new(TlsServer::new(Arc::clone(&services), Arc::clone(&acme))?);
    let (listener, tls_listener, metrics_listener, control_listener, channel) = match inherited {
        Some(i) => (
            from_std(i.sockets.http)?,
            from_std(i.sockets.https)?,
            i.sockets.metrics.map(from_std).transpose()?,
            {
                let c = i.sockets.control;
                c.set_nonblocking(true).map_err(|e| e.to_string())?;
                tokio::net::UnixListener::from_std(c).map_err(|e| e.to_string())?
            },
            Some(i.channel),
        ),
        None => {
            let http = TcpListener::bind(config.http_addr)
                .await
                .map_err(|e| format!("cannot listen on {}: {e}", config.http_addr))?;
            let https = TcpListener::bind(config.https_addr)
                .await
                .map_err(|e| format!("cannot listen on {}: {e}", config.https_addr))?;
            let metrics = match config.metrics_addr {
                Some(addr) => Some(
                    TcpListener::bind(addr)
                        .await
                        .map_err(|e| format!("cannot listen on {addr}: {e}"))?,
                ),
                None => None,
            };
            let control = control::bind(&config.socket)
                .map_err(|e| format!("cannot listen on {}: {e}", config.socket.display()))?;
            (http, https, metrics, control, None)
        }
    };
    let supervised = channel.is_some();
    let (control_ops, control_rx) = mpsc::channel(4);
    let mut control_task = tokio::spawn(crate::supervised::serve_control(
        control_listener,
        Arc::clone(&services),
        control_rx,
    ));
    let renewals = tokio::spawn(Arc::clone(&acme).renew_loop(still_served(Arc::clone(&services))));
    let metrics = match metrics_listener {
        Some(l) => {
            let m = Arc::new(Metrics::new());
            let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
            tokio::spawn(serve_metrics(l, Arc::clone(&m), Arc::clone(&services)));
            log::event(Level::Info, "Metrics enabled", &[("address", addr.into())]);
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
    let (draining, drain_rx) = watch::channel(false);
    let connections = Arc::new(Connections::default());
    let mut ops = match channel {
        Some(ch) => Some(crate::supervised::Channel::start(ch, restored).await?),
        None => None,
    };
    log::event(
        Level::Info,
        "Server started",
        &[
            ("http", config.http_addr.to_string().into()),
            ("https", config.https_addr.to_string().into()),
            ("socket", config.socket.display().to_string().into()),
            ("state", config.state_dir.display().to_string().into()),
            ("version", crate::handoff::version().into()),
            ("supervised", supervised.into()),
        ],
    );
    let mut drain_timeout = Duration::from_secs(10);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Some((stream, remote)) = accepted_or_wait(accepted).await else {
                    continue;
                };
                let handler = Arc::clone(&handler);
                let drain = drain_rx.clone();
                let open = connections.open();
                tokio::spawn(async move {
                    let _open = open;
                    let closing = drain.clone();
                    let service = service_fn(move |req| {
                        closing_when_draining(Arc::clone(&handler).handle(remote, false, req), closing.clone())
                    });
                    let conn = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    serve_draining!(conn, drain, IDLE_GRACE);
                });
            }
            accepted = tls_listener.accept() => {
                let Some((stream, remote)) = accepted_or_wait(accepted).await else {
                    continue;
                };
                let handler = Arc::clone(&handler);
                let tls = Arc::clone(&tls);
                let drain = drain_rx.clone();
                let open = connections.open();
                tokio::spawn(async move {
                    let _open = open;
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
                    let closing = drain.clone();
                    let service = service_fn(move |req| {
                        closing_when_draining(Arc::clone(&handler).handle(remote, true, req), closing.clone())
                    });
                    let io = TokioIo::new(stream);
                    if h2 {
                        // GOAWAY at once: HTTP/2 clients retry what the server did not take.
                        let conn = http2::Builder::new(TokioExecutor::new()).serve_connection(io, service);
                        serve_draining!(conn, drain, Duration::ZERO);
                    } else {
                        let conn = http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(io, service)
                            .with_upgrades();
                        serve_draining!(conn, drain, IDLE_GRACE);
                    }
                });
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            op = next_op(&mut ops) => match op {
                Some(ToChild::PauseControl) => {
                    let ops_tx = ops.as_ref().map(|c| c.sender());
                    let control_ops = control_ops.clone();
                    tokio::spawn(async move {
                        let (ack, acked) = oneshot::channel();
                        if control_ops.send(ControlOp::Pause(ack)).await.is_ok() && acked.await.is_ok() {
                            if let Some(tx) = ops_tx {
                                tx.send(&FromChild::ControlPaused).await;
                            }
                        }
                    });
                }
                Some(ToChild::ResumeControl) => {
                    let _ = control_ops.send(ControlOp::Resume).await;
                }
                Some(ToChild::Drain { timeout_ms }) => {
                    drain_timeout = Duration::from_millis(timeout_ms);
                    log::event(Level::Info, "Handing over to a new server: draining", &[]);
                    break;
                }
                // The supervisor is gone: this server goes on alone until signalled.
                None => ops = None,
            },
            r = &mut control_task => {
                return Err(format!("the control socket stopped: {r:?}"));
            }
        }
    }
    log::event(Level::Info, "Shutting down", &[]);
    drop(listener);
    drop(tls_listener);
    renewals.abort();
    let started = tokio::time::Instant::now();
    let _ = draining.send(true);
    connections.wait_closed(drain_timeout).await;
    services
        .drain_all(drain_timeout.saturating_sub(started.elapsed()))
        .await;
    control_task.abort();
    if !supervised {
        let _ = std::fs::remove_file(&config.socket);
    }
    log::event(
        Level::Info,
        "Drained",
        &[("seconds", started.elapsed().as_secs_f64().into())],
    );
    Ok(())
}

/// Resolves once the server drains.
async fn draining_begins(mut drain: watch::Receiver<bool>) {
    let _ = drain.wait_for(|d| *d).await;
}

/// A response gets `Connection: close` while the server drains (but a `101` switch).
async fn closing_when_draining<B>(
    response: impl std::future::Future<Output = Result<http::Response<B>, std::convert::Infallible>>,
    drain: watch::Receiver<bool>,
) -> Result<http::Response<B>, std::convert::Infallible> {
    let mut response = response.await?;
    let draining = *drain.borrow();
    if draining && response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    Ok(response)
}

/// The open client connections (a draining server waits for them to close).
#[derive(Debug, Default)]
pub struct Connections {
    open: AtomicUsize,
    closed: Notify,
}

/// One open connection, counted until dropped.
#[derive(Debug)]
pub struct OpenConnection(Arc<Connections>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.closed.notify_waiters();
        }
    }
}

impl Connections {
    /// Count one more open connection.
    pub fn open(self: &Arc<Self>) -> OpenConnection {
        self.open.fetch_add(1, Ordering::SeqCst);
        OpenConnection(Arc::clone(self))
    }

    /// Connections open now.
    pub fn count(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Wait until every connection closed, up to `timeout`; true when they did.
    pub async fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.closed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count() == 0;
            }
        }
    }
}

fn from_std(l: std::net::TcpListener) -> Result<TcpListener, String> {
    l.set_nonblocking(true).map_err(|e| e.to_string())?;
    TcpListener::from_std(l).map_err(|e| e.to_string())
}

/// The supervisor's next message, or never when there is no supervisor.
async fn next_op(ops: &mut Option<crate::supervised::Channel>) -> Option<ToChild> {
    match ops {
        Some(c) => c.recv().await,
        None => std::future::pending().await,
    }
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

//! A server's side of the handoff ([`crate::handoff`]): its channel to the supervisor (say
//! ready, receive pause/resume/drain) and the control socket's accept loop, which a pause
//! stops after the control requests in hand are answered.

use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot, Mutex, Notify};

use super::control;
use super::handoff::{self, FromChild, ToChild};
use super::log::{self, Level};
use super::services::Services;

/// What the server asks of its control loop.
#[derive(Debug)]
pub enum ControlOp {
    /// Stop accepting; answer when no control request is in hand.
    Pause(oneshot::Sender<()>),
    /// Accept again.
    Resume,
}

/// Accept control connections (each answered by [`control::handle`]) until dropped; paused
/// between a [`ControlOp::Pause`] and a [`ControlOp::Resume`] (connections wait in the
/// socket's backlog meanwhile).
pub async fn serve_control(
    listener: UnixListener,
    services: Arc<Services>,
    mut ops: mpsc::Receiver<ControlOp>,
) -> std::io::Result<()> {
    let in_hand = Arc::new(InHand::default());
    let mut paused = false;
    loop {
        tokio::select! {
            accepted = listener.accept(), if !paused => {
                let (stream, _) = accepted?;
                let services = Arc::clone(&services);
                in_hand.count.fetch_add(1, Ordering::SeqCst);
                let in_hand = Arc::clone(&in_hand);
                tokio::spawn(async move {
                    if let Err(e) = control::handle(stream, services).await {
                        log::event(
                            Level::Warn,
                            "control connection failed",
                            &[("error", e.to_string().into())],
                        );
                    }
                    if in_hand.count.fetch_sub(1, Ordering::SeqCst) == 1 {
                        in_hand.done.notify_waiters();
                    }
                });
            }
            op = ops.recv() => match op {
                Some(ControlOp::Pause(ack)) => {
                    paused = true;
                    in_hand.wait_none().await;
                    log::event(Level::Info, "Control requests paused for a handover", &[]);
                    let _ = ack.send(());
                }
                Some(ControlOp::Resume) => {
                    paused = false;
                    log::event(Level::Info, "Control requests resumed", &[]);
                }
                None => std::future::pending::<()>().await,
            },
        }
    }
}

#[derive(Debug, Default)]
struct InHand {
    count: AtomicUsize,
    done: Notify,
}

impl InHand {
    async fn wait_none(&self) {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// The server's channel to its supervisor.
#[derive(Debug)]
pub struct Channel {
    ops: mpsc::Receiver<ToChild>,
    tx: ChannelSender,
}

/// The sending half of a [`Channel`] (shared).
#[derive(Debug, Clone)]
pub struct ChannelSender(Arc<Mutex<OwnedWriteHalf>>);

impl ChannelSender {
    /// Send one message; a supervisor gone is logged, not an error.
    pub async fn send(&self, msg: &FromChild) {
        let mut w = self.0.lock().await;
        if let Err(e) = w.write_all(handoff::line(msg).as_bytes()).await {
            log::event(
                Level::Warn,
                "cannot reach the supervisor",
                &[("error", e.to_string().into())],
            );
        }
    }
}

impl Channel {
    /// Take the channel, say ready with `services` restored, and read the supervisor's
    /// messages in the background.
    pub async fn start(stream: StdUnixStream, services: usize) -> Result<Channel, String> {
        stream.set_nonblocking(true).map_err(|e| e.to_string())?;
        let stream = tokio::net::UnixStream::from_std(stream).map_err(|e| e.to_string())?;
        let (read, write) = stream.into_split();
        let tx = ChannelSender(Arc::new(Mutex::new(write)));
        tx.send(&FromChild::Ready {
            pid: std::process::id(),
            version: handoff::version().to_string(),
            services,
        })
        .await;
        let (ops_tx, ops) = mpsc::channel(8);
        tokio::spawn(async move {
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                match serde_json::from_str::<ToChild>(&l) {
                    Ok(op) => {
                        if ops_tx.send(op).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => log::event(
                        Level::Warn,
                        "bad message from the supervisor",
                        &[("error", e.to_string().into())],
                    ),
                }
            }
        });
        Ok(Channel { ops, tx })
    }

    /// The next message; `None` once the supervisor is gone.
    pub async fn recv(&mut self) -> Option<ToChild> {
        self.ops.recv().await
    }

    /// A sender for answers.
    pub fn sender(&self) -> ChannelSender {
        self.tx.clone()
    }
}

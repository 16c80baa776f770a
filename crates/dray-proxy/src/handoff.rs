//! The handoff between dray-proxy's supervisor ([`crate::supervisor`], PID 1 of the
//! `kamal-proxy` container) and the server it runs as its child: the listening sockets the
//! child inherits, and the line-delimited JSON spoken over the private channel between them.
//!
//! The supervisor binds the HTTP, HTTPS (and metrics) ports and the control socket once and
//! passes them to each server it starts, so two servers — the running one and its replacement
//! — accept on the same sockets while one takes over from the other; no connection is ever
//! refused. A server's standard input is its channel to the supervisor, over which the
//! sockets come first (`SCM_RIGHTS`, no descriptor inherited through `exec`); [`FDS_ENV`] names
//! them (`http,https,control[,metrics]`) and is removed from the server's environment.
//!
//! The channel's messages: the server says [`FromChild::Ready`] once its routes are restored
//! and it accepts; the supervisor asks the old server to [`ToChild::PauseControl`] (finish the
//! control requests in hand, take no new one: the state file is final) before it starts the
//! new one, to [`ToChild::ResumeControl`] when the new one failed, and to [`ToChild::Drain`]
//! (stop accepting, finish in-flight requests and WebSockets, exit) once the new one is ready.
//! [`PROTOCOL`] is what a binary answers to `kamal-proxy supervisor protocol`; the supervisor
//! hands over only to a binary answering the same number.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::TcpListener;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use serde::{Deserialize, Serialize};

/// The handoff protocol's version (a server and its supervisor must agree).
pub const PROTOCOL: u32 = 1;

/// The environment variable telling a server it is supervised: the names of the sockets it
/// receives, in order (`http,https,control[,metrics]`).
pub const FDS_ENV: &str = "DRAY_PROXY_HANDOFF";

/// This binary's version: the crate's, with `+<label>` when built with `DRAY_PROXY_BUILD`
/// set (scripts/proxy-image sets the image tag), so two builds of one source tell apart.
pub fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| match option_env!("DRAY_PROXY_BUILD") {
        Some(label) if !label.is_empty() => format!("{}+{label}", env!("CARGO_PKG_VERSION")),
        _ => env!("CARGO_PKG_VERSION").to_string(),
    })
}

/// A message from the supervisor to a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ToChild {
    /// Finish the control requests in hand, accept no new one; answer
    /// [`FromChild::ControlPaused`].
    PauseControl,
    /// Accept control requests again (the replacement failed).
    ResumeControl,
    /// Stop accepting connections, finish what is in flight (up to `timeout_ms`), exit.
    Drain {
        /// Longest wait for in-flight requests and WebSockets, in ms.
        timeout_ms: u64,
    },
}

/// A message from a server to its supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum FromChild {
    /// Routes restored from the state file; accepting connections and control requests.
    Ready {
        /// The server's process id.
        pid: u32,
        /// Its version ([`version`]).
        version: String,
        /// The services it restored.
        services: usize,
    },
    /// No control request in hand, none accepted until [`ToChild::ResumeControl`].
    ControlPaused,
}

/// The listening sockets a supervisor hands to its servers.
#[derive(Debug)]
pub struct Sockets {
    /// The HTTP listener.
    pub http: TcpListener,
    /// The HTTPS listener.
    pub https: TcpListener,
    /// The metrics listener (`--metrics-port`), if any.
    pub metrics: Option<TcpListener>,
    /// The control socket's listener (its file belongs to the supervisor).
    pub control: UnixListener,
}

impl Sockets {
    /// The value of [`FDS_ENV`] for these sockets.
    pub fn names(&self) -> &'static str {
        if self.metrics.is_some() {
            "http,https,control,metrics"
        } else {
            "http,https,control"
        }
    }

    /// Send the sockets over `channel` (one byte with their descriptors, `SCM_RIGHTS`).
    pub fn send(&self, channel: &UnixStream) -> std::io::Result<()> {
        let mut fds: Vec<BorrowedFd<'_>> =
            vec![self.http.as_fd(), self.https.as_fd(), self.control.as_fd()];
        fds.extend(self.metrics.as_ref().map(|m| m.as_fd()));
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut cmsg = SendAncillaryBuffer::new(&mut space);
        if !cmsg.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(std::io::Error::other("too many descriptors"));
        }
        sendmsg(
            channel,
            &[IoSlice::new(b"S")],
            &mut cmsg,
            SendFlags::empty(),
        )?;
        Ok(())
    }
}

/// A supervised server's sockets and its channel to the supervisor.
#[derive(Debug)]
pub struct Inherited {
    /// The listening sockets.
    pub sockets: Sockets,
    /// The channel to the supervisor.
    pub channel: UnixStream,
}

/// When [`FDS_ENV`] is set (it is removed): the channel to the supervisor is this process's
/// standard input, and the sockets come over it. `None` when this server is not supervised.
pub fn take_inherited() -> Result<Option<Inherited>, String> {
    let Some(value) = std::env::var_os(FDS_ENV) else {
        return Ok(None);
    };
    // Called before any thread is started: nothing else reads the environment meanwhile.
    std::env::remove_var(FDS_ENV);
    let names: Vec<String> = value
        .to_string_lossy()
        .split(',')
        .map(str::to_string)
        .collect();
    let metrics = match names.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["http", "https", "control"] => false,
        ["http", "https", "control", "metrics"] => true,
        _ => {
            return Err(format!(
                "{FDS_ENV}={}: unknown sockets",
                value.to_string_lossy()
            ))
        }
    };
    let channel: UnixStream = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(UnixStream::from)
        .map_err(|e| format!("{FDS_ENV}: the supervisor's channel: {e}"))?;
    let mut fds = receive(&channel, names.len())
        .map_err(|e| format!("{FDS_ENV}: cannot receive the sockets: {e}"))?
        .into_iter();
    let mut next = || {
        fds.next()
            .ok_or_else(|| format!("{FDS_ENV}: fewer sockets than {}", names.len()))
    };
    let sockets = Sockets {
        http: TcpListener::from(next()?),
        https: TcpListener::from(next()?),
        control: UnixListener::from(next()?),
        metrics: if metrics {
            Some(TcpListener::from(next()?))
        } else {
            None
        },
    };
    Ok(Some(Inherited { sockets, channel }))
}

/// Receive `n` descriptors sent by [`Sockets::send`] (close-on-exec).
fn receive(channel: &UnixStream, n: usize) -> std::io::Result<Vec<OwnedFd>> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    recvmsg(
        channel,
        &mut [IoSliceMut::new(&mut byte)],
        &mut cmsg,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut out = Vec::new();
    for msg in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = msg {
            out.extend(fds);
        }
    }
    if out.len() != n {
        return Err(std::io::Error::other(format!(
            "{} descriptor(s) received, {n} expected",
            out.len()
        )));
    }
    Ok(out)
}

/// One message as a JSON line.
pub fn line<T: Serialize>(msg: &T) -> String {
    let mut s = serde_json::to_string(msg).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HTTP, HTTPS and control listeners (no metrics port).
    fn three_sockets() -> Sockets {
        Sockets {
            http: TcpListener::bind("127.0.0.1:0").expect("bind"),
            https: TcpListener::bind("127.0.0.1:0").expect("bind"),
            metrics: None,
            control: {
                let dir = tempfile::tempdir().expect("dir");
                UnixListener::bind(dir.path().join("c.sock")).expect("bind")
            },
        }
    }

    #[test]
    fn sockets_go_over_the_channel_and_stay_the_same_sockets() {
        let sockets = three_sockets();
        let (a, b) = UnixStream::pair().expect("pair");
        sockets.send(&a).expect("send");
        let got = receive(&b, 3).expect("receive");
        let http = TcpListener::from(got.into_iter().next().expect("http"));
        assert_eq!(
            http.local_addr().expect("addr"),
            sockets.http.local_addr().expect("addr")
        );
        assert_eq!(sockets.names(), "http,https,control");
    }

    #[test]
    fn a_wrong_number_of_descriptors_is_an_error() {
        let sockets = three_sockets();
        let (a, b) = UnixStream::pair().expect("pair");
        sockets.send(&a).expect("send");
        let e = receive(&b, 4).expect_err("4 expected");
        assert!(
            e.to_string()
                .contains("3 descriptor(s) received, 4 expected"),
            "{e}"
        );
    }

    #[test]
    fn messages_are_one_json_line_each() {
        assert_eq!(
            line(&ToChild::Drain { timeout_ms: 30000 }),
            "{\"op\":\"drain\",\"timeout_ms\":30000}\n"
        );
        let ready: FromChild =
            serde_json::from_str(r#"{"event":"ready","pid":7,"version":"0.1.0","services":2}"#)
                .expect("parse");
        assert_eq!(
            ready,
            FromChild::Ready {
                pid: 7,
                version: "0.1.0".into(),
                services: 2
            }
        );
    }
}

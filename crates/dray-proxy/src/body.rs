//! The response body: a target's streamed body (holding its in-flight guard until done) or a
//! page made by the proxy.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;

use super::target::InflightGuard;

/// Body of every response dray-proxy sends.
#[derive(Debug)]
pub enum ProxyBody {
    /// Streamed from the target; the guard ends the request when the body is dropped.
    Upstream {
        /// The target's body.
        inner: Incoming,
        /// Counts the request as in flight.
        guard: Option<InflightGuard>,
    },
    /// Made here (error and maintenance pages).
    Local(Full<Bytes>),
}

impl ProxyBody {
    /// A body from text.
    pub fn text(s: impl Into<String>) -> ProxyBody {
        ProxyBody::Local(Full::new(Bytes::from(s.into())))
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Upstream { inner, guard } => {
                let polled = Pin::new(inner).poll_frame(cx);
                if let Poll::Ready(None) | Poll::Ready(Some(Err(_))) = polled {
                    // Done: the request is no longer in flight.
                    guard.take();
                }
                polled
            }
            ProxyBody::Local(full) => match Pin::new(full).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Upstream { inner, .. } => inner.is_end_stream(),
            ProxyBody::Local(full) => full.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Upstream { inner, .. } => inner.size_hint(),
            ProxyBody::Local(full) => full.size_hint(),
        }
    }
}

//! Bodies: a target's streamed response (holding its in-flight guard until done), a page made
//! by the proxy, and bodies held whole by `--buffer-requests` / `--buffer-responses`
//! ([`Buffered`]: in memory up to `--buffer-memory` bytes, the rest spilled to an unnamed
//! temporary file, as kamal-proxy does).

use std::io::SeekFrom;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncSeekExt, AsyncWriteExt, ReadBuf};

use super::target::InflightGuard;

/// The error type of the proxy's bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
    /// Read whole from the target first (`--buffer-responses`).
    Buffered(Buffered),
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
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ProxyBody::Upstream { inner, guard } => {
                let polled = Pin::new(inner).poll_frame(cx);
                if let Poll::Ready(None) | Poll::Ready(Some(Err(_))) = polled {
                    // Done: the request is no longer in flight.
                    guard.take();
                }
                polled.map_err(BoxError::from)
            }
            ProxyBody::Buffered(b) => Pin::new(b).poll_frame(cx).map_err(BoxError::from),
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
            ProxyBody::Buffered(b) => b.is_end_stream(),
            ProxyBody::Local(full) => full.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Upstream { inner, .. } => inner.size_hint(),
            ProxyBody::Buffered(b) => b.size_hint(),
            ProxyBody::Local(full) => full.size_hint(),
        }
    }
}

/// Body of every request sent to a target: the client's, streamed, or held whole first.
#[derive(Debug)]
pub enum RequestBody {
    /// Streamed from the client.
    Stream(Incoming),
    /// Read whole first (`--buffer-requests`).
    Buffered(Buffered),
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RequestBody::Stream(b) => Pin::new(b).poll_frame(cx).map_err(BoxError::from),
            RequestBody::Buffered(b) => Pin::new(b).poll_frame(cx).map_err(BoxError::from),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Stream(b) => b.is_end_stream(),
            RequestBody::Buffered(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Stream(b) => b.size_hint(),
            RequestBody::Buffered(b) => b.size_hint(),
        }
    }
}

/// Why a body could not be buffered.
#[derive(Debug)]
pub enum BufferError {
    /// Longer than the limit (kamal-proxy's `ErrMaximumSizeExceeded`).
    TooLarge,
    /// Reading the body failed (client or target gone, malformed chunking).
    Read(BoxError),
    /// The spill file could not be written.
    Spill(std::io::Error),
}

/// A whole body: the first `--buffer-memory` bytes in memory, the rest in an unnamed temporary
/// file (removed by the system when closed).
#[derive(Debug)]
pub struct Buffered {
    memory: Option<Bytes>,
    file: Option<tokio::fs::File>,
    /// Bytes not sent yet.
    remaining: u64,
}

/// Read chunks of the spill file of this size.
const SPILL_CHUNK: usize = 32 * 1024;

impl Buffered {
    /// Read `body` whole: at most `max_bytes` (0: no limit), in memory up to `max_memory`.
    pub async fn read<B>(body: B, max_bytes: u64, max_memory: u64) -> Result<Buffered, BufferError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        let mut body = body;
        let mut memory = BytesMut::new();
        let mut file: Option<tokio::fs::File> = None;
        let mut total: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BufferError::Read(e.into()))?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers are not kept
            };
            let len = data.len() as u64;
            if max_bytes > 0 && total + len > max_bytes {
                return Err(BufferError::TooLarge);
            }
            total += len;
            let room = max_memory.saturating_sub(memory.len() as u64);
            let in_memory = usize::try_from(room.min(len)).unwrap_or(data.len());
            memory.extend_from_slice(&data[..in_memory]);
            if in_memory < data.len() {
                let f = match &mut file {
                    Some(f) => f,
                    None => {
                        let f = tokio::task::spawn_blocking(tempfile::tempfile)
                            .await
                            .map_err(|e| BufferError::Spill(std::io::Error::other(e)))?
                            .map_err(BufferError::Spill)?;
                        file.insert(tokio::fs::File::from_std(f))
                    }
                };
                f.write_all(&data[in_memory..])
                    .await
                    .map_err(BufferError::Spill)?;
            }
        }
        if let Some(f) = &mut file {
            f.flush().await.map_err(BufferError::Spill)?;
            f.seek(SeekFrom::Start(0))
                .await
                .map_err(BufferError::Spill)?;
        }
        Ok(Buffered {
            memory: (!memory.is_empty()).then(|| memory.freeze()),
            file,
            remaining: total,
        })
    }

    /// Whether part of the body is on disk.
    pub fn spilled(&self) -> bool {
        self.file.is_some()
    }

    /// Its length in bytes (not yet sent).
    pub fn len(&self) -> u64 {
        self.remaining
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl Body for Buffered {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if let Some(m) = this.memory.take() {
            this.remaining = this.remaining.saturating_sub(m.len() as u64);
            return Poll::Ready(Some(Ok(Frame::data(m))));
        }
        let Some(file) = &mut this.file else {
            return Poll::Ready(None);
        };
        if this.remaining == 0 {
            this.file = None;
            return Poll::Ready(None);
        }
        let mut chunk = vec![0u8; SPILL_CHUNK];
        let mut buf = ReadBuf::new(&mut chunk);
        match Pin::new(file).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                if n == 0 {
                    this.file = None;
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the spill file ended early",
                    ))));
                }
                this.remaining = this.remaining.saturating_sub(n as u64);
                chunk.truncate(n);
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(b: Buffered) -> Vec<u8> {
        b.collect().await.expect("read back").to_bytes().to_vec()
    }

    #[tokio::test]
    async fn small_bodies_stay_in_memory() {
        let b = Buffered::read(Full::new(Bytes::from_static(b"hello")), 0, 1024)
            .await
            .expect("buffer");
        assert!(!b.spilled());
        assert_eq!(b.len(), 5);
        assert_eq!(collect(b).await, b"hello");
    }

    #[tokio::test]
    async fn bodies_beyond_the_memory_size_spill_to_disk() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let b = Buffered::read(Full::new(Bytes::from(data.clone())), 0, 1000)
            .await
            .expect("buffer");
        assert!(b.spilled());
        assert_eq!(b.len(), 100_000);
        assert_eq!(collect(b).await, data);
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused() {
        let r = Buffered::read(Full::new(Bytes::from_static(b"0123456789")), 9, 4).await;
        assert!(matches!(r, Err(BufferError::TooLarge)), "{r:?}");
        let ok = Buffered::read(Full::new(Bytes::from_static(b"0123456789")), 10, 4).await;
        assert!(ok.is_ok());
    }
}

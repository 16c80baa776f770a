//! A target: the upstream `host:port` of a service, resolved once (no DNS per request), with
//! the count of requests in flight on it so a switch-over can drain it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Notify;

/// One upstream server.
#[derive(Debug)]
pub struct Target {
    authority: String,
    addr: RwLock<Option<SocketAddr>>,
    inflight: AtomicUsize,
    idle: Notify,
    closing: AtomicBool,
    closed: Notify,
    healthy: AtomicBool,
}

impl Target {
    /// A target for `authority` (`host:port`), not resolved yet.
    pub fn new(authority: &str) -> Arc<Target> {
        Arc::new(Target {
            authority: authority.to_string(),
            addr: RwLock::new(None),
            inflight: AtomicUsize::new(0),
            idle: Notify::new(),
            closing: AtomicBool::new(false),
            closed: Notify::new(),
            healthy: AtomicBool::new(true),
        })
    }

    /// The `host:port` as deployed.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The resolved address, if resolution succeeded.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr.read().map(|a| *a).unwrap_or(None)
    }

    /// Resolve the authority (one DNS look-up; Docker's DNS for container ids) and remember
    /// the first address, IPv4 preferred.
    pub async fn resolve(&self) -> Result<SocketAddr, String> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(self.authority.as_str())
            .await
            .map_err(|e| format!("cannot resolve target {}: {e}", self.authority))?
            .collect();
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .copied()
            .ok_or_else(|| format!("target {} resolves to no address", self.authority))?;
        if let Ok(mut slot) = self.addr.write() {
            *slot = Some(addr);
        }
        Ok(addr)
    }

    /// Whether the target takes requests: true until a health check of a service with several
    /// targets fails, and again after one passes.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    /// Record a health check's verdict; the previous one.
    pub fn set_healthy(&self, healthy: bool) -> bool {
        self.healthy.swap(healthy, Ordering::SeqCst)
    }

    /// Whether [`Target::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Count one request in flight until the returned guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InflightGuard {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        InflightGuard {
            target: Arc::clone(self),
        }
    }

    /// Requests in flight now.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::SeqCst)
    }

    /// Wait until no request is in flight, or `timeout`; true when drained.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inflight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.inflight() == 0;
            }
        }
    }
}

impl Target {
    /// End the long-lived connections (WebSockets) still open on this target: its drain
    /// timed out, or it was removed.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.closed.notify_waiters();
    }

    /// Resolves when [`Target::close`] is called.
    pub async fn closed(&self) {
        loop {
            let notified = self.closed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.closing.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

/// Marks one request in flight on a target; dropping it (when the response body is done)
/// ends the request.
#[derive(Debug)]
pub struct InflightGuard {
    target: Arc<Target>,
}

impl InflightGuard {
    /// The target the request went to.
    pub fn target(&self) -> &Arc<Target> {
        &self.target
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if self.target.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.target.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_in_flight_requests() {
        let t = Target::new("127.0.0.1:1");
        let guard = t.begin();
        assert_eq!(t.inflight(), 1);
        assert!(!t.drain(Duration::from_millis(20)).await);
        let waiter = {
            let t = Arc::clone(&t);
            tokio::spawn(async move { t.drain(Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(guard);
        assert!(waiter.await.expect("join"));
        assert_eq!(t.inflight(), 0);
    }

    #[tokio::test]
    async fn loopback_target_resolves() {
        let t = Target::new("localhost:8080");
        let addr = t.resolve().await.expect("resolve");
        assert_eq!(addr.port(), 8080);
        assert_eq!(t.addr(), Some(addr));
    }
}

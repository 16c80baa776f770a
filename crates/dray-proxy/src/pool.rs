//! The targets of a service (or of its rollout), kamal-proxy's `LoadBalancer`: writer targets
//! (`--target`, one or more) and read targets (`--read-target`). A deploy health-checks every
//! one and switches only when all are healthy. With more than one target, each keeps being
//! checked at the service's interval: a failed check takes it out of the rotation, a passing
//! one puts it back (one target is never taken out: there would be nothing to send to
//! instead). Requests go to the healthy target with the fewest requests in flight, ties
//! broken round-robin, so equal targets share the load evenly and a slow one gets less.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::health;
use super::log::{self, Level};
use super::service::HealthCheck;
use super::target::Target;

/// The targets requests of one service (or its rollout) are spread over.
#[derive(Debug)]
pub struct Pool {
    writers: Vec<Arc<Target>>,
    readers: Vec<Arc<Target>>,
    next_writer: AtomicUsize,
    next_reader: AtomicUsize,
}

impl Pool {
    /// A pool of not yet resolved targets.
    pub fn new(writers: &[String], readers: &[String]) -> Arc<Pool> {
        Arc::new(Pool {
            writers: writers.iter().map(|t| Target::new(t)).collect(),
            readers: readers.iter().map(|t| Target::new(t)).collect(),
            next_writer: AtomicUsize::new(0),
            next_reader: AtomicUsize::new(0),
        })
    }

    /// The writer targets, in deploy order.
    pub fn writers(&self) -> &[Arc<Target>] {
        &self.writers
    }

    /// The read targets, in deploy order.
    pub fn readers(&self) -> &[Arc<Target>] {
        &self.readers
    }

    /// Writers then readers.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Target>> {
        self.writers.iter().chain(self.readers.iter())
    }

    /// The first writer (what a TLS on-demand path is asked of).
    pub fn first(&self) -> Option<&Arc<Target>> {
        self.writers.first()
    }

    /// Whether there are read targets.
    pub fn has_readers(&self) -> bool {
        !self.readers.is_empty()
    }

    /// The target for a request: a healthy reader for a read when there is one, else a
    /// healthy writer; `None` when no target is healthy (the request gets 503).
    pub fn pick(&self, read: bool) -> Option<Arc<Target>> {
        if read {
            if let Some(t) = least_busy(&self.readers, &self.next_reader) {
                return Some(t);
            }
        }
        least_busy(&self.writers, &self.next_writer)
    }

    /// Requests in flight on all targets.
    pub fn inflight(&self) -> usize {
        self.all().map(|t| t.inflight()).sum()
    }

    /// Health-check every target in parallel until each is healthy, or the first failure
    /// past `timeout` (which names its target).
    pub async fn wait_healthy(&self, hc: &HealthCheck, timeout: Duration) -> Result<(), String> {
        let checks = self.all().map(|t| {
            let t = Arc::clone(t);
            let hc = hc.clone();
            tokio::spawn(async move { health::wait_healthy(&t, &hc, timeout).await })
        });
        let mut first_error = None;
        for check in checks.collect::<Vec<_>>() {
            let outcome = match check.await {
                Ok(r) => r,
                Err(e) => Err(format!("health check failed: {e}")),
            };
            if let (Err(e), None) = (outcome, &first_error) {
                first_error = Some(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Resolve every target (a forced deploy: no health check).
    pub async fn resolve(&self) -> Result<(), String> {
        for t in self.all() {
            t.resolve().await?;
        }
        Ok(())
    }

    /// With more than one target, keep checking each every `hc.interval` and take the
    /// failing ones out of the rotation, until the pool is closed or dropped.
    pub fn monitor(&self, service: &str, hc: &HealthCheck) {
        if self.writers.len() + self.readers.len() < 2 {
            return;
        }
        for t in self.all() {
            let weak: Weak<Target> = Arc::downgrade(t);
            let hc = hc.clone();
            let service = service.to_string();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(hc.interval).await;
                    let Some(target) = weak.upgrade() else {
                        return;
                    };
                    if target.is_closed() {
                        return;
                    }
                    let outcome = health::check(&target, &hc).await;
                    let healthy = outcome.is_ok();
                    if target.set_healthy(healthy) != healthy && !target.is_closed() {
                        let mut fields = vec![
                            ("service", service.clone().into()),
                            ("target", target.authority().into()),
                        ];
                        if let Err(e) = outcome {
                            fields.push(("error", e.into()));
                        }
                        log::event(
                            if healthy { Level::Info } else { Level::Warn },
                            if healthy {
                                "Target healthy"
                            } else {
                                "Target unhealthy"
                            },
                            &fields,
                        );
                    }
                }
            });
        }
    }

    /// Wait until no request is in flight on any target (all drained in parallel), or
    /// `timeout`; true when drained.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let mut drained = true;
        let waits: Vec<_> = self
            .all()
            .map(|t| {
                let t = Arc::clone(t);
                tokio::spawn(async move { t.drain(timeout).await })
            })
            .collect();
        for w in waits {
            drained &= w.await.unwrap_or(false);
        }
        drained
    }

    /// Stop the health checks and end what is still open (WebSockets) on every target.
    pub fn close(&self) {
        for t in self.all() {
            t.close();
        }
    }

    /// The targets as `list` shows them: writers then readers, comma-separated (kamal-proxy's
    /// `Targets().Names()`), each with its resolved address when that differs and an
    /// `(unhealthy)` mark when taken out of the rotation.
    pub fn describe(&self) -> String {
        self.all()
            .map(|t| {
                let mut s = t.authority().to_string();
                if let Some(a) = t.addr() {
                    if a.to_string() != t.authority() {
                        s.push_str(&format!(" ({a})"));
                    }
                }
                if !t.healthy() {
                    s.push_str(" (unhealthy)");
                }
                s
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The healthy target with the fewest requests in flight, the search starting one further on
/// each call so that ties rotate.
fn least_busy(targets: &[Arc<Target>], next: &AtomicUsize) -> Option<Arc<Target>> {
    let n = targets.len();
    if n == 0 {
        return None;
    }
    let start = next.fetch_add(1, Ordering::Relaxed) % n;
    let mut best: Option<&Arc<Target>> = None;
    for i in 0..n {
        let t = &targets[(start + i) % n];
        if !t.healthy() {
            continue;
        }
        if best.is_none_or(|b| t.inflight() < b.inflight()) {
            best = Some(t);
        }
    }
    best.cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn idle_targets_take_turns() {
        let pool = Pool::new(&names(&["a:1", "b:1", "c:1"]), &[]);
        let mut seen = std::collections::HashMap::new();
        for _ in 0..300 {
            let t = pool.pick(false).expect("a target");
            *seen.entry(t.authority().to_string()).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 3);
        assert!(seen.values().all(|n| *n == 100), "{seen:?}");
    }

    #[test]
    fn the_least_busy_and_healthy_target_is_picked() {
        let pool = Pool::new(&names(&["a:1", "b:1"]), &[]);
        let busy = pool.writers()[0].begin();
        for _ in 0..4 {
            assert_eq!(pool.pick(false).expect("b").authority(), "b:1");
        }
        drop(busy);
        pool.writers()[1].set_healthy(false);
        for _ in 0..4 {
            assert_eq!(pool.pick(false).expect("a").authority(), "a:1");
        }
        pool.writers()[0].set_healthy(false);
        assert!(pool.pick(false).is_none());
    }

    #[test]
    fn reads_go_to_healthy_readers_else_to_writers() {
        let pool = Pool::new(&names(&["w:1"]), &names(&["r1:1", "r2:1"]));
        assert_eq!(pool.pick(false).expect("w").authority(), "w:1");
        assert!(pool.pick(true).expect("r").authority().starts_with('r'));
        for r in pool.readers() {
            r.set_healthy(false);
        }
        assert_eq!(pool.pick(true).expect("w").authority(), "w:1");
        assert_eq!(pool.describe(), "w:1,r1:1 (unhealthy),r2:1 (unhealthy)");
    }
}

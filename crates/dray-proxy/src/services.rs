//! The live services and the operations on them: deploy (health check, atomic switch, drain),
//! remove, stop, resume, list. Every change rebuilds the route table, swaps it in under a
//! write lock, and saves the state.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::acme::on_demand::{OnDemandCheck, OnDemandUrl};
use super::loaded::{self, CertSource, Loaded};
use super::log::{self, Level};
use super::pool::Pool;
use super::router::{normalize_host, RouteTable};
use super::service::{RolloutSpec, RolloutSplit, ServiceSpec, ServiceState, ROLLOUT_COOKIE};
use super::state;
use super::target::{InflightGuard, Target};

/// kamal-proxy's writer affinity cookie: set after a write (its value the time in Unix
/// milliseconds until which the client's reads still go to the writers).
pub const WRITER_COOKIE: &str = "kamal-writer";

/// A service as it runs: its spec, its (shared) targets and what was loaded for it.
#[derive(Debug)]
pub struct Live {
    /// What was deployed.
    pub spec: ServiceSpec,
    /// Where requests go.
    pub pool: Arc<Pool>,
    /// The rollout targets (`rollout deploy`), when there are (`spec.rollout`).
    pub rollout: Option<Arc<Pool>>,
    /// Certificate and error pages.
    pub loaded: Loaded,
}

/// Where a request goes, and how it was classified.
#[derive(Debug)]
pub struct Pick {
    /// The target; `None` when none is healthy.
    pub target: Option<Arc<Target>>,
    /// The response gets a fresh writer affinity cookie: the request is not a read, and the
    /// service has read targets and an affinity timeout.
    pub writer_affinity: bool,
}

impl Live {
    /// The target of a request: from the rollout targets when the service has a split and
    /// the request's `kamal-rollout` cookie falls in it, else from the service's; a read
    /// (`GET`/`HEAD`, not a WebSocket unless `--read-target-websockets`) goes to a read
    /// target unless its `kamal-writer` cookie has not expired yet.
    pub fn pick(&self, method: &http::Method, headers: &http::HeaderMap) -> Pick {
        let cookies = || {
            headers
                .get_all(http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
        };
        let mut pool = &self.pool;
        if let (
            Some(rollout),
            Some(RolloutSpec {
                split: Some(split), ..
            }),
        ) = (&self.rollout, &self.spec.rollout)
        {
            if let Some(value) = cookie_value(cookies(), ROLLOUT_COOKIE) {
                if split.uses_rollout(value) {
                    pool = rollout;
                }
            }
        }
        let read = is_read(method, headers, self.spec.read_targets_accept_websockets);
        let as_read = read && pool.has_readers() && !has_writer_cookie(cookies());
        Pick {
            target: pool.pick(as_read),
            writer_affinity: !read
                && pool.has_readers()
                && !self.spec.writer_affinity_timeout.is_zero(),
        }
    }

    fn with_spec(&self, spec: ServiceSpec) -> Live {
        Live {
            spec,
            pool: Arc::clone(&self.pool),
            rollout: self.rollout.clone(),
            loaded: self.loaded.clone(),
        }
    }

    /// Every pool (the service's, the rollout's).
    fn pools(&self) -> impl Iterator<Item = &Arc<Pool>> {
        std::iter::once(&self.pool).chain(self.rollout.iter())
    }
}

/// kamal-proxy's read requests: `GET` and `HEAD`, but WebSocket upgrades only when
/// `websockets` (`--read-target-websockets`).
pub fn is_read(method: &http::Method, headers: &http::HeaderMap, websockets: bool) -> bool {
    let websocket = method == http::Method::GET
        && headers
            .get(http::header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("upgrade"));
    (method == http::Method::GET || method == http::Method::HEAD) && (websockets || !websocket)
}

/// Whether the `kamal-writer` cookie holds a time (Unix ms) still in the future.
fn has_writer_cookie<'a>(cookies: impl Iterator<Item = &'a str>) -> bool {
    let Some(value) = cookie_value(cookies, WRITER_COOKIE) else {
        return false;
    };
    let Ok(until) = value.parse::<i64>() else {
        return false;
    };
    unix_millis() < until
}

/// Now, in Unix milliseconds.
pub fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The value of cookie `name` in `Cookie` header values (the first one; quotes removed, as
/// Go's `Request.Cookie`).
pub fn cookie_value<'a>(cookies: impl Iterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    for header in cookies {
        for pair in header.split(';') {
            if let Some((n, v)) = pair.trim().split_once('=') {
                if n.trim() == name {
                    let v = v.trim();
                    return Some(
                        v.strip_prefix('"')
                            .and_then(|x| x.strip_suffix('"'))
                            .unwrap_or(v),
                    );
                }
            }
        }
    }
    None
}

/// A request's TLS settings: the service's own when it serves `/`, else those of the service
/// serving `/` on its first host (kamal-proxy's `syncTLSOptionsFromRootDomain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TlsMode {
    /// Served over https.
    pub enabled: bool,
    /// Plain HTTP gets a 301 to https.
    pub redirect: bool,
}

/// What a request was routed to.
#[derive(Debug)]
pub enum Routed {
    /// A service.
    Found {
        /// The service.
        live: Arc<Live>,
        /// The prefix that matched.
        prefix: String,
        /// Its TLS settings.
        tls: TlsMode,
        /// Counts the request on the target until dropped; `None` when the service is stopped
        /// or none of its targets is healthy.
        guard: Option<InflightGuard>,
        /// The response sets the writer affinity cookie (see [`Pick`]).
        writer_affinity: bool,
    },
    /// No service serves this host and path.
    NotFound,
}

/// All services of the proxy.
#[derive(Debug)]
pub struct Services {
    table: RwLock<Arc<RouteTable<Arc<Live>>>>,
    default_tls_host: RwLock<Option<String>>,
    by_name: Mutex<BTreeMap<String, Arc<Live>>>,
    deploy_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    state_dir: Option<PathBuf>,
    /// Unknown top-level fields of the restored state, written back with it.
    state_extra: Mutex<serde_json::Map<String, serde_json::Value>>,
}

impl Services {
    /// No services; state saved in `state_dir` when given.
    pub fn new(state_dir: Option<PathBuf>) -> Services {
        Services {
            table: RwLock::new(Arc::new(RouteTable::default())),
            default_tls_host: RwLock::new(None),
            by_name: Mutex::new(BTreeMap::new()),
            deploy_locks: Mutex::new(HashMap::new()),
            state_dir,
            state_extra: Mutex::new(serde_json::Map::new()),
        }
    }

    /// Route a request; when forwarding, the request is counted in flight on the target
    /// under the table's read lock, so a switch-over that follows will wait for it. The
    /// method and headers pick the target ([`Live::pick`]).
    pub fn route(
        &self,
        host: &str,
        path: &str,
        method: &http::Method,
        headers: &http::HeaderMap,
    ) -> Routed {
        let Ok(table) = self.table.read() else {
            return Routed::NotFound;
        };
        let Some(m) = table.find(host, path) else {
            return Routed::NotFound;
        };
        let live = Arc::clone(m.value);
        let tls = tls_mode(&table, &live.spec);
        let (guard, writer_affinity) = match live.spec.state {
            ServiceState::Stopped { .. } => (None, false),
            ServiceState::Running => {
                let pick = live.pick(method, headers);
                (pick.target.map(|t| t.begin()), pick.writer_affinity)
            }
        };
        Routed::Found {
            prefix: m.prefix.to_string(),
            live,
            tls,
            guard,
            writer_affinity,
        }
    }

    /// The certificate for a TLS hello naming `sni` (none: the first TLS service's first
    /// host), from the service serving that host's root path when it has `--tls`; with the
    /// host name it was looked up by.
    pub fn tls_source(&self, sni: Option<&str>) -> Option<(String, CertSource)> {
        let host = match sni {
            Some(h) if !h.is_empty() => normalize_host(h),
            _ => self.default_tls_host.read().ok()?.clone()?,
        };
        let table = self.table.read().ok()?;
        let live = table.find(&host, "/")?.value;
        if !live.spec.tls {
            return None;
        }
        live.loaded.cert.clone().map(|c| (host, c))
    }

    /// The on-demand check of the TLS service serving `host`'s root path, if it has one.
    pub fn on_demand(&self, host: &str) -> Option<OnDemandCheck> {
        let table = self.table.read().ok()?;
        let live = table.find(host, "/")?.value;
        let url = live.spec.tls_settings.on_demand_url.as_deref()?;
        if !live.spec.tls {
            return None;
        }
        Some(OnDemandCheck {
            url: OnDemandUrl::parse(url).ok()?,
            target: Arc::clone(live.pool.first()?),
        })
    }

    /// Restore saved services at once; their targets are resolved in the background, in
    /// parallel (and again on first request), so a target that no longer resolves — a container
    /// gone while the proxy was down — never delays start-up.
    pub async fn restore(&self, saved: state::SavedState) {
        if let Ok(mut extra) = self.state_extra.lock() {
            *extra = saved.extra;
        }
        let specs = saved.services;
        let restored: Vec<Arc<Live>> = specs
            .into_iter()
            .map(|spec| {
                let pool = Pool::new(&spec.writer_targets(), &spec.read_targets);
                pool.monitor(&spec.name, &spec.options.health_check);
                let rollout = spec.rollout.as_ref().map(|r| {
                    let pool = Pool::new(&r.writer_targets(), &r.read_targets);
                    pool.monitor(&spec.name, &spec.options.health_check);
                    pool
                });
                let loaded = loaded::load_restored(&spec, self.state_dir.as_deref());
                Arc::new(Live {
                    spec,
                    pool,
                    rollout,
                    loaded,
                })
            })
            .collect();
        let count = restored.len();
        let background = restored.clone();
        self.apply(|map| {
            for live in restored {
                map.insert(live.spec.name.clone(), live);
            }
        });
        log::event(
            Level::Info,
            "Restored saved state",
            &[("services", count.into())],
        );
        for live in background {
            let targets: Vec<Arc<Target>> = live.pools().flat_map(|p| p.all().cloned()).collect();
            for target in targets {
                let name = live.spec.name.clone();
                tokio::spawn(async move {
                    let outcome =
                        tokio::time::timeout(Duration::from_secs(5), target.resolve()).await;
                    let error = match outcome {
                        Ok(Ok(_)) => return,
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => "no answer within 5s".to_string(),
                    };
                    log::event(
                        Level::Warn,
                        "Target not resolvable yet",
                        &[
                            ("service", name.into()),
                            ("target", target.authority().into()),
                            ("error", error.into()),
                        ],
                    );
                });
            }
        }
    }

    /// Deploy: resolve and health-check every new target, switch to them all at once when
    /// each is healthy, drain the old ones.
    pub async fn deploy(
        &self,
        spec: ServiceSpec,
        deploy_timeout: Duration,
        drain_timeout: Duration,
        force: bool,
    ) -> Result<String, String> {
        let lock = self.deploy_lock(&spec.name);
        let _serial = lock.lock().await;
        self.check_conflict(&spec)?;
        // Certificate and pages first: a file that does not load fails the deploy at once,
        // and the running route is left as it is.
        let loaded = loaded::load(&spec, self.state_dir.as_deref()).inspect_err(|e| {
            log::event(
                Level::Error,
                "Deploy failed",
                &[
                    ("service", spec.name.clone().into()),
                    ("error", e.clone().into()),
                ],
            );
        })?;
        let name = spec.name.clone();
        log::event(
            Level::Info,
            "Deploying",
            &[
                ("service", name.clone().into()),
                ("targets", spec.writer_targets().into()),
                ("read_targets", spec.read_targets.clone().into()),
            ],
        );
        let pool = Pool::new(&spec.writer_targets(), &spec.read_targets);
        if force {
            pool.resolve().await?;
        } else {
            pool.wait_healthy(&spec.options.health_check, deploy_timeout)
                .await
                .inspect_err(|e| {
                    log::event(
                        Level::Error,
                        "Deploy failed",
                        &[
                            ("service", name.clone().into()),
                            ("error", e.clone().into()),
                        ],
                    );
                })?;
        }
        let addr = pool
            .all()
            .map(|t| {
                t.addr()
                    .map_or_else(|| t.authority().to_string(), |a| a.to_string())
            })
            .collect::<Vec<_>>()
            .join(",");
        let mut old = None;
        let mut conflict = None;
        self.apply(|map| {
            let previous = map.get(&name).cloned();
            if let Some(other) = conflicting(map, &spec) {
                conflict = Some(other);
                return;
            }
            let mut spec = spec.clone();
            let mut rollout = None;
            if let Some(p) = previous {
                // Maintenance and the rollout (kamal-proxy's other slot) stay as they were.
                spec.state = p.spec.state.clone();
                spec.rollout = p.spec.rollout.clone();
                rollout = p.rollout.clone();
            }
            pool.monitor(&name, &spec.options.health_check);
            old = map.insert(
                name.clone(),
                Arc::new(Live {
                    spec,
                    pool: Arc::clone(&pool),
                    rollout,
                    loaded,
                }),
            );
        });
        if let Some(other) = conflict {
            return Err(format!(
                "host settings conflict with another service ({other})"
            ));
        }
        let mut drained = true;
        if let Some(old) = old {
            drained = old.pool.drain(drain_timeout).await;
            // What is still open past the drain timeout (WebSockets) is closed.
            old.pool.close();
        }
        log::event(
            Level::Info,
            "Deployed",
            &[
                ("service", name.clone().into()),
                ("target", addr.clone().into()),
                ("drained", drained.into()),
            ],
        );
        Ok(format!("Deployed {name} to {addr}"))
    }

    /// Forget a service.
    pub fn remove(&self, name: &str) -> Result<String, String> {
        let mut found = None;
        self.apply(|map| found = map.remove(name));
        if let Some(live) = found {
            for pool in live.pools() {
                pool.close();
            }
            log::event(Level::Info, "Removed", &[("service", name.into())]);
            Ok(format!("Removed {name}"))
        } else {
            Err(format!("service not found: {name}"))
        }
    }

    /// Maintenance: new requests get a 503 page with `message`; in-flight ones may finish for
    /// up to `drain_timeout`.
    pub async fn stop(
        &self,
        name: &str,
        drain_timeout: Duration,
        message: String,
    ) -> Result<String, String> {
        let pool = self.set_state(name, ServiceState::Stopped { message })?;
        pool.drain(drain_timeout).await;
        log::event(Level::Info, "Stopped", &[("service", name.into())]);
        Ok(format!("Stopped {name}"))
    }

    /// End maintenance.
    pub fn resume(&self, name: &str) -> Result<String, String> {
        self.set_state(name, ServiceState::Running)?;
        log::event(Level::Info, "Resumed", &[("service", name.into())]);
        Ok(format!("Resumed {name}"))
    }

    /// A table of the services: name, hosts, paths, target, state, TLS.
    pub fn list(&self) -> String {
        let rows: Vec<[String; 6]> = self
            .snapshot()
            .iter()
            .map(|l| {
                let s = &l.spec;
                let rollout = match (&s.rollout, &l.rollout) {
                    (Some(r), Some(pool)) => {
                        let addr = pool.describe();
                        match &r.split {
                            Some(split) => format!(
                                " rollout {addr} {}%{}",
                                split.percentage,
                                if split.allowlist.is_empty() {
                                    String::new()
                                } else {
                                    format!(" +[{}]", split.allowlist.join(","))
                                }
                            ),
                            None => format!(" rollout {addr} (stopped)"),
                        }
                    }
                    _ => String::new(),
                };
                let state = match &s.state {
                    ServiceState::Running => "running".to_string(),
                    ServiceState::Stopped { .. } => "stopped".to_string(),
                };
                [
                    s.name.clone(),
                    if s.hosts.is_empty() {
                        "*".into()
                    } else {
                        s.hosts.join(",")
                    },
                    s.effective_prefixes().join(","),
                    format!("{}{rollout}", l.pool.describe()),
                    state,
                    if s.tls { "yes".into() } else { "no".into() },
                ]
            })
            .collect();
        format_table(["Service", "Host", "Path", "Target", "State", "TLS"], &rows)
    }

    /// Every live service, in name order.
    pub fn snapshot(&self) -> Vec<Arc<Live>> {
        self.by_name
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Each service's requests in flight now (its target's and its rollout target's).
    pub fn in_flight(&self) -> Vec<(String, usize)> {
        self.snapshot()
            .iter()
            .map(|l| (l.spec.name.clone(), l.pools().map(|p| p.inflight()).sum()))
            .collect()
    }

    /// Wait until the current targets have no request in flight (shutdown), up to `timeout`.
    pub async fn drain_all(&self, timeout: Duration) {
        for live in self.snapshot() {
            for pool in live.pools() {
                pool.drain(timeout).await;
            }
        }
    }

    fn set_state(&self, name: &str, state: ServiceState) -> Result<Arc<Pool>, String> {
        let mut target = None;
        self.apply(|map| {
            if let Some(live) = map.get(name) {
                let mut spec = live.spec.clone();
                spec.state = state;
                target = Some(Arc::clone(&live.pool));
                let next = live.with_spec(spec);
                map.insert(name.to_string(), Arc::new(next));
            }
        });
        target.ok_or_else(|| format!("service not found: {name}"))
    }

    /// `rollout deploy`: health-check `target` with the service's health check, make it the
    /// service's rollout target (the split, if set, stays), drain the one it replaces.
    pub async fn rollout_deploy(
        &self,
        name: &str,
        targets: &[String],
        read_targets: &[String],
        deploy_timeout: Duration,
        drain_timeout: Duration,
    ) -> Result<String, String> {
        if targets.is_empty() {
            return Err("a --target is required".into());
        }
        let lock = self.deploy_lock(name);
        let _serial = lock.lock().await;
        let health = self
            .get(name)
            .ok_or_else(|| "service not found".to_string())?
            .spec
            .options
            .health_check
            .clone();
        log::event(
            Level::Info,
            "Deploying for rollout",
            &[
                ("service", name.into()),
                ("targets", targets.to_vec().into()),
                ("read_targets", read_targets.to_vec().into()),
            ],
        );
        let new_pool = Pool::new(targets, read_targets);
        new_pool.wait_healthy(&health, deploy_timeout).await?;
        let mut replaced = None;
        let mut found = false;
        self.apply(|map| {
            if let Some(live) = map.get(name) {
                found = true;
                let mut spec = live.spec.clone();
                let split = spec.rollout.take().and_then(|r| r.split);
                let mut rollout = RolloutSpec {
                    target: String::new(),
                    targets: Vec::new(),
                    read_targets: read_targets.to_vec(),
                    split,
                };
                rollout.target = targets.first().cloned().unwrap_or_default();
                if targets.len() > 1 {
                    rollout.targets = targets.to_vec();
                }
                spec.rollout = Some(rollout);
                new_pool.monitor(name, &health);
                let mut next = live.with_spec(spec);
                replaced = next.rollout.replace(Arc::clone(&new_pool));
                map.insert(name.to_string(), Arc::new(next));
            }
        });
        if !found {
            return Err("service not found".into());
        }
        if let Some(old) = replaced {
            old.drain(drain_timeout).await;
            old.close();
        }
        log::event(
            Level::Info,
            "Deployed for rollout",
            &[
                ("service", name.into()),
                ("targets", targets.to_vec().into()),
            ],
        );
        Ok(String::new())
    }

    /// `rollout set`: the traffic split; refused before `rollout deploy`.
    pub fn rollout_set(
        &self,
        name: &str,
        percentage: i64,
        allowlist: Vec<String>,
    ) -> Result<String, String> {
        let mut result = Err("service not found".to_string());
        self.apply(|map| {
            if let Some(live) = map.get(name) {
                let Some(rollout) = &live.spec.rollout else {
                    result = Err("rollout target not set".into());
                    return;
                };
                let mut spec = live.spec.clone();
                spec.rollout = Some(RolloutSpec {
                    split: Some(RolloutSplit {
                        percentage,
                        allowlist: allowlist.clone(),
                    }),
                    ..rollout.clone()
                });
                let next = live.with_spec(spec);
                map.insert(name.to_string(), Arc::new(next));
                result = Ok(String::new());
            }
        });
        if result.is_ok() {
            log::event(
                Level::Info,
                "Set rollout split",
                &[
                    ("service", name.into()),
                    ("percentage", percentage.into()),
                    ("allowlist", allowlist.into()),
                ],
            );
        }
        result
    }

    /// `rollout stop`: every request goes to the service's target (the rollout target stays
    /// deployed, as in kamal-proxy, until the next `rollout deploy` replaces it).
    pub fn rollout_stop(&self, name: &str) -> Result<String, String> {
        let mut found = false;
        self.apply(|map| {
            if let Some(live) = map.get(name) {
                found = true;
                let mut spec = live.spec.clone();
                if let Some(r) = &mut spec.rollout {
                    r.split = None;
                }
                let next = live.with_spec(spec);
                map.insert(name.to_string(), Arc::new(next));
            }
        });
        if !found {
            return Err("service not found".into());
        }
        log::event(Level::Info, "Stopped rollout", &[("service", name.into())]);
        Ok(String::new())
    }

    fn get(&self, name: &str) -> Option<Arc<Live>> {
        self.by_name.lock().ok()?.get(name).cloned()
    }

    fn deploy_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.deploy_locks.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        Arc::clone(locks.entry(name.to_string()).or_default())
    }

    fn check_conflict(&self, spec: &ServiceSpec) -> Result<(), String> {
        let map = match self.by_name.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        match conflicting(&map, spec) {
            Some(other) => Err(format!(
                "host settings conflict with another service ({other})"
            )),
            None => Ok(()),
        }
    }

    /// Change the services, then swap in the new route table and save the state.
    fn apply(&self, change: impl FnOnce(&mut BTreeMap<String, Arc<Live>>)) {
        let mut map = match self.by_name.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(&mut map);
        let mut table = RouteTable::default();
        for live in map.values() {
            table.insert(
                &live.spec.hosts,
                &live.spec.effective_prefixes(),
                Arc::clone(live),
            );
        }
        match self.table.write() {
            Ok(mut t) => *t = Arc::new(table),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(table),
        }
        let default_tls_host = map
            .values()
            .find(|l| l.spec.tls && !l.spec.hosts.is_empty())
            .and_then(|l| l.spec.hosts.first())
            .map(|h| normalize_host(h));
        match self.default_tls_host.write() {
            Ok(mut h) => *h = default_tls_host,
            Err(poisoned) => *poisoned.into_inner() = default_tls_host,
        }
        if let Some(dir) = &self.state_dir {
            let specs: Vec<ServiceSpec> = map.values().map(|l| l.spec.clone()).collect();
            let extra = self
                .state_extra
                .lock()
                .map(|e| e.clone())
                .unwrap_or_default();
            if let Err(e) = state::save(dir, &specs, &extra) {
                log::event(Level::Error, "Cannot save state", &[("error", e.into())]);
            }
        }
    }
}

/// The TLS settings requests to `spec` get (see [`TlsMode`]).
fn tls_mode(table: &RouteTable<Arc<Live>>, spec: &ServiceSpec) -> TlsMode {
    let own = |s: &ServiceSpec| TlsMode {
        enabled: s.tls,
        redirect: s.tls && s.tls_settings.redirect,
    };
    if spec.serves_root() {
        return own(spec);
    }
    let host = spec.hosts.first().map(String::as_str).unwrap_or("");
    match table.find(host, "/") {
        Some(m) if m.prefix == "/" => own(&m.value.spec),
        _ => TlsMode::default(),
    }
}

/// The name of another service already serving one of `spec`'s host × prefix routes.
fn conflicting(map: &BTreeMap<String, Arc<Live>>, spec: &ServiceSpec) -> Option<String> {
    let mut table = RouteTable::default();
    for live in map.values() {
        table.insert(
            &live.spec.hosts,
            &live.spec.effective_prefixes(),
            live.spec.name.clone(),
        );
    }
    table
        .conflict(&spec.hosts, &spec.effective_prefixes(), |n| *n != spec.name)
        .cloned()
}

/// Columns padded to their widest cell.
fn format_table(header: [&str; 6], rows: &[[String; 6]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::TargetOptions;

    fn spec(name: &str, hosts: &[&str]) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            target: "127.0.0.1:9".into(),
            targets: Vec::new(),
            read_targets: Vec::new(),
            writer_affinity_timeout: crate::service::DEFAULT_WRITER_AFFINITY,
            read_targets_accept_websockets: false,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            path_prefixes: vec![],
            strip_path_prefix: true,
            tls: false,
            tls_settings: Default::default(),
            canonical_host: None,
            error_pages: None,
            options: TargetOptions::default(),
            state: ServiceState::Running,
            exclude_metrics_paths: Vec::new(),
            client_ip_header: None,
            rollout: None,
            extra: Default::default(),
        }
    }

    #[tokio::test]
    async fn forced_deploy_routes_and_conflicts_are_refused() {
        let s = Services::new(None);
        s.deploy(
            spec("a", &["a.test"]),
            Duration::from_secs(1),
            Duration::ZERO,
            true,
        )
        .await
        .expect("deploy a");
        assert!(matches!(
            s.route("a.test", "/", &http::Method::GET, &http::HeaderMap::new()),
            Routed::Found { guard: Some(_), .. }
        ));
        assert!(matches!(
            s.route("b.test", "/", &http::Method::GET, &http::HeaderMap::new()),
            Routed::NotFound
        ));
        let err = s
            .deploy(
                spec("b", &["a.test"]),
                Duration::from_secs(1),
                Duration::ZERO,
                true,
            )
            .await
            .expect_err("conflict");
        assert!(err.contains("conflict"), "{err}");
        s.stop("a", Duration::ZERO, "later".into())
            .await
            .expect("stop");
        assert!(matches!(
            s.route("a.test", "/", &http::Method::GET, &http::HeaderMap::new()),
            Routed::Found { guard: None, .. }
        ));
        s.resume("a").expect("resume");
        assert!(matches!(
            s.route("a.test", "/", &http::Method::GET, &http::HeaderMap::new()),
            Routed::Found { guard: Some(_), .. }
        ));
        let list = s.list();
        assert!(list.starts_with("Service"), "{list}");
        assert!(list.contains("a.test"), "{list}");
        s.remove("a").expect("remove");
        assert!(s.remove("a").is_err());
        assert!(matches!(
            s.route("a.test", "/", &http::Method::GET, &http::HeaderMap::new()),
            Routed::NotFound
        ));
    }
}

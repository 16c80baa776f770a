//! The routing table: which service answers a request, by `Host` header and longest path
//! prefix. Pure data; the server swaps a whole new table in when services change.

/// How a route matches the request's host.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// Exact host name (lowercase, without port).
    Exact(String),
    /// `*.example.com`: any host ending in `.example.com` (stored with the leading dot).
    Wildcard(String),
    /// The service declared no host: the default for any host.
    Any,
}

impl HostPattern {
    fn parse(host: &str) -> HostPattern {
        let h = host.trim().to_ascii_lowercase();
        match h.strip_prefix('*') {
            Some(suffix) if suffix.starts_with('.') => HostPattern::Wildcard(suffix.to_string()),
            _ => HostPattern::Exact(h),
        }
    }

    /// Matching rank for `host`: 0 exact, 1 wildcard, 2 catch-all; `None` when no match.
    fn rank(&self, host: &str) -> Option<u8> {
        match self {
            HostPattern::Exact(h) => (h == host).then_some(0),
            HostPattern::Wildcard(suffix) => {
                (host.len() > suffix.len() && host.ends_with(suffix.as_str())).then_some(1)
            }
            HostPattern::Any => Some(2),
        }
    }
}

/// One (host, prefix) → value entry.
#[derive(Debug, Clone)]
struct Entry<T> {
    host: HostPattern,
    prefix: String,
    value: T,
}

/// A route found for a request.
#[derive(Debug, PartialEq, Eq)]
pub struct RouteMatch<'a, T> {
    /// The routed value (the service).
    pub value: &'a T,
    /// The path prefix that matched (`/` for the whole site).
    pub prefix: &'a str,
}

/// The routes of all services; each service contributes hosts × prefixes entries.
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    entries: Vec<Entry<T>>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable {
            entries: Vec::new(),
        }
    }
}

impl<T: Clone> RouteTable<T> {
    /// Add the routes of one service: every host (or the catch-all when `hosts` is empty)
    /// with every (normalized) prefix.
    pub fn insert(&mut self, hosts: &[String], prefixes: &[String], value: T) {
        let patterns: Vec<HostPattern> = if hosts.is_empty() {
            vec![HostPattern::Any]
        } else {
            hosts.iter().map(|h| HostPattern::parse(h)).collect()
        };
        for host in patterns {
            for prefix in prefixes {
                self.entries.push(Entry {
                    host: host.clone(),
                    prefix: prefix.clone(),
                    value: value.clone(),
                });
            }
        }
        // Longest prefix first, so the first match of the best host rank wins.
        self.entries
            .sort_by_key(|e| std::cmp::Reverse(e.prefix.len()));
    }

    /// The value routing `host` (a `Host` header, port allowed) and `path`: exact host beats
    /// wildcard beats catch-all; within a rank the longest matching prefix wins.
    pub fn find(&self, host: &str, path: &str) -> Option<RouteMatch<'_, T>> {
        let host = normalize_host(host);
        let mut best: Option<(u8, &Entry<T>)> = None;
        for e in &self.entries {
            let Some(rank) = e.host.rank(&host) else {
                continue;
            };
            if !prefix_matches(&e.prefix, path) {
                continue;
            }
            // Entries are sorted by prefix length: the first per rank is the longest.
            if best.is_none_or(|(r, _)| rank < r) {
                best = Some((rank, e));
                if rank == 0 {
                    break;
                }
            }
        }
        best.map(|(_, e)| RouteMatch {
            value: &e.value,
            prefix: &e.prefix,
        })
    }

    /// The first entry already serving one of `hosts` × `prefixes` whose value `is_other`
    /// says belongs to another service.
    pub fn conflict(
        &self,
        hosts: &[String],
        prefixes: &[String],
        is_other: impl Fn(&T) -> bool,
    ) -> Option<&T> {
        let patterns: Vec<HostPattern> = if hosts.is_empty() {
            vec![HostPattern::Any]
        } else {
            hosts.iter().map(|h| HostPattern::parse(h)).collect()
        };
        self.entries
            .iter()
            .find(|e| {
                is_other(&e.value) && patterns.contains(&e.host) && prefixes.contains(&e.prefix)
            })
            .map(|e| &e.value)
    }
}

/// A `Host` header lowercased, without its port (IPv6 literals keep their brackets).
pub fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let without_port = if host.starts_with('[') {
        match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => host,
        }
    };
    without_port.to_ascii_lowercase()
}

/// `path` is under `prefix`: equal to it or continuing with `/`.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    prefix == "/"
        || (path.starts_with(prefix)
            && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/')))
}

/// `path` with `prefix` removed (`/` when nothing is left).
pub fn strip_prefix<'a>(prefix: &str, path: &'a str) -> &'a str {
    if prefix == "/" {
        return path;
    }
    match path.get(prefix.len()..) {
        Some("") | None => "/",
        Some(rest) => rest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn table() -> RouteTable<&'static str> {
        let mut t = RouteTable::default();
        t.insert(&[], &s(&["/"]), "default");
        t.insert(&s(&["app.test"]), &s(&["/"]), "app");
        t.insert(&s(&["app.test"]), &s(&["/api"]), "api");
        t.insert(&s(&["*.wild.test"]), &s(&["/"]), "wild");
        t.insert(&s(&["other.test", "www.other.test"]), &s(&["/"]), "other");
        t
    }

    fn find(t: &RouteTable<&'static str>, host: &str, path: &str) -> Option<&'static str> {
        t.find(host, path).map(|m| *m.value)
    }

    #[test]
    fn routes_by_exact_host_then_catch_all() {
        let t = table();
        assert_eq!(find(&t, "app.test", "/"), Some("app"));
        assert_eq!(find(&t, "APP.test:8080", "/x"), Some("app"));
        assert_eq!(find(&t, "www.other.test", "/"), Some("other"));
        assert_eq!(find(&t, "unknown.test", "/"), Some("default"));
        assert_eq!(find(&t, "a.wild.test", "/"), Some("wild"));
        assert_eq!(find(&t, "wild.test", "/"), Some("default"));
    }

    #[test]
    fn longest_path_prefix_wins_on_segment_boundaries() {
        let t = table();
        assert_eq!(find(&t, "app.test", "/api"), Some("api"));
        assert_eq!(find(&t, "app.test", "/api/users?x=1"), Some("api"));
        assert_eq!(find(&t, "app.test", "/apix"), Some("app"));
        assert_eq!(
            t.find("app.test", "/api/v1").map(|m| m.prefix),
            Some("/api")
        );
    }

    #[test]
    fn no_route_without_catch_all() {
        let mut t = RouteTable::default();
        t.insert(&s(&["a.test"]), &s(&["/"]), 1);
        assert!(t.find("b.test", "/").is_none());
    }

    #[test]
    fn prefixes_strip_to_a_rooted_path() {
        assert_eq!(strip_prefix("/api", "/api/users"), "/users");
        assert_eq!(strip_prefix("/api", "/api"), "/");
        assert_eq!(strip_prefix("/", "/x"), "/x");
    }

    #[test]
    fn hosts_normalize() {
        assert_eq!(normalize_host("Example.COM:80"), "example.com");
        assert_eq!(normalize_host("[::1]:80"), "[::1]");
        assert_eq!(normalize_host("example.com"), "example.com");
    }

    #[test]
    fn conflicts_are_found_for_other_services_only() {
        let t = table();
        assert_eq!(
            t.conflict(&s(&["app.test"]), &s(&["/api"]), |v| *v != "app"),
            Some(&"api")
        );
        assert_eq!(
            t.conflict(&s(&["app.test"]), &s(&["/api"]), |v| *v != "api"),
            None
        );
        assert_eq!(
            t.conflict(&[], &s(&["/"]), |v| *v != "new"),
            Some(&"default")
        );
        assert_eq!(t.conflict(&s(&["new.test"]), &s(&["/"]), |_| true), None);
    }
}

//! Prometheus metrics (`run --metrics-port=N`), in the text exposition format, with
//! kamal-proxy's names and labels:
//!
//! - `kamal_proxy_http_requests_total{service,method,status}`: a counter;
//! - `kamal_proxy_http_request_duration_seconds{service,method,status}`: a histogram with
//!   Prometheus' default buckets;
//! - `kamal_proxy_http_in_flight_requests{service}`: a gauge.
//!
//! A request is counted when its response headers are ready (its duration is the time to
//! them); a request no service serves counts with `service=""`, as in kamal-proxy. Paths given
//! to `deploy --exclude-metrics-path` are not counted. The in-flight gauge is the number of
//! requests (and open WebSockets) on the service's targets.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use http::Method;

/// Prometheus' default histogram buckets (`prometheus.DefBuckets`), in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `text/plain` exposition format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Default, Clone)]
struct Series {
    count: u64,
    sum: f64,
    /// Per bucket, observations at most its bound (not cumulative).
    buckets: [u64; BUCKETS.len()],
}

/// The request metrics of one proxy.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(String, &'static str, u16), Series>>,
}

impl Metrics {
    /// No requests counted yet.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Count one request of `service` answered with `status` after `duration`.
    pub fn track(&self, service: &str, method: &Method, status: u16, duration: Duration) {
        let secs = duration.as_secs_f64();
        let mut series = match self.series.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let key = (service.to_string(), normalize_method(method), status);
        let s = series.entry(key).or_default();
        s.count += 1;
        s.sum += secs;
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            s.buckets[i] += 1;
        }
    }

    /// The exposition text; `in_flight` is each service's requests in flight now.
    pub fn render(&self, in_flight: &[(String, usize)]) -> String {
        let series = match self.series.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let mut out = String::new();
        let total = "kamal_proxy_http_requests_total";
        let _ = writeln!(
            out,
            "# HELP {total} HTTP requests processed, labeled by service, status code and method."
        );
        let _ = writeln!(out, "# TYPE {total} counter");
        for ((service, method, status), s) in &series {
            let _ = writeln!(
                out,
                "{total}{{method=\"{method}\",service=\"{}\",status=\"{status}\"}} {}",
                escape(service),
                s.count
            );
        }
        let dur = "kamal_proxy_http_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {dur} Duration of HTTP requests, labeled by service, status code and method."
        );
        let _ = writeln!(out, "# TYPE {dur} histogram");
        for ((service, method, status), s) in &series {
            let labels = format!(
                "method=\"{method}\",service=\"{}\",status=\"{status}\"",
                escape(service)
            );
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(s.buckets) {
                cumulative += n;
                let _ = writeln!(out, "{dur}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(out, "{dur}_bucket{{{labels},le=\"+Inf\"}} {}", s.count);
            let _ = writeln!(out, "{dur}_sum{{{labels}}} {}", s.sum);
            let _ = writeln!(out, "{dur}_count{{{labels}}} {}", s.count);
        }
        let gauge = "kamal_proxy_http_in_flight_requests";
        let _ = writeln!(
            out,
            "# HELP {gauge} Number of in-flight HTTP requests, labeled by service."
        );
        let _ = writeln!(out, "# TYPE {gauge} gauge");
        for (service, n) in in_flight {
            let _ = writeln!(out, "{gauge}{{service=\"{}\"}} {n}", escape(service));
        }
        out
    }
}

/// kamal-proxy's method label: the standard methods, else `OTHER`.
fn normalize_method(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// A label value: `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_histograms_render_in_text_format() {
        let m = Metrics::new();
        m.track("web", &Method::GET, 200, Duration::from_millis(3));
        m.track("web", &Method::GET, 200, Duration::from_millis(30));
        m.track(
            "",
            &Method::from_bytes(b"PURGE").expect("method"),
            404,
            Duration::ZERO,
        );
        let text = m.render(&[("web".into(), 2)]);
        assert!(text.contains(
            "kamal_proxy_http_requests_total{method=\"GET\",service=\"web\",status=\"200\"} 2\n"
        ));
        assert!(text.contains(
            "kamal_proxy_http_requests_total{method=\"OTHER\",service=\"\",status=\"404\"} 1\n"
        ));
        assert!(text.contains("kamal_proxy_http_request_duration_seconds_bucket{method=\"GET\",service=\"web\",status=\"200\",le=\"0.005\"} 1\n"));
        assert!(text.contains("kamal_proxy_http_request_duration_seconds_bucket{method=\"GET\",service=\"web\",status=\"200\",le=\"0.05\"} 2\n"));
        assert!(text.contains("kamal_proxy_http_request_duration_seconds_count{method=\"GET\",service=\"web\",status=\"200\"} 2\n"));
        assert!(text.contains("kamal_proxy_http_in_flight_requests{service=\"web\"} 2\n"));
    }
}

//! `output: otel: endpoint:` — Kamal 2.12's OTel shipper: OTLP/HTTP **logs** in JSON, POSTed
//! to `<endpoint>/v1/logs` in batches of at most 100 records, from a background thread that
//! flushes every 5 seconds, when 100 records wait, and at the end. Best effort: a collector
//! that is down or slow is reported once on stderr and never fails or holds up the run (2 s to
//! connect, 5 s to answer, and the final flush waits [`SHUTDOWN_BOUND`] at most).
//!
//! Only `http://` endpoints: dray has no TLS client (an `https://` endpoint is reported once
//! and nothing is sent).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use super::lines::{LogLine, Severity};

/// Records per request (Kamal's `BATCH_SIZE`).
pub const BATCH_SIZE: usize = 100;
/// How often waiting records are sent (Kamal's `FLUSH_INTERVAL`).
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// Time to open the connection (Kamal's `open_timeout`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time to send a batch and read the answer (Kamal's `read_timeout`).
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the end of a run waits for the last records to go out.
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(8);

/// Where records go: `http://host:port` plus the path, `/v1/logs` appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port` to connect to.
    pub authority: String,
    /// The host header.
    pub host: String,
    /// The request path, e.g. `/v1/logs`.
    pub path: String,
}

impl Endpoint {
    /// Parse `endpoint` as Kamal does (`"#{endpoint.chomp('/')}/v1/logs"`).
    pub fn parse(endpoint: &str) -> Result<Endpoint, String> {
        let url = format!("{}/v1/logs", endpoint.strip_suffix('/').unwrap_or(endpoint));
        let rest = if let Some(rest) = url.strip_prefix("http://") {
            rest
        } else if url.starts_with("https://") {
            return Err(
                "https endpoints are not supported (dray has no TLS client); use http://".into(),
            );
        } else {
            return Err(format!("not an http:// URL: {endpoint}"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("no host in {endpoint}"));
        }
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Endpoint {
            authority: with_port,
            host: authority.to_string(),
            path: path.to_string(),
        })
    }
}

/// An attribute value as OTLP JSON writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// `stringValue`.
    Str(String),
    /// `doubleValue`.
    Double(f64),
}

fn attr(key: &str, value: &AttrValue) -> Value {
    let v = match value {
        AttrValue::Str(s) => json!({ "stringValue": s }),
        AttrValue::Double(d) => json!({ "doubleValue": d }),
    };
    json!({ "key": key, "value": v })
}

fn now_ns() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().to_string())
        .unwrap_or_else(|_| "0".into())
}

/// One log record for a line: its body, level, and `server.address`/`log.iostream`.
pub fn line_record(line: &LogLine) -> Value {
    let now = now_ns();
    let mut r = json!({
        "timeUnixNano": now,
        "observedTimeUnixNano": now,
        "severityNumber": line.severity.number(),
        "severityText": line.severity.name(),
        "body": { "stringValue": line.text },
    });
    let mut attrs = Vec::new();
    if let Some(h) = &line.host {
        attrs.push(attr("server.address", &AttrValue::Str(h.clone())));
    }
    if let Some(s) = line.iostream {
        attrs.push(attr("log.iostream", &AttrValue::Str(s.into())));
    }
    if !attrs.is_empty() {
        r["attributes"] = Value::Array(attrs);
    }
    r
}

/// One event record (`kamal.start`, `kamal.complete`, `kamal.failed`).
pub fn event_record(name: &str, severity: Severity, attributes: &[(&str, AttrValue)]) -> Value {
    let now = now_ns();
    json!({
        "timeUnixNano": now,
        "observedTimeUnixNano": now,
        "severityNumber": severity.number(),
        "severityText": severity.name(),
        "body": { "stringValue": name },
        "eventName": name,
        "attributes": attributes.iter().map(|(k, v)| attr(k, v)).collect::<Vec<_>>(),
    })
}

/// The request body for `records`.
pub fn payload(resource: &[(String, String)], records: &[Value]) -> Value {
    json!({
        "resourceLogs": [{
            "resource": {
                "attributes": resource
                    .iter()
                    .map(|(k, v)| attr(k, &AttrValue::Str(v.clone())))
                    .collect::<Vec<_>>(),
            },
            "scopeLogs": [{
                "scope": { "name": "kamal", "version": env!("CARGO_PKG_VERSION") },
                "logRecords": records,
            }],
        }],
    })
}

enum Msg {
    Record(Value),
    Shutdown,
}

/// The background sender.
pub struct Shipper {
    tx: Option<mpsc::Sender<Msg>>,
    done: mpsc::Receiver<()>,
}

impl Shipper {
    /// Start shipping to `endpoint` with these resource attributes.
    pub fn start(endpoint: &str, resource: Vec<(String, String)>) -> Shipper {
        let (tx, rx) = mpsc::channel::<Msg>();
        let (done_tx, done) = mpsc::channel();
        let target = Endpoint::parse(endpoint);
        std::thread::spawn(move || {
            let mut sender = Sender {
                target,
                resource,
                reported: false,
            };
            let mut buffer: Vec<Value> = Vec::new();
            let mut deadline = std::time::Instant::now() + FLUSH_INTERVAL;
            loop {
                let wait = deadline.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(wait) {
                    Ok(Msg::Record(r)) => {
                        buffer.push(r);
                        if buffer.len() >= BATCH_SIZE {
                            sender.ship(std::mem::take(&mut buffer));
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if !buffer.is_empty() {
                            sender.ship(std::mem::take(&mut buffer));
                        }
                        deadline = std::time::Instant::now() + FLUSH_INTERVAL;
                    }
                    Ok(Msg::Shutdown) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                        if !buffer.is_empty() {
                            sender.ship(buffer);
                        }
                        let _ = done_tx.send(());
                        return;
                    }
                }
            }
        });
        Shipper { tx: Some(tx), done }
    }

    /// Queue one record.
    pub fn send(&self, record: Value) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Record(record));
        }
    }

    /// Send what waits and stop, within [`SHUTDOWN_BOUND`].
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::Shutdown);
            let _ = self.done.recv_timeout(SHUTDOWN_BOUND);
        }
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Sender {
    target: Result<Endpoint, String>,
    resource: Vec<(String, String)>,
    reported: bool,
}

impl Sender {
    fn report(&mut self, why: &str) {
        if !self.reported {
            self.reported = true;
            eprintln!("OTel log shipping failed: {why}");
        }
    }

    fn ship(&mut self, records: Vec<Value>) {
        let target = match &self.target {
            Ok(t) => t.clone(),
            Err(e) => {
                let e = e.clone();
                self.report(&e);
                return;
            }
        };
        for batch in records.chunks(BATCH_SIZE) {
            let body = payload(&self.resource, batch).to_string();
            match post(&target, &body) {
                Ok(status) if (200..300).contains(&status) => {}
                Ok(status) => {
                    self.report(&format!("HTTP {status}"));
                }
                Err(e) => {
                    // Kamal drops the rest of the flush when the connection fails.
                    self.report(&e);
                    return;
                }
            }
        }
    }
}

/// POST `body` as JSON; the answer's status code.
fn post(target: &Endpoint, body: &str) -> Result<u16, String> {
    let addr = target
        .authority
        .to_socket_addrs()
        .map_err(|e| format!("{}: {e}", target.authority))?
        .next()
        .ok_or_else(|| format!("{}: no address", target.authority))?;
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|e| format!("{}: {e}", target.authority))?;
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(READ_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        target.path,
        target.host,
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("{}: {e}", target.authority))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", target.authority))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{}: not an HTTP answer", target.authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_gets_v1_logs_appended_as_kamal_does() {
        let e = Endpoint::parse("http://otel-gateway:4318").expect("parse");
        assert_eq!(e.authority, "otel-gateway:4318");
        assert_eq!(e.path, "/v1/logs");
        let e = Endpoint::parse("http://collector/otlp/").expect("parse");
        assert_eq!(e.authority, "collector:80");
        assert_eq!(e.host, "collector");
        assert_eq!(e.path, "/otlp/v1/logs");
        assert!(Endpoint::parse("https://x:4318").is_err());
        assert!(Endpoint::parse("otel:4318").is_err());
    }

    #[test]
    fn a_line_record_carries_level_host_and_stream() {
        let r = line_record(&LogLine {
            text: " DEBUG [1a2b3c4d] \tok".into(),
            severity: Severity::Debug,
            host: Some("1.1.1.1".into()),
            iostream: Some("stdout"),
        });
        assert_eq!(r["severityNumber"], 5);
        assert_eq!(r["severityText"], "DEBUG");
        assert_eq!(r["body"]["stringValue"], " DEBUG [1a2b3c4d] \tok");
        assert_eq!(r["attributes"][0]["key"], "server.address");
        assert_eq!(r["attributes"][0]["value"]["stringValue"], "1.1.1.1");
        assert_eq!(r["attributes"][1]["key"], "log.iostream");
        assert!(r["timeUnixNano"].is_string());
        assert!(r.get("eventName").is_none());
        let plain = line_record(&LogLine {
            text: "Build and push app image...".into(),
            severity: Severity::Info,
            host: None,
            iostream: None,
        });
        assert!(plain.get("attributes").is_none());
    }

    #[test]
    fn an_event_record_is_named_and_typed() {
        let r = event_record(
            "kamal.complete",
            Severity::Info,
            &[
                ("kamal.command", AttrValue::Str("deploy".into())),
                ("kamal.runtime", AttrValue::Double(12.3)),
            ],
        );
        assert_eq!(r["eventName"], "kamal.complete");
        assert_eq!(r["body"]["stringValue"], "kamal.complete");
        assert_eq!(r["attributes"][1]["value"]["doubleValue"], 12.3);
    }

    #[test]
    fn the_payload_is_one_resource_with_the_kamal_scope() {
        let p = payload(
            &[("kamal.deploy_version".into(), "abc".into())],
            &[json!({"body": {"stringValue": "x"}})],
        );
        let rl = &p["resourceLogs"][0];
        assert_eq!(
            rl["resource"]["attributes"][0]["key"],
            "kamal.deploy_version"
        );
        assert_eq!(rl["scopeLogs"][0]["scope"]["name"], "kamal");
        assert_eq!(
            rl["scopeLogs"][0]["logRecords"][0]["body"]["stringValue"],
            "x"
        );
    }

    #[test]
    fn a_collector_that_is_down_does_not_hold_up_the_end() {
        // A port nothing listens on: refused at once; the end returns well within the bound.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let started = std::time::Instant::now();
        let mut s = Shipper::start(&format!("http://127.0.0.1:{port}"), Vec::new());
        s.send(json!({}));
        s.shutdown();
        assert!(started.elapsed() < SHUTDOWN_BOUND);
    }
}

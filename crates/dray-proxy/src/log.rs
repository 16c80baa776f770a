//! JSON log lines on stdout, shaped like kamal-proxy's (`time`, `level`, `msg`, fields).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value};

static DEBUG: AtomicBool = AtomicBool::new(false);

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Only with `--debug`.
    Debug,
    /// Normal events and request lines.
    Info,
    /// Something went wrong but the server goes on.
    Warn,
    /// An operation failed.
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// Turn debug lines on or off.
pub fn set_debug(on: bool) {
    DEBUG.store(on, Ordering::Relaxed);
}

/// Write one line: `{"time":…,"level":…,"msg":…, fields…}`.
pub fn event(level: Level, msg: &str, fields: &[(&str, Value)]) {
    if level == Level::Debug && !DEBUG.load(Ordering::Relaxed) {
        return;
    }
    let mut map = Map::new();
    map.insert("time".into(), now().into());
    map.insert("level".into(), level.as_str().into());
    map.insert("msg".into(), msg.into());
    for (k, v) in fields {
        map.insert((*k).to_string(), v.clone());
    }
    write_line(&Value::Object(map));
}

/// Write a prepared JSON object as one line (request logs build their own map).
pub fn write_line(value: &Value) {
    let mut line = value.to_string();
    line.push('\n');
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
}

/// The current time, RFC 3339 with fractional seconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// `User-Agent` → `user_agent`: the key a header gets in request lines.
pub fn header_key(prefix: &str, header: &str) -> String {
    format!("{prefix}_{}", header.to_ascii_lowercase().replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_keys_are_snake_case() {
        assert_eq!(header_key("req", "Cache-Control"), "req_cache_control");
        assert_eq!(header_key("resp", "X-Runtime"), "resp_x_runtime");
    }
}

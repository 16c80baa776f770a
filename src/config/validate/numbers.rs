//! Every number a configuration may hold, with the range dray accepts (issue 23): a value
//! outside it (an overflowing literal, a negative count, a port above 65535, a fraction) is an
//! error at its file and line naming the key and the range, never a panic, a wrapped number or
//! a silent clamp.
//!
//! [`check_numbers`] runs on the merged tree, before deserialization, so that the message names
//! the range instead of a type (`99999999999999999999` is read by YAML as a float: "expected a
//! whole number, found the number 100000000000000000000" said nothing useful). [`NUMERIC_KEYS`]
//! is the table; a key path segment `*` stands for any role or accessory name.

use crate::config::error::ConfigError;
use crate::config::node::{Node, Value};
use crate::config::sources::Sources;

/// The longest duration, in seconds, a key may give (ten years): larger values would overflow
/// the deadlines computed from them.
pub const MAX_SECONDS: i64 = 10 * 365 * 24 * 3600;
/// The largest size, in bytes, a proxy buffering key may give (1 TiB).
pub const MAX_BYTES: i64 = 1 << 40;

/// One numeric key and its range.
#[derive(Debug, Clone, Copy)]
pub struct NumericKey {
    /// The key path; `*` matches any role or accessory name.
    pub path: &'static str,
    /// The smallest value accepted.
    pub min: i64,
    /// The largest value accepted.
    pub max: i64,
    /// What the number counts, for the message.
    pub unit: &'static str,
}

const fn key(path: &'static str, min: i64, max: i64, unit: &'static str) -> NumericKey {
    NumericKey {
        path,
        min,
        max,
        unit,
    }
}

/// The most containers of one role per host `x-dray: replicas` may ask for.
pub const MAX_REPLICAS: i64 = 100;

/// Every numeric key of deploy.yml (and `x-dray:`), with its range. `boot.limit` (a number or
/// a percentage) and the port of `ssh` and of accessories (strings in Kamal) are checked where
/// they are read, with the same kind of message.
pub const NUMERIC_KEYS: &[NumericKey] = &[
    key("retain_containers", 1, 100_000, "containers"),
    key("readiness_delay", 0, MAX_SECONDS, "seconds"),
    key("deploy_timeout", 0, MAX_SECONDS, "seconds"),
    key("drain_timeout", 0, MAX_SECONDS, "seconds"),
    key("stop_timeout", 0, MAX_SECONDS, "seconds"),
    key("servers.*.stop_timeout", 0, MAX_SECONDS, "seconds"),
    key("sshkit.max_concurrent_starts", 1, 10_000, "connections"),
    key("sshkit.pool_idle_timeout", 0, MAX_SECONDS, "seconds"),
    key("sshkit.dns_retries", 0, 100, "retries"),
    key("boot.wait", 0, MAX_SECONDS, "seconds"),
    key("x-dray.hooks.timeout", 1, MAX_SECONDS, "seconds"),
    key("x-dray.replicas.*", 1, MAX_REPLICAS, "containers per host"),
    // proxy: at the root, in a role and in an accessory.
    key("proxy.app_port", 1, 65_535, "a TCP port"),
    key("proxy.response_timeout", 1, MAX_SECONDS, "seconds"),
    key("proxy.healthcheck.interval", 1, MAX_SECONDS, "seconds"),
    key("proxy.healthcheck.timeout", 1, MAX_SECONDS, "seconds"),
    key(
        "proxy.buffering.max_request_body",
        0,
        MAX_BYTES,
        "bytes, 0 for no limit",
    ),
    key(
        "proxy.buffering.max_response_body",
        0,
        MAX_BYTES,
        "bytes, 0 for no limit",
    ),
    key("proxy.buffering.memory", 0, MAX_BYTES, "bytes"),
    key("proxy.run.http_port", 1, 65_535, "a TCP port"),
    key("proxy.run.https_port", 1, 65_535, "a TCP port"),
    key("proxy.run.metrics_port", 1, 65_535, "a TCP port"),
    key("servers.*.proxy.app_port", 1, 65_535, "a TCP port"),
    key(
        "servers.*.proxy.response_timeout",
        1,
        MAX_SECONDS,
        "seconds",
    ),
    key(
        "servers.*.proxy.healthcheck.interval",
        1,
        MAX_SECONDS,
        "seconds",
    ),
    key(
        "servers.*.proxy.healthcheck.timeout",
        1,
        MAX_SECONDS,
        "seconds",
    ),
    key(
        "servers.*.proxy.buffering.max_request_body",
        0,
        MAX_BYTES,
        "bytes, 0 for no limit",
    ),
    key(
        "servers.*.proxy.buffering.max_response_body",
        0,
        MAX_BYTES,
        "bytes, 0 for no limit",
    ),
    key("servers.*.proxy.buffering.memory", 0, MAX_BYTES, "bytes"),
    key("servers.*.proxy.run.http_port", 1, 65_535, "a TCP port"),
    key("servers.*.proxy.run.https_port", 1, 65_535, "a TCP port"),
    key("servers.*.proxy.run.metrics_port", 1, 65_535, "a TCP port"),
    key("accessories.*.proxy.app_port", 1, 65_535, "a TCP port"),
    key(
        "accessories.*.proxy.response_timeout",
        1,
        MAX_SECONDS,
        "seconds",
    ),
    key(
        "accessories.*.proxy.healthcheck.interval",
        1,
        MAX_SECONDS,
        "seconds",
    ),
    key(
        "accessories.*.proxy.healthcheck.timeout",
        1,
        MAX_SECONDS,
        "seconds",
    ),
    key(
        "accessories.*.proxy.buffering.max_request_body",
        0,
        MAX_BYTES,
        "bytes, 0 for no limit",
    ),
    key(
        "accessories.*.proxy.buffering.max_response_body",
        0,
        MAX_BYTES,
        "bytes, 0 for no limit",
    ),
    key(
        "accessories.*.proxy.buffering.memory",
        0,
        MAX_BYTES,
        "bytes",
    ),
    key("accessories.*.proxy.run.http_port", 1, 65_535, "a TCP port"),
    key(
        "accessories.*.proxy.run.https_port",
        1,
        65_535,
        "a TCP port",
    ),
    key(
        "accessories.*.proxy.run.metrics_port",
        1,
        65_535,
        "a TCP port",
    ),
];

/// Check every key of [`NUMERIC_KEYS`] present in `tree`. Values that are not numbers are left
/// to deserialization (its type errors are clear).
pub fn check_numbers(tree: &Node, sources: &Sources) -> Result<(), ConfigError> {
    for spec in NUMERIC_KEYS {
        let segments: Vec<&str> = spec.path.split('.').collect();
        let mut found = Vec::new();
        find(tree, &segments, String::new(), &mut found);
        for (path, node) in found {
            check_one(spec, &path, node, sources)?;
        }
    }
    Ok(())
}

/// The nodes at `segments` under `node`, with their concrete paths.
fn find<'a>(node: &'a Node, segments: &[&str], path: String, out: &mut Vec<(String, &'a Node)>) {
    let Some((first, rest)) = segments.split_first() else {
        out.push((path, node));
        return;
    };
    let Value::Map(entries) = &node.value else {
        return;
    };
    for (k, v) in entries {
        let Some(name) = k.as_key() else {
            continue;
        };
        if *first == "*" || name == *first {
            let next = if path.is_empty() {
                name
            } else {
                format!("{path}.{name}")
            };
            find(v, rest, next, out);
        }
    }
}

fn check_one(
    spec: &NumericKey,
    path: &str,
    node: &Node,
    sources: &Sources,
) -> Result<(), ConfigError> {
    let written = match &node.value {
        Value::Int(n) if (spec.min..=spec.max).contains(n) => return Ok(()),
        Value::Int(n) => n.to_string(),
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 => {
            format!("{f:.0}")
        }
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 => {
            "a number too large to be an integer".to_string()
        }
        Value::Float(f) if f.is_finite() => format!("the fraction {f}"),
        Value::Float(_) => "a number that is not finite".to_string(),
        // An integer beyond i64 (YAML reads up to 2^64 - 1 as digits, kept as text).
        Value::Str(s) if is_integer_text(s) && s.parse::<i64>().is_err() => s.clone(),
        _ => return Ok(()),
    };
    Err(out_of_range(spec, path, &written).at(sources.position(node.loc)))
}

fn is_integer_text(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The error for `written` outside the range of `spec` at `path` (without a position).
pub(crate) fn out_of_range(spec: &NumericKey, path: &str, written: &str) -> ConfigError {
    ConfigError::new(format!(
        "{written} is out of range: expected a whole number from {} to {} ({})",
        spec.min, spec.max, spec.unit
    ))
    .key(path)
    .hint(match spec.unit {
        "seconds" => "a duration in whole seconds, at most ten years",
        "a TCP port" => "a port number from 1 to 65535",
        _ => "write a whole number in the range",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::node;
    use std::path::PathBuf;

    fn check(text: &str) -> Result<(), ConfigError> {
        let mut tree = node::parse(text).expect("yaml");
        tree.set_file(0);
        let sources = Sources {
            files: vec![PathBuf::from("config/deploy.yml")],
            warnings: Vec::new(),
        };
        check_numbers(&tree, &sources)
    }

    /// The YAML text that puts `value` at `path` (`*` becomes a name).
    fn yaml_at(path: &str, value: &str) -> String {
        let mut out = String::new();
        for (depth, seg) in path.split('.').enumerate() {
            let seg = if seg == "*" { "web" } else { seg };
            out.push_str(&"  ".repeat(depth));
            out.push_str(seg);
            out.push(':');
            if depth + 1 == path.split('.').count() {
                out.push(' ');
                out.push_str(value);
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn every_numeric_key_takes_its_bounds_and_refuses_beyond_them_at_its_line() {
        for spec in NUMERIC_KEYS {
            let concrete = spec.path.replace('*', "web");
            let line = u32::try_from(spec.path.split('.').count()).unwrap_or(0);
            for ok in [spec.min, spec.max] {
                let text = yaml_at(spec.path, &ok.to_string());
                assert!(check(&text).is_ok(), "{} = {ok} refused", spec.path);
            }
            for bad in [
                (spec.min - 1).to_string(),
                (i128::from(spec.max) + 1).to_string(),
                "99999999999999999999".to_string(),
                "18446744073709551615".to_string(),
                "-9223372036854775809".to_string(),
                "1.5".to_string(),
                "1e300".to_string(),
            ] {
                let text = yaml_at(spec.path, &bad);
                let err = match check(&text) {
                    Err(err) => err,
                    Ok(()) => panic!("{} = {bad} accepted", spec.path),
                };
                assert_eq!(err.key, concrete, "{bad}");
                let pos = err.position.as_ref().expect("a position");
                assert_eq!(pos.line, line, "{} = {bad}: {err}", spec.path);
                let range = format!("from {} to {}", spec.min, spec.max);
                assert!(err.message.contains(&range), "{err}");
            }
        }
    }

    #[test]
    fn an_overflowing_port_names_the_port_range() {
        let err = check("proxy:\n  app_port: 65536\n").expect_err("refused");
        assert_eq!(
            err.to_string(),
            "config/deploy.yml:2:13: proxy.app_port: 65536 is out of range: expected a whole number from 1 to 65535 (a TCP port)"
        );
    }

    #[test]
    fn an_overflowing_duration_names_the_range_not_a_rounded_float() {
        let err = check("deploy_timeout: 99999999999999999999\n").expect_err("refused");
        assert!(
            err.message
                .starts_with("a number too large to be an integer is out of range"),
            "{err}"
        );
        assert!(
            err.message.contains("from 0 to 315360000 (seconds)"),
            "{err}"
        );
    }

    #[test]
    fn a_negative_count_and_a_fraction_are_refused() {
        let err = check("sshkit:\n  dns_retries: -1\n").expect_err("refused");
        assert!(err.message.contains("from 0 to 100"), "{err}");
        let err = check("retain_containers: 2.5\n").expect_err("refused");
        assert!(err.message.starts_with("the fraction 2.5"), "{err}");
    }

    #[test]
    fn values_that_are_not_numbers_are_left_to_deserialization() {
        assert!(check("deploy_timeout: soon\nproxy: true\nservers: [a]\n").is_ok());
    }
}

//! `boot`: how many hosts boot at once (a number or a percentage of all hosts) and the wait
//! between groups.

use super::context::Ctx;
use crate::config::error::ConfigError;
use crate::config::model::Boot;
use crate::config::raw::{RawBoot, Scalar};

pub(super) fn validate_boot(
    cx: &Ctx,
    raw: Option<&RawBoot>,
    all_hosts: usize,
) -> Result<Boot, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Boot::default());
    };
    let limit = match &raw.limit {
        None => None,
        Some(Scalar(text)) => {
            let t = text.trim();
            let (digits, percent) = match t.strip_suffix('%') {
                Some(pct) => (pct.trim(), true),
                None => (t, false),
            };
            let n = parse_count(cx, t, digits)?;
            if percent {
                // Checked: a large percentage overflows the product (a panic in debug builds, a
                // wrong number in release).
                let n = u64::try_from(all_hosts)
                    .ok()
                    .and_then(|hosts| hosts.checked_mul(n))
                    .and_then(|product| usize::try_from(product / 100).ok())
                    .ok_or_else(|| too_large(cx, t))?;
                Some(n.max(1))
            } else {
                if n == 0 {
                    return Err(cx.err("boot.limit", "must be at least 1"));
                }
                Some(usize::try_from(n).map_err(|_| too_large(cx, t))?)
            }
        }
    };
    Ok(Boot {
        limit,
        wait: raw.wait,
        parallel_roles: raw.parallel_roles.unwrap_or(false),
    })
}

/// The number in `boot.limit`: a whole number that fits a YAML integer (at most 2^63 - 1).
fn parse_count(cx: &Ctx, written: &str, digits: &str) -> Result<u64, ConfigError> {
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(cx.err(
            "boot.limit",
            format!("expected a number or a percentage, found `{written}`"),
        ));
    }
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| too_large(cx, written))
}

fn too_large(cx: &Ctx, written: &str) -> ConfigError {
    cx.err(
        "boot.limit",
        format!("`{written}` is too large: the number overflows"),
    )
    .hint("a number of hosts, or a percentage of all hosts such as 25%")
}

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
                if n > MAX_PERCENT {
                    return Err(out_of_range(cx, t));
                }
                // No overflow: at most 100% of the hosts.
                let n = u64::try_from(all_hosts)
                    .ok()
                    .and_then(|hosts| hosts.checked_mul(n))
                    .and_then(|product| usize::try_from(product / 100).ok())
                    .ok_or_else(|| out_of_range(cx, t))?;
                Some(n.max(1))
            } else {
                if !(1..=MAX_HOSTS).contains(&n) {
                    return Err(out_of_range(cx, t));
                }
                Some(usize::try_from(n).map_err(|_| out_of_range(cx, t))?)
            }
        }
    };
    Ok(Boot {
        limit,
        wait: raw.wait,
        parallel_roles: raw.parallel_roles.unwrap_or(false),
    })
}

/// The largest `boot.limit` as a number of hosts.
pub const MAX_HOSTS: u64 = 1_000_000;
/// The largest `boot.limit` as a percentage.
pub const MAX_PERCENT: u64 = 100;

/// The number in `boot.limit`: a whole number (digits only).
fn parse_count(cx: &Ctx, written: &str, digits: &str) -> Result<u64, ConfigError> {
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(cx.err(
            "boot.limit",
            format!("expected a number or a percentage, found `{written}`"),
        ));
    }
    digits.parse::<u64>().map_err(|_| out_of_range(cx, written))
}

fn out_of_range(cx: &Ctx, written: &str) -> ConfigError {
    cx.err(
        "boot.limit",
        format!(
            "`{written}` is out of range: expected a number of hosts from 1 to {MAX_HOSTS}, or a percentage from 0% to {MAX_PERCENT}%"
        ),
    )
    .hint("a number of hosts, or a percentage of all hosts such as 25%")
}

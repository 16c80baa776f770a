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
            if let Some(pct) = t.strip_suffix('%') {
                let pct: u64 = pct.trim().parse().map_err(|_| {
                    cx.err(
                        "boot.limit",
                        format!("expected a number or a percentage, found `{t}`"),
                    )
                })?;
                Some(((all_hosts as u64 * pct) / 100).max(1) as usize)
            } else {
                let n: usize = t.parse().map_err(|_| {
                    cx.err(
                        "boot.limit",
                        format!("expected a number or a percentage, found `{t}`"),
                    )
                })?;
                if n == 0 {
                    return Err(cx.err("boot.limit", "must be at least 1"));
                }
                Some(n)
            }
        }
    };
    Ok(Boot {
        limit,
        wait: raw.wait,
        parallel_roles: raw.parallel_roles.unwrap_or(false),
    })
}

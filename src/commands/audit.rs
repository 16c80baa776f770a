//! `dray audit`: the last 50 lines of the audit log of every targeted host, `[host]`-prefixed,
//! hosts in order.

use crate::cli::GlobalOptions;
use crate::error::Result;
use crate::plan::{admin, Plan};

use super::session::Session;

/// Run `dray audit`.
pub fn run(global: &GlobalOptions) -> Result<()> {
    let s = Session::new(global)?;
    let stages = admin::audit_log(&s.config, &s.targets.hosts);
    s.run(&Plan::command(
        "audit",
        None,
        None,
        s.targets.clone(),
        stages,
    ))
}

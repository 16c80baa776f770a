//! `dray prune all|images|containers` (Kamal's `lib/kamal/cli/prune.rb`), under the deploy lock.
//!
//! Scoped to this service **and destination** ([`crate::docker::prune`]): Kamal prunes other
//! destinations' containers on a shared host; dray does not.

use crate::cli::{GlobalOptions, PruneCommand};
use crate::error::{Error, Result};
use crate::plan::{locked, Plan};

use super::session::Session;

/// Run `dray prune …`.
pub fn run(global: &GlobalOptions, command: &PruneCommand) -> Result<()> {
    let retain = match command {
        PruneCommand::Containers { retain: Some(0) } => {
            return Err(Error::usage("--retain must be at least 1")
                .with_hint("the newest stopped container is kept for `dray rollback`"))
        }
        PruneCommand::Containers { retain: Some(n) } => Some(*n),
        _ => None,
    };
    let s = Session::new(global)?;
    let release = s.release()?.release;
    let retain = retain.unwrap_or(s.config.retain_containers.max(1));
    let (containers, images, sub) = match command {
        PruneCommand::All => (Some(retain), true, "all"),
        PruneCommand::Images => (None, true, "images"),
        PruneCommand::Containers { .. } => (Some(retain), false, "containers"),
    };
    let stages = locked(
        s.lock(&release.version),
        crate::plan::admin::prune(&s.config, &release, &s.targets.hosts, containers, images),
    );
    s.run(&Plan::command(
        "prune",
        Some(sub),
        Some(release),
        s.targets.clone(),
        stages,
    ))
}

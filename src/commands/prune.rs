//! `dray prune all|images|containers` (Kamal's `lib/kamal/cli/prune.rb`), under the deploy lock.
//!
//! Scoped to this service **and destination** ([`crate::docker::prune`]): Kamal prunes other
//! destinations' containers on a shared host; dray does not.

use crate::cli::{GlobalOptions, PruneCommand};
use crate::error::{Error, Result};
use crate::release::Release;

use super::app::{report, HostReport, Session};

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
    let mut s = Session::new(global)?;
    let release = s.release()?;
    let retain = retain.unwrap_or(s.config.retain_containers.max(1));
    let (prune_containers, prune_images) = match command {
        PruneCommand::All => (true, true),
        PruneCommand::Images => (false, true),
        PruneCommand::Containers { .. } => (true, false),
    };
    let s = &s;
    let release = &release;
    let result = s.locked(release, async {
        if prune_containers {
            report(&containers(s, release, retain).await)?;
        }
        if prune_images {
            report(&images(s, release).await)?;
        }
        Ok(())
    });
    s.close();
    result
}

/// Remove the stopped containers of this service and destination beyond the newest `retain`.
async fn containers(s: &Session<'_>, release: &Release, retain: u32) -> Vec<HostReport> {
    s.each_host(|host| async move {
        s.audit(host, release, None, "Pruned containers".into())
            .await?;
        s.checked(
            host,
            &crate::docker::prune::containers(&s.config, retain, host),
        )
        .await
    })
    .await
}

/// Remove dangling images and untag the images no container of the service uses.
async fn images(s: &Session<'_>, release: &Release) -> Vec<HostReport> {
    s.each_host(|host| async move {
        s.audit(host, release, None, "Pruned images".into()).await?;
        s.checked(
            host,
            &crate::docker::prune::dangling_images(&s.config, host),
        )
        .await?;
        s.checked(host, &crate::docker::prune::tagged_images(&s.config, host))
            .await
    })
    .await
}

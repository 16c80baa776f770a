//! `dray upgrade` (Kamal's `kamal upgrade`, Kamal 1 → 2): refused, with what to do instead.
//!
//! Kamal's upgrade replaces Traefik with kamal-proxy on every host (Traefik stopped and removed,
//! the app rebooted behind kamal-proxy at its latest tag, pruned) and reboots every accessory,
//! optionally one host at a time. dray does not carry Traefik's side of that migration.

use crate::error::{Error, Result};

/// What the user does instead.
pub const INSTEAD: &str = "\
run `kamal upgrade` (Kamal 2.x) once, then use dray; or by hand, per host (one at a time for \
no downtime across hosts): stop Traefik and remove its container and image as Kamal does (`docker container stop \
traefik; docker container prune --force --filter label=org.opencontainers.image.title=Traefik \
&& docker image prune --all --force --filter label=org.opencontainers.image.title=Traefik`), \
then `dray proxy boot`, `dray app boot`, `dray prune all` and `dray accessory reboot all`";

/// Refuse `upgrade` (exit 2).
pub fn run() -> Result<()> {
    Err(Error::usage(
        "`upgrade` (Kamal 1 → 2: Traefik replaced by kamal-proxy) is not done by dray",
    )
    .with_hint(INSTEAD))
}

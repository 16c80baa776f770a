//! The remote the engine tests use: the system `ssh` per command with the fleet's config
//! (dray's `ProcessRemote`): real sshd, real Docker, no mocks.

use std::path::PathBuf;

use dray::remote::process::ProcessRemote;

/// A remote for the fleet's ssh config.
pub fn fleet_remote(config: PathBuf) -> ProcessRemote {
    ProcessRemote {
        config: Some(config),
        options: Vec::new(),
    }
}

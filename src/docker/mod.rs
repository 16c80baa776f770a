//! Pure docker and shell command builders: each returns a [`CommandSpec`](crate::command::CommandSpec)
//! and never spawns anything.
//!
//! The commands reproduce what Kamal 2.12 runs on a server (`lib/kamal/commands/*.rb`), compared
//! by the *effective argv* the server's shell hands to the program, not by Ruby's quoting:
//!
//! - every argument is quoted once by [`CommandSpec::to_shell`](crate::command::CommandSpec::to_shell);
//! - values Kamal escapes with `String#dump` (clear env values, labels, docker options, logging
//!   options) are [`Arg::Expanding`](crate::command::Arg::Expanding): `${VAR}` is expanded by the
//!   remote shell as with Kamal, everything else arrives byte for byte;
//! - text Kamal passes unquoted (a role's `cmd`, root `volumes`, the `app exec` command, the `$PWD`
//!   prefix of host paths) is [`Arg::Raw`](crate::command::Arg::Raw);
//! - pipelines and `&&` chains are one `sh -c '<script>'` command whose script quotes its own words;
//! - secrets never appear in argv: they travel on stdin (registry password, env files) or in the
//!   local environment (build secrets); build arguments are
//!   [`Arg::Sensitive`](crate::command::Arg::Sensitive) so logs show `KEY=[REDACTED]`.
//!
//! Modules:
//! - [`accessory`]: accessory containers, their files, directories, env file and proxy route.
//! - [`app`]: app containers: run, names, versions, readiness, stop, logs, exec, details.
//! - [`env_file`]: the role env file's content and the commands writing it.
//! - [`registry`]: login (password on stdin), logout, pull, image removal, label check.
//! - [`build`]: `docker buildx build` and the plain `docker build` + `docker push` fallback.
//! - [`builder`]: the buildx builder Kamal selects (local, remote, hybrid, cloud), its inspect,
//!   remove and create commands, and `pack build`.
//! - [`prune`]: old containers and images, scoped to service and destination.
//! - [`lock`]: the deploy lock directory and its base64 details.
//! - [`audit`]: audit log lines.
//! - [`proxy`]: the `kamal` network, the kamal-proxy container and `kamal-proxy` calls.
//! - [`proxy_files`]: error pages and custom TLS certificates uploaded for the proxy.
//! - [`server`]: `server bootstrap`'s Docker check, install and run directory.
//! - [`assets`]: asset bridging (`asset_path`) between the old and the new version.
//! - [`releases`]: dray's record of successful releases on each host.
//! - [`rollout`]: canaries through the proxy's `rollout` commands, and their record on the hosts.
//! - [`status`]: the one script per host `dray status` reads.

pub mod accessory;
mod accessory_paths;
pub mod app;
pub mod assets;
pub mod audit;
pub mod boot;
pub mod build;
pub mod builder;
pub mod env_file;
pub mod lock;
pub mod proxy;
pub mod proxy_boot_config;
pub mod proxy_files;
pub mod prune;
pub mod registry;
pub mod releases;
pub mod replicas;
pub mod rollout;
pub(crate) mod script;
pub mod server;
pub mod status;

pub use app::{App, ExecOptions, Interactive, LogsOptions};
pub use audit::AuditLine;
pub use build::BuildOptions;
pub use lock::LockDetails;

#[cfg(test)]
pub(crate) mod test_support;

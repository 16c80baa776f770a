//! dray: a fast, Kamal 2 compatible deploy orchestrator.
//!
//! Table of contents (see `docs/` and `../shared/DESIGN.md` for the architecture):
//!
//! - [`cli`]: clap structures only; nothing below imports clap.
//! - [`commands`]: one handler per command: resolve settings → plan → engine.
//! - [`config`]: loading `config/deploy.yml` (+ destination overlay), templates, secrets, validation.
//! - [`release`]: the frozen release identity (version, image, performer, time).
//! - [`plan`]: the pure plan of stages × roles × hosts.
//! - [`hooks`]: the `KAMAL_*` environment each hook receives, and running the hook files.
//! - [`remote`]: running commands on hosts (OpenSSH, one master per host), fan-out.
//! - [`lock`]: the deploy lock on the primary host; [`audit`]: the audit log.
//! - [`command`]: `CommandSpec`, commands as data.
//! - [`shell`]: quoting for the remote shell.
//! - [`error`]: error types, hints and exit codes.

pub mod audit;
pub mod cli;
pub mod command;
pub mod commands;
pub mod config;
pub mod docker;
pub mod engine;
pub mod error;
pub mod hooks;
pub mod lock;
pub mod plan;
pub mod release;
pub mod remote;
pub mod report;
pub mod shell;

//! The one integration test binary. Each module pins one area's behaviour.

mod app;
mod build_cmds;
mod builder;
mod cmd_plans;
mod config;
mod deploy;
mod erb;
mod faults;
mod fixtures;
mod fleet;
mod fuzz;
mod hostile;
mod kamal_keys;
mod keys;
mod logging;
mod output;
mod plan;
mod proxy;
mod realistic;
mod registry;
mod release;
mod remote;
mod server_bootstrap;
mod support;
mod transcript;

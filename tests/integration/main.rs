//! The one integration test binary. Each module pins one area's behaviour.

mod accessory;
mod accessory_plans;
mod accessory_proxy;
mod app;
mod builder;
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
mod support;
mod transcript;

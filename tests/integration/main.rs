//! The one integration test binary. Each module pins one area's behaviour.

mod app;
mod config;
mod deploy;
mod erb;
mod faults;
mod fixtures;
mod fleet;
mod fuzz;
mod hostile;
mod logging;
mod plan;
mod proxy;
mod release;
mod remote;
mod support;
mod transcript;

//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::PathBuf;

/// Path of the `dray` binary under test.
pub fn dray_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dray"))
}

pub mod fleet;

//! dray-proxy: the HTTP proxy for zero downtime deployments (kamal-proxy compatible). Works
//! under any program name, `kamal-proxy` included.

use std::process::ExitCode;

fn main() -> ExitCode {
    dray_proxy::main_with_args(std::env::args_os().collect())
}

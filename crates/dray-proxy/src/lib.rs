//! dray-proxy: an HTTP reverse proxy implementing the part of kamal-proxy's command contract
//! Kamal uses (`run`, `deploy`, `remove`, `stop`, `resume`, `list`), so the same driving code
//! serves both. The binary is this crate's `src/main.rs`; installed as `kamal-proxy` in its image.
//!
//! - [`cli`]: the command line (clap), kamal-proxy's flags.
//! - [`duration`]: Go-style durations.
//! - [`service`]: a deployed service's description (also the saved form).
//! - [`router`]: host and path-prefix routing.
//! - [`target`]: an upstream, resolved once, with its in-flight count for draining.
//! - [`health`]: health checks before a switch.
//! - [`services`]: the live services and deploy/remove/stop/resume/list.
//! - [`handler`]: proxying one request; [`body`], [`pages`]: what it answers (error pages,
//!   `--error-pages` templates), redirects to https and the canonical host.
//! - [`tls`]: the https port, certificates per SNI (files or [`acme`]), HTTP/2 by ALPN.
//! - [`control`]: the unix control socket between the CLI and the server.
//! - [`state`]: the state directory and the saved routes.
//! - [`server`]: the `run` subcommand.
//! - [`log`]: JSON log lines.

#![warn(missing_docs)]

pub mod acme;
pub mod body;
pub mod cli;
pub mod control;
pub mod duration;
pub mod handler;
pub mod health;
pub mod log;
pub mod pages;
pub mod router;
pub mod server;
pub mod service;
pub mod services;
pub mod state;
pub mod target;
pub mod tls;

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use control::Request;

/// Parse `args` (argv, any program name) and run the subcommand; the process exit code.
pub fn main_with_args(args: Vec<OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(out) => {
            if !out.is_empty() {
                println!("{out}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn execute(command: Command) -> Result<String, String> {
    let socket = state::socket_path();
    let request = match command {
        Command::Run(r) => {
            log::set_debug(r.debug);
            let bind: IpAddr = match std::env::var("DRAY_PROXY_BIND") {
                Ok(b) if !b.is_empty() => {
                    b.parse().map_err(|e| format!("DRAY_PROXY_BIND={b}: {e}"))?
                }
                _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            };
            let config = server::ServerConfig {
                http_addr: SocketAddr::new(bind, r.http_port),
                https_addr: SocketAddr::new(bind, r.https_port),
                state_dir: state::state_dir(),
                socket,
                log_requests: !r.quiet,
            };
            return server::run(config).await.map(|()| String::new());
        }
        Command::Deploy(d) => Request::Deploy {
            spec: Box::new(d.to_spec()?),
            deploy_timeout_ms: millis(d.deploy_timeout),
            drain_timeout_ms: millis(d.drain_timeout),
            force: d.force.unwrap_or(false),
        },
        Command::Remove(s) => Request::Remove { service: s.service },
        Command::Stop(s) => Request::Stop {
            service: s.service,
            drain_timeout_ms: millis(s.drain_timeout),
            message: s.message,
        },
        Command::Resume(s) => Request::Resume { service: s.service },
        Command::List => Request::List,
    };
    let response = control::send(&socket, &request).await?;
    if response.ok {
        // kamal-proxy prints nothing on success but for `list`.
        Ok(if matches!(request, Request::List) {
            response.message
        } else {
            String::new()
        })
    } else {
        Err(response.message)
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

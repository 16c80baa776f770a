//! dray-proxy: an HTTP reverse proxy implementing the part of kamal-proxy's command contract
//! Kamal uses (`run`, `deploy`, `remove`, `stop`, `resume`, `list`), so the same driving code
//! serves both. The binary is this crate's `src/main.rs`; installed as `kamal-proxy` in its image.
//!
//! - [`cli`]: the command line (clap), kamal-proxy's flags.
//! - [`duration`]: Go-style durations.
//! - [`service`]: a deployed service's description (also the saved form).
//! - [`router`]: host and path-prefix routing.
//! - [`target`]: an upstream, resolved once, with its in-flight count for draining;
//!   [`pool`]: a service's targets (several, read targets), load balanced.
//! - [`health`]: health checks before a switch.
//! - [`services`]: the live services and deploy/remove/stop/resume/list; [`loaded`]: what a
//!   deploy reads from files (certificate, error pages).
//! - [`handler`]: proxying one request; [`body`], [`pages`]: what it answers (error pages,
//!   `--error-pages` templates); [`redirect`]: to https and the canonical host.
//! - [`tls`]: the https port, certificates per SNI (files or [`acme`]), HTTP/2 by ALPN.
//! - [`control`]: the unix control socket between the CLI and the server.
//! - [`state`]: the state directory and the saved routes; [`kamal_state`]: kamal-proxy's
//!   state file, written beside ours and read when newer.
//! - [`supervisor`]: what `run` is (PID 1): it holds the listening sockets and runs the
//!   [`server`] as its child on them ([`handoff`], [`supervised`]), and hands them over to a new
//!   binary without refusing a connection (`supervisor upgrade`).
//! - [`log`]: JSON log lines; [`metrics`]: Prometheus metrics (`run --metrics-port`).
//!
//! # TLS, redirects and error pages (kamal-proxy v0.9.2's behaviour)
//!
//! - `run --https-port=N` (env `HTTPS_PORT`, default 443) is always bound, next to
//!   `--http-port`. A connection's certificate is picked by SNI from the service serving that
//!   host's root path, if it was deployed with `--tls` (a hello without SNI: the first TLS
//!   service's first host). ALPN: `h2`, `http/1.1`.
//! - `deploy S --host=… --tls --tls-certificate-path=P --tls-private-key-path=K`: PEM files
//!   (key PKCS#8, PKCS#1 or SEC1), read at each deploy and at start; one that does not load
//!   fails the deploy (`unable to load certificate …`), and the running route stays.
//! - `deploy S --host=… --tls` without files: ACME HTTP-01 on the first TLS request
//!   ([`acme`]): `--tls-staging`, `--tls-acme-directory=URL` and `--tls-acme-ca-certs=PEM`
//!   (roots for that directory's TLS, read at deploy; both dray-proxy only),
//!   `--tls-acme-cache-path` (default `<state dir>/certs`, files in kamal-proxy's autocert
//!   layout). Env: `DRAY_PROXY_ACME_CA_CERTS` (PEM roots added to the Mozilla ones, for test
//!   CAs), `DRAY_PROXY_ACME_RENEW_BEFORE` (30 days), `DRAY_PROXY_ACME_RENEW_INTERVAL` (1h).
//! - `--tls` needs a `--host` and the root path (among `--path-prefix`); a path-prefix service
//!   takes the TLS settings of its first host's root service. `--forward-headers` defaults to
//!   false with TLS. Plain HTTP to a TLS host gets `301 https://<host without port><path?query>`
//!   (`Connection: close`) unless `--tls-redirect=false`; ACME challenges
//!   (`/.well-known/acme-challenge/…`) of ACME services are answered before that. A TLS
//!   request routed to a service without TLS gets 503. `--canonical-host=H` (one of the hosts)
//!   redirects the others to it.
//! - `--error-pages=DIR`: `DIR/<status>.html` (Go template subset, [`pages`]) for the answers
//!   the proxy makes for the service: 503 (stopped, with `{{ .Message }}`; TLS mismatch), 502,
//!   504; otherwise the built-in page. No `*.html` in DIR, or one that does not parse, fails
//!   the deploy. While stopped, `GET`/`HEAD` of the health check path answer 200.
//! - All of it is saved in the state file (`tls_settings`, `canonical_host`, `error_pages`);
//!   fields this version does not know are kept.
//!
//! # Bodies, WebSockets, metrics, rollouts (kamal-proxy's main branch)
//!
//! - Bodies stream both ways unless buffered. `--buffer-requests`: the request body is read
//!   whole before it is forwarded; past `--max-request-body` (0: no limit) the answer is 413,
//!   a body that cannot be read 400. `--buffer-responses`: the response is read whole before
//!   it is sent; past `--max-response-body` the answer is 500 (kamal-proxy's
//!   `ResponseBufferMiddleware`); `text/event-stream` responses and upgrades are never
//!   buffered. A buffered body keeps `--buffer-memory` bytes (1 MB) in memory and spills the
//!   rest to an unnamed temporary file. As in kamal-proxy, a limit needs its buffering flag
//!   given (`max-request-body can only be set when request buffering is enabled`).
//! - `Connection: upgrade` requests (WebSockets) are forwarded with their `Upgrade` header; on
//!   `101` both connections are joined. An open one counts in flight on its target, so a
//!   deploy's drain waits for it to close, up to `--drain-timeout`, after which it is closed.
//! - `run --metrics-port=N`: [`metrics`] on every path of that port; `deploy
//!   --exclude-metrics-path=P` (the path after a stripped prefix) is not counted.
//! - `rollout deploy S --target=T` (health-checked like `deploy`), `rollout set S
//!   --percent=N --list=A,B`, `rollout stop S`: requests whose `kamal-rollout` cookie is in the
//!   list, or whose FNV-1a hash falls in the percentage, go to the rollout target; saved in the
//!   state (`rollout`), kept across deploys of the main target and restarts.
//! - `--client-ip-header=H`: a request's `H` value replaces its `X-Forwarded-For` (which is
//!   then extended with the peer's address when headers are forwarded, else replaced).
//! - `--tls --tls-on-demand-url=URL` without `--host`: [`acme::on_demand`] approves each
//!   host before its certificate is issued.

//!
//! # Several targets, read targets (kamal-proxy's load balancer)
//!
//! - `deploy S --target=A,B,C`: every target is health-checked at once; the deploy switches
//!   only when all are healthy (one that is not fails it, naming it, and the running set
//!   stays), then the old set drains. With more than one target (read targets included) each
//!   is checked at `--health-check-interval` all along: a failed check takes it out of the
//!   rotation, a passing one puts it back; one target alone is never taken out. A request goes
//!   to the healthy target with the fewest requests in flight, ties in turn (kamal-proxy: in
//!   turn only); none healthy: 503.
//! - `--read-target=R1,R2`: `GET`/`HEAD` (WebSocket upgrades only with
//!   `--read-target-websockets`) go to the healthy read targets, else to the targets. Any
//!   other request sets the `kamal-writer` cookie (Unix ms, `--writer-affinity-timeout`,
//!   default 1s, 0: none; not when the target answers `X-Writer-Affinity: false`), and reads
//!   with it unexpired go to the targets. Both flags need `--read-target`.
//! - `rollout deploy S --target=A,B --read-target=R` likewise for the rollout.
//! - `list` shows targets then read targets, comma-separated; the state keeps `target` (the
//!   first, what older versions read), `targets` (when several), `read_targets`,
//!   `writer_affinity_timeout` (ms) and `read_targets_accept_websockets`. kamal-proxy's
//!   `kamal-proxy.state` (its field names: `active_targets`, `active_readers`, …) is written
//!   beside it and read at start when newer or alone, so either proxy can replace the other.
//! - `--health-check-port=N`: the check goes to the target's host on port N.
//! - `run --http3` is refused: no QUIC stack. kamal-proxy's `pause` is refused: requests are
//!   not held (`stop`/`resume` instead).

#![warn(missing_docs)]

pub mod acme;
pub mod body;
pub mod certs;
pub mod cli;
pub mod control;
pub mod duration;
pub mod handler;
pub mod handoff;
pub mod health;
pub mod kamal_state;
pub mod loaded;
pub mod log;
pub mod metrics;
pub mod pages;
pub mod pool;
pub mod redirect;
pub mod router;
pub mod server;
pub mod service;
pub mod services;
pub mod state;
pub mod supervised;
pub mod supervisor;
pub mod target;
pub mod tls;

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use cli::{Cli, Command, RolloutCommand, SupervisorCommand};
use control::Request;

/// Parse `args` (argv, any program name) and run the subcommand; the process exit code.
pub fn main_with_args(args: Vec<OsString>) -> ExitCode {
    let run_args: Vec<OsString> = args.iter().skip(1).cloned().collect();
    let parsed = Cli::command()
        .version(handoff::version())
        .try_get_matches_from(args)
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
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
    // A supervised server's sockets, taken before any thread starts (the variable is removed).
    let inherited = match &cli.command {
        Command::Run(_) => match handoff::take_inherited() {
            Ok(i) => i,
            Err(e) => {
                eprintln!("Error: {e}");
                return ExitCode::from(1);
            }
        },
        _ => None,
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
    match runtime.block_on(execute(cli.command, inherited, run_args)) {
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

async fn execute(
    command: Command,
    inherited: Option<handoff::Inherited>,
    run_args: Vec<OsString>,
) -> Result<String, String> {
    let socket = state::socket_path();
    let request = match command {
        Command::Run(r) => {
            log::set_debug(r.debug);
            if r.http3 {
                return Err(
                    "--http3 is not supported by dray-proxy: it has no QUIC stack (HTTP/3 \
                            runs over QUIC, which neither hyper nor rustls provide); it serves \
                            HTTP/1.1 and HTTP/2 on the https port. hint: drop --http3 from the \
                            proxy's run options"
                        .into(),
                );
            }
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
                metrics_addr: (r.metrics_port != 0).then(|| SocketAddr::new(bind, r.metrics_port)),
            };
            // Started by a supervisor: serve on its sockets; else be the supervisor.
            return match inherited {
                Some(i) => server::run(config, Some(i)).await,
                None => supervisor::run(config, run_args).await,
            }
            .map(|()| String::new());
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
        Command::Pause(_) => {
            return Err(
                "pause is not supported by dray-proxy: it does not hold requests while \
                        a service is paused. hint: use `stop --message=…` (503 with the \
                        message) and `resume`"
                    .into(),
            );
        }
        Command::Rollout(RolloutCommand::Deploy(d)) => {
            let (targets, read_targets) = d.targets()?;
            Request::RolloutDeploy {
                targets,
                read_targets,
                service: d.service,
                deploy_timeout_ms: millis(d.deploy_timeout),
                drain_timeout_ms: millis(d.drain_timeout),
            }
        }
        Command::Rollout(RolloutCommand::Set(s)) => Request::RolloutSet {
            service: s.service,
            percentage: s.percent.unwrap_or(0),
            allowlist: s.list,
        },
        Command::Rollout(RolloutCommand::Stop(s)) => Request::RolloutStop { service: s.service },
        Command::Supervisor(sub) => {
            let req = match sub {
                SupervisorCommand::Protocol => return Ok(handoff::PROTOCOL.to_string()),
                SupervisorCommand::Status => supervisor::Request::Status,
                SupervisorCommand::Upgrade(u) => supervisor::Request::Upgrade {
                    binary: std::path::absolute(&u.binary)
                        .map_err(|e| format!("{}: {e}", u.binary.display()))?,
                    staged: u.staged,
                    drain_timeout_ms: millis(u.drain_timeout),
                    ready_timeout_ms: millis(u.ready_timeout),
                },
            };
            let response = supervisor::send(&socket, &req).await?;
            return if response.ok {
                Ok(response.message)
            } else {
                Err(response.message)
            };
        }
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

//! Health checks of a new target before traffic is switched to it: `GET <path>` every
//! interval, each bounded by its timeout, until a 2xx answer or the deploy timeout. The target
//! is resolved again for every check: a container that stopped or restarted may have lost its
//! address, and another container may have been given it meanwhile.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::duration::format_duration;
use super::log::{self, Level};
use super::service::HealthCheck;
use super::target::Target;

/// Check `target` until healthy or `deploy_timeout`; the error names the target and the last
/// failure. On success the target's address is the one that answered.
pub async fn wait_healthy(
    target: &Target,
    hc: &HealthCheck,
    deploy_timeout: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + deploy_timeout;
    loop {
        let started = tokio::time::Instant::now();
        let budget = hc.timeout.min(deadline.saturating_duration_since(started));
        let last = match check_within(target, hc, budget).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        log::event(
            Level::Debug,
            "Health check failed",
            &[
                ("target", target.authority().into()),
                ("error", last.clone().into()),
            ],
        );
        // A target that does not accept connections yet is still starting: look again soon
        // rather than a whole interval later (the check's verdict is unchanged).
        let pause = if last.starts_with("connect ") {
            hc.interval.min(Duration::from_millis(100))
        } else {
            hc.interval
        };
        let next = started + pause;
        if next >= deadline {
            return Err(format!(
                "target {} failed to become healthy within configured timeout ({}): {last}",
                target.authority(),
                format_duration(deploy_timeout)
            ));
        }
        tokio::time::sleep_until(next).await;
    }
}

/// One health check of `target` (resolved again first), within the check's timeout.
pub async fn check(target: &Target, hc: &HealthCheck) -> Result<(), String> {
    check_within(target, hc, hc.timeout).await
}

async fn check_within(target: &Target, hc: &HealthCheck, budget: Duration) -> Result<(), String> {
    let host = hc.host.clone().unwrap_or_else(|| {
        let authority = target.authority();
        match authority.rsplit_once(':') {
            Some((h, _)) if hc.port != 0 => format!("{h}:{}", hc.port),
            _ => authority.to_string(),
        }
    });
    match tokio::time::timeout(budget, target.resolve()).await {
        Ok(Ok(mut addr)) => {
            // `--health-check-port`: the same host, another port.
            if hc.port != 0 {
                addr.set_port(hc.port);
            }
            match tokio::time::timeout(budget, check_once(addr, &host, &hc.path)).await {
                Ok(result) => result,
                Err(_) => Err("request timed out".to_string()),
            }
        }
        // Not running (no address in Docker's DNS) yet or any more: look again soon.
        Ok(Err(e)) => Err(format!("connect {e}")),
        Err(_) => Err("request timed out".to_string()),
    }
}

/// One `GET` on a fresh connection; `Ok` for a 2xx status.
async fn check_once(addr: SocketAddr, host: &str, path: &str) -> Result<(), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(http::header::HOST, host)
        .header(http::header::USER_AGENT, "kamal-proxy")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let result = async {
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let _ = resp.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("unexpected status ({})", status.as_u16()))
        }
    }
    .await;
    conn.abort();
    result
}

//! `dray lock acquire -m MSG | release | status` (Kamal's `lock`), and the hidden test aid
//! `lock hold --seconds N`, which holds the lock like a deploy does (released on ctrl-c).

use std::sync::Arc;
use std::time::Duration;

use crate::cli::{GlobalOptions, LockCommand};
use crate::error::{Error, ExitCode, Result};
use crate::lock::{LockGuard, LockRequest, LockStatus, LockWait};
use crate::remote::Remote;

use super::server::{remote, runtime, targets};
use super::{load_config, resolve_release};

fn wait_options(global: &GlobalOptions) -> Option<LockWait> {
    global.lock_wait.then(|| LockWait {
        timeout: Duration::from_secs(global.lock_wait_timeout),
        interval: Duration::from_secs(global.lock_wait_interval.max(1)),
    })
}

fn waiting(global: &GlobalOptions) -> impl Fn(&LockStatus) + Send + Sync {
    let quiet = global.quiet;
    let (timeout, interval) = (global.lock_wait_timeout, global.lock_wait_interval);
    move |status: &LockStatus| {
        if !quiet {
            eprintln!(
                "Deploy lock held, waiting (up to {timeout}s, every {interval}s):\n{}",
                status.render(chrono::Utc::now())
            );
        }
    }
}

/// Run `dray lock …`.
pub fn run(global: &GlobalOptions, command: &LockCommand) -> Result<()> {
    let (config, opts) = load_config(global)?;
    let host = targets(&config, global)?.primary_host;
    let remote = remote(&config, &opts)?;
    let rt = runtime()?;
    let result = match command {
        LockCommand::Acquire { message } => {
            let resolved = resolve_release(global, &config, &opts)?;
            let details = crate::lock::details(
                &crate::release::lock_performer(&opts.cwd),
                &resolved.release.version,
                message,
            );
            let on_wait = waiting(global);
            rt.block_on(crate::lock::acquire(
                remote.as_ref(),
                &config,
                &host,
                &details,
                wait_options(global),
                &on_wait,
            ))
            .map(|()| println!("Acquired the deploy lock"))
            .map_err(Error::from)
        }
        LockCommand::Release => rt
            .block_on(crate::lock::release(remote.as_ref(), &config, &host))
            .map(|released| {
                println!(
                    "{}",
                    if released {
                        "Released the deploy lock"
                    } else {
                        "There is no deploy lock"
                    }
                )
            })
            .map_err(Error::from),
        LockCommand::Status => rt
            .block_on(crate::lock::status(remote.as_ref(), &config, &host))
            .map(|status| match status {
                Some(s) => println!("{}", s.render(chrono::Utc::now())),
                None => println!("There is no deploy lock"),
            })
            .map_err(Error::from),
        LockCommand::Hold { seconds, message } => {
            let resolved = resolve_release(global, &config, &opts)?;
            let details = crate::lock::details(
                &crate::release::lock_performer(&opts.cwd),
                &resolved.release.version,
                message,
            );
            let inherited = crate::lock::inherited(&|k| opts.env.get(k).cloned());
            let request = LockRequest {
                config: &config,
                host: &host,
                details: &details,
                wait: wait_options(global),
                inherited,
            };
            let on_wait = waiting(global);
            let shared: Arc<dyn Remote> = remote.clone();
            rt.block_on(async {
                let mut guard = LockGuard::acquire(shared, &request, &on_wait).await?;
                println!("Acquired the deploy lock");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(*seconds)) => {
                        guard.release().await?;
                        println!("Released the deploy lock");
                        Ok(())
                    }
                    _ = guard.interrupted() => Err(Error::failure(format!(
                        "interrupted; the deploy lock on {host} was released"
                    ))
                    .with_exit(ExitCode::Interrupted)),
                }
            })
        }
    };
    rt.block_on(remote.close());
    result
}

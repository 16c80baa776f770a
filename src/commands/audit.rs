//! `dray audit`: the last 50 lines of the audit log of every targeted host, `[host]`-prefixed,
//! hosts in order.

use crate::cli::GlobalOptions;
use crate::error::{Error, ExitCode, Result};
use crate::remote::Remote;

use super::load_config;
use super::server::{remote, runtime, targets};

/// Run `dray audit`.
pub fn run(global: &GlobalOptions) -> Result<()> {
    let (config, opts) = load_config(global)?;
    let targets = targets(&config, global)?;
    let remote = remote(&config, &opts)?;
    let results = runtime()?.block_on(async {
        remote.connect_all(&targets.hosts).await?;
        let results = crate::audit::reveal(remote.as_ref(), &config, &targets.hosts).await;
        remote.close().await;
        Ok::<_, Error>(results)
    })?;
    let mut failed = Vec::new();
    for (host, result) in &results {
        match result {
            Ok(text) => print!("{}", crate::audit::prefixed(host, text)),
            Err(e) => failed.push(e.to_string()),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        let exit = if failed.len() == results.len() {
            ExitCode::Failure
        } else {
            ExitCode::Partial
        };
        Err(Error::failure(failed.join("\n")).with_exit(exit))
    }
}

//! `dray secrets fetch|extract|print` (Kamal's `lib/kamal/cli/secrets.rb`).
//!
//! `fetch` and `extract` need no configuration: `fetch` runs the adapter's vendor CLI with this
//! process's environment and prints the JSON map (`--inline`: shell-escaped); `extract` prints
//! one value of it. `print` loads the configuration's secrets files and prints `KEY=value` lines.
//! These three print secrets by design, as Kamal's do; nothing else does.

use std::collections::BTreeMap;

use crate::cli::{GlobalOptions, SecretsCommand};
use crate::config::secrets::adapters::{self, AdapterError, Request, Runner};
use crate::error::{Diagnostic, Error, ExitCode, Result};

impl Diagnostic for AdapterError {
    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
    fn exit_code(&self) -> ExitCode {
        if self.usage {
            ExitCode::Usage
        } else {
            ExitCode::Failure
        }
    }
}

/// Run `dray secrets …`.
pub fn run(global: &GlobalOptions, command: &SecretsCommand) -> Result<()> {
    match command {
        SecretsCommand::Print => {
            let (config, opts) = super::load_config(global)?;
            let secrets = super::load_secrets(&config, &opts)?;
            for (key, value) in secrets.iter() {
                println!("{key}={value}");
            }
            Ok(())
        }
        SecretsCommand::Fetch(args) => {
            let env: BTreeMap<String, String> = std::env::vars().collect();
            let cwd = std::env::current_dir()
                .map_err(|e| Error::failure(format!("cannot read the working directory: {e}")))?;
            let runner = Runner {
                env: &env,
                cwd: &cwd,
            };
            let request = Request {
                adapter: &args.adapter,
                secrets: &args.secrets,
                account: args.account.as_deref(),
                from: args.from.as_deref(),
            };
            let fetched = adapters::fetch(&runner, &request)?;
            if args.inline {
                println!("{}", fetched.to_inline());
            } else {
                println!("{}", fetched.to_json());
            }
            Ok(())
        }
        SecretsCommand::Extract(args) => {
            println!("{}", adapters::extract(&args.name, &args.secrets)?);
            Ok(())
        }
    }
}

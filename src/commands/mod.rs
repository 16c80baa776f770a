//! One handler per command: resolve settings → plan → engine.

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::{Error, ExitCode, Result};

/// Parse the command line, run the command and return the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return match err.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => ExitCode::Usage.code(),
            };
        }
    };
    match run(cli) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("{err}");
            err.exit.code()
        }
    }
}

/// Run one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Version => {
            println!("{}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        other => Err(not_implemented(&other)),
    }
}

fn not_implemented(command: &Command) -> Error {
    let name = format!("{command:?}");
    let name = name
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("command")
        .to_lowercase();
    Error::usage(format!("`{name}` is not implemented yet"))
        .with_hint("see the open issues for the command's status")
}

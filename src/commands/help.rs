//! `dray help [COMMAND…]`: the help of a command or subcommand (`dray help app exec`), as
//! `--help` prints it.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{Error, Result};

/// The help text of the command at `path` (empty: dray's own).
pub fn text(path: &[String]) -> Result<String> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut current = &mut cmd;
    let mut seen = vec!["dray".to_string()];
    for word in path {
        let names: Vec<String> = current
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
            .map(|c| c.get_name().to_string())
            .collect();
        let Some(next) = current.find_subcommand_mut(word) else {
            let hint = if names.is_empty() {
                format!("`{}` has no subcommands", seen.join(" "))
            } else {
                format!(
                    "the commands of `{}` are: {}",
                    seen.join(" "),
                    names.join(", ")
                )
            };
            return Err(
                Error::usage(format!("unknown command `{} {word}`", seen.join(" ")))
                    .with_hint(hint),
            );
        };
        seen.push(word.clone());
        current = next;
    }
    current.set_bin_name(seen.join(" "));
    Ok(current.render_long_help().to_string())
}

/// Print the help of `path`.
pub fn run(path: &[String]) -> Result<()> {
    print!("{}", text(path)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn help_of_a_command_and_a_subcommand() {
        let deploy = text(&words("deploy")).unwrap_or_default();
        assert!(deploy.contains("Deploy app to servers"), "{deploy}");
        assert!(deploy.contains("Usage: dray deploy"), "{deploy}");
        assert!(deploy.contains("--skip-push"), "{deploy}");
        let exec = text(&words("app exec")).unwrap_or_default();
        assert!(exec.contains("Usage: dray app exec"), "{exec}");
        assert!(exec.contains("--reuse"), "{exec}");
        assert!(text(&[]).unwrap_or_default().contains("Usage: dray"));
    }

    #[test]
    fn unknown_commands_are_named_with_the_known_ones() {
        let err = text(&words("app nope"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unknown command `dray app nope`"), "{err}");
        assert!(err.contains("boot, start, stop"), "{err}");
    }
}

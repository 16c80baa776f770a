//! Options after a command's arguments, as Thor (Kamal's command line) reads them: in
//! `app exec --verbose ls -r web` the `-r web` is the role option, not part of the command;
//! options the command does not know (`uname -o`) stay in it, and `--` ends the options.
//!
//! clap takes everything after the first word of a trailing argument list (`app exec CMD…`,
//! `server exec CMD…`, `accessory exec NAME CMD…`) as that list, so [`options_first`] moves the
//! known options found among those words (and their values) in front of the first of them
//! before clap parses the line. The known options are read from the clap definition itself.

use clap::CommandFactory;

use super::Cli;

/// `args` (`argv[0]` first) with the known options of a trailing-list command moved before its
/// arguments; other command lines unchanged.
pub fn options_first(args: Vec<String>) -> Vec<String> {
    let mut root = Cli::command();
    // Built, the `global = true` options are on every subcommand too.
    root.build();
    let mut cmd = &root;
    let mut i = 1;
    // Walk to the leaf subcommand: skip options (and their values) before each name.
    loop {
        let Some(arg) = args.get(i) else { return args };
        if arg == "--" {
            return args;
        }
        if arg.starts_with('-') && arg.len() > 1 {
            i += 1 + usize::from(takes_separate_value(cmd, arg));
            continue;
        }
        match cmd
            .get_subcommands()
            .find(|s| s.get_name() == arg || s.get_all_aliases().any(|a| a == arg))
        {
            Some(sub) => {
                cmd = sub;
                i += 1;
            }
            None => break,
        }
    }
    if !cmd.get_positionals().any(|a| a.is_trailing_var_arg_set()) {
        return args;
    }
    // `i` is the first positional word of the leaf: the rest is sorted.
    let mut options: Vec<String> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut rest = args[i..].iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            words.extend(rest.by_ref().cloned());
            break;
        }
        match known(cmd, arg) {
            Some(takes_value) => {
                options.push(arg.clone());
                if takes_value {
                    if let Some(value) = rest.next() {
                        options.push(value.clone());
                    }
                }
            }
            None => words.push(arg.clone()),
        }
    }
    let mut out = args[..i].to_vec();
    out.extend(options);
    // The words are the command's arguments, whatever they look like.
    if !words.is_empty() {
        out.push("--".into());
    }
    out.extend(words);
    out
}

/// Whether `arg` is an option of `cmd` and, if so, whether its value is the next word
/// (`Some(true)`), attached or none (`Some(false)`).
fn known(cmd: &clap::Command, arg: &str) -> Option<bool> {
    if let Some(long) = arg.strip_prefix("--") {
        let (name, attached) = match long.split_once('=') {
            Some((n, _)) => (n, true),
            None => (long, false),
        };
        let opt = cmd.get_arguments().find(|a| {
            a.get_long() == Some(name)
                || a.get_all_aliases()
                    .is_some_and(|aliases| aliases.contains(&name))
        })?;
        return Some(!attached && opt.get_action().takes_values());
    }
    let shorts = arg.strip_prefix('-')?;
    let mut chars = shorts.chars();
    let first = chars.next()?;
    let opt = cmd.get_arguments().find(|a| a.get_short() == Some(first))?;
    if opt.get_action().takes_values() {
        return Some(chars.next().is_none());
    }
    // A cluster of flags (`-qp`): all of them known flags, or it is not ours.
    chars
        .all(|c| {
            cmd.get_arguments()
                .any(|a| a.get_short() == Some(c) && !a.get_action().takes_values())
        })
        .then_some(false)
}

fn takes_separate_value(cmd: &clap::Command, arg: &str) -> bool {
    known(cmd, arg).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::options_first;

    fn run(line: &str) -> String {
        let args = std::iter::once("dray")
            .chain(line.split_whitespace())
            .map(str::to_string)
            .collect();
        options_first(args)[1..].join(" ")
    }

    #[test]
    fn options_after_the_command_are_read_as_options_as_thor_does() {
        assert_eq!(
            run("app exec --verbose ls -r web"),
            "app exec --verbose -r web -- ls"
        );
        assert_eq!(
            run("server exec -p uname -o"),
            "server exec -p -- uname -o",
            "an option the command does not know stays in it"
        );
        assert_eq!(
            run("app exec -r workers --reuse hostname -c config/x.yml"),
            "app exec -r workers --reuse -c config/x.yml -- hostname"
        );
        assert_eq!(
            run("app exec ls -- -r web"),
            "app exec -- ls -r web",
            "-- ends the options"
        );
        assert_eq!(
            run("app exec ls --roles=web -qv"),
            "app exec --roles=web -qv -- ls"
        );
        assert_eq!(
            run("accessory exec db --reuse psql -v"),
            "accessory exec --reuse -v -- db psql"
        );
    }

    #[test]
    fn other_command_lines_are_unchanged() {
        assert_eq!(run("deploy -d staging"), "deploy -d staging");
        assert_eq!(
            run("-d staging app logs -r web"),
            "-d staging app logs -r web"
        );
        assert_eq!(run("staging_deploy -v"), "staging_deploy -v");
    }
}

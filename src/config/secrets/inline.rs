//! `$(kamal secrets …)` and `$(dray secrets …)` in `.kamal/secrets`, run inside this process
//! with no shell, as Kamal's `InlineCommandSubstitution` does: after `$VAR` substitution, a
//! command matching `\A\s*kamal\s*secrets\s+` (or the same with `dray`) is split into words as
//! Ruby's `shellsplit` does, its first word dropped, and run as `secrets … --inline`:
//!
//! - `secrets fetch` gives the fetched JSON shell-escaped (Kamal's `--inline`), so that the line
//!   `A=$(kamal secrets extract A $SECRETS)` splits `$SECRETS` back into one word;
//! - `secrets extract` gives the value.
//!
//! The result loses one trailing newline (Ruby's `chomp`). No `kamal` executable and no Ruby
//! are needed.

use super::adapters::{self, AdapterError, Request, Runner};

/// The words after the program name when `command` is a `kamal secrets …` or
/// `dray secrets …` substitution; `None` for any other command (it runs in the shell).
pub(super) fn secrets_command(command: &str) -> Option<Result<Vec<String>, AdapterError>> {
    let rest = command.trim_start();
    let rest = rest
        .strip_prefix("kamal")
        .or_else(|| rest.strip_prefix("dray"))?;
    let rest = rest.trim_start().strip_prefix("secrets")?;
    if !rest.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    Some(match shellsplit(command) {
        Some(words) => Ok(words.into_iter().skip(1).collect()),
        None => Err(AdapterError::usage("unmatched quote").hint(
            "quote the arguments as a shell would (the command is split as Kamal splits it)",
        )),
    })
}

/// Run `secrets fetch|extract …` (the words after the program name) as Kamal's `--inline`.
pub(super) fn run(words: &[String], runner: &Runner<'_>) -> Result<String, AdapterError> {
    let sub = words.get(1).map(String::as_str);
    let args = words.get(2..).unwrap_or_default();
    match sub {
        Some("fetch") => {
            let fetch = FetchArgs::parse(args)?;
            let request = Request {
                adapter: &fetch.adapter,
                secrets: &fetch.secrets,
                account: fetch.account.as_deref(),
                from: fetch.from.as_deref(),
            };
            let fetched = adapters::fetch(runner, &request)?;
            super::remember_fetched(fetched.values().map(str::to_string));
            Ok(fetched.to_inline())
        }
        Some("extract") => {
            let positional: Vec<&String> = args.iter().filter(|a| *a != "--inline").collect();
            match positional.as_slice() {
                [name, json] if !name.starts_with('-') => adapters::extract(name, json),
                _ => Err(AdapterError::usage(
                    "`secrets extract` takes a NAME and the fetched secrets",
                )
                .hint("write `$(kamal secrets extract NAME $SECRETS)`")),
            }
        }
        other => Err(AdapterError::usage(format!(
            "`secrets {}` cannot be used inside a secrets file",
            other.unwrap_or_default()
        ))
        .hint("use `kamal secrets fetch …` and `kamal secrets extract …`")),
    }
}

/// The options of `secrets fetch`, as Thor reads them.
#[derive(Debug, Default, PartialEq, Eq)]
struct FetchArgs {
    adapter: String,
    account: Option<String>,
    from: Option<String>,
    secrets: Vec<String>,
}

impl FetchArgs {
    fn parse(args: &[String]) -> Result<FetchArgs, AdapterError> {
        let mut out = FetchArgs::default();
        let mut adapter = None;
        let mut i = 0;
        while i < args.len() {
            let arg = args[i].as_str();
            let (flag, inline_value) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (arg, None),
            };
            let slot = match flag {
                "--adapter" | "-a" => Some(&mut adapter),
                "--account" => Some(&mut out.account),
                "--from" => Some(&mut out.from),
                "--inline" => {
                    i += 1;
                    continue;
                }
                f if f.starts_with('-') && f.len() > 1 => {
                    return Err(AdapterError::usage(format!(
                        "`secrets fetch`: unknown option `{f}`"
                    ))
                    .hint("the options are --adapter, --account and --from"))
                }
                _ => None,
            };
            match slot {
                Some(slot) => {
                    let value = match inline_value {
                        Some(v) => v,
                        None => {
                            i += 1;
                            args.get(i).cloned().ok_or_else(|| {
                                AdapterError::usage(format!(
                                    "`secrets fetch`: no value provided for option '{flag}'"
                                ))
                            })?
                        }
                    };
                    *slot = Some(value);
                }
                None => out.secrets.push(arg.to_string()),
            }
            i += 1;
        }
        out.adapter = adapter.ok_or_else(|| {
            AdapterError::usage("no value provided for required options '--adapter'")
                .hint("add `--adapter NAME` (1password, bitwarden, aws_secrets_manager, …)")
        })?;
        Ok(out)
    }
}

pub(crate) use crate::shell::shellsplit;

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_kamal_and_dray_secrets_commands_are_inlined() {
        assert_eq!(
            secrets_command(" kamal secrets fetch --adapter test a").map(Result::ok),
            Some(Some(words(&["secrets", "fetch", "--adapter", "test", "a"])))
        );
        assert!(secrets_command("dray secrets extract A B").is_some());
        assert!(secrets_command("kamal secrets").is_none());
        assert!(secrets_command("kamal app details").is_none());
        assert!(secrets_command("echo kamal secrets fetch").is_none());
        assert!(secrets_command("kamal-secrets fetch").is_none());
    }

    #[test]
    fn shellsplit_unescapes_kamals_inline_json() {
        assert_eq!(
            shellsplit(r#"kamal secrets extract KEY1 \{\"KEY1\":\"pass\)word\"\}"#),
            Some(words(&[
                "kamal",
                "secrets",
                "extract",
                "KEY1",
                r#"{"KEY1":"pass)word"}"#
            ]))
        );
        assert_eq!(
            shellsplit(r#"a "b \$c \d" 'e f'"#),
            Some(words(&["a", "b $c \\d", "e f"]))
        );
        assert_eq!(shellsplit("a 'b"), None);
    }

    #[test]
    fn fetch_options_are_read_as_thor_reads_them() {
        let parsed = FetchArgs::parse(&words(&[
            "--adapter=bitwarden",
            "--account",
            "a@b",
            "--from",
            "item",
            "A",
            "B",
            "--inline",
        ]))
        .expect("parse");
        assert_eq!(
            parsed,
            FetchArgs {
                adapter: "bitwarden".into(),
                account: Some("a@b".into()),
                from: Some("item".into()),
                secrets: words(&["A", "B"]),
            }
        );
        assert!(FetchArgs::parse(&words(&["A"])).expect_err("adapter").usage);
        assert!(FetchArgs::parse(&words(&["-a", "test", "--bogus"])).is_err());
        assert!(FetchArgs::parse(&words(&["-a"])).is_err());
    }

    #[test]
    fn run_fetches_inline_and_extracts_from_the_fetch() {
        let env = std::collections::BTreeMap::new();
        let runner = Runner {
            env: &env,
            cwd: std::path::Path::new(""),
        };
        let fetched = run(
            &words(&[
                "secrets",
                "fetch",
                "-a",
                "test",
                "--account",
                "x",
                "LPARENbRPAREN",
                "c d",
            ]),
            &runner,
        )
        .expect("fetch");
        assert_eq!(
            fetched,
            r#"\{\"LPARENbRPAREN\":\"\)b\(\",\"c\ d\":\"d\ c\"\}"#
        );
        let split = shellsplit(&format!("kamal secrets extract 'c d' {fetched}")).expect("split");
        assert_eq!(run(&split[1..], &runner), Ok("d c".to_string()));
        assert!(run(&words(&["secrets", "print"]), &runner).is_err());
    }
}

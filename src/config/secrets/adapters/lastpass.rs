//! LastPass (`adapters/last_pass.rb`), with `lpass`.
//!
//! - login: `lpass status --color never` must say `Logged in as ACCOUNT.`, else
//!   `lpass login ACCOUNT` on the terminal;
//! - `lpass show NAME… --json`; each item's `fullname` ← its `password`; a name not answered
//!   fails the fetch.

use super::json::Json;
use super::{failed, Adapter, AdapterError, Fetched, Request, Vendor, VendorCli};

/// `--adapter lastpass`.
pub(crate) struct LastPass;

const CLI: VendorCli = VendorCli {
    program: "lpass",
    name: "LastPass CLI",
    install: "https://github.com/lastpass/lastpass-cli",
    version_args: &["--version"],
};

impl Adapter for LastPass {
    fn cli(&self) -> Option<VendorCli> {
        Some(CLI)
    }

    fn fetch(&self, lpass: &Vendor<'_>, request: &Request<'_>) -> Result<Fetched, AdapterError> {
        let account = request.account();
        let status = lpass.run(&["status", "--color", "never"])?;
        if status.stdout.trim() != format!("Logged in as {account}.") {
            let login = lpass.interactive(&["login", account], &[])?;
            if !login.ok {
                return Err(
                    failed("failed to login to LastPass".into(), &login).hint(format!(
                        "log in with `lpass login {account}`, then run again"
                    )),
                );
            }
        }
        let secrets = request.prefixed();
        let mut args = vec!["show"];
        args.extend(secrets.iter().map(String::as_str));
        args.push("--json");
        let answer = lpass.run(&args)?;
        if !answer.ok {
            return Err(failed(
                format!("could not read {} from LastPass", secrets.join(", ")),
                &answer,
            ));
        }
        let mut out = Fetched::default();
        for item in lpass
            .json(&args, &answer.stdout)?
            .as_array()
            .unwrap_or_default()
        {
            let name = item
                .get("fullname")
                .and_then(Json::as_str)
                .unwrap_or_default();
            let password = item
                .get("password")
                .and_then(Json::as_str)
                .map(str::to_string);
            out.insert(name, password);
        }
        let missing: Vec<&str> = secrets
            .iter()
            .filter(|s| !out.contains(s))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(AdapterError::new(format!(
                "could not find {} in LastPass",
                missing.join(", ")
            ))
            .hint("name items by their full name (`Folder/Item`), as `lpass ls` lists them"));
        }
        Ok(out)
    }
}

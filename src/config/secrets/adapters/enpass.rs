//! Enpass (`adapters/enpass.rb`), with `enpass-cli`: offline, no account, `--from` is the vault.
//!
//! - `enpass-cli -json -vault VAULT show TITLE…`, where a secret `TITLE/LABEL` asks for one
//!   password of an item and `TITLE` for all of them;
//! - each answered entry with a password is `TITLE/LABEL` (or `TITLE` without a label), kept
//!   when asked for; the same key twice fails the fetch.

use super::json::Json;
use super::{failed, Adapter, AdapterError, Fetched, Request, Vendor, VendorCli};

/// `--adapter enpass`.
pub(crate) struct Enpass;

const CLI: VendorCli = VendorCli {
    program: "enpass-cli",
    name: "Enpass CLI",
    install: "https://github.com/hazcod/enpass-cli",
    version_args: &["version"],
};

impl Adapter for Enpass {
    fn requires_account(&self) -> bool {
        false
    }

    fn cli(&self) -> Option<VendorCli> {
        Some(CLI)
    }

    fn fetch(&self, enpass: &Vendor<'_>, request: &Request<'_>) -> Result<Fetched, AdapterError> {
        let Some(vault) = request.from.filter(|f| !f.is_empty()) else {
            return Err(
                AdapterError::usage("enpass: `--from VAULT_PATH` is required")
                    .hint("add `--from` with the path of the Enpass vault directory"),
            );
        };
        let mut titles: Vec<&str> = Vec::new();
        for secret in request.secrets {
            let title = match secret.rsplit_once('/') {
                Some((key, _)) if !key.is_empty() => key,
                Some((_, value)) => value,
                None => secret.as_str(),
            };
            if !titles.contains(&title) {
                titles.push(title);
            }
        }
        let mut args = vec!["-json", "-vault", vault, "show"];
        args.extend(titles.iter().copied());
        let answer = enpass.run(&args)?;
        if !answer.ok {
            return Err(failed(
                format!("could not read {} from Enpass", titles.join(", ")),
                &answer,
            )
            .hint("check the vault path and the item titles"));
        }
        let mut out = Fetched::default();
        for item in enpass
            .json(&args, &answer.stdout)?
            .as_array()
            .unwrap_or_default()
        {
            let title = item.get("title").and_then(Json::as_str);
            let label = item.get("label").and_then(Json::as_str).unwrap_or_default();
            let password = item
                .get("password")
                .and_then(Json::as_str)
                .unwrap_or_default();
            let Some(title) = title.filter(|_| !password.is_empty()) else {
                continue;
            };
            let key = [title, label]
                .iter()
                .filter(|p| !p.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("/");
            if request.secrets.iter().any(|s| s == title || *s == key) {
                if out.contains(&key) {
                    return Err(
                        AdapterError::new(format!("{key} is present more than once"))
                            .hint("give the entries distinct labels in Enpass"),
                    );
                }
                out.insert(key, Some(password.to_string()));
            }
        }
        Ok(out)
    }
}

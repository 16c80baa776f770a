//! Bitwarden Secrets Manager (`adapters/bitwarden_secrets_manager.rb`), with `bws`.
//!
//! - login: `bws project list` must succeed (the access token is `BWS_ACCESS_TOKEN`, read by
//!   `bws` itself);
//! - `all` → `bws secret list`; `PROJECT/all` → `bws secret list PROJECT`; otherwise each secret
//!   is an id: `bws secret get ID`. Each answer's `key` ← its `value`.

use super::json::Json;
use super::{failed, Adapter, AdapterError, Fetched, Request, Vendor, VendorCli};

/// `--adapter bitwarden-sm`.
pub(crate) struct BitwardenSecretsManager;

const CLI: VendorCli = VendorCli {
    program: "bws",
    name: "Bitwarden Secrets Manager CLI",
    install: "https://bitwarden.com/help/secrets-manager-cli/",
    version_args: &["--version"],
};

impl Adapter for BitwardenSecretsManager {
    fn requires_account(&self) -> bool {
        false
    }

    fn cli(&self) -> Option<VendorCli> {
        Some(CLI)
    }

    fn fetch(&self, bws: &Vendor<'_>, request: &Request<'_>) -> Result<Fetched, AdapterError> {
        let login = bws.run(&["project", "list"])?;
        if !login.ok {
            return Err(failed(
                "could not authenticate to Bitwarden Secrets Manager".into(),
                &login,
            )
            .hint("set a valid access token in BWS_ACCESS_TOKEN"));
        }
        if request.secrets.is_empty() {
            return Err(AdapterError::usage(
                "you must specify what to retrieve from Bitwarden Secrets Manager",
            )
            .hint("name secret ids, `all`, or `PROJECT_ID/all`"));
        }
        let secrets = request.prefixed();
        let mut out = Fetched::default();
        let list: Option<Vec<&str>> = match secrets.as_slice() {
            [one] if one == "all" => Some(vec!["secret", "list"]),
            [one] if one.ends_with("/all") => Some(vec![
                "secret",
                "list",
                one.split("/all").next().unwrap_or_default(),
            ]),
            _ => None,
        };
        match list {
            Some(args) => {
                let answer = bws.run(&args)?;
                if !answer.ok {
                    return Err(failed(
                        "could not read secrets from Bitwarden Secrets Manager".into(),
                        &answer,
                    ));
                }
                for item in bws
                    .json(&args, &answer.stdout)?
                    .as_array()
                    .unwrap_or_default()
                {
                    insert(item, &mut out);
                }
            }
            None => {
                for id in &secrets {
                    let args = ["secret", "get", id.as_str()];
                    let answer = bws.run(&args)?;
                    if !answer.ok {
                        return Err(failed(
                            format!("could not read {id} from Bitwarden Secrets Manager"),
                            &answer,
                        ));
                    }
                    insert(&bws.json(&args, &answer.stdout)?, &mut out);
                }
            }
        }
        Ok(out)
    }
}

fn insert(item: &Json, out: &mut Fetched) {
    let key = item.get("key").and_then(Json::as_str).unwrap_or_default();
    let value = item.get("value").and_then(Json::as_str).map(str::to_string);
    out.insert(key, value);
}

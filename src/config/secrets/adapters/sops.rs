//! sops: dray's own adapter in the spirit of Kamal's (Kamal 2.12 has none).
//!
//! `--from FILE` is a sops-encrypted file (YAML, JSON, dotenv or INI, as sops detects it);
//! `sops --decrypt --output-type json FILE` decrypts it with the keys sops finds itself (age,
//! PGP, a cloud KMS: `SOPS_AGE_KEY_FILE`, …). Nested objects are flattened into `A/B` names, as
//! the AWS adapter names the members of a JSON secret; values that are not strings are given as
//! JSON. With no secrets named, every value is fetched; a name selects that key, or every key
//! under it (`database` selects `database/user` and `database/password`). No `--account`.

use super::json::Json;
use super::{failed, stringify, Adapter, AdapterError, Fetched, Request, Vendor, VendorCli};

/// `--adapter sops`.
pub(crate) struct Sops;

const CLI: VendorCli = VendorCli {
    program: "sops",
    name: "sops",
    install: "https://github.com/getsops/sops/releases",
    version_args: &["--version"],
};

impl Adapter for Sops {
    fn requires_account(&self) -> bool {
        false
    }

    fn cli(&self) -> Option<VendorCli> {
        Some(CLI)
    }

    fn fetch(&self, sops: &Vendor<'_>, request: &Request<'_>) -> Result<Fetched, AdapterError> {
        let Some(file) = request.from.filter(|f| !f.is_empty()) else {
            return Err(AdapterError::usage("sops: `--from FILE` is required")
                .hint("add `--from` with the path of the sops-encrypted file"));
        };
        let args = ["--decrypt", "--output-type", "json", file];
        let answer = sops.run(&args)?;
        if !answer.ok {
            return Err(failed(format!("could not decrypt {file} with sops"), &answer).hint(
                "check that this machine has a key for the file (SOPS_AGE_KEY_FILE, a PGP key, \
                 cloud KMS credentials)",
            ));
        }
        let mut all = Vec::new();
        flatten("", &sops.json(&args, &answer.stdout)?, &mut all);
        let mut out = Fetched::default();
        if request.secrets.is_empty() {
            for (k, v) in all {
                out.insert(k, Some(v));
            }
            return Ok(out);
        }
        for name in request.secrets {
            let prefix = format!("{name}/");
            let mut found = false;
            for (k, v) in all
                .iter()
                .filter(|(k, _)| k == name || k.starts_with(&prefix))
            {
                out.insert(k.clone(), Some(v.clone()));
                found = true;
            }
            if !found {
                return Err(
                    AdapterError::new(format!("could not find {name} in {file}"))
                        .hint(format!("the keys are listed by `sops --decrypt {file}`")),
                );
            }
        }
        Ok(out)
    }
}

/// Every leaf of `value` under its `/`-joined path.
fn flatten(path: &str, value: &Json, out: &mut Vec<(String, String)>) {
    match value {
        Json::Object(members) if !members.is_empty() || path.is_empty() => {
            for (k, v) in members {
                let key = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}/{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => out.push((path.to_string(), stringify(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_values_flatten_into_slash_names() {
        let json =
            Json::parse(r#"{"db":{"user":"u","port":5432},"list":[1,"a"],"K":"v"}"#).expect("json");
        let mut out = Vec::new();
        flatten("", &json, &mut out);
        let pairs: Vec<(&str, &str)> = out.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("db/user", "u"),
                ("db/port", "5432"),
                ("list", "[1,\"a\"]"),
                ("K", "v")
            ]
        );
    }
}

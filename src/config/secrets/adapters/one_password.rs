//! 1Password (`adapters/one_password.rb`), with `op`.
//!
//! - login: `op account get --account ACCOUNT`; when that fails,
//!   `op signin --account ACCOUNT --force --raw` on the terminal, whose output is the session;
//! - named secrets `[op://]VAULT/ITEM[/SECTION]/FIELD` (`FIELD` defaults to `password`), grouped
//!   per item: `op item get ITEM --vault VAULT --format json --account ACCOUNT
//!   --fields label=SECTION.FIELD,…`; with no names, every field of `--from VAULT/ITEM`;
//! - each field's key is its `reference` without `op://` and a trailing `/password`.
//!
//! Where dray differs: a session from `op signin` goes in `OP_SESSION`, not `--session`, so it
//! is in no process's argv.

use super::json::Json;
use super::{failed, Adapter, AdapterError, Fetched, Request, Vendor, VendorCli};

/// `--adapter 1password`.
pub(crate) struct OnePassword;

const CLI: VendorCli = VendorCli {
    program: "op",
    name: "1Password CLI",
    install: "https://developer.1password.com/docs/cli/get-started/",
    version_args: &["--version"],
};

impl Adapter for OnePassword {
    fn cli(&self) -> Option<VendorCli> {
        Some(CLI)
    }

    fn fetch(&self, op: &Vendor<'_>, request: &Request<'_>) -> Result<Fetched, AdapterError> {
        let account = request.account();
        let session = login(op, account)?;
        let mut out = Fetched::default();
        if request.secrets.is_empty() {
            let from = request.from.unwrap_or_default().trim_start_matches("op://");
            let mut parts = from.split('/');
            let (Some(vault), Some(item)) = (parts.next(), parts.next()) else {
                return Err(AdapterError::usage(
                    "1password: with no secrets named, `--from VAULT/ITEM` names the item to fetch",
                )
                .hint("add `--from op://VAULT/ITEM`, or name the fields to fetch"));
            };
            let item_json = item_get(op, vault, item, &[], account, session.as_deref())?;
            let fields = item_json
                .get("fields")
                .and_then(Json::as_array)
                .ok_or_else(|| {
                    AdapterError::new(format!(
                        "`op item get {item}` answered an item without fields"
                    ))
                })?;
            fields_map(fields, &mut out);
        } else {
            for (vault, items) in vaults_items_fields(&request.prefixed()) {
                for (item, fields) in items {
                    let answer = item_get(op, &vault, &item, &fields, account, session.as_deref())?;
                    match (fields.len(), answer) {
                        (1, single @ Json::Object(_)) => fields_map(&[single], &mut out),
                        (_, Json::Array(list)) => fields_map(&list, &mut out),
                        _ => {
                            return Err(AdapterError::new(format!(
                                "`op item get {item}` answered neither a field nor a list of fields"
                            )))
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

fn login(op: &Vendor<'_>, account: &str) -> Result<Option<String>, AdapterError> {
    if op.run(&["account", "get", "--account", account])?.ok {
        return Ok(None);
    }
    let signin = op.interactive(&["signin", "--account", account, "--force", "--raw"], &[])?;
    if !signin.ok {
        return Err(failed("failed to login to 1Password".into(), &signin)
            .hint(format!("sign in with `op signin --account {account}`, or turn on the 1Password app's CLI integration")));
    }
    let session = signin.stdout.trim().to_string();
    Ok((!session.is_empty()).then_some(session))
}

type Items = Vec<(String, Vec<String>)>;

/// Kamal's `vaults_items_fields`: vault → item → fields (`a/b` as `a.b`), in order.
fn vaults_items_fields(secrets: &[String]) -> Vec<(String, Items)> {
    let mut vaults: Vec<(String, Items)> = Vec::new();
    for secret in secrets {
        let secret = secret.strip_prefix("op://").unwrap_or(secret);
        let mut parts = secret.split('/').filter(|p| !p.is_empty());
        let vault = parts.next().unwrap_or_default().to_string();
        let item = parts.next().unwrap_or_default().to_string();
        let mut fields: Vec<&str> = parts.collect();
        if fields.is_empty() {
            fields.push("password");
        }
        let field = fields.join(".");
        let items = match vaults.iter_mut().position(|(v, _)| *v == vault) {
            Some(i) => &mut vaults[i].1,
            None => {
                vaults.push((vault, Vec::new()));
                let last = vaults.len() - 1;
                &mut vaults[last].1
            }
        };
        match items.iter_mut().find(|(i, _)| *i == item) {
            Some((_, list)) => list.push(field),
            None => items.push((item, vec![field])),
        }
    }
    vaults
}

fn item_get(
    op: &Vendor<'_>,
    vault: &str,
    item: &str,
    fields: &[String],
    account: &str,
    session: Option<&str>,
) -> Result<Json, AdapterError> {
    let labels = fields
        .iter()
        .map(|f| format!("label={f}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut args = vec![
        "item",
        "get",
        item,
        "--vault",
        vault,
        "--format",
        "json",
        "--account",
        account,
    ];
    if !fields.is_empty() {
        args.extend(["--fields", labels.as_str()]);
    }
    let env: Vec<(&str, &str)> = session.map(|s| ("OP_SESSION", s)).into_iter().collect();
    let answer = op.run_env(&args, &env)?;
    if !answer.ok {
        let what = if fields.is_empty() {
            String::new()
        } else {
            format!("{} ", fields.join(", "))
        };
        return Err(failed(
            format!("could not read {what}from {item} in the {vault} 1Password vault"),
            &answer,
        )
        .hint(format!(
            "check the names with `op item get {item} --vault {vault} --account {account}`"
        )));
    }
    op.json(&args, &answer.stdout)
}

/// Kamal's `fields_map`: each field under its reference.
fn fields_map(fields: &[Json], out: &mut Fetched) {
    for field in fields {
        let reference = field.get("reference").and_then(Json::as_str).unwrap_or("");
        let reference = reference.strip_prefix("op://").unwrap_or(reference);
        let key = reference.strip_suffix("/password").unwrap_or(reference);
        let value = field
            .get("value")
            .and_then(Json::as_str)
            .map(str::to_string);
        out.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_group_by_vault_and_item_with_password_as_the_default_field() {
        let secrets: Vec<String> = ["op://v/item/section/A", "v/item/B", "v/other", "w/item/C"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            vaults_items_fields(&secrets),
            vec![
                (
                    "v".to_string(),
                    vec![
                        (
                            "item".to_string(),
                            vec!["section.A".to_string(), "B".to_string()]
                        ),
                        ("other".to_string(), vec!["password".to_string()]),
                    ]
                ),
                (
                    "w".to_string(),
                    vec![("item".to_string(), vec!["C".to_string()])]
                ),
            ]
        );
    }
}

//! Bitwarden (`adapters/bitwarden.rb`), with `bw`.
//!
//! - login: `bw status`; `unauthenticated` → `bw login ACCOUNT` on the terminal; `locked` →
//!   `bw unlock --raw` on the terminal, whose output is the session, then `bw status` again; the
//!   session goes in `BW_SESSION` (never in argv); then `bw sync`;
//! - secrets `ITEM[/FIELD]` (after `--from`): `bw get item ITEM` once per item; with fields,
//!   `ITEM/FIELD` ← the custom field's value; without, `ITEM` ← the login password, else every
//!   custom field as `ITEM/NAME`.

use super::json::Json;
use super::{failed, Adapter, AdapterError, Fetched, Request, Vendor, VendorCli};

/// `--adapter bitwarden`.
pub(crate) struct Bitwarden;

const CLI: VendorCli = VendorCli {
    program: "bw",
    name: "Bitwarden CLI",
    install: "https://bitwarden.com/help/cli/",
    version_args: &["--version"],
};

impl Adapter for Bitwarden {
    fn cli(&self) -> Option<VendorCli> {
        Some(CLI)
    }

    fn fetch(&self, bw: &Vendor<'_>, request: &Request<'_>) -> Result<Fetched, AdapterError> {
        let session = login(bw, request.account())?;
        let env: Vec<(&str, &str)> = session
            .as_deref()
            .map(|s| ("BW_SESSION", s))
            .into_iter()
            .collect();
        let mut out = Fetched::default();
        for (item, fields) in items_fields(&request.prefixed()) {
            let args = ["get", "item", item.as_str()];
            let answer = bw.run_env(&args, &env)?;
            if !answer.ok {
                return Err(
                    failed(format!("could not read {item} from Bitwarden"), &answer).hint(format!(
                        "check the item's name with `bw list items --search {item}`"
                    )),
                );
            }
            let item_json = bw.json(&args, &answer.stdout)?;
            let custom = item_json.get("fields").and_then(Json::as_array);
            let password = item_json.get("login").and_then(|l| l.get("password"));
            if fields.iter().any(Option::is_some) {
                from_fields(&fields, &item, custom, &mut out)?;
            } else if let Some(password) = password.filter(|p| p.truthy()) {
                out.insert(item.clone(), password.as_str().map(str::to_string));
            } else if let Some(list) = custom.filter(|f| !f.is_empty()) {
                let names: Vec<Option<String>> = list
                    .iter()
                    .map(|f| f.get("name").and_then(Json::as_str).map(str::to_string))
                    .collect();
                from_fields(&names, &item, custom, &mut out)?;
            } else {
                return Err(AdapterError::new(format!(
                    "item {item} is not a login type item and no fields were specified"
                ))
                .hint(format!("name the fields to fetch: `{item}/FIELD`")));
            }
        }
        Ok(out)
    }
}

fn login(bw: &Vendor<'_>, account: &str) -> Result<Option<String>, AdapterError> {
    let mut state = status(bw, &[])?;
    if state == "unauthenticated" {
        bw.interactive(&["login", account], &[])?;
        state = status(bw, &[])?;
    }
    let mut session = None;
    if state == "locked" {
        let unlock = bw.interactive(&["unlock", "--raw"], &[])?;
        session = Some(unlock.stdout.trim().to_string()).filter(|s| !s.is_empty());
        let env: Vec<(&str, &str)> = session
            .as_deref()
            .map(|s| ("BW_SESSION", s))
            .into_iter()
            .collect();
        state = status(bw, &env)?;
    }
    if state != "unlocked" {
        return Err(
            AdapterError::new("failed to login to and unlock Bitwarden").hint(format!(
                "log in with `bw login {account}` and unlock with `bw unlock`, then run again"
            )),
        );
    }
    let env: Vec<(&str, &str)> = session
        .as_deref()
        .map(|s| ("BW_SESSION", s))
        .into_iter()
        .collect();
    let sync = bw.run_env(&["sync"], &env)?;
    if !sync.ok {
        return Err(failed("failed to sync Bitwarden".into(), &sync));
    }
    Ok(session)
}

/// `bw status`'s `status`.
fn status(bw: &Vendor<'_>, env: &[(&str, &str)]) -> Result<String, AdapterError> {
    let answer = bw.run_env(&["status"], env)?;
    let json = bw.json(&["status"], &answer.stdout)?;
    Ok(json
        .get("status")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string())
}

/// Kamal's `items_fields`: item → the fields asked (`None` for the item itself), in order.
fn items_fields(secrets: &[String]) -> Vec<(String, Vec<Option<String>>)> {
    let mut items: Vec<(String, Vec<Option<String>>)> = Vec::new();
    for secret in secrets {
        let mut parts = secret.split('/');
        let item = parts.next().unwrap_or_default().to_string();
        let field = parts.next().map(str::to_string);
        match items.iter_mut().find(|(i, _)| *i == item) {
            Some((_, fields)) => fields.push(field),
            None => items.push((item, vec![field])),
        }
    }
    items
}

fn from_fields(
    fields: &[Option<String>],
    item: &str,
    custom: Option<&[Json]>,
    out: &mut Fetched,
) -> Result<(), AdapterError> {
    for field in fields {
        let name = field.as_deref().unwrap_or_default();
        let found = custom.and_then(|list| {
            list.iter()
                .find(|f| field.is_some() && f.get("name").and_then(Json::as_str) == Some(name))
        });
        let Some(found) = found else {
            return Err(AdapterError::new(format!(
                "could not find field {name} in item {item} in Bitwarden"
            ))
            .hint(format!(
                "check the item's custom fields with `bw get item {item}`"
            )));
        };
        out.insert(
            format!("{item}/{name}"),
            found
                .get("value")
                .and_then(Json::as_str)
                .map(str::to_string),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_group_their_fields_in_order() {
        let secrets: Vec<String> = ["a/X", "b", "a/Y"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            items_fields(&secrets),
            vec![
                (
                    "a".to_string(),
                    vec![Some("X".to_string()), Some("Y".to_string())]
                ),
                ("b".to_string(), vec![None]),
            ]
        );
    }
}

//! Passbolt (`adapters/passbolt.rb`), with `passbolt` (go-passbolt-cli).
//!
//! - login: `passbolt verify` must succeed;
//! - secrets `[FOLDER/…/]NAME` (after `--from`): the folders are looked up first
//!   (`passbolt list folders --filter 'Name == "A" || …' --json`, then each nested level with
//!   `FolderParentID`), then one `passbolt list resources --filter '…' --folder ID…
//!   --column name --column password --json`; each resource's `name` ← its `password`.

use super::json::Json;
use super::{failed, shellescape, Adapter, AdapterError, Fetched, Request, Vendor, VendorCli};

/// `--adapter passbolt`.
pub(crate) struct Passbolt;

const CLI: VendorCli = VendorCli {
    program: "passbolt",
    name: "Passbolt CLI",
    install: "https://github.com/passbolt/go-passbolt-cli",
    version_args: &["--version"],
};

/// A folder as `passbolt list folders` answers it.
#[derive(Debug, Clone, PartialEq)]
struct Folder {
    id: String,
    name: String,
    parent: String,
}

impl Adapter for Passbolt {
    fn requires_account(&self) -> bool {
        false
    }

    fn cli(&self) -> Option<VendorCli> {
        Some(CLI)
    }

    fn fetch(&self, pb: &Vendor<'_>, request: &Request<'_>) -> Result<Fetched, AdapterError> {
        let verify = pb.run(&["verify"])?;
        if !verify.ok {
            return Err(failed("failed to login to Passbolt".into(), &verify)
                .hint("configure the CLI (`passbolt configure`) and check `passbolt verify`"));
        }
        let secrets = request.prefixed();
        if secrets.is_empty() {
            return Err(AdapterError::usage("no secrets given to fetch")
                .hint("name the resources to fetch"));
        }
        let names: Vec<&str> = secrets
            .iter()
            .map(|s| s.rsplit('/').next().unwrap_or_default())
            .collect();
        let folders = folders(pb, &secrets)?;
        let mut conditions = Vec::new();
        for secret in &secrets {
            let parts: Vec<&str> = secret.split('/').collect();
            let name = parts.last().copied().unwrap_or_default();
            if parts.len() > 1 {
                let mut current = None;
                for depth in 1..parts.len() {
                    let path = parts[..depth].join("/");
                    if let Some(f) = folders.iter().find(|f| folder_path(f, &folders) == path) {
                        current = Some(f);
                    }
                }
                if let Some(folder) = current {
                    conditions.push(format!(
                        "(Name == {} && FolderParentID == {})",
                        quoted(name),
                        quoted(&folder.id)
                    ));
                }
            } else {
                conditions.push(format!("Name == {}", quoted(name)));
            }
        }
        let filter = conditions.join(" || ");
        let mut args = vec!["list", "resources"];
        if !conditions.is_empty() {
            args.extend(["--filter", filter.as_str()]);
        }
        for folder in &folders {
            args.extend(["--folder", folder.id.as_str()]);
        }
        args.extend(["--column", "name", "--column", "password", "--json"]);
        let answer = pb.run(&args)?;
        if !answer.ok {
            return Err(failed(
                format!("could not read {} from Passbolt", secrets.join(", ")),
                &answer,
            ));
        }
        let items = pb.json(&args, &answer.stdout)?;
        let items = items.as_array().unwrap_or_default();
        let found: Vec<&str> = items
            .iter()
            .filter_map(|i| i.get("name").and_then(Json::as_str))
            .collect();
        let missing: Vec<&str> = names
            .iter()
            .filter(|n| !found.contains(n))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(AdapterError::new(format!(
                "could not find the following secrets in Passbolt: {}",
                missing.join(", ")
            ))
            .hint("check the names with `passbolt list resources`"));
        }
        let mut out = Fetched::default();
        for item in items {
            let name = item.get("name").and_then(Json::as_str).unwrap_or_default();
            let password = item
                .get("password")
                .and_then(Json::as_str)
                .map(str::to_string);
            out.insert(name, password);
        }
        Ok(out)
    }
}

/// Kamal's `name.shellescape.inspect`, as the filter expressions quote names and ids.
fn quoted(s: &str) -> String {
    let escaped = shellescape(s);
    let mut out = String::from("\"");
    let mut chars = escaped.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '#' if matches!(chars.peek(), Some('{' | '$' | '@')) => out.push_str("\\#"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn parse_folders(
    pb: &Vendor<'_>,
    args: &[&str],
    stdout: &str,
) -> Result<Vec<Folder>, AdapterError> {
    let json = pb.json(args, stdout)?;
    Ok(json
        .as_array()
        .unwrap_or_default()
        .iter()
        .map(|f| Folder {
            id: f.get("id").map(super::stringify).unwrap_or_default(),
            name: f
                .get("name")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string(),
            parent: match f.get("folder_parent_id") {
                Some(Json::String(s)) => s.clone(),
                _ => String::new(),
            },
        })
        .collect())
}

/// Kamal's `secrets_get_folders`: every folder the secrets' paths name, or an error naming the
/// paths not found.
fn folders(pb: &Vendor<'_>, secrets: &[String]) -> Result<Vec<Folder>, AdapterError> {
    let mut paths: Vec<Vec<&str>> = Vec::new();
    for secret in secrets.iter().filter(|s| s.contains('/')) {
        let parts: Vec<&str> = secret.split('/').collect();
        let path = parts[..parts.len() - 1].to_vec();
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let mut parents: Vec<&str> = Vec::new();
    for path in &paths {
        if let Some(first) = path.first() {
            if !parents.contains(first) {
                parents.push(first);
            }
        }
    }
    let filter = parents
        .iter()
        .map(|n| format!("Name == {}", quoted(n)))
        .collect::<Vec<_>>()
        .join(" || ");
    let args = ["list", "folders", "--filter", filter.as_str(), "--json"];
    let answer = pb.run(&args)?;
    if !answer.ok {
        return Err(failed(
            "could not read folders from Passbolt".into(),
            &answer,
        ));
    }
    let parent_items = parse_folders(pb, &args, &answer.stdout)?;
    let mut all = parent_items.clone();
    for path in paths.iter().filter(|p| p.len() > 1) {
        let Some(mut current) = parent_items.iter().find(|f| f.name == path[0]).cloned() else {
            continue;
        };
        for name in &path[1..] {
            let filter = format!(
                "Name == {} && FolderParentID == {}",
                quoted(name),
                quoted(&current.id)
            );
            let args = ["list", "folders", "--filter", filter.as_str(), "--json"];
            let answer = pb.run(&args)?;
            if !answer.ok {
                continue;
            }
            let nested = parse_folders(pb, &args, &answer.stdout)?;
            let Some(first) = nested.first().cloned() else {
                break;
            };
            all.extend(nested);
            current = first;
        }
    }
    let found: Vec<String> = all.iter().map(|f| folder_path(f, &all)).collect();
    let missing: Vec<String> = paths
        .iter()
        .map(|p| p.join("/"))
        .filter(|p| !found.contains(p))
        .collect();
    if !missing.is_empty() {
        return Err(AdapterError::new(format!(
            "could not find the following folders in Passbolt: {}",
            missing.join(", ")
        ))
        .hint("check the folder names with `passbolt list folders`"));
    }
    Ok(all)
}

/// Kamal's `get_folder_path`: the folder's names from the root, joined with `/`.
fn folder_path(folder: &Folder, all: &[Folder]) -> String {
    let mut names = vec![folder.name.as_str()];
    let mut current = folder;
    // Bounded by the number of folders: a cycle in the answer cannot loop forever.
    for _ in 0..all.len() {
        if current.parent.is_empty() {
            break;
        }
        let Some(parent) = all.iter().find(|f| f.id == current.parent) else {
            break;
        };
        names.insert(0, parent.name.as_str());
        current = parent;
    }
    names.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_as_kamal_quotes_them() {
        assert_eq!(quoted("DB_PASSWORD"), "\"DB_PASSWORD\"");
        assert_eq!(quoted("my secret"), "\"my\\\\ secret\"");
    }

    #[test]
    fn folder_paths_follow_parents() {
        let f = |id: &str, name: &str, parent: &str| Folder {
            id: id.into(),
            name: name.into(),
            parent: parent.into(),
        };
        let all = vec![f("1", "app", ""), f("2", "prod", "1"), f("3", "x", "9")];
        assert_eq!(folder_path(&all[1], &all), "app/prod");
        assert_eq!(folder_path(&all[2], &all), "x");
    }
}

//! Google Secret Manager (`adapters/gcp_secret_manager.rb`), with `gcloud`.
//!
//! - login: `gcloud auth list --format=json` must list an account, else `gcloud auth login` on
//!   the terminal;
//! - `--account USER[|SERVICE_ACCOUNT[,…]]`: `default` is gcloud's own account; the part after
//!   `|` is impersonated;
//! - secrets `[PROJECT/]NAME[/VERSION]` (`default` project, `latest` version):
//!   `gcloud secrets versions access VERSION --secret=NAME [--project=P] [--account=U]
//!   [--impersonate-service-account=S] --format=json`, base64 `payload.data`, under
//!   `PROJECT/NAME`.

use base64::Engine;

use super::json::Json;
use super::{failed, Adapter, AdapterError, Fetched, Request, Vendor, VendorCli};

/// `--adapter gcp`.
pub(crate) struct GcpSecretManager;

const CLI: VendorCli = VendorCli {
    program: "gcloud",
    name: "gcloud CLI",
    install: "https://cloud.google.com/sdk/docs/install",
    version_args: &["--version"],
};

impl Adapter for GcpSecretManager {
    fn cli(&self) -> Option<VendorCli> {
        Some(CLI)
    }

    fn fetch(&self, gcloud: &Vendor<'_>, request: &Request<'_>) -> Result<Fetched, AdapterError> {
        if !logged_in(gcloud)? {
            gcloud.interactive(&["auth", "login"], &[])?;
            if !logged_in(gcloud)? {
                return Err(AdapterError::new("could not login to gcloud")
                    .hint("log in with `gcloud auth login`, then run again"));
            }
        }
        let (user, service_account) = match request.account().split_once('|') {
            Some((user, sa)) => (user, Some(sa)),
            None => (request.account(), None),
        };
        let mut out = Fetched::default();
        for secret in request.prefixed() {
            let mut parts: Vec<&str> = secret.split('/').collect();
            while parts.last() == Some(&"") && parts.len() > 1 {
                parts.pop();
            }
            if parts.len() == 1 {
                parts.insert(0, "default");
            }
            let project = parts[0];
            let name = parts.get(1).copied().unwrap_or_default();
            let version = parts.get(2).copied().unwrap_or("latest");
            let secret_flag = format!("--secret={name}");
            let project_flag = format!("--project={project}");
            let account_flag = format!("--account={user}");
            let sa_flag = service_account.map(|s| format!("--impersonate-service-account={s}"));
            let mut args = vec![
                "secrets",
                "versions",
                "access",
                version,
                secret_flag.as_str(),
            ];
            if project != "default" {
                args.push(&project_flag);
            }
            if user != "default" {
                args.push(&account_flag);
            }
            if let Some(flag) = &sa_flag {
                args.push(flag);
            }
            args.push("--format=json");
            let item = format!("{project}/{name}");
            let answer = gcloud.run(&args)?;
            if !answer.ok {
                return Err(failed(
                    format!("could not read {item} from Google Secret Manager"),
                    &answer,
                )
                .hint("check the secret's name, project and version, and the account's access"));
            }
            let json = gcloud.json(&args, &answer.stdout)?;
            let data = json
                .get("payload")
                .and_then(|p| p.get("data"))
                .and_then(Json::as_str)
                .unwrap_or_default();
            out.insert(item.clone(), Some(decode(data, &item)?));
        }
        Ok(out)
    }
}

fn logged_in(gcloud: &Vendor<'_>) -> Result<bool, AdapterError> {
    let args = ["auth", "list", "--format=json"];
    let answer = gcloud.run(&args)?;
    let json = gcloud.json(&args, &answer.stdout)?;
    Ok(json.as_array().is_some_and(|a| !a.is_empty()))
}

/// Ruby's `Base64.decode64` of what gcloud prints (standard alphabet; URL-safe accepted too).
fn decode(data: &str, item: &str) -> Result<String, AdapterError> {
    let clean: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&clean)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&clean))
        .map_err(|_| AdapterError::new(format!("{item}: the payload is not base64")))?;
    String::from_utf8(bytes)
        .map_err(|_| AdapterError::new(format!("{item}: the secret is not UTF-8 text")))
}

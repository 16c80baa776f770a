//! AWS Secrets Manager (`adapters/aws_secrets_manager.rb`), with `aws`.
//!
//! - no login step; `--account` is the optional `--profile`;
//! - one call: `aws secretsmanager batch-get-secret-value --secret-id-list NAME… [--profile
//!   ACCOUNT] --output json`; any `Errors` fail the fetch;
//! - a `SecretString` holding a JSON object gives `NAME/KEY` per member (values not strings as
//!   JSON); other JSON gives `NAME`; text that is not JSON is `NAME` as it is.

use super::json::Json;
use super::{failed, stringify, Adapter, AdapterError, Fetched, Request, Vendor, VendorCli};

/// `--adapter aws_secrets_manager`.
pub(crate) struct AwsSecretsManager;

const CLI: VendorCli = VendorCli {
    program: "aws",
    name: "AWS CLI",
    install: "https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html",
    version_args: &["--version"],
};

impl Adapter for AwsSecretsManager {
    fn requires_account(&self) -> bool {
        false
    }

    fn cli(&self) -> Option<VendorCli> {
        Some(CLI)
    }

    fn fetch(&self, aws: &Vendor<'_>, request: &Request<'_>) -> Result<Fetched, AdapterError> {
        let secrets = request.prefixed();
        let mut args = vec![
            "secretsmanager",
            "batch-get-secret-value",
            "--secret-id-list",
        ];
        args.extend(secrets.iter().map(String::as_str));
        if let Some(profile) = request.account {
            args.extend(["--profile", profile]);
        }
        args.extend(["--output", "json"]);
        let answer = aws.run(&args)?;
        if !answer.ok {
            return Err(failed(
                format!(
                    "could not read {} from AWS Secrets Manager",
                    secrets.join(", ")
                ),
                &answer,
            )
            .hint("check the credentials (`aws sts get-caller-identity`) and the secret names"));
        }
        let json = aws.json(&args, &answer.stdout)?;
        if let Some(errors) = json.get("Errors").and_then(Json::as_array) {
            if !errors.is_empty() {
                let text = errors
                    .iter()
                    .map(|e| {
                        format!(
                            "{}: {}",
                            e.get("SecretId").and_then(Json::as_str).unwrap_or_default(),
                            e.get("Message").and_then(Json::as_str).unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                return Err(AdapterError::new(text)
                    .hint("check the secret names and the profile's permissions"));
            }
        }
        let mut out = Fetched::default();
        let values = json
            .get("SecretValues")
            .and_then(Json::as_array)
            .unwrap_or_default();
        for secret in values {
            let name = secret
                .get("Name")
                .and_then(Json::as_str)
                .unwrap_or_default();
            let string = secret.get("SecretString").and_then(Json::as_str);
            match string.map(|s| (s, Json::parse(s))) {
                Some((_, Some(Json::Object(members)))) => {
                    for (key, value) in members {
                        out.insert(format!("{name}/{key}"), Some(stringify(&value)));
                    }
                }
                Some((_, Some(other))) => out.insert(name, Some(stringify(&other))),
                Some((raw, None)) => out.insert(name, Some(raw.to_string())),
                None => out.insert(name, None),
            }
        }
        Ok(out)
    }
}

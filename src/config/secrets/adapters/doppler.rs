//! Doppler (`adapters/doppler.rb`), with `doppler`.
//!
//! - login: `doppler me --json` must succeed, else `doppler login -y` on the terminal;
//! - `doppler secrets get NAME… --json -p PROJECT -c CONFIG`, the project and config from
//!   `--from PROJECT/CONFIG` (not needed with a service token, `DOPPLER_TOKEN=dp.st…`); each
//!   name ← its `computed` value.

use super::json::Json;
use super::{failed, Adapter, AdapterError, Fetched, Request, Vendor, VendorCli};

/// `--adapter doppler`.
pub(crate) struct Doppler;

const CLI: VendorCli = VendorCli {
    program: "doppler",
    name: "Doppler CLI",
    install: "https://docs.doppler.com/docs/install-cli",
    version_args: &["--version"],
};

impl Adapter for Doppler {
    fn requires_account(&self) -> bool {
        false
    }

    fn cli(&self) -> Option<VendorCli> {
        Some(CLI)
    }

    fn fetch(&self, doppler: &Vendor<'_>, request: &Request<'_>) -> Result<Fetched, AdapterError> {
        if !doppler.run(&["me", "--json"])?.ok {
            let login = doppler.interactive(&["login", "-y"], &[])?;
            if !login.ok {
                return Err(failed("failed to login to Doppler".into(), &login)
                    .hint("log in with `doppler login`, or set a service token in DOPPLER_TOKEN"));
            }
        }
        let secrets = request.prefixed();
        let service_token = doppler
            .env()
            .get("DOPPLER_TOKEN")
            .is_some_and(|t| t.starts_with("dp.st"));
        let names: Vec<&str> = secrets
            .iter()
            .map(|s| s.rsplit('/').next().unwrap_or_default())
            .collect();
        let mut args = vec!["secrets", "get"];
        args.extend(names.iter().copied());
        args.push("--json");
        let first = secrets.first().map(String::as_str).unwrap_or_default();
        let mut parts = first.split('/');
        if !service_token {
            let (Some(project), Some(config)) = (
                parts.next().filter(|p| !p.is_empty()),
                parts.next().filter(|c| !c.is_empty()),
            ) else {
                return Err(AdapterError::usage(
                    "missing project or config from '--from=project/config' option",
                )
                .hint("add `--from PROJECT/CONFIG`, or use a service token (DOPPLER_TOKEN)"));
            };
            args.extend(["-p", project, "-c", config]);
        }
        let answer = doppler.run(&args)?;
        if !answer.ok {
            return Err(failed(
                format!("could not read {} from Doppler", secrets.join(", ")),
                &answer,
            ));
        }
        let mut out = Fetched::default();
        if let Json::Object(members) = doppler.json(&args, &answer.stdout)? {
            for (name, value) in members {
                let computed = value.get("computed").and_then(Json::as_str);
                out.insert(name, computed.map(str::to_string));
            }
        }
        Ok(out)
    }
}

//! Kamal's `test` adapter (`adapters/test.rb`): each secret's value is its name reversed, with
//! `LPAREN`/`RPAREN` turned into parentheses. No vault, no CLI; `--account` is required.

use super::{Adapter, AdapterError, Fetched, Request, Vendor, VendorCli};

/// `--adapter test`.
pub(crate) struct Test;

impl Adapter for Test {
    fn cli(&self) -> Option<VendorCli> {
        None
    }

    fn fetch(&self, _: &Vendor<'_>, request: &Request<'_>) -> Result<Fetched, AdapterError> {
        let mut out = Fetched::default();
        for secret in request.prefixed() {
            let value: String = secret
                .replace("LPAREN", "(")
                .replace("RPAREN", ")")
                .chars()
                .rev()
                .collect();
            out.insert(secret, Some(value));
        }
        Ok(out)
    }
}

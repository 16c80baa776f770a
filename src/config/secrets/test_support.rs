//! Helpers shared by the secrets tests: an environment with `PATH`, and parsing one text.

use std::collections::BTreeMap;
use std::path::Path;

use super::dotenv::parse_dotenv;
use super::error::SecretsError;
use super::subst::DotenvContext;
use crate::config::template::CommandPolicy;

pub(super) fn env(vars: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.insert("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into());
    env
}

pub(super) fn parse_with(
    text: &str,
    vars: &[(&str, &str)],
    commands: CommandPolicy,
) -> Result<Vec<(String, String)>, SecretsError> {
    let env = env(vars);
    let cwd = std::env::temp_dir();
    let ctx = DotenvContext {
        file: Path::new(".kamal/secrets"),
        cwd: &cwd,
        env: &env,
        commands,
    };
    let mut values = Vec::new();
    parse_dotenv(text, &ctx, &mut values).map(|()| values)
}

pub(super) fn parse(text: &str) -> Vec<(String, String)> {
    match parse_with(text, &[], CommandPolicy::Run) {
        Ok(values) => values,
        Err(e) => panic!("parse failed: {e}"),
    }
}

pub(super) fn one(text: &str) -> String {
    let values = parse(text);
    assert_eq!(values.len(), 1, "{values:?}");
    values[0].1.clone()
}

pub(super) fn parse_err(text: &str) -> (usize, String) {
    match parse_with(text, &[], CommandPolicy::Run) {
        Err(SecretsError::Parse { line, message, .. }) => (line, message),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

pub(super) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

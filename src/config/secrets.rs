//! Secrets: `.kamal/secrets-common` then `.kamal/secrets` (or `.kamal/secrets.<dest>`), in
//! dotenv syntax with `$VAR`, `${VAR}` and `$(cmd)` substitution.
//!
//! OWNER: secrets helper. Interface only until implemented.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The secrets of one run, in file order (later files override earlier keys).
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: Vec<(String, String)>,
    files: Vec<PathBuf>,
}

/// A secrets file that could not be read, or a secret that is not there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// A key was asked for that no file defines.
    #[error("secret '{key}' not found in {}", files_list(.files))]
    Missing {
        /// The key asked for.
        key: String,
        /// The files searched, in order.
        files: Vec<PathBuf>,
    },
    /// A file has a syntax error, or a `$(cmd)` failed.
    #[error("{}:{line}: {message}", .file.display())]
    Parse {
        /// The secrets file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What went wrong.
        message: String,
    },
}

fn files_list(files: &[PathBuf]) -> String {
    if files.is_empty() {
        return "no secret files".to_string();
    }
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Secrets {
    /// Load `<secrets_path>-common`, then `<secrets_path>` or, with a destination,
    /// `<secrets_path>.<destination>`. Missing files are skipped. `secrets_path` is relative to
    /// `cwd` unless absolute. `env` is the environment for `$VAR` and for `$(cmd)`.
    pub fn load(
        secrets_path: &Path,
        destination: Option<&str>,
        cwd: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<Secrets, SecretsError> {
        let _ = (secrets_path, destination, cwd, env);
        Ok(Secrets::default())
    }

    /// Build from known values (tests, and a parent dray handing secrets down).
    pub fn from_pairs(values: Vec<(String, String)>, files: Vec<PathBuf>) -> Secrets {
        Secrets { values, files }
    }

    /// The value of `key`, or an error naming the key and the files searched.
    pub fn get(&self, key: &str) -> Result<&str, SecretsError> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| SecretsError::Missing {
                key: key.to_string(),
                files: self.files.clone(),
            })
    }

    /// Every key and value, in file order, last definition of a key winning.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The files that were searched, in order (whether or not they existed).
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

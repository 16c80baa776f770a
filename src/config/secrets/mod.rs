//! Secrets: `.kamal/secrets-common` then `.kamal/secrets` (or `.kamal/secrets.<dest>`), in
//! dotenv syntax with `$VAR`, `${VAR}` and `$(cmd)` substitution.
//!
//! `$(kamal secrets fetch …)` and `$(kamal secrets extract …)` (or `dray secrets …`) run inside
//! this process, with Kamal's password-manager adapters (1Password, Bitwarden, …), as Kamal runs
//! them: no shell, no `kamal` executable (`inline.rs`, `adapters/`). Other commands run in the
//! shell.
//!
//! Secret values never appear in error messages or in `Debug` output.
//!
//! - this file: [`Secrets`], the files read in order and the values they define;
//! - `dotenv.rs`: [`parse_dotenv`], the dotenv syntax of one file;
//! - `subst.rs`: `$VAR`, `${VAR}` and `$(command)` substitution, and [`DotenvContext`];
//! - `inline.rs`: the in-process `$(kamal secrets …)`;
//! - `adapters/`: `secrets fetch`'s vault adapters and `secrets extract`;
//! - `error.rs`: [`SecretsError`] and [`REDACTED`];
//! - tests beside them: `dotenv_tests.rs`, `subst_tests.rs` and, for the store, this file.

pub mod adapters;
pub(crate) mod dotenv;
mod error;
mod inline;
pub(crate) mod subst;

#[cfg(test)]
mod dotenv_tests;
#[cfg(test)]
mod subst_tests;
#[cfg(test)]
mod test_support;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::template::{lowercase_first, CommandPolicy};
use dotenv::set;

pub use dotenv::parse_dotenv;
pub use error::{SecretsError, REDACTED};
pub use subst::DotenvContext;

/// The secrets of one run, in file order (later files override earlier keys).
#[derive(Clone, Default)]
pub struct Secrets {
    values: Vec<(String, String)>,
    files: Vec<PathBuf>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted<'a>(&'a [(String, String)]);
        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|(k, _)| (k, REDACTED)))
                    .finish()
            }
        }
        f.debug_struct("Secrets")
            .field("values", &Redacted(&self.values))
            .field("files", &self.files)
            .finish()
    }
}

/// Every secret value this process has read with [`Secrets::load`]: what the `output:` logs
/// redact.
static LOADED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Remember values a `$(kamal secrets fetch …)` fetched (some may never become a key of their
/// own: a fetch of `A B` then an extract of `A` only), so that the logs redact them too.
pub(crate) fn remember_fetched(values: impl Iterator<Item = String>) {
    if let Ok(mut seen) = LOADED.lock() {
        seen.extend(values);
    }
}

/// The secret values [`Secrets::load`] (and every in-process fetch) has read so far in this
/// process.
pub fn loaded_values() -> Vec<String> {
    LOADED.lock().map(|v| v.clone()).unwrap_or_default()
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
        let secrets =
            Secrets::load_with_policy(secrets_path, destination, cwd, env, CommandPolicy::Run)?;
        if let Ok(mut seen) = LOADED.lock() {
            seen.extend(secrets.iter().map(|(_, v)| v.to_string()));
        }
        Ok(secrets)
    }

    /// [`Secrets::load`], with the choice of whether `$(cmd)` may run.
    /// [`Secrets::files`] holds the paths as given (relative to `cwd` when `secrets_path` is).
    pub fn load_with_policy(
        secrets_path: &Path,
        destination: Option<&str>,
        cwd: &Path,
        env: &BTreeMap<String, String>,
        commands: CommandPolicy,
    ) -> Result<Secrets, SecretsError> {
        let mut common = secrets_path.as_os_str().to_owned();
        common.push("-common");
        let mut specific = secrets_path.as_os_str().to_owned();
        if let Some(dest) = destination {
            specific.push(".");
            specific.push(dest);
        }
        let files = vec![PathBuf::from(common), PathBuf::from(specific)];

        let mut values = Vec::new();
        for file in &files {
            let full = cwd.join(file);
            let bytes = match std::fs::read(&full) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(SecretsError::Read {
                        file: file.clone(),
                        message: lowercase_first(&e.to_string()),
                    })
                }
            };
            let text = String::from_utf8(bytes).map_err(|_| SecretsError::Read {
                file: file.clone(),
                message: "not valid UTF-8".to_string(),
            })?;
            let ctx = DotenvContext {
                file,
                cwd,
                env,
                commands,
            };
            parse_dotenv(&text, &ctx, &mut values)?;
        }
        Ok(Secrets { values, files })
    }

    /// Build from known values (tests, and a parent dray handing secrets down). A key given
    /// twice keeps its first position and its last value.
    pub fn from_pairs(values: Vec<(String, String)>, files: Vec<PathBuf>) -> Secrets {
        let mut deduped: Vec<(String, String)> = Vec::with_capacity(values.len());
        for (key, value) in values {
            set(&mut deduped, key, value);
        }
        Secrets {
            values: deduped,
            files,
        }
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

#[cfg(test)]
mod tests {
    use super::test_support::{env, pairs};
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn load_reads_common_then_plain_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), ".kamal/secrets-common", "A=common\nB=common\n");
        write(dir.path(), ".kamal/secrets", "B=plain\nC=$A\n");
        write(dir.path(), ".kamal/secrets.prod", "B=prod\n");
        let s =
            Secrets::load(Path::new(".kamal/secrets"), None, dir.path(), &env(&[])).expect("load");
        assert_eq!(s.get("A"), Ok("common"));
        assert_eq!(s.get("B"), Ok("plain"));
        assert_eq!(s.get("C"), Ok("common"));
        assert_eq!(
            s.files(),
            [
                PathBuf::from(".kamal/secrets-common"),
                PathBuf::from(".kamal/secrets")
            ]
        );
    }

    #[test]
    fn load_with_destination_reads_the_destination_file_not_the_plain_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), ".kamal/secrets-common", "A=common\nB=common\n");
        write(dir.path(), ".kamal/secrets", "ONLY_PLAIN=1\n");
        write(dir.path(), ".kamal/secrets.prod", "B=prod\n");
        let s = Secrets::load(
            Path::new(".kamal/secrets"),
            Some("prod"),
            dir.path(),
            &env(&[]),
        )
        .expect("load");
        assert_eq!(s.get("B"), Ok("prod"));
        assert_eq!(s.get("A"), Ok("common"));
        assert!(s.get("ONLY_PLAIN").is_err());
        assert_eq!(s.files()[1], PathBuf::from(".kamal/secrets.prod"));
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [("A", "common"), ("B", "prod")]
        );
    }

    #[test]
    fn load_skips_missing_files_and_missing_secret_names_key_and_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Secrets::load(
            Path::new("config/secrets"),
            Some("staging"),
            dir.path(),
            &env(&[]),
        )
        .expect("load");
        assert_eq!(s.iter().count(), 0);
        let err = s.get("DB_PASSWORD").expect_err("missing");
        assert_eq!(
            err.to_string(),
            "secret 'DB_PASSWORD' not found in config/secrets-common, config/secrets.staging"
        );
    }

    #[test]
    fn load_accepts_an_absolute_secrets_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "s/secrets", "A=1\n");
        let path = dir.path().join("s/secrets");
        let s = Secrets::load(&path, None, Path::new("/nonexistent"), &env(&[])).expect("load");
        assert_eq!(s.get("A"), Ok("1"));
    }

    #[test]
    fn load_reports_parse_errors_with_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), ".kamal/secrets-common", "OK=1\nbroken line\n");
        let err = Secrets::load(Path::new(".kamal/secrets"), None, dir.path(), &env(&[]))
            .expect_err("parse error");
        assert_eq!(
            err,
            SecretsError::Parse {
                file: PathBuf::from(".kamal/secrets-common"),
                line: 2,
                message: "invalid line: expected `KEY=value`, a `# comment` or a blank line".into(),
            }
        );
    }

    #[test]
    fn load_reports_unreadable_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".kamal/secrets")).expect("mkdir");
        let err = Secrets::load(Path::new(".kamal/secrets"), None, dir.path(), &env(&[]))
            .expect_err("a directory");
        assert!(matches!(err, SecretsError::Read { .. }), "{err:?}");
        write(dir.path(), "bin/secrets-common", "");
        std::fs::write(dir.path().join("bin/secrets-common"), [b'A', b'=', 0xff]).expect("write");
        let err = Secrets::load(Path::new("bin/secrets"), None, dir.path(), &env(&[]))
            .expect_err("not utf-8");
        assert_eq!(err.to_string(), "bin/secrets-common: not valid UTF-8");
    }

    #[test]
    fn debug_output_redacts_values() {
        let s = Secrets::from_pairs(pairs(&[("KEY", "hunter2"), ("KEY", "hunter3")]), vec![]);
        let debug = format!("{s:?}");
        assert!(debug.contains("\"KEY\": \"[REDACTED]\""), "{debug}");
        assert!(!debug.contains("hunter"), "{debug}");
        assert_eq!(s.get("KEY"), Ok("hunter3"));
        assert_eq!(s.iter().count(), 1);
    }
}

//! [`LoadOptions`]: what loading the configuration needs from the outside world (the files,
//! the destination, the working directory and the environment).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// What loading needs from the outside world.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The base file (`-c`, default `config/deploy.yml`), relative to `cwd` unless absolute.
    pub config_file: PathBuf,
    /// The `-d` destination.
    pub destination: Option<String>,
    /// Where dray runs: templates' commands run here, relative paths start here.
    pub cwd: PathBuf,
    /// The environment templates see (`KAMAL_DESTINATION` is set from `destination`).
    pub env: BTreeMap<String, String>,
}

impl LoadOptions {
    /// Options from the process environment and working directory.
    pub fn from_process(
        config_file: PathBuf,
        destination: Option<String>,
    ) -> std::io::Result<Self> {
        Ok(LoadOptions {
            config_file,
            destination,
            cwd: std::env::current_dir()?,
            env: std::env::vars().collect(),
        })
    }

    /// The environment as templates, secrets and hooks see it.
    pub fn template_env(&self) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        match &self.destination {
            Some(d) => {
                env.insert("KAMAL_DESTINATION".into(), d.clone());
            }
            None => {
                env.remove("KAMAL_DESTINATION");
            }
        }
        env
    }
}

//! `dray init`: write `config/deploy.yml`, `.kamal/secrets` and `.kamal/hooks/*.sample`, never
//! overwriting an existing file (Kamal's `kamal init`).

use std::path::Path;

use crate::error::{Error, Result};

const DEPLOY_YML: &str = include_str!("../../templates/deploy.yml");
const SECRETS: &str = include_str!("../../templates/secrets");

/// The sample hooks, from `hooks-examples/`.
const HOOKS: &[(&str, &str)] = &[
    (
        "docker-setup",
        include_str!("../../hooks-examples/docker-setup"),
    ),
    (
        "post-app-boot",
        include_str!("../../hooks-examples/post-app-boot"),
    ),
    (
        "post-deploy",
        include_str!("../../hooks-examples/post-deploy"),
    ),
    (
        "post-proxy-reboot",
        include_str!("../../hooks-examples/post-proxy-reboot"),
    ),
    (
        "pre-app-boot",
        include_str!("../../hooks-examples/pre-app-boot"),
    ),
    ("pre-build", include_str!("../../hooks-examples/pre-build")),
    (
        "pre-connect",
        include_str!("../../hooks-examples/pre-connect"),
    ),
    (
        "pre-deploy",
        include_str!("../../hooks-examples/pre-deploy"),
    ),
    (
        "pre-proxy-reboot",
        include_str!("../../hooks-examples/pre-proxy-reboot"),
    ),
];

/// Write the files that do not exist yet under `root`; report each one.
pub fn run(root: &Path) -> Result<()> {
    let write = |relative: &str, text: &str, executable: bool| -> Result<()> {
        let path = root.join(relative);
        if path.exists() {
            println!("{relative} already exists, skipping");
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::failure(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(&path, text)
            .map_err(|e| Error::failure(format!("cannot write {relative}: {e}")))?;
        if executable {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
        }
        println!("created {relative}");
        Ok(())
    };
    write("config/deploy.yml", DEPLOY_YML, false)?;
    write(".kamal/secrets", SECRETS, false)?;
    for (name, text) in HOOKS {
        write(&format!(".kamal/hooks/{name}.sample"), text, true)?;
    }
    Ok(())
}

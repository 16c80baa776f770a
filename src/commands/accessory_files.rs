//! What an accessory command reads on this machine before planning: the accessory files (a
//! `*erb` file rendered as Kamal renders it, with the accessory's env, clear and secret, in
//! `ENV`), and the check that every secret the accessories need exists.

use crate::config::model::Accessory;
use crate::config::secrets::Secrets;
use crate::config::template::{render_erb, TemplateContext};
use crate::config::{Config, LoadOptions};
use crate::error::{Error, Result};
use crate::plan::accessory::FileContent;

/// Every secret of the accessories' env and registries exists (else the error names it).
pub fn check_secrets(config: &Config, accessories: &[&Accessory], secrets: &Secrets) -> Result<()> {
    use crate::config::model::Credential;
    for acc in accessories {
        for s in &acc.env.secrets {
            secrets.get(&s.key)?;
        }
        // Its own registry for boot and reboot, the root one for exec (as Kamal logs in).
        for registry in acc.registry.iter().chain([&config.registry]) {
            for c in [&registry.username, &registry.password]
                .into_iter()
                .flatten()
            {
                if let Credential::Secret(name) = c {
                    secrets.get(name)?;
                }
            }
        }
    }
    Ok(())
}

/// The contents of the accessories' files: read from the project, `*erb` ones rendered (Kamal
/// tests `end_with?("erb")`). A missing file, or a directory (Kamal's upload takes files only),
/// is an error naming the accessory and the file.
pub fn read(
    accessories: &[&Accessory],
    secrets: &Secrets,
    opts: &LoadOptions,
) -> Result<Vec<FileContent>> {
    let mut out = Vec::new();
    for acc in accessories {
        for f in &acc.files {
            let path = opts.cwd.join(&f.local);
            let key = format!("accessories.{}.files", acc.name);
            if path.is_dir() {
                return Err(Error::usage(format!(
                    "{key}: {} is a directory; accessory files are uploaded one by one",
                    f.local
                ))
                .with_hint("list each file of the directory under `files:`"));
            }
            let bytes = std::fs::read(&path).map_err(|e| {
                Error::usage(format!("{key}: missing file: {} ({e})", f.local))
                    .with_hint("the path is relative to the directory dray runs in")
            })?;
            let content = if f.local.ends_with("erb") {
                render(acc, &f.local, &bytes, secrets, opts)?
            } else {
                bytes
            };
            out.push(FileContent {
                accessory: acc.name.clone(),
                local: f.local.clone(),
                content,
            });
        }
    }
    Ok(out)
}

fn render(
    acc: &Accessory,
    local: &str,
    bytes: &[u8],
    secrets: &Secrets,
    opts: &LoadOptions,
) -> Result<Vec<u8>> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        Error::usage(format!(
            "accessories.{}.files: {local} is not UTF-8 text",
            acc.name
        ))
        .with_hint("only text files ending in `erb` are rendered; rename a binary file")
    })?;
    let mut env = opts.template_env();
    for (k, v) in &acc.env.clear {
        env.insert(k.clone(), v.clone());
    }
    for s in &acc.env.secrets {
        env.insert(s.name.clone(), secrets.get(&s.key)?.to_string());
    }
    let ctx = TemplateContext {
        env,
        cwd: opts.cwd.clone(),
    };
    let rendered = render_erb(text, &ctx).map_err(|e| {
        Error::usage(format!("{local}: {e}"))
            .with_hint("accessory templates are ERB, rendered with the accessory's env in ENV")
    })?;
    Ok(rendered.into_bytes())
}

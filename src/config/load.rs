//! Loading: read the base file and the destination overlay, render templates, parse, merge,
//! deserialize into raw structs and validate into the model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::de::{self, DeError};
use super::error::{did_you_mean, ConfigError, Position};
use super::model::Config;
use super::node::{self, Node};
use super::raw::RawConfig;
use super::template::{self, TemplateContext};
use super::validate;

pub use super::load_options::LoadOptions;
pub use super::sources::{locate, Sources};

/// The path of the destination overlay: `config/deploy.yml` + `staging` →
/// `config/deploy.staging.yml` (Ruby's `Pathname#sub_ext`).
pub fn destination_file(base: &Path, destination: &str) -> PathBuf {
    match (base.file_stem(), base.extension()) {
        (Some(stem), Some(ext)) => base.with_file_name(format!(
            "{}.{}.{}",
            stem.to_string_lossy(),
            destination,
            ext.to_string_lossy()
        )),
        _ => PathBuf::from(format!("{}.{}", base.display(), destination)),
    }
}

/// Read, render, parse and merge the files into one tree, without deserializing.
pub fn load_tree(opts: &LoadOptions) -> Result<(Node, Sources), ConfigError> {
    load_tree_with_policy(opts, template::CommandPolicy::Run)
}

/// [`load_tree`], with the choice of whether the templates' commands run.
fn load_tree_with_policy(
    opts: &LoadOptions,
    policy: template::CommandPolicy,
) -> Result<(Node, Sources), ConfigError> {
    // One context for both files: what the base file's `Dotenv.load` loads, the overlay sees
    // (Kamal's `ENV` is the process's).
    let mut ctx = TemplateContext {
        env: opts.template_env(),
        cwd: opts.cwd.clone(),
    };
    let mut sources = Sources::default();
    let mut tree = read_file(
        &opts.config_file,
        &opts.cwd,
        &mut ctx,
        &mut sources,
        None,
        policy,
    )?;
    if let Some(dest) = &opts.destination {
        let overlay_path = destination_file(&opts.config_file, dest);
        let overlay = read_file(
            &overlay_path,
            &opts.cwd,
            &mut ctx,
            &mut sources,
            Some(dest),
            policy,
        )?;
        tree.deep_merge(overlay);
    }
    tree.strip_extension_keys();
    Ok((tree, sources))
}

fn read_file(
    path: &Path,
    cwd: &Path,
    ctx: &mut TemplateContext,
    sources: &mut Sources,
    destination: Option<&str>,
    policy: template::CommandPolicy,
) -> Result<Node, ConfigError> {
    let full = cwd.join(path);
    let text = match std::fs::read_to_string(&full) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let err = ConfigError::new(format!(
                "configuration file not found in {}",
                path.display()
            ));
            return Err(match destination {
                Some(d) => err.hint(format!(
                    "destination `{d}` reads {} over the base file: create it, or check the -d value",
                    path.display()
                )),
                None => err.hint("run `dray init` to create one, or pass -c/--config-file"),
            });
        }
        Err(err) => {
            return Err(ConfigError::new(format!(
                "cannot read {}: {err}",
                path.display()
            )))
        }
    };
    let file_index = sources.files.len();
    sources.files.push(path.to_path_buf());
    let rendered = template::render_file(&text, ctx, policy).map_err(|err| {
        let e = ConfigError::new(err.message.clone()).at(Some(Position {
            file: path.to_path_buf(),
            line: err.line as u32,
            column: err.column as u32,
        }));
        match err.hint {
            Some(h) => e.hint(h),
            None => e,
        }
    })?;
    let (mut tree, duplicates) = node::parse_with_duplicates(&rendered).map_err(|err| {
        ConfigError::new(err.message).at(Some(Position {
            file: path.to_path_buf(),
            line: err.line,
            column: err.column,
        }))
    })?;
    for dup in duplicates {
        let at = |loc: node::Loc| Position {
            file: path.to_path_buf(),
            line: loc.line,
            column: loc.column,
        };
        sources.warnings.push(format!(
            "{}: duplicate key `{}`: this value replaces the one at {} (the last one wins, as in Kamal)",
            at(dup.last),
            dup.key,
            at(dup.first)
        ));
    }
    if !matches!(tree.value, node::Value::Map(_)) {
        return Err(ConfigError::new(format!(
            "expected a map of settings at the top level, found {}",
            tree.value.kind()
        ))
        .at(sources.position(tree.loc)));
    }
    tree.set_file(file_index);
    Ok(tree)
}

/// Load one configuration from text, as if read from `name`, with template commands denied:
/// used by property tests, which must never start processes.
pub fn load_str_without_commands(text: &str, name: &str) -> Result<Config, ConfigError> {
    let opts = LoadOptions {
        config_file: PathBuf::from(name),
        destination: None,
        cwd: std::env::temp_dir(),
        env: BTreeMap::new(),
    };
    let ctx = TemplateContext {
        env: BTreeMap::new(),
        cwd: opts.cwd.clone(),
    };
    let sources = Sources {
        files: vec![PathBuf::from(name)],
        warnings: Vec::new(),
    };
    let rendered = template::render_with_policy(text, &ctx, template::CommandPolicy::Deny)
        .map_err(|e| ConfigError::new(e.message))?;
    let mut tree = node::parse(&rendered).map_err(|e| ConfigError::new(e.message))?;
    if !matches!(tree.value, node::Value::Map(_)) {
        return Err(ConfigError::new("not a map"));
    }
    tree.strip_extension_keys();
    validate::check_numbers(&tree, &sources)?;
    let raw: RawConfig = de::from_node(&tree).map_err(|err| de_error(err, &tree, &sources))?;
    validate::validate(raw, &tree, &sources, &opts)
}

/// Load and validate the configuration.
pub fn load(opts: &LoadOptions) -> Result<Config, ConfigError> {
    load_with_policy(opts, template::CommandPolicy::Run)
}

/// [`load`], with the choice of whether the templates' commands run (the fuzz harness loads
/// with [`template::CommandPolicy::Fake`]).
pub fn load_with_policy(
    opts: &LoadOptions,
    policy: template::CommandPolicy,
) -> Result<Config, ConfigError> {
    let (tree, sources) = load_tree_with_policy(opts, policy)?;
    validate::check_numbers(&tree, &sources)?;
    let raw: RawConfig = de::from_node(&tree).map_err(|err| de_error(err, &tree, &sources))?;
    validate::validate(raw, &tree, &sources, opts)
}

/// Turn a deserializer error into a configuration error with a position and a did-you-mean.
pub fn de_error(err: DeError, tree: &Node, sources: &Sources) -> ConfigError {
    let loc = err.loc.or_else(|| locate(tree, &err.path).map(|n| n.loc));
    let mut out = ConfigError::new(err.message.clone())
        .key(err.path.to_string())
        .at(loc.and_then(|l| sources.position(l)));
    if let Some((key, expected)) = &err.unknown {
        match did_you_mean(key, expected.iter().copied()) {
            Some(suggestion) => out = out.hint(format!("did you mean `{suggestion}`?")),
            None if !expected.is_empty() => {
                out = out.hint(format!("known keys here: {}", expected.join(", ")))
            }
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VALID: &str = "service: app\nimage: u/app\nservers:\n  web:\n    - 1.1.1.1\n  workers:\n    hosts: [1.1.1.2]\n    cmd: run\nregistry:\n  username: u\n  password: [P]\nbuilder:\n  arch: amd64\nenv:\n  clear:\n    A: <%= ENV['A'] %>\n  secret: [B]\nx-a: &a {b: 1}\nproxy:\n  host: a.b\naccessories:\n  db:\n    image: x\n    roles: [web]\n";

    #[test]
    fn the_valid_sample_loads() {
        assert!(load_str_without_commands(VALID, "deploy.yml").is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn random_text_never_panics(text in "\\PC{0,400}") {
            let _ = load_str_without_commands(&text, "deploy.yml");
        }

        #[test]
        fn yaml_like_text_never_panics(text in "([a-z_<>%={}:\\-\\[\\]&*!|'\"#` \n]|  ){0,300}") {
            let _ = load_str_without_commands(&text, "deploy.yml");
        }

        #[test]
        fn mutated_valid_configs_never_panic(
            cuts in proptest::collection::vec((0usize..400, 0usize..20, "\\PC{0,8}"), 1..6)
        ) {
            let mut text = VALID.to_string();
            for (at, len, insert) in cuts {
                let mut at = at.min(text.len());
                while !text.is_char_boundary(at) { at -= 1; }
                let mut end = (at + len).min(text.len());
                while !text.is_char_boundary(end) { end -= 1; }
                text.replace_range(at..end, &insert);
            }
            let _ = load_str_without_commands(&text, "deploy.yml");
        }
    }

    #[test]
    fn a_megabyte_of_deep_anchors_is_refused_quickly() {
        let mut text =
            String::from("service: app\nx-0: &a0 [aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb]\n");
        let mut i = 1;
        while text.len() < 1024 * 1024 - 200 {
            let p = i - 1;
            text.push_str(&format!("x-{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}]\n"));
            i += 1;
            if i > 40 {
                text.push_str(&format!("# {}\n", "x".repeat(4000)));
            }
        }
        assert!(text.len() > 1000 * 1000);
        let started = std::time::Instant::now();
        let err = load_str_without_commands(&text, "deploy.yml");
        assert!(err.is_err());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn destination_file_replaces_the_extension() {
        assert_eq!(
            destination_file(Path::new("config/deploy.yml"), "staging"),
            PathBuf::from("config/deploy.staging.yml")
        );
        assert_eq!(
            destination_file(Path::new("deploy"), "prod"),
            PathBuf::from("deploy.prod")
        );
    }
}

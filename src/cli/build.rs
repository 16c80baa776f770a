//! `dray build …` and `dray upgrade` (Kamal's `lib/kamal/cli/build.rb`, `main.rb#upgrade`), as
//! clap structures only.

use clap::{Args, Subcommand};

/// `dray build …`.
#[derive(Debug, Subcommand)]
pub enum BuildCommand {
    /// Build app and push app image to registry then pull image on servers.
    Deliver {
        /// Build without using Docker's build cache.
        #[arg(long = "no-cache", alias = "no_cache")]
        no_cache: bool,
    },
    /// Build and push app image to registry.
    Push(BuildOutputArgs),
    /// Pull app image from registry onto servers.
    Pull,
    /// Create a build setup.
    Create,
    /// Remove build setup.
    Remove,
    /// Show build setup.
    Details,
    /// Build using the working directory, tag it as dirty, and push to local image store.
    Dev(BuildDevArgs),
}

/// `build push|dev --output TYPE` is Kamal's export type, while `--output human|json` is dray's
/// global report format: before parsing, the export types (anything but `human` and `json`)
/// after `build push` or `build dev` become `--export-type TYPE`.
pub fn export_types_of_build(args: Vec<String>) -> Vec<String> {
    let at = args
        .windows(2)
        .position(|w| w[0] == "build" && matches!(w[1].as_str(), "push" | "dev"));
    let Some(at) = at else { return args };
    let report = |v: &str| matches!(v, "human" | "json");
    let mut out: Vec<String> = args[..at + 2].to_vec();
    let mut rest = args[at + 2..].iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            out.push(arg.clone());
            out.extend(rest.by_ref().cloned());
            break;
        }
        if arg == "--output" {
            match rest.next() {
                Some(v) if !report(v) => out.extend(["--export-type".to_string(), v.clone()]),
                Some(v) => out.extend([arg.clone(), v.clone()]),
                None => out.push(arg.clone()),
            }
        } else if let Some(v) = arg.strip_prefix("--output=").filter(|v| !report(v)) {
            out.push(format!("--export-type={v}"));
        } else {
            out.push(arg.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::export_types_of_build;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn build_output_types_are_told_from_the_report_format() {
        let cases = [
            (
                "dray build push --output tar",
                "dray build push --export-type tar",
            ),
            (
                "dray build dev --output=local -q",
                "dray build dev --export-type=local -q",
            ),
            (
                "dray build push --output json",
                "dray build push --output json",
            ),
            (
                "dray --output json build push --output registry",
                "dray --output json build push --export-type registry",
            ),
            ("dray deploy --output json", "dray deploy --output json"),
            (
                "dray build pull --output docker",
                "dray build pull --output docker",
            ),
        ];
        for (given, want) in cases {
            assert_eq!(export_types_of_build(words(given)), words(want), "{given}");
        }
    }
}

/// Options of `build push`.
#[derive(Debug, Clone, Args)]
pub struct BuildOutputArgs {
    /// Exported type for the build result, and may be any exported type supported by 'buildx
    /// --output' (without buildx: registry or docker). Kamal's `--output TYPE` is read as this
    /// for any TYPE but `human` and `json` (the report format).
    #[arg(
        long = "export-type",
        alias = "output-type",
        value_name = "EXPORT_TYPE",
        default_value = "registry"
    )]
    pub export: String,
    /// Build without using Docker's build cache.
    #[arg(long = "no-cache", alias = "no_cache")]
    pub no_cache: bool,
}

/// Options of `build dev`.
#[derive(Debug, Clone, Args)]
pub struct BuildDevArgs {
    /// Exported type for the build result, and may be any exported type supported by 'buildx
    /// --output' (without buildx: docker or registry). Kamal's `--output TYPE` is read as this
    /// for any TYPE but `human` and `json` (the report format).
    #[arg(
        long = "export-type",
        alias = "output-type",
        value_name = "EXPORT_TYPE",
        default_value = "docker"
    )]
    pub export: String,
    /// Build without using Docker's build cache.
    #[arg(long = "no-cache", alias = "no_cache")]
    pub no_cache: bool,
}

/// Options of `upgrade` (Kamal's), refused: see `commands::upgrade`.
#[derive(Debug, Clone, Args)]
pub struct UpgradeArgs {
    /// Proceed without confirmation question.
    #[arg(short = 'y', long)]
    pub confirmed: bool,
    /// Upgrade one host at a time.
    #[arg(long)]
    pub rolling: bool,
}

//! `dray proxy boot_config set|get|reset` (Kamal's deprecated `Kamal::Cli::Proxy#boot_config`):
//! the files of kamal-proxy's legacy boot on every proxy host
//! ([`crate::docker::proxy_boot_config`]). `set` and `reset` change the hosts (under the lock),
//! `get` prints `Host <host>: <options> <image>:<version> <run command>` per host.

use crate::cli::{GlobalOptions, ProxyBootConfigArgs};
use crate::docker::proxy_boot_config::{self as files, BootConfig};
use crate::error::{Error, Result};
use crate::plan::{locked, on_hosts, planned, stage, OutputStyle, Plan};

/// Run `proxy boot_config …`.
pub fn run(global: &GlobalOptions, args: &ProxyBootConfigArgs) -> Result<()> {
    let (sub, extra) = match args.words.split_first() {
        Some((sub, extra)) => (sub.as_str(), extra),
        None => return Err(Error::usage("proxy boot_config: set, get or reset?")),
    };
    if !extra.is_empty() && (sub != "set" || args.docker_options.is_empty()) {
        return Err(Error::usage(format!(
            "proxy boot_config {sub}: unexpected argument `{}`",
            extra.join(" ")
        ))
        .with_hint("values after `--docker-options` belong to it; other options take one value"));
    }
    let boot = match sub {
        "set" => Some(boot_config(args, extra)),
        "get" | "reset" => None,
        other => {
            return Err(
                Error::usage(format!("Unknown boot_config subcommand {other}"))
                    .with_hint("dray proxy boot_config set|get|reset"),
            )
        }
    };
    if !global.quiet {
        eprintln!("The proxy boot_config command is deprecated - set the config in the deploy YAML at proxy/run instead");
    }
    let s = super::session::Session::for_proxy(global)?;
    let hosts = s.targets.hosts.clone();
    let targets = s.targets.clone();
    if sub == "get" {
        let stages = vec![stage(
            "boot_config",
            on_hosts("read the proxy boot config", &hosts, |h| {
                vec![planned(files::get(h)).show()]
            }),
        )];
        let mut plan = Plan::command("proxy", Some("boot_config"), None, targets, stages);
        plan.output = OutputStyle::Plain;
        return s.run(&plan);
    }
    let release = s.release()?.release;
    let stages = vec![stage(
        "boot_config",
        on_hosts("write the proxy boot config", &hosts, |h| {
            let cmds = match &boot {
                Some(config) => files::set(config, h),
                None => files::reset(h),
            };
            // Removing a file that is not there is fine, as for Kamal.
            cmds.into_iter()
                .map(|c| {
                    if c.program == "rm" {
                        planned(c).ignore_errors()
                    } else {
                        planned(c)
                    }
                })
                .collect()
        }),
    )];
    let stages = locked(s.lock(&release.version), stages);
    s.run(&Plan::command(
        "proxy",
        Some("boot_config"),
        Some(release),
        targets,
        stages,
    ))
}

/// What `set` writes, as Kamal computes it from the options.
fn boot_config(args: &ProxyBootConfigArgs, extra: &[String]) -> BootConfig {
    let mut options = Vec::new();
    if args.publish {
        options.extend(files::publish_args(
            args.http_port,
            args.https_port,
            &args.publish_host_ip,
        ));
    }
    options.extend([
        "--log-opt".to_string(),
        format!("max-size={}", args.log_max_size),
    ]);
    if let Some(port) = args.metrics_port {
        options.push(format!("--expose={port}"));
    }
    options.extend(
        args.docker_options
            .iter()
            .chain(extra)
            .map(|o| format!("--{o}")),
    );
    let options = options.join(" ");
    let image = [
        args.registry.clone(),
        Some(args.repository.clone().unwrap_or_else(|| "basecamp".into())),
        Some("kamal-proxy".to_string()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("/");
    let mut run = Vec::new();
    if args.debug {
        run.push("--debug".to_string());
    }
    if let Some(port) = args.metrics_port {
        run.push(format!("--metrics-port {port}"));
    }
    BootConfig {
        options: (options != files::DEFAULT_OPTIONS).then_some(options),
        image: (image != files::DEFAULT_IMAGE).then_some(image),
        image_version: args.image_version.clone(),
        run_command: (!run.is_empty()).then(|| format!("kamal-proxy run {}", run.join(" "))),
    }
}

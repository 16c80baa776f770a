//! The command line, as clap structures only. Nothing below `commands` imports clap.
//!
//! Names, short flags and defaults follow Kamal 2.12 (`lib/kamal/cli/*.rb`): notably `-h` is
//! `--hosts` (help is `--help` only) and `--version` is the app version to deploy (dray's own
//! version is `dray version`).

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

mod build;
mod thor;

pub use build::{export_types_of_build, BuildCommand, BuildDevArgs, BuildOutputArgs, UpgradeArgs};
pub use thor::options_first;

/// dray: deploy web apps anywhere, Kamal 2 compatible.
#[derive(Debug, Parser)]
#[command(
    name = "dray",
    disable_help_flag = true,
    disable_version_flag = true,
    disable_help_subcommand = true,
    // An option given twice takes the last value: the global options given before an alias's
    // name are appended to its expansion and win over the alias's own.
    args_override_self = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Global options, valid before or after the command.
    #[command(flatten)]
    pub global: GlobalOptions,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts (Kamal's class options).
#[derive(Debug, Clone, Args, Default)]
pub struct GlobalOptions {
    /// Print help.
    #[arg(long, action = ArgAction::Help, global = true)]
    pub help: Option<bool>,

    /// Detailed logging.
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,

    /// Minimal logging.
    #[arg(short = 'q', long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Run commands against a specific app version.
    #[arg(long = "version", value_name = "VERSION", global = true)]
    pub version: Option<String>,

    /// Run commands on the primary host instead of all.
    #[arg(short = 'p', long, global = true)]
    pub primary: bool,

    /// Run commands on these hosts instead of all (separate by comma, supports wildcards with *).
    #[arg(short = 'h', long, value_name = "HOSTS", global = true)]
    pub hosts: Option<String>,

    /// Run commands on these roles instead of all (separate by comma, supports wildcards with *).
    #[arg(short = 'r', long, value_name = "ROLES", global = true)]
    pub roles: Option<String>,

    /// Path to config file.
    #[arg(
        short = 'c',
        long = "config-file",
        alias = "config_file",
        value_name = "FILE",
        default_value = "config/deploy.yml",
        global = true
    )]
    pub config_file: PathBuf,

    /// Specify destination to be used for config file (staging -> deploy.staging.yml).
    #[arg(short = 'd', long, value_name = "DESTINATION", global = true)]
    pub destination: Option<String>,

    /// Don't run hooks.
    #[arg(short = 'H', long = "skip-hooks", alias = "skip_hooks", global = true)]
    pub skip_hooks: bool,

    /// Wait for the deploy lock instead of failing when it is held.
    #[arg(long = "lock-wait", alias = "lock_wait", global = true)]
    pub lock_wait: bool,

    /// Seconds to wait for the deploy lock.
    #[arg(
        long = "lock-wait-timeout",
        alias = "lock_wait_timeout",
        value_name = "SECONDS",
        default_value_t = 900,
        global = true
    )]
    pub lock_wait_timeout: u64,

    /// Seconds between two attempts to take the deploy lock.
    #[arg(
        long = "lock-wait-interval",
        alias = "lock_wait_interval",
        value_name = "SECONDS",
        default_value_t = 15,
        global = true
    )]
    pub lock_wait_interval: u64,

    /// Take over a deploy lock whose holder's heartbeat stopped longer than `x-dray: lock:
    /// stale_after` ago (recorded in the audit log); a lock without a heartbeat (Kamal's, a
    /// manual one) is never taken over.
    #[arg(long = "break-stale-lock", alias = "break_stale_lock", global = true)]
    pub break_stale_lock: bool,

    /// Print the plan (stages, hooks with their environment, the exact commands per host) and
    /// run nothing.
    #[arg(long = "dry-run", alias = "dry_run", global = true)]
    pub dry_run: bool,

    /// Output format: human text, or one JSON object per event (per line).
    #[arg(long, value_enum, default_value_t = OutputFormat::Human, global = true)]
    pub output: OutputFormat,
}

/// How a command reports what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// Human-readable text.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Options of `deploy`, `redeploy` and `setup`.
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// Skip image build and push.
    #[arg(short = 'P', long = "skip-push", alias = "skip_push")]
    pub skip_push: bool,

    /// Build without the Docker cache.
    #[arg(long = "no-cache", alias = "no_cache")]
    pub no_cache: bool,

    /// When the release fails on some hosts, leave the hosts that switched on the new version
    /// (Kamal's behaviour) instead of switching them back to the version they ran before.
    #[arg(long = "no-revert", alias = "no_revert")]
    pub no_revert: bool,

    /// Canary (dray only): boot the new version beside the old on the primary role's hosts
    /// and route this percentage (0-100) of `kamal-rollout` cookie values to it through the
    /// proxy; `dray canary promote|abort` ends it.
    #[arg(long, value_name = "PERCENT", allow_negative_numbers = true)]
    pub canary: Option<i64>,

    /// With --canary: requests whose `kamal-rollout` cookie has this value always go to the
    /// canary (repeatable; `--canary 0 --canary-allow V` routes only those).
    #[arg(
        long = "canary-allow",
        value_name = "COOKIE_VALUE",
        requires = "canary"
    )]
    pub canary_allow: Vec<String>,
}

/// The commands, with Kamal's names.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up all accessories, push the env, and deploy app to servers.
    Setup(DeployArgs),
    /// Deploy app to servers.
    Deploy(DeployArgs),
    /// Deploy app to servers without bootstrapping servers, starting kamal-proxy and pruning.
    Redeploy(DeployArgs),
    /// Rollback app to VERSION (without one: to the release before the latest, as recorded on
    /// the hosts).
    Rollback {
        /// The version to roll back to.
        rollback_version: Option<String>,
        /// When the rollback fails on some hosts, leave the others on the version rolled back
        /// to (Kamal's behaviour) instead of switching them back.
        #[arg(long = "no-revert", alias = "no_revert")]
        no_revert: bool,
    },
    /// Show details about all containers.
    Details,
    /// Show audit log from servers.
    Audit,
    /// Show, per host and role, the version running against the last release's, the proxy's
    /// routes, drift, accessories and the lock; exit 1 on drift (dray only).
    Status,
    /// Show combined config (including secrets!).
    Config,
    /// Show Kamal configuration documentation.
    Docs {
        /// The section (configuration, servers, env, …).
        section: Option<String>,
    },
    /// Create config stub in config/deploy.yml, secrets stub in .kamal and hook samples.
    Init {
        /// Accepted for compatibility with Kamal; dray has no bundle to add.
        #[arg(long)]
        bundle: bool,
    },
    /// Remove kamal-proxy, app, accessories, and registry session from servers.
    Remove {
        /// Proceed without confirmation question.
        #[arg(short = 'y', long)]
        confirmed: bool,
    },
    /// Upgrade from Kamal 1.x to 2.0.
    Upgrade(UpgradeArgs),
    /// Show dray version.
    Version,
    /// Manage application.
    #[command(subcommand)]
    App(AppCommand),
    /// Build application image.
    #[command(subcommand)]
    Build(BuildCommand),
    /// Manage kamal-proxy.
    #[command(subcommand)]
    Proxy(ProxyCommand),
    /// Manage accessories (db/redis/search).
    #[command(subcommand)]
    Accessory(AccessoryCommand),
    /// Manage the deploy lock.
    #[command(subcommand)]
    Lock(LockCommand),
    /// Show, promote or abort the canary started by `deploy --canary` (dray only).
    #[command(subcommand)]
    Canary(CanaryCommand),
    /// Prune old application images and containers.
    #[command(subcommand)]
    Prune(PruneCommand),
    /// Login and -out of the image registry.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Helpers for extracting secrets.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Bootstrap servers with curl and Docker.
    #[command(subcommand)]
    Server(ServerCommand),
    /// Describe available commands or one specific command.
    Help {
        /// The command to describe.
        command: Vec<String>,
    },
    /// An alias defined under `aliases:` in the configuration.
    #[command(external_subcommand)]
    Alias(Vec<String>),
}

/// `dray canary …` (dray only): the canary `deploy --canary` started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum CanaryCommand {
    /// Show the split and the health of the canary and of the old version on each host (exit 1
    /// when the canary is unhealthy).
    Status,
    /// Complete the release: the canary's version everywhere, the old version stopped,
    /// post-deploy run, the lock released.
    Promote,
    /// Remove the canary: every request to the old version, the canary's containers removed,
    /// the lock released.
    Abort,
}

/// `dray app …` (Kamal's `lib/kamal/cli/app.rb`).
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Boot app on servers (or reboot app if already running).
    Boot,
    /// Start existing app container on servers.
    Start,
    /// Stop app container on servers.
    Stop,
    /// Show details about app containers.
    Details,
    /// Execute a custom command on servers within the app container (use --help to show options).
    Exec(AppExecArgs),
    /// Show app containers on servers.
    Containers,
    /// Detect app stale containers.
    #[command(name = "stale_containers", alias = "stale-containers")]
    StaleContainers {
        /// Stop the stale containers found.
        #[arg(short = 's', long)]
        stop: bool,
    },
    /// Show app images on servers.
    Images,
    /// Show log lines from app on servers (use --help to show options).
    Logs(AppLogsArgs),
    /// Remove app containers and images from servers.
    Remove,
    /// Set the app to live mode.
    Live,
    /// Set the app to maintenance mode.
    Maintenance {
        /// How long to allow in-flight requests to complete (defaults to `drain_timeout`).
        #[arg(
            long = "drain-timeout",
            alias = "drain_timeout",
            value_name = "SECONDS"
        )]
        drain_timeout: Option<u64>,
        /// Message to display to clients while stopped.
        #[arg(long)]
        message: Option<String>,
    },
    /// Show app version currently running on servers.
    Version,
}

/// Options of `app exec`.
#[derive(Debug, Clone, Args)]
pub struct AppExecArgs {
    /// Execute command over ssh for an interactive shell (use for console/bash).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Reuse currently running container instead of starting a new one.
    #[arg(long)]
    pub reuse: bool,
    /// Set environment variables for the command (KEY=VALUE, repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Run the command in the background (a new container, not removed when it ends).
    #[arg(long)]
    pub detach: bool,
    /// Output raw, unmodified stdout: no host headers, no progress (not with -i or --detach).
    #[arg(long)]
    pub raw: bool,
    /// The command, passed to the remote shell as written (words joined with spaces).
    #[arg(required = true, num_args = 1.., allow_hyphen_values = true, trailing_var_arg = true)]
    pub cmd: Vec<String>,
}

/// The log options `app logs` and `accessory logs` share (Kamal's).
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Show lines since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes).
    #[arg(short = 's', long)]
    pub since: Option<String>,
    /// Number of lines to show from each server (default 100, 10 with --follow, none with
    /// --since or --grep).
    #[arg(short = 'n', long)]
    pub lines: Option<u64>,
    /// Show lines with grep match only (use this to fetch specific requests by id).
    #[arg(short = 'g', long)]
    pub grep: Option<String>,
    /// Additional options supplied to grep.
    #[arg(long = "grep-options", alias = "grep_options")]
    pub grep_options: Option<String>,
    /// Follow log on the first host (or specific host set by --hosts).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Skip appending timestamps to logging output.
    #[arg(short = 'T', long = "skip-timestamps", alias = "skip_timestamps")]
    pub skip_timestamps: bool,
}

/// Options of `app logs`.
#[derive(Debug, Clone, Args)]
pub struct AppLogsArgs {
    /// The shared log options.
    #[command(flatten)]
    pub logs: LogsArgs,
    /// Docker container ID to fetch logs from.
    #[arg(long = "container-id", alias = "container_id")]
    pub container_id: Option<String>,
}

/// Options of `proxy logs` (Kamal's: no `--grep-options`, no `--container-id`).
#[derive(Debug, Clone, Args)]
pub struct ProxyLogsArgs {
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42
    /// minutes).
    #[arg(short = 's', long)]
    pub since: Option<String>,
    /// Number of log lines to pull from each server (default 100 unless --since or --grep).
    #[arg(short = 'n', long)]
    pub lines: Option<u64>,
    /// Show lines with grep match only (use this to fetch specific requests by id).
    #[arg(short = 'g', long)]
    pub grep: Option<String>,
    /// Follow logs on the first proxy host (or specific host set by --hosts).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Skip appending timestamps to logging output.
    #[arg(short = 'T', long = "skip-timestamps", alias = "skip_timestamps")]
    pub skip_timestamps: bool,
}

/// `dray accessory …` (Kamal's `lib/kamal/cli/accessory.rb`); NAME is an accessory or `all`.
#[derive(Debug, Subcommand)]
pub enum AccessoryCommand {
    /// Boot new accessory service on host (use NAME=all to boot all accessories).
    Boot {
        /// The accessory, or `all`.
        name: String,
    },
    /// Reboot existing accessory on host (stop container, remove container, start new
    /// container; use NAME=all to boot all accessories).
    Reboot {
        /// The accessory, or `all`.
        name: String,
    },
    /// Start existing accessory container on host.
    Start {
        /// The accessory, or `all`.
        name: String,
    },
    /// Stop existing accessory container on host.
    Stop {
        /// The accessory, or `all`.
        name: String,
    },
    /// Restart existing accessory container on host.
    Restart {
        /// The accessory, or `all`.
        name: String,
    },
    /// Show details about accessory on host (use NAME=all to show all accessories).
    Details {
        /// The accessory, or `all`.
        name: String,
    },
    /// Execute a custom command on servers within the accessory container (use --help to show
    /// options).
    Exec(AccessoryExecArgs),
    /// Show log lines from accessory on host (use --help to show options).
    Logs(AccessoryLogsArgs),
    /// Remove accessory container, image and data directory from host (use NAME=all to remove
    /// all accessories).
    Remove {
        /// The accessory, or `all`.
        name: String,
        /// Proceed without confirmation question.
        #[arg(short = 'y', long)]
        confirmed: bool,
    },
    /// Upgrade accessories from Kamal 1.x to 2.0 (restart them in 'kamal' network).
    Upgrade {
        /// The accessory, or `all`.
        name: String,
        /// Upgrade one host at a time.
        #[arg(long)]
        rolling: bool,
        /// Proceed without confirmation question.
        #[arg(short = 'y', long)]
        confirmed: bool,
    },
    /// Upload accessory files to host.
    #[command(hide = true)]
    Upload {
        /// The accessory, or `all`.
        name: String,
    },
    /// Create accessory directories on host.
    #[command(hide = true)]
    Directories {
        /// The accessory, or `all`.
        name: String,
    },
    /// Pull accessory image on host.
    #[command(name = "pull_image", alias = "pull-image", hide = true)]
    PullImage {
        /// The accessory, or `all`.
        name: String,
    },
    /// Remove accessory container from host.
    #[command(name = "remove_container", alias = "remove-container", hide = true)]
    RemoveContainer {
        /// The accessory, or `all`.
        name: String,
    },
    /// Remove accessory image from host.
    #[command(name = "remove_image", alias = "remove-image", hide = true)]
    RemoveImage {
        /// The accessory, or `all`.
        name: String,
    },
    /// Remove accessory directory used for uploaded files and data directories from host.
    #[command(
        name = "remove_service_directory",
        alias = "remove-service-directory",
        hide = true
    )]
    RemoveServiceDirectory {
        /// The accessory, or `all`.
        name: String,
    },
}

impl AccessoryCommand {
    /// The NAME argument.
    pub fn name(&self) -> &str {
        use AccessoryCommand::*;
        match self {
            Boot { name }
            | Reboot { name }
            | Start { name }
            | Stop { name }
            | Restart { name }
            | Details { name }
            | Remove { name, .. }
            | Upgrade { name, .. }
            | Upload { name }
            | Directories { name }
            | PullImage { name }
            | RemoveContainer { name }
            | RemoveImage { name }
            | RemoveServiceDirectory { name } => name,
            Exec(a) => &a.name,
            Logs(a) => &a.name,
        }
    }

    /// `KAMAL_SUBCOMMAND`: Kamal's name of the subcommand.
    pub fn subcommand(&self) -> &'static str {
        use AccessoryCommand::*;
        match self {
            Boot { .. } => "boot",
            Reboot { .. } => "reboot",
            Start { .. } => "start",
            Stop { .. } => "stop",
            Restart { .. } => "restart",
            Details { .. } => "details",
            Exec(_) => "exec",
            Logs(_) => "logs",
            Remove { .. } => "remove",
            Upgrade { .. } => "upgrade",
            Upload { .. } => "upload",
            Directories { .. } => "directories",
            PullImage { .. } => "pull_image",
            RemoveContainer { .. } => "remove_container",
            RemoveImage { .. } => "remove_image",
            RemoveServiceDirectory { .. } => "remove_service_directory",
        }
    }
}

/// Options of `accessory exec`.
#[derive(Debug, Clone, Args)]
pub struct AccessoryExecArgs {
    /// The accessory, or `all`.
    pub name: String,
    /// Execute command over ssh for an interactive shell (use for console/bash).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Reuse currently running container instead of starting a new one.
    #[arg(long)]
    pub reuse: bool,
    /// Output raw, unmodified stdout.
    #[arg(long)]
    pub raw: bool,
    /// The command, passed to the remote shell as written (words joined with spaces).
    #[arg(required = true, num_args = 1.., allow_hyphen_values = true, trailing_var_arg = true)]
    pub cmd: Vec<String>,
}

/// Options of `accessory logs`.
#[derive(Debug, Clone, Args)]
pub struct AccessoryLogsArgs {
    /// The accessory, or `all`.
    pub name: String,
    /// The shared log options.
    #[command(flatten)]
    pub logs: LogsArgs,
}

/// `dray proxy …` (Kamal's `lib/kamal/cli/proxy.rb`).
#[derive(Debug, Subcommand)]
pub enum ProxyCommand {
    /// Boot proxy on servers.
    Boot,
    /// Reboot proxy on servers (stop container, remove container, start new container).
    Reboot {
        /// Reboot proxy on hosts in sequence, rather than in parallel.
        #[arg(long)]
        rolling: bool,
        /// Proceed without confirmation question.
        #[arg(short = 'y', long)]
        confirmed: bool,
    },
    /// Replace dray-proxy on servers by the configured image's without refusing or failing a
    /// connection (the running container hands its sockets and routes to the new binary);
    /// kamal-proxy, or a dray-proxy container started without the supervisor, is rebooted
    /// instead, which drops connections.
    Upgrade {
        /// Upgrade proxy on hosts in sequence, rather than in parallel.
        #[arg(long)]
        rolling: bool,
        /// Proceed without confirmation question (asked because a host may need a reboot).
        #[arg(short = 'y', long)]
        confirmed: bool,
    },
    /// Start existing proxy container on servers.
    Start,
    /// Stop existing proxy container on servers.
    Stop,
    /// Restart existing proxy container on servers.
    Restart,
    /// Show details about proxy container from servers.
    Details,
    /// Show log lines from proxy on servers.
    Logs(ProxyLogsArgs),
    /// Remove proxy container and image from servers.
    Remove {
        /// Force removing proxy when apps are still installed.
        #[arg(long)]
        force: bool,
    },
    /// Manage kamal-proxy boot configuration (deprecated: set `proxy.run` in deploy.yml).
    #[command(name = "boot_config", alias = "boot-config")]
    BootConfig(ProxyBootConfigArgs),
}

/// `proxy boot_config <set|get|reset>` (Kamal's options of `set`).
#[derive(Debug, Clone, Args)]
pub struct ProxyBootConfigArgs {
    /// `set`, `get` or `reset`; after `set`, more values of the last `--docker-options`.
    #[arg(required = true, num_args = 1.., value_name = "set|get|reset")]
    pub words: Vec<String>,
    /// Publish the proxy ports on the host.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub publish: bool,
    /// Host IP address to bind HTTP/HTTPS traffic to (repeatable).
    #[arg(long = "publish-host-ip", alias = "publish_host_ip")]
    pub publish_host_ip: Vec<String>,
    /// HTTP port to publish on the host.
    #[arg(long = "http-port", alias = "http_port", default_value_t = 80)]
    pub http_port: u16,
    /// HTTPS port to publish on the host.
    #[arg(long = "https-port", alias = "https_port", default_value_t = 443)]
    pub https_port: u16,
    /// Max size of proxy logs.
    #[arg(long = "log-max-size", alias = "log_max_size", default_value = "10m")]
    pub log_max_size: String,
    /// Registry to use for the proxy image.
    #[arg(long)]
    pub registry: Option<String>,
    /// Repository for the proxy image.
    #[arg(long)]
    pub repository: Option<String>,
    /// Version of the proxy to run.
    #[arg(long = "image-version", alias = "image_version")]
    pub image_version: Option<String>,
    /// Port to report prometheus metrics on.
    #[arg(long = "metrics-port", alias = "metrics_port")]
    pub metrics_port: Option<u16>,
    /// Whether to run the proxy in debug mode.
    #[arg(long)]
    pub debug: bool,
    /// Docker options to pass to the proxy container (option=value option2=value2).
    #[arg(long = "docker-options", alias = "docker_options", num_args = 1..)]
    pub docker_options: Vec<String>,
}

/// `dray prune …` (Kamal's `lib/kamal/cli/prune.rb`).
#[derive(Debug, Subcommand)]
pub enum PruneCommand {
    /// Prune unused images and stopped containers.
    All,
    /// Prune unused images.
    Images,
    /// Prune all stopped containers, except the last n (default `retain_containers`).
    Containers {
        /// How many stopped containers to keep (at least 1).
        #[arg(long, value_name = "N")]
        retain: Option<u32>,
    },
}

/// `dray registry …` (Kamal's `lib/kamal/cli/registry.rb`).
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Set up the local registry, or log in to the remote registry locally and remotely.
    Setup(RegistryArgs),
    /// Remove the local registry, or log out of the remote registry locally and remotely.
    Remove(RegistryArgs),
    /// Log in to the registry locally and remotely.
    Login(RegistryArgs),
    /// Log out of the registry locally and remotely.
    Logout(RegistryArgs),
}

/// Options of `registry login|logout`.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Skip the local registry action.
    #[arg(short = 'L', long = "skip-local", alias = "skip_local")]
    pub skip_local: bool,
    /// Skip the remote registry action.
    #[arg(short = 'R', long = "skip-remote", alias = "skip_remote")]
    pub skip_remote: bool,
}

/// `dray secrets …`.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Print the secrets (for debugging).
    Print,
    /// Fetch secrets from a vault.
    Fetch(SecretsFetchArgs),
    /// Extract a single secret from the results of a fetch call.
    Extract(SecretsExtractArgs),
}

/// `dray secrets fetch` (Kamal's `lib/kamal/cli/secrets.rb`).
#[derive(Debug, Clone, Args)]
pub struct SecretsFetchArgs {
    /// The secrets to fetch (item names, `ITEM/FIELD`, … as the adapter reads them).
    pub secrets: Vec<String>,
    /// Which vault adapter to use (1password, bitwarden, bitwarden-sm, aws_secrets_manager,
    /// gcp, doppler, lastpass, enpass, passbolt, sops, test).
    #[arg(short = 'a', long, required = true)]
    pub adapter: String,
    /// The account identifier or username.
    #[arg(long)]
    pub account: Option<String>,
    /// A vault or folder to fetch the secrets from.
    #[arg(long)]
    pub from: Option<String>,
    /// Print the JSON shell-escaped, as `$(kamal secrets fetch …)` in .kamal/secrets gets it.
    #[arg(long, hide = true)]
    pub inline: bool,
}

/// `dray secrets extract`.
#[derive(Debug, Clone, Args)]
pub struct SecretsExtractArgs {
    /// The secret's name (a key of the fetched JSON, or the last part of one: `DB` finds
    /// `item/DB`).
    pub name: String,
    /// The output of `secrets fetch`.
    pub secrets: String,
    /// Accepted as Kamal accepts it; the value is printed either way.
    #[arg(long, hide = true)]
    pub inline: bool,
}

/// `dray lock …`.
#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Acquire the deploy lock.
    Acquire {
        /// A lock message.
        #[arg(short = 'm', long, required = true)]
        message: String,
    },
    /// Release the deploy lock.
    Release,
    /// Report lock status.
    Status,
    /// Test aid: acquire the lock as a deploy does, hold it for SECONDS, release it (released
    /// at once on ctrl-c or SIGTERM).
    #[command(hide = true)]
    Hold {
        /// How long to hold the lock.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// The lock message.
        #[arg(short = 'm', long, default_value = "Automatic deploy lock")]
        message: String,
    },
}

/// `dray server …`.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Run a custom command on the server (use --help to show options).
    Exec {
        /// Run the command interactively (`ssh -t`) on the primary host.
        #[arg(short = 'i', long)]
        interactive: bool,
        /// Output raw, unmodified stdout: no host headers, no progress (not with -i).
        #[arg(long)]
        raw: bool,
        /// The command, passed to the remote shell as written (words joined with spaces).
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true, trailing_var_arg = true)]
        cmd: Vec<String>,
    },
    /// Set up Docker to run Kamal apps.
    Bootstrap,
}

/// Kamal's top-level command names, used to refuse aliases that shadow them: exactly the
/// subcommands of [`Command`] (the configuration knows them to validate `aliases:`).
pub use crate::config::COMMAND_NAMES;

/// Commands dray has and Kamal does not; an alias of the same name runs instead (`canary`:
/// when the words after it parse as a canary subcommand, see `commands::run`).
pub const DRAY_ONLY_COMMANDS: &[&str] = &["status", "canary"];

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::{Cli, COMMAND_NAMES, DRAY_ONLY_COMMANDS};

    #[test]
    fn subcommands_are_exactly_kamals_command_names() {
        let cli = Cli::command();
        // dray's own commands, which an alias of the same name overrides (Kamal has none).
        let subcommands: Vec<&str> = cli
            .get_subcommands()
            .map(|c| c.get_name())
            .filter(|n| !DRAY_ONLY_COMMANDS.contains(n))
            .collect();
        for name in &subcommands {
            assert!(
                COMMAND_NAMES.contains(name),
                "`{name}` is a subcommand but not in COMMAND_NAMES"
            );
        }
        for name in COMMAND_NAMES {
            assert!(
                subcommands.contains(name),
                "`{name}` is in COMMAND_NAMES but not a subcommand"
            );
        }
        assert_eq!(subcommands.len(), COMMAND_NAMES.len(), "{subcommands:?}");
    }
}

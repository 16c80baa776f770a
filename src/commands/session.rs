//! What every command that touches a server shares: load the configuration and targets once,
//! resolve the release when the command needs one, build the lock steps, then either print the
//! plan (`--dry-run`) or run it on the one [`Engine`] with a reporter, the signal handling
//! (first ctrl-c/SIGTERM: stop starting work, release the lock; second: abort) and the exit
//! code of the outcome.

use crate::cli::{GlobalOptions, OutputFormat};
use crate::config::{Config, LoadOptions};
use crate::engine::{Emitter, Engine, EventSink};
use crate::error::{Error, Result};
use crate::plan::{LockStep, LockWaitPlan, Plan, Targets, UnlockStep};
use crate::release::Resolved;
use crate::report::{HumanReporter, JsonReporter, Verbosity};

use super::{load_config, resolve_release};

/// One command's configuration, targets and options.
pub struct Session<'g> {
    /// The global options.
    pub global: &'g GlobalOptions,
    /// The loaded configuration.
    pub config: Config,
    /// How it was loaded (working directory, environment).
    pub opts: LoadOptions,
    /// The targeted hosts and roles.
    pub targets: Targets,
}

impl<'g> Session<'g> {
    /// Load the configuration and the targets; nothing is connected.
    pub fn new(global: &'g GlobalOptions) -> Result<Session<'g>> {
        let (config, opts) = load_config(global)?;
        let targets = targets(&config, global)?;
        Ok(Session {
            global,
            config,
            opts,
            targets,
        })
    }

    /// The session of a `proxy` command: its targets are Kamal's `proxy_hosts`, the proxied
    /// roles' hosts and then the proxied accessories' hosts, among those `--hosts`/`--roles`
    /// select ([`crate::plan::accessory::proxy_targets`]).
    pub fn for_proxy(global: &'g GlobalOptions) -> Result<Session<'g>> {
        let (config, opts) = load_config(global)?;
        let targets = crate::plan::accessory::proxy_targets(
            &config,
            &crate::plan::Filters {
                hosts: global.hosts.as_deref(),
                roles: global.roles.as_deref(),
                primary: global.primary,
            },
        )?;
        Ok(Session {
            global,
            config,
            opts,
            targets,
        })
    }

    /// The run's release, resolved once.
    pub fn release(&self) -> Result<Resolved> {
        resolve_release(self.global, &self.config, &self.opts)
    }

    /// Whether a parent holds the lock (`KAMAL_LOCK=true`).
    pub fn lock_inherited(&self) -> bool {
        crate::lock::inherited(&|k| self.opts.env.get(k).cloned())
    }

    /// `--lock-wait`, `--lock-wait-timeout`, `--lock-wait-interval`.
    pub fn lock_wait(&self) -> Option<LockWaitPlan> {
        lock_wait(self.global)
    }

    /// The lock details this process writes for `version` with `message`.
    pub fn lock_details(&self, version: &str, message: &str) -> crate::docker::lock::LockDetails {
        crate::lock::details(
            &crate::release::lock_performer(&self.opts.cwd),
            version,
            message,
        )
    }

    /// The lock details of a run that holds the lock while it works (and refreshes its
    /// heartbeat meanwhile): [`Session::lock_details`] with the command line and a heartbeat.
    pub fn working_lock_details(
        &self,
        version: &str,
        message: &str,
    ) -> crate::docker::lock::LockDetails {
        crate::lock::details_with_heartbeat(
            &crate::release::lock_performer(&self.opts.cwd),
            version,
            message,
            &command_words(),
        )
    }

    /// The lock and unlock steps of a command that changes the servers, unless a parent
    /// holds the lock.
    pub fn lock(&self, version: &str) -> Option<(LockStep, UnlockStep)> {
        if self.lock_inherited() {
            return None;
        }
        let host = &self.targets.primary_host;
        let details = self.working_lock_details(version, crate::docker::lock::AUTOMATIC_MESSAGE);
        Some((
            crate::plan::cmds::lock(
                &self.config,
                host,
                &details,
                self.lock_wait(),
                self.global.break_stale_lock,
            ),
            crate::plan::cmds::unlock(&self.config, host),
        ))
    }

    /// [`query`] with this session's configuration.
    pub fn query(&self, plan: &Plan) -> Result<Vec<(String, String, Option<String>)>> {
        query(self.global, &self.config, &self.opts, plan)
    }

    /// Print the plan (`--dry-run`) or run it. A command plan that connects gets the
    /// `pre-connect` hook first, as every Kamal command that connects runs it.
    pub fn run(&self, plan: &Plan) -> Result<()> {
        match self.with_pre_connect(plan)? {
            Some(plan) => run_plan(self.global, &self.config, &self.opts, &plan),
            None => run_plan(self.global, &self.config, &self.opts, plan),
        }
    }

    /// `plan` with a `connect` stage running `pre-connect` (with Kamal's environment, secrets
    /// included), when it is a command plan that connects to hosts, hooks are on and the hook
    /// exists; `None` otherwise (release plans have their own).
    fn with_pre_connect(&self, plan: &Plan) -> Result<Option<Plan>> {
        use crate::plan::{stage, HookStep, PlanKind, Step};
        const HOOK: &str = "pre-connect";
        if plan.kind != PlanKind::Command
            || self.global.skip_hooks
            || plan.connect.is_empty()
            || plan.stages.iter().any(|s| s.name == "connect")
            || crate::hooks::find_hook(&self.opts.cwd, &self.config.hooks_path, HOOK).is_none()
        {
            return Ok(None);
        }
        let release = match &plan.release {
            Some(release) => release.clone(),
            None => self.release()?.release,
        };
        let secrets = super::load_secrets(&self.config, &self.opts)?;
        let roles = self
            .targets
            .roles_filtered
            .then_some(self.targets.roles.as_slice());
        let ctx = crate::hooks::HookContext {
            release: &release,
            command: &plan.command,
            subcommand: plan.subcommand.as_deref(),
            hosts: &plan.connect,
            roles,
            lock: self.lock_inherited(),
            runtime: None,
        };
        let env = crate::hooks::hook_env(HOOK, &ctx, secrets.iter());
        let mut plan = plan.clone();
        plan.stages.insert(
            0,
            stage(
                "connect",
                vec![Step::Hook(HookStep {
                    hook: HOOK.to_string(),
                    path: format!("{}/{HOOK}", self.config.hooks_path),
                    env,
                })],
            ),
        );
        Ok(Some(plan))
    }
}

/// `dray <command> [<subcommand>]` of this process, for the lock's details: the words of the
/// command line before its first option, two at most.
fn command_words() -> String {
    let words: Vec<String> = std::env::args()
        .skip(1)
        .take_while(|w| !w.starts_with('-'))
        .take(2)
        .collect();
    std::iter::once("dray".to_string())
        .chain(words)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The hosts `--hosts/--roles/--primary` select.
pub fn targets(config: &Config, global: &GlobalOptions) -> Result<Targets> {
    Targets::resolve(
        config,
        &crate::plan::Filters {
            hosts: global.hosts.as_deref(),
            roles: global.roles.as_deref(),
            primary: global.primary,
        },
    )
}

/// `dray lock release` with this run's `-c` and `-d`.
fn release_command(global: &GlobalOptions) -> String {
    let mut cmd = "dray lock release".to_string();
    if global.config_file.as_os_str() != "config/deploy.yml" {
        cmd.push_str(&format!(
            " -c {}",
            crate::shell::quote(&global.config_file.display().to_string())
        ));
    }
    if let Some(d) = &global.destination {
        cmd.push_str(&format!(" -d {}", crate::shell::quote(d)));
    }
    cmd
}

/// `--lock-wait`, `--lock-wait-timeout`, `--lock-wait-interval`.
pub fn lock_wait(global: &GlobalOptions) -> Option<LockWaitPlan> {
    global.lock_wait.then_some(LockWaitPlan {
        timeout_seconds: global.lock_wait_timeout,
        interval_seconds: global.lock_wait_interval.max(1),
    })
}

/// Which hooks show their output (Kamal's `hooks_output`, overridden by `-v`/`-q`).
fn hooks_showing_output(global: &GlobalOptions, config: &Config) -> Vec<String> {
    use crate::config::model::{HookOutputLevel, HOOK_NAMES};
    HOOK_NAMES
        .iter()
        .filter(|h| {
            if global.verbose {
                return true;
            }
            if global.quiet {
                return false;
            }
            config.hook_output(h) == Some(HookOutputLevel::Verbose)
        })
        .map(|h| h.to_string())
        .collect()
}

/// Which hooks show nothing at all (`hooks_output: quiet`, unless `-v`), as in Kamal.
fn quiet_hooks(global: &GlobalOptions, config: &Config) -> Vec<String> {
    use crate::config::model::{HookOutputLevel, HOOK_NAMES};
    HOOK_NAMES
        .iter()
        .filter(|h| !global.verbose && config.hook_output(h) == Some(HookOutputLevel::Quiet))
        .map(|h| h.to_string())
        .collect()
}

/// The reporter the options ask for.
fn reporter(global: &GlobalOptions, config: &Config, plan: &Plan) -> Box<dyn EventSink> {
    let verbosity = if global.quiet {
        Verbosity::Quiet
    } else if global.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    match global.output {
        OutputFormat::Json => Box::new(JsonReporter),
        OutputFormat::Human => {
            let human = HumanReporter::new(verbosity, hooks_showing_output(global, config))
                .with_quiet_hooks(quiet_hooks(global, config));
            // The live view only where a person watches: stderr is a terminal, not -v/-q, not
            // CI, and nothing interactive owns the terminal.
            let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let interactive = plan
                .steps()
                .any(|s| matches!(s, crate::plan::Step::Interactive(_)));
            if tty
                && verbosity == Verbosity::Normal
                && std::env::var_os("CI").is_none()
                && !interactive
            {
                Box::new(crate::report::live::LiveReporter::new(human))
            } else {
                Box::new(human)
            }
        }
    }
}

/// `sink`, teed with the `output:` loggers (file, OTel) when the configuration has any.
fn with_output_log(
    sink: Box<dyn EventSink>,
    config: &Config,
    plan: &Plan,
    root: &std::path::Path,
) -> Box<dyn EventSink> {
    match crate::report::output::OutputLog::open(config, plan, root) {
        Some(log) => Box::new(crate::report::output::Tee(vec![sink, Box::new(log)])),
        None => sink,
    }
}

/// A plan as a command built it, with what the engine needs to run it.
#[derive(Debug, Clone)]
pub struct BuiltPlan {
    /// The plan, exactly as `--dry-run` prints it.
    pub plan: Plan,
    /// The configuration it was built from.
    pub config: Config,
    /// The project root.
    pub root: std::path::PathBuf,
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<(std::path::PathBuf, Vec<BuiltPlan>)>> =
        const { std::cell::RefCell::new(None) };
}

/// The project directory plans are captured for (see [`capture_plans`]), if any.
pub(crate) fn capture_dir() -> Option<std::path::PathBuf> {
    CAPTURE.with(|c| c.borrow().as_ref().map(|(d, _)| d.clone()))
}

/// Run `work` (a command, e.g. [`super::run`]) in the project at `dir` with the plans it
/// builds kept instead of printed or executed: the plans `--dry-run` would print and the
/// engine would run, for tests that run them on a recording remote.
pub fn capture_plans<T>(dir: &std::path::Path, work: impl FnOnce() -> T) -> (T, Vec<BuiltPlan>) {
    CAPTURE.with(|c| *c.borrow_mut() = Some((dir.to_path_buf(), Vec::new())));
    let out = work();
    let plans = CAPTURE
        .with(|c| c.borrow_mut().take())
        .map(|(_, p)| p)
        .unwrap_or_default();
    (out, plans)
}

/// Print `plan` (`--dry-run`, as text or JSON) or execute it on the engine.
pub fn run_plan(
    global: &GlobalOptions,
    config: &Config,
    opts: &LoadOptions,
    plan: &Plan,
) -> Result<()> {
    let root = opts.cwd.as_path();
    let captured = CAPTURE.with(|c| {
        let mut c = c.borrow_mut();
        match c.as_mut() {
            Some((_, plans)) => {
                plans.push(BuiltPlan {
                    plan: plan.clone(),
                    config: config.clone(),
                    root: root.to_path_buf(),
                });
                true
            }
            None => false,
        }
    });
    if captured {
        return Ok(());
    }
    if global.dry_run {
        match global.output {
            OutputFormat::Json => println!("{}", crate::report::plan::plan_json(plan)),
            OutputFormat::Human => print!("{}", crate::report::plan::plan_text(plan)),
        }
        return Ok(());
    }
    let sink = with_output_log(reporter(global, config, plan), config, plan, root);
    match execute(global, config, opts, plan, sink)?.into_error() {
        None => Ok(()),
        Some(err) => Err(err),
    }
}

/// A sink that drops every event (the read-only queries a command makes before its plan).
struct Silent;

impl EventSink for Silent {
    fn emit(&mut self, _event: &crate::engine::Event) {}
}

/// Run `plan` (a read-back of one command per host) without a word on the terminal, also under
/// `--dry-run` (it only reads), and return what each host printed. Plans captured by tests read
/// nothing: an empty answer.
pub fn query(
    global: &GlobalOptions,
    config: &Config,
    opts: &LoadOptions,
    plan: &Plan,
) -> Result<Vec<(String, String, Option<String>)>> {
    if capture_dir().is_some() {
        return Ok(Vec::new());
    }
    let outcome = execute(global, config, opts, plan, Box::new(Silent))?;
    match outcome.clone().into_error() {
        None => Ok(outcome.read_back),
        Some(err) => Err(err),
    }
}

/// Run `plan` on the engine over SSH, events to `sink`, with the signal handling.
fn execute(
    global: &GlobalOptions,
    config: &Config,
    opts: &LoadOptions,
    plan: &Plan,
    sink: Box<dyn EventSink>,
) -> Result<crate::engine::Outcome> {
    let root = opts.cwd.as_path();
    let mut ssh = crate::remote::SshOptions::from_config(config, root);
    if !config.ssh.key_data.is_empty() {
        // `ssh.key_data`: private keys held in secrets, given to ssh as files of the run's
        // private directory (never in argv).
        let secrets = super::load_secrets(config, opts)?;
        ssh.key_data = config
            .ssh
            .key_data
            .iter()
            .map(|name| {
                secrets
                    .get(name)
                    .map(|v| crate::command::Secret(v.as_bytes().to_vec()))
            })
            .collect::<std::result::Result<_, _>>()?;
    }
    let remote = crate::remote::remote_for(ssh, global.verbose).map_err(Error::from)?;
    let mut engine = Engine::new(plan, config, remote, root.to_path_buf(), Emitter::new(sink));
    engine.release_command = release_command(global);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::failure(format!("cannot start the runtime: {e}")))?;
    let cancel = engine.cancel_handle();
    let release = engine.release_command.clone();
    let outcome = runtime.block_on(async {
        let (abort_tx, mut abort_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate()).ok();
            let mut int = signal(SignalKind::interrupt()).ok();
            let mut signals = 0;
            loop {
                use crate::hooks::StopSignal;
                let got = tokio::select! {
                    r = async { match int.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => r.map(|()| StopSignal::Interrupt),
                    r = async { match term.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => r.map(|()| StopSignal::Terminate),
                };
                let Some(sig) = got else {
                    break;
                };
                signals += 1;
                match signals {
                    1 => {
                        eprintln!("interrupted: finishing what is in flight, then releasing the lock (again to abort)");
                        cancel.cancel_with(sig);
                    }
                    2 => {
                        eprintln!("aborting: stopping everything, releasing the lock (again to exit at once)");
                        cancel.cancel_with(sig);
                        abort_tx.send_replace(true);
                    }
                    _ => {
                        eprintln!("error: exited at once; the deploy lock may still be held\nhint: `dray lock status` shows it; `{release}` releases it");
                        std::process::exit(crate::error::ExitCode::Interrupted.code());
                    }
                }
            }
        });
        let aborted = async {
            while !*abort_rx.borrow_and_update() {
                if abort_rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            outcome = engine.run() => outcome,
            _ = aborted => engine.abort().await,
        }
    });
    Ok(outcome)
}

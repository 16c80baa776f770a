//! `dray accessory …` (Kamal's `lib/kamal/cli/accessory.rb`): select the accessories (NAME or
//! `all`) and their targeted hosts, read what the plan uploads (files, secrets), build the plan
//! ([`crate::plan::accessory`], [`crate::plan::accessory_ops`]) and run it on the engine; every
//! subcommand but details, logs and exec under the deploy lock (Kamal's `with_lock`), each
//! after the `pre-connect` hook.

use crate::cli::{AccessoryCommand, AccessoryExecArgs, AccessoryLogsArgs, GlobalOptions};
use crate::config::secrets::Secrets;
use crate::docker::accessory::LogsOptions;
use crate::error::{Error, Result};
use crate::hooks::{hook_env, HookContext};
use crate::plan::accessory::{self as plans, AccessoryInputs, FileContent};
use crate::plan::accessory_ops::{self as ops, ExecPlan};
use crate::plan::{locked, Filters, HookStep, Plan, Stage, Step};
use crate::release::Release;

use super::accessory_files;
use super::session::Session;

/// Run one `dray accessory` subcommand.
pub fn run(global: &GlobalOptions, command: &AccessoryCommand) -> Result<()> {
    if let AccessoryCommand::Exec(args) = command {
        if args.raw && args.interactive {
            return Err(Error::usage("--raw cannot be combined with --interactive")
                .with_hint("--raw prints each host's output as it is"));
        }
        if args.raw && !global.quiet {
            let mut global = global.clone();
            global.quiet = true;
            return run(&global, command);
        }
    }
    let (config, opts) = super::load_config(global)?;
    let names: Vec<String> = plans::select(&config, command.name())?
        .iter()
        .map(|a| a.name.clone())
        .collect();
    if names.is_empty() {
        return Err(Error::usage("the configuration defines no `accessories:`")
            .with_hint("add an accessory under `accessories:` in the configuration"));
    }
    let filters = Filters {
        hosts: global.hosts.as_deref(),
        roles: global.roles.as_deref(),
        primary: global.primary,
    };
    let targets = {
        let accs: Vec<_> = config
            .accessories
            .iter()
            .filter(|a| names.contains(&a.name))
            .collect();
        plans::targets(&config, &filters, &accs)?
    };
    let s = Session {
        global,
        config,
        opts,
        targets,
    };
    let accs: Vec<_> = s
        .config
        .accessories
        .iter()
        .filter(|a| names.contains(&a.name))
        .collect();
    if let AccessoryCommand::Remove { name, confirmed }
    | AccessoryCommand::Upgrade {
        name, confirmed, ..
    } = command
    {
        let question = if matches!(command, AccessoryCommand::Remove { .. }) {
            format!("This will remove all containers, images and data directories for {name}. Are you sure?")
        } else {
            "This will restart all accessories. Are you sure?".to_string()
        };
        if !confirmed && !global.dry_run && !super::confirm(&question) {
            return Err(Error::failure("aborted").with_hint("pass -y to skip the question"));
        }
    }
    let secrets = super::load_secrets(&s.config, &s.opts)?;
    accessory_files::check_secrets(&s.config, &accs, &secrets)?;
    let uploads = matches!(
        command,
        AccessoryCommand::Boot { .. }
            | AccessoryCommand::Reboot { .. }
            | AccessoryCommand::Upgrade { .. }
            | AccessoryCommand::Upload { .. }
    );
    let files = if uploads {
        accessory_files::read(&accs, &secrets, &s.opts)?
    } else {
        Vec::new()
    };
    if matches!(
        command,
        AccessoryCommand::Reboot { .. } | AccessoryCommand::Upgrade { .. }
    ) && !global.quiet
    {
        for a in accs
            .iter()
            .filter(|a| a.proxy.is_some() && !ops::reboots_without_downtime(a))
        {
            eprintln!(
                "warning: accessory {} publishes `port`, so its reboot stops it before the new container starts (a brief outage); without `port` the proxy switches with no downtime",
                a.name
            );
        }
    }
    let release = s.release()?.release;
    let run = Run {
        s: &s,
        release: &release,
        secrets: &secrets,
        files: &files,
        sub: command.subcommand(),
    };
    let inp = run.inputs(&s.targets.hosts);
    let each = |f: &dyn Fn(&crate::config::model::Accessory) -> Vec<Stage>| -> Vec<Stage> {
        accs.iter().flat_map(|a| f(a)).collect()
    };
    use AccessoryCommand as C;
    match command {
        C::Boot { .. } => run.changing(plans::boot_stages(&inp, &accs)),
        C::Reboot { .. } => run.changing(each(&|a| ops::reboot(&inp, a))),
        C::Start { .. } => run.changing(each(&|a| vec![ops::start(&inp, a)])),
        C::Stop { .. } => run.changing(each(&|a| vec![ops::stop(&inp, a)])),
        C::Restart { .. } => run.changing(each(&|a| ops::restart(&inp, a))),
        C::Upload { .. } => run.changing(each(&|a| vec![ops::upload(&inp, a)])),
        C::Directories { .. } => run.changing(each(&|a| vec![ops::directories(&inp, a)])),
        C::PullImage { .. } => run.changing(each(&|a| vec![ops::pull_image(&inp, a)])),
        C::RemoveContainer { .. } => run.changing(each(&|a| vec![ops::remove_container(&inp, a)])),
        C::RemoveImage { .. } => run.changing(each(&|a| vec![ops::remove_image(&inp, a)])),
        C::RemoveServiceDirectory { .. } => {
            run.changing(each(&|a| vec![ops::remove_service_directory(&inp, a)]))
        }
        C::Remove { .. } => run.changing(plans::remove_stages(&inp, &accs)),
        C::Upgrade { rolling, .. } => {
            let groups: Vec<Vec<String>> = if *rolling {
                s.targets.hosts.iter().map(|h| vec![h.clone()]).collect()
            } else {
                vec![s.targets.hosts.clone()]
            };
            let mut stages = Vec::new();
            for group in &groups {
                let inp = run.inputs(group);
                stages.extend(accs.iter().flat_map(|a| ops::reboot(&inp, a)));
            }
            run.changing(stages)
        }
        C::Details { .. } => {
            // Kamal's layout: `Accessory <name> Host: <host>`, the output, a blank line.
            let mut plan = run.plan(
                plans::details_stages(&s.config, &accs, &s.targets.hosts),
                false,
            );
            plan.output = crate::plan::OutputStyle::ByHost;
            s.run(&plan)
        }
        C::Logs(args) => logs(&run, &inp, &accs, args),
        C::Exec(args) => exec(&run, &inp, &accs, args),
    }
}

/// One run's session, release and what its plans upload.
struct Run<'r> {
    s: &'r Session<'r>,
    release: &'r Release,
    secrets: &'r Secrets,
    files: &'r [FileContent],
    sub: &'static str,
}

impl<'r> Run<'r> {
    fn inputs<'h>(&self, hosts: &'h [String]) -> AccessoryInputs<'h>
    where
        'r: 'h,
    {
        AccessoryInputs {
            config: &self.s.config,
            release: self.release,
            hosts,
            secrets: self.secrets,
            files: self.files,
        }
    }

    /// The `pre-connect` hook (Kamal fires it before the first SSH use), unless `-H`.
    fn connect(&self) -> Option<Stage> {
        if self.s.global.skip_hooks {
            return None;
        }
        let t = &self.s.targets;
        let ctx = HookContext {
            release: self.release,
            command: "accessory",
            subcommand: Some(self.sub),
            hosts: &t.hosts,
            roles: t.roles_filtered.then_some(t.roles.as_slice()),
            lock: self.s.lock_inherited(),
            runtime: None,
        };
        Some(crate::plan::stage(
            "connect",
            vec![Step::Hook(HookStep {
                hook: "pre-connect".into(),
                path: format!("{}/pre-connect", self.s.config.hooks_path),
                env: hook_env("pre-connect", &ctx, self.secrets.iter()),
            })],
        ))
    }

    fn plan(&self, stages: Vec<Stage>, plain: bool) -> Plan {
        let mut all: Vec<Stage> = self.connect().into_iter().collect();
        all.extend(stages);
        let mut plan = Plan::command(
            "accessory",
            Some(self.sub),
            Some(self.release.clone()),
            self.s.targets.clone(),
            all,
        );
        let primary = &self.s.targets.primary_host;
        if !plan.connect.contains(primary) && plan.steps().any(|s| matches!(s, Step::Lock(_))) {
            plan.connect.push(primary.clone());
        }
        if plain {
            plan.output = crate::plan::OutputStyle::Plain;
        }
        plan
    }

    /// Stages that change the servers: under the deploy lock.
    fn changing(&self, stages: Vec<Stage>) -> Result<()> {
        let stages = locked(self.s.lock(&self.release.version), stages);
        self.s.run(&self.plan(stages, false))
    }

    /// Stages that only read (details, logs, exec): no lock.
    fn read_only(&self, stages: Vec<Stage>, plain: bool) -> Result<()> {
        self.s.run(&self.plan(stages, plain))
    }
}

/// `accessory logs`: each accessory's lines on its targeted hosts, or `-f` following the first
/// host's over `ssh -t`.
fn logs(
    run: &Run,
    inp: &AccessoryInputs,
    accs: &[&crate::config::model::Accessory],
    args: &AccessoryLogsArgs,
) -> Result<()> {
    let args = &args.logs;
    let unbounded = args.since.is_some() || args.grep.is_some();
    let opts = LogsOptions {
        timestamps: !args.skip_timestamps,
        since: args.since.clone(),
        lines: args.lines.or((!unbounded).then_some(100)),
        grep: args.grep.clone(),
        grep_options: args.grep_options.clone(),
        follow: args.follow,
    };
    if !args.follow {
        let stages = accs.iter().map(|a| ops::logs(inp, a, &opts)).collect();
        return run.read_only(stages, false);
    }
    let [acc] = accs else {
        return Err(Error::usage("--follow follows one accessory")
            .with_hint("name the accessory instead of `all`"));
    };
    let stage = ops::follow_logs(inp, acc, &opts)
        .ok_or_else(|| Error::usage(format!("no host of accessory {} is targeted", acc.name)))?;
    if !run.s.global.quiet && !run.s.global.dry_run {
        eprintln!("Following logs on {}...", inp.hosts_of(acc).join(", "));
    }
    run.read_only(vec![stage], false)
}

/// `accessory exec`: in a new container (or `--reuse` the running one) on every targeted host,
/// or `-i` attached to this terminal on the first.
fn exec(
    run: &Run,
    inp: &AccessoryInputs,
    accs: &[&crate::config::model::Accessory],
    args: &AccessoryExecArgs,
) -> Result<()> {
    let plan = ExecPlan {
        command: args.cmd.join(" "),
        reuse: args.reuse,
    };
    if !args.interactive {
        let stages = accs.iter().map(|a| ops::exec(inp, a, &plan)).collect();
        return run.read_only(stages, args.raw);
    }
    let [acc] = accs else {
        return Err(Error::usage("--interactive runs in one accessory")
            .with_hint("name the accessory instead of `all`"));
    };
    let stages = ops::exec_interactive(inp, acc, &plan)
        .ok_or_else(|| Error::usage(format!("no host of accessory {} is targeted", acc.name)))?;
    if !run.s.global.quiet && !run.s.global.dry_run {
        eprintln!(
            "Launching interactive command via SSH from {} container...",
            if args.reuse { "existing" } else { "new" }
        );
    }
    run.read_only(stages, false)
}

//! `dray proxy …` (Kamal's `lib/kamal/cli/proxy.rb`): each subcommand builds its plan
//! ([`crate::plan::proxy`]) for the hosts of the targeted roles that run the proxy, and runs it
//! on the engine; all but `details` and `logs` under the deploy lock.

use crate::cli::{GlobalOptions, ProxyCommand};
use crate::docker::proxy as cmds;
use crate::error::{Error, Result};
use crate::plan::proxy::{self as plans, RebootInputs};
use crate::plan::{locked, Plan, Stage};

use super::session::Session;

/// Run one `dray proxy` subcommand.
pub fn run(global: &GlobalOptions, command: &ProxyCommand) -> Result<()> {
    if let ProxyCommand::BootConfig(args) = command {
        return super::proxy_boot_config::run(global, args);
    }
    let s = Session::for_proxy(global)?;
    let hosts = s.targets.hosts.clone();
    let sub = match command {
        ProxyCommand::Boot => "boot",
        ProxyCommand::Reboot { .. } => "reboot",
        ProxyCommand::Upgrade { .. } => "upgrade",
        ProxyCommand::Start => "start",
        ProxyCommand::Stop => "stop",
        ProxyCommand::Restart => "restart",
        ProxyCommand::Details => "details",
        ProxyCommand::Logs(_) => "logs",
        ProxyCommand::Remove { .. } => "remove",
        ProxyCommand::BootConfig(_) => "boot_config",
    };
    let targets = s.targets.clone();
    let read_only = |stages: Vec<Stage>| -> Result<()> {
        s.run(&Plan::command(
            "proxy",
            Some(sub),
            None,
            targets.clone(),
            stages,
        ))
    };
    let changing = |stages: &dyn Fn(&crate::release::Release) -> Vec<Stage>| -> Result<()> {
        let release = s.release()?.release;
        let stages = locked(s.lock(&release.version), stages(&release));
        s.run(&Plan::command(
            "proxy",
            Some(sub),
            Some(release),
            targets.clone(),
            stages,
        ))
    };
    match command {
        ProxyCommand::Boot => changing(&|_| plans::boot(&s.config, &hosts)),
        ProxyCommand::Reboot { rolling, confirmed } => {
            if !confirmed
                && !global.dry_run
                && !super::confirm("This will cause a brief outage on each host. Are you sure?")
            {
                return Err(Error::failure("aborted").with_hint("pass -y to skip the question"));
            }
            changing(&|release| {
                plans::reboot(&RebootInputs {
                    config: &s.config,
                    release,
                    targets: &s.targets,
                    hosts: &hosts,
                    rolling: *rolling,
                    skip_hooks: global.skip_hooks,
                })
            })
        }
        ProxyCommand::Upgrade { rolling, confirmed } => {
            if !confirmed
                && !global.dry_run
                && !super::confirm(
                    "A host whose proxy cannot hand over its sockets (kamal-proxy, or dray-proxy started without the supervisor) is rebooted, with a brief outage. Are you sure?",
                )
            {
                return Err(Error::failure("aborted").with_hint("pass -y to skip the question"));
            }
            changing(&|release| plans::upgrade(&s.config, release, &hosts, *rolling))
        }
        ProxyCommand::Start => {
            changing(&|_| vec![plans::each("start", &hosts, |h| vec![cmds::start(h)])])
        }
        ProxyCommand::Stop => {
            changing(&|_| vec![plans::each("stop", &hosts, |h| vec![cmds::stop(h)])])
        }
        ProxyCommand::Restart => {
            changing(&|_| vec![plans::each("restart", &hosts, |h| vec![cmds::restart(h)])])
        }
        ProxyCommand::Details => read_only(vec![plans::each("details", &hosts, |h| {
            vec![cmds::details(h), cmds::supervisor_status(h)]
        })]),
        ProxyCommand::Logs(args) => {
            let opts = cmds::ProxyLogs {
                skip_timestamps: args.skip_timestamps,
                since: args.since.clone(),
                lines: args.lines,
                grep: args.grep.clone(),
                follow: args.follow,
            };
            if args.follow {
                // Kamal's: on the first proxy host, attached to this terminal.
                let host = hosts[0].clone();
                let step = crate::plan::InteractiveStep {
                    command: crate::plan::planned(cmds::logs(&host, &opts)),
                    host: host.clone(),
                };
                let mut targets = targets.clone();
                targets.hosts = vec![host];
                return s.run(&Plan::command(
                    "proxy",
                    Some(sub),
                    None,
                    targets,
                    vec![crate::plan::stage(
                        "logs",
                        vec![crate::plan::Step::Interactive(step)],
                    )],
                ));
            }
            read_only(vec![plans::each("logs", &hosts, |h| {
                vec![cmds::logs(h, &opts)]
            })])
        }
        ProxyCommand::Remove { force } => changing(&|_| plans::remove(&hosts, *force)),
        // Handled first, above.
        ProxyCommand::BootConfig(_) => Ok(()),
    }
}

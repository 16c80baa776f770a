//! `dray proxy …` (Kamal's `lib/kamal/cli/proxy.rb`): boot, reboot (with the
//! `pre-proxy-reboot` / `post-proxy-reboot` hooks, `--rolling`), start, stop, restart,
//! details, logs, remove — on the hosts of the targeted roles that run the proxy.

use crate::cli::{AppLogsArgs, GlobalOptions, ProxyCommand};
use crate::command::CommandSpec;
use crate::docker::proxy::{self as cmds, CONTAINER_NAME};
use crate::error::{Error, Result};
use crate::hooks::{self, HookContext};
use crate::shell::quote;

use super::app::{report, HostReport, Session};

/// Run one `dray proxy` subcommand.
pub fn run(global: &GlobalOptions, command: &ProxyCommand) -> Result<()> {
    let mut s = Session::new(global)?;
    let hosts = proxy_hosts(&s);
    if hosts.is_empty() {
        return Err(Error::usage("no targeted role runs the proxy").with_hint(
            "roles run kamal-proxy unless `proxy: false` (primary role) or with `proxy:` set",
        ));
    }
    let result = match command {
        ProxyCommand::Boot => {
            let release = s.release()?;
            s.locked(&release, async {
                let reports = each(
                    &s,
                    &hosts,
                    |host| {
                        vec![
                            cmds::create_network(host),
                            cmds::ensure_apps_config_directory(host),
                            cmds::boot(cmds::run_config_for(&s.config, host), host),
                        ]
                    },
                    true,
                )
                .await;
                report(&reports)
            })
        }
        ProxyCommand::Reboot { rolling, confirmed } => {
            if !confirmed && !confirm("This will cause a brief outage on each host. Are you sure?")
            {
                return Err(Error::failure("aborted").with_hint("pass -y to skip the question"));
            }
            reboot(&mut s, &hosts, *rolling)
        }
        ProxyCommand::Start => simple(&mut s, &hosts, true, cmds::start),
        ProxyCommand::Stop => simple(&mut s, &hosts, true, cmds::stop),
        ProxyCommand::Restart => simple(&mut s, &hosts, true, |host| {
            CommandSpec::new(format!("restart kamal-proxy on {host}"), "docker").args([
                "container",
                "restart",
                CONTAINER_NAME,
            ])
        }),
        ProxyCommand::Details => simple(&mut s, &hosts, false, |host| {
            CommandSpec::new(format!("show kamal-proxy on {host}"), "docker")
                .args(["ps", "--filter"])
                .arg(format!("name=^{CONTAINER_NAME}$"))
        }),
        ProxyCommand::Logs(args) => {
            let cmd = |host: &str| logs(host, args);
            simple(&mut s, &hosts, false, cmd)
        }
        ProxyCommand::Remove { force } => remove(&mut s, &hosts, *force),
    };
    s.close();
    result
}

/// Hosts of targeted roles that run the proxy, in target order.
fn proxy_hosts(s: &Session) -> Vec<String> {
    s.targets
        .hosts
        .iter()
        .filter(|h| s.roles_on(h).iter().any(|r| r.runs_proxy()))
        .cloned()
        .collect()
}

fn confirm(question: &str) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    answer.trim() == "y"
}

/// Run the commands `build(host)` gives on each of `hosts`, in parallel; with `strict` the
/// first failing command fails its host.
async fn each<F>(s: &Session<'_>, hosts: &[String], build: F, strict: bool) -> Vec<HostReport>
where
    F: Fn(&str) -> Vec<CommandSpec>,
{
    let jobs: Vec<_> = hosts
        .iter()
        .map(|host| {
            let cmds = build(host);
            async move {
                let mut out = String::new();
                for cmd in &cmds {
                    if strict {
                        match s.checked(host, cmd).await {
                            Ok(text) => out.push_str(&text),
                            Err(e) => return (host.clone(), Err(e)),
                        }
                    } else if let Some(text) = s.lenient(host, cmd).await {
                        out.push_str(&text);
                    }
                }
                (host.clone(), Ok(out))
            }
        })
        .collect();
    crate::remote::fanout::join_all(jobs).await
}

fn simple(
    s: &mut Session,
    hosts: &[String],
    lock: bool,
    build: impl Fn(&str) -> CommandSpec,
) -> Result<()> {
    let release = if lock { Some(s.release()?) } else { None };
    let s = &*s;
    let work = async {
        let reports = each(s, hosts, |h| vec![build(h)], true).await;
        report(&reports)
    };
    match release {
        Some(release) => s.locked(&release, work),
        None => s.block_on(work),
    }
}

fn logs(host: &str, args: &AppLogsArgs) -> CommandSpec {
    let mut words = vec!["docker".to_string(), "logs".into(), CONTAINER_NAME.into()];
    if !args.skip_timestamps {
        words.push("--timestamps".into());
    }
    if let Some(since) = &args.since {
        words.extend(["--since".into(), since.clone()]);
    }
    let lines = args
        .lines
        .or((args.since.is_none() && args.grep.is_none()).then_some(100));
    if let Some(n) = lines {
        words.extend(["--tail".into(), n.to_string()]);
    }
    let mut script = format!("{} 2>&1", crate::shell::join(&words));
    if let Some(grep) = &args.grep {
        script.push_str(&format!(" | grep {}", quote(grep)));
    }
    CommandSpec::new(format!("read kamal-proxy logs on {host}"), "sh")
        .arg("-c")
        .arg(script)
}

fn run_proxy_hook(s: &mut Session, name: &str, hosts: &[String]) -> Result<()> {
    if s.global.skip_hooks {
        return Ok(());
    }
    let Some(path) = hooks::find_hook(&s.opts.cwd, &s.config.hooks_path, name) else {
        return Ok(());
    };
    let release = s.release()?;
    let roles = s
        .targets
        .roles_filtered
        .then_some(s.targets.roles.as_slice());
    let ctx = HookContext {
        release: &release,
        command: "proxy",
        subcommand: Some("reboot"),
        hosts,
        roles,
        lock: true,
        runtime: None,
    };
    let env = hooks::hook_env(name, &ctx, std::iter::empty());
    let verbose = s.global.verbose;
    let root = s.opts.cwd.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failure(format!("cannot start the runtime: {e}")))?;
    rt.block_on(hooks::run_hook(name, &path, &root, &env, |line| {
        if verbose {
            eprintln!("  {name} | {line}");
        }
    }))?;
    Ok(())
}

fn reboot(s: &mut Session, hosts: &[String], rolling: bool) -> Result<()> {
    let groups: Vec<Vec<String>> = if rolling {
        hosts.iter().map(|h| vec![h.clone()]).collect()
    } else {
        vec![hosts.to_vec()]
    };
    let release = s.release()?;
    for group in groups {
        run_proxy_hook(s, "pre-proxy-reboot", &group)?;
        let session = &*s;
        session.locked(&release, async {
            let reports = each(
                session,
                &group,
                |host| {
                    vec![
                        cmds::create_network(host),
                        cmds::ensure_apps_config_directory(host),
                    ]
                },
                false,
            )
            .await;
            report(&reports)?;
            let reports = each(
                session,
                &group,
                |host| vec![cmds::stop(host), cmds::remove_container(host)],
                false,
            )
            .await;
            report(&reports)?;
            let reports = each(
                session,
                &group,
                |host| vec![cmds::run(cmds::run_config_for(&session.config, host), host)],
                true,
            )
            .await;
            for host in &group {
                let _ = session
                    .audit(host, &release, None, "Rebooted proxy".into())
                    .await;
            }
            report(&reports)
        })?;
        run_proxy_hook(s, "post-proxy-reboot", &group)?;
    }
    Ok(())
}

fn remove(s: &mut Session, hosts: &[String], force: bool) -> Result<()> {
    let release = s.release()?;
    let s = &*s;
    s.locked(&release, async {
        let jobs: Vec<_> = hosts
            .iter()
            .map(|host| async move {
                let apps = s
                    .lenient(
                        host,
                        &CommandSpec::new(format!("list apps on {host}"), "sh")
                            .arg("-c")
                            .arg("ls .kamal/apps 2>/dev/null | wc -l"),
                    )
                    .await
                    .unwrap_or_default();
                if !force && apps.trim() != "0" && !apps.trim().is_empty() {
                    return (
                        host.clone(),
                        Ok(format!(
                            "kamal-proxy kept: {} app(s) still installed (use --force)\n",
                            apps.trim()
                        )),
                    );
                }
                let cmds = [
                    cmds::stop(host),
                    cmds::remove_container(host),
                    CommandSpec::new(format!("remove kamal-proxy image on {host}"), "docker")
                        .args(["image", "prune", "--all", "--force", "--filter"])
                        .arg("label=org.opencontainers.image.title=kamal-proxy"),
                    CommandSpec::new(format!("remove proxy directory on {host}"), "rm")
                        .args(["-r", ".kamal/proxy"]),
                ];
                for cmd in &cmds {
                    let _ = s.lenient(host, cmd).await;
                }
                (host.clone(), Ok("removed kamal-proxy\n".to_string()))
            })
            .collect();
        let reports = crate::remote::fanout::join_all(jobs).await;
        report(&reports)
    })
}

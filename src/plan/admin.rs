//! Plans of the commands around deploys: `prune` (Kamal's `lib/kamal/cli/prune.rb`, scoped to
//! this destination), `registry login|logout`, `lock acquire|release|status|hold`, `server exec`
//! and `audit`.

use crate::command::CommandSpec;
use crate::config::Config;
use crate::docker;
use crate::release::Release;

use super::cmds::{audit, lock as lock_step, unlock as unlock_step};
use super::{
    on_hosts, planned, stage, InteractiveStep, LocalStep, LockStatusStep, LockWaitPlan, Stage,
    Step, WaitStep,
};

/// `prune containers` (keep the newest `retain` stopped ones) and/or `prune images` on each host.
pub fn prune(
    config: &Config,
    release: &Release,
    hosts: &[String],
    containers: Option<u32>,
    images: bool,
) -> Vec<Stage> {
    let mut stages = Vec::new();
    if let Some(retain) = containers {
        stages.push(stage(
            "prune containers",
            on_hosts("prune containers", hosts, |host| {
                vec![
                    audit(config, release, host, None, "Pruned containers"),
                    planned(docker::prune::containers(config, retain, host)).show(),
                ]
            }),
        ));
    }
    if images {
        stages.push(stage(
            "prune images",
            on_hosts("prune images", hosts, |host| {
                vec![
                    audit(config, release, host, None, "Pruned images"),
                    planned(docker::prune::dangling_images(config, host)).show(),
                    planned(docker::prune::tagged_images(config, host)).show(),
                ]
            }),
        ));
    }
    stages
}

/// `registry login|logout`: on this machine (unless `skip_local`), then on each host (unless
/// `skip_remote`). `command(on)` builds the command for `local` or a host; the password is on
/// its stdin.
pub fn registry(
    name: &str,
    hosts: &[String],
    skip_local: bool,
    skip_remote: bool,
    command: impl Fn(&str) -> CommandSpec,
) -> Vec<Stage> {
    let mut stages = Vec::new();
    if !skip_local {
        stages.push(stage(
            &format!("{name} locally"),
            vec![Step::Local(LocalStep {
                purpose: format!("registry {name} on this machine"),
                label: "local".into(),
                build_dir: None,
                secret_env: Vec::new(),
                ensure_builder: None,
                commands: vec![planned(command("local")).show()],
            })],
        ));
    }
    if !skip_remote {
        stages.push(stage(
            &format!("{name} on the hosts"),
            on_hosts(format!("registry {name}"), hosts, |host| {
                vec![planned(command(host)).show()]
            }),
        ));
    }
    stages
}

/// `registry setup|remove` with a local registry: start (`setup`) or stop and remove its
/// container on this machine (a failure of the removal is ignored, as Kamal ignores it); nothing
/// on the hosts, nothing at all with `skip_local`.
pub fn local_registry(config: &Config, setup: bool, skip_local: bool) -> Vec<Stage> {
    if skip_local {
        return Vec::new();
    }
    let (name, command) = if setup {
        match super::cmds::local_registry_setup(config) {
            Some(c) => ("setup", c),
            None => return Vec::new(),
        }
    } else {
        (
            "remove",
            planned(docker::registry::remove_local()).ignore_errors(),
        )
    };
    vec![stage(
        &format!("{name} locally"),
        vec![Step::Local(LocalStep {
            purpose: format!("registry {name} on this machine"),
            label: "local".into(),
            build_dir: None,
            secret_env: Vec::new(),
            ensure_builder: None,
            commands: vec![command],
        })],
    )]
}

/// `lock acquire -m MSG`: take the lock and keep it after the run.
pub fn lock_acquire(
    config: &Config,
    host: &str,
    details: &docker::lock::LockDetails,
    wait: Option<LockWaitPlan>,
) -> Vec<Stage> {
    let mut step = lock_step(config, host, details, wait, false);
    step.release_at_end = false;
    step.announce = true;
    vec![stage("lock", vec![Step::Lock(step)])]
}

/// `lock release`.
pub fn lock_release(config: &Config, host: &str) -> Vec<Stage> {
    let mut step = unlock_step(config, host);
    step.announce = true;
    vec![stage("unlock", vec![Step::Unlock(step)])]
}

/// `lock status`.
pub fn lock_status(config: &Config, host: &str) -> Vec<Stage> {
    vec![stage(
        "status",
        vec![Step::LockStatus(LockStatusStep {
            host: host.to_string(),
            command: planned(docker::lock::status(config, host)),
            stale_after_seconds: config.lock_stale_after,
        })],
    )]
}

/// `lock hold --seconds N` (a test aid): take the lock as a deploy does (unless a parent holds
/// it), hold it, release it; ctrl-c ends the wait and releases it.
pub fn lock_hold(
    config: &Config,
    host: &str,
    details: &docker::lock::LockDetails,
    wait: Option<LockWaitPlan>,
    break_stale: bool,
    inherited: bool,
    seconds: u64,
) -> Vec<Stage> {
    let hold = stage("hold", vec![Step::Wait(WaitStep { seconds })]);
    if inherited {
        return vec![hold];
    }
    let mut lock = lock_step(config, host, details, wait, break_stale);
    lock.announce = true;
    let mut unlock = unlock_step(config, host);
    unlock.announce = true;
    vec![
        stage("lock", vec![Step::Lock(lock)]),
        hold,
        stage("unlock", vec![Step::Unlock(unlock)]),
    ]
}

/// The user's command line for the remote shell, as Kamal sends it: unquoted, through `eval` in
/// the login shell, so the shell parses it exactly as if typed there.
pub fn user_command(host: &str, line: &str) -> CommandSpec {
    CommandSpec::new(format!("run `{line}` on {host}"), "eval").arg(line)
}

/// `server exec CMD` on each host: audit "Executed cmd '<cmd>' on <host>", then the command
/// (its output shown, standard error on stderr).
pub fn server_exec(config: &Config, release: &Release, hosts: &[String], line: &str) -> Vec<Stage> {
    vec![stage(
        "exec",
        on_hosts(format!("run `{line}`"), hosts, |host| {
            vec![
                audit(
                    config,
                    release,
                    host,
                    None,
                    format!("Executed cmd '{line}' on {host}"),
                ),
                planned(user_command(host, line)).show_both(),
            ]
        }),
    )]
}

/// `server exec -i CMD` on the primary host, attached to this terminal (through `eval`, so the
/// login shell parses the line as typed).
pub fn server_exec_interactive(host: &str, line: &str) -> Vec<Stage> {
    vec![stage(
        "exec",
        vec![Step::Interactive(InteractiveStep {
            host: host.to_string(),
            command: planned(user_command(host, line)),
        })],
    )]
}

/// `audit`: the last 50 lines of each host's audit log (none where there is no log yet).
pub fn audit_log(config: &Config, hosts: &[String]) -> Vec<Stage> {
    vec![stage(
        "audit",
        on_hosts("read the audit log", hosts, |host| {
            vec![planned(docker::audit::reveal(config, host))
                .show()
                .tolerate("No such file or directory")]
        }),
    )]
}

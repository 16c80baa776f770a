//! `dray lock acquire -m MSG | release | status` (Kamal's `lock`), and the hidden test aid
//! `lock hold --seconds N`, which holds the lock like a deploy does (released on ctrl-c): each
//! a plan ([`crate::plan::admin`]) on the primary host, run on the engine.

use crate::cli::{GlobalOptions, LockCommand};
use crate::error::Result;
use crate::plan::{admin, OutputStyle, Plan};

use super::session::Session;

/// Run `dray lock …`.
pub fn run(global: &GlobalOptions, command: &LockCommand) -> Result<()> {
    let s = Session::new(global)?;
    let host = s.targets.primary_host.clone();
    let (sub, release, stages) = match command {
        LockCommand::Acquire { message } => {
            let release = s.release()?.release;
            let details = s.lock_details(&release.version, message);
            let stages = admin::lock_acquire(&s.config, &host, &details, s.lock_wait());
            ("acquire", Some(release), stages)
        }
        LockCommand::Release => ("release", None, admin::lock_release(&s.config, &host)),
        LockCommand::Status => ("status", None, admin::lock_status(&s.config, &host)),
        LockCommand::Hold { seconds, message } => {
            let release = s.release()?.release;
            let details = s.working_lock_details(&release.version, message);
            let stages = admin::lock_hold(
                &s.config,
                &host,
                &details,
                s.lock_wait(),
                global.break_stale_lock,
                s.lock_inherited(),
                *seconds,
            );
            ("hold", Some(release), stages)
        }
    };
    let mut targets = s.targets.clone();
    targets.hosts = vec![host];
    let mut plan = Plan::command("lock", Some(sub), release, targets, stages);
    plan.output = OutputStyle::Plain;
    s.run(&plan)
}

//! `dray remove [-y]` (Kamal's `Kamal::Cli::Main#remove`): after a confirmation (unless `-y`),
//! under the deploy lock, the app (`app remove`), the proxy (`proxy remove`, which keeps a proxy
//! that other apps on the host still use), every accessory (`accessory remove all`) and the
//! hosts' registry session (`registry remove --skip-local`), in Kamal's order.

use crate::cli::GlobalOptions;
use crate::error::{Error, Result};
use crate::plan::app::{self as app_plans, AppInputs};
use crate::plan::{locked, Plan, Stage};

use super::session::Session;

/// Run `dray remove`.
pub fn run(global: &GlobalOptions, confirmed: bool) -> Result<()> {
    if !confirmed
        && !global.dry_run
        && !super::confirm("This will remove all containers and images. Are you sure?")
    {
        return Err(Error::failure("aborted").with_hint("pass -y to skip the question"));
    }
    let s = Session::new(global)?;
    let release = s.release()?.release;
    let stages = locked(s.lock(&release.version), stages(&s, &release));
    let mut plan = Plan::command("remove", None, Some(release), s.targets.clone(), stages);
    plan.connect = plan.hosts_used();
    s.run(&plan)
}

/// The removal's stages, in Kamal's order.
fn stages(s: &Session, release: &crate::release::Release) -> Vec<Stage> {
    let config = &s.config;
    let inp = AppInputs {
        config,
        targets: &s.targets,
    };
    let mut stages = app_plans::remove(&inp, release);
    let proxy_hosts = crate::plan::proxy::proxy_hosts(config, &s.targets);
    stages.extend(crate::plan::proxy::remove(&proxy_hosts, false));
    // `accessory remove all`: what it removes needs neither secrets nor files.
    let hosts = super::all_targeted_hosts(s);
    let secrets = crate::config::secrets::Secrets::default();
    let accessories: Vec<&crate::config::model::Accessory> = config.accessories.iter().collect();
    stages.extend(crate::plan::accessory::remove_stages(
        &crate::plan::accessory::AccessoryInputs {
            config,
            release,
            hosts: &hosts,
            secrets: &secrets,
            files: &[],
        },
        &accessories,
    ));
    // The registry session on the hosts (a local registry has none: its hosts pull through a
    // tunnel, and it runs on this machine, which `remove` leaves alone as Kamal does).
    if !config.registry.is_local() {
        stages.extend(crate::plan::admin::registry(
            "logout",
            &hosts,
            true,
            false,
            |on| crate::docker::registry::logout(&config.registry, on),
        ));
    }
    stages
}

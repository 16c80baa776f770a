//! `dray details` (Kamal's `Kamal::Cli::Main#details`): the proxy's, the app's and the
//! accessories' containers on every targeted host, in Kamal's layout (`Proxy Host: <host>`,
//! `App Host: <host>`, `Accessory <name> Host: <host>`, each followed by `docker ps` output and
//! a blank line). Read-only: no lock, no release.

use crate::cli::GlobalOptions;
use crate::error::Result;
use crate::plan::app::{self as app_plans, AppInputs};
use crate::plan::{OutputStyle, Plan, Stage};

use super::session::Session;

/// Run `dray details`.
pub fn run(global: &GlobalOptions) -> Result<()> {
    let s = Session::new(global)?;
    let stages = stages(&s);
    let mut plan = Plan::command("details", None, None, s.targets.clone(), stages);
    plan.connect = plan.hosts_used();
    plan.output = OutputStyle::ByHost;
    s.run(&plan)
}

/// The stages: proxy, app, then each accessory, each headed as Kamal heads it.
fn stages(s: &Session) -> Vec<Stage> {
    let mut stages = Vec::new();
    let proxy_hosts = crate::plan::proxy::proxy_hosts(&s.config, &s.targets);
    if !proxy_hosts.is_empty() {
        stages.push(
            crate::plan::proxy::each("proxy details", &proxy_hosts, |h| {
                vec![crate::docker::proxy::details(h)]
            })
            .headed("Proxy"),
        );
    }
    let inp = AppInputs {
        config: &s.config,
        targets: &s.targets,
    };
    stages.extend(
        app_plans::details(&inp)
            .into_iter()
            .map(|stage| stage.headed("App")),
    );
    let accessories: Vec<&crate::config::model::Accessory> = s.config.accessories.iter().collect();
    stages.extend(crate::plan::accessory::details_stages(
        &s.config,
        &accessories,
        &super::all_targeted_hosts(s),
    ));
    stages
}

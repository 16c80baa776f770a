//! Which hosts an accessory command targets and where it takes the lock: Kamal's `Specifics`
//! (`lib/kamal/commander/specifics.rb`) for accessories, `--hosts`/`--roles`/`--primary`
//! intersected with the accessories' own hosts.

use crate::config::model::Accessory;
use crate::config::Config;
use crate::error::Error;

use super::targets::wildcard;
use super::{Filters, Targets};

fn patterns(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The targets of an accessory command (Kamal's `Specifics`): every host of the configuration
/// (roles' and accessories'), narrowed by `--hosts` and by the hosts of `--roles`; the hosts
/// of `accessories` among them; the lock on the first `--hosts` match, else the primary role's
/// first host, else the first accessory host.
pub fn targets(
    config: &Config,
    filters: &Filters,
    accessories: &[&Accessory],
) -> Result<Targets, Error> {
    let all = config.all_hosts();
    let mut specified: Vec<&str> = match filters.hosts {
        Some(list) => {
            let p = patterns(list);
            let kept: Vec<&str> = all
                .iter()
                .copied()
                .filter(|h| p.iter().any(|p| wildcard(p, h)))
                .collect();
            if kept.is_empty() {
                return Err(Error::usage(format!("no --hosts match for {list}"))
                    .with_hint(format!("known hosts: {}", all.join(", "))));
            }
            kept
        }
        None => all.clone(),
    };
    let mut roles: Vec<String> = Vec::new();
    if let Some(list) = filters.roles {
        let p = patterns(list);
        let matched: Vec<_> = config
            .roles
            .iter()
            .filter(|r| p.iter().any(|p| wildcard(p, &r.name)))
            .collect();
        if matched.is_empty() {
            let names: Vec<&str> = config.roles.iter().map(|r| r.name.as_str()).collect();
            return Err(Error::usage(format!("no --roles match for {list}"))
                .with_hint(format!("known roles: {}", names.join(", "))));
        }
        specified.retain(|h| matched.iter().any(|r| r.host_names().any(|x| x == *h)));
        roles = matched.iter().map(|r| r.name.clone()).collect();
    }
    if filters.primary {
        if let Some(first) = config.primary_host() {
            specified.retain(|h| *h == first);
        }
    }
    let mut hosts: Vec<String> = Vec::new();
    for acc in accessories {
        for h in &acc.hosts {
            if specified.contains(&h.as_str()) && !hosts.contains(h) {
                hosts.push(h.clone());
            }
        }
    }
    let Some(first) = hosts.first().cloned() else {
        let names: Vec<&str> = accessories.iter().map(|a| a.name.as_str()).collect();
        return Err(Error::usage(format!(
            "no host of accessory {} is targeted",
            names.join(", ")
        ))
        .with_hint("check --hosts and --roles against the accessory's hosts"));
    };
    let primary_host = match filters.hosts {
        Some(_) => specified.first().map(|h| h.to_string()).unwrap_or(first),
        None => config.primary_host().map(str::to_string).unwrap_or(first),
    };
    Ok(Targets {
        roles,
        hosts,
        primary_host,
        roles_filtered: filters.roles.is_some(),
    })
}

//! Which hosts an accessory or a proxy command targets and where it takes the lock: Kamal's
//! `Specifics` (`lib/kamal/commander/specifics.rb`): `--hosts`/`--roles`/`--primary` over every
//! host of the configuration, intersected with the accessories' own hosts, or with the proxy
//! hosts (proxied roles' and proxied accessories').

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

/// Kamal's `Specifics#specified_hosts` and the `--roles` matched: every host of the
/// configuration (roles' and accessories'), narrowed by `--hosts`, by the hosts of `--roles` and
/// by `--primary`.
fn specified<'c>(
    config: &'c Config,
    filters: &Filters,
) -> Result<(Vec<&'c str>, Vec<String>), Error> {
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
    Ok((specified, roles))
}

/// The lock host: the first `--hosts` match, else the primary role's first host, else `first`.
fn lock_host(config: &Config, filters: &Filters, specified: &[&str], first: &str) -> String {
    match filters.hosts {
        Some(_) => specified.first().copied().unwrap_or(first),
        None => config.primary_host().unwrap_or(first),
    }
    .to_string()
}

/// The targets of a `proxy` command (Kamal's `Specifics#proxy_hosts`): the hosts of the roles
/// that run the proxy, then those of the accessories with a `proxy:`, each once, among the
/// specified hosts. So a configuration whose only proxied services are accessories boots the
/// proxy on the accessories' hosts, as Kamal does. The roles are those with a targeted host.
pub fn proxy_targets(config: &Config, filters: &Filters) -> Result<Targets, Error> {
    let (specified, filtered_roles) = specified(config, filters)?;
    let mut hosts: Vec<String> = Vec::new();
    let role_hosts = config
        .roles
        .iter()
        .filter(|r| r.runs_proxy())
        .flat_map(|r| r.host_names());
    let accessory_hosts = config
        .accessories
        .iter()
        .filter(|a| a.proxy.is_some())
        .flat_map(|a| a.hosts.iter().map(String::as_str));
    for h in role_hosts.chain(accessory_hosts) {
        if specified.contains(&h) && !hosts.iter().any(|x| x == h) {
            hosts.push(h.to_string());
        }
    }
    let Some(first) = hosts.first().cloned() else {
        return Err(
            Error::usage("no targeted role or accessory runs the proxy").with_hint(
                "roles run kamal-proxy unless `proxy: false` (primary role) or with `proxy:` set; accessories with `proxy:`",
            ),
        );
    };
    let roles: Vec<String> = config
        .roles
        .iter()
        .filter(|r| filtered_roles.is_empty() || filtered_roles.contains(&r.name))
        .filter(|r| r.host_names().any(|h| hosts.iter().any(|x| x == h)))
        .map(|r| r.name.clone())
        .collect();
    Ok(Targets {
        roles,
        primary_host: lock_host(config, filters, &specified, &first),
        hosts,
        roles_filtered: filters.roles.is_some(),
    })
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
    let (specified, roles) = specified(config, filters)?;
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
    Ok(Targets {
        roles,
        primary_host: lock_host(config, filters, &specified, &first),
        hosts,
        roles_filtered: filters.roles.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        crate::config::load::load_str_without_commands(text, "config/deploy.yml").expect("loads")
    }

    const NONE: Filters<'static> = Filters {
        hosts: None,
        roles: None,
        primary: false,
    };

    #[test]
    fn proxy_targets_of_only_accessories_are_the_proxied_accessories_hosts() {
        // Kamal's app_with_proxied_accessory: no servers, one proxied accessory.
        let c = config(
            "service: app\nimage: app\nregistry:\n  server: localhost:5000\nbuilder:\n  arch: amd64\n\
             accessories:\n  busybox:\n    image: busybox\n    host: vm1\n\
             \x20 netcat:\n    image: busybox\n    hosts: [vm1, vm2]\n    proxy:\n      host: netcat.test\n",
        );
        let t = proxy_targets(&c, &NONE).expect("targets");
        assert_eq!(t.hosts, ["vm1", "vm2"]);
        assert!(t.roles.is_empty());
        assert_eq!(t.primary_host, "vm1");
        let only_vm2 = Filters {
            hosts: Some("vm2"),
            ..NONE
        };
        assert_eq!(
            proxy_targets(&c, &only_vm2).expect("targets").hosts,
            ["vm2"]
        );
    }

    #[test]
    fn proxy_targets_are_proxied_roles_then_proxied_accessories() {
        let c = config(
            "service: app\nimage: app\nregistry:\n  server: localhost:5000\nbuilder:\n  arch: amd64\n\
             servers:\n  web: [h1, h2]\n  workers:\n    hosts: [h3]\n\
             accessories:\n  db:\n    image: mysql\n    host: h4\n\
             \x20 api:\n    image: busybox\n    host: h5\n    proxy:\n      host: api.test\n",
        );
        let t = proxy_targets(&c, &NONE).expect("targets");
        assert_eq!(t.hosts, ["h1", "h2", "h5"]);
        assert_eq!(t.roles, ["web"]);
        assert_eq!(t.primary_host, "h1");
        // As Kamal's `proxy_hosts & specified_hosts`: --roles narrows the hosts, not the roles
        // that make a host a proxy host.
        let workers = Filters {
            roles: Some("workers"),
            ..NONE
        };
        let err = proxy_targets(&c, &workers).expect_err("no proxy on workers' hosts");
        assert!(err
            .to_string()
            .contains("no targeted role or accessory runs the proxy"));
    }
}

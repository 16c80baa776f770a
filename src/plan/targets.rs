//! Which roles and hosts a command targets: `--hosts`, `--roles` and `--primary` applied to the
//! configuration as Kamal's `Kamal::Commander::Specifics` does.
//!
//! Roles are those given with `--roles` (wildcards) that keep at least one targeted host, primary
//! role first; hosts are the `--hosts` (wildcards) that belong to a targeted role, hosts of the
//! primary role first.

use serde::Serialize;

use crate::config::Config;
use crate::error::Error;

/// The roles and hosts a run works on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Targets {
    /// Role names, primary role first, then in configuration order.
    pub roles: Vec<String>,
    /// Host names, hosts of the primary role first.
    pub hosts: Vec<String>,
    /// Where the lock lives: the first `--hosts` entry, else the first host of the first role.
    pub primary_host: String,
    /// Whether `--roles` was given (hooks then get `KAMAL_ROLES`).
    pub roles_filtered: bool,
}

/// What the user asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct Filters<'a> {
    /// `--hosts a,b*`.
    pub hosts: Option<&'a str>,
    /// `--roles web,work*`.
    pub roles: Option<&'a str>,
    /// `--primary`.
    pub primary: bool,
}

pub use crate::shell::wildcard;

fn split_csv(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Keep the items matching any pattern, in item order; an error names the list that matched
/// nothing (`No --hosts match for …`).
fn filter<'a>(items: &[&'a str], list: &str, flag: &str) -> Result<Vec<&'a str>, Error> {
    let patterns = split_csv(list);
    let kept: Vec<&str> = items
        .iter()
        .copied()
        .filter(|item| patterns.iter().any(|p| wildcard(p, item)))
        .collect();
    if kept.is_empty() {
        return Err(Error::usage(format!("no --{flag} match for {list}"))
            .with_hint(format!("known {flag}: {}", items.join(", "))));
    }
    Ok(kept)
}

impl Targets {
    /// Resolve the targets of a run.
    pub fn resolve(config: &Config, filters: &Filters) -> Result<Targets, Error> {
        let ordered_roles: Vec<&str> = config
            .primary()
            .into_iter()
            .chain(
                config
                    .roles
                    .iter()
                    .filter(|r| r.name != config.primary_role),
            )
            .map(|r| r.name.as_str())
            .collect();
        let mut roles = match filters.roles {
            Some(list) => filter(&ordered_roles, list, "roles")?,
            None => ordered_roles.clone(),
        };
        let role_hosts = |role: &str| -> Vec<&str> {
            config
                .role(role)
                .map(|r| r.host_names().collect())
                .unwrap_or_default()
        };
        let mut all: Vec<&str> = Vec::new();
        for role in &roles {
            for h in role_hosts(role) {
                if !all.contains(&h) {
                    all.push(h);
                }
            }
        }
        let mut hosts = match filters.hosts {
            Some(list) => {
                let everything: Vec<&str> = config.all_hosts();
                let wanted = filter(&everything, list, "hosts")?;
                all.iter().copied().filter(|h| wanted.contains(h)).collect()
            }
            None => all,
        };
        roles.retain(|r| role_hosts(r).iter().any(|h| hosts.contains(h)));
        if hosts.is_empty() || roles.is_empty() {
            if filters.hosts.is_none() && filters.roles.is_none() {
                return Err(Error::usage(
                    "no role has a host: this configuration has only accessories",
                )
                .with_hint("add `servers:` with the app's hosts; accessories are managed with `dray accessory`"));
            }
            return Err(Error::usage(
                "the --hosts and --roles given select no host of any role",
            ));
        }
        let primary_host = match filters.hosts {
            Some(list) => split_csv(list)
                .iter()
                .find_map(|p| hosts.iter().find(|h| wildcard(p, h)).copied())
                .unwrap_or(hosts[0]),
            None => role_hosts(roles[0])
                .into_iter()
                .find(|h| hosts.contains(h))
                .unwrap_or(hosts[0]),
        };
        if filters.primary {
            hosts = vec![primary_host];
            roles.retain(|r| role_hosts(r).contains(&primary_host));
        }
        Ok(Targets {
            roles: roles.iter().map(|s| s.to_string()).collect(),
            hosts: hosts.iter().map(|s| s.to_string()).collect(),
            primary_host: primary_host.to_string(),
            roles_filtered: filters.roles.is_some(),
        })
    }

    /// The targeted hosts of `role`, in target order.
    pub fn hosts_of<'a>(&'a self, config: &'a Config, role: &str) -> Vec<&'a str> {
        let Some(r) = config.role(role) else {
            return Vec::new();
        };
        self.hosts
            .iter()
            .map(String::as_str)
            .filter(|h| r.host_names().any(|x| x == *h))
            .collect()
    }

    /// The targeted roles that run on `host`.
    pub fn roles_on<'a>(&'a self, config: &'a Config, host: &str) -> Vec<&'a str> {
        self.roles
            .iter()
            .map(String::as_str)
            .filter(|r| {
                config
                    .role(r)
                    .is_some_and(|role| role.host_names().any(|h| h == host))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_fnmatch() {
        assert!(wildcard("127.0.0.*", "127.0.0.11"));
        assert!(wildcard("web", "web"));
        assert!(wildcard("w?b", "web"));
        assert!(!wildcard("web", "workers"));
        assert!(wildcard("*", ""));
        assert!(wildcard("a*c*e", "abcde"));
    }
}

//! `dray status` (beyond Kamal): per targeted host and role, the version running, the version
//! the last release recorded on the host wanted, whether the proxy routes to it, and the drift
//! (a stopped or missing container, another version, hosts on different versions, stale
//! containers, an unrouted proxy); the accessories' containers; the deploy lock's holder and age.
//! One round trip per host, hosts in parallel ([`crate::docker::status`]). A table, or one JSON
//! document with `--output json`; exit 0 when everything matches, 1 on drift.

use serde::Serialize;

use crate::cli::{GlobalOptions, OutputFormat};
use crate::docker::status::{self as script, HostQuery};
use crate::error::{Error, Result};
use crate::plan::{planned, stage, Plan, ReadBackRow, ReadBackStep, Step};

use super::session::Session;

/// One host and role.
#[derive(Debug, Clone, Serialize)]
pub struct RoleStatus {
    /// The host.
    pub host: String,
    /// The role.
    pub role: String,
    /// The version of its running container.
    pub running: Option<String>,
    /// The version of the last release recorded on the host.
    pub wanted: Option<String>,
    /// Whether the proxy routes the role to the running container (`None`: no proxy).
    pub routed: Option<bool>,
    /// Other containers of the role still running (stale).
    pub stale: Vec<String>,
    /// What does not match, in words; empty when in sync.
    pub drift: Vec<String>,
    /// A replicated role (`x-dray: replicas`): the running replicas of the running version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Vec<String>>,
}

/// One accessory on one host.
#[derive(Debug, Clone, Serialize)]
pub struct AccessoryStatus {
    /// The accessory.
    pub accessory: String,
    /// The host.
    pub host: String,
    /// `running`, `exited`, …, or `missing`.
    pub state: String,
}

/// The deploy lock.
#[derive(Debug, Clone, Serialize)]
pub struct LockState {
    /// The host it lives on.
    pub host: String,
    /// Whether it is held.
    pub held: bool,
    /// Its details as written (holder, time, version, message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// Seconds since it was taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<u64>,
}

/// The whole status.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Whether everything matches.
    pub ok: bool,
    /// One entry per host and role.
    pub roles: Vec<RoleStatus>,
    /// One entry per accessory and host.
    pub accessories: Vec<AccessoryStatus>,
    /// The deploy lock.
    pub lock: Option<LockState>,
}

/// Run `dray status`.
pub fn run(global: &GlobalOptions) -> Result<()> {
    let s = Session::new(global)?;
    let hosts = super::all_targeted_hosts(&s);
    let config = &s.config;
    let rows = hosts
        .iter()
        .map(|host| {
            let roles: Vec<&crate::config::model::Role> = s
                .targets
                .roles_on(config, host)
                .iter()
                .filter_map(|r| config.role(r))
                .collect();
            let accessories: Vec<&crate::config::model::Accessory> = config
                .accessories
                .iter()
                .filter(|a| a.hosts.iter().any(|h| h == host))
                .collect();
            let q = HostQuery {
                host,
                roles: &roles,
                proxy: roles.iter().any(|r| r.runs_proxy()),
                accessories: &accessories,
                lock: *host == s.targets.primary_host,
            };
            ReadBackRow {
                host: host.clone(),
                role: String::new(),
                command: planned(script::script(config, &q)),
                read_by: None,
            }
        })
        .collect();
    let mut plan = Plan::command(
        "status",
        None,
        None,
        s.targets.clone(),
        vec![stage("status", vec![Step::ReadBack(ReadBackStep { rows })])],
    );
    plan.connect = hosts.clone();
    if global.dry_run {
        return s.run(&plan);
    }
    let answers = s.query(&plan)?;
    let status = analyse(&s, &answers);
    match global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string(&status).map_err(|e| Error::failure(e.to_string()))?
        ),
        OutputFormat::Human => print!("{}", render(&status)),
    }
    if status.ok {
        Ok(())
    } else {
        let drifted: Vec<String> = status
            .roles
            .iter()
            .filter(|r| !r.drift.is_empty())
            .map(|r| format!("{} {}: {}", r.host, r.role, r.drift.join("; ")))
            .chain(
                status
                    .accessories
                    .iter()
                    .filter(|a| a.state != "running")
                    .map(|a| format!("{} accessory {}: {}", a.host, a.accessory, a.state)),
            )
            .collect();
        Err(Error::failure(format!("drift:\n  {}", drifted.join("\n  ")))
            .with_hint("`dray deploy` brings every host to one version; `dray details` shows the containers"))
    }
}

/// Read every host's answer into the status.
fn analyse(s: &Session, answers: &[(String, String, Option<String>)]) -> Status {
    let config = &s.config;
    let mut roles = Vec::new();
    let mut accessories = Vec::new();
    let mut lock = None;
    for (host, _, text) in answers {
        let sections = script::sections(text.as_deref().unwrap_or(""));
        let find = |kind: &str, name: &str| {
            sections
                .iter()
                .find(|(k, n, _)| k == kind && n == name)
                .map(|(_, _, lines)| lines.as_slice())
        };
        let now: Option<u64> = find("now", "").and_then(|l| l.first()?.trim().parse().ok());
        let wanted = find("record", "")
            .and_then(|l| l.first())
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string);
        let routes = find("proxy", "");
        for role_name in s.targets.roles_on(config, host) {
            let Some(role) = config.role(role_name) else {
                continue;
            };
            let prefix = format!("{}-", config.container_prefix(&role.name));
            // (version, state, container id, name)
            let containers: Vec<(String, String, String, String)> = find("role", &role.name)
                .unwrap_or(&[])
                .iter()
                .filter_map(|l| {
                    let mut cols = l.split('\t');
                    let (id, name, state) = (cols.next()?, cols.next()?, cols.next()?);
                    let version = name.strip_prefix(&prefix)?;
                    // A replica's name ends with `-r<replica>`, its label.
                    let replica = cols.next().map(str::trim).unwrap_or("");
                    let version = if replica.is_empty() {
                        version
                    } else {
                        version
                            .strip_suffix(&format!("-r{replica}"))
                            .unwrap_or(version)
                    };
                    // Exec containers and renamed (replaced) ones are not the role's.
                    (!version.starts_with("exec-") && !version.contains("_replaced_")).then(|| {
                        (
                            version.to_string(),
                            state.trim().to_string(),
                            id.to_string(),
                            name.to_string(),
                        )
                    })
                })
                .collect();
            let mut running: Vec<&str> = containers
                .iter()
                .filter(|(_, st, _, _)| st == "running" || st == "restarting")
                .map(|(v, _, _, _)| v.as_str())
                .collect();
            let mut seen: Vec<&str> = Vec::new();
            running.retain(|v| {
                let first = !seen.contains(v);
                seen.push(v);
                first
            });
            let current = wanted
                .as_deref()
                .filter(|w| running.contains(w))
                .or_else(|| running.first().copied())
                .map(str::to_string);
            let stale: Vec<String> = running
                .iter()
                .filter(|v| Some(**v) != current.as_deref())
                .map(|v| format!("{prefix}{v}"))
                .collect();
            let mut drift = Vec::new();
            match (&current, containers.is_empty()) {
                (None, true) => drift.push("no container".to_string()),
                (None, false) => drift.push("stopped".to_string()),
                _ => {}
            }
            if let (Some(c), Some(w)) = (&current, &wanted) {
                if c != w {
                    drift.push(format!("runs {c}, the last release wanted {w}"));
                }
            }
            if !stale.is_empty() {
                drift.push(format!("stale containers running: {}", stale.join(", ")));
            }
            let routed = (role.runs_proxy() && routes.is_some()).then(|| {
                let service = config.container_prefix(&role.name);
                // kamal-proxy's target is the container's id (Kamal's) or its name, `:<port>`.
                let targets: Vec<String> = containers
                    .iter()
                    .filter(|(v, _, _, _)| Some(v) == current.as_ref())
                    .flat_map(|(_, _, id, name)| [format!("{id}:"), format!("{name}:")])
                    .collect();
                routes.unwrap_or(&[]).iter().any(|l| {
                    let cols: Vec<&str> = l.split_whitespace().collect();
                    cols.first() == Some(&service.as_str())
                        && cols
                            .iter()
                            .any(|col| targets.iter().any(|t| col.starts_with(t.as_str())))
                })
            });
            if routed == Some(false) && current.is_some() {
                drift.push("the proxy does not route to it".to_string());
            }
            let replicas = role.replicated().then(|| {
                let names: Vec<String> = containers
                    .iter()
                    .filter(|(v, st, _, _)| {
                        Some(v) == current.as_ref() && (st == "running" || st == "restarting")
                    })
                    .map(|(_, _, _, name)| name.clone())
                    .collect();
                if current.is_some() && names.len() != role.replicas as usize {
                    drift.push(format!(
                        "runs {} of {} replicas",
                        names.len(),
                        role.replicas
                    ));
                }
                names
            });
            roles.push(RoleStatus {
                host: host.clone(),
                role: role.name.clone(),
                running: current,
                wanted: wanted.clone(),
                routed,
                stale,
                drift,
                replicas,
            });
        }
        for acc in config.accessories.iter().filter(|a| a.hosts.contains(host)) {
            let state = find("accessory", &acc.name)
                .and_then(|l| l.first())
                .and_then(|l| l.split_once('\t'))
                .map(|(_, st)| st.trim().to_string())
                .unwrap_or_else(|| "missing".to_string());
            accessories.push(AccessoryStatus {
                accessory: acc.name.clone(),
                host: host.clone(),
                state,
            });
        }
        if *host == s.targets.primary_host {
            let lines = find("lock", "").unwrap_or(&[]);
            let taken: Option<u64> = lines.first().and_then(|l| l.trim().parse().ok());
            lock = Some(LockState {
                host: host.clone(),
                held: taken.is_some(),
                details: taken.map(|_| lines[1..].join("\n")),
                age_seconds: taken.zip(now).map(|(t, n)| n.saturating_sub(t)),
            });
        }
    }
    // One version per role across hosts.
    let role_names: Vec<String> = roles.iter().map(|r| r.role.clone()).collect();
    for name in role_names {
        let mut versions: Vec<String> = roles
            .iter()
            .filter(|r| r.role == name)
            .filter_map(|r| r.running.clone())
            .collect();
        versions.sort();
        versions.dedup();
        if versions.len() > 1 {
            let summary = roles
                .iter()
                .filter(|r| r.role == name)
                .map(|r| format!("{} {}", r.host, r.running.as_deref().unwrap_or("-")))
                .collect::<Vec<_>>()
                .join(", ");
            for r in roles.iter_mut().filter(|r| r.role == name) {
                let note = format!("the hosts run different versions ({summary})");
                if !r.drift.contains(&note) {
                    r.drift.push(note);
                }
            }
        }
    }
    let ok = roles.iter().all(|r| r.drift.is_empty())
        && accessories.iter().all(|a| a.state == "running");
    Status {
        ok,
        roles,
        accessories,
        lock,
    }
}

/// The table people read.
fn render(status: &Status) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "HOST".into(),
        "ROLE".into(),
        "RUNNING".into(),
        "WANTED".into(),
        "PROXY".into(),
    ]];
    for r in &status.roles {
        rows.push([
            r.host.clone(),
            r.role.clone(),
            match (&r.running, &r.replicas) {
                (Some(v), Some(names)) => format!("{v} ({} replicas)", names.len()),
                (Some(v), None) => v.clone(),
                (None, _) => "-".into(),
            },
            r.wanted.clone().unwrap_or_else(|| "-".into()),
            match r.routed {
                Some(true) => "routed".into(),
                Some(false) => "not routed".into(),
                None => "-".into(),
            },
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (j, cell) in row.iter().enumerate() {
            line.push_str(&format!("{cell:<w$}  ", w = widths[j]));
        }
        let drift = i
            .checked_sub(1)
            .and_then(|k| status.roles.get(k))
            .map(|r| {
                if r.drift.is_empty() {
                    "ok".to_string()
                } else {
                    format!("DRIFT: {}", r.drift.join("; "))
                }
            })
            .unwrap_or_else(|| "STATE".into());
        out.push_str(line.trim_end());
        out.push_str("  ");
        out.push_str(&drift);
        out.push('\n');
    }
    for a in &status.accessories {
        out.push_str(&format!(
            "accessory {} on {}: {}\n",
            a.accessory, a.host, a.state
        ));
    }
    if let Some(lock) = &status.lock {
        match (&lock.details, lock.age_seconds) {
            (Some(d), age) => out.push_str(&format!(
                "deploy lock on {}: held{}\n  {}\n",
                lock.host,
                age.map(|a| format!(" for {a}s")).unwrap_or_default(),
                d.replace('\n', "\n  ")
            )),
            _ => out.push_str(&format!("deploy lock on {}: free\n", lock.host)),
        }
    }
    out
}

//! A walk over every key documented in Kamal 2.12's `lib/kamal/configuration/docs/*.yml`.
//!
//! For each key: a minimal base configuration, and the same configuration with that key set to
//! a realistic non-default value. The plans the relevant commands would run (`--dry-run`, built
//! in process with `capture_plans`) are compared. Each key must be
//!
//! - (a) **visible**: some plan differs from the base's (or the command's outcome changes, for a
//!   key whose effect is to refuse or to allow a configuration), or
//! - (b) **refused** at load, naming the key path (or the section it is in) and saying
//!   "not supported yet by dray", or
//! - (c) **allow-listed** in [`NOT_IN_A_PLAN`], with the reason its effect is not in a plan and,
//!   where there is one, another observable check that must see the change.
//!
//! Anything else is silently ignored, and the test fails listing every such key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use dray::cli::Cli;
use dray::commands::session::capture_plans;
use serde_json::{json, Value};

use crate::support::write;

/// The version every command gets (`--version`), so no git repository is needed.
const VERSION: &str = "1.0.0";

/// The minimal configuration every key is compared against (written as JSON, which is YAML).
fn base_config() -> Value {
    json!({
        "service": "shop",
        "image": "acme/shop",
        "registry": {
            "server": "registry.example.com",
            "username": "deployer",
            "password": ["REGISTRY_PASSWORD"]
        },
        "servers": {
            "web": {"hosts": ["10.0.0.1", {"10.0.0.2": "replica"}]},
            "workers": {
                "hosts": [{"10.0.0.3": "monitoring"}],
                "cmd": "bin/jobs"
            }
        },
        "env": {
            "clear": {"RAILS_ENV": "production"},
            "secret": ["DB_PASSWORD"]
        },
        "proxy": {"host": "shop.example.com"},
        "builder": {"arch": "amd64"}
    })
}

/// The secrets every run can use.
const SECRETS: &str = "\
REGISTRY_PASSWORD=registry-secret
DB_PASSWORD=db-secret
REDIS_PASSWORD=redis-secret
REPLICA_PASSWORD=replica-secret
POSTGRES_PASSWORD=postgres-secret
GITHUB_TOKEN=github-secret
CERT_PEM=-----BEGIN CERTIFICATE-----
KEY_PEM=-----BEGIN PRIVATE KEY-----
NEXT_CERT_PEM=-----BEGIN CERTIFICATE----- next
SSH_PRIVATE_KEY=-----BEGIN OPENSSH PRIVATE KEY-----
";

/// A command run for a key, besides the deploy every key gets.
type Args = &'static [&'static str];

const DEPLOY: Args = &["deploy", "--skip-push", "--version", VERSION];
/// A deploy that builds (for `builder` keys): the build's local commands are in its plan.
const DEPLOY_BUILD: Args = &["deploy", "--version", VERSION];
const PROXY_BOOT: Args = &["proxy", "boot", "--version", VERSION];
const PROXY_REBOOT: Args = &["proxy", "reboot", "-y", "--version", VERSION];
const ACCESSORY_BOOT: Args = &["accessory", "boot", "all", "--version", VERSION];

/// One documented key and how it is exercised.
struct Key {
    /// The key path as documented (the docs' example names, e.g. `accessories.mysql.cmd`).
    doc: &'static str,
    /// What the variant sets (our names, e.g. `accessories.db.cmd`), on top of `base`.
    set: Vec<(&'static str, Value)>,
    /// What the variant removes from the base (a key the set one excludes, e.g. `proxy.host`
    /// for `proxy.hosts`).
    unset: Vec<&'static str>,
    /// What both the base and the variant add to [`base_config`] first.
    base: Vec<(&'static str, Value)>,
    /// The commands whose plans are compared.
    cmds: Vec<Args>,
    /// For a key whose effect is to refuse a configuration: the variant must fail with this.
    fails_with: Option<&'static str>,
    /// For a key whose effect is to accept a configuration: the base's deploy fails.
    base_fails: bool,
}

impl Key {
    fn base(mut self, path: &'static str, value: Value) -> Key {
        self.base.push((path, value));
        self
    }
    fn also(mut self, path: &'static str, value: Value) -> Key {
        self.set.push((path, value));
        self
    }
    fn unset(mut self, path: &'static str) -> Key {
        self.unset.push(path);
        self
    }
    fn cmd(mut self, args: Args) -> Key {
        self.cmds.push(args);
        self
    }
    fn base_fails(mut self) -> Key {
        self.base_fails = true;
        self
    }
    fn fails_with(mut self, text: &'static str) -> Key {
        self.fails_with = Some(text);
        self
    }
}

/// `doc` set to `value` at the same path.
fn key(doc: &'static str, value: Value) -> Key {
    key_at(doc, doc, value)
}

/// `doc` exercised by setting `at` (our name for the docs' example name) to `value`.
fn key_at(doc: &'static str, at: &'static str, value: Value) -> Key {
    Key {
        doc,
        set: vec![(at, value)],
        unset: Vec::new(),
        base: Vec::new(),
        cmds: vec![DEPLOY],
        fails_with: None,
        base_fails: false,
    }
}

/// A `builder` key: the deploy builds.
fn build(doc: &'static str, value: Value) -> Key {
    let mut k = key(doc, value);
    k.cmds = vec![DEPLOY_BUILD];
    k
}

/// A `proxy` key: deploy, `proxy boot` and `proxy reboot` plans.
fn proxy(doc: &'static str, value: Value) -> Key {
    key(doc, value).cmd(PROXY_BOOT).cmd(PROXY_REBOOT)
}

/// An accessory key: the base has accessory `db`; deploy and `accessory boot all`.
fn accessory(doc: &'static str, at: &'static str, value: Value) -> Key {
    key_at(doc, at, value)
        .base(
            "accessories.db",
            json!({"image": "postgres:16", "host": "10.0.0.4"}),
        )
        .cmd(ACCESSORY_BOOT)
}

/// Every key path in Kamal 2.12's `lib/kamal/configuration/docs/*.yml`, in the docs' order.
fn keys() -> Vec<Key> {
    vec![
        // configuration.yml
        key("service", json!("storefront")),
        key("image", json!("acme/storefront")),
        key("labels", json!({"team": "payments"})),
        key_at("labels.my-label", "labels.team", json!("payments")),
        key("volumes", json!(["/data/uploads:/rails/public/uploads"])),
        key(
            "registry",
            json!({"server": "ghcr.io", "username": "acme-bot", "password": ["GITHUB_TOKEN"]}),
        ),
        key("servers", json!(["10.0.0.1", "10.0.0.5"])),
        key("env", json!({"clear": {"RAILS_LOG_LEVEL": "info"}})),
        key("asset_path", json!("/rails/public/assets")),
        key("hooks_path", json!(".kamal/hooks-production")),
        key("hooks_output", json!("verbose")),
        key("hooks_output.pre-deploy", json!("verbose")),
        key("hooks_output.pre-build", json!("quiet")),
        key("secrets_path", json!("config/secrets")),
        key("error_pages_path", json!("public/errors")),
        key("require_destination", json!(true)).fails_with("destination"),
        key("primary_role", json!("workers")),
        // Its effect is to accept a role without hosts, which the base refuses.
        key("allow_empty_roles", json!(true))
            .base("servers.cron", json!({"hosts": []}))
            .base_fails(),
        key("retain_containers", json!(2)),
        // A newer minimum than this release must refuse the configuration.
        key("minimum_version", json!("99.0.0")).fails_with("99.0.0"),
        key("readiness_delay", json!(15)),
        key("deploy_timeout", json!(90)),
        key("drain_timeout", json!(10)),
        key("stop_timeout", json!(20)),
        key("run_directory", json!(".kamal-run")),
        key("ssh", json!({"user": "deploy"})),
        build("builder", json!({"arch": ["amd64", "arm64"]})),
        key(
            "accessories",
            json!({"redis": {"image": "redis:7", "host": "10.0.0.4"}}),
        )
        .cmd(ACCESSORY_BOOT),
        proxy("proxy", json!({"host": "store.example.com", "app_port": 3000})),
        key("sshkit", json!({"max_concurrent_starts": 10})),
        key("boot", json!({"limit": 1})),
        key("logging", json!({"driver": "journald"})),
        key("output", json!({"file": {"path": "log/deploys"}})),
        key("aliases", json!({"shipit": "deploy --skip-push"})).cmd(&["shipit"]),
        key("x-team", json!({"owner": "payments", "pager": "#shop-oncall"})),
        // servers.yml / role.yml
        key("servers.web", json!(["10.0.0.1", "10.0.0.5"])),
        key(
            "servers.workers",
            json!({"hosts": ["10.0.0.3", "10.0.0.6"], "cmd": "bin/jobs"}),
        ),
        key("servers.workers.hosts", json!(["10.0.0.6"])),
        key("servers.workers.cmd", json!("bundle exec sidekiq -q default")),
        key("servers.workers.stop_timeout", json!(90)),
        key("servers.workers.options", json!({"memory": "2g"})),
        key("servers.workers.options.memory", json!("2g")),
        key("servers.workers.options.cpus", json!(2)),
        key("servers.workers.options.restart", json!("on-failure:5")),
        key("servers.workers.logging", json!({"driver": "syslog"})),
        key("servers.workers.logging.driver", json!("syslog")),
        key(
            "servers.workers.logging.options",
            json!({"syslog-address": "udp://logs.internal:514"}),
        ),
        proxy(
            "servers.workers.proxy",
            json!({"host": "jobs.example.com", "app_port": 3001}),
        ),
        key("servers.web.proxy", json!(false)),
        key("servers.workers.labels", json!({"queue": "default"})),
        key_at(
            "servers.workers.labels.my-label",
            "servers.workers.labels.queue",
            json!("default"),
        ),
        key(
            "servers.workers.env",
            json!({"clear": {"QUEUES": "default,mailers"}, "secret": ["REDIS_PASSWORD"]}),
        ),
        key("servers.workers.env.clear", json!({"QUEUES": "default"})),
        key("servers.workers.env.secret", json!(["REDIS_PASSWORD"])),
        // Assets are for roles behind the proxy (Kamal ignores them elsewhere): set on web.
        key_at(
            "servers.workers.asset_path",
            "servers.web.asset_path",
            json!("/rails/public/assets"),
        ),
        // env.yml
        key("env.clear", json!({"RAILS_LOG_LEVEL": "info"})),
        key_at(
            "env.clear.MYSQL_USER",
            "env.clear.DATABASE_USER",
            json!("shop"),
        ),
        key("env.secret", json!(["DB_PASSWORD", "REDIS_PASSWORD"])),
        key_at(
            "env.secret (NAME:SECRET alias)",
            "env.secret",
            json!(["DB_PASSWORD", "REDIS_URL:REDIS_PASSWORD"]),
        ),
        key("env.tags", json!({"monitoring": {"DD_ENV": "production"}})),
        key("env.tags.monitoring", json!({"DD_ENV": "production"})),
        key_at(
            "env.tags.monitoring.MYSQL_USER",
            "env.tags.monitoring.DD_ENV",
            json!("production"),
        ),
        key("env.tags.replica", json!({"clear": {"DB_ROLE": "replica"}})),
        key("env.tags.replica.clear", json!({"DB_ROLE": "replica"})),
        key_at(
            "env.tags.replica.clear.MYSQL_USER",
            "env.tags.replica.clear.DB_ROLE",
            json!("replica"),
        ),
        key("env.tags.replica.secret", json!(["REPLICA_PASSWORD"])),
        accessory(
            "accessories.main_db_accessory.env.secret",
            "accessories.db.env.secret",
            json!(["POSTGRES_PASSWORD"]),
        ),
        accessory(
            "accessories.secondary_db_accessory.env",
            "accessories.db.env",
            json!({"clear": {"POSTGRES_DB": "shop"}, "secret": ["POSTGRES_PASSWORD"]}),
        ),
        // registry.yml
        key("registry.server", json!("ghcr.io")),
        key("registry.username", json!("acme-bot")),
        key("registry.password", json!(["GITHUB_TOKEN"])),
        // builder.yml (deploy builds: no --skip-push)
        build("builder.arch", json!("arm64")),
        // As in Kamal, a remote builder builds the arches this machine's engine does not
        // (`remote_arches = arches - local_arches`): with the local arch alone it is unused.
        build("builder.remote", json!("ssh://builder@10.0.0.9")).base("builder.arch", json!("arm64")),
        build("builder.local", json!(false)).base("builder.remote", json!("ssh://builder@10.0.0.9")),
        build(
            "builder.pack",
            json!({"builder": "heroku/builder:24", "buildpacks": ["heroku/ruby", "heroku/procfile"]}),
        ),
        build("builder.pack.builder", json!("heroku/builder:24")).base(
            "builder.pack",
            json!({"builder": "heroku/builder:22", "buildpacks": ["heroku/ruby"]}),
        ),
        build(
            "builder.pack.buildpacks",
            json!(["heroku/ruby", "heroku/procfile"]),
        )
        .base(
            "builder.pack",
            json!({"builder": "heroku/builder:24", "buildpacks": ["heroku/ruby"]}),
        ),
        build("builder.cache", json!({"type": "registry", "options": "mode=max"})),
        build("builder.cache.type", json!("gha")),
        build("builder.cache.options", json!("mode=max,oci-mediatypes=true"))
            .base("builder.cache", json!({"type": "registry"})),
        build("builder.cache.image", json!("acme/build-cache"))
            .base("builder.cache", json!({"type": "registry"})),
        build("builder.context", json!(".")),
        build("builder.dockerfile", json!("Dockerfile.production")),
        build("builder.target", json!("production")),
        build("builder.args", json!({"RUBY_VERSION": "3.3.5"})),
        build("builder.args.ENVIRONMENT", json!("production")),
        build("builder.secrets", json!(["GITHUB_TOKEN"])),
        build("builder.ssh", json!("default=$SSH_AUTH_SOCK")),
        build("builder.driver", json!("docker")),
        build("builder.provenance", json!("mode=max")),
        build("builder.sbom", json!(true)),
        // proxy.yml
        proxy("proxy.host", json!("store.example.com")),
        proxy(
            "proxy.hosts",
            json!(["shop.example.com", "www.shop.example.com"]),
        )
        .unset("proxy.host"),
        proxy("proxy.app_port", json!(3000)),
        // SSL without custom certificates needs a single host per role.
        proxy("proxy.ssl", json!(true)).base("servers.web.hosts", json!(["10.0.0.1"])),
        // The certificate and key come as a pair: the base has automatic certificates.
        proxy("proxy.ssl.certificate_pem", json!("CERT_PEM"))
            .base("proxy.ssl", json!(true))
            .base("servers.web.hosts", json!(["10.0.0.1"]))
            .also("proxy.ssl.private_key_pem", json!("KEY_PEM")),
        proxy("proxy.ssl.private_key_pem", json!("KEY_PEM"))
            .base("proxy.ssl", json!(true))
            .base("servers.web.hosts", json!(["10.0.0.1"]))
            .also("proxy.ssl.certificate_pem", json!("CERT_PEM")),
        proxy("proxy.ssl_redirect", json!(false))
            .base("proxy.ssl", json!(true))
            .base("servers.web.hosts", json!(["10.0.0.1"])),
        proxy("proxy.forward_headers", json!(true)),
        proxy("proxy.response_timeout", json!(60)),
        proxy("proxy.path_prefix", json!("/api")),
        proxy("proxy.path_prefixes", json!(["/api", "/webhooks"])),
        proxy("proxy.strip_path_prefix", json!(false)).base("proxy.path_prefix", json!("/api")),
        proxy(
            "proxy.healthcheck",
            json!({"path": "/healthz", "interval": 5, "timeout": 10}),
        ),
        proxy("proxy.healthcheck.interval", json!(5)),
        proxy("proxy.healthcheck.path", json!("/healthz")),
        proxy("proxy.healthcheck.timeout", json!(10)),
        proxy(
            "proxy.buffering",
            json!({"requests": true, "responses": false, "max_request_body": 40_000_000}),
        ),
        proxy("proxy.buffering.requests", json!(false)),
        proxy("proxy.buffering.responses", json!(false)),
        proxy("proxy.buffering.max_request_body", json!(40_000_000)),
        proxy("proxy.buffering.max_response_body", json!(20_000_000)),
        proxy("proxy.buffering.memory", json!(2_000_000)),
        proxy("proxy.logging", json!({"request_headers": ["X-Request-Id"]})),
        proxy(
            "proxy.logging.request_headers",
            json!(["X-Request-Id", "User-Agent"]),
        ),
        proxy("proxy.logging.response_headers", json!(["X-Runtime"])),
        proxy("proxy.run", json!({"http_port": 8080})),
        proxy("proxy.run.http_port", json!(8080)),
        proxy("proxy.run.https_port", json!(8443)),
        proxy("proxy.run.metrics_port", json!(9090)),
        proxy("proxy.run.debug", json!(true)),
        proxy("proxy.run.log_max_size", json!("50m")),
        proxy("proxy.run.publish", json!(false)),
        proxy("proxy.run.bind_ips", json!(["10.0.0.1"])),
        proxy("proxy.run.registry", json!("ghcr.io")),
        proxy("proxy.run.repository", json!("acme/kamal-proxy")),
        proxy("proxy.run.version", json!("v0.9.3")),
        proxy("proxy.run.options", json!({"memory": "512m"})),
        proxy("proxy.run.options.label", json!("team=platform")),
        proxy("proxy.run.options.memory", json!("512m")),
        proxy("proxy.run.options.cpus", json!(1)),
        // accessory.yml
        key_at(
            "accessories.mysql",
            "accessories.db",
            json!({"image": "postgres:16", "host": "10.0.0.4"}),
        )
        .cmd(ACCESSORY_BOOT),
        accessory(
            "accessories.mysql.service",
            "accessories.db.service",
            json!("shop-postgres"),
        ),
        accessory(
            "accessories.mysql.image",
            "accessories.db.image",
            json!("postgres:17"),
        ),
        accessory(
            "accessories.mysql.registry",
            "accessories.db.registry",
            json!({"server": "registry.example.com", "username": "deployer", "password": ["REGISTRY_PASSWORD"]}),
        ),
        accessory(
            "accessories.mysql.registry.server",
            "accessories.db.registry.server",
            json!("ghcr.io"),
        )
        .base(
            "accessories.db.registry",
            json!({"server": "registry.example.com", "username": "deployer", "password": ["REGISTRY_PASSWORD"]}),
        ),
        accessory(
            "accessories.mysql.host",
            "accessories.db.host",
            json!("10.0.0.5"),
        ),
        accessory(
            "accessories.mysql.hosts",
            "accessories.db.hosts",
            json!(["10.0.0.4", "10.0.0.5"]),
        )
        .unset("accessories.db.host"),
        accessory(
            "accessories.mysql.role",
            "accessories.db.role",
            json!("workers"),
        )
        .unset("accessories.db.host"),
        accessory(
            "accessories.mysql.roles",
            "accessories.db.roles",
            json!(["web", "workers"]),
        )
        .unset("accessories.db.host"),
        accessory(
            "accessories.mysql.tag",
            "accessories.db.tag",
            json!("monitoring"),
        )
        .unset("accessories.db.host"),
        accessory(
            "accessories.mysql.tags",
            "accessories.db.tags",
            json!(["monitoring", "replica"]),
        )
        .unset("accessories.db.host"),
        accessory(
            "accessories.mysql.cmd",
            "accessories.db.cmd",
            json!("postgres -c max_connections=200"),
        ),
        accessory(
            "accessories.mysql.port",
            "accessories.db.port",
            json!("127.0.0.1:5432:5432"),
        ),
        accessory(
            "accessories.mysql.labels",
            "accessories.db.labels",
            json!({"backup": "daily"}),
        ),
        accessory(
            "accessories.mysql.labels.app",
            "accessories.db.labels.app",
            json!("shop"),
        ),
        accessory(
            "accessories.mysql.options",
            "accessories.db.options",
            json!({"shm-size": "256m"}),
        ),
        accessory(
            "accessories.mysql.options.restart",
            "accessories.db.options.restart",
            json!("always"),
        ),
        accessory(
            "accessories.mysql.options.cpus",
            "accessories.db.options.cpus",
            json!(2),
        ),
        accessory(
            "accessories.mysql.env",
            "accessories.db.env",
            json!({"clear": {"POSTGRES_DB": "shop"}, "secret": ["POSTGRES_PASSWORD"]}),
        ),
        accessory(
            "accessories.mysql.files",
            "accessories.db.files",
            json!(["config/db/init.sql:/docker-entrypoint-initdb.d/init.sql"]),
        ),
        accessory(
            "accessories.mysql.files (local/remote/mode/owner/options)",
            "accessories.db.files",
            json!([{"local": "config/db/init.sql", "remote": "/docker-entrypoint-initdb.d/init.sql", "mode": "0644", "owner": "999:999", "options": "ro"}]),
        ),
        accessory(
            "accessories.mysql.directories",
            "accessories.db.directories",
            json!(["data:/var/lib/postgresql/data"]),
        ),
        accessory(
            "accessories.mysql.volumes",
            "accessories.db.volumes",
            json!(["/mnt/backups:/backups"]),
        ),
        accessory(
            "accessories.mysql.network",
            "accessories.db.network",
            json!("private"),
        ),
        accessory(
            "accessories.mysql.proxy",
            "accessories.db.proxy",
            json!({"host": "db-admin.example.com", "app_port": 8080}),
        )
        .cmd(PROXY_BOOT),
        // alias.yml
        key("aliases.uname", json!("server exec -p uname -a")).cmd(&["uname"]),
        key("aliases.staging_deploy", json!("deploy -d staging")).cmd(&["staging_deploy"]),
        // boot.yml
        key("boot.limit", json!("50%")),
        key("boot.wait", json!(10)),
        key("boot.parallel_roles", json!(true)),
        // logging.yml
        key("logging.driver", json!("journald")),
        key("logging.options", json!({"max-size": "100m", "max-file": "5"})),
        key("logging.options.max-size", json!("100m")),
        // output.yml
        key("output.otel", json!({"endpoint": "http://otel.internal:4318"})),
        key("output.otel.endpoint", json!("http://otel.internal:4318")),
        key("output.file", json!({"path": "log/deploys"})),
        key("output.file.path", json!("log/deploys")),
        // ssh.yml
        key("ssh.user", json!("deploy")),
        key("ssh.port", json!(2222)),
        key("ssh.proxy", json!("deploy@bastion.example.com")),
        key("ssh.proxy_command", json!("ssh -W %h:%p deploy@bastion.example.com")),
        key("ssh.log_level", json!("debug")),
        key("ssh.keys_only", json!(true)),
        key("ssh.keys", json!(["~/.ssh/deploy_ed25519"])),
        key("ssh.key_data", json!(["SSH_PRIVATE_KEY"])),
        key("ssh.config", json!(false)),
        key("ssh.forward_agent", json!(true)),
        // sshkit.yml
        key("sshkit.max_concurrent_starts", json!(10)),
        key("sshkit.pool_idle_timeout", json!(300)),
        key("sshkit.dns_retries", json!(5)),
    ]
}

/// Another way to see a key whose effect is not in a plan.
#[derive(Clone, Copy, Debug)]
enum Check {
    /// How dray connects ([`dray::remote::SshOptions`] of the loaded configuration) must change.
    Ssh,
    /// The loaded configuration model must change.
    Model,
    /// Nothing else to look at.
    None,
}

/// Keys whose effect is not visible in any plan: (key path or `prefix.*`, reason, check).
const NOT_IN_A_PLAN: &[(&str, &str, Check)] = &[
    // The keys themselves come from secrets when the run connects (the remote writes them to
    // its private directory): kamal_keys::ssh_key_data_connects_with_a_key_held_in_a_secret.
    (
        "ssh.key_data",
        "private keys read from secrets when connecting",
        Check::Model,
    ),
    // How dray connects: the ssh config of the run and the master pool, not the commands.
    ("ssh", "connection settings, not commands", Check::Ssh),
    ("ssh.*", "connection settings, not commands", Check::Ssh),
    (
        "sshkit",
        "connection pool settings, not commands",
        Check::Ssh,
    ),
    (
        "sshkit.*",
        "connection pool settings, not commands",
        Check::Ssh,
    ),
    // What the reporter shows of a hook's output while it runs.
    ("hooks_output", "display of hook output only", Check::Model),
    (
        "hooks_output.*",
        "display of hook output only",
        Check::Model,
    ),
    // Deploy logs (a file, OTLP/HTTP records), not commands: tests/integration/output.rs.
    ("output", "deploy logs, not commands", Check::Model),
    ("output.*", "deploy logs, not commands", Check::Model),
    // Kamal 2 hard-codes `.kamal` and ignores the key (commit 27a7b339); it only validates.
    ("run_directory", "ignored by Kamal 2 itself", Check::None),
    // Extension keys: ignored by Kamal by design (YAML anchors live there).
    ("x-team", "x-* keys are ignored by design", Check::None),
];

fn allowed(doc: &str) -> Option<(&'static str, Check)> {
    NOT_IN_A_PLAN.iter().find_map(|(pattern, reason, check)| {
        let hit = match pattern.strip_suffix(".*") {
            Some(prefix) => doc.starts_with(prefix) && doc[prefix.len()..].starts_with('.'),
            None => doc == *pattern,
        };
        hit.then_some((*reason, *check))
    })
}

/// Set `path` (dot-separated) in `v` to `value`, creating maps on the way.
fn set(v: &mut Value, path: &str, value: Value) {
    let mut cur = v;
    let segments: Vec<&str> = path.split('.').collect();
    for (i, seg) in segments.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(map) = cur.as_object_mut() else {
            return;
        };
        if i + 1 == segments.len() {
            map.insert((*seg).to_string(), value);
            return;
        }
        cur = map.entry((*seg).to_string()).or_insert_with(|| json!({}));
    }
}

/// Remove `path` from `v`.
fn unset(v: &mut Value, path: &str) {
    let mut cur = v;
    let segments: Vec<&str> = path.split('.').collect();
    for (i, seg) in segments.iter().enumerate() {
        let Some(map) = cur.as_object_mut() else {
            return;
        };
        if i + 1 == segments.len() {
            map.remove(*seg);
            return;
        }
        match map.get_mut(*seg) {
            Some(next) => cur = next,
            None => return,
        }
    }
}

/// What one configuration gives: each command's outcome, and what else can be seen.
#[derive(Debug, Clone, PartialEq)]
struct Observed {
    /// Per command: the plans' `--dry-run` text, or the error.
    outcomes: Vec<Result<Vec<String>, String>>,
    /// How dray would connect (from the deploy's configuration).
    ssh: Option<String>,
    /// The loaded configuration model (from the deploy's configuration).
    model: Option<String>,
    /// What the plans would send, unredacted: every command line and its stdin, every hook's
    /// environment (a secret's value changes this, not the `--dry-run` text).
    sent: String,
}

/// A project directory with everything the variants refer to.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    write(&root.join(".kamal/secrets"), SECRETS);
    write(
        &root.join("config/secrets"),
        &format!("{SECRETS}SENTRY_DSN=https://sentry.example.com/1\n"),
    );
    write(
        &root.join("config/deploy.staging.yml"),
        "env:\n  clear:\n    RAILS_ENV: staging\n",
    );
    write(&root.join("Dockerfile"), "FROM scratch\n");
    write(&root.join("Dockerfile.production"), "FROM scratch\n");
    write(&root.join("public/errors/404.html"), "<h1>Not found</h1>\n");
    write(&root.join("public/errors/500.html"), "<h1>Error</h1>\n");
    write(&root.join("config/db/init.sql"), "CREATE DATABASE shop;\n");
    // Stand-ins for what the deploying machine would have (buildx and `pack` cannot be
    // installed here): docker answers every buildx call and says the engine is x86_64.
    let docker = root.join(".fake-bin/docker");
    write(
        &docker,
        "#!/bin/sh\ncase \"$1\" in info) echo x86_64 ;; esac\nexit 0\n",
    );
    let pack = root.join(".fake-bin/pack");
    write(&pack, "#!/bin/sh\nexit 0\n");
    use std::os::unix::fs::PermissionsExt;
    for tool in [&docker, &pack] {
        std::fs::set_permissions(tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    dir
}

/// The plans `dray <args> --dry-run` builds in `dir` (their text, the time taken out), or
/// the error; and the configuration the first plan was built from.
fn outcome(
    dir: &Path,
    args: Args,
) -> (
    Result<Vec<String>, String>,
    Option<dray::commands::session::BuiltPlan>,
) {
    let config = dir.join("config/deploy.yml");
    let config = config.to_str().expect("utf-8 path").to_string();
    if args == DEPLOY_BUILD {
        return (built_with_buildx(dir, &config), None);
    }
    let mut argv = vec!["dray", "--dry-run", "-c", config.as_str()];
    argv.extend(args);
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => return (Err(e.to_string()), None),
    };
    let (result, plans) = capture_plans(dir, || dray::commands::run(cli, 0));
    if let Err(e) = result {
        return (Err(e.to_string()), None);
    }
    let texts = plans
        .iter()
        .map(|b| timeless(&dray::report::plan::plan_text(&b.plan)))
        .collect();
    (Ok(texts), plans.into_iter().next())
}

/// Everything `plan` would send or set, secrets in clear, the time taken out.
fn sent(plan: &dray::plan::Plan) -> String {
    use dray::plan::Step;
    let mut out = String::new();
    fn push(out: &mut String, who: &str, c: &dray::plan::PlannedCommand) {
        let stdin = c
            .spec
            .stdin
            .as_ref()
            .map(|s| String::from_utf8_lossy(&s.0).to_string())
            .unwrap_or_default();
        out.push_str(&format!("[{who}] {} <<< {stdin}\n", c.spec.to_shell()));
    }
    for (host, c) in plan.remote_commands() {
        push(&mut out, host, c);
    }
    for step in plan.steps() {
        match step {
            Step::Local(l) => l.commands.iter().for_each(|c| push(&mut out, "local", c)),
            Step::Interactive(i) => push(&mut out, &i.host, &i.command),
            Step::Hook(h) => {
                for var in &h.env {
                    out.push_str(&format!("hook {} {}={}\n", h.hook, var.name, var.value));
                }
            }
            _ => {}
        }
    }
    timeless(&out)
}

/// The plan of a deploy that builds, from the binary with a `docker` on its `PATH` that
/// answers `docker buildx version` (the build's commands depend on buildx being there, and
/// this machine may have no docker at all).
fn built_with_buildx(dir: &Path, config: &str) -> Result<Vec<String>, String> {
    let fake = dir.join(".fake-bin");
    let path = std::env::var("PATH").unwrap_or_default();
    let mut argv = vec!["--dry-run", "-c", config];
    argv.extend(DEPLOY_BUILD);
    let out = crate::support::dray_cmd(dir, &argv)
        .env("PATH", format!("{}:{path}", fake.display()))
        .output()
        .expect("run dray");
    if out.status.success() {
        Ok(vec![timeless(&String::from_utf8_lossy(&out.stdout))])
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// A plan's text without the time it was built at: timestamps become `<T>`, the lock details
/// (base64 text with the time in it) `<lock details>`.
fn timeless(text: &str) -> String {
    let mut out = String::new();
    let mut in_lock = false;
    for line in text.lines() {
        let line = blank_timestamps(line);
        if in_lock {
            if line.contains("/details'") {
                in_lock = false;
                out.push_str(&line);
                out.push('\n');
            }
            continue;
        }
        if let Some(at) = line.find("mkdir .kamal/lock-") {
            if let Some(echo) = line[at..].find(" echo ") {
                out.push_str(&line[..at + echo]);
                out.push_str(" echo <lock details>\n");
                in_lock = !line.contains("/details'");
                continue;
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `line` with each `YYYY-MM-DDTHH:MM:SS` replaced by `<T>`.
fn blank_timestamps(line: &str) -> String {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd";
    let bytes = line.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let fits = bytes.len() - i >= SHAPE.len()
            && SHAPE.iter().zip(&bytes[i..]).all(|(s, b)| match s {
                b'd' => b.is_ascii_digit(),
                s => s == b,
            });
        if fits {
            out.push_str("<T>");
            i += SHAPE.len();
        } else {
            let c = line[i..].chars().next().unwrap_or_default();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Write `config` as the project's deploy.yml and observe `cmds` (the first is a deploy).
fn observe(dir: &Path, config: &Value, cmds: &[Args]) -> Observed {
    let text = serde_json::to_string_pretty(config).expect("json");
    write(&dir.join("config/deploy.yml"), &text);
    let mut outcomes = Vec::new();
    let mut ssh = None;
    let mut model = None;
    let mut sent_text = String::new();
    for (i, args) in cmds.iter().enumerate() {
        let (result, mut built) = outcome(dir, args);
        if let Some(b) = &built {
            sent_text.push_str(&sent(&b.plan));
        }
        if i == 0 && built.is_none() && *args == DEPLOY_BUILD {
            built = outcome(dir, DEPLOY).1;
        }
        if i == 0 {
            if let Some(built) = built {
                let mut opts = dray::remote::SshOptions::from_config(&built.config, &built.root);
                opts.cwd = PathBuf::new();
                ssh = Some(format!("{opts:?}"));
                model = serde_json::to_string(&built.config).ok();
            }
        }
        outcomes.push(result);
    }
    Observed {
        outcomes,
        ssh,
        model,
        sent: sent_text,
    }
}

/// How a key fared.
#[derive(Debug)]
enum Verdict {
    /// (a) a plan or a command's outcome changed.
    Visible,
    /// (a) what the plan sends changed, only hidden in the dry-run's text (a secret's value,
    /// redacted).
    Redacted,
    /// (b) refused at load as not supported yet.
    Refused,
    /// (c) allow-listed, its check (if any) saw the change.
    Allowed(&'static str),
    /// Allow-listed, but its check saw no change.
    AllowedUnchecked(&'static str),
    /// The variant fails in a way the entry does not expect (a mistake in the table, or a
    /// documented key dray rejects as invalid).
    Broken(String),
    /// Nothing changed: silently ignored. Whether the key reaches the configuration model.
    Ignored { in_model: bool },
}

/// Whether an error refuses `path` (or the section it is in) as not supported yet.
fn refuses(err: &str, path: &str) -> bool {
    if !err.contains("not supported yet by dray") {
        return false;
    }
    let mut prefix = path;
    loop {
        if err.contains(prefix) {
            return true;
        }
        match prefix.rfind('.') {
            Some(at) => prefix = &prefix[..at],
            None => return false,
        }
    }
}

fn judge(dir: &Path, key: &Key, bases: &mut HashMap<String, Observed>) -> Verdict {
    let mut base = base_config();
    for (path, value) in &key.base {
        set(&mut base, path, value.clone());
    }
    let mut variant = base.clone();
    for path in &key.unset {
        unset(&mut variant, path);
    }
    for (path, value) in &key.set {
        set(&mut variant, path, value.clone());
    }
    let cache_key = format!("{base} {:?}", key.cmds);
    let base_seen = match bases.get(&cache_key) {
        Some(seen) => seen.clone(),
        None => {
            let seen = observe(dir, &base, &key.cmds);
            bases.insert(cache_key, seen.clone());
            seen
        }
    };
    match (&base_seen.outcomes[0], key.base_fails) {
        (Err(e), false) => {
            return Verdict::Broken(format!(
                "the base fails: {}",
                e.lines().next().unwrap_or_default()
            ))
        }
        (Ok(_), true) => return Verdict::Broken("the base was meant to fail".into()),
        _ => {}
    }
    let seen = observe(dir, &variant, &key.cmds);
    let paths: Vec<&str> = key.set.iter().map(|(p, _)| *p).collect();
    let errors: Vec<&String> = seen
        .outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .collect();
    if errors.iter().any(|e| paths.iter().any(|p| refuses(e, p))) {
        return Verdict::Refused;
    }
    if let Some(expected) = key.fails_with {
        return if errors.iter().any(|e| e.contains(expected)) {
            Verdict::Visible
        } else if seen.outcomes != base_seen.outcomes {
            Verdict::Broken(format!(
                "expected a failure naming {expected:?}, got {:?}",
                errors.first()
            ))
        } else {
            Verdict::Ignored {
                in_model: seen.model != base_seen.model,
            }
        };
    }
    // A variant failing where the base planned: not what the entry means.
    for (b, v) in base_seen.outcomes.iter().zip(&seen.outcomes) {
        if let (Ok(_), Err(e)) = (b, v) {
            return Verdict::Broken(e.lines().next().unwrap_or_default().to_string());
        }
    }
    if seen.outcomes != base_seen.outcomes {
        return Verdict::Visible;
    }
    if seen.sent != base_seen.sent {
        return Verdict::Redacted;
    }
    let doc = key.doc;
    if let Some((reason, check)) = allowed(doc) {
        let saw = match check {
            Check::Ssh => seen.ssh != base_seen.ssh,
            Check::Model => seen.model != base_seen.model,
            Check::None => true,
        };
        return if saw {
            Verdict::Allowed(reason)
        } else {
            Verdict::AllowedUnchecked(reason)
        };
    }
    Verdict::Ignored {
        in_model: seen.model != base_seen.model,
    }
}

#[test]
fn timeless_plans_have_no_time() {
    let text = "KAMAL_RECORDED_AT=2026-12-01T12:41:53Z\n\
                [h] $ sh -c 'mkdir .kamal/lock-shop && echo '\\''TG9j\n\
                [h] > MTIt\n\
                [h] > '\\'' > .kamal/lock-shop/details'\n\
                [h] $ next\n";
    assert_eq!(
        timeless(text),
        "KAMAL_RECORDED_AT=<T>Z\n\
         [h] $ sh -c 'mkdir .kamal/lock-shop && echo <lock details>\n\
         [h] > '\\'' > .kamal/lock-shop/details'\n\
         [h] $ next\n"
    );
}

#[test]
fn allow_list_patterns_match_as_meant() {
    assert!(allowed("ssh.user").is_some());
    assert!(allowed("ssh").is_some());
    assert!(allowed("sshkit.dns_retries").is_some());
    assert!(allowed("sshx").is_none());
    assert!(allowed("proxy.host").is_none());
}

#[test]
fn set_and_unset_walk_dotted_paths() {
    let mut v = json!({"a": {"b": 1}});
    set(&mut v, "a.c.d", json!(2));
    set(&mut v, "a.b.e", json!(3));
    assert_eq!(v, json!({"a": {"b": {"e": 3}, "c": {"d": 2}}}));
    unset(&mut v, "a.c");
    assert_eq!(v, json!({"a": {"b": {"e": 3}}}));
}

#[test]
fn refusal_names_the_key_or_its_section() {
    let e = "config/deploy.yml:3:1: accessories: not supported yet by dray";
    assert!(refuses(e, "accessories.db.cmd"));
    assert!(!refuses(e, "proxy.host"));
    assert!(!refuses("accessories: unknown key", "accessories.db"));
}

#[test]
fn every_documented_key_is_visible_refused_or_allow_listed() {
    let dir = project();
    let mut report = Vec::new();
    let mut ignored = Vec::new();
    let mut broken = Vec::new();
    let mut bases = HashMap::new();
    // The harness sees nothing change when nothing changes.
    let all = [DEPLOY, PROXY_BOOT, PROXY_REBOOT];
    let first = observe(dir.path(), &base_config(), &all);
    assert!(
        first.outcomes.iter().all(|o| o.is_ok()),
        "{:?}",
        first.outcomes
    );
    assert_eq!(first, observe(dir.path(), &base_config(), &all));
    for key in keys() {
        let verdict = judge(dir.path(), &key, &mut bases);
        let line = match &verdict {
            Verdict::Visible => "visible in a plan".to_string(),
            Verdict::Redacted => "visible in a plan (redacted in the dry-run)".to_string(),
            Verdict::Refused => "refused: not supported yet".to_string(),
            Verdict::Allowed(reason) => format!("allow-listed ({reason})"),
            Verdict::AllowedUnchecked(reason) => {
                ignored.push(format!(
                    "{} (allow-listed as {reason}, but its check saw no change)",
                    key.doc
                ));
                format!("allow-listed ({reason}) but its check saw NO change")
            }
            Verdict::Broken(why) => {
                broken.push(format!("{}: {why}", key.doc));
                format!("BROKEN: {why}")
            }
            Verdict::Ignored { in_model } => {
                let how = if *in_model {
                    "in the configuration model, used by no plan"
                } else {
                    "not even in the configuration model"
                };
                ignored.push(format!("{} ({how})", key.doc));
                format!("SILENTLY IGNORED ({how})")
            }
        };
        report.push(format!("{:<60} {line}", key.doc));
    }
    let text = report.join("\n");
    assert!(
        ignored.is_empty() && broken.is_empty(),
        "{text}\n\n{} documented keys silently ignored (no plan changes, not refused, not \
         allow-listed):\n  {}\n\n{} entries broken:\n  {}",
        ignored.len(),
        ignored.join("\n  "),
        broken.len(),
        broken.join("\n  ")
    );
}

/// The accessory commands plan: nothing under `accessory` answers "not implemented yet".
#[test]
fn accessory_commands_plan() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::support::write(
        &dir.path().join("config/deploy.yml"),
        "service: app\nimage: app\nservers: [10.0.0.1]\nregistry: {username: u, password: p}\nbuilder: {arch: amd64}\naccessories:\n  db: {image: mysql:8, host: 10.0.0.1}\n",
    );
    let subcommands: &[&[&str]] = &[
        &["boot", "all"],
        &["reboot", "db"],
        &["start", "db"],
        &["stop", "db"],
        &["restart", "db"],
        &["details", "db"],
        &["exec", "db", "mysql --version"],
        &["exec", "db", "--reuse", "mysql --version"],
        &["logs", "db", "-n", "5"],
        &["remove", "db", "-y"],
        &["upgrade", "db", "-y"],
        &["upload", "db"],
        &["directories", "db"],
        &["pull_image", "db"],
        &["remove_container", "db"],
        &["remove_image", "db"],
        &["remove_service_directory", "db"],
    ];
    for sub in subcommands {
        let mut args = vec!["--version", "v1", "--dry-run", "accessory"];
        args.extend_from_slice(sub);
        let out = crate::support::dray(dir.path(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        let plan = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("not implemented yet"), "{args:?}: {err}");
        assert!(plan.contains("[10.0.0.1] $ "), "{args:?}: {plan}");
    }
}

//! App containers of one role on one host (`lib/kamal/commands/app*.rb`): names, `docker run`,
//! versions, readiness, stop, details, logs and exec.

use crate::command::CommandSpec;
use crate::config::model::{Config, Logging, OptionValue, Role};
use crate::shell::quote;

use super::env_file;
use super::script::{container_id_script, sh, words};

/// `docker inspect` format of [`App::state`].
pub const STATE_FORMAT: &str =
    "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{end}}";

/// [`STATE_FORMAT`] for a readiness wait: the container's creation time before the health, so
/// that the wait can ask `docker events` for what happened to it since (see
/// `boot::poll_ready`).
pub const WAIT_STATE_FORMAT: &str =
    "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}} {{.Created}} {{if .State.Health}}{{.State.Health.Status}}{{end}}";

/// The statuses Kamal counts as the current container.
const ACTIVE_STATUSES: [&str; 2] = ["running", "restarting"];

/// App commands for one role on one host.
#[derive(Debug, Clone, Copy)]
pub struct App<'a> {
    /// The validated configuration.
    pub config: &'a Config,
    /// The role.
    pub role: &'a Role,
    /// The host the commands run on (used in purposes and `KAMAL_HOST`).
    pub host: &'a str,
}

/// `-i` or `-it` for interactive commands (Kamal picks by whether its stdin is a TTY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interactive {
    /// Not interactive.
    No,
    /// `-i`: stdin attached, no TTY.
    Stdin,
    /// `-it`: stdin and a TTY.
    Tty,
}

/// Options of `app logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsOptions {
    /// `--container-id`: read this container instead of the current one.
    pub container_id: Option<String>,
    /// `--timestamps` (Kamal's default; `-T` turns it off).
    pub timestamps: bool,
    /// `--since`.
    pub since: Option<String>,
    /// `--tail` (the CLI defaults it to 100, or 10 with `--follow`, unless since/grep is set).
    pub lines: Option<u64>,
    /// `grep` pattern, passed as one word.
    pub grep: Option<String>,
    /// Extra grep options, passed unquoted as Kamal does (the user's own command-line text).
    pub grep_options: Option<String>,
    /// `--follow`.
    pub follow: bool,
}

/// Options of `app exec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOptions {
    /// The command line, parsed by the remote shell as with Kamal.
    pub command: String,
    /// `-e KEY=value`, expanded like clear env values.
    pub env: Vec<(String, String)>,
    /// `-i`/`-it`.
    pub interactive: Interactive,
    /// `--detach` (new container only): no `--rm`.
    pub detach: bool,
}

impl<'a> App<'a> {
    /// App commands for `role` on `host`.
    pub fn new(config: &'a Config, role: &'a Role, host: &'a str) -> Self {
        App { config, role, host }
    }

    /// The configuration.
    pub fn config(&self) -> &'a Config {
        self.config
    }

    /// The role.
    pub fn role(&self) -> &'a Role {
        self.role
    }

    /// The host.
    pub fn host(&self) -> &'a str {
        self.host
    }

    /// `<service>-<role>[-<dest>]`.
    pub fn container_prefix(&self) -> String {
        self.config.container_prefix(&self.role.name)
    }

    /// `<service>-<role>[-<dest>]-<version>`.
    pub fn container_name(&self, version: &str) -> String {
        format!("{}-{}", self.container_prefix(), version)
    }

    /// Replica `replica` of `version`: replica 1 has Kamal's exact name, the others
    /// `<service>-<role>[-<dest>]-<version>-r<replica>` (`x-dray: replicas`).
    pub fn replica_name(&self, version: &str, replica: u32) -> String {
        if replica <= 1 {
            self.container_name(version)
        } else {
            format!("{}-r{replica}", self.container_name(version))
        }
    }

    /// The replicas in boot order: 2..N, then 1 (Kamal's name) last, so that Kamal's
    /// `docker ps --latest` finds replica 1 and reads the plain version from its name.
    pub fn replica_order(&self) -> Vec<u32> {
        let n = self.role.replicas.max(1);
        (2..=n).chain(std::iter::once(1)).collect()
    }

    /// `--format` of the listings versions are read from: the name, and for a replicated role
    /// the replica label (empty on replica 1 and on Kamal's containers).
    fn names_format(&self) -> &'static str {
        if self.role.replicated() {
            "{{.Names}} {{.Label \"dray.replica\"}}"
        } else {
            "{{.Names}}"
        }
    }

    /// A `name=` filter matching every replica of the version in shell variable `var`.
    pub(crate) fn replicas_filter_of_var(&self, var: &str) -> String {
        format!(
            "{}\"${var}\"{}",
            quote(&format!("name=^{}-", self.container_prefix())),
            quote("(-r[0-9]+)?$")
        )
    }

    /// `<service>-<role>[-<dest>]-exec-<version>-<hex6>` (`hex6`: 3 random bytes in hex).
    pub fn exec_container_name(&self, version: &str, hex6: &str) -> String {
        format!("{}-exec-{}-{}", self.container_prefix(), version, hex6)
    }

    /// The image reference `<repository>:<version>`.
    pub fn image(&self, version: &str) -> String {
        format!("{}:{}", self.config.repository, version)
    }

    /// The env file path `.kamal/apps/<A>/env/roles/<role>.env`.
    pub fn env_file_path(&self) -> String {
        env_file::role_env_file(self.config, &self.role.name)
    }

    /// `docker run` for a new container of `version`, exactly in Kamal's order (§5.5).
    pub fn run(&self, version: &str, hostname: Option<&str>) -> CommandSpec {
        self.run_replica(version, hostname, 1)
    }

    /// `docker run` for replica `replica` of `version`: [`App::run`] under the replica's name,
    /// with the label `dray.replica=<replica>` after Kamal's labels (replicas 2..N only).
    pub fn run_replica(&self, version: &str, hostname: Option<&str>, replica: u32) -> CommandSpec {
        let name = self.replica_name(version, replica);
        let mut cmd = CommandSpec::new(
            format!("boot {} on {}", self.role.name, self.host),
            "docker",
        )
        .args(["run", "--detach", "--restart"])
        .arg(restart_policy(self.role))
        .args(["--name", name.as_str(), "--network", "kamal"]);
        if let Some(hostname) = hostname {
            cmd = cmd.arg("--hostname").arg(hostname);
        }
        cmd = cmd
            .arg("--env")
            .arg(format!("KAMAL_CONTAINER_NAME={name}"))
            .arg("--env")
            .arg(format!("KAMAL_VERSION={version}"))
            .arg("--env")
            .arg(format!("KAMAL_HOST={}", self.host));
        if let Some(dest) = &self.config.destination {
            cmd = cmd.arg("--env").arg(format!("KAMAL_DESTINATION={dest}"));
        }
        cmd = self.clear_env_args(cmd);
        cmd = cmd.arg("--env-file").arg(self.env_file_path());
        cmd = logging_args(cmd, &self.role.logging);
        cmd = self.volume_args(cmd);
        if let Some(volume) = self.asset_volume(version) {
            cmd = cmd.arg("--volume").arg_raw(volume);
        }
        for (key, value) in self.labels() {
            cmd = cmd.arg("--label");
            cmd = match value {
                Some(v) if !is_blank(&v) => cmd.arg_expanding(format!("{key}={v}")),
                _ => cmd.arg(key),
            };
        }
        if replica > 1 {
            cmd = cmd.arg("--label").arg(format!("dray.replica={replica}"));
        }
        cmd = option_args(cmd, &self.role.options);
        cmd = cmd.arg(self.image(version));
        match self.role.cmd.as_deref() {
            Some(c) if !c.trim().is_empty() => cmd.arg_raw(c),
            _ => cmd,
        }
    }

    /// `docker start <name>`.
    pub fn start(&self, version: &str) -> CommandSpec {
        let cmd = CommandSpec::new(
            format!("start {} on {}", self.role.name, self.host),
            "docker",
        )
        .arg("start");
        if self.role.replicated() {
            // Every replica, Kamal's name last (the newest start, as a boot leaves it).
            let order = self.replica_order();
            return cmd.args(order.iter().map(|r| self.replica_name(version, *r)));
        }
        cmd.arg(self.container_name(version))
    }

    /// `docker container ls --all --filter name=^<name>$ --quiet`: the id of `version`'s
    /// container (also the clash check before booting and the target of `kamal-proxy deploy`).
    pub fn container_id(&self, version: &str) -> CommandSpec {
        self.container_id_named(&self.container_name(version))
    }

    /// `docker container ls --all --filter name=^<name>$ --quiet`.
    pub fn container_id_named(&self, name: &str) -> CommandSpec {
        CommandSpec::new(
            format!("find {} container {name} on {}", self.role.name, self.host),
            "docker",
        )
        .args(["container", "ls", "--all", "--filter"])
        .arg(format!("name=^{name}$"))
        .arg("--quiet")
    }

    /// `<version>_replaced_<hex16>`: the version a clashing container is renamed to.
    pub fn replaced_version(version: &str, hex16: &str) -> String {
        format!("{version}_replaced_{hex16}")
    }

    /// `docker rename <name> <name>_replaced_<hex16>`.
    pub fn rename(&self, version: &str, hex16: &str) -> CommandSpec {
        CommandSpec::new(
            format!(
                "rename clashing {} container on {}",
                self.role.name, self.host
            ),
            "docker",
        )
        .arg("rename")
        .arg(self.container_name(version))
        .arg(self.container_name(&Self::replaced_version(version, hex16)))
    }

    /// Script text listing every container of the role, `<id>\t<name>\t<state>` per line
    /// (`status`).
    /// A replicated role's lines end with a 4th column, the replica label.
    pub fn listing_script(&self) -> String {
        let format = if self.role.replicated() {
            "{{.ID}}\t{{.Names}}\t{{.State}}\t{{.Label \"dray.replica\"}}"
        } else {
            "{{.ID}}\t{{.Names}}\t{{.State}}"
        };
        format!(
            "docker ps --all {} --format {}",
            words(&self.filter_words(&[])),
            crate::shell::quote(format)
        )
    }

    /// Filters `label=service=S label=destination=[D] label=role=R [status=…]` as words.
    fn filter_words(&self, statuses: &[&str]) -> Vec<String> {
        let mut filters = vec![
            format!("label=service={}", self.config.service),
            format!(
                "label=destination={}",
                self.config.destination.as_deref().unwrap_or("")
            ),
            format!("label=role={}", self.role.name),
        ];
        filters.extend(statuses.iter().map(|s| format!("status={s}")));
        filters
            .into_iter()
            .flat_map(|f| ["--filter".to_string(), f])
            .collect()
    }

    /// Script printing the current container (by `format`, e.g. `--quiet`): the latest running
    /// one started from the `latest[-D]` image, else the latest running one (§5.4 step b).
    fn current_container_script(&self, format: &[&str]) -> String {
        let filters = words(&self.filter_words(&ACTIVE_STATUSES));
        let format = words(format);
        let latest = format!("{}:{}", self.config.repository, self.config.latest_tag());
        format!(
            "{{ docker ps --latest {format} {filters} --filter ancestor=$(docker image ls --filter {} --format {}) ; docker ps --latest {format} {filters} ; }} | head -1",
            quote(&format!("reference={latest}")),
            quote("{{.ID}}"),
        )
    }

    /// `… | while read line; do echo ${line#<prefix>-}; done`: names to versions.
    /// A replicated role's listings carry the replica label: `-r<replica>` is cut off too.
    fn extract_version(&self) -> String {
        if self.role.replicated() {
            return format!(
                "while read line replica; do v=\"${{line#{}-}}\"; [ -z \"$replica\" ] || v=\"${{v%-r$replica}}\"; echo \"$v\"; done",
                self.container_prefix()
            );
        }
        format!(
            "while read line; do echo \"${{line#{}-}}\"; done",
            self.container_prefix()
        )
    }

    /// The version of the container currently running (empty output when none).
    pub fn current_running_version(&self) -> CommandSpec {
        let script = if self.role.replicated() {
            format!(
                "{} | {}",
                self.current_container_script(&["--format", self.names_format()]),
                self.extract_version()
            )
        } else {
            format!(
                "{}
[ -z \"$dray_cur\" ] || echo \"$dray_cur\"",
                self.current_version_assign("dray_cur")
            )
        };
        sh(
            format!("find running {} version on {}", self.role.name, self.host),
            script,
        )
    }

    /// Script text setting shell variable `var` to the version of the container running now
    /// (empty when none), for use inside a batched script: Kamal's query (the latest running
    /// container from the `latest[-D]` image, else the latest running one) without the
    /// pipeline, `head` and `while read` of [`App::current_running_version`], so it starts only
    /// the `docker` calls (the second `docker ps` only when the first found nothing).
    ///
    /// The `ancestor` filter names the `latest[-D]` image by its reference, which the engine
    /// resolves to the same image id Kamal's nested `docker image ls --filter reference=…`
    /// prints (and matches nothing when the tag does not exist, as Kamal's empty id does): one
    /// `docker` call fewer, and `docker image ls` is the slowest of them (~0.1 s on the fleet).
    pub fn current_version_assign(&self, var: &str) -> String {
        if self.role.replicated() {
            return format!(
                "{var}=$({} || true)",
                self.current_running_version().to_shell()
            );
        }
        self.current_version_read(var, |format, filters, ancestor| {
            format!("{var}=$(docker ps --latest {format} {filters} --filter {ancestor}) || {var}=")
        })
    }

    /// A non-replicated role's current-version read: `first` (given the names format, the
    /// role's active filters and the `ancestor=<latest image>` filter, each as shell words)
    /// reads the latest running container of the latest image into `var`; then, when it found
    /// nothing, the latest running one; then the version from the name.
    fn current_version_read(
        &self,
        var: &str,
        first: impl FnOnce(&str, &str, &str) -> String,
    ) -> String {
        let filters = words(&self.filter_words(&ACTIVE_STATUSES));
        let format = words(&["--format", self.names_format()]);
        let latest = format!("{}:{}", self.config.repository, self.config.latest_tag());
        let ancestor = quote(&format!("ancestor={latest}"));
        format!(
            "{}\n\
             [ -n \"${var}\" ] || {var}=$(docker ps --latest {format} {filters}) || {var}=\n\
             {var}=${{{var}#{}-}}",
            first(&format, &filters, &ancestor),
            self.container_prefix(),
        )
    }

    /// [`Self::current_version_assign`] and the clash check of `version`'s name read side by
    /// side, for a boot's start (issue #19: one `docker` call's time instead of two before the
    /// first effect): `var` gets the version running now, `clash_var` the id of any container
    /// named as the new one (empty when none). The two listings print prefixed lines (`a`,
    /// `c`) into one command substitution; their failures leave the variables empty, as the
    /// reads they replace. A non-replicated role only (its name is exact); a replicated one
    /// reads them one after the other.
    pub fn current_version_and_clash_assign(
        &self,
        var: &str,
        clash_var: &str,
        version: &str,
    ) -> String {
        if self.role.replicated() {
            return format!(
                "{}\n{clash_var}=$({})",
                self.current_version_assign(var),
                self.container_id(version).to_shell()
            );
        }
        self.start_reads_assign(var, clash_var, version, None)
    }

    /// [`Self::current_version_and_clash_assign`] of a non-replicated role, and with `stale`
    /// (`Some((stale_var, beside))`) a deploy's start: the role's running containers' names
    /// (the stale-container stop's listing, [`Self::stale_stop_of`]) read beside them into
    /// `stale_var` (space-separated), and the simple command `beside` (its output and status
    /// discarded: the `kamal` network's creation) run beside the three: one `docker` call's
    /// time for all the reads before the start's first effect.
    pub fn start_reads_assign(
        &self,
        var: &str,
        clash_var: &str,
        version: &str,
        stale: Option<(&str, Option<&str>)>,
    ) -> String {
        let named = quote(&format!("name=^{}$", self.container_name(version)));
        let (stale_ps, stale_init, stale_case) = match stale {
            Some((stale_var, beside)) => {
                let beside = beside
                    .map(|b| format!("{b} > /dev/null 2>&1 & "))
                    .unwrap_or_default();
                (
                    format!("{} & {beside}", self.running_listing("s {{.Names}}")),
                    format!(" {stale_var}=;"),
                    format!(" s) {stale_var}=\"${stale_var} $2\" ;;"),
                )
            }
            None => Default::default(),
        };
        self.current_version_read(var, |_, filters, ancestor| {
            format!(
                "dray_reads=$({{ docker ps --latest --format {a} {filters} --filter {ancestor} & \
docker container ls --all --filter {named} --format {c} & {stale_ps}wait; }}) || dray_reads=\n\
{var}=; {clash_var}=;{stale_init} set -- $dray_reads\n\
while [ \"$#\" -ge 2 ]; do case $1 in a) {var}=$2 ;; c) {clash_var}=$2 ;;{stale_case} esac; shift 2; done",
                a = quote("a {{.Names}}"),
                c = quote("c {{.ID}}"),
            )
        })
    }

    /// `docker stop [-t N] <name>` of `version`'s container as script text, for a batched
    /// script (a non-replicated role: the name is exact, so no lookup and `xargs` are needed).
    pub fn stop_script(&self, version: &str) -> String {
        if self.role.replicated() {
            return self.stop(Some(version)).to_shell();
        }
        let mut stop = vec!["docker".to_string(), "stop".into()];
        stop.extend(self.stop_args());
        stop.push(self.container_name(version));
        words(&stop)
    }

    /// The id of the container currently running.
    pub fn current_running_container_id(&self) -> CommandSpec {
        sh(
            format!("find running {} container on {}", self.role.name, self.host),
            self.current_container_script(&["--quiet"]),
        )
    }

    /// The state of `version`'s container for readiness: `<status> <restart count> <exit code>
    /// [<health>]` (health only with a health check).
    pub fn state(&self, version: &str) -> CommandSpec {
        self.state_named(&self.container_name(version))
    }

    /// [`App::state`] of the container `name`.
    pub fn state_named(&self, name: &str) -> CommandSpec {
        self.state_named_as(name, STATE_FORMAT)
    }

    /// [`App::state_named`] in [`WAIT_STATE_FORMAT`], for a readiness wait.
    pub fn wait_state_named(&self, name: &str) -> CommandSpec {
        self.state_named_as(name, WAIT_STATE_FORMAT)
    }

    fn state_named_as(&self, name: &str, format: &str) -> CommandSpec {
        sh(
            format!("check {} state on {}", self.role.name, self.host),
            format!(
                "{} | xargs docker inspect --format {}",
                container_id_script(name),
                quote(format)
            ),
        )
    }

    /// The health log of `version`'s container, shown when it failed to boot.
    pub fn health_log(&self, version: &str) -> CommandSpec {
        self.health_log_named(&self.container_name(version))
    }

    /// [`App::health_log`] of the container `name`.
    pub fn health_log_named(&self, name: &str) -> CommandSpec {
        sh(
            format!("read {} health log on {}", self.role.name, self.host),
            format!(
                "{} | xargs docker inspect --format {}",
                container_id_script(name),
                quote("{{json .State.Health}}")
            ),
        )
    }

    /// `docker stop` arguments: `-t <role stop_timeout>`, else nothing for proxy roles (the proxy
    /// drained already) and `-t <drain_timeout>` for others.
    pub fn stop_args(&self) -> Vec<String> {
        let timeout = self.role.stop_timeout.or(if self.role.runs_proxy() {
            None
        } else {
            Some(self.config.drain_timeout)
        });
        match timeout {
            Some(t) => vec!["-t".to_string(), t.to_string()],
            None => Vec::new(),
        }
    }

    /// Stop `version`'s container, or the current one when `version` is `None`; for a
    /// replicated role, every replica of that version.
    pub fn stop(&self, version: Option<&str>) -> CommandSpec {
        let source = match (version, self.role.replicated()) {
            (Some(v), false) => container_id_script(&self.container_name(v)),
            (None, false) => self.current_container_script(&["--quiet"]),
            (Some(v), true) => format!(
                "v={}; docker container ls --all --filter {} --quiet",
                quote(v),
                self.replicas_filter_of_var("v")
            ),
            (None, true) => format!(
                "v=$({}); [ -n \"$v\" ] || exit 0; docker container ls --all --filter {} --quiet",
                self.current_running_version().to_shell(),
                self.replicas_filter_of_var("v")
            ),
        };
        let mut stop = vec!["xargs".to_string(), "docker".into(), "stop".into()];
        stop.extend(self.stop_args());
        let what = version.unwrap_or("current");
        sh(
            format!("stop {} {} on {}", self.role.name, what, self.host),
            format!("{source} | {}", words(&stop)),
        )
    }

    /// Versions of the role's running containers, one a line (stale ones are these minus the
    /// current version).
    /// A replicated role's versions are listed once each, newest first.
    pub fn list_versions(&self) -> CommandSpec {
        let mut ps = vec!["docker".to_string(), "ps".into()];
        ps.extend(self.filter_words(&[]));
        ps.extend(["--format".into(), self.names_format().into()]);
        let unique = if self.role.replicated() {
            " | awk '!seen[$0]++'"
        } else {
            ""
        };
        sh(
            format!("list {} versions on {}", self.role.name, self.host),
            format!("{} | {}{unique}", words(&ps), self.extract_version()),
        )
    }

    /// Stale containers of the role in one round trip: running containers other than the
    /// current one. [`Stale::Stop`] stops them quietly (a deploy's stale-containers stage:
    /// "current" is the newest running one), [`Stale::Report`] and [`Stale::ReportAndStop`]
    /// say which (`app stale_containers [--stop]`: every listed version but the first).
    pub fn stale_containers(&self, mode: Stale) -> CommandSpec {
        let mut stop = vec!["xargs".to_string(), "docker".into(), "stop".into()];
        stop.extend(self.stop_args());
        let stop_v = if self.role.replicated() {
            format!(
                "docker container ls --all --filter {} --quiet | {}",
                self.replicas_filter_of_var("v"),
                words(&stop)
            )
        } else {
            format!(
                "docker container ls --all --filter {}\"$v\"'$' --quiet | {}",
                quote(&format!("name=^{}-", self.container_prefix())),
                words(&stop)
            )
        };
        let role = quote(&self.role.name);
        let body = match mode {
            Stale::Stop if !self.role.replicated() => format!(
                "{}\n{}",
                self.current_version_assign("dray_cur"),
                self.stale_stop_script("dray_cur")
            ),
            Stale::Stop => format!(
                "current=$({current} || true)\n\
                 {list} | while read v; do\n\
                 \x20 [ -n \"$v\" ] && [ \"$v\" != \"$current\" ] || continue\n\
                 \x20 {stop_v} > /dev/null 2>&1 || true\n\
                 done",
                current = self.current_running_version().to_shell(),
                list = self.list_versions().to_shell(),
            ),
            Stale::Report | Stale::ReportAndStop => format!(
                "{list} | tail -n +2 | while read v; do\n\
                 \x20 [ -n \"$v\" ] || continue\n{act}\
                 done",
                list = self.list_versions().to_shell(),
                act = if mode == Stale::ReportAndStop {
                    format!(
                        "\x20 echo \"Stopping stale container for role \"{role}\" with version $v\"\n\
                         \x20 {stop_v} > /dev/null 2>&1 || true\n"
                    )
                } else {
                    format!(
                        "\x20 echo \"Detected stale container for role \"{role}\" with version $v (use \\`dray app stale_containers --stop\\` to stop)\"\n"
                    )
                },
            ),
        };
        sh(
            format!("stale {} containers on {}", self.role.name, self.host),
            body,
        )
    }

    /// Script text stopping the role's running containers other than the version in shell
    /// variable `current` (a non-replicated role): one `docker ps`, then `docker stop` by name
    /// for each stale one, no pipeline.
    pub fn stale_stop_script(&self, current: &str) -> String {
        if self.role.replicated() {
            let stop = self.stale_containers(Stale::Stop).to_shell();
            return format!("{stop} || true");
        }
        self.stale_stop_loop(
            &format!("$({})", self.running_listing(self.names_format())),
            current,
        )
    }

    /// `docker ps` of the role's running containers in `format`, as shell words: the stale
    /// stop's listing ([`Self::stale_stop_script`], [`Self::start_reads_assign`]).
    fn running_listing(&self, format: &str) -> String {
        let mut ps = vec!["docker".to_string(), "ps".into()];
        ps.extend(self.filter_words(&[]));
        ps.extend(["--format".into(), format.into()]);
        words(&ps)
    }

    /// [`Self::stale_stop_script`] over the names already listed in shell variable `listed`
    /// ([`Self::start_reads_assign`]'s `stale_var`): `docker stop` only.
    pub fn stale_stop_of(&self, listed: &str, current: &str) -> String {
        self.stale_stop_loop(&format!("${listed}"), current)
    }

    fn stale_stop_loop(&self, names: &str, current: &str) -> String {
        let mut stop = vec!["docker".to_string(), "stop".into()];
        stop.extend(self.stop_args());
        format!(
            "for dray_n in {names}; do\n\
             \x20 dray_v=${{dray_n#{prefix}-}}\n\
             \x20 [ -n \"$dray_v\" ] && [ \"$dray_v\" != \"${current}\" ] || continue\n\
             \x20 {stop} \"$dray_n\" > /dev/null 2>&1 || true\n\
             done",
            prefix = self.container_prefix(),
            stop = words(&stop),
        )
    }

    /// `docker container prune --force` with the role's filters (`app remove`), tried again
    /// while another prune runs on the engine.
    pub fn remove_containers(&self) -> CommandSpec {
        let c = self.config;
        let prune = words(&[
            "docker".to_string(),
            "container".into(),
            "prune".into(),
            "--force".into(),
            "--filter".into(),
            format!("label=service={}", c.service),
            "--filter".into(),
            format!(
                "label=destination={}",
                c.destination.as_deref().unwrap_or("")
            ),
            "--filter".into(),
            format!("label=role={}", self.role.name),
        ]);
        sh(
            format!("remove {} containers on {}", self.role.name, self.host),
            super::script::retry_while_busy(&prune),
        )
    }

    /// `app version`: the version the role runs, or `no <role> container running`.
    pub fn version_report(&self) -> CommandSpec {
        sh(
            format!("find running {} version on {}", self.role.name, self.host),
            format!(
                "v=$({}) || exit $?\nif [ -n \"$v\" ]; then echo \"$v\"; else echo {}; fi",
                self.current_running_version().to_shell(),
                quote(&format!("no {} container running", self.role.name))
            ),
        )
    }

    /// `docker tag <repo>:<version> <repo>:latest[-D]`.
    pub fn tag_latest(&self, version: &str) -> CommandSpec {
        tag_latest(self.config, version, self.host)
    }

    /// `docker ps` with the role's filters (`app details`).
    pub fn info(&self) -> CommandSpec {
        CommandSpec::new(
            format!("show {} details on {}", self.role.name, self.host),
            "docker",
        )
        .arg("ps")
        .args(self.filter_words(&[]))
    }

    /// `docker container ls --all` with the role's filters (`app containers`).
    pub fn list_containers(&self) -> CommandSpec {
        CommandSpec::new(
            format!("list {} containers on {}", self.role.name, self.host),
            "docker",
        )
        .args(["container", "ls", "--all"])
        .args(self.filter_words(&[]))
    }

    /// Logs of the current container (or `--container-id`), as `app logs` reads them.
    pub fn logs(&self, opts: &LogsOptions) -> CommandSpec {
        let source = match &opts.container_id {
            Some(id) => format!("echo {}", quote(id)),
            None => self.current_container_script(&["--quiet"]),
        };
        let mut logs = vec!["xargs".to_string(), "docker".into(), "logs".into()];
        if opts.timestamps {
            logs.push("--timestamps".into());
        }
        if let Some(since) = &opts.since {
            logs.extend(["--since".into(), since.clone()]);
        }
        if let Some(lines) = opts.lines {
            logs.extend(["--tail".into(), lines.to_string()]);
        }
        if opts.follow {
            logs.push("--follow".into());
        }
        let mut grep = String::new();
        if let Some(pattern) = &opts.grep {
            grep.push_str(&format!(" | grep {}", quote(pattern)));
            if let Some(o) = opts
                .grep_options
                .as_deref()
                .filter(|o| !o.trim().is_empty())
            {
                grep.push(' ');
                grep.push_str(o);
            }
        }
        if self.role.replicated() && opts.container_id.is_none() {
            return self.replicas_logs(&logs[1..], &grep, opts.follow);
        }
        let script = format!("{source} | {} 2>&1{grep}", words(&logs));
        sh(
            format!("read {} logs on {}", self.role.name, self.host),
            script,
        )
    }

    /// Logs of every running replica of the current version, each line prefixed with its
    /// container's name (`--follow`: all of them at once); exit 1 when none runs.
    fn replicas_logs(&self, logs: &[String], grep: &str, follow: bool) -> CommandSpec {
        let each = format!(
            "{} \"$n\" 2>&1{grep} | while IFS= read -r l; do printf '%s %s\\n' \"$n\" \"$l\"; done",
            words(logs)
        );
        let (each, end) = if follow {
            (format!("{{ {each}; }} &"), "; wait")
        } else {
            (each, "")
        };
        sh(
            format!("read {} logs on {}", self.role.name, self.host),
            format!(
                "v=$({current}); [ -n \"$v\" ] || exit 1\n\
                 docker ps --filter {filter} --format '{{{{.Names}}}}' | {{ while read n; do\n{each}\ndone{end}; }}",
                current = self.current_running_version().to_shell(),
                filter = self.replicas_filter_of_var("v"),
            ),
        )
    }

    /// `app exec` in a new container: `docker run --rm --name <exec name> --network kamal <clear
    /// env> --env-file … <exec env> <logging> <volumes> <options> IMG CMD`.
    pub fn exec_new(&self, version: &str, hex6: &str, opts: &ExecOptions) -> CommandSpec {
        let mut cmd = CommandSpec::new(
            format!("exec in new {} container on {}", self.role.name, self.host),
            "docker",
        )
        .arg("run");
        cmd = interactive_arg(cmd, opts.interactive);
        cmd = cmd
            .arg(if opts.detach { "--detach" } else { "--rm" })
            .arg("--name")
            .arg(self.exec_container_name(version, hex6))
            .args(["--network", "kamal"]);
        cmd = self.clear_env_args(cmd);
        cmd = cmd.arg("--env-file").arg(self.env_file_path());
        cmd = env_pairs(cmd, &opts.env);
        cmd = logging_args(cmd, &self.role.logging);
        cmd = self.volume_args(cmd);
        cmd = option_args(cmd, &self.role.options);
        cmd.arg(self.image(version)).arg_raw(&opts.command)
    }

    /// `app exec --reuse`: `docker exec [--env K=v] <name> CMD`.
    pub fn exec_existing(&self, version: &str, opts: &ExecOptions) -> CommandSpec {
        self.exec_in(&self.container_name(version), opts)
    }

    /// `docker exec [--env K=v] <name> CMD` in the container `name`.
    pub fn exec_in(&self, name: &str, opts: &ExecOptions) -> CommandSpec {
        let mut cmd = CommandSpec::new(
            format!("exec in {} container on {}", self.role.name, self.host),
            "docker",
        )
        .arg("exec");
        cmd = interactive_arg(cmd, opts.interactive);
        cmd = env_pairs(cmd, &opts.env);
        cmd.arg(name).arg_raw(&opts.command)
    }

    /// Clear env of the role on this host: `--env KEY=value` (expanding), bare `--env KEY` for
    /// a blank value as Kamal does (Ruby `present?`).
    fn clear_env_args(&self, cmd: CommandSpec) -> CommandSpec {
        let env = self.config.env_for(self.role, self.host);
        env_pairs(cmd, &env.clear)
    }

    /// Root `volumes`, unquoted as Kamal passes them.
    fn volume_args(&self, mut cmd: CommandSpec) -> CommandSpec {
        for volume in &self.config.volumes {
            cmd = cmd.arg("--volume").arg_raw(volume);
        }
        cmd
    }

    /// `$PWD/.kamal/apps/<A>/assets/volumes/<R>-<V>:<asset_path>[:<options>]` for proxy roles
    /// with an `asset_path`.
    fn asset_volume(&self, version: &str) -> Option<String> {
        let asset_path = self.role.asset_path.as_deref()?;
        if asset_path.is_empty() || !self.role.runs_proxy() {
            return None;
        }
        let host_dir = format!(
            ".kamal/apps/{}/assets/volumes/{}-{}",
            self.config.service_and_destination(),
            self.role.name,
            version
        );
        Some(format!(
            "\"$PWD\"/{}",
            quote(&format!("{host_dir}:{asset_path}"))
        ))
    }

    /// `service`, `role`, `destination` then root and role labels; a custom label with a default
    /// key replaces it in place (Ruby `Hash#merge`).
    fn labels(&self) -> Vec<(String, Option<String>)> {
        let mut labels: Vec<(String, Option<String>)> = vec![
            ("service".into(), Some(self.config.service.clone())),
            ("role".into(), Some(self.role.name.clone())),
            ("destination".into(), self.config.destination.clone()),
        ];
        for (k, v) in &self.role.labels {
            match labels.iter_mut().find(|(key, _)| key == k) {
                Some(existing) => existing.1 = Some(v.clone()),
                None => labels.push((k.clone(), Some(v.clone()))),
            }
        }
        labels
    }
}

/// `docker tag <repo>:<version> <repo>:latest[-D]` on `host`.
pub fn tag_latest(config: &Config, version: &str, host: &str) -> CommandSpec {
    CommandSpec::new(format!("tag latest image on {host}"), "docker")
        .arg("tag")
        .arg(format!("{}:{}", config.repository, version))
        .arg(format!("{}:{}", config.repository, config.latest_tag()))
}

/// `docker image prune --all --force --filter label=service=S` (`app remove`), tried again
/// while another prune runs on the engine.
pub fn remove_images(config: &Config, host: &str) -> CommandSpec {
    let prune = words(&[
        "docker",
        "image",
        "prune",
        "--all",
        "--force",
        "--filter",
        &format!("label=service={}", config.service),
    ]);
    sh(
        format!("remove images on {host}"),
        super::script::retry_while_busy(&prune),
    )
}

/// `docker image ls <repo>` (`app images`).
pub fn list_images(config: &Config, host: &str) -> CommandSpec {
    CommandSpec::new(format!("list images on {host}"), "docker")
        .args(["image", "ls"])
        .arg(&config.repository)
}

/// `docker container ls --all` of the service's containers of every role (Kamal's
/// `KAMAL.app.list_containers`: no role filter), once per host.
pub fn list_service_containers(config: &Config, host: &str) -> CommandSpec {
    CommandSpec::new(format!("list the app containers on {host}"), "docker")
        .args(["container", "ls", "--all"])
        .args([
            "--filter".to_string(),
            format!("label=service={}", config.service),
        ])
        .args([
            "--filter".to_string(),
            format!(
                "label=destination={}",
                config.destination.as_deref().unwrap_or("")
            ),
        ])
}

/// The container hostname Kamal sets: the host's first 51 characters without a trailing `.`,
/// then `-<hex12>` (6 random bytes in hex).
pub fn container_hostname(host: &str, hex12: &str) -> String {
    let short: String = host.chars().take(51).collect();
    let short = short.strip_suffix('.').unwrap_or(&short);
    format!("{short}-{hex12}")
}

/// What [`App::stale_containers`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// Stop every running container but the current one, silently.
    Stop,
    /// Say which are stale.
    Report,
    /// Say which are stale and stop them.
    ReportAndStop,
}

/// The role's `restart` option, else `unless-stopped`.
fn restart_policy(role: &Role) -> String {
    role.options
        .iter()
        .find(|(k, _)| k == "restart")
        .and_then(|(_, v)| match v {
            OptionValue::Value(s) => Some(s.clone()),
            OptionValue::List(l) => l.first().cloned(),
            OptionValue::Flag(_) => None,
        })
        .unwrap_or_else(|| "unless-stopped".to_string())
}

/// Whether Ruby's `blank?` holds: empty or whitespace only.
pub(crate) fn is_blank(s: &str) -> bool {
    s.chars().all(char::is_whitespace)
}

/// `--env KEY=value` per pair (expanding), bare `--env KEY` when the value is blank.
fn env_pairs(cmd: CommandSpec, pairs: &[(String, String)]) -> CommandSpec {
    keyed_pairs(cmd, "--env", pairs)
}

/// `<flag> KEY=value` per pair (expanding), bare `<flag> KEY` when the value is blank.
fn keyed_pairs(mut cmd: CommandSpec, flag: &str, pairs: &[(String, String)]) -> CommandSpec {
    for (k, v) in pairs {
        cmd = cmd.arg(flag);
        cmd = if is_blank(v) {
            cmd.arg(k)
        } else {
            cmd.arg_expanding(format!("{k}={v}"))
        };
    }
    cmd
}

/// `-i`/`-it`.
fn interactive_arg(cmd: CommandSpec, interactive: Interactive) -> CommandSpec {
    match interactive {
        Interactive::No => cmd,
        Interactive::Stdin => cmd.arg("-i"),
        Interactive::Tty => cmd.arg("-it"),
    }
}

/// `--log-driver D --log-opt k=v…`, or `--log-opt max-size=10m` when neither is set.
pub(crate) fn logging_args(mut cmd: CommandSpec, logging: &Logging) -> CommandSpec {
    let driver = logging.driver.as_deref().filter(|d| !is_blank(d));
    if driver.is_none() && logging.options.is_empty() {
        return cmd.arg("--log-opt").arg_expanding("max-size=10m");
    }
    if let Some(d) = driver {
        cmd = cmd.arg("--log-driver").arg_expanding(d);
    }
    keyed_pairs(cmd, "--log-opt", &logging.options)
}

/// Docker options in order, without `restart`: `true` → `--key`, a value → `--key value`
/// (expanding, as Kamal escapes it), a list → repeated; `false` is left out (Kamal would pass the
/// word `false`, which docker then takes as the image).
pub(crate) fn option_args(mut cmd: CommandSpec, options: &[(String, OptionValue)]) -> CommandSpec {
    for (key, value) in options.iter().filter(|(k, _)| k != "restart") {
        let flag = format!("--{key}");
        match value {
            OptionValue::Flag(true) => cmd = cmd.arg(flag),
            OptionValue::Flag(false) => {}
            OptionValue::Value(v) => cmd = cmd.arg(flag).arg_expanding(v),
            OptionValue::List(items) => {
                for item in items {
                    cmd = cmd.arg(&flag).arg_expanding(item);
                }
            }
        }
    }
    cmd
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;

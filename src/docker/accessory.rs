//! Accessory containers (`lib/kamal/commands/accessory.rb`, `configuration/accessory.rb`): the
//! container `<service>-<name>` (or the accessory's `service`), its `docker run` in Kamal's
//! argument order, start, stop, details, logs, exec, image and container removal, and the
//! `kamal-proxy` calls of a proxied accessory (`commands/accessory/proxy.rb`).
//!
//! Host paths are Kamal's: files at `<service_name><remote>` relative to the home directory,
//! directories at `$PWD/<service_name>/<local>` unless absolute, the env file at
//! `.kamal/apps/<service>[-<dest>]/env/accessories/<name>.env`.

use crate::command::CommandSpec;
use crate::config::model::{Accessory, Config};
use crate::shell::quote;

use super::accessory_paths::path_volume;
pub use super::accessory_paths::{
    chmod, chown, directory_host_path, dirname, env_directory, env_file, file_host_path,
    make_directory, write_file, HostPath,
};
use super::app::{is_blank, logging_args, option_args};
use super::script::{sh, words};

/// Accessory commands for one accessory on one host.
#[derive(Debug, Clone, Copy)]
pub struct Acc<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// The accessory.
    pub acc: &'a Accessory,
    /// The host the commands run on (purposes, `KAMAL_HOST`).
    pub host: &'a str,
}

impl<'a> Acc<'a> {
    /// Commands for `acc` on `host`.
    pub fn new(config: &'a Config, acc: &'a Accessory, host: &'a str) -> Self {
        Acc { config, acc, host }
    }

    /// The container's name (and `service` label): the accessory's `service_name`.
    pub fn service_name(&self) -> &'a str {
        &self.acc.service
    }

    fn docker(&self, what: &str) -> CommandSpec {
        CommandSpec::new(
            format!("{what} accessory {} on {}", self.acc.name, self.host),
            "docker",
        )
    }

    /// The `port` as Kamal publishes it: `N` → `N:N`, anything with `:` as written.
    pub fn publish(&self) -> Option<String> {
        let port = self.acc.port.as_deref()?;
        Some(if port.contains(':') {
            port.to_string()
        } else {
            format!("{port}:{port}")
        })
    }

    /// The `restart` option, else `unless-stopped`.
    fn restart_policy(&self) -> String {
        use crate::config::model::OptionValue;
        self.acc
            .options
            .iter()
            .find(|(k, _)| k == "restart")
            .and_then(|(_, v)| match v {
                OptionValue::Value(s) => Some(s.clone()),
                OptionValue::List(l) => l.first().cloned(),
                OptionValue::Flag(_) => None,
            })
            .unwrap_or_else(|| "unless-stopped".to_string())
    }

    /// Clear env (`--env K=v`, expanding; bare `--env K` when blank), then the env file.
    fn env_args(&self, mut cmd: CommandSpec) -> CommandSpec {
        for (k, v) in &self.acc.env.clear {
            cmd = cmd.arg("--env");
            cmd = if is_blank(v) {
                cmd.arg(k)
            } else {
                cmd.arg_expanding(format!("{k}={v}"))
            };
        }
        cmd.arg("--env-file")
            .arg(env_file(self.config, &self.acc.name))
    }

    /// `volumes` (unquoted, as Kamal passes them), then files, then directories.
    fn volume_args(&self, mut cmd: CommandSpec) -> CommandSpec {
        for v in &self.acc.volumes {
            cmd = cmd.arg("--volume").arg_raw(v);
        }
        for f in &self.acc.files {
            let host = HostPath::Home(file_host_path(self.acc, f));
            cmd = path_volume(&host, &f.remote, f.options.as_deref()).push(cmd.arg("--volume"));
        }
        for d in &self.acc.directories {
            let host = directory_host_path(self.acc, d);
            cmd = path_volume(&host, &d.remote, d.options.as_deref()).push(cmd.arg("--volume"));
        }
        cmd
    }

    /// `--label service=<service_name>` then the accessory's labels (a `service` label replaces
    /// the default in place, as Ruby's `Hash#merge`).
    fn label_args(&self, mut cmd: CommandSpec) -> CommandSpec {
        let mut labels: Vec<(String, String)> = vec![("service".into(), self.acc.service.clone())];
        for (k, v) in &self.acc.labels {
            match labels.iter_mut().find(|(key, _)| key == k) {
                Some(existing) => existing.1 = v.clone(),
                None => labels.push((k.clone(), v.clone())),
            }
        }
        for (k, v) in labels {
            cmd = cmd.arg("--label");
            cmd = if is_blank(&v) {
                cmd.arg(k)
            } else {
                cmd.arg_expanding(format!("{k}={v}"))
            };
        }
        cmd
    }

    /// `docker run --name S --detach --restart P --network N <logging> [--publish P] --env
    /// KAMAL_HOST=<host> <env> <volumes> <labels> <options> IMAGE [cmd]` (Kamal's order).
    pub fn run(&self) -> CommandSpec {
        let mut cmd = self
            .docker("run")
            .arg("run")
            .arg("--name")
            .arg(self.service_name())
            .arg("--detach")
            .arg("--restart")
            .arg(self.restart_policy())
            .arg("--network")
            .arg(&self.acc.network);
        cmd = logging_args(cmd, &self.config.logging);
        if let Some(p) = self.publish() {
            cmd = cmd.arg("--publish").arg(p);
        }
        cmd = cmd.arg("--env").arg(format!("KAMAL_HOST={}", self.host));
        cmd = self.env_args(cmd);
        cmd = self.volume_args(cmd);
        cmd = self.label_args(cmd);
        cmd = option_args(cmd, &self.acc.options);
        cmd = cmd.arg(&self.acc.image);
        match self.acc.cmd.as_deref() {
            Some(c) if !is_blank(c) => cmd.arg_raw(c),
            _ => cmd,
        }
    }

    /// `docker container start S`.
    pub fn start(&self) -> CommandSpec {
        self.docker("start")
            .args(["container", "start"])
            .arg(self.service_name())
    }

    /// `docker container stop S`.
    pub fn stop(&self) -> CommandSpec {
        self.docker("stop")
            .args(["container", "stop"])
            .arg(self.service_name())
    }

    /// `docker ps [-a] [-q] --filter label=service=S` (details; `-a -q`: does one exist).
    pub fn info(&self, all: bool, quiet: bool) -> CommandSpec {
        let mut cmd = self.docker("show").arg("ps");
        if all {
            cmd = cmd.arg("-a");
        }
        if quiet {
            cmd = cmd.arg("-q");
        }
        cmd.arg("--filter")
            .arg(format!("label=service={}", self.service_name()))
    }

    /// `docker container ls [--all] --filter name=^S$ --quiet`.
    pub fn container_id(&self, only_running: bool) -> CommandSpec {
        let mut cmd = self.docker("find").args(["container", "ls"]);
        if !only_running {
            cmd = cmd.arg("--all");
        }
        cmd.arg("--filter")
            .arg(format!("name=^{}$", self.service_name()))
            .arg("--quiet")
    }

    /// `docker logs S [--since X] [--tail N] [--timestamps] 2>&1 [| grep 'G' <options>]`; with
    /// `follow`, `docker logs S [--timestamps] --tail 10 --follow 2>&1 [| grep …]`.
    pub fn logs(&self, opts: &LogsOptions) -> CommandSpec {
        let mut w = vec![
            "docker".to_string(),
            "logs".into(),
            self.acc.service.clone(),
        ];
        if opts.follow {
            if opts.timestamps {
                w.push("--timestamps".into());
            }
            w.extend(["--tail".into(), "10".into(), "--follow".into()]);
        } else {
            if let Some(s) = &opts.since {
                w.extend(["--since".into(), s.clone()]);
            }
            if let Some(n) = opts.lines {
                w.extend(["--tail".into(), n.to_string()]);
            }
            if opts.timestamps {
                w.push("--timestamps".into());
            }
        }
        let mut script = format!("{} 2>&1", words(&w));
        if let Some(g) = &opts.grep {
            script.push_str(&format!(" | grep {}", quote(g)));
            if let Some(o) = opts.grep_options.as_deref().filter(|o| !is_blank(o)) {
                script.push(' ');
                script.push_str(o);
            }
        }
        sh(
            format!("read accessory {} logs on {}", self.acc.name, self.host),
            script,
        )
    }

    /// `docker exec [-it] S <cmd>` (`exec --reuse`).
    pub fn exec_existing(&self, command: &str, interactive: bool) -> CommandSpec {
        let mut cmd = self.docker("exec in").arg("exec");
        if interactive {
            cmd = cmd.arg("-it");
        }
        cmd.arg(self.service_name()).arg_raw(command)
    }

    /// `docker run [-it] --rm --network N <env> <volumes> <options> IMAGE <cmd>` (`exec`).
    pub fn exec_new(&self, command: &str, interactive: bool) -> CommandSpec {
        let mut cmd = self.docker("exec in new container of").arg("run");
        if interactive {
            cmd = cmd.arg("-it");
        }
        cmd = cmd.arg("--rm").arg("--network").arg(&self.acc.network);
        cmd = self.env_args(cmd);
        cmd = self.volume_args(cmd);
        cmd = option_args(cmd, &self.acc.options);
        cmd.arg(&self.acc.image).arg_raw(command)
    }

    /// `docker image pull IMAGE`.
    pub fn pull_image(&self) -> CommandSpec {
        self.docker("pull image of")
            .args(["image", "pull"])
            .arg(&self.acc.image)
    }

    /// `docker container prune --force --filter label=service=S`.
    pub fn remove_container(&self) -> CommandSpec {
        self.docker("remove container of")
            .args(["container", "prune", "--force", "--filter"])
            .arg(format!("label=service={}", self.service_name()))
    }

    /// `docker image rm --force IMAGE`.
    pub fn remove_image(&self) -> CommandSpec {
        self.docker("remove image of")
            .args(["image", "rm", "--force"])
            .arg(&self.acc.image)
    }

    /// `rm -rf S`: the files and directories under the service's directory.
    pub fn remove_service_directory(&self) -> CommandSpec {
        CommandSpec::new(
            format!(
                "remove accessory {} directory on {}",
                self.acc.name, self.host
            ),
            "rm",
        )
        .arg("-rf")
        .arg(self.service_name())
    }

    /// `rm -f .kamal/apps/A/env/accessories/<name>.env` (dray: Kamal leaves the env file).
    pub fn remove_env_file(&self) -> CommandSpec {
        CommandSpec::new(
            format!(
                "remove accessory {} env file on {}",
                self.acc.name, self.host
            ),
            "rm",
        )
        .arg("-f")
        .arg(env_file(self.config, &self.acc.name))
    }

    /// `mkdir -p .kamal/apps/A/env/accessories`.
    pub fn ensure_env_directory(&self) -> CommandSpec {
        CommandSpec::new(format!("create env directory on {}", self.host), "mkdir")
            .arg("-p")
            .arg(env_directory(self.config))
    }

    /// The env file written with mode 0600, `content` on stdin (never in argv), through a
    /// temporary file renamed into place.
    pub fn write_env_file(&self, content: crate::command::Secret) -> CommandSpec {
        let file = env_file(self.config, &self.acc.name);
        let mut cmd = write_file(
            format!(
                "upload accessory {} env file to {}",
                self.acc.name, self.host
            ),
            &file,
            Some("600"),
        );
        cmd.stdin = Some(content);
        cmd
    }

    /// `docker rename S S_replaced_<hex16>` of the container `id` (the zero-downtime reboot of
    /// a proxied accessory keeps it serving while its successor starts).
    pub fn rename(&self, id: &str, hex16: &str) -> CommandSpec {
        self.docker("set aside the container of")
            .arg("rename")
            .arg(id)
            .arg(format!("{}_replaced_{hex16}", self.service_name()))
    }

    /// Stop every running container of the service but `keep` (a container id, or empty for
    /// all): the old one after a zero-downtime reboot, and any a failed reboot left serving.
    pub fn stop_others(&self, keep: &str) -> CommandSpec {
        let ps = words(&[
            "docker",
            "ps",
            "-q",
            "--filter",
            &format!("label=service={}", self.service_name()),
        ]);
        let keep = if keep.is_empty() {
            String::new()
        } else {
            format!(" | {{ grep -v -x {} || true; }}", quote(keep))
        };
        sh(
            format!(
                "stop the other containers of accessory {} on {}",
                self.acc.name, self.host
            ),
            format!("{ps}{keep} | xargs -r docker container stop"),
        )
    }

    /// `docker exec kamal-proxy kamal-proxy deploy S --target=<cid>:<app_port> …`.
    pub fn proxy_deploy(&self, target: &str, version: &str) -> Option<CommandSpec> {
        let proxy = self.acc.proxy.as_ref()?;
        Some(
            self.docker("route to")
                .args([
                    "exec",
                    super::proxy::CONTAINER_NAME,
                    "kamal-proxy",
                    "deploy",
                ])
                .arg(self.service_name())
                .args(super::proxy::deploy_args(
                    self.config,
                    proxy,
                    None,
                    target,
                    version,
                )),
        )
    }

    /// `docker exec kamal-proxy kamal-proxy remove S`.
    pub fn proxy_remove(&self) -> CommandSpec {
        self.docker("remove the proxy route of")
            .args([
                "exec",
                super::proxy::CONTAINER_NAME,
                "kamal-proxy",
                "remove",
            ])
            .arg(self.service_name())
    }
}

/// Options of `accessory logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsOptions {
    /// `--timestamps` (default; `-T` leaves it out).
    pub timestamps: bool,
    /// `--since`.
    pub since: Option<String>,
    /// `--tail` (the CLI defaults it to 100 unless since or grep is set).
    pub lines: Option<u64>,
    /// `grep` pattern, one word.
    pub grep: Option<String>,
    /// Extra grep options, unquoted as Kamal passes them.
    pub grep_options: Option<String>,
    /// `--follow`.
    pub follow: bool,
}

#[cfg(test)]
#[path = "accessory_tests.rs"]
mod tests;

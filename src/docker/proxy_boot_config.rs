//! Kamal's deprecated `proxy boot_config set|get|reset` files (`lib/kamal/cli/proxy.rb`,
//! `lib/kamal/commands/proxy.rb`): `.kamal/proxy/{options,image,image_version,run_command}`,
//! which kamal-proxy's legacy boot (no `proxy.run`) reads (see [`super::proxy::run`]).

use crate::command::CommandSpec;

use super::proxy::MINIMUM_VERSION;
use super::script::sh;

/// The directory of the files.
pub const DIRECTORY: &str = ".kamal/proxy";
/// The four files, in Kamal's order.
pub const FILES: [&str; 4] = ["options", "image", "image_version", "run_command"];
/// Kamal's default boot options.
pub const DEFAULT_OPTIONS: &str = "--publish 80:80 --publish 443:443 --log-opt max-size=10m";
/// Kamal's default image.
pub const DEFAULT_IMAGE: &str = "basecamp/kamal-proxy";

/// What `set` writes; `None` removes the file (Kamal's default then applies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootConfig {
    /// `options`: the `docker run` options.
    pub options: Option<String>,
    /// `image`.
    pub image: Option<String>,
    /// `image_version`.
    pub image_version: Option<String>,
    /// `run_command`.
    pub run_command: Option<String>,
}

/// `mkdir -p .kamal/proxy`, then each file written (its content on stdin) or removed.
pub fn set(config: &BootConfig, host: &str) -> Vec<CommandSpec> {
    let mut out = vec![
        CommandSpec::new(format!("create the proxy directory on {host}"), "mkdir")
            .arg("-p")
            .arg(DIRECTORY),
    ];
    let values = [
        &config.options,
        &config.image,
        &config.image_version,
        &config.run_command,
    ];
    for (file, value) in FILES.iter().zip(values) {
        let path = format!("{DIRECTORY}/{file}");
        out.push(match value {
            Some(text) => sh(
                format!("write the proxy's {file} on {host}"),
                format!("cat > {path}"),
            )
            .stdin(text.clone().into_bytes()),
            None => reset_one(file, host),
        });
    }
    out
}

/// `rm .kamal/proxy/<file>` (Kamal ignores its failure).
fn reset_one(file: &str, host: &str) -> CommandSpec {
    CommandSpec::new(format!("reset the proxy's {file} on {host}"), "rm")
        .arg(format!("{DIRECTORY}/{file}"))
}

/// `reset`: every file removed.
pub fn reset(host: &str) -> Vec<CommandSpec> {
    FILES.iter().map(|f| reset_one(f, host)).collect()
}

/// `get`: `Host <host>: <options> <image>:<version> <run command>` as Kamal prints it.
pub fn get(host: &str) -> CommandSpec {
    let read = |file: &str, default: &str| {
        format!("$(cat {DIRECTORY}/{file} 2> /dev/null || echo \"{default}\")")
    };
    sh(
        format!("read the proxy boot config on {host}"),
        format!(
            "echo \"Host \"{}\": {} {}:{} {}\"",
            crate::shell::quote(host),
            read("options", DEFAULT_OPTIONS),
            read("image", DEFAULT_IMAGE),
            read("image_version", MINIMUM_VERSION),
            read("run_command", "")
        ),
    )
}

/// Kamal's `publish_args`: `--publish [ip:]http:80 --publish [ip:]https:443` per bind address.
pub fn publish_args(http: u16, https: u16, bind_ips: &[String]) -> Vec<String> {
    let ips: Vec<Option<&str>> = if bind_ips.is_empty() {
        vec![None]
    } else {
        bind_ips.iter().map(|i| Some(i.as_str())).collect()
    };
    let mut out = Vec::new();
    for ip in ips {
        let ip = ip.map(|i| {
            if i.contains(':') {
                format!("[{i}]:")
            } else {
                format!("{i}:")
            }
        });
        let ip = ip.unwrap_or_default();
        out.extend([
            "--publish".to_string(),
            format!("{ip}{http}:80"),
            "--publish".to_string(),
            format!("{ip}{https}:443"),
        ]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_writes_on_stdin_and_resets_defaults() {
        let cmds = set(
            &BootConfig {
                options: Some("--log-opt max-size=10m --label=x".into()),
                image: None,
                image_version: Some("v0.9.3".into()),
                run_command: None,
            },
            "vm1",
        );
        let lines: Vec<String> = cmds.iter().map(|c| c.to_shell()).collect();
        assert_eq!(
            lines,
            [
                "mkdir -p .kamal/proxy",
                "sh -c 'cat > .kamal/proxy/options'",
                "rm .kamal/proxy/image",
                "sh -c 'cat > .kamal/proxy/image_version'",
                "rm .kamal/proxy/run_command",
            ]
        );
        assert!(cmds[1].stdin.is_some());
        assert_eq!(
            publish_args(8080, 8443, &["10.0.0.1".into(), "::1".into()]).join(" "),
            "--publish 10.0.0.1:8080:80 --publish 10.0.0.1:8443:443 --publish [::1]:8080:80 --publish [::1]:8443:443"
        );
        assert_eq!(
            get("vm1").to_shell(),
            "sh -c 'echo \"Host \"vm1\": $(cat .kamal/proxy/options 2> /dev/null || echo \"--publish 80:80 --publish 443:443 --log-opt max-size=10m\") $(cat .kamal/proxy/image 2> /dev/null || echo \"basecamp/kamal-proxy\"):$(cat .kamal/proxy/image_version 2> /dev/null || echo \"v0.9.2\") $(cat .kamal/proxy/run_command 2> /dev/null || echo \"\")\"'"
        );
    }
}

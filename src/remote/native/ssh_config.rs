//! OpenSSH's client configuration read in-process: what `ssh -G <host>` would print for the
//! settings the native client reads, without starting an `ssh` per host (at 200 hosts those
//! runs were more than half of a native deploy's CPU, docs/benchmarks.md).
//!
//! Only configurations whose meaning is certain are read here; anything else is left to
//! OpenSSH (`ssh -G` per host, as before), so a host is never connected with settings other
//! than OpenSSH's own:
//! - `Host` blocks (patterns with `*`, `?` and `!`), matched case-sensitively against the host
//!   name as given (the host name itself is then lowercased), as `ssh` does; `Include` (a `*`/`?` glob in the last path component, relative
//!   paths under `~/.ssh`, as for the file given with `ssh -F`), inline where it stands;
//! - the first value of each keyword wins; `IdentityFile`s accumulate (duplicates dropped);
//!   the command line's `-l`, `-p`, `-o` and `-J` come before every file;
//! - the keywords in [`keyword`]: those the native client reads, and a few that change nothing
//!   for it. A `Match`, a `%` token or `${VAR}` in a value, a `+`/`-`/`^` algorithm list, a
//!   keyword not listed, or a value not understood, sends the whole run to `ssh -G` (with the
//!   reason, for `-v`).
//!
//! OpenSSH's defaults come from `ssh -F /dev/null -G` (once per run); what a file sets is laid
//! over them, as `ssh -G` does. The unit tests compare the result with the real `ssh -G`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::resolved::GOutput;
pub use crate::remote::ssh_options::CommandLine;
use crate::shell::wildcard;

/// Include depth OpenSSH allows.
const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    /// `Host` patterns.
    Host(Vec<String>),
    /// The files of an `Include`, read.
    Include(Vec<File>),
    /// A keyword (`ssh -G`'s lowercase name) and its value as `ssh -G` prints it.
    Set(&'static str, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct File {
    lines: Vec<Line>,
}

/// A run's ssh configuration, read once; [`Config::resolve`] answers for each host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    root: File,
}

impl Config {
    /// Read `path` (the file `ssh -F` is given) and every file it includes. `Err`: why it is
    /// left to `ssh -G` (named `file:line`).
    pub fn read(path: &Path) -> Result<Config, String> {
        Ok(Config {
            root: read_file(path, 0)?,
        })
    }

    /// What `ssh -G host` prints with `command_line`, over OpenSSH's `defaults`.
    pub fn resolve(&self, host: &str, command_line: &CommandLine, defaults: &GOutput) -> GOutput {
        let mut set = Settings::default();
        if let Some(user) = &command_line.user {
            set.first("user", user.clone());
        }
        if let Some(port) = command_line.port {
            set.first("port", port.to_string());
        }
        if let Some(t) = command_line.connect_timeout {
            set.first("connecttimeout", t.to_string());
        }
        if let Some(t) = command_line.alive_interval {
            set.first("serveraliveinterval", t.to_string());
        }
        if let Some(jump) = &command_line.jump {
            set.first("proxyjump", jump.clone());
        }
        let mut active = true;
        walk(&self.root, host, &mut active, false, &mut set);

        // OpenSSH's default for a batch mode: a keepalive every 5 minutes.
        if set
            .values
            .get("batchmode")
            .is_some_and(|v| v.first().is_some_and(|b| b == "yes"))
        {
            set.first("serveraliveinterval", "300".into());
        }
        let mut out = defaults.clone();
        let mut put = |key: &str, values: Vec<String>| {
            out.0.insert(key.to_string(), values);
        };
        put("host", vec![host.to_string()]);
        if !set.values.contains_key("hostname") {
            put("hostname", vec![host.to_ascii_lowercase()]);
        }
        for (key, values) in set.values {
            put(key, values);
        }
        out
    }
}

#[derive(Default)]
struct Settings {
    values: HashMap<&'static str, Vec<String>>,
}

impl Settings {
    fn first(&mut self, key: &'static str, value: String) {
        if key == "identityfile" {
            let files = self.values.entry(key).or_default();
            if !files.contains(&value) {
                files.push(value);
            }
        } else {
            self.values.entry(key).or_insert_with(|| vec![value]);
        }
    }
}

/// OpenSSH's reading: `active` is whether the lines apply (the last `Host` matched). Each file
/// of an `Include` starts as the `Include` line stood, and after them `active` is as before;
/// an `Include` in lines that do not apply is read with nothing in it matching.
fn walk(file: &File, host: &str, active: &mut bool, never: bool, set: &mut Settings) {
    for line in &file.lines {
        match line {
            Line::Host(patterns) => *active = !never && host_matches(host, patterns),
            Line::Include(files) => {
                let before = *active;
                for f in files {
                    *active = before;
                    walk(f, host, active, never || !before, set);
                }
                *active = before;
            }
            Line::Set(key, value) if *active => set.first(key, value.clone()),
            Line::Set(..) => {}
        }
    }
}

/// A `Host` line: a negated pattern that matches excludes the host; otherwise any pattern.
fn host_matches(host: &str, patterns: &[String]) -> bool {
    let mut any = false;
    for p in patterns {
        if let Some(negated) = p.strip_prefix('!') {
            if wildcard(negated, host) {
                return false;
            }
        } else if wildcard(p, host) {
            any = true;
        }
    }
    any
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn read_file(path: &Path, depth: usize) -> Result<File, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot be read here: {e}", path.display()))?;
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let at = || format!("{}:{}", path.display(), i + 1);
        let Some((keyword, args)) = split_line(raw).map_err(|why| format!("{}: {why}", at()))?
        else {
            continue;
        };
        let line = match keyword.as_str() {
            "host" => Line::Host(args),
            "match" => return Err(format!("{}: `Match`", at())),
            "include" => {
                if depth + 1 > MAX_DEPTH {
                    return Err(format!("{}: includes nested too deep", at()));
                }
                let mut files = Vec::new();
                for arg in &args {
                    for found in include_paths(arg).map_err(|why| format!("{}: {why}", at()))? {
                        files.push(read_file(&found, depth + 1)?);
                    }
                }
                Line::Include(files)
            }
            _ => match keyword_value(&keyword, &args).map_err(|why| format!("{}: {why}", at()))? {
                Some((key, value)) => Line::Set(key, value),
                // A keyword that changes nothing for the native client.
                None => continue,
            },
        };
        lines.push(line);
    }
    Ok(File { lines })
}

/// The files an `Include` argument names, sorted as `glob(3)` returns them (none: nothing).
fn include_paths(arg: &str) -> Result<Vec<PathBuf>, String> {
    let path = if let Some(rest) = arg.strip_prefix("~/") {
        home().ok_or("`~` with no $HOME")?.join(rest)
    } else if arg.starts_with('/') {
        PathBuf::from(arg)
    } else if arg.starts_with('~') {
        return Err(format!("Include {arg} (another user's home)"));
    } else {
        home()
            .ok_or("a relative Include with no $HOME")?
            .join(".ssh")
            .join(arg)
    };
    let glob = |s: &str| s.contains(['*', '?', '[']);
    let (dir, name) = match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        (Some(dir), Some(name)) => (dir, name),
        _ => return Err(format!("Include {arg}")),
    };
    if glob(&dir.display().to_string()) || name.contains('[') {
        return Err(format!(
            "Include {arg} (a pattern this reader does not expand)"
        ));
    }
    if !glob(name) {
        return Ok(if path.is_file() {
            vec![path]
        } else {
            Vec::new()
        });
    }
    let mut found: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name().to_str().is_some_and(|n| {
                    (!n.starts_with('.') || name.starts_with('.')) && wildcard(name, n)
                })
            })
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    found.sort();
    Ok(found)
}

/// A line's keyword (lowercase) and arguments; `None` for a blank line or a comment.
/// `Keyword value`, `Keyword=value` and `Keyword = value`; double or single quotes group; a
/// `#` starting an argument starts a comment.
fn split_line(raw: &str) -> Result<Option<(String, Vec<String>)>, String> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    if line.contains('\\') {
        return Err("a backslash".into());
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let keyword = line[..end].to_ascii_lowercase();
    let mut rest = line[end..].trim_start();
    if let Some(after) = rest.strip_prefix('=') {
        rest = after.trim_start();
    }
    let mut args = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        if first == '#' {
            break;
        }
        let mut arg = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            let mut closed = false;
            for c in chars.by_ref() {
                if c == first {
                    closed = true;
                    break;
                }
                arg.push(c);
            }
            if !closed {
                return Err("an unclosed quote".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                if c == '"' || c == '\'' {
                    return Err("a quote inside an argument".into());
                }
                arg.push(c);
                chars.next();
            }
        }
        args.push(arg);
    }
    Ok(Some((keyword, args)))
}

fn yes_no(keyword: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(format!("{keyword} {value}")),
    }
}

/// A keyword's name in `ssh -G` and its value as `ssh -G` prints it; `Ok(None)`: a keyword
/// that changes nothing for the native client; `Err`: left to `ssh -G`.
fn keyword_value(keyword: &str, args: &[String]) -> Result<Option<(&'static str, String)>, String> {
    let one = || -> Result<String, String> {
        match args {
            [value] if !value.contains('%') && !value.contains("${") => Ok(value.clone()),
            [value] => Err(format!("{keyword} {value} (a token)")),
            _ => Err(format!("{keyword} with {} values", args.len())),
        }
    };
    let number = || -> Result<String, String> {
        let v = one()?;
        v.parse::<u64>()
            .map(|n| n.to_string())
            .map_err(|_| format!("{keyword} {v}"))
    };
    let flag = |yes: &'static str, no: &'static str| -> Result<String, String> {
        let v = one()?;
        Ok(if yes_no(keyword, &v)? { yes } else { no }.to_string())
    };
    let key = |name: &'static str, value: String| Ok(Some((name, value)));
    match keyword {
        "hostname" => key("hostname", one()?.to_ascii_lowercase()),
        "user" => key("user", one()?),
        "port" => {
            let v = one()?;
            match v.parse::<u16>() {
                Ok(p) if p > 0 => key("port", p.to_string()),
                _ => Err(format!("Port {v}")),
            }
        }
        "identityfile" => key("identityfile", one()?),
        "identitiesonly" => key("identitiesonly", flag("yes", "no")?),
        "identityagent" => key("identityagent", one()?),
        "proxyjump" => key("proxyjump", one()?),
        "kexalgorithms" => {
            let v = one()?;
            if v.starts_with(['+', '-', '^']) {
                return Err(format!("KexAlgorithms {v} (a change to the default list)"));
            }
            key("kexalgorithms", v)
        }
        "userknownhostsfile" | "globalknownhostsfile" => {
            if args.is_empty() || args.iter().any(|a| a.contains('%') || a.contains("${")) {
                return Err(format!("{keyword} {}", args.join(" ")));
            }
            let name = if keyword == "userknownhostsfile" {
                "userknownhostsfile"
            } else {
                "globalknownhostsfile"
            };
            key(name, args.join(" "))
        }
        "hostkeyalias" => key("hostkeyalias", one()?),
        "stricthostkeychecking" => {
            let v = one()?;
            let printed = match v.to_ascii_lowercase().as_str() {
                "yes" | "true" => "true",
                "no" | "false" | "off" => "false",
                "accept-new" => "accept-new",
                "ask" => "ask",
                _ => return Err(format!("StrictHostKeyChecking {v}")),
            };
            key("stricthostkeychecking", printed.to_string())
        }
        "connecttimeout" => key("connecttimeout", number()?),
        "serveraliveinterval" => key("serveraliveinterval", number()?),
        "serveralivecountmax" => key("serveralivecountmax", number()?),
        // In batch mode OpenSSH's keepalive default is 300 s (see `Config::resolve`).
        "batchmode" => key("batchmode", flag("yes", "no")?),
        "bindaddress" => key("bindaddress", one()?),
        "pubkeyauthentication" => key("pubkeyauthentication", flag("true", "false")?),
        // Only their `no` leaves the native client able to honour the host.
        "forwardagent"
        | "gssapiauthentication"
        | "forwardx11"
        | "hostbasedauthentication"
        | "permitlocalcommand"
        | "enablesshkeysign"
        | "verifyhostkeydns"
        | "controlmaster" => {
            let v = one()?;
            if yes_no(keyword, &v)? {
                Err(format!("{keyword} {v}"))
            } else {
                Ok(None)
            }
        }
        // Nothing the native client does depends on these.
        "loglevel"
        | "hashknownhosts"
        | "passwordauthentication"
        | "kbdinteractiveauthentication"
        | "challengeresponseauthentication"
        | "numberofpasswordprompts"
        | "tcpkeepalive"
        | "controlpath"
        | "controlpersist"
        | "checkhostip"
        | "visualhostkey"
        | "escapechar"
        | "updatehostkeys" => {
            if args.is_empty() {
                return Err(format!("{keyword} with no value"));
            }
            Ok(None)
        }
        other => Err(format!("the keyword `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::native::resolved;

    fn g(args: &[&str]) -> GOutput {
        let out = std::process::Command::new("ssh")
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("OpenSSH's `ssh` runs (scripts/test installs it)");
        assert!(
            out.status.success(),
            "ssh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        GOutput::parse(&String::from_utf8_lossy(&out.stdout))
    }

    fn defaults() -> GOutput {
        g(&["-F", "/dev/null", "-G", "dray-defaults.invalid"])
    }

    /// The keys the native client reads (resolved.rs), as the real `ssh -G` and this reader
    /// give them.
    fn compare(config: &Path, host: &str, cl: &CommandLine) {
        let mut args = cl.args(config);
        args.extend(["-G".into(), host.into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let real = g(&args);
        let d = defaults();
        let ours = Config::read(config)
            .expect("a configuration this reader reads")
            .resolve(host, cl, &d);
        for key in [
            "hostname",
            "user",
            "port",
            "identityfile",
            "identitiesonly",
            "identityagent",
            "proxyjump",
            "kexalgorithms",
            "userknownhostsfile",
            "globalknownhostsfile",
            "hostkeyalias",
            "stricthostkeychecking",
            "connecttimeout",
            "serveraliveinterval",
            "serveralivecountmax",
            "batchmode",
            "bindaddress",
            "pubkeyauthentication",
            "forwardagent",
            "gssapiauthentication",
            "controlmaster",
        ] {
            assert_eq!(
                ours.all(key),
                real.all(key),
                "{key} of {host} in {}",
                config.display()
            );
        }
        assert_eq!(
            resolved::resolve(&ours, &d),
            resolved::resolve(&real, &d),
            "{host}"
        );
    }

    #[test]
    fn settings_match_openssh_for_every_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inc = dir.path().join("conf.d");
        std::fs::create_dir(&inc).expect("dir");
        std::fs::write(
            inc.join("10-web.conf"),
            "Host web* !web9\n  HostName 10.0.0.7\n  User deploy\n  IdentityFile ~/.ssh/web\n",
        )
        .expect("write");
        std::fs::write(
            inc.join("20-all.conf"),
            "StrictHostKeyChecking accept-new\nServerAliveCountMax 5\n",
        )
        .expect("write");
        std::fs::write(inc.join(".hidden.conf"), "Port 9\n").expect("write");
        let main = dir.path().join("config");
        std::fs::write(
            &main,
            format!(
                "# a comment\nHost *\n  IdentityFile \"/k/run key\"\n  IdentitiesOnly=yes\n  LogLevel ERROR\n  Include {}/*.conf\n\
                 Host db? \"jump me\"\n  ProxyJump ops@gw:2200\n  HostKeyAlias db-alias\n  Port 2222\n  KexAlgorithms ecdh-sha2-nistp256,curve25519-sha256\n\
                 Host 127.0.2.*\n  UserKnownHostsFile /k/a /k/b\n  BindAddress 127.0.9.1\n  ConnectTimeout 3\n  BatchMode yes\n  PubkeyAuthentication yes\n  ForwardAgent no\n  GSSAPIAuthentication no\n\
                 Host *\n  StrictHostKeyChecking yes\n  IdentityFile /k/run\n  IdentityAgent none\n",
                inc.display()
            ),
        )
        .expect("write");
        let run = CommandLine {
            user: Some("root".into()),
            port: Some(22),
            connect_timeout: Some(10),
            alive_interval: Some(30),
            jump: None,
        };
        for host in [
            "web1",
            "web9",
            "WEB2",
            "db1",
            "db12",
            "127.0.2.7",
            "other.example",
        ] {
            compare(&main, host, &run);
            compare(&main, host, &CommandLine::default());
        }
        let jumped = CommandLine {
            jump: Some("root@bastion".into()),
            ..run.clone()
        };
        compare(&main, "db1", &jumped);
        compare(&main, "web1", &jumped);
    }

    #[test]
    fn an_include_in_a_block_that_does_not_apply_matches_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inner = dir.path().join("inner");
        std::fs::write(
            &inner,
            "HostName from-inner\nHost *\n  User from-inner-any\n",
        )
        .expect("write");
        let main = dir.path().join("config");
        std::fs::write(
            &main,
            format!(
                "Host nomatch\n  Include {}\nHost *\n  Port 2300\nHost a\n  Include {}\n  User after-include\n",
                inner.display(),
                inner.display()
            ),
        )
        .expect("write");
        for host in ["a", "b", "nomatch"] {
            compare(&main, host, &CommandLine::default());
        }
    }

    #[test]
    fn what_is_not_read_here_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (text, named) in [
            ("Match host x\n  User y\n", "`Match`"),
            ("Host *\n  HostName %h.example\n", "a token"),
            ("IdentityFile ${HOME}/k\n", "a token"),
            (
                "KexAlgorithms +diffie-hellman-group1-sha1\n",
                "a change to the default list",
            ),
            ("ProxyCommand nc %h %p\n", "`proxycommand`"),
            ("SendEnv LANG\n", "`sendenv`"),
            ("ForwardAgent yes\n", "forwardagent yes"),
            (
                "StrictHostKeyChecking sometimes\n",
                "StrictHostKeyChecking sometimes",
            ),
            ("ConnectTimeout 5s\n", "connecttimeout 5s"),
            ("Host \"a\n", "an unclosed quote"),
        ] {
            let path = dir.path().join("config");
            std::fs::write(&path, text).expect("write");
            let err = Config::read(&path).expect_err(text);
            assert!(err.contains(named), "{text}: {err}");
            assert!(err.contains(&format!("{}:", path.display())), "{err}");
        }
    }

    #[test]
    fn patterns_are_openssh_wildcards() {
        assert!(wildcard("*", "anything"));
        assert!(wildcard("127.0.2.*", "127.0.2.15"));
        assert!(!wildcard("127.0.2.*", "127.0.3.1"));
        assert!(wildcard("db?", "db1"));
        assert!(!wildcard("db?", "db12"));
        assert!(wildcard("*.example.*", "a.example.com"));
        assert!(!wildcard("Web*", "web1"));
        assert!(host_matches("web1", &["web*".into(), "!web9".into()]));
        assert!(!host_matches("web9", &["web*".into(), "!web9".into()]));
        assert!(!host_matches("x", &["!y".into()]));
    }
}

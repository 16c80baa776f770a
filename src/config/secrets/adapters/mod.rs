//! Kamal 2.12's secrets adapters (`lib/kamal/secrets/adapters/*.rb`), behind
//! `dray secrets fetch` and the in-process `$(kamal secrets fetch …)` of `.kamal/secrets`.
//!
//! Each adapter calls its vendor's CLI, found on the `PATH`, with the arguments, login checks and
//! environment Kamal's adapter uses, and parses its answers as Kamal does. The CLIs run without a
//! shell: item names go in argv, secret values and session tokens never do (Bitwarden's session
//! goes in `BW_SESSION`, as Kamal does; 1Password's in `OP_SESSION`, where Kamal passes
//! `--session`). Logins run with the terminal's stdin and stderr, so the vendor CLI prompts for
//! the password itself; every other call runs with stdin closed and its stderr captured for the
//! error message.
//!
//! - this file: [`fetch`], [`extract`], [`Fetched`] and its output formats, the [`Adapter`]
//!   trait, [`Vendor`] (running one CLI) and [`AdapterError`];
//! - one file per adapter; `sops.rs` is dray's own (Kamal 2.12 has none);
//! - `json.rs`: JSON that keeps the order of keys, as Ruby's.

mod aws;
mod bitwarden;
mod bitwarden_sm;
mod doppler;
mod enpass;
mod gcp;
pub(crate) mod json;
mod lastpass;
mod one_password;
mod passbolt;
mod sops;
mod test_adapter;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use json::{quote, Json};

/// Why a fetch or an extract failed: a message without secret values, a hint, an exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterError {
    /// What went wrong (lowercase, no trailing period).
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// Bad input (the command line) rather than a failure of the vault.
    pub usage: bool,
}

impl AdapterError {
    /// A failure of the vault or its CLI.
    pub(crate) fn new(message: impl Into<String>) -> AdapterError {
        AdapterError {
            message: message.into(),
            hint: None,
            usage: false,
        }
    }

    /// Bad input: a missing option, an unknown adapter.
    pub(crate) fn usage(message: impl Into<String>) -> AdapterError {
        AdapterError {
            usage: true,
            ..AdapterError::new(message)
        }
    }

    /// Attach a hint.
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> AdapterError {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for AdapterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AdapterError {}

/// What a fetch found: names and values in the order Kamal's hash has them (a name found twice
/// keeps its first position and its last value). A value is `None` where the vault answered
/// `null` (Kamal prints `null`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    entries: Vec<(String, Option<String>)>,
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(k, _)| k))
            .finish()
    }
}

impl Fetched {
    /// Insert or overwrite `name`.
    pub(crate) fn insert(&mut self, name: impl Into<String>, value: Option<String>) {
        let name = name.into();
        match self.entries.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((name, value)),
        }
    }

    /// Whether `name` was found.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == name)
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// The values found (not the `null`s), in order.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|(_, v)| v.as_deref())
    }

    /// Kamal's output: `JSON.dump` of the hash (compact, in order).
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&quote(k));
            out.push(':');
            match v {
                Some(v) => out.push_str(&quote(v)),
                None => out.push_str("null"),
            }
        }
        out.push('}');
        out
    }

    /// Kamal's `--inline` output: the JSON, shell-escaped (`Shellwords.escape`), so that a
    /// later `$(kamal secrets extract NAME $SECRETS)` splits it back into one word.
    pub fn to_inline(&self) -> String {
        shellescape(&self.to_json())
    }
}

/// Ruby's `Shellwords.escape`.
pub fn shellescape(s: &str) -> String {
    if s.is_empty() {
        return "''".to_string();
    }
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("'\n'"),
            c if c.is_ascii_alphanumeric() || "_-.,:+/@".contains(c) => out.push(c),
            c => {
                out.push('\\');
                out.push(c);
            }
        }
    }
    out
}

/// `kamal secrets extract NAME JSON`: the value of `NAME` in a fetch's JSON, else of the first
/// key ending in `/NAME`. A value that is not a string is given as JSON.
pub fn extract(name: &str, fetched_json: &str) -> Result<String, AdapterError> {
    let parsed = Json::parse(fetched_json).ok_or_else(|| {
        AdapterError::usage("the secrets given to `secrets extract` are not JSON").hint(
            "pass the output of `secrets fetch`, quoted (`$(kamal secrets extract NAME $SECRETS)` \
             in .kamal/secrets quotes it for you)",
        )
    })?;
    let Json::Object(members) = parsed else {
        return Err(AdapterError::usage(
            "the secrets given to `secrets extract` are not a JSON object",
        ));
    };
    let suffix = format!("/{name}");
    let value = members
        .iter()
        .find(|(k, _)| k == name)
        .filter(|(_, v)| *v != Json::Null)
        .or_else(|| members.iter().find(|(k, _)| k.ends_with(&suffix)))
        .map(|(_, v)| v)
        .filter(|v| **v != Json::Null);
    match value {
        Some(Json::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.dump()),
        None => Err(
            AdapterError::new(format!("could not find secret {name}")).hint(format!(
                "the fetched secrets are {}; fetch `{name}` too, or extract one of those",
                key_list(&members)
            )),
        ),
    }
}

fn key_list(members: &[(String, Json)]) -> String {
    if members.is_empty() {
        return "empty".to_string();
    }
    members
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `kamal secrets fetch` was asked.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `--adapter`.
    pub adapter: &'a str,
    /// The secrets named on the command line.
    pub secrets: &'a [String],
    /// `--account`.
    pub account: Option<&'a str>,
    /// `--from`.
    pub from: Option<&'a str>,
}

impl Request<'_> {
    /// Kamal's `prefixed_secrets`: each secret as `FROM/SECRET` when `--from` is given.
    pub(crate) fn prefixed(&self) -> Vec<String> {
        self.secrets
            .iter()
            .map(|s| match self.from {
                Some(from) => format!("{from}/{s}"),
                None => s.clone(),
            })
            .collect()
    }

    /// `--account`, which [`fetch`] checked is there when the adapter requires it.
    pub(crate) fn account(&self) -> &str {
        self.account.unwrap_or_default()
    }
}

/// The vendor CLI an adapter runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VendorCli {
    /// The executable, as found on the `PATH`.
    pub program: &'static str,
    /// Kamal's name for it, in "… is not installed".
    pub name: &'static str,
    /// Where to get it.
    pub install: &'static str,
    /// The arguments of Kamal's installed check.
    pub version_args: &'static [&'static str],
}

/// One adapter: what it needs, and how it fetches (login included, as Kamal's `login` then
/// `fetch_secrets`).
pub(crate) trait Adapter {
    /// Whether `--account` is required (Kamal's `requires_account?`).
    fn requires_account(&self) -> bool {
        true
    }
    /// The vendor CLI, `None` for Kamal's `test` adapter.
    fn cli(&self) -> Option<VendorCli>;
    /// Log in if needed and fetch `request`'s secrets.
    fn fetch(&self, vendor: &Vendor<'_>, request: &Request<'_>) -> Result<Fetched, AdapterError>;
}

/// Kamal's `Adapters.lookup`: the adapter of a name, with its aliases (`1password`, `lastpass`,
/// `gcp`, `bitwarden-sm`).
pub(crate) fn lookup(name: &str) -> Result<Box<dyn Adapter>, AdapterError> {
    let adapter: Box<dyn Adapter> = match name.to_lowercase().as_str() {
        "1password" | "one_password" => Box::new(one_password::OnePassword),
        "bitwarden" => Box::new(bitwarden::Bitwarden),
        "bitwarden-sm" | "bitwarden_secrets_manager" => {
            Box::new(bitwarden_sm::BitwardenSecretsManager)
        }
        "aws_secrets_manager" => Box::new(aws::AwsSecretsManager),
        "gcp" | "gcp_secret_manager" => Box::new(gcp::GcpSecretManager),
        "doppler" => Box::new(doppler::Doppler),
        "lastpass" | "last_pass" => Box::new(lastpass::LastPass),
        "enpass" => Box::new(enpass::Enpass),
        "passbolt" => Box::new(passbolt::Passbolt),
        "sops" => Box::new(sops::Sops),
        "test" => Box::new(test_adapter::Test),
        _ => {
            return Err(
                AdapterError::usage(format!("unknown secrets adapter: {name}")).hint(
                    "use one of 1password, bitwarden, bitwarden-sm, aws_secrets_manager, gcp, \
                 doppler, lastpass, enpass, passbolt, sops, test",
                ),
            )
        }
    };
    Ok(adapter)
}

/// Where vendor CLIs run: the environment (its `PATH` finds them) and the directory.
#[derive(Debug, Clone, Copy)]
pub struct Runner<'a> {
    /// Exactly the environment the CLIs get.
    pub env: &'a BTreeMap<String, String>,
    /// Their working directory.
    pub cwd: &'a Path,
}

/// Kamal's `Base#fetch`: the account check, the CLI's installed check, then the adapter.
pub fn fetch(runner: &Runner<'_>, request: &Request<'_>) -> Result<Fetched, AdapterError> {
    let adapter = lookup(request.adapter)?;
    if adapter.requires_account() && request.account.is_none_or(str::is_empty) {
        return Err(
            AdapterError::usage("no value provided for required options '--account'").hint(
                format!(
                    "the {} adapter needs `--account` (the account or user name)",
                    request.adapter
                ),
            ),
        );
    }
    let vendor = match adapter.cli() {
        Some(cli) => Vendor::find(runner, cli)?,
        None => Vendor {
            runner: *runner,
            program: PathBuf::new(),
            cli: None,
        },
    };
    adapter.fetch(&vendor, request)
}

/// What one run of a vendor CLI gave.
pub(crate) struct Output {
    /// It exited 0.
    pub ok: bool,
    /// Its stdout.
    pub stdout: String,
    /// `exited with status 1` and its stderr on one line (when captured).
    pub failure: String,
}

/// A vendor CLI found on the `PATH`, to run.
pub(crate) struct Vendor<'a> {
    runner: Runner<'a>,
    program: PathBuf,
    cli: Option<VendorCli>,
}

impl Vendor<'_> {
    /// Find `cli` on the runner's `PATH` and run Kamal's installed check.
    fn find<'a>(runner: &Runner<'a>, cli: VendorCli) -> Result<Vendor<'a>, AdapterError> {
        let missing = || {
            AdapterError::new(format!(
                "{} is not installed: `{}` was not found on the PATH",
                cli.name, cli.program
            ))
            .hint(format!("install it ({}) and run again", cli.install))
        };
        let path = runner.env.get("PATH").map(String::as_str).unwrap_or("");
        let program =
            which::which_in(cli.program, Some(path), runner.cwd).map_err(|_| missing())?;
        let vendor = Vendor {
            runner: *runner,
            program,
            cli: Some(cli),
        };
        let check = vendor.run(cli.version_args)?;
        if !check.ok {
            return Err(AdapterError::new(format!(
                "{} is not installed: `{} {}` {}",
                cli.name,
                cli.program,
                cli.version_args.join(" "),
                check.failure
            ))
            .hint(format!("reinstall it ({})", cli.install)));
        }
        Ok(vendor)
    }

    /// The program's name, for messages.
    pub(crate) fn program(&self) -> &str {
        self.cli.map_or("", |c| c.program)
    }

    /// The runner's environment (Doppler reads `DOPPLER_TOKEN` there).
    pub(crate) fn env(&self) -> &BTreeMap<String, String> {
        self.runner.env
    }

    /// Run with `args`, stdin closed, stderr captured.
    pub(crate) fn run(&self, args: &[&str]) -> Result<Output, AdapterError> {
        self.spawn(args, &[], false)
    }

    /// [`Vendor::run`] with extra environment variables (a session token).
    pub(crate) fn run_env(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Output, AdapterError> {
        self.spawn(args, env, false)
    }

    /// Run a login: the terminal's stdin and stderr, so the CLI prompts the user itself.
    pub(crate) fn interactive(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Output, AdapterError> {
        self.spawn(args, env, true)
    }

    fn spawn(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        interactive: bool,
    ) -> Result<Output, AdapterError> {
        let mut cmd = Command::new(&self.program);
        cmd.args(args)
            .env_clear()
            .envs(self.runner.env)
            .envs(env.iter().copied())
            .stdout(Stdio::piped());
        if interactive {
            cmd.stdin(Stdio::inherit()).stderr(Stdio::inherit());
        } else {
            cmd.stdin(Stdio::null()).stderr(Stdio::piped());
        }
        if !self.runner.cwd.as_os_str().is_empty() {
            cmd.current_dir(self.runner.cwd);
        }
        let child = cmd.spawn().map_err(|e| {
            AdapterError::new(format!("could not run `{}`: {e}", self.program.display()))
        })?;
        // A login waits for the user; any other call is bounded.
        let limit = (!interactive).then_some(CALL_TIMEOUT);
        let output = wait(child, limit).map_err(|e| {
            AdapterError::new(format!("`{} {}` {e}", self.program(), args.join(" ")))
                .hint("check the network and the vault's status, then run again")
        })?;
        let status = match output.status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_string(),
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Vendor CLIs put the cause first (sops) or last (op): every line, up to 400 characters.
        let lines: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let joined = lines.join("; ");
        let mut tail: String = joined.chars().take(400).collect();
        if tail.len() < joined.len() {
            tail.push('…');
        }
        Ok(Output {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            failure: if tail.is_empty() {
                status
            } else {
                format!("{status}: {tail}")
            },
        })
    }

    /// `stdout` parsed as JSON, or an error naming the command (never quoting its output).
    pub(crate) fn json(&self, args: &[&str], stdout: &str) -> Result<Json, AdapterError> {
        Json::parse(stdout.trim()).ok_or_else(|| {
            AdapterError::new(format!(
                "`{} {}` did not answer JSON",
                self.program(),
                args.join(" ")
            ))
            .hint(format!(
                "check that `{}` is the vendor's CLI",
                self.program()
            ))
        })
    }
}

/// The longest a vendor CLI call other than a login may take.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Wait for `child`, reading its stdout and stderr; killed past `limit`.
fn wait(
    mut child: std::process::Child,
    limit: Option<std::time::Duration>,
) -> Result<std::process::Output, String> {
    use std::io::Read;
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(format!("could not be waited for: {e}")),
        }
        if limit.is_some_and(|limit| started.elapsed() > limit) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "did not answer within {} seconds and was stopped",
                limit.map_or(0, |l| l.as_secs())
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Ok(std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Ruby's `JSON.dump` of a value as Kamal's AWS adapter stringifies it: strings as they are.
pub(crate) fn stringify(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.dump(),
    }
}

/// An error for a failed vendor call: Kamal's message, the CLI's status and stderr.
pub(crate) fn failed(message: String, output: &Output) -> AdapterError {
    AdapterError::new(format!("{message}: {}", output.failure))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_formats_are_kamals() {
        let mut f = Fetched::default();
        f.insert("b/X", Some("it's \"x\"".into()));
        f.insert("a", None);
        f.insert("b/X", Some("v w".into()));
        assert_eq!(f.to_json(), r#"{"b/X":"v w","a":null}"#);
        assert_eq!(f.to_inline(), r#"\{\"b/X\":\"v\ w\",\"a\":null\}"#);
        assert_eq!(
            super::super::inline::shellsplit(&f.to_inline()),
            Some(vec![f.to_json()])
        );
        assert_eq!(shellescape(""), "''");
        assert_eq!(shellescape("a\nb"), "a'\n'b");
        assert_eq!(format!("{f:?}"), r#"["b/X", "a"]"#);
    }

    #[test]
    fn extract_finds_the_name_or_a_key_ending_in_it() {
        let json = r#"{"abc/foo":"oof","bar":"rab","n":3}"#;
        assert_eq!(extract("foo", json), Ok("oof".to_string()));
        assert_eq!(extract("bar", json), Ok("rab".to_string()));
        assert_eq!(extract("n", json), Ok("3".to_string()));
        let err = extract("baz", json).expect_err("missing");
        assert_eq!(err.message, "could not find secret baz");
        assert_eq!(
            err.hint.as_deref(),
            Some(
                "the fetched secrets are abc/foo, bar, n; fetch `baz` too, or extract one of those"
            )
        );
        assert!(extract("a", "{oops").expect_err("not json").usage);
    }

    #[test]
    fn a_vendor_call_past_its_limit_is_stopped() {
        let child = Command::new("/bin/sh")
            .args(["-c", "echo out; sleep 5"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let started = std::time::Instant::now();
        let err = wait(child, Some(std::time::Duration::from_millis(200))).expect_err("stopped");
        assert_eq!(err, "did not answer within 0 seconds and was stopped");
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
        let child = Command::new("/bin/sh")
            .args(["-c", "echo out; echo err >&2; exit 3"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let out = wait(child, Some(CALL_TIMEOUT)).expect("output");
        assert_eq!(
            (out.status.code(), &out.stdout[..], &out.stderr[..]),
            (Some(3), &b"out\n"[..], &b"err\n"[..])
        );
    }

    #[test]
    fn lookup_knows_kamals_names_and_aliases() {
        for name in [
            "1password",
            "one_password",
            "bitwarden",
            "bitwarden-sm",
            "aws_secrets_manager",
            "gcp",
            "gcp_secret_manager",
            "doppler",
            "lastpass",
            "LastPass",
            "enpass",
            "passbolt",
            "sops",
            "test",
        ] {
            assert!(lookup(name).is_ok(), "{name}");
        }
        let err = lookup("vault").err().expect("unknown");
        assert_eq!(err.message, "unknown secrets adapter: vault");
    }

    #[test]
    fn the_test_adapter_needs_an_account_and_reverses_names() {
        let env = BTreeMap::new();
        let runner = Runner {
            env: &env,
            cwd: Path::new(""),
        };
        let secrets = vec!["foo".to_string(), "LPARENbarRPAREN".to_string()];
        let mut request = Request {
            adapter: "test",
            secrets: &secrets,
            account: None,
            from: Some("x"),
        };
        let err = fetch(&runner, &request).expect_err("account");
        assert_eq!(
            err.message,
            "no value provided for required options '--account'"
        );
        request.account = Some("me");
        let fetched = fetch(&runner, &request).expect("fetch");
        assert_eq!(
            fetched.to_json(),
            r#"{"x/foo":"oof/x","x/LPARENbarRPAREN":")rab(/x"}"#
        );
    }
}

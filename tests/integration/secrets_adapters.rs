//! `dray secrets fetch|extract|print` with every adapter, through the `dray` binary.
//!
//! The vaults (1Password, Bitwarden, AWS, Google Cloud, Doppler, LastPass, Passbolt, …) cannot
//! be reached from here, so each vendor CLI is a fake: a shell script of
//! `tests/fixtures/secrets-cli/` first on the `PATH`, which checks the exact argv it receives
//! (exit 99 on anything else) and answers with the real CLI's JSON shapes and error texts. Each
//! test then checks dray's output against Kamal's format, the calls made (`$FAKE_CLI_LOG`), and
//! that session tokens travel in the environment, never in argv.

use std::path::{Path, PathBuf};

use crate::support::dray_cmd;

/// A directory whose `bin/` holds links to some fake CLIs, and a log of their calls.
struct Fakes {
    dir: tempfile::TempDir,
    /// Whether the system's directories follow on the `PATH` (this machine has a real
    /// `gcloud` and `aws` there).
    system: bool,
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/secrets-cli")
}

impl Fakes {
    /// `bin/` with the fakes `programs` (none: only the system's tools).
    fn new(programs: &[&str]) -> Fakes {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("bin")).expect("bin");
        for program in programs {
            std::os::unix::fs::symlink(
                fixtures().join(program),
                dir.path().join("bin").join(program),
            )
            .expect("symlink");
        }
        Fakes { dir, system: true }
    }

    /// No vendor CLI at all: the `PATH` is an empty directory.
    fn none() -> Fakes {
        Fakes {
            system: false,
            ..Fakes::new(&[])
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The `PATH`: the fakes, then the system's tools (for the scripts' `sh`, `cat`, …).
    fn path_var(&self) -> String {
        let bin = self.path().join("bin");
        if self.system {
            format!("{}:/usr/bin:/bin", bin.display())
        } else {
            bin.display().to_string()
        }
    }

    /// Run `dray args` with the fakes and `env`; (exit code, stdout, stderr).
    fn dray(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let mut cmd = dray_cmd(self.path(), args);
        cmd.env_clear()
            .env("PATH", self.path_var())
            .env("HOME", self.path())
            .env("FAKE_CLI_LOG", self.path().join("calls.log"))
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null());
        let out = cmd.output().expect("run dray");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `dray secrets fetch args`, which must succeed: its stdout without the newline.
    fn fetch_ok(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let mut all = vec!["secrets", "fetch"];
        all.extend(args);
        let (code, stdout, stderr) = self.dray(&all, env);
        assert_eq!(
            code,
            0,
            "dray {all:?}:\n{stdout}\n{stderr}\ncalls:\n{}",
            self.calls()
        );
        assert!(stdout.ends_with('\n'), "{stdout:?}");
        stdout.trim_end_matches('\n').to_string()
    }

    /// `dray secrets fetch args`, which must fail: (exit code, stderr).
    fn fetch_err(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
        let mut all = vec!["secrets", "fetch"];
        all.extend(args);
        let (code, stdout, stderr) = self.dray(&all, env);
        assert_ne!(code, 0, "dray {all:?} succeeded:\n{stdout}");
        assert_eq!(stdout, "", "nothing on stdout when the fetch fails");
        assert!(
            !stderr.contains("unexpected arguments"),
            "a fake refused its argv:\n{stderr}"
        );
        (code, stderr)
    }

    /// The fakes' calls so far, one per line: `program [arg]… ENV=…`.
    fn calls(&self) -> String {
        std::fs::read_to_string(self.path().join("calls.log")).unwrap_or_default()
    }
}

#[test]
fn every_adapter_names_its_missing_cli_and_how_to_install_it() {
    let none = Fakes::none();
    for (adapter, cli, name, install) in [
        (
            "1password",
            "op",
            "1Password CLI",
            "developer.1password.com",
        ),
        ("bitwarden", "bw", "Bitwarden CLI", "bitwarden.com/help/cli"),
        (
            "bitwarden-sm",
            "bws",
            "Bitwarden Secrets Manager CLI",
            "secrets-manager-cli",
        ),
        (
            "aws_secrets_manager",
            "aws",
            "AWS CLI",
            "docs.aws.amazon.com",
        ),
        ("gcp", "gcloud", "gcloud CLI", "cloud.google.com/sdk"),
        ("doppler", "doppler", "Doppler CLI", "docs.doppler.com"),
        ("lastpass", "lpass", "LastPass CLI", "lastpass-cli"),
        ("enpass", "enpass-cli", "Enpass CLI", "enpass-cli"),
        ("passbolt", "passbolt", "Passbolt CLI", "go-passbolt-cli"),
        ("sops", "sops", "sops", "getsops/sops"),
    ] {
        let (code, err) = none.fetch_err(&["--adapter", adapter, "--account", "acme", "X"], &[]);
        assert_eq!(code, 1, "{adapter}: {err}");
        assert!(
            err.contains(&format!(
                "error: {name} is not installed: `{cli}` was not found on the PATH"
            )),
            "{adapter}: {err}"
        );
        assert!(
            err.contains("hint: install it (") && err.contains(install),
            "{adapter}: {err}"
        );
    }
    let (code, err) = none.fetch_err(&["--adapter", "vault", "X"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("error: unknown secrets adapter: vault"),
        "{err}"
    );
    let (code, err) = none.fetch_err(&["--adapter", "1password", "X"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("error: no value provided for required options '--account'"),
        "{err}"
    );
}

#[test]
fn nothing_under_secrets_is_not_implemented() {
    let none = Fakes::new(&[]);
    for args in [
        &[
            "secrets",
            "fetch",
            "--adapter",
            "test",
            "--account",
            "a",
            "x",
        ][..],
        &["secrets", "extract", "x", r#"{"x":"y"}"#],
    ] {
        let (code, stdout, stderr) = none.dray(args, &[]);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(!stderr.contains("not implemented"), "{stderr}");
        assert!(!stdout.is_empty());
    }
    let (_, out, err) = none.dray(&["secrets", "--help"], &[]);
    let help = out + &err;
    assert!(
        help.contains("fetch") && help.contains("extract") && help.contains("print"),
        "{help}"
    );
}

#[test]
fn test_adapter_fetch_and_extract_match_kamals_cli_tests() {
    let none = Fakes::new(&[]);
    assert_eq!(
        none.fetch_ok(
            &[
                "foo",
                "bar",
                "baz",
                "--account",
                "myaccount",
                "--adapter",
                "test"
            ],
            &[]
        ),
        r#"{"foo":"oof","bar":"rab","baz":"zab"}"#
    );
    assert_eq!(
        none.fetch_ok(&["-a", "test", "--account", "x", "--inline", "a b"], &[]),
        r#"\{\"a\ b\":\"b\ a\"\}"#
    );
    let extract = |name: &str, json: &str| none.dray(&["secrets", "extract", name, json], &[]);
    let json = r#"{"foo":"oof", "bar":"rab", "baz":"zab"}"#;
    assert_eq!(extract("foo", json).1, "oof\n");
    assert_eq!(
        extract("foo", r#"{"abc/foo":"oof", "bar":"rab"}"#).1,
        "oof\n"
    );
    let (code, stdout, stderr) = extract("nope", json);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert!(
        stderr.contains("error: could not find secret nope"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: the fetched secrets are foo, bar, baz"),
        "{stderr}"
    );
    let (code, _, stderr) = extract("foo", "{not json");
    assert_eq!(code, 2);
    assert!(stderr.contains("not JSON"), "{stderr}");
}

#[test]
fn onepassword_fetches_fields_items_and_signs_in_with_the_session_in_the_environment() {
    let fakes = Fakes::new(&["op"]);
    let signed_in = [("FAKE_OP_SIGNED_IN", "1")];
    assert_eq!(
        fakes.fetch_ok(
            &[
                "--adapter",
                "1password",
                "--account",
                "acme",
                "--from",
                "op://myvault/myitem",
                "section/SECRET1",
                "section/SECRET2"
            ],
            &signed_in
        ),
        r#"{"myvault/myitem/section/SECRET1":"op-value-1","myvault/myitem/section/SECRET2":"op-value-2"}"#
    );
    assert_eq!(
        fakes.fetch_ok(
            &[
                "-a",
                "1password",
                "--account",
                "acme",
                "--from",
                "myvault",
                "login"
            ],
            &signed_in
        ),
        r#"{"myvault/login":"op-login-password"}"#
    );
    assert_eq!(
        fakes.fetch_ok(
            &[
                "-a",
                "1password",
                "--account",
                "acme",
                "--from",
                "op://myvault/myitem"
            ],
            &signed_in
        ),
        r#"{"myvault/myitem/username":"admin","myvault/myitem":"op-all-password"}"#
    );

    // Not signed in: `op signin` runs; its session reaches `op item get` in OP_SESSION.
    let fakes = Fakes::new(&["op"]);
    assert_eq!(
        fakes.fetch_ok(
            &[
                "-a",
                "1password",
                "--account",
                "acme",
                "--from",
                "myvault",
                "login"
            ],
            &[("FAKE_OP_SIGNIN_OK", "1")]
        ),
        r#"{"myvault/login":"op-login-password"}"#
    );
    let calls = fakes.calls();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            "op [--version] OP_SESSION=",
            "op [account][get][--account][acme] OP_SESSION=",
            "op [signin][--account][acme][--force][--raw] OP_SESSION=",
            "op [item][get][login][--vault][myvault][--format][json][--account][acme][--fields][label=password] OP_SESSION=fake-op-session-9f8e7d",
        ],
        "{calls}"
    );

    // Sign-in refused, and an item that is not there.
    let (code, err) = fakes.fetch_err(
        &[
            "-a",
            "1password",
            "--account",
            "acme",
            "--from",
            "myvault",
            "login",
        ],
        &[],
    );
    assert_eq!(code, 1);
    // `op signin` ran on the terminal's stderr: its message is shown as it printed it.
    assert!(err.contains("[ERROR] 2026/12/01 12:00:00 authorization prompt dismissed, please try again\nerror: failed to login to 1Password: exited with status 1\n"), "{err}");
    assert!(
        err.contains("hint: sign in with `op signin --account acme`"),
        "{err}"
    );
    let (_, err) = fakes.fetch_err(
        &[
            "-a",
            "1password",
            "--account",
            "acme",
            "--from",
            "myvault",
            "missing",
        ],
        &signed_in,
    );
    assert!(err.contains("error: could not read password from missing in the myvault 1Password vault: exited with status 1: [ERROR] 2026/12/01 12:00:00 \"missing\" isn't an item"), "{err}");
}

#[test]
fn bitwarden_unlocks_with_the_session_in_bw_session_and_reads_fields_and_passwords() {
    let fakes = Fakes::new(&["bw"]);
    let locked = [("FAKE_BW_STATE", "locked")];
    assert_eq!(
        fakes.fetch_ok(
            &[
                "--adapter",
                "bitwarden",
                "--account",
                "a@b",
                "--from",
                "item",
                "A",
                "B"
            ],
            &locked
        ),
        r#"{"item/A":"bw-value-a","item/B":"bw-value-b"}"#
    );
    let calls = fakes.calls();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            "bw [--version] BW_SESSION=",
            "bw [status] BW_SESSION=",
            "bw [unlock][--raw] BW_SESSION=",
            "bw [status] BW_SESSION=fake-bw-session-1a2b3c",
            "bw [sync] BW_SESSION=fake-bw-session-1a2b3c",
            "bw [get][item][item] BW_SESSION=fake-bw-session-1a2b3c",
        ],
        "{calls}"
    );
    assert_eq!(
        fakes.fetch_ok(
            &["-a", "bitwarden", "--account", "a@b", "loginitem", "item"],
            &[]
        ),
        r#"{"loginitem":"bw-login-password","item":"bw-item-password"}"#
    );
    let (_, err) = fakes.fetch_err(&["-a", "bitwarden", "--account", "a@b", "note"], &[]);
    assert!(
        err.contains("error: item note is not a login type item and no fields were specified"),
        "{err}"
    );
    let (_, err) = fakes.fetch_err(&["-a", "bitwarden", "--account", "a@b", "item/C"], &[]);
    assert!(
        err.contains("error: could not find field C in item item in Bitwarden"),
        "{err}"
    );
    let (_, err) = fakes.fetch_err(&["-a", "bitwarden", "--account", "a@b", "missing"], &[]);
    assert!(
        err.contains(
            "error: could not read missing from Bitwarden: exited with status 1: Not found."
        ),
        "{err}"
    );
    // Not logged in: `bw login a@b` prompts (here it fails), and the fetch stops.
    let (code, err) = fakes.fetch_err(
        &["-a", "bitwarden", "--account", "a@b", "item"],
        &[("FAKE_BW_STATE", "unauthenticated")],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("error: failed to login to and unlock Bitwarden"),
        "{err}"
    );
    assert!(err.contains("hint: log in with `bw login a@b`"), "{err}");
    assert!(fakes.calls().contains("bw [login][a@b]"));
}

#[test]
fn bitwarden_secrets_manager_gets_ids_and_lists_projects() {
    let fakes = Fakes::new(&["bws"]);
    let token = [("BWS_ACCESS_TOKEN", "0.fake-token")];
    assert_eq!(
        fakes.fetch_ok(
            &[
                "--adapter",
                "bitwarden-sm",
                "11111111-aaaa",
                "22222222-bbbb"
            ],
            &token
        ),
        r#"{"DB_PASSWORD":"bws-db","API_KEY":"bws-api"}"#
    );
    assert_eq!(
        fakes.fetch_ok(&["-a", "bitwarden-sm", "all"], &token),
        r#"{"DB_PASSWORD":"bws-db","API_KEY":"bws-api"}"#
    );
    assert_eq!(
        fakes.fetch_ok(&["-a", "bitwarden-sm", "--from", "p1", "all"], &token),
        r#"{"DB_PASSWORD":"bws-db","API_KEY":"bws-api"}"#
    );
    let (_, err) = fakes.fetch_err(&["-a", "bitwarden-sm", "33333333-cccc"], &token);
    assert!(err.contains("error: could not read 33333333-cccc from Bitwarden Secrets Manager: exited with status 1: Error:; 0: Received error message from server: [404 Not Found]"), "{err}");
    let (_, err) = fakes.fetch_err(&["-a", "bitwarden-sm", "11111111-aaaa"], &[]);
    assert!(err.contains("error: could not authenticate to Bitwarden Secrets Manager: exited with status 1: Error:; 0: Access token is required"), "{err}");
    assert!(
        err.contains("hint: set a valid access token in BWS_ACCESS_TOKEN"),
        "{err}"
    );
}

#[test]
fn aws_secrets_manager_splits_json_secrets_into_keys() {
    let fakes = Fakes::new(&["aws"]);
    let creds = [("FAKE_AWS_CREDS", "1")];
    let expected = r#"{"app/db/user":"aws-user","app/db/password":"aws-db-password","app/db/port":"5432","app/token":"aws-plain-token"}"#;
    assert_eq!(
        fakes.fetch_ok(
            &[
                "--adapter",
                "aws_secrets_manager",
                "--from",
                "app",
                "db",
                "token"
            ],
            &creds
        ),
        expected
    );
    assert_eq!(
        fakes.fetch_ok(
            &[
                "-a",
                "aws_secrets_manager",
                "--account",
                "prod",
                "app/db",
                "app/token"
            ],
            &creds
        ),
        expected
    );
    let (_, err) = fakes.fetch_err(&["-a", "aws_secrets_manager", "app/db", "app/nope"], &creds);
    assert!(
        err.contains("error: app/nope: Secrets Manager can't find the specified secret."),
        "{err}"
    );
    let (_, err) = fakes.fetch_err(&["-a", "aws_secrets_manager", "app/db", "app/token"], &[]);
    assert!(err.contains("error: could not read app/db, app/token from AWS Secrets Manager: exited with status 253: Unable to locate credentials."), "{err}");
}

#[test]
fn gcp_secret_manager_reads_versions_projects_and_impersonation() {
    let fakes = Fakes::new(&["gcloud"]);
    let authed = [("FAKE_GCLOUD_AUTHED", "1")];
    assert_eq!(
        fakes.fetch_ok(&["--adapter", "gcp", "--account", "default", "db"], &authed),
        r#"{"default/db":"gcp-db-password"}"#
    );
    assert_eq!(
        fakes.fetch_ok(
            &[
                "-a",
                "gcp_secret_manager",
                "--account",
                "me@example.com|sa@proj.iam.gserviceaccount.com",
                "--from",
                "proj",
                "api/2"
            ],
            &authed
        ),
        r#"{"proj/api":"gcp-api-v2"}"#
    );
    let (_, err) = fakes.fetch_err(&["-a", "gcp", "--account", "default", "nope"], &authed);
    assert!(err.contains("error: could not read default/nope from Google Secret Manager: exited with status 1: ERROR: (gcloud.secrets.versions.access) NOT_FOUND"), "{err}");
    let (_, err) = fakes.fetch_err(&["-a", "gcp", "--account", "default", "db"], &[]);
    assert!(err.contains("error: could not login to gcloud"), "{err}");
    assert!(fakes.calls().contains("gcloud [auth][login]"));
}

#[test]
fn doppler_uses_project_and_config_unless_a_service_token_is_set() {
    let fakes = Fakes::new(&["doppler"]);
    let expected = r#"{"DB_PASSWORD":"doppler-db","API_KEY":"doppler-api"}"#;
    assert_eq!(
        fakes.fetch_ok(
            &[
                "--adapter",
                "doppler",
                "--from",
                "app/prd",
                "DB_PASSWORD",
                "API_KEY"
            ],
            &[("FAKE_DOPPLER_AUTHED", "1")]
        ),
        expected
    );
    assert_eq!(
        fakes.fetch_ok(
            &["-a", "doppler", "DB_PASSWORD", "API_KEY"],
            &[("DOPPLER_TOKEN", "dp.st.prd.fake")]
        ),
        expected
    );
    let (code, err) = fakes.fetch_err(
        &["-a", "doppler", "DB_PASSWORD", "API_KEY"],
        &[("FAKE_DOPPLER_AUTHED", "1")],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("error: missing project or config from '--from=project/config' option"),
        "{err}"
    );
    let (_, err) = fakes.fetch_err(
        &["-a", "doppler", "--from", "app/prd", "NOPE"],
        &[("FAKE_DOPPLER_AUTHED", "1")],
    );
    assert!(err.contains("error: could not read app/prd/NOPE from Doppler: exited with status 1: Doppler Error: Could not find requested secret: NOPE"), "{err}");
    let (_, err) = fakes.fetch_err(&["-a", "doppler", "--from", "app/prd", "NOPE"], &[]);
    assert!(
        err.contains("error: failed to login to Doppler: exited with status 1"),
        "{err}"
    );
}

#[test]
fn lastpass_checks_the_logged_in_account_and_every_name() {
    let fakes = Fakes::new(&["lpass"]);
    let logged_in = [("FAKE_LPASS_LOGGED_IN", "1")];
    assert_eq!(
        fakes.fetch_ok(
            &[
                "--adapter",
                "lastpass",
                "--account",
                "me@example.com",
                "--from",
                "Shared",
                "DB_PASSWORD",
                "API_KEY"
            ],
            &logged_in
        ),
        r#"{"Shared/DB_PASSWORD":"lpass-db","Shared/API_KEY":"lpass-api"}"#
    );
    let (_, err) = fakes.fetch_err(
        &[
            "-a",
            "lastpass",
            "--account",
            "me@example.com",
            "Shared/NOPE",
        ],
        &logged_in,
    );
    assert!(err.contains("error: could not read Shared/NOPE from LastPass: exited with status 1: Error: Could not find specified account(s)."), "{err}");
    let (_, err) = fakes.fetch_err(
        &[
            "-a",
            "lastpass",
            "--account",
            "me@example.com",
            "Shared/DB_PASSWORD",
        ],
        &[],
    );
    assert!(
        err.contains("error: failed to login to LastPass: exited with status 1"),
        "{err}"
    );
    assert!(fakes.calls().contains("lpass [login][me@example.com]"));
}

#[test]
fn enpass_reads_labels_of_an_item_from_the_vault_path() {
    let fakes = Fakes::new(&["enpass-cli"]);
    assert_eq!(
        fakes.fetch_ok(
            &[
                "--adapter",
                "enpass",
                "--from",
                "/vaults/primary",
                "FooBar/SECRET_1",
                "Single"
            ],
            &[]
        ),
        r#"{"FooBar/SECRET_1":"enpass-1","Single":"enpass-single"}"#
    );
    let (_, err) = fakes.fetch_err(&["-a", "enpass", "--from", "/vaults/wrong", "FooBar"], &[]);
    assert!(err.contains("error: could not read FooBar from Enpass: exited with status 1: level=fatal msg=\"could not open vault"), "{err}");
    let (code, err) = fakes.fetch_err(&["-a", "enpass", "FooBar"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("error: enpass: `--from VAULT_PATH` is required"),
        "{err}"
    );
}

#[test]
fn passbolt_resolves_nested_folders_then_filters_resources() {
    let fakes = Fakes::new(&["passbolt"]);
    let configured = [("FAKE_PASSBOLT_CONFIGURED", "1")];
    assert_eq!(
        fakes.fetch_ok(
            &["--adapter", "passbolt", "app/prod/DB_PASSWORD", "ROOT_KEY"],
            &configured
        ),
        r#"{"DB_PASSWORD":"passbolt-db","ROOT_KEY":"passbolt-root"}"#
    );
    let (_, err) = fakes.fetch_err(&["-a", "passbolt", "NOPE"], &configured);
    assert!(
        err.contains("error: could not find the following secrets in Passbolt: NOPE"),
        "{err}"
    );
    let (_, err) = fakes.fetch_err(&["-a", "passbolt", "NOPE"], &[]);
    assert!(err.contains("error: failed to login to Passbolt: exited with status 1: Error: Creating Client: Getting Server Key"), "{err}");
}

#[test]
fn sops_decrypts_the_file_and_selects_keys() {
    let fakes = Fakes::new(&["sops"]);
    let key = [("SOPS_AGE_KEY_FILE", "/keys/age.txt")];
    assert_eq!(
        fakes.fetch_ok(
            &[
                "--adapter",
                "sops",
                "--from",
                "secrets.enc.yaml",
                "DB_PASSWORD",
                "database"
            ],
            &key
        ),
        r#"{"DB_PASSWORD":"sops-db","database/user":"app","database/port":"5432"}"#
    );
    assert_eq!(
        fakes.fetch_ok(&["-a", "sops", "--from", "secrets.enc.yaml"], &key),
        r#"{"DB_PASSWORD":"sops-db","database/user":"app","database/port":"5432","API_KEY":"sops-api"}"#
    );
    let (_, err) = fakes.fetch_err(&["-a", "sops", "--from", "secrets.enc.yaml", "NOPE"], &key);
    assert!(
        err.contains("error: could not find NOPE in secrets.enc.yaml"),
        "{err}"
    );
    let (_, err) = fakes.fetch_err(
        &["-a", "sops", "--from", "secrets.enc.yaml", "DB_PASSWORD"],
        &[],
    );
    assert!(err.contains("error: could not decrypt secrets.enc.yaml with sops: exited with status 128: Failed to get the data key required to decrypt the SOPS file.; Group 0: FAILED; age1qqqq: FAILED; - | failed to load age identities"), "{err}");
    assert!(
        err.contains("hint: check that this machine has a key"),
        "{err}"
    );
}

#[test]
fn secrets_file_fetches_and_extracts_in_process_without_kamal_or_a_shell() {
    // `.kamal/secrets` with Kamal's documented Bitwarden lines; no `kamal` and no Ruby on the
    // PATH, only the fake `bw`.
    let fakes = Fakes::new(&["bw"]);
    crate::support::write(
        &fakes.path().join("config/deploy.yml"),
        "service: s\nimage: s\nservers: [127.0.0.1]\nregistry:\n  server: 127.0.0.1:5000\n  username: u\n  password: p\nbuilder:\n  arch: amd64\n",
    );
    crate::support::write(
        &fakes.path().join(".kamal/secrets"),
        "SECRETS=$(kamal secrets fetch --adapter bitwarden --account a@b --from item A B)\n\
         A=$(kamal secrets extract A $SECRETS)\n\
         B=$(dray secrets extract B ${SECRETS})\n\
         SHELL_STILL=$(echo from-the-shell)\n",
    );
    let (code, stdout, stderr) = fakes.dray(&["secrets", "print"], &[("FAKE_BW_STATE", "locked")]);
    assert_eq!(code, 0, "{stderr}\n{}", fakes.calls());
    assert_eq!(
        stdout,
        "SECRETS=\\{\\\"item/A\\\":\\\"bw-value-a\\\",\\\"item/B\\\":\\\"bw-value-b\\\"\\}\n\
         A=bw-value-a\nB=bw-value-b\nSHELL_STILL=from-the-shell\n"
    );
    assert!(!fakes.calls().lines().any(|l| l.contains("kamal")));

    // A failing fetch names the file, line and key, with the adapter's hint.
    crate::support::write(
        &fakes.path().join(".kamal/secrets"),
        "SECRETS=$(kamal secrets fetch --adapter bitwarden --account a@b missing)\n",
    );
    let (code, _, stderr) = fakes.dray(&["secrets", "print"], &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("error: .kamal/secrets:1: `$(kamal secrets fetch --adapter bitwarden --account a@b missing)` for SECRETS: could not read missing from Bitwarden: exited with status 1: Not found."),
        "{stderr}"
    );
    assert!(stderr.contains("hint: check the item's name"), "{stderr}");
}

/// Removes the project's containers, images and files from the fleet, on every path.
struct Cleanup<'a>(
    &'a crate::support::fleet::Fleet,
    &'a crate::support::project::Project,
);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        self.1.cleanup_all(self.0);
    }
}

#[test]
fn deploy_with_kamal_secrets_lines_puts_the_secret_in_the_container_and_no_argv() {
    use crate::support::fleet::{unique_name, Fleet};
    use crate::support::procs::ProcessWatch;
    use crate::support::project::{git, Project};

    let Some(fleet) = Fleet::get() else { return };
    let hosts = fleet.require_hosts(3).to_vec();
    let project = Project::new(fleet, &unique_name("e2e-secrets-bw"), |d| {
        let edited = d.replace(
            "env:\n  clear:\n    APP_GREETING: hello from dray\n",
            "env:\n  clear:\n    APP_GREETING: hello from dray\n  secret:\n    - DB_PASSWORD\n    - API_KEY\n",
        );
        assert_ne!(edited, d, "the env section of deploy.yml changed");
        edited
    });
    let _cleanup = Cleanup(fleet, &project);
    let registry = std::fs::read_to_string(project.path().join(".kamal/secrets")).expect("secrets");
    crate::support::write(
        &project.path().join(".kamal/secrets"),
        &format!(
            "{registry}\n\
             SECRETS=$(kamal secrets fetch --adapter bitwarden --account a@b --from item A B)\n\
             DB_PASSWORD=$(kamal secrets extract A $SECRETS)\n\
             API_KEY=$(kamal secrets extract B $SECRETS)\n"
        ),
    );
    git(project.path(), &["add", "-A"]);
    git(project.path(), &["commit", "-qm", "secrets from bitwarden"]);

    // The fake `bw` (the real Bitwarden is unreachable here) first on the PATH, the vault
    // locked so that dray unlocks it and carries the session; no `kamal` anywhere on the PATH.
    let fakes = Fakes::new(&["bw"]);
    let path = format!(
        "{}:{}",
        fakes.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for dir in std::env::split_paths(&path) {
        assert!(
            !dir.join("kamal").exists(),
            "a kamal executable in {}",
            dir.display()
        );
    }
    let watch = ProcessWatch::start();
    let out = crate::support::dray_cmd(project.path(), &["deploy", "--version", "v1"])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("DOCKER_CONFIG", project.path().join(".docker-config"))
        .env("PATH", &path)
        .env("FAKE_BW_STATE", "locked")
        .env("FAKE_CLI_LOG", fakes.path().join("calls.log"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run dray");
    let scans = watch.scans();
    let seen = watch.finish();
    let shown = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{shown}\ncalls:\n{}",
        fakes.calls()
    );
    assert!(fakes
        .calls()
        .contains("bw [get][item][item] BW_SESSION=fake-bw-session-1a2b3c"));

    // Each role's container has the secrets in its environment.
    let s = &project.service;
    for (host, role) in [
        (&hosts[0], "web"),
        (&hosts[1], "web"),
        (&hosts[2], "workers"),
    ] {
        let env = fleet.ssh_ok(host, &format!("docker exec {s}-{role}-v1 env"));
        assert!(
            env.lines().any(|l| l == "DB_PASSWORD=bw-value-a"),
            "{host}: {env}"
        );
        assert!(
            env.lines().any(|l| l == "API_KEY=bw-value-b"),
            "{host}: {env}"
        );
    }

    // No process here or on a host (they share this machine's process table) had a secret or
    // the Bitwarden session in its arguments, and the output shows neither.
    assert!(scans > 100, "the process watch scanned {scans} times");
    assert!(
        seen.iter()
            .any(|p| p.cmdline.contains("docker") && p.cmdline.contains(s.as_str())),
        "the watch saw the deploy's docker commands"
    );
    for needle in ["bw-value-a", "bw-value-b", "fake-bw-session-1a2b3c"] {
        let leaked: Vec<&str> = seen
            .iter()
            .filter(|p| p.cmdline.contains(needle))
            .map(|p| p.cmdline.as_str())
            .collect();
        assert!(leaked.is_empty(), "{needle} in argv: {leaked:#?}");
        assert!(!shown.contains(needle), "{needle} in the output:\n{shown}");
    }
}

#[test]
fn kamals_integration_app_secrets_file_loads_without_kamal() {
    // Kamal's own integration app's secrets (tests/fixtures/kamal/integration-app/secrets): the
    // `test` adapter's fetch once, extracts by name, with Unicode and parentheses.
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kamal/integration-app/secrets");
    let env: std::collections::BTreeMap<String, String> =
        [("PATH".to_string(), "/nonexistent".to_string())]
            .into_iter()
            .collect();
    let secrets =
        dray::config::secrets::Secrets::load(&fixture, None, Path::new("/"), &env).expect("load");
    assert_eq!(secrets.get("FETCHED_ONE"), Ok("ENO_DEHCTEF"));
    assert_eq!(secrets.get("FETCHED_TWO"), Ok("OWT_DEHCTEF"));
    assert_eq!(secrets.get("FETCHED_UNICODE"), Ok("文中_DEHCTEF"));
    assert_eq!(secrets.get("FETCHED_PARENS"), Ok(")(_DEHCTEF"));
}

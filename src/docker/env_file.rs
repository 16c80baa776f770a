//! The role env file (`lib/kamal/env_file.rb`, §7.4): its content, byte for byte as Kamal writes
//! it, and the commands that put it on a host with mode 0600, the content on stdin.

use crate::command::{CommandSpec, Secret};
use crate::config::model::Config;
use crate::shell::quote;

use super::script::sh;

/// `.kamal/apps/<service>[-<dest>]/env/roles`.
pub fn roles_env_directory(config: &Config) -> String {
    format!(".kamal/apps/{}/env/roles", config.service_and_destination())
}

/// `.kamal/apps/<service>[-<dest>]/env/roles/<role>.env`.
pub fn role_env_file(config: &Config, role: &str) -> String {
    format!("{}/{role}.env", roles_env_directory(config))
}

/// The env file for resolved secrets `(name in the container, value)`: `NAME=value\n` each, the
/// value escaped as Ruby `String#dump` without the outer quotes, then `\"` → `"` and `\#` → `#`
/// (docker env files take quotes literally); non-ASCII runs are kept raw; no secrets → `"\n"`.
pub fn content<K: AsRef<str>, V: AsRef<str>>(secrets: &[(K, V)]) -> Secret {
    let mut out = String::new();
    for (key, value) in secrets {
        out.push_str(key.as_ref());
        out.push('=');
        out.push_str(&escape_value(value.as_ref()));
        out.push('\n');
    }
    if out.is_empty() {
        out.push('\n');
    }
    Secret(out.into_bytes())
}

/// One value escaped for a docker env file, as Kamal does.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (ascii, run) in runs(value) {
        if ascii {
            out.push_str(&dump_inner(run).replace("\\\"", "\"").replace("\\#", "#"));
        } else {
            out.push_str(run);
        }
    }
    out
}

/// Maximal runs of ASCII and of non-ASCII characters (Kamal's `scan(/[\x00-\x7F]+|[^\x00-\x7F]+/)`).
fn runs(s: &str) -> Vec<(bool, &str)> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut current: Option<bool> = None;
    for (i, ch) in s.char_indices() {
        let ascii = ch.is_ascii();
        match current {
            Some(c) if c == ascii => {}
            Some(c) => {
                runs.push((c, &s[start..i]));
                start = i;
                current = Some(ascii);
            }
            None => current = Some(ascii),
        }
    }
    if let Some(c) = current {
        runs.push((c, &s[start..]));
    }
    runs
}

/// Ruby `String#dump` of an ASCII string, without the surrounding quotes.
pub(crate) fn dump_inner(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len() + 8);
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x0c => out.push_str("\\f"),
            0x0b => out.push_str("\\v"),
            0x08 => out.push_str("\\b"),
            0x07 => out.push_str("\\a"),
            0x1b => out.push_str("\\e"),
            b'#' if matches!(bytes.get(i + 1), Some(b'$' | b'@' | b'{')) => out.push_str("\\#"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02X}")),
        }
    }
    out
}

/// `mkdir -p .kamal/apps/<A>/env/roles` on `host`.
pub fn ensure_directory(config: &Config, host: &str) -> CommandSpec {
    CommandSpec::new(format!("create env directory on {host}"), "mkdir")
        .arg("-p")
        .arg(roles_env_directory(config))
}

/// Write `content` (from [`content`]) to the role's env file on `host`, mode 0600: the content
/// goes on stdin, never in argv; written to a temporary file first and renamed, so a reader never
/// sees a half-written or world-readable file.
pub fn write(config: &Config, role: &str, host: &str, content: Secret) -> CommandSpec {
    let dir = roles_env_directory(config);
    let file = role_env_file(config, role);
    let tmp = format!("{file}.tmp");
    let script = format!(
        "mkdir -p {dir} && umask 077 && cat > {tmp} && chmod 600 {tmp} && mv -f {tmp} {file}",
        dir = quote(&dir),
        tmp = quote(&tmp),
        file = quote(&file),
    );
    let mut cmd = sh(format!("upload {role} env file to {host}"), script);
    cmd.stdin = Some(content);
    cmd
}

/// [`write`] as script text for a batched script that carries the content on its standard
/// input: the same file, mode and rename, with `mkdir` only when the directory is missing and
/// `cat` in a subshell that keeps the `umask` to itself.
pub fn write_script(config: &Config, role: &str) -> String {
    let dir = roles_env_directory(config);
    let file = role_env_file(config, role);
    let tmp = format!("{file}.tmp");
    format!(
        "{{ [ -d {dir} ] || mkdir -p {dir}; }} && (umask 077 && exec cat > {tmp}) && chmod 600 {tmp} && mv -f {tmp} {file}",
        dir = quote(&dir),
        tmp = quote(&tmp),
        file = quote(&file),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::test_support::{base, staging};

    fn text(s: Secret) -> String {
        String::from_utf8(s.0).expect("utf-8")
    }

    #[test]
    fn empty_env_file_is_one_newline() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(text(content(&none)), "\n");
    }

    #[test]
    fn env_file_escaping_matches_kamal() {
        let secrets = [
            ("PLAIN", "secret"),
            ("QUOTES", "a\"b'c"),
            ("DOLLAR", "$HOME ${VAR} `x` $(y)"),
            ("HASH", "#{x} #$y #@z #plain"),
            ("BACKSLASH", "a\\b\\\"c"),
            ("NEWLINE", "line1\nline2\ttab\r"),
            ("CONTROL", "\u{1}\u{7f}\u{1b}\u{7}\u{8}\u{b}\u{c}"),
            ("UNICODE", "héllo wörld ✓"),
            ("EMPTY", ""),
        ];
        insta::assert_snapshot!(text(content(&secrets)));
    }

    #[test]
    fn env_file_commands() {
        let c = base();
        insta::assert_snapshot!(ensure_directory(&c, "1.1.1.1").to_shell(), @"mkdir -p .kamal/apps/app/env/roles");
        let cmd = write(&staging(), "web", "1.1.1.1", content(&[("K", "v")]));
        assert_eq!(cmd.purpose, "upload web env file to 1.1.1.1");
        assert_eq!(cmd.stdin, Some(Secret(b"K=v\n".to_vec())));
        assert!(!cmd.to_shell().contains("K=v"));
        insta::assert_snapshot!(cmd.to_shell());
    }
}

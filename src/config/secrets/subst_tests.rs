//! Tests of substitution: `$VAR` and `${VAR}` from earlier keys and the environment, `$(…)`
//! commands, escapes, and failing or denied commands.

use super::test_support::{one, parse, parse_err, parse_with};
use crate::config::template::CommandPolicy;

#[test]
fn variables_from_earlier_keys_then_environment_then_empty() {
    let values = parse_with(
        "A=one\nB=$A-${A}-$HOME_DIR-${NOPE}x\nC=\"q $A\"\nD=$A}\nE=${A",
        &[("HOME_DIR", "/h"), ("A", "from-env")],
        CommandPolicy::Deny,
    )
    .expect("parse");
    assert_eq!(values[1].1, "one-one-/h-x");
    assert_eq!(values[2].1, "q one");
    assert_eq!(values[3].1, "one");
    assert_eq!(values[4].1, "one");
}

#[test]
fn escaped_dollar_stays_literal() {
    assert_eq!(one(r#"FOO="foo\$BAR""#), "foo$BAR");
    assert_eq!(one(r#"FOO="foo\${BAR} x""#), "foo${BAR} x");
    assert_eq!(one("FOO=a$"), "a$");
    assert_eq!(one("FOO=${}"), "${}");
}

#[test]
fn command_substitution_runs_and_chomps() {
    assert_eq!(one("FOO=$(echo hello)"), "hello");
    // dotenv unescapes `\n` to `n` before running the command; `\\n` reaches it as `\n`
    assert_eq!(one("FOO=$(printf 'a\\n\\n')"), "ann");
    assert_eq!(one("FOO=$(printf 'a\\\\n\\\\n')"), "a\n");
    assert_eq!(one("FOO=x-$(echo hi)-y"), "x-hi-y");
    assert_eq!(
        one(r#"FOO="$(echo "Quotes won't be a problem")""#),
        "Quotes won't be a problem"
    );
}

#[test]
fn command_substitution_with_nested_parentheses() {
    assert_eq!(one(r#"FOO=$(echo "$(echo "$(echo hello)")")"#), "hello");
    assert_eq!(one("FOO=$(echo $((1 + 2)))"), "3");
}

#[test]
fn command_sees_variables_and_earlier_keys() {
    assert_eq!(parse("A=bar\nB=$(echo $A)")[1].1, "bar");
    assert_eq!(parse("A='passwo(rd'\nB=$(echo '$A')")[1].1, "passwo(rd");
    // earlier keys are in the command's environment too
    assert_eq!(parse("A=exported\nB=$(printenv A)")[1].1, "exported");
    // output is inserted as is, not substituted again
    assert_eq!(parse("A=1\nB=$A$(echo $A)")[1].1, "11");
}

#[test]
fn escaped_command_substitution_stays_literal() {
    assert_eq!(
        one(r#"FOO=escaped-\$(echo hello)"#),
        "escaped-$(echo hello)"
    );
    assert_eq!(
        parse_with(r#"FOO="\$(echo $X)""#, &[("X", "x")], CommandPolicy::Deny).expect("parse")[0].1,
        "$(echo x)"
    );
    assert_eq!(one("FOO=$()"), "$()");
}

#[test]
fn unterminated_command_substitution_is_an_error() {
    let (line, message) = parse_err("A=1\nB=$(echo hi\n");
    assert_eq!(line, 2);
    assert!(message.contains("unterminated `$(`"), "{message}");
    assert!(message.contains(" B"), "{message}");
}

#[test]
fn failing_command_names_file_line_command_and_status_without_values() {
    let err = parse_with(
        "TOKEN=supersecret\nPASS=$(echo \"$TOKEN is wrong\" >&2; exit 4)",
        &[],
        CommandPolicy::Run,
    )
    .expect_err("fails");
    let text = err.to_string();
    assert!(text.starts_with(".kamal/secrets:2: "), "{text}");
    assert!(
        text.contains("$(echo \"$TOKEN is wrong\" >&2; exit 4)"),
        "{text}"
    );
    assert!(text.contains("exited with status 4"), "{text}");
    assert!(text.contains("[REDACTED] is wrong"), "{text}");
    assert!(!text.contains("supersecret"), "{text}");
}

#[test]
fn denied_commands_never_run() {
    let err = parse_with(
        "A=$(touch /tmp/dray-should-not-exist)",
        &[],
        CommandPolicy::Deny,
    )
    .expect_err("denied");
    assert!(err.to_string().contains("disabled"), "{err}");
}

#[test]
fn kamal_secrets_substitutions_run_in_process_with_earlier_keys_substituted() {
    // The PATH (test_support's) has no `kamal`: these run inside dray.
    let values = parse(
        "SECRETS=$(kamal secrets fetch --adapter test --account me --from item A LPARENBRPAREN)\n\
         A=$(kamal secrets extract A $SECRETS)\n\
         B=\"$(dray secrets extract LPARENBRPAREN ${SECRETS})\"\n",
    );
    assert_eq!(
        values[0].1,
        r#"\{\"item/A\":\"A/meti\",\"item/LPARENBRPAREN\":\"\)B\(/meti\"\}"#
    );
    assert_eq!(values[1], ("A".to_string(), "A/meti".to_string()));
    assert_eq!(values[2], ("B".to_string(), ")B(/meti".to_string()));
}

#[test]
fn a_failing_kamal_secrets_substitution_names_file_line_and_key_with_a_hint() {
    let err = parse_with(
        "S=$(kamal secrets fetch --adapter test --account me X)\nA=$(kamal secrets extract Y $S)",
        &[],
        CommandPolicy::Run,
    )
    .expect_err("missing");
    assert_eq!(
        err.to_string(),
        ".kamal/secrets:2: `$(kamal secrets extract Y $S)` for A: could not find secret Y"
    );
    let super::SecretsError::Inline { hint, .. } = err else {
        panic!("{err:?}")
    };
    assert!(hint.is_some_and(|h| h.contains("the fetched secrets are X")));
    let err = parse_with(
        "A=$(kamal secrets fetch --adapter test --account me X)",
        &[],
        CommandPolicy::Deny,
    )
    .expect_err("denied");
    assert!(err.to_string().contains("disabled"), "{err}");
}

//! The command line: `new`, `schema`, `checks`, exit codes and errors.

use serde_json::Value;

use crate::harness::Registry;

/// `flagops new` arguments for a valid flag of `flag_type`.
pub(crate) fn new_args<'a>(name: &'a str, flag_type: &'a str) -> Vec<&'a str> {
    vec![
        "new",
        name,
        "--type",
        flag_type,
        "--group",
        "group::source code",
        "--description",
        "Guards the new merge path: it's risky",
        "--milestone",
        "19.7",
        "--introduced-by",
        "https://gitlab.com/gitlab-org/gitlab/-/merge_requests/9",
        "--rollout-issue",
        "https://gitlab.com/gitlab-org/gitlab/-/issues/10",
        "--owner",
        "@alice",
    ]
}

// `new` writes a file that validates, at `<type>/<name>.yml`, and refuses to overwrite it.
#[test]
fn cli_new_writes_valid_flag() {
    let registry = Registry::new();
    let output = registry.run(&new_args("fast_merge", "gitlab_com_derisk"));
    assert_eq!(output.code, 0, "{output:?}");
    let text = registry.read("flags/gitlab_com_derisk/fast_merge.yml");
    insta::assert_snapshot!(text, @r#"
    # yaml-language-server: $schema=../../schema/flag.schema.json
    name: fast_merge
    description: "Guards the new merge path: it's risky"
    type: gitlab_com_derisk
    group: group::source code
    owners: ["@alice"]
    milestone: "19.7"
    introduced_by_url: https://gitlab.com/gitlab-org/gitlab/-/merge_requests/9
    rollout_issue_url: https://gitlab.com/gitlab-org/gitlab/-/issues/10
    default_enabled: false
    "#);
    assert_eq!(registry.run(&["validate"]).code, 0);
    let again = registry.run(&new_args("fast_merge", "gitlab_com_derisk"));
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(registry.read("flags/gitlab_com_derisk/fast_merge.yml"), text);
}

// `new` refuses (exit 1) a bad name or an unknown type before writing, and leaves nothing behind when the flag would not
// validate.
#[test]
fn cli_new_refuses_invalid_flag() {
    let registry = Registry::new();
    let output = registry.run(&new_args("Bad-Name", "wip"));
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output.stderr.contains("`Bad-Name` is not a valid flag name"),
        "{}",
        output.stderr
    );
    assert!(!registry.path().join("flags/wip/Bad-Name.yml").exists());
    // A file the validator refuses is removed again.
    let mut args = new_args("fast_merge", "wip");
    args.extend(["--path", "flags/wip/other_name.yml"]);
    let output = registry.run(&args);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(output.stderr.contains("error[name-mismatch]"), "{}", output.stderr);
    assert!(!registry.path().join("flags/wip/other_name.yml").exists());
    let output = registry.run(&new_args("x", "nope"));
    assert_eq!(output.code, 1);
    assert!(output.stderr.contains("unknown flag type `nope`"), "{}", output.stderr);
}

// `schema` prints the embedded schemas, identical to the files in `schema/`.
#[test]
fn cli_schema_prints_embedded_schema() {
    let registry = Registry::new();
    for (which, file) in [
        ("flag", "schema/flag.schema.json"),
        ("config", "schema/config.schema.json"),
    ] {
        let output = registry.run(&["schema", which]);
        assert_eq!(output.code, 0);
        let printed: Value = serde_json::from_str(&output.stdout).unwrap();
        let committed: Value =
            serde_json::from_str(&std::fs::read_to_string(crate::harness::repo_root().join(file)).unwrap()).unwrap();
        assert_eq!(printed, committed);
    }
}

// Outside a registry, commands fail with exit 2 and a hint.
#[test]
fn cli_without_config_fails() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_flagops"))
        .arg("validate")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no `flagops.yml`"), "{stderr}");
}

// `checks` lists every check id.
#[test]
fn cli_checks_lists_ids() {
    let output = Registry::new().run(&["checks"]);
    for check in flagops::check::CHECKS {
        assert!(output.stdout.contains(check.id), "{}", check.id);
    }
}

//! `flagops validate`: every kind of bad input gets its check id at its exact line and column.

use serde_json::Value;

use crate::harness::{Registry, flag};

/// Writes `files` into a fresh registry, validates it, and compares the findings (check id,
/// path, line, column) with `expected`.
#[track_caller]
fn check(files: &[(&str, &str)], expected: &[(&str, &str, usize, usize)]) {
    let registry = Registry::new();
    for (path, text) in files {
        registry.write(path, text);
    }
    let output = registry.run(&["validate", "--format", "json"]);
    let findings: Vec<Value> = serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"));
    let actual: Vec<(String, String, usize, usize)> = findings
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
                f["span"]["line"].as_u64().unwrap() as usize,
                f["span"]["column"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    let expected: Vec<(String, String, usize, usize)> = expected
        .iter()
        .map(|(c, p, l, col)| (c.to_string(), p.to_string(), *l, *col))
        .collect();
    assert_eq!(
        actual, expected,
        "stdout:\n{}\nstderr:\n{}",
        output.stdout, output.stderr
    );
    let code = if expected.is_empty() { 0 } else { 1 };
    assert_eq!(output.code, code, "{output:?}");
}

// A valid flag produces nothing and exits 0.
#[test]
fn check_accepts_valid_flag() {
    check(
        &[("flags/wip/a.yml", &flag("a", "environments:\n  staging: true\n"))],
        &[],
    );
}

// The example registry in the repository is valid.
#[test]
fn check_accepts_example_registry() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_flagops"))
        .args(["validate", "flags"])
        .current_dir(crate::harness::repo_root())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn check_rejects_invalid_yaml() {
    check(
        &[("flags/wip/a.yml", "name: a\ndescription: [unclosed\n")],
        &[("yaml-syntax", "flags/wip/a.yml", 3, 1)],
    );
}

#[test]
fn check_rejects_duplicate_keys() {
    check(
        &[("flags/wip/a.yml", &flag("a", "default_enabled: true\n"))],
        &[("duplicate-key", "flags/wip/a.yml", 8, 1)],
    );
}

#[test]
fn check_rejects_alias_bomb() {
    let mut text = String::from("name: a\nl0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..9 {
        let refs = vec![format!("*l{}", level - 1); 10].join(", ");
        text.push_str(&format!("l{level}: &l{level} [{refs}]\n"));
    }
    check(
        &[("flags/wip/a.yml", &text)],
        &[("alias-limit", "flags/wip/a.yml", 5, 45)],
    );
}

#[test]
fn check_rejects_deep_flow_nesting() {
    let text = format!("name: {}\n", "[".repeat(5000));
    let output_case = [("flags/wip/a.yml", text.as_str())];
    check(&output_case, &[("too-deep", "flags/wip/a.yml", 1, 262)]);
}

#[test]
fn check_rejects_deep_block_nesting() {
    let mut text = String::from("name: a\nx:\n");
    for depth in 1..40 {
        text.push_str(&format!("{}k:\n", "  ".repeat(depth)));
    }
    check(
        &[("flags/wip/a.yml", &text)],
        &[("too-deep", "flags/wip/a.yml", 35, 67)],
    );
}

#[test]
fn check_rejects_huge_file() {
    let text = flag("a", &format!("# {}\n", "x".repeat(300 * 1024)));
    check(
        &[("flags/wip/a.yml", &text)],
        &[("file-too-large", "flags/wip/a.yml", 1, 1)],
    );
}

#[test]
fn check_rejects_non_utf8() {
    let mut bytes = flag("a", "").into_bytes();
    bytes.extend_from_slice(b"note: caf\xe9\n");
    let registry = Registry::new();
    registry.write("flags/wip/a.yml", &bytes);
    let output = registry.run(&["validate", "--format", "json"]);
    let findings: Vec<Value> = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(findings.len(), 1, "{output:?}");
    assert_eq!(findings[0]["check"], "not-utf8");
    assert_eq!(findings[0]["span"]["line"], 8);
    assert_eq!(findings[0]["span"]["column"], 10);
    assert_eq!(output.code, 1);
}

#[test]
fn check_rejects_empty_and_multi_document_files() {
    check(
        &[
            ("flags/wip/a.yml", "# nothing\n"),
            ("flags/wip/b.yml", &format!("{}---\nname: c\n", flag("b", ""))),
        ],
        &[
            ("empty-file", "flags/wip/a.yml", 1, 1),
            ("multiple-documents", "flags/wip/b.yml", 9, 1),
        ],
    );
}

#[test]
fn check_rejects_unknown_key() {
    check(
        &[(
            "flags/wip/a.yml",
            &flag("a", "intended_to_rollout_by_date: \"2026-01-01\"\n"),
        )],
        &[("unknown-key", "flags/wip/a.yml", 8, 1)],
    );
}

#[test]
fn check_rejects_unknown_gate_key() {
    check(
        &[(
            "flags/wip/a.yml",
            &flag("a", "environments:\n  staging:\n    percentage_of_actor: 5\n"),
        )],
        &[("unknown-key", "flags/wip/a.yml", 10, 5)],
    );
}

#[test]
fn check_rejects_missing_key() {
    let text = flag("a", "").replace("group: group::test\n", "");
    check(
        &[("flags/wip/a.yml", &text)],
        &[("missing-key", "flags/wip/a.yml", 1, 1)],
    );
}

#[test]
fn check_rejects_float_milestone() {
    let text = flag("a", "").replace("milestone: \"19.5\"", "milestone: 19.10");
    check(
        &[("flags/wip/a.yml", &text)],
        &[("wrong-type", "flags/wip/a.yml", 5, 12)],
    );
}

#[test]
fn check_rejects_wrong_state_type() {
    check(
        &[("flags/wip/a.yml", &flag("a", "environments:\n  staging: 50\n"))],
        &[("invalid-value", "flags/wip/a.yml", 9, 12)],
    );
}

#[test]
fn check_rejects_name_mismatch() {
    check(
        &[("flags/wip/a.yml", &flag("b", ""))],
        &[("name-mismatch", "flags/wip/a.yml", 1, 7)],
    );
}

#[test]
fn check_rejects_bad_name() {
    check(
        &[("flags/wip/Bad-Name.yml", &flag("Bad-Name", ""))],
        &[("name-format", "flags/wip/Bad-Name.yml", 1, 7)],
    );
}

#[test]
fn check_rejects_duplicate_name() {
    let beta = flag("a", "rollout_issue_url: https://gitlab.com/i/1\n").replace("type: wip", "type: beta");
    check(
        &[("flags/wip/a.yml", &flag("a", "")), ("flags/beta/a.yml", &beta)],
        &[("duplicate-name", "flags/wip/a.yml", 1, 7)],
    );
}

#[test]
fn check_rejects_path_layout() {
    check(
        &[("flags/ops/a.yml", &flag("a", ""))],
        &[("path-layout", "flags/ops/a.yml", 3, 7)],
    );
}

#[test]
fn check_rejects_nested_path_layout() {
    check(
        &[("flags/x/wip/a.yml", &flag("a", ""))],
        &[("path-layout", "flags/x/wip/a.yml", 3, 7)],
    );
}

#[test]
fn check_rejects_unknown_type() {
    let text = flag("a", "").replace("type: wip", "type: wipp");
    check(
        &[("flags/wipp/a.yml", &text)],
        &[("unknown-type", "flags/wipp/a.yml", 3, 7)],
    );
}

#[test]
fn check_rejects_default_enabled_for_type() {
    let text = flag("a", "").replace("default_enabled: false", "default_enabled: true");
    check(
        &[("flags/wip/a.yml", &text)],
        &[("default-enabled", "flags/wip/a.yml", 7, 18)],
    );
}

#[test]
fn check_requires_rollout_issue() {
    let text = flag("a", "").replace("type: wip", "type: beta");
    check(
        &[("flags/beta/a.yml", &text)],
        &[("rollout-issue-required", "flags/beta/a.yml", 3, 1)],
    );
}

#[test]
fn check_rejects_bad_milestone() {
    let text = flag("a", "").replace("\"19.5\"", "\"v19\"");
    check(
        &[("flags/wip/a.yml", &text)],
        &[("milestone-format", "flags/wip/a.yml", 5, 12)],
    );
}

#[test]
fn check_rejects_bad_date() {
    check(
        &[(
            "flags/wip/a.yml",
            &flag("a", "intended_to_rollout_by: \"2026-13-01\"\n"),
        )],
        &[("date-format", "flags/wip/a.yml", 8, 25)],
    );
}

#[test]
fn check_rejects_non_http_url() {
    check(
        &[(
            "flags/wip/a.yml",
            &flag("a", "feature_issue_url: javascript:alert(1)\n"),
        )],
        &[("url-scheme", "flags/wip/a.yml", 8, 20)],
    );
}

#[test]
fn check_rejects_unknown_environment() {
    check(
        &[("flags/wip/a.yml", &flag("a", "environments:\n  prod: true\n"))],
        &[("unknown-environment", "flags/wip/a.yml", 9, 3)],
    );
}

#[test]
fn check_rejects_unknown_actor_kind_and_group() {
    check(
        &[(
            "flags/wip/a.yml",
            &flag(
                "a",
                "environments:\n  staging:\n    actors:\n      team: [x]\n    groups: [gitlab_team_members, beta_testers]\n",
            ),
        )],
        &[
            ("unknown-actor-kind", "flags/wip/a.yml", 11, 7),
            ("unknown-feature-group", "flags/wip/a.yml", 12, 35),
        ],
    );
}

#[test]
fn check_rejects_percentage_out_of_range() {
    check(
        &[(
            "flags/wip/a.yml",
            &flag("a", "environments:\n  staging:\n    percentage_of_actors: 150\n"),
        )],
        &[("out-of-range", "flags/wip/a.yml", 10, 27)],
    );
}

#[test]
fn check_rejects_percentage_precision() {
    check(
        &[(
            "flags/wip/a.yml",
            &flag("a", "environments:\n  staging:\n    percentage_of_actors: 12.3456\n"),
        )],
        &[("percentage-precision", "flags/wip/a.yml", 10, 27)],
    );
}

#[test]
fn check_rejects_unrepresentable_gates() {
    check(
        &[(
            "flags/wip/a.yml",
            &flag(
                "a",
                "environments:\n  staging:\n    percentage_of_actors: 100\n    actors:\n      project: [gitlab-org/gitlab]\n",
            ),
        )],
        &[("gates-representable", "flags/wip/a.yml", 10, 27)],
    );
}

#[test]
fn check_rejects_unknown_requirement() {
    check(
        &[("flags/wip/a.yml", &flag("a", "requires: [a, nope]\n"))],
        &[
            ("requires-unknown", "flags/wip/a.yml", 8, 12),
            ("requires-unknown", "flags/wip/a.yml", 8, 15),
        ],
    );
}

#[test]
fn check_rejects_requirement_cycle() {
    check(
        &[
            ("flags/wip/a.yml", &flag("a", "requires: [b]\n")),
            ("flags/wip/b.yml", &flag("b", "requires: [c]\n")),
            ("flags/wip/c.yml", &flag("c", "requires: [a]\n")),
        ],
        &[("requires-cycle", "flags/wip/a.yml", 8, 12)],
    );
}

#[test]
fn check_requirement_on_unreadable_file_is_known() {
    check(
        &[
            ("flags/wip/a.yml", &flag("a", "requires: [b]\n")),
            ("flags/wip/b.yml", "name: b\n"),
        ],
        &[
            ("missing-key", "flags/wip/b.yml", 1, 1),
            ("missing-key", "flags/wip/b.yml", 1, 1),
            ("missing-key", "flags/wip/b.yml", 1, 1),
            ("missing-key", "flags/wip/b.yml", 1, 1),
            ("missing-key", "flags/wip/b.yml", 1, 1),
            ("missing-key", "flags/wip/b.yml", 1, 1),
        ],
    );
}

#[test]
fn check_rejects_rollout_times() {
    let rollout = "rollout:\n  - after: 15m\n    staging: true\n  - at: \"tomorrow\"\n    staging: true\n  - at: \"2026-11-24T09:00:00Z\"\n    after: 1h\n    staging: true\n  - after: 1mo\n    staging: true\n";
    check(
        &[("flags/wip/a.yml", &flag("a", rollout))],
        &[
            ("rollout-time", "flags/wip/a.yml", 9, 5),
            ("rollout-time", "flags/wip/a.yml", 11, 9),
            ("rollout-time", "flags/wip/a.yml", 14, 5),
            ("rollout-time", "flags/wip/a.yml", 16, 12),
        ],
    );
}

#[test]
fn check_rejects_rollout_out_of_order() {
    let rollout = "rollout:\n  - at: \"2026-11-24T09:00:00Z\"\n    staging: true\n  - at: \"2026-11-24T08:00:00Z\"\n    staging: false\n";
    check(
        &[("flags/wip/a.yml", &flag("a", rollout))],
        &[("rollout-order", "flags/wip/a.yml", 11, 9)],
    );
}

#[test]
fn check_rejects_empty_rollout_step() {
    let rollout = "rollout:\n  - at: \"2026-11-24T09:00:00Z\"\n    note: nothing here\n";
    check(
        &[("flags/wip/a.yml", &flag("a", rollout))],
        &[("rollout-empty-step", "flags/wip/a.yml", 9, 5)],
    );
}

// Every problem is reported, across files, not just the first.
#[test]
fn check_collects_all_problems() {
    check(
        &[
            (
                "flags/wip/a.yml",
                &flag(
                    "a",
                    "environments:\n  prod: true\n  staging:\n    percentage_of_actors: 12.3456\n",
                ),
            ),
            ("flags/wip/b.yml", &flag("c", "")),
        ],
        &[
            ("unknown-environment", "flags/wip/a.yml", 9, 3),
            ("percentage-precision", "flags/wip/a.yml", 11, 27),
            ("name-mismatch", "flags/wip/b.yml", 1, 7),
        ],
    );
}

// Human output looks like rustc: id, location, source line, caret, help.
#[test]
fn check_human_output_points_at_source() {
    let registry = Registry::new();
    registry.write("flags/wip/a.yml", flag("a", "environments:\n  prod: true\n"));
    let output = registry.run(&["validate"]);
    assert_eq!(output.code, 1);
    insta::assert_snapshot!(output.stdout, @r"
    error[unknown-environment]: unknown environment `prod`
     --> flags/wip/a.yml:9:3
      |
    9 |   prod: true
      |   ^^^^
      |
    help: did you mean `pre`?

    checked 1 flag file: 1 error, 0 warnings
    ");
}

// `--skip` turns a check off, and an unknown id is a tool error.
#[test]
fn check_skip_turns_a_check_off() {
    let registry = Registry::new();
    registry.write("flags/ops/a.yml", flag("a", ""));
    assert_eq!(registry.run(&["validate", "--skip", "path-layout"]).code, 0);
    let output = registry.run(&["validate", "--skip", "no-such-check"]);
    assert_eq!(output.code, 2);
    assert!(
        output.stderr.contains("unknown check `no-such-check`"),
        "{}",
        output.stderr
    );
}

// A misspelt step key is reported as such, not as a strange state.
#[test]
fn check_suggests_misspelt_step_key() {
    let rollout = "rollout:\n  - at: \"2026-11-24T09:00:00Z\"\n    notes: hello\n    staging: true\n";
    check(
        &[("flags/wip/a.yml", &flag("a", rollout))],
        &[("unknown-key", "flags/wip/a.yml", 10, 5)],
    );
}

// A required value listed under `todo` may be missing: `validate` warns about each entry, at its
// key, instead of refusing the file, and `stale` lists the flag; a value missing without a
// `todo` entry is still an error, and so is a rollout issue missing without one.
#[test]
fn check_todo_warns_instead_of_refusing() {
    let registry = Registry::new();
    registry.write(
        "flags/ops/a.yml",
        "name: a\ntype: ops\ndefault_enabled: false\ngroup: g\ntodo:\n  description: say what it guards\n  milestone: give it\n  introduced_by_url: link it\n  rollout_issue_url: link it\n",
    );
    registry.write(
        "flags/ops/b.yml",
        "name: b\ntype: ops\ndefault_enabled: false\ngroup: g\nmilestone: '17.1'\nintroduced_by_url: https://x.test/1\ntodo:\n  description: say what it guards\n",
    );
    let output = registry.run(&["validate", "--format", "json"]);
    let findings: Vec<Value> = serde_json::from_str(&output.stdout).unwrap();
    let found: Vec<(String, String, String, u64, u64)> = findings
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
                f["span"]["line"].as_u64().unwrap(),
                f["span"]["column"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("todo", "warning", "flags/ops/a.yml", 6, 3),
        ("todo", "warning", "flags/ops/a.yml", 7, 3),
        ("todo", "warning", "flags/ops/a.yml", 8, 3),
        ("todo", "warning", "flags/ops/a.yml", 9, 3),
        ("rollout-issue-required", "error", "flags/ops/b.yml", 2, 1),
        ("todo", "warning", "flags/ops/b.yml", 8, 3),
    ]
    .map(|(c, s, p, l, col)| (c.to_string(), s.to_string(), p.to_string(), l, col));
    assert_eq!(found, expected, "{}", output.stdout);
    assert_eq!(output.code, 1);

    registry.remove("flags/ops/b.yml");
    let text = registry.run(&["validate"]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(
        text.stdout
            .contains("`description` is still to be decided: say what it guards"),
        "{}",
        text.stdout
    );
    let stale = registry.run(&["stale"]);
    assert!(
        stale
            .stdout
            .contains("to do: description, introduced_by_url, milestone, rollout_issue_url\n"),
        "{}",
        stale.stdout
    );
}

//! Untrusted text: YAML tags and unclosed constructs, control characters in values and in git,
//! credentials in URLs, numbers that could overflow, and long `requires` chains.

use serde_json::Value;

use crate::harness::{Registry, flag};

/// Validates `files` in a fresh registry and returns every finding as JSON, with the exit code.
#[track_caller]
fn validate(files: &[(&str, &str)]) -> (i32, Vec<Value>) {
    let registry = Registry::new();
    for (path, text) in files {
        registry.write(path, text);
    }
    let output = registry.run(&["validate", "--format", "json"]);
    let findings: Vec<Value> = serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"));
    (output.code, findings)
}

/// The check id, line and column of each finding.
fn positions(findings: &[Value]) -> Vec<(String, u64, u64)> {
    findings
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_string(),
                f["span"]["line"].as_u64().unwrap(),
                f["span"]["column"].as_u64().unwrap(),
            )
        })
        .collect()
}

// Every tag is refused, on a mapping, a sequence or a scalar, including the core schema's
// `!!set`, `!!omap` and `!!python/...`, which saphyr's loader would silently drop.
#[test]
fn yaml_tags_are_refused_on_every_node_kind() {
    for (extra, line, column, tag) in [
        ("environments: !!set {production: true}\n", 8, 15, "!!set"),
        (
            "environments: !!python/object:os.system {staging: true}\n",
            8,
            15,
            "!!python/object:os.system",
        ),
        ("environments: !!omap [staging: true]\n", 8, 15, "!!omap"),
        ("owners: !!seq\n  - ada\n", 8, 9, "!!seq"),
        ("owners: [!!str ada]\n", 8, 10, "!!str"),
        ("owners: [!custom ada]\n", 8, 10, "!custom"),
    ] {
        let (code, findings) = validate(&[("flags/wip/a.yml", &flag("a", extra))]);
        assert_eq!(code, 1, "{extra}: {findings:?}");
        assert_eq!(
            positions(&findings),
            [("unsupported-yaml".to_string(), line, column)],
            "{extra}"
        );
        let message = findings[0]["message"].as_str().unwrap();
        assert!(message.contains(&format!("`{tag}`")), "{message}");
    }
    let (code, findings) = validate(&[("flags/wip/a.yml", &format!("!!python/object:x\n{}", flag("a", "")))]);
    assert_eq!(code, 1);
    assert_eq!(positions(&findings), [("unsupported-yaml".to_string(), 1, 1)]);
}

// An unclosed `[` or `{` is noticed lines later; the finding also says where it opened.
#[test]
fn yaml_unclosed_collection_names_where_it_opened() {
    for (extra, opener, line) in [
        (
            "owners: [ada, grace\nrollout_issue_url: https://example.com/1\n",
            '[',
            9,
        ),
        (
            "environments: {staging: [true]\nrollout_issue_url: https://example.com/1\n",
            '{',
            9,
        ),
    ] {
        let (code, findings) = validate(&[("flags/wip/a.yml", &flag("a", extra))]);
        assert_eq!(code, 1);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0]["check"], "yaml-syntax");
        assert_eq!(findings[0]["span"]["line"], line, "{findings:?}");
        let help = findings[0]["help"].as_str().unwrap();
        assert!(help.contains(&format!("`{opener}` opened at line 8, column")), "{help}");
    }
    // An unclosed quote is reported at the quote itself.
    let (_, findings) = validate(&[("flags/wip/a.yml", &flag("a", "owners: [\"ada, grace]\nlong: x\n"))]);
    assert_eq!(positions(&findings), [("yaml-syntax".to_string(), 8, 10)]);
    assert!(findings[0]["help"].as_str().unwrap().contains("quote"));
}

//! `flagops import gitlab` on GitLab's real definition files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flagops::source::{SourceFile, parse_yaml};
use serde_json::Value;

use crate::harness::{Registry, gitlab_corpus};

/// Every source definition by output path, parsed.
fn sources(corpus: &Path) -> BTreeMap<String, Value> {
    let mut found = BTreeMap::new();
    for entry in walkdir(corpus.join("config/feature_flags")) {
        let text = std::fs::read_to_string(&entry).unwrap();
        let document = parse_yaml(&SourceFile {
            path: entry.clone(),
            text,
        })
        .unwrap();
        let folder = entry
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let stem = entry.file_stem().unwrap().to_string_lossy().into_owned();
        found.insert(format!("flags/{folder}/{stem}.yml"), document.value);
    }
    found
}

fn walkdir(dir: PathBuf) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walkdir(path));
        } else if path.extension().is_some_and(|e| e == "yml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn is_blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => text.trim().is_empty(),
        _ => false,
    }
}

// Importing the 150 real files and validating them leaves only findings that are true
// problems of the source files, each checked against the source here.
#[test]
fn import_gitlab_corpus_validates_but_for_true_problems() {
    let corpus = gitlab_corpus();
    let registry = Registry::new();
    let output = registry.run(&["import", "gitlab", corpus.to_str().unwrap()]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        output.stdout.contains("imported 150 of 150 definitions"),
        "{}",
        output.stdout
    );

    let sources = sources(&corpus);
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for value in sources.values() {
        *names.entry(value["name"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let validation = registry.run(&["validate", "--format", "json"]);
    let findings: Vec<Value> = serde_json::from_str(&validation.stdout).unwrap();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for finding in &findings {
        let check = finding["check"].as_str().unwrap();
        let path = finding["path"].as_str().unwrap();
        let message = finding["message"].as_str().unwrap();
        let source = &sources[path];
        let justified = match check {
            "missing-key" => {
                let key = message
                    .trim_start_matches("missing required key `")
                    .trim_end_matches('`');
                is_blank(source.get(key))
            }
            "rollout-issue-required" => is_blank(source.get("rollout_issue_url")),
            "duplicate-name" => names[source["name"].as_str().unwrap()] > 1,
            "deprecated-type" => source["type"] == "development",
            _ => false,
        };
        assert!(justified, "not a true problem of the source: {finding}");
        *counts.entry(check.to_string()).or_default() += 1;
    }
    // The irregularities the corpus README lists are all found.
    assert_eq!(counts.get("duplicate-name"), Some(&2), "{counts:?}");
    assert!(counts.get("missing-key").copied().unwrap_or(0) >= 130, "{counts:?}");

    // What was carried over is kept exactly: names, types, milestones as strings.
    let imported = registry.read("flags/gitlab_com_derisk/cascade_unarchive_group.yml");
    assert!(imported.contains("milestone: \"18.7\""), "{imported}");
    assert!(
        output.stdout.contains("`observed` not carried over"),
        "{}",
        output.stdout
    );
}

// Import refuses to overwrite unless told to.
#[test]
fn import_keeps_existing_files() {
    let registry = Registry::new();
    let dir = registry.path().join("src/beta");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("x.yml"),
        "---\nname: x\ntype: beta\ngroup: g\ndefault_enabled: false\n",
    )
    .unwrap();
    registry.write("flags/beta/x.yml", "kept\n");
    let output = registry.run(&["import", "gitlab", "src", "--format", "json"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(registry.read("flags/beta/x.yml"), "kept\n");
    let report: Value = serde_json::from_str(&output.stdout).unwrap();
    assert!(report[0]["status"].as_str().unwrap().starts_with("skipped"));
    assert_eq!(registry.run(&["import", "gitlab", "src", "--force"]).code, 0);
    assert!(registry.read("flags/beta/x.yml").starts_with("# yaml-language-server"));
}

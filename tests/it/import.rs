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

// Importing the 150 real files with `--strict` and validating them leaves only findings that are
// true problems of the source files, each checked against the source here.
#[test]
fn import_gitlab_corpus_validates_but_for_true_problems() {
    let corpus = gitlab_corpus();
    let registry = Registry::new();
    let output = registry.run(&["import", "gitlab", corpus.to_str().unwrap(), "--strict"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        output.stdout.contains("imported 150 of 150 definitions, refused 0"),
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
    assert!(report["entries"][0]["status"].as_str().unwrap().starts_with("skipped"));
    assert_eq!(report["trees"][0]["skipped"], 1);
    assert_eq!(registry.run(&["import", "gitlab", "src", "--force"]).code, 0);
    assert!(registry.read("flags/beta/x.yml").starts_with("# yaml-language-server"));
}

/// A GitLab definition file with every key flagops requires.
fn definition(name: &str, flag_type: &str, default_enabled: &str) -> String {
    format!(
        "---\nname: {name}\ndescription: d\nintroduced_by_url: https://x.test/1\nrollout_issue_url: https://x.test/2\nmilestone: '17.1'\ngroup: group::x\ntype: {flag_type}\ndefault_enabled: {default_enabled}\n"
    )
}

/// The entry of the JSON report for the source file whose path ends with `suffix`.
fn entry<'a>(report: &'a Value, suffix: &str) -> &'a Value {
    report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["source"].as_str().unwrap().ends_with(suffix))
        .unwrap_or_else(|| panic!("no entry for {suffix}: {report:#}"))
}

/// The notes of an entry, as `key: message` lines.
fn notes(entry: &Value) -> Vec<String> {
    entry["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|note| {
            format!(
                "{}: {}",
                note["key"].as_str().unwrap(),
                note["message"].as_str().unwrap()
            )
        })
        .collect()
}

// A checkout's `config/`, `ee/config/` and `jh/config/` trees are all read; a name defined in two
// trees is refused, naming the file that defines it first; every value `validate` will refuse
// gets a note; and the per-tree counts add up to the files on disk.
#[test]
fn import_gitlab_checkout_reads_every_tree_and_notes_what_validate_refuses() {
    let registry = Registry::new();
    let files = [
        (
            "config/feature_flags/beta/shared_name.yml",
            definition("shared_name", "beta", "false"),
        ),
        (
            "config/feature_flags/wip/foss_only.yml",
            definition("foss_only", "wip", "false"),
        ),
        (
            "config/feature_flags/wip/renamed.yml",
            definition("other_name", "wip", "false"),
        ),
        (
            "config/feature_flags/licensed/old_license.yml",
            definition("old_license", "licensed", "false"),
        ),
        (
            "ee/config/feature_flags/beta/shared_name.yml",
            definition("shared_name", "beta", "true"),
        ),
        (
            "ee/config/feature_flags/ops/ee_only.yml",
            definition("ee_only", "ops", "[false, true]"),
        ),
        (
            "ee/config/feature_flags/wip/with-hyphen.yml",
            definition("with-hyphen", "wip", "false"),
        ),
        ("ee/config/feature_flags/wip/broken.yml", "name: [\n".to_string()),
        (
            "jh/config/feature_flags/wip/jh_only.yml",
            definition("jh_only", "wip", "false"),
        ),
    ];
    for (path, text) in &files {
        registry.write(&format!("gitlab/{path}"), text);
    }
    let output = registry.run(&["import", "gitlab", "gitlab", "--format", "json"]);
    assert_eq!(output.code, 1, "refusals exit 1: {output:?}");
    let report: Value = serde_json::from_str(&output.stdout).unwrap();

    let trees: Vec<(String, u64, u64, u64)> = report["trees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tree| {
            (
                tree["name"].as_str().unwrap().to_string(),
                tree["files"].as_u64().unwrap(),
                tree["imported"].as_u64().unwrap(),
                tree["refused"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        trees,
        [
            ("config/feature_flags".to_string(), 4, 4, 0),
            ("ee/config/feature_flags".to_string(), 4, 2, 2),
            ("jh/config/feature_flags".to_string(), 1, 1, 0),
        ]
    );
    let on_disk = walkdir(registry.path().join("gitlab")).len() as u64;
    assert_eq!(trees.iter().map(|tree| tree.1).sum::<u64>(), on_disk);
    assert_eq!(report["entries"].as_array().unwrap().len() as u64, on_disk);
    for entry in report["entries"].as_array().unwrap() {
        let status = entry["status"].as_str().unwrap();
        assert!(status == "imported" || status == "refused", "{entry}");
        if status == "refused" {
            assert!(!notes(entry).is_empty(), "a refusal without a reason: {entry}");
        }
    }

    let duplicate = notes(entry(&report, "ee/config/feature_flags/beta/shared_name.yml"));
    assert!(
        duplicate[0].contains("already defined by `gitlab/config/feature_flags/beta/shared_name.yml`"),
        "{duplicate:?}"
    );
    assert!(notes(entry(&report, "broken.yml"))[0].contains("broken.yml:2:1"));
    let noted = |suffix: &str, key: &str, words: &str| {
        let found = notes(entry(&report, suffix));
        assert!(
            found
                .iter()
                .any(|note| note.starts_with(&format!("{key}: ")) && note.contains(words)),
            "{suffix}: no note on `{key}` saying {words:?}: {found:#?}"
        );
    };
    noted("renamed.yml", "name", "differs from the file name `renamed`");
    noted("old_license.yml", "type", "`licensed` is not a type of flagops.yml");
    noted("ee_only.yml", "default_enabled", "the wrong shape");
    noted("with-hyphen.yml", "name", "rename the flag `with_hyphen`");

    // Each noted value is one that `validate` refuses, at the file the note named.
    let validation = registry.run(&["validate", "--format", "json"]);
    let findings: Vec<Value> = serde_json::from_str(&validation.stdout).unwrap();
    let mut errors: Vec<(String, String)> = findings
        .iter()
        .filter(|finding| finding["severity"] == "error")
        .map(|finding| {
            (
                finding["path"].as_str().unwrap().to_string(),
                finding["check"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    errors.sort();
    assert_eq!(
        errors,
        [
            ("flags/licensed/old_license.yml", "unknown-type"),
            ("flags/ops/ee_only.yml", "wrong-type"),
            ("flags/wip/renamed.yml", "name-mismatch"),
            ("flags/wip/with-hyphen.yml", "name-format"),
        ]
        .map(|(path, check)| (path.to_string(), check.to_string()))
    );

    // The human report names the trees it read and counts each.
    let again = registry.run(&["import", "gitlab", "gitlab"]);
    assert!(
        again
            .stdout
            .contains("read config/feature_flags, ee/config/feature_flags, jh/config/feature_flags\n"),
        "{}",
        again.stdout
    );
    assert!(
        again
            .stdout
            .contains("  ee/config/feature_flags: 4 files: 0 imported, 2 refused, 2 skipped;"),
        "{}",
        again.stdout
    );

    // The EE tree alone is one tree of its own.
    let ee = registry.run(&[
        "import",
        "gitlab",
        "gitlab/ee/config/feature_flags",
        "--out",
        "ee-only",
        "--format",
        "json",
    ]);
    let report: Value = serde_json::from_str(&ee.stdout).unwrap();
    assert_eq!(report["trees"].as_array().unwrap().len(), 1, "{report:#}");
    assert_eq!(report["trees"][0]["files"], 4);
}

// The 150 real files plus the live state of an instance serving `GET /api/v4/features` (booleans,
// percentages, actors of every kind, groups, a flag with no definition): the registry validates
// with only warnings, and the first plan against that instance is empty.
#[test]
fn import_gitlab_corpus_with_live_state_validates_and_plans_nothing() {
    use crate::fake_gitlab::{FakeGitlab, Feature, TOKEN};
    use crate::gitlab::TOKEN_ENV;

    let production = FakeGitlab::start();
    {
        let mut world = production.world();
        let mut put = |name: &str, feature: Feature| {
            world.features.insert(name.to_string(), feature);
        };
        put(
            "activity_pub",
            Feature {
                boolean: true,
                ..Feature::default()
            },
        );
        put("access_token_pagination", Feature::default());
        put(
            "admin_groups_vue",
            Feature {
                percentage_of_actors: 25.0,
                ..Feature::default()
            },
        );
        put(
            "achievements",
            Feature {
                actors: [
                    "User:1".to_string(),
                    "Project:278964".to_string(),
                    "Group:9970".to_string(),
                    "Namespaces::UserNamespace:102".to_string(),
                    "Ci::Runner:12270807".to_string(),
                ]
                .into(),
                ..Feature::default()
            },
        );
        put(
            "action_cable_notes",
            Feature {
                percentage_of_time: 12.5,
                groups: ["gitlab_team_members".to_string()].into(),
                ..Feature::default()
            },
        );
        put(
            "chatops_only_flag",
            Feature {
                boolean: true,
                ..Feature::default()
            },
        );
    }
    let registry = crate::gitlab::registry(&[("production", &production)], 10);
    let env = [(TOKEN_ENV, TOKEN), ("NO_PROXY", "127.0.0.1")];
    let corpus = gitlab_corpus();
    let import = |extra: &[&str]| {
        let mut args = vec!["import", "gitlab", corpus.to_str().unwrap(), "--state", "production"];
        args.extend(extra);
        registry.run_with_env(&args, &env)
    };

    // Without a type for them, flags with no definition are listed, not written.
    let listed = import(&["--out", "listed"]);
    assert!(
        listed
            .stdout
            .contains("chatops_only_flag in production: lives only in the environment (no definition file)\n"),
        "{}",
        listed.stdout
    );
    assert!(
        listed
            .stdout
            .contains("help: write them as flags of a type with `--orphans-type TYPE`")
    );

    let output = import(&["--orphans-type", "wip"]);
    assert_eq!(output.code, 1, "the two duplicate names are refused: {output:?}");
    assert!(
        output
            .stdout
            .contains("imported 148 of 150 definitions, refused 2; 133 with notes"),
        "{}",
        output.stdout
    );
    assert!(
        output.stdout.contains("state read from production\n"),
        "{}",
        output.stdout
    );
    let achievements = registry.read("flags/development/achievements.yml");
    assert!(
        achievements.contains(
            "environments:\n  production:\n    actors:\n      group: [gitlab-org]\n      namespace: [bob]\n      project: [gitlab-org/gitlab]\n      runner: [12270807]\n      user: [alice]\n"
        ),
        "{achievements}"
    );
    assert!(
        registry
            .read("flags/beta/admin_groups_vue.yml")
            .contains("environments:\n  production:\n    percentage_of_actors: 25\n")
    );
    assert!(
        registry
            .read("flags/wip/chatops_only_flag.yml")
            .contains("production: true")
    );

    let validation = registry.run(&["validate", "--format", "json"]);
    assert_eq!(validation.code, 0, "{validation:?}");
    let findings: Vec<Value> = serde_json::from_str(&validation.stdout).unwrap();
    let errors: Vec<&Value> = findings
        .iter()
        .filter(|finding| finding["severity"] != "warning")
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(findings.iter().any(|finding| finding["check"] == "todo"));

    let plan = registry.run_with_env(&["plan", "--env", "production", "--exit-code"], &env);
    assert_eq!(plan.code, 0, "the first plan changes nothing: {plan:?}");
}

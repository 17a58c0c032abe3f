//! `flagops set` and `flagops get`: ChatOps's command lines on the registry's files.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::harness::{Output, Registry, example_registry, flag, repo_root};

/// Every flag file under `flags/` of the registry, as relative paths.
fn flag_files(registry: &Registry) -> Vec<String> {
    let mut files: Vec<String> = walkdir::WalkDir::new(registry.path().join("flags"))
        .into_iter()
        .map(Result::unwrap)
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            entry
                .path()
                .strip_prefix(registry.path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    files
}

/// Every file of the registry with its bytes, to prove a refusal wrote nothing.
fn snapshot(registry: &Registry) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = walkdir::WalkDir::new(registry.path())
        .into_iter()
        .map(Result::unwrap)
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| (entry.path().to_path_buf(), std::fs::read(entry.path()).unwrap()))
        .collect();
    files.sort();
    files
}

/// The example flags in a registry whose policies are off, so any state may be written.
fn example_without_policies() -> Registry {
    let registry = Registry::new();
    for entry in walkdir::WalkDir::new(repo_root().join("flags")) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let relative = entry.path().strip_prefix(repo_root()).unwrap();
            registry.write(relative.to_str().unwrap(), std::fs::read(entry.path()).unwrap());
        }
    }
    registry
}

/// The lines that differ between `before` and `after`, once their common first and last lines
/// are set aside: (the lines of `before`, the lines of `after`).
fn changed_lines<'a>(before: &'a str, after: &'a str) -> (Vec<&'a str>, Vec<&'a str>) {
    let old: Vec<&str> = before.split_inclusive('\n').collect();
    let new: Vec<&str> = after.split_inclusive('\n').collect();
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    (
        old[prefix..old.len() - suffix].to_vec(),
        new[prefix..new.len() - suffix].to_vec(),
    )
}

fn name_of(relative: &str) -> String {
    Path::new(relative).file_stem().unwrap().to_string_lossy().into_owned()
}

/// Flips `ops` of the flag in `relative` and checks that only its entry changed, that the
/// result validates (`set` refuses otherwise), and that the same line again writes nothing.
fn round_trip(registry: &Registry, relative: &str) {
    let name = name_of(relative);
    let before = registry.read(relative);
    let document = flagops::source::parse_yaml(&flagops::source::SourceFile {
        path: relative.into(),
        text: before.clone(),
    })
    .unwrap();
    let current = document.value.pointer("/environments/ops").cloned();
    let value = if current == Some(json!(true)) { "false" } else { "true" };
    let output = registry.run(&["set", &name, value, "--ops"]);
    assert_eq!(output.code, 0, "{relative}: {output:?}");
    let after = registry.read(relative);
    let (old, new) = changed_lines(&before, &after);
    // What was there for `ops` is gone, and `ops: VALUE` (with `environments:` when the file
    // had none) took its place; every other line is as it was, byte for byte.
    let expected_new: Vec<String> = if document.value.get("environments").is_some() {
        vec![format!("  ops: {value}\n")]
    } else {
        vec!["environments:\n".to_string(), format!("  ops: {value}\n")]
    };
    assert_eq!(new, expected_new, "{relative}:\n{after}");
    match &current {
        None => assert!(old.is_empty(), "{relative}: {old:?}"),
        Some(_) => {
            assert!(old[0].starts_with("  ops:"), "{relative}: {old:?}");
            assert!(
                old[1..].iter().all(|line| line.starts_with("    ")),
                "{relative}: {old:?}"
            );
        }
    }
    let written = flagops::source::parse_yaml(&flagops::source::SourceFile {
        path: relative.into(),
        text: after.clone(),
    })
    .unwrap();
    assert_eq!(
        written.value["environments"]["ops"],
        json!(value == "true"),
        "{relative}"
    );

    let modified = std::fs::metadata(registry.path().join(relative))
        .unwrap()
        .modified()
        .unwrap();
    let again = registry.run(&["set", &name, value, "--ops"]);
    assert_eq!(again.code, 0, "{relative}: {again:?}");
    assert!(again.stdout.contains("is already"), "{relative}: {again:?}");
    assert!(again.stdout.contains("is not written"), "{relative}: {again:?}");
    assert_eq!(registry.read(relative), after, "{relative}");
    assert_eq!(
        std::fs::metadata(registry.path().join(relative))
            .unwrap()
            .modified()
            .unwrap(),
        modified,
        "{relative}"
    );
}

/// The value at `pointer` in the flag file `relative`, as written.
fn written(registry: &Registry, relative: &str, pointer: &str) -> Value {
    let document = flagops::source::parse_yaml(&flagops::source::SourceFile {
        path: relative.into(),
        text: registry.read(relative),
    })
    .unwrap();
    document.value.pointer(pointer).cloned().unwrap_or(Value::Null)
}

/// Adds a project to the flag's production state and checks that only lines of its
/// `production` entry changed, and that the file holds what GitLab would hold.
fn add_actor(registry: &Registry, relative: &str) {
    let name = name_of(relative);
    let before = registry.read(relative);
    let old = written(registry, relative, "/environments/production");
    let output = registry.run(&["set", &name, "true", "--project=gitlab-org/gitlab-qa", "--production"]);
    assert_eq!(output.code, 0, "{relative}: {output:?}");
    let after = registry.read(relative);
    let (removed, added) = changed_lines(&before, &after);
    for line in removed.iter().chain(&added) {
        assert!(
            line.starts_with("  production:") || line.starts_with("    "),
            "{relative}: `{line}` is not part of the production entry"
        );
    }
    let expected = match old {
        Value::Bool(true) => json!(true),
        Value::Object(mut gates) => {
            let actors = gates.entry("actors").or_insert(json!({})).as_object_mut().unwrap();
            let projects = actors.entry("project").or_insert(json!([])).as_array_mut().unwrap();
            projects.push(json!("gitlab-org/gitlab-qa"));
            Value::Object(gates)
        }
        _ => json!({"actors": {"project": ["gitlab-org/gitlab-qa"]}}),
    };
    assert_eq!(
        written(registry, relative, "/environments/production"),
        expected,
        "{relative}"
    );
}

#[test]
fn set_round_trip_on_every_example_flag() {
    let registry = example_without_policies();
    let files = flag_files(&registry);
    assert!(files.len() >= 30, "{files:?}");
    for relative in &files {
        round_trip(&registry, relative);
        add_actor(&registry, relative);
    }
    assert_eq!(registry.run(&["validate"]).code, 0);
}

/// Fills in what the GitLab corpus lacks (descriptions, milestones, ...), so that its files
/// validate and `set` can edit them.
fn repair_imported(registry: &Registry) {
    for _ in 0..4 {
        let output = registry.run(&["validate", "--format", "json"]);
        let findings: Vec<Value> = serde_json::from_str(&output.stdout).unwrap();
        let errors: Vec<&Value> = findings.iter().filter(|d| d["severity"] == "error").collect();
        if errors.is_empty() {
            return;
        }
        for finding in errors {
            let path = finding["path"].as_str().unwrap();
            if !registry.path().join(path).exists() {
                continue;
            }
            let message = finding["message"].as_str().unwrap();
            let line = match finding["check"].as_str().unwrap() {
                "missing-key" if message.contains("`description`") => "description: Imported from GitLab.",
                "missing-key" if message.contains("`group`") => "group: group::import",
                "missing-key" if message.contains("`milestone`") => "milestone: \"17.0\"",
                "missing-key" if message.contains("`introduced_by_url`") => {
                    "introduced_by_url: https://gitlab.com/gitlab-org/gitlab/-/merge_requests/1"
                }
                "rollout-issue-required" => "rollout_issue_url: https://gitlab.com/gitlab-org/gitlab/-/issues/1",
                "duplicate-name" => {
                    registry.remove(path);
                    continue;
                }
                other => panic!("unexpected finding {other} in {path}: {message}"),
            };
            let text = registry.read(path);
            let cut = text
                .find("\nname: ")
                .map(|at| at + 1 + text[at + 1..].find('\n').unwrap() + 1)
                .unwrap();
            registry.write(path, format!("{}{line}\n{}", &text[..cut], &text[cut..]));
        }
    }
    panic!("the imported corpus still has errors");
}

#[test]
fn set_round_trip_on_every_imported_gitlab_file() {
    let corpus = crate::harness::gitlab_corpus();
    let registry = Registry::new();
    let output = registry.run(&["import", "gitlab", corpus.to_str().unwrap(), "--strict"]);
    assert_eq!(output.code, 0, "{output:?}");
    repair_imported(&registry);
    let files = flag_files(&registry);
    assert!(files.len() >= 140, "{}", files.len());
    for relative in &files {
        round_trip(&registry, relative);
    }
    assert_eq!(registry.run(&["validate"]).code, 0);
}

#[test]
fn done_when_line_changes_exactly_four_environments_and_prints_the_plan() {
    let registry = example_registry();
    let relative = "flags/gitlab_com_derisk/importer_preallocate_iids.yml";
    // The example already holds 50% of actors there: start from the step before, off.
    let reset = registry.run(&[
        "set",
        "importer_preallocate_iids",
        "false",
        "--dev",
        "--pre",
        "--staging",
        "--staging-ref",
    ]);
    assert_eq!(reset.code, 0, "{reset:?}");
    let before = registry.read(relative);
    let output = registry.run(&[
        "set",
        "importer_preallocate_iids",
        "50",
        "--actors",
        "--dev",
        "--pre",
        "--staging",
        "--staging-ref",
    ]);
    assert_eq!(output.code, 0, "{output:?}");
    let after = registry.read(relative);
    let (old, new) = changed_lines(&before, &after);
    assert_eq!(
        old,
        [
            "  dev: false\n",
            "  pre: false\n",
            "  staging: false\n",
            "  staging-ref: false\n"
        ]
    );
    assert_eq!(
        new,
        [
            "  dev:\n",
            "    percentage_of_actors: 50\n",
            "  pre:\n",
            "    percentage_of_actors: 50\n",
            "  staging:\n",
            "    percentage_of_actors: 50\n",
            "  staging-ref:\n",
            "    percentage_of_actors: 50\n",
        ]
    );
    // Back to the example's own file, byte for byte.
    assert_eq!(after, std::fs::read_to_string(repo_root().join(relative)).unwrap());
    assert!(
        output.stdout.contains("  staging-ref: false → 50% of actors\n"),
        "{}",
        output.stdout
    );
    assert!(output.stdout.contains("\nplan:\n"), "{}", output.stdout);
    assert!(output.stdout.contains("production: "), "{}", output.stdout);
    assert_eq!(registry.run(&["validate"]).code, 0);
    // No other file changed.
    for file in flag_files(&registry).iter().filter(|file| *file != relative) {
        assert_eq!(
            registry.read(file),
            std::fs::read_to_string(repo_root().join(file)).unwrap(),
            "{file}"
        );
    }
}

/// The desired state of `my_flag` in `environment`, read back through `get --format json`.
fn state(registry: &Registry, environment: &str) -> Value {
    let output = registry.run(&["get", "my_flag", "--env", environment, "--format", "json"]);
    assert_eq!(output.code, 0, "{output:?}");
    let report: Value = serde_json::from_str(&output.stdout).unwrap();
    report["environments"][environment].clone()
}

/// How a command line must end.
enum Expect {
    /// Exit 0 with these states (as `get --format json` shows them) in these environments.
    States(Vec<(&'static str, Value)>),
    /// Exit 1, nothing written, and this text in the error.
    Refused(&'static str),
}

#[test]
fn chatops_command_lines_give_the_states_chatops_gives() {
    let gates = "environments:\n  production:\n    percentage_of_actors: 25\n    actors:\n      project:\n        - gitlab-org/gitlab\n";
    let project_only = "environments:\n  production:\n    actors:\n      project:\n        - gitlab-org/gitlab\n";
    let on = "environments:\n  production: true\n";
    let cases: Vec<(&str, &str, Expect)> = vec![
        // No environment means production, as in ChatOps.
        (
            "",
            "set my_flag true",
            Expect::States(vec![("production", json!(true)), ("staging", Value::Null)]),
        ),
        (
            "",
            "set my_flag 50 --actors --production",
            Expect::States(vec![("production", json!({"percentage_of_actors": 50}))]),
        ),
        (
            "",
            "set my_flag 50 --actors --dev --pre --staging --staging-ref",
            Expect::States(vec![
                ("dev", json!({"percentage_of_actors": 50})),
                ("pre", json!({"percentage_of_actors": 50})),
                ("staging", json!({"percentage_of_actors": 50})),
                ("staging-ref", json!({"percentage_of_actors": 50})),
                ("production", Value::Null),
            ]),
        ),
        (
            "",
            "set my_flag 25 --random --ignore-random-deprecation-check",
            Expect::States(vec![("production", json!({"percentage_of_time": 25}))]),
        ),
        (
            "",
            "set my_flag 0.125 --actors",
            Expect::States(vec![("production", json!({"percentage_of_actors": 0.125}))]),
        ),
        (
            "",
            "set my_flag 100 --actors",
            Expect::States(vec![("production", json!(true))]),
        ),
        (
            gates,
            "set my_flag 0 --actors",
            Expect::States(vec![("production", json!(false))]),
        ),
        (
            "",
            "set my_flag true --project=gitlab-org/gitlab,gitlab-org/gitlab-foss,gitlab-com/www-gitlab-com",
            Expect::States(vec![(
                "production",
                json!({"actors": ["project:gitlab-com/www-gitlab-com", "project:gitlab-org/gitlab", "project:gitlab-org/gitlab-foss"]}),
            )]),
        ),
        (
            "",
            "set my_flag true --group=gitlab-org,gitlab-com",
            Expect::States(vec![(
                "production",
                json!({"actors": ["group:gitlab-com", "group:gitlab-org"]}),
            )]),
        ),
        (
            "",
            "set my_flag true --user=dri",
            Expect::States(vec![("production", json!({"actors": ["user:dri"]}))]),
        ),
        (
            "",
            "set my_flag true --feature-group=gitlab_team_members",
            Expect::States(vec![("production", json!({"groups": ["gitlab_team_members"]}))]),
        ),
        (
            "",
            "set my_flag true --namespace=gitlab-qa --repository=gitlab-org/gitlab.git",
            Expect::States(vec![(
                "production",
                json!({"actors": ["namespace:gitlab-qa", "repository:gitlab-org/gitlab.git"]}),
            )]),
        ),
        (
            gates,
            "set my_flag true --project=gitlab-org/gitlab-foss",
            Expect::States(vec![(
                "production",
                json!({"percentage_of_actors": 25, "actors": ["project:gitlab-org/gitlab", "project:gitlab-org/gitlab-foss"]}),
            )]),
        ),
        (
            gates,
            "set my_flag false --project=gitlab-org/gitlab",
            Expect::States(vec![("production", json!({"percentage_of_actors": 25}))]),
        ),
        (
            project_only,
            "set my_flag false --project=gitlab-org/gitlab",
            Expect::States(vec![("production", json!(false))]),
        ),
        (
            "",
            "set my_flag false --project=gitlab-org/gitlab",
            Expect::States(vec![("production", json!(false))]),
        ),
        (
            on,
            "set my_flag true --project=gitlab-org/gitlab",
            Expect::States(vec![("production", json!(true))]),
        ),
        (
            gates,
            "set my_flag 50 --actors",
            Expect::States(vec![(
                "production",
                json!({"percentage_of_actors": 50, "actors": ["project:gitlab-org/gitlab"]}),
            )]),
        ),
        (
            gates,
            "set my_flag false",
            Expect::States(vec![("production", json!(false))]),
        ),
        (
            gates,
            "set my_flag true",
            Expect::States(vec![("production", json!(true))]),
        ),
        (
            gates,
            "set `my_flag` true",
            Expect::States(vec![("production", json!(true))]),
        ),
        (
            on,
            "set my_flag --delete --dev --pre --staging --staging-ref --production",
            Expect::States(vec![("production", Value::Null), ("dev", Value::Null)]),
        ),
        (
            on,
            "set my_flag 50 --actors",
            Expect::Refused("Cannot enable percentage of actors for a fully-enabled flag"),
        ),
        (
            "",
            "set my_flag 50",
            Expect::Refused("One of `--actors` or `--random` must be set for percentage values."),
        ),
        (
            "",
            "set my_flag 50 --random",
            Expect::Refused("Time percentage feature flags are being deprecated"),
        ),
        (
            "",
            "set my_flag 50 --actors --random",
            Expect::Refused("`--actors` and `--random` cannot be combined"),
        ),
        (
            "",
            "set my_flag 50 --actors --project=gitlab-org/gitlab",
            Expect::Refused("cannot be combined with `--project`"),
        ),
        (
            "",
            "set my_flag true --random --group=gitlab-org",
            Expect::Refused("cannot be combined with `--project`"),
        ),
        ("", "set my_flag 101", Expect::Refused("`101` is out of range")),
        (
            "",
            "set my_flag 12.3456 --actors",
            Expect::Refused("more than three decimals"),
        ),
        ("", "set my_flag maybe", Expect::Refused("`maybe` is not a value")),
        ("", "set my_flag", Expect::Refused("a value is needed")),
        (
            "",
            "set my_flag true --delete",
            Expect::Refused("`--delete` takes no value"),
        ),
        (
            "",
            "set my_flag --delete --project=gitlab-org/gitlab",
            Expect::Refused("`--delete` removes the whole state"),
        ),
        (
            "",
            "set my_flag true --project=a,,b",
            Expect::Refused("holds an empty item"),
        ),
        ("", "set my_flga true", Expect::Refused("did you mean `my_flag`?")),
        (
            "",
            "set my_flag true --env nowhere",
            Expect::Refused("unknown environment `nowhere`"),
        ),
        (
            "",
            "set my_flag true --ignore-production-check",
            Expect::Refused("flagops runs no production check"),
        ),
        (
            "",
            "set my_flag true --ignore-feature-flag-consistency-check",
            Expect::Refused("`promotion-order` policy"),
        ),
        // Accepted by ChatOps's rules, refused by the registry's checks: nothing is written.
        (
            "",
            "set my_flag true --feature-group=nobody",
            Expect::Refused("not written: with this change the registry would have 1 error"),
        ),
    ];
    for (environments, line, expect) in cases {
        let registry = Registry::new();
        registry.write("flags/wip/my_flag.yml", flag("my_flag", environments));
        let before = snapshot(&registry);
        let args: Vec<&str> = line.split(' ').collect();
        let output: Output = registry.run(&args);
        match expect {
            Expect::States(states) => {
                assert_eq!(output.code, 0, "{line}: {output:?}");
                for (environment, state_expected) in states {
                    assert_eq!(state(&registry, environment), state_expected, "{line} in {environment}");
                }
                assert_eq!(registry.run(&["validate"]).code, 0, "{line}");
            }
            Expect::Refused(text) => {
                assert_eq!(output.code, 1, "{line}: {output:?}");
                assert!(output.stderr.contains(text), "{line}: {}", output.stderr);
                assert_eq!(snapshot(&registry), before, "{line} wrote something");
            }
        }
    }
}

#[test]
fn set_refuses_a_change_the_policies_refuse() {
    let registry = Registry::with_policies();
    registry.write(
        "flags/wip/my_flag.yml",
        flag("my_flag", "environments:\n  dev: true\n  pre: true\n"),
    );
    let before = snapshot(&registry);
    // Production ahead of staging: GitLab's consistency check, here the promotion-order policy.
    let output = registry.run(&["set", "my_flag", "true"]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(output.stderr.contains("promotion-order"), "{}", output.stderr);
    assert_eq!(snapshot(&registry), before);
}

#[test]
fn set_format_json_says_what_changed() {
    let registry = Registry::new();
    registry.write(
        "flags/wip/my_flag.yml",
        flag("my_flag", "environments:\n  dev: false\n"),
    );
    let output = registry.run(&[
        "set",
        "my_flag",
        "25",
        "--actors",
        "--dev",
        "--staging",
        "--format",
        "json",
    ]);
    assert_eq!(output.code, 0, "{output:?}");
    let report: Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(report["file"], "flags/wip/my_flag.yml");
    assert_eq!(report["written"], true);
    assert_eq!(
        report["changes"],
        json!([
            {"environment": "dev", "before": false, "after": {"percentage_of_actors": 25}},
            {"environment": "staging", "before": null, "after": {"percentage_of_actors": 25}},
        ])
    );
    assert_eq!(report["plans"][0]["environment"], "dev");
    assert_eq!(report["plans"][0]["changes"][0]["flag"], "my_flag");
    let again = registry.run(&["set", "my_flag", "25", "--actors", "--dev", "--format", "json"]);
    let report: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(report["written"], false);
    assert_eq!(report["unchanged"], json!(["dev"]));
}

#[test]
fn get_shows_the_desired_state_per_environment() {
    let registry = Registry::new();
    registry.write(
        "flags/wip/my_flag.yml",
        flag(
            "my_flag",
            "environments:\n  staging: true\n  production:\n    percentage_of_actors: 10\n",
        ),
    );
    let output = registry.run(&["get", "my_flag", "--staging", "--production", "--dev"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(
        output.stdout,
        "my_flag (flags/wip/my_flag.yml)\n  dev: nothing stored (default_enabled: false)\n  staging: true\n  production: 10% of actors\n"
    );
    let all = registry.run(&["get", "my_flag", "--format", "json"]);
    let report: Value = serde_json::from_str(&all.stdout).unwrap();
    let names: Vec<&String> = report["environments"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["dev", "pre", "staging", "staging-ref", "ops", "production"]);
    let unknown = registry.run(&["get", "my_flg"]);
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.contains("did you mean `my_flag`?"), "{}", unknown.stderr);
}

#[test]
fn unknown_switch_is_refused_with_a_suggestion() {
    let registry = Registry::new();
    registry.write("flags/wip/my_flag.yml", flag("my_flag", ""));
    let before = snapshot(&registry);
    let output = registry.run(&["set", "my_flag", "true", "--prod"]);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(output.stderr.contains("--production"), "{}", output.stderr);
    assert_eq!(snapshot(&registry), before);
    let help = registry.run(&["set", "--help"]);
    assert!(help.stdout.contains("--staging-ref"), "{}", help.stdout);
    assert!(
        help.stdout.contains("flagops set my_flag 50 --actors"),
        "{}",
        help.stdout
    );
}

#[test]
fn hostile_input_is_refused_and_nothing_is_written() {
    let registry = Registry::new();
    registry.write("flags/wip/my_flag.yml", flag("my_flag", ""));
    registry.write("outside.yml", flag("outside", ""));
    let before = snapshot(&registry);
    let cases: [&[&str]; 5] = [
        &["set", "../outside", "true"],
        &["set", "../../flags/wip/my_flag", "true"],
        &["set", "my_flag", "5\u{1b}[31m0", "--actors"],
        &["set", "my_flag", "true", "--project=gitlab-org\ngitlab"],
        &["set", "my_flag", "true", "--user=a\u{7}b"],
    ];
    for args in cases {
        let output = registry.run(args);
        assert_eq!(output.code, 1, "{args:?}: {output:?}");
        assert!(
            !output.stderr.contains('\u{1b}'),
            "{args:?}: a raw escape reached the terminal"
        );
        assert!(
            !output.stderr.contains('\u{7}'),
            "{args:?}: a raw bell reached the terminal"
        );
        assert_eq!(snapshot(&registry), before, "{args:?} wrote something");
    }
}

#[test]
fn set_without_environment_uses_default_environment() {
    let registry = Registry::new();
    registry.write("flags/wip/my_flag.yml", flag("my_flag", ""));
    let config = registry.read("flagops.yml");
    registry.write(
        "flagops.yml",
        config.replace("default_environment: production", "default_environment: staging"),
    );
    let output = registry.run(&["set", "my_flag", "true"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(state(&registry, "staging"), json!(true));
    assert_eq!(state(&registry, "production"), Value::Null);

    registry.write(
        "flagops.yml",
        config.replace("default_environment: production", "default_environment: nowhere"),
    );
    let before = snapshot(&registry);
    let output = registry.run(&["set", "my_flag", "false"]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output.stderr.contains("`default_environment` `nowhere`"),
        "{}",
        output.stderr
    );
    assert_eq!(snapshot(&registry), before);
}

#[test]
fn set_to_the_current_entry_still_says_a_due_step_decides() {
    let registry = example_registry();
    let relative = "flags/gitlab_com_derisk/importer_preallocate_iids.yml";
    let before = registry.read(relative);
    // The file's `environments` entry for dev is already 50% of actors, but the rollout step of
    // 2026-11-24 sets dev to true: the entry does not decide the state now.
    let output = registry.run(&["set", "importer_preallocate_iids", "50", "--actors", "--dev"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        output
            .stdout
            .contains("`importer_preallocate_iids` is already 50% of actors in dev\nnote: a rollout step of `importer_preallocate_iids` that is due sets dev to true, so its `environments` entry does not take effect there now"),
        "{}",
        output.stdout
    );
    assert_eq!(registry.read(relative), before);
}

#[test]
fn set_keeps_the_comment_after_a_flow_collection_on_the_key_s_line() {
    // The comment after a value on its key's line stays when `set` writes the entry again,
    // whether the value was a scalar or a collection in flow style.
    let cases = [
        (
            "  dev: {groups: [gitlab_team_members]} # c\n",
            &["set", "my_flag", "true", "--dev"][..],
            "  dev: true # c\n",
        ),
        (
            "  dev:\n    actors:\n      project: [gitlab-org/gitlab] # c\n",
            &["set", "my_flag", "true", "--project=gitlab-org/gitlab-qa", "--dev"][..],
            "  dev:\n    actors:\n      project: # c\n        - gitlab-org/gitlab\n        - gitlab-org/gitlab-qa\n",
        ),
        (
            "  dev: {groups: [gitlab_team_members]}  # c\n",
            &["set", "my_flag", "50", "--actors", "--dev"][..],
            "  dev:  # c\n    percentage_of_actors: 50\n    groups:\n      - gitlab_team_members\n",
        ),
    ];
    for (entry, args, expected) in cases {
        let registry = Registry::new();
        let relative = "flags/wip/my_flag.yml";
        registry.write(relative, flag("my_flag", &format!("environments:\n{entry}")));
        let output = registry.run(args);
        assert_eq!(output.code, 0, "{entry:?}: {output:?}");
        assert_eq!(
            registry.read(relative),
            flag("my_flag", &format!("environments:\n{expected}")),
            "{entry:?}"
        );
    }
}

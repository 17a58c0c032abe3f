//! `flagops eval`, `flagops test`, `flagops rollout` and `flagops stale` on the example registry
//! and on small registries.

use serde_json::Value;

use crate::harness::{Registry, example_registry, flag};

fn json(output: &crate::harness::Output) -> Value {
    assert_eq!(output.code, 0, "{output:?}");
    serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"))
}

/// A registry with one flag at 25% of actors plus one listed project, in production.
fn quarter() -> Registry {
    let registry = Registry::new();
    registry.write(
        "flags/wip/my_feature.yml",
        flag(
            "my_feature",
            "environments:\n  production:\n    percentage_of_actors: 25\n    actors:\n      project: [99]\n    groups: [gitlab_team_members]\n",
        ),
    );
    registry
}

// Buckets from ../shared/recipes/flipper-postgres.md §10, computed with Ruby's and Python's
// CRC-32 and checked against Flipper's own `enabled?` at 25%.
#[test]
fn eval_follows_flippers_gates_and_hash() {
    let registry = quarter();
    let report = json(&registry.run(&[
        "eval",
        "my_feature",
        "--env",
        "production",
        "--actor",
        "Project:46905",
        "--actor",
        "Project:29827",
        "--actor",
        "Project:99",
        "--actor",
        "User:1",
        "--actor",
        "Project:1",
        "--format",
        "json",
    ]));
    let results: Vec<(String, String, String, Value)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["actor"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
                r["gate"].as_str().unwrap().to_string(),
                r["bucket"].clone(),
            )
        })
        .collect();
    let expected = [
        ("Project:46905", "on", "percentage_of_actors", Value::from(24999)),
        ("Project:29827", "off", "none", Value::from(25000)),
        ("Project:99", "on", "actor", Value::Null),
        ("User:1", "on", "percentage_of_actors", Value::from(24992)),
        ("Project:1", "off", "none", Value::from(72549)),
    ];
    let expected: Vec<(String, String, String, Value)> = expected
        .into_iter()
        .map(|(a, o, g, b)| (a.to_string(), o.to_string(), g.to_string(), b))
        .collect();
    assert_eq!(results, expected);

    // With no actor only the boolean, time and group gates can open.
    let report = json(&registry.run(&["eval", "my_feature", "--env", "production", "--format", "json"]));
    assert_eq!(report["results"][0]["outcome"], "off");
    let report = json(&registry.run(&[
        "eval",
        "my_feature",
        "--env",
        "production",
        "--group",
        "gitlab_team_members",
        "--format",
        "json",
    ]));
    assert_eq!(report["results"][0]["gate"], "group");
    // Nothing stored falls back to default_enabled.
    let report = json(&registry.run(&["eval", "my_feature", "--env", "staging", "--format", "json"]));
    assert_eq!(report["results"][0]["gate"], "default");
}

#[test]
fn eval_counts_actors_that_switch() {
    let registry = quarter();
    let ids: String = (1..=1000).map(|id| format!("Project:{id}\n")).collect();
    registry.write("actors.txt", ids);
    let at = |percentage: &str| {
        json(&registry.run(&[
            "eval",
            "my_feature",
            "--env",
            "production",
            "--actors-file",
            "actors.txt",
            "--percentage",
            percentage,
            "--format",
            "json",
        ]))
    };
    let up = at("50");
    let on_now = up["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "on")
        .count();
    // The recipe checked Project:1..1000 at 25% against Flipper: the share is near a quarter.
    assert!((200..300).contains(&on_now), "{on_now}");
    assert_eq!(up["switched_off"], 0, "raising a percentage never switches anyone off");
    let switched_on = up["switched_on"].as_u64().unwrap() as usize;
    assert!((200..300).contains(&switched_on), "{switched_on}");
    let down = at("10");
    assert_eq!(down["switched_on"], 0);
    assert_eq!(
        down["switched_off"].as_u64().unwrap() as usize
            + down["results"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["compared"]["outcome"] == "on")
                .count(),
        on_now
    );
}

#[test]
fn eval_explains_bad_input() {
    let registry = quarter();
    let output = registry.run(&["eval", "my_featur", "--env", "production"]);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(output.stderr.contains("did you mean `my_feature`?"), "{output:?}");
    let output = registry.run(&["eval", "my_feature", "--env", "prod"]);
    assert!(output.stderr.contains("unknown environment `prod`"), "{output:?}");
    let output = registry.run(&["eval", "my_feature", "--env", "production", "--group", "admins"]);
    assert!(output.stderr.contains("unknown feature group `admins`"), "{output:?}");
}

#[test]
fn example_evaluation_tests_pass() {
    let output = example_registry().run(&["test"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        output.stdout.contains("test result: ok. 17 passed; 0 failed"),
        "{output:?}"
    );
}

// A test file replaced by a link, or a folder named like one, is reported, never left out in
// silence: a suite whose tests vanished would still pass.
#[test]
fn evaluation_test_entries_that_are_not_files_are_reported() {
    let registry = quarter();
    registry.write(
        "elsewhere/quarter.yml",
        "tests:\n  - flag: my_feature\n    environment: production\n    expect:\n      - enabled: false\n",
    );
    std::fs::create_dir_all(registry.path().join("flag-tests/folder.yml")).unwrap();
    std::os::unix::fs::symlink(
        registry.path().join("elsewhere/quarter.yml"),
        registry.path().join("flag-tests/linked.yml"),
    )
    .unwrap();
    let output = registry.run(&["test"]);
    assert_eq!(output.code, 1, "{output:?}");
    assert_eq!(output.stdout.matches("error[not-a-file]").count(), 2, "{output:?}");
    for path in ["flag-tests/linked.yml", "flag-tests/folder.yml"] {
        assert!(output.stdout.contains(&format!("--> {path}:1:1")), "{path}: {output:?}");
    }
}

#[test]
fn failing_expectations_fail_with_their_location() {
    let registry = quarter();
    registry.write(
        "flag-tests/quarter.yml",
        "tests:\n  - flag: my_feature\n    environment: production\n    expect:\n      - actor: Project:29827\n        enabled: true\n      - actor: Project:46905\n        enabled: true\n        gate: actor\n      - actor: Project:46905\n        enabled: true\n  - flag: my_feture\n    environment: production\n    expect:\n      - enabled: false\n",
    );
    let output = registry.run(&["test"]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(output.stdout.contains("1 passed; 2 failed"), "{output:?}");
    assert!(output.stdout.contains("flag-tests/quarter.yml:6:18"), "{output:?}");
    assert!(
        output
            .stdout
            .contains("expected on, got off: no gate opened: bucket 25000"),
        "{output:?}"
    );
    assert!(output.stdout.contains("flag-tests/quarter.yml:9:15"), "{output:?}");
    assert!(
        output.stdout.contains("error[test-invalid]: no flag named `my_feture`"),
        "{output:?}"
    );

    // A schema error in a test file is reported like one in a flag file.
    registry.write(
        "flag-tests/quarter.yml",
        "tests:\n  - flag: my_feature\n    enviroment: production\n",
    );
    let output = registry.run(&["test"]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(output.stdout.contains("flag-tests/quarter.yml:3:5"), "{output:?}");
}

#[test]
fn rollout_shows_current_and_next_step_at_boundaries() {
    let registry = example_registry();
    let show =
        |at: &str| json(&registry.run(&["rollout", "work_item_bulk_move_service", "--at", at, "--format", "json"]));
    let statuses = |view: &Value| -> Vec<String> {
        view["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["status"].as_str().unwrap().to_string())
            .collect()
    };
    let before = show("2026-11-10T08:59:59Z");
    assert_eq!(statuses(&before), ["next", "pending", "pending"]);
    assert_eq!(before["next_due_in"], "step 1 in 1s");
    let first = show("2026-11-10T09:00:00Z");
    assert_eq!(statuses(&first), ["current", "next", "pending"]);
    assert_eq!(first["next_due_in"], "step 2 in 2h");
    let desired: Vec<(String, String)> = serde_json::from_value(first["desired"].clone()).unwrap();
    assert!(
        desired.contains(&("production".to_string(), "10% of actors".to_string())),
        "{desired:?}"
    );
    let done = show("2026-11-11T11:00:00Z");
    assert_eq!(statuses(&done), ["done", "done", "current"]);
    assert!(done.get("next_due_in").is_none());

    // `plan --at` resolves the same moments, against the environment: production has applied no
    // step yet, so its first sync applies step 1 even though step 2's time has come too.
    let output = registry.run(&[
        "plan",
        "--env",
        "production",
        "--at",
        "2026-11-10T11:00:00Z",
        "--format",
        "json",
    ]);
    let plans = json(&output);
    let change = plans[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["flag"] == "work_item_bulk_move_service")
        .cloned()
        .unwrap();
    assert_eq!(change["to"]["percentage_of_actors"], 10.0);
}

#[test]
fn stale_reports_example_flags_past_their_limit() {
    let registry = example_registry();
    let rows = json(&registry.run(&["stale", "--at", "2026-11-21T12:00:00Z", "--format", "json"]));
    let status = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|row| row["flag"] == name)
            .map(|row| row["status"].as_str().unwrap().to_string())
    };
    // gitlab_com_derisk flags may live 2 months: 19.4 was released 2026-09-17, 19.5 on 2026-10-15.
    assert_eq!(status("ci_pipeline_variables_jsonb_reads").as_deref(), Some("expired"));
    assert_eq!(status("work_item_bulk_move_service").as_deref(), Some("expiring"));
    // A worker flag has no age limit and is not fully on or off everywhere.
    assert_eq!(status("sticky_reads_for_post_receive_worker"), None);
    // Settled flags are ready for removal, except kill switches of the long-lived `ops` type.
    let ready = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|row| row["flag"] == name)
            .and_then(|row| row["ready_for_removal"].as_str().map(str::to_string))
    };
    assert_eq!(ready("repository_health_dashboard").as_deref(), Some("fully on"));
    assert_eq!(ready("global_search_code_indexing"), None);
    assert_eq!(ready("pause_zoekt_indexing"), None);
    let expired = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["status"] == "expired")
        .count();
    assert!(expired >= 5, "{rows:#}");
    for row in rows.as_array().unwrap() {
        assert!(!row["reason"].as_str().unwrap().is_empty());
    }
    let output = registry.run(&["stale", "--at", "2026-11-21T12:00:00Z", "--exit-code"]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output.stdout.contains("expired  ci_pipeline_variables_jsonb_reads"),
        "{output:?}"
    );
}

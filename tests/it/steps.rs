//! Rollout steps over time: syncs at chosen moments (`sync --at`) apply each step exactly once,
//! in order, never before `min-wait` after the step before it was applied, as the audit log of
//! the `file` backend shows; and a future `--at` reaches a protected environment only with a
//! recorded reason.

use serde_json::{Value, json};

use crate::harness::{Registry, flag};

const REASON: &str = "rehearsing the rollout";

/// A registry whose only policy is `min-wait` (15 minutes), with `flags` written.
fn registry(flags: &[(&str, String)]) -> Registry {
    let registry = Registry::new();
    let config = registry.read("flagops.yml");
    let enabled = config.replace("min-wait, ", "");
    assert_ne!(config, enabled, "min-wait is among the disabled policies");
    registry.write("flagops.yml", enabled);
    for (name, text) in flags {
        registry.write(&format!("flags/wip/{name}.yml"), text);
    }
    registry
}

/// A flag off in production, then 25%, 50% and on, 15 minutes apart from `first`.
fn three_steps(name: &str, first: &str) -> String {
    flag(
        name,
        &format!(
            "environments:\n  production: false\nrollout:\n  - at: \"{first}\"\n    production: {{ percentage_of_actors: 25 }}\n  - after: 15m\n    production: {{ percentage_of_actors: 50 }}\n  - after: 15m\n    production: true\n"
        ),
    )
}

/// Syncs production at `at` (ahead of the clock, so with the override), returning stdout.
#[track_caller]
fn sync_at(registry: &Registry, at: &str) -> String {
    let output = registry.run(&["sync", "--env", "production", "--at", at, "--override-schedule", REASON]);
    assert_eq!(output.code, 0, "{output:?}");
    output.stdout
}

/// The audit records of `flag` in production: the state set, and the step with its apply time.
fn audited(registry: &Registry, flag: &str) -> Vec<(Value, Option<(u64, String)>)> {
    registry
        .audit("production")
        .into_iter()
        .filter(|record| record["flag"] == flag)
        .map(|record| {
            let step = record.get("step").map(|step| {
                (
                    step["step"].as_u64().unwrap(),
                    step["applied_at"].as_str().unwrap().to_string(),
                )
            });
            (record["to"].clone(), step)
        })
        .collect()
}

#[test]
fn rollout_steps_survive_early_late_missed_and_past_syncs() {
    let registry = registry(&[
        ("timely", three_steps("timely", "2099-01-05T09:00:00Z")),
        // Merged with every time already past when the syncs below begin.
        ("merged_late", three_steps("merged_late", "2099-01-01T00:00:00Z")),
    ]);
    let held = |registry: &Registry, flag: &str| registry.state("production")["flags"][flag].clone();

    // Early: the timely plan has not started; the past plan starts with its first step only.
    sync_at(&registry, "2099-01-05T08:59:00Z");
    assert_eq!(held(&registry, "timely"), json!(false));
    assert_eq!(held(&registry, "merged_late"), json!({ "percentage_of_actors": 25 }));
    // On time for the first step; the past plan keeps its planned spacing from its first apply.
    sync_at(&registry, "2099-01-05T09:00:00Z");
    assert_eq!(held(&registry, "timely"), json!({ "percentage_of_actors": 25 }));
    assert_eq!(held(&registry, "merged_late"), json!({ "percentage_of_actors": 25 }));
    sync_at(&registry, "2099-01-05T09:14:00Z");
    assert_eq!(held(&registry, "timely"), json!({ "percentage_of_actors": 25 }));
    assert_eq!(held(&registry, "merged_late"), json!({ "percentage_of_actors": 50 }));
    // Very late: the times of steps 2 and 3 have both passed, and step 3's was missed entirely.
    // Only step 2 applies, and step 3 is held for the plan's spacing after it.
    let late = sync_at(&registry, "2099-01-05T10:00:00Z");
    assert_eq!(held(&registry, "timely"), json!({ "percentage_of_actors": 50 }));
    assert!(
        late.contains("  > timely: step 2 of 3 takes effect; step 3 due at 2099-01-05T10:15:00Z (held past its time 2099-01-05T09:30:00Z: the plan's spacing after step 2, counted from its apply)"),
        "{late}"
    );
    // plan, status and rollout say the same while step 3 is held.
    let plan = registry.run(&["plan", "--env", "production", "--at", "2099-01-05T10:14:00Z"]);
    assert!(
        plan.stdout.contains("  production: timely: step 2 of 3 applied at 2099-01-05T10:00:00Z; step 3 due at 2099-01-05T10:15:00Z (held past its time"),
        "{plan:?}"
    );
    assert!(plan.stdout.starts_with("production: no changes\n"), "{plan:?}");
    let status = registry.run(&["status", "--env", "production", "--at", "2099-01-05T10:14:00Z"]);
    assert!(
        status.stdout.contains(
            "  rollout  timely: step 2 of 3 applied at 2099-01-05T10:00:00Z; step 3 due at 2099-01-05T10:15:00Z"
        ),
        "{status:?}"
    );
    assert!(status.stdout.contains("0 pending, 0 drifted"), "{status:?}");
    let rollout = registry.run(&["rollout", "timely", "--at", "2099-01-05T10:14:00Z"]);
    assert!(
        rollout.stdout.contains("in the environments:\n  production: step 2 of 3 applied at 2099-01-05T10:00:00Z; step 3 due at 2099-01-05T10:15:00Z (held past its time"),
        "{rollout:?}"
    );
    sync_at(&registry, "2099-01-05T10:14:00Z");
    assert_eq!(held(&registry, "timely"), json!({ "percentage_of_actors": 50 }));
    sync_at(&registry, "2099-01-05T10:15:00Z");
    assert_eq!(held(&registry, "timely"), json!(true));
    // A sync ahead of the clock records why; one that applies nothing needed no override.
    assert_eq!(registry.state("production")["last_sync"]["override_schedule"], REASON);
    sync_at(&registry, "2099-01-05T12:00:00Z");
    assert_eq!(
        registry.state("production")["last_sync"]["override_schedule"],
        Value::Null
    );

    // The audit log: each step once, in order, at the times above.
    let step = |percent: u64| json!({ "percentage_of_actors": percent });
    let at = |step: u64, time: &str| Some((step, time.to_string()));
    assert_eq!(
        audited(&registry, "timely"),
        [
            (json!(false), None),
            (step(25), at(1, "2099-01-05T09:00:00Z")),
            (step(50), at(2, "2099-01-05T10:00:00Z")),
            (json!(true), at(3, "2099-01-05T10:15:00Z")),
        ]
    );
    assert_eq!(
        audited(&registry, "merged_late"),
        [
            (step(25), at(1, "2099-01-05T08:59:00Z")),
            (step(50), at(2, "2099-01-05T09:14:00Z")),
            (json!(true), at(3, "2099-01-05T10:00:00Z")),
        ]
    );
    // And, for any flag: steps one by one, at least min-wait apart.
    for flag in ["timely", "merged_late"] {
        let steps: Vec<(u64, jiff::Timestamp)> = audited(&registry, flag)
            .into_iter()
            .filter_map(|(_, step)| step)
            .map(|(number, time)| (number, time.parse().unwrap()))
            .collect();
        for pair in steps.windows(2) {
            assert_eq!(pair[1].0, pair[0].0 + 1, "{flag}: {steps:?}");
            assert!(
                pair[1].1.duration_since(pair[0].1) >= jiff::SignedDuration::from_mins(15),
                "{flag}: {steps:?}"
            );
        }
    }
}

#[test]
fn a_rollback_step_waits_for_nothing() {
    let text = flag(
        "reverted",
        "environments:\n  production: false\nrollout:\n  - at: \"2099-01-05T09:00:00Z\"\n    production: { percentage_of_actors: 25 }\n  - after: 15m\n    production: { percentage_of_actors: 50 }\n  - after: 1m\n    rollback: true\n    production: false\n",
    );
    let registry = registry(&[("reverted", text)]);
    sync_at(&registry, "2099-01-05T09:00:00Z");
    // Step 2 was never applied: the rollback goes ahead of it at its own time.
    sync_at(&registry, "2099-01-05T09:16:00Z");
    let steps: Vec<_> = audited(&registry, "reverted")
        .into_iter()
        .map(|(to, step)| (to, step.map(|s| s.0)))
        .collect();
    assert_eq!(
        steps,
        [
            (json!({ "percentage_of_actors": 25 }), Some(1)),
            (json!(false), Some(3)),
        ]
    );
}

#[test]
fn sync_ahead_of_the_clock_needs_an_override_on_protected_environments() {
    let text = flag(
        "ahead",
        "environments:\n  dev: false\n  production: false\nrollout:\n  - at: \"2099-01-05T09:00:00Z\"\n    dev: true\n    production: { percentage_of_actors: 25 }\n",
    );
    let registry = registry(&[("ahead", text)]);
    let refused = registry.run(&["sync", "--at", "2099-01-05T09:00:00Z"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    // dev is not protected: a rehearsal may run ahead there.
    assert_eq!(registry.state("dev")["flags"]["ahead"], json!(true));
    assert!(
        refused.stdout.contains("production: FAILED before any change\n  `production` is protected, and `--at 2099-01-05T09:00:00Z` is ahead of the clock"),
        "{refused:?}"
    );
    assert!(refused.stdout.contains("--override-schedule \"REASON\""), "{refused:?}");
    assert!(
        !registry.path().join(".flagops/state/production.json").exists(),
        "production was changed: {refused:?}"
    );
    // A preview needs no override.
    let preview = registry.run(&[
        "sync",
        "--dry-run",
        "--env",
        "production",
        "--at",
        "2099-01-05T09:00:00Z",
    ]);
    assert_eq!(preview.code, 0, "{preview:?}");

    let applied = registry.run(&[
        "sync",
        "--env",
        "production",
        "--at",
        "2099-01-05T09:00:00Z",
        "--override-schedule",
        "INC-7: the fix must ship before the holiday",
    ]);
    assert_eq!(applied.code, 0, "{applied:?}");
    let production = registry.state("production");
    assert_eq!(production["flags"]["ahead"], json!({ "percentage_of_actors": 25 }));
    assert_eq!(
        production["last_sync"]["override_schedule"],
        "INC-7: the fix must ship before the holiday"
    );
    assert_eq!(production["steps"]["ahead"]["applied_at"], "2099-01-05T09:00:00Z");
}

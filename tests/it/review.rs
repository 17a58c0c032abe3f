//! The plan for reviewers (`plan --base`): every rollout step added, removed or changed, with its
//! time and state, and the blast radius of each change on the environment's actor sample,
//! checked against `flagops eval` on the same sample.

use crate::harness::{Registry, flag};

/// A registry in git with production's actor sample (`Project:1` to `Project:40`) and three
/// plans, then edited in the working tree: a plan added, a step changed, a step removed, and a
/// state changed directly.
fn reviewed() -> Registry {
    let registry = Registry::new();
    let config = registry.read("flagops.yml");
    let sampled = config.replacen(
        "    protected: true\n    backend: { kind: file }\n\n",
        "    protected: true\n    backend: { kind: file }\n    actor_sample: samples/production.txt\n\n",
        1,
    );
    assert_ne!(config, sampled, "production is the last environment of the config");
    registry.write("flagops.yml", sampled);
    let sample: String = (1..=40).map(|id| format!("Project:{id}\n")).collect();
    registry.write("samples/production.txt", format!("# a fixed sample\n{sample}"));
    let off = "environments:\n  production: false\n";
    registry.write("flags/wip/new_plan.yml", flag("new_plan", off));
    registry.write(
        "flags/wip/edited.yml",
        flag(
            "edited",
            &format!("{off}rollout:\n  - at: \"2099-01-04T09:00:00Z\"\n    production: {{ percentage_of_actors: 10 }}\n  - after: 1h\n    production: {{ percentage_of_actors: 50 }}\n"),
        ),
    );
    registry.write(
        "flags/wip/trimmed.yml",
        flag(
            "trimmed",
            &format!("{off}rollout:\n  - at: \"2099-01-03T09:00:00Z\"\n    production: {{ percentage_of_actors: 10 }}\n  - after: 1d\n    production: true\n"),
        ),
    );
    registry.write("flags/wip/direct.yml", flag("direct", off));
    registry.init_git();

    registry.write(
        "flags/wip/new_plan.yml",
        flag(
            "new_plan",
            &format!("{off}rollout:\n  - at: \"2099-01-05T09:00:00Z\"\n    production: {{ percentage_of_actors: 25 }}\n  - after: 15m\n    production: {{ percentage_of_actors: 50 }}\n  - after: 15m\n    production: true\n"),
        ),
    );
    registry.write(
        "flags/wip/edited.yml",
        flag(
            "edited",
            &format!("{off}rollout:\n  - at: \"2099-01-04T09:00:00Z\"\n    production: {{ percentage_of_actors: 10 }}\n  - after: 1h\n    production: {{ percentage_of_actors: 40 }}\n"),
        ),
    );
    registry.write(
        "flags/wip/trimmed.yml",
        flag(
            "trimmed",
            &format!(
                "{off}rollout:\n  - at: \"2099-01-03T09:00:00Z\"\n    production: {{ percentage_of_actors: 10 }}\n"
            ),
        ),
    );
    registry.write(
        "flags/wip/direct.yml",
        flag("direct", "environments:\n  production: { percentage_of_actors: 30 }\n"),
    );
    registry
}

/// `flagops plan --base HEAD --env production --at 2099-01-01T00:00:00Z` in `format`.
#[track_caller]
fn plan(registry: &Registry, format: &str) -> String {
    let output = registry.run(&[
        "plan",
        "--base",
        "HEAD",
        "--env",
        "production",
        "--at",
        "2099-01-01T00:00:00Z",
        "--format",
        format,
    ]);
    assert_eq!(output.code, 0, "{output:?}");
    output.stdout
}

/// How many sample actors `flagops eval` says switch on and off from the state at `from` to the
/// state at `to`: `(on, off)`.
#[track_caller]
fn eval_switches(registry: &Registry, name: &str, from: &str, to: &str) -> (u64, u64) {
    eval_with(registry, name, &["--at", from, "--compare-at", to])
}

#[track_caller]
fn eval_with(registry: &Registry, name: &str, extra: &[&str]) -> (u64, u64) {
    let mut args = vec![
        "eval",
        name,
        "--env",
        "production",
        "--actors-file",
        "samples/production.txt",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let output = registry.run(&args);
    assert_eq!(output.code, 0, "{output:?}");
    let report: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    (
        report["switched_on"].as_u64().unwrap(),
        report["switched_off"].as_u64().unwrap(),
    )
}

#[test]
fn plan_note_shows_every_rollout_step_and_its_blast_radius() {
    let registry = reviewed();
    assert_eq!(
        plan(&registry, "markdown"),
        "\
### flagops plan: this change against `HEAD`

1 change in 1 of 1 environment; 5 rollout steps added, removed or changed in 1 of 1 environment

| environment | flag | change | before | after | blast radius |
|---|---|---|---|---|---|
| production | `direct` | update | false | 30% of actors | +30 pp; of 40 sample actors, 13 switch on and 0 switch off |

#### Rollout steps

| environment | flag | step | change | time | state | blast radius |
|---|---|---|---|---|---|---|
| production | `edited` | 2 | changed | 2099-01-04T10:00:00Z | 50% of actors → 40% of actors | +30 pp; of 40 sample actors, 10 switch on and 0 switch off |
| production | `new_plan` | 1 | added | 2099-01-05T09:00:00Z | 25% of actors | +25 pp; of 40 sample actors, 13 switch on and 0 switch off |
| production | `new_plan` | 2 | added | 2099-01-05T09:15:00Z | 50% of actors | +25 pp; of 40 sample actors, 12 switch on and 0 switch off |
| production | `new_plan` | 3 | added | 2099-01-05T09:30:00Z | true | +50 pp; of 40 sample actors, 15 switch on and 0 switch off |
| production | `trimmed` | 2 | removed | 2099-01-04T09:00:00Z | true | +90 pp; of 40 sample actors, 36 switch on and 0 switch off |

Rollouts in progress at 2099-01-01T00:00:00Z:
- edited: not started (2 steps); step 1 due 2099-01-04T09:00:00Z (in 3d 9h)
- new\\_plan: not started (3 steps); step 1 due 2099-01-05T09:00:00Z (in 4d 9h)
- trimmed: not started (1 steps); step 1 due 2099-01-03T09:00:00Z (in 2d 9h)
"
    );
    assert_eq!(
        plan(&registry, "human"),
        "\
production: 1 change
  ~ direct: false → 30% of actors (+30 pp; of 40 sample actors, 13 switch on and 0 switch off)
  ~ rollout edited step 2 at 2099-01-04T10:00:00Z: 50% of actors → 40% of actors (+30 pp; of 40 sample actors, 10 switch on and 0 switch off)
  + rollout new_plan step 1 at 2099-01-05T09:00:00Z: 25% of actors (+25 pp; of 40 sample actors, 13 switch on and 0 switch off)
  + rollout new_plan step 2 at 2099-01-05T09:15:00Z: 50% of actors (+25 pp; of 40 sample actors, 12 switch on and 0 switch off)
  + rollout new_plan step 3 at 2099-01-05T09:30:00Z: true (+50 pp; of 40 sample actors, 15 switch on and 0 switch off)
  - rollout trimmed step 2 at 2099-01-04T09:00:00Z: true (no longer: +90 pp; of 40 sample actors, 36 switch on and 0 switch off)
1 change in 1 of 1 environment; 5 rollout steps added, removed or changed in 1 of 1 environment

Rollouts in progress at 2099-01-01T00:00:00Z:
  edited: not started (2 steps); step 1 due 2099-01-04T09:00:00Z (in 3d 9h)
  new_plan: not started (3 steps); step 1 due 2099-01-05T09:00:00Z (in 4d 9h)
  trimmed: not started (1 steps); step 1 due 2099-01-03T09:00:00Z (in 2d 9h)
"
    );

    // The counts are `flagops eval`'s on the same sample, between the moments around each step.
    assert_eq!(
        eval_switches(&registry, "new_plan", "2099-01-05T08:59:00Z", "2099-01-05T09:00:00Z"),
        (13, 0)
    );
    assert_eq!(
        eval_switches(&registry, "new_plan", "2099-01-05T09:00:00Z", "2099-01-05T09:15:00Z"),
        (12, 0)
    );
    assert_eq!(
        eval_switches(&registry, "new_plan", "2099-01-05T09:15:00Z", "2099-01-05T09:30:00Z"),
        (15, 0)
    );
    assert_eq!(
        eval_switches(&registry, "edited", "2099-01-04T09:00:00Z", "2099-01-04T10:00:00Z"),
        (10, 0)
    );
    // `direct` goes from off to 30%: the actors 30% holds are those that switch off at 0%.
    assert_eq!(eval_with(&registry, "direct", &["--percentage", "0"]), (0, 13));
}

#[test]
fn actor_sample_outside_the_registry_or_missing_is_refused() {
    let registry = reviewed();
    let config = registry.read("flagops.yml");
    registry.write(
        "flagops.yml",
        config.replace("actor_sample: samples/production.txt", "actor_sample: ../outside.txt"),
    );
    let outside = registry.run(&["validate", "--format", "json"]);
    assert_eq!(outside.code, 1, "{outside:?}");
    let found: serde_json::Value = serde_json::from_str(&outside.stdout).unwrap();
    assert_eq!(found[0]["check"], "path-outside-registry", "{found}");
    assert_eq!(found[0]["path"], "flagops.yml", "{found}");

    registry.write("flagops.yml", config);
    registry.remove("samples/production.txt");
    let missing = registry.run(&["plan", "--base", "HEAD", "--env", "production"]);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(missing.stderr.contains("samples/production.txt"), "{missing:?}");
}

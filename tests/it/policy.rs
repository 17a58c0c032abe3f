//! Rollout policies: each is violated and satisfied, at the right line, at every moment of a plan.

use serde_json::Value;

use crate::harness::{Registry, flag};

const ISSUE: &str = "rollout_issue_url: https://gitlab.com/gitlab-org/gitlab/-/issues/9\n";

/// The errors (check id, file, line) `validate` reports for `files`, with the default policies.
#[track_caller]
fn findings(files: &[(&str, &str)]) -> Vec<(String, String, u64)> {
    findings_with(&Registry::with_policies(), files)
}

#[track_caller]
fn findings_with(registry: &Registry, files: &[(&str, &str)]) -> Vec<(String, String, u64)> {
    for (path, text) in files {
        registry.write(path, text);
    }
    let output = registry.run(&["validate", "--format", "json"]);
    let found: Vec<Value> = serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"));
    found
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
                f["span"]["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn ids(found: &[(String, String, u64)]) -> Vec<&str> {
    found.iter().map(|(id, _, _)| id.as_str()).collect()
}

#[test]
fn promotion_order_refuses_production_ahead_of_staging() {
    let ahead = flag(
        "ahead",
        &format!("{ISSUE}environments:\n  dev: true\n  pre: true\n  production: true\n"),
    );
    let found = findings(&[("flags/wip/ahead.yml", &ahead)]);
    assert_eq!(found, [("promotion-order".into(), "flags/wip/ahead.yml".into(), 12)]);

    let in_order = flag(
        "in_order",
        &format!("{ISSUE}environments:\n  dev: true\n  pre: true\n  staging: true\n  production: true\n"),
    );
    assert_eq!(findings(&[("flags/wip/in_order.yml", &in_order)]), []);
}

#[test]
fn promotion_order_compares_percentages_and_every_moment() {
    // Production at 50% while staging is at 25%: more enabled.
    let percent = flag(
        "percent",
        &format!(
            "{ISSUE}environments:\n  dev: true\n  pre: true\n  staging: {{ percentage_of_actors: 25 }}\n  production: {{ percentage_of_actors: 50 }}\n"
        ),
    );
    assert_eq!(
        ids(&findings(&[("flags/wip/percent.yml", &percent)])),
        ["promotion-order"]
    );

    // Fine at first; the second step turns staging off while production stays on.
    let later = flag(
        "later",
        &format!(
            "{ISSUE}environments:\n  dev: true\n  pre: true\n  staging: true\n  production: true\nrollout:\n  - at: \"2026-11-24T09:00:00Z\"\n    rollback: true\n    staging: false\n"
        ),
    );
    let found = findings(&[("flags/wip/later.yml", &later)]);
    assert_eq!(found, [("promotion-order".into(), "flags/wip/later.yml".into(), 17)]);

    // Recorded override.
    let overridden = format!("{percent}overrides:\n  promotion-order: Staging has no traffic for this endpoint.\n");
    assert_eq!(findings(&[("flags/wip/percent.yml", &overridden)]), []);
}

// The finding names the moment it happens and points at the step that made it so: the latest
// step due then that sets the environment, not a later one.
#[test]
fn promotion_order_names_the_moment_and_the_step() {
    let registry = Registry::with_policies();
    let stepped = flag(
        "stepped",
        &format!(
            "{ISSUE}environments:\n  dev: true\n  pre: true\nrollout:\n  - at: \"2026-11-24T09:00:00Z\"\n    production: {{ percentage_of_actors: 10 }}\n  - at: \"2026-11-25T09:00:00Z\"\n    production: {{ percentage_of_actors: 20 }}\n"
        ),
    );
    let ahead = flag(
        "ahead",
        &format!("{ISSUE}environments:\n  dev: true\n  pre: true\n  production: true\n"),
    );
    registry.write("flags/wip/stepped.yml", &stepped);
    registry.write("flags/wip/ahead.yml", &ahead);
    let output = registry.run(&["validate", "--format", "json"]);
    let found: Vec<Value> = serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"));
    let found: Vec<(String, u64, String)> = found
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["span"]["line"].as_u64().unwrap(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "flags/wip/ahead.yml".to_string(),
                12,
                "production (true) would be more enabled than staging (nothing stored (default_enabled: false)), which comes before it, before any rollout step".to_string()
            ),
            (
                "flags/wip/stepped.yml".to_string(),
                14,
                "production (10% of actors) would be more enabled than staging (nothing stored (default_enabled: false)), which comes before it, from 2026-11-24T09:00:00Z".to_string()
            ),
        ]
    );
}

#[test]
fn promotion_order_follows_the_configured_chain() {
    let registry = Registry::with_policies();
    let config = registry.read("flagops.yml").replace(
        "promotion_order: [dev, pre, staging, production]",
        "promotion_order: [staging, production]",
    );
    registry.write("flagops.yml", config);
    let skip_pre = flag(
        "skip_pre",
        &format!("{ISSUE}environments:\n  staging: true\n  production: true\n"),
    );
    assert_eq!(findings_with(&registry, &[("flags/wip/skip_pre.yml", &skip_pre)]), []);
}

#[test]
fn min_wait_applies_to_protected_steps() {
    let base = format!("{ISSUE}environments:\n  dev: true\n  pre: true\n  staging: true\n  production: false\n");
    let hasty = flag(
        "hasty",
        &format!(
            "{base}rollout:\n  - at: \"2026-11-24T09:00:00Z\"\n    production: {{ percentage_of_actors: 25 }}\n  - after: 10m\n    production: {{ percentage_of_actors: 50 }}\n"
        ),
    );
    let found = findings(&[("flags/wip/hasty.yml", &hasty)]);
    assert_eq!(found, [("min-wait".into(), "flags/wip/hasty.yml".into(), 17)]);

    // Exactly the minimum is enough.
    let patient = hasty.replace("after: 10m", "after: 15m");
    assert_eq!(findings(&[("flags/wip/hasty.yml", &patient)]), []);

    // Unprotected environments may move quickly.
    let staging = flag(
        "staging_only",
        "environments:\n  dev: true\nrollout:\n  - at: \"2026-11-24T09:00:00Z\"\n    pre: true\n  - after: 1m\n    staging: true\n",
    );
    assert_eq!(findings(&[("flags/wip/staging_only.yml", &staging)]), []);

    let overridden = format!("{hasty}overrides:\n  min-wait: Incident 1234 needs the fix now.\n");
    assert_eq!(findings(&[("flags/wip/hasty.yml", &overridden)]), []);
}

// `rollback: true` exempts a step from the minimum wait, and only that step: the same hasty
// step that takes exposure away is a min-wait error unmarked, fine marked, and a marked step
// does not excuse a later unmarked one.
#[test]
fn min_wait_exempts_rollback_steps_only() {
    let base = format!("{ISSUE}environments:\n  dev: true\n  pre: true\n  staging: true\n  production: false\n");
    let hasty_rollback = flag(
        "hasty_rollback",
        &format!(
            "{base}rollout:\n  - at: \"2026-11-24T09:00:00Z\"\n    production: {{ percentage_of_actors: 20 }}\n  - after: 5m\n    rollback: true\n    production: {{ percentage_of_actors: 10 }}\n"
        ),
    );
    assert_eq!(findings(&[("flags/wip/hasty_rollback.yml", &hasty_rollback)]), []);

    let unmarked = hasty_rollback.replace("    rollback: true\n", "");
    let found = findings(&[("flags/wip/hasty_rollback.yml", &unmarked)]);
    assert_eq!(
        found,
        [
            ("min-wait".into(), "flags/wip/hasty_rollback.yml".into(), 17),
            ("exposure-increase".into(), "flags/wip/hasty_rollback.yml".into(), 18),
        ]
    );

    let then_hasty = format!("{hasty_rollback}  - after: 5m\n    production: {{ percentage_of_actors: 30 }}\n");
    let found = findings(&[("flags/wip/hasty_rollback.yml", &then_hasty)]);
    assert_eq!(found, [("min-wait".into(), "flags/wip/hasty_rollback.yml".into(), 20)]);
}

// An override exempts the policy it names and no other.
#[test]
fn overrides_exempt_only_the_policy_they_name() {
    let base = format!("{ISSUE}environments:\n  dev: true\n  pre: true\n  staging: true\n  production: false\n");
    let hasty = flag(
        "hasty",
        &format!(
            "{base}rollout:\n  - at: \"2026-11-24T09:00:00Z\"\n    production: {{ percentage_of_actors: 25 }}\n  - after: 10m\n    production: {{ percentage_of_actors: 50 }}\n"
        ),
    );
    let wrong = format!("{hasty}overrides:\n  promotion-order: Staging has no traffic.\n");
    assert_eq!(ids(&findings(&[("flags/wip/hasty.yml", &wrong)])), ["min-wait"]);
    let right = format!("{hasty}overrides:\n  min-wait: Incident 1234 needs the fix now.\n");
    assert_eq!(findings(&[("flags/wip/hasty.yml", &right)]), []);

    let ahead = flag(
        "ahead",
        &format!("{ISSUE}environments:\n  dev: true\n  pre: true\n  production: true\n"),
    );
    let wrong = format!("{ahead}overrides:\n  min-wait: Not the policy at stake.\n");
    assert_eq!(ids(&findings(&[("flags/wip/ahead.yml", &wrong)])), ["promotion-order"]);
    let right = format!("{ahead}overrides:\n  promotion-order: Staging has no traffic.\n");
    assert_eq!(findings(&[("flags/wip/ahead.yml", &right)]), []);
}

#[test]
fn steps_only_widen_exposure_unless_rollback() {
    let base = format!("{ISSUE}environments:\n  dev: true\n  pre: true\n  staging: true\n");
    let narrowing = flag(
        "narrowing",
        &format!(
            "{base}rollout:\n  - at: \"2026-11-24T09:00:00Z\"\n    production: {{ percentage_of_actors: 20, actors: {{ project: [gitlab-org/gitlab] }} }}\n  - after: 1h\n    production: {{ percentage_of_actors: 20 }}\n"
        ),
    );
    let found = findings(&[("flags/wip/narrowing.yml", &narrowing)]);
    assert_eq!(
        found,
        [("exposure-increase".into(), "flags/wip/narrowing.yml".into(), 17)]
    );

    let rollback = narrowing.replace("  - after: 1h\n", "  - after: 1h\n    rollback: true\n");
    assert_eq!(findings(&[("flags/wip/narrowing.yml", &rollback)]), []);

    let widening = narrowing.replace(
        "  - after: 1h\n    production: { percentage_of_actors: 20 }",
        "  - after: 1h\n    production: { percentage_of_actors: 40, actors: { project: [gitlab-org/gitlab] } }",
    );
    assert_eq!(findings(&[("flags/wip/narrowing.yml", &widening)]), []);
}

#[test]
fn requires_holds_at_every_moment_of_both_plans() {
    // The dependency reaches production fully on 09:00; the dependant follows at 09:30.
    let dependency = flag(
        "dependency",
        &format!(
            "{ISSUE}overrides:\n  max-step: Not what this test is about.\nenvironments:\n  dev: true\n  pre: true\n  staging: true\nrollout:\n  - at: \"2026-11-24T09:00:00Z\"\n    production: true\n"
        ),
    );
    let dependant = |at: &str| {
        flag(
            "dependant",
            &format!(
                "{ISSUE}requires: [dependency]\nenvironments:\n  dev: true\n  pre: true\n  staging: true\nrollout:\n  - at: \"{at}\"\n    production: {{ percentage_of_actors: 10 }}\n"
            ),
        )
    };
    let files = |at: &str| {
        vec![
            ("flags/wip/dependency.yml".to_string(), dependency.clone()),
            ("flags/wip/dependant.yml".to_string(), dependant(at)),
        ]
    };
    let run = |at: &str| {
        let files = files(at);
        let borrowed: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
        findings(&borrowed)
    };
    assert_eq!(run("2026-11-24T09:30:00Z"), []);
    // Same moment as the dependency: fine, both are due together.
    assert_eq!(run("2026-11-24T09:00:00Z"), []);
    // A second early: the dependant would be on while its dependency is off.
    assert_eq!(
        run("2026-11-24T08:59:59Z"),
        [("requires-on".into(), "flags/wip/dependant.yml".into(), 16)]
    );

    // The dependency's own plan turning it back down breaks the dependant later on.
    let rolled_back =
        format!("{dependency}  - at: \"2026-11-25T09:00:00Z\"\n    rollback: true\n    production: false\n");
    let registry = Registry::with_policies();
    let found = findings_with(
        &registry,
        &[
            ("flags/wip/dependency.yml", &rolled_back),
            ("flags/wip/dependant.yml", &dependant("2026-11-24T09:30:00Z")),
        ],
    );
    assert_eq!(found, [("requires-on".into(), "flags/wip/dependant.yml".into(), 16)]);
}

#[test]
fn protected_environments_need_a_rollout_issue() {
    let on = "environments:\n  dev: true\n  pre: true\n  staging: true\n  production: true\n";
    let found = findings(&[("flags/wip/no_issue.yml", &flag("no_issue", on))]);
    assert_eq!(
        found,
        [("protected-rollout-issue".into(), "flags/wip/no_issue.yml".into(), 12)]
    );
    // Off in production needs no issue.
    let off = flag("no_issue", "environments:\n  dev: true\n  production: false\n");
    assert_eq!(findings(&[("flags/wip/no_issue.yml", &off)]), []);
    assert_eq!(
        findings(&[("flags/wip/no_issue.yml", &flag("no_issue", &format!("{ISSUE}{on}")))]),
        []
    );
}

#[test]
fn policies_can_be_disabled_in_the_config() {
    let registry = Registry::with_policies();
    let config = registry.read("flagops.yml").replace(
        "  min_wait: 15m\n",
        "  min_wait: 15m\n  disabled: [promotion-order, protected-rollout-issue]\n",
    );
    registry.write("flagops.yml", config);
    let ahead = flag("ahead", "environments:\n  production: true\n");
    assert_eq!(findings_with(&registry, &[("flags/wip/ahead.yml", &ahead)]), []);
}

/// A registry with a freeze window around now on production.
fn frozen_registry() -> Registry {
    let registry = Registry::with_policies();
    let now = jiff::Timestamp::now();
    let from = now - jiff::SignedDuration::from_hours(1);
    let until = now + jiff::SignedDuration::from_hours(1);
    let config = registry.read("flagops.yml").replace(
        "  min_wait: 15m\n",
        &format!(
            "  min_wait: 15m\n  freeze_windows:\n    - {{ name: incident, from: \"{from}\", until: \"{until}\" }}\n"
        ),
    );
    registry.write("flagops.yml", config);
    registry.write(
        "flags/wip/frozen.yml",
        flag(
            "frozen",
            &format!("{ISSUE}environments:\n  dev: true\n  pre: true\n  staging: true\n  production: true\n"),
        ),
    );
    registry
}

#[test]
fn freeze_window_blocks_protected_syncs_until_overridden() {
    let registry = frozen_registry();
    let output = registry.run(&["sync"]);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(output.stdout.contains("change freeze `incident`"), "{output:?}");
    assert!(output.stdout.contains("--override-freeze"), "{output:?}");
    // Unprotected environments before it were synced; production was not touched.
    assert_eq!(registry.state("staging")["flags"]["frozen"], true);
    assert!(!registry.path().join(".flagops/state/production.json").exists());

    let output = registry.run(&["sync", "--override-freeze", "Incident 77: the fix must ship now"]);
    assert_eq!(output.code, 0, "{output:?}");
    let state = registry.state("production");
    assert_eq!(state["flags"]["frozen"], true);
    assert_eq!(
        state["last_sync"]["override_freeze"],
        "Incident 77: the fix must ship now"
    );

    // Nothing left to do: a frozen environment with an empty plan is not an error.
    let output = registry.run(&["sync"]);
    assert_eq!(output.code, 0, "{output:?}");
}

#[test]
fn freeze_window_warns_about_steps_inside_it() {
    let registry = Registry::with_policies();
    let config = registry.read("flagops.yml").replace(
        "  min_wait: 15m\n",
        "  min_wait: 15m\n  freeze_windows:\n    - { name: end-of-year, from: \"2026-12-19T00:00:00Z\", until: \"2027-01-04T00:00:00Z\" }\n",
    );
    registry.write("flagops.yml", config);
    registry.write(
        "flags/wip/holiday.yml",
        flag(
            "holiday",
            &format!(
                "{ISSUE}environments:\n  dev: true\n  pre: true\n  staging: true\nrollout:\n  - at: \"2026-12-24T09:00:00Z\"\n    production: {{ percentage_of_actors: 10 }}\n"
            ),
        ),
    );
    let output = registry.run(&["validate"]);
    assert_eq!(output.code, 0, "a freeze only warns: {output:?}");
    assert!(output.stdout.contains("warning[freeze-window]"), "{output:?}");
    assert!(output.stdout.contains("flags/wip/holiday.yml:15:5"), "{output:?}");
}

#[test]
fn example_registry_satisfies_its_policies() {
    let output = crate::harness::example_registry().run(&["validate", "--format", "json"]);
    assert_eq!(output.code, 0, "{output:?}");
}

/// A `wip` flag on everywhere before production, whose production steps through `percentages`
/// (`true` for fully on), an hour apart.
fn stepping(name: &str, percentages: &[&str]) -> String {
    let mut text =
        format!("{ISSUE}environments:\n  dev: true\n  pre: true\n  staging: true\n  production: false\nrollout:\n");
    for (position, percentage) in percentages.iter().enumerate() {
        let when = if position == 0 {
            "at: \"2026-11-24T09:00:00Z\"".to_string()
        } else {
            "after: 1h".to_string()
        };
        let state = if *percentage == "true" {
            "true".to_string()
        } else {
            format!("{{ percentage_of_actors: {percentage} }}")
        };
        text.push_str(&format!("  - {when}\n    production: {state}\n"));
    }
    flag(name, &text)
}

// A step may raise a protected environment by at most `max_step` points (25 by default):
// 10 to 50% is too much, and so is 50% to fully on (a jump to 100); the step is named at its
// line, and the message says by how much.
#[test]
fn max_step_refuses_big_jumps_in_protected_environments() {
    let jumpy = stepping("jumpy", &["10", "50", "75", "true"]);
    assert_eq!(
        findings(&[("flags/wip/jumpy.yml", &jumpy)]),
        [("max-step".into(), "flags/wip/jumpy.yml".into(), 18)]
    );
    let output = Registry::with_policies();
    output.write("flags/wip/jumpy.yml", &jumpy);
    let text = output.run(&["validate"]).stdout;
    assert!(
        text.contains("error[max-step]: step 2 raises the protected environment production by 40 percentage points (10% of actors to 50% of actors); `policies.max_step` allows at most 25"),
        "{text}"
    );
    assert!(
        text.contains("help: split the step into steps of at most 25 points"),
        "{text}"
    );

    // From off straight to fully on, and from 50% to fully on.
    let to_true = stepping("to_true", &["true"]);
    assert_eq!(ids(&findings(&[("flags/wip/to_true.yml", &to_true)])), ["max-step"]);
    let half_to_true = stepping("half_to_true", &["25", "50", "true"]);
    assert_eq!(
        findings(&[("flags/wip/half_to_true.yml", &half_to_true)]),
        [("max-step".into(), "flags/wip/half_to_true.yml".into(), 20)]
    );

    // GitLab's ladder is fine, and unprotected environments may jump.
    let ladder = stepping("ladder", &["1", "10", "25", "50", "75", "true"]);
    assert_eq!(findings(&[("flags/wip/ladder.yml", &ladder)]), []);
    let staging = flag(
        "staging_jump",
        "environments:\n  dev: true\nrollout:\n  - at: \"2026-11-24T09:00:00Z\"\n    pre: true\n    staging: true\n",
    );
    assert_eq!(findings(&[("flags/wip/staging_jump.yml", &staging)]), []);
}

// Rollback steps and steps that narrow are exempt; a recorded reason overrides the policy, and
// a flag type's `max_step` replaces the policy's for its flags.
#[test]
fn max_step_exempts_rollbacks_and_honours_overrides_and_types() {
    // Down from fully on to 10% and back up to 30% (a rollback, then a rise of 20 points).
    let back = format!(
        "{}  - after: 1h\n    rollback: true\n    production: {{ percentage_of_actors: 10 }}\n  - after: 1h\n    production: {{ percentage_of_actors: 30 }}\n",
        stepping("back", &["25", "50", "75", "true"])
    );
    assert_eq!(findings(&[("flags/wip/back.yml", &back)]), []);
    // A rollback step may even widen by much (a fix rolled forward again at once).
    let rollback_jump = stepping("rollback_jump", &["true"]).replace(
        "  - at: \"2026-11-24T09:00:00Z\"\n",
        "  - at: \"2026-11-24T09:00:00Z\"\n    rollback: true\n",
    );
    assert_eq!(findings(&[("flags/wip/rollback_jump.yml", &rollback_jump)]), []);

    let jumpy = stepping("jumpy", &["10", "50"]);
    let overridden = format!("{jumpy}overrides:\n  max-step: Load-tested at 50% on staging-ref.\n");
    assert_eq!(findings(&[("flags/wip/jumpy.yml", &overridden)]), []);

    // `wip` allows 50 points: 10 to 50% passes, 50% to fully on too, off to fully on does not.
    let registry = Registry::with_policies();
    let config = registry
        .read("flagops.yml")
        .replace("  wip:\n    description:", "  wip:\n    max_step: 50\n    description:");
    registry.write("flagops.yml", config);
    let wider = stepping("wider", &["10", "50", "true"]);
    assert_eq!(findings_with(&registry, &[("flags/wip/wider.yml", &wider)]), []);
    let to_true = stepping("to_true", &["true"]);
    let output = {
        registry.write("flags/wip/to_true.yml", &to_true);
        registry.run(&["validate"])
    };
    assert!(
        output
            .stdout
            .contains("by 100 percentage points (false to true); the type `wip` allows at most 50"),
        "{output:?}"
    );
}

// `percentage_of_time` is refused wherever it is set, at the key, unless the flag's type allows
// it or the flag records why.
#[test]
fn no_percentage_of_time_unless_the_type_allows_it_or_a_reason_is_recorded() {
    let random = flag(
        "random",
        &format!(
            "{ISSUE}environments:\n  dev: {{ percentage_of_time: 50 }}\nrollout:\n  - at: \"2026-11-24T09:00:00Z\"\n    dev: {{ percentage_of_time: 60 }}\n"
        ),
    );
    let registry = Registry::with_policies();
    registry.write("flags/wip/random.yml", &random);
    let output = registry.run(&["validate"]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output
            .stdout
            .contains("error[no-percentage-of-time]: `random` uses `percentage_of_time` in dev, which GitLab deprecated (ChatOps' `--random`)\n  --> flags/wip/random.yml:10:10"),
        "{output:?}"
    );
    assert_eq!(
        findings(&[("flags/wip/random.yml", &random)]),
        [
            ("no-percentage-of-time".into(), "flags/wip/random.yml".into(), 10),
            ("no-percentage-of-time".into(), "flags/wip/random.yml".into(), 13),
        ]
    );

    let actors = random.replace("percentage_of_time", "percentage_of_actors");
    assert_eq!(findings(&[("flags/wip/random.yml", &actors)]), []);

    let overridden = format!("{random}overrides:\n  no-percentage-of-time: Samples requests at random on purpose.\n");
    assert_eq!(findings(&[("flags/wip/random.yml", &overridden)]), []);

    let allowed = Registry::with_policies();
    let config = allowed.read("flagops.yml").replace(
        "  wip:\n    description:",
        "  wip:\n    allow_percentage_of_time: true\n    description:",
    );
    allowed.write("flagops.yml", config);
    assert_eq!(findings_with(&allowed, &[("flags/wip/random.yml", &random)]), []);
}

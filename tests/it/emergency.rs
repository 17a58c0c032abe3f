//! Break glass: `flagops set ... --emergency`, the holds it leaves, and `flagops release`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Output, Registry, flag};

const FILE: &str = "flags/wip/em.yml";

/// A registry in git whose flag `em` is at 10% of actors in production, with a rollout step in
/// 2030 that turns it fully on, synced to production.
fn registry() -> Registry {
    let registry = Registry::new();
    registry.write(
        FILE,
        flag(
            "em",
            "environments:\n  production:\n    percentage_of_actors: 10\nrollout:\n  - at: \"2030-01-01T00:00:00Z\"\n    production: true\n",
        ),
    );
    registry.init_git();
    let synced = registry.run(&["sync", "--env", "production"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    assert_eq!(production(&registry), json!({"percentage_of_actors": 10}));
    registry
}

/// What production holds for `em`.
fn production(registry: &Registry) -> Value {
    registry.state("production")["flags"]["em"].clone()
}

/// The holds of production's state document.
fn holds(registry: &Registry) -> Value {
    registry.state("production")["holds"].clone()
}

fn emergency(registry: &Registry, value: &[&str], reason: &str) -> Output {
    let mut args = vec!["set", "em"];
    args.extend_from_slice(value);
    args.extend_from_slice(&["--production", "--emergency", "--reason", reason]);
    registry.run(&args)
}

/// The file as git's default branch has it: the emergency's edit is not merged yet.
fn as_on_default_branch(registry: &Registry) -> String {
    let edited = registry.read(FILE);
    registry.git(&["checkout", "--", FILE]);
    edited
}

// The emergency is applied at once, held, and its audit record carries the reason; the file is
// edited for review.
#[test]
fn emergency_applies_at_once_and_records_the_reason() {
    let registry = registry();
    let done = emergency(&registry, &["false"], "INC-123: errors");
    assert_eq!(done.code, 0, "{done:?}");
    assert_eq!(production(&registry), json!(false));
    let last = registry.audit("production").last().cloned().unwrap();
    assert_eq!(last["flag"], "em");
    assert_eq!(last["to"], json!(false));
    assert_eq!(last["reason"], "INC-123: errors");
    let hold = &holds(&registry)["em"];
    assert_eq!(hold["state"], json!(false));
    assert_eq!(hold["reason"], "INC-123: errors");
    assert_eq!(hold["fingerprint"].as_str().unwrap().len(), 64);
    assert!(
        registry.read(FILE).contains("  production: false\n"),
        "{}",
        registry.read(FILE)
    );
    assert!(done.stdout.contains("production: applied"), "{}", done.stdout);
    assert!(done.stdout.contains("held by an emergency change"), "{}", done.stdout);
    assert!(done.stdout.contains("next: commit the change"), "{}", done.stdout);
    // Only production was touched.
    assert!(registry.audit("dev").is_empty());
}

// A scheduled sync of the default branch, which still has the old definition, leaves the held
// flag alone and says so, even when a rollout step becomes due; plan and status agree.
#[test]
fn a_scheduled_sync_does_not_revert_a_held_flag() {
    let registry = registry();
    assert_eq!(emergency(&registry, &["false"], "INC-123: errors").code, 0);
    as_on_default_branch(&registry);

    let plan = registry.run(&["plan", "--env", "production", "--format", "json"]);
    let plans: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(plans[0]["changes"], json!([]), "{}", plan.stdout);
    assert_eq!(plans[0]["held"][0]["flag"], "em");

    let synced = registry.run(&["sync", "--env", "production"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    assert!(synced.stdout.contains("in sync, nothing to do"), "{}", synced.stdout);
    assert!(
        synced.stdout.contains("= em: false, held by an emergency change:")
            && synced.stdout.contains("INC-123: errors"),
        "{}",
        synced.stdout
    );
    assert_eq!(production(&registry), json!(false));

    // The rollout step of 2030 is due: it does not override the hold either.
    let later = registry.run(&["sync", "--env", "production", "--at", "2030-06-01T00:00:00Z"]);
    assert_eq!(later.code, 0, "{later:?}");
    assert_eq!(production(&registry), json!(false));

    let status = registry.run(&["status", "--env", "production", "--format", "json"]);
    let statuses: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(statuses[0]["drifted"], json!([]), "{}", status.stdout);
    assert_eq!(statuses[0]["pending"], json!([]), "{}", status.stdout);
    assert_eq!(statuses[0]["held"][0]["flag"], "em", "{}", status.stdout);
    assert_eq!(statuses[0]["held"][0]["hold"]["reason"], "INC-123: errors");
    let text = registry.run(&["status", "--env", "production", "--exit-code"]);
    assert_eq!(text.code, 1, "a held flag is not clean: {text:?}");
    assert!(
        text.stdout
            .contains("  held     em: false, held by an emergency change"),
        "{}",
        text.stdout
    );
}

// Once the emergency's edit is merged, the next sync releases the hold, applies nothing, and the
// environment is as git says.
#[test]
fn merging_the_emergency_edit_releases_the_hold() {
    let registry = registry();
    assert_eq!(emergency(&registry, &["false"], "INC-123: errors").code, 0);
    let edited = as_on_default_branch(&registry);
    assert_eq!(registry.run(&["sync", "--env", "production"]).code, 0);
    // The merge request merges.
    registry.write(FILE, edited);
    registry.commit("Turn em off in production (INC-123)");

    let synced = registry.run(&["sync", "--env", "production"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    assert!(
        synced.stdout.contains("production: in sync, nothing to do"),
        "{}",
        synced.stdout
    );
    assert!(
        synced.stdout.contains("- em: the hold of the emergency change"),
        "{}",
        synced.stdout
    );
    assert_eq!(holds(&registry), Value::Null);
    assert_eq!(production(&registry), json!(false));
    let status = registry.run(&["status", "--env", "production", "--exit-code"]);
    assert_eq!(status.code, 0, "{status:?}");
    assert!(status.stdout.contains("0 pending, 0 drifted ("), "{}", status.stdout);
}

// A different reviewed change to the flag reaches the registry: the hold is released and git's
// state applied.
#[test]
fn another_reviewed_change_releases_the_hold() {
    let registry = registry();
    assert_eq!(emergency(&registry, &["false"], "INC-123: errors").code, 0);
    as_on_default_branch(&registry);
    let text = registry
        .read(FILE)
        .replace("A flag for tests.", "A flag for tests, reviewed.");
    registry.write(FILE, text);
    registry.commit("Describe em better");

    let synced = registry.run(&["sync", "--env", "production"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    assert!(synced.stdout.contains("applied 1 change"), "{}", synced.stdout);
    assert!(synced.stdout.contains("- em: the hold"), "{}", synced.stdout);
    assert_eq!(production(&registry), json!({"percentage_of_actors": 10}));
    assert_eq!(holds(&registry), Value::Null);
}

// Two emergency changes to one flag, the second made from the checkout the first edited: the
// second replaces the hold but keeps the fingerprint of the definition git still has, so a sync
// of the default branch holds it, and merging the second's edit releases it.
#[test]
fn two_emergency_changes_to_one_flag() {
    let registry = registry();
    assert_eq!(emergency(&registry, &["false"], "INC-123: errors").code, 0);
    let first = holds(&registry)["em"].clone();
    let second = emergency(&registry, &["25", "--actors"], "INC-124: half of it back");
    assert_eq!(second.code, 0, "{second:?}");
    let hold = holds(&registry)["em"].clone();
    assert_eq!(hold["reason"], "INC-124: half of it back");
    assert_eq!(hold["state"], json!({"percentage_of_actors": 25}));
    assert_eq!(hold["fingerprint"], first["fingerprint"], "the definition git has");
    assert_eq!(production(&registry), json!({"percentage_of_actors": 25}));
    let reasons: Vec<Value> = registry
        .audit("production")
        .iter()
        .map(|r| r["reason"].clone())
        .collect();
    assert_eq!(
        reasons,
        [Value::Null, json!("INC-123: errors"), json!("INC-124: half of it back")]
    );

    let edited = as_on_default_branch(&registry);
    let synced = registry.run(&["sync", "--env", "production"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    assert_eq!(production(&registry), json!({"percentage_of_actors": 25}));
    assert!(synced.stdout.contains("INC-124: half of it back"), "{}", synced.stdout);

    registry.write(FILE, edited);
    registry.commit("em at 25% in production (INC-124)");
    let merged = registry.run(&["sync", "--env", "production"]);
    assert_eq!(merged.code, 0, "{merged:?}");
    assert!(merged.stdout.contains("in sync, nothing to do"), "{}", merged.stdout);
    assert_eq!(holds(&registry), Value::Null);
    assert_eq!(registry.run(&["status", "--env", "production", "--exit-code"]).code, 0);
}

// An emergency while a sync holds production's lock waits for it, then applies.
#[test]
fn an_emergency_waits_for_the_lock() {
    let registry = registry();
    let held = flagops::lock::Lock::acquire(
        &registry.path().join(".flagops/state/production.lock"),
        "pid 7 on host ci-1 (flagops sync by @deployer) since 2026-11-21T10:00:00Z",
        Duration::ZERO,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flagops"))
        .args(["set", "em", "false", "--production", "--emergency", "--reason", "INC-9"])
        .args(["--lock-timeout", "3600"])
        .current_dir(registry.path())
        .env("NO_COLOR", "1")
        .env_remove("GITLAB_USER_LOGIN")
        .env_remove("CI_COMMIT_SHA")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The emergency says it waits before it waits: read until then.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("waiting for the lock"), "{line}");
    assert!(line.contains("pid 7 on host ci-1"), "{line}");
    assert_eq!(
        production(&registry),
        json!({"percentage_of_actors": 10}),
        "applied under the lock"
    );
    assert_eq!(holds(&registry), Value::Null);

    drop(held);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(production(&registry), json!(false));
    assert_eq!(holds(&registry)["em"]["reason"], "INC-9");
}

// `--emergency` needs a reason, and a reason needs `--emergency`; neither changes anything.
#[test]
fn emergency_without_reason_is_refused() {
    let registry = registry();
    let before = registry.read(FILE);
    let refused = registry.run(&["set", "em", "false", "--production", "--emergency"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("`--emergency` needs `--reason TEXT`"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("help: "), "{}", refused.stderr);
    let stray = registry.run(&["set", "em", "false", "--production", "--reason", "why"]);
    assert_eq!(stray.code, 1, "{stray:?}");
    assert!(
        stray.stderr.contains("`--reason` goes with `--emergency`"),
        "{}",
        stray.stderr
    );
    assert_eq!(registry.read(FILE), before);
    assert_eq!(production(&registry), json!({"percentage_of_actors": 10}));
    assert_eq!(registry.audit("production").len(), 1);
}

// `release` removes the hold and says what the next sync does, which then restores git's state.
#[test]
fn release_releases_a_hold() {
    let registry = registry();
    assert_eq!(emergency(&registry, &["false"], "INC-123: errors").code, 0);
    as_on_default_branch(&registry);

    let released = registry.run(&["release", "em", "--env", "production"]);
    assert_eq!(released.code, 0, "{released:?}");
    assert!(
        released.stdout.contains("production: released `em` (held by ")
            && released.stdout.contains("the next sync applies"),
        "{}",
        released.stdout
    );
    assert_eq!(holds(&registry), Value::Null);
    assert_eq!(production(&registry), json!(false), "release changes no flag");

    let synced = registry.run(&["sync", "--env", "production"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    assert_eq!(production(&registry), json!({"percentage_of_actors": 10}));

    let again = registry.run(&["release", "em", "--env", "production", "--format", "json"]);
    let report: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(report[0]["hold"], Value::Null, "{}", again.stdout);
}

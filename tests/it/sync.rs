//! `flagops sync`, `plan`, `status` and `deploy` against the embedded file backend, including
//! faults: a backend that fails, a killed process, a corrupt state file, two syncs at once.

use std::collections::BTreeMap;
use std::time::Duration;

use flagops::backends::file::FileBackend;
use flagops::backends::{ApplyContext, Backend, BackendError, Snapshot, SyncRecord};
use flagops::plan::Change;
use flagops::sync::{RetryPolicy, apply_plan};
use serde_json::{Value, json};

use crate::harness::{Registry, flag};

/// A registry with three flags in several states.
fn registry() -> Registry {
    let registry = Registry::new();
    registry.write(
        "flags/wip/alpha.yml",
        flag(
            "alpha",
            "environments:\n  dev: true\n  staging: true\n  production:\n    percentage_of_actors: 25\n",
        ),
    );
    registry.write(
        "flags/wip/beta.yml",
        flag(
            "beta",
            "environments:\n  dev: false\n  production:\n    actors:\n      project: [gitlab-org/gitlab]\n",
        ),
    );
    registry.write(
        "flags/wip/gamma.yml",
        flag("gamma", "requires: [alpha]\nenvironments:\n  dev: true\n"),
    );
    registry
}

// The main job syncs every environment; a second run right after changes nothing.
#[test]
fn sync_converges_and_reruns_as_noop() {
    let registry = registry();
    let output = registry.run(&["deploy"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        output.stdout.contains("synced 6 environments: 6 changes applied"),
        "{}",
        output.stdout
    );
    assert_eq!(
        registry.state("production")["flags"],
        json!({"alpha": {"percentage_of_actors": 25}, "beta": {"actors": ["project:gitlab-org/gitlab"]}})
    );
    assert_eq!(
        registry.state("dev")["flags"],
        json!({"alpha": true, "beta": false, "gamma": true})
    );
    // Required flags go on before their dependants.
    let dev: Vec<Value> = registry.audit("dev").iter().map(|r| r["flag"].clone()).collect();
    assert_eq!(dev, [json!("alpha"), json!("beta"), json!("gamma")]);

    let again = registry.run(&["sync"]);
    assert_eq!(again.code, 0);
    assert!(
        again.stdout.contains("synced 6 environments: 0 changes applied"),
        "{}",
        again.stdout
    );
    assert_eq!(registry.audit("dev").len(), 3);
}

// Across flags, a required flag goes on before its dependants and off after them, along chains
// whose names sort neither with nor against the chain, so no alphabetical order passes.
#[test]
fn sync_orders_changes_along_requires_chains() {
    let registry = Registry::new();
    let on = "environments:\n  dev: true\n";
    // beta requires alpha, which requires gamma; delta requires beta; aardvark stands alone.
    registry.write("flags/wip/beta.yml", flag("beta", &format!("requires: [alpha]\n{on}")));
    registry.write(
        "flags/wip/alpha.yml",
        flag("alpha", &format!("requires: [gamma]\n{on}")),
    );
    registry.write("flags/wip/gamma.yml", flag("gamma", on));
    registry.write("flags/wip/delta.yml", flag("delta", &format!("requires: [beta]\n{on}")));
    registry.write("flags/wip/aardvark.yml", flag("aardvark", on));
    let applied = |registry: &Registry| -> Vec<String> {
        registry
            .audit("dev")
            .iter()
            .map(|r| r["flag"].as_str().unwrap().to_string())
            .collect()
    };
    let position = |order: &[String], name: &str| order.iter().position(|f| f == name).unwrap();

    let output = registry.run(&["sync", "--env", "dev"]);
    assert_eq!(output.code, 0, "{output:?}");
    let on_order = applied(&registry);
    assert_eq!(on_order.len(), 5, "{on_order:?}");
    for (required, dependant) in [("gamma", "alpha"), ("alpha", "beta"), ("beta", "delta")] {
        assert!(
            position(&on_order, required) < position(&on_order, dependant),
            "`{required}` must go on before `{dependant}`: {on_order:?}"
        );
    }

    for name in ["alpha", "beta", "gamma", "delta", "aardvark"] {
        let path = format!("flags/wip/{name}.yml");
        registry.write(&path, registry.read(&path).replace("  dev: true\n", "  dev: false\n"));
    }
    let output = registry.run(&["sync", "--env", "dev"]);
    assert_eq!(output.code, 0, "{output:?}");
    let off_order: Vec<String> = applied(&registry).split_off(5);
    assert_eq!(off_order.len(), 5, "{off_order:?}");
    for (required, dependant) in [("gamma", "alpha"), ("alpha", "beta"), ("beta", "delta")] {
        assert!(
            position(&off_order, dependant) < position(&off_order, required),
            "`{dependant}` must go off before `{required}`: {off_order:?}"
        );
    }
}

// Every applied change is recorded: who, when, commit, environment, old and new value.
#[test]
fn sync_records_every_change() {
    let registry = registry();
    registry.init_git();
    let head = registry.git(&["rev-parse", "HEAD"]);
    assert_eq!(registry.run(&["sync"]).code, 0);
    let record = &registry.audit("production")[0];
    assert_eq!(record["by"], "Ada Tester <ada@example.com>");
    assert_eq!(record["commit"], head.as_str());
    assert_eq!(record["environment"], "production");
    assert_eq!(record["flag"], "alpha");
    assert_eq!(record["action"], "create");
    assert_eq!(record["from"], Value::Null);
    assert_eq!(record["to"], json!({"percentage_of_actors": 25}));
    assert!(flagops::resolve::parse_time(record["at"].as_str().unwrap()).is_ok());
    let last_sync = &registry.state("production")["last_sync"];
    assert_eq!(last_sync["commit"], head.as_str());
    assert_eq!(last_sync["changes"], 2);
}

// A registry with an error is never applied: nothing is written.
#[test]
fn sync_refuses_invalid_registry() {
    let registry = registry();
    registry.write(
        "flags/wip/broken.yml",
        flag("broken", "environments:\n  production: 50\n"),
    );
    for command in [&["sync"][..], &["deploy"][..]] {
        let output = registry.run(command);
        assert_eq!(output.code, 1, "{output:?}");
        assert!(!registry.path().join(".flagops").exists(), "{command:?} wrote state");
    }
    let output = registry.run(&["sync"]);
    assert!(
        output.stderr.contains("not syncing: the registry has 1 error"),
        "{}",
        output.stderr
    );
}

// A hand edit shows as drift and is healed by the next sync.
#[test]
fn status_reports_drift_and_sync_heals_it() {
    let registry = registry();
    assert_eq!(registry.run(&["sync"]).code, 0);
    assert_eq!(registry.run(&["status", "--exit-code"]).code, 0);
    let mut state = registry.state("production");
    state["flags"]["alpha"] = json!(true);
    registry.write(
        ".flagops/state/production.json",
        serde_json::to_string_pretty(&state).unwrap(),
    );

    let status = registry.run(&["status", "--exit-code"]);
    assert_eq!(status.code, 1, "{status:?}");
    assert!(
        status
            .stdout
            .contains("drifted  alpha: true (the registry says 25% of actors"),
        "{}",
        status.stdout
    );
    let json: Value = serde_json::from_str(&registry.run(&["status", "--format", "json"]).stdout).unwrap();
    assert_eq!(json[5]["drifted"][0]["flag"], "alpha");

    let sync = registry.run(&["sync"]);
    assert!(sync.stdout.contains("~ alpha: true → 25% of actors"), "{}", sync.stdout);
    assert_eq!(registry.run(&["status", "--exit-code"]).code, 0);
}

// A change committed to the registry but not yet synced is pending, not drift.
#[test]
fn status_reports_pending_changes() {
    let registry = registry();
    registry.init_git();
    assert_eq!(registry.run(&["sync"]).code, 0);
    registry.write(
        "flags/wip/alpha.yml",
        flag(
            "alpha",
            "environments:\n  dev: true\n  staging: true\n  production: true\n",
        ),
    );
    registry.commit("alpha fully on");
    let status = registry.run(&["status", "--env", "production"]);
    assert!(status.stdout.contains("1 pending, 0 drifted"), "{}", status.stdout);
    assert!(
        status.stdout.contains("pending  alpha: 25% of actors → true"),
        "{}",
        status.stdout
    );
}

// Flags gone from git stay in environments unless pruning.
#[test]
fn sync_prunes_only_when_asked() {
    let registry = registry();
    assert_eq!(registry.run(&["sync"]).code, 0);
    registry.remove("flags/wip/beta.yml");
    let kept = registry.run(&["sync"]);
    assert!(
        kept.stdout.contains("! beta: not in the registry, kept"),
        "{}",
        kept.stdout
    );
    assert!(registry.state("production")["flags"].get("beta").is_some());
    let pruned = registry.run(&["sync", "--prune"]);
    assert!(
        pruned
            .stdout
            .contains("- beta: project:gitlab-org/gitlab → (absent) (not in the registry)"),
        "{}",
        pruned.stdout
    );
    assert!(registry.state("production")["flags"].get("beta").is_none());
}

// `plan` shows changes without making them; `--exit-code` turns a non-empty plan into exit 1.
#[test]
fn plan_shows_changes_without_applying() {
    let registry = registry();
    let plan = registry.run(&["plan", "--env", "production", "--exit-code"]);
    assert_eq!(plan.code, 1);
    insta::assert_snapshot!(plan.stdout, @r"
    production: 2 changes
      + alpha: (absent) → 25% of actors
      + beta: (absent) → project:gitlab-org/gitlab
    2 changes in 1 of 1 environment
    ");
    assert!(!registry.path().join(".flagops").exists());
    let markdown = registry.run(&["plan", "--env", "production", "--format", "markdown"]);
    assert!(
        markdown
            .stdout
            .contains("| production | `alpha` | create | (absent) | 25% of actors |"),
        "{}",
        markdown.stdout
    );
    let json: Value = serde_json::from_str(&registry.run(&["plan", "--format", "json"]).stdout).unwrap();
    assert_eq!(json[0]["environment"], "dev");
    assert_eq!(json[0]["changes"][0]["to"], true);
    assert_eq!(registry.run(&["sync"]).code, 0);
    assert_eq!(registry.run(&["plan", "--exit-code"]).code, 0);
}

// `plan --base` shows what the working tree changes against a revision, with no backend.
#[test]
fn plan_base_compares_with_revision() {
    let registry = registry();
    registry.init_git();
    registry.write(
        "flags/wip/alpha.yml",
        flag(
            "alpha",
            "environments:\n  dev: true\n  staging: true\n  production:\n    percentage_of_actors: 50\n",
        ),
    );
    registry.write("flags/wip/delta.yml", flag("delta", "environments:\n  staging: true\n"));
    let plan = registry.run(&["plan", "--base", "main"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    insta::assert_snapshot!(plan.stdout, @r"
    dev: no changes
    pre: no changes
    staging: 1 change
      + delta: (absent) → true (+100 pp)
    staging-ref: no changes
    ops: no changes
    production: 1 change
      ~ alpha: 25% of actors → 50% of actors (+25 pp)
    2 changes in 2 of 6 environments
    ");
    assert!(!registry.path().join(".flagops").exists());
    let missing = registry.run(&["plan", "--base", "no-such-branch"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("the revision `no-such-branch` does not exist"),
        "{}",
        missing.stderr
    );
}

/// A backend that delegates to the file backend but fails the `fail_at`-th change (from 1),
/// transiently `transient` times first when asked.
struct FaultyBackend {
    inner: FileBackend,
    calls: usize,
    fail_at: usize,
    transient: usize,
    hard: bool,
}

impl Backend for FaultyBackend {
    fn fetch(&mut self) -> Result<Snapshot, BackendError> {
        self.inner.fetch()
    }

    fn apply(&mut self, change: &Change, context: &ApplyContext) -> Result<(), BackendError> {
        self.calls += 1;
        let attempt_of_change = self.calls;
        if attempt_of_change >= self.fail_at && self.transient > 0 {
            self.transient -= 1;
            return Err(BackendError::Transient {
                message: "connection reset".into(),
                retry_after: Some(Duration::from_millis(5)),
            });
        }
        if attempt_of_change == self.fail_at && self.hard {
            return Err(BackendError::Rejected(format!(
                "400 Bad Request: cannot set `{}`",
                change.flag
            )));
        }
        self.inner.apply(change, context)
    }

    fn record_sync(&mut self, record: &SyncRecord) -> Result<(), BackendError> {
        self.inner.record_sync(record)
    }

    fn set_hold(&mut self, flag: &str, hold: Option<&flagops::backends::Hold>) -> Result<(), BackendError> {
        self.inner.set_hold(flag, hold)
    }

    fn record_step(&mut self, mark: &flagops::backends::StepMark) -> Result<(), BackendError> {
        self.inner.record_step(mark)
    }
}

fn context() -> ApplyContext {
    ApplyContext {
        environment: "dev".into(),
        by: "tester".into(),
        commit: None,
        at: "2026-11-21T00:00:00Z".into(),
        reason: None,
        step: None,
    }
}

fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        retries: 3,
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

fn load(registry: &Registry) -> flagops::model::Registry {
    let workspace = flagops::load::Workspace::at(&registry.path().join("flagops.yml")).unwrap();
    flagops::load::load(&workspace, &Default::default())
        .unwrap()
        .registry
        .unwrap()
}

fn file_backend(registry: &Registry, environment: &str) -> FileBackend {
    FileBackend::open(
        &registry.path().join(format!(".flagops/state/{environment}.json")),
        environment,
        true,
    )
    .unwrap()
}

// A backend failing the second change: the first is applied, the rest reported; a rerun
// converges and applies each change exactly once.
#[test]
fn sync_stops_at_hard_failure_and_rerun_finishes() {
    let registry = registry();
    let model = load(&registry);
    let at = jiff::Timestamp::now();
    let mut backend = FaultyBackend {
        inner: file_backend(&registry, "dev"),
        calls: 0,
        fail_at: 2,
        transient: 0,
        hard: true,
    };
    let actual = backend.fetch().unwrap().flags;
    let plan = flagops::sync::plan_environment(&model, "dev", &actual, at, false);
    assert_eq!(plan.changes.len(), 3);
    let report = apply_plan(&mut backend, &plan, &context(), &[], &quick_retry());
    let names = |changes: &[Change]| changes.iter().map(|c| c.flag.clone()).collect::<Vec<_>>();
    assert_eq!(names(&report.applied), ["alpha"]);
    let (failed, error) = report.failed.unwrap();
    assert_eq!(failed.flag, "beta");
    assert!(error.contains("400 Bad Request"), "{error}");
    assert_eq!(names(&report.not_applied), ["gamma"]);
    drop(backend);

    // The rerun plans afresh from what was applied.
    let output = registry.run(&["sync", "--env", "dev"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("dev: applied 2 changes"), "{}", output.stdout);
    let flags: Vec<Value> = registry.audit("dev").iter().map(|r| r["flag"].clone()).collect();
    assert_eq!(flags, [json!("alpha"), json!("beta"), json!("gamma")]);
    let revisions: Vec<u64> = registry
        .audit("dev")
        .iter()
        .map(|r| r["revision"].as_u64().unwrap())
        .collect();
    assert_eq!(revisions, [1, 2, 3]);
}

// Transient failures are retried with backoff and then succeed.
#[test]
fn sync_retries_transient_failures() {
    let registry = registry();
    let model = load(&registry);
    let mut backend = FaultyBackend {
        inner: file_backend(&registry, "dev"),
        calls: 0,
        fail_at: 1,
        transient: 2,
        hard: false,
    };
    let plan = flagops::sync::plan_environment(&model, "dev", &BTreeMap::new(), jiff::Timestamp::now(), false);
    let report = apply_plan(&mut backend, &plan, &context(), &[], &quick_retry());
    assert!(report.failed.is_none());
    assert_eq!(report.applied.len(), 3);
    assert_eq!(backend.calls, 5, "two failed attempts, then three changes");
    // Too many transient failures end as a failure.
    let mut failing = FaultyBackend {
        inner: file_backend(&registry, "pre"),
        calls: 0,
        fail_at: 1,
        transient: 10,
        hard: false,
    };
    let report = apply_plan(&mut failing, &plan, &context(), &[], &quick_retry());
    assert!(report.failed.unwrap().1.contains("connection reset"));
    assert_eq!(failing.calls, 4, "one attempt and three retries");
}

// A hard failure in one environment stops it; the later ones get only changes that do not
// widen exposure (here none: every change is a create), and the report says so.
#[test]
fn sync_failure_stops_its_environment_and_holds_later_widening() {
    let registry = registry();
    registry.write(".flagops/state/staging.json", "{ not json");
    let output = registry.run(&["sync"]);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(
        output.stdout.contains("staging: FAILED before any change"),
        "{}",
        output.stdout
    );
    assert!(
        output.stdout.contains("is not a valid state document"),
        "{}",
        output.stdout
    );
    assert!(
        output
            .stdout
            .contains("production: applied 0 changes, held back 2 that widen exposure\n  held back because an earlier environment did not reach its desired state: `staging`\n"),
        "{}",
        output.stdout
    );
    // Environments before it were synced; the corrupt file was left as it was.
    assert_eq!(registry.state("dev")["flags"]["alpha"], true);
    assert_eq!(registry.read(".flagops/state/staging.json"), "{ not json");
    assert!(!registry.path().join(".flagops/state/production.json").exists());
    // Once the file is dealt with, a rerun converges.
    registry.remove(".flagops/state/staging.json");
    assert_eq!(registry.run(&["sync"]).code, 0);
    assert_eq!(registry.run(&["status", "--exit-code"]).code, 0);
}

// A sync killed at any moment leaves a state a rerun completes, applying each change once.
#[test]
fn sync_killed_midway_converges_on_rerun() {
    let registry = Registry::new();
    for i in 0..400 {
        let name = format!("flag_{i:03}");
        registry.write(&format!("flags/wip/{name}.yml"), flag(&name, "environments:\n  dev: true\n  pre: true\n  staging: true\n  production:\n    percentage_of_actors: 10\n"));
    }
    let mut interrupted = 0;
    for delay_ms in [5u64, 15, 30, 60, 120] {
        let _ = std::fs::remove_dir_all(registry.path().join(".flagops"));
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flagops"))
            .arg("sync")
            .current_dir(registry.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let finished = child.wait().unwrap().success();
        let synced: usize = ["dev", "pre", "staging", "production"]
            .iter()
            .map(|e| registry.audit(e).len())
            .sum();
        if !finished && synced < 1600 {
            interrupted += 1;
        }
        let rerun = registry.run(&["sync"]);
        assert_eq!(rerun.code, 0, "{rerun:?}");
        for environment in ["dev", "pre", "staging", "production"] {
            let audit = registry.audit(environment);
            let flags: std::collections::BTreeSet<String> =
                audit.iter().map(|r| r["flag"].as_str().unwrap().to_string()).collect();
            assert_eq!(audit.len(), 400, "{environment}: each change recorded once");
            assert_eq!(flags.len(), 400, "{environment}: no change applied twice");
            let revisions: Vec<u64> = audit.iter().map(|r| r["revision"].as_u64().unwrap()).collect();
            assert_eq!(revisions, (1..=400).collect::<Vec<_>>());
            assert_eq!(registry.state(environment)["flags"].as_object().unwrap().len(), 400);
        }
        assert_eq!(registry.run(&["status", "--exit-code"]).code, 0);
    }
    assert!(interrupted > 0, "no run was killed mid-sync; the test proved nothing");
}

// Two syncs at once: the second waits for the first and finds nothing to do; with no time to
// wait it fails, naming the holder of the lock.
#[test]
fn sync_runs_one_at_a_time() {
    let registry = registry();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_flagops"))
            .arg("sync")
            .current_dir(registry.path())
            .output()
            .unwrap()
    };
    let (first, second) = std::thread::scope(|scope| {
        let a = scope.spawn(spawn);
        let b = scope.spawn(spawn);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(first.status.success() && second.status.success());
    for environment in ["dev", "production"] {
        let flags: Vec<Value> = registry.audit(environment).iter().map(|r| r["flag"].clone()).collect();
        let unique: std::collections::BTreeSet<String> = flags.iter().map(|f| f.to_string()).collect();
        assert_eq!(flags.len(), unique.len(), "a change was applied twice in {environment}");
    }

    let lock_path = registry.path().join(".flagops/state/production.lock");
    let _held = flagops::lock::Lock::acquire(
        &lock_path,
        "pid 7 on host ci-1 (flagops sync by @deployer) since 2026-11-21T10:00:00Z",
        Duration::ZERO,
    )
    .unwrap();
    let blocked = registry.run(&["sync", "--env", "production", "--lock-timeout", "0"]);
    assert_eq!(blocked.code, 2, "{blocked:?}");
    assert!(
        blocked
            .stdout
            .contains("is locked by pid 7 on host ci-1 (flagops sync by @deployer)"),
        "{}",
        blocked.stdout
    );
}

/// The flags and new states of production's audit records after the first two (the first sync
/// of `rollback_and_widening`).
fn production_changes(registry: &Registry) -> Vec<(String, Value)> {
    registry.audit("production")[2..]
        .iter()
        .map(|record| (record["flag"].as_str().unwrap().to_string(), record["to"].clone()))
        .collect()
}

/// Syncs `registry` everywhere and then edits `kill` off and `widen` on in production, with
/// `mixed` lowered to 10% but given a project: one rollback and two changes that widen.
fn rollback_and_widening(registry: &Registry) {
    let everywhere =
        |state: &str| format!("environments:\n  dev: {state}\n  staging: {state}\n  production: {state}\n");
    registry.write("flags/wip/kill.yml", flag("kill", &everywhere("true")));
    registry.write(
        "flags/wip/widen.yml",
        flag("widen", "environments:\n  dev: true\n  staging: true\n"),
    );
    registry.write(
        "flags/wip/mixed.yml",
        flag("mixed", &everywhere("{ percentage_of_actors: 25 }")),
    );
    let first = registry.run(&["sync"]);
    assert_eq!(first.code, 0, "{first:?}");
    registry.write("flags/wip/kill.yml", flag("kill", &everywhere("false")));
    registry.write("flags/wip/widen.yml", flag("widen", &everywhere("true")));
    registry.write(
        "flags/wip/mixed.yml",
        flag(
            "mixed",
            &everywhere("{ percentage_of_actors: 10, actors: { project: [gitlab-org/gitlab] } }"),
        ),
    );
}

// Rollbacks get through: with staging's backend failing, production still gets the change that
// turns a flag off, and holds back the one that turns a flag on and the mixed one (a lower
// percentage with a project added); the report lists both, and the exit code is 2. Once staging
// is fixed, a rerun applies the rest.
#[test]
fn sync_after_a_failed_environment_applies_only_rollbacks_later() {
    let registry = Registry::new();
    rollback_and_widening(&registry);
    registry.write(".flagops/state/staging.json", "{ not json");

    let planned = registry.run(&["sync", "--dry-run"]);
    assert_eq!(planned.code, 2, "{planned:?}");
    assert!(
        planned.stdout.contains(
            "production: would apply 1 change, would hold back 2 that widen exposure\n  ~ kill: true → false\n  would hold back because an earlier environment did not reach its desired state: `staging`\n  held back    ~ mixed: 25% of actors → 10% of actors, project:gitlab-org/gitlab\n  held back    + widen: (absent) → true\n"
        ),
        "{}",
        planned.stdout
    );

    let output = registry.run(&["sync", "--format", "json"]);
    assert_eq!(output.code, 2, "{output:?}");
    let reports: Vec<Value> = serde_json::from_str(&output.stdout).unwrap();
    let report = |name: &str| reports.iter().find(|r| r["environment"] == name).unwrap().clone();
    assert!(
        report("staging")["failed"]["error"]
            .as_str()
            .unwrap()
            .contains("is not a valid state document")
    );
    let production = report("production");
    let flags = |key: &str| -> Vec<String> {
        production[key]
            .as_array()
            .map(|changes| {
                changes
                    .iter()
                    .map(|c| c["flag"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(flags("applied"), ["kill"], "{production}");
    assert_eq!(flags("held"), ["mixed", "widen"], "{production}");
    assert_eq!(
        production["held_because"],
        json!(["an earlier environment did not reach its desired state: `staging`"])
    );
    assert!(production.get("failed").is_none(), "{production}");
    // Production got the rollback and nothing that widens (the audit log holds the changes
    // until a completed sync rewrites the state document).
    assert_eq!(production_changes(&registry), [("kill".to_string(), json!(false))]);
    // Environments before staging were synced in full.
    assert_eq!(registry.state("dev")["flags"]["widen"], true);

    // The state document held staging's sync record: rebuilt from the log alone, staging has
    // none, so its next sync is a first sync again, refused until `--take-over`.
    registry.remove(".flagops/state/staging.json");
    let refused = registry.run(&["sync"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stdout.contains("staging: REFUSED, nothing applied\n"),
        "{}",
        refused.stdout
    );
    let rerun = registry.run(&["sync", "--take-over"]);
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert_eq!(registry.state("production")["flags"]["widen"], true);
    assert_eq!(registry.run(&["status", "--exit-code"]).code, 0);
}

// The change lock: while the variable is set, a sync applies in protected environments only the
// changes that do not widen exposure, prints the lock's reason and every change it held back,
// and exits with 1; unprotected environments are synced in full, and `plan` shows the same. An
// empty variable is no lock, and the variable's name comes from `policies.change_lock_env`.
#[test]
fn change_lock_holds_widening_in_protected_environments() {
    let registry = Registry::new();
    rollback_and_widening(&registry);
    let lock = [("FLAGOPS_CHANGE_LOCK", "incident 4242: the database is saturated")];

    let plan = registry.run_with_env(&["plan", "--env", "staging", "--env", "production"], &lock);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout.contains(
            "  production: the change lock `FLAGOPS_CHANGE_LOCK` is on: incident 4242: the database is saturated; sync will hold back 2 changes that widen exposure\n  held back: ~ mixed: 25% of actors → 10% of actors, project:gitlab-org/gitlab\n"
        ),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("  staging: the change lock"), "{}", plan.stdout);

    let output = registry.run_with_env(&["sync"], &lock);
    assert_eq!(output.code, 1, "{output:?}");
    for line in [
        "staging: applied 2 changes",
        "production: applied 1 change, held back 2 that widen exposure",
        "  ~ kill: true → false",
        "  held back because the change lock `FLAGOPS_CHANGE_LOCK` is on: incident 4242: the database is saturated",
        "  held back    + widen: (absent) → true",
        "sync held back 2 changes that widen exposure: 5 changes applied; rerun `flagops sync` once the hold is lifted to finish",
    ] {
        assert!(
            output.stdout.lines().any(|l| l == line),
            "no {line:?} in:\n{}",
            output.stdout
        );
    }
    // Staging, unprotected, got the mixed change too.
    assert_eq!(
        registry.state("staging")["flags"]["mixed"],
        json!({"percentage_of_actors": 10, "actors": ["project:gitlab-org/gitlab"]})
    );
    assert_eq!(production_changes(&registry), [("kill".to_string(), json!(false))]);

    // An empty variable is no lock; a renamed one is.
    let config = registry
        .read("flagops.yml")
        .replace("policies:\n", "policies:\n  change_lock_env: INCIDENT_LOCK\n");
    registry.write("flagops.yml", config);
    let renamed = registry.run_with_env(&["sync", "--dry-run"], &[("INCIDENT_LOCK", "freeze for the migration")]);
    assert!(
        renamed
            .stdout
            .contains("would hold back because the change lock `INCIDENT_LOCK` is on: freeze for the migration"),
        "{renamed:?}"
    );
    let unlocked = registry.run_with_env(
        &["sync"],
        &[("INCIDENT_LOCK", ""), ("FLAGOPS_CHANGE_LOCK", "not this one")],
    );
    assert_eq!(unlocked.code, 0, "{unlocked:?}");
    assert_eq!(registry.state("production")["flags"]["widen"], true);
    assert_eq!(production_changes(&registry).len(), 3);
}

// A first sync that holds changes back (here under the change lock) still records itself: the
// flags it wrote are flagops's, so a later change to one of them is applied, not refused as a
// take-over of flags flagops did not write.
#[test]
fn first_sync_that_holds_changes_back_is_recorded() {
    let registry = Registry::new();
    let everywhere =
        |state: &str| format!("environments:\n  dev: {state}\n  staging: {state}\n  production: {state}\n");
    registry.write("flags/wip/kill.yml", flag("kill", &everywhere("false")));
    registry.write("flags/wip/widen.yml", flag("widen", &everywhere("true")));
    let lock = [("FLAGOPS_CHANGE_LOCK", "incident 4242")];
    let first = registry.run_with_env(&["sync", "--env", "production"], &lock);
    assert_eq!(first.code, 1, "{first:?}");
    assert!(
        first.stdout.contains("  held back    + widen: (absent) → true\n"),
        "{first:?}"
    );
    assert_eq!(registry.state("production")["flags"]["kill"], false);
    assert_eq!(
        registry.state("production")["last_sync"]["observed"]["held_back"][0]["flag"],
        "widen",
        "{}",
        registry.read(".flagops/state/production.json")
    );
    // What was held back is still asked for: pending, not drift.
    let status = registry.run(&["status", "--env", "production"]);
    assert!(
        status.stdout.contains("  pending  widen: (absent) → true\n"),
        "{status:?}"
    );
    assert!(!status.stdout.contains("drifted  widen"), "{status:?}");

    registry.write("flags/wip/kill.yml", flag("kill", &everywhere("true")));
    let second = registry.run(&["sync", "--env", "production"]);
    assert_eq!(second.code, 0, "{second:?}");
    assert!(!second.stdout.contains("take-over"), "{}", second.stdout);
    assert_eq!(registry.state("production")["flags"]["kill"], true);
    assert_eq!(registry.state("production")["flags"]["widen"], true);
}

/// A production state document written by something other than a flagops sync (no `last_sync`,
/// no audit log): flags the registry sets differently, one it has no entry for there, one its
/// file writes `absent` for, and one no file defines.
fn seed_foreign_production(registry: &Registry) {
    registry.write(
        "flags/wip/delta.yml",
        flag("delta", "environments:\n  dev: true\n  production: absent\n"),
    );
    let state = json!({
        "format": 1,
        "environment": "production",
        "revision": 0,
        "flags": {
            "alpha": true,
            "beta": {"actors": ["project:gitlab-org/gitlab"]},
            "delta": true,
            "gamma": {"percentage_of_actors": 50},
            "legacy": false
        }
    });
    registry.write(
        ".flagops/state/production.json",
        serde_json::to_string_pretty(&state).unwrap(),
    );
}

// The first sync into an environment holding state flagops did not write changes none of it
// without `--take-over`, and says which flags and why; `--take-over` applies the plan and is
// recorded in the sync record.
#[test]
fn takeover_guard_refuses_first_sync_over_foreign_state_in_file_backend() {
    let registry = registry();
    seed_foreign_production(&registry);
    let before = registry.read(".flagops/state/production.json");

    let plan = registry.run(&["plan", "--env", "production"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    insta::assert_snapshot!(plan.stdout, @r"
    production: 2 changes
      ~ alpha: true → 25% of actors
      - delta: true → (absent)
      ! legacy: not in the registry, kept (`--prune` deletes it)
      ! gamma: kept: no entry for production in its file (`production: absent` deletes it)
      ! first sync of production: it has no sync record, so flagops did not write what it holds; a sync changes these 2 flags it holds only with `--take-over`: alpha, delta
    2 changes in 1 of 1 environment
    ");

    let sync = registry.run(&["sync", "--env", "production"]);
    assert_eq!(sync.code, 1, "{sync:?}");
    insta::assert_snapshot!(sync.stdout, @r"
    production: REFUSED, nothing applied
      not applied  ~ alpha: true → 25% of actors
      not applied  - delta: true → (absent)
      `production` has no sync record, so flagops did not write what it holds, and this first sync would change or delete 2 of the flags it holds: `alpha`, `delta`
      help: check them with `flagops plan --env production`; `flagops import gitlab --state production` writes the live state into the flag files, `production: absent` or no entry decides what is deleted, and `flagops sync --take-over` applies the registry over the rest
      ! legacy: not in the registry, kept (`--prune` deletes it)
      ! gamma: kept: no entry for production in its file (`production: absent` deletes it)
    sync refused in 1 environment: 0 changes applied; rerun `flagops sync --take-over` once the registry says what each should hold
    ");
    assert_eq!(registry.read(".flagops/state/production.json"), before);
    assert!(registry.audit("production").is_empty());
    let dry = registry.run(&["sync", "--env", "production", "--dry-run", "--format", "json"]);
    assert_eq!(dry.code, 1, "{dry:?}");
    let reports: Value = serde_json::from_str(&dry.stdout).unwrap();
    assert_eq!(reports[0]["plan"]["takeover"], json!(["alpha", "delta"]));
    assert!(reports[0]["refused"].as_str().unwrap().contains("--take-over"));
    assert_eq!(registry.read(".flagops/state/production.json"), before);

    let status = registry.run(&["status", "--env", "production"]);
    assert!(
        status.stdout.contains(
            "  kept     gamma: 50% of actors; no entry for production in its file (`production: absent` deletes it)\n"
        ),
        "{status:?}"
    );

    let taken = registry.run(&["sync", "--env", "production", "--take-over"]);
    assert_eq!(taken.code, 0, "{taken:?}");
    assert!(
        taken
            .stdout
            .contains("  ! took over with `--take-over`: alpha, delta\n"),
        "{}",
        taken.stdout
    );
    let state = registry.state("production");
    assert_eq!(
        state["flags"],
        json!({
            "alpha": {"percentage_of_actors": 25},
            "beta": {"actors": ["project:gitlab-org/gitlab"]},
            "gamma": {"percentage_of_actors": 50},
            "legacy": false
        })
    );
    assert_eq!(state["last_sync"]["take_over"], json!(true));
    // With a sync record, later syncs need no `--take-over`, and record none.
    registry.write(
        "flags/wip/alpha.yml",
        flag("alpha", "environments:\n  production:\n    percentage_of_actors: 30\n"),
    );
    let later = registry.run(&["sync", "--env", "production"]);
    assert_eq!(later.code, 0, "{later:?}");
    assert_eq!(registry.state("production")["last_sync"].get("take_over"), None);
}

// A flag whose file drops an environment's entry is left as the environment holds it; only
// `absent` or `--prune` deletes it.
#[test]
fn no_entry_keeps_the_live_state_and_absent_deletes_it() {
    let registry = registry();
    assert_eq!(registry.run(&["sync"]).code, 0);
    registry.write("flags/wip/alpha.yml", flag("alpha", "environments:\n  dev: true\n"));
    let sync = registry.run(&["sync", "--env", "production"]);
    assert_eq!(sync.code, 0, "{sync:?}");
    insta::assert_snapshot!(sync.stdout, @r"
    production: in sync, nothing to do
      ! alpha: kept: no entry for production in its file (`production: absent` deletes it)
    synced 1 environment: 0 changes applied
    ");
    assert_eq!(
        registry.state("production")["flags"]["alpha"],
        json!({"percentage_of_actors": 25})
    );

    registry.write(
        "flags/wip/alpha.yml",
        flag("alpha", "environments:\n  dev: true\n  production: absent\n"),
    );
    let sync = registry.run(&["sync", "--env", "production"]);
    assert_eq!(sync.code, 0, "{sync:?}");
    assert!(
        sync.stdout.contains("  - alpha: 25% of actors → (absent)\n"),
        "{}",
        sync.stdout
    );
    assert_eq!(registry.state("production")["flags"].get("alpha"), None);

    // `--prune` deletes a flag with no entry, as it deletes orphans.
    registry.write("flags/wip/beta.yml", flag("beta", "environments:\n  dev: false\n"));
    let pruned = registry.run(&["sync", "--env", "production", "--prune"]);
    assert_eq!(pruned.code, 0, "{pruned:?}");
    assert!(
        pruned
            .stdout
            .contains("  - beta: project:gitlab-org/gitlab → (absent)\n"),
        "{}",
        pruned.stdout
    );

    // `set --delete` writes `absent`, which the next sync deletes.
    let set = registry.run(&["set", "beta", "--delete", "--dev"]);
    assert_eq!(set.code, 0, "{set:?}");
    assert!(
        registry
            .read("flags/wip/beta.yml")
            .ends_with("environments:\n  dev: absent\n"),
        "{set:?}"
    );
    let deleted = registry.run(&["sync", "--env", "dev"]);
    assert!(deleted.stdout.contains("  - beta: false → (absent)\n"), "{deleted:?}");

    // A misspelt word is a schema error at its value, and changes nothing.
    registry.write(
        "flags/wip/gamma.yml",
        flag(
            "gamma",
            "requires: [alpha]\nenvironments:\n  dev: true\n  production: absnt\n",
        ),
    );
    let invalid = registry.run(&["validate"]);
    assert_eq!(invalid.code, 1, "{invalid:?}");
    assert!(
        invalid
            .stdout
            .contains("error[invalid-value]: string `absnt` is not allowed here\n  --> flags/wip/gamma.yml:11:15\n"),
        "{invalid:?}"
    );
    assert!(invalid.stdout.contains("help: use one of `absent`\n"), "{invalid:?}");
}

//! `flagops adopt`: drift written into the flag files, against the file backend.

use serde_json::{Value, json};

use crate::harness::{Registry, flag};

/// A flag's file, with a comment and an environment that does not drift, so that a test can
/// tell which lines an adoption touched.
fn file_of(name: &str, production: &str) -> String {
    flag(
        name,
        &format!("environments:\n  # Everyone on dev.\n  dev: true\n  production:{production}\n"),
    )
}

/// A registry with a flag for each kind of drift, synced to every environment.
fn synced() -> Registry {
    let registry = Registry::new();
    registry.write(
        "flags/wip/flip.yml",
        file_of("flip", " false # off until the fix ships"),
    );
    registry.write(
        "flags/wip/share.yml",
        file_of("share", "\n    percentage_of_actors: 25"),
    );
    registry.write(
        "flags/wip/cohort.yml",
        file_of(
            "cohort",
            "\n    actors:\n      project:\n        - gitlab-org/gitlab # the main project\n        - 278964\n        - gitlab-org/gitlab-foss",
        ),
    );
    registry.write("flags/wip/gone.yml", file_of("gone", " true"));
    let sync = registry.run(&["sync"]);
    assert_eq!(sync.code, 0, "{sync:?}");
    registry
}

/// Changes what `environment` holds outside git: `change` edits its flags.
fn drift(registry: &Registry, environment: &str, change: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let mut state = registry.state(environment);
    change(state["flags"].as_object_mut().unwrap());
    registry.write(
        &format!(".flagops/state/{environment}.json"),
        serde_json::to_string_pretty(&state).unwrap(),
    );
}

/// Every file of the registry's flags folder with its bytes.
fn flag_files(registry: &Registry) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(registry.path().join("flags"))
        .into_iter()
        .map(Result::unwrap)
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            let relative = entry.path().strip_prefix(registry.path()).unwrap();
            (relative.display().to_string(), std::fs::read(entry.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

// Each kind of drift (a boolean flipped, a percentage changed, actors added and removed, a flag
// deleted outside git) becomes the file change that makes `status` clean; only the lines of the
// drifted environment change, and the numeric id the file wrote stays as it was.
#[test]
fn adopt_turns_each_kind_of_drift_into_the_file_change_that_makes_status_clean() {
    let registry = synced();
    drift(&registry, "production", |flags| {
        flags.insert("flip".into(), json!(true));
        flags.insert("share".into(), json!({"percentage_of_actors": 40.5}));
        flags.insert(
            "cohort".into(),
            json!({"actors": ["project:278964", "project:gitlab-org/gitlab", "project:gitlab-org/security"]}),
        );
        flags.remove("gone");
    });
    assert_eq!(registry.run(&["status", "--exit-code"]).code, 1);

    let adopt = registry.run(&["adopt"]);
    assert_eq!(adopt.code, 0, "{adopt:?}");
    assert!(
        adopt
            .stdout
            .contains("edited flags/wip/flip.yml:\n  production: false → true\n"),
        "{}",
        adopt.stdout
    );
    assert!(
        adopt.stdout.contains("  production: true → (absent)\n"),
        "{}",
        adopt.stdout
    );
    assert!(
        adopt.stdout.contains("~ share: 25% of actors → 40.5% of actors"),
        "{}",
        adopt.stdout
    );
    assert!(
        adopt
            .stdout
            .contains("Adopt the state of `cohort`, `flip`, `gone` and `share` changed outside git in production"),
        "{}",
        adopt.stdout
    );

    let status = registry.run(&["status", "--exit-code"]);
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(registry.run(&["plan", "--exit-code"]).code, 0);
    assert_eq!(
        registry.read("flags/wip/flip.yml"),
        file_of("flip", " true # off until the fix ships")
    );
    assert_eq!(
        registry.read("flags/wip/share.yml"),
        file_of("share", "\n    percentage_of_actors: 40.5")
    );
    assert_eq!(
        registry.read("flags/wip/cohort.yml"),
        file_of(
            "cohort",
            "\n    actors:\n      project:\n        - gitlab-org/gitlab # the main project\n        - 278964\n        - gitlab-org/security",
        )
    );
    assert_eq!(
        registry.read("flags/wip/gone.yml"),
        flag("gone", "environments:\n  # Everyone on dev.\n  dev: true\n")
    );
}

// `--format json` prints what was adopted, the files and the message a commit would carry.
#[test]
fn adopt_format_json_lists_files_and_message() {
    let registry = synced();
    drift(&registry, "production", |flags| {
        flags.insert("flip".into(), json!(true));
    });
    let adopt = registry.run(&["adopt", "flip", "--production", "--format", "json"]);
    assert_eq!(adopt.code, 0, "{adopt:?}");
    let report: Value = serde_json::from_str(&adopt.stdout).unwrap();
    assert_eq!(report["written"], true);
    assert_eq!(report["files"], json!(["flags/wip/flip.yml"]));
    assert_eq!(
        report["adopted"],
        json!([{"flag": "flip", "environment": "production", "file": "flags/wip/flip.yml", "before": false, "after": true}])
    );
    assert_eq!(
        report["message"],
        "Adopt the state of `flip` changed outside git in production\n\nflip in production: false → true\n"
    );
}

// A change committed but not synced yet is pending: adopting it would revert a reviewed change.
#[test]
fn adopt_leaves_pending_changes_alone() {
    let registry = Registry::new();
    registry.write("flags/wip/flip.yml", file_of("flip", " false"));
    registry.init_git();
    assert_eq!(registry.run(&["sync"]).code, 0);
    registry.write("flags/wip/flip.yml", file_of("flip", " true"));
    registry.commit("Turn flip on");
    let before = flag_files(&registry);

    let adopt = registry.run(&["adopt"]);
    assert_eq!(adopt.code, 0, "{adopt:?}");
    assert!(
        adopt.stdout.contains("`flip` in production is pending, not drifted"),
        "{}",
        adopt.stdout
    );
    assert!(adopt.stdout.contains("nothing to adopt"), "{}", adopt.stdout);
    assert_eq!(flag_files(&registry), before);
}

// Where editing `environments` would not change the desired state (a due rollout step sets the
// environment) and where there is no file (an orphan), nothing is written and the exit code is 1.
#[test]
fn adopt_refuses_a_due_rollout_step_and_an_orphan() {
    let registry = Registry::new();
    registry.write(
        "flags/wip/stepped.yml",
        flag(
            "stepped",
            "environments:\n  production: false\nrollout:\n  - at: 2020-01-01T00:00:00Z\n    production:\n      percentage_of_actors: 10\n",
        ),
    );
    registry.write("flags/wip/flip.yml", file_of("flip", " false"));
    assert_eq!(registry.run(&["sync"]).code, 0);
    drift(&registry, "production", |flags| {
        flags.insert("stepped".into(), json!(true));
        flags.insert("flip".into(), json!(true));
        flags.insert("stray".into(), json!(true));
    });
    let before = flag_files(&registry);

    let adopt = registry.run(&["adopt"]);
    assert_eq!(adopt.code, 1, "{adopt:?}");
    assert!(
        adopt
            .stdout
            .contains("refused: `stepped` in production: a rollout step of `stepped` that is due sets production"),
        "{}",
        adopt.stdout
    );
    assert!(adopt.stdout.contains("help: edit the rollout plan"), "{}", adopt.stdout);
    assert!(
        adopt
            .stdout
            .contains("note: `stray` in production: it has no flag file"),
        "{}",
        adopt.stdout
    );
    assert!(
        adopt.stdout.contains("not written: 1 state cannot be adopted"),
        "{}",
        adopt.stdout
    );
    assert_eq!(flag_files(&registry), before);

    let orphan = registry.run(&["adopt", "stray"]);
    assert_eq!(orphan.code, 1, "{orphan:?}");
    assert!(
        orphan
            .stdout
            .contains("refused: `stray` in production: it has no flag file"),
        "{}",
        orphan.stdout
    );
    assert!(
        orphan.stdout.contains("`flagops new` or `flagops import gitlab`"),
        "{}",
        orphan.stdout
    );
    assert_eq!(flag_files(&registry), before);

    // The flags named are adopted alone.
    let named = registry.run(&["adopt", "flip"]);
    assert_eq!(named.code, 0, "{named:?}");
    assert_eq!(registry.read("flags/wip/flip.yml"), file_of("flip", " true"));
}

// `--dry-run` prints what it would edit and writes nothing.
#[test]
fn adopt_dry_run_writes_nothing() {
    let registry = synced();
    drift(&registry, "production", |flags| {
        flags.insert("flip".into(), json!(true));
    });
    let before = flag_files(&registry);
    let adopt = registry.run(&["adopt", "--dry-run"]);
    assert_eq!(adopt.code, 0, "{adopt:?}");
    assert!(
        adopt.stdout.contains("would edit flags/wip/flip.yml:"),
        "{}",
        adopt.stdout
    );
    assert!(adopt.stdout.contains("dry run: nothing written"), "{}", adopt.stdout);
    assert_eq!(flag_files(&registry), before);
}

// A result the registry's checks refuse (a feature group flagops.yml does not list) puts every
// edited file back byte for byte, the other adoption's file included.
#[test]
fn adopt_puts_back_a_result_that_fails_validation() {
    let registry = synced();
    drift(&registry, "production", |flags| {
        flags.insert("flip".into(), json!(true));
        flags.insert(
            "share".into(),
            json!({"percentage_of_actors": 25, "groups": ["not_a_listed_group"]}),
        );
    });
    let before = flag_files(&registry);
    let adopt = registry.run(&["adopt"]);
    assert_eq!(adopt.code, 1, "{adopt:?}");
    assert!(adopt.stderr.contains("not_a_listed_group"), "{}", adopt.stderr);
    assert!(
        adopt.stderr.contains(
            "not written: with this change the registry would have 1 error (`flags/wip/flip.yml`, `flags/wip/share.yml` are unchanged)"
        ),
        "{}",
        adopt.stderr
    );
    assert_eq!(flag_files(&registry), before);
}

// Unknown names and environments are refusals, with the closest name.
#[test]
fn adopt_refuses_unknown_flags_and_environments() {
    let registry = synced();
    let unknown = registry.run(&["adopt", "flipp"]);
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert!(unknown.stderr.contains("did you mean `flip`?"), "{}", unknown.stderr);
    let environment = registry.run(&["adopt", "--env", "prod"]);
    assert_eq!(environment.code, 1, "{environment:?}");
    assert!(
        environment.stderr.contains("unknown environment `prod`"),
        "{}",
        environment.stderr
    );
}

// GitLab lists actors by Flipper id (`Project:42`) and flagops shows them as the API names them
// (`project:group/app`): an adopted actor is written by that name, an actor the file already
// names by id (`278964`) keeps its spelling, and an actor GitLab cannot name is refused.
#[test]
fn adopt_writes_gitlab_actors_as_the_file_names_them() {
    use crate::fake_gitlab::{FakeGitlab, TOKEN};
    use crate::gitlab::TOKEN_ENV;

    let production = FakeGitlab::start();
    let registry = crate::gitlab::registry(&[("production", &production)], 10);
    let run = |args: &[&str]| registry.run_with_env(args, &[(TOKEN_ENV, TOKEN), ("NO_PROXY", "127.0.0.1")]);
    let actors = |ids: &str| flag("cohort", &format!("environments:\n  production:\n    actors:\n{ids}"));
    registry.write(
        "flags/wip/cohort.yml",
        actors("      project:\n        - 278964\n        - gitlab-org/gitlab-foss\n      user:\n        - alice\n"),
    );
    assert_eq!(run(&["sync"]).code, 0);
    {
        let mut world = production.world();
        let cohort = world.features.get_mut("cohort").unwrap();
        cohort.actors.remove("Project:13083");
        cohort.actors.insert("Project:42".into());
        cohort.actors.insert("User:2".into());
    }
    let adopt = run(&["adopt", "cohort"]);
    assert_eq!(adopt.code, 0, "{adopt:?}");
    assert_eq!(
        registry.read("flags/wip/cohort.yml"),
        actors("      project:\n        - 278964\n        - group/app\n      user:\n        - alice\n        - bob\n")
    );
    let status = run(&["status", "--exit-code"]);
    assert_eq!(status.code, 0, "{status:?}");

    production
        .world()
        .features
        .get_mut("cohort")
        .unwrap()
        .actors
        .insert("Project:999999".into());
    let before = flag_files(&registry);
    let refused = run(&["adopt"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused
            .stdout
            .contains("refused: `cohort` in production: a flag file cannot name what production holds"),
        "{}",
        refused.stdout
    );
    assert!(
        refused.stdout.contains("help: set `environments.production` by hand"),
        "{}",
        refused.stdout
    );
    assert_eq!(flag_files(&registry), before);
}

//! The `flipper-sql` backend against a real PostgreSQL holding GitLab's Flipper tables: the
//! exact rows a sync writes, how hand-written rows read, faults (a refused change, a killed
//! connection, a killed process, a held lock), secrets, and the rows read back through the real
//! Flipper in Ruby.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use flagops::backends::Backend;
use flagops::backends::flipper_sql::{self, FlipperSqlBackend};
use flagops::config::Config;
use flagops::state::{Actor, GateSet, Stored};
use serde_json::{Value, json};

use crate::flipper_oracle::{flipper_enabled, flipper_view, read_through_flipper, ruby_flipper_available};
use crate::harness::{Output, Registry, flag, repo_root};
use crate::postgres::{self, Database};

/// The Flipper id GitLab gives project 278964's repository: its hashed storage path,
/// `@hashed/` and the SHA-256 of the project id (`lib/gitlab/git/repository.rb`).
const REPOSITORY: &str =
    "Repository:@hashed/a6/80/a68072e80f075e89bc74a300101a9e71e8363bdb542182580162553462480a52.git";

/// The environment variable the test registries name in `url_env`.
const URL_ENV: &str = "FLIPPER_TEST_DATABASE";

/// Flags with every kind of state in production; `dev_only` is absent there.
const FLAGS: &[(&str, &str)] = &[
    (
        "actors_flag",
        "production:\n    actors:\n      project: [278964, 13]\n      user: [1]\n      group: [9970]\n      namespace: [5]\n      runner: [12270807]\n      repository: [\"@hashed/a6/80/a68072e80f075e89bc74a300101a9e71e8363bdb542182580162553462480a52.git\"]",
    ),
    ("dev_only", "dev: true"),
    (
        "mixed",
        "production:\n    percentage_of_actors: 12.5\n    actors:\n      user: [2]\n    groups: [gitlab_team_members]",
    ),
    ("off_flag", "production: false"),
    ("on_flag", "production: true"),
    ("quarter", "production:\n    percentage_of_actors: 25"),
    ("sometimes", "production:\n    percentage_of_time: 10"),
    ("team_only", "production:\n    groups: [gitlab_team_members]"),
    ("third", "production:\n    percentage_of_actors: 33.333"),
];

/// A registry whose `production` environment syncs into a fresh database with GitLab's tables.
struct Setup {
    registry: Registry,
    database: Database,
}

impl Setup {
    fn new(flags: &[(&str, &str)]) -> Option<Setup> {
        let database = postgres::database()?.with_gitlab_tables();
        let registry = Registry::new();
        let config = registry.read("flagops.yml");
        let production = config.rfind("backend: { kind: file }").expect("production's backend");
        let config = format!(
            "{}backend: {{ kind: flipper-sql, url_env: {URL_ENV} }}{}",
            &config[..production],
            &config[production + "backend: { kind: file }".len()..]
        );
        registry.write("flagops.yml", config);
        let setup = Setup { registry, database };
        setup.write_flags(flags);
        Some(setup)
    }

    fn write_flags(&self, flags: &[(&str, &str)]) {
        for (name, states) in flags {
            self.registry.write(
                &format!("flags/wip/{name}.yml"),
                flag(name, &format!("environments:\n  {states}\n")),
            );
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.registry
            .run_with_env(args, &[(URL_ENV, &self.database.connection_string())])
    }

    /// Every features key, sorted.
    fn features(&self) -> Vec<String> {
        let mut keys: Vec<String> = query(&self.database, "SELECT key FROM features")
            .iter()
            .map(|row| row.get(0))
            .collect();
        keys.sort();
        keys
    }

    /// Every gate row as (flag, key, value), sorted.
    fn gates(&self) -> Vec<(String, String, String)> {
        let mut rows: Vec<(String, String, String)> =
            query(&self.database, "SELECT feature_key, key, value FROM feature_gates")
                .iter()
                .map(|row| (row.get(0), row.get(1), row.get(2)))
                .collect();
        rows.sort();
        rows
    }

    /// The audit records as (flag, action), in order.
    fn audit(&self) -> Vec<(String, String)> {
        query(&self.database, "SELECT flag, action FROM flagops_audit ORDER BY id")
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    }
}

fn query(database: &Database, sql: &str) -> Vec<::postgres::Row> {
    database.client().query(sql, &[]).unwrap()
}

fn gates(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|(flag, key, value)| (flag.to_string(), key.to_string(), value.to_string()))
        .collect()
}

/// The rows `FLAGS` gives in production.
fn expected_gates() -> Vec<(String, String, String)> {
    gates(&[
        ("actors_flag", "actors", "Ci::Runner:12270807"),
        ("actors_flag", "actors", "Group:9970"),
        ("actors_flag", "actors", "Namespaces::UserNamespace:5"),
        ("actors_flag", "actors", "Project:13"),
        ("actors_flag", "actors", "Project:278964"),
        ("actors_flag", "actors", REPOSITORY),
        ("actors_flag", "actors", "User:1"),
        ("mixed", "actors", "User:2"),
        ("mixed", "groups", "gitlab_team_members"),
        ("mixed", "percentage_of_actors", "12.5"),
        ("on_flag", "boolean", "true"),
        ("quarter", "percentage_of_actors", "25.0"),
        ("sometimes", "percentage_of_time", "10.0"),
        ("team_only", "groups", "gitlab_team_members"),
        ("third", "percentage_of_actors", "33.333"),
    ])
}

fn production_flags() -> Vec<String> {
    [
        "actors_flag",
        "mixed",
        "off_flag",
        "on_flag",
        "quarter",
        "sometimes",
        "team_only",
        "third",
    ]
    .map(String::from)
    .to_vec()
}

// A sync writes exactly Flipper's rows for every state, a second sync changes nothing, changes
// between states rewrite only what differs, orphans are kept until pruned, and every change is
// audited in the same database.
#[test]
fn flipper_sql_sync_writes_flipper_rows() {
    let Some(setup) = Setup::new(FLAGS) else { return };
    let first = setup.run(&["sync"]);
    assert_eq!(first.code, 0, "{first:?}");
    assert!(
        first.stdout.contains("synced 6 environments: 9 changes applied"),
        "{}",
        first.stdout
    );
    assert_eq!(setup.features(), production_flags());
    assert_eq!(setup.gates(), expected_gates());
    let unset: i64 = query(
        &setup.database,
        "SELECT count(*) FROM features WHERE created_at IS NULL OR updated_at <> created_at OR created_at > now()",
    )[0]
    .get(0);
    assert_eq!(unset, 0, "features rows carry their insert time");
    let audit = setup.audit();
    assert_eq!(
        audit.iter().map(|(flag, _)| flag.clone()).collect::<Vec<_>>(),
        production_flags()
    );
    assert!(audit.iter().all(|(_, action)| action == "create"));

    let again = setup.run(&["sync"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("synced 6 environments: 0 changes applied"),
        "{}",
        again.stdout
    );
    assert_eq!(setup.audit().len(), 8);
    assert_eq!(setup.run(&["status", "--exit-code"]).code, 0);

    // Change every kind of state, and add a flag by hand that the registry does not know.
    let ids_before: BTreeMap<String, i64> = query(
        &setup.database,
        "SELECT value, id FROM feature_gates WHERE feature_key IN ('actors_flag', 'quarter')",
    )
    .iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect();
    setup.database.execute(
        "INSERT INTO features (key, created_at, updated_at) VALUES ('orphan_flag', now(), now());
         INSERT INTO feature_gates (feature_key, key, value, created_at, updated_at) VALUES ('orphan_flag', 'boolean', 'true', now(), now());",
    );
    setup.write_flags(&[
        ("on_flag", "production:\n    percentage_of_actors: 50"),
        ("quarter", "production:\n    percentage_of_actors: 50"),
        ("actors_flag", "production:\n    actors:\n      project: [278964]\n      user: [1, 3]\n      group: [9970]\n      namespace: [5]\n      runner: [12270807]\n      repository: [\"@hashed/a6/80/a68072e80f075e89bc74a300101a9e71e8363bdb542182580162553462480a52.git\"]"),
        ("off_flag", "dev: false\n  production: absent"),
        ("sometimes", "production: false"),
        ("new_flag", "production: true"),
    ]);
    let changed = setup.run(&["sync", "--env", "production"]);
    assert_eq!(changed.code, 0, "{changed:?}");
    assert!(
        changed.stdout.contains("! orphan_flag: not in the registry, kept"),
        "{}",
        changed.stdout
    );
    let mut expected = gates(&[
        ("actors_flag", "actors", "Ci::Runner:12270807"),
        ("actors_flag", "actors", "Group:9970"),
        ("actors_flag", "actors", "Namespaces::UserNamespace:5"),
        ("actors_flag", "actors", "Project:278964"),
        ("actors_flag", "actors", REPOSITORY),
        ("actors_flag", "actors", "User:1"),
        ("actors_flag", "actors", "User:3"),
        ("mixed", "actors", "User:2"),
        ("mixed", "groups", "gitlab_team_members"),
        ("mixed", "percentage_of_actors", "12.5"),
        ("new_flag", "boolean", "true"),
        ("on_flag", "percentage_of_actors", "50.0"),
        ("orphan_flag", "boolean", "true"),
        ("quarter", "percentage_of_actors", "50.0"),
        ("team_only", "groups", "gitlab_team_members"),
        ("third", "percentage_of_actors", "33.333"),
    ]);
    assert_eq!(setup.gates(), expected);
    // `false` keeps the features row (the flag stays persisted); removal deletes it.
    let features = setup.features();
    assert!(features.contains(&"sometimes".to_string()));
    assert!(!features.contains(&"off_flag".to_string()));
    // Rows that stay are left alone; a new percentage is a new row, as in Flipper.
    let ids_after: BTreeMap<String, i64> = query(
        &setup.database,
        "SELECT value, id FROM feature_gates WHERE feature_key IN ('actors_flag', 'quarter')",
    )
    .iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect();
    assert_eq!(ids_after["User:1"], ids_before["User:1"]);
    assert_eq!(ids_after["Project:278964"], ids_before["Project:278964"]);
    assert!(!ids_before.contains_key("50.0") && ids_after.contains_key("50.0"));

    let record = &query(
        &setup.database,
        "SELECT action, from_state, to_state, applied_by, environment FROM flagops_audit WHERE flag = 'quarter' ORDER BY id DESC LIMIT 1",
    )[0];
    assert_eq!(record.get::<_, String>(0), "update");
    assert_eq!(record.get::<_, Value>(1), json!({"percentage_of_actors": 25}));
    assert_eq!(record.get::<_, Value>(2), json!({"percentage_of_actors": 50}));
    assert!(!record.get::<_, String>(3).is_empty());
    assert_eq!(record.get::<_, String>(4), "production");
    let removed = &query(
        &setup.database,
        "SELECT action, to_state FROM flagops_audit WHERE flag = 'off_flag' ORDER BY id DESC LIMIT 1",
    )[0];
    assert_eq!(removed.get::<_, String>(0), "delete");
    assert_eq!(removed.get::<_, Option<Value>>(1), None);

    let pruned = setup.run(&["sync", "--env", "production", "--prune"]);
    assert_eq!(pruned.code, 0, "{pruned:?}");
    expected.retain(|(flag, _, _)| flag != "orphan_flag");
    assert_eq!(setup.gates(), expected);
    assert!(!setup.features().contains(&"orphan_flag".to_string()));
    let syncs: i64 = query(
        &setup.database,
        "SELECT count(*) FROM flagops_sync WHERE environment = 'production'",
    )[0]
    .get(0);
    assert_eq!(syncs, 4, "every completed sync is recorded");
    let status = setup.run(&["status", "--exit-code", "--env", "production"]);
    assert_eq!(status.code, 0, "{status:?}");
}

// Rows written by hand, or by GitLab in its other formats, read as Flipper evaluates them.
#[test]
fn flipper_sql_reads_rows_as_flipper_does() {
    let Some(database) = postgres::database() else { return };
    let database = database.with_gitlab_tables();
    let rows = [
        ("integer", "percentage_of_actors", "25"),
        ("float", "percentage_of_actors", "25.0"),
        ("fraction", "percentage_of_actors", "12.5"),
        ("zero", "percentage_of_actors", "0"),
        ("time_full", "percentage_of_time", "100"),
        ("not_true", "boolean", "t"),
        ("opted_out", "boolean", "true"),
        ("opted_out", "actors", "Project:6:opt_out"),
        ("instance", "actors", "FlipperGitlabInstance:gitlab.com"),
        ("stray", "actors", "User:1"),
    ];
    let mut sql = String::new();
    for flag in [
        "integer",
        "float",
        "fraction",
        "zero",
        "empty",
        "time_full",
        "not_true",
        "opted_out",
        "instance",
    ] {
        sql.push_str(&format!(
            "INSERT INTO features (key, created_at, updated_at) VALUES ('{flag}', now(), now());\n"
        ));
    }
    for (flag, key, value) in rows {
        sql.push_str(&format!(
            "INSERT INTO feature_gates (feature_key, key, value, created_at, updated_at) VALUES ('{flag}', '{key}', '{value}', now(), now());\n"
        ));
    }
    database.execute(&sql);
    let mut backend = open(&database, false);
    let flags = backend.fetch().unwrap().flags;
    let percentage = |thousandths| {
        Stored::Gates(GateSet {
            percentage_of_actors: Some(thousandths),
            ..GateSet::default()
        })
    };
    let actors = |actors: &[(&str, &str)], time: Option<u32>| {
        Stored::Gates(GateSet {
            percentage_of_time: time,
            actors: actors
                .iter()
                .map(|(kind, id)| Actor {
                    kind: kind.to_string(),
                    id: id.to_string(),
                })
                .collect(),
            ..GateSet::default()
        })
    };
    let expected: BTreeMap<String, Stored> = [
        ("integer", percentage(25_000)),
        ("float", percentage(25_000)),
        ("fraction", percentage(12_500)),
        ("zero", Stored::Boolean(false)),
        ("empty", Stored::Boolean(false)),
        ("time_full", Stored::Boolean(true)),
        ("not_true", Stored::Boolean(false)),
        ("opted_out", actors(&[("project", "6:opt_out")], Some(100_000))),
        ("instance", actors(&[("FlipperGitlabInstance", "gitlab.com")], None)),
        // Gate rows without a features row still count in Flipper.
        ("stray", actors(&[("user", "1")], None)),
    ]
    .into_iter()
    .map(|(flag, state)| (flag.to_string(), state))
    .collect();
    assert_eq!(flags, expected);

    // Two percentage rows that disagree cannot be read as one state.
    database.execute(
        "INSERT INTO feature_gates (feature_key, key, value, created_at, updated_at) VALUES ('integer', 'percentage_of_actors', '50', now(), now());",
    );
    let error = backend.fetch().unwrap_err().to_string();
    assert!(
        error.contains("flag `integer` in `postgres@")
            && error.contains("has 2 `percentage_of_actors` rows that disagree"),
        "{error}"
    );
}

// A change the database refuses stops the sync there: earlier flags are written, the refused
// flag's transaction leaves nothing (not its features row, not its audit record), and a rerun
// converges, recording each change once.
#[test]
fn flipper_sql_rerun_converges_after_refused_change() {
    let Some(setup) = Setup::new(FLAGS) else { return };
    setup.database.execute(
        "CREATE FUNCTION refuse_gate() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.value = 'User:2' THEN RAISE EXCEPTION 'refused by the test trigger'; END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_gate BEFORE INSERT ON feature_gates FOR EACH ROW EXECUTE FUNCTION refuse_gate();",
    );
    let failed = setup.run(&["sync", "--env", "production"]);
    assert_eq!(failed.code, 2, "{failed:?}");
    assert!(
        failed.stdout.contains("refused by the test trigger"),
        "{}",
        failed.stdout
    );
    // Changes go in name order here: `actors_flag` was applied, `mixed` failed whole.
    assert_eq!(setup.features(), ["actors_flag"]);
    assert!(setup.gates().iter().all(|(flag, _, _)| flag == "actors_flag"));
    assert_eq!(setup.audit(), [("actors_flag".to_string(), "create".to_string())]);

    setup.database.execute("DROP TRIGGER refuse_gate ON feature_gates;");
    let rerun = setup.run(&["sync", "--env", "production"]);
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert_eq!(setup.gates(), expected_gates());
    let audited: Vec<String> = setup.audit().into_iter().map(|(flag, _)| flag).collect();
    assert_eq!(audited, production_flags(), "each change recorded once");
}

// A change held back is kept in `flagops_sync`'s `observed` column, on a row that repeats the last
// completed sync's, and `status` reads it from there; the next completed sync clears it.
#[test]
fn flipper_sql_keeps_what_a_sync_held_back() {
    let Some(setup) = Setup::new(&[("widen", "production: false")]) else {
        return;
    };
    assert_eq!(setup.run(&["sync", "--env", "production"]).code, 0);
    setup.write_flags(&[("widen", "production: true")]);
    let held = setup.run(&["sync", "--env", "production", "--hold-widening", "INC-7"]);
    assert_eq!(held.code, 1, "{held:?}");
    let rows = query(
        &setup.database,
        "SELECT started_at::text, observed FROM flagops_sync WHERE environment = 'production' ORDER BY id",
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].get::<_, String>(0),
        rows[1].get::<_, String>(0),
        "the completed sync's time"
    );
    assert_eq!(rows[0].get::<_, Option<Value>>(1), None);
    assert_eq!(
        rows[1].get::<_, Option<Value>>(1),
        Some(
            json!({"held_back": [{"flag": "widen", "desired": true, "actual": false, "why": ["--hold-widening: INC-7"]}]})
        )
    );
    let status = setup.run(&["status", "--env", "production"]);
    assert!(
        status
            .stdout
            .contains("  held back widen: false → true, by the last sync: --hold-widening: INC-7\n"),
        "{status:?}"
    );
    assert_eq!(setup.run(&["sync", "--env", "production"]).code, 0);
    let status = setup.run(&["status", "--env", "production"]);
    assert!(!status.stdout.contains("held back"), "{status:?}");
}

// A connection killed in the middle of a change is a transient failure: the transaction rolls
// back, flagops connects again (taking the lock again) and the same sync finishes.
#[test]
fn flipper_sql_survives_killed_connection() {
    let Some(setup) = Setup::new(FLAGS) else { return };
    setup.database.execute(
        "CREATE SEQUENCE kills;
         CREATE FUNCTION kill_connection() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.feature_key = 'quarter' AND nextval('kills') = 1 THEN
             PERFORM pg_terminate_backend(pg_backend_pid());
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER kill_connection BEFORE INSERT ON feature_gates FOR EACH ROW EXECUTE FUNCTION kill_connection();",
    );
    let output = setup.run(&["sync", "--env", "production"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stderr.contains("retrying `quarter`"), "{}", output.stderr);
    assert_eq!(setup.gates(), expected_gates());
    let audited: Vec<String> = setup.audit().into_iter().map(|(flag, _)| flag).collect();
    assert_eq!(audited, production_flags());
}

// A sync killed at any moment leaves every flag either before or after its change; a rerun
// applies the rest, so each change is recorded exactly once.
#[test]
fn flipper_sql_killed_sync_converges_on_rerun() {
    let flags: Vec<(String, String)> = (0..300)
        .map(|i| {
            (
                format!("flag_{i:03}"),
                format!(
                    "production:\n    percentage_of_actors: 10\n    actors:\n      project: [{}]",
                    i + 1
                ),
            )
        })
        .collect();
    let borrowed: Vec<(&str, &str)> = flags.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let Some(setup) = Setup::new(&borrowed) else { return };
    let mut interrupted = 0;
    for delay_ms in [40u64, 120, 250] {
        setup
            .database
            .execute("DELETE FROM feature_gates; DELETE FROM features; DROP TABLE IF EXISTS flagops_audit;");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flagops"))
            .args(["sync", "--env", "production"])
            .current_dir(setup.registry.path())
            .env(URL_ENV, setup.database.connection_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let finished = child.wait().unwrap().success();
        let before: i64 = query(&setup.database, "SELECT count(*) FROM features")[0].get(0);
        if !finished && before < 300 {
            interrupted += 1;
        }
        let rerun = setup.run(&["sync", "--env", "production"]);
        assert_eq!(rerun.code, 0, "{rerun:?}");
        let audit = setup.audit();
        let unique: BTreeSet<&String> = audit.iter().map(|(flag, _)| flag).collect();
        assert_eq!(audit.len(), 300, "each change recorded once");
        assert_eq!(unique.len(), 300);
        assert_eq!(setup.features().len(), 300);
        assert_eq!(setup.gates().len(), 600);
        assert_eq!(setup.run(&["status", "--exit-code", "--env", "production"]).code, 0);
    }
    assert!(interrupted > 0, "no run was killed mid-sync; the test proved nothing");
}

// A sync from another machine holds the database's advisory lock: this one waits for it.
#[test]
fn flipper_sql_waits_for_another_sync() {
    let Some(setup) = Setup::new(&FLAGS[..2]) else { return };
    let mut other = setup.database.client();
    other
        .execute(
            "SELECT pg_advisory_lock($1, $2)",
            &[&flipper_sql::LOCK_KEY.0, &flipper_sql::LOCK_KEY.1],
        )
        .unwrap();
    // `--lock-timeout` bounds the wait: here, not at all.
    let output = setup.run(&["sync", "--env", "production", "--lock-timeout", "0"]);
    assert_eq!(output.code, 2, "{output:?}");
    let shown = format!("{}{}", output.stdout, output.stderr);
    assert!(
        shown.contains("is being synced by session") && shown.contains("(waited 0 s)"),
        "{shown}"
    );
    assert!(setup.features().is_empty());

    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(other);
    });
    let output = setup.run(&["sync", "--env", "production"]);
    release.join().unwrap();
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        output
            .stderr
            .contains("waiting for the sync lock of the Flipper database `postgres@")
            && output.stderr.contains("held by session"),
        "{}",
        output.stderr
    );
    assert_eq!(setup.features(), ["actors_flag"]);
}

// Flipper stores numeric ids, and repositories by storage path; a path in GitLab cannot be
// resolved from the database. It is refused before anything is written, by `plan` too.
#[test]
fn flipper_sql_refuses_paths_for_numeric_kinds() {
    let Some(setup) = Setup::new(&[
        ("a_numeric", "production:\n    actors:\n      project: [278964]"),
        (
            "by_path",
            "production:\n    actors:\n      project: [gitlab-org/gitlab]",
        ),
        (
            "repository_path",
            "production:\n    actors:\n      repository: [gitlab-org/gitlab.git]",
        ),
    ]) else {
        return;
    };
    for command in [&["plan", "--env", "production"][..], &["sync", "--env", "production"]] {
        let output = setup.run(command);
        assert_eq!(output.code, 2, "{output:?}");
        let shown = format!("{}{}", output.stdout, output.stderr);
        assert!(
            shown.contains(
                "flag `by_path` in `production`: actor `project:gitlab-org/gitlab` is not a numeric id, and the flipper-sql backend cannot look up paths in GitLab's database (Flipper stores `Project:<id>`)"
            ) && shown.contains("help: write the project's numeric id"),
            "{command:?}: {shown}"
        );
        assert!(
            shown.contains(
                "flag `repository_path` in `production`: repository `gitlab-org/gitlab.git` is not a storage path"
            ) && shown.contains("help: write the repository's storage path as GitLab keeps it"),
            "{command:?}: {shown}"
        );
    }
    assert!(
        setup.features().is_empty(),
        "nothing is written, not even the flags before the refused one"
    );
    setup.write_flags(&[
        ("by_path", "production:\n    actors:\n      project: [278964]"),
        (
            "repository_path",
            "production:\n    actors:\n      repository: [\"@hashed/a6/80/a68072e80f075e89bc74a300101a9e71e8363bdb542182580162553462480a52.git\"]",
        ),
    ]);
    assert_eq!(setup.run(&["sync", "--env", "production"]).code, 0);
    assert_eq!(
        setup.gates(),
        gates(&[
            ("a_numeric", "actors", "Project:278964"),
            ("by_path", "actors", "Project:278964"),
            ("repository_path", "actors", REPOSITORY),
        ])
    );
}

// GitLab's tables must exist (flagops creates only its own), the variable must be set, and the
// connection string's password never shows, whatever fails.
#[test]
fn flipper_sql_requires_gitlab_tables_and_hides_the_password() {
    let Some(database) = postgres::database() else { return };
    let setup = Setup::new(&FLAGS[..1]).unwrap();
    let empty = Setup {
        registry: setup.registry,
        database,
    };
    for command in [
        &["plan", "--env", "production"][..],
        &["sync", "--env", "production"][..],
    ] {
        let output = empty.run(command);
        assert_eq!(output.code, 2, "{output:?}");
        let text = format!("{}{}", output.stdout, output.stderr);
        assert!(
            text.contains(&format!(
                "the database `postgres@{}:{}/{}` has no `features` table",
                empty.database.cluster().socket_dir().display(),
                empty.database.cluster().port(),
                empty.database.name()
            )),
            "{text}"
        );
    }
    let created: Option<String> = query(&empty.database, "SELECT to_regclass('flagops_audit')::text")[0].get(0);
    assert_eq!(created, None);

    let unset = empty.registry.run(&["plan", "--env", "production"]);
    assert!(
        unset
            .stderr
            .contains(&format!("the environment variable `{URL_ENV}` is not set")),
        "{}",
        unset.stderr
    );

    let secret = "pa55-w0rd-XYZ";
    let refused = format!("postgresql://postgres:{secret}@127.0.0.1:1/{}", setup.database.name());
    let wrong_db = format!(
        "{} password={secret} dbname=no_such_db",
        setup.database.connection_string()
    );
    let working = format!("{} password={secret}", setup.database.connection_string());
    let working_url = format!(
        "postgresql://postgres:{secret}@127.0.0.1:{}/{}",
        setup.database.cluster().port(),
        setup.database.name()
    );
    for (connection, code) in [(&refused, 2), (&wrong_db, 2), (&working, 0), (&working_url, 0)] {
        for format in ["human", "json"] {
            let output = empty.registry.run_with_env(
                &["sync", "--env", "production", "--format", format],
                &[(URL_ENV, connection)],
            );
            assert_eq!(output.code, code, "{output:?}");
            assert!(
                !output.stdout.contains(secret) && !output.stderr.contains(secret),
                "{output:?}"
            );
        }
    }
    let backend = open(&setup.database, true);
    assert!(!format!("{backend:?}").contains("password"));
}

// After a sync, the real Flipper (Ruby, ActiveRecord adapter, as GitLab sets it up) reads every
// flag as the registry says: its gate values, its state, and `enabled?` for hundreds of actors,
// which must follow crc32(flag + flipper_id) % 100000 < percentage × 1000.
#[test]
fn flipper_sql_rows_read_back_through_flipper() {
    // The test vectors of the Flipper recipe, and a percentage whose float product with 1,000
    // is just above the whole number: Flipper then opens that bucket too.
    let extra = [
        ("my_feature", "production:\n    percentage_of_actors: 25"),
        ("edge_flag", "production:\n    percentage_of_actors: 2.007"),
        (
            "often",
            "production:\n    percentage_of_time: 62.5\n    actors:\n      user: [2]",
        ),
    ];
    let Some(setup) = Setup::new(&[FLAGS, &extra[..]].concat()) else {
        return;
    };
    if !ruby_flipper_available() {
        return;
    }
    assert_eq!(setup.run(&["sync"]).code, 0);
    let config = config(&setup.registry);
    let registry_states = production_states(&setup);
    let team_members = vec!["User:1".to_string(), "User:7".to_string()];
    let mut actors: Vec<String> = (1..=400).map(|id| format!("Project:{id}")).collect();
    actors.extend((1..=20).map(|id| format!("User:{id}")));
    actors.extend(
        [
            "Project:278964",
            "Project:46905",
            "Project:29827",
            "Project:92536",
            "Group:9970",
            "Namespaces::UserNamespace:5",
            "Ci::Runner:12270807",
            REPOSITORY,
            "Repository:@hashed/6b/86/6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b.git",
        ]
        .map(String::from),
    );
    let names: Vec<&str> = FLAGS.iter().chain(&extra).map(|(name, _)| *name).collect();
    // Percentage of time draws anew on every check: both sides get the same forced draws, on
    // either side of `sometimes`'s 10% and of `often`'s 62.5%, and exactly on 10%, which is off
    // (`rand < 0.1`).
    let draws = [0.0, 0.099_999, 0.1, 0.6, 0.625, 0.999_999];
    let mut seen_at = Vec::new();
    for draw in draws {
        let seen = read_through_flipper(&setup.database, &names, &actors, &team_members, draw);
        for name in &names {
            let state = registry_states.get(*name);
            let mut expected = flipper_view(state, &config);
            for actor in std::iter::once("").chain(actors.iter().map(String::as_str)) {
                let enabled = flipper_enabled(
                    name,
                    state,
                    (!actor.is_empty()).then_some(actor),
                    &config,
                    &team_members,
                    draw,
                );
                expected.enabled.insert(actor.to_string(), enabled);
            }
            assert_eq!(&seen[*name], &expected, "{name} at draw {draw}");
        }
        seen_at.push(seen);
    }
    // Flipper itself switched the percentage-of-time flags with the draw, so the comparison
    // above covered both of their answers.
    let sometimes: Vec<bool> = seen_at.iter().map(|seen| seen["sometimes"].enabled[""]).collect();
    assert_eq!(sometimes, [true, true, false, false, false, false]);
    let often: Vec<bool> = seen_at.iter().map(|seen| seen["often"].enabled["Project:1"]).collect();
    assert_eq!(often, [true, true, true, true, false, false]);
    let seen = &seen_at[0];
    // Buckets 24999 and 25000 sit on either side of 25%; bucket 2007 opens at 2.007% because
    // 2.007 × 1000 is 2007.0000000000002 in floating point.
    assert!(seen["my_feature"].enabled["Project:46905"]);
    assert!(!seen["my_feature"].enabled["Project:29827"]);
    assert!(seen["edge_flag"].enabled["Project:92536"]);
    // The percentages really split the actors.
    let opened = seen["quarter"].enabled.values().filter(|on| **on).count();
    assert!((60..=150).contains(&opened), "{opened} of {} at 25%", actors.len());
}

/// The registry's config.
fn config(registry: &Registry) -> Config {
    let file = flagops::source::SourceFile {
        path: "flagops.yml".into(),
        text: registry.read("flagops.yml"),
    };
    flagops::load::read_config(&file).0.unwrap()
}

/// The desired state of production, as the registry resolves it now.
fn production_states(setup: &Setup) -> BTreeMap<String, Stored> {
    let workspace = flagops::load::Workspace::at(&setup.registry.path().join("flagops.yml")).unwrap();
    let loaded = flagops::load::load(&workspace, &Default::default()).unwrap();
    flagops::resolve::desired(&loaded.registry.unwrap(), "production", jiff::Timestamp::now())
}

/// The backend for `database`, with the project's actor kinds.
fn open(database: &Database, writable: bool) -> FlipperSqlBackend {
    let file = flagops::source::SourceFile {
        path: "flagops.yml".into(),
        text: std::fs::read_to_string(repo_root().join("flagops.yml")).unwrap(),
    };
    let config = flagops::load::read_config(&file).0.unwrap();
    let options = flipper_sql::Options {
        environment: "production",
        actor_kinds: &config.actor_kinds,
        writable,
        lock_wait: Duration::from_secs(10),
    };
    FlipperSqlBackend::open(
        flipper_sql::parse_connection(&database.connection_string()).unwrap(),
        &options,
    )
    .unwrap()
}

// Rows GitLab wrote before flagops: the first sync changes none of them without `--take-over`
// and says which and why; with it, the registry applies over them and the sync record says so.
#[test]
fn flipper_sql_first_sync_over_live_rows_needs_take_over() {
    let Some(setup) = Setup::new(&[
        ("on_flag", "production: true"),
        ("quarter", "production:\n    percentage_of_actors: 25"),
        ("gone_flag", "production: absent"),
        ("dev_only", "dev: true"),
    ]) else {
        return;
    };
    let mut sql = String::new();
    for (flag, key, value) in [
        ("on_flag", "boolean", "true"),
        ("quarter", "percentage_of_actors", "50"),
        ("gone_flag", "boolean", "true"),
        ("dev_only", "boolean", "true"),
        ("stray", "boolean", "true"),
    ] {
        sql.push_str(&format!(
            "INSERT INTO features (key, created_at, updated_at) VALUES ('{flag}', now(), now());\n\
             INSERT INTO feature_gates (feature_key, key, value, created_at, updated_at) VALUES ('{flag}', '{key}', '{value}', now(), now());\n"
        ));
    }
    setup.database.execute(&sql);
    let live = setup.gates();

    let sync = setup.run(&["sync", "--env", "production"]);
    assert_eq!(sync.code, 1, "{sync:?}");
    assert!(
        sync.stdout.contains("production: REFUSED, nothing applied\n"),
        "{}",
        sync.stdout
    );
    assert!(
        sync.stdout
            .contains("this first sync would change or delete 2 of the flags it holds: `gone_flag`, `quarter`\n"),
        "{}",
        sync.stdout
    );
    assert!(
        sync.stdout
            .contains("  ! dev_only: kept: no entry for production in its file (`production: absent` deletes it)\n"),
        "{}",
        sync.stdout
    );
    assert_eq!(setup.gates(), live);
    assert!(setup.audit().is_empty());

    let taken = setup.run(&["sync", "--env", "production", "--take-over"]);
    assert_eq!(taken.code, 0, "{taken:?}");
    assert_eq!(
        setup.gates(),
        gates(&[
            ("dev_only", "boolean", "true"),
            ("on_flag", "boolean", "true"),
            ("quarter", "percentage_of_actors", "25.0"),
            ("stray", "boolean", "true"),
        ])
    );
    let take_over: bool = query(
        &setup.database,
        "SELECT take_over FROM flagops_sync ORDER BY id DESC LIMIT 1",
    )[0]
    .get(0);
    assert!(take_over);
}

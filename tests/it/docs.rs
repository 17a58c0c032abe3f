//! Generated documentation and the schema stay in step with the code.

use flagops::model::{Flag, Gates, RolloutStep, State};
use serde_json::{Value, json};

use crate::harness::repo_root;

// `docs/checks.md` is generated from the check list; `FLAGOPS_UPDATE_DOCS=1` rewrites it.
#[test]
fn docs_checks_is_current() {
    let path = repo_root().join("docs/checks.md");
    let expected = flagops::check::reference_markdown();
    if std::env::var_os("FLAGOPS_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "docs/checks.md is stale: run `FLAGOPS_UPDATE_DOCS=1 cargo test docs_checks`"
    );
}

/// A flag with every optional field set.
fn full_flag() -> Flag {
    let gates = Gates {
        percentage_of_actors: Some(12.5),
        percentage_of_time: Some(1.0),
        actors: [(
            "project".to_string(),
            vec![flagops::model::ActorId("gitlab-org/gitlab".into())],
        )]
        .into(),
        groups: vec!["gitlab_team_members".into()],
    };
    Flag {
        name: "every_field".into(),
        description: "d".into(),
        flag_type: "beta".into(),
        group: "group::g".into(),
        owners: vec!["@a".into()],
        milestone: "19.1".into(),
        feature_issue_url: Some("https://x.test/1".into()),
        introduced_by_url: "https://x.test/2".into(),
        rollout_issue_url: Some("https://x.test/3".into()),
        default_enabled: false,
        log_state_changes: Some(true),
        intended_to_rollout_by: Some("2027-01-01".into()),
        requires: vec!["other".into()],
        environments: [
            ("staging".to_string(), State::Boolean(true)),
            ("production".to_string(), State::Gates(Box::new(gates))),
        ]
        .into(),
        rollout: vec![
            RolloutStep {
                at: Some("2026-11-24T09:00:00Z".into()),
                after: None,
                rollback: true,
                note: Some("n".into()),
                guard: Some("latency".into()),
                on_breach: Some(flagops::model::OnBreach::Hold),
                environments: [("production".to_string(), State::Boolean(false))].into(),
            },
            RolloutStep {
                at: None,
                after: Some("15m".into()),
                rollback: false,
                note: None,
                guard: None,
                on_breach: None,
                environments: [("production".to_string(), State::Boolean(true))].into(),
            },
        ],
        guard: Some("error_rate".into()),
        on_breach: Some(flagops::model::OnBreach::Rollback),
        overrides: [("promotion-order".to_string(), "why".to_string())].into(),
        todo: [("rollout_issue_url".to_string(), "link it".to_string())].into(),
    }
}

fn schema(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo_root().join("schema").join(name)).unwrap()).unwrap()
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

// The schema declares exactly the fields of the serde types, and accepts what they write.
#[test]
fn schema_matches_model() {
    let flag_schema = schema("flag.schema.json");
    let written = serde_json::to_value(full_flag()).unwrap();
    assert_eq!(
        keys(&written),
        keys(&flag_schema["properties"]),
        "Flag fields vs schema properties"
    );
    let gates = &written["environments"]["production"];
    assert_eq!(
        keys(gates),
        keys(&flag_schema["$defs"]["gates"]["properties"]),
        "Gates fields vs schema"
    );
    let mut step: Vec<String> = keys(&written["rollout"][0]);
    step.extend(keys(&written["rollout"][1]));
    step.retain(|key| key != "production");
    step.sort();
    step.dedup();
    assert_eq!(
        step,
        keys(&flag_schema["$defs"]["step"]["properties"]),
        "RolloutStep fields vs schema"
    );

    let validator = jsonschema::validator_for(&flag_schema).unwrap();
    assert!(
        validator.is_valid(&written),
        "{:?}",
        validator
            .iter_errors(&written)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    let back: Flag = serde_json::from_value(written).unwrap();
    assert_eq!(back, full_flag());
}

// Every file the schema rejects for an unknown key is also rejected by the serde types.
#[test]
fn schema_and_model_reject_unknown_keys() {
    let mut written = serde_json::to_value(full_flag()).unwrap();
    written["environments"]["production"]["percentage_of_actor"] = json!(5);
    assert!(
        !jsonschema::validator_for(&schema("flag.schema.json"))
            .unwrap()
            .is_valid(&written)
    );
    assert!(serde_json::from_value::<Flag>(written).is_err());
}

// The default config passes its schema and deserializes, and the config schema's top-level
// properties are the fields of `Config`.
#[test]
fn config_schema_matches_model() {
    let mut text = std::fs::read_to_string(repo_root().join("flagops.yml")).unwrap();
    // The sections the default config leaves out.
    text.push_str("\nprometheus: { url: \"http://127.0.0.1:9090\" }\nguards: { error_rate: { query: up, max: 1 } }\n");
    let file = flagops::source::SourceFile {
        path: "flagops.yml".into(),
        text,
    };
    let (config, diagnostics) = flagops::load::read_config(&file);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let written = serde_json::to_value(config.unwrap()).unwrap();
    assert_eq!(keys(&written), keys(&schema("config.schema.json")["properties"]));
}

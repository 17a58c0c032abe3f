//! The Features API's shapes, and the pure mapping between them and `state::Stored`.
//!
//! `GET /api/v4/features` lists every persisted flag with its gates; `decode` turns one into a
//! state whose actors are still Flipper ids (`Project:278964`), for the directory to name.
//! `parameters` turns one `plan::Operation` into the form of a `POST /api/v4/features/:name`.
//! Nothing here does I/O.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

use crate::plan::Operation;
use crate::state::{Actor, percent};

/// The suffix GitLab adds to an actor's Flipper id to opt it out of a flag that is on.
pub const OPT_OUT: &str = ":opt_out";

/// One flag as `GET /api/v4/features` returns it (the `Feature` entity).
#[derive(Clone, Debug, Deserialize)]
pub struct RemoteFeature {
    /// The flag's name.
    pub name: String,
    /// Its gates: `boolean` always, the others only when set.
    #[serde(default)]
    pub gates: Vec<RemoteGate>,
}

/// One gate of a flag.
#[derive(Clone, Debug, Deserialize)]
pub struct RemoteGate {
    /// `boolean`, `percentage_of_actors`, `percentage_of_time`, `actors` or `groups`.
    pub key: String,
    /// A boolean, a number (maybe a float such as `42.0`) or a list of strings.
    pub value: Value,
}

/// A flag's state with its actors as Flipper ids, as GitLab stores them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// The boolean gate.
    pub boolean: bool,
    /// Percentage of actors, in thousandths.
    pub percentage_of_actors: Option<u32>,
    /// Percentage of time, in thousandths.
    pub percentage_of_time: Option<u32>,
    /// Flipper ids such as `Project:278964` or `User:1:opt_out`.
    pub actors: BTreeSet<String>,
    /// Feature groups.
    pub groups: BTreeSet<String>,
}

/// The form of one `POST /api/v4/features/:name`, or a `DELETE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `POST` with these form fields.
    Post(Vec<(&'static str, String)>),
    /// `DELETE`.
    Delete,
}

/// Reads a flag's gates. Gates GitLab does not expose through this API (such as `expression`)
/// are ignored; a value of the wrong type is an error.
pub fn decode(feature: &RemoteFeature) -> Result<Decoded, String> {
    let mut decoded = Decoded::default();
    for gate in &feature.gates {
        let wrong = || {
            format!(
                "flag `{}`: gate `{}` has an unexpected value `{}`",
                feature.name, gate.key, gate.value
            )
        };
        match gate.key.as_str() {
            "boolean" => decoded.boolean = gate.value.as_bool().ok_or_else(wrong)?,
            "percentage_of_actors" => decoded.percentage_of_actors = thousandths(&gate.value).ok_or_else(wrong)?,
            "percentage_of_time" => decoded.percentage_of_time = thousandths(&gate.value).ok_or_else(wrong)?,
            "actors" => decoded.actors = strings(&gate.value).ok_or_else(wrong)?,
            "groups" => decoded.groups = strings(&gate.value).ok_or_else(wrong)?,
            _ => {}
        }
    }
    Ok(decoded)
}

/// The form that makes `operation`; `target` gives the API parameter and value that name an
/// actor (such as `project` and `gitlab-org/gitlab`), or why it cannot be named.
pub fn parameters(
    operation: &Operation,
    target: impl Fn(&Actor) -> Result<(String, String), String>,
) -> Result<Call, String> {
    let value = |text: &str| ("value", text.to_string());
    Ok(match operation {
        Operation::Remove => Call::Delete,
        Operation::Enable => Call::Post(vec![value("true")]),
        Operation::Disable => Call::Post(vec![value("false")]),
        Operation::PercentageOfActors(p) => Call::Post(vec![
            ("value", percent(*p)),
            ("key", "percentage_of_actors".to_string()),
        ]),
        Operation::PercentageOfTime(p) => {
            Call::Post(vec![("value", percent(*p)), ("key", "percentage_of_time".to_string())])
        }
        Operation::AddActor(actor) | Operation::RemoveActor(actor) => {
            let adding = matches!(operation, Operation::AddActor(_));
            let (actor, opted_out) = match actor.id.strip_suffix(OPT_OUT) {
                Some(id) => (
                    Actor {
                        kind: actor.kind.clone(),
                        id: id.to_string(),
                    },
                    true,
                ),
                None => (actor.clone(), false),
            };
            let verb = match (adding, opted_out) {
                (true, false) => "true",
                (false, false) => "false",
                (true, true) => "opt_out",
                (false, true) => "remove_opt_out",
            };
            let (parameter, name) = target(&actor)?;
            Call::Post(vec![value(verb), (parameter_name(&parameter)?, name)])
        }
        Operation::AddGroup(group) => Call::Post(vec![value("true"), ("feature_group", group.clone())]),
        Operation::RemoveGroup(group) => Call::Post(vec![value("false"), ("feature_group", group.clone())]),
    })
}

/// The Features API's actor parameters, as `&'static str` form keys.
fn parameter_name(parameter: &str) -> Result<&'static str, String> {
    const KNOWN: [&str; 8] = [
        "user",
        "project",
        "group",
        "namespace",
        "repository",
        "runner",
        "organization",
        "feature_group",
    ];
    KNOWN
        .iter()
        .find(|known| **known == parameter)
        .copied()
        .ok_or_else(|| format!("`{parameter}` is not a parameter of GitLab's Features API"))
}

/// A percentage as GitLab returns it (`42`, `42.0`, `12.5`, or the same as a string), in
/// thousandths; `None` inside for a gate that is not set.
fn thousandths(value: &Value) -> Option<Option<u32>> {
    let number = match value {
        Value::Null => return Some(None),
        Value::Number(number) => number.as_f64()?,
        Value::String(text) => text.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !(0.0..=100.0).contains(&number) {
        return None;
    }
    let thousandths = (number * 1000.0).round() as u32;
    Some((thousandths > 0).then_some(thousandths))
}

fn strings(value: &Value) -> Option<BTreeSet<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(json: Value) -> RemoteFeature {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn decode_reads_the_feature_entity() {
        let decoded = decode(&feature(serde_json::json!({
            "name": "f",
            "state": "conditional",
            "gates": [
                {"key": "boolean", "value": false},
                {"key": "percentage_of_actors", "value": 42.0},
                {"key": "percentage_of_time", "value": "12.345"},
                {"key": "actors", "value": ["User:1", "Project:2:opt_out"]},
                {"key": "groups", "value": ["gitlab_team_members"]},
                {"key": "expression", "value": {"Equal": []}}
            ],
            "definition": null
        })))
        .unwrap();
        assert_eq!(
            decoded,
            Decoded {
                boolean: false,
                percentage_of_actors: Some(42_000),
                percentage_of_time: Some(12_345),
                actors: ["User:1".to_string(), "Project:2:opt_out".to_string()].into(),
                groups: ["gitlab_team_members".to_string()].into(),
            }
        );
        let bad = feature(serde_json::json!({"name": "f", "gates": [{"key": "boolean", "value": "yes"}]}));
        assert_eq!(
            decode(&bad).unwrap_err(),
            "flag `f`: gate `boolean` has an unexpected value `\"yes\"`"
        );
    }

    #[test]
    fn parameters_follow_the_api() {
        let target = |actor: &Actor| Ok((actor.kind.clone(), actor.id.clone()));
        let project = Actor {
            kind: "project".into(),
            id: "gitlab-org/gitlab".into(),
        };
        let opted_out = Actor {
            kind: "user".into(),
            id: "alice:opt_out".into(),
        };
        let form = |operation: Operation| match parameters(&operation, target).unwrap() {
            Call::Post(form) => form
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect::<Vec<_>>()
                .join("&"),
            Call::Delete => "DELETE".to_string(),
        };
        assert_eq!(form(Operation::Remove), "DELETE");
        assert_eq!(form(Operation::Enable), "value=true");
        assert_eq!(form(Operation::Disable), "value=false");
        assert_eq!(
            form(Operation::PercentageOfActors(12_500)),
            "value=12.5&key=percentage_of_actors"
        );
        assert_eq!(
            form(Operation::PercentageOfTime(25_000)),
            "value=25&key=percentage_of_time"
        );
        assert_eq!(
            form(Operation::AddActor(project.clone())),
            "value=true&project=gitlab-org/gitlab"
        );
        assert_eq!(
            form(Operation::RemoveActor(project)),
            "value=false&project=gitlab-org/gitlab"
        );
        assert_eq!(
            form(Operation::RemoveActor(opted_out)),
            "value=remove_opt_out&user=alice"
        );
        assert_eq!(
            form(Operation::AddGroup("gitlab_team_members".into())),
            "value=true&feature_group=gitlab_team_members"
        );
    }
}

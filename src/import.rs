//! Conversion of GitLab's flag definition files (`config/feature_flags/<type>/<name>.yml`) into
//! registry flag files.
//!
//! GitLab's files hold only definitions, no state. Every key flagops knows is carried over as
//! written; empty values are dropped, unknown keys are left out, and each such case is reported
//! so nothing is lost silently, as is every value `validate` will refuse (a name that differs
//! from the file name or holds a hyphen, a type `flagops.yml` does not know, a value of the wrong
//! shape). Missing required values are never invented: each is listed under the flag's `todo`
//! key with what its owner must decide (`validate` warns about it), or, in strict mode, left
//! missing so that validation fails. This module is pure: it is handed text.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::TypeRules;
use crate::source::{SourceFile, parse_yaml};

/// The definition keys carried over, in the order flag files list them (the model's order).
const CARRIED: &[&str] = &[
    "name",
    "description",
    "type",
    "group",
    "milestone",
    "feature_issue_url",
    "introduced_by_url",
    "rollout_issue_url",
    "default_enabled",
    "log_state_changes",
    "intended_to_rollout_by",
];

/// The keys a flag file must have that GitLab's definitions may lack, with what their owner must
/// decide when they do.
pub const REQUIRED: &[(&str, &str)] = &[
    ("description", "say in a sentence or two what the flag guards"),
    ("group", "name the owning group, such as `group::source code`"),
    (
        "milestone",
        "give the milestone that introduced the flag, such as \"17.10\"",
    ),
    ("introduced_by_url", "link the merge request that introduced the flag"),
];

/// What a definition is converted against.
pub struct Context<'a> {
    /// The name of the folder the file sat in (GitLab's type).
    pub folder: &'a str,
    /// The file's name without `.yml`, which becomes the flag file's name.
    pub stem: &'a str,
    /// The types of `flagops.yml`.
    pub types: &'a BTreeMap<String, TypeRules>,
    /// Leave missing required values missing instead of listing them under `todo`.
    pub strict: bool,
}

/// What happened to one value while importing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Note {
    /// The key concerned.
    pub key: String,
    /// What happened to it.
    pub message: String,
}

/// One converted definition.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Imported {
    /// The flag's name: the `name` key, or else the file's name.
    pub name: String,
    /// The flag's type: the `type` key, or else the definition's folder.
    pub flag_type: String,
    /// The fields of the flag file, in order.
    #[serde(skip)]
    pub fields: Map<String, Value>,
    /// Everything not carried over as written.
    pub notes: Vec<Note>,
}

/// Converts one GitLab definition file. Returns an error message when the file is not a readable
/// YAML mapping or its type cannot be a folder name.
pub fn convert(file: &SourceFile, context: &Context<'_>) -> Result<Imported, String> {
    let folder = context.folder;
    let document = parse_yaml(file).map_err(|diagnostic| {
        format!(
            "{}:{}:{}: {}",
            file.path.display(),
            diagnostic.span.line,
            diagnostic.span.column,
            diagnostic.message
        )
    })?;
    let Value::Object(source) = document.value else {
        return Err(format!("{}: the definition is not a mapping", file.path.display()));
    };
    let mut notes = Vec::new();
    let mut fields = Map::new();
    let note = |notes: &mut Vec<Note>, key: &str, message: String| {
        notes.push(Note {
            key: key.to_string(),
            message,
        })
    };

    for key in CARRIED {
        let source_key = if *key == "intended_to_rollout_by"
            && !source.contains_key(*key)
            && source.contains_key("intended_to_rollout_by_date")
        {
            note(
                &mut notes,
                "intended_to_rollout_by_date",
                "carried over as `intended_to_rollout_by`, the key GitLab reads (it ignores this one)".to_string(),
            );
            "intended_to_rollout_by_date"
        } else {
            key
        };
        match source.get(source_key) {
            None => {
                if REQUIRED.iter().any(|(required, _)| required == key) {
                    note(&mut notes, key, "missing in the source: add it".to_string());
                }
            }
            Some(Value::Null) => note(&mut notes, key, "empty in the source: left out".to_string()),
            Some(Value::String(text)) if text.trim().is_empty() => {
                note(&mut notes, key, "empty in the source: left out".to_string())
            }
            Some(value) if !has_shape(key, value) => {
                note(
                    &mut notes,
                    key,
                    format!(
                        "has the wrong shape: flagops expects {}, the source says {value}; carried over as written, so `validate` refuses it: decide the value and write it",
                        expected_shape(key)
                    ),
                );
                fields.insert(key.to_string(), value.clone());
            }
            Some(Value::Number(number)) if *key == "milestone" => {
                // YAML reads an unquoted 13.10 as 13.1: recover the digits as written.
                let span = document.index.value_span("/milestone");
                let written = file.text[span.byte_range(&file.text)].trim().to_string();
                note(
                    &mut notes,
                    key,
                    format!("unquoted in the source (YAML reads the number {number}): carried over as \"{written}\""),
                );
                fields.insert(key.to_string(), Value::String(written));
            }
            Some(value) => {
                fields.insert(key.to_string(), value.clone());
            }
        }
    }
    let flag_type = match fields.get("type").and_then(Value::as_str) {
        Some(flag_type) => flag_type.to_string(),
        None => {
            note(&mut notes, "type", format!("taken from the folder `{folder}`"));
            fields.insert("type".to_string(), Value::String(folder.to_string()));
            folder.to_string()
        }
    };
    // The type becomes a folder name under `layout: by_type`: one that could lead elsewhere is
    // refused, never followed.
    if !crate::paths::is_safe_component(&flag_type) {
        return Err(format!(
            "{}: the type `{}` cannot be a folder name (it must be one plain name, without `/` or `..`)",
            file.path.display(),
            flag_type.escape_debug()
        ));
    }
    if flag_type != folder {
        note(
            &mut notes,
            "type",
            format!("`{flag_type}` differs from the folder `{folder}`"),
        );
    }
    let rules = context.types.get(&flag_type);
    if rules.is_none() {
        let known: Vec<String> = context.types.keys().map(|name| format!("`{name}`")).collect();
        note(
            &mut notes,
            "type",
            format!(
                "`{flag_type}` is not a type of flagops.yml, so `validate` refuses it (`unknown-type`): add it under `types`, or change the flag's type to one of {}",
                known.join(", ")
            ),
        );
    }
    let name = match fields.get("name") {
        Some(Value::String(name)) => name.clone(),
        _ => context.stem.to_string(),
    };
    if name != context.stem {
        note(
            &mut notes,
            "name",
            format!(
                "`{name}` differs from the file name `{}`, which names the flag file, so `validate` refuses it (`name-mismatch`, as GitLab does): decide which name is right and make the other match",
                context.stem
            ),
        );
    }
    if name.contains('-') {
        note(
            &mut notes,
            "name",
            format!(
                "`{name}` holds a hyphen, which flag names cannot (`name-format`; GitLab's `bin/feature-flag` writes `-` as `_`): rename the flag `{}` here and in the code",
                name.replace('-', "_")
            ),
        );
    }
    for (key, value) in &source {
        if CARRIED.contains(&key.as_str()) || key == "intended_to_rollout_by_date" {
            continue;
        }
        note(
            &mut notes,
            key,
            format!("not carried over: flagops has no `{key}` (the source says {value})"),
        );
    }
    let needs_rollout_issue =
        rules.is_some_and(|rules| rules.rollout_issue_required) && !fields.contains_key("rollout_issue_url");
    if needs_rollout_issue {
        note(
            &mut notes,
            "rollout_issue_url",
            format!("missing: flags of type `{flag_type}` need a rollout issue"),
        );
    }
    if !context.strict {
        let mut todo = Map::new();
        for (key, decide) in REQUIRED {
            if !fields.contains_key(*key) {
                todo.insert(
                    key.to_string(),
                    Value::String(format!("GitLab's definition has none: {decide}")),
                );
            }
        }
        if needs_rollout_issue {
            todo.insert(
                "rollout_issue_url".to_string(),
                Value::String(format!(
                    "flags of type `{flag_type}` need a rollout issue and GitLab's definition names none: link the issue that tracks the rollout"
                )),
            );
        }
        if !todo.is_empty() {
            let keys: Vec<String> = todo.keys().map(|key| format!("`{key}`")).collect();
            note(
                &mut notes,
                "todo",
                format!("lists {} for the flag's owner to fill in", keys.join(", ")),
            );
            fields.insert("todo".to_string(), Value::Object(todo));
        }
    }
    Ok(Imported {
        name,
        flag_type,
        fields,
        notes,
    })
}

/// Whether `value` has the shape a flag file needs for `key`, or one the import recovers (an
/// unquoted milestone).
fn has_shape(key: &str, value: &Value) -> bool {
    match key {
        "default_enabled" | "log_state_changes" => value.is_boolean(),
        "milestone" => value.is_string() || value.is_number(),
        _ => value.is_string(),
    }
}

fn expected_shape(key: &str) -> &'static str {
    match key {
        "default_enabled" | "log_state_changes" => "`true` or `false`",
        _ => "a string",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types() -> BTreeMap<String, TypeRules> {
        let rules = |rollout_issue_required| TypeRules {
            description: None,
            can_be_default_enabled: true,
            rollout_issue_required,
            max_age_months: None,
            deprecated: false,
            long_lived: false,
            max_step: None,
            allow_percentage_of_time: false,
            guard: None,
        };
        [("beta".to_string(), rules(false)), ("ops".to_string(), rules(true))].into()
    }

    fn convert_with(text: &str, strict: bool) -> Result<Imported, String> {
        let types = types();
        convert(
            &SourceFile {
                path: "x/beta/f.yml".into(),
                text: text.to_string(),
            },
            &Context {
                folder: "beta",
                stem: "f",
                types: &types,
                strict,
            },
        )
    }

    fn convert_text(text: &str) -> Imported {
        convert_with(text, true).unwrap()
    }

    fn keys(imported: &Imported) -> Vec<&str> {
        imported.notes.iter().map(|n| n.key.as_str()).collect()
    }

    #[test]
    fn convert_carries_fields_in_order() {
        let imported = convert_text(
            "---\nname: f\nintroduced_by_url: https://x.test/1\nmilestone: '16.9'\ntype: beta\ngroup: group::x\ndefault_enabled: true\n",
        );
        let keys: Vec<&str> = imported.fields.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "name",
                "type",
                "group",
                "milestone",
                "introduced_by_url",
                "default_enabled"
            ]
        );
        assert_eq!(
            imported.notes,
            [Note {
                key: "description".into(),
                message: "missing in the source: add it".into()
            }]
        );
    }

    #[test]
    fn convert_refuses_a_type_that_is_not_one_folder_name() {
        for flag_type in ["../../x", "/tmp/x", "..", "a/b"] {
            let Err(error) = convert_with(&format!("name: f\ntype: {flag_type}\n"), false) else {
                panic!("{flag_type} was accepted")
            };
            assert!(error.contains("cannot be a folder name"), "{error}");
        }
    }

    #[test]
    fn convert_reports_what_it_drops() {
        let imported = convert_text(
            "name: f\ndescription:\nmilestone: 13.10\ntype: beta\nobserved: true\ngroup: g\ndefault_enabled: false\nrollout_issue_url: \n",
        );
        assert_eq!(imported.fields["milestone"], "13.10");
        assert_eq!(
            keys(&imported),
            [
                "description",
                "milestone",
                "introduced_by_url",
                "rollout_issue_url",
                "observed"
            ]
        );
    }

    #[test]
    fn convert_notes_what_validate_will_refuse() {
        let imported = convert_text(
            "name: other-name\ndescription: d\nmilestone: '1.2'\nintroduced_by_url: https://x.test/1\ntype: licensed\ngroup: g\ndefault_enabled: [false, true]\n",
        );
        assert_eq!(imported.name, "other-name");
        assert_eq!(imported.fields["default_enabled"], serde_json::json!([false, true]));
        assert_eq!(keys(&imported), ["default_enabled", "type", "type", "name", "name"]);
        assert!(imported.notes[2].message.contains("`licensed` is not a type"));
        assert!(imported.notes[4].message.contains("rename the flag `other_name`"));
    }

    #[test]
    fn convert_lists_missing_values_under_todo_unless_strict() {
        let text = "name: f\ntype: ops\ndefault_enabled: false\ngroup: g\n";
        let lenient = convert_with(text, false).unwrap();
        let todo = lenient.fields["todo"].as_object().unwrap();
        let listed: Vec<&str> = todo.keys().map(String::as_str).collect();
        assert_eq!(
            listed,
            ["description", "milestone", "introduced_by_url", "rollout_issue_url"]
        );
        assert!(!convert_with(text, true).unwrap().fields.contains_key("todo"));
    }
}

//! Conversion of GitLab's flag definition files (`config/feature_flags/<type>/<name>.yml`) into
//! registry flag files.
//!
//! GitLab's files hold only definitions, no state. Every key flagops knows is carried over as
//! written; empty values are dropped, unknown keys are left out, and each such case is reported
//! so nothing is lost silently. Missing required values are not invented: the written file then
//! fails validation, pointing at what its owner must add. This module is pure: it is handed text.

use serde::Serialize;
use serde_json::{Map, Value};

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
    /// The flag's type: the `type` key, or else the definition's folder.
    pub flag_type: String,
    /// The fields of the flag file, in order.
    #[serde(skip)]
    pub fields: Map<String, Value>,
    /// Everything not carried over as written.
    pub notes: Vec<Note>,
}

/// Converts one GitLab definition file. `folder` is the name of the folder it sat in (GitLab's
/// type). Returns an error message when the file is not a readable YAML mapping.
pub fn convert(file: &SourceFile, folder: &str) -> Result<Imported, String> {
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
                if matches!(*key, "description" | "milestone" | "introduced_by_url" | "group") {
                    note(&mut notes, key, "missing in the source: add it".to_string());
                }
            }
            Some(Value::Null) => note(&mut notes, key, "empty in the source: left out".to_string()),
            Some(Value::String(text)) if text.trim().is_empty() => {
                note(&mut notes, key, "empty in the source: left out".to_string())
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
    Ok(Imported {
        flag_type,
        fields,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert_text(text: &str) -> Imported {
        convert(
            &SourceFile {
                path: "x/beta/f.yml".into(),
                text: text.to_string(),
            },
            "beta",
        )
        .unwrap()
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
            let file = SourceFile {
                path: "x/beta/f.yml".into(),
                text: format!("name: f\ntype: {flag_type}\n"),
            };
            let Err(error) = convert(&file, "beta") else {
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
        let keys: Vec<&str> = imported.notes.iter().map(|n| n.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "description",
                "milestone",
                "introduced_by_url",
                "rollout_issue_url",
                "observed"
            ]
        );
    }
}

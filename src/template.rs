//! Writes flag files: the YAML text of a flag, in the model's field order, with the schema
//! line editors use. Used by `flagops new` and `flagops import`.

use std::fmt::Write;

use serde_json::{Map, Value};

use crate::model::Flag;

/// The YAML text of a flag file holding `flag`.
///
/// `schema_path` is the path from the file to `flag.schema.json`, for the
/// `# yaml-language-server: $schema=` line.
pub fn render_flag(flag: &Flag, schema_path: &str) -> String {
    let value = serde_json::to_value(flag).expect("flags serialize");
    let Value::Object(fields) = value else {
        unreachable!("a flag serializes to a mapping")
    };
    render_fields(&fields, schema_path)
}

/// The YAML text of a flag file holding `fields`, in the given order. Milestones and dates
/// are always quoted, so YAML never reads them as numbers.
pub fn render_fields(fields: &Map<String, Value>, schema_path: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# yaml-language-server: $schema={schema_path}");
    write_mapping(&mut out, fields, 0);
    out
}

fn write_mapping(out: &mut String, fields: &Map<String, Value>, indent: usize) {
    let pad = " ".repeat(indent);
    for (key, value) in fields {
        let key_text = scalar(key);
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                let _ = writeln!(out, "{pad}{key_text}:");
                write_mapping(out, inner, indent + 2);
            }
            Value::Array(items) if items.iter().any(|item| item.is_object() || item.is_array()) => {
                let _ = writeln!(out, "{pad}{key_text}:");
                for item in items {
                    match item {
                        Value::Object(inner) => {
                            let mut nested = String::new();
                            write_mapping(&mut nested, inner, indent + 4);
                            let trimmed = nested.trim_start();
                            let _ = write!(out, "{pad}  - {trimmed}");
                        }
                        other => {
                            let _ = writeln!(out, "{pad}  - {}", inline(other, false));
                        }
                    }
                }
            }
            other => {
                let always_quote = matches!(key.as_str(), "milestone" | "intended_to_rollout_by" | "at" | "after");
                let _ = writeln!(out, "{pad}{key_text}: {}", inline(other, always_quote));
            }
        }
    }
}

fn inline(value: &Value, always_quote: bool) -> String {
    match value {
        Value::String(text) if always_quote => quoted(text),
        Value::String(text) => scalar(text),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(|item| inline(item, false)).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(_) => "{}".to_string(),
        other => other.to_string(),
    }
}

/// A string as a YAML scalar: plain where YAML reads it back as the same string, else quoted.
pub fn scalar(text: &str) -> String {
    if is_plain_safe(text) {
        text.to_string()
    } else {
        quoted(text)
    }
}

/// A string as a double-quoted YAML scalar (JSON string syntax is valid YAML).
pub fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialize")
}

fn is_plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    let reserved_start = "-?:,[]{}#&*!|>'\"%@`~ ".contains(first);
    let looks_typed = matches!(
        text.to_ascii_lowercase().as_str(),
        "true" | "false" | "null" | "yes" | "no" | "on" | "off"
    ) || text.parse::<f64>().is_ok()
        || text.starts_with("0x")
        || text.starts_with("0o");
    !reserved_start
        && !looks_typed
        && !text.ends_with(' ')
        && !text.ends_with(':')
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.contains('\n')
        && !text.contains('\t')
        && !text.contains(", ")
        && !text.contains(['[', ']', '{', '}'])
        && text.chars().all(|c| !c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{SourceFile, parse_yaml};

    #[test]
    fn flags_read_back_unchanged() {
        let text = "name: a\ndescription: d\ntype: wip\ngroup: g\nmilestone: '17.10'\nintroduced_by_url: https://x.test/1\ndefault_enabled: false\nrequires: [b]\nenvironments:\n  staging: true\n  production:\n    percentage_of_actors: 12.5\n    actors:\n      project: [gitlab-org/gitlab, 42]\nrollout:\n  - at: '2026-11-24T09:00:00Z'\n    production: true\n  - after: 15m\n    note: 'all: done'\n    staging: false\n";
        let parsed = parse_yaml(&SourceFile {
            path: "a.yml".into(),
            text: text.to_string(),
        })
        .unwrap();
        let flag: Flag = serde_json::from_value(parsed.value).unwrap();
        let written = render_flag(&flag, "s.json");
        let reparsed = parse_yaml(&SourceFile {
            path: "a.yml".into(),
            text: written.clone(),
        })
        .unwrap();
        let again: Flag = serde_json::from_value(reparsed.value).unwrap();
        assert_eq!(flag, again, "{written}");
    }

    #[test]
    fn scalars_read_back_unchanged() {
        for text in [
            "plain words",
            "group::source code",
            "a: b",
            "# not a comment",
            "true",
            "14.10",
            "x #y",
            "@owner",
            "it's",
            "line\nbreak",
            "https://gitlab.com/a/-/issues/1#note_2",
            "trailing ",
            "a, b",
            "[x]",
        ] {
            let yaml = format!("key: {}\n", scalar(text));
            let document = parse_yaml(&SourceFile {
                path: "t.yml".into(),
                text: yaml.clone(),
            })
            .unwrap();
            assert_eq!(document.value["key"], text, "{yaml}");
        }
    }
}

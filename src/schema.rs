//! The JSON Schemas, embedded from `schema/`, and the mapping of their errors to diagnostics.
//!
//! Every schema error becomes a [`Diagnostic`] located through the document's pointer index, so
//! it reads exactly like a semantic-check finding: unknown keys point at the key, wrong values
//! at the value, missing keys at the mapping that lacks them.

use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, ValidationError, Validator};
use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::source::{Document, SourceFile, Span, push_pointer};

/// The flag file schema, as published by `flagops schema flag`.
pub const FLAG_SCHEMA: &str = include_str!("../schema/flag.schema.json");

/// The config file schema, as published by `flagops schema config`.
pub const CONFIG_SCHEMA: &str = include_str!("../schema/config.schema.json");

/// The evaluation test file schema, as published by `flagops schema test`.
pub const TEST_SCHEMA: &str = include_str!("../schema/test.schema.json");

/// Which schema a document is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaKind {
    /// A flag file.
    Flag,
    /// `flagops.yml`.
    Config,
    /// An evaluation test file.
    Test,
}

struct Compiled {
    root: Value,
    validator: Validator,
}

static FLAG: LazyLock<Compiled> = LazyLock::new(|| compile(FLAG_SCHEMA));
static CONFIG: LazyLock<Compiled> = LazyLock::new(|| compile(CONFIG_SCHEMA));
static TEST: LazyLock<Compiled> = LazyLock::new(|| compile(TEST_SCHEMA));

fn compile(text: &str) -> Compiled {
    let root: Value = serde_json::from_str(text).expect("embedded schema is JSON");
    let validator = jsonschema::options()
        .with_draft(Draft::Draft202012)
        .build(&root)
        .expect("embedded schema compiles");
    Compiled { root, validator }
}

impl SchemaKind {
    fn compiled(self) -> &'static Compiled {
        match self {
            SchemaKind::Flag => &FLAG,
            SchemaKind::Config => &CONFIG,
            SchemaKind::Test => &TEST,
        }
    }

    /// The schema's text.
    pub fn text(self) -> &'static str {
        match self {
            SchemaKind::Flag => FLAG_SCHEMA,
            SchemaKind::Config => CONFIG_SCHEMA,
            SchemaKind::Test => TEST_SCHEMA,
        }
    }
}

/// The keys whose values are prose, which may hold line breaks and tabs.
pub const PROSE_KEYS: &[&str] = &["description", "note"];

/// Checks `document` against the schema, returning one diagnostic per problem.
///
/// Before the schema, every key and string value is checked for control characters
/// (`control-character`): they could rewrite terminals, Markdown notes and XML reports.
/// Only the values of [`PROSE_KEYS`] and override reasons may hold line feeds and tabs.
/// Every string that is a URL with a user name, a password or a token in its query is refused
/// too (`url-credentials`),
/// whatever key holds it.
pub fn check(kind: SchemaKind, file: &SourceFile, document: &Document) -> Vec<Diagnostic> {
    let compiled = kind.compiled();
    let mut out = Vec::new();
    check_strings(file, document, &document.value, &mut Vec::new(), false, &mut out);
    if compiled.validator.is_valid(&document.value) {
        return out;
    }
    for error in compiled.validator.iter_errors(&document.value) {
        convert(compiled, file, document, &error, &mut out);
    }
    out
}

/// One reference token of a JSON pointer: a key, or a position in a list.
#[derive(Clone, Copy)]
enum Token<'a> {
    Key(&'a str),
    Position(usize),
}

/// Reports every key and string under `value` that holds a control character: C0 (but line
/// feeds and tabs where `prose`), DEL or C1.
///
/// `path` holds the reference tokens down to `value`; a pointer is built only for a finding.
fn check_strings<'a>(
    file: &SourceFile,
    document: &Document,
    value: &'a Value,
    path: &mut Vec<Token<'a>>,
    prose: bool,
    out: &mut Vec<Diagnostic>,
) {
    let refused = |text: &str, prose: bool| {
        text.chars()
            .find(|&character| crate::escape::is_control(character) && !(prose && matches!(character, '\n' | '\t')))
    };
    let pointer = |path: &[Token<'_>]| {
        path.iter().fold(String::new(), |pointer, token| match token {
            Token::Key(key) => push_pointer(&pointer, key),
            Token::Position(position) => push_pointer(&pointer, &position.to_string()),
        })
    };
    match value {
        Value::String(text) => {
            if let Some(character) = refused(text, prose) {
                let span = document.index.value_span(&pointer(path));
                out.push(control_diagnostic(file, span, "this value", character, prose));
            }
            if crate::escape::has_credentials(text) {
                let span = document.index.value_span(&pointer(path));
                out.push(
                    Diagnostic::error(
                        "url-credentials",
                        file,
                        span,
                        "this URL holds a user name, a password or a token",
                    )
                    .with_help(
                        "remove the `user:password@` part or the token in its query: the registry is in git and its URLs are printed and published; \
                         a backend reads its token from the variable `token_env` names",
                    ),
                );
            }
        }
        Value::Array(items) => {
            for (position, item) in items.iter().enumerate() {
                path.push(Token::Position(position));
                check_strings(file, document, item, path, false, out);
                path.pop();
            }
        }
        Value::Object(entries) => {
            let overrides = matches!(path.as_slice(), [Token::Key("overrides")]);
            for (key, item) in entries {
                path.push(Token::Key(key));
                if let Some(character) = refused(key, false) {
                    let span = document.index.key_span(&pointer(path));
                    out.push(control_diagnostic(file, span, "this key", character, false));
                }
                let prose = overrides || PROSE_KEYS.contains(&key.as_str());
                check_strings(file, document, item, path, prose, out);
                path.pop();
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn control_diagnostic(file: &SourceFile, span: Span, what: &str, character: char, prose: bool) -> Diagnostic {
    let allowed = if prose {
        "this text may hold line breaks and tabs, but no other control character"
    } else {
        "this value is one line of text: write it without line breaks, tabs or other control characters"
    };
    Diagnostic::error(
        "control-character",
        file,
        span,
        format!("{what} holds the control character U+{:04X}", u32::from(character)),
    )
    .with_help(format!(
        "{allowed}; values are shown in terminals, merge-request notes, reports and the site"
    ))
}

fn convert(
    compiled: &Compiled,
    file: &SourceFile,
    document: &Document,
    error: &ValidationError<'_>,
    out: &mut Vec<Diagnostic>,
) {
    let pointer = error.instance_path().as_str();
    let index = &document.index;
    let value_span = index.value_span(pointer);
    let instance = error.instance();
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            let known = schema_at(&compiled.root, error.schema_path().as_str())
                .and_then(|keyword| parent_of(&compiled.root, error.schema_path().as_str()).or(Some(keyword)))
                .and_then(|schema| schema.get("properties"))
                .and_then(Value::as_object);
            for key in unexpected {
                let span = index.key_span(&push_pointer(pointer, key));
                let mut diagnostic = Diagnostic::error("unknown-key", file, span, format!("unknown key `{key}`"));
                // A deprecated key is suggested only when no current key is close.
                let suggestion = known.and_then(|properties| {
                    let current = properties
                        .iter()
                        .filter(|(_, schema)| !is_deprecated(schema))
                        .map(|(name, _)| name.as_str());
                    closest(key, current)
                        .map(|name| (name, false))
                        .or_else(|| closest(key, properties.keys().map(String::as_str)).map(|name| (name, true)))
                });
                diagnostic = match suggestion {
                    Some((name, false)) => diagnostic.with_help(format!("did you mean `{name}`?")),
                    Some((name, true)) => diagnostic.with_help(format!("did you mean `{name}`? (it is deprecated)")),
                    None => match known {
                        Some(properties) if !properties.is_empty() => {
                            let names: Vec<String> = properties.keys().map(|k| format!("`{k}`")).collect();
                            diagnostic.with_help(format!("the keys allowed here are {}", names.join(", ")))
                        }
                        _ => diagnostic,
                    },
                };
                out.push(diagnostic);
            }
        }
        ValidationErrorKind::Required { property } => {
            let key = property.as_str().unwrap_or_default();
            // A key still to be decided may be missing: the `todo` check warns about it.
            if pointer.is_empty() && instance.get("todo").and_then(|todo| todo.get(key)).is_some() {
                return;
            }
            let span = if pointer.is_empty() {
                Span::point(first_content_line(&file.text), 1)
            } else {
                index.key_span(pointer)
            };
            let mut diagnostic = Diagnostic::error("missing-key", file, span, format!("missing required key `{key}`"));
            if let Some(description) = schema_at(
                &compiled.root,
                &format!("{}/properties/{key}", parent_path(error.schema_path().as_str())),
            )
            .and_then(|schema| schema.get("description"))
            .and_then(Value::as_str)
            {
                diagnostic = diagnostic.with_help(format!("add `{key}`: {}", first_sentence(description)));
            }
            out.push(diagnostic);
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(single) => format!("{single}"),
                TypeKind::Multiple(multiple) => {
                    let names: Vec<String> = multiple.iter().map(|t| format!("{t}")).collect();
                    names.join(" or ")
                }
            };
            let found = describe(instance);
            let mut diagnostic = Diagnostic::error(
                "wrong-type",
                file,
                value_span,
                format!("expected {expected}, found {found}"),
            );
            if expected == "string" && instance.is_number() {
                let written = source_text(&file.text, value_span);
                diagnostic = diagnostic.with_help(format!("quote it: `\"{written}\"` (unquoted, YAML reads a number)"));
            } else if instance.is_null() {
                diagnostic = diagnostic.with_help("give it a value, or remove the key");
            }
            out.push(diagnostic);
        }
        ValidationErrorKind::Minimum { .. }
        | ValidationErrorKind::Maximum { .. }
        | ValidationErrorKind::ExclusiveMinimum { .. }
        | ValidationErrorKind::ExclusiveMaximum { .. } => {
            out.push(
                Diagnostic::error("out-of-range", file, value_span, error.to_string())
                    .with_help(help_from_schema(compiled, error)),
            );
        }
        ValidationErrorKind::MinLength { .. } if instance.as_str() == Some("") => {
            out.push(
                Diagnostic::error("empty-value", file, value_span, "the value is empty")
                    .with_help(help_from_schema(compiled, error)),
            );
        }
        ValidationErrorKind::MinItems { .. }
        | ValidationErrorKind::MaxItems { .. }
        | ValidationErrorKind::UniqueItems
        | ValidationErrorKind::MinProperties { .. }
        | ValidationErrorKind::MaxProperties { .. } => {
            out.push(
                Diagnostic::error("invalid-list", file, value_span, error.to_string())
                    .with_help(help_from_schema(compiled, error)),
            );
        }
        ValidationErrorKind::PropertyNames { error: inner } => {
            // The key itself is wrong: point at it, not at the mapping holding it.
            let key = inner.instance().as_str().unwrap_or_default();
            out.push(
                Diagnostic::error(
                    "invalid-format",
                    file,
                    index.key_span(&push_pointer(pointer, key)),
                    format!("`{key}` is not a valid name here"),
                )
                .with_help(help_from_schema(compiled, error)),
            );
        }
        ValidationErrorKind::Pattern { .. } | ValidationErrorKind::Format { .. } => {
            out.push(
                Diagnostic::error("invalid-format", file, value_span, error.to_string())
                    .with_help(help_from_schema(compiled, error)),
            );
        }
        ValidationErrorKind::Enum { options } => {
            let allowed = options.as_array().map(|values| {
                values
                    .iter()
                    .map(|v| format!("`{}`", plain(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            let mut diagnostic = Diagnostic::error(
                "invalid-value",
                file,
                value_span,
                format!("{} is not allowed here", describe(instance)),
            );
            if let Some(allowed) = allowed {
                diagnostic = diagnostic.with_help(format!("use one of {allowed}"));
            }
            out.push(diagnostic);
        }
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            // When the value has the type of exactly one alternative, that alternative's own
            // errors say what is wrong far better than "no alternative matched".
            let matching: Vec<&Vec<ValidationError<'static>>> = context
                .iter()
                .filter(|branch| {
                    !branch.iter().any(|e| {
                        matches!(e.kind(), ValidationErrorKind::Type { .. }) && e.instance_path().as_str() == pointer
                    })
                })
                .collect();
            if let [branch] = matching.as_slice()
                && !branch.is_empty()
            {
                for inner in branch.iter() {
                    convert(compiled, file, document, inner, out);
                }
                return;
            }
            // The value may sit under a misspelt declared key of a mapping whose other keys
            // take values of this schema (a rollout step's `note` among environment names).
            let parent = error.instance_path().as_str().rsplit_once('/');
            let typo = parent.and_then(|(_, key)| {
                let target = format!("#{}", parent_path(error.schema_path().as_str()));
                let declared = declared_beside(&compiled.root, &target);
                closest(key, declared.iter().map(String::as_str))
                    .filter(|name| *name != key)
                    .map(str::to_string)
            });
            if let Some(name) = typo {
                out.push(
                    Diagnostic::error(
                        "unknown-key",
                        file,
                        index.key_span(pointer),
                        format!("`{}` is not a valid value here", parent.map_or("", |(_, key)| key)),
                    )
                    .with_help(format!("did you mean `{name}`?")),
                );
                return;
            }
            // A bare number where a state is expected is a percentage without its gate.
            let help = match instance.as_ref() {
                Value::Number(number) if accepts_gate(compiled, error, "percentage_of_actors") => format!(
                    "a percentage needs its gate: write `{{ percentage_of_actors: {number} }}` (GitLab's `--actors`), or `true` or `false`"
                ),
                _ => help_from_schema(compiled, error),
            };
            out.push(
                Diagnostic::error(
                    "invalid-value",
                    file,
                    value_span,
                    format!("{} is not a valid value here", describe(instance)),
                )
                .with_help(help),
            );
        }
        _ => {
            out.push(
                Diagnostic::error("schema", file, value_span, error.to_string())
                    .with_help(help_from_schema(compiled, error)),
            );
        }
    }
}

/// The description of the schema node that holds the failing keyword, as a hint.
fn help_from_schema(compiled: &Compiled, error: &ValidationError<'_>) -> String {
    let path = error.schema_path().as_str();
    let mut candidate = parent_path(path).to_string();
    loop {
        if let Some(description) = schema_at(&compiled.root, &candidate)
            .and_then(|s| s.get("description"))
            .and_then(Value::as_str)
        {
            return first_sentence(description).to_string();
        }
        match candidate.rfind('/') {
            Some(cut) => candidate.truncate(cut),
            None => return "see `flagops schema flag` for what is allowed here".to_string(),
        }
    }
}

/// The schema node at a schema path such as `/properties/environments/additionalProperties/$ref/oneOf`,
/// following local `$ref`s.
fn schema_at<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = root;
    for token in path.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if token == "$ref" {
            let reference = node.get("$ref")?.as_str()?;
            node = root.pointer(reference.strip_prefix('#')?)?;
            continue;
        }
        node = match node {
            Value::Object(map) => map.get(&token)?,
            Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

/// The declared property names of every object schema whose `additionalProperties` is a
/// reference to `target`.
fn declared_beside(root: &Value, target: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        match node {
            Value::Object(map) => {
                let refers = map
                    .get("additionalProperties")
                    .and_then(|a| a.get("$ref"))
                    .and_then(Value::as_str)
                    == Some(target);
                if refers && let Some(Value::Object(properties)) = map.get("properties") {
                    found.extend(properties.keys().cloned());
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found
}

fn parent_of<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    schema_at(root, parent_path(path))
}

fn parent_path(path: &str) -> &str {
    path.rfind('/').map_or("", |cut| &path[..cut])
}

/// Whether a property's schema is marked `"deprecated": true`.
fn is_deprecated(schema: &Value) -> bool {
    schema.get("deprecated").and_then(Value::as_bool) == Some(true)
}

/// Whether one alternative of the `oneOf` or `anyOf` that `error` failed is a mapping with the
/// property `key` (a state, whose gates mapping takes `percentage_of_actors`).
fn accepts_gate(compiled: &Compiled, error: &ValidationError<'_>, key: &str) -> bool {
    let Some(Value::Array(alternatives)) = schema_at(&compiled.root, error.schema_path().as_str()) else {
        return false;
    };
    alternatives.iter().any(|alternative| {
        let resolved = match alternative.get("$ref").and_then(Value::as_str) {
            Some(reference) => reference
                .strip_prefix('#')
                .and_then(|pointer| compiled.root.pointer(pointer)),
            None => Some(alternative),
        };
        resolved
            .and_then(|schema| schema.get("properties"))
            .is_some_and(|properties| properties.get(key).is_some())
    })
}

/// The known name closest to `key`, if it is close enough to be a typo.
fn closest<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|name| (strsim::damerau_levenshtein(key, name), name))
        .filter(|(distance, name)| *distance <= 2.max(name.len() / 4) || name.starts_with(key) || key.starts_with(name))
        .min()
        .map(|(_, name)| name)
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing (null)".to_string(),
        Value::Bool(flag) => format!("boolean `{flag}`"),
        Value::Number(number) => format!("number `{number}`"),
        Value::String(text) => format!("string `{text}`"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "a mapping".to_string(),
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn first_sentence(text: &str) -> &str {
    match text.find(". ") {
        Some(cut) => &text[..=cut],
        None => text,
    }
}

/// The first line that is neither blank nor a comment, where a missing top-level key is reported.
fn first_content_line(text: &str) -> usize {
    text.lines()
        .position(|line| {
            let trimmed = line.trim();
            !(trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "---")
        })
        .map_or(1, |position| position + 1)
}

fn source_text(text: &str, span: Span) -> &str {
    let range = span.byte_range(text);
    text[range].trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_compile() {
        assert!(FLAG.root.is_object());
        assert!(CONFIG.root.is_object());
    }

    #[test]
    fn schema_at_follows_refs() {
        let node = schema_at(&FLAG.root, "/properties/environments/additionalProperties/$ref/oneOf").unwrap();
        assert!(node.is_array());
    }

    #[test]
    fn closest_suggests_typos() {
        let known = ["rollout_issue_url", "milestone", "intended_to_rollout_by"];
        assert_eq!(closest("milestones", known.into_iter()), Some("milestone"));
        assert_eq!(
            closest("intended_to_rollout_by_date", known.into_iter()),
            Some("intended_to_rollout_by")
        );
        assert_eq!(closest("zzz", known.into_iter()), None);
    }
}

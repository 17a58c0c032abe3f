//! Span-guided edits of a flag file's text: change one environment's state and keep every other
//! byte (comments, key order, quoting, blank lines) as it was.
//!
//! The text is parsed once with [`source::parse_yaml`]; the [`PointerIndex`] says where each key
//! and value starts, and the indentation of the lines below a key says where its value ends.
//! Every change is a replacement of a byte range: a scalar on its key's line is replaced in
//! place, an entry that changes shape is rewritten whole at its own indentation, a new entry is
//! inserted among its siblings in their order (environments in promotion order), and a list of
//! actors gains or loses single lines. The result is parsed again and must hold exactly the
//! data asked for, or the edit is refused.
//! This module is pure: text in, text out.

use std::ops::Range;

use serde_json::{Map, Value};

use crate::source::{self, PointerIndex, SourceFile, push_pointer};

/// The top-level keys of a flag file in the order `flagops new` writes them.
const ROOT_ORDER: &[&str] = &[
    "name",
    "description",
    "type",
    "group",
    "owners",
    "milestone",
    "feature_issue_url",
    "introduced_by_url",
    "rollout_issue_url",
    "default_enabled",
    "log_state_changes",
    "intended_to_rollout_by",
    "requires",
    "environments",
    "rollout",
    "overrides",
];

/// The keys of a state's gates mapping in the order the registry writes them.
const GATE_ORDER: &[&str] = &["percentage_of_actors", "percentage_of_time", "actors", "groups"];

/// Sets `environments.<environment>` of the flag file `text` to `state` (the JSON form of a
/// state, as `true` or `{percentage_of_actors: 50}`), or removes it when `state` is `None`.
///
/// `order` is the config's environments in promotion order: a new environment is inserted
/// after those before it. Returns the new text, equal to `text` when nothing changes, or why
/// the file cannot be edited.
pub fn set_environment(
    text: &str,
    environment: &str,
    state: Option<&Value>,
    order: &[String],
) -> Result<String, String> {
    let document = source::parse_yaml(&SourceFile {
        path: "flag.yml".into(),
        text: text.to_string(),
    })
    .map_err(|diagnostic| format!("the file cannot be parsed: {}", diagnostic.message))?;
    let Value::Object(root) = &document.value else {
        return Err("the file is not a mapping".to_string());
    };
    let old_environments = match root.get("environments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => return Err("`environments` is not a mapping".to_string()),
    };
    let mut environments = old_environments.clone();
    match state {
        Some(state) if environments.contains_key(environment) => {
            environments.insert(environment.to_string(), state.clone());
        }
        Some(state) => {
            environments = insert_ranked(&environments, environment, state, |key| environment_rank(order, key));
        }
        None => {
            environments.shift_remove(environment);
        }
    }
    if same(&Value::Object(old_environments), &Value::Object(environments.clone())) {
        return Ok(text.to_string());
    }
    let new_environments = (!environments.is_empty()).then_some(Value::Object(environments));
    let mut expected = root.clone();
    match &new_environments {
        Some(value) => {
            expected.insert("environments".to_string(), value.clone());
        }
        None => {
            expected.shift_remove("environments");
        }
    }
    let expected = Value::Object(expected);

    // The fine edit first; if it does not read back as expected, rewrite the whole
    // `environments` entry; if even that fails, refuse.
    let mut last_error = String::new();
    for whole in [false, true] {
        let mut editor = Editor::new(text, &document.index, order, whole);
        let outcome = editor
            .set_entry("", root, "environments", new_environments.as_ref())
            .and_then(|()| editor.apply());
        match outcome {
            Ok(edited) => match reads_as(&edited, &expected) {
                Ok(()) => return Ok(edited),
                Err(error) => last_error = error,
            },
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

/// Checks that `text` parses to `expected`.
fn reads_as(text: &str, expected: &Value) -> Result<(), String> {
    let document = source::parse_yaml(&SourceFile {
        path: "flag.yml".into(),
        text: text.to_string(),
    })
    .map_err(|diagnostic| format!("the edited file would not parse: {}", diagnostic.message))?;
    if same(&document.value, expected) {
        Ok(())
    } else {
        Err("the edited file would not hold the expected data".to_string())
    }
}

/// Whether two values hold the same data: numbers compared by value (`50` and `50.0`), and a
/// number equal to a string that spells it (an actor id written `278964` or `"278964"`).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Number(x), Value::String(y)) | (Value::String(y), Value::Number(x)) => x.to_string() == *y,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, value)| y.get(key).is_some_and(|other| same(value, other)))
        }
        _ => a == b,
    }
}

/// `map` with `key` inserted before the first key that ranks after it.
fn insert_ranked<R: Ord>(
    map: &Map<String, Value>,
    key: &str,
    value: &Value,
    rank: impl Fn(&str) -> R,
) -> Map<String, Value> {
    let mut result = Map::new();
    let mut placed = false;
    for (existing, existing_value) in map {
        if !placed && rank(existing) > rank(key) {
            result.insert(key.to_string(), value.clone());
            placed = true;
        }
        result.insert(existing.clone(), existing_value.clone());
    }
    if !placed {
        result.insert(key.to_string(), value.clone());
    }
    result
}

fn environment_rank(order: &[String], key: &str) -> (usize, String) {
    (
        order.iter().position(|name| name == key).unwrap_or(usize::MAX),
        key.to_string(),
    )
}

fn fixed_rank(order: &[&str], key: &str) -> (usize, String) {
    (
        order.iter().position(|name| *name == key).unwrap_or(usize::MAX),
        key.to_string(),
    )
}

/// A number as the registry writes it: `50`, not `50.0`.
fn number_text(number: &serde_json::Number) -> String {
    match number.as_f64() {
        Some(float) if number.is_f64() && float.fract() == 0.0 && float.abs() < 1e15 => format!("{}", float as i64),
        _ => number.to_string(),
    }
}

/// A scalar as YAML text.
fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number_text(number),
        Value::String(text) => crate::template::scalar(text),
        Value::Array(items) if items.is_empty() => "[]".to_string(),
        Value::Object(map) if map.is_empty() => "{}".to_string(),
        // Collections are written in block style by `render`; a flow form is a fallback only.
        other => other.to_string(),
    }
}

fn is_collection(value: &Value) -> bool {
    match value {
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        _ => false,
    }
}

struct Editor<'a> {
    text: &'a str,
    index: &'a PointerIndex,
    order: &'a [String],
    /// Rewrite the whole `environments` entry instead of editing inside it.
    whole: bool,
    /// The indentation step of nested mappings in this file.
    step: usize,
    /// The line break the file uses.
    newline: &'static str,
    edits: Vec<(Range<usize>, String)>,
}

impl<'a> Editor<'a> {
    fn new(text: &'a str, index: &'a PointerIndex, order: &'a [String], whole: bool) -> Editor<'a> {
        Editor {
            text,
            index,
            order,
            whole,
            step: detect_step(text),
            newline: if text.contains("\r\n") { "\r\n" } else { "\n" },
            edits: Vec::new(),
        }
    }

    fn rank(&self, parent: &str, key: &str) -> (usize, String) {
        match parent.matches('/').count() {
            0 => fixed_rank(ROOT_ORDER, key),
            1 => environment_rank(self.order, key),
            2 => fixed_rank(GATE_ORDER, key),
            _ => (0, key.to_string()),
        }
    }

    /// Sets `key` of the mapping at `parent` (whose data is `map`) to `new`, or removes it.
    fn set_entry(
        &mut self,
        parent: &str,
        map: &Map<String, Value>,
        key: &str,
        new: Option<&Value>,
    ) -> Result<(), String> {
        let pointer = push_pointer(parent, key);
        let Some(old) = map.get(key) else {
            return match new {
                Some(new) => self.insert_entry(parent, map, key, new),
                None => Ok(()),
            };
        };
        let Some(new) = new else {
            let range = self.entry_range(&pointer)?;
            self.edits.push((range, String::new()));
            return Ok(());
        };
        if same(old, new) {
            return Ok(());
        }
        let inside = !(self.whole && pointer == "/environments");
        match (old, new) {
            (Value::Object(old), Value::Object(new)) if inside && !new.is_empty() && self.is_block(&pointer) => {
                for child in old.keys() {
                    self.set_entry(&pointer, old, child, new.get(child))?;
                }
                for (child, value) in new {
                    if !old.contains_key(child) {
                        self.insert_entry(&pointer, old, child, value)?;
                    }
                }
                Ok(())
            }
            (Value::Array(old_items), Value::Array(new_items))
                if inside && self.is_block(&pointer) && self.edit_sequence(&pointer, old_items, new_items)? =>
            {
                Ok(())
            }
            _ if !is_collection(old) && !is_collection(new) && self.replace_scalar(&pointer, new) => Ok(()),
            _ => {
                let range = self.entry_range(&pointer)?;
                let node = self.index.get(&pointer).ok_or("no position for an entry")?;
                let key_span = node.key.ok_or("an entry without a key")?;
                let line_start = range.start;
                let key_start = key_span.byte_range(self.text).start;
                let line_end = self.text[line_start..]
                    .find('\n')
                    .map_or(self.text.len(), |cut| line_start + cut);
                let colon = self.text[key_start..line_end]
                    .find(':')
                    .map(|cut| key_start + cut)
                    .ok_or("no `:` after a key")?;
                let head = &self.text[line_start..=colon];
                // A comment after the value on the key's line (a scalar, or a collection in
                // flow style) stays there.
                let after = if node.value.line == key_span.line && (!is_collection(old) || !self.is_block(&pointer)) {
                    node.value.byte_range(self.text).end.max(colon + 1)
                } else {
                    colon + 1
                };
                let comment = trailing_comment(&self.text[after..line_end]);
                let indent = key_start - line_start;
                let rendered = self.render(head, indent, new, comment);
                self.edits.push((range, rendered));
                Ok(())
            }
        }
    }

    /// Replaces a single-line scalar value in place; false when the value is not one.
    fn replace_scalar(&mut self, pointer: &str, new: &Value) -> bool {
        let Some(node) = self.index.get(pointer) else {
            return false;
        };
        let Some(key) = node.key else { return false };
        if node.value.line != key.line || node.value.end_line != key.line {
            return false;
        }
        let range = node.value.byte_range(self.text);
        let old_text = &self.text[range.clone()];
        // A quoted or block scalar is rewritten whole, by the caller.
        if old_text.starts_with(['"', '\'', '|', '>', '{', '[']) || old_text.is_empty() {
            return false;
        }
        self.edits.push((range, inline(new)));
        true
    }

    /// Edits a block list of one-line scalars item by item when `new` is `old` with items
    /// removed and others appended; false when it is not.
    fn edit_sequence(&mut self, pointer: &str, old: &[Value], new: &[Value]) -> Result<bool, String> {
        if old.is_empty() || old.iter().chain(new).any(is_collection_or_container) {
            return Ok(false);
        }
        let kept: Vec<&Value> = old.iter().filter(|item| new.iter().any(|n| same(item, n))).collect();
        let appended: Vec<&Value> = new.iter().filter(|item| !old.iter().any(|o| same(item, o))).collect();
        let rebuilt: Vec<&Value> = kept.iter().copied().chain(appended.iter().copied()).collect();
        if rebuilt.len() != new.len() || !rebuilt.iter().zip(new).all(|(a, b)| same(a, b)) {
            return Ok(false);
        }
        let mut lines = Vec::new();
        for position in 0..old.len() {
            let item = push_pointer(pointer, &position.to_string());
            let Some(node) = self.index.get(&item) else {
                return Ok(false);
            };
            if node.value.end_line != node.value.line {
                return Ok(false);
            }
            let value_start = node.value.byte_range(self.text).start;
            let line_start = self.text[..value_start].rfind('\n').map_or(0, |cut| cut + 1);
            let prefix = &self.text[line_start..value_start];
            if !prefix.trim_start_matches(' ').starts_with('-') || prefix.trim() != "-" {
                return Ok(false);
            }
            let line_end = next_line(self.text, line_start);
            lines.push((line_start..line_end, prefix));
        }
        let (last_line, last_prefix) = lines.last().cloned().expect("the list is not empty");
        // Every item on its own line, the last one followed by a line break or nothing.
        for (position, (range, _)) in lines.iter().enumerate() {
            if !new.iter().any(|n| same(&old[position], n)) {
                self.edits.push((range.clone(), String::new()));
            }
        }
        if !appended.is_empty() {
            let mut text = String::new();
            if !self.text[..last_line.end].ends_with('\n') {
                text.push_str(self.newline);
            }
            for item in appended {
                text.push_str(last_prefix);
                text.push_str(&inline(item));
                text.push_str(self.newline);
            }
            self.edits.push((last_line.end..last_line.end, text));
        }
        Ok(true)
    }

    /// Inserts `key: value` into the block mapping at `parent`, after the last sibling that
    /// ranks before it, or before the first sibling.
    fn insert_entry(&mut self, parent: &str, map: &Map<String, Value>, key: &str, value: &Value) -> Result<(), String> {
        if !self.is_block(parent) {
            return Err("a mapping written in flow style (`{...}`) cannot be edited in place".to_string());
        }
        let rank = self.rank(parent, key);
        let previous = map.keys().rfind(|sibling| self.rank(parent, sibling) < rank);
        let (at, indent) = match previous {
            Some(sibling) => {
                let pointer = push_pointer(parent, sibling);
                let range = self.entry_range(&pointer)?;
                (range.end, self.key_indent(&pointer)?)
            }
            None => {
                let first = map.keys().next().ok_or("an empty mapping cannot be edited in place")?;
                let pointer = push_pointer(parent, first);
                let range = self.entry_range(&pointer)?;
                (range.start, self.key_indent(&pointer)?)
            }
        };
        let mut text = String::new();
        if at == self.text.len() && !self.text.is_empty() && !self.text.ends_with('\n') {
            text.push_str(self.newline);
        }
        let head = format!("{}{}:", " ".repeat(indent), crate::template::scalar(key));
        text.push_str(&self.render(&head, indent, value, ""));
        self.edits.push((at..at, text));
        Ok(())
    }

    /// The text of one entry: `head` (indentation, key and colon), then the value, in block style.
    fn render(&self, head: &str, indent: usize, value: &Value, comment: &str) -> String {
        let mut out = String::from(head);
        match value {
            Value::Object(map) if !map.is_empty() => {
                out.push_str(comment);
                out.push_str(self.newline);
                let inner = indent + self.step;
                for (key, child) in map {
                    let head = format!("{}{}:", " ".repeat(inner), crate::template::scalar(key));
                    out.push_str(&self.render(&head, inner, child, ""));
                }
            }
            Value::Array(items) if !items.is_empty() => {
                out.push_str(comment);
                out.push_str(self.newline);
                let pad = " ".repeat(indent + self.step);
                for item in items {
                    out.push_str(&format!("{pad}- {}{}", inline(item), self.newline));
                }
            }
            scalar => {
                out.push(' ');
                out.push_str(&inline(scalar));
                out.push_str(comment);
                out.push_str(self.newline);
            }
        }
        out
    }

    /// Whether the collection at `pointer` is written in block style (the root included).
    fn is_block(&self, pointer: &str) -> bool {
        let Some(node) = self.index.get(pointer) else {
            return false;
        };
        let start = node.value.byte_range(self.text).start;
        !self.text[start..].starts_with(['{', '['])
    }

    /// The column (0-based, in bytes of leading spaces) of the key at `pointer`.
    fn key_indent(&self, pointer: &str) -> Result<usize, String> {
        let range = self.entry_range(pointer)?;
        let node = self.index.get(pointer).ok_or("no position for an entry")?;
        let key = node.key.ok_or("an entry without a key")?;
        Ok(key.byte_range(self.text).start - range.start)
    }

    /// The lines of the entry at `pointer`: from the start of its key's line to the end of the
    /// last line of its value; blank and comment lines after the value are not part of it.
    fn entry_range(&self, pointer: &str) -> Result<Range<usize>, String> {
        let node = self.index.get(pointer).ok_or("no position for an entry")?;
        let key = node.key.ok_or("an entry without a key")?;
        let key_start = key.byte_range(self.text).start;
        let line_start = self.text[..key_start].rfind('\n').map_or(0, |cut| cut + 1);
        if !self.text[line_start..key_start].bytes().all(|byte| byte == b' ') {
            return Err(format!(
                "the key at line {} does not start its line (flow style?); edit the file by hand",
                key.line
            ));
        }
        let indent = key_start - line_start;
        let mut end = next_line(self.text, line_start);
        let mut position = end;
        while position < self.text.len() {
            let following = next_line(self.text, position);
            let line = self.text[position..following].trim_end_matches(['\n', '\r']);
            let content = line.trim_start_matches(' ');
            let depth = line.len() - content.len();
            if content.is_empty() || content.starts_with('#') {
                position = following;
                continue;
            }
            let item = depth == indent && (content == "-" || content.starts_with("- "));
            if depth > indent || item {
                end = following;
                position = following;
                continue;
            }
            break;
        }
        Ok(line_start..end)
    }

    /// The edited text: every replacement applied, in order.
    fn apply(&mut self) -> Result<String, String> {
        self.edits.sort_by_key(|(range, _)| (range.start, range.end));
        let mut out = String::with_capacity(self.text.len() + 64);
        let mut cursor = 0;
        for (range, replacement) in &self.edits {
            if range.start < cursor {
                return Err("overlapping edits".to_string());
            }
            out.push_str(&self.text[cursor..range.start]);
            out.push_str(replacement);
            cursor = range.end;
        }
        out.push_str(&self.text[cursor..]);
        Ok(out)
    }
}

fn is_collection_or_container(value: &Value) -> bool {
    value.is_array() || value.is_object()
}

/// The offset just past the line break ending the line that starts at `start`.
fn next_line(text: &str, start: usize) -> usize {
    text[start..].find('\n').map_or(text.len(), |cut| start + cut + 1)
}

/// A comment at the end of a line (`  # why`), with the spaces before it.
fn trailing_comment(rest: &str) -> &str {
    let rest = rest.trim_end_matches('\r');
    if rest.trim_start().starts_with('#') { rest } else { "" }
}

/// The indentation step of the file's nested mappings: the column of the first indented key
/// below a top-level key, or 2.
fn detect_step(text: &str) -> usize {
    let mut previous_top = false;
    for line in text.lines() {
        let content = line.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let depth = line.len() - content.len();
        if previous_top && depth > 0 && !content.starts_with('-') {
            return depth;
        }
        previous_top = depth == 0 && content.trim_end().ends_with(':');
    }
    2
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order() -> Vec<String> {
        ["dev", "pre", "staging", "staging-ref", "ops", "production"]
            .iter()
            .map(|name| name.to_string())
            .collect()
    }

    fn set(text: &str, environment: &str, state: Option<Value>) -> String {
        set_environment(text, environment, state.as_ref(), &order()).unwrap()
    }

    const FILE: &str = "name: a # the name\nenvironments:\n  dev: true  # on\n\n  production:\n    percentage_of_actors: 25\n    actors:\n      group:\n        - gitlab-org\n        - \"gitlab-com\"\n# after\nrollout: []\n";

    #[test]
    fn scalar_replaced_in_place_keeps_comment() {
        let edited = set(FILE, "dev", Some(json!(false)));
        assert_eq!(edited, FILE.replace("dev: true  # on", "dev: false  # on"));
    }

    #[test]
    fn scalar_becomes_mapping_keeping_comment() {
        let edited = set(FILE, "dev", Some(json!({"percentage_of_actors": 50})));
        assert_eq!(
            edited,
            FILE.replace("  dev: true  # on\n", "  dev:  # on\n    percentage_of_actors: 50\n")
        );
    }

    #[test]
    fn gates_edited_line_by_line() {
        let edited = set(
            FILE,
            "production",
            Some(json!({"percentage_of_actors": 50, "actors": {"group": ["gitlab-org", "gitlab-com", "x/y"]}})),
        );
        assert_eq!(
            edited,
            FILE.replace("actors: 25", "actors: 50")
                .replace("\"gitlab-com\"\n", "\"gitlab-com\"\n        - x/y\n")
        );
        let removed = set(
            FILE,
            "production",
            Some(json!({"percentage_of_actors": 25, "actors": {"group": ["gitlab-com"]}})),
        );
        assert_eq!(removed, FILE.replace("        - gitlab-org\n", ""));
    }

    #[test]
    fn mapping_becomes_scalar_and_entries_are_inserted_in_order() {
        let edited = set(FILE, "production", Some(json!(false)));
        assert_eq!(
            edited,
            "name: a # the name\nenvironments:\n  dev: true  # on\n\n  production: false\n# after\nrollout: []\n"
        );
        let inserted = set(FILE, "staging", Some(json!(true)));
        assert_eq!(
            inserted,
            FILE.replace("  dev: true  # on\n", "  dev: true  # on\n  staging: true\n")
        );
    }

    #[test]
    fn environments_created_and_removed() {
        let text = "name: a\ndefault_enabled: false\nrollout:\n  - at: x\n";
        let edited = set(text, "production", Some(json!(true)));
        assert_eq!(
            edited,
            "name: a\ndefault_enabled: false\nenvironments:\n  production: true\nrollout:\n  - at: x\n"
        );
        assert_eq!(set(&edited, "production", None), text);
        let no_newline = set("name: a", "dev", Some(json!(true)));
        assert_eq!(no_newline, "name: a\nenvironments:\n  dev: true\n");
    }

    #[test]
    fn same_value_changes_nothing_and_flow_style_is_rewritten() {
        assert_eq!(set(FILE, "dev", Some(json!(true))), FILE);
        let flow = "name: a\nenvironments: {dev: true}\n";
        assert_eq!(
            set(flow, "production", Some(json!(false))),
            "name: a\nenvironments:\n  dev: true\n  production: false\n"
        );
        // Written again whole, a new environment still takes its place in promotion order.
        let flow = "name: a\nenvironments: {production: false}\n";
        assert_eq!(
            set(flow, "dev", Some(json!(true))),
            "name: a\nenvironments:\n  dev: true\n  production: false\n"
        );
        let quoted = "name: a\nenvironments:\n  \"dev\": 'true'\n";
        assert_eq!(
            set(quoted, "dev", Some(json!(true))),
            "name: a\nenvironments:\n  \"dev\": true\n"
        );
    }

    #[test]
    fn lists_at_their_key_indentation_comments_and_crlf_are_kept() {
        let text = "name: a\nenvironments:\n  # dev first\n  dev:\n    actors:\n      user:\n      - alice\n\n  # then production\n  production: false\n";
        let edited = set(text, "dev", Some(json!({"actors": {"user": ["alice", "bob"]}})));
        assert_eq!(edited, text.replace("      - alice\n", "      - alice\n      - bob\n"));
        let removed = set(text, "dev", None);
        assert_eq!(
            removed,
            text.replace("  dev:\n    actors:\n      user:\n      - alice\n", "")
        );
        let crlf = text.replace('\n', "\r\n");
        let edited = set(&crlf, "staging", Some(json!(true)));
        assert_eq!(
            edited,
            crlf.replace("      - alice\r\n", "      - alice\r\n  staging: true\r\n")
        );
    }

    // Each case: the file, the environment, the state (none: removed) and the file after.
    #[test]
    fn edits_keep_the_file_s_indentation_order_and_comments() {
        let cases: Vec<(&str, &str, Option<Value>, &str)> = vec![
            // A four-space file is edited with four spaces; a new first entry goes before the first.
            (
                "name: a\nenvironments:\n    production: false\n",
                "dev",
                Some(json!({"percentage_of_actors": 5, "groups": ["beta"]})),
                "name: a\nenvironments:\n    dev:\n        percentage_of_actors: 5\n        groups:\n            - beta\n    production: false\n",
            ),
            // An environment the config does not know goes last; one it knows before the unknown.
            (
                "name: a\nenvironments:\n  production: false\n  custom: true\n",
                "zeta",
                Some(json!(true)),
                "name: a\nenvironments:\n  production: false\n  custom: true\n  zeta: true\n",
            ),
            (
                "name: a\nenvironments:\n  production: false\n  custom: true\n",
                "ops",
                Some(json!(true)),
                "name: a\nenvironments:\n  ops: true\n  production: false\n  custom: true\n",
            ),
            // Gates in the registry's order: a percentage of time after a percentage of actors,
            // groups after actors, and a new actor kind among the kinds.
            (
                "name: a\nenvironments:\n  dev:\n    percentage_of_actors: 5\n    actors:\n      user: [a]\n",
                "dev",
                Some(json!({"percentage_of_actors": 5, "percentage_of_time": 2.5, "actors": {"user": ["a"]}})),
                "name: a\nenvironments:\n  dev:\n    percentage_of_actors: 5\n    percentage_of_time: 2.5\n    actors:\n      user: [a]\n",
            ),
            (
                "name: a\nenvironments:\n  dev:\n    percentage_of_actors: 5\n    actors:\n      user: [a]\n",
                "dev",
                Some(
                    json!({"percentage_of_actors": 5, "actors": {"user": ["a"], "project": ["1"]}, "groups": ["beta"]}),
                ),
                "name: a\nenvironments:\n  dev:\n    percentage_of_actors: 5\n    actors:\n      project:\n        - \"1\"\n      user: [a]\n    groups:\n      - beta\n",
            ),
            // A new `environments` entry goes where `flagops new` writes it.
            (
                "name: a\ndescription: d\nrequires: [b]\noverrides:\n  min-wait: x\n",
                "dev",
                Some(json!(true)),
                "name: a\ndescription: d\nrequires: [b]\nenvironments:\n  dev: true\noverrides:\n  min-wait: x\n",
            ),
            // Numbers as the registry writes them.
            (
                "name: a\nenvironments:\n  dev: 50\n",
                "dev",
                Some(json!(12.5)),
                "name: a\nenvironments:\n  dev: 12.5\n",
            ),
            (
                "name: a\nenvironments:\n  dev: true\n",
                "dev",
                Some(json!({"percentage_of_actors": 50.0})),
                "name: a\nenvironments:\n  dev:\n    percentage_of_actors: 50\n",
            ),
            // An actor id written as a string is the same id as the number.
            (
                "name: a\nenvironments:\n  dev:\n    actors:\n      project:\n        - \"278964\"\n",
                "dev",
                Some(json!({"actors": {"project": [278964, "gitlab-org/gitlab"]}})),
                "name: a\nenvironments:\n  dev:\n    actors:\n      project:\n        - \"278964\"\n        - gitlab-org/gitlab\n",
            ),
            // Items reordered: the list is written again.
            (
                "name: a\nenvironments:\n  dev:\n    actors:\n      project:\n        - 1\n        - 2\n        - 3\n",
                "dev",
                Some(json!({"actors": {"project": ["3", "1", "4"]}})),
                "name: a\nenvironments:\n  dev:\n    actors:\n      project:\n        - \"3\"\n        - \"1\"\n        - \"4\"\n",
            ),
            // An item appended to a file without a final line break.
            (
                "name: a\nenvironments:\n  dev:\n    actors:\n      project:\n        - 1\n        - 2",
                "dev",
                Some(json!({"actors": {"project": ["1", "2", "5"]}})),
                "name: a\nenvironments:\n  dev:\n    actors:\n      project:\n        - 1\n        - 2\n        - \"5\"\n",
            ),
            // A removed entry takes its lines, not the comment after it; the last one takes
            // `environments` with it; removing what is not there changes nothing.
            (
                "name: a\nenvironments:\n  dev: true\n  production: false\n# end\n",
                "production",
                None,
                "name: a\nenvironments:\n  dev: true\n# end\n",
            ),
            ("name: a\nenvironments:\n  dev: true\n", "dev", None, "name: a\n"),
            (
                "name: a\nenvironments:\n  dev: true\n",
                "staging",
                None,
                "name: a\nenvironments:\n  dev: true\n",
            ),
            // Flow collections, quoted and block scalars are written again whole.
            (
                "name: a\nenvironments:\n  dev: {percentage_of_actors: 5}\n",
                "dev",
                Some(json!({"percentage_of_actors": 6})),
                "name: a\nenvironments:\n  dev:\n    percentage_of_actors: 6\n",
            ),
            (
                "name: a\nenvironments:\n  dev:\n    groups: [beta]\n",
                "dev",
                Some(json!({"groups": ["beta", "x"]})),
                "name: a\nenvironments:\n  dev:\n    groups:\n      - beta\n      - x\n",
            ),
            (
                "name: a\nenvironments:\n  dev:\n    percentage_of_actors: '5'\n",
                "dev",
                Some(json!({"percentage_of_actors": 6})),
                "name: a\nenvironments:\n  dev:\n    percentage_of_actors: 6\n",
            ),
            (
                "name: a\nenvironments:\n  dev: |\n    x\n",
                "dev",
                Some(json!(true)),
                "name: a\nenvironments:\n  dev: true\n",
            ),
            (
                "name: a\nenvironments:\n  dev:\n    percentage_of_actors: 5 # five\n",
                "dev",
                Some(json!({"percentage_of_actors": 6})),
                "name: a\nenvironments:\n  dev:\n    percentage_of_actors: 6 # five\n",
            ),
            // The fine edits below, done wrong, would read back wrong and fall back to writing
            // `environments` again whole, which drops the comment after `production`.
            // A list at its key's indentation goes with its key.
            (
                "name: a\nenvironments:\n  dev:\n    percentage_of_actors: 10\n    groups:\n    - a\n  production: true # kept\n",
                "dev",
                Some(json!({"percentage_of_actors": 10})),
                "name: a\nenvironments:\n  dev:\n    percentage_of_actors: 10\n  production: true # kept\n",
            ),
            // A plain scalar over several lines is written again whole, not in place.
            (
                "name: a\nenvironments:\n  dev: some\n    words\n  production: true # kept\n",
                "dev",
                Some(json!(false)),
                "name: a\nenvironments:\n  dev: false\n  production: true # kept\n",
            ),
            // The step comes from a key below a top-level key, not from the continuation of a
            // scalar over several lines.
            (
                "name: a\ndescription: some\n  words\nenvironments:\n    dev: true\n",
                "production",
                Some(json!({"percentage_of_actors": 50})),
                "name: a\ndescription: some\n  words\nenvironments:\n    dev: true\n    production:\n        percentage_of_actors: 50\n",
            ),
            // A comment after a collection in flow style on its key's line stays.
            (
                "name: a\nenvironments:\n  dev: {groups: [a]} # c\n",
                "dev",
                Some(json!(true)),
                "name: a\nenvironments:\n  dev: true # c\n",
            ),
            (
                "name: a\nenvironments:\n  dev:\n    groups: [a]  # c\n",
                "dev",
                Some(json!({"groups": ["a", "b"]})),
                "name: a\nenvironments:\n  dev:\n    groups:  # c\n      - a\n      - b\n",
            ),
            // An anchor is part of its item's value: the list is still edited item by item.
            (
                "name: a\nenvironments:\n  dev:\n    groups:\n      - a\n      - &x b\n  production: true # kept\n",
                "dev",
                Some(json!({"groups": ["a", "b", "c"]})),
                "name: a\nenvironments:\n  dev:\n    groups:\n      - a\n      - &x b\n      - c\n  production: true # kept\n",
            ),
        ];
        for (text, environment, state, expected) in cases {
            assert_eq!(
                set(text, environment, state.clone()),
                expected,
                "{text:?} {environment} {state:?}"
            );
        }
    }

    // More shapes of the file around the entry: each case is the file, the environment, the
    // state and the file after.
    #[test]
    fn edits_of_lists_comments_aliases_and_empty_collections() {
        let cases: Vec<(&str, &str, Option<Value>, &str)> = vec![
            // An entry that exists is changed where it is, whatever the file's order.
            (
                "name: a\nenvironments:\n  production: true\n  dev: true\n",
                "dev",
                Some(json!(false)),
                "name: a\nenvironments:\n  production: true\n  dev: false\n",
            ),
            // An alias would carry the edit elsewhere: the whole entry is written again.
            (
                "name: a\nenvironments:\n  dev: &on true\n  production: *on\n",
                "dev",
                Some(json!(false)),
                "name: a\nenvironments:\n  dev: false\n  production: true\n",
            ),
            // The last item removed and one appended, next to each other; quotes kept.
            (
                "name: a\nenvironments:\n  dev:\n    groups:\n      - \"a\"\n      - b\n",
                "dev",
                Some(json!({"groups": ["a", "c"]})),
                "name: a\nenvironments:\n  dev:\n    groups:\n      - \"a\"\n      - c\n",
            ),
            (
                "name: a\nenvironments:\n  dev:\n    groups:\n      - \"a\"\n      - 'b'\n",
                "dev",
                Some(json!({"groups": ["a", "b", "c"]})),
                "name: a\nenvironments:\n  dev:\n    groups:\n      - \"a\"\n      - 'b'\n      - c\n",
            ),
            (
                "name: a\nenvironments:\n  dev:\n    groups:\n      - a # first\n      - b\n",
                "dev",
                Some(json!({"groups": ["b", "c"]})),
                "name: a\nenvironments:\n  dev:\n    groups:\n      - b\n      - c\n",
            ),
            // A blank line or a comment inside an entry belongs to it; the comment on the next
            // entry's line stays.
            (
                "name: a\nenvironments:\n  dev:\n    percentage_of_actors: 5\n\n    # the beta\n    groups:\n      - a\n  production: true # kept\n",
                "dev",
                None,
                "name: a\nenvironments:\n  production: true # kept\n",
            ),
            // An item on the line after its dash belongs to its entry.
            (
                "name: a\nenvironments:\n  dev:\n    groups:\n      -\n        a\n      - b\n  production: true\n",
                "dev",
                None,
                "name: a\nenvironments:\n  production: true\n",
            ),
            (
                "name: a\nenvironments:\n  dev:\n    groups:\n    - a\n    - b\n  production: true\n",
                "dev",
                Some(json!({"groups": ["b"]})),
                "name: a\nenvironments:\n  dev:\n    groups:\n    - b\n  production: true\n",
            ),
            // A comment on the key's line stays there, whatever the value becomes.
            (
                "name: a\nenvironments:\n  dev: true # on\n",
                "dev",
                Some(json!({"groups": ["b"]})),
                "name: a\nenvironments:\n  dev: # on\n    groups:\n      - b\n",
            ),
            (
                "name: a\nenvironments:\n  dev: # on\n    groups: [b]\n",
                "dev",
                Some(json!(true)),
                "name: a\nenvironments:\n  dev: true # on\n",
            ),
            // A scalar is replaced in place: the spaces before it stay.
            (
                "name: a\nenvironments:\n  dev:   true\n",
                "dev",
                Some(json!(false)),
                "name: a\nenvironments:\n  dev:   false\n",
            ),
            // A quoted scalar is written again whole, with one space after its key.
            (
                "name: a\nenvironments:\n  dev:   'true'\n",
                "dev",
                Some(json!(false)),
                "name: a\nenvironments:\n  dev: false\n",
            ),
            // A list that holds a collection, or whose items change order, is written again
            // whole; the other entries keep their comments.
            (
                "name: a\nenvironments:\n  dev:\n    groups:\n      - \"a\"\n      - [x]\n  production: true # kept\n",
                "dev",
                Some(json!({"groups": ["a"]})),
                "name: a\nenvironments:\n  dev:\n    groups:\n      - a\n  production: true # kept\n",
            ),
            (
                "name: a\nenvironments:\n  dev:\n    groups:\n      - a\n      - b\n  production: true # kept\n",
                "dev",
                Some(json!({"groups": ["b", "a"]})),
                "name: a\nenvironments:\n  dev:\n    groups:\n      - b\n      - a\n  production: true # kept\n",
            ),
            // Nested and empty collections; a scalar that becomes a list is written in block
            // style, not replaced in place by a flow list.
            (
                "name: a\nenvironments:\n  dev:\n    groups: none\n",
                "dev",
                Some(json!({"groups": ["b"]})),
                "name: a\nenvironments:\n  dev:\n    groups:\n      - b\n",
            ),
            (
                "name: a\nenvironments:\n  dev:\n    groups:\n      - [a]\n",
                "dev",
                Some(json!({"groups": ["b"]})),
                "name: a\nenvironments:\n  dev:\n    groups:\n      - b\n",
            ),
            (
                "name: a\nenvironments:\n  dev:\n    groups: []\n",
                "dev",
                Some(json!({"groups": ["b"]})),
                "name: a\nenvironments:\n  dev:\n    groups:\n      - b\n",
            ),
            (
                "name: a\nenvironments:\n  dev:\n    groups:\n      - a\n",
                "dev",
                Some(json!({"groups": []})),
                "name: a\nenvironments:\n  dev:\n    groups: []\n",
            ),
            (
                "name: a\nenvironments:\n  dev: {}\n",
                "dev",
                Some(json!({"groups": ["b"]})),
                "name: a\nenvironments:\n  dev:\n    groups:\n      - b\n",
            ),
            (
                "name: a\nenvironments:\n  dev:\n    percentage_of_actors: 5\n",
                "dev",
                Some(json!({})),
                "name: a\nenvironments:\n  dev: {}\n",
            ),
            (
                "name: a\nenvironments: {}\n",
                "dev",
                Some(json!(true)),
                "name: a\nenvironments:\n  dev: true\n",
            ),
            (
                "name: a\nenvironments:\n",
                "dev",
                Some(json!(true)),
                "name: a\nenvironments:\n  dev: true\n",
            ),
        ];
        for (text, environment, state, expected) in cases {
            assert_eq!(
                set(text, environment, state.clone()),
                expected,
                "{text:?} {environment} {state:?}"
            );
        }
        let refused = |text: &str| set_environment(text, "dev", Some(&json!(true)), &order()).unwrap_err();
        assert_eq!(refused("name: a\nenvironments: 5\n"), "`environments` is not a mapping");
        assert_eq!(refused("- a\n"), "the file is not a mapping");
        assert!(refused("name: [\n").starts_with("the file cannot be parsed: "));
    }

    #[test]
    fn same_compares_data_not_spelling() {
        assert!(same(&json!(50), &json!(50.0)));
        assert!(!same(&json!(50), &json!(51)));
        assert!(same(&json!(278964), &json!("278964")));
        assert!(same(&json!("278964"), &json!(278964)));
        assert!(!same(&json!(278964), &json!("278965")));
        assert!(same(&json!([1, "a"]), &json!(["1", "a"])));
        assert!(!same(&json!([1, "a"]), &json!([1, "b"])));
        assert!(!same(&json!([1]), &json!([1, 1])));
        assert!(same(&json!({"a": [1], "b": true}), &json!({"b": true, "a": ["1"]})));
        assert!(!same(&json!({"a": 1}), &json!({"a": 2})));
        assert!(!same(&json!({"a": 1}), &json!({"b": 1})));
        assert!(!same(&json!({"a": 1}), &json!({"a": 1, "b": 1})));
        assert!(same(&json!(true), &json!(true)));
        assert!(!same(&json!(true), &json!("true")));
        assert!(!same(&json!(null), &json!(false)));
    }

    #[test]
    fn scalars_and_indentation_as_the_registry_writes_them() {
        let written = |value: Value| inline(&value);
        assert_eq!(written(json!(50.0)), "50");
        assert_eq!(written(json!(-3.0)), "-3");
        assert_eq!(written(json!(12.5)), "12.5");
        assert_eq!(written(json!(1e15)), "1000000000000000.0");
        assert_eq!(written(json!(null)), "null");
        assert_eq!(written(json!([])), "[]");
        assert_eq!(written(json!({})), "{}");
        assert_eq!(written(json!("a: b")), "\"a: b\"");
        assert_eq!(written(json!([1])), "[1]");
        assert_eq!(written(json!({"a": 1})), "{\"a\":1}");
        assert_eq!(detect_step("a:\n    b: 1\n"), 4);
        assert_eq!(detect_step("a:\n  - x\n  - y\nb:\n   c: 1\n"), 3);
        assert_eq!(detect_step("# c\n\na:\n\n  # x\n      b: 1\n"), 6);
        assert_eq!(detect_step("a: 1\nb: 2\n"), 2);
        assert_eq!(detect_step("a: x\n  b: 1\n"), 2);
        assert_eq!(detect_step("a:\nb:\n   c: 1\n"), 3);
        assert_eq!(detect_step("a:\n- x\nb:\n   c: 1\n"), 3);
        assert_eq!(trailing_comment("  # x\r"), "  # x");
        assert_eq!(trailing_comment(" x # y"), "");
    }

    #[test]
    fn a_file_in_flow_style_is_refused() {
        let flow = "{name: a, environments: {dev: true}}\n";
        assert!(set_environment(flow, "dev", Some(&json!(false)), &order()).is_err());
    }
}

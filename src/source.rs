//! Source files and positions.
//!
//! This module owns the step from YAML text to data: it turns a document into a
//! `serde_json::Value` plus a [`PointerIndex`] that maps each JSON pointer back to a line and
//! column. Plain data is built straight from the parser's events; anything else, and the index,
//! go through saphyr's tree, which keeps a span for every node.
//! Every later diagnostic, from the JSON Schema or from a semantic check, is located through it.
//! It is pure: it is handed text and never reads the file system.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use saphyr::{MarkedYaml, Scalar, YamlData, YamlLoader};
use saphyr_parser::{Event, Parser, SpannedEventReceiver, Tag};
use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::diagnostic::Diagnostic;

/// The most alias-produced nodes one file may expand to; a "billion laughs" file is refused.
pub const ALIAS_LIMIT: usize = 10_000;

/// The deepest nesting a file may have; flag files need about six levels.
pub const DEPTH_LIMIT: usize = 32;

/// A file's path, as shown in diagnostics, and its text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The path shown to users: relative to the working directory where possible.
    pub path: PathBuf,
    /// The whole text of the file.
    pub text: String,
}

/// A position range in a file: 1-based lines and 1-based columns counted in characters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Span {
    /// The first line, from 1.
    pub line: usize,
    /// The first column, from 1, in characters.
    pub column: usize,
    /// The line where the range ends.
    pub end_line: usize,
    /// The column just past the range's end.
    pub end_column: usize,
}

/// Where one node of a document sits: its key (for mapping values) and the value itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeSpan {
    /// The key's span, for a node that is the value of a mapping entry.
    pub key: Option<Span>,
    /// The value's span.
    pub value: Span,
}

/// Maps JSON pointers (`/environments/production/percentage_of_actors`) to source spans.
///
/// Built on first use, by parsing the text again: most files never need a position, so the
/// common path (a valid registry) never pays for one.
#[derive(Clone, Debug, Default)]
pub struct PointerIndex {
    text: Arc<str>,
    spans: OnceLock<HashMap<String, NodeSpan>>,
}

/// A YAML file turned into JSON data, with the positions of its nodes.
#[derive(Clone, Debug)]
pub struct Document {
    /// The data, in document order.
    pub value: Value,
    /// Where each node came from.
    pub index: PointerIndex,
}

impl Span {
    /// A span covering one point.
    pub fn point(line: usize, column: usize) -> Span {
        Span {
            line,
            column,
            end_line: line,
            end_column: column + 1,
        }
    }

    /// The byte range of the span in `text`, clamped to the text and to the first line.
    pub fn byte_range(&self, text: &str) -> std::ops::Range<usize> {
        let start = byte_offset(text, self.line, self.column);
        let line_end = text[start..].find('\n').map_or(text.len(), |cut| start + cut);
        let end = if self.end_line == self.line {
            byte_offset(text, self.line, self.end_column).min(line_end)
        } else {
            line_end
        };
        if end > start {
            start..end
        } else {
            start..(start + text[start..].chars().next().map_or(0, char::len_utf8)).min(text.len())
        }
    }

    /// The span of a collection in flow style with its closing `]` or `}`, which the parser
    /// leaves out (it ends the collection where the bracket starts); other spans as they are.
    fn through_flow_closer(self, text: &str) -> Span {
        if text[byte_offset(text, self.line, self.column)..].starts_with(['[', '{']) {
            Span {
                end_column: self.end_column + 1,
                ..self
            }
        } else {
            self
        }
    }

    fn from_saphyr(span: &saphyr_parser::Span) -> Span {
        let start = span.start;
        let end = span.end;
        let mut result = Span {
            line: start.line(),
            column: start.col() + 1,
            end_line: end.line(),
            end_column: end.col() + 1,
        };
        if (result.end_line, result.end_column) <= (result.line, result.column) {
            result.end_line = result.line;
            result.end_column = result.column + 1;
        }
        result
    }
}

impl PointerIndex {
    fn spans(&self) -> &HashMap<String, NodeSpan> {
        self.spans.get_or_init(|| {
            let file = SourceFile {
                path: PathBuf::new(),
                text: self.text.to_string(),
            };
            let mut spans = HashMap::new();
            // The text parsed before, so it parses again; an error leaves the index empty.
            let _ = convert_document(&file, Some(&mut spans));
            spans
        })
    }

    /// The text of the document the index describes.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The span of the node at `pointer`, if the document has one.
    pub fn get(&self, pointer: &str) -> Option<NodeSpan> {
        self.spans().get(pointer).copied()
    }

    /// The span of the value at `pointer`, or of its nearest ancestor that exists.
    pub fn value_span(&self, pointer: &str) -> Span {
        self.nearest(pointer).value
    }

    /// The span of the key at `pointer` (falling back to its value), or of its nearest ancestor.
    pub fn key_span(&self, pointer: &str) -> Span {
        let node = self.nearest(pointer);
        node.key.unwrap_or(node.value)
    }

    fn nearest(&self, pointer: &str) -> NodeSpan {
        let mut current = pointer;
        loop {
            if let Some(node) = self.spans().get(current) {
                return *node;
            }
            match current.rfind('/') {
                Some(cut) => current = &current[..cut],
                None => return NodeSpan::default(),
            }
        }
    }
}

/// The byte offset of a 1-based line and 1-based character column, clamped to the text.
fn byte_offset(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for _ in 1..line {
        match text[offset..].find('\n') {
            Some(cut) => offset += cut + 1,
            None => return text.len(),
        }
    }
    let rest = &text[offset..];
    let line_text = &rest[..rest.find('\n').unwrap_or(rest.len())];
    offset
        + line_text
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(line_text.len(), |(at, _)| at)
}

/// Appends one reference token to a JSON pointer, escaping `~` and `/` as RFC 6901 says.
pub fn push_pointer(pointer: &str, token: &str) -> String {
    let mut result = String::with_capacity(pointer.len() + token.len() + 1);
    result.push_str(pointer);
    result.push('/');
    for character in token.chars() {
        match character {
            '~' => result.push_str("~0"),
            '/' => result.push_str("~1"),
            other => result.push(other),
        }
    }
    result
}

/// Parses YAML text into a [`Document`], or explains why it cannot be read.
///
/// The file must hold exactly one document whose nodes are plain data: no duplicate keys, no
/// more than [`ALIAS_LIMIT`] alias-produced nodes, no nesting deeper than [`DEPTH_LIMIT`].
pub fn parse_yaml(file: &SourceFile) -> Result<Document, Box<Diagnostic>> {
    // Plain data, as nearly every flag file is, is built straight from the parser's events;
    // anything else (an error, an alias, a tag, a duplicate key, ...) takes the full path,
    // which explains it.
    let value = match direct_value(&file.text) {
        Some(value) => value,
        None => convert_document(file, None)?,
    };
    let index = PointerIndex {
        text: Arc::from(file.text.as_str()),
        spans: OnceLock::new(),
    };
    Ok(Document { value, index })
}

/// A collection still open while [`direct_value`] builds a value.
enum Open {
    Sequence(Vec<Value>),
    /// A mapping, and the key read whose value comes next.
    Mapping(Map<String, Value>, Option<String>),
}

/// Builds the JSON value of a document of plain data straight from the parser's events,
/// without saphyr's tree: one document of mappings with string keys, sequences and scalars,
/// with no tag, anchor, alias or duplicate key, nested at most [`DEPTH_LIMIT`] levels.
///
/// Returns `None` for anything else, including every text that [`convert_document`] refuses,
/// so that it gives the same value as [`convert_document`] or leaves the text to it.
fn direct_value(text: &str) -> Option<Value> {
    let mut open: Vec<Open> = Vec::new();
    let mut root = None;
    let mut documents = 0;
    for event in Parser::new_from_str(text) {
        let (event, _) = event.ok()?;
        let value = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => continue,
            // A second document, even after an empty one.
            Event::DocumentStart(_) if documents > 0 => return None,
            Event::DocumentStart(_) => {
                documents += 1;
                continue;
            }
            Event::Alias(_) => return None,
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag)
                if anchor != 0 || tag.is_some() || open.len() >= DEPTH_LIMIT =>
            {
                return None;
            }
            // A collection as a mapping key.
            Event::SequenceStart(..) | Event::MappingStart(..)
                if matches!(open.last(), Some(Open::Mapping(_, None))) =>
            {
                return None;
            }
            Event::SequenceStart(..) => {
                open.push(Open::Sequence(Vec::new()));
                continue;
            }
            Event::MappingStart(..) => {
                open.push(Open::Mapping(Map::new(), None));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match open.pop()? {
                Open::Sequence(items) => Value::Array(items),
                Open::Mapping(entries, None) => Value::Object(entries),
                Open::Mapping(_, Some(_)) => return None,
            },
            Event::Scalar(text, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() || open.len() > DEPTH_LIMIT {
                    return None;
                }
                match Scalar::parse_from_cow_and_metadata(text, style, None)? {
                    Scalar::String(text) => {
                        if let Some(Open::Mapping(_, key @ None)) = open.last_mut() {
                            *key = Some(text.into_owned());
                            continue;
                        }
                        Value::String(text.into_owned())
                    }
                    // Only a string may be a key here; the full path turns the others into text.
                    _ if matches!(open.last(), Some(Open::Mapping(_, None))) => return None,
                    Scalar::Null => Value::Null,
                    Scalar::Boolean(flag) => Value::Bool(flag),
                    Scalar::Integer(integer) => Value::Number(Number::from(integer)),
                    Scalar::FloatingPoint(float) => Value::Number(Number::from_f64(float.into_inner())?),
                }
            }
        };
        match open.last_mut() {
            None if root.is_none() => root = Some(value),
            None => return None,
            Some(Open::Sequence(items)) => items.push(value),
            Some(Open::Mapping(entries, key)) => match entries.entry(key.take()?) {
                serde_json::map::Entry::Vacant(entry) => {
                    entry.insert(value);
                }
                serde_json::map::Entry::Occupied(_) => return None,
            },
        }
    }
    root
}

/// Parses the text and converts it to JSON, recording node spans into `spans` when given.
fn convert_document(
    file: &SourceFile,
    spans: Option<&mut HashMap<String, NodeSpan>>,
) -> Result<Value, Box<Diagnostic>> {
    let mut parser = Parser::new_from_str(&file.text);
    let mut guard = Guard::default();
    guard.loader.alias_limit(ALIAS_LIMIT);
    let outcome = parser.load(&mut guard, true);
    let scan_error = outcome.err().or_else(|| guard.loader.error().cloned());
    if let Some(error) = scan_error {
        let mut diagnostic = scan_diagnostic(file, &error);
        if diagnostic.check == "yaml-syntax" {
            if error.info().contains("quoted scalar") {
                // The parser points at the quote that opened the string.
                diagnostic = diagnostic
                    .with_help("the string that starts with this quote is not closed: end it with the same quote");
            } else if let Some((opener, span)) = guard.open_flow(&file.text) {
                let closer = if opener == '[' { ']' } else { '}' };
                diagnostic = diagnostic.with_help(format!(
                    "the `{opener}` opened at line {}, column {} is not closed before this point: close it with `{closer}`",
                    span.line, span.column
                ));
            }
        }
        return Err(Box::new(diagnostic));
    }
    if let Some((tag, span)) = guard.tag {
        return Err(Box::new(
            Diagnostic::error(
                "unsupported-yaml",
                file,
                span,
                format!("the tag `{tag}` is not supported"),
            )
            .with_help("flag files hold plain data: remove the tag"),
        ));
    }
    let mut documents = guard.loader.into_documents();
    if documents.len() > 1 {
        let span = Span::from_saphyr(&documents[1].span);
        return Err(Box::new(
            Diagnostic::error(
                "multiple-documents",
                file,
                span,
                "the file holds more than one YAML document",
            )
            .with_help("keep one flag per file and remove the second `---` document"),
        ));
    }
    let Some(root) = documents.pop() else {
        return Err(Box::new(
            Diagnostic::error("empty-file", file, Span::point(1, 1), "the file is empty")
                .with_help("a flag file is a mapping with `name`, `description`, `type`, ..."),
        ));
    };
    Converter { file, spans }.convert(&root, String::new(), None, 0)
}

/// Turns a parser error into a diagnostic with a check id for its kind.
fn scan_diagnostic(file: &SourceFile, error: &saphyr_parser::ScanError) -> Diagnostic {
    let marker = error.marker();
    let span = Span::point(marker.line().max(1), marker.col() + 1);
    let info = error.info();
    if info.contains("duplicated key") {
        Diagnostic::error(
            "duplicate-key",
            file,
            span,
            "this key appears twice in the same mapping",
        )
        .with_help("YAML keeps only one of the two values: remove or rename one of them")
    } else if info.contains("alias expansion") {
        Diagnostic::error("alias-limit", file, span, "aliases expand to too many nodes").with_help(format!(
            "flag files may expand aliases to at most {ALIAS_LIMIT} nodes; write the values out"
        ))
    } else if info.contains("recursion limit") {
        Diagnostic::error("too-deep", file, span, "the document is nested too deeply")
            .with_help(format!("flag files may nest at most {DEPTH_LIMIT} levels"))
    } else {
        Diagnostic::error("yaml-syntax", file, span, format!("invalid YAML: {info}"))
    }
}

/// Passes the parser's events on to saphyr's loader, noting what the loader would lose.
///
/// The loader drops the tags of the YAML core schema (`!!set`, `!!omap`, `!!python/...`) on
/// mappings and sequences, so every tag is caught here, on the event, whatever node it is on.
/// It also keeps the collections still open, so that a syntax error can say where an unclosed
/// `[` or `{` began.
#[derive(Default)]
struct Guard<'input> {
    loader: YamlLoader<'input, MarkedYaml<'input>>,
    /// The first tag in the text, as written, and where its node starts.
    tag: Option<(String, Span)>,
    /// Where each collection still open starts.
    open: Vec<Span>,
}

impl<'input> SpannedEventReceiver<'input> for Guard<'input> {
    fn on_event(&mut self, event: Event<'input>, span: saphyr_parser::Span) {
        let tag = match &event {
            Event::Scalar(_, _, _, tag) | Event::SequenceStart(_, tag) | Event::MappingStart(_, tag) => tag.as_deref(),
            _ => None,
        };
        if let (Some(tag), None) = (tag, &self.tag) {
            self.tag = Some((tag_text(tag), Span::from_saphyr(&span)));
        }
        match &event {
            Event::SequenceStart(..) | Event::MappingStart(..) => self.open.push(Span::from_saphyr(&span)),
            Event::SequenceEnd | Event::MappingEnd => {
                self.open.pop();
            }
            _ => {}
        }
        self.loader.on_event(event, span);
    }
}

impl Guard<'_> {
    /// The innermost flow collection (`[` or `{`) still open, and where it starts.
    fn open_flow(&self, text: &str) -> Option<(char, Span)> {
        self.open.iter().rev().find_map(|span| {
            let start = byte_offset(text, span.line, span.column);
            match text[start..].chars().next() {
                Some(opener @ ('[' | '{')) => Some((opener, *span)),
                _ => None,
            }
        })
    }
}

/// A tag as it is usually written: `!!set` for the core schema's, `!name` for local ones.
fn tag_text(tag: &Tag) -> String {
    match tag.handle.as_str() {
        "tag:yaml.org,2002:" => format!("!!{}", tag.suffix),
        "!" => format!("!{}", tag.suffix),
        handle => format!("!<{handle}{}>", tag.suffix),
    }
}

struct Converter<'a> {
    file: &'a SourceFile,
    spans: Option<&'a mut HashMap<String, NodeSpan>>,
}

impl Converter<'_> {
    fn convert(
        &mut self,
        node: &MarkedYaml<'_>,
        pointer: String,
        key: Option<Span>,
        depth: usize,
    ) -> Result<Value, Box<Diagnostic>> {
        let mut span = Span::from_saphyr(&node.span);
        if matches!(node.data, YamlData::Sequence(_) | YamlData::Mapping(_)) {
            span = span.through_flow_closer(&self.file.text);
        }
        if depth > DEPTH_LIMIT {
            return Err(Box::new(
                Diagnostic::error("too-deep", self.file, span, "the document is nested too deeply")
                    .with_help(format!("flag files may nest at most {DEPTH_LIMIT} levels")),
            ));
        }
        let value = match &node.data {
            YamlData::Value(scalar) => self.scalar(scalar, span)?,
            YamlData::Sequence(items) => {
                let mut array = Vec::with_capacity(items.len());
                for (position, item) in items.iter().enumerate() {
                    let child = self.child(&pointer, &position.to_string());
                    array.push(self.convert(item, child, None, depth + 1)?);
                }
                Value::Array(array)
            }
            YamlData::Mapping(entries) => {
                let mut object = Map::with_capacity(entries.len());
                for (key_node, value_node) in entries {
                    let key_span = Span::from_saphyr(&key_node.span);
                    let name = self.key(key_node, key_span)?;
                    let child = self.child(&pointer, &name);
                    let converted = self.convert(value_node, child, Some(key_span), depth + 1)?;
                    if object.insert(name, converted).is_some() {
                        return Err(Box::new(
                            Diagnostic::error(
                                "duplicate-key",
                                self.file,
                                key_span,
                                "this key appears twice in the same mapping",
                            )
                            .with_help("YAML keeps only one of the two values: remove or rename one of them"),
                        ));
                    }
                }
                Value::Object(object)
            }
            YamlData::Tagged(tag, _) => {
                return Err(Box::new(
                    Diagnostic::error(
                        "unsupported-yaml",
                        self.file,
                        span,
                        format!("the tag `{tag}` is not supported"),
                    )
                    .with_help("flag files hold plain data: remove the tag"),
                ));
            }
            YamlData::Representation(..) | YamlData::Alias(_) | YamlData::BadValue => {
                return Err(Box::new(
                    Diagnostic::error(
                        "unsupported-yaml",
                        self.file,
                        span,
                        "this value cannot be read as plain data",
                    )
                    .with_help("write a plain string, number, boolean, list or mapping"),
                ));
            }
        };
        if let Some(spans) = self.spans.as_deref_mut() {
            spans.insert(pointer, NodeSpan { key, value: span });
        }
        Ok(value)
    }

    /// The pointer of a child node, computed only when spans are recorded.
    fn child(&self, pointer: &str, token: &str) -> String {
        if self.spans.is_some() {
            push_pointer(pointer, token)
        } else {
            String::new()
        }
    }

    fn scalar(&self, scalar: &Scalar<'_>, span: Span) -> Result<Value, Box<Diagnostic>> {
        Ok(match scalar {
            Scalar::Null => Value::Null,
            Scalar::Boolean(flag) => Value::Bool(*flag),
            Scalar::Integer(integer) => Value::Number(Number::from(*integer)),
            Scalar::FloatingPoint(float) => match Number::from_f64(float.into_inner()) {
                Some(number) => Value::Number(number),
                None => {
                    return Err(Box::new(
                        Diagnostic::error(
                            "unsupported-yaml",
                            self.file,
                            span,
                            "infinite and not-a-number values are not supported",
                        )
                        .with_help("write a finite number, or quote the value to make it a string"),
                    ));
                }
            },
            Scalar::String(text) => Value::String(text.to_string()),
        })
    }

    fn key(&self, node: &MarkedYaml<'_>, span: Span) -> Result<String, Box<Diagnostic>> {
        match &node.data {
            YamlData::Value(Scalar::String(text)) => Ok(text.to_string()),
            YamlData::Value(Scalar::Integer(integer)) => Ok(integer.to_string()),
            YamlData::Value(Scalar::Boolean(flag)) => Ok(flag.to_string()),
            YamlData::Value(Scalar::FloatingPoint(float)) => Ok(float.to_string()),
            _ => Err(Box::new(
                Diagnostic::error(
                    "unsupported-yaml",
                    self.file,
                    span,
                    "mapping keys must be plain strings",
                )
                .with_help("write the key as a word, such as `production:`"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Document, Box<Diagnostic>> {
        parse_yaml(&SourceFile {
            path: "f.yml".into(),
            text: text.to_string(),
        })
    }

    #[test]
    fn parse_indexes_keys_and_values() {
        let document = parse("name: a\nenvironments:\n  production:\n    percentage_of_actors: 25\n").unwrap();
        let node = document
            .index
            .get("/environments/production/percentage_of_actors")
            .unwrap();
        assert_eq!(node.key.unwrap().line, 4);
        assert_eq!(node.key.unwrap().column, 5);
        assert_eq!(node.value.column, 27);
        assert_eq!(document.value["environments"]["production"]["percentage_of_actors"], 25);
    }

    #[test]
    fn a_flow_collection_s_span_ends_past_its_closing_bracket() {
        let text = "a: [x, y] # c\nb: {k: v}\nc: []\nd:\n  - x\n";
        let document = parse(text).unwrap();
        let spanned = |pointer: &str| {
            let span = document.index.get(pointer).unwrap().value;
            &text[span.byte_range(text)]
        };
        assert_eq!(spanned("/a"), "[x, y]");
        assert_eq!(spanned("/b"), "{k: v}");
        assert_eq!(spanned("/c"), "[]");
        assert_eq!(spanned("/d/0"), "x");
    }

    #[test]
    fn parse_keeps_yaml_1_2_scalars() {
        let document = parse("a: yes\nb: 14.10\nc: '14.10'\nd: 014\n").unwrap();
        assert_eq!(document.value["a"], "yes");
        assert_eq!(document.value["b"], 14.1);
        assert_eq!(document.value["c"], "14.10");
        assert!(document.value["d"].is_number());
    }

    #[test]
    fn parse_rejects_duplicate_keys() {
        let diagnostic = parse("name: a\nname: b\n").unwrap_err();
        assert_eq!(diagnostic.check, "duplicate-key");
        assert_eq!((diagnostic.span.line, diagnostic.span.column), (2, 1));
    }

    /// The value the full path builds through saphyr's tree, for comparison with the direct one.
    fn full(text: &str) -> Result<Value, Box<Diagnostic>> {
        let file = SourceFile {
            path: "f.yml".into(),
            text: text.to_string(),
        };
        convert_document(&file, None)
    }

    #[test]
    fn direct_value_builds_plain_data_as_the_full_path_does() {
        let text = "name: a\nempty:\nlist: [1, -2.5, 'x', \"y\", ~, true, yes, 0x1F]\nnested:\n  - k: |\n      two\n      lines\n    n: null\n";
        let direct = direct_value(text).expect("plain data is built directly");
        assert_eq!(direct, full(text).unwrap());
        assert_eq!(direct["list"][6], "yes");
        assert_eq!(direct["list"][7], 31);
        assert!(direct["empty"].is_null());
        // The keys keep the document's order.
        let keys: Vec<&String> = direct.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["name", "empty", "list", "nested"]);
    }

    #[test]
    fn direct_value_leaves_everything_else_to_the_full_path() {
        for text in [
            "",
            "# only a comment\n",
            "a: 1\na: 2\n",
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: !!set {b: null}\n",
            "1: a\n",
            "true: a\n",
            "? [a]\n: b\n",
            "a: 1\n---\nb: 2\n",
            "---\n...\n---\na: 1\n",
            "a: .inf\n",
            "a: [1, 2\n",
            "a: 'open\n",
        ] {
            assert_eq!(direct_value(text), None, "{text:?}");
        }
        let deep = format!("{}1{}", "[".repeat(DEPTH_LIMIT + 1), "]".repeat(DEPTH_LIMIT + 1));
        assert_eq!(direct_value(&deep), None);
    }

    #[test]
    fn pointer_escapes_slash_and_tilde() {
        assert_eq!(push_pointer("/a", "b/c~d"), "/a/b~1c~0d");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        // Any text, YAML or not, gives a document or a diagnostic: never a panic, and every
        // position the index gives lies in the text.
        // Whatever the direct build accepts, the full path reads to the same value.
        #[test]
        fn direct_value_agrees_with_the_full_path(text in "\\PC{0,120}|[-:{}\\[\\],\"'!&*#|>?%@` \n\ta-z0-9\\\\]{0,160}|([a-c]{1,2}: ?([0-9a-c~.-]{0,3}|\\[[0-9a-c, ]{0,8}\\]|\\{[a-c0-9:, ]{0,8}\\}|'[a-c]{0,2}')?\n( {2,4}(- )?)?){0,8}") {
            if let Some(value) = direct_value(&text) {
                proptest::prop_assert_eq!(Some(value), full(&text).ok());
            }
        }

        #[test]
        fn parse_yaml_never_panics(text in "\\PC{0,120}|[-:{}\\[\\],\"'!&*#|>?%@` \n\ta-z0-9\\\\]{0,160}") {
            match parse(&text) {
                Ok(document) => {
                    let span = document.index.value_span("/a/0/b");
                    let _ = span.byte_range(&text);
                }
                Err(diagnostic) => {
                    let _ = diagnostic.span.byte_range(&text);
                }
            }
        }
    }
}

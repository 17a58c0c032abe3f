//! Emergency holds: which flags a sync must leave as an emergency change set them.
//!
//! `flagops set ... --emergency` applies a change at once and stores a `backends::Hold` with the
//! fingerprint of the flag's reviewed definition at that moment. A sync compares it with the
//! fingerprint of the flag in the registry it applies: equal means git has not changed the flag
//! since the emergency, so the flag stays as the store holds it; different means a reviewed
//! change (the emergency's own edit, merged, or another one) has reached the registry, so the
//! hold is released and the flag synced as usual. This module is pure: it needs no git.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::backends::Hold;
use crate::model::{FlagFile, Registry};
use crate::source::SourceFile;
use crate::state::EnvironmentState;

/// The holds a sync keeps and those it releases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Holds whose flag git has not changed since the emergency: the flag is left alone.
    pub held: Vec<Hold>,
    /// Holds whose flag a reviewed change has reached (or left) the registry since: removed, and
    /// the flag synced as usual.
    pub released: Vec<Hold>,
}

/// The fingerprint of a flag's definition: the SHA-256 of its parsed document as canonical JSON
/// (keys sorted, no spaces), in hex. Comments and layout do not change it; any value does.
pub fn fingerprint(file: &FlagFile) -> String {
    let source = SourceFile {
        path: file.path.clone(),
        text: file.index.text().to_string(),
    };
    let canonical = match crate::source::parse_yaml(&source) {
        Ok(document) => canonical_json(&document.value),
        // A file in the registry has parsed once already; should it not parse again, its text
        // still identifies it.
        Err(_) => source.text,
    };
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `value` as JSON with every object's keys sorted, so that equal data gives equal text.
fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let ordered: BTreeMap<&String, Value> = map.iter().map(|(key, value)| (key, sorted(value))).collect();
                Value::Object(ordered.into_iter().map(|(key, value)| (key.clone(), value)).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// Sorts `holds` into held and released against the flags of `registry`.
pub fn decide(holds: &BTreeMap<String, Hold>, registry: &Registry) -> Decision {
    let mut decision = Decision::default();
    for (flag, hold) in holds {
        let current = registry
            .flags
            .iter()
            .find(|file| &file.flag.name == flag)
            .map(fingerprint);
        if current.as_deref() == Some(hold.fingerprint.as_str()) {
            decision.held.push(hold.clone());
        } else {
            decision.released.push(hold.clone());
        }
    }
    decision
}

/// Makes `desired` ask for what `actual` holds for every held flag, so that no change is planned
/// for it, whatever the registry or a rollout step that became due says.
pub fn pin(desired: &mut EnvironmentState, actual: &EnvironmentState, held: &[Hold]) {
    for hold in held {
        match actual.get(&hold.flag) {
            Some(state) => desired.insert(hold.flag.clone(), state.clone()),
            None => desired.remove(&hold.flag),
        };
    }
}

/// The fingerprint a new emergency change to a flag records: the existing hold's, when the flag
/// is held already, since a hold outlives only syncs that saw no change to the flag, so git
/// still has the definition it names (the registry at hand may hold the first emergency's
/// unmerged edit); otherwise the definition's at hand.
pub fn fingerprint_for(existing: Option<&Hold>, at_hand: &str) -> String {
    existing.map_or_else(|| at_hand.to_string(), |hold| hold.fingerprint.clone())
}

/// `held by an emergency change: ada at 2026-01-02T03:04:05Z: INC-123: errors (!42)`.
pub fn describe(hold: &Hold) -> String {
    let mut text = format!(
        "held by an emergency change: {} at {}: {}",
        hold.by,
        crate::plan::render::time(&hold.at),
        hold.reason
    );
    if let Some(merge_request) = &hold.merge_request {
        text.push_str(&format!(" ({merge_request})"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Stored;

    fn hold(flag: &str, fingerprint: &str) -> Hold {
        Hold {
            flag: flag.into(),
            state: Some(Stored::Boolean(false)),
            by: "ada".into(),
            at: "2026-01-02T03:04:05Z".into(),
            reason: "INC-1: errors".into(),
            fingerprint: fingerprint.into(),
            merge_request: None,
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"d":[{"y":1,"x":2}],"c":null}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"c":null,"d":[{"x":2,"y":1}]},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(canonical_json(&a), r#"{"a":{"c":null,"d":[{"x":2,"y":1}]},"b":1}"#);
    }

    #[test]
    fn pin_keeps_what_the_store_holds() {
        let on = Stored::Boolean(true);
        let off = Stored::Boolean(false);
        let mut desired: EnvironmentState = [("a".into(), on.clone()), ("b".into(), on.clone())].into();
        let actual: EnvironmentState = [("a".into(), off.clone())].into();
        pin(&mut desired, &actual, &[hold("a", "f"), hold("b", "f")]);
        assert_eq!(desired, [("a".into(), off)].into());
    }

    #[test]
    fn a_second_emergency_keeps_the_first_fingerprint() {
        assert_eq!(fingerprint_for(Some(&hold("a", "first")), "edited"), "first");
        assert_eq!(fingerprint_for(None, "at-hand"), "at-hand");
    }

    #[test]
    fn describe_names_who_when_why_and_the_merge_request() {
        let mut held = hold("a", "f");
        assert_eq!(
            describe(&held),
            "held by an emergency change: ada at 2026-01-02T03:04:05Z: INC-1: errors"
        );
        held.merge_request = Some("!42".into());
        assert!(describe(&held).ends_with("errors (!42)"));
    }
}

//! The state of flags in an environment, exactly Flipper's model as GitLab stores it.
//!
//! A flag in an environment is absent (nothing stored: the application falls back to
//! `default_enabled`), a boolean (the boolean gate, which clears every other gate), or a set of
//! gates that open together. Percentages are kept in thousandths, so equality is exact.
//! This module is pure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model;

/// The stored state of one flag in one environment; absence is the flag missing from the map.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stored {
    /// On or off for everyone.
    Boolean(bool),
    /// On for an actor when any gate opens.
    Gates(GateSet),
}

/// Flipper's non-boolean gates.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSet {
    /// Percentage of actors, in thousandths of a percent (25% is 25,000).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "percentage")]
    pub percentage_of_actors: Option<u32>,
    /// Percentage of time, in thousandths of a percent.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "percentage")]
    pub percentage_of_time: Option<u32>,
    /// Actors, as `kind:id` (such as `project:gitlab-org/gitlab`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub actors: BTreeSet<Actor>,
    /// Flipper feature groups.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub groups: BTreeSet<String>,
}

/// An actor: its kind (a key of `actor_kinds`) and its id or full path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Actor {
    /// The kind, such as `project`.
    pub kind: String,
    /// The id or full path, such as `gitlab-org/gitlab` or `42`.
    pub id: String,
}

/// The state of every flag stored in one environment.
pub type EnvironmentState = BTreeMap<String, Stored>;

impl Stored {
    /// Converts a state as written in a flag file; percentages there have at most three decimals
    /// (the `percentage-precision` check), so the conversion is exact.
    pub fn from_model(state: &model::State) -> Stored {
        match state {
            model::State::Boolean(on) => Stored::Boolean(*on),
            model::State::Gates(gates) => Stored::Gates(GateSet {
                percentage_of_actors: gates.percentage_of_actors.map(to_thousandths),
                percentage_of_time: gates.percentage_of_time.map(to_thousandths),
                actors: gates
                    .actors
                    .iter()
                    .flat_map(|(kind, ids)| {
                        ids.iter().map(move |id| Actor {
                            kind: kind.clone(),
                            id: id.0.clone(),
                        })
                    })
                    .collect(),
                groups: gates.groups.iter().cloned().collect(),
            }),
        }
    }
}

/// The state a flag file writes for `stored`, spelled as `current` (the file's state) spells it
/// where it can: an actor of `current` that is one of `stored`'s, as written or once `canonical`
/// puts it in the backend's terms, keeps its spelling and its place, and so does a group; the
/// others follow in order, as `stored` spells them.
pub fn file_state(
    stored: &Stored,
    current: Option<&model::State>,
    canonical: &mut dyn FnMut(&Actor) -> Option<Actor>,
) -> model::State {
    let gates = match stored {
        Stored::Boolean(on) => return model::State::Boolean(*on),
        Stored::Gates(gates) => gates,
    };
    let written = match current {
        Some(model::State::Gates(written)) => Some(written),
        _ => None,
    };
    let mut left: BTreeSet<&Actor> = gates.actors.iter().collect();
    let mut actors: BTreeMap<String, Vec<model::ActorId>> = BTreeMap::new();
    for (kind, ids) in written.map(|written| &written.actors).into_iter().flatten() {
        for id in ids {
            let actor = Actor {
                kind: kind.clone(),
                id: id.0.clone(),
            };
            let same = if left.contains(&actor) {
                Some(actor)
            } else {
                canonical(&actor).filter(|found| left.contains(found))
            };
            if let Some(same) = same {
                left.remove(&same);
                actors.entry(kind.clone()).or_default().push(id.clone());
            }
        }
    }
    for actor in left {
        actors
            .entry(actor.kind.clone())
            .or_default()
            .push(model::ActorId(actor.id.clone()));
    }
    let mut groups: Vec<String> = written
        .map(|written| {
            written
                .groups
                .iter()
                .filter(|group| gates.groups.contains(*group))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    for group in &gates.groups {
        if !groups.contains(group) {
            groups.push(group.clone());
        }
    }
    let percentage = |thousandths: u32| f64::from(thousandths) / 1000.0;
    model::State::Gates(Box::new(model::Gates {
        percentage_of_actors: gates.percentage_of_actors.map(percentage),
        percentage_of_time: gates.percentage_of_time.map(percentage),
        actors,
        groups,
    }))
}

impl GateSet {
    /// Whether no gate is open: Flipper's `off` state.
    pub fn is_empty(&self) -> bool {
        self.percentage_of_actors.is_none_or(|p| p == 0)
            && self.percentage_of_time.is_none_or(|p| p == 0)
            && self.actors.is_empty()
            && self.groups.is_empty()
    }
}

/// How far a flag's state reaches: off, conditional gates, or fully on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    /// Nobody: `false`, gates that open for nobody, or nothing stored with `default_enabled: false`.
    Off,
    /// Whoever a gate opens for.
    Conditional,
    /// Everybody: `true`, or nothing stored with `default_enabled: true`.
    On,
}

/// A flag's reach in one environment; nothing stored falls back to `default_enabled`.
pub fn reach(state: Option<&Stored>, default_enabled: bool) -> Reach {
    match state {
        None if default_enabled => Reach::On,
        None | Some(Stored::Boolean(false)) => Reach::Off,
        Some(Stored::Boolean(true)) => Reach::On,
        Some(Stored::Gates(gates)) if gates.is_empty() => Reach::Off,
        Some(Stored::Gates(_)) => Reach::Conditional,
    }
}

/// Whether going from `before` to `after` gives the flag to someone who did not have it: a
/// higher reach, or, between two conditional states, a higher percentage of actors or of time,
/// or an actor or group added.
///
/// This is the one definition of a change that widens exposure: a change that does not widen
/// it reduces exposure or leaves it as it was, and is what a rollback, a kill switch, a change
/// lock and a sync after an earlier environment failed let through. A mixed change (a
/// percentage lowered while an actor is added) widens.
pub fn widens(before: Option<&Stored>, after: Option<&Stored>, default_enabled: bool) -> bool {
    let (from, to) = (reach(before, default_enabled), reach(after, default_enabled));
    if from != to {
        return to > from;
    }
    match (before, after) {
        (Some(Stored::Gates(before)), Some(Stored::Gates(after))) => {
            after.percentage_of_actors.unwrap_or(0) > before.percentage_of_actors.unwrap_or(0)
                || after.percentage_of_time.unwrap_or(0) > before.percentage_of_time.unwrap_or(0)
                || !after.actors.is_subset(&before.actors)
                || !after.groups.is_subset(&before.groups)
        }
        _ => false,
    }
}

/// Whether going from `before` to `after` takes the flag away from anyone: exactly when going
/// back would give it to them.
pub fn narrows(before: Option<&Stored>, after: Option<&Stored>, default_enabled: bool) -> bool {
    widens(after, before, default_enabled)
}

/// How many percentage points of actors and of time a state opens to, in thousandths: `true`
/// is 100% of both, off and actors or groups alone 0%.
pub fn percentages(state: Option<&Stored>, default_enabled: bool) -> (u32, u32) {
    match (reach(state, default_enabled), state) {
        (Reach::On, _) => (100_000, 100_000),
        (Reach::Conditional, Some(Stored::Gates(gates))) => (
            gates.percentage_of_actors.unwrap_or(0),
            gates.percentage_of_time.unwrap_or(0),
        ),
        _ => (0, 0),
    }
}

fn to_thousandths(percentage: f64) -> u32 {
    (percentage * 1000.0).round().clamp(0.0, 100_000.0) as u32
}

impl GateSet {
    /// Each open gate in words, percentages first: `25% of actors`, `project:gitlab-org/gitlab`,
    /// `group gitlab_team_members`; `Stored`'s `Display` joins them.
    pub fn parts(&self) -> Vec<String> {
        let mut parts = Vec::new();
        if let Some(p) = self.percentage_of_actors {
            parts.push(format!("{}% of actors", percent(p)));
        }
        if let Some(p) = self.percentage_of_time {
            parts.push(format!("{}% of time", percent(p)));
        }
        parts.extend(self.actors.iter().map(ToString::to_string));
        parts.extend(self.groups.iter().map(|group| format!("group {group}")));
        parts
    }
}

/// Formats thousandths of a percent as a percentage (`12.5`).
pub fn percent(thousandths: u32) -> String {
    let whole = thousandths / 1000;
    let fraction = thousandths % 1000;
    if fraction == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{fraction:03}").trim_end_matches('0').to_string()
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.id)
    }
}

impl Serialize for Actor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let (kind, id) = text
            .split_once(':')
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not `kind:id`")))?;
        Ok(Actor {
            kind: kind.to_string(),
            id: id.to_string(),
        })
    }
}

impl fmt::Display for Stored {
    /// `true`, `false`, or the open gates: `25% of actors, project:gitlab-org/gitlab`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stored::Boolean(on) => write!(f, "{on}"),
            Stored::Gates(gates) => {
                let parts = gates.parts();
                if parts.is_empty() {
                    write!(f, "no gates")
                } else {
                    write!(f, "{}", parts.join(", "))
                }
            }
        }
    }
}

/// Serializes percentages in thousandths as plain numbers (`12.5`), as flag files write them.
mod percentage {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Option<u32>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(thousandths) if thousandths % 1000 == 0 => serializer.serialize_u32(thousandths / 1000),
            Some(thousandths) => serializer.serialize_f64(f64::from(*thousandths) / 1000.0),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
        let value = Option::<f64>::deserialize(deserializer)?;
        match value {
            Some(p) if (0.0..=100.0).contains(&p) => Ok(Some((p * 1000.0).round() as u32)),
            Some(p) => Err(serde::de::Error::custom(format!(
                "{p} is not a percentage from 0 to 100"
            ))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_round_trips_through_json() {
        let stored = Stored::Gates(GateSet {
            percentage_of_actors: Some(12_500),
            percentage_of_time: None,
            actors: [Actor {
                kind: "project".into(),
                id: "gitlab-org/gitlab".into(),
            }]
            .into(),
            groups: ["gitlab_team_members".to_string()].into(),
        });
        let json = serde_json::to_string(&stored).unwrap();
        assert_eq!(
            json,
            r#"{"percentage_of_actors":12.5,"actors":["project:gitlab-org/gitlab"],"groups":["gitlab_team_members"]}"#
        );
        assert_eq!(serde_json::from_str::<Stored>(&json).unwrap(), stored);
        assert_eq!(serde_json::from_str::<Stored>("false").unwrap(), Stored::Boolean(false));
        assert_eq!(
            stored.to_string(),
            "12.5% of actors, project:gitlab-org/gitlab, group gitlab_team_members"
        );
    }

    fn actors(thousandths: u32) -> Stored {
        Stored::Gates(GateSet {
            percentage_of_actors: Some(thousandths),
            ..GateSet::default()
        })
    }

    #[test]
    fn widens_and_narrows_are_mirror_images() {
        let (off, on) = (Stored::Boolean(false), Stored::Boolean(true));
        assert!(widens(Some(&off), Some(&on), false));
        assert!(widens(None, Some(&actors(1)), false));
        assert!(
            !widens(None, Some(&off), false),
            "nothing stored and false both reach nobody"
        );
        assert!(
            widens(Some(&off), None, true),
            "nothing stored falls back to default_enabled"
        );
        assert!(narrows(Some(&on), Some(&actors(99_000)), false));
        assert!(!widens(Some(&on), Some(&actors(99_000)), false));
        // A lower percentage with an actor added takes from some and gives to others.
        let mut mixed = GateSet {
            percentage_of_actors: Some(10_000),
            ..GateSet::default()
        };
        mixed.actors.insert(Actor {
            kind: "project".into(),
            id: "a".into(),
        });
        let mixed = Stored::Gates(mixed);
        assert!(widens(Some(&actors(25_000)), Some(&mixed), false));
        assert!(narrows(Some(&actors(25_000)), Some(&mixed), false));
        assert!(!widens(Some(&actors(25_000)), Some(&actors(25_000)), false));
        assert_eq!(percentages(Some(&on), false), (100_000, 100_000));
        assert_eq!(percentages(Some(&mixed), false), (10_000, 0));
        assert_eq!(percentages(None, true), (100_000, 100_000));
    }

    #[test]
    fn percent_formats_thousandths() {
        assert_eq!(percent(25_000), "25");
        assert_eq!(percent(12_500), "12.5");
        assert_eq!(percent(1), "0.001");
    }
}

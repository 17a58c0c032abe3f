//! The registry's data: flags as people write them, and the registry they form.
//!
//! These are the input types: strict (`deny_unknown_fields`), deserialized only from data the
//! JSON Schema has already accepted. This module is pure: no I/O, clock or environment.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::config::Config;
use crate::source::PointerIndex;

/// One flag, as written in its file.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    /// The flag's name, equal to the file stem.
    pub name: String,
    /// What the flag guards.
    /// Empty only when listed under `todo`.
    #[serde(default)]
    pub description: String,
    /// The flag type, a key of `types` in the config.
    #[serde(rename = "type")]
    pub flag_type: String,
    /// The owning product group label.
    /// Empty only when listed under `todo`.
    #[serde(default)]
    pub group: String,
    /// The people answerable for the flag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<String>,
    /// The milestone that introduced the flag, such as `17.10`.
    /// Empty only when listed under `todo`.
    #[serde(default)]
    pub milestone: String,
    /// The feature's issue or epic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_issue_url: Option<String>,
    /// The merge request that introduced the flag.
    /// Empty only when listed under `todo`.
    #[serde(default)]
    pub introduced_by_url: String,
    /// The rollout issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_issue_url: Option<String>,
    /// The value used where nothing is stored.
    pub default_enabled: bool,
    /// Whether GitLab logs the flag's state on every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_state_changes: Option<bool>,
    /// The date the flag should be fully rolled out by (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intended_to_rollout_by: Option<String>,
    /// Flags that must be fully on wherever this one is on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// The desired state per environment: a state, or `absent` (nothing stored, and a sync
    /// deletes what is); an environment left out is not managed there (a sync leaves what it
    /// holds alone, unless it prunes).
    #[serde(default, skip_serializing_if = "Environments::is_empty")]
    pub environments: Environments,
    /// Steps that change the desired state over time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollout: Vec<RolloutStep>,
    /// The metric guard of every step of the plan that names none (a key of `guards` in the
    /// config); left out, the flag type's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
    /// What a breached guard does to the plan's steps that say nothing; left out, `hold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_breach: Option<OnBreach>,
    /// Recorded exceptions to rollout policies: check id → why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, String>,
    /// Values still to be decided: key → what its owner must decide. A key listed here may be
    /// missing (empty in the model) even when the schema requires it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub todo: BTreeMap<String, String>,
}

/// The stored state of a flag in one environment: a boolean or a set of Flipper gates.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum State {
    /// The boolean gate: on or off for everyone.
    Boolean(bool),
    /// Gates that open together: on for an actor when any opens. Boxed: a state is a map's
    /// value in every rollout step, and a map node holds room for eleven of them.
    Gates(Box<Gates>),
}

/// A flag's `environments`: the states it sets, by environment, and the environments it
/// explicitly wants absent (`production: absent`).
///
/// It reads as the map of states (`Deref`), so an `absent` entry looks like no entry to
/// everything that only asks what is stored (evaluation, the site, policies); only what deletes
/// (the plan) and what edits entries ask `is_absent`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Environments {
    states: BTreeMap<String, State>,
    absent: BTreeSet<String>,
}

/// The one word a flag file writes for an explicitly absent state.
pub const ABSENT: &str = "absent";

impl Environments {
    /// Whether the flag names no environment at all.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty() && self.absent.is_empty()
    }

    /// Whether the flag file writes `<environment>: absent`.
    pub fn is_absent(&self, environment: &str) -> bool {
        self.absent.contains(environment)
    }

    /// Whether the flag file has any entry for `environment`, a state or `absent`.
    pub fn has_entry(&self, environment: &str) -> bool {
        self.states.contains_key(environment) || self.absent.contains(environment)
    }

    /// The environments the flag file writes `absent` for.
    pub fn absent(&self) -> impl Iterator<Item = &str> {
        self.absent.iter().map(String::as_str)
    }

    /// Sets the entry of `environment` to `state`.
    pub fn insert(&mut self, environment: String, state: State) {
        self.absent.remove(&environment);
        self.states.insert(environment, state);
    }

    /// Sets the entry of `environment` to `absent`.
    pub fn set_absent(&mut self, environment: String) {
        self.states.remove(&environment);
        self.absent.insert(environment);
    }

    /// Removes the entry of `environment`, whatever it is.
    pub fn remove(&mut self, environment: &str) {
        self.states.remove(environment);
        self.absent.remove(environment);
    }
}

impl std::ops::Deref for Environments {
    type Target = BTreeMap<String, State>;

    fn deref(&self) -> &Self::Target {
        &self.states
    }
}

impl<'a> IntoIterator for &'a Environments {
    type Item = (&'a String, &'a State);
    type IntoIter = std::collections::btree_map::Iter<'a, String, State>;

    fn into_iter(self) -> Self::IntoIter {
        self.states.iter()
    }
}

impl FromIterator<(String, State)> for Environments {
    fn from_iter<I: IntoIterator<Item = (String, State)>>(iter: I) -> Self {
        Environments {
            states: iter.into_iter().collect(),
            absent: BTreeSet::new(),
        }
    }
}

impl<const N: usize> From<[(String, State); N]> for Environments {
    fn from(entries: [(String, State); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl<'de> Deserialize<'de> for Environments {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvironmentsVisitor)
    }
}

struct EnvironmentsVisitor;

impl<'de> Visitor<'de> for EnvironmentsVisitor {
    type Value = Environments;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a map of environments to states")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Environments, A::Error> {
        let mut environments = Environments::default();
        while let Some(environment) = map.next_key::<String>()? {
            match map.next_value_seed(EntryVisitor { absent: true })? {
                Some(state) => environments.insert(environment, state),
                None => environments.set_absent(environment),
            }
        }
        Ok(environments)
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        EntryVisitor { absent: false }
            .deserialize(deserializer)?
            .ok_or_else(|| serde::de::Error::custom("a state cannot be `absent` here"))
    }
}

/// Reads a state, or (where `absent` allows it) the word `absent` as `None`, by the data's own
/// kind: a boolean or a map of gates. Written out rather than derived as an untagged enum, which
/// buffers every state before trying each form: states are most of a registry's nodes.
struct EntryVisitor {
    absent: bool,
}

impl EntryVisitor {
    /// The forms a state may take here, in words.
    fn forms(&self) -> String {
        if self.absent {
            format!("`true`, `false`, gates or `{ABSENT}`")
        } else {
            "`true`, `false` or gates".to_string()
        }
    }
}

impl<'de> DeserializeSeed<'de> for EntryVisitor {
    type Value = Option<State>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<State>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = Option<State>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(&self.forms())
    }

    fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<Option<State>, E> {
        Ok(Some(State::Boolean(value)))
    }

    fn visit_str<E: serde::de::Error>(self, word: &str) -> Result<Option<State>, E> {
        if self.absent && word == ABSENT {
            return Ok(None);
        }
        Err(E::custom(format!("`{word}` is not a state: write {}", self.forms())))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<State>, A::Error> {
        let gates = Gates::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(Some(State::Gates(Box::new(gates))))
    }
}

impl Serialize for Environments {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut names: Vec<&String> = self.states.keys().chain(&self.absent).collect();
        names.sort();
        let mut map = serializer.serialize_map(Some(names.len()))?;
        for name in names {
            match self.states.get(name) {
                Some(state) => map.serialize_entry(name, state)?,
                None => map.serialize_entry(name, ABSENT)?,
            }
        }
        map.end()
    }
}

/// A conditional state: Flipper's non-boolean gates.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    /// Percentage of actors, 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage_of_actors: Option<f64>,
    /// Percentage of time, 0 to 100 (deprecated in GitLab).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage_of_time: Option<f64>,
    /// Actors by kind (kinds sorted), ids in file order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub actors: BTreeMap<String, Vec<ActorId>>,
    /// Flipper feature groups, in file order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// An actor's id or full path, as written (`123` or `gitlab-org/gitlab`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ActorId(pub String);

/// One step of a rollout plan: its fields, and every other key an environment's state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RolloutStep {
    /// An absolute time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// A duration after the previous step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Marks a deliberate reduction of exposure.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
    /// Why the step exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The metric guard that must be healthy before the step takes effect; left out, the flag's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
    /// What a breached guard does instead of the step; left out, the flag's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_breach: Option<OnBreach>,
    /// The states the step sets, by environment.
    #[serde(flatten)]
    pub environments: BTreeMap<String, State>,
}

impl<'de> Deserialize<'de> for RolloutStep {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(StepVisitor)
    }
}

/// Reads a step's own fields by name and every other key as an environment's state: what
/// `#[serde(flatten)]` does, without buffering the whole step first.
struct StepVisitor;

impl<'de> Visitor<'de> for StepVisitor {
    type Value = RolloutStep;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a rollout step")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RolloutStep, A::Error> {
        let mut step = RolloutStep {
            at: None,
            after: None,
            rollback: false,
            note: None,
            guard: None,
            on_breach: None,
            environments: BTreeMap::new(),
        };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "at" => step.at = map.next_value()?,
                "after" => step.after = map.next_value()?,
                "rollback" => step.rollback = map.next_value()?,
                "note" => step.note = map.next_value()?,
                "guard" => step.guard = map.next_value()?,
                "on_breach" => step.on_breach = map.next_value()?,
                _ => {
                    let state = map.next_value()?;
                    step.environments.insert(key, state);
                }
            }
        }
        Ok(step)
    }
}

/// What a breached metric guard does instead of the step it guards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBreach {
    /// The step waits: the environment keeps the step before it.
    #[default]
    Hold,
    /// The flag's `environments` entry is applied at once, and the plan stops there until the
    /// guarded step is edited.
    Rollback,
}

/// A flag together with where it came from.
#[derive(Clone, Debug)]
pub struct FlagFile {
    /// The file, as shown to users.
    pub path: PathBuf,
    /// The folder holding the file, relative to the flags directory and `/`-separated (empty at
    /// its top): where the file sits, whatever the working directory.
    pub folder: String,
    /// Where each field sits in the file.
    pub index: PointerIndex,
    /// The flag.
    pub flag: Flag,
    /// The time each step of the flag's rollout plan takes effect, or why it has none
    /// ([`crate::resolve::step_times`]), worked out once when the file is read: the checks and
    /// every environment of a sync ask for them again and again.
    pub times: Vec<Result<jiff::Timestamp, crate::resolve::StepTimeError>>,
}

impl FlagFile {
    /// `flag` as if read from `flags/<name>.yml`, with no index: the unit tests' registries.
    #[cfg(test)]
    pub(crate) fn of(flag: Flag) -> FlagFile {
        FlagFile {
            path: format!("flags/{}.yml", flag.name).into(),
            folder: String::new(),
            index: Default::default(),
            times: crate::resolve::step_times(&flag.rollout),
            flag,
        }
    }
}

/// Every flag of the registry with its config.
#[derive(Clone, Debug)]
pub struct Registry {
    /// The registry's configuration.
    pub config: Config,
    /// The flags that passed the schema, sorted by path.
    pub flags: Vec<FlagFile>,
    /// The directory the flags were read from, as shown to users.
    pub flags_dir: PathBuf,
    /// Flag files that could not be read, by file stem, so cross-file checks know them.
    pub unreadable: BTreeMap<String, Vec<PathBuf>>,
    /// The position in `flags` of the first file defining each name, built on the first lookup,
    /// so that looking up every flag of a large registry by name stays linear.
    by_name: OnceLock<HashMap<String, usize>>,
}

impl Registry {
    /// The example configuration with `flags`, as if read from `flags/`: the unit tests'
    /// registries.
    #[cfg(test)]
    pub(crate) fn of_example(config: Config, flags: Vec<Flag>) -> Registry {
        Registry::new(
            config,
            flags.into_iter().map(FlagFile::of).collect(),
            "flags".into(),
            BTreeMap::new(),
        )
    }

    /// A registry of `flags`, sorted by path, read from `flags_dir`.
    pub fn new(
        config: Config,
        flags: Vec<FlagFile>,
        flags_dir: PathBuf,
        unreadable: BTreeMap<String, Vec<PathBuf>>,
    ) -> Registry {
        Registry {
            config,
            flags,
            flags_dir,
            unreadable,
            by_name: OnceLock::new(),
        }
    }

    /// Whether any file, readable or not, defines `name`.
    pub fn knows(&self, name: &str) -> bool {
        self.unreadable.contains_key(name) || self.flag(name).is_some()
    }

    /// The flag named `name`, when a readable file defines it: the first such file in `flags`.
    pub fn flag(&self, name: &str) -> Option<&Flag> {
        let by_name = self.by_name.get_or_init(|| {
            let mut by_name = HashMap::with_capacity(self.flags.len());
            for (position, file) in self.flags.iter().enumerate() {
                by_name.entry(file.flag.name.clone()).or_insert(position);
            }
            by_name
        });
        let found = by_name.get(name).map(|&position| self.flags.get(position));
        match found {
            Some(Some(file)) if file.flag.name == name => Some(&file.flag),
            None if by_name.len() == self.flags.len() => None,
            // `flags` changed since the index was built: look the name up the slow way.
            _ => self.flags.iter().map(|file| &file.flag).find(|flag| flag.name == name),
        }
    }

    /// The name of every flag some file defines, readable or not.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.flags
            .iter()
            .map(|file| file.flag.name.as_str())
            .chain(self.unreadable.keys().map(String::as_str))
    }
}

#[cfg(test)]
impl Flag {
    /// A valid flag with no states, for unit tests.
    pub(crate) fn example(name: &str) -> Flag {
        Flag {
            name: name.to_string(),
            description: "d".to_string(),
            flag_type: "wip".to_string(),
            group: "group::g".to_string(),
            owners: Vec::new(),
            milestone: "17.10".to_string(),
            feature_issue_url: None,
            introduced_by_url: "https://example.test/1".to_string(),
            rollout_issue_url: None,
            default_enabled: false,
            log_state_changes: None,
            intended_to_rollout_by: None,
            requires: Vec::new(),
            environments: Environments::default(),
            rollout: Vec::new(),
            guard: None,
            on_breach: None,
            overrides: BTreeMap::new(),
            todo: BTreeMap::new(),
        }
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ActorId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Id(u64),
            Path(String),
        }
        Ok(ActorId(match Raw::deserialize(deserializer)? {
            Raw::Id(id) => id.to_string(),
            Raw::Path(path) => path,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(path: &str, text: String) -> crate::source::SourceFile {
        crate::source::SourceFile {
            path: path.into(),
            text,
        }
    }

    fn flag_text(name: &str) -> String {
        format!(
            "name: {name}\ndescription: A flag.\ntype: wip\ngroup: group::test\nmilestone: \"19.5\"\n\
             introduced_by_url: https://gitlab.com/gitlab-org/gitlab/-/merge_requests/1\ndefault_enabled: false\n"
        )
    }

    #[test]
    fn registry_looks_flags_up_by_name_even_after_flags_change() {
        let loaded = crate::load::load_sources(
            source("flagops.yml", include_str!("../flagops.yml").to_string()),
            vec![
                source("flags/wip/a.yml", flag_text("a")),
                source("flags/wip/b.yml", flag_text("b")),
            ],
            std::path::Path::new("flags"),
            &crate::load::LoadOptions::default(),
        );
        let mut registry = loaded.registry.expect("the config reads");
        assert_eq!(registry.flags.len(), 2, "{:?}", loaded.diagnostics);
        assert_eq!(registry.flag("b").map(|flag| flag.name.as_str()), Some("b"));
        assert!(registry.flag("c").is_none());
        assert!(registry.knows("a"));
        assert!(!registry.knows("c"));
        // The index was built by the lookups above; a flag added or moved since is still found.
        let mut added = registry.flags[0].clone();
        added.flag.name = "c".to_string();
        registry.flags.insert(0, added);
        assert_eq!(registry.flag("c").map(|flag| flag.name.as_str()), Some("c"));
        assert_eq!(registry.flag("b").map(|flag| flag.name.as_str()), Some("b"));
        registry.flags.remove(0);
        registry.flags.remove(0);
        assert!(registry.flag("a").is_none());
        assert!(registry.flag("b").is_some());
    }

    #[test]
    fn state_reads_boolean_and_gates() {
        let state: State = serde_json::from_value(serde_json::json!(true)).unwrap();
        assert_eq!(state, State::Boolean(true));
        let state: State = serde_json::from_value(serde_json::json!({
            "percentage_of_actors": 12.5,
            "actors": {"project": ["gitlab-org/gitlab", 42]}
        }))
        .unwrap();
        let State::Gates(gates) = state else {
            panic!("expected gates")
        };
        assert_eq!(gates.percentage_of_actors, Some(12.5));
        let projects: Vec<String> = gates.actors["project"].iter().map(ToString::to_string).collect();
        assert_eq!(projects, ["gitlab-org/gitlab", "42"]);
    }

    #[test]
    fn environments_read_absent_apart_from_states() {
        let environments: Environments =
            serde_json::from_value(serde_json::json!({"dev": true, "production": "absent"})).unwrap();
        assert!(environments.is_absent("production"));
        assert!(environments.has_entry("production"));
        assert!(environments.get("production").is_none());
        assert_eq!(environments.get("dev"), Some(&State::Boolean(true)));
        assert_eq!(
            serde_json::to_value(&environments).unwrap(),
            serde_json::json!({"dev": true, "production": "absent"})
        );
        assert!(serde_json::from_value::<Environments>(serde_json::json!({"dev": "off"})).is_err());
    }

    #[test]
    fn rollout_step_collects_environments() {
        let step: RolloutStep = serde_json::from_value(serde_json::json!({
            "after": "15m", "production": {"percentage_of_actors": 50}, "staging": true
        }))
        .unwrap();
        assert_eq!(step.after.as_deref(), Some("15m"));
        assert_eq!(step.environments.len(), 2);
    }
}

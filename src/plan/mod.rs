//! Plans: the changes that take one environment from its actual state to the desired one.
//!
//! `diff` is pure: it is given both states and never calls a backend. The GitLab ordering rules
//! live here too: `Change::operations` spells out the Features API calls a change needs, and
//! changes are ordered so that flags a dependant `requires` go on first and off last.

pub mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::graph::Graph;
use crate::state::{Actor, EnvironmentState, GateSet, Stored, percent};

/// What one environment needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The environment.
    pub environment: String,
    /// The changes, in the order they must be applied.
    pub changes: Vec<Change>,
    /// Flags stored in the environment but gone from the registry, left alone without `--prune`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept_orphans: Vec<String>,
    /// Flags stored in the environment whose file has no entry for it, left alone without
    /// `--prune`: only `<environment>: absent` deletes a flag the registry defines.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept_without_entry: Vec<String>,
    /// Flags the environment holds, never synced there, that this plan changes or deletes: the
    /// environment has no sync record, so its state was written by something else, and a sync
    /// refuses to change them without `--take-over`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub takeover: Vec<String>,
    /// Flags an emergency change holds: left as the environment holds them (`crate::hold`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<crate::backends::Hold>,
    /// Holds released because a reviewed change to their flag reached the registry; the plan
    /// syncs those flags as usual.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub released: Vec<crate::backends::Hold>,
    /// Where each rollout that sets the environment stands, given the store's step marks
    /// (`crate::steps`); a sync marks the steps that apply.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rollouts: Vec<crate::steps::Standing>,
    /// For reviewers (`plan --base`): every rollout step this change adds, removes or changes
    /// in the environment, with its blast radius (`crate::review`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<crate::review::StepChange>,
    /// For reviewers (`plan --base`): the blast radius of each change, by flag.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub radius: BTreeMap<String, crate::review::Radius>,
    /// When the environment's backend hashes actors differently from the one that last held
    /// its flags (its last sync's, or `--base`'s): the flags at a percentage of actors, which
    /// will open the same share but other actors (`crate::hashing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rehashed: Option<crate::hashing::Rehash>,
}

/// One flag's change in one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The flag.
    pub flag: String,
    /// Create, update or delete.
    pub action: Action,
    /// The state before; `None` for absent.
    pub from: Option<Stored>,
    /// The state after; `None` for absent.
    pub to: Option<Stored>,
    /// Whether the flag is gone from the registry (deleted because of `--prune`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub orphan: bool,
}

/// The kind of change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Nothing was stored; something will be.
    Create,
    /// The stored state changes.
    Update,
    /// The stored state is removed, so the application falls back to `default_enabled`.
    Delete,
}

/// One call of GitLab's Features API (or one Flipper adapter operation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "op", content = "value", rename_all = "snake_case")]
pub enum Operation {
    /// `DELETE /features/:name`: remove the flag and its gates.
    Remove,
    /// `value=true`: the boolean gate on; clears every other gate.
    Enable,
    /// `value=false`: the boolean gate off; clears every other gate, the flag stays stored.
    Disable,
    /// `value=N&key=percentage_of_actors`.
    PercentageOfActors(u32),
    /// `value=N&key=percentage_of_time`.
    PercentageOfTime(u32),
    /// `value=true&<kind>=<id>`.
    AddActor(Actor),
    /// `value=false&<kind>=<id>`.
    RemoveActor(Actor),
    /// `value=true&feature_group=<name>`.
    AddGroup(String),
    /// `value=false&feature_group=<name>`.
    RemoveGroup(String),
}

/// What the plan needs besides the two states.
#[derive(Clone, Debug, Default)]
pub struct DiffOptions<'a> {
    /// The flags of the registry: a flag stored but not here is an orphan.
    pub known: BTreeSet<&'a str>,
    /// The flags whose file writes `absent` for the environment: deleted where the desired state
    /// has none. Any other flag of the registry with no desired state is kept, like an orphan.
    pub absent: BTreeSet<&'a str>,
    /// Delete orphans, and flags of the registry with no entry for the environment.
    pub prune: bool,
    /// `requires` of each flag, for ordering.
    pub requires: BTreeMap<&'a str, Vec<&'a str>>,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Splits the plan into the changes that do not widen exposure, still in plan order, and
    /// those that do (`Change::widens`); `default_enabled` gives each flag's, `None` for a flag
    /// the registry does not define. A rollout step whose change is held back is not marked as
    /// applied.
    pub fn hold_widening(&self, default_enabled: impl Fn(&str) -> Option<bool>) -> (Plan, Vec<Change>) {
        let (widening, kept): (Vec<Change>, Vec<Change>) = self
            .changes
            .iter()
            .cloned()
            .partition(|change| change.widens(default_enabled(&change.flag)));
        let mut rollouts = self.rollouts.clone();
        for standing in &mut rollouts {
            if widening.iter().any(|change| change.flag == standing.flag) {
                standing.mark = None;
            }
        }
        let plan = Plan {
            environment: self.environment.clone(),
            changes: kept,
            kept_orphans: self.kept_orphans.clone(),
            kept_without_entry: self.kept_without_entry.clone(),
            takeover: self.takeover.clone(),
            held: self.held.clone(),
            released: self.released.clone(),
            rollouts,
            steps: self.steps.clone(),
            radius: self.radius.clone(),
            rehashed: self.rehashed.clone(),
        };
        (plan, widening)
    }

    /// The marks of the rollout steps that take effect: a sync records them once every change
    /// is applied.
    pub fn marks(&self) -> impl Iterator<Item = &crate::backends::StepMark> {
        self.rollouts.iter().filter_map(|standing| standing.mark.as_ref())
    }
}

/// The changes that make `actual` equal `desired` in `environment`.
pub fn diff(
    environment: &str,
    desired: &EnvironmentState,
    actual: &EnvironmentState,
    options: &DiffOptions<'_>,
) -> Plan {
    let mut changes = Vec::new();
    let mut kept_orphans = Vec::new();
    let mut kept_without_entry = Vec::new();
    for (flag, to) in desired {
        match actual.get(flag) {
            None => changes.push(Change {
                flag: flag.clone(),
                action: Action::Create,
                from: None,
                to: Some(to.clone()),
                orphan: false,
            }),
            Some(from) if from != to => changes.push(Change {
                flag: flag.clone(),
                action: Action::Update,
                from: Some(from.clone()),
                to: Some(to.clone()),
                orphan: false,
            }),
            Some(_) => {}
        }
    }
    for (flag, from) in actual {
        if desired.contains_key(flag) {
            continue;
        }
        let orphan = !options.known.contains(flag.as_str());
        if orphan && !options.prune {
            kept_orphans.push(flag.clone());
            continue;
        }
        if !orphan && !options.prune && !options.absent.contains(flag.as_str()) {
            kept_without_entry.push(flag.clone());
            continue;
        }
        changes.push(Change {
            flag: flag.clone(),
            action: Action::Delete,
            from: Some(from.clone()),
            to: None,
            orphan,
        });
    }
    order(&mut changes, &options.requires);
    Plan {
        environment: environment.to_string(),
        changes,
        kept_orphans,
        kept_without_entry,
        takeover: Vec::new(),
        held: Vec::new(),
        released: Vec::new(),
        rollouts: Vec::new(),
        steps: Vec::new(),
        radius: BTreeMap::new(),
        rehashed: None,
    }
}

impl Change {
    /// Whether the change gives the flag to someone who did not have it (`state::widens`):
    /// turning off, lowering a percentage and removing actors do not, and neither does a change
    /// that leaves exposure as it was. A flag the registry does not define (`None`) has no known
    /// `default_enabled`, so its change widens when it would with either value.
    pub fn widens(&self, default_enabled: Option<bool>) -> bool {
        let widens = |default| crate::state::widens(self.from.as_ref(), self.to.as_ref(), default);
        match default_enabled {
            Some(default) => widens(default),
            None => widens(false) || widens(true),
        }
    }

    /// The Features API calls that make this change, in order, following GitLab's rules: a
    /// boolean clears every other gate; a percentage cannot be set on a fully-on flag; a
    /// percentage can only be removed by clearing every gate (`value=0` disables the flag).
    pub fn operations(&self) -> Vec<Operation> {
        match (&self.from, &self.to) {
            (_, None) => vec![Operation::Remove],
            (_, Some(Stored::Boolean(true))) => vec![Operation::Enable],
            (_, Some(Stored::Boolean(false))) => vec![Operation::Disable],
            (None | Some(Stored::Boolean(false)), Some(Stored::Gates(to))) => set_all(to),
            (Some(Stored::Boolean(true)), Some(Stored::Gates(to))) => {
                let mut operations = vec![Operation::Disable];
                operations.extend(set_all(to));
                operations
            }
            (Some(Stored::Gates(from)), Some(Stored::Gates(to))) => {
                let drops_percentage = (from.percentage_of_actors.is_some() && to.percentage_of_actors.is_none())
                    || (from.percentage_of_time.is_some() && to.percentage_of_time.is_none());
                if drops_percentage {
                    let mut operations = vec![Operation::Disable];
                    operations.extend(set_all(to));
                    return operations;
                }
                let mut operations = Vec::new();
                operations.extend(from.actors.difference(&to.actors).cloned().map(Operation::RemoveActor));
                operations.extend(from.groups.difference(&to.groups).cloned().map(Operation::RemoveGroup));
                if to.percentage_of_actors != from.percentage_of_actors
                    && let Some(p) = to.percentage_of_actors
                {
                    operations.push(Operation::PercentageOfActors(p));
                }
                if to.percentage_of_time != from.percentage_of_time
                    && let Some(p) = to.percentage_of_time
                {
                    operations.push(Operation::PercentageOfTime(p));
                }
                operations.extend(to.actors.difference(&from.actors).cloned().map(Operation::AddActor));
                operations.extend(to.groups.difference(&from.groups).cloned().map(Operation::AddGroup));
                operations
            }
        }
    }
}

/// Every gate of `gates`, set one by one from nothing.
fn set_all(gates: &GateSet) -> Vec<Operation> {
    let mut operations = Vec::new();
    operations.extend(gates.percentage_of_actors.map(Operation::PercentageOfActors));
    operations.extend(gates.percentage_of_time.map(Operation::PercentageOfTime));
    operations.extend(gates.actors.iter().cloned().map(Operation::AddActor));
    operations.extend(gates.groups.iter().cloned().map(Operation::AddGroup));
    operations
}

/// How much a state exposes: absent and off 0, gates 1, on 2.
fn exposure(state: Option<&Stored>) -> u8 {
    match state {
        None | Some(Stored::Boolean(false)) => 0,
        Some(Stored::Gates(_)) => 1,
        Some(Stored::Boolean(true)) => 2,
    }
}

/// Orders changes: those reducing exposure first, dependants before what they require; then
/// the others, what is required before its dependants; by name within each group.
///
/// A flag's rank is the length of the longest `requires` chain below it, computed once for
/// every flag in linear time (flags in a cycle count as one).
fn order(changes: &mut [Change], requires: &BTreeMap<&str, Vec<&str>>) {
    let graph = Graph::new(
        requires
            .iter()
            .map(|(flag, required)| (*flag, required.iter().copied())),
    );
    let depths = graph.depths();
    let depth = |flag: &str| graph.node(flag).map_or(0, |node| depths[node]);
    changes.sort_by_cached_key(|change| {
        let down = exposure(change.to.as_ref()) < exposure(change.from.as_ref());
        let depth = depth(&change.flag);
        let rank = if down { (0, usize::MAX - depth) } else { (1, depth) };
        (rank, change.flag.clone())
    });
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::Remove => write!(f, "remove"),
            Operation::Enable => write!(f, "enable"),
            Operation::Disable => write!(f, "disable (clears every gate)"),
            Operation::PercentageOfActors(p) => write!(f, "set {}% of actors", percent(*p)),
            Operation::PercentageOfTime(p) => write!(f, "set {}% of time", percent(*p)),
            Operation::AddActor(actor) => write!(f, "add actor {actor}"),
            Operation::RemoveActor(actor) => write!(f, "remove actor {actor}"),
            Operation::AddGroup(group) => write!(f, "add group {group}"),
            Operation::RemoveGroup(group) => write!(f, "remove group {group}"),
        }
    }
}

/// `true`, `25% of actors`, or `(absent)`.
pub fn show(state: Option<&Stored>) -> String {
    state.map_or_else(|| "(absent)".to_string(), ToString::to_string)
}

/// A flag's state in words for people judging its effect: nothing stored names the
/// `default_enabled` the application falls back to.
pub fn show_effective(state: Option<&Stored>, default_enabled: bool) -> String {
    match state {
        None => format!("nothing stored (default_enabled: {default_enabled})"),
        Some(state) => state.to_string(),
    }
}

impl fmt::Display for Change {
    /// `+ name: (absent) → true`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.action {
            Action::Create => '+',
            Action::Update => '~',
            Action::Delete => '-',
        };
        write!(
            f,
            "{sign} {}: {} → {}",
            self.flag,
            show(self.from.as_ref()),
            show(self.to.as_ref())
        )?;
        if self.orphan {
            write!(f, " (not in the registry)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

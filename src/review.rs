//! What a change to the registry does, for its reviewers: every rollout step added, removed or
//! changed in an environment, with its time and state, and the blast radius of each change: the
//! percentage-point jump in exposure, and how many actors of the environment's sample switch on
//! or off, evaluated as `flagops eval` does (`crate::eval`).
//!
//! Steps of two versions of a plan are paired by time in each environment (the same time is the
//! same step, changed when its state differs), then by number among those left (a step moved to
//! another time); the rest are added or removed. This module is pure: it is handed both
//! registries and the samples.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

use crate::config::Config;
use crate::eval::{Outcome, Subject, evaluate};
use crate::model::{Flag, Registry};
use crate::resolve::step_times;
use crate::state::{Stored, percent};

/// One rollout step added, removed or changed in an environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepChange {
    /// The flag.
    pub flag: String,
    /// Added, removed or changed.
    pub kind: StepKind,
    /// The step's number in the plan that has it (the new plan, unless it was removed).
    pub step: usize,
    /// Its time (the new one, unless it was removed).
    pub at: Timestamp,
    /// Its time before, when a changed step moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_before: Option<Timestamp>,
    /// The state it sets (the new one, unless it was removed).
    pub state: Stored,
    /// The state it set before, when a changed step's state changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_before: Option<Stored>,
    /// Whether it is a rollback step.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
    /// What the step does to the state before it in its plan.
    pub radius: Radius,
}

/// How a step changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// New in this change.
    Added,
    /// Gone in this change.
    Removed,
    /// Its time, state or rollback mark changed.
    Changed,
}

/// The blast radius of going from one state to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Radius {
    /// The jump in exposure, in thousandths of a percentage point (+25 points is 25,000):
    /// on is 100%, off and nothing stored (unless `default_enabled`) 0%, a percentage of actors
    /// or of time its percentage.
    pub jump: i64,
    /// How many actors of the environment's sample switch, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<SampleCount>,
}

/// How many actors of a sample a change switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SampleCount {
    /// The actors in the sample.
    pub actors: usize,
    /// Off before, on after.
    pub switch_on: usize,
    /// On before, off after.
    pub switch_off: usize,
}

/// Every rollout step that differs between `base` and `head` in `environment`, in the order of
/// the flags and then of time, each with its blast radius on `sample` (Flipper ids).
pub fn step_changes(
    base: Option<&Registry>,
    head: &Registry,
    environment: &str,
    sample: Option<&[String]>,
) -> Vec<StepChange> {
    let mut changes = Vec::new();
    let mut names: Vec<&str> = head.names().collect();
    if let Some(base) = base {
        names.extend(base.names());
    }
    names.sort_unstable();
    names.dedup();
    for name in names {
        let old = base.and_then(|base| base.flag(name));
        let new = head.flag(name);
        let old_steps = old.map(|flag| environment_steps(flag, environment)).unwrap_or_default();
        let new_steps = new.map(|flag| environment_steps(flag, environment)).unwrap_or_default();
        let mut old_used = vec![false; old_steps.len()];
        let mut pairs: Vec<(Option<usize>, Option<usize>)> = Vec::new();
        let mut new_left = Vec::new();
        for (position, step) in new_steps.iter().enumerate() {
            match (0..old_steps.len()).find(|&o| !old_used[o] && old_steps[o].time == step.time) {
                Some(o) => {
                    old_used[o] = true;
                    pairs.push((Some(o), Some(position)));
                }
                None => new_left.push(position),
            }
        }
        for position in new_left {
            let number = new_steps[position].number;
            match (0..old_steps.len()).find(|&o| !old_used[o] && old_steps[o].number == number) {
                Some(o) => {
                    old_used[o] = true;
                    pairs.push((Some(o), Some(position)));
                }
                None => pairs.push((None, Some(position))),
            }
        }
        pairs.extend((0..old_steps.len()).filter(|&o| !old_used[o]).map(|o| (Some(o), None)));
        for pair in pairs {
            let change = match pair {
                (Some(o), Some(n)) => {
                    let (was, is) = (&old_steps[o], &new_steps[n]);
                    if was.time == is.time && was.state == is.state && was.rollback == is.rollback {
                        continue;
                    }
                    let flag = new.expect("a new step has its flag");
                    StepChange {
                        flag: name.to_string(),
                        kind: StepKind::Changed,
                        step: is.number,
                        at: is.time,
                        at_before: (was.time != is.time).then_some(was.time),
                        state: is.state.clone(),
                        state_before: (was.state != is.state).then(|| was.state.clone()),
                        rollback: is.rollback,
                        radius: radius(flag, &head.config, is.before.as_ref(), Some(&is.state), sample),
                    }
                }
                (None, Some(n)) => {
                    let is = &new_steps[n];
                    let flag = new.expect("a new step has its flag");
                    StepChange {
                        flag: name.to_string(),
                        kind: StepKind::Added,
                        step: is.number,
                        at: is.time,
                        at_before: None,
                        state: is.state.clone(),
                        state_before: None,
                        rollback: is.rollback,
                        radius: radius(flag, &head.config, is.before.as_ref(), Some(&is.state), sample),
                    }
                }
                (Some(o), None) => {
                    let was = &old_steps[o];
                    let flag = old.expect("an old step has its flag");
                    let config = base.map_or(&head.config, |base| &base.config);
                    StepChange {
                        flag: name.to_string(),
                        kind: StepKind::Removed,
                        step: was.number,
                        at: was.time,
                        at_before: None,
                        state: was.state.clone(),
                        state_before: None,
                        rollback: was.rollback,
                        radius: radius(flag, config, was.before.as_ref(), Some(&was.state), sample),
                    }
                }
                (None, None) => continue,
            };
            changes.push(change);
        }
    }
    changes.sort_by(|a, b| (&a.flag, a.at, a.step).cmp(&(&b.flag, b.at, b.step)));
    changes
}

/// The blast radius of `flag` going from `before` to `after`: the jump in exposure, and the
/// actors of `sample` that switch, each evaluated as `flagops eval` does.
pub fn radius(
    flag: &Flag,
    config: &Config,
    before: Option<&Stored>,
    after: Option<&Stored>,
    sample: Option<&[String]>,
) -> Radius {
    let exposure = |state: Option<&Stored>| -> i64 {
        match state {
            None => i64::from(flag.default_enabled) * 100_000,
            Some(Stored::Boolean(on)) => i64::from(*on) * 100_000,
            Some(Stored::Gates(gates)) => i64::from(
                gates
                    .percentage_of_actors
                    .unwrap_or(0)
                    .max(gates.percentage_of_time.unwrap_or(0)),
            ),
        }
    };
    let sample = sample.map(|actors| {
        let mut count = SampleCount {
            actors: actors.len(),
            switch_on: 0,
            switch_off: 0,
        };
        for actor in actors {
            let subject = Subject {
                actor: Some(actor.clone()),
                groups: Vec::new(),
            };
            let outcome = |state| evaluate(&flag.name, flag.default_enabled, state, &subject, config).outcome;
            match (outcome(before), outcome(after)) {
                (Outcome::Off, Outcome::On) => count.switch_on += 1,
                (Outcome::On, Outcome::Off) => count.switch_off += 1,
                _ => {}
            }
        }
        count
    });
    Radius {
        jump: exposure(after) - exposure(before),
        sample,
    }
}

/// `+25 pp; of 1000 sample actors, 250 switch on and 0 switch off`.
pub fn describe(radius: &Radius) -> String {
    let sign = if radius.jump < 0 { "-" } else { "+" };
    let points = percent(u32::try_from(radius.jump.unsigned_abs()).unwrap_or(u32::MAX));
    let mut text = format!("{sign}{points} pp");
    if let Some(sample) = radius.sample {
        text.push_str(&format!(
            "; of {} sample actors, {} switch on and {} switch off",
            sample.actors, sample.switch_on, sample.switch_off
        ));
    }
    text
}

/// The actor ids of a sample file: one Flipper id a line; blank lines and `#` comments skipped.
pub fn parse_sample(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Samples by environment.
pub type Samples = BTreeMap<String, Vec<String>>;

/// One step of a plan that sets the environment, with the state before it.
struct EnvironmentStep {
    number: usize,
    time: Timestamp,
    state: Stored,
    rollback: bool,
    before: Option<Stored>,
}

fn environment_steps(flag: &Flag, environment: &str) -> Vec<EnvironmentStep> {
    let mut steps = Vec::new();
    let mut before = flag.environments.get(environment).map(Stored::from_model);
    for (position, (step, time)) in flag.rollout.iter().zip(step_times(&flag.rollout)).enumerate() {
        let Ok(time) = time else { break };
        if let Some(state) = step.environments.get(environment) {
            let state = Stored::from_model(state);
            steps.push(EnvironmentStep {
                number: position + 1,
                time,
                state: state.clone(),
                rollback: step.rollback,
                before: before.replace(state),
            });
        }
    }
    steps
}

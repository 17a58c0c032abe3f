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

#[cfg(test)]
mod tests {

    use serde_json::json;

    use super::*;
    use crate::model::RolloutStep;

    fn config() -> Config {
        Config::example()
    }

    fn registry(flags: Vec<Flag>) -> Registry {
        Registry::of_example(config(), flags)
    }

    /// A step at `time` setting `environment` to `state`.
    fn step(time: &str, environment: &str, state: serde_json::Value, rollback: bool) -> RolloutStep {
        RolloutStep {
            at: Some(time.to_string()),
            after: None,
            rollback,
            note: None,
            guard: None,
            on_breach: None,
            environments: [(environment.to_string(), serde_json::from_value(state).unwrap())].into(),
        }
    }

    /// A flag off in production with `rollout`.
    fn planned(name: &str, rollout: Vec<RolloutStep>) -> Flag {
        Flag {
            environments: serde_json::from_value(json!({ "production": false })).unwrap(),
            rollout,
            ..Flag::example(name)
        }
    }

    fn stored(state: serde_json::Value) -> Stored {
        Stored::from_model(&serde_json::from_value(state).unwrap())
    }

    fn time(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn jump(jump: i64) -> Radius {
        Radius { jump, sample: None }
    }

    fn percent_of_actors(value: u32) -> serde_json::Value {
        json!({ "percentage_of_actors": value })
    }

    // Steps are paired by time, then by number; a step that sets another environment counts in
    // the numbers but is not listed; an unchanged step is left out.
    #[test]
    fn step_changes_pairs_steps_by_time_then_by_number() {
        let base = registry(vec![
            planned(
                "a",
                vec![
                    step("2026-01-01T09:00:00Z", "staging", json!(true), false),
                    step("2026-01-01T09:00:00Z", "production", percent_of_actors(10), false),
                    step("2026-01-02T09:00:00Z", "production", percent_of_actors(50), false),
                    step("2026-01-03T09:00:00Z", "production", json!(true), false),
                    step("2026-01-04T09:00:00Z", "production", json!(false), true),
                ],
            ),
            planned(
                "b",
                vec![step("2026-01-01T10:00:00Z", "production", percent_of_actors(20), false)],
            ),
        ]);
        let head = registry(vec![
            planned(
                "a",
                vec![
                    step("2026-01-01T09:00:00Z", "staging", json!(true), false),
                    step("2026-01-01T09:00:00Z", "production", percent_of_actors(10), false),
                    step("2026-01-02T09:00:00Z", "production", percent_of_actors(40), false),
                    step("2026-01-03T12:00:00Z", "production", json!(true), false),
                    step("2026-01-04T09:00:00Z", "production", json!(false), false),
                    step("2026-01-05T09:00:00Z", "production", json!(true), false),
                ],
            ),
            planned(
                "c",
                vec![step("2026-01-01T08:00:00Z", "production", percent_of_actors(5), false)],
            ),
        ]);
        let change = |flag: &str, kind, step, at: &str| StepChange {
            flag: flag.into(),
            kind,
            step,
            at: time(at),
            at_before: None,
            state: Stored::Boolean(true),
            state_before: None,
            rollback: false,
            radius: jump(0),
        };
        assert_eq!(
            step_changes(Some(&base), &head, "production", None),
            [
                StepChange {
                    state: stored(percent_of_actors(40)),
                    state_before: Some(stored(percent_of_actors(50))),
                    radius: jump(30_000),
                    ..change("a", StepKind::Changed, 3, "2026-01-02T09:00:00Z")
                },
                StepChange {
                    at_before: Some(time("2026-01-03T09:00:00Z")),
                    radius: jump(60_000),
                    ..change("a", StepKind::Changed, 4, "2026-01-03T12:00:00Z")
                },
                StepChange {
                    state: Stored::Boolean(false),
                    radius: jump(-100_000),
                    ..change("a", StepKind::Changed, 5, "2026-01-04T09:00:00Z")
                },
                StepChange {
                    radius: jump(100_000),
                    ..change("a", StepKind::Added, 6, "2026-01-05T09:00:00Z")
                },
                StepChange {
                    state: stored(percent_of_actors(20)),
                    radius: jump(20_000),
                    ..change("b", StepKind::Removed, 1, "2026-01-01T10:00:00Z")
                },
                StepChange {
                    state: stored(percent_of_actors(5)),
                    radius: jump(5_000),
                    ..change("c", StepKind::Added, 1, "2026-01-01T08:00:00Z")
                },
            ]
        );
        // Without a base, every step is added.
        let added = step_changes(None, &head, "production", None);
        assert_eq!(
            added
                .iter()
                .map(|change| (change.flag.as_str(), change.step))
                .collect::<Vec<_>>(),
            [("a", 2), ("a", 3), ("a", 4), ("a", 5), ("a", 6), ("c", 1)]
        );
        assert!(added.iter().all(|change| change.kind == StepKind::Added));
        // The other way round, a changed step takes the rollback mark of the newer plan.
        let removed = step_changes(Some(&head), &base, "production", None);
        assert_eq!(
            removed
                .iter()
                .map(|change| (change.flag.as_str(), change.kind, change.step, change.rollback))
                .collect::<Vec<_>>(),
            [
                ("a", StepKind::Changed, 3, false),
                ("a", StepKind::Changed, 4, false),
                ("a", StepKind::Changed, 5, true),
                ("a", StepKind::Removed, 6, false),
                ("b", StepKind::Added, 1, false),
                ("c", StepKind::Removed, 1, false),
            ]
        );
        // The same plan twice changes nothing; an environment no step sets neither.
        assert_eq!(step_changes(Some(&head), &head, "production", None), []);
        assert_eq!(step_changes(Some(&base), &head, "dev", None), []);
    }

    // A step moved to another time and another number is paired by neither: removed and added.
    #[test]
    fn a_step_moved_to_another_number_and_time_is_removed_and_added() {
        let base = registry(vec![planned(
            "a",
            vec![step("2026-01-01T09:00:00Z", "production", json!(true), false)],
        )]);
        let head = registry(vec![planned(
            "a",
            vec![
                step("2026-01-01T08:00:00Z", "staging", json!(true), false),
                step("2026-01-01T10:00:00Z", "production", json!(true), false),
            ],
        )]);
        let changes = step_changes(Some(&base), &head, "production", None);
        assert_eq!(
            changes
                .iter()
                .map(|change| (change.kind, change.step, change.at))
                .collect::<Vec<_>>(),
            [
                (StepKind::Removed, 1, time("2026-01-01T09:00:00Z")),
                (StepKind::Added, 2, time("2026-01-01T10:00:00Z")),
            ]
        );
    }

    // A step inserted before the others shifts their numbers: they still pair by time, and only
    // the new step is listed.
    #[test]
    fn a_step_inserted_first_pairs_the_others_by_time() {
        let base = registry(vec![planned(
            "a",
            vec![
                step("2026-01-01T09:00:00Z", "production", percent_of_actors(10), false),
                step("2026-01-01T10:00:00Z", "production", percent_of_actors(50), false),
            ],
        )]);
        let head = registry(vec![planned(
            "a",
            vec![
                step("2026-01-01T08:00:00Z", "production", percent_of_actors(5), false),
                step("2026-01-01T09:00:00Z", "production", percent_of_actors(10), false),
                step("2026-01-01T10:00:00Z", "production", percent_of_actors(50), false),
            ],
        )]);
        assert_eq!(
            step_changes(Some(&base), &head, "production", None),
            [StepChange {
                flag: "a".into(),
                kind: StepKind::Added,
                step: 1,
                at: time("2026-01-01T08:00:00Z"),
                at_before: None,
                state: stored(percent_of_actors(5)),
                state_before: None,
                rollback: false,
                radius: jump(5_000),
            }]
        );
    }

    #[test]
    fn radius_measures_exposure_and_counts_the_sample() {
        let config = config();
        let flag = Flag::example("a");
        let on = Flag {
            default_enabled: true,
            ..Flag::example("a")
        };
        let radius = |flag: &Flag, before: Option<Stored>, after: Option<Stored>| {
            radius(flag, &config, before.as_ref(), after.as_ref(), None).jump
        };
        assert_eq!(radius(&flag, None, Some(Stored::Boolean(true))), 100_000);
        assert_eq!(radius(&on, None, Some(Stored::Boolean(false))), -100_000);
        assert_eq!(radius(&on, Some(Stored::Boolean(true)), None), 0);
        assert_eq!(radius(&flag, Some(Stored::Boolean(false)), None), 0);
        assert_eq!(
            radius(
                &flag,
                Some(stored(json!({ "percentage_of_actors": 10, "percentage_of_time": 30 }))),
                Some(stored(json!({ "percentage_of_time": 5, "percentage_of_actors": 20 }))),
            ),
            -10_000
        );
        assert_eq!(
            radius(&flag, Some(stored(json!({ "actors": { "project": [1] } }))), None),
            0
        );
        let sample: Vec<String> = (1..=3).map(|id| format!("Project:{id}")).collect();
        let counted = |before: Stored, after: Stored| {
            super::radius(&flag, &config, Some(&before), Some(&after), Some(&sample))
                .sample
                .unwrap()
        };
        let listed = stored(json!({ "actors": { "project": [1] } }));
        assert_eq!(
            counted(Stored::Boolean(false), listed.clone()),
            SampleCount {
                actors: 3,
                switch_on: 1,
                switch_off: 0
            }
        );
        assert_eq!(
            counted(listed, Stored::Boolean(true)),
            SampleCount {
                actors: 3,
                switch_on: 2,
                switch_off: 0
            }
        );
        assert_eq!(
            counted(Stored::Boolean(true), stored(json!({ "actors": { "project": [2] } }))),
            SampleCount {
                actors: 3,
                switch_on: 0,
                switch_off: 2
            }
        );
    }

    #[test]
    fn describe_signs_the_jump_and_counts_the_sample() {
        assert_eq!(describe(&jump(0)), "+0 pp");
        assert_eq!(describe(&jump(1_500)), "+1.5 pp");
        assert_eq!(describe(&jump(-25_000)), "-25 pp");
        assert_eq!(
            describe(&Radius {
                jump: 25_000,
                sample: Some(SampleCount {
                    actors: 1000,
                    switch_on: 250,
                    switch_off: 3
                })
            }),
            "+25 pp; of 1000 sample actors, 250 switch on and 3 switch off"
        );
    }

    #[test]
    fn parse_sample_skips_blank_lines_and_comments() {
        assert_eq!(
            parse_sample("# a sample\nProject:1\n\n  User:2  \n   \n  # indented\nGroup:#3\n"),
            ["Project:1", "User:2", "Group:#3"]
        );
    }
}

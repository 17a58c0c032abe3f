//! Rollout steps in one environment: which step of a flag's plan the environment stands at, and
//! when the next one is due, given the step the store recorded as last applied
//! (`backends::StepMark`).
//!
//! A step never takes effect before the step before it was applied to the environment: the
//! first step that sets the environment is due at its own time; with step k applied at `a_k`,
//! the next step that sets it is due at `max(t_next, a_k + max(t_next - t_k, min_wait))`, where
//! `min_wait` counts only in a protected environment whose `min-wait` policy is on and not
//! overridden by the flag. A sync applies at most one step per flag, so a late sync applies the
//! next step and holds the later ones, and a plan merged with its times already past runs step
//! by step with its planned spacing from its first apply. A `rollback: true` step waits for
//! nothing: once its time has come it is applied at once, over the steps before it that were
//! not applied yet. Steps that do not set the environment do not count in it.
//!
//! A mark names its step by number, scheduled time and state. When the plan was edited so that
//! no step matches all three, the environment stands at the latest step that sets the state the
//! mark names and was scheduled no later than the mark was applied; failing that, the plan
//! starts again from its first step. This module is pure: it is handed the marks and the time.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::backends::StepMark;
use crate::config::Config;
use crate::guard::Verdict;
use crate::model::{Flag, Registry};
use crate::resolve::{StepTimeError, parse_duration, parse_time, step_times};
use crate::state::{EnvironmentState, Stored};

/// Where one flag's rollout stands in one environment at a moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Standing {
    /// The flag.
    pub flag: String,
    /// How many steps its plan has.
    pub steps: usize,
    /// The step last applied to the environment, as its mark records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<Applied>,
    /// The step that takes effect now: a sync applies it and records its mark.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applying: Option<usize>,
    /// The next step still to come in the environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Next>,
    /// The desired state: the state of the step applied or applying, else the `environments`
    /// entry (absent: null).
    pub state: Option<Stored>,
    /// What the metric guard of the step that was due said (`crate::guard`): a breach holds
    /// the step, or applies the plan's next rollback step in its place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<Verdict>,
    /// When a guard's breach rolled the plan back to the flag's `environments` entry, where it
    /// stays until the guarded step is edited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<Timestamp>,
    /// The mark to record when `applying` is applied.
    #[serde(skip)]
    pub mark: Option<StepMark>,
}

/// A step applied to the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// Its number (1 for the first step of the plan).
    pub step: usize,
    /// When.
    pub at: Timestamp,
}

/// The next step of a rollout in an environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Next {
    /// Its number.
    pub step: usize,
    /// The time the plan gives it.
    pub scheduled: Timestamp,
    /// The time it is due: never before `scheduled`, later when the step before was applied late.
    pub due: Timestamp,
    /// What it waits for.
    pub wait: Wait,
}

/// What the next step waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "for", content = "step", rename_all = "kebab-case")]
pub enum Wait {
    /// Its own time.
    Scheduled,
    /// The plan's spacing after the step before it (its number), counted from its apply.
    Spacing(usize),
    /// The `min-wait` policy after the step before it (its number), counted from its apply.
    MinWait(usize),
}

/// When a rollout is judged: the time steps are due by, and the time a step that takes effect
/// then is recorded as applied (a sync's: the later of its clock and `at`, so that the next step
/// never waits less than it should).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moment {
    /// The time steps are due by (`--at`, or now).
    pub at: Timestamp,
    /// The time a step that takes effect is applied at.
    pub applied_at: Timestamp,
}

impl Moment {
    /// A moment whose steps are applied when they are due: `at` for both.
    pub fn at(at: Timestamp) -> Moment {
        Moment { at, applied_at: at }
    }
}

/// One step of a plan that sets the environment. Its state stays the flag file's until it is
/// needed ([`EnvironmentStep::stored`]): most steps of most plans are neither applied nor due.
struct EnvironmentStep<'a> {
    number: usize,
    time: Timestamp,
    state: &'a crate::model::State,
    rollback: bool,
}

impl EnvironmentStep<'_> {
    /// The state the step sets, as a store holds it.
    fn stored(&self) -> Stored {
        Stored::from_model(self.state)
    }
}

/// The desired state of every flag of `registry` in `environment` at `at`, given the step
/// marks the environment's store holds, and the standing of every flag whose plan sets the
/// environment; a step that takes effect is marked as applied at `applied_at`. A guarded step
/// takes effect only with a healthy one of `verdicts` (`crate::guard`).
pub fn resolve(
    registry: &Registry,
    environment: &str,
    moment: Moment,
    marks: &BTreeMap<String, StepMark>,
    verdicts: &[Verdict],
) -> (EnvironmentState, Vec<Standing>) {
    let mut state = EnvironmentState::new();
    let mut standings = Vec::new();
    let environment_wait = environment_min_wait(&registry.config, environment);
    for file in &registry.flags {
        let flag = &file.flag;
        let min_wait = environment_wait.filter(|_| !flag.overrides.contains_key("min-wait"));
        let verdict = verdicts.iter().find(|verdict| verdict.flag == flag.name);
        let found = standing_at(
            flag,
            &file.times,
            environment,
            marks.get(&flag.name),
            moment,
            min_wait,
            verdict,
        );
        let desired = match found {
            Some(standing) => {
                let desired = standing.state.clone();
                standings.push(standing);
                desired
            }
            None => flag.environments.get(environment).map(Stored::from_model),
        };
        if let Some(desired) = desired {
            state.insert(flag.name.clone(), desired);
        }
    }
    (state, standings)
}

/// The wait `min-wait` asks for between steps of `flag` in `environment`: `None` unless the
/// environment is protected and the policy is on and not overridden by the flag.
pub fn min_wait(config: &Config, environment: &str, flag: &Flag) -> Option<SignedDuration> {
    environment_min_wait(config, environment).filter(|_| !flag.overrides.contains_key("min-wait"))
}

/// The wait `min-wait` asks for in `environment` of a flag that does not override it.
fn environment_min_wait(config: &Config, environment: &str) -> Option<SignedDuration> {
    let protected = config.environment(environment).is_some_and(|e| e.protected);
    if !protected || config.policies.disabled.contains("min-wait") {
        return None;
    }
    parse_duration(&config.policies.min_wait).ok()
}

/// Where `flag`'s rollout stands in `environment` at `at`, given its `mark`; `None` when no step
/// of its plan sets the environment. A `verdict` on the step that would take effect decides it:
/// healthy, it goes ahead; breached with `on_breach: rollback`, the plan's next rollback step
/// goes ahead instead; otherwise the step is held.
pub fn standing(
    flag: &Flag,
    environment: &str,
    mark: Option<&StepMark>,
    moment: Moment,
    min_wait: Option<SignedDuration>,
    verdict: Option<&Verdict>,
) -> Option<Standing> {
    let times = step_times(&flag.rollout);
    standing_at(flag, &times, environment, mark, moment, min_wait, verdict)
}

/// [`standing`], with the times of the plan's steps worked out already (`FlagFile::times`).
fn standing_at(
    flag: &Flag,
    times: &[Result<Timestamp, StepTimeError>],
    environment: &str,
    mark: Option<&StepMark>,
    moment: Moment,
    min_wait: Option<SignedDuration>,
    verdict: Option<&Verdict>,
) -> Option<Standing> {
    let Moment { at, applied_at } = moment;
    let mut steps = Vec::new();
    for (position, (step, time)) in flag.rollout.iter().zip(times).enumerate() {
        // A plan with an invalid time is refused by `validate`; its steps from there on never
        // take effect.
        let Ok(time) = time else { break };
        let time = *time;
        if let Some(state) = step.environments.get(environment) {
            steps.push(EnvironmentStep {
                number: position + 1,
                time,
                state,
                rollback: step.rollback,
            });
        }
    }
    if steps.is_empty() {
        return None;
    }
    if let Some(standing) = rolled_back(flag, &steps, mark) {
        return Some(standing);
    }
    let matched = mark.and_then(|mark| matching(&steps, mark));
    let start = matched.map_or(0, |(position, _)| position + 1);
    let due = |position: usize, before: Option<(usize, Timestamp)>| -> (Timestamp, Wait) {
        let step = &steps[position];
        let Some((previous, applied)) = before.filter(|_| !step.rollback) else {
            return (step.time, Wait::Scheduled);
        };
        let spacing = step.time.duration_since(steps[previous].time).max(SignedDuration::ZERO);
        let (gap, wait) = match min_wait {
            Some(min_wait) if min_wait > spacing => (min_wait, Wait::MinWait(steps[previous].number)),
            _ => (spacing, Wait::Spacing(steps[previous].number)),
        };
        let earliest = applied.checked_add(gap).unwrap_or(Timestamp::MAX);
        if earliest > step.time {
            (earliest, wait)
        } else {
            (step.time, Wait::Scheduled)
        }
    };
    // A rollback step whose time has come goes ahead of the steps before it not yet applied.
    let rollback = (start..steps.len())
        .rev()
        .find(|&position| steps[position].rollback && steps[position].time <= at);
    let mut applying = rollback.or_else(|| (start < steps.len() && due(start, matched).0 <= at).then_some(start));
    let entry = flag.environments.get(environment).map(Stored::from_model);
    let guard = applying
        .and_then(|position| {
            verdict.filter(|verdict| verdict.step == steps[position].number && !steps[position].rollback)
        })
        .cloned();
    // A guard that did not pass holds its step; a breach with `on_breach: rollback` takes the
    // environment back to its `environments` entry, marked as the guarded step, which stops the
    // plan there (above).
    let mut rollback_mark = None;
    if let Some(verdict) = &guard
        && !verdict.outcome.is_healthy()
        && let Some(position) = applying.take()
        && verdict.rolls_back()
        && let Some(entry) = &entry
    {
        rollback_mark = Some(StepMark {
            flag: flag.name.clone(),
            step: steps[position].number,
            scheduled: steps[position].time.to_string(),
            state: entry.clone(),
            applied_at: applied_at.to_string(),
            guard: Some(verdict.clone()),
        });
    }
    let current = applying.map(|position| (position, applied_at)).or(matched);
    let following = current.map_or(0, |(position, _)| position + 1);
    let next = (following < steps.len() && rollback_mark.is_none()).then(|| {
        let (due, wait) = due(following, current);
        Next {
            step: steps[following].number,
            scheduled: steps[following].time,
            due,
            wait,
        }
    });
    Some(Standing {
        flag: flag.name.clone(),
        steps: flag.rollout.len(),
        applied: matched.map(|(position, at)| Applied {
            step: steps[position].number,
            at,
        }),
        applying: applying.map(|position| steps[position].number),
        next,
        state: match current {
            _ if rollback_mark.is_some() => entry,
            Some((position, _)) => Some(steps[position].stored()),
            None => entry,
        },
        rolled_back: None,
        mark: rollback_mark.or_else(|| {
            applying.map(|position| StepMark {
                flag: flag.name.clone(),
                step: steps[position].number,
                scheduled: steps[position].time.to_string(),
                state: steps[position].stored(),
                applied_at: applied_at.to_string(),
                guard: guard.clone(),
            })
        }),
        guard,
    })
}

/// The standing of a plan that a guard's breach rolled back (`mark`, whose verdict says so) and
/// that was not edited since: its guarded step still has the time it had. It stays at the
/// state the rollback applied, with no step to come.
fn rolled_back(flag: &Flag, steps: &[EnvironmentStep], mark: Option<&StepMark>) -> Option<Standing> {
    let mark = mark?;
    let verdict = mark.guard.as_ref().filter(|verdict| verdict.rolls_back())?;
    let scheduled = parse_time(&mark.scheduled).ok()?;
    let applied = parse_time(&mark.applied_at).ok()?;
    steps
        .iter()
        .any(|step| step.number == mark.step && step.time == scheduled)
        .then(|| Standing {
            flag: flag.name.clone(),
            steps: flag.rollout.len(),
            applied: None,
            applying: None,
            next: None,
            state: Some(mark.state.clone()),
            rolled_back: Some(applied),
            mark: None,
            guard: Some(verdict.clone()),
        })
}

/// `standing` in words: `step 2 of 3 applied at T; step 3 due at T' (held: min-wait after step
/// 2)`.
pub fn describe(standing: &Standing) -> String {
    if let (Some(at), Some(verdict)) = (standing.rolled_back, &standing.guard) {
        return format!(
            "rolled back at {} by {}; the plan goes on once step {} is edited",
            crate::plan::render::to_second(at),
            crate::guard::describe(verdict),
            verdict.step
        );
    }
    let mut parts = Vec::new();
    if let Some(step) = standing.applying {
        parts.push(format!("step {step} of {} takes effect", standing.steps));
    } else if let Some(applied) = standing.applied {
        parts.push(format!(
            "step {} of {} applied at {}",
            applied.step,
            standing.steps,
            crate::plan::render::to_second(applied.at)
        ));
    } else {
        parts.push(format!("no step of {} applied yet", standing.steps));
    }
    match standing.next {
        Some(next) => parts.push(format!(
            "step {} due at {}{}",
            next.step,
            crate::plan::render::to_second(next.due),
            held(&next)
        )),
        None => parts.push("no step to come".to_string()),
    }
    if let Some(verdict) = &standing.guard {
        parts.push(crate::guard::describe(verdict));
    }
    parts.join("; ")
}

/// ` (held: min-wait after step 2)`, or nothing for a step due at its own time.
pub fn held(next: &Next) -> String {
    match next.wait {
        Wait::Scheduled => String::new(),
        Wait::Spacing(step) => format!(
            " (held past its time {}: the plan's spacing after step {step}, counted from its apply)",
            next.scheduled
        ),
        Wait::MinWait(step) => format!(" (held past its time {}: min-wait after step {step})", next.scheduled),
    }
}

/// The step `mark` names, with its apply time: the step with its number, time and state, else
/// the latest with its state scheduled no later than it was applied.
fn matching(steps: &[EnvironmentStep], mark: &StepMark) -> Option<(usize, Timestamp)> {
    let applied = parse_time(&mark.applied_at).ok()?;
    let scheduled = parse_time(&mark.scheduled).ok();
    let exact = steps
        .iter()
        .position(|step| step.number == mark.step && Some(step.time) == scheduled && step.stored() == mark.state);
    let position = exact.or_else(|| {
        steps
            .iter()
            .rposition(|step| step.time <= applied && step.stored() == mark.state)
    })?;
    Some((position, applied))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{self, RolloutStep};

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn percent(value: u32) -> model::State {
        serde_json::from_value(serde_json::json!({ "percentage_of_actors": value })).unwrap()
    }

    fn step(time: &str, state: model::State, rollback: bool) -> RolloutStep {
        RolloutStep {
            at: Some(time.to_string()),
            after: None,
            rollback,
            note: None,
            guard: None,
            on_breach: None,
            environments: [("production".to_string(), state)].into(),
        }
    }

    /// 25% at 09:00, 50% at 09:15, on at 09:30.
    fn flag() -> Flag {
        Flag {
            rollout: vec![
                step("2026-11-24T09:00:00Z", percent(25), false),
                step("2026-11-24T09:15:00Z", percent(50), false),
                step(
                    "2026-11-24T09:30:00Z",
                    serde_json::from_value(serde_json::json!(true)).unwrap(),
                    false,
                ),
            ],
            ..Flag::example("f")
        }
    }

    /// Where `flag` stands in `production` at `time`, given its last mark and the min-wait.
    fn in_production(flag: &Flag, mark: Option<&StepMark>, time: &str, wait: Option<SignedDuration>) -> Standing {
        standing(flag, "production", mark, Moment::at(at(time)), wait, None).unwrap()
    }

    fn mark(standing: &Standing) -> StepMark {
        standing.mark.clone().expect("a step applies")
    }

    fn config() -> Config {
        Config::example()
    }

    fn registry(flags: Vec<Flag>) -> Registry {
        Registry::of_example(config(), flags)
    }

    // `min-wait` counts only in a protected environment, when the policy is on and the flag does
    // not override it.
    #[test]
    fn min_wait_counts_in_protected_environments_unless_turned_off() {
        let config = config();
        let flag = flag();
        let fifteen = Some(SignedDuration::from_mins(15));
        assert_eq!(min_wait(&config, "production", &flag), fifteen);
        assert_eq!(min_wait(&config, "dev", &flag), None);
        assert_eq!(min_wait(&config, "nowhere", &flag), None);
        let overridden = Flag {
            overrides: [("min-wait".to_string(), "urgent".to_string())].into(),
            ..flag.clone()
        };
        assert_eq!(min_wait(&config, "production", &overridden), None);
        let mut disabled = config.clone();
        disabled.policies.disabled.insert("min-wait".into());
        assert_eq!(min_wait(&disabled, "production", &flag), None);
        let mut other = config.clone();
        other.policies.disabled.insert("max-step".into());
        assert_eq!(min_wait(&other, "production", &flag), fifteen);
    }

    // `resolve` gives each flag the state of its step, or its `environments` entry, and hands a
    // flag only its own guard's verdict.
    #[test]
    fn resolve_gives_each_flag_its_step_or_its_entry() {
        let entry = |state: serde_json::Value| -> model::Environments {
            serde_json::from_value(serde_json::json!({ "production": state })).unwrap()
        };
        let plain = Flag {
            environments: entry(serde_json::json!(true)),
            ..Flag::example("plain")
        };
        let elsewhere = Flag {
            environments: entry(serde_json::json!(false)),
            rollout: vec![RolloutStep {
                environments: [("staging".to_string(), percent(10))].into(),
                ..step("2026-11-24T09:00:00Z", percent(10), false)
            }],
            ..Flag::example("elsewhere")
        };
        let guarded = Flag {
            environments: entry(serde_json::json!(false)),
            ..Flag {
                name: "guarded".into(),
                ..flag()
            }
        };
        let registry = registry(vec![plain, elsewhere, flag(), guarded, Flag::example("unset")]);
        let breach = Verdict {
            flag: "guarded".into(),
            step: 1,
            guard: "error_rate".into(),
            query: "q".into(),
            limit: "max 0.01".into(),
            on_breach: model::OnBreach::Hold,
            outcome: crate::guard::Outcome::Breached { value: "1".into() },
        };
        let (state, standings) = resolve(
            &registry,
            "production",
            Moment::at(at("2026-11-24T09:00:00Z")),
            &BTreeMap::new(),
            &[breach],
        );
        let expected: EnvironmentState = [
            ("elsewhere", Stored::Boolean(false)),
            ("f", Stored::from_model(&percent(25))),
            ("guarded", Stored::Boolean(false)),
            ("plain", Stored::Boolean(true)),
        ]
        .into_iter()
        .map(|(name, state)| (name.to_string(), state))
        .collect();
        assert_eq!(state, expected);
        assert_eq!(
            standings
                .iter()
                .map(|standing| (standing.flag.as_str(), standing.applying, standing.guard.is_some()))
                .collect::<Vec<_>>(),
            [("f", Some(1), false), ("guarded", None, true)]
        );
    }

    #[test]
    fn a_late_sync_applies_one_step_and_holds_the_next() {
        let flag = flag();
        let wait = Some(SignedDuration::from_mins(15));
        let first = in_production(&flag, None, "2026-11-24T10:00:00Z", wait);
        assert_eq!(first.applying, Some(1));
        let next = first.next.unwrap();
        assert_eq!((next.step, next.due), (2, at("2026-11-24T10:15:00Z")));
        assert_eq!(next.wait, Wait::Spacing(1));
        let early = in_production(&flag, Some(&mark(&first)), "2026-11-24T10:14:59Z", wait);
        assert_eq!((early.applying, early.applied.map(|a| a.step)), (None, Some(1)));
        let second = in_production(&flag, Some(&mark(&first)), "2026-11-24T10:15:00Z", wait);
        assert_eq!(second.applying, Some(2));
        assert_eq!(
            describe(&early),
            "step 1 of 3 applied at 2026-11-24T10:00:00Z; step 2 due at 2026-11-24T10:15:00Z (held past its time 2026-11-24T09:15:00Z: the plan's spacing after step 1, counted from its apply)"
        );
    }

    #[test]
    fn min_wait_counts_in_protected_environments_for_flags_that_do_not_override_it() {
        let config = Config::example();
        let policy = parse_duration(&config.policies.min_wait).ok();
        assert!(policy.is_some());
        let plain = flag();
        let mut overriding = flag();
        overriding
            .overrides
            .insert("min-wait".to_string(), "Incident 1234 needs the fix now.".to_string());
        assert_eq!(min_wait(&config, "production", &plain), policy);
        assert_eq!(min_wait(&config, "production", &overriding), None);
        assert_eq!(min_wait(&config, "dev", &plain), None);
    }

    #[test]
    fn min_wait_holds_a_step_the_plan_spaces_closer() {
        let flag = flag();
        let wait = Some(SignedDuration::from_mins(20));
        let first = in_production(&flag, None, "2026-11-24T09:00:00Z", wait);
        let next = first.next.unwrap();
        assert_eq!((next.due, next.wait), (at("2026-11-24T09:20:00Z"), Wait::MinWait(1)));
        assert_eq!(
            describe(&first),
            "step 1 of 3 takes effect; step 2 due at 2026-11-24T09:20:00Z (held past its time 2026-11-24T09:15:00Z: min-wait after step 1)"
        );
        let before = in_production(&flag, None, "2026-11-24T08:00:00Z", wait);
        assert_eq!(
            describe(&before),
            "no step of 3 applied yet; step 1 due at 2026-11-24T09:00:00Z"
        );
        let last = StepMark {
            flag: "f".into(),
            step: 3,
            scheduled: "2026-11-24T09:30:00Z".into(),
            state: Stored::Boolean(true),
            applied_at: "2026-11-24T09:40:00Z".into(),
            guard: None,
        };
        let done = in_production(&flag, Some(&last), "2026-11-24T12:00:00Z", wait);
        assert_eq!(
            describe(&done),
            "step 3 of 3 applied at 2026-11-24T09:40:00Z; no step to come"
        );
    }

    fn verdict(step: usize, outcome: crate::guard::Outcome, on_breach: model::OnBreach) -> Verdict {
        Verdict {
            flag: "f".into(),
            step,
            guard: "error_rate".into(),
            query: "q".into(),
            limit: "max 0.01".into(),
            on_breach,
            outcome,
        }
    }

    // A healthy guard lets its step go ahead; a breach holds it, or rolls the environment back to
    // its `environments` entry, where the plan stays until the guarded step is edited.
    #[test]
    fn a_guard_lets_its_step_go_ahead_holds_it_or_rolls_the_plan_back() {
        use crate::guard::Outcome;
        use model::OnBreach;
        let flag = Flag {
            environments: serde_json::from_value(serde_json::json!({ "production": false })).unwrap(),
            ..flag()
        };
        let first = in_production(&flag, None, "2026-11-24T09:00:00Z", None);
        let first = mark(&first);
        let quarter = Moment {
            at: at("2026-11-24T09:15:00Z"),
            applied_at: at("2026-11-24T09:15:30Z"),
        };
        let judged =
            |verdict: &Verdict| standing(&flag, "production", Some(&first), quarter, None, Some(verdict)).unwrap();

        let healthy = verdict(2, Outcome::Healthy { value: "0.001".into() }, OnBreach::Rollback);
        let passed = judged(&healthy);
        assert_eq!((passed.applying, passed.guard.as_ref()), (Some(2), Some(&healthy)));
        assert_eq!(
            passed.mark,
            Some(StepMark {
                flag: "f".into(),
                step: 2,
                scheduled: "2026-11-24T09:15:00Z".into(),
                state: Stored::from_model(&percent(50)),
                applied_at: "2026-11-24T09:15:30Z".into(),
                guard: Some(healthy.clone()),
            })
        );
        // A verdict on another step says nothing of this one.
        let elsewhere = judged(&verdict(3, Outcome::NoData, OnBreach::Hold));
        assert_eq!((elsewhere.applying, elsewhere.guard), (Some(2), None));

        let breach = verdict(2, Outcome::Breached { value: "0.5".into() }, OnBreach::Hold);
        let held = judged(&breach);
        assert_eq!(
            (held.applying, held.state.clone(), held.mark.clone()),
            (None, Some(Stored::from_model(&percent(25))), None)
        );
        assert_eq!(
            describe(&held),
            "step 1 of 3 applied at 2026-11-24T09:00:00Z; step 2 due at 2026-11-24T09:15:00Z; guard `error_rate` holds step 2: 0.5 breaches max 0.01"
        );
        // No data holds the step, even with `on_breach: rollback`.
        let silent = judged(&verdict(2, Outcome::NoData, OnBreach::Rollback));
        assert_eq!((silent.applying, silent.mark), (None, None));
        assert_eq!(silent.next.map(|next| next.step), Some(2));

        let breach = verdict(2, Outcome::Breached { value: "0.5".into() }, OnBreach::Rollback);
        let rolling = judged(&breach);
        assert_eq!(
            (rolling.applying, rolling.state.clone(), rolling.next),
            (None, Some(Stored::Boolean(false)), None)
        );
        let rollback = StepMark {
            flag: "f".into(),
            step: 2,
            scheduled: "2026-11-24T09:15:00Z".into(),
            state: Stored::Boolean(false),
            applied_at: "2026-11-24T09:15:30Z".into(),
            guard: Some(breach.clone()),
        };
        assert_eq!(rolling.mark.as_ref(), Some(&rollback));
        // Later, the plan stays rolled back.
        let later = Moment::at(at("2026-11-24T10:00:00Z"));
        let stopped = standing(&flag, "production", Some(&rollback), later, None, None).unwrap();
        assert_eq!(
            stopped,
            Standing {
                flag: "f".into(),
                steps: 3,
                applied: None,
                applying: None,
                next: None,
                state: Some(Stored::Boolean(false)),
                guard: Some(breach.clone()),
                rolled_back: Some(at("2026-11-24T09:15:30Z")),
                mark: None,
            }
        );
        assert_eq!(
            describe(&stopped),
            "rolled back at 2026-11-24T09:15:30Z by guard `error_rate` before step 2, back to the state before the plan: 0.5 breaches max 0.01; the plan goes on once step 2 is edited"
        );
        // A hold's mark does not stop the plan.
        let kept = StepMark {
            guard: Some(verdict(2, Outcome::Breached { value: "0.5".into() }, OnBreach::Hold)),
            ..rollback.clone()
        };
        assert_eq!(
            standing(&flag, "production", Some(&kept), later, None, None)
                .unwrap()
                .applying,
            Some(1)
        );
        // Once step 2 is edited (another time), the plan starts again.
        let mut edited = flag.clone();
        edited.rollout[1].at = Some("2026-11-24T09:20:00Z".into());
        let resumed = standing(&edited, "production", Some(&rollback), later, None, None).unwrap();
        assert_eq!((resumed.rolled_back, resumed.applying), (None, Some(1)));
    }

    // A rollback step is never guarded: it goes ahead whatever a verdict on it says.
    #[test]
    fn a_rollback_step_is_not_guarded() {
        let mut flag = flag();
        flag.rollout[2] = step("2026-11-24T09:30:00Z", percent(0), true);
        let breach = verdict(
            3,
            crate::guard::Outcome::Breached { value: "0.5".into() },
            model::OnBreach::Hold,
        );
        let rollback = standing(
            &flag,
            "production",
            None,
            Moment::at(at("2026-11-24T09:30:00Z")),
            None,
            Some(&breach),
        )
        .unwrap();
        assert_eq!((rollback.applying, rollback.guard), (Some(3), None));
    }

    #[test]
    fn an_edited_plan_continues_from_the_state_applied_or_starts_again() {
        let mut flag = flag();
        let wait = None;
        let applied = StepMark {
            flag: "f".into(),
            step: 2,
            scheduled: "2026-11-24T09:15:00Z".into(),
            state: Stored::from_model(&percent(50)),
            applied_at: "2026-11-24T09:15:00Z".into(),
            guard: None,
        };
        // A step inserted before: step 3 now sets 50%.
        flag.rollout.insert(0, step("2026-11-24T08:00:00Z", percent(10), false));
        let moved = in_production(&flag, Some(&applied), "2026-11-24T09:16:00Z", wait);
        assert_eq!(moved.applied.map(|a| a.step), Some(3));
        // No step sets 50% any more: the plan starts again.
        flag.rollout.remove(2);
        let restarted = in_production(&flag, Some(&applied), "2026-11-24T09:16:00Z", wait);
        assert_eq!((restarted.applied, restarted.applying), (None, Some(1)));
    }

    // A mark names its step by number, time and state; only when no step has all three does the
    // latest step with its state, scheduled no later than the mark's apply, stand in for it.
    #[test]
    fn a_mark_names_its_step_by_number_time_and_state() {
        // 25% at 09:00, 50% at 09:15, 25% again at 09:30.
        let mut flag = flag();
        flag.rollout[2] = step("2026-11-24T09:30:00Z", percent(25), false);
        let mark = |step: usize, scheduled: &str, applied_at: &str| StepMark {
            flag: "f".into(),
            step,
            scheduled: scheduled.into(),
            state: Stored::from_model(&percent(25)),
            applied_at: applied_at.into(),
            guard: None,
        };
        let applied = |mark: &StepMark| {
            in_production(&flag, Some(mark), "2026-11-24T12:00:00Z", None)
                .applied
                .map(|applied| (applied.step, applied.at))
        };
        let last = mark(3, "2026-11-24T09:30:00Z", "2026-11-24T09:30:00Z");
        assert_eq!(applied(&last), Some((3, at("2026-11-24T09:30:00Z"))));
        let first = mark(1, "2026-11-24T09:00:00Z", "2026-11-24T09:40:00Z");
        assert_eq!(applied(&first), Some((1, at("2026-11-24T09:40:00Z"))));
        // Step 3's number and state at another time: the latest 25% step scheduled by its apply.
        let moved = mark(3, "2026-11-24T09:35:00Z", "2026-11-24T09:29:59Z");
        assert_eq!(applied(&moved), Some((1, at("2026-11-24T09:29:59Z"))));
        let moved = mark(3, "2026-11-24T09:35:00Z", "2026-11-24T09:30:00Z");
        assert_eq!(applied(&moved), Some((3, at("2026-11-24T09:30:00Z"))));
        // Step 1's number and time, another state.
        let other = StepMark {
            state: Stored::Boolean(true),
            ..first.clone()
        };
        assert_eq!(applied(&other), None);
        // A mark applied before any step with its state was scheduled names none.
        let early = mark(1, "2026-11-24T08:00:00Z", "2026-11-24T08:59:59Z");
        assert_eq!(applied(&early), None);
        let unreadable = StepMark {
            applied_at: "yesterday".into(),
            ..first
        };
        assert_eq!(applied(&unreadable), None);
    }

    #[test]
    fn a_rollback_step_goes_ahead_at_its_time() {
        let mut flag = flag();
        flag.rollout[2] = step("2026-11-24T09:30:00Z", percent(0), true);
        let wait = Some(SignedDuration::from_mins(15));
        let first = in_production(&flag, None, "2026-11-24T09:00:00Z", wait);
        let rollback = in_production(&flag, Some(&mark(&first)), "2026-11-24T09:30:00Z", wait);
        assert_eq!(rollback.applying, Some(3));
    }
}

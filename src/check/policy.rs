//! Rollout policies from `flagops.yml`: promotion order, the wait between protected steps,
//! steps that only widen exposure, `requires` at every moment, freezes and rollout issues.
//!
//! Plans are checked at every moment they change: before the first step and at each step's
//! time. Exposure compares states by how many actors they reach: off, then conditional gates,
//! then fully on; two conditional states compare by their percentages (actor lists name
//! different records on different instances, so they do not compare across environments).

use jiff::Timestamp;

use crate::diagnostic::Diagnostic;
use crate::model::{FlagFile, Registry};
use crate::plan::show_effective;
use crate::resolve::Timeline;
use crate::source::push_pointer;
use crate::state::{Reach, Stored, narrows, percent, percentages, reach};

use super::{at_key, at_value};

/// The policy checks, by id.
pub const POLICY_IDS: &[&str] = &[
    "promotion-order",
    "min-wait",
    "max-step",
    "exposure-increase",
    "no-percentage-of-time",
    "requires-on",
    "protected-rollout-issue",
    "freeze-window",
];

/// Whether `state` reaches more than `other`: a higher rank, or higher percentages.
fn exceeds(state: Option<&Stored>, other: Option<&Stored>, default_enabled: bool) -> bool {
    let (a, b) = (reach(state, default_enabled), reach(other, default_enabled));
    if a != b {
        return a > b;
    }
    match (state, other) {
        (Some(Stored::Gates(a)), Some(Stored::Gates(b))) => {
            a.percentage_of_actors.unwrap_or(0) > b.percentage_of_actors.unwrap_or(0)
                || a.percentage_of_time.unwrap_or(0) > b.percentage_of_time.unwrap_or(0)
        }
        _ => false,
    }
}

/// The moments a flag's plan changes: before any step (`Timestamp::MIN`), then each step's time.
fn moments(timeline: &Timeline<'_>) -> Vec<Timestamp> {
    let mut moments: Vec<Timestamp> = std::iter::once(Timestamp::MIN)
        .chain(timeline.times().iter().flatten().copied())
        .collect();
    moments.sort();
    moments.dedup();
    moments
}

/// "from <time>", or "from the start" before any step.
fn from(moment: Timestamp) -> String {
    if moment == Timestamp::MIN {
        "before any rollout step".to_string()
    } else {
        format!("from {moment}")
    }
}

/// The JSON pointer of the entry that sets `environment`'s state at `moment`: the latest due
/// step setting it, else `environments/<environment>`; `None` when nothing sets it.
fn setter(timeline: &Timeline<'_>, environment: &str, moment: Timestamp) -> Option<String> {
    let flag = timeline.flag();
    let step = flag
        .rollout
        .iter()
        .zip(timeline.times())
        .enumerate()
        .filter(|(_, (step, time))| {
            time.as_ref().is_ok_and(|t| *t <= moment) && step.environments.contains_key(environment)
        })
        .map(|(position, _)| position)
        .next_back();
    match step {
        Some(position) => Some(push_pointer(&format!("/rollout/{position}"), environment)),
        None => flag
            .environments
            .contains_key(environment)
            .then(|| push_pointer("/environments", environment)),
    }
}

/// Whether a rollout step taking effect exactly at `moment` sets `environment`.
fn step_at(timeline: &Timeline<'_>, environment: &str, moment: Timestamp) -> bool {
    timeline
        .flag()
        .rollout
        .iter()
        .zip(timeline.times())
        .any(|(step, time)| {
            time.as_ref().is_ok_and(|time| *time == moment) && step.environments.contains_key(environment)
        })
}

/// Ensure no environment is more enabled than the one before it in the promotion order, at any
/// moment of a flag's rollout plan.
pub(super) fn check_promotion_order(registry: &Registry, out: &mut Vec<Diagnostic>) {
    let chain: Vec<&str> = registry
        .config
        .promotion_chain()
        .into_iter()
        .filter(|name| registry.config.environment(name).is_some())
        .collect();
    for file in &registry.flags {
        let flag = &file.flag;
        if flag.overrides.contains_key("promotion-order") {
            continue;
        }
        let timeline = Timeline::of(file);
        let moments = moments(&timeline);
        for pair in chain.windows(2) {
            let (before, after) = (pair[0], pair[1]);
            let violation = moments.iter().find_map(|&moment| {
                let earlier = timeline.desired(before, moment);
                let later = timeline.desired(after, moment);
                exceeds(later.as_ref(), earlier.as_ref(), flag.default_enabled).then_some((moment, earlier, later))
            });
            let Some((moment, earlier, later)) = violation else {
                continue;
            };
            // Point at the step that made it so when one did, else at whatever sets the later
            // environment.
            let pointer = [after, before]
                .into_iter()
                .filter_map(|environment| setter(&timeline, environment, moment).map(|pointer| (environment, pointer)))
                .find(|(environment, _)| step_at(&timeline, environment, moment))
                .map(|(_, pointer)| pointer)
                .or_else(|| setter(&timeline, after, moment))
                .or_else(|| setter(&timeline, before, moment))
                .unwrap_or_else(|| "/default_enabled".to_string());
            out.push(
                at_key(
                    "promotion-order",
                    file,
                    &pointer,
                    format!(
                        "{after} ({}) would be more enabled than {before} ({}), which comes before it, {}",
                        show_effective(later.as_ref(), flag.default_enabled),
                        show_effective(earlier.as_ref(), flag.default_enabled),
                        from(moment)
                    ),
                )
                .with_help(format!(
                    "enable `{before}` first (at the same step or an earlier one), or record why not with `overrides: {{ promotion-order: \"reason\" }}`"
                )),
            );
        }
    }
}

/// Ensure a rollout step that changes a protected environment comes at least `min_wait` after
/// the step before it.
pub(super) fn check_min_wait(registry: &Registry, out: &mut Vec<Diagnostic>) {
    let Ok(wait) = crate::resolve::parse_duration(&registry.config.policies.min_wait) else {
        return;
    };
    for file in &registry.flags {
        let flag = &file.flag;
        if flag.overrides.contains_key("min-wait") {
            continue;
        }
        let times = &file.times;
        for position in 1..flag.rollout.len() {
            let step = &flag.rollout[position];
            let (Ok(previous), Ok(time)) = (&times[position - 1], &times[position]) else {
                continue;
            };
            let protected: Vec<&str> = step
                .environments
                .keys()
                .filter(|name| registry.config.environment(name).is_some_and(|e| e.protected))
                .map(String::as_str)
                .collect();
            if step.rollback || protected.is_empty() {
                continue;
            }
            let gap = time.duration_since(*previous);
            if gap < wait {
                let key = if step.after.is_some() { "after" } else { "at" };
                out.push(
                    at_value(
                        "min-wait",
                        file,
                        &format!("/rollout/{position}/{key}"),
                        format!(
                            "step {} changes the protected environment {} {:#} after the step before it; the policy asks for at least {}",
                            position + 1,
                            protected.join(", "),
                            gap,
                            registry.config.policies.min_wait
                        ),
                    )
                    .with_help(format!(
                        "wait longer (`after: {}`), mark a step that reduces exposure with `rollback: true`, or record why with `overrides: {{ min-wait: \"reason\" }}`",
                        registry.config.policies.min_wait
                    )),
                );
            }
        }
    }
}

/// Ensure no rollout step raises a protected environment's percentage of actors or of time by
/// more than the flag type's `max_step` (else `policies.max_step`) percentage points.
pub(super) fn check_max_step(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        let flag = &file.flag;
        if flag.overrides.contains_key("max-step") {
            continue;
        }
        let (limit, from_type) = match registry.config.types.get(&flag.flag_type).and_then(|t| t.max_step) {
            Some(limit) => (limit, true),
            None => (registry.config.policies.max_step, false),
        };
        let timeline = Timeline::of(file);
        for (position, (step, time)) in flag.rollout.iter().zip(timeline.times()).enumerate() {
            let Ok(time) = time else { continue };
            if step.rollback {
                continue;
            }
            let before_step = time.checked_sub(jiff::SignedDuration::from_nanos(1)).unwrap_or(*time);
            for (environment, state) in &step.environments {
                if !registry.config.environment(environment).is_some_and(|e| e.protected) {
                    continue;
                }
                let before = timeline.desired(environment, before_step);
                let after = Stored::from_model(state);
                let (actors_before, time_before) = percentages(before.as_ref(), flag.default_enabled);
                let (actors_after, time_after) = percentages(Some(&after), flag.default_enabled);
                // Fully on reaches everyone, so it rises from the larger of the two percentages
                // before; otherwise each percentage rises on its own.
                let rise = if reach(Some(&after), flag.default_enabled) == Reach::On {
                    100_000u32.saturating_sub(actors_before.max(time_before))
                } else {
                    actors_after
                        .saturating_sub(actors_before)
                        .max(time_after.saturating_sub(time_before))
                };
                if rise <= limit.saturating_mul(1000) {
                    continue;
                }
                let source = if from_type {
                    format!("the type `{}` allows", flag.flag_type)
                } else {
                    "`policies.max_step` allows".to_string()
                };
                out.push(
                    at_key(
                        "max-step",
                        file,
                        &push_pointer(&format!("/rollout/{position}"), environment),
                        format!(
                            "step {} raises the protected environment {environment} by {} percentage points ({} to {}); {source} at most {limit}",
                            position + 1,
                            percent(rise),
                            show_effective(before.as_ref(), flag.default_enabled),
                            show_effective(Some(&after), flag.default_enabled)
                        ),
                    )
                    .with_help(format!(
                        "split the step into steps of at most {limit} points each (such as 1, 10, 25, 50, 75, 100), or record why not with `overrides: {{ max-step: \"reason\" }}`"
                    )),
                );
            }
        }
    }
}

/// Ensure no state uses `percentage_of_time` unless the flag's type sets
/// `allow_percentage_of_time`.
pub(super) fn check_no_percentage_of_time(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        let flag = &file.flag;
        if flag.overrides.contains_key("no-percentage-of-time")
            || registry
                .config
                .types
                .get(&flag.flag_type)
                .is_some_and(|t| t.allow_percentage_of_time)
        {
            continue;
        }
        for (at, state) in super::states(file) {
            let crate::model::State::Gates(gates) = state else {
                continue;
            };
            if gates.percentage_of_time.is_none() {
                continue;
            }
            out.push(
                at_key(
                    "no-percentage-of-time",
                    file,
                    &format!("{}/percentage_of_time", at.pointer()),
                    format!(
                        "`{}` uses `percentage_of_time` in {}, which GitLab deprecated (ChatOps' `--random`)",
                        flag.name, at.environment
                    ),
                )
                .with_help("use `percentage_of_actors`, which gives each actor the same answer on every call; or allow it for the type (`allow_percentage_of_time: true`) or record why with `overrides: { no-percentage-of-time: \"reason\" }`"),
            );
        }
    }
}

/// Ensure rollout steps only widen exposure, unless marked `rollback: true`.
pub(super) fn check_exposure_increase(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        let flag = &file.flag;
        let timeline = Timeline::of(file);
        for (position, (step, time)) in flag.rollout.iter().zip(timeline.times()).enumerate() {
            let Ok(time) = time else { continue };
            if step.rollback {
                continue;
            }
            // The state just before this step: every earlier step applied.
            let before_step = time.checked_sub(jiff::SignedDuration::from_nanos(1)).unwrap_or(*time);
            for (environment, state) in &step.environments {
                let before = timeline.desired(environment, before_step);
                let after = Stored::from_model(state);
                if narrows(before.as_ref(), Some(&after), flag.default_enabled) {
                    out.push(
                        at_key(
                            "exposure-increase",
                            file,
                            &push_pointer(&format!("/rollout/{position}"), environment),
                            format!(
                                "step {} reduces {environment} from {} to {}",
                                position + 1,
                                show_effective(before.as_ref(), flag.default_enabled),
                                show_effective(Some(&after), flag.default_enabled)
                            ),
                        )
                        .with_help("mark a step that takes the flag away on purpose with `rollback: true`"),
                    );
                }
            }
        }
    }
}

/// Ensure a flag is on in an environment only while every flag it requires is fully on there,
/// at every moment of both rollout plans.
pub(super) fn check_requires_on(registry: &Registry, out: &mut Vec<Diagnostic>) {
    let by_name: std::collections::HashMap<&str, &FlagFile> = registry
        .flags
        .iter()
        .map(|file| (file.flag.name.as_str(), file))
        .collect();
    for file in &registry.flags {
        let flag = &file.flag;
        if flag.requires.is_empty() {
            continue;
        }
        let timeline = Timeline::of(file);
        for required in &flag.requires {
            let Some(other_file) = by_name.get(required.as_str()) else {
                continue;
            };
            let other = &other_file.flag;
            if other.name == flag.name {
                continue;
            }
            let other_timeline = Timeline::of(other_file);
            let mut both = moments(&timeline);
            both.extend(moments(&other_timeline));
            both.sort();
            both.dedup();
            for environment in registry.config.environment_names() {
                let violation = both.iter().find_map(|moment| {
                    let state = timeline.desired(environment, *moment);
                    let needed = other_timeline.desired(environment, *moment);
                    (reach(state.as_ref(), flag.default_enabled) != Reach::Off
                        && reach(needed.as_ref(), other.default_enabled) != Reach::On)
                        .then_some((*moment, state, needed))
                });
                let Some((moment, state, needed)) = violation else {
                    continue;
                };
                let pointer = setter(&timeline, environment, moment).unwrap_or_else(|| "/default_enabled".to_string());
                out.push(
                    at_key(
                        "requires-on",
                        file,
                        &pointer,
                        format!(
                            "`{}` is on in {environment} {} ({}) while `{required}`, which it requires, is not fully on there ({})",
                            flag.name,
                            from(moment),
                            show_effective(state.as_ref(), flag.default_enabled),
                            show_effective(needed.as_ref(), other.default_enabled)
                        ),
                    )
                    .with_help(format!(
                        "turn `{required}` fully on in {environment} first, or keep `{}` off there until then",
                        flag.name
                    )),
                );
            }
        }
    }
}

/// Ensure a flag that is set to anything but off in a protected environment has a
/// `rollout_issue_url`.
pub(super) fn check_protected_rollout_issue(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        if file.flag.rollout_issue_url.is_some() {
            continue;
        }
        let found = super::states(file).find(|(at, state)| {
            registry.config.environment(at.environment).is_some_and(|e| e.protected)
                && !matches!(state, crate::model::State::Boolean(false))
        });
        if let Some((at, _)) = found {
            out.push(
                at_key(
                    "protected-rollout-issue",
                    file,
                    &at.pointer(),
                    format!(
                        "`{}` is enabled in the protected environment {} but has no `rollout_issue_url`",
                        file.flag.name, at.environment
                    ),
                )
                .with_help("open a rollout issue and add `rollout_issue_url: https://...`; changes to protected environments are announced there"),
            );
        }
    }
}

/// Warn about rollout steps that fall inside a change freeze of an environment they change.
pub(super) fn check_freeze_window(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        for (position, (step, time)) in file.flag.rollout.iter().zip(&file.times).enumerate() {
            let Ok(time) = time else { continue };
            for environment in step.environments.keys() {
                let Some(window) = registry.config.freeze_at(environment, *time) else {
                    continue;
                };
                out.push(
                    at_key(
                        "freeze-window",
                        file,
                        &push_pointer(&format!("/rollout/{position}"), environment),
                        format!(
                            "step {} changes {environment} at {time}, inside the change freeze `{}` ({} to {})",
                            position + 1,
                            window.name,
                            window.from,
                            window.until
                        ),
                    )
                    .with_help("move the step out of the freeze; otherwise `sync` applies it only after the freeze ends, or with `--override-freeze REASON`")
                    .warning(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::GateSet;

    fn actors(thousandths: u32) -> Stored {
        Stored::Gates(GateSet {
            percentage_of_actors: Some(thousandths),
            ..GateSet::default()
        })
    }

    #[test]
    fn exposure_orders_states() {
        let (off, on) = (Stored::Boolean(false), Stored::Boolean(true));
        assert!(exceeds(Some(&on), Some(&off), false));
        assert!(exceeds(Some(&actors(50_000)), Some(&actors(25_000)), false));
        assert!(!exceeds(Some(&actors(25_000)), Some(&actors(25_000)), false));
        assert!(
            exceeds(None, Some(&off), true),
            "nothing stored falls back to default_enabled"
        );
        assert!(!exceeds(None, Some(&off), false));
        assert!(narrows(Some(&actors(50_000)), Some(&actors(25_000)), false));
        assert!(narrows(Some(&on), Some(&actors(99_000)), false));
        assert!(!narrows(Some(&actors(10_000)), Some(&on), false));
        // Equal percentages take nothing away; a lower percentage of time does.
        assert!(!narrows(Some(&actors(25_000)), Some(&actors(25_000)), false));
        let time = |thousandths| {
            Stored::Gates(GateSet {
                percentage_of_time: Some(thousandths),
                ..GateSet::default()
            })
        };
        assert!(narrows(Some(&time(50_000)), Some(&time(25_000)), false));
        assert!(!narrows(Some(&time(25_000)), Some(&time(50_000)), false));
        assert!(!narrows(Some(&time(25_000)), Some(&time(25_000)), false));
        assert!(exceeds(Some(&time(50_000)), Some(&time(25_000)), false));
        assert!(!exceeds(Some(&time(25_000)), Some(&time(50_000)), false));
        // Gates that open for nobody reach no further than off.
        let empty = Stored::Gates(GateSet::default());
        assert!(!exceeds(Some(&empty), Some(&off), false));
        assert!(!narrows(Some(&actors(0)), Some(&off), false));
        assert!(exceeds(Some(&actors(1)), Some(&empty), false));
    }
}

//! Checks of rollout plans: step times and their order.

use crate::diagnostic::Diagnostic;
use crate::model::Registry;
use crate::resolve::StepTimeError;

use super::{at_key, at_value};

/// Ensure every rollout step has exactly one of `at` (an RFC 3339 time) or `after` (a positive
/// duration), and the first step has `at`.
pub(super) fn check_rollout_times(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        for (position, time) in file.times.iter().enumerate() {
            let step = format!("/rollout/{position}");
            let diagnostic = match time {
                Ok(_) | Err(StepTimeError::AfterInvalid) => continue,
                Err(StepTimeError::Missing) => at_value("rollout-time", file, &step, "the step has no time")
                    .with_help("add `at: \"2026-11-24T09:00:00Z\"` or `after: 15m`"),
                Err(StepTimeError::Both) => at_key(
                    "rollout-time",
                    file,
                    &format!("{step}/after"),
                    "the step has both `at` and `after`",
                )
                .with_help("keep one of them"),
                Err(StepTimeError::AfterFirst) => at_key(
                    "rollout-time",
                    file,
                    &format!("{step}/after"),
                    "the first step has no step before it to follow",
                )
                .with_help("give the first step an absolute time with `at:`"),
                Err(StepTimeError::BadTime(reason)) => at_value(
                    "rollout-time",
                    file,
                    &format!("{step}/at"),
                    format!("invalid time: {reason}"),
                )
                .with_help("write an RFC 3339 time with an offset, quoted, such as `\"2026-11-24T09:00:00Z\"`"),
                Err(StepTimeError::BadDuration(reason)) => at_value(
                    "rollout-time",
                    file,
                    &format!("{step}/after"),
                    format!("invalid duration: {reason}"),
                )
                .with_help("write a positive duration such as `15m`, `2h`, `1d` or `1h 30m`"),
            };
            out.push(diagnostic);
        }
    }
}

/// Ensure rollout steps are in strictly increasing time order.
pub(super) fn check_rollout_order(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        let times = &file.times;
        let mut latest: Option<(usize, jiff::Timestamp)> = None;
        for (position, time) in times.iter().enumerate() {
            let Ok(time) = time else { continue };
            if let Some((before, previous)) = latest
                && *time <= previous
            {
                out.push(
                    at_value(
                        "rollout-order",
                        file,
                        &format!("/rollout/{position}/at"),
                        format!(
                            "step {} at {time} is not after step {} at {previous}",
                            position + 1,
                            before + 1
                        ),
                    )
                    .with_help("order the steps by time, or use `after:` to place a step relative to the one before"),
                );
            }
            if latest.is_none_or(|(_, previous)| *time > previous) {
                latest = Some((position, *time));
            }
        }
    }
}

/// Ensure every rollout step sets the state of at least one environment.
pub(super) fn check_rollout_steps(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        for (position, step) in file.flag.rollout.iter().enumerate() {
            if step.environments.is_empty() {
                out.push(
                    at_value(
                        "rollout-empty-step",
                        file,
                        &format!("/rollout/{position}"),
                        "the step sets no environment",
                    )
                    .with_help("add the environments it changes, such as `production: { percentage_of_actors: 50 }`"),
                );
            }
        }
    }
}

/// Ensure every `guard` of a flag or a rollout step names one of the config's `guards`, and that
/// a guarded step with `on_breach: rollback` has an `environments` entry to return to for each
/// environment it sets.
pub(super) fn check_guard_references(registry: &Registry, out: &mut Vec<Diagnostic>) {
    let config = &registry.config;
    let known = |name: &str| config.guards.contains_key(name);
    let help = || {
        let names: Vec<String> = config.guards.keys().map(|name| format!("`{name}`")).collect();
        if names.is_empty() {
            "define the guard under `guards:` in flagops.yml".to_string()
        } else {
            format!("the guards in flagops.yml are {}", names.join(", "))
        }
    };
    for file in &registry.flags {
        let flag = &file.flag;
        let mut named: Vec<(String, &str)> = Vec::new();
        if let Some(guard) = &flag.guard {
            named.push(("/guard".to_string(), guard));
        }
        for (position, step) in flag.rollout.iter().enumerate() {
            if let Some(guard) = &step.guard {
                named.push((format!("/rollout/{position}/guard"), guard));
            }
        }
        for (pointer, guard) in named {
            if !known(guard) {
                out.push(
                    at_value("guard-reference", file, &pointer, format!("unknown guard `{guard}`")).with_help(help()),
                );
            }
        }
        for (position, step) in flag.rollout.iter().enumerate() {
            let guarded = crate::guard::guard_of(config, flag, position).is_some_and(known);
            if !guarded || crate::guard::on_breach(flag, position) != crate::model::OnBreach::Rollback {
                continue;
            }
            let pointer = if step.on_breach.is_some() {
                format!("/rollout/{position}/on_breach")
            } else {
                "/on_breach".to_string()
            };
            for environment in step.environments.keys() {
                if flag.environments.contains_key(environment) {
                    continue;
                }
                out.push(
                    at_value(
                        "guard-reference",
                        file,
                        &pointer,
                        format!(
                            "step {} rolls back on a breach, but `environments` has no state for `{environment}` to roll back to",
                            position + 1
                        ),
                    )
                    .with_help(format!(
                        "add `{environment}: STATE` under `environments` (the state before the plan), or write `on_breach: hold`"
                    )),
                );
            }
        }
    }
}

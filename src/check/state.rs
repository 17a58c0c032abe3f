//! Checks of the states a flag sets: environments, actor kinds, feature groups, percentages.

use crate::diagnostic::Diagnostic;
use crate::model::{Registry, State};
use crate::source::push_pointer;

use super::{StateAt, at_key, at_value, states};

/// Ensure every environment named in `environments` and in rollout steps is in `flagops.yml`.
pub(super) fn check_environments(registry: &Registry, out: &mut Vec<Diagnostic>) {
    let known: Vec<String> = registry
        .config
        .environment_names()
        .map(|name| format!("`{name}`"))
        .collect();
    for file in &registry.flags {
        let absent = file.flag.environments.absent().map(|environment| StateAt {
            step: None,
            environment,
        });
        for at in states(file).map(|(at, _)| at).chain(absent) {
            let environment = at.environment;
            if registry.config.environment(environment).is_none() {
                let suggestion = registry
                    .config
                    .environment_names()
                    .map(|name| (strsim::damerau_levenshtein(environment, name), name))
                    .filter(|(distance, _)| *distance <= 2)
                    .min()
                    .map(|(_, name)| name);
                let help = match suggestion {
                    Some(name) => format!("did you mean `{name}`?"),
                    None => format!("the environments in flagops.yml are {}", known.join(", ")),
                };
                out.push(
                    at_key(
                        "unknown-environment",
                        file,
                        &at.pointer(),
                        format!("unknown environment `{environment}`"),
                    )
                    .with_help(help),
                );
            }
        }
    }
}

/// Ensure every actor kind under `actors` is one of the config's `actor_kinds`.
pub(super) fn check_actor_kinds(registry: &Registry, out: &mut Vec<Diagnostic>) {
    let known: Vec<String> = registry
        .config
        .actor_kinds
        .keys()
        .map(|name| format!("`{name}`"))
        .collect();
    for file in &registry.flags {
        for (at, state) in states(file) {
            let State::Gates(gates) = state else { continue };
            for kind in gates.actors.keys() {
                if !registry.config.actor_kinds.contains_key(kind) {
                    let actors = push_pointer(&at.pointer(), "actors");
                    out.push(
                        at_key(
                            "unknown-actor-kind",
                            file,
                            &push_pointer(&actors, kind),
                            format!("unknown actor kind `{kind}`"),
                        )
                        .with_help(format!("the actor kinds in flagops.yml are {}", known.join(", "))),
                    );
                }
            }
        }
    }
}

/// Ensure every name under `groups` is one of the config's `feature_groups`.
pub(super) fn check_feature_groups(registry: &Registry, out: &mut Vec<Diagnostic>) {
    let known: Vec<String> = registry
        .config
        .feature_groups
        .iter()
        .map(|name| format!("`{name}`"))
        .collect();
    for file in &registry.flags {
        for (at, state) in states(file) {
            let State::Gates(gates) = state else { continue };

            for (position, group) in gates.groups.iter().enumerate() {
                if !registry.config.feature_groups.contains(group) {
                    let help = if known.is_empty() {
                        "flagops.yml lists no `feature_groups`".to_string()
                    } else {
                        format!("the feature groups in flagops.yml are {}", known.join(", "))
                    };
                    out.push(
                        at_value(
                            "unknown-feature-group",
                            file,
                            &format!("{}/{position}", push_pointer(&at.pointer(), "groups")),
                            format!("unknown feature group `{group}`"),
                        )
                        .with_help(help),
                    );
                }
            }
        }
    }
}

/// Ensure percentages have at most three decimals.
pub(super) fn check_percentages(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        for (at, state) in states(file) {
            let State::Gates(gates) = state else { continue };
            for (key, value) in [
                ("percentage_of_actors", gates.percentage_of_actors),
                ("percentage_of_time", gates.percentage_of_time),
            ] {
                let Some(value) = value else { continue };
                if thousandths(value).is_none() {
                    out.push(
                        at_value(
                            "percentage-precision",
                            file,
                            &push_pointer(&at.pointer(), key),
                            format!("{value} has more than three decimals"),
                        )
                        .with_help(format!(
                            "GitLab compares against the percentage times 1,000: use {:.3}",
                            value
                        )),
                    );
                }
            }
        }
    }
}

/// Ensure every conditional state is one GitLab can store: percentages strictly between 0 and 100.
pub(super) fn check_gates(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        for (at, state) in states(file) {
            let State::Gates(gates) = state else { continue };
            for (key, value) in [
                ("percentage_of_actors", gates.percentage_of_actors),
                ("percentage_of_time", gates.percentage_of_time),
            ] {
                let Some(value) = value else { continue };
                let help = if value >= 100.0 {
                    "GitLab stores 100% as `true`, which clears every other gate: write `true` instead of the mapping"
                } else if value <= 0.0 {
                    "GitLab stores 0% as `false`, which clears every other gate: leave the key out"
                } else {
                    continue;
                };
                out.push(
                    at_value(
                        "gates-representable",
                        file,
                        &push_pointer(&at.pointer(), key),
                        format!("{value}% cannot be stored as a gate"),
                    )
                    .with_help(help),
                );
            }
        }
    }
}

/// Ensure every state can be held by its environment's backend: a `flagd` environment cannot
/// hold a percentage of time.
pub(super) fn check_backend_gates(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        for (at, state) in states(file) {
            let State::Gates(gates) = state else { continue };
            if gates.percentage_of_time.is_none() {
                continue;
            }
            let Some(environment) = registry.config.environment(at.environment) else {
                continue;
            };
            if !matches!(environment.backend, crate::config::BackendConfig::Flagd { .. }) {
                continue;
            }
            out.push(
                at_key(
                    "backend-gates",
                    file,
                    &push_pointer(&at.pointer(), "percentage_of_time"),
                    format!(
                        "environment `{}` is kept in flagd, which cannot hold a percentage of time: its evaluation is deterministic",
                        at.environment
                    ),
                )
                .with_help("use `percentage_of_actors` for this environment: flagd splits actors by `fractional`, so each actor gets the same answer on every call"),
            );
        }
    }
}

/// Ensure every percentage set in an environment with `kind: unleash` is a whole number.
pub(super) fn check_unleash_percentages(registry: &Registry, out: &mut Vec<Diagnostic>) {
    let unleash = |environment: &str| {
        registry
            .config
            .environment(environment)
            .is_some_and(|environment| matches!(environment.backend, crate::config::BackendConfig::Unleash { .. }))
    };
    for file in &registry.flags {
        for (at, state) in states(file) {
            let State::Gates(gates) = state else { continue };
            if !unleash(at.environment) {
                continue;
            }
            for (key, value) in [
                ("percentage_of_actors", gates.percentage_of_actors),
                ("percentage_of_time", gates.percentage_of_time),
            ] {
                let Some(value) = value else { continue };
                if value.fract() != 0.0 {
                    out.push(
                        at_value(
                            "unleash-whole-percentage",
                            file,
                            &push_pointer(&at.pointer(), key),
                            format!(
                                "{value}% is not a whole number, and `{}` is an Unleash environment",
                                at.environment
                            ),
                        )
                        .with_help(if value < 1.0 {
                            // 0% of actors is no gate at all: the key is left out.
                            format!("Unleash's SDKs take whole percentages only: use 1, or leave `{key}` out")
                        } else {
                            format!(
                                "Unleash's SDKs take whole percentages only: use {} or {}",
                                value.floor(),
                                value.ceil()
                            )
                        }),
                    );
                }
            }
        }
    }
}

/// The percentage in thousandths, if it has at most three decimals.
pub fn thousandths(value: f64) -> Option<u32> {
    let scaled = value * 1000.0;
    let rounded = scaled.round();
    ((scaled - rounded).abs() < 1e-6 && (0.0..=100_000.0).contains(&rounded)).then_some(rounded as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousandths_allows_three_decimals() {
        assert_eq!(thousandths(12.5), Some(12_500));
        assert_eq!(thousandths(0.001), Some(1));
        assert_eq!(thousandths(33.333), Some(33_333));
        assert_eq!(thousandths(12.3456), None);
    }
}

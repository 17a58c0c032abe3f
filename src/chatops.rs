//! GitLab ChatOps's `feature set` as a change of a flag's desired state.
//!
//! `flagops set` takes ChatOps's command line; this module holds its rules: which values and
//! options ChatOps accepts, in the order it checks them (`check`), and what GitLab's Features
//! API does with an accepted request to the state an environment holds (`apply`): a boolean
//! clears every gate, a percentage replaces its gate and keeps the others, and an actor or
//! feature group is added (`true`, 100) or removed (`false`, 0) on its own.
//! This module is pure.

use crate::model::{ActorId, Gates, State};

/// The value of a `set`: `true`, `false`, or a percentage strictly between 0 and 100 (0 and 100
/// are `false` and `true`, as GitLab reads them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SetValue {
    /// `true` or `100`.
    On,
    /// `false` or `0`.
    Off,
    /// A percentage, above 0 and below 100, with at most three decimals.
    Percentage(f64),
}

/// What a percentage is a percentage of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PercentageOf {
    /// Neither `--actors` nor `--random`.
    Unset,
    /// `--actors`: Flipper's `percentage_of_actors`.
    Actors,
    /// `--random`: Flipper's `percentage_of_time`.
    Time,
}

/// One `set` request, as the command line gave it.
#[derive(Clone, Debug)]
pub struct Request {
    /// The value.
    pub value: SetValue,
    /// `--actors` or `--random`.
    pub of: PercentageOf,
    /// Whether both `--actors` and `--random` were given.
    pub both_modifiers: bool,
    /// `--ignore-random-deprecation-check`.
    pub allow_random: bool,
    /// Actors by kind and id, from `--project=`, `--group=`, `--user=`, ...
    pub actors: Vec<(String, String)>,
    /// Feature groups, from `--feature-group=`.
    pub groups: Vec<String>,
}

/// Reads a value as ChatOps does: `true`, `false`, or a percentage from 0 to 100 written as
/// digits with an optional fraction (`50`, `12.5`).
pub fn parse_value(text: &str) -> Result<SetValue, String> {
    match text {
        "true" => return Ok(SetValue::On),
        "false" => return Ok(SetValue::Off),
        _ => {}
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if !digits(whole) || (text.contains('.') && !digits(fraction)) {
        return Err(format!(
            "`{text}` is not a value\nhelp: write `true`, `false` or a percentage from 0 to 100, such as `50` or `12.5`"
        ));
    }
    let percentage: f64 = text.parse().map_err(|_| format!("`{text}` is not a percentage"))?;
    if percentage > 100.0 {
        return Err(format!("`{text}` is out of range\nhelp: a percentage is from 0 to 100"));
    }
    if fraction.len() > 3 {
        return Err(format!(
            "`{text}` has more than three decimals\nhelp: Flipper keeps percentages to a thousandth, such as `0.125`"
        ));
    }
    Ok(if percentage == 0.0 {
        SetValue::Off
    } else if percentage == 100.0 {
        SetValue::On
    } else {
        SetValue::Percentage(percentage)
    })
}

/// ChatOps's guards on a request, in its order (`set` validation 3 to 5): a percentage needs
/// `--actors` or `--random`, neither goes with actors or feature groups, and `--random` is
/// deprecated.
pub fn check(request: &Request) -> Result<(), String> {
    if request.both_modifiers {
        return Err("`--actors` and `--random` cannot be combined\nhelp: choose one".to_string());
    }
    if matches!(request.value, SetValue::Percentage(_)) && request.of == PercentageOf::Unset {
        return Err(
            "One of `--actors` or `--random` must be set for percentage values.\nhelp: `--actors` rolls out to a percentage of actors, as rollout issues do"
                .to_string(),
        );
    }
    let scoped = !request.actors.is_empty() || !request.groups.is_empty();
    if scoped && request.of != PercentageOf::Unset {
        return Err("`--actors` and `--random` cannot be combined with `--project`, `--group`, `--feature-group`, `--namespace`, `--user` or `--repository`\nhelp: percentages are global: set them in a command of their own".to_string());
    }
    if scoped && matches!(request.value, SetValue::Percentage(_)) {
        return Err(
            "actors and feature groups are set with `true` (or 100) and removed with `false` (or 0)".to_string(),
        );
    }
    if request.of == PercentageOf::Time && !request.allow_random {
        return Err("Time percentage feature flags are being deprecated: use `--actors` for a percentage of actors.\nhelp: pass `--ignore-random-deprecation-check` to set a percentage of time anyway".to_string());
    }
    Ok(())
}

/// The state an environment holds after `request`, from the state it held (`None`: nothing
/// stored), as GitLab's Features API changes it; or why GitLab refuses the request.
pub fn apply(old: Option<&State>, request: &Request) -> Result<State, String> {
    if !request.actors.is_empty() || !request.groups.is_empty() {
        let mut gates = match old {
            // The boolean gate is open: adding or removing an actor leaves the flag on for
            // everyone.
            Some(State::Boolean(true)) => return Ok(State::Boolean(true)),
            Some(State::Gates(gates)) => (**gates).clone(),
            Some(State::Boolean(false)) | None => Gates::default(),
        };
        let enable = match request.value {
            SetValue::On => true,
            SetValue::Off => false,
            SetValue::Percentage(_) => {
                return Err("actors and feature groups are set with `true` or `false`".to_string());
            }
        };
        for (kind, id) in &request.actors {
            let ids = gates.actors.entry(kind.clone()).or_default();
            let present = ids.iter().any(|existing| existing.0 == *id);
            if enable && !present {
                ids.push(ActorId(id.clone()));
            } else if !enable {
                ids.retain(|existing| existing.0 != *id);
            }
        }
        gates.actors.retain(|_, ids| !ids.is_empty());
        for group in &request.groups {
            let present = gates.groups.contains(group);
            if enable && !present {
                gates.groups.push(group.clone());
            } else if !enable {
                gates.groups.retain(|existing| existing != group);
            }
        }
        // Removing the last gate leaves the flag stored and off, as Flipper does.
        return Ok(if is_off(&gates) {
            State::Boolean(false)
        } else {
            State::Gates(Box::new(gates))
        });
    }
    match request.value {
        SetValue::On => Ok(State::Boolean(true)),
        SetValue::Off => Ok(State::Boolean(false)),
        SetValue::Percentage(percentage) => {
            let mut gates = match old {
                Some(State::Gates(gates)) => (**gates).clone(),
                _ => Gates::default(),
            };
            let fully_on = match old {
                Some(State::Boolean(on)) => *on,
                Some(State::Gates(gates)) => gates.percentage_of_time == Some(100.0),
                None => false,
            };
            let of = if request.of == PercentageOf::Time {
                "time"
            } else {
                "actors"
            };
            if fully_on {
                return Err(format!(
                    "Cannot enable percentage of {of} for a fully-enabled flag\nhelp: set `false` first (it clears every gate), then the percentage"
                ));
            }
            if request.of == PercentageOf::Time {
                gates.percentage_of_time = Some(percentage);
            } else {
                gates.percentage_of_actors = Some(percentage);
            }
            Ok(State::Gates(Box::new(gates)))
        }
    }
}

fn is_off(gates: &Gates) -> bool {
    gates.percentage_of_actors.is_none_or(|p| p == 0.0)
        && gates.percentage_of_time.is_none_or(|p| p == 0.0)
        && gates.actors.is_empty()
        && gates.groups.is_empty()
}

/// A state as the registry writes it in a flag file: `true`, or a mapping of gates with whole
/// percentages written as integers.
pub fn to_value(state: &State) -> serde_json::Value {
    use serde_json::{Map, Number, Value};
    match state {
        State::Boolean(on) => Value::Bool(*on),
        State::Gates(gates) => {
            let number = |percentage: f64| {
                if percentage.fract() == 0.0 {
                    Value::Number(Number::from(percentage as u64))
                } else {
                    Number::from_f64(percentage).map_or(Value::Null, Value::Number)
                }
            };
            let mut map = Map::new();
            if let Some(percentage) = gates.percentage_of_actors {
                map.insert("percentage_of_actors".into(), number(percentage));
            }
            if let Some(percentage) = gates.percentage_of_time {
                map.insert("percentage_of_time".into(), number(percentage));
            }
            if !gates.actors.is_empty() {
                let actors = gates
                    .actors
                    .iter()
                    .map(|(kind, ids)| {
                        let ids = ids.iter().map(|id| Value::String(id.0.clone())).collect();
                        (kind.clone(), Value::Array(ids))
                    })
                    .collect();
                map.insert("actors".into(), Value::Object(actors));
            }
            if !gates.groups.is_empty() {
                let groups = gates.groups.iter().cloned().map(Value::String).collect();
                map.insert("groups".into(), Value::Array(groups));
            }
            Value::Object(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_chatops_reads_them() {
        assert_eq!(parse_value("true"), Ok(SetValue::On));
        assert_eq!(parse_value("100"), Ok(SetValue::On));
        assert_eq!(parse_value("0.0"), Ok(SetValue::Off));
        assert_eq!(parse_value("12.5"), Ok(SetValue::Percentage(12.5)));
        for bad in ["101", "-5", "1e3", "50%", "", ".5", "5.", "True", "12.3456", "nan"] {
            assert!(parse_value(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_value("false"), Ok(SetValue::Off));
        assert_eq!(parse_value("0"), Ok(SetValue::Off));
        assert_eq!(parse_value("100.000"), Ok(SetValue::On));
        assert_eq!(parse_value("99.999"), Ok(SetValue::Percentage(99.999)));
        assert_eq!(parse_value("0.125"), Ok(SetValue::Percentage(0.125)));
        assert_eq!(
            parse_value("100.001"),
            Err("`100.001` is out of range\nhelp: a percentage is from 0 to 100".to_string())
        );
        assert_eq!(
            parse_value("1.0001"),
            Err("`1.0001` has more than three decimals\nhelp: Flipper keeps percentages to a thousandth, such as `0.125`".to_string())
        );
        assert_eq!(
            parse_value("1.x"),
            Err("`1.x` is not a value\nhelp: write `true`, `false` or a percentage from 0 to 100, such as `50` or `12.5`".to_string())
        );
    }

    fn request(value: SetValue, of: PercentageOf) -> Request {
        Request {
            value,
            of,
            both_modifiers: false,
            allow_random: false,
            actors: Vec::new(),
            groups: Vec::new(),
        }
    }

    fn for_project(value: SetValue, id: &str) -> Request {
        Request {
            actors: vec![("project".into(), id.into())],
            ..request(value, PercentageOf::Unset)
        }
    }

    fn for_group(value: SetValue, group: &str) -> Request {
        Request {
            groups: vec![group.into()],
            ..request(value, PercentageOf::Unset)
        }
    }

    fn gates(value: serde_json::Value) -> State {
        serde_json::from_value(value).unwrap()
    }

    // Each guard, in ChatOps's order: the first that fails says why.
    #[test]
    fn check_applies_chatops_guards_in_its_order() {
        let half = SetValue::Percentage(50.0);
        assert_eq!(check(&request(half, PercentageOf::Actors)), Ok(()));
        assert_eq!(check(&request(SetValue::On, PercentageOf::Unset)), Ok(()));
        assert_eq!(check(&for_project(SetValue::On, "1")), Ok(()));
        assert_eq!(check(&for_group(SetValue::Off, "beta")), Ok(()));
        let both = Request {
            both_modifiers: true,
            ..request(half, PercentageOf::Actors)
        };
        assert_eq!(
            check(&both),
            Err("`--actors` and `--random` cannot be combined\nhelp: choose one".to_string())
        );
        assert_eq!(
            check(&request(half, PercentageOf::Unset)),
            Err("One of `--actors` or `--random` must be set for percentage values.\nhelp: `--actors` rolls out to a percentage of actors, as rollout issues do".to_string())
        );
        let scoped = "`--actors` and `--random` cannot be combined with `--project`, `--group`, `--feature-group`, `--namespace`, `--user` or `--repository`\nhelp: percentages are global: set them in a command of their own";
        for scoped_request in [for_project(SetValue::On, "1"), for_group(SetValue::On, "beta")] {
            let with_actors = Request {
                of: PercentageOf::Actors,
                ..scoped_request
            };
            assert_eq!(check(&with_actors), Err(scoped.to_string()));
        }
        let random = "Time percentage feature flags are being deprecated: use `--actors` for a percentage of actors.\nhelp: pass `--ignore-random-deprecation-check` to set a percentage of time anyway";
        assert_eq!(check(&request(half, PercentageOf::Time)), Err(random.to_string()));
        let allowed = Request {
            allow_random: true,
            ..request(half, PercentageOf::Time)
        };
        assert_eq!(check(&allowed), Ok(()));
    }

    // A boolean clears every gate; a percentage replaces its own gate and keeps the others.
    #[test]
    fn apply_sets_booleans_and_percentages_as_the_features_api_does() {
        let mixed = gates(
            serde_json::json!({ "percentage_of_actors": 10, "actors": { "project": ["1"] }, "groups": ["beta"] }),
        );
        assert_eq!(
            apply(Some(&mixed), &request(SetValue::On, PercentageOf::Unset)),
            Ok(State::Boolean(true))
        );
        assert_eq!(
            apply(Some(&mixed), &request(SetValue::Off, PercentageOf::Unset)),
            Ok(State::Boolean(false))
        );
        let random = request(SetValue::Percentage(2.5), PercentageOf::Time);
        assert_eq!(
            apply(Some(&mixed), &random),
            Ok(gates(
                serde_json::json!({ "percentage_of_actors": 10, "percentage_of_time": 2.5, "actors": { "project": ["1"] }, "groups": ["beta"] })
            ))
        );
        let actors = request(SetValue::Percentage(25.0), PercentageOf::Actors);
        assert_eq!(
            apply(Some(&mixed), &actors),
            Ok(gates(
                serde_json::json!({ "percentage_of_actors": 25, "actors": { "project": ["1"] }, "groups": ["beta"] })
            ))
        );
        assert_eq!(
            apply(None, &actors),
            Ok(gates(serde_json::json!({ "percentage_of_actors": 25 })))
        );
        assert_eq!(
            apply(Some(&State::Boolean(false)), &random),
            Ok(gates(serde_json::json!({ "percentage_of_time": 2.5 })))
        );
        // A fully-on flag refuses a percentage.
        assert_eq!(
            apply(Some(&State::Boolean(true)), &actors),
            Err("Cannot enable percentage of actors for a fully-enabled flag\nhelp: set `false` first (it clears every gate), then the percentage".to_string())
        );
        let always = gates(serde_json::json!({ "percentage_of_time": 100 }));
        assert_eq!(
            apply(Some(&always), &random),
            Err("Cannot enable percentage of time for a fully-enabled flag\nhelp: set `false` first (it clears every gate), then the percentage".to_string())
        );
        let often = gates(serde_json::json!({ "percentage_of_time": 99.5 }));
        assert_eq!(
            apply(Some(&often), &actors),
            Ok(gates(
                serde_json::json!({ "percentage_of_time": 99.5, "percentage_of_actors": 25 })
            ))
        );
    }

    // An actor or a feature group is added or removed on its own; removing the last gate leaves
    // the flag stored and off.
    #[test]
    fn apply_adds_and_removes_actors_and_groups_alone() {
        assert_eq!(
            apply(None, &for_project(SetValue::On, "1")),
            Ok(gates(serde_json::json!({ "actors": { "project": ["1"] } })))
        );
        assert_eq!(
            apply(Some(&State::Boolean(true)), &for_project(SetValue::Off, "1")),
            Ok(State::Boolean(true))
        );
        let listed = gates(
            serde_json::json!({ "percentage_of_actors": 10, "actors": { "project": ["1", "2"] }, "groups": ["beta"] }),
        );
        assert_eq!(
            apply(Some(&listed), &for_project(SetValue::On, "1")),
            Ok(listed.clone())
        );
        assert_eq!(
            apply(Some(&listed), &for_project(SetValue::On, "3")),
            Ok(gates(
                serde_json::json!({ "percentage_of_actors": 10, "actors": { "project": ["1", "2", "3"] }, "groups": ["beta"] })
            ))
        );
        assert_eq!(
            apply(Some(&listed), &for_project(SetValue::Off, "1")),
            Ok(gates(
                serde_json::json!({ "percentage_of_actors": 10, "actors": { "project": ["2"] }, "groups": ["beta"] })
            ))
        );
        assert_eq!(
            apply(Some(&listed), &for_project(SetValue::Off, "9")),
            Ok(listed.clone())
        );
        assert_eq!(
            apply(Some(&listed), &for_group(SetValue::On, "beta")),
            Ok(listed.clone())
        );
        assert_eq!(
            apply(Some(&listed), &for_group(SetValue::On, "gamma")),
            Ok(gates(
                serde_json::json!({ "percentage_of_actors": 10, "actors": { "project": ["1", "2"] }, "groups": ["beta", "gamma"] })
            ))
        );
        assert_eq!(
            apply(Some(&listed), &for_group(SetValue::Off, "beta")),
            Ok(gates(
                serde_json::json!({ "percentage_of_actors": 10, "actors": { "project": ["1", "2"] } })
            ))
        );
        // The last gate removed: stored and off, whatever zero percentages remain.
        let last = gates(serde_json::json!({ "percentage_of_actors": 0, "percentage_of_time": 0, "groups": ["beta"] }));
        assert_eq!(
            apply(Some(&last), &for_group(SetValue::Off, "beta")),
            Ok(State::Boolean(false))
        );
        let one = gates(serde_json::json!({ "actors": { "project": ["1"] } }));
        assert_eq!(
            apply(Some(&one), &for_project(SetValue::Off, "1")),
            Ok(State::Boolean(false))
        );
        assert_eq!(
            apply(None, &for_group(SetValue::Off, "beta")),
            Ok(State::Boolean(false))
        );
        // Each remaining gate keeps the flag conditional.
        for kept in [
            serde_json::json!({ "percentage_of_actors": 5, "groups": ["beta"] }),
            serde_json::json!({ "percentage_of_time": 5, "groups": ["beta"] }),
            serde_json::json!({ "actors": { "user": ["a"] }, "groups": ["beta"] }),
            serde_json::json!({ "groups": ["beta", "gamma"] }),
        ] {
            let result = apply(Some(&gates(kept.clone())), &for_group(SetValue::Off, "beta"));
            assert!(matches!(result, Ok(State::Gates(_))), "{kept}: {result:?}");
        }
        assert_eq!(
            apply(None, &for_project(SetValue::Percentage(5.0), "1")),
            Err("actors and feature groups are set with `true` or `false`".to_string())
        );
    }

    #[test]
    fn to_value_writes_whole_percentages_as_integers() {
        assert_eq!(to_value(&State::Boolean(true)), serde_json::json!(true));
        assert_eq!(to_value(&State::Boolean(false)), serde_json::json!(false));
        let state = gates(
            serde_json::json!({ "percentage_of_actors": 25, "percentage_of_time": 2.5, "actors": { "project": ["1", "a/b"], "user": ["x"] }, "groups": ["beta", "alpha"] }),
        );
        let value = to_value(&state);
        assert_eq!(
            value,
            serde_json::json!({ "percentage_of_actors": 25, "percentage_of_time": 2.5, "actors": { "project": ["1", "a/b"], "user": ["x"] }, "groups": ["beta", "alpha"] })
        );
        assert!(value["percentage_of_actors"].is_u64());
        assert_eq!(
            to_value(&gates(serde_json::json!({ "percentage_of_time": 3 }))),
            serde_json::json!({ "percentage_of_time": 3 })
        );
        assert_eq!(to_value(&gates(serde_json::json!({}))), serde_json::json!({}));
    }
}

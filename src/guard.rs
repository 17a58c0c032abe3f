//! Metric guards: which rollout steps wait on a Prometheus query, and what its answer decides.
//!
//! A guard (`guards` in `flagops.yml`) is a PromQL instant query with bounds (`max`, `min`). A
//! rollout step names one with `guard:`, or inherits its flag's or its flag type's. Before a
//! sync applies a guarded step (`crate::steps::Standing::applying`), `pending` lists the queries
//! to ask, `crate::prometheus` asks them, and `judge` turns each answer into a `Verdict`; the
//! second pass of `crate::steps::resolve` then applies the step only on a healthy verdict. A
//! breach holds the step, or, with `on_breach: rollback`, takes the environment back to the
//! flag's `environments` entry and stops the plan there until the guarded step is edited; no data or no answer always holds. Rollback steps are never
//! guarded. This module is pure: the answers are handed to it.

use serde::{Deserialize, Serialize};

use crate::config::{Config, GuardConfig};
use crate::model::{Flag, OnBreach, Registry};
use crate::steps::Standing;

/// The template variables a guard's query may use.
pub const VARIABLES: &[&str] = &["flag", "environment"];

/// A query to ask before a guarded step takes effect.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// The flag.
    pub flag: String,
    /// The step it guards (1 for the first of the plan).
    pub step: usize,
    /// The guard's name.
    pub guard: String,
    /// The query, its variables replaced.
    pub query: String,
    /// The largest healthy value.
    pub max: Option<f64>,
    /// The smallest healthy value.
    pub min: Option<f64>,
    /// What a breach does.
    pub on_breach: OnBreach,
}

/// What a guard said about a step: kept in the standing, in the sync's report and, when the
/// step (or the rollback that replaced it) is applied, in its step mark and audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The flag.
    pub flag: String,
    /// The step the guard stands before.
    pub step: usize,
    /// The guard's name.
    pub guard: String,
    /// The query asked.
    pub query: String,
    /// Its bounds in words: `max 0.01`, `min 5, max 10`.
    pub limit: String,
    /// What a breach does.
    pub on_breach: OnBreach,
    /// The answer.
    pub outcome: Outcome,
}

/// How a guard's query was answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "is", rename_all = "kebab-case")]
pub enum Outcome {
    /// Every value is within the bounds: the step goes ahead.
    Healthy {
        /// The value, as Prometheus wrote it.
        value: String,
    },
    /// A value is out of bounds.
    Breached {
        /// The value, as Prometheus wrote it.
        value: String,
    },
    /// The query returned no series, or only NaN.
    NoData,
    /// Prometheus could not be asked, or refused the query.
    Unreachable {
        /// Why.
        error: String,
    },
}

impl Outcome {
    /// Whether the step may go ahead.
    pub fn is_healthy(&self) -> bool {
        matches!(self, Outcome::Healthy { .. })
    }
}

impl Verdict {
    /// Whether the verdict takes the environment back to the flag's `environments` entry: a
    /// breach, with `on_breach: rollback`.
    pub fn rolls_back(&self) -> bool {
        matches!(self.outcome, Outcome::Breached { .. }) && self.on_breach == OnBreach::Rollback
    }
}

/// The guard of step `position` (0-based) of `flag`'s plan: the step's, else the flag's, else
/// its type's; `None` for a rollback step.
pub fn guard_of<'a>(config: &'a Config, flag: &'a Flag, position: usize) -> Option<&'a str> {
    let step = flag.rollout.get(position)?;
    if step.rollback {
        return None;
    }
    step.guard
        .as_deref()
        .or(flag.guard.as_deref())
        .or_else(|| config.types.get(&flag.flag_type)?.guard.as_deref())
}

/// What a breach of the guard of step `position` of `flag` does: the step's, else the flag's
/// `on_breach`, else `hold`.
pub fn on_breach(flag: &Flag, position: usize) -> OnBreach {
    flag.rollout
        .get(position)
        .and_then(|step| step.on_breach)
        .or(flag.on_breach)
        .unwrap_or_default()
}

/// `query` with `{{flag}}` and `{{environment}}` replaced.
pub fn expand(query: &str, flag: &str, environment: &str) -> String {
    query.replace("{{flag}}", flag).replace("{{environment}}", environment)
}

/// The variables `query` uses that are not in `VARIABLES`, as written between `{{` and `}}`.
pub fn unknown_variables(query: &str) -> Vec<String> {
    let mut unknown = Vec::new();
    let mut rest = query;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        if !VARIABLES.contains(&name) {
            unknown.push(after[..end].to_string());
        }
        rest = &after[end + 2..];
    }
    unknown
}

/// The query to ask before `standing`'s step takes effect in `environment`, when that step is
/// guarded.
pub fn check_for(config: &Config, flag: &Flag, environment: &str, standing: &Standing) -> Option<Check> {
    let step = standing.applying?;
    let name = guard_of(config, flag, step - 1)?;
    let guard: &GuardConfig = config.guards.get(name)?;
    Some(Check {
        flag: flag.name.clone(),
        step,
        guard: name.to_string(),
        query: expand(&guard.query, &flag.name, environment),
        max: guard.max,
        min: guard.min,
        on_breach: on_breach(flag, step - 1),
    })
}

/// The queries to ask before the steps of `standings` (in `environment`) take effect.
pub fn pending(registry: &Registry, environment: &str, standings: &[Standing]) -> Vec<Check> {
    standings
        .iter()
        .filter_map(|standing| {
            let flag = registry.flag(&standing.flag)?;
            check_for(&registry.config, flag, environment, standing)
        })
        .collect()
}

/// The verdict on `check` given Prometheus's answer: the values of the series it returned, as
/// written (an empty list for none), or why there is no answer.
pub fn judge(check: &Check, answer: Result<Vec<String>, String>) -> Verdict {
    let outcome = match answer {
        Err(error) => Outcome::Unreachable { error },
        Ok(values) => {
            let numbers: Vec<(&String, f64)> = values
                .iter()
                .filter_map(|text| Some((text, text.parse::<f64>().ok().filter(|value| !value.is_nan())?)))
                .collect();
            let breach = numbers.iter().find(|(_, value)| {
                check.max.is_some_and(|max| *value > max) || check.min.is_some_and(|min| *value < min)
            });
            match (breach, numbers.first()) {
                (Some((text, _)), _) => Outcome::Breached { value: (*text).clone() },
                (None, Some((text, _))) => Outcome::Healthy { value: (*text).clone() },
                (None, None) => Outcome::NoData,
            }
        }
    };
    Verdict {
        flag: check.flag.clone(),
        step: check.step,
        guard: check.guard.clone(),
        query: check.query.clone(),
        limit: limit(check.min, check.max),
        on_breach: check.on_breach,
        outcome,
    }
}

/// `min 5, max 10`.
fn limit(min: Option<f64>, max: Option<f64>) -> String {
    let mut parts = Vec::new();
    if let Some(min) = min {
        parts.push(format!("min {min}"));
    }
    if let Some(max) = max {
        parts.push(format!("max {max}"));
    }
    parts.join(", ")
}

/// `verdict` in words: ``guard `error_rate` holds step 2: 0.05 breaches max 0.01``.
pub fn describe(verdict: &Verdict) -> String {
    let Verdict { guard, step, limit, .. } = verdict;
    let why = match &verdict.outcome {
        Outcome::Healthy { value } => return format!("guard `{guard}` passed step {step}: {value} within {limit}"),
        Outcome::Breached { value } => format!("{value} breaches {limit}"),
        Outcome::NoData => "the query returned no data".to_string(),
        Outcome::Unreachable { error } => format!("Prometheus did not answer: {error}"),
    };
    if verdict.rolls_back() {
        format!("guard `{guard}` before step {step}, back to the state before the plan: {why}")
    } else {
        format!("guard `{guard}` holds step {step}: {why}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Verdict {
        fn with(self, outcome: Outcome) -> Verdict {
            Verdict { outcome, ..self }
        }
    }

    fn check() -> Check {
        Check {
            flag: "f".into(),
            step: 2,
            guard: "error_rate".into(),
            query: "q".into(),
            max: Some(0.01),
            min: None,
            on_breach: OnBreach::Hold,
        }
    }

    #[test]
    fn judge_reads_values_bounds_and_silence() {
        let outcome = |answer: Result<Vec<&str>, &str>| {
            judge(
                &check(),
                answer
                    .map(|values| values.into_iter().map(str::to_string).collect())
                    .map_err(str::to_string),
            )
            .outcome
        };
        assert_eq!(outcome(Ok(vec!["0.002"])), Outcome::Healthy { value: "0.002".into() });
        assert_eq!(
            outcome(Ok(vec!["0.002", "0.5"])),
            Outcome::Breached { value: "0.5".into() }
        );
        assert_eq!(outcome(Ok(vec![])), Outcome::NoData);
        assert_eq!(outcome(Ok(vec!["NaN"])), Outcome::NoData);
        assert_eq!(
            outcome(Err("refused")),
            Outcome::Unreachable {
                error: "refused".into()
            }
        );
    }

    // A bound itself is healthy; only a value past it breaches, on either side.
    #[test]
    fn judge_treats_each_bound_as_healthy_and_only_values_past_it_as_breaches() {
        let verdict = |max: Option<f64>, min: Option<f64>, value: &str| {
            let check = Check { max, min, ..check() };
            judge(&check, Ok(vec![value.to_string()])).outcome
        };
        let healthy = |value: &str| Outcome::Healthy { value: value.into() };
        let breached = |value: &str| Outcome::Breached { value: value.into() };
        assert_eq!(verdict(Some(0.01), None, "0.01"), healthy("0.01"));
        assert_eq!(verdict(Some(0.01), None, "0.02"), breached("0.02"));
        assert_eq!(verdict(None, Some(5.0), "5"), healthy("5"));
        assert_eq!(verdict(None, Some(5.0), "10"), healthy("10"));
        assert_eq!(verdict(None, Some(5.0), "4"), breached("4"));
        assert_eq!(verdict(Some(10.0), Some(5.0), "7"), healthy("7"));
    }

    /// The example config with two guards: `error_rate` and `latency`.
    fn config() -> Config {
        let mut config = Config::example();
        config.guards.insert(
            "error_rate".into(),
            GuardConfig {
                description: None,
                query: "errors{flag=\"{{flag}}\",environment=\"{{environment}}\"}".into(),
                max: Some(0.01),
                min: None,
            },
        );
        config.guards.insert(
            "latency".into(),
            GuardConfig {
                description: None,
                query: "latency".into(),
                max: None,
                min: Some(1.0),
            },
        );
        config
    }

    /// A step in production with its own guard and `on_breach`.
    fn step(guard: Option<&str>, on_breach: Option<OnBreach>) -> crate::model::RolloutStep {
        crate::model::RolloutStep {
            at: Some("2026-11-24T09:00:00Z".into()),
            after: None,
            rollback: false,
            note: None,
            guard: guard.map(str::to_string),
            on_breach,
            environments: [(
                "production".to_string(),
                serde_json::from_value(serde_json::json!(true)).unwrap(),
            )]
            .into(),
        }
    }

    /// `flag`'s standing with step `step` taking effect.
    fn applying(flag: &str, step: usize) -> Standing {
        Standing {
            flag: flag.into(),
            steps: 3,
            applied: None,
            applying: Some(step),
            next: None,
            state: None,
            guard: None,
            rolled_back: None,
            mark: None,
        }
    }

    // Each step's own `on_breach` decides what a breach of its guard does, not the next step's.
    #[test]
    fn a_check_takes_the_on_breach_of_its_own_step() {
        let config = config();
        let step = |on_breach| step(Some("error_rate"), on_breach);
        let flag = Flag {
            rollout: vec![
                step(Some(OnBreach::Rollback)),
                step(Some(OnBreach::Hold)),
                step(Some(OnBreach::Rollback)),
            ],
            ..Flag::example("f")
        };
        let check = |step: usize| check_for(&config, &flag, "production", &applying("f", step)).unwrap();
        assert_eq!(
            check(1),
            Check {
                flag: "f".into(),
                step: 1,
                guard: "error_rate".into(),
                query: "errors{flag=\"f\",environment=\"production\"}".into(),
                max: Some(0.01),
                min: None,
                on_breach: OnBreach::Rollback,
            }
        );
        assert_eq!(check(2).on_breach, OnBreach::Hold);
        assert_eq!(check(3).on_breach, OnBreach::Rollback);
    }

    // A step's guard is its own, else its flag's, else its type's; a rollback step has none. What
    // a breach does is the step's, else the flag's, else `hold`.
    #[test]
    fn guards_and_breaches_are_inherited_from_the_flag_and_its_type() {
        let mut config = config();
        let rollback = crate::model::RolloutStep {
            rollback: true,
            ..step(Some("latency"), None)
        };
        let steps = vec![
            step(Some("latency"), None),
            step(None, Some(OnBreach::Rollback)),
            rollback,
        ];
        let plain = Flag {
            rollout: steps.clone(),
            ..Flag::example("plain")
        };
        let guarded = Flag {
            rollout: steps,
            guard: Some("error_rate".into()),
            on_breach: Some(OnBreach::Rollback),
            ..Flag::example("guarded")
        };
        fn guards<'a>(config: &'a Config, flag: &'a Flag) -> Vec<Option<&'a str>> {
            (0..4).map(|position| guard_of(config, flag, position)).collect()
        }
        assert_eq!(guards(&config, &plain), [Some("latency"), None, None, None]);
        assert_eq!(
            guards(&config, &guarded),
            [Some("latency"), Some("error_rate"), None, None]
        );
        config.types.get_mut("wip").unwrap().guard = Some("error_rate".into());
        assert_eq!(
            guards(&config, &plain),
            [Some("latency"), Some("error_rate"), None, None]
        );
        let breaches = |flag: &Flag| (0..4).map(|position| on_breach(flag, position)).collect::<Vec<_>>();
        assert_eq!(
            breaches(&plain),
            [OnBreach::Hold, OnBreach::Rollback, OnBreach::Hold, OnBreach::Hold]
        );
        assert_eq!(breaches(&guarded), [OnBreach::Rollback; 4]);

        // `pending` asks the query of each guarded step taking effect, for flags it knows.
        let registry = Registry::new(
            config,
            [plain, guarded].into_iter().map(crate::model::FlagFile::of).collect(),
            "flags".into(),
            Default::default(),
        );
        let standings = [
            applying("plain", 2),
            applying("guarded", 1),
            applying("guarded", 3),
            applying("unknown", 1),
            Standing {
                applying: None,
                ..applying("plain", 1)
            },
        ];
        assert_eq!(
            pending(&registry, "staging", &standings),
            [
                Check {
                    flag: "plain".into(),
                    step: 2,
                    guard: "error_rate".into(),
                    query: "errors{flag=\"plain\",environment=\"staging\"}".into(),
                    max: Some(0.01),
                    min: None,
                    on_breach: OnBreach::Rollback,
                },
                Check {
                    flag: "guarded".into(),
                    step: 1,
                    guard: "latency".into(),
                    query: "latency".into(),
                    max: None,
                    min: Some(1.0),
                    on_breach: OnBreach::Rollback,
                },
            ]
        );
    }

    #[test]
    fn verdicts_say_whether_a_step_goes_ahead_or_rolls_back() {
        let verdict = |outcome: Outcome, on_breach| {
            Verdict {
                on_breach,
                ..judge(&check(), Ok(vec![]))
            }
            .with(outcome)
        };
        let breached = Outcome::Breached { value: "1".into() };
        assert!(Outcome::Healthy { value: "0".into() }.is_healthy());
        for unhealthy in [
            breached.clone(),
            Outcome::NoData,
            Outcome::Unreachable { error: "e".into() },
        ] {
            assert!(!unhealthy.is_healthy());
        }
        assert!(verdict(breached.clone(), OnBreach::Rollback).rolls_back());
        assert!(!verdict(breached.clone(), OnBreach::Hold).rolls_back());
        assert!(!verdict(Outcome::NoData, OnBreach::Rollback).rolls_back());
        assert!(!verdict(Outcome::Healthy { value: "0".into() }, OnBreach::Rollback).rolls_back());
        let words = |outcome, on_breach| describe(&verdict(outcome, on_breach));
        assert_eq!(
            words(Outcome::Healthy { value: "0.002".into() }, OnBreach::Rollback),
            "guard `error_rate` passed step 2: 0.002 within max 0.01"
        );
        assert_eq!(
            words(breached.clone(), OnBreach::Hold),
            "guard `error_rate` holds step 2: 1 breaches max 0.01"
        );
        assert_eq!(
            words(breached, OnBreach::Rollback),
            "guard `error_rate` before step 2, back to the state before the plan: 1 breaches max 0.01"
        );
        assert_eq!(
            words(Outcome::NoData, OnBreach::Rollback),
            "guard `error_rate` holds step 2: the query returned no data"
        );
        assert_eq!(
            words(
                Outcome::Unreachable {
                    error: "refused".into()
                },
                OnBreach::Hold
            ),
            "guard `error_rate` holds step 2: Prometheus did not answer: refused"
        );
        assert_eq!(limit(Some(5.0), Some(10.5)), "min 5, max 10.5");
        assert_eq!(limit(None, None), "");
    }

    #[test]
    fn queries_name_their_variables() {
        assert_eq!(unknown_variables("{{}}"), [""]);
        assert_eq!(unknown_variables("{{flag}}{{x}}"), ["x"]);
        assert_eq!(
            expand("x{flag=\"{{flag}}\",env=\"{{environment}}\"}", "a", "prod"),
            "x{flag=\"a\",env=\"prod\"}"
        );
        assert_eq!(unknown_variables("{{flag}} {{ environment }} {{env}}"), ["env"]);
    }
}

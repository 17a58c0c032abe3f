//! Rollout plans over time: when each step takes effect, and the desired state they give at
//! any moment.
//!
//! The desired state at a time T is a pure function of the flag file and T. This module is pure:
//! it is handed the time, never reads a clock.

use std::borrow::Cow;
use std::collections::BTreeSet;

use jiff::{SignedDuration, SpanRelativeTo, Timestamp};

use crate::model::{self, Registry, RolloutStep};
use crate::state::{EnvironmentState, Stored};

/// Why a step's time could not be worked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepTimeError {
    /// Neither `at` nor `after`.
    Missing,
    /// Both `at` and `after`.
    Both,
    /// `after` on the first step, which has nothing before it.
    AfterFirst,
    /// `at` is not an RFC 3339 time.
    BadTime(String),
    /// `after` is not a positive duration.
    BadDuration(String),
    /// The previous step has no time, so this relative one has none either.
    AfterInvalid,
}

/// Parses an `after` duration such as `15m`, `2h`, `1d` or `1h 30m`; days and weeks are 24 hours
/// and 7 days. Months and years are refused, since their length varies.
pub fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let span: jiff::Span = text.trim().parse().map_err(|error: jiff::Error| error.to_string())?;
    if span.get_years() != 0 || span.get_months() != 0 {
        return Err("months and years have no fixed length: use days or weeks".to_string());
    }
    let duration = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|error| error.to_string())?;
    if duration <= SignedDuration::ZERO {
        return Err("the duration must be positive".to_string());
    }
    Ok(duration)
}

/// Parses an `at` time: RFC 3339 with an offset, such as `2026-11-24T09:00:00Z`.
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>().map_err(|error| error.to_string())
}

/// Parses a moment given on the command line (`--at`), relative to `now`: `now`, a date
/// (`2026-12-01`, midnight UTC), an RFC 3339 time (`2026-12-01T09:00:00Z`), or a duration
/// before or after `now` (`+2h`, `-1d`, `+1h 30m`, in the units of `parse_duration`).
pub fn parse_moment(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    let text = text.trim();
    if text == "now" {
        return Ok(now);
    }
    if let Some((sign, rest)) = text
        .strip_prefix('+')
        .map(|rest| (1, rest))
        .or_else(|| text.strip_prefix('-').map(|rest| (-1, rest)))
    {
        let duration = parse_duration(rest)?;
        let shifted = if sign > 0 {
            now.checked_add(duration)
        } else {
            now.checked_sub(duration)
        };
        return shifted.map_err(|error| error.to_string());
    }
    if text.len() == 10
        && let Ok(date) = text.parse::<jiff::civil::Date>()
    {
        return date
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|zoned| zoned.timestamp())
            .map_err(|error| error.to_string());
    }
    parse_time(text)
}

/// The time each step takes effect, or why it has none.
pub fn step_times(steps: &[RolloutStep]) -> Vec<Result<Timestamp, StepTimeError>> {
    let mut times: Vec<Result<Timestamp, StepTimeError>> = Vec::with_capacity(steps.len());
    for (position, step) in steps.iter().enumerate() {
        let time = match (&step.at, &step.after) {
            (None, None) => Err(StepTimeError::Missing),
            (Some(_), Some(_)) => Err(StepTimeError::Both),
            (Some(at), None) => parse_time(at).map_err(StepTimeError::BadTime),
            (None, Some(_)) if position == 0 => Err(StepTimeError::AfterFirst),
            (None, Some(after)) => match parse_duration(after) {
                Err(message) => Err(StepTimeError::BadDuration(message)),
                Ok(duration) => match &times[position - 1] {
                    Ok(previous) => previous
                        .checked_add(duration)
                        .map_err(|e| StepTimeError::BadDuration(e.to_string())),
                    Err(_) => Err(StepTimeError::AfterInvalid),
                },
            },
        };
        times.push(time);
    }
    times
}

/// The desired state of every flag of `registry` in `environment` at `at`: the flag's
/// `environments` entry, overridden by the latest rollout step due at or before `at` that sets
/// this environment.
pub fn desired(registry: &Registry, environment: &str, at: jiff::Timestamp) -> EnvironmentState {
    let mut state = EnvironmentState::new();
    for file in &registry.flags {
        if let Some(stored) = Timeline::of(file).desired(environment, at) {
            state.insert(file.flag.name.clone(), stored);
        }
    }
    state
}

/// The flags of `registry` whose file writes `<environment>: absent`: where their desired state
/// is absent (no rollout step sets one), a sync deletes what the environment holds of them. A
/// flag with no entry for the environment is not among them: what the environment holds of it
/// is left alone.
pub fn absent<'a>(registry: &'a Registry, environment: &str) -> BTreeSet<&'a str> {
    registry
        .flags
        .iter()
        .filter(|file| file.flag.environments.is_absent(environment))
        .map(|file| file.flag.name.as_str())
        .collect()
}

/// The desired state of one flag in `environment` at `at`, or `None` for absent.
pub fn desired_flag(flag: &model::Flag, environment: &str, at: jiff::Timestamp) -> Option<Stored> {
    Timeline::new(flag).desired(environment, at)
}

/// Where a flag's rollout plan stands at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The latest step due at or before the moment (index into `rollout`).
    pub current: Option<usize>,
    /// The first step still to come, with its time.
    pub next: Option<(usize, Timestamp)>,
}

/// Where `flag`'s rollout plan stands at `at`.
pub fn progress(flag: &model::Flag, at: Timestamp) -> Progress {
    Timeline::new(flag).progress(at)
}

/// A flag with the time of each of its rollout steps worked out once, for the callers that ask
/// about many moments or environments of one plan (the policy checks): each question is then a
/// walk over at most a few steps, with no time or duration parsed again.
#[derive(Clone, Debug)]
pub struct Timeline<'a> {
    flag: &'a model::Flag,
    times: Cow<'a, [Result<Timestamp, StepTimeError>]>,
}

impl<'a> Timeline<'a> {
    /// The timeline of `flag`'s plan.
    pub fn new(flag: &'a model::Flag) -> Timeline<'a> {
        Timeline {
            flag,
            times: Cow::Owned(step_times(&flag.rollout)),
        }
    }

    /// The timeline of the plan of a flag read from a file, with the times worked out when it
    /// was read.
    pub fn of(file: &'a model::FlagFile) -> Timeline<'a> {
        Timeline {
            flag: &file.flag,
            times: Cow::Borrowed(&file.times),
        }
    }

    /// The flag.
    pub fn flag(&self) -> &'a model::Flag {
        self.flag
    }

    /// The time each step takes effect, or why it has none, as [`step_times`] gives them.
    pub fn times(&self) -> &[Result<Timestamp, StepTimeError>] {
        &self.times
    }

    /// How many steps have taken effect at `at`: those from the first up to the first step with
    /// no time or a time after `at`.
    fn due(&self, at: Timestamp) -> usize {
        self.times
            .iter()
            .position(|time| time.as_ref().is_ok_and(|time| *time > at) || time.is_err())
            .unwrap_or(self.times.len())
    }

    /// The state the file writes for `environment` at `at`: the latest step due by then that
    /// sets it, else its `environments` entry.
    pub fn state(&self, environment: &str, at: Timestamp) -> Option<&'a model::State> {
        let flag = self.flag;
        flag.rollout[..self.due(at)]
            .iter()
            .rev()
            .find_map(|step| step.environments.get(environment))
            .or_else(|| flag.environments.get(environment))
    }

    /// The desired state in `environment` at `at`, or `None` for absent: [`desired_flag`].
    pub fn desired(&self, environment: &str, at: Timestamp) -> Option<Stored> {
        self.state(environment, at).map(Stored::from_model)
    }

    /// Where the plan stands at `at`: [`progress`].
    pub fn progress(&self, at: Timestamp) -> Progress {
        let due = self.due(at);
        Progress {
            current: due.checked_sub(1),
            next: match self.times.get(due) {
                Some(Ok(time)) => Some((due, *time)),
                _ => None,
            },
        }
    }
}

/// A duration for people: `3d 4h`, `15m`, `40s`.
pub fn friendly(duration: SignedDuration) -> String {
    let seconds = duration.as_secs().abs();
    let (days, hours, minutes) = (seconds / 86_400, seconds % 86_400 / 3_600, seconds % 3_600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_file_keeps_the_times_of_its_plan() {
        let text = "name: a\ndescription: A flag.\ntype: wip\ngroup: group::test\nmilestone: \"19.5\"\n\
                    introduced_by_url: https://gitlab.com/gitlab-org/gitlab/-/merge_requests/1\ndefault_enabled: false\n\
                    environments:\n  production: false\n\
                    rollout:\n  - at: \"2026-11-24T09:00:00Z\"\n    production: true\n  - after: 15m\n    production: false\n";
        let (file, found) = crate::load::parse_flag(&crate::source::SourceFile {
            path: "flags/wip/a.yml".into(),
            text: text.to_string(),
        });
        let file = file.unwrap_or_else(|| panic!("{found:?}"));
        assert_eq!(file.times, step_times(&file.flag.rollout));
        let shown: Vec<String> = file.times.iter().map(|t| t.as_ref().unwrap().to_string()).collect();
        assert_eq!(shown, ["2026-11-24T09:00:00Z", "2026-11-24T09:15:00Z"]);
        let at = |text: &str| text.parse::<Timestamp>().unwrap();
        for moment in ["2026-11-24T08:00:00Z", "2026-11-24T09:05:00Z", "2026-11-24T09:20:00Z"] {
            assert_eq!(
                Timeline::of(&file).desired("production", at(moment)),
                Timeline::new(&file.flag).desired("production", at(moment)),
            );
        }
        assert_eq!(
            Timeline::of(&file).desired("production", at("2026-11-24T09:05:00Z")),
            Some(Stored::from_model(&model::State::Boolean(true)))
        );
    }

    fn step(at: Option<&str>, after: Option<&str>) -> RolloutStep {
        RolloutStep {
            at: at.map(str::to_string),
            after: after.map(str::to_string),
            rollback: false,
            note: None,
            guard: None,
            on_breach: None,
            environments: Default::default(),
        }
    }

    #[test]
    fn duration_accepts_friendly_units() {
        assert_eq!(parse_duration("15m").unwrap(), SignedDuration::from_mins(15));
        assert_eq!(parse_duration("1d").unwrap(), SignedDuration::from_hours(24));
        assert_eq!(parse_duration("1h 30m").unwrap(), SignedDuration::from_mins(90));
        // Months and years each get the reason, not whatever converting them would say.
        for text in ["1mo", "2y", "1y 1mo"] {
            assert_eq!(
                parse_duration(text).unwrap_err(),
                "months and years have no fixed length: use days or weeks",
                "{text}"
            );
        }
        assert!(parse_duration("0m").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn step_times_chain_relative_steps() {
        let times = step_times(&[
            step(Some("2026-11-24T09:00:00Z"), None),
            step(None, Some("15m")),
            step(None, Some("1h")),
        ]);
        let shown: Vec<String> = times.iter().map(|t| t.as_ref().unwrap().to_string()).collect();
        assert_eq!(
            shown,
            ["2026-11-24T09:00:00Z", "2026-11-24T09:15:00Z", "2026-11-24T10:15:00Z"]
        );
    }

    #[test]
    fn progress_is_exact_at_step_boundaries() {
        let flag = model::Flag {
            rollout: vec![step(Some("2026-11-24T09:00:00Z"), None), step(None, Some("15m"))],
            ..model::Flag::example("f")
        };
        let at = |text: &str| text.parse::<Timestamp>().unwrap();
        let before = progress(&flag, at("2026-11-24T08:59:59.999Z"));
        assert_eq!(before.current, None);
        assert_eq!(before.next, Some((0, at("2026-11-24T09:00:00Z"))));
        let first = progress(&flag, at("2026-11-24T09:00:00Z"));
        assert_eq!(first.current, Some(0));
        assert_eq!(first.next, Some((1, at("2026-11-24T09:15:00Z"))));
        let done = progress(&flag, at("2026-11-24T09:15:00Z"));
        assert_eq!((done.current, done.next), (Some(1), None));
        assert_eq!(friendly(SignedDuration::from_mins(90)), "1h 30m");
        assert_eq!(friendly(SignedDuration::from_hours(50)), "2d 2h");
    }

    #[test]
    fn moments_take_every_form() {
        let at = |text: &str| text.parse::<Timestamp>().unwrap();
        let now = at("2026-11-30T12:34:56Z");
        assert_eq!(parse_moment("now", now), Ok(now));
        assert_eq!(parse_moment("2026-12-01", now), Ok(at("2026-12-01T00:00:00Z")));
        assert_eq!(
            parse_moment("2026-12-01T09:00:00+01:00", now),
            Ok(at("2026-12-01T08:00:00Z"))
        );
        assert_eq!(parse_moment("+2h", now), Ok(at("2026-11-30T14:34:56Z")));
        assert_eq!(parse_moment("-1d", now), Ok(at("2026-11-29T12:34:56Z")));
        assert_eq!(parse_moment("+1h 30m", now), Ok(at("2026-11-30T14:04:56Z")));
        assert!(parse_moment("+1mo", now).is_err());
        assert!(parse_moment("2026-12-01T09:00:00", now).is_err());
        assert!(parse_moment("tomorrow", now).is_err());
    }

    #[test]
    fn step_times_explain_failures() {
        let times = step_times(&[step(None, Some("15m")), step(None, Some("15m")), step(None, None)]);
        assert_eq!(times[0], Err(StepTimeError::AfterFirst));
        assert_eq!(times[1], Err(StepTimeError::AfterInvalid));
        assert_eq!(times[2], Err(StepTimeError::Missing));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        // Durations and times are user text: any of it parses or is refused, never panics, and
        // chaining steps past the end of time is an error too.
        #[test]
        fn parsers_never_panic(
            text in "\\PC{0,40}|[0-9]{1,22}(y|mo|w|d|h|m|s|ms)( [0-9]{1,22}(h|m|s))?",
            at in "[0-9]{4,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})",
        ) {
            let _ = parse_duration(&text);
            let _ = parse_time(&text);
            let _ = parse_time(&at);
            let _ = parse_moment(&text, Timestamp::MAX);
            let _ = parse_moment(&text, Timestamp::MIN);
            let times = step_times(&[step(Some(&at), None), step(None, Some(&text)), step(None, Some(&text))]);
            proptest::prop_assert_eq!(times.len(), 3);
        }
    }
}

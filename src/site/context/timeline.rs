//! The timeline of a flag: the charts of its state per environment over time, and the table
//! of their stretches.

use super::chart::{self, Row, Segment, Stretch, Window};
use crate::history::{Event, EventKind};
use crate::model::Flag;
use crate::state::Stored;

/// The charts of a flag and the table of their stretches.
pub(in crate::site) struct Charts {
    pub(super) chart: String,
    pub(super) detail: Option<String>,
    pub(super) stretches: Vec<Stretch>,
}

/// The chart rows: per environment, the state over time from history up to the flag's last
/// commit, then the desired state of the flag as it is now (its rollout plan resolved) at that
/// commit and at each later step. A second chart shows the rollout window when its steps are
/// too close together to tell apart on the whole span.
pub(super) fn chart_for(flag: &Flag, environments: &[String], events: &[&Event], now: i64) -> Charts {
    let oldest_first: Vec<&Event> = events.iter().rev().copied().collect();
    let step_times: Vec<i64> = crate::resolve::step_times(&flag.rollout)
        .into_iter()
        .map_while(Result::ok)
        .map(|t| t.as_second())
        .collect();
    let start = oldest_first
        .first()
        .map_or(now - 30 * 86_400, |event| event.time)
        .min(step_times.first().copied().unwrap_or(now))
        .min(now);
    let last = step_times.last().copied().unwrap_or(now).max(now);
    let end = last + ((last - start) / 10).max(3600);
    let latest = oldest_first.last().map(|event| event.time);
    let desired_at = |environment: &str, time: i64| {
        crate::resolve::desired_flag(
            flag,
            environment,
            jiff::Timestamp::from_second(time).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        )
    };
    let rows: Vec<Row> = environments
        .iter()
        .map(|environment| {
            let mut segments: Vec<Segment> = Vec::new();
            let mut push = |time: i64, state: Option<Stored>, planned: bool| {
                if let Some(last) = segments.last_mut()
                    && last.start == time
                {
                    last.state = state;
                    last.planned = planned;
                    return;
                }
                if segments.last().is_some_and(|last| last.state == state) {
                    return;
                }
                segments.push(Segment {
                    start: time,
                    state,
                    planned,
                });
            };
            // Before its first event in this environment, a flag of known history held what
            // that event changed from.
            let before = oldest_first
                .iter()
                .find(|event| {
                    event.kind == EventKind::State && event.environment.as_deref() == Some(environment.as_str())
                })
                .and_then(|event| event.from.clone());
            push(start, before, false);
            for event in &oldest_first {
                match event.kind {
                    EventKind::State if event.environment.as_deref() == Some(environment.as_str()) => {
                        push(event.time, event.to.clone(), false)
                    }
                    EventKind::Removed => push(event.time, None, false),
                    _ => {}
                }
            }
            let from = latest.unwrap_or(start);
            push(from, desired_at(environment, from), from > now);
            for &time in step_times.iter().filter(|&&time| time > from) {
                push(time, desired_at(environment, time), time > now);
            }
            Row {
                environment: environment.clone(),
                segments,
            }
        })
        .collect();
    let window = Window { start, end };
    let chart = chart::svg(&rows, window, now, "timeline", "State per environment over time");
    let mut distinct = step_times.clone();
    distinct.dedup();
    let closest = distinct.windows(2).map(|pair| pair[1] - pair[0]).min();
    let detail = closest.filter(|gap| gap * 50 < end - start).map(|_| {
        let (first, last) = (distinct[0], distinct[distinct.len() - 1]);
        let pad = ((last - first) / 4).max(300);
        chart::svg(
            &rows,
            Window {
                start: first - pad,
                end: last + pad,
            },
            now,
            "rollout-window",
            &format!("Rollout window, {} to {}", chart::when(first), chart::when(last)),
        )
    });
    Charts {
        chart,
        detail,
        stretches: chart::stretches(&rows, window),
    }
}

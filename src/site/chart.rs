//! The timeline chart of a flag: its desired state per environment over time, past (from
//! history) and planned (from its rollout plan), drawn as SVG at build time.
//!
//! Horizontal positions are percentages of the drawing's width, so the chart fills any screen
//! while its text keeps its size; every stretch has a stroke in its own colour, so one shorter
//! than a pixel still shows, and `window` gives the rollout's detail view. The time axis gets
//! ticks that fit its span, from minutes to years. Every text is escaped here.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::state::Stored;

/// One stretch of time in one environment.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Segment {
    /// Where it starts, in seconds since the epoch.
    pub(super) start: i64,
    /// The state from then on; `None` for absent.
    pub(super) state: Option<Stored>,
    /// Whether it is planned (a rollout step in the future).
    pub(super) planned: bool,
}

/// One row of the chart.
#[derive(Clone, Debug)]
pub(super) struct Row {
    /// The environment.
    pub(super) environment: String,
    /// Its segments, in time order.
    pub(super) segments: Vec<Segment>,
}

/// A stretch as the chart's table lists it, in words.
#[derive(Clone, Debug, Serialize)]
pub(super) struct Stretch {
    environment: String,
    from: String,
    until: String,
    state: String,
    class: &'static str,
    planned: bool,
}

/// The stretch of time a chart shows, in seconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Window {
    pub(super) start: i64,
    pub(super) end: i64,
}

/// The height of a row: its label, then its bar.
const ROW: i64 = 38;
/// The band above the rows that holds the "now" label.
const TOP: i64 = 16;
/// The band below the rows that holds the axis.
const AXIS: i64 = 30;
/// The most ticks an axis gets.
const MAX_TICKS: usize = 7;

/// Draws the rows within `window`, marking `now` (at the edge, with its time, when it lies
/// outside). `id` tells apart the charts of one page.
pub(super) fn svg(rows: &[Row], window: Window, now: i64, id: &str, label: &str) -> String {
    let Window { start, end } = window;
    let end = end.max(start + 1);
    let span = (end - start) as f64;
    let x = |time: i64| 0.5 + ((time.clamp(start, end) - start) as f64 / span) * 99.0;
    let height = TOP + ROW * rows.len() as i64 + AXIS;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="timeline" id="{id}" width="100%" height="{height}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(label)
    );
    // Absent is hatched wherever it is drawn: here, in the legend and in the index's chips.
    let _ = write!(
        out,
        r#"<defs><pattern id="{id}-absent" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" class="absent-ground"/><line x1="0" y1="0" x2="0" y2="6" class="absent-hatch"/></pattern></defs>"#
    );
    let bottom = TOP + ROW * rows.len() as i64;
    let ticks = ticks(start, end);
    for (position, (time, _)) in ticks.iter().enumerate() {
        let minor = if position % 2 == 1 { " minor" } else { "" };
        let _ = write!(
            out,
            r#"<line x1="{x:.3}%" y1="{TOP}" x2="{x:.3}%" y2="{}" class="grid{minor}"/>"#,
            bottom + 4,
            x = x(*time)
        );
    }
    for (index, row) in rows.iter().enumerate() {
        let y = TOP + index as i64 * ROW;
        let _ = write!(
            out,
            r#"<text x="0.5%" y="{}" class="label">{}</text>"#,
            y + 12,
            escape(&row.environment)
        );
        for (position, segment) in row.segments.iter().enumerate() {
            let until = row.segments.get(position + 1).map_or(end, |next| next.start);
            if until <= start || segment.start >= end {
                continue;
            }
            let (left, right) = (x(segment.start), x(until));
            let (class, text) = describe(segment.state.as_ref());
            let planned = if segment.planned { " planned" } else { "" };
            let fill = if class == "absent" {
                format!(r#" fill="url(#{id}-absent)""#)
            } else {
                String::new()
            };
            let until_text = if position + 1 == row.segments.len() {
                " on".to_string()
            } else {
                format!(" until {}", when(until))
            };
            let tooltip = format!(
                "{}: {text}, from {}{until_text}{}",
                row.environment,
                when(segment.start),
                if segment.planned { " (planned)" } else { "" }
            );
            let _ = write!(
                out,
                r#"<rect x="{left:.3}%" y="{}" width="{:.3}%" height="16" class="segment {class}{planned}"{fill} data-start="{}" data-end="{}"><title>{}</title></rect>"#,
                y + 16,
                (right - left).max(0.0),
                segment.start,
                until,
                escape(&tooltip)
            );
            if right - left > 9.0 {
                let _ = write!(
                    out,
                    r#"<text x="{:.3}%" y="{}" class="value {class}">{}</text>"#,
                    left + 0.4,
                    y + 28,
                    escape(&short(segment.state.as_ref()))
                );
            }
        }
    }
    if now < start || now > end {
        let (anchor, position, arrow) = if now > end {
            ("end", "99.5%", format!("now: {} →", when(now)))
        } else {
            ("start", "0.5%", format!("← now: {}", when(now)))
        };
        let _ = write!(
            out,
            r#"<text x="{position}" y="11" class="now-label" text-anchor="{anchor}">{}</text>"#,
            escape(&arrow)
        );
    } else {
        let now_x = x(now);
        let anchor = if now_x > 85.0 { "end" } else { "start" };
        let _ = write!(
            out,
            r#"<line x1="{now_x:.3}%" y1="2" x2="{now_x:.3}%" y2="{}" class="now"/><text x="{now_x:.3}%" y="11" dx="{}" class="now-label" text-anchor="{anchor}">now</text>"#,
            bottom + 4,
            if anchor == "end" { -4 } else { 4 }
        );
    }
    for (position, (time, text)) in ticks.iter().enumerate() {
        let at = x(*time);
        let anchor = if at < 8.0 {
            "start"
        } else if at > 92.0 {
            "end"
        } else {
            "middle"
        };
        let minor = if position % 2 == 1 { " minor" } else { "" };
        let _ = write!(
            out,
            r#"<text x="{at:.3}%" y="{}" class="axis{minor}" text-anchor="{anchor}">{}</text>"#,
            bottom + 18,
            escape(text)
        );
    }
    out.push_str("</svg>");
    out
}

/// Every stretch of `rows` within `window`, in words, for the table that goes with the chart.
pub(super) fn stretches(rows: &[Row], window: Window) -> Vec<Stretch> {
    let mut out = Vec::new();
    for row in rows {
        for (position, segment) in row.segments.iter().enumerate() {
            let next = row.segments.get(position + 1).map(|next| next.start);
            if next.is_some_and(|next| next <= window.start) {
                continue;
            }
            let (class, text) = describe(segment.state.as_ref());
            out.push(Stretch {
                environment: row.environment.clone(),
                from: when(segment.start.max(window.start)),
                until: next.map_or_else(|| "on".to_string(), when),
                state: text,
                class,
                planned: segment.planned,
            });
        }
    }
    out
}

/// The CSS class and the words of a state: those `plan` uses.
pub(super) fn describe(state: Option<&Stored>) -> (&'static str, String) {
    let text = crate::plan::show(state);
    match state {
        None => ("absent", text),
        Some(Stored::Boolean(true)) => ("on", text),
        Some(Stored::Boolean(false)) => ("off", text),
        Some(_) => ("partial", text),
    }
}

/// The ticks of an axis from `start` to `end`: the finest step of a fixed ladder (minutes to
/// years) that gives at most `MAX_TICKS`, each with its label.
pub(super) fn ticks(start: i64, end: i64) -> Vec<(i64, String)> {
    const MINUTE: i64 = 60;
    const HOUR: i64 = 3600;
    const DAY: i64 = 86_400;
    let span = (end - start).max(1);
    let fixed = [
        MINUTE,
        5 * MINUTE,
        15 * MINUTE,
        30 * MINUTE,
        HOUR,
        3 * HOUR,
        6 * HOUR,
        12 * HOUR,
        DAY,
        2 * DAY,
        7 * DAY,
        14 * DAY,
    ];
    if let Some(step) = fixed.iter().copied().find(|step| span / step < MAX_TICKS as i64) {
        let first = start.div_euclid(step) * step + if start.rem_euclid(step) == 0 { 0 } else { step };
        let mut out = Vec::new();
        let mut time = first;
        let mut last_day = None;
        while time <= end {
            let zoned = Timestamp::from_second(time)
                .unwrap_or(Timestamp::UNIX_EPOCH)
                .to_zoned(TimeZone::UTC);
            let day = zoned.date();
            let label = if step >= DAY {
                day.to_string()
            } else if last_day == Some(day) {
                zoned.strftime("%H:%M").to_string()
            } else {
                zoned.strftime("%Y-%m-%d %H:%M").to_string()
            };
            last_day = Some(day);
            out.push((time, label));
            time += step;
        }
        return out;
    }
    // Calendar months and years.
    let months = [1, 3, 6, 12, 24, 60, 120, 600]
        .into_iter()
        .find(|months| span / (months * 30 * DAY) < MAX_TICKS as i64)
        .unwrap_or(1200);
    let begin = Timestamp::from_second(start)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(TimeZone::UTC);
    let month_index = begin.year() as i64 * 12 + begin.month() as i64 - 1;
    let mut index = (month_index + months - 1).div_euclid(months) * months;
    if index == month_index && (begin.day() > 1 || begin.hour() > 0) {
        index += months;
    }
    let mut out = Vec::new();
    loop {
        let (year, month) = (index.div_euclid(12), index.rem_euclid(12) + 1);
        let Ok(date) = jiff::civil::Date::new(year as i16, month as i8, 1) else {
            break;
        };
        let Ok(time) = date.to_zoned(TimeZone::UTC).map(|zoned| zoned.timestamp().as_second()) else {
            break;
        };
        if time > end {
            break;
        }
        let label = if months % 12 == 0 {
            format!("{year}")
        } else {
            format!("{year}-{month:02}")
        };
        out.push((time, label));
        index += months;
    }
    out
}

/// A time in words: `2026-11-24 09:15 UTC`.
pub(super) fn when(seconds: i64) -> String {
    Timestamp::from_second(seconds)
        .map(|time| time.to_zoned(TimeZone::UTC).strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// The shortest words for a state, written on its stretch when there is room.
pub(super) fn short(state: Option<&Stored>) -> String {
    match state {
        None => "absent".to_string(),
        Some(Stored::Boolean(true)) => "on".to_string(),
        Some(Stored::Boolean(false)) => "off".to_string(),
        Some(Stored::Gates(gates)) => match gates.percentage_of_actors.or(gates.percentage_of_time) {
            Some(p) => format!("{}%", crate::state::percent(p)),
            None => "actors".to_string(),
        },
    }
}

/// Escapes text for SVG/XML content and attributes.
pub(super) fn escape(text: &str) -> String {
    crate::escape::xml(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_second()
    }

    #[test]
    fn ticks_fit_the_span_from_minutes_to_years() {
        let labels = |start: &str, end: &str| -> Vec<String> {
            ticks(at(start), at(end)).into_iter().map(|(_, label)| label).collect()
        };
        assert_eq!(
            labels("2026-11-24T08:50:00Z", "2026-11-24T09:40:00Z"),
            ["2026-11-24 09:00", "09:15", "09:30"]
        );
        assert_eq!(
            labels("2026-11-20T00:00:00Z", "2026-11-24T12:00:00Z"),
            ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24"]
        );
        assert_eq!(
            labels("2026-01-15T00:00:00Z", "2026-12-01T00:00:00Z"),
            ["2026-04", "2026-07", "2026-10"]
        );
        assert_eq!(
            labels("2019-03-01T00:00:00Z", "2026-12-01T00:00:00Z"),
            ["2020", "2022", "2024", "2026"]
        );
        for (start, end) in [
            ("2026-01-01T00:00:00Z", "2026-01-01T00:03:00Z"),
            ("2000-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        ] {
            let count = ticks(at(start), at(end)).len();
            assert!((1..=MAX_TICKS).contains(&count), "{start}..{end}: {count} ticks");
        }
    }

    #[test]
    fn every_stretch_is_drawn_with_its_times_and_now_stays_in_view() {
        let rows = [Row {
            environment: "production".into(),
            segments: vec![
                Segment {
                    start: at("2026-11-24T09:00:00Z"),
                    state: Some(Stored::Boolean(false)),
                    planned: false,
                },
                Segment {
                    start: at("2026-11-24T09:15:00Z"),
                    state: Some(Stored::Boolean(true)),
                    planned: true,
                },
            ],
        }];
        let window = Window {
            start: at("2026-11-24T08:00:00Z"),
            end: at("2026-11-24T10:00:00Z"),
        };
        let drawn = svg(&rows, window, at("2026-12-01T00:00:00Z"), "t", "test");
        assert_eq!(drawn.matches("<rect x=").count(), 2, "{drawn}");
        assert!(
            drawn.contains("<title>production: false, from 2026-11-24 09:00 UTC until 2026-11-24 09:15 UTC</title>"),
            "{drawn}"
        );
        assert!(
            drawn.contains("<title>production: true, from 2026-11-24 09:15 UTC on (planned)</title>"),
            "{drawn}"
        );
        assert!(drawn.contains(">now: 2026-12-01 00:00 UTC →</text>"), "{drawn}");
        let inside = svg(&rows, window, at("2026-11-24T09:30:00Z"), "t", "test");
        assert!(inside.contains(r#"class="now"/>"#), "{inside}");
    }
}

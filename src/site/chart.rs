//! The timeline chart of a flag: its desired state per environment over time, past (from
//! history) and planned (from its rollout plan), drawn as SVG at build time.

use std::fmt::Write as _;

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

const WIDTH: i64 = 720;
const LABEL: i64 = 110;
const ROW: i64 = 26;

/// Draws the rows between `start` and `end` (seconds), marking `now`.
pub(super) fn svg(rows: &[Row], start: i64, end: i64, now: i64) -> String {
    let end = end.max(start + 1);
    let span = (end - start) as f64;
    let plot = (WIDTH - LABEL - 10) as f64;
    let x = |time: i64| LABEL as f64 + ((time.clamp(start, end) - start) as f64 / span) * plot;
    let height = ROW * rows.len() as i64 + 30;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="timeline" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="State per environment over time" xmlns="http://www.w3.org/2000/svg">"#
    );
    for (index, row) in rows.iter().enumerate() {
        let y = index as i64 * ROW + 4;
        let _ = write!(
            out,
            r#"<text x="0" y="{}" class="label">{}</text>"#,
            y + 15,
            escape(&row.environment)
        );
        for (position, segment) in row.segments.iter().enumerate() {
            let until = row.segments.get(position + 1).map_or(end, |next| next.start);
            let (left, right) = (x(segment.start), x(until));
            if right <= left {
                continue;
            }
            let (class, text) = describe(segment.state.as_ref());
            let planned = if segment.planned { " planned" } else { "" };
            let _ = write!(
                out,
                r#"<rect x="{left:.1}" y="{y}" width="{:.1}" height="{}" class="{class}{planned}"><title>{}</title></rect>"#,
                right - left,
                ROW - 6,
                escape(&text)
            );
            if right - left > 60.0 && class == "partial" {
                let _ = write!(
                    out,
                    r#"<text x="{:.1}" y="{}" class="value">{}</text>"#,
                    left + 4.0,
                    y + 15,
                    escape(&short(segment.state.as_ref()))
                );
            }
        }
    }
    let axis = rows.len() as i64 * ROW + 18;
    let now_x = x(now);
    let _ = write!(
        out,
        r#"<line x1="{now_x:.1}" y1="0" x2="{now_x:.1}" y2="{}" class="now"/>"#,
        axis - 12
    );
    for (time, anchor) in [(start, "start"), (end, "end")] {
        let date = jiff::Timestamp::from_second(time)
            .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string())
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{axis}" class="axis" text-anchor="{anchor}">{date}</text>"#,
            x(time)
        );
    }
    out.push_str("</svg>");
    out
}

/// The CSS class and the tooltip of a state.
pub(super) fn describe(state: Option<&Stored>) -> (&'static str, String) {
    match state {
        None => ("absent", "absent (default)".to_string()),
        Some(Stored::Boolean(true)) => ("on", "on".to_string()),
        Some(Stored::Boolean(false)) => ("off", "off".to_string()),
        Some(other) => ("partial", other.to_string()),
    }
}

fn short(state: Option<&Stored>) -> String {
    match state {
        Some(Stored::Gates(gates)) => match gates.percentage_of_actors.or(gates.percentage_of_time) {
            Some(p) => format!("{}%", crate::state::percent(p)),
            None => "actors".to_string(),
        },
        _ => String::new(),
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

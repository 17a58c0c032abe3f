//! Flag lifecycle: when a milestone was released, how old a flag may get, and which flags are
//! past or near their limit.
//!
//! GitLab releases one minor version a month, on the third Thursday, twelve minors a major since
//! 16.0 (May 2023); the config's `lifecycle` section can move the anchor. This module is pure:
//! it is handed the time it compares with.

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use serde::Serialize;

use crate::config::{Config, LifecycleConfig};
use crate::model::Flag;

/// How a flag stands against its type's maximum age and its `intended_to_rollout_by`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Standing {
    /// The flag.
    pub flag: String,
    /// `expired`, `expiring` or `ok`.
    pub status: Status,
    /// Why, in words.
    pub reason: String,
    /// The date the flag reaches its limit, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

/// Where a flag stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Past its limit.
    Expired,
    /// Within the warning period before its limit.
    Expiring,
    /// Fine.
    Ok,
}

/// The release date of a milestone such as `17.10`.
pub fn release_date(milestone: &str, rules: &LifecycleConfig) -> Option<Date> {
    let (major, minor) = crate::check::parse_milestone(milestone)?;
    let (anchor_major, anchor_minor) = crate::check::parse_milestone(&rules.anchor_milestone)?;
    let anchor: Date = rules.anchor_date.parse().ok()?;
    let months = (i64::from(major) - i64::from(anchor_major)) * i64::from(rules.minors_per_major)
        + (i64::from(minor) - i64::from(anchor_minor));
    // `try_months`: a span holds at most about 20,000 years of months, and milestones are text.
    let first = anchor
        .first_of_month()
        .checked_add(jiff::Span::new().try_months(months).ok()?)
        .ok()?;
    // The third Thursday of that month.
    first.nth_weekday_of_month(3, Weekday::Thursday).ok()
}

/// Where `flag` stands at `now`.
pub fn standing(flag: &Flag, config: &Config, now: Timestamp) -> Standing {
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let warn = jiff::Span::new()
        .try_days(i64::from(config.lifecycle.warn_days))
        .unwrap_or_default();
    let mut candidates: Vec<(Date, String)> = Vec::new();
    if let Some(months) = config.types.get(&flag.flag_type).and_then(|rules| rules.max_age_months)
        && let Some(released) = release_date(&flag.milestone, &config.lifecycle)
        && let Ok(span) = jiff::Span::new().try_months(i64::from(months))
        && let Ok(limit) = released.checked_add(span)
    {
        candidates.push((
            limit,
            format!(
                "{} flags may live {months} months from their milestone ({} released {released})",
                flag.flag_type, flag.milestone
            ),
        ));
    }
    if let Some(date) = flag
        .intended_to_rollout_by
        .as_deref()
        .and_then(|d| d.parse::<Date>().ok())
    {
        candidates.push((date, "intended to be rolled out by then".to_string()));
    }
    candidates.sort();
    let Some((limit, why)) = candidates.into_iter().next() else {
        return Standing {
            flag: flag.name.clone(),
            status: Status::Ok,
            reason: "no age limit".to_string(),
            limit: None,
        };
    };
    let (status, reason) = if today > limit {
        (Status::Expired, format!("past its limit of {limit}: {why}"))
    } else if today.checked_add(warn).is_ok_and(|soon| soon >= limit) {
        (Status::Expiring, format!("reaches its limit on {limit}: {why}"))
    } else {
        (Status::Ok, format!("limit {limit}: {why}"))
    };
    Standing {
        flag: flag.name.clone(),
        status,
        reason,
        limit: Some(limit.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> LifecycleConfig {
        LifecycleConfig::default()
    }

    #[test]
    fn release_dates_follow_third_thursdays() {
        assert_eq!(release_date("16.0", &rules()).unwrap().to_string(), "2023-05-18");
        assert_eq!(release_date("17.0", &rules()).unwrap().to_string(), "2024-05-16");
        assert_eq!(release_date("18.6", &rules()).unwrap().to_string(), "2025-11-20");
        assert_eq!(release_date("19.0", &rules()).unwrap().to_string(), "2026-05-21");
        assert!(release_date("x", &rules()).is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        // Ages are computed from numbers in the config and text in flag files: no combination
        // of them overflows the calendar into a panic.
        #[test]
        fn standing_never_panics(
            milestone in "[0-9]{1,10}\\.[0-9]{1,10}",
            months in proptest::prelude::any::<u32>(),
            warn_days in proptest::prelude::any::<u32>(),
            minors in 1_u32..,
            seconds in -377_705_116_800_i64..=253_402_207_200,
            rollout_by in "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        ) {
            let mut config: Config = serde_json::from_value(serde_json::json!({
                "flags_dir": "flags",
                "environments": [{ "name": "production", "backend": { "kind": "file" } }],
                "types": { "wip": { "description": "x", "can_be_default_enabled": false, "rollout_issue_required": false } },
            }))
            .unwrap();
            config.types.get_mut("wip").unwrap().max_age_months = Some(months);
            config.lifecycle.warn_days = warn_days;
            config.lifecycle.minors_per_major = minors;
            let flag: Flag = serde_json::from_value(serde_json::json!({
                "name": "a", "description": "x", "type": "wip", "group": "g",
                "milestone": milestone, "introduced_by_url": "https://x", "default_enabled": false,
                "intended_to_rollout_by": rollout_by,
            }))
            .unwrap();
            let now = Timestamp::from_second(seconds).unwrap();
            let _ = standing(&flag, &config, now);
        }
    }
}

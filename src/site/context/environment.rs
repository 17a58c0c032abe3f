//! The environment and type pages' views: each environment's flags, last sync and change
//! freezes, and each flag type's rules and flags.

use std::collections::BTreeMap;

use serde::Serialize;

use super::flag::{FlagView, StateView};
use super::short_commit;
use crate::backends::Snapshot;
use crate::check::is_http_url;
use crate::config::Config;
use crate::escape::redact_url;

#[derive(Debug, Serialize)]
pub(in crate::site) struct EnvironmentView {
    pub(in crate::site) name: String,
    pub(super) description: Option<String>,
    pub(super) url: Option<String>,
    pub(super) protected: bool,
    pub(super) backend: String,
    pub(super) last_sync: Option<String>,
    /// The freeze reason the last sync overrode, if it did.
    pub(super) last_sync_override: Option<String>,
    /// Change freezes for this environment not over at the site's time, earliest first.
    pub(super) freezes: Vec<FreezeView>,
    pub(super) flags: Vec<EnvironmentFlag>,
}

#[derive(Debug, Serialize)]
pub(in crate::site) struct FreezeView {
    pub(super) name: String,
    pub(super) from: String,
    pub(super) until: String,
    /// In force at the site's time.
    pub(super) current: bool,
}

#[derive(Debug, Serialize)]
pub(in crate::site) struct EnvironmentFlag {
    pub(super) name: String,
    pub(super) state: StateView,
}

#[derive(Debug, Serialize)]
pub(in crate::site) struct TypeView {
    pub(in crate::site) name: String,
    pub(super) description: Option<String>,
    pub(super) rules: String,
    pub(super) flags: Vec<String>,
}

/// The change freezes of `environment` that have not ended at `now`, earliest first.
pub(super) fn freeze_views(
    config: &crate::config::Config,
    environment: &crate::config::Environment,
    now: jiff::Timestamp,
) -> Vec<FreezeView> {
    let mut windows: Vec<_> = config
        .policies
        .freeze_windows
        .iter()
        .filter(|window| window.applies_to(environment))
        .filter_map(|window| window.span().map(|span| (span, window)))
        .filter(|((_, until), _)| now < *until)
        .collect();
    windows.sort_by_key(|((from, until), window)| (*from, *until, window.name.clone()));
    windows
        .into_iter()
        .map(|((from, until), window)| FreezeView {
            name: window.name.clone(),
            from: from.to_string(),
            until: until.to_string(),
            current: from <= now,
        })
        .collect()
}

/// A page per environment: what it is, its last sync, its change freezes and every flag's state
/// there.
pub(super) fn environment_views(
    config: &Config,
    snapshots: &BTreeMap<String, Snapshot>,
    flags: &[FlagView],
    now_timestamp: jiff::Timestamp,
) -> Vec<EnvironmentView> {
    config
        .environments
        .iter()
        .map(|environment| {
            let snapshot = snapshots.get(&environment.name);
            EnvironmentView {
                name: environment.name.clone(),
                description: environment.description.clone(),
                url: environment
                    .url
                    .as_deref()
                    .filter(|url| is_http_url(url))
                    .map(|url| redact_url(url).into_owned()),
                protected: environment.protected,
                backend: serde_json::to_value(&environment.backend)
                    .ok()
                    .and_then(|v| v["kind"].as_str().map(str::to_string))
                    .unwrap_or_default(),
                last_sync: snapshot.and_then(|s| s.last_sync.as_ref()).map(|record| {
                    let commit = record
                        .commit
                        .as_deref()
                        .map(short_commit)
                        .unwrap_or_else(|| "an unknown commit".to_string());
                    format!("{} by {} at {commit}", record.at, record.by)
                }),
                last_sync_override: snapshot
                    .and_then(|s| s.last_sync.as_ref())
                    .and_then(|record| record.override_freeze.clone()),
                freezes: freeze_views(config, environment, now_timestamp),
                flags: flags
                    .iter()
                    .map(|flag| EnvironmentFlag {
                        name: flag.name.clone(),
                        state: flag
                            .states
                            .iter()
                            .find(|s| s.environment == environment.name)
                            .cloned()
                            .expect("a state per environment"),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// A page per flag type: its rules in words and its flags.
pub(super) fn type_views(config: &Config, flags: &[FlagView]) -> Vec<TypeView> {
    config
        .types
        .iter()
        .map(|(name, rules)| TypeView {
            name: name.clone(),
            description: rules.description.clone(),
            rules: format!(
                "{}; {}; {}{}{}",
                if rules.can_be_default_enabled {
                    "may be enabled by default"
                } else {
                    "never enabled by default"
                },
                if rules.rollout_issue_required {
                    "needs a rollout issue"
                } else {
                    "no rollout issue needed"
                },
                rules
                    .max_age_months
                    .map_or("no age limit".to_string(), |months| format!(
                        "lives at most {months} months"
                    )),
                if rules.long_lived {
                    "; kept in the code once settled"
                } else {
                    ""
                },
                if rules.deprecated { "; deprecated" } else { "" }
            ),
            flags: flags
                .iter()
                .filter(|flag| flag.flag_type == *name)
                .map(|flag| flag.name.clone())
                .collect(),
        })
        .collect()
}

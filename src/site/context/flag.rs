//! The flag page's views: a flag's state in each environment, its rollout steps, its history
//! by commit, and the holds on it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::chart::{self, Stretch};
use super::{rfc3339, short_commit};
use crate::backends::Snapshot;
use crate::check::is_http_url;
use crate::escape::redact_url;
use crate::guard::Outcome;
use crate::history::Event;
use crate::lifecycle::Standing;
use crate::model::Flag;
use crate::plan::show;
use crate::state::Stored;
use crate::status::EnvironmentStatus;

#[derive(Debug, Serialize)]
pub(in crate::site) struct FlagView {
    pub(in crate::site) name: String,
    pub(super) description: String,
    pub(super) flag_type: String,
    pub(super) group: String,
    /// The group's page, `groups/<slug>.html`.
    pub(super) group_slug: String,
    pub(super) owners: Vec<String>,
    /// The owners' pages, `owners/<slug>.html`, in the order of `owners`.
    pub(super) owner_slugs: Vec<String>,
    pub(super) milestone: String,
    pub(super) default_enabled: bool,
    pub(super) log_state_changes: bool,
    pub(super) path: String,
    /// Policies this flag is exempt from, with the reasons its file gives.
    pub(super) overrides: Vec<OverrideView>,
    pub(super) links: Vec<LinkView>,
    pub(super) states: Vec<StateView>,
    pub(super) requires: Vec<String>,
    pub(super) required_by: Vec<String>,
    pub(super) rollout: Vec<StepView>,
    pub(super) history: Vec<CommitView>,
    pub(super) chart: String,
    /// The rollout's detail view, when its steps are too close together for the whole chart.
    pub(super) detail_chart: Option<String>,
    /// Every stretch of the chart in words, for the table under it.
    pub(super) timeline: Vec<Stretch>,
    /// Emergency holds, change freezes in force and changes the last sync held back, per
    /// environment, in words.
    pub(super) holds: Vec<HoldView>,
    /// The last verdict of the flag's metric guard in each environment, as its last sync
    /// recorded it.
    pub(super) guards: Vec<GuardView>,
    pub(super) standing: Standing,
    pub(super) search: String,
}

#[derive(Clone, Debug, Serialize)]
pub(in crate::site) struct HoldView {
    pub(super) environment: String,
    pub(super) text: String,
}

/// A metric guard's last verdict on a flag in one environment.
#[derive(Clone, Debug, Serialize)]
pub(in crate::site) struct GuardView {
    pub(super) environment: String,
    /// `healthy`, `breached`, `no data` or `unreachable`.
    pub(super) outcome: &'static str,
    /// The verdict in `status`'s words.
    pub(super) text: String,
    /// When the guard was asked.
    pub(super) at: String,
}

#[derive(Debug, Serialize)]
pub(in crate::site) struct OverrideView {
    pub(super) policy: String,
    pub(super) reason: String,
}

#[derive(Debug, Serialize)]
pub(in crate::site) struct LinkView {
    pub(super) label: &'static str,
    pub(super) text: String,
    pub(super) href: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub(in crate::site) struct StateView {
    pub(super) environment: String,
    /// The place of the environment on a narrow screen's card: the important ones first.
    pub(super) order: usize,
    pub(super) important: bool,
    /// The kind of the desired state (`on`, `partial`, `off`, `absent`).
    pub(super) class: &'static str,
    /// The desired state in `plan`'s words.
    pub(super) text: String,
    /// The same, shortened to fit a chip.
    pub(super) chip: String,
    /// What the backend holds, in `plan`'s words; `None` when it was not read.
    pub(super) synced: Option<String>,
    pub(super) live_class: Option<&'static str>,
    pub(super) live_chip: Option<String>,
    /// Whether the backend holds something else than the desired state.
    pub(super) drift: bool,
    /// `in sync`, `pending`, `drift`, `held`, `differs` (when no status could be read) or
    /// `not synced`.
    pub(super) status: &'static str,
    /// Why it is held.
    pub(super) note: Option<String>,
    /// Why the last sync held back the change to the desired state, when it did (the status is
    /// then `held`).
    pub(super) held_back: Option<String>,
}

#[derive(Debug, Serialize)]
pub(in crate::site) struct StepView {
    pub(super) when: String,
    pub(super) status: &'static str,
    pub(super) rollback: bool,
    pub(super) note: Option<String>,
    pub(super) changes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(in crate::site) struct CommitView {
    pub(super) short: String,
    pub(super) commit_url: Option<String>,
    pub(super) time: String,
    pub(super) author: String,
    pub(super) title: String,
    pub(super) merge_request: Option<u64>,
    pub(super) merge_request_url: Option<String>,
    pub(super) events: Vec<String>,
}

/// One flag in one environment: the desired state, and what the backend holds (`None` when the
/// backend was not read).
pub(in crate::site) struct Resolved<'a> {
    pub(super) environment: &'a String,
    pub(super) desired: Option<Stored>,
    pub(super) synced: Option<Option<Stored>>,
}

pub(super) fn link(label: &'static str, url: &str) -> LinkView {
    let url = redact_url(url);
    LinkView {
        label,
        text: url.to_string(),
        href: is_http_url(&url).then(|| url.to_string()),
    }
}

/// One flag in one environment. `status` is what `status::classify` found, when the
/// environment's status could be read.
pub(super) fn state_view(
    environment: &str,
    desired: Option<&Stored>,
    synced: Option<Option<Stored>>,
    status: Option<&Marked>,
) -> StateView {
    let (class, _) = chart::describe(desired);
    let drift = synced.as_ref().is_some_and(|synced| synced.as_ref() != desired);
    let (status, note, held_back) = match (&synced, status) {
        (None, _) => ("not synced", None, None),
        (Some(_), Some(marked)) => (marked.status, marked.note.clone(), marked.held_back.clone()),
        (Some(_), None) if drift => ("differs", None, None),
        (Some(_), None) => ("in sync", None, None),
    };
    // The status was read apart from the snapshot: a flag found in sync there that differs
    // here (the backend changed in between) still says so.
    let status = if status == "in sync" && drift {
        "differs"
    } else {
        status
    };
    StateView {
        environment: environment.to_string(),
        order: 0,
        important: false,
        class,
        text: show(desired),
        chip: chip(desired),
        live_class: synced.as_ref().map(|s| chart::describe(s.as_ref()).0),
        live_chip: synced.as_ref().map(|s| chip(s.as_ref())),
        synced: synced.map(|s| show(s.as_ref())),
        drift,
        status,
        note,
        held_back,
    }
}

/// A state in `plan`'s words, cut to its first gate and a count of the others when it has more
/// than one: `25% of actors, +2 more`.
pub(super) fn chip(state: Option<&Stored>) -> String {
    match state {
        Some(Stored::Gates(gates)) => {
            let parts = gates.parts();
            match parts.len() {
                0 => show(state),
                1 => parts[0].clone(),
                n => format!("{}, +{} more", parts[0], n - 1),
            }
        }
        other => show(other),
    }
}

/// A flag's status in one environment, as the site marks it.
pub(super) struct Marked {
    status: &'static str,
    note: Option<String>,
    held_back: Option<String>,
}

/// `(environment, flag)` to the status `status::classify` gave and, for a held flag, why. A
/// flag that differs exactly as the last sync recorded a change it held back is held too, not
/// pending or drifted.
pub(super) fn status_lookup(statuses: &BTreeMap<String, EnvironmentStatus>) -> BTreeMap<(&str, &str), Marked> {
    let mut out = BTreeMap::new();
    let marked = |status, note: Option<String>| Marked {
        status,
        note,
        held_back: None,
    };
    for (environment, status) in statuses {
        let held_back = status.last_sync.iter().flat_map(|record| &record.observed.held_back);
        let pending = status.pending.iter().map(|flag| (flag, "pending"));
        for (flag, found) in pending.chain(status.drifted.iter().map(|flag| (flag, "drift"))) {
            let why = held_back
                .clone()
                .find(|held| held.flag == flag.flag && held.desired == flag.desired && held.actual == flag.actual)
                .map(|held| held.why.join("; "));
            let value = match why {
                Some(why) => Marked {
                    status: "held",
                    note: Some(format!("held back by the last sync: {why}")),
                    held_back: Some(why),
                },
                None => marked(found, None),
            };
            out.insert((environment.as_str(), flag.flag.as_str()), value);
        }
        for held in &status.held {
            out.insert(
                (environment.as_str(), held.status.flag.as_str()),
                marked("held", Some(crate::hold::describe(&held.hold))),
            );
        }
    }
    out
}

/// Per flag, the last verdict of its metric guard in each environment whose last sync recorded
/// one, in promotion order.
pub(super) fn guard_views(
    environments: &[String],
    snapshots: &BTreeMap<String, Snapshot>,
) -> BTreeMap<String, Vec<GuardView>> {
    let mut out: BTreeMap<String, Vec<GuardView>> = BTreeMap::new();
    for environment in environments {
        let Some(record) = snapshots
            .get(environment)
            .and_then(|snapshot| snapshot.last_sync.as_ref())
        else {
            continue;
        };
        for guard in &record.observed.guards {
            let outcome = match guard.verdict.outcome {
                Outcome::Healthy { .. } => "healthy",
                Outcome::Breached { .. } => "breached",
                Outcome::NoData => "no data",
                Outcome::Unreachable { .. } => "unreachable",
            };
            out.entry(guard.verdict.flag.clone()).or_default().push(GuardView {
                environment: environment.clone(),
                outcome,
                text: crate::guard::describe(&guard.verdict),
                at: crate::plan::render::time(&guard.at),
            });
        }
    }
    out
}

pub(super) fn commit_views(events: &[&Event], repository: Option<&str>) -> Vec<CommitView> {
    let mut views: Vec<CommitView> = Vec::new();
    for event in events {
        if let Some(last) = views.last_mut()
            && last.short == short_commit(&event.commit)
        {
            last.events.push(event.text.clone());
            continue;
        }
        views.push(CommitView {
            short: short_commit(&event.commit),
            commit_url: repository.map(|url| format!("{url}/-/commit/{}", event.commit)),
            time: rfc3339(event.time),
            author: event.author.clone(),
            title: event.title.clone(),
            merge_request: event.merge_request,
            merge_request_url: match (repository, event.merge_request) {
                (Some(url), Some(number)) => Some(format!("{url}/-/merge_requests/{number}")),
                _ => None,
            },
            events: vec![event.text.clone()],
        });
    }
    views
}

pub(super) fn step_views(flag: &Flag, now: jiff::Timestamp) -> Vec<StepView> {
    let times = crate::resolve::step_times(&flag.rollout);
    let mut next_marked = false;
    flag.rollout
        .iter()
        .zip(times)
        .map(|(step, time)| {
            let status = match &time {
                Ok(time) if *time <= now => "done",
                Ok(_) if !next_marked => {
                    next_marked = true;
                    "next"
                }
                _ => "planned",
            };
            StepView {
                when: time
                    .map(|t| t.to_string())
                    .unwrap_or_else(|_| "invalid time".to_string()),
                status,
                rollback: step.rollback,
                note: step.note.clone(),
                changes: step
                    .environments
                    .iter()
                    .map(|(environment, state)| format!("{environment}: {}", Stored::from_model(state)))
                    .collect(),
            }
        })
        .collect()
}

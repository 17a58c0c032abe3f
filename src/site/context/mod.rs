//! View models: what the templates see, built from the registry, the history and the last sync
//! records. They are separate from the domain types, so both can change on their own.

mod environment;
mod flag;
mod index;
mod timeline;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::SiteInput;
use super::chart;
use crate::check::is_http_url;
use crate::escape::redact_url;
use crate::history::Event;
use crate::lifecycle::{self, Standing, Status};
use crate::model::{FlagFile, Registry};
use environment::{EnvironmentView, TypeView, environment_views, freeze_views, type_views};
use flag::{
    FlagView, HoldView, OverrideView, Resolved, StateView, commit_views, guard_views, link, state_view, status_lookup,
    step_views,
};
use index::{Export, ExportFlag, ListView, SearchEntry, export_flag, list_views, search_entry, slugs};
use rayon::prelude::*;

/// Everything the site shows.
#[derive(Debug, Serialize)]
pub struct Views {
    pub(super) site: SiteView,
    pub(super) flags: Vec<FlagView>,
    pub(super) environments: Vec<EnvironmentView>,
    pub(super) types: Vec<TypeView>,
    /// A page per group and per owner, so every filter of the index has a page without
    /// JavaScript.
    pub(super) groups: Vec<ListView>,
    pub(super) owners: Vec<ListView>,
    pub(super) stale: Vec<Standing>,
    pub(super) feed: Vec<FeedEntry>,
    pub(super) export: Export,
    pub(super) search: Vec<SearchEntry>,
}

#[derive(Debug, Serialize)]
pub(super) struct SiteView {
    title: String,
    feed_url: String,
    feed_id: String,
    repository_url: Option<String>,
    commit: Option<String>,
    commit_url: Option<String>,
    generated: String,
    environments: Vec<String>,
    /// The environments that matter most during an incident (the protected ones, else the last
    /// in promotion order), latest stage first: the index's state filter starts on the first,
    /// and narrow screens show them first.
    important: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct FeedEntry {
    id: String,
    title: String,
    updated: String,
    link: String,
    author: String,
    summary: String,
}

/// Builds every view. `now` is the time of the history's head commit, so the output depends
/// only on the input.
pub fn build_views(registry: &Registry, input: &SiteInput) -> Views {
    let config = &registry.config;
    let now = input.time();
    let now_timestamp = jiff::Timestamp::from_second(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let repository = config
        .site
        .repository_url
        .as_deref()
        .filter(|url| is_http_url(url))
        .map(|url| redact_url(url).trim_end_matches('/').to_string());
    let environments: Vec<String> = config.environment_names().map(str::to_string).collect();
    let mut important: Vec<String> = config
        .environments
        .iter()
        .rev()
        .filter(|environment| environment.protected)
        .map(|environment| environment.name.clone())
        .collect();
    if important.is_empty() {
        important.extend(environments.last().cloned());
    }
    let order: BTreeMap<&str, usize> = important
        .iter()
        .chain(environments.iter().filter(|name| !important.contains(name)))
        .enumerate()
        .map(|(place, name)| (name.as_str(), place))
        .collect();
    let statuses = status_lookup(&input.statuses);
    let mut holds_by_flag: BTreeMap<String, Vec<HoldView>> = BTreeMap::new();
    for environment in &environments {
        if let Some(snapshot) = input.snapshots.get(environment) {
            for hold in crate::hold::decide(&snapshot.holds, registry).held {
                holds_by_flag.entry(hold.flag.clone()).or_default().push(HoldView {
                    environment: environment.clone(),
                    text: crate::hold::describe(&hold),
                });
            }
        }
    }
    let guards_by_flag = guard_views(&environments, &input.snapshots);
    let freezes_now: Vec<HoldView> = config
        .environments
        .iter()
        .flat_map(|environment| {
            freeze_views(config, environment, now_timestamp)
                .into_iter()
                .filter(|freeze| freeze.current)
                .map(|freeze| HoldView {
                    environment: environment.name.clone(),
                    text: format!(
                        "change freeze `{}` until {}: a sync changes nothing here",
                        freeze.name, freeze.until
                    ),
                })
        })
        .collect();

    let mut events_by_flag: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for event in &input.history.events {
        events_by_flag.entry(event.flag.as_str()).or_default().push(event);
    }
    let mut required_by: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for file in &registry.flags {
        for required in &file.flag.requires {
            required_by
                .entry(required.as_str())
                .or_default()
                .insert(file.flag.name.as_str());
        }
    }
    let mut files_sorted: Vec<&FlagFile> = registry.flags.iter().collect();
    files_sorted.sort_by(|a, b| a.flag.name.cmp(&b.flag.name));
    let group_slugs = slugs(files_sorted.iter().map(|file| file.flag.group.as_str()));
    let owner_slugs = slugs(
        files_sorted
            .iter()
            .flat_map(|file| file.flag.owners.iter().map(String::as_str)),
    );

    // Each flag's views depend on that flag alone: they are built in parallel, in name order.
    let built: Vec<(Option<Standing>, SearchEntry, ExportFlag, FlagView)> = files_sorted
        .par_iter()
        .map(|file| {
            let flag = &file.flag;
            let path = file.path.display().to_string();
            let standing = lifecycle::standing(flag, config, now_timestamp);
            let stale = (standing.status != Status::Ok).then(|| standing.clone());
            // Per environment: the desired state now, and what the backend holds when it was read.
            let resolved: Vec<Resolved> = environments
                .iter()
                .map(|environment| Resolved {
                    environment,
                    desired: crate::resolve::desired_flag(flag, environment, now_timestamp),
                    synced: input
                        .snapshots
                        .get(environment)
                        .map(|snapshot| snapshot.flags.get(&flag.name).cloned()),
                })
                .collect();
            let states: Vec<StateView> = resolved
                .iter()
                .map(|r| {
                    let mut view = state_view(
                        r.environment,
                        r.desired.as_ref(),
                        r.synced.clone(),
                        statuses.get(&(r.environment.as_str(), flag.name.as_str())),
                    );
                    view.order = order[r.environment.as_str()];
                    view.important = important.contains(r.environment);
                    view
                })
                .collect();
            let flag_events = events_by_flag.get(flag.name.as_str()).cloned().unwrap_or_default();
            let history = commit_views(&flag_events, repository.as_deref());
            let rollout = step_views(flag, now_timestamp);
            let charts = timeline::chart_for(flag, &environments, &flag_events, now);
            let mut holds = holds_by_flag.get(flag.name.as_str()).cloned().unwrap_or_default();
            holds.extend(freezes_now.iter().cloned());
            holds.extend(states.iter().filter_map(|state| {
                state.held_back.as_ref().map(|why| HoldView {
                    environment: state.environment.clone(),
                    text: format!(
                        "the last sync held back the change from {} to {}: {why}",
                        state.synced.as_deref().unwrap_or("absent"),
                        state.text
                    ),
                })
            }));
            let mut links = vec![link("Introduced by", &flag.introduced_by_url)];
            if let Some(url) = &flag.feature_issue_url {
                links.push(link("Feature issue", url));
            }
            if let Some(url) = &flag.rollout_issue_url {
                links.push(link("Rollout issue", url));
            }
            // What a person on call may type: the name, description, group, owners and type, and
            // every state in `plan`'s words (`50% of actors`, `project:gitlab-org/gitlab`), desired
            // and held.
            let mut search_text = format!(
                "{} {} {} {} {}",
                flag.name,
                flag.description,
                flag.group,
                flag.owners.join(" "),
                flag.flag_type
            );
            for state in &states {
                search_text.push(' ');
                search_text.push_str(&state.text);
                if let Some(synced) = state.synced.as_ref().filter(|_| state.drift) {
                    search_text.push(' ');
                    search_text.push_str(synced);
                }
            }
            let search_text = search_text.to_lowercase();
            let flag_group_slug = group_slugs[flag.group.as_str()].clone();
            let flag_owner_slugs: Vec<String> = flag
                .owners
                .iter()
                .map(|owner| owner_slugs[owner.as_str()].clone())
                .collect();
            let search = search_entry(
                flag,
                &states,
                &search_text,
                standing.status,
                (&flag_group_slug, &flag_owner_slugs),
            );
            let export = export_flag(flag, resolved, standing.status);
            let view = FlagView {
                name: flag.name.clone(),
                description: flag.description.clone(),
                flag_type: flag.flag_type.clone(),
                group: flag.group.clone(),
                group_slug: flag_group_slug,
                owners: flag.owners.clone(),
                owner_slugs: flag_owner_slugs,
                milestone: flag.milestone.clone(),
                default_enabled: flag.default_enabled,
                log_state_changes: flag.log_state_changes.unwrap_or(false),
                path,
                overrides: flag
                    .overrides
                    .iter()
                    .map(|(policy, reason)| OverrideView {
                        policy: policy.clone(),
                        reason: reason.clone(),
                    })
                    .collect(),
                links,
                states,
                requires: flag.requires.clone(),
                required_by: required_by
                    .get(flag.name.as_str())
                    .map(|set| set.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default(),
                rollout,
                history,
                chart: charts.chart,
                detail_chart: charts.detail,
                timeline: charts.stretches,
                holds,
                guards: guards_by_flag.get(flag.name.as_str()).cloned().unwrap_or_default(),
                standing,
                search: search_text,
            };
            (stale, search, export, view)
        })
        .collect();
    let mut flags = Vec::with_capacity(built.len());
    let mut export = Vec::with_capacity(built.len());
    let mut search = Vec::with_capacity(built.len());
    let mut stale = Vec::new();
    for (standing, search_row, export_row, view) in built {
        stale.extend(standing);
        search.push(search_row);
        export.push(export_row);
        flags.push(view);
    }
    stale.sort_by(|a, b| (a.status, &a.limit, &a.flag).cmp(&(b.status, &b.limit, &b.flag)));

    let environment_views = environment_views(config, &input.snapshots, &flags, now_timestamp);
    let types = type_views(config, &flags);

    let base = config
        .site
        .base_url
        .as_deref()
        .filter(|url| is_http_url(url))
        .map(|url| format!("{}/", redact_url(url).trim_end_matches('/')));
    // An entry's id names its commit, its flag and its place among that flag's events of that
    // commit, so it stays the same as newer events arrive.
    let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let feed = input
        .history
        .events
        .iter()
        .take(100)
        .map(|event| {
            let place = seen.entry((event.commit.as_str(), event.flag.as_str())).or_default();
            *place += 1;
            let page = if registry.knows(&event.flag) {
                format!("flags/{}.html", event.flag)
            } else {
                "index.html".to_string()
            };
            FeedEntry {
                id: format!("urn:flagops:event:{}:{}:{place}", event.commit, event.flag),
                title: format!("{}: {}", event.flag, event.text),
                updated: rfc3339(event.time),
                link: format!("{}{page}", base.as_deref().unwrap_or("")),
                author: event.author.clone(),
                summary: event.title.clone(),
            }
        })
        .collect();

    let commit = input.history.head.clone();
    Views {
        site: SiteView {
            title: config.site.title.clone().unwrap_or_else(|| "Feature flags".to_string()),
            feed_url: format!("{}feed.xml", base.as_deref().unwrap_or("")),
            feed_id: match &base {
                Some(base) => format!("{base}feed.xml"),
                None => format!(
                    "urn:flagops:feed:{}",
                    config
                        .site
                        .title
                        .as_deref()
                        .unwrap_or("flags")
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() {
                            c.to_ascii_lowercase()
                        } else {
                            '-'
                        })
                        .collect::<String>()
                ),
            },
            commit_url: match (&repository, &commit) {
                (Some(url), Some(commit)) => Some(format!("{url}/-/commit/{commit}")),
                _ => None,
            },
            repository_url: repository.clone(),
            commit: commit.as_deref().map(short_commit),
            generated: rfc3339(now),
            environments: environments.clone(),
            important,
        },
        groups: list_views("Group", &group_slugs, &flags, |flag| vec![flag.group.as_str()]),
        owners: list_views("Owner", &owner_slugs, &flags, |flag| {
            flag.owners.iter().map(String::as_str).collect()
        }),
        flags,
        environments: environment_views,
        types,
        stale,
        feed,
        export: Export {
            generated: rfc3339(now),
            commit,
            flags: export,
        },
        search,
    }
}

fn rfc3339(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The first 12 characters of a commit id; the id comes from a backend's sync record or the
/// history cache, so it is cut by characters, never by bytes.
fn short_commit(commit: &str) -> String {
    commit.chars().take(12).collect()
}

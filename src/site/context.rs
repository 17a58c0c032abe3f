//! View models: what the templates see, built from the registry, the history and the last sync
//! records. They are separate from the domain types, so both can change on their own.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::SiteInput;
use super::chart::{self, Row, Segment, Stretch, Window};
use crate::check::is_http_url;
use crate::escape::redact_url;
use crate::history::{Event, EventKind};
use crate::lifecycle::{self, Standing, Status};
use crate::model::{Flag, FlagFile, Registry};
use crate::plan::show;
use crate::state::Stored;
use crate::status::EnvironmentStatus;

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
pub(super) struct FlagView {
    pub(super) name: String,
    description: String,
    flag_type: String,
    group: String,
    /// The group's page, `groups/<slug>.html`.
    group_slug: String,
    owners: Vec<String>,
    /// The owners' pages, `owners/<slug>.html`, in the order of `owners`.
    owner_slugs: Vec<String>,
    milestone: String,
    default_enabled: bool,
    log_state_changes: bool,
    path: String,
    /// Policies this flag is exempt from, with the reasons its file gives.
    overrides: Vec<OverrideView>,
    links: Vec<LinkView>,
    states: Vec<StateView>,
    requires: Vec<String>,
    required_by: Vec<String>,
    rollout: Vec<StepView>,
    history: Vec<CommitView>,
    chart: String,
    /// The rollout's detail view, when its steps are too close together for the whole chart.
    detail_chart: Option<String>,
    /// Every stretch of the chart in words, for the table under it.
    timeline: Vec<Stretch>,
    /// Emergency holds and change freezes in force, per environment, in words.
    holds: Vec<HoldView>,
    standing: Standing,
    search: String,
}

#[derive(Clone, Debug, Serialize)]
struct HoldView {
    environment: String,
    text: String,
}

#[derive(Debug, Serialize)]
struct OverrideView {
    policy: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct LinkView {
    label: &'static str,
    text: String,
    href: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
struct StateView {
    environment: String,
    /// The place of the environment on a narrow screen's card: the important ones first.
    order: usize,
    important: bool,
    /// The kind of the desired state (`on`, `partial`, `off`, `absent`).
    class: &'static str,
    /// The desired state in `plan`'s words.
    text: String,
    /// The same, shortened to fit a chip.
    chip: String,
    /// What the backend holds, in `plan`'s words; `None` when it was not read.
    synced: Option<String>,
    live_class: Option<&'static str>,
    live_chip: Option<String>,
    /// Whether the backend holds something else than the desired state.
    drift: bool,
    /// `in sync`, `pending`, `drift`, `held`, `differs` (when no status could be read) or
    /// `not synced`.
    status: &'static str,
    /// Why it is held.
    note: Option<String>,
}

#[derive(Debug, Serialize)]
struct StepView {
    when: String,
    status: &'static str,
    rollback: bool,
    note: Option<String>,
    changes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct CommitView {
    short: String,
    commit_url: Option<String>,
    time: String,
    author: String,
    title: String,
    merge_request: Option<u64>,
    merge_request_url: Option<String>,
    events: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct EnvironmentView {
    pub(super) name: String,
    description: Option<String>,
    url: Option<String>,
    protected: bool,
    backend: String,
    last_sync: Option<String>,
    /// The freeze reason the last sync overrode, if it did.
    last_sync_override: Option<String>,
    /// Change freezes for this environment not over at the site's time, earliest first.
    freezes: Vec<FreezeView>,
    flags: Vec<EnvironmentFlag>,
}

#[derive(Debug, Serialize)]
struct FreezeView {
    name: String,
    from: String,
    until: String,
    /// In force at the site's time.
    current: bool,
}

#[derive(Debug, Serialize)]
struct EnvironmentFlag {
    name: String,
    state: StateView,
}

#[derive(Debug, Serialize)]
pub(super) struct TypeView {
    pub(super) name: String,
    description: Option<String>,
    rules: String,
    flags: Vec<String>,
}

/// The flags of one group or one owner.
#[derive(Debug, Serialize)]
pub(super) struct ListView {
    /// `Group` or `Owner`.
    kind: &'static str,
    name: String,
    /// The page is `<slug>.html` in `groups/` or `owners/`.
    pub(super) slug: String,
    /// The flags, as positions in `Views::flags` (sorted by name).
    #[serde(skip)]
    pub(super) flags: Vec<usize>,
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

#[derive(Debug, Serialize)]
pub(super) struct Export {
    generated: String,
    commit: Option<String>,
    flags: Vec<ExportFlag>,
}

#[derive(Debug, Serialize)]
struct ExportFlag {
    name: String,
    description: String,
    #[serde(rename = "type")]
    flag_type: String,
    group: String,
    owners: Vec<String>,
    milestone: String,
    default_enabled: bool,
    feature_issue_url: Option<String>,
    introduced_by_url: String,
    rollout_issue_url: Option<String>,
    requires: Vec<String>,
    environments: BTreeMap<String, ExportState>,
    stale: Status,
}

#[derive(Debug, Serialize)]
struct ExportState {
    desired: Option<Stored>,
    synced: Option<Stored>,
}

#[derive(Debug, Serialize)]
pub(super) struct SearchEntry {
    name: String,
    text: String,
    #[serde(rename = "type")]
    flag_type: String,
    group: String,
    owners: Vec<String>,
    states: BTreeMap<String, &'static str>,
    /// Per environment where the backend does not hold the desired state: `pending`, `drift`,
    /// `held` or `differs`.
    status: BTreeMap<String, &'static str>,
    stale: Status,
    /// What the index's rows show, so the search script can list matches before the page's
    /// own rows are all read.
    description: String,
    group_slug: String,
    owner_slugs: Vec<String>,
    /// Per environment, in promotion order: the state as the index's cell shows it.
    cells: Vec<CellEntry>,
}

/// A state as the index's cell shows it, in few bytes: the chip, and the live state and marker
/// where the flag is not in sync.
#[derive(Debug, Serialize)]
struct CellEntry {
    class: &'static str,
    chip: String,
    /// The whole state, when the chip shortens it.
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    live_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    live_chip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    live_title: Option<String>,
}

impl CellEntry {
    fn new(state: &StateView) -> CellEntry {
        let marked = !matches!(state.status, "in sync" | "not synced");
        let live_chip = state.live_chip.clone().filter(|_| marked);
        CellEntry {
            class: state.class,
            chip: state.chip.clone(),
            title: (state.chip != state.text).then(|| state.text.clone()),
            status: marked.then_some(state.status),
            live_class: state.live_class.filter(|_| marked),
            live_title: state
                .synced
                .clone()
                .filter(|synced| marked && live_chip.as_ref() != Some(synced)),
            live_chip,
        }
    }
}

/// One flag in one environment: the desired state, and what the backend holds (`None` when the
/// backend was not read).
struct Resolved<'a> {
    environment: &'a String,
    desired: Option<Stored>,
    synced: Option<Option<Stored>>,
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

    let mut flags = Vec::new();
    let mut export = Vec::new();
    let mut search = Vec::new();
    let mut stale = Vec::new();
    for file in files_sorted {
        let flag = &file.flag;
        let path = file.path.display().to_string();
        let standing = lifecycle::standing(flag, config, now_timestamp);
        if standing.status != Status::Ok {
            stale.push(standing.clone());
        }
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
        let charts = chart_for(flag, &environments, &flag_events, now);
        let mut holds = holds_by_flag.remove(flag.name.as_str()).unwrap_or_default();
        holds.extend(freezes_now.iter().cloned());
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
        search.push(SearchEntry {
            name: flag.name.clone(),
            text: search_text.clone(),
            flag_type: flag.flag_type.clone(),
            group: flag.group.clone(),
            owners: flag.owners.clone(),
            states: states.iter().map(|s| (s.environment.clone(), s.class)).collect(),
            status: states
                .iter()
                .filter(|s| !matches!(s.status, "in sync" | "not synced"))
                .map(|s| (s.environment.clone(), s.status))
                .collect(),
            stale: standing.status,
            description: flag.description.clone(),
            group_slug: group_slugs[flag.group.as_str()].clone(),
            owner_slugs: flag
                .owners
                .iter()
                .map(|owner| owner_slugs[owner.as_str()].clone())
                .collect(),
            cells: states.iter().map(CellEntry::new).collect(),
        });
        export.push(ExportFlag {
            name: flag.name.clone(),
            description: flag.description.clone(),
            flag_type: flag.flag_type.clone(),
            group: flag.group.clone(),
            owners: flag.owners.clone(),
            milestone: flag.milestone.clone(),
            default_enabled: flag.default_enabled,
            feature_issue_url: flag.feature_issue_url.clone(),
            introduced_by_url: flag.introduced_by_url.clone(),
            rollout_issue_url: flag.rollout_issue_url.clone(),
            requires: flag.requires.clone(),
            environments: resolved
                .into_iter()
                .map(|r| {
                    (
                        r.environment.clone(),
                        ExportState {
                            desired: r.desired,
                            synced: r.synced.flatten(),
                        },
                    )
                })
                .collect(),
            stale: standing.status,
        });
        flags.push(FlagView {
            name: flag.name.clone(),
            description: flag.description.clone(),
            flag_type: flag.flag_type.clone(),
            group: flag.group.clone(),
            group_slug: group_slugs[flag.group.as_str()].clone(),
            owners: flag.owners.clone(),
            owner_slugs: flag
                .owners
                .iter()
                .map(|owner| owner_slugs[owner.as_str()].clone())
                .collect(),
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
            standing,
            search: search_text,
        });
    }
    stale.sort_by(|a, b| (a.status, &a.limit, &a.flag).cmp(&(b.status, &b.limit, &b.flag)));

    let environment_views = config
        .environments
        .iter()
        .map(|environment| {
            let snapshot = input.snapshots.get(&environment.name);
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
        .collect();

    let types = config
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
        .collect();

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

/// The change freezes of `environment` that have not ended at `now`, earliest first.
fn freeze_views(
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

/// A file name for each of `names`: ASCII letters (lowercased), digits, `-` and `_`, every other
/// run of characters as one `-`, and a number after a name that another already took
/// (`group::source code` is `group-source-code`, `@alice` is `alice`).
fn slugs<'a>(names: impl Iterator<Item = &'a str>) -> BTreeMap<&'a str, String> {
    let names: BTreeSet<&str> = names.collect();
    let mut taken = BTreeSet::new();
    let mut out = BTreeMap::new();
    for name in names {
        let mut base = String::new();
        for c in name.chars() {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                base.push(c.to_ascii_lowercase());
            } else if !base.ends_with('-') {
                base.push('-');
            }
        }
        let base = base.trim_matches('-');
        let base = if base.is_empty() { "unnamed" } else { base };
        let mut slug = base.to_string();
        let mut number = 2;
        while !taken.insert(slug.clone()) {
            slug = format!("{base}-{number}");
            number += 1;
        }
        out.insert(name, slug);
    }
    out
}

/// A page per name in `slugs`, listing the flags `names_of` puts under that name.
fn list_views(
    kind: &'static str,
    slugs: &BTreeMap<&str, String>,
    flags: &[FlagView],
    names_of: impl Fn(&FlagView) -> Vec<&str>,
) -> Vec<ListView> {
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (position, flag) in flags.iter().enumerate() {
        for name in names_of(flag) {
            by_name.entry(name).or_default().push(position);
        }
    }
    by_name
        .into_iter()
        .map(|(name, flags)| ListView {
            kind,
            name: name.to_string(),
            slug: slugs[name].clone(),
            flags,
        })
        .collect()
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

fn link(label: &'static str, url: &str) -> LinkView {
    let url = redact_url(url);
    LinkView {
        label,
        text: url.to_string(),
        href: is_http_url(&url).then(|| url.to_string()),
    }
}

/// One flag in one environment. `status` is what `status::classify` found, when the
/// environment's status could be read.
fn state_view(
    environment: &str,
    desired: Option<&Stored>,
    synced: Option<Option<Stored>>,
    status: Option<&(&'static str, Option<String>)>,
) -> StateView {
    let (class, _) = chart::describe(desired);
    let drift = synced.as_ref().is_some_and(|synced| synced.as_ref() != desired);
    let (status, note) = match (&synced, status) {
        (None, _) => ("not synced", None),
        (Some(_), Some((status, note))) => (*status, note.clone()),
        (Some(_), None) if drift => ("differs", None),
        (Some(_), None) => ("in sync", None),
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
    }
}

/// A state in `plan`'s words, cut to its first gate and a count of the others when it has more
/// than one: `25% of actors, +2 more`.
fn chip(state: Option<&Stored>) -> String {
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

/// `(environment, flag)` to the status `status::classify` gave and, for a held flag, why.
fn status_lookup(
    statuses: &BTreeMap<String, EnvironmentStatus>,
) -> BTreeMap<(&str, &str), (&'static str, Option<String>)> {
    let mut out = BTreeMap::new();
    for (environment, status) in statuses {
        for flag in &status.pending {
            out.insert((environment.as_str(), flag.flag.as_str()), ("pending", None));
        }
        for flag in &status.drifted {
            out.insert((environment.as_str(), flag.flag.as_str()), ("drift", None));
        }
        for held in &status.held {
            out.insert(
                (environment.as_str(), held.status.flag.as_str()),
                ("held", Some(crate::hold::describe(&held.hold))),
            );
        }
    }
    out
}

fn commit_views(events: &[&Event], repository: Option<&str>) -> Vec<CommitView> {
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

fn step_views(flag: &Flag, now: jiff::Timestamp) -> Vec<StepView> {
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

/// The charts of a flag and the table of their stretches.
struct Charts {
    chart: String,
    detail: Option<String>,
    stretches: Vec<Stretch>,
}

/// The chart rows: per environment, the state over time from history up to the flag's last
/// commit, then the desired state of the flag as it is now (its rollout plan resolved) at that
/// commit and at each later step. A second chart shows the rollout window when its steps are
/// too close together to tell apart on the whole span.
fn chart_for(flag: &Flag, environments: &[String], events: &[&Event], now: i64) -> Charts {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_names_and_never_clash() {
        let names = [
            "group::source code",
            "@alice",
            "Group::Source-Code",
            "group::source code!",
            "::",
            "a_b",
        ];
        let slugs = slugs(names.into_iter());
        assert_eq!(slugs["@alice"], "alice");
        assert_eq!(slugs["a_b"], "a_b");
        assert_eq!(slugs["::"], "unnamed");
        // Sorted names take the plain slug first.
        assert_eq!(slugs["Group::Source-Code"], "group-source-code");
        assert_eq!(slugs["group::source code"], "group-source-code-2");
        assert_eq!(slugs["group::source code!"], "group-source-code-3");
        let unique: BTreeSet<&String> = slugs.values().collect();
        assert_eq!(unique.len(), names.len());
    }
}

//! The views every flag shares with others: the rows of `flags.json` and `search.json`, the
//! group and owner pages, and the slugs that name them.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::flag::{FlagView, Resolved, StateView};
use crate::lifecycle::Status;
use crate::model::Flag;
use crate::state::Stored;

/// The flags of one group or one owner.
#[derive(Debug, Serialize)]
pub(in crate::site) struct ListView {
    /// `Group` or `Owner`.
    pub(super) kind: &'static str,
    pub(super) name: String,
    /// The page is `<slug>.html` in `groups/` or `owners/`.
    pub(in crate::site) slug: String,
    /// The flags, as positions in `Views::flags` (sorted by name).
    #[serde(skip)]
    pub(in crate::site) flags: Vec<usize>,
}

#[derive(Debug, Serialize)]
pub(in crate::site) struct Export {
    pub(super) generated: String,
    pub(super) commit: Option<String>,
    pub(super) flags: Vec<ExportFlag>,
}

#[derive(Debug, Serialize)]
pub(in crate::site) struct ExportFlag {
    pub(super) name: String,
    pub(super) description: String,
    #[serde(rename = "type")]
    pub(super) flag_type: String,
    pub(super) group: String,
    pub(super) owners: Vec<String>,
    pub(super) milestone: String,
    pub(super) default_enabled: bool,
    pub(super) feature_issue_url: Option<String>,
    pub(super) introduced_by_url: String,
    pub(super) rollout_issue_url: Option<String>,
    pub(super) requires: Vec<String>,
    pub(super) environments: BTreeMap<String, ExportState>,
    pub(super) stale: Status,
}

#[derive(Debug, Serialize)]
pub(in crate::site) struct ExportState {
    pub(super) desired: Option<Stored>,
    pub(super) synced: Option<Stored>,
}

#[derive(Debug, Serialize)]
pub(in crate::site) struct SearchEntry {
    pub(super) name: String,
    pub(super) text: String,
    #[serde(rename = "type")]
    pub(super) flag_type: String,
    pub(super) group: String,
    pub(super) owners: Vec<String>,
    pub(super) states: BTreeMap<String, &'static str>,
    /// Per environment where the backend does not hold the desired state: `pending`, `drift`,
    /// `held` or `differs`.
    pub(super) status: BTreeMap<String, &'static str>,
    pub(super) stale: Status,
    /// What the index's rows show, so the search script can list matches before the page's
    /// own rows are all read.
    pub(super) description: String,
    pub(super) group_slug: String,
    pub(super) owner_slugs: Vec<String>,
    /// Per environment, in promotion order: the state as the index's cell shows it.
    pub(super) cells: Vec<CellEntry>,
}

/// A state as the index's cell shows it, in few bytes: the chip, and the live state and marker
/// where the flag is not in sync.
#[derive(Debug, Serialize)]
pub(in crate::site) struct CellEntry {
    pub(super) class: &'static str,
    pub(super) chip: String,
    /// The whole state, when the chip shortens it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) live_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) live_chip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) live_title: Option<String>,
    /// Why the last sync held the change back, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) held_back: Option<String>,
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
            held_back: state.held_back.clone(),
        }
    }
}

/// A flag's row of `search.json`: `text` is what a search matches, `slugs` the group's and the
/// owners' page names.
pub(super) fn search_entry(
    flag: &Flag,
    states: &[StateView],
    text: &str,
    stale: Status,
    slugs: (&str, &[String]),
) -> SearchEntry {
    SearchEntry {
        name: flag.name.clone(),
        text: text.to_string(),
        flag_type: flag.flag_type.clone(),
        group: flag.group.clone(),
        owners: flag.owners.clone(),
        states: states.iter().map(|s| (s.environment.clone(), s.class)).collect(),
        status: states
            .iter()
            .filter(|s| !matches!(s.status, "in sync" | "not synced"))
            .map(|s| (s.environment.clone(), s.status))
            .collect(),
        stale,
        description: flag.description.clone(),
        group_slug: slugs.0.to_string(),
        owner_slugs: slugs.1.to_vec(),
        cells: states.iter().map(CellEntry::new).collect(),
    }
}

/// A flag's entry of `flags.json`, with its desired and synced state per environment.
pub(super) fn export_flag(flag: &Flag, resolved: Vec<Resolved>, stale: Status) -> ExportFlag {
    ExportFlag {
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
        stale,
    }
}

/// A file name for each of `names`: ASCII letters (lowercased), digits, `-` and `_`, every other
/// run of characters as one `-`, and a number after a name that another already took
/// (`group::source code` is `group-source-code`, `@alice` is `alice`).
pub(super) fn slugs<'a>(names: impl Iterator<Item = &'a str>) -> BTreeMap<&'a str, String> {
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
pub(super) fn list_views(
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

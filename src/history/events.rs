//! Semantic events: what each commit did to each flag, in words ("production: 25% of actors →
//! 50% of actors", "created", "type beta → ops").
//!
//! Changed paths are mapped to flags by file stem, never by similarity: a move between folders
//! keeps the name and so the history.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::Flag;
use crate::plan::show;
use crate::source::SourceFile;
use crate::state::Stored;

/// One thing a commit did to one flag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The flag.
    pub flag: String,
    /// The commit id.
    pub commit: String,
    /// The commit's author, `Name <email>`.
    pub author: String,
    /// The commit's time, in seconds since the epoch.
    pub time: i64,
    /// The commit's title (the merge request's title for merge commits).
    pub title: String,
    /// The merge request number, from `See merge request group/project!N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_request: Option<u64>,
    /// What happened.
    pub kind: EventKind,
    /// The environment, for state changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The state before, for state changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Stored>,
    /// The state after, for state changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Stored>,
    /// The event in words.
    pub text: String,
}

/// The kinds of event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The flag file appeared.
    Created,
    /// The flag file went away.
    Removed,
    /// The flag file moved to another folder.
    Moved,
    /// A definition field changed.
    Changed,
    /// The desired state in an environment changed.
    State,
    /// The rollout plan changed.
    Rollout,
    /// The file could not be read at this commit.
    Invalid,
}

/// A flag file at one commit: its path and what the events need of its flag, if it could be
/// read.
pub(crate) struct Version<'a> {
    pub(crate) path: String,
    pub(crate) flag: Option<&'a Facts>,
}

/// The definition fields an event names when they change, in the order it names them.
const FIELDS: [&str; 11] = [
    "type",
    "group",
    "milestone",
    "default_enabled",
    "owners",
    "requires",
    "rollout issue",
    "feature issue",
    "introduced by",
    "intended_to_rollout_by",
    "log_state_changes",
];

/// What the events need of one version of a flag: its fields as they are shown ([`FIELDS`]),
/// its states as stored, and its description and rollout plan for comparison only.
///
/// A history holds one of these for the latest version of every flag file, so it is kept small:
/// a [`Flag`] is several times larger, most of it in the rollout plan's maps.
#[derive(Debug)]
pub(crate) struct Facts {
    /// The fields as shown ([`FIELDS`]) and the description, one after another, ending where
    /// `ends` says.
    text: Box<str>,
    ends: [usize; FIELDS.len() + 1],
    environments: Box<[(Box<str>, Stored)]>,
    /// The rollout plan's step count and the plan as JSON, which is equal exactly when the
    /// plans are.
    rollout: (usize, Box<str>),
}

impl Facts {
    fn of(flag: &Flag) -> Facts {
        const NONE: &str = "(none)";
        let list = |values: &[String]| {
            if values.is_empty() {
                NONE.to_string()
            } else {
                values.join(", ")
            }
        };
        let fields: [&str; FIELDS.len() + 1] = [
            &flag.flag_type,
            &flag.group,
            &flag.milestone,
            &flag.default_enabled.to_string(),
            &list(&flag.owners),
            &list(&flag.requires),
            flag.rollout_issue_url.as_deref().unwrap_or(NONE),
            flag.feature_issue_url.as_deref().unwrap_or(NONE),
            &flag.introduced_by_url,
            flag.intended_to_rollout_by.as_deref().unwrap_or(NONE),
            &flag.log_state_changes.unwrap_or(false).to_string(),
            &flag.description,
        ];
        let mut ends = [0; FIELDS.len() + 1];
        let mut end = 0;
        for (field, slot) in fields.iter().zip(&mut ends) {
            end += field.len();
            *slot = end;
        }
        Facts {
            text: fields.concat().into_boxed_str(),
            ends,
            environments: flag
                .environments
                .into_iter()
                .map(|(environment, state)| (environment.as_str().into(), Stored::from_model(state)))
                .collect(),
            rollout: (
                flag.rollout.len(),
                serde_json::to_string(&flag.rollout).unwrap_or_default().into(),
            ),
        }
    }

    /// Field `index` of [`FIELDS`] as shown; the description after the last.
    fn field(&self, index: usize) -> &str {
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.text[start..self.ends[index]]
    }

    fn state(&self, environment: &str) -> Option<&Stored> {
        self.environments
            .iter()
            .find(|(name, _)| &**name == environment)
            .map(|(_, state)| state)
    }
}

/// The commit facts every event of it shares.
pub(crate) struct CommitInfo<'a> {
    pub(crate) id: String,
    pub(crate) author: &'a str,
    pub(crate) time: i64,
    pub(crate) title: &'a str,
    pub(crate) merge_request: Option<u64>,
}

/// Reads what the events need of a flag from a file's text, ignoring problems a validation
/// would report.
pub(crate) fn read_flag(path: &str, text: &str) -> Option<Facts> {
    let file = SourceFile {
        path: Path::new(path).to_path_buf(),
        text: text.to_string(),
    };
    let document = crate::source::parse_yaml(&file).ok()?;
    let flag: Flag = serde_json::from_value(document.value).ok()?;
    Some(Facts::of(&flag))
}

/// A flag a commit changed: its file stem, and its versions before and after the commit. A file
/// that moved shows once on each side; an edit in place shows on both.
pub(crate) type Changed<'a> = (String, (Vec<Version<'a>>, Vec<Version<'a>>));

/// The events of (some of) the flags one commit changed, in the order given.
pub(crate) fn events(commit: &CommitInfo<'_>, changed: &[Changed<'_>]) -> Vec<Event> {
    let (title, merge_request) = (commit.title, commit.merge_request);
    let mut out = Vec::new();
    for (stem, (before, after)) in changed {
        let mut push = |kind: EventKind, text: String, state: Option<(&str, Option<Stored>, Option<Stored>)>| {
            let (environment, from, to) = match state {
                Some((environment, from, to)) => (Some(environment.to_string()), from, to),
                None => (None, None, None),
            };
            out.push(Event {
                flag: stem.clone(),
                commit: commit.id.clone(),
                author: commit.author.to_string(),
                time: commit.time,
                title: title.to_string(),
                merge_request,
                kind,
                environment,
                from,
                to,
                text,
            });
        };
        let old = before.first();
        let new = after.first();
        match (old, new) {
            (None, None) => {}
            (None, Some(new)) => {
                push(EventKind::Created, format!("created at `{}`", new.path), None);
                match new.flag {
                    Some(flag) => {
                        for (text, state) in initial_states(flag) {
                            push(EventKind::State, text, Some(state));
                        }
                    }
                    None => push(EventKind::Invalid, format!("`{}` could not be read", new.path), None),
                }
            }
            (Some(old), None) => push(EventKind::Removed, format!("removed from `{}`", old.path), None),
            (Some(old), Some(new)) => {
                if old.path != new.path {
                    push(
                        EventKind::Moved,
                        format!("moved from `{}` to `{}`", old.path, new.path),
                        None,
                    );
                }
                match (old.flag, new.flag) {
                    (Some(before), Some(after)) => {
                        for text in field_changes(before, after) {
                            push(EventKind::Changed, text, None);
                        }
                        for (environment, from, to) in state_changes(before, after) {
                            let text = format!("{environment}: {} → {}", show(from), show(to));
                            push(EventKind::State, text, Some((environment, from.cloned(), to.cloned())));
                        }
                        if before.rollout != after.rollout {
                            let text = match (before.rollout.0, after.rollout.0) {
                                (0, n) => format!("rollout plan added ({n} steps)"),
                                (_, 0) => "rollout plan removed".to_string(),
                                (a, b) if a == b => format!("rollout plan edited ({b} steps)"),
                                (a, b) => format!("rollout plan changed ({a} → {b} steps)"),
                            };
                            push(EventKind::Rollout, text, None);
                        }
                    }
                    (_, None) => push(EventKind::Invalid, format!("`{}` could not be read", new.path), None),
                    (None, Some(flag)) => {
                        push(EventKind::Changed, format!("`{}` is readable again", new.path), None);
                        for (text, state) in initial_states(flag) {
                            push(EventKind::State, text, Some(state));
                        }
                    }
                }
            }
        }
    }
    out
}

/// The state events of a flag that appears: each environment's state, from nothing.
fn initial_states(flag: &Facts) -> impl Iterator<Item = (String, (&str, Option<Stored>, Option<Stored>))> {
    flag.environments.iter().map(|(environment, state)| {
        let text = format!("{environment}: {}", show(Some(state)));
        (text, (&**environment, None, Some(state.clone())))
    })
}

/// Definition fields that changed, in words.
fn field_changes(before: &Facts, after: &Facts) -> Vec<String> {
    let mut out: Vec<String> = FIELDS
        .iter()
        .enumerate()
        .map(|(index, name)| (name, before.field(index), after.field(index)))
        .filter(|(_, old, new)| old != new)
        .map(|(name, old, new)| format!("{name} {old} → {new}"))
        .collect();
    if before.field(FIELDS.len()) != after.field(FIELDS.len()) {
        out.push("description edited".to_string());
    }
    out
}

/// Environments whose state entry changed: (environment, before, after), in name order.
fn state_changes<'a>(before: &'a Facts, after: &'a Facts) -> Vec<(&'a str, Option<&'a Stored>, Option<&'a Stored>)> {
    let environments: BTreeSet<&str> = before
        .environments
        .iter()
        .chain(after.environments.iter())
        .map(|(name, _)| &**name)
        .collect();
    environments
        .into_iter()
        .filter_map(|environment| {
            let (from, to) = (before.state(environment), after.state(environment));
            (from != to).then_some((environment, from, to))
        })
        .collect()
}

/// The title of a commit, and its merge request number. For GitLab's merge commits ("Merge
/// branch 'x' into 'main'", a blank line, the merge request title, ..., "See merge request
/// group/project!123") the title is the merge request's.
pub fn title_and_merge_request(message: &str) -> (String, Option<u64>) {
    let lines: Vec<&str> = message.lines().map(str::trim).collect();
    let first = lines.first().copied().unwrap_or_default().to_string();
    let merge_request = lines.iter().find_map(|line| {
        let rest = line.strip_prefix("See merge request ")?;
        let (_, number) = rest.rsplit_once('!')?;
        number.trim_end_matches('.').parse().ok()
    });
    let title = if first.starts_with("Merge branch ") {
        lines
            .iter()
            .skip(1)
            .find(|line| !line.is_empty() && !line.starts_with("See merge request"))
            .map_or(first.clone(), |l| l.to_string())
    } else {
        first
    };
    (title, merge_request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_reads_gitlab_merge_commits() {
        let message =
            "Merge branch 'roll-out' into 'main'\n\nRoll out alpha to 50%\n\nSee merge request gitlab-org/flags!123\n";
        assert_eq!(
            title_and_merge_request(message),
            ("Roll out alpha to 50%".to_string(), Some(123))
        );
        assert_eq!(
            title_and_merge_request("Plain commit\n\nbody"),
            ("Plain commit".to_string(), None)
        );
    }
}

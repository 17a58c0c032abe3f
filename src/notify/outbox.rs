//! The outbox: `<state_dir>/<env>.outbox.jsonl`, the journal of one environment's notifications.
//!
//! Each line is an `Entry` about one notification (one change or summary for one notifier),
//! named by its `id`. A notification is `prepared` (with its message) before its change is
//! applied, then `applied` or `void`; it is `sent` once its receiver accepted it, and `failed`
//! lines record each delivery that did not work. Lines are appended under the environment's
//! lock, so the latest line about an id says where it stands, and a crash at any moment leaves a
//! journal that says what is still to send.
//!
//! `compact` keeps the journal bounded: once it holds more than `COMPACT_AFTER` finished
//! notifications it is rewritten whole, through a temporary file and a rename, without the runs
//! whose every notification is finished. A crash before the rename leaves the journal as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{Event, Message};
use crate::state::EnvironmentState;

/// One line of the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The notification: the same for every line about it, and the receivers' idempotency key.
    pub id: String,
    /// What happened to it.
    pub status: Status,
    /// The notifier, on the first line about the notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifier: Option<String>,
    /// What it says, on the first line about the notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// Why a delivery failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// On a `sent` line, the address of what the receiver opened (a log issue), which other
    /// notifications of the same change link to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Where a notification stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Its change is about to be applied: whether it was is not known yet.
    Prepared,
    /// Its change was applied (a summary is applied when it is written): it is to be sent.
    Applied,
    /// Its change was not applied: nothing is sent.
    Void,
    /// A delivery failed; it is still to be sent.
    Failed,
    /// Its receiver accepted it.
    Sent,
}

/// A notification as the outbox's lines add up.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// Its id.
    pub id: String,
    /// Its notifier.
    pub notifier: String,
    /// What it says.
    pub message: Message,
    /// Where its change stands: `Prepared`, `Applied` or `Void`.
    pub change: Status,
    /// Whether it was sent.
    pub sent: bool,
    /// The last delivery's error, when it failed.
    pub error: Option<String>,
    /// The address of what its receiver opened, once sent.
    pub url: Option<String>,
}

impl Notification {
    /// Whether it is still to be sent.
    pub fn pending(&self) -> bool {
        self.change == Status::Applied && !self.sent
    }
}

/// How many finished notifications of finished runs the outbox holds before `compact` drops
/// them: a few hundred lines, read in a moment, however many syncs ran.
pub const COMPACT_AFTER: usize = 100;

/// `<state_dir>/<env>.outbox.jsonl`.
pub fn path(state_dir: &Path, environment: &str) -> PathBuf {
    state_dir.join(format!("{environment}.outbox.jsonl"))
}

/// Appends `entries` to the outbox at `path`, creating it.
pub fn append(path: &Path, entries: &[Entry]) -> anyhow::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).with_context(|| format!("failed to create `{}`", folder.display()))?;
    }
    let mut text = String::new();
    for entry in entries {
        text.push_str(&serde_json::to_string(entry)?);
        text.push('\n');
    }
    let mut file = crate::owned_file::open(path, OpenOptions::new().create(true).append(true))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("failed to write `{}`", path.display()))
}

/// Every notification in the outbox at `path`, in the order they were first written; none when
/// it does not exist. A last line cut short by a crash is skipped.
pub fn read(path: &Path) -> anyhow::Result<Vec<Notification>> {
    let Some(reader) = crate::owned_file::open_limited(path, crate::owned_file::MAX_LOG_BYTES)? else {
        return Ok(Vec::new());
    };
    let mut order: Vec<String> = Vec::new();
    let mut found: BTreeMap<String, Notification> = BTreeMap::new();
    let lines: Vec<String> = std::io::BufReader::new(reader)
        .lines()
        .collect::<Result<_, _>>()
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    let count = lines.len();
    for (number, line) in lines.iter().enumerate() {
        let entry: Entry = match serde_json::from_str(line) {
            Ok(entry) => entry,
            // Only the last line can be cut short by a crash.
            Err(_) if number + 1 == count => break,
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("`{}` line {} is not an outbox entry", path.display(), number + 1));
            }
        };
        match found.get_mut(&entry.id) {
            Some(notification) => match entry.status {
                Status::Sent => {
                    notification.sent = true;
                    notification.url = entry.url;
                }
                Status::Failed => notification.error = entry.error,
                change => notification.change = change,
            },
            None => {
                let (Some(notifier), Some(message)) = (entry.notifier, entry.message) else {
                    anyhow::bail!(
                        "`{}` line {}: notification `{}` has no message",
                        path.display(),
                        number + 1,
                        entry.id
                    );
                };
                order.push(entry.id.clone());
                found.insert(
                    entry.id.clone(),
                    Notification {
                        id: entry.id,
                        notifier,
                        message,
                        change: entry.status,
                        sent: entry.status == Status::Sent,
                        error: entry.error,
                        url: entry.url,
                    },
                );
            }
        }
    }
    Ok(order.into_iter().filter_map(|id| found.remove(&id)).collect())
}

/// Removes what an interrupted rewrite of the outbox at `path` left, then, when it holds more than
/// `limit` notifications that can go, rewrites it without them. Returns how many it dropped.
///
/// A notification can go when it is finished (sent, or `void`) and so is every notification of
/// its run (the same environment and sync time): a run with anything prepared or pending keeps
/// all of its lines, so a summary is never written twice and a note still finds its log issue.
/// A metric guard's notifications are kept, since their ids are what announce each verdict once.
/// Call it only under the environment's lock.
pub fn compact(path: &Path, limit: usize) -> anyhow::Result<usize> {
    crate::owned_file::remove_stale_temporaries(path)?;
    let notifications = read(path)?;
    let finished = |notification: &Notification| notification.sent || notification.change == Status::Void;
    let run = |notification: &Notification| {
        (
            notification.message.environment.clone(),
            notification.message.at.clone(),
        )
    };
    let open_runs: BTreeSet<(String, String)> = notifications
        .iter()
        .filter(|notification| !finished(notification))
        .map(run)
        .collect();
    let (kept, dropped): (Vec<&Notification>, Vec<&Notification>) = notifications
        .iter()
        .partition(|notification| notification.message.event == Event::Guard || open_runs.contains(&run(notification)));
    if dropped.len() <= limit {
        return Ok(0);
    }
    let mut text = String::new();
    for notification in kept {
        let mut lines = vec![Entry {
            id: notification.id.clone(),
            status: notification.change,
            notifier: Some(notification.notifier.clone()),
            message: Some(notification.message.clone()),
            error: notification.error.clone(),
            url: None,
        }];
        if notification.sent {
            lines.push(Entry {
                id: notification.id.clone(),
                status: Status::Sent,
                notifier: None,
                message: None,
                error: None,
                url: notification.url.clone(),
            });
        }
        for line in lines {
            text.push_str(&serde_json::to_string(&line)?);
            text.push('\n');
        }
    }
    crate::owned_file::replace(path, text.as_bytes(), true)?;
    Ok(dropped.len())
}

/// The lines that settle the notifications left `prepared` by a run that stopped between
/// applying a change and recording it: `applied` when the environment now holds the change's new
/// state, else `void`.
pub fn settle(notifications: &[Notification], held: &EnvironmentState) -> Vec<Entry> {
    notifications
        .iter()
        .filter(|notification| notification.change == Status::Prepared)
        .filter_map(|notification| {
            let flag = notification.message.flag.as_deref()?;
            let applied = held.get(flag) == notification.message.new_state.as_ref();
            Some(Entry {
                id: notification.id.clone(),
                status: if applied { Status::Applied } else { Status::Void },
                notifier: None,
                message: None,
                error: None,
                url: None,
            })
        })
        .collect()
}

//! Delivering what the outbox holds: the summaries of settled runs, then every pending
//! notification in order, the log issues first so that a rollout issue's note links the log
//! issue of its change, and last the outbox compacted once it holds enough that is finished.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::outbox::{self, Entry, Notification, Status};
use super::{Delivery, Event, Message, Pending, id, quick_retry, send};
use crate::config::Config;

/// Writes the summaries the outbox lacks, then sends each pending notification in order, the
/// log issues first: a `gitlab-note` on a change links the log issue opened for the same change.
pub(super) fn send_pending(config: &Config, path: &Path) -> anyhow::Result<Delivery> {
    let notifications = outbox::read(path)?;
    outbox::append(path, &summaries(config, &notifications))?;
    let mut notifications = outbox::read(path)?;
    let opens_log_issue = |notification: &Notification| {
        config
            .notifications
            .get(&notification.notifier)
            .is_some_and(send::opens_log_issue)
    };
    // The log issue of each change already opened, by change.
    let mut log_issues: BTreeMap<(String, String, Option<String>, bool), String> = notifications
        .iter()
        .filter(|notification| opens_log_issue(notification))
        .filter_map(|notification| Some((change_key(&notification.message), notification.url.clone()?)))
        .collect();
    notifications.sort_by_key(|notification| !opens_log_issue(notification));
    let mut delivery = Delivery::default();
    for notification in notifications.iter().filter(|notification| notification.pending()) {
        let about = notification
            .message
            .flag
            .clone()
            .unwrap_or_else(|| "summary".to_string());
        let log_issue = log_issues.get(&change_key(&notification.message)).cloned();
        let outcome = match config.notifications.get(&notification.notifier) {
            Some(notifier) => {
                let what = format!("notifying `{}` of `{about}`", notification.notifier);
                crate::sync::retrying(&quick_retry(), &what, || {
                    send::send(notifier, &notification.id, &notification.message, log_issue.as_deref())
                })
                .map_err(|error| crate::sync::error_chain(&anyhow::Error::new(error)))
            }
            None => Err(format!(
                "no notifier `{}` in flagops.yml\nhelp: put it back to send what it has pending",
                notification.notifier
            )),
        };
        let entry = match outcome {
            Ok(url) => {
                delivery.sent += 1;
                if let Some(url) = &url {
                    log_issues.insert(change_key(&notification.message), url.clone());
                }
                Entry {
                    id: notification.id.clone(),
                    status: Status::Sent,
                    notifier: None,
                    message: None,
                    error: None,
                    url,
                }
            }
            Err(error) => {
                delivery.pending.push(Pending {
                    id: notification.id.clone(),
                    notifier: notification.notifier.clone(),
                    about,
                    error: error.clone(),
                });
                Entry {
                    id: notification.id.clone(),
                    status: Status::Failed,
                    notifier: None,
                    message: None,
                    error: Some(error),
                    url: None,
                }
            }
        };
        outbox::append(path, &[entry])?;
    }
    // What is delivered is dropped once there is enough of it; the notifications are all sent or
    // pending already, so a failure here only leaves the outbox longer.
    if let Err(error) = outbox::compact(path, outbox::COMPACT_AFTER) {
        delivery.error = Some(crate::sync::error_chain(&error.context("failed to compact the outbox")));
    }
    Ok(delivery)
}

/// What tells one change's notifications from another's: the environment, the run's time, the
/// flag (a summary has none, and opens no log issue) and whether it is a guard's.
fn change_key(message: &Message) -> (String, String, Option<String>, bool) {
    (
        message.environment.clone(),
        message.at.clone(),
        message.flag.clone(),
        message.event == Event::Guard,
    )
}

/// The summary entries of every run whose changes are all settled and that has none yet: one
/// per notifier that takes summaries and heard of at least one applied change of the run.
fn summaries(config: &Config, notifications: &[Notification]) -> Vec<Entry> {
    let existing: BTreeSet<&str> = notifications.iter().map(|n| n.id.as_str()).collect();
    // By run (environment and time) and notifier: the run's changes.
    let mut runs: BTreeMap<(&str, &str, &str), Vec<&Notification>> = BTreeMap::new();
    for notification in notifications.iter().filter(|n| n.message.event == Event::Change) {
        let message = &notification.message;
        runs.entry((&message.environment, &message.at, &notification.notifier))
            .or_default()
            .push(notification);
    }
    let mut entries = Vec::new();
    for ((environment, at, notifier), changes) in runs {
        let Some(settings) = config.notifications.get(notifier) else {
            continue;
        };
        if !send::takes_summaries(settings) || changes.iter().any(|n| n.change == Status::Prepared) {
            continue;
        }
        let applied: Vec<&&Notification> = changes.iter().filter(|n| n.change == Status::Applied).collect();
        let id = id(&[environment, at, "\0summary", notifier]);
        let Some(first) = applied.first() else { continue };
        if existing.contains(id.as_str()) {
            continue;
        }
        let first = &first.message;
        let message = Message {
            event: Event::Summary,
            environment: environment.to_string(),
            at: at.to_string(),
            by: first.by.clone(),
            commit: first.commit.clone(),
            merge_request: first.merge_request.clone(),
            reason: first.reason.clone(),
            flag: None,
            action: None,
            old: None,
            new: None,
            new_state: None,
            rollout_issue: None,
            step: None,
            changes: applied
                .iter()
                .map(|n| {
                    let m = &n.message;
                    format!(
                        "{}: {} → {}",
                        m.flag.as_deref().unwrap_or_default(),
                        m.old.as_deref().unwrap_or_default(),
                        m.new.as_deref().unwrap_or_default()
                    )
                })
                .collect(),
        };
        entries.push(Entry {
            id,
            status: Status::Applied,
            notifier: Some(notifier.to_string()),
            message: Some(message),
            error: None,
            url: None,
        });
    }
    entries
}

//! Notifications: what a sync tells people about the changes it applies, as ChatOps does after
//! each `feature set` (a note on the rollout issue, a log issue, a Grafana annotation, a chat
//! message), plus a summary of each environment's sync.
//!
//! Delivery goes through the environment's outbox (`outbox`), so that a crash loses none and a
//! notification is sent again only when a crash came between its send and the line recording
//! it. `wrap` puts a `Notifying` backend around the environment's backend: before each change is
//! applied it appends the change's notifications as `prepared`, and once the backend has
//! written it (`flush`) `applied`, or `void`; its `fetch` settles what a crashed run left
//! `prepared` against the state the environment holds. `deliver`, after the environment's sync, writes the summaries and sends
//! everything pending, retrying transient failures; a notification that still fails stays
//! pending for the next sync or `flagops notify --retry` (`retry`), and never fails the sync.
//!
//! It never reads a secret before sending, and never shows one: the receivers' errors name the
//! variable that holds it.

mod delivery;
pub mod outbox;
mod send;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backends::{self, ApplyContext, Backend, BackendError, Snapshot, SyncRecord};
use crate::config::{Config, Notifier};
use crate::model::Registry;
use crate::plan::{Action, Change};
use crate::state::Stored;
use crate::sync::RetryPolicy;
use outbox::{Entry, Status};

/// What a notification says: the payload of a `webhook`, and what every other kind renders.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `change` (one applied change), `summary` (an environment's sync) or `guard` (a metric
    /// guard that held a rollout step or rolled it back).
    pub event: Event,
    /// The environment.
    pub environment: String,
    /// When the sync ran (RFC 3339).
    pub at: String,
    /// Who ran it.
    pub by: String,
    /// The registry commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The merge request that brought the commit, as a URL when `site.repository_url` is set,
    /// else `!N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_request: Option<String>,
    /// Why: an emergency's reason, else the commit's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The flag (changes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    /// `create`, `update` or `delete` (changes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// The old state in words, `(absent)` for none (changes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    /// The new state in words (changes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
    /// The new state as stored (absent: null), to tell whether an interrupted change was applied.
    #[serde(default)]
    pub new_state: Option<Stored>,
    /// The flag's rollout issue (changes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_issue: Option<String>,
    /// The rollout step the change applied (changes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// Every change of the sync, as `plan` prints it (summaries only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
}

/// What a notification is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// One applied change.
    Change,
    /// An environment's sync, once its changes are applied.
    Summary,
    /// A metric guard held a rollout step, or rolled the flag back (`crate::guard`).
    Guard,
}

/// What `deliver` or `retry` did in one environment.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Delivery {
    /// Notifications sent now.
    pub sent: usize,
    /// Why the outbox could not be read or written, when it could not: what is pending stays so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Notifications still to send, each with its last error.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Pending>,
}

/// A notification not sent yet.
#[derive(Clone, Debug, Serialize)]
pub struct Pending {
    /// Its id.
    pub id: String,
    /// Its notifier.
    pub notifier: String,
    /// What it is about: the flag, or `summary`.
    pub about: String,
    /// Why it was not sent.
    pub error: String,
}

/// Puts notifications around `backend`, for a sync of `environment` that writes it; with no
/// notifier for the environment and no outbox, `backend` is returned as it is.
pub fn wrap(root: &Path, registry: &Registry, environment: &str, backend: Box<dyn Backend>) -> Box<dyn Backend> {
    let config = &registry.config;
    let notifiers = covering(config, environment);
    let path = outbox_path(root, config, environment);
    if notifiers.is_empty() && !path.exists() {
        return backend;
    }
    let rollout_issues = registry
        .flags
        .iter()
        .filter_map(|file| Some((file.flag.name.clone(), file.flag.rollout_issue_url.clone()?)))
        .collect();
    Box::new(Notifying {
        inner: backend,
        path,
        notifiers,
        rollout_issues,
        origin: None,
        root: root.to_path_buf(),
        repository_url: config.site.repository_url.clone(),
        written: BTreeSet::new(),
        unflushed: Vec::new(),
    })
}

/// After a sync of `environment`: writes a notification for each metric guard in `guards` that
/// held a step or rolled it back (once per flag, step, guard and kind of answer), the summary of
/// every run whose changes are settled, and sends every pending notification, under the
/// environment's lock. `None` when the environment has no outbox and nothing to announce.
pub fn deliver(
    root: &Path,
    registry: &Registry,
    environment: &str,
    guards: &GuardContext<'_>,
    lock_timeout: Duration,
) -> anyhow::Result<Option<Delivery>> {
    let config = &registry.config;
    let path = outbox_path(root, config, environment);
    let notifiers = covering(config, environment);
    let guarded: Vec<&crate::guard::Verdict> = guards
        .verdicts
        .iter()
        .filter(|verdict| !matches!(verdict.outcome, crate::guard::Outcome::Healthy { .. }))
        .collect();
    if !path.exists() && (notifiers.is_empty() || guarded.is_empty()) {
        return Ok(None);
    }
    let holder = crate::lock::describe_self("flagops notify", &jiff::Timestamp::now().to_string());
    let _lock = crate::lock::Lock::acquire(&backends::lock_path(root, config, environment), &holder, lock_timeout)?;
    if !guarded.is_empty() && !notifiers.is_empty() {
        let known: BTreeSet<String> = outbox::read(&path)?.into_iter().map(|n| n.id).collect();
        let mut entries = Vec::new();
        for verdict in guarded {
            let rollout_issue = registry
                .flags
                .iter()
                .find(|file| file.flag.name == verdict.flag)
                .and_then(|file| file.flag.rollout_issue_url.clone());
            let kind = match verdict.outcome {
                crate::guard::Outcome::Breached { .. } => "breached",
                crate::guard::Outcome::NoData => "no-data",
                _ => "unreachable",
            };
            let message = Message {
                event: Event::Guard,
                environment: environment.to_string(),
                at: guards.at.to_string(),
                by: guards.by.to_string(),
                commit: guards.commit.map(str::to_string),
                merge_request: None,
                reason: Some(crate::guard::describe(verdict)),
                flag: Some(verdict.flag.clone()),
                action: None,
                old: None,
                new: None,
                new_state: None,
                rollout_issue,
                step: Some(verdict.step),
                changes: Vec::new(),
            };
            for (name, notifier) in &notifiers {
                let step = verdict.step.to_string();
                let id = id(&[environment, "\0guard", &verdict.flag, &step, &verdict.guard, kind, name]);
                if known.contains(&id) || !send::hears(notifier, &message) {
                    continue;
                }
                entries.push(Entry {
                    id,
                    status: Status::Applied,
                    notifier: Some(name.clone()),
                    message: Some(message.clone()),
                    error: None,
                    url: None,
                });
            }
        }
        outbox::append(&path, &entries)?;
    }
    if !path.exists() {
        return Ok(None);
    }
    delivery::send_pending(config, &path).map(Some)
}

/// Who ran the sync whose guards `deliver` announces, when, from which commit, and the verdicts.
pub struct GuardContext<'a> {
    /// The verdicts of the guards the sync asked.
    pub verdicts: &'a [crate::guard::Verdict],
    /// When the sync ran (RFC 3339).
    pub at: &'a str,
    /// Who ran it.
    pub by: &'a str,
    /// The registry commit.
    pub commit: Option<&'a str>,
}

/// `deliver`, with its own failure reported in the `Delivery` instead of failing the sync.
pub fn deliver_reporting(
    root: &Path,
    registry: &Registry,
    environment: &str,
    guards: &GuardContext<'_>,
    lock_timeout: Duration,
) -> Option<Delivery> {
    deliver(root, registry, environment, guards, lock_timeout).unwrap_or_else(|error| {
        Some(Delivery {
            error: Some(crate::sync::error_chain(&error)),
            ..Delivery::default()
        })
    })
}

/// `flagops notify --retry` for `environment`: settles what a crashed sync left against the state
/// the backend holds, then delivers as a sync does. `None` when the environment has no outbox.
pub fn retry(
    root: &Path,
    config: &Config,
    environment: &str,
    lock_timeout: Duration,
) -> anyhow::Result<Option<Delivery>> {
    let path = outbox_path(root, config, environment);
    if !path.exists() {
        return Ok(None);
    }
    let holder = crate::lock::describe_self("flagops notify --retry", &jiff::Timestamp::now().to_string());
    let _lock = crate::lock::Lock::acquire(&backends::lock_path(root, config, environment), &holder, lock_timeout)?;
    let notifications = outbox::read(&path)?;
    if notifications
        .iter()
        .any(|notification| notification.change == Status::Prepared)
    {
        let settings = config
            .environment(environment)
            .ok_or_else(|| anyhow::anyhow!("unknown environment `{environment}`"))?;
        let mut backend = backends::open(root, config, settings, backends::Access::Read)?;
        let snapshot = crate::sync::retrying(&quick_retry(), &format!("reading `{environment}`"), || backend.fetch())
            .map_err(anyhow::Error::new)?;
        outbox::append(&path, &outbox::settle(&notifications, &snapshot.flags))?;
    }
    delivery::send_pending(config, &path).map(Some)
}

/// The outbox of `environment`.
pub fn outbox_path(root: &Path, config: &Config, environment: &str) -> PathBuf {
    outbox::path(&root.join(&config.state_dir), environment)
}

/// A backend whose changes are journaled in the outbox around each apply.
struct Notifying {
    inner: Box<dyn Backend>,
    path: PathBuf,
    /// The notifiers of the environment, by name.
    notifiers: BTreeMap<String, Notifier>,
    /// Each flag's `rollout_issue_url`.
    rollout_issues: BTreeMap<String, String>,
    /// The commit's merge request and title, read once.
    origin: Option<(Option<String>, Option<String>)>,
    root: PathBuf,
    repository_url: Option<String>,
    /// The notifications this run has written.
    written: BTreeSet<String>,
    /// The notifications of changes the backend accepted but has not written yet: they are
    /// `applied` only once `flush` has written the changes (a `flagd` file is written whole,
    /// once per sync), and `void` when it could not.
    unflushed: Vec<String>,
}

impl Notifying {
    /// Records how the changes of the notifications `ids` ended; if the outbox cannot be written,
    /// the next read of the environment settles them against what it holds.
    fn settle(&mut self, ids: impl Iterator<Item = String>, status: Status, what: &str) {
        let settled: Vec<Entry> = ids
            .map(|id| Entry {
                id,
                status,
                notifier: None,
                message: None,
                error: None,
                url: None,
            })
            .collect();
        if settled.is_empty() {
            return;
        }
        if let Err(error) = outbox::append(&self.path, &settled) {
            let text = format!("warning: could not record the notifications of {what}: {error:#}");
            eprintln!("{}", crate::escape::shown(&text));
        }
    }

    /// The notifications of `change` applied in `context`: one per notifier that hears of it.
    fn notifications(&mut self, change: &Change, context: &ApplyContext) -> Vec<(String, String, Message)> {
        let (merge_request, title) = self.origin(context.commit.as_deref()).clone();
        let message = Message {
            event: Event::Change,
            environment: context.environment.clone(),
            at: context.at.clone(),
            by: context.by.clone(),
            commit: context.commit.clone(),
            merge_request,
            reason: context.reason.clone().or(title),
            flag: Some(change.flag.clone()),
            action: Some(change.action),
            old: Some(crate::plan::show(change.from.as_ref())),
            new: Some(crate::plan::show(change.to.as_ref())),
            new_state: change.to.clone(),
            rollout_issue: self.rollout_issues.get(&change.flag).cloned(),
            step: context.step.as_ref().map(|mark| mark.step),
            changes: Vec::new(),
        };
        self.notifiers
            .iter()
            .filter(|(_, notifier)| send::hears(notifier, &message))
            .map(|(name, _)| {
                let id = id(&[&message.environment, &message.at, &change.flag, name]);
                (id, name.clone(), message.clone())
            })
            .collect()
    }

    fn origin(&mut self, commit: Option<&str>) -> &(Option<String>, Option<String>) {
        let root = &self.root;
        let repository_url = &self.repository_url;
        self.origin.get_or_insert_with(|| {
            let Some(message) = commit.and_then(|commit| crate::history::commit_message(root, commit)) else {
                return (None, None);
            };
            let (title, number) = crate::history::title_and_merge_request(&message);
            let merge_request = number.map(|number| match repository_url {
                Some(url) => format!("{}/-/merge_requests/{number}", url.trim_end_matches('/')),
                None => format!("!{number}"),
            });
            (merge_request, Some(title).filter(|title| !title.is_empty()))
        })
    }
}

impl Backend for Notifying {
    fn fetch(&mut self) -> Result<Snapshot, BackendError> {
        let snapshot = self.inner.fetch()?;
        let notifications = outbox::read(&self.path)?;
        outbox::append(&self.path, &outbox::settle(&notifications, &snapshot.flags))?;
        Ok(snapshot)
    }

    fn apply(&mut self, change: &Change, context: &ApplyContext) -> Result<(), BackendError> {
        let notifications = self.notifications(change, context);
        if notifications.is_empty() {
            return self.inner.apply(change, context);
        }
        // The intent is on disk before the change is made, so a crash after the change cannot
        // lose it; a retried attempt writes it again, with no message, as not known again. Ids
        // hold this run's time, so only this run can have written them before.
        let prepared: Vec<Entry> = notifications
            .iter()
            .map(|(id, notifier, message)| {
                let first = self.written.insert(id.clone());
                Entry {
                    id: id.clone(),
                    status: Status::Prepared,
                    notifier: first.then(|| notifier.clone()),
                    message: first.then(|| message.clone()),
                    error: None,
                    url: None,
                }
            })
            .collect();
        outbox::append(&self.path, &prepared)?;
        let outcome = self.inner.apply(change, context);
        let ids = notifications.into_iter().map(|(id, _, _)| id);
        match outcome {
            // Applied once the backend has written it (`flush`).
            Ok(()) => self.unflushed.extend(ids),
            Err(_) => self.settle(ids, Status::Void, &format!("`{}`", change.flag)),
        }
        outcome
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        let outcome = self.inner.flush();
        let status = if outcome.is_ok() { Status::Applied } else { Status::Void };
        let ids = std::mem::take(&mut self.unflushed);
        self.settle(ids.into_iter(), status, "the changes written together");
        outcome
    }

    fn record_sync(&mut self, record: &SyncRecord) -> Result<(), BackendError> {
        self.inner.record_sync(record)
    }

    fn set_hold(&mut self, flag: &str, hold: Option<&backends::Hold>) -> Result<(), BackendError> {
        self.inner.set_hold(flag, hold)
    }

    fn record_step(&mut self, mark: &backends::StepMark) -> Result<(), BackendError> {
        self.inner.record_step(mark)
    }

    fn canonicalize(&mut self, desired: &mut crate::state::EnvironmentState) -> Result<(), BackendError> {
        self.inner.canonicalize(desired)
    }
}

/// The notifiers of `config` that hear of `environment`, by name.
fn covering(config: &Config, environment: &str) -> BTreeMap<String, Notifier> {
    config
        .notifications
        .iter()
        .filter(|(_, notifier)| notifier.covers(environment))
        .map(|(name, notifier)| (name.clone(), notifier.clone()))
        .collect()
}

/// A notification's id: 32 hex digits of the SHA-256 of `parts`.
fn id(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Retries of a notification or a read for one: fewer and shorter than a change's, since
/// nothing waits on them.
fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        retries: 2,
        first_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(5),
    }
}

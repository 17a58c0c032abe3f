//! Backends: where an environment's flag state lives.
//!
//! A [`Backend`] reads the whole state of one environment and applies one change at a time.
//! Only the modules under `backends` know a store's or a remote API's shape; everything else
//! speaks [`Stored`](crate::state::Stored) and [`Change`](crate::plan::Change).

pub mod file;
pub mod flagd;
pub mod flipper_sql;
pub mod gitlab;
pub mod unleash;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{BackendConfig, Config, Environment};
use crate::diagnostic::Diagnostic;
use crate::plan::Change;
use crate::source::{Document, SourceFile};
use crate::state::EnvironmentState;

/// The store of one environment.
pub trait Backend {
    /// Reads the state of every flag stored in the environment, and the last sync record.
    fn fetch(&mut self) -> Result<Snapshot, BackendError>;
    /// Applies one change, recording who made it, when and from which commit.
    fn apply(&mut self, change: &Change, context: &ApplyContext) -> Result<(), BackendError>;
    /// Records that a sync completed: every change of its plan was applied.
    fn record_sync(&mut self, record: &SyncRecord) -> Result<(), BackendError>;
    /// Stores `hold` as the emergency hold of `flag`, replacing any hold it had, or removes the
    /// flag's hold when `hold` is `None`. Holds live in the store, so every sync sees them.
    fn set_hold(&mut self, flag: &str, hold: Option<&Hold>) -> Result<(), BackendError>;
    /// Records `mark` as the rollout step last applied to its flag, replacing the flag's mark.
    /// A sync calls it after the step's change (if any) was applied, so a mark never runs ahead
    /// of the store; marks live in the store, so every sync, `plan` and `status` see them.
    fn record_step(&mut self, mark: &StepMark) -> Result<(), BackendError>;
    /// Makes the changes `apply` accepted since the last flush take effect, for a store that
    /// writes them together (the `flagd` backend rewrites its whole file once); on an error,
    /// none of them has. `sync::apply_plan` calls it after its changes. The default does
    /// nothing: most stores apply each change as `apply` returns.
    fn flush(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
    /// Rewrites the actors of a desired state into the form `fetch` reports them in, so that a
    /// plan compares like with like (GitLab lists `Project:278964` where a flag file says
    /// `project: gitlab-org/gitlab`), or refuses an actor the store cannot hold, before any
    /// change is applied. On error, `desired` is left as it was. The default changes nothing: a
    /// store that keeps actors as flag files write them needs no rewriting.
    fn canonicalize(&mut self, desired: &mut EnvironmentState) -> Result<(), BackendError> {
        let _ = desired;
        Ok(())
    }
}

/// What a backend holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Every flag stored, with its state.
    pub flags: EnvironmentState,
    /// The last completed sync, if any.
    pub last_sync: Option<SyncRecord>,
    /// The flags an emergency change holds, by flag.
    pub holds: BTreeMap<String, Hold>,
    /// The rollout step last applied to each flag, by flag (`crate::steps`).
    pub steps: BTreeMap<String, StepMark>,
}

/// The rollout step a sync last applied to a flag in an environment, and when: the next step
/// waits for it (`crate::steps`). The step is named by its number, its scheduled time and the
/// state it sets, so that an edit of the plan is noticed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMark {
    /// The flag.
    pub flag: String,
    /// The step's number in the flag's `rollout` (1 for the first).
    pub step: usize,
    /// The time the plan gave the step when it was applied (RFC 3339).
    pub scheduled: String,
    /// The state the step sets in the environment.
    pub state: crate::state::Stored,
    /// When it was applied (RFC 3339): the later of the sync's clock and the time it resolved
    /// the plans at.
    pub applied_at: String,
    /// What the step's metric guard said, when one was asked (`crate::guard`): for a rollback
    /// step that a breach applied, the breach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<crate::guard::Verdict>,
}

/// An emergency change that a sync must not revert until a reviewed change to its flag reaches
/// the registry: `flagops set ... --emergency`, released by `flagops release` or by a sync that
/// finds the flag's definition changed (`crate::hold`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The flag.
    pub flag: String,
    /// The state the emergency applied (absent: null).
    pub state: Option<crate::state::Stored>,
    /// Who applied it.
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
    /// Why, as given with `--reason`.
    pub reason: String,
    /// The fingerprint of the flag's reviewed definition when the emergency was applied
    /// (`crate::hold::fingerprint`); a registry whose definition differs releases the hold.
    pub fingerprint: String,
    /// The merge request that brings git in line, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_request: Option<String>,
}

/// A completed sync of one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRecord {
    /// When the sync run started (RFC 3339); every change it applied carries this time.
    pub at: String,
    /// The desired state's time: rollout steps due by then were applied (RFC 3339).
    pub resolved_at: String,
    /// Who ran it.
    pub by: String,
    /// The registry commit it applied, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// How many changes it applied.
    pub changes: usize,
    /// Why it changed an environment inside a change freeze, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_freeze: Option<String>,
    /// Why it applied rollout steps at a future time (`--at`) to a protected environment, when
    /// it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_schedule: Option<String>,
    /// Whether it was the environment's first sync and, with `--take-over`, changed or deleted
    /// flags that flagops had not written there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub take_over: bool,
    /// The kind of backend the environment had (`file`, `flagd`, ...), which decides which
    /// actors a percentage opens (`crate::hashing`); absent in records written before flagops
    /// kept it, and in stores that do not keep it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// What the last sync run saw that `status` and the site show without asking again: the
    /// metric guards' last verdicts and the changes it held back. A run that held changes back
    /// completes no sync, so it stores the last completed sync's record with only this part
    /// replaced (an environment's first sync, with no such record, stores its own). Records
    /// written before it existed read as empty.
    #[serde(default, skip_serializing_if = "Observations::is_empty")]
    pub observed: Observations,
}

/// What the last sync run of an environment saw, kept in its `SyncRecord`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observations {
    /// The last verdict of each guarded flag's metric guard, by flag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<GuardRecord>,
    /// The changes the last run held back; empty once a run reaches the desired state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<HeldBack>,
}

impl Observations {
    /// Whether there is nothing to keep.
    pub fn is_empty(&self) -> bool {
        self.guards.is_empty() && self.held_back.is_empty()
    }
}

/// A metric guard's verdict on a flag's rollout step, and when it was asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardRecord {
    /// When the guard was asked (RFC 3339).
    pub at: String,
    /// The guard, the step, the query, its bounds and the answer.
    pub verdict: crate::guard::Verdict,
}

/// A change a sync held back instead of applying, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldBack {
    /// The flag.
    pub flag: String,
    /// The state the registry wants; `None` for absent.
    pub desired: Option<crate::state::Stored>,
    /// The state the environment holds; `None` for absent.
    pub actual: Option<crate::state::Stored>,
    /// Why it was held back: the change lock, `--hold-widening` or an earlier environment.
    pub why: Vec<String>,
}

/// Who applies a change, when, and from which commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyContext {
    /// The environment.
    pub environment: String,
    /// The person or CI user.
    pub by: String,
    /// The registry commit.
    pub commit: Option<String>,
    /// When (RFC 3339).
    pub at: String,
    /// Why, for a change made outside a sync (an emergency's `--reason`).
    pub reason: Option<String>,
    /// The rollout step the change applies, when it applies one: the audit record carries it,
    /// and a store that can records the step's mark with the change.
    pub step: Option<StepMark>,
}

/// A change as recorded in an audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The store's revision after the change (file backend) or 0.
    pub revision: u64,
    /// When (RFC 3339).
    pub at: String,
    /// Who.
    pub by: String,
    /// The registry commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The environment.
    pub environment: String,
    /// The flag.
    pub flag: String,
    /// `create`, `update` or `delete`.
    pub action: crate::plan::Action,
    /// The state before (absent: null).
    pub from: Option<crate::state::Stored>,
    /// The state after (absent: null).
    pub to: Option<crate::state::Stored>,
    /// Why, for a change made outside a sync (an emergency's `--reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The rollout step the change applied, with its apply time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepMark>,
}

/// Why a backend call failed, in the cases a sync treats differently.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// Worth retrying: a timeout, a dropped connection, a 5xx or a 429.
    #[error("{message}")]
    Transient {
        /// What happened.
        message: String,
        /// How long the server asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The store refused the change; retrying will not help.
    #[error("{0}")]
    Rejected(String),
    /// The credentials were refused.
    #[error("{0}")]
    Unauthorized(String),
    /// Anything else: the store is unreadable or a local operation failed.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl AuditRecord {
    /// The record of `change` applied in `context`, at `revision`.
    pub fn new(change: &Change, context: &ApplyContext, revision: u64) -> AuditRecord {
        AuditRecord {
            revision,
            at: context.at.clone(),
            by: context.by.clone(),
            commit: context.commit.clone(),
            environment: context.environment.clone(),
            flag: change.flag.clone(),
            action: change.action,
            from: change.from.clone(),
            to: change.to.clone(),
            reason: context.reason.clone(),
            step: context.step.clone(),
        }
    }
}

/// Where the `file` backend keeps `environment`'s state document when the config names none.
pub fn default_state_path(root: &Path, config: &Config, environment: &str) -> PathBuf {
    root.join(&config.state_dir).join(format!("{environment}.json"))
}

/// `<state_dir>/<env>.lock`: the lock a sync of `environment` holds, whatever its backend.
pub fn lock_path(root: &Path, config: &Config, environment: &str) -> PathBuf {
    root.join(&config.state_dir).join(format!("{environment}.lock"))
}

/// Every file flagops keeps for `environment` under `root`: its lock, its notifications' outbox,
/// and the state, audit log, sync record, holds and cache its backend keeps.
pub fn environment_files(root: &Path, config: &Config, environment: &Environment) -> Vec<PathBuf> {
    let mut files = vec![
        lock_path(root, config, &environment.name),
        crate::notify::outbox_path(root, config, &environment.name),
    ];
    match &environment.backend {
        BackendConfig::File { .. } => {
            let state = file_state_path(root, config, environment);
            let audit = file::audit_path(&state);
            files.extend([state, audit]);
        }
        BackendConfig::Gitlab { .. } => {
            let state_dir = root.join(&config.state_dir);
            files.push(gitlab::sync_path(&state_dir, &environment.name));
            files.push(gitlab::audit_path(&state_dir, &environment.name));
            files.push(gitlab::holds_path(&state_dir, &environment.name));
            files.push(gitlab::steps_path(&state_dir, &environment.name));
            files.push(gitlab::cache_path(&root.join(&config.cache_dir), &environment.name));
        }
        BackendConfig::Flagd { path } => {
            let state = default_state_path(root, config, &environment.name);
            let audit = file::audit_path(&state);
            files.extend([state, audit, root.join(path)]);
        }
        BackendConfig::Unleash { .. } => {
            let state = default_state_path(root, config, &environment.name);
            let audit = file::audit_path(&state);
            files.extend([state, audit]);
        }
        _ => {}
    }
    files
}

/// Refuses two environments that would keep a file at the same path, such as one state document
/// configured for both: each sync would undo the other's. Reported at the later environment.
pub(crate) fn check_shared_files(file: &SourceFile, document: &Document, config: &Config) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let mut owners: BTreeMap<PathBuf, &str> = BTreeMap::new();
    for (position, environment) in config.environments.iter().enumerate() {
        let mut reported = false;
        for path in environment_files(Path::new(""), config, environment) {
            let path = normalize(&path);
            match owners.get(&path) {
                Some(owner) if *owner != environment.name && !reported => {
                    reported = true;
                    let pointer = match &environment.backend {
                        BackendConfig::File { path: Some(_) } | BackendConfig::Flagd { .. } => {
                            format!("/environments/{position}/backend/path")
                        }
                        _ => format!("/environments/{position}/name"),
                    };
                    found.push(
                        Diagnostic::error(
                            "shared-state-file",
                            file,
                            document.index.value_span(&pointer),
                            format!(
                                "environments `{owner}` and `{}` would both keep `{}`",
                                environment.name,
                                path.display()
                            ),
                        )
                        .with_help("give every environment its own state file: change `path`, or leave it out to use `<state_dir>/<environment>.json`"),
                    );
                }
                Some(_) => {}
                None => {
                    owners.insert(path, &environment.name);
                }
            }
        }
    }
    found
}

/// The file backend's state document of `environment`.
fn file_state_path(root: &Path, config: &Config, environment: &Environment) -> PathBuf {
    match &environment.backend {
        BackendConfig::File { path: Some(path) } => root.join(path),
        _ => default_state_path(root, config, &environment.name),
    }
}

/// `path` without `.` and with `a/..` taken out, so that two spellings of one file compare equal.
fn normalize(path: &Path) -> PathBuf {
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if matches!(normalized.components().next_back(), Some(Component::Normal(_))) => {
                normalized.pop();
            }
            other => normalized.push(other),
        }
    }
    normalized
}

/// What an environment's backend is opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reading only: `plan`, `status`, `site`, `eval` and a dry run.
    Read,
    /// Applying changes, waiting up to `lock_wait` for another sync that holds the store's own
    /// lock (the `flipper-sql` database lock; the environment's lock file is taken before).
    Write {
        /// How long to wait: `--lock-timeout`.
        lock_wait: Duration,
    },
}

impl Access {
    fn is_write(self) -> bool {
        matches!(self, Access::Write { .. })
    }
}

/// Opens the backend of `environment`. Backends opened to write repair what an interrupted run
/// left.
pub fn open(
    root: &Path,
    config: &Config,
    environment: &Environment,
    access: Access,
) -> anyhow::Result<Box<dyn Backend>> {
    let writable = access.is_write();
    match &environment.backend {
        BackendConfig::File { .. } => {
            let path = file_state_path(root, config, environment);
            Ok(Box::new(file::FileBackend::open(&path, &environment.name, writable)?))
        }
        BackendConfig::Gitlab {
            url,
            token_env,
            timeout_seconds,
        } => {
            let state_dir = root.join(&config.state_dir);
            if writable {
                crate::owned_file::remove_stale_temporaries(&gitlab::sync_path(&state_dir, &environment.name))?;
                crate::owned_file::remove_stale_temporaries(&gitlab::holds_path(&state_dir, &environment.name))?;
                crate::owned_file::remove_stale_temporaries(&gitlab::steps_path(&state_dir, &environment.name))?;
            }
            Ok(Box::new(gitlab::GitlabBackend::open(gitlab::Settings {
                environment: &environment.name,
                url,
                token: gitlab::read_token(token_env, &environment.name)?,
                token_env,
                timeout: timeout_seconds.map_or(gitlab::client::DEFAULT_TIMEOUT, Duration::from_secs),
                actor_kinds: &config.actor_kinds,
                cache_path: gitlab::cache_path(&root.join(&config.cache_dir), &environment.name),
                state_dir,
                writable,
            })))
        }
        BackendConfig::FlipperSql { url_env } => {
            let connection = flipper_sql::connection_from_env(url_env, &environment.name)?;
            let options = flipper_sql::Options {
                environment: &environment.name,
                actor_kinds: &config.actor_kinds,
                writable,
                lock_wait: match access {
                    Access::Write { lock_wait } => lock_wait,
                    Access::Read => Duration::ZERO,
                },
            };
            Ok(Box::new(flipper_sql::FlipperSqlBackend::open(connection, &options)?))
        }
        BackendConfig::Flagd { path } => Ok(Box::new(flagd::FlagdBackend::open(
            &root.join(path),
            &default_state_path(root, config, &environment.name),
            &environment.name,
            &config.actor_kinds,
            writable,
        )?)),
        BackendConfig::Unleash {
            url,
            project,
            environment: unleash_environment,
            token_env,
            stickiness,
            group_field,
            timeout_seconds,
        } => Ok(Box::new(unleash::UnleashBackend::open(unleash::Settings {
            environment: &environment.name,
            url,
            project: project.as_deref().unwrap_or("default"),
            unleash_environment: unleash_environment.as_deref().unwrap_or(&environment.name),
            token: unleash::read_token(token_env, &environment.name)?,
            token_env,
            timeout: timeout_seconds.map_or(gitlab::client::DEFAULT_TIMEOUT, Duration::from_secs),
            stickiness: stickiness.as_deref().unwrap_or(unleash::DEFAULT_STICKINESS),
            group_field: group_field.as_deref().unwrap_or(unleash::DEFAULT_GROUP_FIELD),
            actor_kinds: &config.actor_kinds,
            state_path: &default_state_path(root, config, &environment.name),
            writable,
        })?)),
    }
}

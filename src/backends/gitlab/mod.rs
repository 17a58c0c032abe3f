//! The `gitlab` backend: an environment is a GitLab instance, read and written through its
//! Features REST API with an administrator's access token.
//!
//! `fetch` is one `GET /api/v4/features` (the endpoint lists every persisted flag and is not
//! paginated). `apply` sends the calls of `Change::operations` in order, one
//! `POST /api/v4/features/:name` or `DELETE` each; `plan` has already worked out GitLab's rules,
//! so nothing here reorders them. Actors are compared by the names the API takes, which the
//! `directory` maps to and from Flipper ids; `canonicalize` puts the desired state in that form.
//!
//! GitLab keeps no record of syncs, so the last `SyncRecord` and an audit line per applied
//! change are kept beside the environment's lock in `state_dir` (`<env>.sync.json`,
//! `<env>.audit.jsonl`), and so are its emergency holds (`<env>.holds.json`) and the rollout step last applied to each
//! flag (`<env>.steps.json`).

pub mod client;
pub mod directory;
pub mod merge_request;
pub mod remote;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::{ApplyContext, AuditRecord, Backend, BackendError, Hold, Snapshot, StepMark, SyncRecord};
use crate::config::ActorKind;
use crate::escape::redact_url;
use crate::plan::{Change, Operation};
use crate::state::{EnvironmentState, GateSet, Stored, percent};
use client::{Client, Token, segment};
use directory::Directory;
use remote::{Call, RemoteFeature};

/// Where and how to reach one environment's GitLab instance.
#[derive(Debug)]
pub struct Settings<'a> {
    /// The environment's name.
    pub environment: &'a str,
    /// The instance's base URL, such as `https://gitlab.example.com`.
    pub url: &'a str,
    /// The access token.
    pub token: Token,
    /// The environment variable it came from, for messages.
    pub token_env: &'a str,
    /// How long one request may take.
    pub timeout: Duration,
    /// The actor kinds of `flagops.yml`.
    pub actor_kinds: &'a BTreeMap<String, ActorKind>,
    /// The actor cache file.
    pub cache_path: PathBuf,
    /// Where the sync record and the audit log are kept (`state_dir`).
    pub state_dir: PathBuf,
    /// Whether `apply` and `record_sync` may write.
    pub writable: bool,
}

/// An environment that is a GitLab instance.
#[derive(Debug)]
pub struct GitlabBackend {
    environment: String,
    url: String,
    client: Client,
    directory: Directory,
    sync_path: PathBuf,
    audit_path: PathBuf,
    holds_path: PathBuf,
    steps_path: PathBuf,
    writable: bool,
    /// The change a failed attempt stopped in, and how many of its calls had succeeded: a
    /// retry of the same change resumes there instead of repeating them.
    progress: Option<(Change, usize)>,
}

impl GitlabBackend {
    /// Connects to nothing yet: reads the actor cache and builds the HTTP client.
    pub fn open(settings: Settings<'_>) -> GitlabBackend {
        let url = settings.url.trim_end_matches('/').to_string();
        let client = Client::new(&url, settings.token, settings.token_env, settings.timeout);
        let directory = Directory::open(settings.cache_path, &url, settings.actor_kinds);
        GitlabBackend {
            environment: settings.environment.to_string(),
            url,
            client,
            directory,
            sync_path: sync_path(&settings.state_dir, settings.environment),
            audit_path: audit_path(&settings.state_dir, settings.environment),
            holds_path: holds_path(&settings.state_dir, settings.environment),
            steps_path: steps_path(&settings.state_dir, settings.environment),
            writable: settings.writable,
            progress: None,
        }
    }

    /// Sends one Features API call.
    fn call(&mut self, flag: &str, operation: &Operation) -> Result<(), BackendError> {
        let what = describe(flag, operation);
        let call = remote::parameters(operation, |actor| self.directory.target(actor))
            .map_err(|reason| BackendError::Rejected(format!("cannot {what}: {reason}")))?;
        let path = format!("/features/{}", segment(flag));
        let response = match call {
            Call::Post(form) => self.client.post_form(&path, &form)?,
            Call::Delete => self.client.delete(&path)?,
        };
        match response.status {
            200..=299 => Ok(()),
            _ => Err(self.client.failure(&what, &response)),
        }
    }

    fn read_sync_record(&self) -> Result<Option<SyncRecord>, BackendError> {
        let Some(text) = crate::owned_file::read(&self.sync_path, crate::owned_file::MAX_DOCUMENT_BYTES)? else {
            return Ok(None);
        };
        let record = serde_json::from_slice(&text).map_err(|error| {
            anyhow::anyhow!(
                "`{}` is not a sync record: {error}\nhelp: delete it; only the record of the last sync is lost",
                self.sync_path.display()
            )
        })?;
        Ok(Some(record))
    }

    /// The emergency holds, by flag (none when the file does not exist).
    fn read_holds(&self) -> Result<BTreeMap<String, Hold>, BackendError> {
        let Some(text) = crate::owned_file::read(&self.holds_path, crate::owned_file::MAX_DOCUMENT_BYTES)? else {
            return Ok(BTreeMap::new());
        };
        let holds: Vec<Hold> = serde_json::from_slice(&text).map_err(|error| {
            anyhow::anyhow!(
                "`{}` is not a list of emergency holds: {error}\nhelp: fix the file; deleting it releases every hold, and the next sync reverts the emergency changes to the registry's state",
                self.holds_path.display()
            )
        })?;
        Ok(holds.into_iter().map(|hold| (hold.flag.clone(), hold)).collect())
    }

    /// The step marks, by flag (none when the file does not exist).
    fn read_steps(&self) -> Result<BTreeMap<String, StepMark>, BackendError> {
        let Some(text) = crate::owned_file::read(&self.steps_path, crate::owned_file::MAX_DOCUMENT_BYTES)? else {
            return Ok(BTreeMap::new());
        };
        let marks: Vec<StepMark> = serde_json::from_slice(&text).map_err(|error| {
            anyhow::anyhow!(
                "`{}` is not a list of rollout step marks: {error}\nhelp: fix the file; deleting it makes every rollout in progress start again from its first step",
                self.steps_path.display()
            )
        })?;
        Ok(marks.into_iter().map(|mark| (mark.flag.clone(), mark)).collect())
    }

    fn append_audit(&self, record: &AuditRecord) -> Result<(), BackendError> {
        let mut line = serde_json::to_string(record).context("failed to serialize the audit record")?;
        line.push('\n');
        if let Some(folder) = self.audit_path.parent() {
            std::fs::create_dir_all(folder).with_context(|| format!("failed to create `{}`", folder.display()))?;
        }
        crate::owned_file::open(&self.audit_path, OpenOptions::new().create(true).append(true))?
            .write_all(line.as_bytes())
            .with_context(|| format!("failed to append to `{}`", self.audit_path.display()))?;
        Ok(())
    }
}

impl Backend for GitlabBackend {
    fn fetch(&mut self) -> Result<Snapshot, BackendError> {
        let response = self.client.get("/features")?;
        if response.status != 200 {
            return Err(self
                .client
                .failure("list the flags (`GET /api/v4/features`)", &response));
        }
        let features: Vec<RemoteFeature> = serde_json::from_str(&response.body).map_err(|error| {
            anyhow::anyhow!(
                "the flags listed by `{}` are not what GitLab's Features API documents: {error}",
                redact_url(&self.url)
            )
        })?;
        let mut flags = EnvironmentState::new();
        for feature in &features {
            let decoded =
                remote::decode(feature).map_err(|reason| anyhow::anyhow!("{}: {reason}", redact_url(&self.url)))?;
            let stored = if decoded.boolean {
                Stored::Boolean(true)
            } else {
                let mut actors = BTreeSet::new();
                for flipper_id in &decoded.actors {
                    actors.insert(self.directory.actor(&self.client, flipper_id)?);
                }
                let gates = GateSet {
                    percentage_of_actors: decoded.percentage_of_actors,
                    percentage_of_time: decoded.percentage_of_time,
                    actors,
                    groups: decoded.groups,
                };
                // A persisted flag with no gate open is off: GitLab's `false`.
                if gates.is_empty() {
                    Stored::Boolean(false)
                } else {
                    Stored::Gates(gates)
                }
            };
            flags.insert(feature.name.clone(), stored);
        }
        self.directory.save()?;
        Ok(Snapshot {
            flags,
            last_sync: self.read_sync_record()?,
            holds: self.read_holds()?,
            steps: self.read_steps()?,
        })
    }

    fn canonicalize(&mut self, desired: &mut EnvironmentState) -> Result<(), BackendError> {
        let mut canonical = desired.clone();
        let mut missing = Vec::new();
        for (flag, stored) in &mut canonical {
            let Stored::Gates(gates) = stored else { continue };
            let mut actors = BTreeSet::new();
            for actor in &gates.actors {
                match self.directory.canonical(&self.client, actor)? {
                    Some(found) => {
                        actors.insert(found);
                    }
                    None => missing.push(format!("`{actor}` in flag `{flag}`")),
                }
            }
            gates.actors = actors;
        }
        self.directory.save()?;
        if !missing.is_empty() {
            return Err(BackendError::Rejected(format!(
                "environment `{}` ({}) has no such actor: {}\nhelp: name a project, group or namespace by its full path or id, a user by username or id",
                self.environment,
                redact_url(&self.url),
                missing.join(", ")
            )));
        }
        *desired = canonical;
        Ok(())
    }

    fn apply(&mut self, change: &Change, context: &ApplyContext) -> Result<(), BackendError> {
        if !self.writable {
            return Err(anyhow::anyhow!("environment `{}` was opened read-only", self.environment).into());
        }
        let operations = change.operations();
        let resume_at = match &self.progress {
            Some((stopped, done)) if stopped == change => *done,
            _ => 0,
        };
        for (index, operation) in operations.iter().enumerate().skip(resume_at) {
            if let Err(error) = self.call(&change.flag, operation) {
                self.progress = Some((change.clone(), index));
                return Err(error);
            }
        }
        self.progress = None;
        self.append_audit(&AuditRecord::new(change, context, 0))
    }

    fn record_sync(&mut self, record: &SyncRecord) -> Result<(), BackendError> {
        if !self.writable {
            return Err(anyhow::anyhow!("environment `{}` was opened read-only", self.environment).into());
        }
        let mut text = serde_json::to_string_pretty(record).context("failed to serialize the sync record")?;
        text.push('\n');
        crate::owned_file::replace(&self.sync_path, text.as_bytes(), true)?;
        Ok(())
    }

    fn set_hold(&mut self, flag: &str, hold: Option<&Hold>) -> Result<(), BackendError> {
        if !self.writable {
            return Err(anyhow::anyhow!("environment `{}` was opened read-only", self.environment).into());
        }
        let mut holds = self.read_holds()?;
        match hold {
            Some(hold) => holds.insert(flag.to_string(), hold.clone()),
            None => holds.remove(flag),
        };
        let list: Vec<&Hold> = holds.values().collect();
        let mut text = serde_json::to_string_pretty(&list).context("failed to serialize the holds")?;
        text.push('\n');
        crate::owned_file::replace(&self.holds_path, text.as_bytes(), true)?;
        Ok(())
    }

    fn record_step(&mut self, mark: &StepMark) -> Result<(), BackendError> {
        if !self.writable {
            return Err(anyhow::anyhow!("environment `{}` was opened read-only", self.environment).into());
        }
        let mut marks = self.read_steps()?;
        marks.insert(mark.flag.clone(), mark.clone());
        let list: Vec<&StepMark> = marks.values().collect();
        let mut text = serde_json::to_string_pretty(&list).context("failed to serialize the step marks")?;
        text.push('\n');
        crate::owned_file::replace(&self.steps_path, text.as_bytes(), true)?;
        Ok(())
    }
}

/// `<state_dir>/<env>.sync.json`: the last sync record of `environment`.
pub fn sync_path(state_dir: &Path, environment: &str) -> PathBuf {
    state_dir.join(format!("{environment}.sync.json"))
}

/// `<state_dir>/<env>.steps.json`: the rollout step last applied to each flag of `environment`.
pub fn steps_path(state_dir: &Path, environment: &str) -> PathBuf {
    state_dir.join(format!("{environment}.steps.json"))
}

/// `<state_dir>/<env>.holds.json`: the emergency holds of `environment`.
pub fn holds_path(state_dir: &Path, environment: &str) -> PathBuf {
    state_dir.join(format!("{environment}.holds.json"))
}

/// `<state_dir>/<env>.audit.jsonl`: the audit log of `environment`.
pub fn audit_path(state_dir: &Path, environment: &str) -> PathBuf {
    state_dir.join(format!("{environment}.audit.jsonl"))
}

/// `<cache_dir>/gitlab/<env>.json`: the actor cache of `environment`.
pub fn cache_path(cache_dir: &Path, environment: &str) -> PathBuf {
    cache_dir.join("gitlab").join(format!("{environment}.json"))
}

/// Reads environment `environment`'s access token from the variable `token_env`; only this
/// backend reads it, and it is never printed.
pub fn read_token(token_env: &str, environment: &str) -> anyhow::Result<Token> {
    Token::from_env(
        token_env,
        environment,
        "GitLab",
        "an administrator's access token with the `api` scope",
    )
}

/// What an operation does to a flag, for messages: ``set `alpha` to 25% of actors``.
fn describe(flag: &str, operation: &Operation) -> String {
    match operation {
        Operation::Remove => format!("delete `{flag}`"),
        Operation::Enable => format!("enable `{flag}`"),
        Operation::Disable => format!("disable `{flag}`"),
        Operation::PercentageOfActors(p) => format!("set `{flag}` to {}% of actors", percent(*p)),
        Operation::PercentageOfTime(p) => format!("set `{flag}` to {}% of time", percent(*p)),
        Operation::AddActor(actor) => match actor.id.strip_suffix(remote::OPT_OUT) {
            Some(id) => format!("opt `{}:{id}` out of `{flag}`", actor.kind),
            None => format!("enable `{flag}` for `{actor}`"),
        },
        Operation::RemoveActor(actor) => match actor.id.strip_suffix(remote::OPT_OUT) {
            Some(id) => format!("remove the opt-out of `{}:{id}` from `{flag}`", actor.kind),
            None => format!("disable `{flag}` for `{actor}`"),
        },
        Operation::AddGroup(group) => format!("enable `{flag}` for the feature group `{group}`"),
        Operation::RemoveGroup(group) => format!("disable `{flag}` for the feature group `{group}`"),
    }
}

//! The `flagd` backend: writes an environment's flags as a flagd flag-definition file.
//!
//! flagops's own records (the state it applied, the audit log, the last sync record, the
//! emergency holds and the rollout step marks) are kept by a [`FileBackend`] in `state_dir`, as
//! for a `file` environment; the flagd file holds only what flagd reads. The changes of a sync
//! are written together when it flushes them: the whole flagd file is rewritten once,
//! atomically (a temporary file renamed over it), so a watching flagd sees all of them at once
//! and never half a file, and only then are they recorded; a file that would not change is not
//! written. Reading compares the flagd file with what flagops would write for the state it
//! recorded: a flag missing from the file or changed there is reported absent, so the next sync
//! writes it again.
//!
//! The mapping of Flipper's gates (docs/flagd.md): booleans and actors are exact, groups need
//! the application to send them as `groups`, a percentage of actors becomes a `fractional` split
//! that opens the same share of actors but not the same ones, and a percentage of time cannot be
//! expressed, so `canonicalize` refuses it before any change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

use super::file::FileBackend;
use super::{ApplyContext, Backend, BackendError, Hold, Snapshot, StepMark, SyncRecord};
use crate::config::ActorKind;
use crate::owned_file;
use crate::plan::Change;
use crate::state::{EnvironmentState, Stored};

/// The schema the written file names.
pub const SCHEMA: &str = "https://flagd.dev/schema/v0/flags.json";

/// The total weight of a `fractional` split: Flipper's resolution, thousandths of a percent.
const TOTAL_WEIGHT: u32 = crate::hashing::FLAGD_TOTAL_WEIGHT;

/// An environment written as a flagd flag-definition file.
#[derive(Debug)]
pub struct FlagdBackend {
    records: FileBackend,
    path: PathBuf,
    environment: String,
    actor_kinds: BTreeMap<String, ActorKind>,
    flags: Option<EnvironmentState>,
    /// Changes applied but not yet written or recorded, in order, with their contexts.
    pending: Vec<(Change, ApplyContext)>,
}

impl FlagdBackend {
    /// The backend writing `path`, with flagops's records in the state document `state_path`.
    pub fn open(
        path: &Path,
        state_path: &Path,
        environment: &str,
        actor_kinds: &BTreeMap<String, ActorKind>,
        writable: bool,
    ) -> anyhow::Result<FlagdBackend> {
        if writable {
            // Reads the folder, so a folder that is not one fails here, before any change.
            owned_file::remove_stale_temporaries(path)
                .map_err(|error| unusable(path, environment, "written", &error))?;
        }
        Ok(FlagdBackend {
            records: FileBackend::open(state_path, environment, writable)?,
            path: path.to_path_buf(),
            environment: environment.to_string(),
            actor_kinds: actor_kinds.clone(),
            flags: None,
            pending: Vec::new(),
        })
    }

    fn flags(&mut self) -> Result<&mut EnvironmentState, BackendError> {
        if self.flags.is_none() {
            self.flags = Some(self.records.fetch()?.flags);
        }
        Ok(self.flags.as_mut().expect("loaded above"))
    }

    /// Writes the flagd file for `flags`, unless it already holds exactly that.
    fn publish(&self, flags: &EnvironmentState) -> Result<(), BackendError> {
        let text = render(flags, &self.actor_kinds)?;
        let current = owned_file::read(&self.path, owned_file::MAX_DOCUMENT_BYTES)
            .map_err(|error| unusable(&self.path, &self.environment, "read", &error))?;
        if current.as_deref() != Some(text.as_bytes()) {
            owned_file::replace(&self.path, text.as_bytes(), true)
                .map_err(|error| unusable(&self.path, &self.environment, "written", &error))?;
        }
        Ok(())
    }
}

impl Backend for FlagdBackend {
    fn fetch(&mut self) -> Result<Snapshot, BackendError> {
        let mut snapshot = self.records.fetch()?;
        self.flags = Some(snapshot.flags.clone());
        let bytes = owned_file::read(&self.path, owned_file::MAX_DOCUMENT_BYTES)
            .map_err(|error| unusable(&self.path, &self.environment, "read", &error))?;
        let written: Value = match bytes {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
                anyhow::anyhow!(
                    "`{}` is not a flagd flag-definition file: {error}\nhelp: delete it: the next sync of `{}` writes it again",
                    self.path.display(),
                    self.environment
                )
            })?,
            None => Value::Null,
        };
        let mut differing = Vec::new();
        for (flag, stored) in &snapshot.flags {
            if written["flags"].get(flag) != Some(&flag_definition(stored, &self.actor_kinds)?) {
                differing.push(flag.clone());
            }
        }
        for flag in differing {
            snapshot.flags.remove(&flag);
        }
        Ok(snapshot)
    }

    fn apply(&mut self, change: &Change, context: &ApplyContext) -> Result<(), BackendError> {
        if let Some(to) = &change.to {
            flag_definition(to, &self.actor_kinds)?;
        }
        self.flags()?;
        self.pending.push((change.clone(), context.clone()));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // The flagd file first, then the records: changes that could not be written are
        // neither recorded nor audited, and a change written but not recorded is planned again,
        // a write that changes nothing.
        let mut flags = self.flags()?.clone();
        for (change, _) in &self.pending {
            match &change.to {
                Some(stored) => flags.insert(change.flag.clone(), stored.clone()),
                None => flags.remove(&change.flag),
            };
        }
        self.publish(&flags)?;
        for (change, context) in std::mem::take(&mut self.pending).iter() {
            self.records.apply(change, context)?;
        }
        self.flags = Some(flags);
        Ok(())
    }

    fn record_sync(&mut self, record: &SyncRecord) -> Result<(), BackendError> {
        self.flush()?;
        let flags = self.flags()?.clone();
        self.publish(&flags)?;
        self.records.record_sync(record)
    }

    fn set_hold(&mut self, flag: &str, hold: Option<&Hold>) -> Result<(), BackendError> {
        self.records.set_hold(flag, hold)
    }

    fn record_step(&mut self, mark: &StepMark) -> Result<(), BackendError> {
        self.records.record_step(mark)
    }

    fn canonicalize(&mut self, desired: &mut EnvironmentState) -> Result<(), BackendError> {
        let refused: Vec<String> = desired
            .iter()
            .filter_map(|(flag, stored)| {
                flag_definition(stored, &self.actor_kinds)
                    .err()
                    .map(|e| format!("`{flag}`: {e}"))
            })
            .collect();
        if refused.is_empty() {
            Ok(())
        } else {
            Err(BackendError::Rejected(format!(
                "environment `{}` cannot hold these states in flagd:\n{}",
                self.environment,
                refused.join("\n")
            )))
        }
    }
}

/// The error of a flagd file that cannot be read or written, with what to do about it.
fn unusable(path: &Path, environment: &str, verb: &str, error: &anyhow::Error) -> anyhow::Error {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    anyhow::anyhow!(
        "the flagd file `{}` of environment `{environment}` cannot be {verb}: {error:#}\nhelp: make `{}` a folder flagops can write in, or change the environment's `path` in flagops.yml, then rerun `flagops sync`",
        path.display(),
        folder.display()
    )
}

/// The whole flagd file for `flags`: `$schema` and one definition per flag, sorted.
pub fn render(flags: &EnvironmentState, actor_kinds: &BTreeMap<String, ActorKind>) -> Result<String, BackendError> {
    let mut definitions = serde_json::Map::new();
    for (flag, stored) in flags {
        definitions.insert(flag.clone(), flag_definition(stored, actor_kinds)?);
    }
    let document = json!({ "$schema": SCHEMA, "flags": definitions });
    let mut text = serde_json::to_string_pretty(&document).context("failed to serialize the flagd file")?;
    text.push('\n');
    Ok(text)
}

/// One flag's definition: a boolean pair of variants, `on` and `off`, always `ENABLED` (flagd's
/// `DISABLED` would hand the decision to the application's default), with targeting for gates.
fn flag_definition(stored: &Stored, actor_kinds: &BTreeMap<String, ActorKind>) -> Result<Value, BackendError> {
    let definition = |default: &str, targeting: Option<Value>| {
        let mut flag = json!({
            "state": "ENABLED",
            "variants": { "on": true, "off": false },
            "defaultVariant": default,
        });
        if let Some(targeting) = targeting {
            flag["targeting"] = targeting;
        }
        flag
    };
    let gates = match stored {
        Stored::Boolean(on) => return Ok(definition(if *on { "on" } else { "off" }, None)),
        Stored::Gates(gates) => gates,
    };
    if gates.percentage_of_time.is_some_and(|p| p > 0) {
        return Err(BackendError::Rejected(
            "flagd cannot express a percentage of time: its evaluation is deterministic\nhelp: use `percentage_of_actors` for this environment".to_string(),
        ));
    }
    let mut branches = Vec::new();
    if !gates.actors.is_empty() {
        let mut keys = Vec::new();
        for actor in &gates.actors {
            let kind = actor_kinds.get(&actor.kind).ok_or_else(|| {
                BackendError::Rejected(format!("actor kind `{}` is not in `actor_kinds`", actor.kind))
            })?;
            keys.push(Value::String(format!("{}:{}", kind.flipper_type, actor.id)));
        }
        branches.push(json!({ "in": [{ "var": "targetingKey" }, keys] }));
        branches.push(json!("on"));
    }
    for group in &gates.groups {
        branches.push(json!({ "in": [group, { "var": ["groups", []] }] }));
        branches.push(json!("on"));
    }
    let split = gates.percentage_of_actors.filter(|p| *p > 0).map(|p| {
        let p = p.min(TOTAL_WEIGHT);
        json!({ "fractional": [["on", p], ["off", TOTAL_WEIGHT - p]] })
    });
    if branches.is_empty() {
        return Ok(definition("off", split));
    }
    branches.push(split.unwrap_or(json!("off")));
    Ok(definition("off", Some(json!({ "if": branches }))))
}

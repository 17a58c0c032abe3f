//! The embedded `file` backend: a JSON state document per environment plus an append-only
//! audit log, which doubles as the write-ahead journal.
//!
//! Every applied change is appended to the log (`<env>.audit.jsonl`) as one JSON line with a
//! revision number. The state document (`<env>.json`) is a snapshot, rewritten atomically
//! (temporary file, fsync, rename, fsync of the folder) when a sync completes. Reading the
//! state replays the log lines newer than the snapshot, so a crash at any point leaves either
//! the old or the new state of each change: a torn last line is discarded (its change was never
//! acknowledged) and a rerun applies it once. Only one writer runs at a time: `sync` holds the
//! environment's lock.
//!
//! Emergency holds live in the state document too (`holds`): storing or removing one writes the
//! document at once, atomically, with the journal's changes folded in, so a hold is as durable
//! as a completed sync and every writer under the lock sees it.
//!
//! The rollout step last applied to each flag (`steps`) is kept in the document too. A step that
//! changes the flag is journaled with its change, in the same line, and replayed with it; a step
//! whose state the flag already holds is marked in the document written when the sync completes.
//! A sync killed before then loses only such a mark, so the rerun marks the step at its own,
//! later time: a step never seems applied earlier than it was.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{ApplyContext, AuditRecord, Backend, BackendError, Hold, Snapshot, StepMark, SyncRecord};
use crate::owned_file;
use crate::plan::Change;
use crate::state::EnvironmentState;

/// The format version written in state documents.
const FORMAT: u32 = 1;

/// An environment stored in files.
#[derive(Debug)]
pub struct FileBackend {
    path: PathBuf,
    audit_path: PathBuf,
    environment: String,
    writable: bool,
    state: Option<State>,
    journal: Option<File>,
}

/// The state document.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    format: u32,
    environment: String,
    /// The revision of the last change included.
    revision: u64,
    flags: EnvironmentState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_sync: Option<SyncRecord>,
    /// The emergency holds, by flag; documents written before holds existed have none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    holds: BTreeMap<String, Hold>,
    /// The rollout step last applied to each flag; documents written before marks existed have
    /// none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    steps: BTreeMap<String, StepMark>,
}

/// The current state: the document with newer journal lines replayed.
#[derive(Clone, Debug)]
struct State {
    document: Document,
    revision: u64,
}

impl FileBackend {
    /// The backend whose state document is `path`. A `writable` backend, opened under the
    /// environment's lock, repairs what a run killed while writing left: a torn last line of the
    /// audit log, and temporary files of the state document.
    pub fn open(path: &Path, environment: &str, writable: bool) -> anyhow::Result<FileBackend> {
        let audit_path = audit_path(path);
        if writable {
            let folder = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(folder).with_context(|| format!("failed to create `{}`", folder.display()))?;
            truncate_torn_line(&audit_path)?;
            owned_file::remove_stale_temporaries(path)?;
        }
        Ok(FileBackend {
            path: path.to_path_buf(),
            audit_path,
            environment: environment.to_string(),
            writable,
            state: None,
            journal: None,
        })
    }

    fn load(&mut self) -> Result<&mut State, BackendError> {
        if self.state.is_none() {
            let mut document = read_document(&self.path, &self.environment)?;
            let journal = read_numbered_journal(&self.audit_path)?;
            check_agreement(&self.path, &self.audit_path, &self.environment, &document, &journal)?;
            let mut revision = document.revision;
            for (_, record) in journal {
                if record.revision <= document.revision {
                    continue;
                }
                match &record.to {
                    Some(state) => document.flags.insert(record.flag.clone(), state.clone()),
                    None => document.flags.remove(&record.flag),
                };
                if let Some(mark) = &record.step {
                    document.steps.insert(mark.flag.clone(), mark.clone());
                }
                revision = record.revision;
            }
            self.state = Some(State { document, revision });
        }
        Ok(self.state.as_mut().expect("loaded above"))
    }

    fn journal(&mut self) -> Result<&mut File, BackendError> {
        if self.journal.is_none() {
            let file = owned_file::open(&self.audit_path, OpenOptions::new().create(true).append(true))?;
            self.journal = Some(file);
        }
        Ok(self.journal.as_mut().expect("opened above"))
    }

    /// Writes the state as a new snapshot document, atomically.
    fn compact(&mut self, last_sync: Option<SyncRecord>) -> Result<(), BackendError> {
        if let Some(journal) = &self.journal {
            journal
                .sync_all()
                .with_context(|| format!("failed to sync `{}`", self.audit_path.display()))?;
        }
        let path = self.path.clone();
        let environment = self.environment.clone();
        let state = self.load()?;
        state.document.revision = state.revision;
        state.document.format = FORMAT;
        state.document.environment = environment;
        if last_sync.is_some() {
            state.document.last_sync = last_sync;
        }
        let mut text = serde_json::to_string_pretty(&state.document).context("failed to serialize the state")?;
        text.push('\n');
        crate::owned_file::replace(&path, text.as_bytes(), true)?;
        Ok(())
    }
}

impl Backend for FileBackend {
    fn fetch(&mut self) -> Result<Snapshot, BackendError> {
        self.state = None;
        let state = self.load()?;
        Ok(Snapshot {
            flags: state.document.flags.clone(),
            last_sync: state.document.last_sync.clone(),
            holds: state.document.holds.clone(),
            steps: state.document.steps.clone(),
        })
    }

    fn apply(&mut self, change: &Change, context: &ApplyContext) -> Result<(), BackendError> {
        if !self.writable {
            return Err(anyhow::anyhow!("the state of `{}` was opened read-only", self.environment).into());
        }
        let revision = self.load()?.revision + 1;
        let record = AuditRecord::new(change, context, revision);
        let mut line = serde_json::to_string(&record).context("failed to serialize the audit record")?;
        line.push('\n');
        // One write of a whole line: a crash leaves it whole or torn, and a torn line is dropped.
        let audit_path = self.audit_path.clone();
        self.journal()?
            .write_all(line.as_bytes())
            .with_context(|| format!("failed to append to `{}`", audit_path.display()))?;
        let state = self.load()?;
        match &change.to {
            Some(stored) => state.document.flags.insert(change.flag.clone(), stored.clone()),
            None => state.document.flags.remove(&change.flag),
        };
        if let Some(mark) = &context.step {
            state.document.steps.insert(mark.flag.clone(), mark.clone());
        }
        state.revision = revision;
        Ok(())
    }

    fn record_sync(&mut self, record: &SyncRecord) -> Result<(), BackendError> {
        self.compact(Some(record.clone()))
    }

    fn set_hold(&mut self, flag: &str, hold: Option<&Hold>) -> Result<(), BackendError> {
        if !self.writable {
            return Err(anyhow::anyhow!("the state of `{}` was opened read-only", self.environment).into());
        }
        let holds = &mut self.load()?.document.holds;
        match hold {
            Some(hold) => holds.insert(flag.to_string(), hold.clone()),
            None => holds.remove(flag),
        };
        self.compact(None)
    }

    fn record_step(&mut self, mark: &StepMark) -> Result<(), BackendError> {
        if !self.writable {
            return Err(anyhow::anyhow!("the state of `{}` was opened read-only", self.environment).into());
        }
        // Written with the document when the sync completes (`record_sync`).
        self.load()?.document.steps.insert(mark.flag.clone(), mark.clone());
        Ok(())
    }
}

/// `<dir>/<env>.audit.jsonl` beside `<dir>/<env>.json`.
pub fn audit_path(state_path: &Path) -> PathBuf {
    let stem = state_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    state_path.with_file_name(format!("{stem}.audit.jsonl"))
}

/// Reads every complete record of an audit log (none if it does not exist).
pub fn read_journal(path: &Path) -> Result<Vec<AuditRecord>, BackendError> {
    Ok(read_numbered_journal(path)?
        .into_iter()
        .map(|(_, record)| record)
        .collect())
}

/// Every complete record of an audit log with its line number (1-based), read a line at a time
/// within [`MAX_LOG_BYTES`](owned_file::MAX_LOG_BYTES), never through a link.
fn read_numbered_journal(path: &Path) -> Result<Vec<(usize, AuditRecord)>, BackendError> {
    let Some(file) = owned_file::open_limited(path, owned_file::MAX_LOG_BYTES)? else {
        return Ok(Vec::new());
    };
    let mut reader = BufReader::new(file);
    let mut records = Vec::new();
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        // The end, or a torn last line (a killed writer), which is not a record.
        if read == 0 || line.pop() != Some(b'\n') {
            break;
        }
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<AuditRecord>(&line) {
            Ok(record) => records.push((number, record)),
            Err(error) => {
                return Err(anyhow::anyhow!(
                    "`{}` line {number} is not an audit record: {error}\nhelp: the audit log is append-only; restore it from a backup",
                    path.display()
                )
                .into());
            }
        }
    }
    Ok(records)
}

/// Refuses a state document and an audit log that do not belong together: written for another
/// environment, revisions that do not run 1, 2, 3, … without gaps, or a document whose revision
/// the log does not hold (deleted or emptied, cut too short, or started after it).
fn check_agreement(
    path: &Path,
    audit_path: &Path,
    environment: &str,
    document: &Document,
    journal: &[(usize, AuditRecord)],
) -> Result<(), BackendError> {
    let restore = "help: the audit log is append-only; restore it from a backup";
    if document.environment != environment {
        return Err(anyhow::anyhow!(
            "`{}` holds the state of environment `{}`, not of `{environment}`\nhelp: every environment needs its own state file: move the file back to the environment it belongs to, or delete it to rebuild `{environment}`'s state from `{}`",
            path.display(),
            document.environment,
            audit_path.display()
        )
        .into());
    }
    for (position, (line, record)) in journal.iter().enumerate() {
        if record.environment != environment {
            return Err(anyhow::anyhow!(
                "`{}` line {line} is a change to environment `{}`, not to `{environment}`\nhelp: every environment needs its own audit log: move the file back to the environment it belongs to, or restore `{environment}`'s log from a backup",
                audit_path.display(),
                record.environment
            )
            .into());
        }
        if let Some(before) = position.checked_sub(1).map(|before| journal[before].1.revision)
            && record.revision != before + 1
        {
            return Err(anyhow::anyhow!(
                "`{}` line {line} has revision {}, but the record before it has revision {before}: revisions must go up by one\n{restore}",
                audit_path.display(),
                record.revision
            )
            .into());
        }
    }
    let revision = document.revision;
    match (journal.first(), journal.last()) {
        (Some((_, first)), Some((_, last))) => {
            if first.revision > revision.max(1) {
                return Err(anyhow::anyhow!(
                    "`{}` starts at revision {}, but `{}` is at revision {revision}: the changes in between are missing\n{restore}",
                    audit_path.display(),
                    first.revision,
                    path.display()
                )
                .into());
            }
            if revision > last.revision {
                return Err(anyhow::anyhow!(
                    "`{}` is at revision {revision}, but its audit log `{}` ends at revision {}\nhelp: restore the audit log from a backup, or delete `{}` to rebuild the state from the log",
                    path.display(),
                    audit_path.display(),
                    last.revision,
                    path.display()
                )
                .into());
            }
        }
        _ if revision > 0 => {
            let missing = if audit_path.exists() { "empty" } else { "missing" };
            return Err(anyhow::anyhow!(
                "`{}` is at revision {revision}, but its audit log `{}` is {missing}\nhelp: restore the audit log from a backup; or, to keep this state and start a new log, set `revision` to 0 in `{}`",
                path.display(),
                audit_path.display(),
                path.display()
            )
            .into());
        }
        _ => {}
    }
    Ok(())
}

fn read_document(path: &Path, environment: &str) -> Result<Document, BackendError> {
    let Some(text) = owned_file::read(path, owned_file::MAX_DOCUMENT_BYTES)? else {
        return Ok(Document {
            format: FORMAT,
            environment: environment.to_string(),
            ..Document::default()
        });
    };
    let document: Document = serde_json::from_slice(&text).map_err(|error| {
        anyhow::anyhow!(
            "`{}` is not a valid state document: {error}\nhelp: fix the file, or delete it: the state is then rebuilt from the audit log (only the record of the last sync is lost)",
            path.display()
        )
    })?;
    if document.format != FORMAT {
        return Err(anyhow::anyhow!(
            "`{}` has format {}, this flagops reads format {FORMAT}",
            path.display(),
            document.format
        )
        .into());
    }
    Ok(document)
}

/// Drops a torn last line (no trailing newline) from the audit log.
fn truncate_torn_line(path: &Path) -> anyhow::Result<()> {
    let Some(mut file) = owned_file::open_existing(path, OpenOptions::new().read(true).write(true))? else {
        return Ok(());
    };
    let length = file.metadata()?.len();
    let mut last = [0u8];
    if length == 0 || (file.seek(SeekFrom::End(-1)).is_ok() && file.read_exact(&mut last).is_ok() && last == *b"\n") {
        return Ok(());
    }
    if length > owned_file::MAX_LOG_BYTES {
        anyhow::bail!(
            "`{}` is {length} bytes, more than the {} MiB flagops reads from such a file\nhelp: check what wrote it, and move it away",
            path.display(),
            owned_file::MAX_LOG_BYTES >> 20
        );
    }
    let mut text = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut text)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    let keep = text.iter().rposition(|byte| *byte == b'\n').map_or(0, |at| at + 1);
    file.set_len(keep as u64)
        .with_context(|| format!("failed to truncate `{}`", path.display()))?;
    file.seek(SeekFrom::End(0))?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use crate::state::Stored;

    fn context() -> ApplyContext {
        ApplyContext {
            environment: "e".into(),
            by: "tester".into(),
            commit: None,
            at: "2026-11-21T00:00:00Z".into(),
            reason: None,
            step: None,
        }
    }

    fn change(flag: &str, to: Option<Stored>) -> Change {
        Change {
            flag: flag.into(),
            action: if to.is_some() { Action::Create } else { Action::Delete },
            from: None,
            to,
            orphan: false,
        }
    }

    #[test]
    fn file_backend_replays_journal_without_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.json");
        let mut backend = FileBackend::open(&path, "e", true).unwrap();
        backend
            .apply(&change("a", Some(Stored::Boolean(true))), &context())
            .unwrap();
        backend
            .apply(&change("b", Some(Stored::Boolean(false))), &context())
            .unwrap();
        drop(backend);
        // No snapshot was written: a crash before the end of the sync.
        assert!(!path.exists());
        let mut reopened = FileBackend::open(&path, "e", false).unwrap();
        let snapshot = reopened.fetch().unwrap();
        assert_eq!(snapshot.flags.len(), 2);
        assert_eq!(
            read_journal(&audit_path(&path))
                .unwrap()
                .iter()
                .map(|r| r.revision)
                .collect::<Vec<_>>(),
            [1, 2]
        );
    }

    #[test]
    fn file_backend_drops_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.json");
        let mut backend = FileBackend::open(&path, "e", true).unwrap();
        backend
            .apply(&change("a", Some(Stored::Boolean(true))), &context())
            .unwrap();
        drop(backend);
        let mut log = OpenOptions::new().append(true).open(audit_path(&path)).unwrap();
        log.write_all(br#"{"revision":2,"at":"#).unwrap();
        let mut reader = FileBackend::open(&path, "e", false).unwrap();
        assert_eq!(reader.fetch().unwrap().flags.len(), 1);
        let _writer = FileBackend::open(&path, "e", true).unwrap();
        assert!(std::fs::read_to_string(audit_path(&path)).unwrap().ends_with("}\n"));
    }
}

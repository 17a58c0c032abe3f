//! One first-parent walk of the branch, descending into the flags directory only where its
//! tree changed.

use std::collections::BTreeMap;

use anyhow::anyhow;
use gix::ObjectId;
use std::cmp::Ordering;

use gix::objs::tree::{EntryKind, EntryRef};
use gix::objs::{Exists, FindExt};

/// A commit that changed the flags directory, with the flag files it changed.
#[derive(Debug)]
pub(crate) struct FlagCommit {
    pub(crate) id: ObjectId,
    pub(crate) author: String,
    pub(crate) time: i64,
    pub(crate) message: String,
    /// Changed files, by path below the flags directory: (blob before, blob after).
    pub(crate) files: BTreeMap<String, (Option<ObjectId>, Option<ObjectId>)>,
}

/// Walks first parents from `tip`, newest first, stopping before `stop` when it is met.
/// Returns the commits that changed `flags_path` and whether `stop` was met.
///
/// The walk itself reads only commits and the small trees on the way to the flags directory;
/// the subtrees of the commits that changed it are then compared in parallel.
pub(crate) fn walk(
    repository: &gix::Repository,
    tip: ObjectId,
    flags_path: &[&str],
    stop: Option<ObjectId>,
) -> anyhow::Result<(Vec<FlagCommit>, bool)> {
    let objects = &repository.objects;
    let mut commit_buffer = Vec::new();
    let mut tree_buffer = Vec::new();
    // Commits whose flags tree differs from their parent's: (commit, before, after).
    let mut changed: Vec<(FlagCommit, Option<ObjectId>, Option<ObjectId>)> = Vec::new();
    let mut current = Some(tip);
    // The commit being looked at, waiting for its parent's flags tree to compare with.
    let mut pending: Option<(FlagCommit, Option<ObjectId>)> = None;
    let mut met_stop = false;
    while let Some(id) = current {
        if Some(id) == stop {
            met_stop = true;
            break;
        }
        let commit = match objects.find_commit(&id, &mut commit_buffer) {
            Ok(commit) => commit,
            // A shallow clone ends at a commit whose parent is not there: the history starts
            // at the last commit that is.
            Err(_) if id != tip && !objects.exists(&id) => break,
            Err(error) => return Err(anyhow!("cannot read commit {id}: {error}")),
        };
        let tree = commit.tree();
        let parent = commit.parents().next();
        let info = FlagCommit {
            id,
            author: commit
                .author()
                .map(|a| format!("{} <{}>", a.name, a.email))
                .unwrap_or_default(),
            time: commit.time().map(|t| t.seconds).unwrap_or_default(),
            message: commit.message.to_string(),
            files: BTreeMap::new(),
        };
        let flags = subtree(objects, tree, flags_path, &mut tree_buffer)?;
        if let Some((child, child_flags)) = pending.take()
            && child_flags != flags
        {
            changed.push((child, flags, child_flags));
        }
        pending = Some((info, flags));
        current = parent;
    }
    // The walk reached the root (or the stop): compare the last commit with nothing (the root)
    // or with the stop commit's flags tree.
    if let Some((child, child_flags)) = pending {
        let before = match (met_stop, stop) {
            (true, Some(stop)) => {
                let commit = objects
                    .find_commit(&stop, &mut commit_buffer)
                    .map_err(|e| anyhow!("cannot read commit {stop}: {e}"))?;
                let tree = commit.tree();
                subtree(objects, tree, flags_path, &mut tree_buffer)?
            }
            _ => None,
        };
        if before != child_flags {
            changed.push((child, before, child_flags));
        }
    }

    use rayon::prelude::*;
    let shared = repository.clone().into_sync();
    let found = changed
        .into_par_iter()
        .map_init(
            || shared.to_thread_local(),
            |local, (mut commit, before, after)| -> anyhow::Result<FlagCommit> {
                diff_trees(&local.objects, before, after, String::new(), &mut commit.files)?;
                Ok(commit)
            },
        )
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((found, met_stop))
}

/// The id of the tree at `path` below `root`, if there is one.
fn subtree(
    objects: &gix::OdbHandle,
    root: ObjectId,
    path: &[&str],
    buffer: &mut Vec<u8>,
) -> anyhow::Result<Option<ObjectId>> {
    let mut current = root;
    for part in path {
        let tree = objects
            .find_tree(&current, buffer)
            .map_err(|e| anyhow!("cannot read tree {current}: {e}"))?;
        let next = tree
            .entries
            .iter()
            .find(|entry| entry.filename == part.as_bytes() && entry.mode.is_tree())
            .map(|entry| entry.oid.to_owned());
        match next {
            Some(id) => current = id,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// Collects the blobs that differ between two trees, descending only into subtrees whose ids
/// differ. Both entry lists are in git's tree order, so one merge pass pairs them up without
/// copying names.
fn diff_trees(
    objects: &gix::OdbHandle,
    before: Option<ObjectId>,
    after: Option<ObjectId>,
    prefix: String,
    out: &mut BTreeMap<String, (Option<ObjectId>, Option<ObjectId>)>,
) -> anyhow::Result<()> {
    let mut old_buffer = Vec::new();
    let mut new_buffer = Vec::new();
    let old = match before {
        Some(id) => {
            objects
                .find_tree(&id, &mut old_buffer)
                .map_err(|e| anyhow!("cannot read tree {id}: {e}"))?
                .entries
        }
        None => Vec::new(),
    };
    let new = match after {
        Some(id) => {
            objects
                .find_tree(&id, &mut new_buffer)
                .map_err(|e| anyhow!("cannot read tree {id}: {e}"))?
                .entries
        }
        None => Vec::new(),
    };
    let kept = |entry: &&EntryRef<'_>| {
        matches!(
            entry.mode.kind(),
            EntryKind::Tree | EntryKind::Blob | EntryKind::BlobExecutable
        )
    };
    let old: Vec<&EntryRef<'_>> = old.iter().filter(kept).collect();
    let new: Vec<&EntryRef<'_>> = new.iter().filter(kept).collect();
    let (mut left, mut right) = (0, 0);
    while left < old.len() || right < new.len() {
        let order = match (old.get(left), new.get(right)) {
            (Some(a), Some(b)) => git_order(a, b),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        let (a, b) = match order {
            Ordering::Equal => {
                left += 1;
                right += 1;
                let (a, b) = (old[left - 1], new[right - 1]);
                if a.oid == b.oid {
                    continue;
                }
                (Some(a), Some(b))
            }
            Ordering::Less => {
                left += 1;
                (Some(old[left - 1]), None)
            }
            Ordering::Greater => {
                right += 1;
                (None, Some(new[right - 1]))
            }
        };
        let name = a.or(b).expect("one side exists").filename.to_string();
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let subtree = |entry: Option<&EntryRef<'_>>| entry.filter(|e| e.mode.is_tree()).map(|e| e.oid.to_owned());
        let blob = |entry: Option<&EntryRef<'_>>| entry.filter(|e| !e.mode.is_tree()).map(|e| e.oid.to_owned());
        if subtree(a).is_some() || subtree(b).is_some() {
            diff_trees(objects, subtree(a), subtree(b), path.clone(), out)?;
        }
        if blob(a).is_some() || blob(b).is_some() {
            out.insert(path, (blob(a), blob(b)));
        }
    }
    Ok(())
}

/// Git's tree order: names compared bytewise, a tree's name as if it ended in `/`.
fn git_order(a: &EntryRef<'_>, b: &EntryRef<'_>) -> Ordering {
    fn key<'e>(entry: &'e EntryRef<'_>) -> impl Iterator<Item = u8> + 'e {
        entry
            .filename
            .iter()
            .copied()
            .chain(entry.mode.is_tree().then_some(b'/'))
    }
    key(a).cmp(key(b)).then(a.mode.is_tree().cmp(&b.mode.is_tree()))
}

//! One first-parent walk of the branch, descending into the flags directory only where its
//! tree changed.

use std::collections::BTreeMap;

use anyhow::anyhow;
use gix::ObjectId;
use gix::objs::tree::EntryKind;
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
pub(crate) fn walk(
    repository: &gix::Repository,
    tip: ObjectId,
    flags_path: &[&str],
    stop: Option<ObjectId>,
) -> anyhow::Result<(Vec<FlagCommit>, bool)> {
    let objects = &repository.objects;
    let mut commit_buffer = Vec::new();
    let mut tree_buffer = Vec::new();
    let mut found = Vec::new();
    let mut current = Some(tip);
    // The commit being looked at, waiting for its parent's flags tree to compare with.
    let mut pending: Option<(ObjectId, Option<ObjectId>, String, i64, String)> = None;
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
        let author = commit
            .author()
            .map(|a| format!("{} <{}>", a.name, a.email))
            .unwrap_or_default();
        let time = commit.time().map(|t| t.seconds).unwrap_or_default();
        let message = commit.message.to_string();
        let flags = subtree(objects, tree, flags_path, &mut tree_buffer)?;
        if let Some((child, child_flags, child_author, child_time, child_message)) = pending.take()
            && child_flags != flags
        {
            let mut files = BTreeMap::new();
            diff_trees(objects, flags, child_flags, String::new(), &mut files)?;
            found.push(FlagCommit {
                id: child,
                author: child_author,
                time: child_time,
                message: child_message,
                files,
            });
        }
        pending = Some((id, flags, author, time, message));
        current = parent;
    }
    // The walk reached the root (or the stop): compare the last commit with nothing (the root)
    // or with the stop commit's tree.
    if let Some((child, child_flags, author, time, message)) = pending {
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
            let mut files = BTreeMap::new();
            diff_trees(objects, before, child_flags, String::new(), &mut files)?;
            found.push(FlagCommit {
                id: child,
                author,
                time,
                message,
                files,
            });
        }
    }
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
/// differ.
fn diff_trees(
    objects: &gix::OdbHandle,
    before: Option<ObjectId>,
    after: Option<ObjectId>,
    prefix: String,
    out: &mut BTreeMap<String, (Option<ObjectId>, Option<ObjectId>)>,
) -> anyhow::Result<()> {
    let entries = |id: Option<ObjectId>| -> anyhow::Result<BTreeMap<String, (ObjectId, bool)>> {
        let Some(id) = id else { return Ok(BTreeMap::new()) };
        let mut buffer = Vec::new();
        let tree = objects
            .find_tree(&id, &mut buffer)
            .map_err(|e| anyhow!("cannot read tree {id}: {e}"))?;
        Ok(tree
            .entries
            .iter()
            .filter(|entry| {
                matches!(
                    entry.mode.kind(),
                    EntryKind::Tree | EntryKind::Blob | EntryKind::BlobExecutable
                )
            })
            .map(|entry| (entry.filename.to_string(), (entry.oid.to_owned(), entry.mode.is_tree())))
            .collect())
    };
    let old = entries(before)?;
    let new = entries(after)?;
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let left = old.get(name).copied();
        let right = new.get(name).copied();
        if left.map(|(id, _)| id) == right.map(|(id, _)| id) {
            continue;
        }
        let left_tree = left.filter(|(_, is_tree)| *is_tree).map(|(id, _)| id);
        let right_tree = right.filter(|(_, is_tree)| *is_tree).map(|(id, _)| id);
        if left_tree.is_some() || right_tree.is_some() {
            diff_trees(objects, left_tree, right_tree, path.clone(), out)?;
        }
        let left_blob = left.filter(|(_, is_tree)| !*is_tree).map(|(id, _)| id);
        let right_blob = right.filter(|(_, is_tree)| !*is_tree).map(|(id, _)| id);
        if left_blob.is_some() || right_blob.is_some() {
            out.insert(path, (left_blob, right_blob));
        }
    }
    Ok(())
}

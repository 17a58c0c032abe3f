//! One first-parent walk of the branch, descending into the flags directory only where its
//! tree changed.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::anyhow;
use gix::ObjectId;
use std::cmp::Ordering;

use gix::objs::tree::{EntryKind, EntryMode};
use gix::objs::{Exists, FindExt};

/// A commit that changed the flags directory, with the flag files it changed.
#[derive(Debug)]
pub(crate) struct FlagCommit {
    pub(crate) id: ObjectId,
    /// `Name <email>`, shared by the commits of one author.
    pub(crate) author: Arc<str>,
    pub(crate) time: i64,
    /// The commit's title and merge request ([`super::title_and_merge_request`]): all its events
    /// show of the message, which is not kept, since a walk holds every commit it found.
    pub(crate) title: Box<str>,
    pub(crate) merge_request: Option<u64>,
    /// Changed files, by path below the flags directory.
    pub(crate) files: ChangedFiles,
}

/// Changed files, sorted by path: (path, (blob before, blob after)). A list, not a map: a commit
/// mostly changes one file, and a walk holds every commit's list until its events are made.
pub(crate) type ChangedFiles = Vec<(Box<str>, (Option<ObjectId>, Option<ObjectId>))>;

/// What a walk found.
pub(crate) struct Walk {
    /// The commits that changed the flags directory, newest first.
    pub(crate) commits: Vec<FlagCommit>,
    /// Whether the walk met the commit it was to stop at.
    pub(crate) met_stop: bool,
    /// Whether the pack stores objects as deltas of their older versions, so that reading
    /// versions oldest first is cheaper (see [`deltas_point_forward`]).
    pub(crate) oldest_first: bool,
}

/// Walks first parents from `tip`, newest first, stopping before `stop` when it is met.
///
/// The walk itself reads only commits and the small trees on the way to the flags directory;
/// the subtrees of the commits that changed it are then compared in parallel, each worker
/// taking a run of consecutive commits in the order the pack's delta chains run.
pub(crate) fn walk(
    repository: &gix::Repository,
    tip: ObjectId,
    flags_path: &[&str],
    stop: Option<ObjectId>,
) -> anyhow::Result<Walk> {
    let objects = &repository.objects;
    let mut commit_buffer = Vec::new();
    let mut tree_buffer = Vec::new();
    // The commits whose flags tree differs from their parent's, and those two trees, in a list
    // of their own: the commits' files are filled in place, and the trees are dropped.
    let mut commits: Vec<FlagCommit> = Vec::new();
    let mut trees: Vec<TreePair> = Vec::new();
    let mut authors: HashMap<String, Arc<str>> = HashMap::new();
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
            // A shallow clone ends at a commit whose parent is not there. Taking the last
            // commit that is there for the first would report every flag as created by it, so
            // the walk refuses: a history is complete or it is not given.
            Err(_) if id != tip && !objects.exists(&id) => {
                let boundary = pending.as_ref().map_or(tip, |(commit, _)| commit.id);
                return Err(anyhow!(
                    "the history is cut off at commit {}: this is a shallow clone, and the commits before it are not here\nhelp: fetch the whole history with `git fetch --unshallow` (in GitLab CI, set `GIT_DEPTH: 0`), or keep the history cache between runs so that only new commits are read",
                    boundary.to_hex_with_len(12)
                ));
            }
            Err(error) => return Err(anyhow!("cannot read commit {id}: {error}")),
        };
        let tree = commit.tree();
        let parent = commit.parents().next();
        let (title, merge_request) = super::title_and_merge_request(&String::from_utf8_lossy(commit.message));
        let author = commit
            .author()
            .map(|a| format!("{} <{}>", a.name, a.email))
            .unwrap_or_default();
        let author = Arc::clone(
            authors
                .entry(author)
                .or_insert_with_key(|name| Arc::from(name.as_str())),
        );
        let info = FlagCommit {
            id,
            author,
            time: commit.time().map(|t| t.seconds).unwrap_or_default(),
            title: title.into_boxed_str(),
            merge_request,
            files: ChangedFiles::new(),
        };
        let flags = subtree(objects, tree, flags_path, &mut tree_buffer)?;
        if let Some((child, child_flags)) = pending.take()
            && child_flags != flags
        {
            commits.push(child);
            trees.push((flags, child_flags));
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
            commits.push(child);
            trees.push((before, child_flags));
        }
    }
    drop(authors);

    // Consecutive entries share a tree (one's "before" is the next one's "after"), so each
    // worker takes a run of them in order and decodes every tree once.
    use rayon::prelude::*;
    let oldest_first = deltas_point_forward(objects, &trees);
    let runs = rayon::current_num_threads().max(1) * 4;
    let run_length = commits.len().div_ceil(runs).max(1);
    let shared = repository.clone().into_sync();
    commits
        .par_chunks_mut(run_length)
        .zip(trees.par_chunks(run_length))
        .try_for_each(|(commits, trees)| -> anyhow::Result<()> {
            let mut local = shared.to_thread_local();
            // Every tree is read once here, so a cache of decoded objects would only copy them.
            local.object_cache_size(0);
            let mut kept = Trees::default();
            let mut compare = |commit: &mut FlagCommit, (before, after): TreePair| -> anyhow::Result<()> {
                diff_trees(
                    &local.objects,
                    &mut kept,
                    before,
                    after,
                    String::new(),
                    &mut commit.files,
                )?;
                commit.files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                commit.files.shrink_to_fit();
                Ok(())
            };
            let mut pairs = commits.iter_mut().zip(trees.iter().copied());
            if oldest_first {
                pairs.rev().try_for_each(|(commit, trees)| compare(commit, trees))
            } else {
                pairs.try_for_each(|(commit, trees)| compare(commit, trees))
            }
        })?;
    Ok(Walk {
        commits,
        met_stop,
        oldest_first,
    })
}

/// A commit's flags tree before and after it.
type TreePair = (Option<ObjectId>, Option<ObjectId>);

/// Whether the pack stores the flags trees of `changed` (newest commit first) as deltas of their older
/// versions, as `git fast-import` writes them, rather than of newer ones, as `git repack` and
/// fetches do. Decided by a vote of a few samples.
///
/// gix's pack cache keeps the object a delta chain resolves to, not the bases on the way, so
/// reading versions in the order in which each is the base of the next resolves one delta
/// each, while the other order resolves whole chains again and again.
fn deltas_point_forward(objects: &gix::OdbHandle, changed: &[TreePair]) -> bool {
    use gix::odb::{HeaderExt, find::Header};
    let depth = |id: &Option<ObjectId>| match id.map(|id| objects.header(id)) {
        Some(Ok(Header::Packed(outcome))) => Some(outcome.num_deltas),
        _ => None,
    };
    let step = (changed.len() / 32).max(1);
    let mut votes = 0i64;
    for (before, after) in changed.iter().step_by(step) {
        if let (Some(older), Some(newer)) = (depth(before), depth(after)) {
            votes += i64::from(newer > older) - i64::from(newer < older);
        }
    }
    votes > 0
}

/// A tree's id and its bytes as git stores them.
type RawBytes = (ObjectId, Vec<u8>);

/// The raw trees last compared at each path below the flags directory: a tree on one side of a
/// comparison is usually on the other side of the next comparison that reaches its path (the
/// folder of one flag type changes, the others stay as they were).
#[derive(Default)]
struct Trees {
    latest: HashMap<String, [Option<RawBytes>; 2]>,
}

impl Trees {
    /// The bytes of tree `id` at `path`, kept from an earlier comparison or read now.
    fn take(&mut self, objects: &gix::OdbHandle, path: &str, id: ObjectId) -> anyhow::Result<Vec<u8>> {
        if let Some(kept) = self.latest.get_mut(path)
            && let Some(slot) = kept
                .iter_mut()
                .find(|slot| slot.as_ref().is_some_and(|(kept, _)| *kept == id))
            && let Some((_, bytes)) = slot.take()
        {
            return Ok(bytes);
        }
        let mut buffer = Vec::new();
        let kind = objects
            .find(&id, &mut buffer)
            .map_err(|e| anyhow!("cannot read tree {id}: {e}"))?
            .kind;
        if kind != gix::objs::Kind::Tree {
            return Err(anyhow!("cannot read tree {id}: it is a {kind}"));
        }
        // Kept until the next comparison at this path: without the room the read left.
        buffer.shrink_to_fit();
        Ok(buffer)
    }

    /// Keeps the two trees just compared at `path`, in place of the ones kept before.
    fn keep(&mut self, path: &str, before: Option<RawBytes>, after: Option<RawBytes>) {
        match self.latest.get_mut(path) {
            Some(kept) => *kept = [before, after],
            None => {
                self.latest.insert(path.to_string(), [before, after]);
            }
        }
    }
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
///
/// The trees are compared as git stores them: entries in git's tree order, each
/// `<mode> <name>\0<id>`. Successive versions of a large folder differ in an entry or two, so
/// the bytes they share at the start and at the end are skipped without decoding them, and only
/// the entries between are paired up, in one merge pass.
fn diff_trees(
    objects: &gix::OdbHandle,
    trees: &mut Trees,
    before: Option<ObjectId>,
    after: Option<ObjectId>,
    prefix: String,
    out: &mut ChangedFiles,
) -> anyhow::Result<()> {
    let old_bytes = before.map(|id| trees.take(objects, &prefix, id)).transpose()?;
    let new_bytes = after.map(|id| trees.take(objects, &prefix, id)).transpose()?;
    let old = RawTree::new(old_bytes.as_deref().unwrap_or_default(), before);
    let new = RawTree::new(new_bytes.as_deref().unwrap_or_default(), after);
    let shared_head = shared_head(old.bytes, new.bytes);
    let shared_tail = shared_tail(old.bytes, new.bytes);
    // Entries that end within the shared head are the same on both sides.
    let start = old.boundary_before(shared_head)?;
    let (mut left, mut right) = (start, start);
    loop {
        // What is left of both is the same bytes: the same entries.
        let (old_rest, new_rest) = (old.bytes.len() - left, new.bytes.len() - right);
        if old_rest == new_rest && old_rest <= shared_tail {
            break;
        }
        let a = old.entry_at(left)?;
        let b = new.entry_at(right)?;
        let order = match (&a, &b) {
            (Some(a), Some(b)) => git_order(a, b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => break,
        };
        let (a, b) = match order {
            Ordering::Equal => {
                let (a, b) = (a.expect("compared"), b.expect("compared"));
                (left, right) = (a.end, b.end);
                if a.oid == b.oid {
                    continue;
                }
                (Some(a), Some(b))
            }
            Ordering::Less => {
                let a = a.expect("compared");
                left = a.end;
                (Some(a), None)
            }
            Ordering::Greater => {
                let b = b.expect("compared");
                right = b.end;
                (None, Some(b))
            }
        };
        let (a, b) = (a.filter(RawEntry::is_kept), b.filter(RawEntry::is_kept));
        let Some(name) = a.as_ref().or(b.as_ref()).map(|entry| entry.name) else {
            continue;
        };
        let name = String::from_utf8_lossy(name);
        let path = if prefix.is_empty() {
            name.into_owned()
        } else {
            [prefix.as_str(), "/", &name].concat()
        };
        let subtree = |entry: &Option<RawEntry<'_>>| entry.as_ref().filter(|e| e.mode.is_tree()).map(|e| e.oid);
        let blob = |entry: &Option<RawEntry<'_>>| entry.as_ref().filter(|e| !e.mode.is_tree()).map(|e| e.oid);
        if subtree(&a).is_some() || subtree(&b).is_some() {
            diff_trees(objects, trees, subtree(&a), subtree(&b), path.clone(), out)?;
        }
        if blob(&a).is_some() || blob(&b).is_some() {
            out.push((path.into_boxed_str(), (blob(&a), blob(&b))));
        }
    }
    trees.keep(&prefix, before.zip(old_bytes), after.zip(new_bytes));
    Ok(())
}

/// How many bytes `a` and `b` share at their start; 32 bytes are compared at a time.
fn shared_head(a: &[u8], b: &[u8]) -> usize {
    let length = a.len().min(b.len());
    let mut at = 0;
    while at + 32 <= length && a[at..at + 32] == b[at..at + 32] {
        at += 32;
    }
    at + a[at..length]
        .iter()
        .zip(&b[at..length])
        .take_while(|(x, y)| x == y)
        .count()
}

/// How many bytes `a` and `b` share at their end.
fn shared_tail(a: &[u8], b: &[u8]) -> usize {
    let length = a.len().min(b.len());
    let (a, b) = (&a[a.len() - length..], &b[b.len() - length..]);
    let mut at = length;
    while at >= 32 && a[at - 32..at] == b[at - 32..at] {
        at -= 32;
    }
    length - at
        + a[..at]
            .iter()
            .rev()
            .zip(b[..at].iter().rev())
            .take_while(|(x, y)| x == y)
            .count()
}

/// A tree as git stores it, read entry by entry.
struct RawTree<'a> {
    bytes: &'a [u8],
    id: Option<ObjectId>,
}

/// One entry of a [`RawTree`], and where the next one starts.
struct RawEntry<'a> {
    mode: EntryMode,
    name: &'a [u8],
    oid: ObjectId,
    end: usize,
}

impl RawEntry<'_> {
    /// Folders and files; symbolic links and submodules hold no flags.
    fn is_kept(entry: &RawEntry<'_>) -> bool {
        matches!(
            entry.mode.kind(),
            EntryKind::Tree | EntryKind::Blob | EntryKind::BlobExecutable
        )
    }
}

impl<'a> RawTree<'a> {
    fn new(bytes: &'a [u8], id: Option<ObjectId>) -> Self {
        RawTree { bytes, id }
    }

    fn malformed(&self) -> anyhow::Error {
        match self.id {
            Some(id) => anyhow!("cannot read tree {id}: malformed entry"),
            None => anyhow!("cannot read a tree: malformed entry"),
        }
    }

    /// The id length: what follows each entry's name and its NUL.
    fn hash_len(&self) -> usize {
        self.id.map_or(20, |id| id.kind().len_in_bytes())
    }

    /// The start of the last entry that begins at or before `offset`.
    fn boundary_before(&self, offset: usize) -> anyhow::Result<usize> {
        let mut start = 0;
        while start < self.bytes.len() {
            let nul = memchr::memchr(0, &self.bytes[start..]).ok_or_else(|| self.malformed())?;
            let next = start + nul + 1 + self.hash_len();
            if next > offset {
                break;
            }
            start = next;
        }
        Ok(start)
    }

    /// The entry starting at `start`, or `None` at the end.
    fn entry_at(&self, start: usize) -> anyhow::Result<Option<RawEntry<'a>>> {
        let bytes = self.bytes;
        if start >= bytes.len() {
            return Ok(None);
        }
        let rest = &bytes[start..];
        let space = memchr::memchr(b' ', rest).ok_or_else(|| self.malformed())?;
        let mode = EntryMode::from_bytes(&rest[..=space]).ok_or_else(|| self.malformed())?;
        let nul = space + 1 + memchr::memchr(0, &rest[space + 1..]).ok_or_else(|| self.malformed())?;
        let end = nul + 1 + self.hash_len();
        let oid = rest
            .get(nul + 1..end)
            .and_then(|id| ObjectId::try_from(id).ok())
            .ok_or_else(|| self.malformed())?;
        Ok(Some(RawEntry {
            mode,
            name: &rest[space + 1..nul],
            oid,
            end: start + end,
        }))
    }
}

/// Git's tree order: names compared bytewise, a tree's name as if it ended in `/`.
fn git_order(a: &RawEntry<'_>, b: &RawEntry<'_>) -> Ordering {
    fn key<'e>(entry: &'e RawEntry<'_>) -> impl Iterator<Item = u8> + 'e {
        entry.name.iter().copied().chain(entry.mode.is_tree().then_some(b'/'))
    }
    key(a).cmp(key(b)).then(a.mode.is_tree().cmp(&b.mode.is_tree()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        // The fast comparisons of 32 bytes at a time count exactly what a byte-by-byte count
        // does, for shared runs shorter and longer than 32 bytes.
        #[test]
        fn shared_head_and_tail_count_every_shared_byte(
            shared in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            left in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
            right in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
        ) {
            let head = |a: &[u8], b: &[u8]| a.iter().zip(b).take_while(|(x, y)| x == y).count();
            let tail = |a: &[u8], b: &[u8]| a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count();
            let (a, b) = ([&shared[..], &left].concat(), [&shared[..], &right].concat());
            proptest::prop_assert_eq!(shared_head(&a, &b), head(&a, &b));
            let (a, b) = ([&left[..], &shared].concat(), [&right[..], &shared].concat());
            proptest::prop_assert_eq!(shared_tail(&a, &b), tail(&a, &b));
        }
    }
    use std::path::Path;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let output = Command::new("git").args(args).current_dir(dir).output().unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// A repository of `commits` commits making random edits under `flags/`: names that sort
    /// around each other in git's tree order (`a-b.yml`, `a.yml`, the folder `a`, `a0.yml`),
    /// a nested folder, a symbolic link, whole folders appearing and going.
    fn random_repository(dir: &Path, commits: usize) {
        let folders = ["beta", "ops", "wip", "beta/a", "ops/deep/er"];
        let names = ["a-b.yml", "a.yml", "a0.yml", "b.yml", "c.yaml", "z.yml", "link"];
        crate::history::testing::fast_import(dir, 0x2545_f491_4f6c_dd1d, |stream, next| {
            for number in 0..commits {
                writeln!(
                    stream,
                    "commit refs/heads/main\ncommitter T <t@example.com> {} +0000\ndata 2\nc\n",
                    1_700_000_000 + number
                )
                .unwrap();
                for _ in 0..=next(3) {
                    let folder = folders[next(folders.len())];
                    let name = names[next(names.len())];
                    let path = format!("flags/{folder}/{name}");
                    match next(5) {
                        0 => writeln!(stream, "D {path}").unwrap(),
                        1 if number % 7 == 0 => writeln!(stream, "D flags/{folder}").unwrap(),
                        _ if name == "link" => {
                            writeln!(stream, "M 120000 inline {path}\ndata 5\nb.yml").unwrap();
                        }
                        _ => {
                            let text = format!("revision: {number}\n");
                            writeln!(stream, "M 100644 inline {path}\ndata {}\n{text}", text.len()).unwrap();
                        }
                    }
                }
                if number % 4 == 0 {
                    writeln!(stream, "M 100644 inline README.md\ndata 2\n{}\n", number % 10).unwrap();
                }
            }
        });
    }

    /// What `git diff-tree` says each commit did under `flags/`, files only (no links).
    fn expected(dir: &Path) -> Vec<(String, ChangedFiles)> {
        let mut out = Vec::new();
        for commit in git(dir, &["rev-list", "--first-parent", "main"]).lines() {
            let raw = git(
                dir,
                &[
                    "diff-tree",
                    "-r",
                    "--root",
                    "--no-renames",
                    "--raw",
                    commit,
                    "--",
                    "flags/",
                ],
            );
            let mut files = ChangedFiles::new();
            for line in raw.lines().filter(|line| line.starts_with(':')) {
                let (fields, path) = line.split_once('\t').unwrap();
                let fields: Vec<&str> = fields.trim_start_matches(':').split(' ').collect();
                let side = |mode: &str, id: &str| {
                    (mode.starts_with("100")).then(|| ObjectId::from_hex(id.as_bytes()).unwrap())
                };
                let change = (side(fields[0], fields[2]), side(fields[1], fields[3]));
                if change != (None, None) {
                    files.push((path.trim_start_matches("flags/").into(), change));
                }
            }
            files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            if !files.is_empty() {
                out.push((commit.to_string(), files));
            }
        }
        out
    }

    fn walked(dir: &Path) -> (Vec<(String, ChangedFiles)>, bool) {
        let repository = gix::open(dir).unwrap();
        let head = repository.head_id().unwrap().detach();
        let walk = walk(&repository, head, &["flags"], None).unwrap();
        let commits = walk
            .commits
            .into_iter()
            .map(|commit| (commit.id.to_string(), commit.files))
            .filter(|(_, files)| !files.is_empty())
            .collect();
        (commits, walk.oldest_first)
    }

    #[test]
    fn walk_finds_what_git_diff_tree_finds_whichever_way_deltas_run() {
        let dir = tempfile::tempdir().unwrap();
        random_repository(dir.path(), 400);
        let expected = expected(dir.path());
        assert!(expected.len() > 300, "{} commits changed flags", expected.len());

        // `git fast-import` stores each version as a delta of the one before it.
        let (found, oldest_first) = walked(dir.path());
        assert!(oldest_first);
        assert_eq!(found, expected);

        // `git repack -f` makes newer versions the bases (where it makes deltas at all), as a
        // clone receives them.
        git(dir.path(), &["repack", "-adfq"]);
        let (found, _) = walked(dir.path());
        assert_eq!(found, expected);
    }

    #[test]
    fn shared_ends_are_counted_across_chunks() {
        let a: Vec<u8> = (0..100u8).collect();
        let mut b = a.clone();
        assert_eq!((shared_head(&a, &b), shared_tail(&a, &b)), (100, 100));
        b[70] = 0xff;
        assert_eq!((shared_head(&a, &b), shared_tail(&a, &b)), (70, 29));
        assert_eq!((shared_head(&a, &a[..40]), shared_tail(&a, &a[60..])), (40, 40));
        assert_eq!((shared_head(&a, &[]), shared_tail(&[], &a)), (0, 0));
    }
}

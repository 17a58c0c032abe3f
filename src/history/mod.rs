//! The only module that talks to git: the current commit, who is running, the registry's files
//! as they were at a revision, and every flag's history.

mod cache;
mod events;
mod walk;

pub use events::{Event, EventKind, title_and_merge_request};

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};

use serde::{Deserialize, Serialize};

use crate::source::SourceFile;

/// The registry's files at one revision: the config and the flag files.
#[derive(Debug)]
pub struct Revision {
    /// The full commit id.
    pub commit: String,
    /// `flagops.yml` as it was, if it existed.
    pub config: Option<SourceFile>,
    /// Every flag file under the flags directory, sorted by path.
    pub flags: Vec<SourceFile>,
}

/// The repository holding `root`, if there is one.
fn open(root: &Path) -> Option<gix::Repository> {
    gix::discover(root).ok()
}

/// Whether `root` is inside a git repository.
pub fn is_repository(root: &Path) -> bool {
    open(root).is_some()
}

/// The commit checked out at `root`: `CI_COMMIT_SHA` in GitLab CI, else git's `HEAD`.
pub fn head_commit(root: &Path) -> Option<String> {
    if let Ok(sha) = std::env::var("CI_COMMIT_SHA")
        && !sha.is_empty()
    {
        return Some(sha);
    }
    let repository = open(root)?;
    repository.head_id().ok().map(|id| id.to_string())
}

/// The message of `commit` in the repository holding `root`, when it can be read.
pub fn commit_message(root: &Path, commit: &str) -> Option<String> {
    let repository = open(root)?;
    let id = repository.rev_parse_single(commit).ok()?;
    let commit = repository.find_commit(id).ok()?;
    Some(commit.message_raw_sloppy().to_string())
}

/// Who is running: `GITLAB_USER_LOGIN` in GitLab CI, else git's `user.name <user.email>`, else
/// the login name.
pub fn identity(root: &Path) -> String {
    if let Ok(login) = std::env::var("GITLAB_USER_LOGIN")
        && !login.is_empty()
    {
        return format!("@{login}");
    }
    if let Some(repository) = open(root) {
        let config = repository.config_snapshot();
        let name = config.string("user.name").map(|value| value.to_string());
        let email = config.string("user.email").map(|value| value.to_string());
        match (name, email) {
            (Some(name), Some(email)) => return format!("{name} <{email}>"),
            (Some(name), None) => return name,
            (None, Some(email)) => return email,
            (None, None) => {}
        }
    }
    std::env::var("USER").unwrap_or_else(|_| "unknown".to_string())
}

/// Reads the registry at `revision` (anything `git rev-parse` takes) from the repository
/// holding `root`; `config_name` and `flags_dir` are relative to `root`.
pub fn read_revision(root: &Path, revision: &str, config_name: &str, flags_dir: &str) -> anyhow::Result<Revision> {
    let repository = open(root).ok_or_else(|| anyhow!("`{}` is not inside a git repository", root.display()))?;
    let workdir = repository
        .workdir()
        .ok_or_else(|| anyhow!("the repository holding `{}` has no work tree", root.display()))?;
    let prefix = relative_to(root, workdir)?;
    let id = match repository.rev_parse_single(revision) {
        Ok(id) => id,
        Err(error) => {
            let branches: Vec<String> = repository
                .references()
                .ok()
                .and_then(|references| {
                    references.local_branches().ok().map(|branches| {
                        branches
                            .flatten()
                            .map(|branch| branch.name().shorten().to_string())
                            .collect()
                    })
                })
                .unwrap_or_default();
            let help = if branches.is_empty() {
                "name a branch, a tag or a commit of the repository".to_string()
            } else {
                format!(
                    "name a branch, a tag or a commit; the branches are {}",
                    branches.join(", ")
                )
            };
            return Err(anyhow!(
                "the revision `{revision}` does not exist in the repository at `{}` ({error})\nhelp: {help}",
                workdir.display()
            ));
        }
    };
    let commit = id.detach().to_string();
    let tree = id
        .object()
        .map_err(|error| anyhow!("{error}"))?
        .peel_to_tree()
        .map_err(|error| anyhow!("{error}"))
        .with_context(|| format!("`{revision}` is not a commit"))?;

    let config = match tree
        .lookup_entry_by_path(prefix.join(config_name))
        .map_err(|error| anyhow!("{error}"))?
    {
        Some(entry) => {
            let object = entry.object().map_err(|error| anyhow!("{error}"))?;
            Some(source(root, Path::new(config_name), &object.data)?)
        }
        None => None,
    };

    let mut flags = Vec::new();
    let flags_path = prefix.join(flags_dir);
    if let Some(entry) = tree
        .lookup_entry_by_path(&flags_path)
        .map_err(|error| anyhow!("{error}"))?
    {
        let subtree = entry
            .object()
            .map_err(|error| anyhow!("{error}"))?
            .peel_to_tree()
            .map_err(|error| anyhow!("{error}"))?;
        let mut recorder = gix::traverse::tree::Recorder::default();
        subtree
            .traverse()
            .breadthfirst(&mut recorder)
            .map_err(|error| anyhow!("{error}"))?;
        for record in recorder.records {
            let relative = PathBuf::from(record.filepath.to_string());
            let is_yaml = relative.extension().is_some_and(|ext| ext == "yml" || ext == "yaml");
            let hidden = relative
                .components()
                .any(|part| part.as_os_str().to_string_lossy().starts_with('.'));
            if !record.mode.is_blob() || !is_yaml || hidden {
                continue;
            }
            let object = repository.find_object(record.oid).map_err(|error| anyhow!("{error}"))?;
            flags.push(source(root, &Path::new(flags_dir).join(&relative), &object.data)?);
        }
    }
    flags.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Revision { commit, config, flags })
}

/// A file read from git, shown with the path it has in the work tree.
fn source(root: &Path, relative: &Path, bytes: &[u8]) -> anyhow::Result<SourceFile> {
    let path = crate::load::display_path(&root.join(relative));
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| anyhow!("`{}` is not UTF-8 in git", path.display()))?;
    Ok(SourceFile { path, text })
}

fn relative_to(root: &Path, workdir: &Path) -> anyhow::Result<PathBuf> {
    let root = root
        .canonicalize()
        .with_context(|| format!("failed to resolve `{}`", root.display()))?;
    let workdir = workdir
        .canonicalize()
        .with_context(|| format!("failed to resolve `{}`", workdir.display()))?;
    Ok(root.strip_prefix(&workdir).map(Path::to_path_buf).unwrap_or_default())
}

/// Every flag's history, newest first, read from git with a cache of what earlier runs read.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct History {
    /// The commit the history runs up to.
    pub head: Option<String>,
    /// The time of that commit, in seconds since the epoch.
    #[serde(default)]
    pub head_time: i64,
    /// Every event, newest first.
    pub events: Vec<Event>,
}

/// How a history was obtained, for reports and benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheUse {
    /// No usable cache: every commit was read.
    Full,
    /// The cache held the history up to an ancestor: only newer commits were read.
    Incremental,
    /// The cache was made for a history that was since rewritten, so it was rebuilt.
    Rewritten,
}

/// The history of the flags under `flags_dir` (relative to `root`) on the branch checked out at
/// `root`, following first parents. `cache` is the cache file (JSON lines): read when it
/// matches, appended to or rewritten after. With `only`, the result holds that flag's events
/// alone, and other flags' cached events are not even parsed.
pub fn load_history(
    root: &Path,
    flags_dir: &str,
    cache: Option<&Path>,
    only: Option<&str>,
) -> anyhow::Result<(History, CacheUse)> {
    let Some(mut repository) = open(root) else {
        return Ok((History::default(), CacheUse::Full));
    };
    // The walk reads each commit's flags-directory tree, mostly the same one again (commits
    // outside it): a cache of decoded objects serves those. The comparisons and blob reads,
    // which read each object once, turn it off in their own handles.
    // It is kept small: the commits go through it too, each read once, and a large cache
    // holding them was a fifth of a long history's peak memory.
    repository.object_cache_size_if_unset(4 * 1024 * 1024);
    let head = match repository.head_id() {
        Ok(head) => head.detach(),
        // A branch with no commit yet has no history.
        Err(_) if repository.head().is_ok_and(|head| head.is_unborn()) => {
            return Ok((History::default(), CacheUse::Full));
        }
        // A head naming a commit that is not there is a broken repository: saying "no history"
        // would be a wrong answer given as a right one.
        Err(error) => return Err(anyhow!("cannot read the head commit of `{}`: {error}", root.display())),
    };
    let workdir = repository
        .workdir()
        .ok_or_else(|| anyhow!("the repository holding `{}` has no work tree", root.display()))?;
    let flags_path = relative_to(root, workdir)?.join(flags_dir);
    let flags_path_text = flags_path.to_string_lossy().replace('\\', "/");
    let components: Vec<String> = flags_path_text
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect();
    let components: Vec<&str> = components.iter().map(String::as_str).collect();

    let cached = cache.and_then(|path| {
        cache::read(path, &flags_path_text, only).unwrap_or_else(|error| {
            // Only a cache: a link, a file over the limit or one that cannot be read is rebuilt.
            let reason = error.to_string();
            let reason = reason.lines().next().unwrap_or_default();
            eprintln!("warning: ignoring the history cache: {reason}; it is rebuilt");
            None
        })
    });
    let stop = cached
        .as_ref()
        .and_then(|cached| gix::ObjectId::from_hex(cached.head.as_bytes()).ok());
    if stop == Some(head)
        && let Some(cached) = cached
    {
        let history = History {
            head: Some(cached.head),
            head_time: cached.head_time,
            events: cached.events,
        };
        return Ok((history, CacheUse::Incremental));
    }
    let walk::Walk {
        commits,
        met_stop,
        oldest_first,
    } = walk::walk(&repository, head, &components, stop)?;

    let mut commit_buffer = Vec::new();
    let head_time = {
        use gix::objs::FindExt;
        repository
            .objects
            .find_commit(&head, &mut commit_buffer)
            .ok()
            .and_then(|c| c.time().ok())
            .map_or(0, |t| t.seconds)
    };
    let head_text = head.to_string();
    let used = match (&cached, met_stop) {
        (Some(_), true) => CacheUse::Incremental,
        (Some(_), false) => CacheUse::Rewritten,
        (None, _) => CacheUse::Full,
    };
    // The events are written to the cache run by run as they are made, and only those asked
    // for are kept: a full history is never held whole.
    let mut segment = match (cache, &cached, met_stop) {
        (Some(path), Some(cached), true) => Some(cache::Segment::append(path, cached)?),
        (Some(path), _, _) => Some(cache::Segment::create(path, &flags_path_text)?),
        (None, _, _) => None,
    };
    let mut batches: Vec<Vec<Event>> = Vec::new();
    events_of(&repository, &commits, flags_dir, oldest_first, RUN, WINDOW, |batch| {
        if let Some(segment) = &mut segment {
            segment.write(&batch)?;
        }
        batches.push(match only {
            Some(name) => batch.into_iter().flatten().filter(|event| event.flag == name).collect(),
            None => batch.into_iter().flatten().collect(),
        });
        Ok(())
    })?;
    if let Some(segment) = segment {
        segment.finish(&head_text, head_time)?;
    }
    // The batches came oldest first, each newest first.
    let mut events: Vec<Event> = batches.into_iter().rev().flatten().collect();
    if let (Some(cached), true) = (cached, met_stop) {
        events.extend(cached.events);
    }
    let history = History {
        head: Some(head_text),
        head_time,
        events,
    };
    Ok((history, used))
}

/// How many commits' events are made at a time: enough to keep every core busy, few enough
/// that the flags parsed for them stay small beside the repository.
const RUN: usize = 4096;

/// How many flags' events are made at a time: enough to keep every core busy, few enough that
/// the events of a commit that changes every flag (58,000 for 10,000 flags in six environments)
/// are never all held.
const WINDOW: usize = 2048;

/// The events of the commits (newest first), handed to `sink` in batches, oldest first, each as
/// the events of parts of commits, newest first: the parts of a commit, in their order, make its
/// events. A batch holds the events of about `window` flags: a commit that changes every flag
/// (the import of a registry) makes events for each of its flags, so it is made in parts of a
/// sixteenth of a window, which several cores share.
///
/// The blobs are read a run of `run_length` commits at a time, and every flag blob is read and
/// parsed once. Only the versions a run needs are held, with the
/// last version of each file the runs before it left, which is the version the next change to
/// that file starts from. Within a run, the versions of each file are read in the order its
/// delta chain runs (`oldest_first`, from the walk), so each read applies one delta to the one
/// before.
fn events_of(
    repository: &gix::Repository,
    commits: &[walk::FlagCommit],
    flags_dir: &str,
    oldest_first: bool,
    run_length: usize,
    window: usize,
    mut sink: impl FnMut(Vec<Vec<Event>>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use gix::objs::FindExt;
    use rayon::prelude::*;
    use std::collections::{BTreeMap, HashMap, HashSet};

    let part_length = (window / 16).max(1);
    let shared = repository.clone().into_sync();
    // The flags parsed so far that a later run may need, and the blob each file holds after
    // the runs so far.
    let mut parsed: HashMap<gix::ObjectId, Option<Box<events::Facts>>> = HashMap::new();
    let mut latest: HashMap<&str, gix::ObjectId> = HashMap::new();
    for run in commits.rchunks(run_length) {
        // The versions of each flag file this run needs and no run before parsed, newest first.
        let mut versions: BTreeMap<&str, Vec<gix::ObjectId>> = BTreeMap::new();
        for commit in run {
            for (path, (before, after)) in &commit.files {
                if is_flag_path(path) {
                    let list = versions.entry(&**path).or_default();
                    for id in [after, before].into_iter().flatten() {
                        if list.last() != Some(id) && !parsed.contains_key(id) {
                            list.push(*id);
                        }
                    }
                }
            }
        }
        let read = versions
            .into_par_iter()
            .map_init(
                || {
                    let mut local = shared.to_thread_local();
                    // Each blob is read once: a cache of decoded objects would only copy them.
                    local.object_cache_size(0);
                    (local, Vec::new())
                },
                |(local, buffer), (_, mut ids)| -> anyhow::Result<Vec<(gix::ObjectId, Option<Box<events::Facts>>)>> {
                    if oldest_first {
                        ids.reverse();
                    }
                    ids.into_iter()
                        .map(|id| {
                            let blob = local
                                .objects
                                .find_blob(&id, buffer)
                                .map_err(|e| anyhow!("cannot read blob {id}: {e}"))?;
                            let text = String::from_utf8_lossy(blob.data);
                            Ok((id, events::read_flag("flag.yml", &text).map(Box::new)))
                        })
                        .collect()
                },
            )
            .collect::<anyhow::Result<Vec<_>>>()?;
        parsed.reserve(read.iter().map(Vec::len).sum());
        parsed.extend(read.into_iter().flatten());

        // Oldest commit first, and each commit's flags last first, as the sink's order reversed.
        let mut batch: Vec<(&walk::FlagCommit, Vec<events::Changed<'_>>)> = Vec::new();
        let mut weight = 0;
        for commit in run.iter().rev() {
            let mut changed = changed_flags(commit, &parsed, flags_dir);
            while !changed.is_empty() {
                let part = changed.split_off(changed.len().saturating_sub(part_length));
                weight += part.len();
                batch.push((commit, part));
                if weight >= window {
                    make_events(std::mem::take(&mut batch), &mut sink)?;
                    weight = 0;
                }
            }
        }
        if !batch.is_empty() {
            make_events(batch, &mut sink)?;
        }

        for commit in run.iter().rev() {
            for (path, (_, after)) in &commit.files {
                match after {
                    Some(id) if is_flag_path(path) => {
                        latest.insert(&**path, *id);
                    }
                    _ => {
                        latest.remove(&**path);
                    }
                }
            }
        }
        let kept: HashSet<&gix::ObjectId> = latest.values().collect();
        parsed.retain(|id, _| kept.contains(id));
    }
    Ok(())
}

/// Makes the events of `batch` (parts of commits, oldest first) in parallel, and hands them to
/// `sink` newest first.
fn make_events(
    batch: Vec<(&walk::FlagCommit, Vec<events::Changed<'_>>)>,
    sink: &mut impl FnMut(Vec<Vec<Event>>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use rayon::prelude::*;
    let mut made: Vec<Vec<Event>> = batch
        .into_par_iter()
        .map(|(commit, changed)| {
            let info = events::CommitInfo {
                id: commit.id.to_string(),
                author: &commit.author,
                time: commit.time,
                title: &commit.title,
                merge_request: commit.merge_request,
            };
            events::events(&info, &changed)
        })
        .collect();
    made.reverse();
    sink(made)
}

/// The flags one commit changed, by file stem, with their parsed versions.
fn changed_flags<'a>(
    commit: &walk::FlagCommit,
    parsed: &'a std::collections::HashMap<gix::ObjectId, Option<Box<events::Facts>>>,
    flags_dir: &str,
) -> Vec<events::Changed<'a>> {
    use std::collections::BTreeMap;

    let mut changed: BTreeMap<String, (Vec<events::Version<'_>>, Vec<events::Version<'_>>)> = BTreeMap::new();
    for (path, (before, after)) in &commit.files {
        if !is_flag_path(path) {
            continue;
        }
        let stem = Path::new(&**path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let shown = format!("{}/{path}", flags_dir.trim_end_matches('/'));
        let entry = changed.entry(stem).or_default();
        if let Some(id) = before {
            entry.0.push(events::Version {
                path: shown.clone(),
                flag: parsed[id].as_deref(),
            });
        }
        if let Some(id) = after {
            entry.1.push(events::Version {
                path: shown,
                flag: parsed[id].as_deref(),
            });
        }
    }
    changed.into_iter().collect()
}

fn is_flag_path(path: &str) -> bool {
    let hidden = path.split('/').any(|part| part.starts_with('.'));
    !hidden && (path.ends_with(".yml") || path.ends_with(".yaml"))
}

/// Repositories for tests, written through `git fast-import`.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;
    use std::process::{ChildStdin, Command, Stdio};

    /// Makes a repository at `dir` whose branch `main` holds what `write` streams to
    /// `git fast-import`; `write` also gets numbers below a bound, random from `seed` on.
    pub(crate) fn fast_import(
        dir: &Path,
        mut seed: u64,
        write: impl FnOnce(&mut ChildStdin, &mut dyn FnMut(usize) -> usize),
    ) {
        let status = Command::new("git")
            .args(["init", "-q", "-b", "main"])
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(status.success(), "git init");
        let mut child = Command::new("git")
            .args(["fast-import", "--quiet"])
            .current_dir(dir)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stream = child.stdin.take().unwrap();
        let mut next = |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        write(&mut stream, &mut next);
        drop(stream);
        assert!(child.wait().unwrap().success());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// A repository whose commits edit, move, break, mend, remove and bring back a handful of
    /// flags, at random, mostly one a commit.
    fn edited_repository(dir: &Path, commits: usize) {
        testing::fast_import(dir, 0x9e37_79b9_7f4a_7c15, |stream, next| {
            let names = ["alpha", "beta", "gamma", "delta", "eps"];
            let folders = ["wip", "ops"];
            // Where each flag lives, if it does.
            let mut places: [Option<&str>; 5] = [None; 5];
            for number in 0..commits {
                writeln!(
                    stream,
                    "commit refs/heads/main\ncommitter T <t@example.com> {} +0000\ndata 9\nchange {}\n",
                    1_700_000_000 + number,
                    number % 10
                )
                .unwrap();
                // Every tenth commit changes three flags at once.
                let first = next(names.len());
                for k in 0..if number % 10 == 0 { 3 } else { 1 } {
                    let i = (first + k) % names.len();
                    let folder = folders[next(folders.len())];
                    let path = |folder: &str| format!("flags/{folder}/{}.yml", names[i]);
                    let text = match next(6) {
                        0 => "name: [broken\n".to_string(),
                        choice => format!(
                            "name: {}\ndescription: Flag.\ntype: {folder}\ngroup: group::test\nmilestone: \"19.{}\"\nintroduced_by_url: https://example.com/1\ndefault_enabled: false\nenvironments:\n  production:\n    percentage_of_actors: {}\n",
                            names[i],
                            choice % 3,
                            1 + number % 90
                        ),
                    };
                    match places[i] {
                        Some(old) if next(4) == 0 => {
                            writeln!(stream, "D {}", path(old)).unwrap();
                            places[i] = None;
                        }
                        old => {
                            if let Some(old) = old.filter(|old| *old != folder) {
                                writeln!(stream, "D {}", path(old)).unwrap();
                            }
                            writeln!(stream, "M 100644 inline {}\ndata {}\n{text}", path(folder), text.len()).unwrap();
                            places[i] = Some(folder);
                        }
                    }
                }
            }
        });
    }

    // Runs of any length give the events one run of every commit gives: each file's version
    // carried from one run to the next is the one its next change starts from. Batches of any
    // size give them too, in the same order, also when they split a commit.
    #[test]
    fn events_do_not_depend_on_the_run_length_or_the_window() {
        let dir = tempfile::tempdir().unwrap();
        edited_repository(dir.path(), 120);
        let repository = gix::open(dir.path()).unwrap();
        let head = repository.head_id().unwrap().detach();
        let walk = walk::walk(&repository, head, &["flags"], None).unwrap();
        assert!(walk.commits.iter().any(|commit| commit.files.len() >= 3));
        let events = |run_length: usize, window: usize| {
            let mut batches = Vec::new();
            events_of(
                &repository,
                &walk.commits,
                "flags",
                walk.oldest_first,
                run_length,
                window,
                |batch| {
                    batches.push(batch.into_iter().flatten().collect::<Vec<_>>());
                    Ok(())
                },
            )
            .unwrap();
            assert!(batches.len() >= walk.commits.len().div_ceil(run_length));
            batches.into_iter().rev().flatten().collect::<Vec<_>>()
        };
        let whole = events(walk.commits.len(), usize::MAX);
        let count = |kind: EventKind| whole.iter().filter(|event| event.kind == kind).count();
        for kind in [
            EventKind::Created,
            EventKind::Removed,
            EventKind::Moved,
            EventKind::State,
            EventKind::Invalid,
        ] {
            assert!(count(kind) > 2, "{kind:?}: {}", count(kind));
        }
        for run_length in [1, 2, 3, 7, 50] {
            assert_eq!(events(run_length, usize::MAX), whole, "runs of {run_length}");
        }
        for (run_length, window) in [(1, 1), (7, 2), (50, 5), (50, 40)] {
            assert_eq!(
                events(run_length, window),
                whole,
                "runs of {run_length}, batches of {window}"
            );
        }
    }
}

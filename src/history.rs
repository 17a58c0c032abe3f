//! The only module that talks to git: the current commit, who is running, and the registry's
//! files as they were at a revision.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};

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
    let id = repository
        .rev_parse_single(revision)
        .map_err(|error| anyhow!("{error}"))
        .with_context(|| format!("cannot resolve the revision `{revision}`"))?;
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

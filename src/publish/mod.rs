//! Publishing a change flagops made to the registry's files: a commit on the current branch
//! (`--commit`), or a branch pushed to the remote with a merge request opened for it (`--mr`).
//!
//! It runs in two steps around the edit. `prepare`, before anything is written, refuses what
//! would leave the work half-done (a file with uncommitted changes of its own, a merge or
//! rebase in progress, no identity for the commit, no `merge_requests` section or token for
//! `--mr`) and reads everything it needs. `Pending::publish`, once the edited files are
//! written and validated, commits exactly those files.
//!
//! With `--mr` the commit is built beside the work tree (a temporary index, `git commit-tree`),
//! so the current branch never moves and no other file is touched: the commit gets a branch of
//! its own (`flagops/<flag>-<change>-<commit>`), the edited files are put back as they were,
//! the branch is pushed, and GitLab's API opens the merge request. A failed push deletes the
//! branch again; a failed API call keeps the pushed branch and says how to finish by hand.
//!
//! git is run as a program (`git.rs`), never through a shell; GitLab is called through the
//! `gitlab` backend's client (`backends::gitlab::merge_request`), which keeps the token secret.

mod git;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::backends::gitlab::client::{Client, DEFAULT_TIMEOUT, Token};
use crate::backends::gitlab::merge_request::{self, NewMergeRequest};
use crate::config::{Config, MergeRequests};
use git::Git;

/// How a change is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A commit of the edited files on the current branch.
    Commit,
    /// A branch with the commit, pushed, and a merge request for it.
    MergeRequest {
        /// Whether GitLab merges it once its pipeline succeeds.
        auto_merge: bool,
    },
}

/// A precondition that does not hold: nothing was changed, and the command exits with 1.
#[derive(Debug)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// What the commit and the merge request say.
#[derive(Debug)]
pub struct Message<'a> {
    /// The commit's first line and the merge request's title.
    pub title: &'a str,
    /// The rest of the commit message.
    pub body: &'a str,
    /// The merge request's description, in Markdown.
    pub description: &'a str,
    /// Words for the branch's name, such as the flag's name and the change.
    pub branch_words: &'a str,
}

/// What was published, as `--format json` reports it.
#[derive(Clone, Debug, Serialize)]
pub struct Published {
    /// The commit.
    pub commit: String,
    /// The branch it is on: the current one for `--commit`, a new one for `--mr`.
    pub branch: Option<String>,
    /// The remote the branch was pushed to (`--mr`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// The merge request (`--mr`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge_request: Option<Opened>,
}

/// An opened merge request.
#[derive(Clone, Debug, Serialize)]
pub struct Opened {
    /// Its number in the project.
    pub iid: u64,
    /// Its page.
    pub url: String,
    /// The branch it merges into.
    pub target_branch: String,
    /// Whether it merges when its pipeline succeeds.
    pub auto_merge: bool,
}

/// Everything `publish` needs, checked before the edit.
#[derive(Debug)]
pub struct Pending {
    git: Git,
    /// The files to commit, relative to the work tree's top, with `/`.
    files: Vec<String>,
    /// The current branch, or `None` on a detached `HEAD`.
    branch: Option<String>,
    /// `HEAD`'s commit.
    head: String,
    /// Where the merge request goes, for `--mr`.
    merge_request: Option<Target>,
}

/// The merge request's destination, for `--mr`.
#[derive(Debug)]
struct Target {
    settings: MergeRequests,
    client: Client,
    target_branch: String,
    auto_merge: bool,
}

/// Checks that the change to `files` (paths of existing files in the repository holding
/// `root`) can be published in `mode`, before they are edited.
pub fn prepare(root: &Path, files: &[PathBuf], mode: Mode, config: &Config) -> anyhow::Result<Pending> {
    let refuse = |message: String| anyhow::Error::new(Refused(message));
    let git = Git::new(root);
    let top = git.try_run(&["rev-parse", "--show-toplevel"], None, &[])?;
    if !top.ok {
        return Err(refuse(format!(
            "`--commit` and `--mr` need a git repository, and `{}` is not in one\nhelp: run `git init` and commit the registry first",
            root.display()
        )));
    }
    let top = PathBuf::from(top.stdout.trim_end());
    let git = Git::new(&top);
    let head = git.try_run(&["rev-parse", "--verify", "-q", "HEAD^{commit}"], None, &[])?;
    if !head.ok {
        return Err(refuse(
            "the repository has no commit yet\nhelp: commit the registry first".to_string(),
        ));
    }
    let head = head.stdout.trim().to_string();
    for (marker, doing) in [
        ("MERGE_HEAD", "a merge"),
        ("rebase-merge", "a rebase"),
        ("rebase-apply", "a rebase"),
        ("CHERRY_PICK_HEAD", "a cherry-pick"),
        ("REVERT_HEAD", "a revert"),
    ] {
        let path = git.run(&["rev-parse", "--git-path", marker])?;
        if top.join(&path).exists() {
            return Err(refuse(format!(
                "{doing} is in progress in the repository\nhelp: finish or abort it first, then run the command again"
            )));
        }
    }
    for ident in ["GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"] {
        if !git.succeeds(&["-c", "user.useConfigOnly=true", "var", ident])? {
            return Err(refuse(
                "git has no identity to commit with\nhelp: set it with `git config user.name \"Your Name\"` and `git config user.email you@example.com`".to_string(),
            ));
        }
    }
    let mut relative = Vec::new();
    for file in files {
        let absolute =
            std::fs::canonicalize(file).with_context(|| format!("failed to resolve `{}`", file.display()))?;
        let inside = absolute.strip_prefix(&top).map_err(|_| {
            refuse(format!(
                "`{}` is not inside the git repository at `{}`",
                file.display(),
                top.display()
            ))
        })?;
        let path = inside
            .to_str()
            .ok_or_else(|| refuse(format!("`{}` is not a UTF-8 path", file.display())))?
            .to_string();
        if !git.succeeds(&["--literal-pathspecs", "ls-files", "--error-unmatch", "--", &path])? {
            return Err(refuse(format!(
                "`{path}` is not committed in git\nhelp: commit it first, so the change is all that is published"
            )));
        }
        let status = git.run(&["--literal-pathspecs", "status", "--porcelain=v1", "--", &path])?;
        if !status.is_empty() {
            return Err(refuse(format!(
                "`{path}` has uncommitted changes of its own\nhelp: commit or stash them first, so the change is all that is published"
            )));
        }
        relative.push(path);
    }
    let branch = git.try_run(&["symbolic-ref", "-q", "--short", "HEAD"], None, &[])?;
    let branch = branch.ok.then(|| branch.stdout.trim().to_string());
    let merge_request = match mode {
        Mode::Commit => None,
        Mode::MergeRequest { auto_merge } => Some(target(&git, config, auto_merge).map_err(refuse)?),
    };
    Ok(Pending {
        git,
        files: relative,
        branch,
        head,
        merge_request,
    })
}

impl Pending {
    /// Commits the files, and for `--mr` pushes the commit's branch and opens its merge request.
    pub fn publish(self, message: &Message<'_>) -> anyhow::Result<Published> {
        let text = commit_message(message);
        match &self.merge_request {
            None => self.commit(&text),
            Some(target) => self.merge_request(target, message, &text),
        }
    }

    /// `git commit --only`: exactly the files, on the current branch, with its hooks.
    fn commit(&self, text: &str) -> anyhow::Result<Published> {
        let mut args = vec!["--literal-pathspecs", "commit", "-q", "--only", "-F", "-", "--"];
        args.extend(self.files.iter().map(String::as_str));
        self.git.run_with(&args, Some(text), &[]).with_context(|| {
            format!(
                "the change is written to `{}` but not committed",
                self.files.join("`, `")
            )
        })?;
        let commit = self.git.run(&["rev-parse", "HEAD"])?;
        Ok(Published {
            commit,
            branch: self.branch.clone(),
            remote: None,
            merge_request: None,
        })
    }

    /// The commit on a new branch, pushed, and its merge request.
    fn merge_request(&self, target: &Target, message: &Message<'_>, text: &str) -> anyhow::Result<Published> {
        let commit = self.commit_beside(text).with_context(|| {
            format!(
                "the change is written to `{}` but not published",
                self.files.join("`, `")
            )
        })?;
        let remote = &target.settings.remote;
        let branch = self.unused_branch(&branch_name(message.branch_words, &commit), remote)?;
        if !self.git.succeeds(&["check-ref-format", "--branch", &branch])? {
            self.restore()?;
            anyhow::bail!("`{branch}` is not a valid branch name");
        }
        self.git.run(&["branch", "--no-track", &branch, &commit])?;
        // The change now lives on the branch; the work tree goes back to `HEAD`'s files.
        self.restore()?;
        let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
        let pushed = self
            .git
            .try_run(&["push", "--set-upstream", remote, &refspec], None, &[])?;
        if !pushed.ok {
            let deleted = self.git.succeeds(&["branch", "-D", &branch])?;
            let local = if deleted {
                "the local branch is deleted"
            } else {
                "the local branch could not be deleted"
            };
            anyhow::bail!(
                "could not push `{branch}` to `{remote}`, so nothing is published: {local} and `{}` is as it was\ngit said: {}",
                self.files.join("`, `"),
                pushed.stderr
            );
        }
        let by_hand = by_hand_url(&target.settings, &pushed.stderr, &branch, &target.target_branch);
        let request = NewMergeRequest {
            source_branch: &branch,
            target_branch: &target.target_branch,
            title: message.title,
            description: message.description,
            labels: &target.settings.labels,
        };
        let project = &target.settings.project;
        let opened = merge_request::open(&target.client, project, &request).map_err(|error| {
            let open = by_hand.as_deref().map_or_else(String::new, |url| {
                format!("\nhelp: open the merge request in a browser: {url}")
            });
            anyhow::anyhow!(
                "`{branch}` is pushed to `{remote}`, but GitLab did not open its merge request: {error}{open}\nhelp: or fix the cause and run the command again, which pushes a new branch; then delete this one with `git push {remote} --delete {branch}` and `git branch -D {branch}`"
            )
        })?;
        if target.auto_merge {
            let retry = crate::sync::RetryPolicy::default();
            let outcome = crate::sync::retrying(&retry, "setting auto-merge", || {
                merge_request::set_auto_merge(&target.client, project, opened.iid)
            });
            if let Err(error) = outcome {
                let note = format!(
                    "flagops was asked to set this merge request to auto-merge, and GitLab refused: {}",
                    crate::escape::markdown(&error.to_string())
                );
                // The note tells the reviewers; the error below tells whoever ran the command.
                let _ = merge_request::note(&target.client, project, opened.iid, &note);
                anyhow::bail!(
                    "merge request !{} is open at {}, but it is not set to auto-merge: {error}\nhelp: select \"Set to auto-merge\" on its page once its pipeline has started",
                    opened.iid,
                    opened.web_url
                );
            }
        }
        Ok(Published {
            commit,
            branch: Some(branch),
            remote: Some(remote.clone()),
            merge_request: Some(Opened {
                iid: opened.iid,
                url: opened.web_url,
                target_branch: target.target_branch.clone(),
                auto_merge: target.auto_merge,
            }),
        })
    }

    /// A commit of the files as they are in the work tree on top of `HEAD`, built in a
    /// temporary index, so that neither the branch nor the index moves.
    fn commit_beside(&self, text: &str) -> anyhow::Result<String> {
        let folder = tempfile::tempdir().context("failed to create a temporary folder")?;
        let index = folder.path().join("index");
        let index = index
            .to_str()
            .context("the temporary folder's path is not UTF-8")?
            .to_string();
        let environment = [("GIT_INDEX_FILE", index.as_str())];
        self.git.run_with(&["read-tree", &self.head], None, &environment)?;
        let mut add = vec!["--literal-pathspecs", "add", "--"];
        add.extend(self.files.iter().map(String::as_str));
        self.git.run_with(&add, None, &environment)?;
        let tree = self.git.run_with(&["write-tree"], None, &environment)?;
        self.git
            .run_with(&["commit-tree", &tree, "-p", &self.head, "-F", "-"], Some(text), &[])
    }

    /// `name`, or `name-2`, `name-3` and so on: the first that is neither a local branch nor a
    /// branch the remote is known to have. The same change made twice in one second is the
    /// same commit, and so would get the same name.
    fn unused_branch(&self, name: &str, remote: &str) -> anyhow::Result<String> {
        for number in 1.. {
            let candidate = if number == 1 {
                name.to_string()
            } else {
                format!("{name}-{number}")
            };
            let local = format!("refs/heads/{candidate}");
            let tracking = format!("refs/remotes/{remote}/{candidate}");
            if !self.git.succeeds(&["show-ref", "--verify", "-q", &local])?
                && !self.git.succeeds(&["show-ref", "--verify", "-q", &tracking])?
            {
                return Ok(candidate);
            }
        }
        unreachable!("some number is unused")
    }

    /// Puts the files back as `HEAD` has them, which is how they were before the edit.
    fn restore(&self) -> anyhow::Result<()> {
        let mut args = vec!["--literal-pathspecs", "checkout", "-q", &self.head, "--"];
        args.extend(self.files.iter().map(String::as_str));
        self.git.run(&args).map(|_| ())
    }
}

/// The merge request's settings, token and target branch, or why `--mr` cannot run.
fn target(git: &Git, config: &Config, auto_merge: bool) -> Result<Target, String> {
    let Some(settings) = config.merge_requests.clone() else {
        return Err("`--mr` needs a `merge_requests` section in flagops.yml\nhelp: add one such as\n  merge_requests:\n    url: https://gitlab.example.com\n    project: group/flag-registry\n    token_env: FLAGOPS_MR_TOKEN".to_string());
    };
    let token = match std::env::var(&settings.token_env) {
        Ok(value) if !value.trim().is_empty() => Token::new(value.trim().to_string()),
        _ => {
            return Err(format!(
                "`--mr` reads its GitLab token from `{0}`, which is not set\nhelp: set `{0}` to an access token with the `api` scope and the Developer role in `{1}`",
                settings.token_env, settings.project
            ));
        }
    };
    let remote = &settings.remote;
    if !git
        .succeeds(&["remote", "get-url", "--", remote])
        .map_err(|error| format!("{error:#}"))?
    {
        return Err(format!(
            "the repository has no remote `{remote}` to push to\nhelp: add it with `git remote add {remote} URL`, or name another in `merge_requests.remote`"
        ));
    }
    let target_branch = match &settings.target_branch {
        Some(branch) => branch.clone(),
        None => git
            .try_run(
                &["symbolic-ref", "-q", "--short", &format!("refs/remotes/{remote}/HEAD")],
                None,
                &[],
            )
            .ok()
            .filter(|ran| ran.ok)
            .and_then(|ran| {
                ran.stdout
                    .trim()
                    .strip_prefix(&format!("{remote}/"))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "main".to_string()),
    };
    let timeout = settings.timeout_seconds.map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let client = Client::new(&settings.url, token, &settings.token_env, timeout);
    Ok(Target {
        auto_merge: auto_merge || settings.auto_merge,
        settings,
        client,
        target_branch,
    })
}

/// The commit message: the title, a blank line and the body, each on lines of their own.
fn commit_message(message: &Message<'_>) -> String {
    let title = crate::escape::one_line(message.title);
    let body = crate::escape::terminal(message.body);
    format!("{}\n\n{}\n", title.trim(), body.trim_end())
}

/// `flagops/<words>-<commit>`: the words reduced to lowercase letters, digits, `_` and `-`, cut
/// to at most 60 characters at a word's end, then the commit's first eight digits.
fn branch_name(words: &str, commit: &str) -> String {
    let mut slug = String::new();
    for character in words.chars().flat_map(char::to_lowercase) {
        if character.is_ascii_alphanumeric() || character == '_' {
            slug.push(character);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut slug = slug.trim_matches('-');
    if slug.len() > 60 {
        // Cut at the last word that fits: the slug is ASCII, so any byte is a boundary.
        slug = &slug[..60];
        if let Some(end) = slug.rfind('-') {
            slug = &slug[..end];
        }
    }
    let short = &commit[..commit.len().min(8)];
    if slug.is_empty() {
        format!("flagops/{short}")
    } else {
        format!("flagops/{slug}-{short}")
    }
}

/// Where the merge request can be opened by hand: the page GitLab's push printed, or the
/// project's new merge request page when the project is named by path.
fn by_hand_url(settings: &MergeRequests, push_output: &str, branch: &str, target_branch: &str) -> Option<String> {
    let printed = push_output
        .lines()
        .filter_map(|line| line.trim_start_matches("remote:").split_whitespace().last())
        .find(|word| word.starts_with("http") && word.contains("merge_requests"));
    if let Some(url) = printed {
        return Some(crate::escape::redact_url(url).into_owned());
    }
    if settings.project.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let encode = |text: &str| crate::backends::gitlab::client::segment(text);
    Some(format!(
        "{}/{}/-/merge_requests/new?merge_request%5Bsource_branch%5D={}&merge_request%5Btarget_branch%5D={}",
        crate::escape::redact_url(settings.url.trim_end_matches('/')),
        settings.project,
        encode(branch),
        encode(target_branch)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_name_is_a_slug_with_the_commit() {
        assert_eq!(
            branch_name("my_flag production 50% of actors", "0123456789abcdef"),
            "flagops/my_flag-production-50-of-actors-01234567"
        );
        assert_eq!(
            branch_name("$(rm -rf /); `x`", "abcdef0123"),
            "flagops/rm-rf-x-abcdef01"
        );
        assert_eq!(branch_name("…", "abcdef0123"), "flagops/abcdef01");
        assert!(branch_name(&"a".repeat(500), "abcdef0123").len() < 80);
        assert_eq!(
            branch_name(
                "code_suggestions_open_tabs_context production 50% of actors, group:gitlab-com",
                "3f2a9c1d0b7e"
            ),
            "flagops/code_suggestions_open_tabs_context-production-50-of-actors-3f2a9c1d"
        );
    }
}

//! `--commit`, `--mr` and `--auto-merge` for the commands that edit files: the mode they ask
//! for, who asked (from GitLab CI's variables, for merge requests opened from ChatOps), and
//! what was published, in words.

use crate::cli::PublishArgs;
use crate::publish::{Mode, Published};

/// The mode the options ask for, or `None` to leave the edited files uncommitted.
pub(super) fn mode(args: &PublishArgs) -> Option<Mode> {
    if args.mr {
        Some(Mode::MergeRequest {
            auto_merge: args.auto_merge,
        })
    } else if args.commit {
        Some(Mode::Commit)
    } else {
        None
    }
}

/// Who asked for the change, as a Markdown line for the commit and the merge request: the
/// GitLab user a pipeline runs for (`GITLAB_USER_LOGIN`, which ChatOps sets to the user who
/// ran the command) and the chat user (`CHAT_USER_ID`), when they look like names.
pub(super) fn requested_by() -> Option<String> {
    let variable = |name: &str| {
        std::env::var(name).ok().filter(|value| {
            !value.is_empty()
                && value.len() <= 255
                && value.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        })
    };
    match (variable("GITLAB_USER_LOGIN"), variable("CHAT_USER_ID")) {
        (Some(login), Some(chat)) => Some(format!("Requested by @{login} (chat user `{chat}`) through ChatOps.")),
        (Some(login), None) => Some(format!("Requested by @{login}.")),
        (None, Some(chat)) => Some(format!("Requested by chat user `{chat}` through ChatOps.")),
        (None, None) => None,
    }
}

/// What was published, one line each.
pub(super) fn describe(published: &Published) -> String {
    let short = &published.commit[..published.commit.len().min(12)];
    match (&published.merge_request, &published.branch, &published.remote) {
        (Some(opened), Some(branch), Some(remote)) => {
            let mut text = format!(
                "pushed {short} to `{remote}` as branch `{branch}`\nopened merge request !{} into `{}`: {}\n",
                opened.iid, opened.target_branch, opened.url
            );
            if opened.auto_merge {
                text.push_str("it merges when its pipeline succeeds\n");
            }
            text.push_str("the work tree is as it was: the change is only on that branch\n");
            text
        }
        (_, Some(branch), _) => format!("committed {short} on `{branch}`\n"),
        _ => format!("committed {short} (detached HEAD)\n"),
    }
}

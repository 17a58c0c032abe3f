//! `flagops history`.

use std::fmt::Write as _;

use crate::ExitStatus;
use crate::cli::{HistoryArgs, ReportFormat};
use crate::escape;
use crate::history::Event;
use crate::load::Workspace;

pub(super) fn run(workspace: &Workspace, args: HistoryArgs) -> anyhow::Result<ExitStatus> {
    let (config, _) = super::read_config(workspace)?;
    let cache = workspace.resolve(&config.cache_dir).join("history.jsonl");
    let (history, _) =
        crate::history::load_history(&workspace.root, &config.flags_dir, Some(&cache), Some(&args.name))?;
    let events: Vec<&Event> = history.events.iter().filter(|event| event.flag == args.name).collect();
    if history.head.is_none() {
        if !crate::history::is_repository(&workspace.root) {
            anyhow::bail!(
                "the registry at `{}` is not in a git repository, so `{}` has no history\nhelp: history is read from git commits: run `flagops history` in a clone of the registry",
                workspace.root.display(),
                args.name
            );
        }
        anyhow::bail!(
            "the branch checked out at `{}` has no commit yet, so `{}` has no history\nhelp: history is read from committed files: commit the registry first",
            workspace.root.display(),
            args.name
        );
    }
    if events.is_empty() {
        anyhow::bail!(
            "no history for `{}` on this branch\nhelp: check the name; history is read from committed files",
            args.name
        );
    }
    let text = match args.format {
        ReportFormat::Json => serde_json::to_string_pretty(&events)? + "\n",
        ReportFormat::Human => human(&events, config.site.repository_url.as_deref()),
    };
    super::print(&text)?;
    Ok(ExitStatus::Success)
}

/// Events grouped by commit: the commit, its time and author, its title and merge request (a
/// link when `repository_url` is known), then each event.
pub(super) fn human(events: &[&Event], repository_url: Option<&str>) -> String {
    let repository = repository_url.map(|url| url.trim_end_matches('/'));
    let mut out = String::new();
    let mut last_commit = "";
    for event in events {
        if event.commit != last_commit {
            let time = jiff::Timestamp::from_second(event.time)
                .map(|t| t.to_string())
                .unwrap_or_default();
            let reference = match (event.merge_request, repository) {
                (Some(number), Some(url)) => format!(" ({url}/-/merge_requests/{number})"),
                (Some(number), None) => format!(" (!{number})"),
                _ => String::new(),
            };
            // Author names and titles come from commits: each stays on its line.
            let short: String = event.commit.chars().take(12).collect();
            let _ = writeln!(
                out,
                "{} {time} {}\n  {}{reference}",
                escape::one_line(&short),
                escape::one_line(&event.author),
                escape::one_line(&event.title)
            );
            last_commit = &event.commit;
        }
        let _ = writeln!(out, "    {}", escape::one_line(&event.text));
    }
    out
}

//! `flagops show`: everything about one flag on one screen.
//!
//! It adds nothing of its own: each environment is read as `status` reads it
//! (`status::observe`), the rollout plan is `rollout`'s view, the last changes are `history`'s
//! events, and requirements come from the registry.

use std::fmt::Write as _;

use serde::Serialize;

use super::rollout::RolloutView;
use crate::ExitStatus;
use crate::cli::{ReportFormat, ShowArgs};
use crate::escape;
use crate::history::Event;
use crate::load::Workspace;
use crate::model::{Flag, Registry};
use crate::state::Stored;

/// Everything `show` prints, as `--format json` prints it.
#[derive(Serialize)]
struct ShowView<'a> {
    flag: &'a str,
    file: String,
    at: String,
    definition: Definition<'a>,
    environments: Vec<EnvironmentView>,
    rollout: RolloutView,
    requires: &'a [String],
    required_by: Vec<&'a str>,
    history: HistoryView,
}

/// The flag's definition, as its file writes it.
#[derive(Serialize)]
struct Definition<'a> {
    #[serde(rename = "type")]
    flag_type: &'a str,
    group: &'a str,
    owners: &'a [String],
    milestone: &'a str,
    introduced_by_url: &'a str,
    rollout_issue_url: Option<&'a str>,
    feature_issue_url: Option<&'a str>,
    intended_to_rollout_by: Option<&'a str>,
    default_enabled: bool,
    description: &'a str,
}

/// One environment: what the registry wants, what the backend holds, and how they compare.
#[derive(Serialize)]
struct EnvironmentView {
    environment: String,
    /// The desired state, as the flag file writes it (absent: null).
    desired: Option<Stored>,
    /// What the backend holds, as it reports it (absent or unreadable: null).
    actual: Option<Stored>,
    /// `in sync`, `pending`, `drifted` or `unreadable`.
    standing: &'static str,
    /// Why the backend cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// The flag's last changes, or why there are none to show.
#[derive(Serialize)]
struct HistoryView {
    /// Why the history cannot be read (not in git, a shallow clone).
    #[serde(skip_serializing_if = "Option::is_none")]
    unavailable: Option<String>,
    /// The events of the last commits that changed the flag, newest first.
    events: Vec<Event>,
}

pub(super) fn run(workspace: &Workspace, args: ShowArgs) -> anyhow::Result<ExitStatus> {
    super::finish(show(workspace, args))
}

fn show(workspace: &Workspace, args: ShowArgs) -> anyhow::Result<ExitStatus> {
    let Some(registry) = super::load_valid(workspace, "showing the flag")? else {
        return Ok(ExitStatus::Failure);
    };
    let name = args.name.trim_matches('`').to_string();
    let file = super::flag_file(&registry, &name)?;
    let chosen = super::named_environments(&registry, args.environments.clone(), &[])?;
    let at = super::parse_at(args.at.as_deref())?;
    let flag = &file.flag;
    let head = crate::history::head_commit(&workspace.root);

    let environments = chosen
        .iter()
        .map(|environment| {
            let desired = crate::resolve::desired_flag(flag, environment, at);
            match super::status::observe(workspace, &registry, head.as_deref(), environment, at) {
                Ok(observed) => {
                    let status = &observed.status;
                    let standing = if status.drifted.iter().any(|entry| entry.flag == name) {
                        "drifted"
                    } else if status.pending.iter().any(|entry| entry.flag == name) {
                        "pending"
                    } else if status.without_entry.iter().any(|entry| entry.flag == name) {
                        "kept: no entry"
                    } else {
                        "in sync"
                    };
                    EnvironmentView {
                        environment: environment.clone(),
                        desired,
                        actual: observed.actual.get(&name).cloned(),
                        standing,
                        reason: None,
                    }
                }
                Err(error) => EnvironmentView {
                    environment: environment.clone(),
                    desired,
                    actual: None,
                    standing: "unreadable",
                    reason: Some(escape::one_line(&format!("{error:#}")).into_owned()),
                },
            }
        })
        .collect();

    let view = ShowView {
        flag: &name,
        file: file.path.display().to_string(),
        at: at.to_string(),
        definition: definition(flag),
        environments,
        rollout: super::rollout::view(&registry, flag, at),
        requires: &flag.requires,
        required_by: required_by(&registry, &name),
        history: history(workspace, &registry, &name, head.is_some(), args.changes),
    };
    let text = match args.format {
        ReportFormat::Json => serde_json::to_string_pretty(&view)? + "\n",
        ReportFormat::Human => human(&view, registry.config.site.repository_url.as_deref()),
    };
    super::print(&text)?;
    Ok(ExitStatus::Success)
}

fn definition(flag: &Flag) -> Definition<'_> {
    Definition {
        flag_type: &flag.flag_type,
        group: &flag.group,
        owners: &flag.owners,
        milestone: &flag.milestone,
        introduced_by_url: &flag.introduced_by_url,
        rollout_issue_url: flag.rollout_issue_url.as_deref(),
        feature_issue_url: flag.feature_issue_url.as_deref(),
        intended_to_rollout_by: flag.intended_to_rollout_by.as_deref(),
        default_enabled: flag.default_enabled,
        description: &flag.description,
    }
}

/// The flags whose `requires` names `name`.
fn required_by<'a>(registry: &'a Registry, name: &str) -> Vec<&'a str> {
    let mut names: Vec<&str> = registry
        .flags
        .iter()
        .filter(|file| file.flag.requires.iter().any(|required| required == name))
        .map(|file| file.flag.name.as_str())
        .collect();
    names.sort_unstable();
    names
}

/// The events of the last `commits` commits that changed the flag; outside git, or when the
/// history cannot be read, why.
fn history(workspace: &Workspace, registry: &Registry, name: &str, in_git: bool, commits: usize) -> HistoryView {
    if !in_git {
        return HistoryView {
            unavailable: Some("the registry is not in a git repository".to_string()),
            events: Vec::new(),
        };
    }
    let config = &registry.config;
    let cache = workspace.resolve(&config.cache_dir).join("history.jsonl");
    match crate::history::load_history(&workspace.root, &config.flags_dir, Some(&cache), Some(name)) {
        Ok((history, _)) => {
            let mut seen = Vec::new();
            let events = history
                .events
                .into_iter()
                .filter(|event| event.flag == name)
                .take_while(|event| {
                    if !seen.contains(&event.commit) {
                        seen.push(event.commit.clone());
                    }
                    seen.len() <= commits
                })
                .collect();
            HistoryView {
                unavailable: None,
                events,
            }
        }
        Err(error) => HistoryView {
            unavailable: Some(format!("{error:#}").lines().next().unwrap_or_default().to_string()),
            events: Vec::new(),
        },
    }
}

fn human(view: &ShowView<'_>, repository_url: Option<&str>) -> String {
    let mut out = String::new();
    let definition = &view.definition;
    let _ = writeln!(out, "{} ({})", view.flag, view.file);
    let mut field = |key: &str, value: &str| {
        let _ = writeln!(out, "  {key:<22} {}", escape::one_line(value));
    };
    field("type", definition.flag_type);
    field("group", definition.group);
    if !definition.owners.is_empty() {
        field("owners", &definition.owners.join(" "));
    }
    field("milestone", definition.milestone);
    field("default_enabled", &definition.default_enabled.to_string());
    field("introduced_by", definition.introduced_by_url);
    if let Some(url) = definition.rollout_issue_url {
        field("rollout issue", url);
    }
    if let Some(url) = definition.feature_issue_url {
        field("feature issue", url);
    }
    if let Some(date) = definition.intended_to_rollout_by {
        field("intended_to_rollout_by", date);
    }
    // A description may hold line breaks: each line is indented under the flag.
    for line in definition.description.lines() {
        let _ = writeln!(out, "  | {line}");
    }

    let _ = writeln!(out, "\nstate at {}:", crate::plan::render::time(&view.at));
    let rows: Vec<[String; 4]> = view
        .environments
        .iter()
        .map(|row| {
            let actual = match &row.reason {
                Some(reason) => format!("unreadable: {reason}"),
                None => crate::plan::show(row.actual.as_ref()),
            };
            let mark = match row.standing {
                "unreadable" => String::new(),
                standing => standing.to_string(),
            };
            [
                row.environment.clone(),
                crate::plan::show(row.desired.as_ref()),
                escape::one_line(&actual).into_owned(),
                mark,
            ]
        })
        .collect();
    let header = ["environment", "desired", "actual", ""].map(str::to_string);
    let widths: Vec<usize> = (0..3)
        .map(|column| {
            std::iter::once(&header)
                .chain(&rows)
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "  {:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if view.environments.iter().any(|row| row.standing == "drifted") {
        out.push_str(
            "  drifted: changed outside git; `flagops sync` restores the registry's state, `flagops adopt` writes the environment's into the file\n",
        );
    }
    if view.environments.iter().any(|row| row.standing == "pending") {
        out.push_str("  pending: changed in git, not synced yet; `flagops sync` applies it\n");
    }

    out.push_str("\nrollout:\n");
    for line in super::rollout::steps_human(&view.rollout).lines() {
        let _ = writeln!(out, "  {line}");
    }

    out.push_str("\nrequires: ");
    out.push_str(&list(view.requires.iter().map(String::as_str)));
    out.push_str("\nrequired by: ");
    out.push_str(&list(view.required_by.iter().copied()));
    out.push('\n');

    out.push_str("\nlast changes:\n");
    match &view.history.unavailable {
        Some(reason) => {
            let _ = writeln!(out, "  not available: {}", escape::one_line(reason));
        }
        None if view.history.events.is_empty() => out.push_str("  none committed yet\n"),
        None => {
            let events: Vec<&Event> = view.history.events.iter().collect();
            for line in super::history::human(&events, repository_url).lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
    out
}

/// Names separated by commas, or `none`.
fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

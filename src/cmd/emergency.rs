//! `flagops set ... --emergency` (break glass) and `flagops release`.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::ExitStatus;
use crate::cli::{ReleaseArgs, ReportFormat, SetArgs};
use crate::emergency::{EnvironmentOutcome, Released, Settings};
use crate::load::Workspace;
use crate::model::{Registry, State};
use crate::plan::show;
use crate::publish::{Pending, Published};
use crate::state::Stored;

/// The file edit `set` made and validated, which the emergency keeps or puts back.
pub(super) struct Edit<'a> {
    pub(super) name: &'a str,
    pub(super) shown: &'a str,
    /// The edit as written, put back when no environment took the change.
    pub(super) written: &'a [super::write::Edit],
    pub(super) changes: &'a [(String, Option<State>, Option<State>)],
    pub(super) unchanged: &'a [String],
    pub(super) notes: &'a str,
    /// The desired state before and after the edit, for the merge request.
    pub(super) plans: &'a [crate::plan::Plan],
}

/// What `set --emergency` did, as `--format json` prints it.
#[derive(Serialize)]
struct EmergencyReport<'a> {
    flag: &'a str,
    file: &'a str,
    written: bool,
    reason: &'a str,
    environments: &'a [EnvironmentOutcome],
    /// The commit, branch and merge request, with `--commit` or `--mr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    published: Option<&'a Published>,
}

/// Refuses `--emergency` without a reason, and a reason without `--emergency`.
pub(super) fn check_request(emergency: bool, reason: Option<&str>) -> Result<(), String> {
    match (emergency, reason) {
        (true, None) => Err(
            "`--emergency` needs `--reason TEXT`: why the change cannot wait for review\nhelp: such as `--emergency --reason \"INC-123: errors\"`; it is recorded in the audit records and the holds".to_string(),
        ),
        (true, Some(reason)) if reason.trim().is_empty() => Err(
            "`--reason` is empty\nhelp: say why the change cannot wait for review, such as `--reason \"INC-123: errors\"`".to_string(),
        ),
        (true, Some(reason)) if reason.chars().any(char::is_control) => Err(format!(
            "`--reason` holds a control character: `{}`\nhelp: give the reason on one line",
            reason.escape_debug()
        )),
        (false, Some(_)) => Err(
            "`--reason` goes with `--emergency`\nhelp: a reviewed change needs no reason here: its merge request says why".to_string(),
        ),
        _ => Ok(()),
    }
}

/// Applies the edited flag's change to the named environments at once and holds it; keeps the
/// file edit when at least one environment took the change, and puts the file back otherwise.
/// With `pending` (`--commit` or `--mr`), then publishes the edit, and records the merge
/// request's address in the holds.
pub(super) fn set(
    workspace: &Workspace,
    before: &Registry,
    edit: &Edit<'_>,
    pending: Option<Pending>,
    args: &SetArgs,
) -> anyhow::Result<ExitStatus> {
    let reason = args.reason.clone().unwrap_or_default();
    let settings = Settings {
        by: crate::history::identity(&workspace.root),
        commit: crate::history::head_commit(&workspace.root),
        reason: reason.clone(),
        merge_request: None,
        retry: crate::sync::RetryPolicy::default(),
        lock_timeout: Duration::from_secs(args.lock_timeout),
    };
    // Every named environment gets the state asked for, in promotion order: the changed ones
    // and those whose file entry already says it.
    let file = before.flags.iter().find(|file| file.flag.name == edit.name);
    let mut states: Vec<(String, Option<Stored>)> = edit
        .changes
        .iter()
        .map(|(environment, _, new)| (environment.clone(), new.as_ref().map(Stored::from_model)))
        .chain(edit.unchanged.iter().map(|environment| {
            let state = file.and_then(|file| file.flag.environments.get(environment));
            (environment.clone(), state.map(Stored::from_model))
        }))
        .collect();
    let order: Vec<&str> = before.config.environment_names().collect();
    states.sort_by_key(|(environment, _)| order.iter().position(|name| name == environment));
    let mut outcomes = crate::emergency::apply(&workspace.root, before, edit.name, &states, &settings)?;
    let applied = outcomes.iter().filter(|outcome| outcome.succeeded()).count();
    let written = applied > 0;
    if !written {
        super::write::put_back(workspace, &before.config, edit.written)?;
    }
    // Publishing comes after the environments took the change: an emergency does not wait for
    // git, and a failure here leaves the change applied and held.
    let mut published = None;
    let mut unpublished = None;
    let mut unrecorded = Vec::new();
    if let Some(pending) = pending.filter(|_| written) {
        let lead = lead(edit.name, &reason, &outcomes);
        match super::set::publish(pending, edit.name, edit.shown, edit.changes, edit.plans, Some(&lead)) {
            Ok(done) => {
                if let Some(opened) = &done.merge_request {
                    unrecorded = crate::emergency::record_merge_request(
                        &workspace.root,
                        &before.config,
                        edit.name,
                        &mut outcomes,
                        &opened.url,
                        &settings,
                    );
                }
                published = Some(done);
            }
            Err(error) => unpublished = Some(error),
        }
    }
    if args.format == ReportFormat::Json {
        let report = EmergencyReport {
            flag: edit.name,
            file: edit.shown,
            written,
            reason: &reason,
            environments: &outcomes,
            published: published.as_ref(),
        };
        super::print(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        let mut out = human(edit, &outcomes, written, published.as_ref(), unpublished.is_some());
        for (environment, why) in &unrecorded {
            let _ = writeln!(
                out,
                "could not record the merge request in the hold in {environment}: {}",
                crate::escape::one_line(why)
            );
        }
        super::print(&out)?;
    }
    if let Some(error) = unpublished {
        let held: Vec<&str> = outcomes
            .iter()
            .filter(|outcome| outcome.succeeded())
            .map(|outcome| outcome.environment.as_str())
            .collect();
        return Err(error.context(format!(
            "the emergency change to `{}` is applied and held in {}, and stays so, but it is not published: no merge request brings git in line yet\nhelp: finish publishing as the cause below says; when nothing was published, put `{}` back as git has it (`git checkout -- FILE`) and run the same command again: the environments already hold the change, so it only renews the holds and publishes the edit",
            edit.name,
            held.join(", "),
            edit.shown
        )));
    }
    Ok(if applied == outcomes.len() && unrecorded.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Error
    })
}

/// What the commit and the merge request of an emergency change say first: that it is one, why,
/// and where the flag is held.
fn lead(name: &str, reason: &str, outcomes: &[EnvironmentOutcome]) -> super::set::Lead {
    use crate::escape::{markdown, markdown_code};
    let mut text = format!(
        "An emergency change, applied to the environments at once by `flagops set --emergency`.\nReason: {reason}\n"
    );
    let mut markdown_text = format!(
        "**Emergency change**, applied to the environments at once by `flagops set --emergency`.\n\n**Reason:** {}\n",
        markdown(reason)
    );
    let held: Vec<&EnvironmentOutcome> = outcomes.iter().filter(|outcome| outcome.hold.is_some()).collect();
    if !held.is_empty() {
        let _ = writeln!(
            text,
            "\nHeld until this change reaches the default branch; syncs leave `{name}` as it is there, and the first sync after the merge releases the holds:"
        );
        let _ = writeln!(
            markdown_text,
            "\nHeld until this merge request reaches the default branch; syncs leave {} as it is there, and the first sync after the merge releases the holds:\n",
            markdown_code(name)
        );
        for outcome in held {
            let hold = outcome.hold.as_ref().map(crate::hold::describe).unwrap_or_default();
            let _ = writeln!(text, "  {}: {hold}", outcome.environment);
            let _ = writeln!(
                markdown_text,
                "- {}: {}",
                markdown(&outcome.environment),
                markdown(&hold)
            );
        }
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|outcome| !outcome.succeeded())
        .map(|outcome| outcome.environment.as_str())
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(
            text,
            "\nNot applied in {}: the sync after the merge applies it there.",
            failed.join(", ")
        );
        let _ = writeln!(
            markdown_text,
            "\nNot applied in {}: the sync after the merge applies it there.",
            markdown(&failed.join(", "))
        );
    }
    super::set::Lead {
        kind: "Emergency".to_string(),
        text,
        markdown: markdown_text,
    }
}

fn human(
    edit: &Edit<'_>,
    outcomes: &[EnvironmentOutcome],
    written: bool,
    published: Option<&Published>,
    unpublished: bool,
) -> String {
    let mut out = String::from("emergency change:\n");
    for outcome in outcomes {
        let environment = &outcome.environment;
        match (&outcome.error, &outcome.applied, &outcome.hold) {
            (Some(error), _, _) => {
                let _ = writeln!(out, "  {environment}: FAILED, not changed");
                for line in error.lines() {
                    let _ = writeln!(out, "    {}", crate::escape::one_line(line));
                }
            }
            (None, Some(change), _) => {
                let _ = writeln!(
                    out,
                    "  {environment}: applied {}",
                    crate::escape::one_line(&change.to_string())
                );
            }
            (None, None, hold) => {
                let state = show(hold.as_ref().and_then(|hold| hold.state.as_ref()));
                let _ = writeln!(out, "  {environment}: already {state}");
            }
        }
        if let Some(window) = &outcome.freeze {
            let _ = writeln!(
                out,
                "    inside the change freeze `{window}`: applied anyway, as an emergency"
            );
        }
        if let Some(hold) = &outcome.hold {
            let _ = writeln!(
                out,
                "    {}; syncs leave it until a reviewed change to `{}` reaches the registry",
                crate::escape::one_line(&crate::hold::describe(hold)),
                edit.name
            );
        }
        if let Some(delivery) = &outcome.notifications {
            for line in super::notify::lines(delivery) {
                let _ = writeln!(out, "  {}", crate::escape::one_line(&line));
            }
        }
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|outcome| !outcome.succeeded())
        .map(|outcome| outcome.environment.as_str())
        .collect();
    if !written {
        let _ = writeln!(
            out,
            "\nno environment took the change: `{}` is unchanged\nhelp: fix the cause above and run the command again",
            edit.shown
        );
        return out;
    }
    let _ = writeln!(out, "\nedited {}:", edit.shown);
    for (environment, old, new) in edit.changes {
        let _ = writeln!(
            out,
            "  {environment}: {} → {}",
            show(old.as_ref().map(Stored::from_model).as_ref()),
            show(new.as_ref().map(Stored::from_model).as_ref())
        );
    }
    out.push_str(edit.notes);
    if !failed.is_empty() {
        let _ = writeln!(
            out,
            "\nnot applied in {}: run the command again for {} once the cause is fixed",
            failed.join(", "),
            if failed.len() == 1 { "it" } else { "them" }
        );
    }
    match published {
        Some(published) => {
            let _ = write!(out, "\n{}", super::publish::describe(published));
            let _ = writeln!(
                out,
                "until it reaches the default branch, syncs leave `{}` as it is, and once it is merged the next sync releases the hold",
                edit.name
            );
        }
        None if unpublished => {
            let _ = writeln!(out, "\nnot published: see the error below");
        }
        None => {
            let _ = writeln!(
                out,
                "\nnext: commit the change and open a merge request now; until it reaches the default branch, syncs leave `{}` as it is, and once it is merged the next sync releases the hold",
                edit.name
            );
        }
    }
    out
}

/// `flagops release NAME`.
pub(super) fn release(workspace: &Workspace, args: ReleaseArgs) -> anyhow::Result<ExitStatus> {
    let Some(registry) = super::load_valid(workspace, "releasing")? else {
        return Ok(ExitStatus::Failure);
    };
    let name = args.name.trim_matches('`').to_string();
    super::find_flag(&registry, &name)?;
    let environments = super::select_environments(&registry, &args.environments)?;
    let settings = Settings {
        by: crate::history::identity(&workspace.root),
        commit: crate::history::head_commit(&workspace.root),
        reason: String::new(),
        merge_request: None,
        retry: crate::sync::RetryPolicy::default(),
        lock_timeout: Duration::from_secs(args.lock_timeout),
    };
    let at = jiff::Timestamp::now();
    let released = crate::emergency::release(&workspace.root, &registry, &name, &environments, at, &settings)?;
    let text = match args.format {
        ReportFormat::Json => serde_json::to_string_pretty(&released)? + "\n",
        ReportFormat::Human => release_human(&name, &released),
    };
    super::print(&text)?;
    Ok(ExitStatus::Success)
}

fn release_human(name: &str, released: &[Released]) -> String {
    let mut out = String::new();
    for entry in released {
        let environment = &entry.environment;
        let next = match entry.next_sync.changes.first() {
            Some(change) => format!("the next sync applies {change}"),
            None => "the next sync changes nothing: it holds the registry's state".to_string(),
        };
        let line = match &entry.hold {
            Some(hold) => format!(
                "{environment}: released `{name}` (held by {} at {}: {}); {next}",
                hold.by, hold.at, hold.reason
            ),
            None => format!("{environment}: `{name}` was not held; {next}"),
        };
        let _ = writeln!(out, "{}", crate::escape::one_line(&line));
    }
    out
}

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
}

/// What `set --emergency` did, as `--format json` prints it.
#[derive(Serialize)]
struct EmergencyReport<'a> {
    flag: &'a str,
    file: &'a str,
    written: bool,
    reason: &'a str,
    environments: &'a [EnvironmentOutcome],
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
pub(super) fn set(
    workspace: &Workspace,
    before: &Registry,
    edit: &Edit<'_>,
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
    let outcomes = crate::emergency::apply(&workspace.root, before, edit.name, &states, &settings)?;
    let applied = outcomes.iter().filter(|outcome| outcome.succeeded()).count();
    let written = applied > 0;
    if !written {
        super::write::put_back(workspace, &before.config, edit.written)?;
    }
    if args.format == ReportFormat::Json {
        let report = EmergencyReport {
            flag: edit.name,
            file: edit.shown,
            written,
            reason: &reason,
            environments: &outcomes,
        };
        super::print(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        super::print(&human(edit, &outcomes, written))?;
    }
    Ok(if applied == outcomes.len() {
        ExitStatus::Success
    } else {
        ExitStatus::Error
    })
}

fn human(edit: &Edit<'_>, outcomes: &[EnvironmentOutcome], written: bool) -> String {
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
    let _ = writeln!(
        out,
        "\nnext: commit the change and open a merge request now; until it reaches the default branch, syncs leave `{}` as it is, and once it is merged the next sync releases the hold",
        edit.name
    );
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

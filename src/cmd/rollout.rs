//! `flagops rollout` and `flagops stale`.

use std::fmt::Write as _;

use serde::Serialize;

use crate::ExitStatus;
use crate::cli::{ReportFormat, RolloutArgs, StaleArgs};
use crate::lifecycle::{Standing, Status};
use crate::load::Workspace;
use crate::model::{Flag, Registry};
use crate::resolve::{friendly, progress, step_times};
use crate::state::Stored;

#[derive(Serialize)]
struct StepView {
    step: usize,
    /// When it takes effect, or null when its time is invalid.
    at: Option<String>,
    /// `done`, `current`, `next` or `pending`.
    status: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    rollback: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    environments: Vec<(String, String)>,
    /// The change freeze the step falls in, by environment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    frozen: Vec<(String, String)>,
}

/// A flag's rollout plan at a time, as `rollout` and `show` print it.
#[derive(Serialize)]
pub(super) struct RolloutView {
    flag: String,
    at: String,
    steps: Vec<StepView>,
    /// The next step's number and how long until it is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_due_in: Option<String>,
    /// The desired state in every environment at `at`.
    desired: Vec<(String, String)>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    overrides: std::collections::BTreeMap<String, String>,
    /// Where the rollout stands in each environment its plan sets, from the step marks the
    /// environment's store holds (`crate::steps`), in words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    standing: Vec<(String, String)>,
}

pub(super) fn rollout(workspace: &Workspace, args: RolloutArgs) -> anyhow::Result<ExitStatus> {
    let Some(registry) = super::load_valid(workspace, "showing the rollout")? else {
        return Ok(ExitStatus::Failure);
    };
    let flag = super::find_flag(&registry, &args.name)?;
    let at = super::parse_at(args.at.as_deref())?;
    let mut view = view(&registry, flag, at);
    view.standing = standing(workspace, &registry, flag, at);
    let text = match args.format {
        ReportFormat::Json => serde_json::to_string_pretty(&view)? + "\n",
        ReportFormat::Human => human(&view),
    };
    super::print(&text)?;
    Ok(ExitStatus::Success)
}

/// Where `flag`'s rollout plan stands at `at`.
pub(super) fn view(registry: &Registry, flag: &Flag, at: jiff::Timestamp) -> RolloutView {
    let progress = progress(flag, at);
    let steps = flag
        .rollout
        .iter()
        .zip(step_times(&flag.rollout))
        .enumerate()
        .map(|(position, (step, time))| {
            let status = if progress.current.is_some_and(|current| position < current) {
                "done"
            } else if progress.current == Some(position) {
                "current"
            } else if progress.next.is_some_and(|(next, _)| next == position) {
                "next"
            } else {
                "pending"
            };
            let frozen = match &time {
                Ok(time) => step
                    .environments
                    .keys()
                    .filter_map(|environment| {
                        registry
                            .config
                            .freeze_at(environment, *time)
                            .map(|window| (environment.clone(), window.name.clone()))
                    })
                    .collect(),
                Err(_) => Vec::new(),
            };
            StepView {
                step: position + 1,
                at: time.ok().map(|time| time.to_string()),
                status,
                rollback: step.rollback,
                note: step.note.clone(),
                environments: registry
                    .config
                    .environment_names()
                    .filter_map(|name| {
                        step.environments
                            .get(name)
                            .map(|state| (name.to_string(), crate::plan::show(Some(&Stored::from_model(state)))))
                    })
                    .collect(),
                frozen,
            }
        })
        .collect();
    RolloutView {
        flag: flag.name.clone(),
        at: at.to_string(),
        steps,
        next_due_in: progress
            .next
            .map(|(position, time)| format!("step {} in {}", position + 1, friendly(time.duration_since(at)))),
        desired: registry
            .config
            .environment_names()
            .map(|name| {
                let state = crate::resolve::desired_flag(flag, name, at);
                (
                    name.to_string(),
                    crate::plan::show_effective(state.as_ref(), flag.default_enabled),
                )
            })
            .collect(),
        overrides: flag.overrides.clone(),
        standing: Vec::new(),
    }
}

/// Where `flag`'s rollout stands at `at` in each environment its plan sets, given the step marks
/// the environment's backend holds; an environment that cannot be read says why.
fn standing(workspace: &Workspace, registry: &Registry, flag: &Flag, at: jiff::Timestamp) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    for environment in &registry.config.environments {
        let name = environment.name.as_str();
        if !flag.rollout.iter().any(|step| step.environments.contains_key(name)) {
            continue;
        }
        let marks = super::open_to_read(workspace, registry, environment)
            .and_then(|mut backend| backend.fetch().map_err(anyhow::Error::new))
            .map(|snapshot| snapshot.steps);
        let line = match marks {
            Ok(marks) => {
                let min_wait = crate::steps::min_wait(&registry.config, name, flag);
                let moment = crate::steps::Moment::at(at);
                let standing =
                    |verdict| crate::steps::standing(flag, name, marks.get(&flag.name), moment, min_wait, verdict);
                // A step due with a metric guard: what the guard says now decides it.
                let check =
                    standing(None).and_then(|first| crate::guard::check_for(&registry.config, flag, name, &first));
                let verdicts = match check {
                    Some(check) => crate::prometheus::evaluate(
                        &registry.config,
                        &[check],
                        jiff::Timestamp::now(),
                        &crate::sync::RetryPolicy::default(),
                    ),
                    None => Vec::new(),
                };
                standing(verdicts.first()).map(|standing| crate::steps::describe(&standing))
            }
            Err(error) => Some(format!("cannot read the environment: {error:#}")),
        };
        if let Some(line) = line {
            lines.push((name.to_string(), line));
        }
    }
    lines
}

fn human(view: &RolloutView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} at {}", view.flag, crate::plan::render::time(&view.at));
    out.push_str(&steps_human(view));
    out.push_str("desired now:\n");
    for (environment, state) in &view.desired {
        let _ = writeln!(out, "  {environment}: {state}");
    }
    for (policy, reason) in &view.overrides {
        let _ = writeln!(out, "override of {policy}: {reason}");
    }
    out
}

/// The plan's steps, each done, current, next or pending, and when the next is due.
pub(super) fn steps_human(view: &RolloutView) -> String {
    let mut out = String::new();
    if view.steps.is_empty() {
        out.push_str("no rollout plan: the state is the one under `environments`\n");
    }
    for step in &view.steps {
        let marker = if step.status == "next" { "→" } else { " " };
        let _ = write!(
            out,
            "{marker} step {} {} {:<7}{}",
            step.step,
            step.at.as_deref().unwrap_or("(no valid time)"),
            step.status,
            if step.rollback { " rollback" } else { "" }
        );
        let states: Vec<String> = step
            .environments
            .iter()
            .map(|(environment, state)| format!("{environment}: {state}"))
            .collect();
        let _ = writeln!(out, "  {}", states.join("; "));
        if let Some(note) = &step.note {
            let _ = writeln!(out, "      {note}");
        }
        for (environment, window) in &step.frozen {
            let _ = writeln!(
                out,
                "      {environment} is in the change freeze `{window}` then: sync applies this after the freeze"
            );
        }
    }
    match &view.next_due_in {
        Some(due) => {
            let _ = writeln!(out, "next: {due}");
        }
        None if !view.steps.is_empty() => out.push_str("next: none, the plan is complete\n"),
        None => {}
    }
    if !view.standing.is_empty() {
        out.push_str("in the environments:\n");
        for (environment, line) in &view.standing {
            let _ = writeln!(out, "  {environment}: {}", crate::escape::one_line(line));
        }
    }
    out
}

/// One line of `flagops stale`.
#[derive(Serialize)]
struct StaleRow {
    #[serde(flatten)]
    standing: Standing,
    #[serde(rename = "type")]
    flag_type: String,
    milestone: String,
    owners: Vec<String>,
    /// `fully on` or `fully off` when the flag has the same final state everywhere and can be
    /// removed from the code.
    #[serde(skip_serializing_if = "Option::is_none")]
    ready_for_removal: Option<&'static str>,
    /// The values the flag lists under `todo`, still to be decided.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    todo: Vec<String>,
}

pub(super) fn stale(workspace: &Workspace, args: StaleArgs) -> anyhow::Result<ExitStatus> {
    let Some(registry) = super::load_valid(workspace, "judging flags")? else {
        return Ok(ExitStatus::Failure);
    };
    let at = super::parse_at(args.at.as_deref())?;
    let mut rows: Vec<StaleRow> = registry
        .flags
        .iter()
        .map(|file| {
            let flag = &file.flag;
            StaleRow {
                standing: crate::lifecycle::standing(flag, &registry.config, at),
                flag_type: flag.flag_type.clone(),
                milestone: flag.milestone.clone(),
                owners: flag.owners.clone(),
                ready_for_removal: ready_for_removal(&registry, flag, at),
                todo: flag.todo.keys().cloned().collect(),
            }
        })
        .filter(|row| {
            args.all || row.standing.status != Status::Ok || row.ready_for_removal.is_some() || !row.todo.is_empty()
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.standing.status, &a.standing.limit, &a.standing.flag).cmp(&(
            b.standing.status,
            &b.standing.limit,
            &b.standing.flag,
        ))
    });
    let text = match args.format {
        ReportFormat::Json => serde_json::to_string_pretty(&rows)? + "\n",
        ReportFormat::Human => stale_human(&rows, at),
    };
    super::print(&text)?;
    let expired = rows.iter().any(|row| row.standing.status == Status::Expired);
    Ok(if args.exit_code && expired {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// Whether `flag` is fully on or fully off in every environment at `at` and for the rest of its
/// plan, so its code path can be made permanent and the flag removed. A flag of a long-lived type
/// (an `ops` kill switch) is meant to stay, however it is set.
fn ready_for_removal(registry: &Registry, flag: &Flag, at: jiff::Timestamp) -> Option<&'static str> {
    let long_lived = registry
        .config
        .types
        .get(&flag.flag_type)
        .is_some_and(|rules| rules.long_lived);
    if long_lived || progress(flag, at).next.is_some() {
        return None;
    }
    let mut states =
        registry
            .config
            .environment_names()
            .map(|name| match crate::resolve::desired_flag(flag, name, at) {
                None => Some(flag.default_enabled),
                Some(Stored::Boolean(on)) => Some(on),
                Some(Stored::Gates(_)) => None,
            });
    let first = states.next()??;
    states
        .all(|state| state == Some(first))
        .then_some(if first { "fully on" } else { "fully off" })
}

fn stale_human(rows: &[StaleRow], at: jiff::Timestamp) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "no flag is past or near its limit at {at}, none is ready for removal and none has values to do"
        );
        return out;
    }
    for row in rows {
        let status = match row.standing.status {
            Status::Expired => "expired",
            Status::Expiring => "expiring",
            Status::Ok => "ok",
        };
        let owners = if row.owners.is_empty() {
            String::new()
        } else {
            format!(" {}", row.owners.join(" "))
        };
        let _ = writeln!(
            out,
            "{status:<8} {} ({}, {}){owners}\n         {}",
            row.standing.flag, row.flag_type, row.milestone, row.standing.reason
        );
        if let Some(ready) = row.ready_for_removal {
            let _ = writeln!(out, "         ready for removal: {ready} in every environment");
        }
        if !row.todo.is_empty() {
            let _ = writeln!(out, "         to do: {}", row.todo.join(", "));
        }
    }
    let count = |status| rows.iter().filter(|row| row.standing.status == status).count();
    let _ = writeln!(
        out,
        "{} expired, {} expiring, {} ready for removal, {} with values to do at {at}",
        count(Status::Expired),
        count(Status::Expiring),
        rows.iter().filter(|row| row.ready_for_removal.is_some()).count(),
        rows.iter().filter(|row| !row.todo.is_empty()).count()
    );
    out
}

/// One line per flag whose rollout plan still has a step to come at `at`: its current step and
/// when the next is due.
pub(super) fn progress_lines(registry: &Registry, at: jiff::Timestamp) -> Vec<String> {
    registry
        .flags
        .iter()
        .filter_map(|file| {
            let flag = &file.flag;
            let (next, time) = progress(flag, at).next?;
            let current = match progress(flag, at).current {
                Some(current) => format!("step {} of {}", current + 1, flag.rollout.len()),
                None => format!("not started ({} steps)", flag.rollout.len()),
            };
            Some(format!(
                "{}: {current}; step {} due {time} (in {})",
                flag.name,
                next + 1,
                friendly(time.duration_since(at))
            ))
        })
        .collect()
}

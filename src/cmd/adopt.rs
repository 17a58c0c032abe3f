//! `flagops adopt`: drift (a state changed outside git) turned into edits of the flag files.
//!
//! Each environment is read as `status` reads it (`status::observe`); for each drifted flag the
//! state the backend holds is written into `environments.<env>` with `edit::set_environment`,
//! spelled as the file had it where it can be (`state::file_state`), and only when the backend
//! puts the result back in its own terms (`Backend::canonicalize`) exactly as it holds it. The
//! files go through `write::write_validated`, as `set`'s do. The command ends with the files it
//! edited and a message describing the change, which `--commit` and `--mr` publish.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::ExitStatus;
use crate::backends::Backend;
use crate::cli::{AdoptArgs, ReportFormat};
use crate::load::Workspace;
use crate::model::{FlagFile, Registry, State};
use crate::plan::{Plan, show};
use crate::state::{Actor, EnvironmentState, Stored};

/// One environment's state of one flag, written into its file.
#[derive(Serialize)]
struct Adopted {
    flag: String,
    environment: String,
    file: String,
    /// The state the file had (absent: null).
    before: Option<Stored>,
    /// The state the environment holds, now the file's (absent: null).
    after: Option<Stored>,
}

/// A drifted flag that is not adopted, and why.
#[derive(Serialize)]
struct Refusal {
    flag: String,
    environment: String,
    reason: String,
}

/// What `adopt` did, as `--format json` prints it.
#[derive(Serialize)]
struct AdoptReport {
    written: bool,
    adopted: Vec<Adopted>,
    refused: Vec<Refusal>,
    notes: Vec<String>,
    /// The files edited (or that would be, with `--dry-run`).
    files: Vec<String>,
    /// The change in words: a title line, a blank line and one line per state adopted.
    message: String,
    plans: Vec<Plan>,
    /// The commit, branch and merge request, with `--commit` or `--mr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    published: Option<crate::publish::Published>,
}

pub(super) fn run(workspace: &Workspace, args: AdoptArgs) -> anyhow::Result<ExitStatus> {
    super::finish(adopt(workspace, &args))
}

/// Adopts the drift `args` names, printing what it does; with `--commit` or `--mr`, publishes the
/// files it edited with the message that describes the change.
fn adopt(workspace: &Workspace, args: &AdoptArgs) -> anyhow::Result<ExitStatus> {
    let Some(registry) = super::load_valid(workspace, "adopting")? else {
        return Ok(ExitStatus::Failure);
    };
    let config = &registry.config;
    let names: Vec<String> = args
        .names
        .iter()
        .map(|name| name.trim_matches('`').to_string())
        .collect();
    let all: Vec<String> = config.environment_names().map(str::to_string).collect();
    let chosen = super::named_environments(&registry, args.environments.clone(), &all)?;
    let at = super::parse_at(args.at.as_deref())?;
    let head = crate::history::head_commit(&workspace.root);
    let wanted = |flag: &str| names.is_empty() || names.iter().any(|name| name == flag);

    let mut adopted = Vec::new();
    let mut refused = Vec::new();
    let mut notes = Vec::new();
    let mut orphans = Vec::new();
    // The new state of each flag's environments, by flag.
    let mut states: BTreeMap<String, Vec<(String, Option<State>)>> = BTreeMap::new();
    for environment in &chosen {
        let mut observed = super::status::observe(workspace, &registry, head.as_deref(), environment, at)?;
        for orphan in observed.status.orphans.iter().filter(|orphan| wanted(orphan)) {
            orphans.push(orphan.clone());
            let reason = "it has no flag file, so there is nothing to adopt its state into\nhelp: write its file with `flagops new` or `flagops import gitlab`, then adopt its state";
            if names.is_empty() {
                notes.push(format!("note: `{orphan}` in {environment}: {reason}"));
            } else {
                refused.push(Refusal {
                    flag: orphan.clone(),
                    environment: environment.clone(),
                    reason: reason.to_string(),
                });
            }
        }
        for pending in observed.status.pending.iter().filter(|entry| wanted(&entry.flag)) {
            notes.push(format!(
                "note: `{}` in {environment} is pending, not drifted: the registry changed and no sync applied it yet, and adopting would revert that change",
                pending.flag
            ));
        }
        for entry in observed.status.drifted.iter().filter(|entry| wanted(&entry.flag)) {
            let file = super::flag_file(&registry, &entry.flag)?;
            match adoptable(
                &registry,
                file,
                environment,
                entry.actual.as_ref(),
                at,
                observed.backend.as_mut(),
            ) {
                Ok(state) => {
                    adopted.push(Adopted {
                        flag: entry.flag.clone(),
                        environment: environment.clone(),
                        file: file.path.display().to_string(),
                        before: file.flag.environments.get(environment).map(Stored::from_model),
                        after: state.as_ref().map(Stored::from_model),
                    });
                    states
                        .entry(entry.flag.clone())
                        .or_default()
                        .push((environment.clone(), state));
                }
                Err(reason) => refused.push(Refusal {
                    flag: entry.flag.clone(),
                    environment: environment.clone(),
                    reason,
                }),
            }
        }
    }
    for name in &names {
        if !registry.knows(name) && !orphans.contains(name) {
            super::flag_file(&registry, name)?;
        }
    }

    // Each flag's file, edited environment by environment.
    let mut edits = Vec::new();
    for (flag, changes) in &states {
        let file = super::flag_file(&registry, flag)?;
        let original = file.index.text().to_string();
        let mut text = original.clone();
        for (environment, state) in changes {
            let value = state.as_ref().map(file_value);
            match crate::edit::set_environment(&text, environment, value.as_ref(), &all) {
                Ok(edited) => text = edited,
                Err(reason) => refused.push(Refusal {
                    flag: flag.clone(),
                    environment: environment.clone(),
                    reason: format!(
                        "`{}` cannot be edited in place: {reason}\nhelp: change `environments.{environment}` by hand",
                        file.path.display()
                    ),
                }),
            }
        }
        edits.push(super::write::Edit {
            path: file.path.clone(),
            original,
            text,
        });
    }
    let files: Vec<String> = edits.iter().map(|edit| edit.path.display().to_string()).collect();
    let message = message(&adopted);
    let mut report = AdoptReport {
        written: false,
        adopted,
        refused,
        notes,
        files,
        message,
        plans: Vec::new(),
        published: None,
    };
    let json = args.format == ReportFormat::Json;
    if !report.refused.is_empty() {
        print(&report, json, args.dry_run)?;
        return Ok(ExitStatus::Failure);
    }
    if report.adopted.is_empty() || args.dry_run {
        print(&report, json, args.dry_run)?;
        return Ok(ExitStatus::Success);
    }
    // Whether the change can be published is checked before anything is written.
    let pending = match super::publish::mode(&args.publish) {
        Some(mode) => {
            let files = edits
                .iter()
                .map(|edit| super::write::writable_path(workspace, config, &edit.path))
                .collect::<anyhow::Result<Vec<_>>>()?;
            Some(crate::publish::prepare(&workspace.root, &files, mode, config)?)
        }
        None => None,
    };
    let Some(after) = super::write::write_validated(workspace, config, &edits)? else {
        return Ok(ExitStatus::Failure);
    };
    report.written = true;
    report.plans = config
        .environment_names()
        .map(|environment| {
            let before = crate::resolve::desired(&registry, environment, at);
            crate::sync::plan_environment(&after, environment, &before, at, false)
        })
        .collect();
    if let Some(pending) = pending {
        report.published = Some(publish(pending, &report)?);
    }
    print(&report, json, false)?;
    Ok(ExitStatus::Success)
}

/// Commits the edited files, or sends them as a merge request, with the report's message as the
/// commit message and the adopted states and the plan as the merge request's description.
fn publish(pending: crate::publish::Pending, report: &AdoptReport) -> anyhow::Result<crate::publish::Published> {
    use crate::escape::markdown;
    let (title, lines) = report
        .message
        .split_once("\n\n")
        .unwrap_or((report.message.as_str(), ""));
    let mut body = format!(
        "{}\n\nplan:\n{}",
        lines.trim_end(),
        crate::plan::render::human(&report.plans)
    );
    let mut description =
        String::from("`flagops adopt` wrote the state the environments hold into the flag files:\n\n");
    for entry in &report.adopted {
        let _ = writeln!(
            description,
            "- {} in {} ({}): {} → {}",
            crate::escape::markdown_code(&entry.flag),
            markdown(&entry.environment),
            crate::escape::markdown_code(&entry.file),
            markdown(&show(entry.before.as_ref())),
            markdown(&show(entry.after.as_ref()))
        );
    }
    description.push_str(&format!("\n{}", crate::plan::render::markdown(&report.plans, None)));
    if let Some(line) = super::publish::requested_by() {
        body.push_str(&format!("\n\n{line}"));
        description.push_str(&format!("\n{line}\n"));
    }
    let mut flags: Vec<&str> = report.adopted.iter().map(|entry| entry.flag.as_str()).collect();
    flags.sort_unstable();
    flags.dedup();
    let message = crate::publish::Message {
        title,
        body: &body,
        description: &description,
        branch_words: &format!("adopt {}", flags.join(" ")),
    };
    pending.publish(&message)
}

/// The state to write into `environments.<environment>` of `file` so that its desired state is
/// `actual`, or why there is none.
fn adoptable(
    registry: &Registry,
    file: &FlagFile,
    environment: &str,
    actual: Option<&Stored>,
    at: jiff::Timestamp,
    backend: &mut dyn Backend,
) -> Result<Option<State>, String> {
    let flag = &file.flag;
    if step_sets(flag, environment, at) {
        return Err(format!(
            "a rollout step of `{}` that is due sets {environment}, so its `environments` entry does not decide the state there\nhelp: edit the rollout plan, or let `flagops sync` restore the registry's state",
            flag.name
        ));
    }
    if let Some(Stored::Gates(gates)) = actual
        && let Some(actor) = gates
            .actors
            .iter()
            .find(|actor| !registry.config.actor_kinds.contains_key(&actor.kind))
    {
        return Err(format!(
            "{environment} holds the actor `{actor}`, of no actor kind in flagops.yml, which a flag file cannot name\nhelp: add its kind under `actor_kinds` in flagops.yml, or let `flagops sync` restore the registry's state"
        ));
    }
    let current = flag.environments.get(environment);
    let mut canonical = |actor: &Actor| canonical_actor(backend, actor);
    let state = actual.map(|actual| crate::state::file_state(actual, current, &mut canonical));
    // The result must be what the environment holds, once the backend puts it in its terms.
    let mut candidate = flag.clone();
    match &state {
        Some(state) => candidate.environments.insert(environment.to_string(), state.clone()),
        None => candidate.environments.remove(environment),
    };
    let mut desired = EnvironmentState::new();
    if let Some(stored) = crate::resolve::desired_flag(&candidate, environment, at) {
        desired.insert(flag.name.clone(), stored);
    }
    let cannot = |why: String| {
        format!(
            "a flag file cannot name what {environment} holds ({}): {why}\nhelp: set `environments.{environment}` by hand, or let `flagops sync` restore the registry's state",
            show(actual)
        )
    };
    backend
        .canonicalize(&mut desired)
        .map_err(|error| cannot(error.to_string()))?;
    if desired.get(&flag.name) != actual {
        return Err(cannot(format!(
            "written as {}, it reads back as {}",
            show(state.as_ref().map(Stored::from_model).as_ref()),
            show(desired.get(&flag.name))
        )));
    }
    Ok(state)
}

/// Whether a rollout step of `flag` due by `at` sets `environment`.
fn step_sets(flag: &crate::model::Flag, environment: &str, at: jiff::Timestamp) -> bool {
    flag.rollout
        .iter()
        .zip(crate::resolve::step_times(&flag.rollout))
        .any(|(step, time)| time.is_ok_and(|time| time <= at) && step.environments.contains_key(environment))
}

/// `actor` in the backend's terms, or `None` when the backend does not know it.
fn canonical_actor(backend: &mut dyn Backend, actor: &Actor) -> Option<Actor> {
    let gates = crate::state::GateSet {
        actors: [actor.clone()].into(),
        ..Default::default()
    };
    let mut probe: EnvironmentState = [(String::new(), Stored::Gates(gates))].into();
    backend.canonicalize(&mut probe).ok()?;
    match probe.into_values().next() {
        Some(Stored::Gates(gates)) => gates.actors.into_iter().next(),
        _ => None,
    }
}

/// A state as a flag file writes it, ids that are numbers written as numbers (`278964`).
pub(super) fn file_value(state: &State) -> serde_json::Value {
    let mut value = crate::chatops::to_value(state);
    if let Some(kinds) = value.get_mut("actors").and_then(serde_json::Value::as_object_mut) {
        for ids in kinds.values_mut().filter_map(serde_json::Value::as_array_mut) {
            for id in ids {
                if let Some(number) = id.as_str().and_then(|text| text.parse::<u64>().ok())
                    && number.to_string() == id.as_str().unwrap_or_default()
                {
                    *id = serde_json::Value::from(number);
                }
            }
        }
    }
    value
}

/// The change in words, for a commit: a title, a blank line, one line per state adopted.
fn message(adopted: &[Adopted]) -> String {
    if adopted.is_empty() {
        return String::new();
    }
    let mut flags: Vec<&str> = adopted.iter().map(|entry| entry.flag.as_str()).collect();
    flags.sort_unstable();
    flags.dedup();
    let mut environments: Vec<&str> = Vec::new();
    for entry in adopted {
        if !environments.contains(&entry.environment.as_str()) {
            environments.push(&entry.environment);
        }
    }
    let mut text = format!(
        "Adopt the state of {} changed outside git in {}\n\n",
        quoted(&flags),
        environments.join(", ")
    );
    for entry in adopted {
        let _ = writeln!(
            text,
            "{} in {}: {} → {}",
            entry.flag,
            entry.environment,
            show(entry.before.as_ref()),
            show(entry.after.as_ref())
        );
    }
    text
}

/// `a`, `a` and `b`, or `a`, `b` and `c`.
fn quoted(names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn print(report: &AdoptReport, json: bool, dry_run: bool) -> anyhow::Result<()> {
    if json {
        return super::print(&(serde_json::to_string_pretty(report)? + "\n"));
    }
    let mut out = String::new();
    let mut files: Vec<&str> = Vec::new();
    for entry in &report.adopted {
        if files.last() != Some(&entry.file.as_str()) {
            let verb = if report.written { "edited" } else { "would edit" };
            let _ = writeln!(out, "{verb} {}:", entry.file);
            files.push(&entry.file);
        }
        let _ = writeln!(
            out,
            "  {}: {} → {}",
            entry.environment,
            show(entry.before.as_ref()),
            show(entry.after.as_ref())
        );
    }
    for note in &report.notes {
        let _ = writeln!(out, "{note}");
    }
    if !report.refused.is_empty() {
        for refusal in &report.refused {
            let _ = writeln!(
                out,
                "refused: `{}` in {}: {}",
                refusal.flag, refusal.environment, refusal.reason
            );
        }
        let _ = writeln!(
            out,
            "not written: {} cannot be adopted\nhelp: name the flags to adopt (`flagops adopt NAME --env ENV`), or resolve these first",
            crate::plan::render::count(report.refused.len(), "state")
        );
    } else if report.adopted.is_empty() {
        out.push_str("nothing to adopt: no flag has drifted\n");
    } else if dry_run {
        out.push_str("dry run: nothing written\n");
    } else {
        out.push_str("\nplan:\n");
        out.push_str(&crate::plan::render::human(&report.plans));
        match &report.published {
            Some(published) => {
                let _ = write!(out, "\n{}", super::publish::describe(published));
                out.push_str(
                    "once merged, the registry holds what the environments hold and a sync changes nothing\n",
                );
            }
            None => out.push_str(
                "\nnext: commit the change and open a merge request; once merged, the registry holds what the environments hold and a sync changes nothing\n",
            ),
        }
    }
    if report.refused.is_empty() && !report.message.is_empty() {
        out.push_str("\nmessage:\n");
        for line in report.message.lines() {
            let _ = writeln!(out, "{}", format!("  {line}").trim_end());
        }
    }
    super::print(&out)
}

//! Plans for people: text for terminals and Markdown for merge-request comments.

use std::fmt::Write;

use crate::escape;

use super::{Action, Plan, show};

/// The plans as text: one block per environment, one line per change.
pub fn human(plans: &[Plan]) -> String {
    let mut out = String::new();
    for plan in plans {
        let mut notes = hold_lines(plan);
        notes.extend(step_lines(plan));
        if plan.changes.is_empty() && plan.kept_orphans.is_empty() && plan.kept_without_entry.is_empty() {
            let _ = writeln!(out, "{}: no changes", plan.environment);
            for line in notes {
                let _ = writeln!(out, "{}", escape::one_line(&line));
            }
            continue;
        }
        let _ = writeln!(out, "{}: {}", plan.environment, count(plan.changes.len(), "change"));
        // A value from a backend (a flag name, an actor) may hold a line break: each change
        // stays on its own line whatever it holds.
        for change in &plan.changes {
            let mut line = format!("  {change}");
            if let Some(radius) = plan.radius.get(&change.flag) {
                line.push_str(&format!(" ({})", crate::review::describe(radius)));
            }
            let _ = writeln!(out, "{}", escape::one_line(&line));
        }
        for line in kept_lines(plan).into_iter().chain(takeover_line(plan)) {
            let _ = writeln!(out, "{}", escape::one_line(&line));
        }
        for line in notes {
            let _ = writeln!(out, "{}", escape::one_line(&line));
        }
    }
    let _ = writeln!(out, "{}", summary(plans));
    out
}

/// The plans as a Markdown comment, titled with the revision they compare against (`base`,
/// for `plan --base`).
///
/// Every value is escaped (`escape::markdown`, `escape::markdown_code`): a flag name, an actor,
/// an environment or the revision cannot start a new line, row, heading or HTML comment, or
/// format text.
pub fn markdown(plans: &[Plan], base: Option<&str>) -> String {
    let mut out = String::new();
    let _ = match base {
        Some(base) => writeln!(
            out,
            "### flagops plan: this change against {}\n",
            escape::markdown_code(base)
        ),
        None => writeln!(out, "### flagops plan\n"),
    };
    let _ = writeln!(out, "{}\n", summary(plans));
    let rows: Vec<String> = plans
        .iter()
        .flat_map(|plan| {
            let changes = plan.changes.iter().map(move |change| {
                let action = match change.action {
                    Action::Create => "create",
                    Action::Update => "update",
                    Action::Delete => "delete",
                };
                let radius = match plan.radius.get(&change.flag) {
                    Some(radius) => format!(" {} |", escape::markdown(&crate::review::describe(radius))),
                    None if plans.iter().any(|plan| !plan.radius.is_empty()) => " |".to_string(),
                    None => String::new(),
                };
                format!(
                    "| {} | {} | {action} | {} | {} |{radius}",
                    escape::markdown(&plan.environment),
                    escape::markdown_code(&change.flag),
                    escape::markdown(&show(change.from.as_ref())),
                    escape::markdown(&show(change.to.as_ref()))
                )
            });
            let orphans = plan.kept_orphans.iter().map(move |orphan| {
                format!(
                    "| {} | {} | kept (not in the registry) | | |",
                    escape::markdown(&plan.environment),
                    escape::markdown_code(orphan)
                )
            });
            let without_entry = plan.kept_without_entry.iter().map(move |flag| {
                format!(
                    "| {} | {} | kept (no entry for the environment; `absent` deletes it) | | |",
                    escape::markdown(&plan.environment),
                    escape::markdown_code(flag)
                )
            });
            let held = plan.held.iter().map(move |hold| {
                format!(
                    "| {} | {} | held | {} | {} |",
                    escape::markdown(&plan.environment),
                    escape::markdown_code(&hold.flag),
                    escape::markdown(&show(hold.state.as_ref())),
                    escape::markdown(&crate::hold::describe(hold))
                )
            });
            let released = plan.released.iter().map(move |hold| {
                format!(
                    "| {} | {} | hold released | {} | |",
                    escape::markdown(&plan.environment),
                    escape::markdown_code(&hold.flag),
                    escape::markdown(&show(hold.state.as_ref()))
                )
            });
            changes.chain(orphans).chain(without_entry).chain(held).chain(released)
        })
        .collect();
    let radius_column = plans.iter().any(|plan| !plan.radius.is_empty());
    if !rows.is_empty() {
        let (header, rule) = if radius_column {
            ("| blast radius ", "|---")
        } else {
            ("", "")
        };
        let _ = writeln!(
            out,
            "| environment | flag | change | before | after {header}|\n|---|---|---|---|---{rule}|"
        );
        for row in &rows {
            let _ = writeln!(out, "{row}");
        }
    }
    let steps: Vec<String> = plans
        .iter()
        .flat_map(|plan| {
            plan.steps.iter().map(move |step| {
                let kind = match step.kind {
                    crate::review::StepKind::Added => "added",
                    crate::review::StepKind::Removed => "removed",
                    crate::review::StepKind::Changed => "changed",
                };
                let time = match step.at_before {
                    Some(before) => format!("{before} → {}", step.at),
                    None => step.at.to_string(),
                };
                let state = match &step.state_before {
                    Some(before) => format!("{before} → {}", step.state),
                    None => step.state.to_string(),
                };
                format!(
                    "| {} | {} | {} | {kind}{} | {} | {} | {} |",
                    escape::markdown(&plan.environment),
                    escape::markdown_code(&step.flag),
                    step.step,
                    if step.rollback { ", rollback" } else { "" },
                    escape::markdown(&time),
                    escape::markdown(&state),
                    escape::markdown(&crate::review::describe(&step.radius))
                )
            })
        })
        .collect();
    if !steps.is_empty() {
        let _ = writeln!(
            out,
            "{}#### Rollout steps\n\n| environment | flag | step | change | time | state | blast radius |\n|---|---|---|---|---|---|---|",
            if rows.is_empty() { "" } else { "\n" }
        );
        for row in steps {
            let _ = writeln!(out, "{row}");
        }
    }
    out
}

/// One line per rollout step the reviewed change adds (`+`), removes (`-`) or changes (`~`),
/// unescaped: `  + rollout name step 2 at T: 50% of actors (+25 pp; of 1000 sample actors, …)`.
pub fn step_lines(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|step| {
            let (symbol, what) = describe_step(step);
            format!("  {symbol} rollout {} {what}", step.flag)
        })
        .collect()
}

/// A step change's symbol, and its step, time and state in words with its blast radius.
fn describe_step(step: &crate::review::StepChange) -> (&'static str, String) {
    use crate::review::StepKind;
    let time = match step.at_before {
        Some(before) => format!("{before} → {}", step.at),
        None => step.at.to_string(),
    };
    let state = match &step.state_before {
        Some(before) => format!("{before} → {}", step.state),
        None => step.state.to_string(),
    };
    let rollback = if step.rollback { ", rollback" } else { "" };
    let radius = crate::review::describe(&step.radius);
    let (symbol, radius) = match step.kind {
        StepKind::Added => ("+", radius),
        StepKind::Changed => ("~", radius),
        StepKind::Removed => ("-", format!("no longer: {radius}")),
    };
    (
        symbol,
        format!("step {} at {time}: {state}{rollback} ({radius})", step.step),
    )
}

/// The flags a plan leaves alone although the environment holds them: orphans and flags whose
/// file has no entry for the environment; unescaped.
pub fn kept_lines(plan: &Plan) -> Vec<String> {
    let environment = &plan.environment;
    let orphans = plan
        .kept_orphans
        .iter()
        .map(|orphan| format!("  ! {orphan}: not in the registry, kept (`--prune` deletes it)"));
    let without_entry = plan.kept_without_entry.iter().map(|flag| {
        format!("  ! {flag}: kept: no entry for {environment} in its file (`{environment}: absent` deletes it)")
    });
    orphans.chain(without_entry).collect()
}

/// Before an environment's first sync, the flags it holds that the plan changes, which a sync
/// changes only with `--take-over`; unescaped.
pub fn takeover_line(plan: &Plan) -> Option<String> {
    (!plan.takeover.is_empty()).then(|| {
        format!(
            "  ! first sync of {}: it has no sync record, so flagops did not write what it holds; a sync changes {} it holds only with `--take-over`: {}",
            plan.environment,
            if plan.takeover.len() == 1 { "this flag".to_string() } else { format!("these {} flags", plan.takeover.len()) },
            plan.takeover.join(", ")
        )
    })
}

/// One line per flag an emergency change holds, and per hold released, unescaped:
/// `  = name: off, held by an emergency change: ada at …: INC-1 (!42)`.
pub fn hold_lines(plan: &Plan) -> Vec<String> {
    let held = plan.held.iter().map(|hold| {
        format!(
            "  = {}: {}, {} (the registry's change to it is not merged yet; `flagops release` ends the hold)",
            hold.flag,
            show(hold.state.as_ref()),
            crate::hold::describe(hold)
        )
    });
    let released = plan.released.iter().map(|hold| {
        format!(
            "  - {}: the hold of the emergency change by {} at {} is released: a reviewed change to the flag reached the registry",
            hold.flag, hold.by, hold.at
        )
    });
    held.chain(released).collect()
}

/// One line per rollout with a step that takes effect or is still to come, unescaped:
/// `  > name: step 1 of 3 applied at …; step 2 due at … (held past its time …)`.
pub fn rollout_lines(plan: &Plan) -> Vec<String> {
    plan.rollouts
        .iter()
        .filter(|standing| standing.applying.is_some() || standing.next.is_some())
        .map(|standing| format!("  > {}: {}", standing.flag, crate::steps::describe(standing)))
        .collect()
}

/// `3 changes in 2 of 6 environments`, or `no changes in 6 environments`, followed by
/// `; 3 rollout steps added, removed or changed in 1 of 6 environments` when the plans review a
/// change to rollout plans.
pub fn summary(plans: &[Plan]) -> String {
    let changes: usize = plans.iter().map(|plan| plan.changes.len()).sum();
    let touched = plans.iter().filter(|plan| !plan.changes.is_empty()).count();
    let mut text = if changes == 0 {
        format!("no changes in {}", count(plans.len(), "environment"))
    } else {
        format!(
            "{} in {touched} of {}",
            count(changes, "change"),
            count(plans.len(), "environment")
        )
    };
    let steps: usize = plans.iter().map(|plan| plan.steps.len()).sum();
    if steps > 0 {
        let stepped = plans.iter().filter(|plan| !plan.steps.is_empty()).count();
        text.push_str(&format!(
            "; {} added, removed or changed in {stepped} of {}",
            count(steps, "rollout step"),
            count(plans.len(), "environment")
        ));
    }
    text
}

/// `1 change`, `2 changes`.
pub fn count(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// A time for people, to the second: `2026-11-21T20:48:05.672083818Z` becomes
/// `2026-11-21T20:48:05Z`. Text that is not an RFC 3339 time is returned as it is; JSON output
/// keeps times at full precision and never comes through here.
pub fn time(text: &str) -> String {
    match text.parse::<jiff::Timestamp>() {
        Ok(at) => to_second(at).to_string(),
        Err(_) => text.to_string(),
    }
}

/// `at` without its fraction of a second.
pub fn to_second(at: jiff::Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_second(at.as_second()).unwrap_or(at)
}

//! `flagops sync` and `flagops deploy`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::ExitStatus;
use crate::cli::{DeployArgs, ReportFormat, SyncArgs};
use crate::load::Workspace;
use crate::model::Registry;
use crate::plan::Change;
use crate::plan::render::count;
use crate::sync::{EnvironmentReport, RetryPolicy, SyncSettings};

pub(super) fn run(workspace: &Workspace, args: SyncArgs) -> anyhow::Result<ExitStatus> {
    let Some(registry) = super::load_valid(workspace, "syncing")? else {
        return Ok(ExitStatus::Failure);
    };
    let status = sync_registry(workspace, &registry, args);
    super::release_at_exit(registry);
    status
}

/// Syncs a registry already read and found valid.
fn sync_registry(workspace: &Workspace, registry: &Registry, args: SyncArgs) -> anyhow::Result<ExitStatus> {
    let settings = SyncSettings {
        dry_run: args.dry_run,
        prune: args.prune,
        environments: args.environments,
        at: super::parse_at(args.at.as_deref())?,
        by: crate::history::identity(&workspace.root),
        commit: crate::history::head_commit(&workspace.root),
        retry: RetryPolicy::default(),
        lock_timeout: Duration::from_secs(args.lock_timeout),
        override_freeze: args.override_freeze,
        change_lock: change_lock(registry),
        hold_widening: args.hold_widening,
        override_schedule: args.override_schedule,
        take_over: args.take_over,
    };
    let reports = crate::sync::sync(&workspace.root, registry, &settings)?;
    let text = match args.format {
        ReportFormat::Human => human(&reports, settings.dry_run),
        ReportFormat::Json => serde_json::to_string_pretty(&reports)? + "\n",
    };
    super::print(&text)?;
    // A failure is 2; changes held back by a hold, with nothing failed, are 1.
    let status = if reports.iter().any(|report| report.failed.is_some()) {
        ExitStatus::Error
    } else if reports.iter().all(EnvironmentReport::succeeded) {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    };
    super::release_at_exit(reports);
    Ok(status)
}

/// The change lock in words, when the variable `policies.change_lock_env` names is set and not
/// empty: its value is the reason.
pub(super) fn change_lock(registry: &Registry) -> Option<String> {
    let variable = &registry.config.policies.change_lock_env;
    let reason = std::env::var(variable)
        .ok()
        .filter(|reason| !reason.trim().is_empty())?;
    Some(format!("the change lock `{variable}` is on: {}", reason.trim()))
}

/// The main job: validate, sync every environment, build the site.
pub(super) fn deploy(workspace: &Workspace, args: DeployArgs) -> anyhow::Result<ExitStatus> {
    super::print("== validate\n")?;
    // The registry is read once, by the validation, and used by every step after it.
    let (validation, registry) = super::validate::validate(
        workspace,
        crate::cli::ValidateArgs {
            path: None,
            format: crate::cli::OutputFormat::Human,
            output: None,
            skip: Vec::new(),
        },
    )?;
    let Some(registry) = registry.filter(|_| validation == ExitStatus::Success) else {
        eprintln!("not syncing: validation failed");
        return Ok(validation);
    };
    // The site describes the moment the sync resolved, so both agree on which steps are due.
    let synced_at = super::parse_at(args.at.as_deref())?;
    super::print("\n== sync\n")?;
    let synced = sync_registry(
        workspace,
        &registry,
        SyncArgs {
            environments: Vec::new(),
            dry_run: false,
            prune: args.prune,
            at: Some(synced_at.to_string()),
            lock_timeout: args.lock_timeout,
            override_freeze: args.override_freeze.clone(),
            hold_widening: None,
            override_schedule: args.override_schedule.clone(),
            take_over: args.take_over,
            format: ReportFormat::Human,
        },
    )?;
    if synced != ExitStatus::Success {
        return Ok(synced);
    }
    super::print("\n== site\n")?;
    super::site::build(
        workspace,
        &registry,
        crate::cli::SiteArgs {
            out: args.out,
            templates: None,
            at: Some(synced_at.to_string()),
        },
    )
}

fn human(reports: &[EnvironmentReport], dry_run: bool) -> String {
    let mut out = String::new();
    let mut applied = 0;
    for report in reports {
        applied += report.applied.len();
        environment_lines(&mut out, report, dry_run);
        if let Some(delivery) = &report.notifications {
            for line in super::notify::lines(delivery) {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    let failed = reports.iter().filter(|r| r.failed.is_some()).count();
    let refused = reports.iter().filter(|r| r.refused.is_some()).count();
    let held: usize = reports.iter().map(|r| r.held.len()).sum();
    let summary = if dry_run {
        let planned: usize = reports.iter().map(|r| r.plan.changes.len()).sum();
        format!(
            "dry run: {} planned in {}, nothing changed",
            count(planned, "change"),
            count(reports.len(), "environment")
        )
    } else if failed > 0 {
        let held = if held > 0 {
            format!(", {held} held back")
        } else {
            String::new()
        };
        format!(
            "sync failed: {} applied{held}; rerun `flagops sync` once the cause is fixed to finish",
            count(applied, "change")
        )
    } else if refused > 0 {
        format!(
            "sync refused in {}: {} applied; rerun `flagops sync --take-over` once the registry says what each should hold",
            count(refused, "environment"),
            count(applied, "change")
        )
    } else if held > 0 {
        let what = if held == 1 {
            "change that widens exposure"
        } else {
            "changes that widen exposure"
        };
        format!(
            "sync held back {held} {what}: {} applied; rerun `flagops sync` once the hold is lifted to finish",
            count(applied, "change")
        )
    } else {
        format!(
            "synced {}: {} applied",
            count(reports.len(), "environment"),
            count(applied, "change")
        )
    };
    let _ = writeln!(out, "{summary}");
    out
}

/// What happened in one environment.
fn environment_lines(out: &mut String, report: &EnvironmentReport, dry_run: bool) {
    let environment = &report.environment;
    if let Some(reason) = &report.refused {
        let _ = writeln!(out, "{environment}: REFUSED, nothing applied");
        for change in &report.plan.changes {
            let _ = writeln!(out, "  not applied  {change}");
        }
        for line in reason.lines() {
            let _ = writeln!(out, "  {line}");
        }
        for line in crate::plan::render::kept_lines(&report.plan) {
            let _ = writeln!(out, "{}", crate::escape::one_line(&line));
        }
        return;
    }
    if let Some(failure) = &report.failed {
        match &failure.change {
            Some(change) => {
                let total = report.plan.changes.len();
                let _ = writeln!(
                    out,
                    "{environment}: FAILED after applying {} of {total}",
                    report.applied.len()
                );
                for done in &report.applied {
                    let _ = writeln!(out, "  applied      {done}");
                }
                let _ = writeln!(out, "  failed       {change}");
                for line in failure.error.lines() {
                    let _ = writeln!(out, "               {line}");
                }
                for rest in &report.not_applied {
                    let _ = writeln!(out, "  not applied  {rest}");
                }
            }
            None if !report.applied.is_empty() => {
                let _ = writeln!(
                    out,
                    "{environment}: FAILED after applying all {}",
                    count(report.applied.len(), "change")
                );
                for done in &report.applied {
                    let _ = writeln!(out, "  applied      {done}");
                }
                for line in failure.error.lines() {
                    let _ = writeln!(out, "  {line}");
                }
            }
            None => {
                let _ = writeln!(out, "{environment}: FAILED before any change");
                for line in failure.error.lines() {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
        held(out, report, dry_run);
        return;
    }
    let changes: Vec<&Change> = if dry_run {
        report
            .plan
            .changes
            .iter()
            .filter(|change| !report.held.contains(change))
            .collect()
    } else {
        report.applied.iter().collect()
    };
    let verb = if dry_run { "would apply" } else { "applied" };
    if !report.held.is_empty() {
        let held_verb = if dry_run { "would hold back" } else { "held back" };
        let _ = writeln!(
            out,
            "{environment}: {verb} {}, {held_verb} {} that {} exposure",
            count(changes.len(), "change"),
            report.held.len(),
            if report.held.len() == 1 { "widens" } else { "widen" }
        );
        for change in changes {
            let _ = writeln!(out, "  {change}");
        }
    } else if changes.is_empty() {
        let _ = writeln!(out, "{environment}: in sync, nothing to do");
    } else {
        let _ = writeln!(out, "{environment}: {verb} {}", count(changes.len(), "change"));
        for change in changes {
            let _ = writeln!(out, "  {change}");
        }
    }
    held(out, report, dry_run);
    for line in crate::plan::render::kept_lines(&report.plan) {
        let _ = writeln!(out, "{}", crate::escape::one_line(&line));
    }
    if !report.plan.takeover.is_empty() && !dry_run {
        let line = format!("  ! took over with `--take-over`: {}", report.plan.takeover.join(", "));
        let _ = writeln!(out, "{}", crate::escape::one_line(&line));
    }
    for line in crate::plan::render::hold_lines(&report.plan) {
        let _ = writeln!(out, "{}", crate::escape::one_line(&line));
    }
    for line in crate::plan::render::rollout_lines(&report.plan) {
        let _ = writeln!(out, "{}", crate::escape::one_line(&line));
    }
}

/// The changes held back in `report` and why, after its other lines.
fn held(out: &mut String, report: &EnvironmentReport, dry_run: bool) {
    if report.held.is_empty() {
        return;
    }
    let verb = if dry_run { "would hold back" } else { "held back" };
    for reason in &report.held_because {
        let _ = writeln!(out, "  {verb} because {reason}");
    }
    for change in &report.held {
        let _ = writeln!(out, "  held back    {change}");
    }
}

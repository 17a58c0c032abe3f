//! `flagops sync` and `flagops deploy`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::ExitStatus;
use crate::cli::{DeployArgs, ReportFormat, SyncArgs};
use crate::load::Workspace;
use crate::model::Registry;
use crate::plan::render::count;
use crate::sync::{EnvironmentReport, RetryPolicy, SyncSettings};

pub(super) fn run(workspace: &Workspace, args: SyncArgs) -> anyhow::Result<ExitStatus> {
    let Some(registry) = super::load_valid(workspace, "syncing")? else {
        return Ok(ExitStatus::Failure);
    };
    sync_registry(workspace, &registry, args)
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
        override_schedule: args.override_schedule,
    };
    let reports = crate::sync::sync(&workspace.root, registry, &settings)?;
    let text = match args.format {
        ReportFormat::Human => human(&reports, settings.dry_run),
        ReportFormat::Json => serde_json::to_string_pretty(&reports)? + "\n",
    };
    super::print(&text)?;
    Ok(if reports.iter().all(EnvironmentReport::succeeded) {
        ExitStatus::Success
    } else {
        ExitStatus::Error
    })
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
            override_schedule: args.override_schedule.clone(),
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
        let environment = &report.environment;
        if report.skipped {
            let _ = writeln!(out, "{environment}: skipped, because an earlier environment failed");
            continue;
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
            continue;
        }
        let changes = if dry_run { &report.plan.changes } else { &report.applied };
        if changes.is_empty() {
            let _ = writeln!(out, "{environment}: in sync, nothing to do");
        } else {
            let verb = if dry_run { "would apply" } else { "applied" };
            let _ = writeln!(out, "{environment}: {verb} {}", count(changes.len(), "change"));
            for change in changes {
                let _ = writeln!(out, "  {change}");
            }
        }
        for orphan in &report.plan.kept_orphans {
            let _ = writeln!(out, "  ! {orphan}: not in the registry, kept (`--prune` deletes it)");
        }
        for line in crate::plan::render::hold_lines(&report.plan) {
            let _ = writeln!(out, "{}", crate::escape::one_line(&line));
        }
        for line in crate::plan::render::rollout_lines(&report.plan) {
            let _ = writeln!(out, "{}", crate::escape::one_line(&line));
        }
    }
    let failed = reports.iter().filter(|r| r.failed.is_some()).count();
    let summary = if dry_run {
        let planned: usize = reports.iter().map(|r| r.plan.changes.len()).sum();
        format!(
            "dry run: {} planned in {}, nothing changed",
            count(planned, "change"),
            count(reports.len(), "environment")
        )
    } else if failed > 0 {
        format!(
            "sync failed: {} applied; rerun `flagops sync` once the cause is fixed to finish",
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

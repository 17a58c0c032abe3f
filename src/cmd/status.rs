//! `flagops status`.

use anyhow::Context;

use crate::ExitStatus;
use crate::backends::Backend;
use crate::cli::{ReportFormat, StatusArgs};
use crate::load::{self, LoadOptions, Workspace};
use crate::model::Registry;
use crate::plan::{render::count, show};
use crate::state::EnvironmentState;
use crate::status::{self, EnvironmentStatus};

pub(super) fn run(workspace: &Workspace, args: StatusArgs) -> anyhow::Result<ExitStatus> {
    let Some(registry) = super::load_valid(workspace, "comparing")? else {
        return Ok(ExitStatus::Failure);
    };
    let at = super::parse_at(args.at.as_deref())?;
    let head = crate::history::head_commit(&workspace.root);
    let mut statuses = Vec::new();
    for name in super::select_environments(&registry, &args.environments)? {
        statuses.push(observe(workspace, &registry, head.as_deref(), &name, at)?.status);
    }
    let text = match args.format {
        ReportFormat::Human => human(&statuses),
        ReportFormat::Json => serde_json::to_string_pretty(&statuses)? + "\n",
    };
    super::print(&text)?;
    let clean = statuses.iter().all(EnvironmentStatus::is_clean);
    Ok(if args.exit_code && !clean {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// One environment as `status` sees it, with the backend it was read through.
pub(super) struct Observed {
    /// The backend, opened read-only.
    pub(super) backend: Box<dyn Backend>,
    /// What the backend holds.
    pub(super) actual: EnvironmentState,
    /// How the two compare, with what the last sync left.
    pub(super) status: EnvironmentStatus,
}

/// Reads `environment`'s backend read-only and compares it with the registry's desired state at
/// `at` and with the state its last sync left (`head` is the checked-out commit).
pub(super) fn observe(
    workspace: &Workspace,
    registry: &Registry,
    head: Option<&str>,
    environment: &str,
    at: jiff::Timestamp,
) -> anyhow::Result<Observed> {
    let config = registry
        .config
        .environment(environment)
        .with_context(|| format!("unknown environment `{environment}`"))?;
    let mut backend = super::open_to_read(workspace, registry, config)?;
    let reading = crate::sync::read_environment(
        backend.as_mut(),
        registry,
        environment,
        crate::steps::Moment::at(at),
        &crate::sync::RetryPolicy::default(),
    )
    .map_err(anyhow::Error::new)?;
    let snapshot = reading.snapshot;
    let synced = match &snapshot.last_sync {
        Some(record) => {
            let mut synced = synced_state(workspace, registry, head, record, &snapshot, environment)?;
            // An actor of the synced commit that no longer resolves stays as written: at
            // worst its flag shows as drifted rather than pending.
            let _ = backend.canonicalize(&mut synced);
            Some(synced)
        }
        None => None,
    };
    let names = status::Names {
        known: registry.names().collect(),
        absent: crate::resolve::absent(registry, environment),
    };
    let holds = crate::hold::decide(&snapshot.holds, registry);
    let mut status = status::classify(
        environment,
        &reading.desired,
        synced.as_ref(),
        &snapshot.flags,
        &names,
        &holds.held,
        snapshot.last_sync.clone(),
    );
    status.rollouts = reading
        .rollouts
        .into_iter()
        .filter(|standing| !holds.held.iter().any(|hold| hold.flag == standing.flag))
        .collect();
    Ok(Observed {
        backend,
        actual: snapshot.flags,
        status,
    })
}

/// The state the last sync left: the desired state of the commit it applied, at the time it
/// resolved, with the rollout steps the store marks as applied. The current registry stands in
/// when that commit is the checked-out one or cannot be read.
fn synced_state(
    workspace: &Workspace,
    registry: &Registry,
    head: Option<&str>,
    record: &crate::backends::SyncRecord,
    snapshot: &crate::backends::Snapshot,
    environment: &str,
) -> anyhow::Result<EnvironmentState> {
    let desired = |registry: &Registry, at| {
        crate::steps::resolve(
            registry,
            environment,
            crate::steps::Moment::at(at),
            &snapshot.steps,
            &[],
        )
        .0
    };
    let resolved_at = crate::resolve::parse_time(&record.resolved_at).unwrap_or_else(|_| jiff::Timestamp::now());
    if let Some(commit) = &record.commit
        && Some(commit.as_str()) != head
    {
        let config_name = workspace
            .config_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match crate::history::read_revision(&workspace.root, commit, &config_name, &registry.config.flags_dir) {
            Ok(revision) => {
                if let Some(config) = revision.config {
                    let flags_dir = workspace.resolve(&registry.config.flags_dir);
                    let loaded = load::load_sources(config, revision.flags, &flags_dir, &LoadOptions::default());
                    if let Some(then) = loaded.registry {
                        return Ok(desired(&then, resolved_at));
                    }
                }
            }
            Err(error) => eprintln!(
                "{}",
                crate::escape::shown(&format!(
                    "note: cannot read the last synced commit `{commit}` ({error}); comparing with the current registry"
                ))
            ),
        }
    }
    Ok(desired(registry, resolved_at))
}

fn human(statuses: &[EnvironmentStatus]) -> String {
    let mut out = String::new();
    for status in statuses {
        let last = match &status.last_sync {
            Some(record) => {
                let commit = record
                    .commit
                    .as_deref()
                    .map(|c| c.chars().take(12).collect::<String>())
                    .unwrap_or_else(|| "an unknown commit".to_string());
                format!(
                    "last synced {} by {} at {commit}",
                    crate::plan::render::time(&record.at),
                    record.by
                )
            }
            None => "never synced".to_string(),
        };
        push_line(
            &mut out,
            format!(
                "{}: {} in sync, {} pending, {} drifted{} ({last})",
                status.environment,
                count(status.in_sync, "flag"),
                status.pending.len(),
                status.drifted.len(),
                if status.held.is_empty() {
                    String::new()
                } else {
                    format!(", {} held", status.held.len())
                }
            ),
        );
        for flag in &status.pending {
            push_line(
                &mut out,
                format!(
                    "  pending  {}: {} → {}",
                    flag.flag,
                    show(flag.actual.as_ref()),
                    show(flag.desired.as_ref())
                ),
            );
        }
        for flag in &status.drifted {
            push_line(
                &mut out,
                format!(
                    "  drifted  {}: {} (the registry says {}; `flagops sync` restores it)",
                    flag.flag,
                    show(flag.actual.as_ref()),
                    show(flag.desired.as_ref())
                ),
            );
        }
        for held in &status.held {
            push_line(
                &mut out,
                format!(
                    "  held     {}: {}, {} (the registry says {}; `flagops release` ends the hold)",
                    held.status.flag,
                    show(held.status.actual.as_ref()),
                    crate::hold::describe(&held.hold),
                    show(held.status.desired.as_ref())
                ),
            );
        }
        for standing in &status.rollouts {
            push_line(
                &mut out,
                format!("  rollout  {}: {}", standing.flag, crate::steps::describe(standing)),
            );
        }
        // What the last sync run saw, from its record: no metric guard is asked here.
        let observed = status.last_sync.as_ref().map(|record| &record.observed);
        for guard in observed.iter().flat_map(|observed| &observed.guards) {
            push_line(
                &mut out,
                format!(
                    "  guard    {}: {} (asked {})",
                    guard.verdict.flag,
                    crate::guard::describe(&guard.verdict),
                    crate::plan::render::time(&guard.at)
                ),
            );
        }
        for held in observed.iter().flat_map(|observed| &observed.held_back) {
            push_line(
                &mut out,
                format!(
                    "  held back {}: {} → {}, by the last sync: {}",
                    held.flag,
                    show(held.actual.as_ref()),
                    show(held.desired.as_ref()),
                    held.why.join("; ")
                ),
            );
        }
        for orphan in &status.orphans {
            push_line(
                &mut out,
                format!("  orphan   {orphan}: not in the registry (`flagops sync --prune` deletes it)"),
            );
        }
        for kept in &status.without_entry {
            let environment = &status.environment;
            push_line(
                &mut out,
                format!(
                    "  kept     {}: {}; no entry for {environment} in its file (`{environment}: absent` deletes it)",
                    kept.flag,
                    show(kept.actual.as_ref())
                ),
            );
        }
    }
    out
}

/// Appends one line of the report; a value from a backend (a flag name, who synced) cannot
/// break it in two.
fn push_line(out: &mut String, line: String) {
    out.push_str(&crate::escape::one_line(&line));
    out.push('\n');
}

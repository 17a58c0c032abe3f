//! Sync: apply a fresh plan to every environment, in promotion order.
//!
//! For each environment: take its lock, read its actual state, diff it with the desired state,
//! apply the changes in plan order (retrying transient failures with backoff), and record the
//! completed sync. A hard failure stops that environment; every later one is still read and
//! planned, but only its changes that do not widen exposure (rollbacks, kill switches) are
//! applied, and the others are held back, as a change lock holds them back in protected
//! environments. What was applied, not applied and held back is reported, and a rerun finishes
//! the job because it plans afresh.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use backon::{BlockingRetryable, ExponentialBuilder};
use serde::Serialize;

use crate::backends::{self, ApplyContext, Backend, BackendError, SyncRecord};
use crate::lock::Lock;
use crate::model::Registry;
use crate::plan::{self, Change, DiffOptions, Plan};
use crate::state::EnvironmentState;

/// How transient failures are retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: usize,
    /// The first delay; each next one doubles, with jitter.
    pub first_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
}

/// What a sync does.
#[derive(Clone, Debug)]
pub struct SyncSettings {
    /// Plan and report only.
    pub dry_run: bool,
    /// Delete flags gone from the registry.
    pub prune: bool,
    /// The environments to sync, by name; empty for all.
    pub environments: Vec<String>,
    /// The time the desired state is resolved at (RFC 3339 timestamp).
    pub at: jiff::Timestamp,
    /// Who runs the sync.
    pub by: String,
    /// The registry commit.
    pub commit: Option<String>,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// How long to wait for another sync of the same environment.
    pub lock_timeout: Duration,
    /// Why environments in a change freeze are synced anyway; `None` leaves them alone.
    pub override_freeze: Option<String>,
    /// The change lock in force, in words with its reason: protected environments get only the
    /// changes that do not widen exposure.
    pub change_lock: Option<String>,
    /// Why every selected environment gets only the changes that do not widen exposure, as when
    /// an earlier environment's sync job failed.
    pub hold_widening: Option<String>,
    /// Why a protected environment is synced at a future `at`; `None` refuses to.
    pub override_schedule: Option<String>,
    /// Change or delete, in an environment's first sync (no sync record), flags it holds that
    /// flagops did not write; without it such a sync changes nothing (`Plan::takeover`).
    pub take_over: bool,
}

/// What `read_environment` found: the desired state in the backend's terms, what the backend
/// holds, and where each rollout stands in the environment.
#[derive(Clone, Debug)]
pub struct Reading {
    /// The desired state, resolved with the store's step marks and canonicalized.
    pub desired: EnvironmentState,
    /// What the backend holds.
    pub snapshot: backends::Snapshot,
    /// Every flag whose rollout plan sets the environment (`crate::steps`).
    pub rollouts: Vec<crate::steps::Standing>,
}

/// What happened in one environment.
#[derive(Clone, Debug, Serialize)]
pub struct EnvironmentReport {
    /// The environment.
    pub environment: String,
    /// The plan computed from its actual state (empty when it was not reached).
    pub plan: Plan,
    /// The changes applied, in order.
    pub applied: Vec<Change>,
    /// The change that failed, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<Failure>,
    /// The changes not applied because of the failure.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_applied: Vec<Change>,
    /// The changes held back because they widen exposure while a hold is in force.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<Change>,
    /// Why changes that widen exposure are held back here: a change lock, `--hold-widening`, an
    /// earlier environment that did not reach its desired state.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_because: Vec<String>,
    /// Why the whole plan was refused, when it was: the environment's first sync would change
    /// flags flagops did not write (`Plan::takeover`), and `--take-over` was not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The metric guards that held a rollout step or rolled it back (`crate::guard`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub guarded: Vec<crate::guard::Verdict>,
    /// The notifications sent after the environment's sync, and those still pending
    /// (`crate::notify`); they never change whether the sync succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications: Option<crate::notify::Delivery>,
}

/// A change that could not be applied, or an environment that could not be read.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// The change, when one failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// The error, with its causes.
    pub error: String,
}

/// The outcome of applying one plan.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// The changes applied.
    pub applied: Vec<Change>,
    /// The change that failed and the error.
    pub failed: Option<(Change, String)>,
    /// The changes after it.
    pub not_applied: Vec<Change>,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            retries: 4,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl EnvironmentReport {
    /// Whether the environment ended in the desired state.
    pub fn succeeded(&self) -> bool {
        self.failed.is_none() && self.held.is_empty() && self.refused.is_none()
    }
}

/// The plan for one environment from its actual state.
pub fn plan_environment(
    registry: &Registry,
    environment: &str,
    actual: &EnvironmentState,
    at: jiff::Timestamp,
    prune: bool,
) -> Plan {
    let desired = crate::resolve::desired(registry, environment, at);
    diff_environment(registry, environment, &desired, actual, prune)
}

/// The plan that takes `actual` to a `desired` state already resolved (and put in the
/// backend's terms by `read_environment`).
pub fn diff_environment(
    registry: &Registry,
    environment: &str,
    desired: &EnvironmentState,
    actual: &EnvironmentState,
    prune: bool,
) -> Plan {
    let options = DiffOptions {
        known: registry.names().collect(),
        absent: crate::resolve::absent(registry, environment),
        prune,
        requires: requires_map(registry),
    };
    plan::diff(environment, desired, actual, &options)
}

/// The plan that takes what the backend holds to the desired state of `reading`, leaving alone
/// the flags an emergency change holds (`crate::hold`): a held flag is planned as it is stored
/// and listed in `Plan::held`; a hold whose flag changed in the registry since is listed in
/// `Plan::released`, and its flag planned as usual. The rollouts of the flags not held go in
/// `Plan::rollouts`, with the step marks a sync records.
pub fn plan_with_holds(registry: &Registry, environment: &str, reading: &Reading, prune: bool) -> Plan {
    let snapshot = &reading.snapshot;
    let decision = crate::hold::decide(&snapshot.holds, registry);
    let mut desired = reading.desired.clone();
    crate::hold::pin(&mut desired, &snapshot.flags, &decision.held);
    let mut plan = diff_environment(registry, environment, &desired, &snapshot.flags, prune);
    plan.rollouts = reading
        .rollouts
        .iter()
        .filter(|standing| !decision.held.iter().any(|hold| hold.flag == standing.flag))
        .cloned()
        .collect();
    plan.held = decision.held;
    plan.released = decision.released;
    // With no sync record, nothing the environment holds was synced there by flagops: every
    // change to a stored flag would overwrite state someone else wrote (`SyncSettings::take_over`).
    if snapshot.last_sync.is_none() {
        plan.takeover = plan
            .changes
            .iter()
            .filter(|change| change.from.is_some())
            .map(|change| change.flag.clone())
            .collect();
    }
    plan
}

/// What the backend holds, and the desired state of `environment` at `moment` given the step
/// marks it holds (`crate::steps::resolve`), in the backend's terms (`Backend::canonicalize`); both
/// reads are retried like changes.
pub fn read_environment(
    backend: &mut dyn Backend,
    registry: &Registry,
    environment: &str,
    moment: crate::steps::Moment,
    retry: &RetryPolicy,
) -> Result<Reading, BackendError> {
    let at = moment.at;
    let what = format!("reading `{environment}`");
    // The plans' own schedule is put in the backend's terms before the read, as it always was:
    // what `canonicalize` learns (a `gitlab` repository's path for its hashed id) names the
    // actors `fetch` reports. The step marks then choose the states actually wanted.
    // `canonicalize` leaves a state as it was when it fails, so a retry needs no fresh copy.
    let mut scheduled = crate::resolve::desired(registry, environment, at);
    retrying(retry, &what, || backend.canonicalize(&mut scheduled))?;
    let snapshot = retrying(retry, &what, || backend.fetch())?;
    let (resolved, rollouts) = crate::steps::resolve(registry, environment, moment, &snapshot.steps, &[]);
    // A step due with a metric guard takes effect only on the guard's healthy answer, asked now.
    let checks = crate::guard::pending(registry, environment, &rollouts);
    let (resolved, rollouts) = if checks.is_empty() {
        (resolved, rollouts)
    } else {
        let verdicts = crate::prometheus::evaluate(&registry.config, &checks, jiff::Timestamp::now(), retry);
        crate::steps::resolve(registry, environment, moment, &snapshot.steps, &verdicts)
    };
    let mut desired = resolved;
    retrying(retry, &what, || backend.canonicalize(&mut desired))?;
    Ok(Reading {
        desired,
        snapshot,
        rollouts,
    })
}

/// Every flag's `requires`, for ordering changes.
pub fn requires_map(registry: &Registry) -> BTreeMap<&str, Vec<&str>> {
    registry
        .flags
        .iter()
        .map(|file| {
            (
                file.flag.name.as_str(),
                file.flag.requires.iter().map(String::as_str).collect(),
            )
        })
        .collect()
}

/// Applies `plan` through `backend`, change by change, retrying transient failures; stops at
/// the first failure that remains. A change to a flag with one of `marks` carries it: it applies
/// that rollout step.
pub fn apply_plan(
    backend: &mut dyn Backend,
    plan: &Plan,
    context: &ApplyContext,
    marks: &[backends::StepMark],
    retry: &RetryPolicy,
) -> ApplyReport {
    let mut report = ApplyReport::default();
    let mut changes = plan.changes.iter();
    for change in changes.by_ref() {
        let context = ApplyContext {
            step: marks.iter().find(|mark| mark.flag == change.flag).cloned(),
            ..context.clone()
        };
        match retrying(retry, &format!("`{}`", change.flag), || backend.apply(change, &context)) {
            Ok(()) => report.applied.push(change.clone()),
            Err(error) => {
                report.failed = Some((change.clone(), error_chain(&anyhow::Error::new(error))));
                break;
            }
        }
    }
    report.not_applied = changes.cloned().collect();
    // A store that writes its changes together writes them now; if it cannot, none took effect.
    if !report.applied.is_empty()
        && let Err(error) = retrying(retry, "writing the changes", || backend.flush())
    {
        let mut unwritten = std::mem::take(&mut report.applied).into_iter();
        let first = unwritten.next().expect("not empty");
        let mut not_applied: Vec<Change> = unwritten.collect();
        not_applied.extend(report.failed.take().map(|(change, _)| change));
        not_applied.append(&mut report.not_applied);
        report.failed = Some((first, error_chain(&anyhow::Error::new(error))));
        report.not_applied = not_applied;
    }
    report
}

/// Runs `attempt`, retrying `Transient` failures with exponential backoff and jitter, waiting
/// at least as long as the server's `Retry-After`; each retry is announced on stderr, naming
/// `what` is being done.
pub fn retrying<T>(
    retry: &RetryPolicy,
    what: &str,
    attempt: impl FnMut() -> Result<T, BackendError>,
) -> Result<T, BackendError> {
    // The server's Retry-After, when longer than the backoff's own delay.
    let asked_wait: Rc<Cell<Option<Duration>>> = Rc::default();
    let asked_by_sleep = Rc::clone(&asked_wait);
    let policy = ExponentialBuilder::default()
        .with_min_delay(retry.first_delay)
        .with_max_delay(retry.max_delay)
        .with_max_times(retry.retries)
        .with_jitter();
    attempt
        .retry(policy)
        .when(|error| matches!(error, BackendError::Transient { .. }))
        .notify(|error, delay| {
            if let BackendError::Transient { retry_after, .. } = error {
                asked_wait.set(*retry_after);
            }
            let wait = asked_wait.get().map_or(delay, |asked| asked.max(delay));
            let message = format!("retrying {what} in {:.1} s: {error}", wait.as_secs_f64());
            eprintln!("{}", crate::escape::shown(&message));
        })
        .sleep(move |delay: Duration| std::thread::sleep(asked_by_sleep.take().map_or(delay, |asked| asked.max(delay))))
        .call()
}

/// Syncs the registry's environments in promotion order.
pub fn sync(root: &Path, registry: &Registry, settings: &SyncSettings) -> anyhow::Result<Vec<EnvironmentReport>> {
    let config = &registry.config;
    let wanted: BTreeSet<&str> = settings.environments.iter().map(String::as_str).collect();
    for name in &wanted {
        if config.environment(name).is_none() {
            let known: Vec<&str> = config.environment_names().collect();
            anyhow::bail!(
                "unknown environment `{name}`\nhelp: the environments in flagops.yml are {}",
                known.join(", ")
            );
        }
    }
    let now = jiff::Timestamp::now().to_string();
    let mut reports = Vec::new();
    // The environments before this one that did not reach their desired state.
    let mut behind: Vec<String> = Vec::new();
    for environment in &config.environments {
        if !wanted.is_empty() && !wanted.contains(environment.name.as_str()) {
            continue;
        }
        let holds = holds(settings, environment, &behind);
        let report = match sync_environment(root, registry, environment, settings, &now, &holds) {
            Ok(report) => report,
            Err(error) => EnvironmentReport {
                environment: environment.name.clone(),
                plan: Plan {
                    environment: environment.name.clone(),
                    ..Plan::default()
                },
                applied: Vec::new(),
                failed: Some(Failure {
                    change: None,
                    error: error_chain(&error),
                }),
                not_applied: Vec::new(),
                held: Vec::new(),
                held_because: holds,
                refused: None,
                guarded: Vec::new(),
                notifications: None,
            },
        };
        let mut report = report;
        if !settings.dry_run {
            let guards = crate::notify::GuardContext {
                verdicts: &report.guarded,
                at: &now,
                by: &settings.by,
                commit: settings.commit.as_deref(),
            };
            report.notifications =
                crate::notify::deliver_reporting(root, registry, &environment.name, &guards, settings.lock_timeout);
        }
        if !report.succeeded() {
            behind.push(format!("`{}`", environment.name));
        }
        reports.push(report);
    }
    Ok(reports)
}

/// Why `environment` may get only changes that do not widen exposure: `--hold-widening`, the
/// change lock (protected environments only), earlier environments `behind` their desired state.
fn holds(settings: &SyncSettings, environment: &crate::config::Environment, behind: &[String]) -> Vec<String> {
    let mut holds = Vec::new();
    if let Some(reason) = &settings.hold_widening {
        holds.push(format!("--hold-widening: {reason}"));
    }
    if environment.protected
        && let Some(lock) = &settings.change_lock
    {
        holds.push(lock.clone());
    }
    if !behind.is_empty() {
        holds.push(format!(
            "an earlier environment did not reach its desired state: {}",
            behind.join(", ")
        ));
    }
    holds
}

/// Splits `plan` into the changes to apply and those held back when `holds` is not empty.
fn split_plan(registry: &Registry, plan: &Plan, holds: &[String]) -> (Plan, Vec<Change>) {
    if holds.is_empty() {
        return (plan.clone(), Vec::new());
    }
    hold_widening(registry, plan)
}

/// Splits `plan` into the changes that do not widen exposure and those that do
/// (`Change::widens`, with each flag's `default_enabled` from the registry).
pub fn hold_widening(registry: &Registry, plan: &Plan) -> (Plan, Vec<Change>) {
    plan.hold_widening(|name| {
        registry
            .flags
            .iter()
            .find(|file| file.flag.name == name)
            .map(|file| file.flag.default_enabled)
    })
}

fn sync_environment(
    root: &Path,
    registry: &Registry,
    environment: &crate::config::Environment,
    settings: &SyncSettings,
    now: &str,
    holds: &[String],
) -> anyhow::Result<EnvironmentReport> {
    let config = &registry.config;
    let _lock = if settings.dry_run {
        None
    } else {
        let path = backends::lock_path(root, config, &environment.name);
        let holder = crate::lock::describe_self(&format!("flagops sync by {}", settings.by), now);
        Some(Lock::acquire(&path, &holder, settings.lock_timeout)?)
    };
    let access = if settings.dry_run {
        backends::Access::Read
    } else {
        backends::Access::Write {
            lock_wait: settings.lock_timeout,
        }
    };
    let mut backend = backends::open(root, config, environment, access)?;
    if !settings.dry_run {
        // Each applied change is journaled for notification around its apply (`crate::notify`).
        backend = crate::notify::wrap(root, registry, &environment.name, backend);
    }
    // A step that takes effect is marked at the later of the clock and the time resolved, so
    // the next step never waits less than it should.
    let clock: jiff::Timestamp = now.parse()?;
    let moment = crate::steps::Moment {
        at: settings.at,
        applied_at: settings.at.max(clock),
    };
    let reading = read_environment(backend.as_mut(), registry, &environment.name, moment, &settings.retry)
        .map_err(anyhow::Error::new)?;
    let plan = plan_with_holds(registry, &environment.name, &reading, settings.prune || config.prune);
    let (to_apply, held) = split_plan(registry, &plan, holds);
    let guarded = plan
        .rollouts
        .iter()
        .filter_map(|standing| standing.guard.clone())
        .filter(|verdict| !verdict.outcome.is_healthy())
        .collect();
    let mut report = EnvironmentReport {
        environment: environment.name.clone(),
        plan,
        applied: Vec::new(),
        failed: None,
        not_applied: Vec::new(),
        held,
        held_because: holds.to_vec(),
        refused: None,
        guarded,
        notifications: None,
    };
    // The first sync of an environment that already holds flags changes none of them unless told
    // to: what it holds was written by something else (a live GitLab, by hand) and may be right.
    if !report.plan.takeover.is_empty() && !settings.take_over {
        report.refused = Some(takeover_refusal(&report.plan));
        report.not_applied = report.plan.changes.clone();
        report.held = Vec::new();
        return Ok(report);
    }
    if settings.dry_run {
        return Ok(report);
    }
    let plan = to_apply;
    // Freezes are judged by the clock of the run, not by the time the plan was resolved at.
    let freeze = config.freeze_at(&environment.name, now.parse()?);
    if !plan.is_empty()
        && settings.override_freeze.is_none()
        && let Some(window) = freeze
    {
        report.not_applied = plan.changes.clone();
        report.failed = Some(Failure {
            change: None,
            error: format!(
                "`{}` is in the change freeze `{}` (from {} until {}): {} not applied\nhelp: wait until the freeze ends, or record why it must happen now with `--override-freeze \"REASON\"`",
                environment.name,
                window.name,
                window.from,
                window.until,
                crate::plan::render::count(plan.changes.len(), "change")
            ),
        });
        return Ok(report);
    }
    // Rollout steps resolved at a future time would reach a protected environment ahead of
    // their schedule: only with a reason, recorded in the sync record.
    let ahead = environment.protected && settings.at > clock && !(plan.is_empty() && plan.marks().next().is_none());
    if ahead && settings.override_schedule.is_none() {
        report.not_applied = plan.changes.clone();
        report.failed = Some(Failure {
            change: None,
            error: format!(
                "`{}` is protected, and `--at {}` is ahead of the clock ({clock}): {} and {} not applied\nhelp: leave out `--at` to apply what is due now, use `--dry-run` or `flagops plan --at` to preview, or record why it must happen now with `--override-schedule \"REASON\"`",
                environment.name,
                settings.at,
                crate::plan::render::count(plan.changes.len(), "change"),
                crate::plan::render::count(plan.marks().count(), "rollout step")
            ),
        });
        return Ok(report);
    }
    // A reviewed change to a held flag reached the registry: the hold goes before the flag is
    // synced, so a sync that stops later leaves no hold that no longer applies.
    for hold in &plan.released {
        let what = format!("releasing the hold of `{}`", hold.flag);
        if let Err(error) = retrying(&settings.retry, &what, || backend.set_hold(&hold.flag, None)) {
            report.not_applied = plan.changes.clone();
            report.failed = Some(Failure {
                change: None,
                error: error_chain(&anyhow::Error::new(error).context(format!("failed {what}"))),
            });
            return Ok(report);
        }
    }
    let marks: Vec<backends::StepMark> = plan.marks().cloned().collect();
    let context = ApplyContext {
        environment: environment.name.clone(),
        by: settings.by.clone(),
        commit: settings.commit.clone(),
        at: now.to_string(),
        reason: None,
        step: None,
    };
    let applied = apply_plan(backend.as_mut(), &plan, &context, &marks, &settings.retry);
    report.applied = applied.applied;
    report.not_applied = applied.not_applied;
    if let Some((change, error)) = applied.failed {
        report.failed = Some(Failure {
            change: Some(change),
            error,
        });
        return Ok(report);
    }
    // Every change is applied: the steps whose state a flag held already are marked too (those
    // that changed a flag were marked with their change).
    for mark in marks
        .iter()
        .filter(|mark| !report.applied.iter().any(|change| change.flag == mark.flag))
    {
        let what = format!("recording the rollout step of `{}`", mark.flag);
        if let Err(error) = retrying(&settings.retry, &what, || backend.record_step(mark)) {
            report.failed = Some(Failure {
                change: None,
                error: error_chain(&anyhow::Error::new(error).context(format!("failed {what}"))),
            });
            return Ok(report);
        }
    }
    let observed = observations(registry, reading.snapshot.last_sync.as_ref(), &report, now);
    let held_back = !report.held.is_empty();
    let record = match &reading.snapshot.last_sync {
        // The environment is not in its desired state, so the sync is not recorded as completed:
        // the last completed sync's record stays, with what this run saw.
        Some(previous) if held_back => SyncRecord {
            observed,
            ..previous.clone()
        },
        // A first sync that held everything back wrote nothing, and has nothing to record.
        None if held_back && report.applied.is_empty() => return Ok(report),
        // A first sync records itself even when it held changes back: the flags it wrote are
        // flagops's from now on, and the next sync must not take them for a take-over.
        _ => SyncRecord {
            at: now.to_string(),
            resolved_at: settings.at.to_string(),
            by: settings.by.clone(),
            commit: settings.commit.clone(),
            changes: report.applied.len(),
            override_freeze: freeze.and(settings.override_freeze.clone()),
            override_schedule: settings.override_schedule.clone().filter(|_| ahead),
            take_over: !report.plan.takeover.is_empty(),
            backend: Some(environment.backend.kind().to_string()),
            observed,
        },
    };
    if let Err(error) = backend.record_sync(&record) {
        // Every change was applied; only the record of the run is missing, and a rerun (a no-op)
        // writes it.
        let what = if held_back {
            "failed to record what the sync held back"
        } else {
            "failed to record the sync"
        };
        report.failed = Some(Failure {
            change: None,
            error: error_chain(&anyhow::Error::new(error).context(what)),
        });
    }
    Ok(report)
}

/// What a run of `report`'s environment saw, to keep in its sync record: each guarded flag's
/// last verdict (this run's, else the one `previous` kept, for flags still in the registry) and
/// the changes it held back.
fn observations(
    registry: &Registry,
    previous: Option<&SyncRecord>,
    report: &EnvironmentReport,
    now: &str,
) -> backends::Observations {
    let mut guards: BTreeMap<String, backends::GuardRecord> = previous
        .into_iter()
        .flat_map(|record| record.observed.guards.iter())
        .filter(|guard| registry.knows(&guard.verdict.flag))
        .map(|guard| (guard.verdict.flag.clone(), guard.clone()))
        .collect();
    for verdict in report
        .plan
        .rollouts
        .iter()
        .filter_map(|standing| standing.guard.as_ref())
    {
        let mut verdict = verdict.clone();
        // An unreachable server's error may quote its address.
        if let crate::guard::Outcome::Unreachable { error } = &mut verdict.outcome {
            *error = crate::escape::redact_urls(error).into_owned();
        }
        guards.insert(
            verdict.flag.clone(),
            backends::GuardRecord {
                at: now.to_string(),
                verdict,
            },
        );
    }
    backends::Observations {
        guards: guards.into_values().collect(),
        held_back: report
            .held
            .iter()
            .map(|change| backends::HeldBack {
                flag: change.flag.clone(),
                desired: change.to.clone(),
                actual: change.from.clone(),
                why: report.held_because.clone(),
            })
            .collect(),
    }
}

/// Why the first sync of `plan`'s environment changes nothing: the flags it would change, which
/// flagops never synced there, and the ways forward.
fn takeover_refusal(plan: &Plan) -> String {
    let environment = &plan.environment;
    let flags: Vec<String> = plan.takeover.iter().map(|flag| format!("`{flag}`")).collect();
    format!(
        "`{environment}` has no sync record, so flagops did not write what it holds, and this first sync would change or delete {} of the flags it holds: {}\nhelp: check them with `flagops plan --env {environment}`; `flagops import gitlab --state {environment}` writes the live state into the flag files, `{environment}: absent` or no entry decides what is deleted, and `flagops sync --take-over` applies the registry over the rest",
        plan.takeover.len(),
        flags.join(", ")
    )
}

/// An error and its causes on one line each.
pub fn error_chain(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        text.push_str("\n  caused by: ");
        text.push_str(&cause.to_string());
    }
    text
}

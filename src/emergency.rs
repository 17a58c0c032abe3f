//! Break-glass: apply one flag's change to environments at once, outside a sync, and hold it.
//!
//! `flagops set ... --emergency --reason TEXT` calls `apply`: for each named environment, in
//! promotion order, it takes the environment's lock as a sync does, reads the backend, applies
//! only this flag's change with the sync's retries, recording the reason in the audit record,
//! and stores a `backends::Hold` so that no sync reverts the change until a reviewed change to
//! the flag reaches the registry (`crate::hold`). Change freezes do not stop it; the audit
//! record says when one was open. `release` removes holds, under the same lock.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::backends::{self, ApplyContext, Backend, Hold};
use crate::config::Config;
use crate::lock::Lock;
use crate::model::Registry;
use crate::plan::{self, Change, DiffOptions, Plan};
use crate::state::{EnvironmentState, Stored};
use crate::sync::{RetryPolicy, error_chain, retrying};

/// Who breaks the glass, why, and how patiently.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Who applies the change.
    pub by: String,
    /// The registry commit checked out, when known.
    pub commit: Option<String>,
    /// Why (`--reason`), recorded in every audit record and hold.
    pub reason: String,
    /// The merge request that brings git in line, once known.
    pub merge_request: Option<String>,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// How long to wait for a sync that holds an environment's lock.
    pub lock_timeout: Duration,
}

/// What happened in one environment.
#[derive(Clone, Debug, Serialize)]
pub struct EnvironmentOutcome {
    /// The environment.
    pub environment: String,
    /// The change applied; `None` when the environment already held the state.
    pub applied: Option<Change>,
    /// The hold stored, when the environment got the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
    /// The change freeze the environment was in, when it was in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freeze: Option<String>,
    /// Why the environment did not get the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The notifications of the change sent, and those still pending (`crate::notify`), as a
    /// sync sends them; they never change whether the environment got the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications: Option<crate::notify::Delivery>,
}

impl EnvironmentOutcome {
    /// Whether the environment holds the change, held.
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// What `release` did in one environment.
#[derive(Clone, Debug, Serialize)]
pub struct Released {
    /// The environment.
    pub environment: String,
    /// The hold removed; `None` when the flag was not held there.
    pub hold: Option<Hold>,
    /// What the next sync will do for the flag there.
    pub next_sync: Plan,
}

/// Applies `states` (the state each environment gets, in promotion order) to `flag`, holding it.
/// `registry` is the registry before the edit: the held definition's fingerprint is taken from
/// it. An environment that fails does not stop the others: in an emergency, every environment
/// that can take the change should.
pub fn apply(
    root: &Path,
    registry: &Registry,
    flag: &str,
    states: &[(String, Option<Stored>)],
    settings: &Settings,
) -> anyhow::Result<Vec<EnvironmentOutcome>> {
    let file = registry
        .flags
        .iter()
        .find(|file| file.flag.name == flag)
        .ok_or_else(|| anyhow::anyhow!("no flag `{flag}` in the registry"))?;
    let fingerprint = crate::hold::fingerprint(file);
    let now = jiff::Timestamp::now();
    let mut outcomes = Vec::new();
    for (environment, state) in states {
        let freeze = registry
            .config
            .freeze_at(environment, now)
            .map(|window| window.name.clone());
        let mut outcome = EnvironmentOutcome {
            environment: environment.clone(),
            applied: None,
            hold: None,
            freeze: freeze.clone(),
            error: None,
            notifications: None,
        };
        match apply_environment(
            root,
            registry,
            flag,
            environment,
            state.as_ref(),
            &fingerprint,
            freeze.as_deref(),
            &now.to_string(),
            settings,
        ) {
            Ok((applied, hold)) => {
                outcome.applied = applied;
                outcome.hold = Some(hold);
            }
            Err(error) => outcome.error = Some(error_chain(&error)),
        }
        // Sent once the environment's lock is released, as after a sync.
        let nothing = crate::notify::GuardContext {
            verdicts: &[],
            at: "",
            by: "",
            commit: None,
        };
        outcome.notifications =
            crate::notify::deliver_reporting(root, registry, environment, &nothing, settings.lock_timeout);
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

#[allow(clippy::too_many_arguments)]
fn apply_environment(
    root: &Path,
    registry: &Registry,
    flag: &str,
    environment: &str,
    state: Option<&Stored>,
    fingerprint: &str,
    freeze: Option<&str>,
    now: &str,
    settings: &Settings,
) -> anyhow::Result<(Option<Change>, Hold)> {
    let (_lock, backend) = open_locked(
        root,
        &registry.config,
        environment,
        "flagops set --emergency",
        now,
        settings,
    )?;
    // The change is announced as a sync's are, through the environment's outbox.
    let mut backend = crate::notify::wrap(root, registry, environment, backend);
    let what = format!("reading `{environment}`");
    let mut desired = EnvironmentState::new();
    if let Some(state) = state {
        desired.insert(flag.to_string(), state.clone());
    }
    let desired = retrying(&settings.retry, &what, || {
        let mut canonical = desired.clone();
        backend.canonicalize(&mut canonical).map(|()| canonical)
    })?;
    let snapshot = retrying(&settings.retry, &what, || backend.fetch())?;
    let actual: EnvironmentState = snapshot
        .flags
        .get(flag)
        .map(|stored| (flag.to_string(), stored.clone()))
        .into_iter()
        .collect();
    let options = DiffOptions {
        known: BTreeSet::from([flag]),
        absent: BTreeSet::from([flag]),
        prune: true,
        requires: Default::default(),
    };
    let change_plan = plan::diff(environment, &desired, &actual, &options);
    let reason = match freeze {
        Some(window) => format!("{} (during the change freeze `{window}`)", settings.reason),
        None => settings.reason.clone(),
    };
    let context = ApplyContext {
        environment: environment.to_string(),
        by: settings.by.clone(),
        commit: settings.commit.clone(),
        at: now.to_string(),
        reason: Some(reason),
        step: None,
    };
    let report = crate::sync::apply_plan(backend.as_mut(), &change_plan, &context, &[], &settings.retry);
    if let Some((_, error)) = report.failed {
        anyhow::bail!("{error}");
    }
    let hold = Hold {
        flag: flag.to_string(),
        state: desired.get(flag).cloned(),
        by: settings.by.clone(),
        at: now.to_string(),
        reason: settings.reason.clone(),
        fingerprint: crate::hold::fingerprint_for(snapshot.holds.get(flag), fingerprint),
        merge_request: settings.merge_request.clone(),
    };
    retrying(&settings.retry, &format!("holding `{flag}` in `{environment}`"), || {
        backend.set_hold(flag, Some(&hold))
    })
    .map_err(|error| {
        anyhow::Error::new(error).context(format!(
            "the change was applied, but its hold could not be stored: the next sync of `{environment}` would revert it"
        ))
    })?;
    Ok((report.applied.into_iter().next(), hold))
}

/// Removes the hold of `flag` in each of `environments` (in promotion order), under each
/// environment's lock, and says what the next sync will do for the flag there.
pub fn release(
    root: &Path,
    registry: &Registry,
    flag: &str,
    environments: &[String],
    at: jiff::Timestamp,
    settings: &Settings,
) -> anyhow::Result<Vec<Released>> {
    let config = &registry.config;
    let now = jiff::Timestamp::now().to_string();
    let mut released = Vec::new();
    for environment in environments {
        let (_lock, mut backend) = open_locked(root, config, environment, "flagops release", &now, settings)?;
        let mut reading = crate::sync::read_environment(
            backend.as_mut(),
            registry,
            environment,
            crate::steps::Moment::at(at),
            &settings.retry,
        )
        .map_err(anyhow::Error::new)?;
        let hold = reading.snapshot.holds.remove(flag);
        if hold.is_some() {
            retrying(
                &settings.retry,
                &format!("releasing `{flag}` in `{environment}`"),
                || backend.set_hold(flag, None),
            )
            .map_err(anyhow::Error::new)?;
        }
        let prune = config.prune;
        let mut next_sync = crate::sync::plan_with_holds(registry, environment, &reading, prune);
        next_sync.changes.retain(|change| change.flag == flag);
        next_sync.rollouts.retain(|standing| standing.flag == flag);
        next_sync.held.clear();
        next_sync.released.clear();
        next_sync.kept_orphans.retain(|orphan| orphan == flag);
        released.push(Released {
            environment: environment.clone(),
            hold,
            next_sync,
        });
    }
    Ok(released)
}

/// Records `merge_request` (the web address of the merge request that brings git in line) in
/// the holds of `flag` that `outcomes` stored, under each environment's lock again, and in the
/// outcomes. A hold that changed since (released, or replaced by another emergency) is left as
/// it is. Returns the environments where it could not be recorded, and why.
pub fn record_merge_request(
    root: &Path,
    config: &Config,
    flag: &str,
    outcomes: &mut [EnvironmentOutcome],
    merge_request: &str,
    settings: &Settings,
) -> Vec<(String, String)> {
    let now = jiff::Timestamp::now().to_string();
    let mut failures = Vec::new();
    for outcome in outcomes.iter_mut() {
        let Some(stored) = &outcome.hold else { continue };
        let environment = outcome.environment.clone();
        let recorded = (|| -> anyhow::Result<Hold> {
            let (_lock, mut backend) =
                open_locked(root, config, &environment, "flagops set --emergency", &now, settings)?;
            let snapshot = retrying(&settings.retry, &format!("reading `{environment}`"), || backend.fetch())?;
            if snapshot.holds.get(flag) != Some(stored) {
                anyhow::bail!(
                    "the hold of `{flag}` changed since it was stored (released, or replaced by another emergency change), so it is left as it is"
                );
            }
            let hold = Hold {
                merge_request: Some(merge_request.to_string()),
                ..stored.clone()
            };
            retrying(&settings.retry, &format!("holding `{flag}` in `{environment}`"), || {
                backend.set_hold(flag, Some(&hold))
            })?;
            Ok(hold)
        })();
        match recorded {
            Ok(hold) => outcome.hold = Some(hold),
            Err(error) => failures.push((environment, error_chain(&error))),
        }
    }
    failures
}

/// Takes `environment`'s lock as `doing` (a command, for the lock's holder) and opens its
/// backend to write, as a sync does.
fn open_locked(
    root: &Path,
    config: &Config,
    environment: &str,
    doing: &str,
    now: &str,
    settings: &Settings,
) -> anyhow::Result<(Lock, Box<dyn Backend>)> {
    let definition = config
        .environment(environment)
        .ok_or_else(|| anyhow::anyhow!("unknown environment `{environment}`"))?;
    let holder = crate::lock::describe_self(&format!("{doing} by {}", settings.by), now);
    let lock = Lock::acquire(
        &backends::lock_path(root, config, environment),
        &holder,
        settings.lock_timeout,
    )?;
    let backend = backends::open(
        root,
        config,
        definition,
        backends::Access::Write {
            lock_wait: settings.lock_timeout,
        },
    )?;
    Ok((lock, backend))
}

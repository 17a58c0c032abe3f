//! Every statement the `flipper-sql` backend runs, and what its errors mean for a sync.
//!
//! Reading is one read-only, repeatable-read transaction over both tables (`read_all`); a
//! change is one statement (`WRITE_FLAG`, run by `write_change`); the sync lock is a session
//! advisory lock (`take_lock`). `classify` sorts PostgreSQL's errors into what a sync retries,
//! reconnects for, or stops at.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Context;
use postgres::{Client, Statement};

use super::rows::GateRow;
use super::{LOCK_KEY, timestamp};
use crate::backends::{ApplyContext, BackendError, SyncRecord};
use crate::plan::Change;

/// flagops's own tables, created if missing by a writable open.
pub(super) const OWN_TABLES: &str = "
CREATE TABLE IF NOT EXISTS flagops_audit (
  id bigserial PRIMARY KEY,
  environment text NOT NULL,
  flag text NOT NULL,
  action text NOT NULL,
  from_state jsonb,
  to_state jsonb,
  applied_by text NOT NULL,
  applied_at timestamptz NOT NULL,
  commit_sha text
);
ALTER TABLE flagops_audit ADD COLUMN IF NOT EXISTS reason text;
CREATE TABLE IF NOT EXISTS flagops_sync (
  id bigserial PRIMARY KEY,
  environment text NOT NULL,
  started_at timestamptz NOT NULL,
  resolved_at timestamptz NOT NULL,
  synced_by text NOT NULL,
  commit_sha text,
  changes bigint NOT NULL,
  override_freeze text
);
ALTER TABLE flagops_sync ADD COLUMN IF NOT EXISTS override_freeze text;
ALTER TABLE flagops_sync ADD COLUMN IF NOT EXISTS override_schedule text;
ALTER TABLE flagops_sync ADD COLUMN IF NOT EXISTS take_over boolean NOT NULL DEFAULT false;
ALTER TABLE flagops_sync ADD COLUMN IF NOT EXISTS observed jsonb;
CREATE TABLE IF NOT EXISTS flagops_holds (
  environment text NOT NULL,
  flag text NOT NULL,
  hold jsonb NOT NULL,
  PRIMARY KEY (environment, flag)
);
CREATE TABLE IF NOT EXISTS flagops_steps (
  environment text NOT NULL,
  flag text NOT NULL,
  step jsonb NOT NULL,
  PRIMARY KEY (environment, flag)
);
";

/// One flag's change as a single statement, so one round trip and one transaction: `$1` the
/// flag, `$2` whether it stays stored, `$3` and `$4` the keys and values of its gate rows, `$5`
/// to `$12` the audit record. Its gate rows are locked; those not wanted (and `NULL` values) are
/// deleted, missing ones inserted with the current time, and rows already right kept. The
/// `features` row is inserted when missing and never touched otherwise, or deleted when the
/// flag goes. The audit record is written only when a row changed. Every part of a `WITH`
/// sees the rows as they were before the statement, so the parts do not overlap.
const WRITE_FLAG: &str = "
WITH desired AS (
  SELECT gate.key, gate.value FROM unnest($3::text[], $4::text[]) AS gate(key, value)
), existing AS (
  SELECT id, key, value FROM feature_gates WHERE feature_key = $1::text FOR UPDATE
), stale AS (
  DELETE FROM feature_gates WHERE id IN (
    SELECT e.id FROM existing e
    WHERE e.value IS NULL OR NOT EXISTS (SELECT 1 FROM desired d WHERE d.key = e.key AND d.value = e.value)
  )
  RETURNING 1
), added AS (
  INSERT INTO feature_gates (feature_key, key, value, created_at, updated_at)
  SELECT $1::text, d.key, d.value, now(), now() FROM desired d
  WHERE NOT EXISTS (SELECT 1 FROM existing e WHERE e.key = d.key AND e.value = d.value)
  RETURNING 1
), created AS (
  INSERT INTO features (key, created_at, updated_at)
  SELECT $1::text, now(), now()
  WHERE $2::boolean AND NOT EXISTS (SELECT 1 FROM features WHERE key = $1::text)
  RETURNING 1
), removed AS (
  DELETE FROM features WHERE NOT $2::boolean AND key = $1::text RETURNING 1
)
INSERT INTO flagops_audit (environment, flag, action, from_state, to_state, applied_by, applied_at, commit_sha, reason)
SELECT $5::text, $1::text, $6::text, $7::jsonb, $8::jsonb, $9::text, $10::timestamptz, $11::text, $12::text
WHERE EXISTS (SELECT 1 FROM stale) OR EXISTS (SELECT 1 FROM added)
   OR EXISTS (SELECT 1 FROM created) OR EXISTS (SELECT 1 FROM removed)
";

/// The statements a change runs, prepared once per connection.
pub(super) struct Statements {
    write_flag: Statement,
}

/// A change's audit record, as bound to the insert.
pub(super) struct AuditRow {
    environment: String,
    action: String,
    from: Option<serde_json::Value>,
    to: Option<serde_json::Value>,
    by: String,
    at: jiff::Timestamp,
    commit: Option<String>,
    reason: Option<String>,
}

impl AuditRow {
    pub(super) fn new(change: &Change, context: &ApplyContext) -> Result<AuditRow, BackendError> {
        let json = |value: &Option<crate::state::Stored>| {
            value
                .as_ref()
                .map(serde_json::to_value)
                .transpose()
                .context("failed to serialize a state")
        };
        let action = serde_json::to_value(change.action)
            .context("failed to serialize an action")?
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(AuditRow {
            environment: context.environment.clone(),
            action,
            from: json(&change.from)?,
            to: json(&change.to)?,
            by: context.by.clone(),
            at: timestamp(&context.at)?,
            commit: context.commit.clone(),
            reason: context.reason.clone(),
        })
    }
}

/// Makes one flag's rows exactly `desired` (or removes the flag), with its audit record, in one
/// statement and so one transaction. Rows already right are left as they are, as Flipper leaves
/// them; when nothing had to change, no audit record is written either, so a retry after a lost
/// acknowledgement records nothing twice.
pub(super) fn write_change(
    client: &mut Client,
    statements: &Statements,
    flag: &str,
    desired: Option<&BTreeSet<(String, String)>>,
    audit: &AuditRow,
) -> Result<(), postgres::Error> {
    let (keys, values): (Vec<&str>, Vec<&str>) = desired
        .into_iter()
        .flatten()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .unzip();
    client.execute(
        &statements.write_flag,
        &[
            &flag,
            &desired.is_some(),
            &keys,
            &values,
            &audit.environment,
            &audit.action,
            &audit.from,
            &audit.to,
            &audit.by,
            &audit.at,
            &audit.commit,
            &audit.reason,
        ],
    )?;
    Ok(())
}

/// Stores `hold` (a serialized `Hold`) as the hold of `flag` in `environment`, replacing the one
/// it had, or removes it.
pub(super) fn write_hold(
    client: &mut Client,
    environment: &str,
    flag: &str,
    hold: Option<&serde_json::Value>,
) -> Result<(), postgres::Error> {
    match hold {
        Some(hold) => client.execute(
            "INSERT INTO flagops_holds (environment, flag, hold) VALUES ($1, $2, $3) ON CONFLICT (environment, flag) DO UPDATE SET hold = EXCLUDED.hold",
            &[&environment, &flag, hold],
        ),
        None => client.execute(
            "DELETE FROM flagops_holds WHERE environment = $1 AND flag = $2",
            &[&environment, &flag],
        ),
    }
    .map(|_| ())
}

/// Stores `step` (a serialized `StepMark`) as the rollout step last applied to `flag` in
/// `environment`, replacing the one it had.
pub(super) fn write_step(
    client: &mut Client,
    environment: &str,
    flag: &str,
    step: &serde_json::Value,
) -> Result<(), postgres::Error> {
    client
        .execute(
            "INSERT INTO flagops_steps (environment, flag, step) VALUES ($1, $2, $3) ON CONFLICT (environment, flag) DO UPDATE SET step = EXCLUDED.step",
            &[&environment, &flag, step],
        )
        .map(|_| ())
}

pub(super) type Features = Vec<String>;
pub(super) type Gates = Vec<(String, GateRow)>;

pub(super) type Holds = Vec<serde_json::Value>;

/// The JSON `column` of every row of flagops's `table` for `environment`, by flag; none when the
/// table does not exist yet (a database no flagops of that version has written to).
fn json_rows(
    transaction: &mut postgres::Transaction<'_>,
    table: &str,
    column: &str,
    environment: &str,
) -> Result<Vec<serde_json::Value>, postgres::Error> {
    let exists: bool = transaction
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = transaction.query(
        &format!("SELECT {column} FROM {table} WHERE environment = $1 ORDER BY flag"),
        &[&environment],
    )?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}
pub(super) type Steps = Vec<serde_json::Value>;

/// Reads every feature, every gate row, the last sync record, the environment's emergency
/// holds and its rollout step marks in one consistent snapshot.
pub(super) fn read_all(
    client: &mut Client,
    environment: &str,
) -> Result<(Features, Gates, Option<SyncRecord>, Holds, Steps), postgres::Error> {
    let mut transaction = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let features = transaction
        .query("SELECT key FROM features", &[])?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let gates = transaction
        .query("SELECT feature_key, key, value FROM feature_gates", &[])?
        .iter()
        .filter_map(|row| {
            let flag: Option<String> = row.get(0);
            let key: Option<String> = row.get(1);
            Some((
                flag?,
                GateRow {
                    key: key?,
                    value: row.get(2),
                },
            ))
        })
        .collect();
    let has_sync_table: bool = transaction
        .query_one("SELECT to_regclass('flagops_sync') IS NOT NULL", &[])?
        .get(0);
    let last_sync = if has_sync_table {
        transaction
            .query_opt(
                "SELECT started_at, resolved_at, synced_by, commit_sha, changes, override_freeze, override_schedule, take_over, observed FROM flagops_sync WHERE environment = $1 ORDER BY id DESC LIMIT 1",
                &[&environment],
            )?
            .map(|row| SyncRecord {
                at: row.get::<_, jiff::Timestamp>(0).to_string(),
                resolved_at: row.get::<_, jiff::Timestamp>(1).to_string(),
                by: row.get(2),
                commit: row.get(3),
                changes: usize::try_from(row.get::<_, i64>(4)).unwrap_or(0),
                override_freeze: row.get(5),
                override_schedule: row.get(6),
                take_over: row.get(7),
                // What a run saw is shown, never acted on: a value that does not read is shown
                // as nothing.
                observed: row
                    .get::<_, Option<serde_json::Value>>(8)
                    .and_then(|value| serde_json::from_value(value).ok())
                    .unwrap_or_default(),
                backend: None,
            })
    } else {
        None
    };
    let holds = json_rows(&mut transaction, "flagops_holds", "hold", environment)?;
    let steps = json_rows(&mut transaction, "flagops_steps", "step", environment)?;
    transaction.commit()?;
    Ok((features, gates, last_sync, holds, steps))
}

pub(super) fn prepare(client: &mut Client) -> Result<Statements, postgres::Error> {
    Ok(Statements {
        write_flag: client.prepare(WRITE_FLAG)?,
    })
}

/// Refuses a database without GitLab's `features` and `feature_gates`.
pub(super) fn check_gitlab_tables(client: &mut Client, target: &str) -> anyhow::Result<()> {
    let row = client
        .query_one(
            "SELECT to_regclass('features') IS NOT NULL, to_regclass('feature_gates') IS NOT NULL",
            &[],
        )
        .with_context(|| format!("failed to read the tables of `{target}`"))?;
    for (column, table) in ["features", "feature_gates"].into_iter().enumerate() {
        if !row.get::<_, bool>(column) {
            anyhow::bail!(
                "the database `{target}` has no `{table}` table\nhelp: flipper-sql writes into GitLab's own Flipper tables and never creates them: point the environment at GitLab's database (such as `gitlabhq_production`), whose migrations create `features` and `feature_gates`"
            );
        }
    }
    Ok(())
}

/// Takes the sync lock of the database, waiting up to `wait` for its holder.
pub(super) fn take_lock(client: &mut Client, target: &str, wait: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut announced = false;
    loop {
        let taken: bool = client
            .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&LOCK_KEY.0, &LOCK_KEY.1])
            .with_context(|| format!("failed to take the sync lock of `{target}`"))?
            .get(0);
        if taken {
            return Ok(());
        }
        let holder = lock_holder(client);
        if started.elapsed() >= wait {
            anyhow::bail!(
                "the Flipper database `{target}` is being synced by {holder} (waited {} s)\nhelp: wait for that sync to finish, or give it longer with `--lock-timeout`; its lock goes with its connection",
                wait.as_secs()
            );
        }
        if !announced {
            eprintln!("waiting for the sync lock of the Flipper database `{target}`, held by {holder}");
            announced = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Who holds the sync lock, as far as this user may see.
fn lock_holder(client: &mut Client) -> String {
    let row = client.query_opt(
        "SELECT l.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'a local socket'), a.backend_start
         FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 2",
        &[&i64::from(LOCK_KEY.0), &i64::from(LOCK_KEY.1)],
    );
    match row {
        Ok(Some(row)) => {
            let pid: i32 = row.get(0);
            let name: String = row.get(1);
            let from: String = row.get(2);
            let since: Option<jiff::Timestamp> = row.get(3);
            let name = if name.is_empty() {
                String::new()
            } else {
                format!(" `{name}`")
            };
            let since = since.map(|time| format!(" since {time}")).unwrap_or_default();
            format!("session {pid}{name} from {from}{since}")
        }
        _ => "another session".to_string(),
    }
}

/// A database error, sorted by what a sync does about it.
pub(super) enum Classified {
    /// The connection broke: connect again and retry.
    Broken(String),
    /// Worth retrying on the same connection.
    Retry(String),
    /// The credentials or privileges were refused.
    Refused(String),
    /// The database refused the statement.
    Rejected(String),
    /// Anything else.
    Other(anyhow::Error),
}

pub(super) fn classify(error: postgres::Error, doing: &str) -> Classified {
    if let Some(db) = error.as_db_error() {
        let message = format!("{doing}: {db}");
        let code = db.code().code();
        return match code {
            _ if code.starts_with("08") || code.starts_with("57P") => Classified::Broken(message),
            // Serialization failure, deadlock, lock not available, too many connections, and a
            // unique violation from a concurrent writer.
            "40001" | "40P01" | "55P03" | "53300" | "23505" => Classified::Retry(message),
            "28000" | "28P01" | "42501" => Classified::Refused(message),
            _ => Classified::Rejected(message),
        };
    }
    let io = std::error::Error::source(&error).is_some_and(|cause| cause.is::<std::io::Error>());
    if error.is_closed() || io {
        let cause = std::error::Error::source(&error)
            .map(|cause| format!(": {cause}"))
            .unwrap_or_default();
        return Classified::Broken(format!("{doing}: {error}{cause}"));
    }
    Classified::Other(anyhow::Error::new(error).context(doing.to_string()))
}

impl From<Classified> for BackendError {
    fn from(classified: Classified) -> BackendError {
        match classified {
            Classified::Broken(message) | Classified::Retry(message) => BackendError::Transient {
                message,
                retry_after: None,
            },
            Classified::Refused(message) => BackendError::Unauthorized(message),
            Classified::Rejected(message) => BackendError::Rejected(message),
            Classified::Other(error) => BackendError::Other(error),
        }
    }
}

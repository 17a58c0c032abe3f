//! The `flipper-sql` backend: GitLab's Flipper tables, `features` and `feature_gates`, in
//! GitLab's PostgreSQL database.
//!
//! It reads every flag's gate rows as Flipper would evaluate them (`rows::read_state`) and
//! writes, for each change, exactly the rows GitLab's Features API leaves (`rows::gate_rows`),
//! in one transaction together with the change's audit record in `flagops_audit`. A completed
//! sync is recorded in `flagops_sync`. GitLab's tables are GitLab's: they must exist, and only
//! flagops's own two tables are created (on the first writable open). A writable backend holds a
//! PostgreSQL advisory lock for as long as it is open, so two machines never sync one database
//! at once. The connection string is a secret: it is held only inside `postgres::Config`, whose
//! `Debug` hides the password, and no message quotes it.

pub mod rows;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Context;
use postgres::config::Host;
use postgres::{Client, NoTls, Statement};

use self::rows::{ActorIdError, ActorTypes, GateRow};
use super::{ApplyContext, Backend, BackendError, Snapshot, SyncRecord};
use crate::config::ActorKind;
use crate::plan::Change;
use crate::state::EnvironmentState;

/// How long a writable open waits for another sync's database lock: the default of
/// `--lock-timeout`.
pub const LOCK_WAIT: Duration = Duration::from_secs(300);

/// The advisory lock every writable flagops session takes (`pg_try_advisory_lock(int, int)`):
/// "flag" and "ops1" in ASCII.
pub const LOCK_KEY: (i32, i32) = (0x666c_6167, 0x6f70_7331);

/// flagops's own tables, created if missing by a writable open.
const OWN_TABLES: &str = "
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
CREATE TABLE IF NOT EXISTS flagops_sync (
  id bigserial PRIMARY KEY,
  environment text NOT NULL,
  started_at timestamptz NOT NULL,
  resolved_at timestamptz NOT NULL,
  synced_by text NOT NULL,
  commit_sha text,
  changes bigint NOT NULL
);
";

/// One flag's change as a single statement, so one round trip and one transaction: `$1` the
/// flag, `$2` whether it stays stored, `$3` and `$4` the keys and values of its gate rows, `$5`
/// to `$11` the audit record. Its gate rows are locked; those not wanted (and `NULL` values) are
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
INSERT INTO flagops_audit (environment, flag, action, from_state, to_state, applied_by, applied_at, commit_sha)
SELECT $5::text, $1::text, $6::text, $7::jsonb, $8::jsonb, $9::text, $10::timestamptz, $11::text
WHERE EXISTS (SELECT 1 FROM stale) OR EXISTS (SELECT 1 FROM added)
   OR EXISTS (SELECT 1 FROM created) OR EXISTS (SELECT 1 FROM removed)
";

/// What the backend needs besides the connection.
#[derive(Clone, Debug)]
pub struct Options<'a> {
    /// The flagops environment.
    pub environment: &'a str,
    /// The registry's actor kinds, for Flipper ids.
    pub actor_kinds: &'a BTreeMap<String, ActorKind>,
    /// Whether changes will be applied: takes the lock and creates flagops's tables.
    pub writable: bool,
    /// How long to wait for another sync's lock.
    pub lock_wait: Duration,
}

/// An environment whose flags live in GitLab's Flipper tables.
pub struct FlipperSqlBackend {
    environment: String,
    connection: postgres::Config,
    target: String,
    writable: bool,
    lock_wait: Duration,
    types: ActorTypes,
    session: Option<Session>,
}

/// One connection and its prepared statements.
struct Session {
    client: Client,
    statements: Option<Statements>,
}

/// The statements a change runs, prepared once per connection.
struct Statements {
    write_flag: Statement,
}

/// Reads the connection string from the environment variable `url_env`: libpq's `key=value`
/// form or a `postgresql://` URL.
pub fn connection_from_env(url_env: &str, environment: &str) -> anyhow::Result<postgres::Config> {
    let Some(value) = std::env::var_os(url_env).filter(|value| !value.is_empty()) else {
        anyhow::bail!(
            "the environment variable `{url_env}` is not set: it holds the connection string of environment `{environment}`'s Flipper database\nhelp: set it to `host=... dbname=gitlabhq_production user=...` or a `postgresql://` URL"
        );
    };
    let Some(text) = value.to_str() else {
        anyhow::bail!("the environment variable `{url_env}` is not valid UTF-8");
    };
    parse_connection(text).with_context(|| format!("the connection string in `{url_env}` is not valid"))
}

/// Parses a connection string; the error never quotes it, since it may hold a password.
pub fn parse_connection(text: &str) -> anyhow::Result<postgres::Config> {
    text.parse::<postgres::Config>().map_err(|error| {
        // The parser's own messages name options (`unknown option `x``), but one quotes the
        // character it stopped at, which may belong to the password: that part is dropped.
        let cause = std::error::Error::source(&error)
            .map(|cause| cause.to_string())
            .unwrap_or_default();
        let cause = cause.split(" but got").next().unwrap_or_default();
        anyhow::anyhow!(
            "{}\nhelp: write `key=value` pairs (`host=/var/opt/gitlab/postgresql dbname=gitlabhq_production user=gitlab`) or a `postgresql://user@host:port/dbname` URL",
            if cause.is_empty() { "it cannot be parsed" } else { cause }
        )
    })
}

impl FlipperSqlBackend {
    /// Connects, checks that GitLab's tables exist and, when writable, takes the sync lock and
    /// creates flagops's own tables.
    pub fn open(mut connection: postgres::Config, options: &Options<'_>) -> anyhow::Result<FlipperSqlBackend> {
        let types = ActorTypes::new(options.actor_kinds).map_err(|error| anyhow::anyhow!("{error}"))?;
        if connection.get_ssl_mode() == postgres::config::SslMode::Require {
            anyhow::bail!(
                "`sslmode=require` is not supported: the flipper-sql backend connects without TLS\nhelp: connect through GitLab's Unix socket or over a trusted network, with `sslmode=disable` or `prefer`"
            );
        }
        if connection.get_application_name().is_none() {
            connection.application_name(&application_name());
        }
        if connection.get_connect_timeout().is_none() {
            connection.connect_timeout(Duration::from_secs(10));
        }
        let target = describe(&connection);
        let mut backend = FlipperSqlBackend {
            environment: options.environment.to_string(),
            connection,
            target,
            writable: options.writable,
            lock_wait: options.lock_wait,
            types,
            session: None,
        };
        backend.session()?;
        Ok(backend)
    }

    /// The open session, connecting (and locking) again when the connection was lost.
    fn session(&mut self) -> anyhow::Result<&mut Session> {
        if self.session.as_ref().is_some_and(|session| session.client.is_closed()) {
            self.session = None;
        }
        if self.session.is_none() {
            let mut client = self
                .connection
                .connect(NoTls)
                .with_context(|| format!("failed to connect to the Flipper database `{}`", self.target))?;
            check_gitlab_tables(&mut client, &self.target)?;
            let statements = if self.writable {
                take_lock(&mut client, &self.target, self.lock_wait)?;
                client.batch_execute(OWN_TABLES).with_context(|| {
                    format!(
                        "failed to create the tables `flagops_audit` and `flagops_sync` in `{}`\nhelp: the user needs CREATE on the schema, or an owner can create them once (docs/config.md shows the SQL)",
                        self.target
                    )
                })?;
                Some(
                    prepare(&mut client)
                        .with_context(|| format!("failed to prepare statements in `{}`", self.target))?,
                )
            } else {
                None
            };
            self.session = Some(Session { client, statements });
        }
        Ok(self.session.as_mut().expect("connected above"))
    }

    /// Turns a database error into the kind a sync acts on, dropping a broken connection so the
    /// next call connects again.
    fn failure(&mut self, error: postgres::Error, doing: &str) -> BackendError {
        let failure = classify(error, &format!("{doing} in `{}`", self.target));
        if let Classified::Broken(_) = &failure {
            self.session = None;
        }
        failure.into()
    }

    fn actor_error(&self, change: &Change, error: ActorIdError) -> BackendError {
        let environment = &self.environment;
        let flag = &change.flag;
        BackendError::Rejected(match error {
            ActorIdError::NotNumeric { actor, flipper_type } => format!(
                "flag `{flag}` in `{environment}`: actor `{actor}` is not a numeric id, and the flipper-sql backend cannot look up paths in GitLab's database (Flipper stores `{flipper_type}:<id>`)\nhelp: write the {kind}'s numeric id under `actors: {{ {kind}: [...] }}`, as GitLab shows it on the {kind}'s page",
                kind = actor.kind
            ),
            ActorIdError::UnknownKind(actor) => format!(
                "flag `{flag}` in `{environment}`: actor kind `{}` is not in `actor_kinds`",
                actor.kind
            ),
            ActorIdError::OptOut(actor) => format!(
                "flag `{flag}` in `{environment}`: actor `{actor}` ends in `:opt_out`, which GitLab reads as an opt-out\nhelp: flagops does not write opt-outs; remove the actor"
            ),
        })
    }
}

impl Backend for FlipperSqlBackend {
    fn fetch(&mut self) -> Result<Snapshot, BackendError> {
        let environment = self.environment.clone();
        let session = self.session()?;
        let read = read_all(&mut session.client, &environment);
        let (features, gates, last_sync) = read.map_err(|error| self.failure(error, "failed to read the flags"))?;
        let mut rows_by_flag: BTreeMap<String, Vec<GateRow>> =
            features.into_iter().map(|key| (key, Vec::new())).collect();
        for (flag, row) in gates {
            rows_by_flag.entry(flag).or_default().push(row);
        }
        let mut flags = EnvironmentState::new();
        for (flag, rows) in rows_by_flag {
            let state = rows::read_state(&rows, &self.types).map_err(|error| {
                anyhow::anyhow!(
                    "flag `{flag}` in `{}` has {error}\nhelp: delete the wrong row, or set the flag again through GitLab, which replaces them",
                    self.target
                )
            })?;
            flags.insert(flag, state);
        }
        Ok(Snapshot { flags, last_sync })
    }

    fn apply(&mut self, change: &Change, context: &ApplyContext) -> Result<(), BackendError> {
        if !self.writable {
            return Err(anyhow::anyhow!("the Flipper database of `{}` was opened read-only", self.environment).into());
        }
        let desired = match &change.to {
            Some(state) => Some(rows::gate_rows(state, &self.types).map_err(|error| self.actor_error(change, error))?),
            None => None,
        };
        let audit = AuditRow::new(change, context)?;
        let session = self.session()?;
        let statements = session
            .statements
            .as_ref()
            .expect("a writable session prepares its statements");
        write_change(&mut session.client, statements, &change.flag, desired.as_ref(), &audit)
            .map_err(|error| self.failure(error, &format!("failed to write flag `{}`", change.flag)))
    }

    fn record_sync(&mut self, record: &SyncRecord) -> Result<(), BackendError> {
        let started_at = timestamp(&record.at)?;
        let resolved_at = timestamp(&record.resolved_at)?;
        let environment = self.environment.clone();
        let changes = i64::try_from(record.changes).unwrap_or(i64::MAX);
        let session = self.session()?;
        session
            .client
            .execute(
                "INSERT INTO flagops_sync (environment, started_at, resolved_at, synced_by, commit_sha, changes) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&environment, &started_at, &resolved_at, &record.by, &record.commit, &changes],
            )
            .map(|_| ())
            .map_err(|error| self.failure(error, "failed to record the sync"))
    }
}

impl fmt::Debug for FlipperSqlBackend {
    /// Names the database but never the connection string, which may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlipperSqlBackend")
            .field("environment", &self.environment)
            .field("target", &self.target)
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}

/// A change's audit record, as bound to the insert.
struct AuditRow {
    environment: String,
    action: String,
    from: Option<serde_json::Value>,
    to: Option<serde_json::Value>,
    by: String,
    at: jiff::Timestamp,
    commit: Option<String>,
}

impl AuditRow {
    fn new(change: &Change, context: &ApplyContext) -> Result<AuditRow, BackendError> {
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
        })
    }
}

/// Makes one flag's rows exactly `desired` (or removes the flag), with its audit record, in one
/// statement and so one transaction. Rows already right are left as they are, as Flipper leaves
/// them; when nothing had to change, no audit record is written either, so a retry after a lost
/// acknowledgement records nothing twice.
fn write_change(
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
        ],
    )?;
    Ok(())
}

type Features = Vec<String>;
type Gates = Vec<(String, GateRow)>;

/// Reads every feature, every gate row and the last sync record in one consistent snapshot.
fn read_all(client: &mut Client, environment: &str) -> Result<(Features, Gates, Option<SyncRecord>), postgres::Error> {
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
                "SELECT started_at, resolved_at, synced_by, commit_sha, changes FROM flagops_sync WHERE environment = $1 ORDER BY id DESC LIMIT 1",
                &[&environment],
            )?
            .map(|row| SyncRecord {
                at: row.get::<_, jiff::Timestamp>(0).to_string(),
                resolved_at: row.get::<_, jiff::Timestamp>(1).to_string(),
                by: row.get(2),
                commit: row.get(3),
                changes: usize::try_from(row.get::<_, i64>(4)).unwrap_or(0),
            })
    } else {
        None
    };
    transaction.commit()?;
    Ok((features, gates, last_sync))
}

fn prepare(client: &mut Client) -> Result<Statements, postgres::Error> {
    Ok(Statements {
        write_flag: client.prepare(WRITE_FLAG)?,
    })
}

/// Refuses a database without GitLab's `features` and `feature_gates`.
fn check_gitlab_tables(client: &mut Client, target: &str) -> anyhow::Result<()> {
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
fn take_lock(client: &mut Client, target: &str, wait: Duration) -> anyhow::Result<()> {
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
                "the Flipper database `{target}` is being synced by {holder}\nhelp: wait for that sync to finish; its lock goes with its connection"
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
enum Classified {
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

fn classify(error: postgres::Error, doing: &str) -> Classified {
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

fn timestamp(text: &str) -> Result<jiff::Timestamp, BackendError> {
    Ok(text
        .parse::<jiff::Timestamp>()
        .with_context(|| format!("`{text}` is not an RFC 3339 time"))?)
}

/// `user@host:port/dbname`, for messages: never the password.
fn describe(connection: &postgres::Config) -> String {
    let host = match connection.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = connection.get_ports().first().copied().unwrap_or(5432);
    let user = connection.get_user().unwrap_or("(default user)");
    let dbname = connection.get_dbname().unwrap_or(user);
    format!("{user}@{host}:{port}/{dbname}")
}

/// `flagops (pid 42 on build-1)`: what `pg_stat_activity` shows for this process.
fn application_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "an unknown host".to_string());
    format!("flagops (pid {} on {host})", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-Pa55";

    #[test]
    fn connection_errors_never_quote_the_password() {
        for text in [
            format!("host=db user=gitlab password={SECRET} port=x"),
            format!("host=db password={SECRET} bogus=1"),
            format!("postgresql://gitlab:{SECRET}@db:notaport/gitlabhq"),
            format!("host=db password='{SECRET}"),
        ] {
            let error = parse_connection(&text).unwrap_err();
            let shown = format!("{error:#} {error:?}");
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(!shown.contains("s3cr"), "{shown}");
        }
        let config = parse_connection(&format!("postgresql://gitlab:{SECRET}@db:5433/gitlabhq")).unwrap();
        assert_eq!(describe(&config), "gitlab@db:5433/gitlabhq");
        assert!(!format!("{config:?}").contains(SECRET));
    }

    #[test]
    fn connection_from_env_names_the_variable() {
        let error = connection_from_env("FLAGOPS_TEST_SURELY_UNSET_VARIABLE", "production").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("the environment variable `FLAGOPS_TEST_SURELY_UNSET_VARIABLE` is not set"),
            "{error}"
        );
    }

    #[test]
    fn unreachable_database_error_hides_the_password() {
        // Port 1 on the loopback: refused at once.
        let config =
            parse_connection(&format!("host=127.0.0.1 port=1 user=gitlab password={SECRET} dbname=x")).unwrap();
        let kinds = BTreeMap::new();
        let options = Options {
            environment: "production",
            actor_kinds: &kinds,
            writable: true,
            lock_wait: Duration::ZERO,
        };
        let error = FlipperSqlBackend::open(config, &options).unwrap_err();
        let shown = format!("{error:#} {error:?}");
        assert!(
            shown.contains("failed to connect to the Flipper database `gitlab@127.0.0.1:1/x`"),
            "{shown}"
        );
        assert!(!shown.contains(SECRET), "{shown}");
    }
}

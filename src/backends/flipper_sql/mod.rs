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
mod sql;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use anyhow::Context;
use postgres::config::Host;
use postgres::{Client, NoTls};

use self::rows::{ActorIdError, ActorTypes, GateRow};
use self::sql::{AuditRow, Classified, Statements};
use super::{ApplyContext, Backend, BackendError, Hold, Snapshot, StepMark, SyncRecord};
use crate::config::ActorKind;
use crate::plan::Change;
use crate::state::EnvironmentState;

/// The advisory lock every writable flagops session takes (`pg_try_advisory_lock(int, int)`):
/// "flag" and "ops1" in ASCII.
pub const LOCK_KEY: (i32, i32) = (0x666c_6167, 0x6f70_7331);

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
            sql::check_gitlab_tables(&mut client, &self.target)?;
            let statements = if self.writable {
                sql::take_lock(&mut client, &self.target, self.lock_wait)?;
                client.batch_execute(sql::OWN_TABLES).with_context(|| {
                    format!(
                        "failed to create the tables `flagops_audit`, `flagops_sync`, `flagops_holds` and `flagops_steps` in `{}`\nhelp: the user needs CREATE on the schema, or an owner can create them once (docs/config.md shows the SQL)",
                        self.target
                    )
                })?;
                Some(
                    sql::prepare(&mut client)
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
        let failure = sql::classify(error, &format!("{doing} in `{}`", self.target));
        if let Classified::Broken(_) = &failure {
            self.session = None;
        }
        failure.into()
    }

    fn actor_error(&self, flag: &str, error: ActorIdError) -> String {
        let environment = &self.environment;
        match error {
            ActorIdError::NotNumeric { actor, flipper_type } => format!(
                "flag `{flag}` in `{environment}`: actor `{actor}` is not a numeric id, and the flipper-sql backend cannot look up paths in GitLab's database (Flipper stores `{flipper_type}:<id>`)\nhelp: write the {kind}'s numeric id under `actors: {{ {kind}: [...] }}`, as GitLab shows it on the {kind}'s page",
                kind = actor.kind
            ),
            ActorIdError::UnknownKind(actor) => format!(
                "flag `{flag}` in `{environment}`: actor kind `{}` is not in `actor_kinds`",
                actor.kind
            ),
            ActorIdError::NotStoragePath(actor) => format!(
                "flag `{flag}` in `{environment}`: repository `{}` is not a storage path, and the flipper-sql backend cannot look up paths in GitLab's database (Flipper stores `Repository:@hashed/<..>/<..>/<sha256 of the project id>.git`)\nhelp: write the repository's storage path as GitLab keeps it (the project's admin page shows it as \"Gitaly relative path\"), such as `@hashed/6b/86/6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b.git` for project 1",
                actor.id
            ),
            ActorIdError::OptOut(actor) => format!(
                "flag `{flag}` in `{environment}`: actor `{actor}` ends in `:opt_out`, which GitLab reads as an opt-out\nhelp: flagops does not write opt-outs; remove the actor"
            ),
        }
    }
}

impl Backend for FlipperSqlBackend {
    fn fetch(&mut self) -> Result<Snapshot, BackendError> {
        let environment = self.environment.clone();
        let session = self.session()?;
        let read = sql::read_all(&mut session.client, &environment);
        let (features, gates, last_sync, held, marked) =
            read.map_err(|error| self.failure(error, "failed to read the flags"))?;
        let mut steps = BTreeMap::new();
        for value in marked {
            let mark: StepMark = serde_json::from_value(value).map_err(|error| {
                anyhow::anyhow!(
                    "a row of `flagops_steps` for `{}` in `{}` is not a rollout step mark: {error}\nhelp: delete the row; that flag's rollout then starts again from its first step",
                    self.environment,
                    self.target
                )
            })?;
            steps.insert(mark.flag.clone(), mark);
        }
        let mut holds = BTreeMap::new();
        for value in held {
            let hold: Hold = serde_json::from_value(value).map_err(|error| {
                anyhow::anyhow!(
                    "a row of `flagops_holds` for `{}` in `{}` is not an emergency hold: {error}\nhelp: delete the row; the next sync then reverts that flag to the registry's state",
                    self.environment,
                    self.target
                )
            })?;
            holds.insert(hold.flag.clone(), hold);
        }
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
        Ok(Snapshot {
            flags,
            last_sync,
            holds,
            steps,
        })
    }

    fn apply(&mut self, change: &Change, context: &ApplyContext) -> Result<(), BackendError> {
        if !self.writable {
            return Err(anyhow::anyhow!("the Flipper database of `{}` was opened read-only", self.environment).into());
        }
        let desired = match &change.to {
            Some(state) => Some(
                rows::gate_rows(state, &self.types)
                    .map_err(|error| BackendError::Rejected(self.actor_error(&change.flag, error)))?,
            ),
            None => None,
        };
        let audit = AuditRow::new(change, context)?;
        let session = self.session()?;
        let statements = session
            .statements
            .as_ref()
            .expect("a writable session prepares its statements");
        sql::write_change(&mut session.client, statements, &change.flag, desired.as_ref(), &audit)
            .map_err(|error| self.failure(error, &format!("failed to write flag `{}`", change.flag)))
    }

    fn record_sync(&mut self, record: &SyncRecord) -> Result<(), BackendError> {
        let started_at = timestamp(&record.at)?;
        let resolved_at = timestamp(&record.resolved_at)?;
        let environment = self.environment.clone();
        let changes = i64::try_from(record.changes).unwrap_or(i64::MAX);
        let observed = (!record.observed.is_empty())
            .then(|| serde_json::to_value(&record.observed))
            .transpose()
            .context("failed to serialize what the sync saw")?;
        let session = self.session()?;
        session
            .client
            .execute(
                "INSERT INTO flagops_sync (environment, started_at, resolved_at, synced_by, commit_sha, changes, override_freeze, override_schedule, take_over, observed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[&environment, &started_at, &resolved_at, &record.by, &record.commit, &changes, &record.override_freeze, &record.override_schedule, &record.take_over, &observed],
            )
            .map(|_| ())
            .map_err(|error| self.failure(error, "failed to record the sync"))
    }

    fn set_hold(&mut self, flag: &str, hold: Option<&Hold>) -> Result<(), BackendError> {
        if !self.writable {
            return Err(anyhow::anyhow!("the Flipper database of `{}` was opened read-only", self.environment).into());
        }
        let value = hold
            .map(serde_json::to_value)
            .transpose()
            .context("failed to serialize the hold")?;
        let environment = self.environment.clone();
        let session = self.session()?;
        sql::write_hold(&mut session.client, &environment, flag, value.as_ref())
            .map_err(|error| self.failure(error, &format!("failed to store the hold of `{flag}`")))
    }

    fn record_step(&mut self, mark: &StepMark) -> Result<(), BackendError> {
        if !self.writable {
            return Err(anyhow::anyhow!("the Flipper database of `{}` was opened read-only", self.environment).into());
        }
        let value = serde_json::to_value(mark).context("failed to serialize the step mark")?;
        let environment = self.environment.clone();
        let session = self.session()?;
        sql::write_step(&mut session.client, &environment, &mark.flag, &value)
            .map_err(|error| self.failure(error, &format!("failed to record the rollout step of `{}`", mark.flag)))
    }

    /// Flipper stores actors under the ids in its rows, which are what `fetch` reports, so
    /// nothing is rewritten; an actor the rows cannot hold (a path where GitLab stores a
    /// database id, an unknown kind, an opt-out) is refused here, before any change is applied.
    fn canonicalize(&mut self, desired: &mut EnvironmentState) -> Result<(), BackendError> {
        let refused: Vec<String> = desired
            .iter()
            .filter_map(|(flag, state)| {
                rows::gate_rows(state, &self.types)
                    .err()
                    .map(|error| self.actor_error(flag, error))
            })
            .collect();
        if refused.is_empty() {
            Ok(())
        } else {
            Err(BackendError::Rejected(refused.join("\n")))
        }
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

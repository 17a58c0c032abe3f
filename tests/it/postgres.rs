//! A private PostgreSQL cluster for tests and benchmarks, and a fresh database per test.
//!
//! The cluster is Debian's PostgreSQL (`/usr/lib/postgresql/<version>/bin`, or `FLAGOPS_PG_BIN`)
//! run from a temporary directory: `initdb` (as the `postgres` user when running as root, since
//! initdb refuses root), a free loopback port, its socket in the same directory (`-k`), and
//! `pg_ctl start`. Tests share one cluster while any of them holds it and each gets its own
//! database; the last holder's drop stops the cluster and removes the directory, and a watchdog
//! process does the same if the test process dies first. Without PostgreSQL a test is skipped
//! with a note, except under `CI=true`, where that is a failure.
//!
//! Shared with `benches/flipper_sql.rs` through `#[path]`, so it uses nothing else of the tests.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// GitLab's two Flipper tables, as its migrations create them (`db/structure.sql`): timestamps
/// are `NOT NULL` with no default, and `feature_gates` is unique on key and value.
pub const GITLAB_TABLES: &str = "
CREATE TABLE features (
  id bigserial PRIMARY KEY,
  key character varying NOT NULL,
  created_at timestamp with time zone NOT NULL,
  updated_at timestamp with time zone NOT NULL
);
CREATE UNIQUE INDEX index_features_on_key ON features (key);
CREATE TABLE feature_gates (
  id bigserial PRIMARY KEY,
  feature_key character varying NOT NULL,
  key character varying NOT NULL,
  value character varying,
  created_at timestamp with time zone NOT NULL,
  updated_at timestamp with time zone NOT NULL
);
CREATE UNIQUE INDEX index_feature_gates_on_feature_key_and_key_and_value
  ON feature_gates (feature_key, key, value);
";

/// A running cluster; dropping it stops the server and removes its directory.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    owner: Option<(u32, u32)>,
    databases: AtomicUsize,
}

/// A database of its own in the shared cluster; dropping it drops the database.
pub struct Database {
    cluster: Arc<Cluster>,
    name: String,
}

/// How the cluster runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Tests: no fsync, so thousands of small transactions stay fast.
    Relaxed,
    /// Benchmarks: PostgreSQL's defaults.
    Default,
}

static SHARED: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());

/// A fresh database in the tests' shared cluster, or `None` (after a note) when PostgreSQL is
/// not installed and this is not CI.
pub fn database() -> Option<Database> {
    let cluster = {
        let mut shared = SHARED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match shared.upgrade() {
            Some(cluster) => cluster,
            None => {
                let cluster = Arc::new(Cluster::start(Durability::Relaxed)?);
                *shared = Arc::downgrade(&cluster);
                cluster
            }
        }
    };
    Some(cluster.create_database())
}

pub(crate) use crate::deps::missing;

impl Cluster {
    /// Starts a cluster in a new temporary directory.
    pub fn start(durability: Durability) -> Option<Cluster> {
        let Some(bin) = find_bin() else {
            return missing("PostgreSQL (initdb and pg_ctl)");
        };
        let dir = tempfile::Builder::new()
            .prefix("flagops-pg-")
            .tempdir()
            .expect("temporary directory");
        let owner = if is_root() {
            let owner = postgres_user().expect("the `postgres` user, which Debian's postgresql package creates");
            std::os::unix::fs::chown(dir.path(), Some(owner.0), Some(owner.1)).expect("chown");
            Some(owner)
        } else {
            None
        };
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let data = dir.path().join("data");
        run(
            Command::new(bin.join("initdb")).arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]),
            owner,
            dir.path(),
        );
        let mut settings = format!("-k {} -c listen_addresses=127.0.0.1", dir.path().display());
        if durability == Durability::Relaxed {
            settings.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        // A port found free can be taken before the server binds it: try a few.
        let mut port = 0;
        for attempt in 0..5 {
            port = free_port();
            let started = Command::new(bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.path().join("server.log"))
                .args(["-w", "-o", &format!("-p {port} {settings}"), "start"])
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .as_owner(owner)
                .status()
                .expect("run pg_ctl");
            if started.success() {
                break;
            }
            assert!(
                attempt < 4,
                "pg_ctl start failed: {}",
                std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
            );
        }
        watch(dir.path());
        Some(Cluster {
            dir,
            bin,
            port,
            owner,
            databases: AtomicUsize::new(0),
        })
    }

    /// The loopback TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the Unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A connection string for `dbname` over the Unix socket.
    pub fn connection_string(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={dbname}",
            self.dir.path().display(),
            self.port
        )
    }

    /// A client connected to `dbname`.
    pub fn client(&self, dbname: &str) -> postgres::Client {
        postgres::Client::connect(&self.connection_string(dbname), postgres::NoTls)
            .expect("connect to the test cluster")
    }

    /// Creates a new, empty database.
    pub fn create_database(self: &Arc<Cluster>) -> Database {
        let name = format!("flagops_test_{}", self.databases.fetch_add(1, Ordering::SeqCst));
        self.client("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        Database {
            cluster: Arc::clone(self),
            name,
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .as_owner(self.owner)
            .status();
    }
}

impl Database {
    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cluster it lives in.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// A libpq `key=value` connection string over the Unix socket.
    pub fn connection_string(&self) -> String {
        self.cluster.connection_string(&self.name)
    }

    /// A `postgresql://` URL over loopback TCP.
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{}", self.cluster.port, self.name)
    }

    /// A new client.
    pub fn client(&self) -> postgres::Client {
        self.cluster.client(&self.name)
    }

    /// Runs SQL statements, panicking on failure.
    pub fn execute(&self, sql: &str) {
        self.client()
            .batch_execute(sql)
            .unwrap_or_else(|error| panic!("{sql}: {error:?}"));
    }

    /// Creates GitLab's `features` and `feature_gates` tables.
    pub fn with_gitlab_tables(self) -> Database {
        self.execute(GITLAB_TABLES);
        self
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self
            .cluster
            .client("postgres")
            .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

/// Runs commands as the cluster's owner when that is not us.
trait AsOwner {
    fn as_owner(&mut self, owner: Option<(u32, u32)>) -> &mut Self;
}

impl AsOwner for Command {
    fn as_owner(&mut self, owner: Option<(u32, u32)>) -> &mut Command {
        if let Some((uid, gid)) = owner {
            self.uid(uid).gid(gid);
        }
        self
    }
}

fn run(command: &mut Command, owner: Option<(u32, u32)>, dir: &Path) {
    let output = command
        .current_dir(dir)
        .as_owner(owner)
        .output()
        .expect("run a PostgreSQL tool");
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Stops the server and removes `dir` once this process is gone, however it ends.
fn watch(dir: &Path) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         if [ -f '{dir}/data/postmaster.pid' ]; then kill -INT \"$(head -n 1 '{dir}/data/postmaster.pid')\" 2>/dev/null; sleep 2; fi; \
         rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display()
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

/// The directory holding `initdb` and `pg_ctl`.
fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("FLAGOPS_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    })
}

fn is_root() -> bool {
    // The owner of a file this process creates is this process's user.
    let probe = tempfile::NamedTempFile::new().expect("temporary file");
    use std::os::unix::fs::MetadataExt;
    probe.as_file().metadata().map(|m| m.uid() == 0).unwrap_or(false)
}

/// The uid and gid of the `postgres` user.
fn postgres_user() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&"postgres") && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

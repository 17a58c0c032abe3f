//! A private Prometheus for the guard tests, scraping a metrics endpoint the test serves.
//!
//! The server is Debian's `prometheus` (`/usr/bin/prometheus`, or `FLAGOPS_PROMETHEUS`), run on a
//! free loopback port with its data and config in a temporary directory, scraping every second
//! the `/metrics` page a `tiny_http` thread of the test serves on loopback; the test sets the
//! page's text with `Prometheus::set_metrics` and waits with `wait_for` until a query answers
//! what it expects. Dropping it stops the server. Without Prometheus a test is skipped with a
//! note, except under `CI=true`, where that is a failure.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running Prometheus and the metrics page it scrapes.
pub(crate) struct Prometheus {
    child: Option<Child>,
    port: u16,
    metrics: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts the metrics page and Prometheus, and waits until Prometheus is ready; `None`
    /// (after a note) when Prometheus is not installed and this is not CI.
    pub(crate) fn start() -> Option<Prometheus> {
        let binary =
            std::env::var_os("FLAGOPS_PROMETHEUS").map_or_else(|| PathBuf::from("/usr/bin/prometheus"), PathBuf::from);
        if !binary.is_file() {
            return crate::deps::missing("Prometheus (Debian's prometheus package)");
        }
        let metrics = Arc::new(Mutex::new(String::new()));
        let server = tiny_http::Server::http("127.0.0.1:0").expect("metrics server");
        let target = server.server_addr().to_ip().expect("an IP address").port();
        let page = Arc::clone(&metrics);
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let body = page.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
                let header = tiny_http::Header::from_bytes("Content-Type", "text/plain; version=0.0.4").unwrap();
                let _ = request.respond(tiny_http::Response::from_string(body).with_header(header));
            }
        });
        let dir = tempfile::Builder::new()
            .prefix("flagops-prom-")
            .tempdir()
            .expect("temporary directory");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
            ),
        )
        .expect("write the config");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let prometheus = Prometheus {
            child: Some(child),
            port,
            metrics,
            _dir: dir,
        };
        prometheus.wait_until("Prometheus is ready", || {
            ureq::get(format!("{}/-/ready", prometheus.url()))
                .call()
                .is_ok_and(|response| response.status() == 200)
        });
        Some(prometheus)
    }

    /// The server's base URL.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sets the text of the metrics page (the Prometheus exposition format).
    pub(crate) fn set_metrics(&self, text: &str) {
        *self.metrics.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = text.to_string();
    }

    /// The values `query` answers now, as Prometheus writes them.
    pub(crate) fn query(&self, query: &str) -> Vec<String> {
        let Ok(mut response) = ureq::get(format!("{}/api/v1/query", self.url()))
            .query("query", query)
            .call()
        else {
            return Vec::new();
        };
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        body["data"]["result"]
            .as_array()
            .map(|series| {
                series
                    .iter()
                    .filter_map(|one| one["value"][1].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until `query` answers exactly `values`: the page was scraped since it changed.
    #[track_caller]
    pub(crate) fn wait_for(&self, query: &str, values: &[&str]) {
        self.wait_until(&format!("`{query}` answers {values:?}"), || self.query(query) == values);
    }

    /// Polls `done` until it holds, failing after a generous deadline.
    #[track_caller]
    fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !done() {
            assert!(Instant::now() < deadline, "gave up waiting until {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the server, as an outage would.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

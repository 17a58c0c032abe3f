//! Benchmark: `flagops sync --env production` of the synthetic registry (10,000 flags) into a
//! real unleash-server 8.2.0 (`tests/it/unleash_server.rs`, on a private PostgreSQL cluster):
//! a first sync from an empty project, then no-op syncs right after. Reports the wall time, and
//! the writes as Unleash's event log counts them (one event per write; each read of the
//! environment logs one `features-exported`).
//!
//! The synthetic registry's percentages end in `.5`, which Unleash cannot hold
//! (`unleash-whole-percentage`): they are rounded down first.
//! Skipped with a note when the server is not installed (scripts/setup-test-deps), except under
//! `CI=true`. Run with `cargo bench --bench unleash`; record the figures in docs/benchmarks.md.

#[path = "../tests/it/deps.rs"]
mod deps;
#[path = "../tests/it/postgres.rs"]
mod postgres;
#[path = "synthetic.rs"]
mod synthetic;
#[path = "../tests/it/unleash_server.rs"]
mod unleash_server;

const FLAGS: usize = 10_000;

fn main() {
    let benchmarking = synthetic::benchmarking();
    let count = synthetic::setting("FLAGOPS_BENCH_FLAGS", FLAGS, 100);
    let Some(server) = unleash_server::Server::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    synthetic::write_registry(dir.path(), count);
    point_production_at_unleash(dir.path(), &server.url);
    let env = [("UNLEASH_BENCH_TOKEN", unleash_server::ADMIN_TOKEN)];
    let args = ["sync", "--env", "production", "--format", "json"];

    let before = server.event_total();
    let (seconds, memory, changes) = synthetic::run_sync(dir.path(), &args, &env);
    let events = server.event_total() - before;
    println!(
        "unleash: sync --env production from empty, {count} flags: {changes} changes, {events} events in Unleash's log, in {seconds:.3} s, peak memory {memory}"
    );
    let mut noop = Vec::new();
    for _ in 0..if benchmarking { 5 } else { 1 } {
        let before = server.last_event();
        let (seconds, memory, changes) = synthetic::run_sync(dir.path(), &args, &env);
        assert_eq!(changes, 0);
        let events = server.events_since(before);
        assert!(events.iter().all(|kind| kind == "features-exported"), "{events:?}");
        noop.push((seconds, memory, events.len()));
    }
    noop.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (seconds, memory, events) = &noop[noop.len() / 2];
    println!(
        "unleash: no-op sync --env production, {count} flags: {seconds:.3} s (median of {}), {events} event (an export, no write), peak memory {memory}",
        noop.len()
    );
}

/// Makes production the Unleash environment `production` of project `default`, and rounds the
/// synthetic percentages down to whole ones.
fn point_production_at_unleash(dir: &std::path::Path, url: &str) {
    synthetic::set_backend(
        dir,
        "production",
        &format!("{{ kind: unleash, url: \"{url}\", token_env: UNLEASH_BENCH_TOKEN }}"),
    );
    for entry in walkdir::WalkDir::new(dir.join("flags")) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let whole: Vec<String> = text
                .lines()
                .map(|line| match line.trim_start().strip_prefix("percentage_of_actors: ") {
                    Some(value) => line.replace(value, value.split('.').next().unwrap()),
                    None => line.to_string(),
                })
                .collect();
            std::fs::write(entry.path(), whole.join("\n") + "\n").unwrap();
        }
    }
}

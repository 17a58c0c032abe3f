//! Benchmark: `flagops sync --env production` of the synthetic registry (10,000 flags) into
//! GitLab's Flipper tables in PostgreSQL: a first sync from empty tables (every production flag
//! created, one transaction each), then a no-op sync right after.
//!
//! The cluster is a private one started for the run (`tests/it/postgres.rs`) with PostgreSQL's
//! default durability, so every commit waits for its WAL flush as it would in production.
//! Run with `cargo bench --bench flipper_sql`; record the figures in docs/benchmarks.md.

#[path = "../tests/it/deps.rs"]
mod deps;
#[path = "../tests/it/postgres.rs"]
mod postgres;
#[path = "synthetic.rs"]
mod synthetic;

const FLAGS: usize = 10_000;

fn main() {
    let benchmarking = synthetic::benchmarking();
    let count = synthetic::setting("FLAGOPS_BENCH_FLAGS", FLAGS, 100);
    let Some(cluster) = postgres::Cluster::start(postgres::Durability::Default) else {
        return;
    };
    let cluster = std::sync::Arc::new(cluster);
    let database = cluster.create_database().with_gitlab_tables();
    let dir = tempfile::tempdir().unwrap();
    synthetic::write_registry(dir.path(), count);
    point_production_at_flipper_sql(dir.path());
    let env = [("FLIPPER_DATABASE", database.connection_string())];
    let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let args = ["sync", "--env", "production", "--format", "json"];

    let (seconds, memory, changes) = synthetic::run_sync(dir.path(), &args, &env);
    let rows: i64 = database
        .client()
        .query_one("SELECT count(*) FROM feature_gates", &[])
        .unwrap()
        .get(0);
    println!(
        "flipper-sql: sync --env production from empty, {count} flags: {changes} changes ({rows} gate rows) in {seconds:.3} s, peak memory {memory}"
    );
    let mut noop = Vec::new();
    for _ in 0..if benchmarking { 5 } else { 1 } {
        let (seconds, memory, changes) = synthetic::run_sync(dir.path(), &args, &env);
        assert_eq!(changes, 0);
        noop.push((seconds, memory));
    }
    noop.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (seconds, memory) = &noop[noop.len() / 2];
    println!(
        "flipper-sql: no-op sync --env production, {count} flags: {seconds:.3} s (median of {}), peak memory {memory}",
        noop.len()
    );
}

/// Makes production a `flipper-sql` environment, and its project actors numeric ids: the
/// synthetic registry names `gitlab-org/gitlab` by path, which a database backend refuses.
fn point_production_at_flipper_sql(dir: &std::path::Path) {
    synthetic::set_backend(dir, "production", "{ kind: flipper-sql, url_env: FLIPPER_DATABASE }");
    for entry in walkdir::WalkDir::new(dir.join("flags")) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            if text.contains("gitlab-org/gitlab,") {
                std::fs::write(entry.path(), text.replace("gitlab-org/gitlab,", "278964,")).unwrap();
            }
        }
    }
}

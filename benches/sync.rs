//! Benchmark: `flagops sync` of the synthetic registry (10,000 flags) against the `file`
//! backend: a first sync from empty (every flag created in every environment), a sync of one
//! environment from empty, and a no-op sync right after.
//!
//! Run with `cargo bench --bench sync`. Prints wall times and peak memory (through
//! `/usr/bin/time` when present); record them in docs/benchmarks.md.

#[path = "synthetic.rs"]
mod synthetic;

const FLAGS: usize = 10_000;

fn main() {
    let benchmarking = synthetic::benchmarking();
    let count = synthetic::setting("FLAGOPS_BENCH_FLAGS", FLAGS, 100);
    let dir = tempfile::tempdir().unwrap();
    synthetic::write_registry(dir.path(), count);

    let (seconds, memory, changes) =
        synthetic::run_sync(dir.path(), &["sync", "--env", "production", "--format", "json"], &[]);
    println!(
        "sync --env production from empty, {count} flags: {changes} changes in {seconds:.3} s, peak memory {memory}"
    );
    let (seconds, memory, changes) = synthetic::run_sync(dir.path(), &["sync", "--format", "json"], &[]);
    println!(
        "sync of all 6 environments (production already done): {changes} changes in {seconds:.3} s, peak memory {memory}"
    );
    let mut noop = Vec::new();
    for _ in 0..if benchmarking { 5 } else { 1 } {
        let (seconds, memory, changes) = synthetic::run_sync(dir.path(), &["sync", "--format", "json"], &[]);
        assert_eq!(changes, 0);
        noop.push((seconds, memory));
    }
    noop.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (seconds, memory) = &noop[noop.len() / 2];
    println!(
        "no-op sync of 6 environments, {count} flags: {seconds:.3} s (median of {}), peak memory {memory}",
        noop.len()
    );
}

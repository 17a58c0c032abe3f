//! Benchmark: `flagops sync` of the synthetic registry (10,000 flags) against the `file`
//! backend: a first sync from empty (every flag created in every environment), a sync of one
//! environment from empty, and a no-op sync right after; then the same for the registry of
//! realistic flags (7-step rollout plans, actors, `requires`).
//! Every sync resolves the plans at `AT`, before any of their steps, so that the no-op syncs
//! stay no-ops whatever the day. Then the same registry against the
//! `gitlab` backend, each environment a fake GitLab on 127.0.0.1 (the integration tests'
//! `fake_gitlab`): a first sync from empty, and no-op syncs, counting the requests each
//! environment gets.
//!
//! Last, the synthetic registry with every environment on the `flagd` backend, each its own
//! flag-definition file: a first sync from empty and no-op syncs, which must leave the files
//! untouched.
//!
//! Run with `cargo bench --bench sync` (`FLAGOPS_BENCH_ONLY=flagd` for the flagd part alone). Prints wall times and peak memory (through
//! `/usr/bin/time` when present); record them in docs/benchmarks.md.

#[path = "synthetic.rs"]
mod synthetic;

#[allow(dead_code, unreachable_pub)]
#[path = "../tests/it/fake_gitlab.rs"]
mod fake_gitlab;

use fake_gitlab::FakeGitlab;

const ENVIRONMENTS: [&str; 6] = ["dev", "pre", "staging", "staging-ref", "ops", "production"];
const TOKEN_ENV: &str = "FLAGOPS_BENCH_GITLAB_TOKEN";

const FLAGS: usize = 10_000;

/// The time plans are resolved at: before the first step of every synthetic plan.
const AT: &str = "2026-11-01T00:00:00Z";

fn main() {
    let benchmarking = synthetic::benchmarking();
    let count = synthetic::setting("FLAGOPS_BENCH_FLAGS", FLAGS, 100);
    // `FLAGOPS_BENCH_ONLY=flagd` runs the flagd part alone.
    if std::env::var("FLAGOPS_BENCH_ONLY").as_deref() == Ok("flagd") {
        flagd(count, benchmarking);
        return;
    }
    for (name, write) in [
        ("synthetic", synthetic::write_registry as fn(&std::path::Path, usize)),
        ("realistic", synthetic::write_realistic_registry),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), count);
        let (seconds, memory, changes) = synthetic::run_sync(
            dir.path(),
            &["sync", "--env", "production", "--at", AT, "--format", "json"],
            &[],
        );
        println!(
            "sync --env production from empty, {count} {name} flags: {changes} changes in {seconds:.3} s, peak memory {memory}"
        );
        let (seconds, memory, changes) =
            synthetic::run_sync(dir.path(), &["sync", "--at", AT, "--format", "json"], &[]);
        println!(
            "sync of all 6 environments (production already done), {name}: {changes} changes in {seconds:.3} s, peak memory {memory}"
        );
        let mut noop = Vec::new();
        for _ in 0..if benchmarking { 5 } else { 1 } {
            let (seconds, memory, changes) =
                synthetic::run_sync(dir.path(), &["sync", "--at", AT, "--format", "json"], &[]);
            assert_eq!(changes, 0);
            noop.push((seconds, memory));
        }
        noop.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (seconds, memory) = &noop[noop.len() / 2];
        println!(
            "no-op sync of 6 environments, {count} {name} flags: {seconds:.3} s (median of {}), peak memory {memory}",
            noop.len()
        );
    }

    gitlab(count, benchmarking);
    flagd(count, benchmarking);
}

/// The synthetic registry with each environment written to a flagd file.
fn flagd(count: usize, benchmarking: bool) {
    let dir = tempfile::tempdir().unwrap();
    synthetic::write_registry(dir.path(), count);
    for name in ENVIRONMENTS {
        synthetic::set_backend(dir.path(), name, &format!("{{ kind: flagd, path: flagd/{name}.json }}"));
    }
    let (seconds, memory, changes) = synthetic::run_sync(dir.path(), &["sync", "--at", AT, "--format", "json"], &[]);
    let bytes: u64 = ENVIRONMENTS
        .iter()
        .map(|name| {
            std::fs::metadata(dir.path().join(format!("flagd/{name}.json")))
                .unwrap()
                .len()
        })
        .sum();
    println!(
        "flagd: sync of 6 environments from empty, {count} flags: {changes} changes in {seconds:.3} s, {bytes} bytes of flagd files, peak memory {memory}"
    );
    let written = |name: &str| {
        std::fs::metadata(dir.path().join(format!("flagd/{name}.json")))
            .unwrap()
            .modified()
            .unwrap()
    };
    let before: Vec<_> = ENVIRONMENTS.iter().map(|name| written(name)).collect();
    let mut noop = Vec::new();
    for _ in 0..if benchmarking { 5 } else { 1 } {
        let (seconds, memory, changes) =
            synthetic::run_sync(dir.path(), &["sync", "--at", AT, "--format", "json"], &[]);
        assert_eq!(changes, 0);
        noop.push((seconds, memory));
    }
    let after: Vec<_> = ENVIRONMENTS.iter().map(|name| written(name)).collect();
    assert_eq!(before, after, "a no-op sync rewrote a flagd file");
    noop.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (seconds, memory) = &noop[noop.len() / 2];
    println!(
        "flagd: no-op sync of 6 environments, {count} flags: {seconds:.3} s (median of {}), files untouched, peak memory {memory}",
        noop.len()
    );
}

/// The same registry synced into six fake GitLab instances over HTTP.
fn gitlab(count: usize, benchmarking: bool) {
    let dir = tempfile::tempdir().unwrap();
    synthetic::write_registry(dir.path(), count);
    let fakes: Vec<FakeGitlab> = ENVIRONMENTS.iter().map(|_| FakeGitlab::start()).collect();
    for fake in &fakes {
        // Every project and user the synthetic flags name by id.
        let mut world = fake.world();
        for i in 0..count as u64 {
            world.projects.insert(i, format!("synthetic/project-{i}"));
            world.users.insert(i * 7, format!("user-{}", i * 7));
        }
    }
    let config = std::fs::read_to_string(dir.path().join("flagops.yml")).unwrap();
    let start = config.find("environments:").unwrap();
    let end = config.find("# GitLab's flag types").unwrap();
    let mut environments = String::from("environments:\n");
    for (name, fake) in ENVIRONMENTS.iter().zip(&fakes) {
        environments.push_str(&format!(
            "  - name: {name}\n    backend: {{ kind: gitlab, url: \"{}\", token_env: {TOKEN_ENV} }}\n",
            fake.url()
        ));
    }
    std::fs::write(
        dir.path().join("flagops.yml"),
        format!("{}{environments}\n{}", &config[..start], &config[end..]),
    )
    .unwrap();
    let variables = [(TOKEN_ENV, fake_gitlab::TOKEN), ("NO_PROXY", "127.0.0.1")];

    let (seconds, memory, changes) =
        synthetic::run_sync(dir.path(), &["sync", "--at", AT, "--format", "json"], &variables);
    let requests: usize = fakes.iter().map(|fake| fake.take_requests().len()).sum();
    println!(
        "gitlab: sync of 6 environments from empty, {count} flags: {changes} changes, {requests} requests in {seconds:.3} s, peak memory {memory}"
    );
    let mut noop = Vec::new();
    for _ in 0..if benchmarking { 5 } else { 1 } {
        let (seconds, memory, changes) =
            synthetic::run_sync(dir.path(), &["sync", "--at", AT, "--format", "json"], &variables);
        assert_eq!(changes, 0);
        let requests: Vec<usize> = fakes.iter().map(|fake| fake.take_requests().len()).collect();
        assert_eq!(requests, [1; 6], "a no-op sync makes one request per environment");
        noop.push((seconds, memory));
    }
    noop.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (seconds, memory) = &noop[noop.len() / 2];
    println!(
        "gitlab: no-op sync of 6 environments, {count} flags: {seconds:.3} s (median of {}), 1 request per environment, peak memory {memory}",
        noop.len()
    );
}

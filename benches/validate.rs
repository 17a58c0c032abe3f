//! Benchmark: `flagops validate` on two registries of 10,000 flags, the synthetic one and one of
//! realistic flags (7-step rollout plans, actors, `requires`), side by side with ajv-cli (npm)
//! and check-jsonschema (PyPI) validating the same files against the same schema.
//!
//! Run with `cargo bench --bench validate` (or `scripts/bench`, which installs the two peers
//! first). Prints median wall times; record them in docs/benchmarks.md.

#[path = "synthetic.rs"]
mod synthetic;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const FLAGS: usize = 10_000;

/// The rollout policies of the example config, which the realistic registry also runs without.
const POLICY_IDS: &[&str] = &[
    "promotion-order",
    "min-wait",
    "max-step",
    "exposure-increase",
    "no-percentage-of-time",
    "requires-on",
    "protected-rollout-issue",
    "freeze-window",
];

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`: then a small smoke run
    // checks that the benchmark still works, without the peer and in a fraction of a second.
    let benchmarking = synthetic::benchmarking();
    let count = synthetic::setting("FLAGOPS_BENCH_FLAGS", FLAGS, 200);
    let dir = tempfile::tempdir().unwrap();
    synthetic::write_registry(dir.path(), count);
    let realistic = tempfile::tempdir().unwrap();
    synthetic::write_realistic_registry(realistic.path(), count);
    if let Some(keep) = std::env::var_os("FLAGOPS_BENCH_KEEP") {
        // Leave copies for profiling by hand.
        synthetic::write_registry(&Path::new(&keep).join("synthetic"), count);
        synthetic::write_realistic_registry(&Path::new(&keep).join("realistic"), count);
    }
    let binary = env!("CARGO_BIN_EXE_flagops");

    // The whole command, as a user runs it: process start, read, parse, schema, checks, report.
    let runs = if benchmarking { 7 } else { 1 };
    let validate = |dir: &Path, skip: &[&str]| {
        median(runs, || {
            let mut command = Command::new(binary);
            command.args(["validate", "--format", "json"]).current_dir(dir);
            for id in skip {
                command.args(["--skip", id]);
            }
            let output = command.output().unwrap();
            assert_eq!(
                output.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&output.stdout)
            );
        })
    };
    let ours = validate(dir.path(), &[]);
    println!(
        "flagops validate, {count} synthetic flags: {:.3} s (median of {runs})",
        ours.as_secs_f64()
    );
    let ours_realistic = validate(realistic.path(), &[]);
    println!(
        "flagops validate, {count} realistic flags: {:.3} s (median of {runs})",
        ours_realistic.as_secs_f64()
    );
    let without_policies = validate(realistic.path(), POLICY_IDS);
    println!(
        "flagops validate, {count} realistic flags, without the policy checks: {:.3} s (median of {runs})",
        without_policies.as_secs_f64()
    );

    // One `requires` chain as deep as the registry is large: the dependency checks and the
    // plan's order must stay linear in it.
    let chain = tempfile::tempdir().unwrap();
    synthetic::write_chain(chain.path(), count);
    for (args, expected) in [
        (&["validate", "--format", "json"][..], 0),
        (&["plan", "--env", "dev"], 0),
    ] {
        let time = median(runs, || {
            let output = Command::new(binary)
                .args(args)
                .current_dir(chain.path())
                .output()
                .unwrap();
            assert_eq!(
                output.status.code(),
                Some(expected),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
        });
        println!(
            "flagops {}, a requires chain {count} deep: {:.3} s (median of {runs})",
            args[0],
            time.as_secs_f64()
        );
    }

    if !benchmarking {
        return;
    }
    for (registry, name, time) in [
        (dir.path(), "synthetic", ours),
        (realistic.path(), "realistic", ours_realistic),
    ] {
        let schema = registry.join("schema/flag.schema.json");
        let files = flag_files(&registry.join("flags"));
        match ajv() {
            Some(tool) => {
                // ajv-cli reads YAML data files itself; `-c ajv-formats` checks `format`s as
                // flagops does.
                let theirs = median(3, || {
                    let output = Command::new(&tool)
                        .args([
                            "validate",
                            "--spec=draft2020",
                            "--all-errors",
                            "-c",
                            "ajv-formats",
                            "-s",
                        ])
                        .arg(&schema)
                        .arg("-d")
                        .arg(registry.join("flags/*/*.yml"))
                        .output()
                        .unwrap();
                    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
                });
                println!(
                    "ajv-cli, {count} {name} flags: {:.3} s (median of 3), flagops {:.1}x faster",
                    theirs.as_secs_f64(),
                    theirs.as_secs_f64() / time.as_secs_f64()
                );
            }
            None => println!("ajv-cli not found: scripts/bench installs it into benches/peers/node_modules"),
        }
        match synthetic::which("check-jsonschema") {
            Some(tool) => {
                let theirs = median(3, || {
                    let output = Command::new(&tool)
                        .arg("--schemafile")
                        .arg(&schema)
                        .args(&files)
                        .output()
                        .unwrap();
                    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
                });
                println!(
                    "check-jsonschema, {count} {name} flags: {:.3} s (median of 3), flagops {:.1}x faster",
                    theirs.as_secs_f64(),
                    theirs.as_secs_f64() / time.as_secs_f64()
                );
            }
            None => {
                println!("check-jsonschema not found: `pip install check-jsonschema` (scripts/bench does) to compare")
            }
        }
    }
}

/// ajv-cli as `scripts/bench` installs it (pinned by `benches/peers/package-lock.json`), else
/// on `PATH`.
fn ajv() -> Option<PathBuf> {
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/node_modules/.bin/ajv");
    if local.is_file() {
        Some(local)
    } else {
        synthetic::which("ajv")
    }
}

fn median(runs: usize, mut run: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn flag_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(flag_files(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

//! Benchmark: `flagops validate` on a synthetic registry of 10,000 flags, side by side with
//! check-jsonschema (PyPI) validating the same files against the same schema.
//!
//! Run with `cargo bench --bench validate` (or `scripts/bench`, which installs
//! check-jsonschema first). Prints median wall times; record them in docs/benchmarks.md.

#[path = "synthetic.rs"]
mod synthetic;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const FLAGS: usize = 10_000;

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`: then a small smoke run
    // checks that the benchmark still works, without the peer and in a fraction of a second.
    let benchmarking = synthetic::benchmarking();
    let count = synthetic::setting("FLAGOPS_BENCH_FLAGS", FLAGS, 200);
    let dir = tempfile::tempdir().unwrap();
    synthetic::write_registry(dir.path(), count);
    if let Some(keep) = std::env::var_os("FLAGOPS_BENCH_KEEP") {
        // Leave a copy for profiling by hand.
        synthetic::write_registry(Path::new(&keep), count);
    }
    let binary = env!("CARGO_BIN_EXE_flagops");

    // The whole command, as a user runs it: process start, read, parse, schema, checks, report.
    let runs = if benchmarking { 7 } else { 1 };
    let ours = median(runs, || {
        let output = Command::new(binary)
            .args(["validate", "--format", "json"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    });
    println!(
        "flagops validate, {count} flags: {:.3} s (median of 7)",
        ours.as_secs_f64()
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
    let files = flag_files(&dir.path().join("flags"));
    match synthetic::which("check-jsonschema") {
        Some(tool) => {
            let theirs = median(3, || {
                let output = Command::new(&tool)
                    .arg("--schemafile")
                    .arg(dir.path().join("schema/flag.schema.json"))
                    .args(&files)
                    .output()
                    .unwrap();
                assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
            });
            println!(
                "check-jsonschema, {count} flags: {:.3} s (median of 3)",
                theirs.as_secs_f64()
            );
            println!("speed-up: {:.1}x", theirs.as_secs_f64() / ours.as_secs_f64());
        }
        None => println!("check-jsonschema not found: `pip install check-jsonschema` (scripts/bench does) to compare"),
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

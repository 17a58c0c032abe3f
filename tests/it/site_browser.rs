//! The site in a real browser: `tests/e2e/site.mjs` drives Debian's Chromium through
//! playwright-core over the example registry's site (real flags, with long names and paths, a
//! rollout in 15-minute steps, and drift, a pending change and an emergency hold) and over the
//! site of the 10,000-flag synthetic registry of the benchmarks. Screenshots go to
//! `target/e2e/screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::harness::{Registry, example_registry, repo_root};

/// The site's time: between the two 15-minute steps of `update_all_mirrors_job_tracker`.
const AT: &str = "2026-11-24T09:07:00Z";

/// Where the screenshots go.
fn screenshots() -> PathBuf {
    repo_root().join("target/e2e/screenshots")
}

/// Runs git in `dir` as a fixed author at a fixed date, so the history has known times.
fn git_at(dir: &Path, date: &str, args: &[&str]) {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Ada Tester")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada Tester")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs the browser checks with `config`, or skips them (failing under CI) when Node.js,
/// Chromium or the npm packages are missing.
#[track_caller]
fn check(config: serde_json::Value) {
    let e2e = repo_root().join("tests/e2e");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    let packages = ["playwright-core", "axe-core"]
        .iter()
        .all(|package| e2e.join("node_modules").join(package).is_dir());
    if !(node && Path::new(&chromium).is_file() && packages) {
        crate::deps::missing::<()>("Node.js, Chromium, playwright-core or axe-core");
        return;
    }
    let output = Command::new("node")
        .arg(e2e.join("site.mjs"))
        .arg(config.to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let label = config["label"].as_str().unwrap();
    for page in ["index", "flag", "environment"] {
        for width in [390, 1366, 1920] {
            let shot = screenshots().join(format!("{label}-{page}-{width}.png"));
            assert!(shot.is_file(), "no screenshot {}", shot.display());
        }
    }
}

/// The example registry, committed on 2026-11-20 and deployed at `AT`; then production drifts
/// (`pause_zoekt_indexing` turned on outside git), a change is committed but not synced
/// (`sticky_reads_for_post_receive_worker` down to 25%), and an emergency turns
/// `code_suggestions_open_tabs_context` off, its edit not merged yet.
fn example_site() -> Registry {
    let registry = example_registry();
    registry.git(&["init", "-q", "-b", "main"]);
    registry.write(".gitignore", "/.flagops/\n/public/\n");
    git_at(registry.path(), "2026-11-20T10:00:00Z", &["add", "-A"]);
    git_at(
        registry.path(),
        "2026-11-20T10:00:00Z",
        &["commit", "-q", "-m", "Add the example flags"],
    );
    let deploy = registry.run(&["deploy", "--at", AT]);
    assert_eq!(deploy.code, 0, "{deploy:?}");

    let mut production = registry.state("production");
    production["flags"]["pause_zoekt_indexing"] = json!(true);
    // What a later sync saw, as its record keeps it: a widening change the change lock held back,
    // and a metric guard that could not reach Prometheus, with a long error.
    let alternates = "gitaly_transactional_alternates_link";
    let desired = production["flags"][alternates].clone();
    let actual = json!({"actors": [desired["actors"][0].clone()]});
    production["flags"][alternates] = actual.clone();
    production["last_sync"]["observed"] = json!({
        "guards": [{
            "at": "2026-11-24T09:15:02Z",
            "verdict": {
                "flag": "update_all_mirrors_job_tracker",
                "step": 2,
                "guard": "error_rate",
                "query": "sum(rate(http_requests_total{status=~\"5..\"}[15m]))",
                "limit": "max 0.01",
                "on_breach": "hold",
                "outcome": {"is": "unreachable", "error": "could not reach https://prometheus.internal.example.com/api/v1/query?query=sum%28rate%28http_requests_total%7Bstatus%3D~%225..%22%7D%5B15m%5D%29%29: connection refused"},
            },
        }],
        "held_back": [{
            "flag": alternates,
            "desired": desired,
            "actual": actual,
            "why": ["the change lock `FLAGOPS_CHANGE_LOCK` is on: INC-42: bulk moves time out, no widening until the database recovers"],
        }],
    });
    registry.write(
        ".flagops/state/production.json",
        serde_json::to_string_pretty(&production).unwrap(),
    );
    let file = "flags/worker/sticky_reads_for_post_receive_worker.yml";
    let text = registry.read(file);
    assert!(text.contains("percentage_of_actors: 50"), "{text}");
    registry.write(
        file,
        text.replacen("percentage_of_actors: 50", "percentage_of_actors: 25", 1),
    );
    git_at(
        registry.path(),
        "2026-11-24T09:05:00Z",
        &["commit", "-qam", "Lower sticky reads to 25% (!4242)"],
    );
    let emergency = registry.run(&[
        "set",
        "code_suggestions_open_tabs_context",
        "false",
        "--production",
        "--emergency",
        "--reason",
        "INC-42: bulk moves time out",
    ]);
    assert_eq!(emergency.code, 0, "{emergency:?}");
    registry.git(&["checkout", "--", "flags/"]);
    let site = registry.run(&["site", "--at", AT]);
    assert_eq!(site.code, 0, "{site:?}");
    registry
}

// The example registry's site at a phone's, a laptop's and a desktop's width: no overflow, the
// production column on screen, search by actor and by state, filters in the URL, each
// 15-minute rollout step visible with its time, and no serious accessibility violation.
#[test]
fn site_works_in_a_browser() {
    let registry = example_site();
    // The page shows what the browser checks rely on: drift, a pending change and a hold.
    let production = registry.read("public/environments/production.html");
    for marker in [
        "⚠ drift",
        "↻ pending",
        "⊘ held",
        "held by an emergency change: ",
        "⊘ held back",
    ] {
        assert!(production.contains(marker), "no `{marker}` in {production}");
    }
    check(json!({
        "label": "example",
        "site": registry.path().join("public"),
        "shots": screenshots(),
        "count": 31,
        "environment": "production",
        "flags": ["update_all_mirrors_job_tracker", "gitaly_transactional_alternates_link", "code_suggestions_open_tabs_context"],
        "group_page": "groups/group-scalability.html",
        "searches": [
            {"term": "gitlab-org/gitlab-foss", "expect": "update_all_mirrors_job_tracker", "reject": "trial_registration_duo_step"},
            {"term": "repository:gitlab-org/gitlab.git", "expect": "gitaly_transactional_alternates_link"},
            {"term": "50%", "expect": "trial_registration_duo_step", "reject": "batched_keep_around_refs_cleanup"},
        ],
        "filter": {"type": "gitlab_com_derisk", "state": "on", "env": "production"},
        "rollout": {"flag": "update_all_mirrors_job_tracker", "stretches": [
            ["production", "2026-11-24 09:00 UTC"],
            ["production", "2026-11-24 09:15 UTC"],
        ]},
        "axe": true,
    }));
}

// The 10,000-flag synthetic registry's site: the index stays usable at every width, and a
// sample of its flag pages (with rollouts of 15-minute and 1-hour steps) does not overflow.
#[test]
fn site_of_ten_thousand_flags_works_in_a_browser() {
    let dir = repo_root().join("target/e2e/sites/synthetic");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    crate::synthetic::write_registry(&dir, 10_000);
    // Its rollouts are not meant to follow the example config's policies.
    crate::synthetic::disable_policies(&dir);
    std::fs::write(dir.join(".gitignore"), "/.flagops/\n/public/\n").unwrap();
    git_at(&dir, "2026-11-25T00:00:00Z", &["init", "-q", "-b", "main"]);
    git_at(&dir, "2026-11-25T00:00:00Z", &["add", "-A"]);
    git_at(
        &dir,
        "2026-11-25T00:00:00Z",
        &["commit", "-q", "-m", "Add 10,000 synthetic flags"],
    );
    let site = Command::new(env!("CARGO_BIN_EXE_flagops"))
        .args(["site", "--at", "2026-12-01T09:20:00Z"])
        .current_dir(&dir)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert!(site.status.success(), "{}", String::from_utf8_lossy(&site.stderr));
    check(json!({
        "label": "synthetic",
        "site": dir.join("public"),
        "shots": screenshots(),
        "count": 10_000,
        "environment": "production",
        "flags": ["synthetic_flag_00000", "synthetic_flag_00003", "synthetic_flag_09999"],
        "group_page": "groups/group-synthetic-0.html",
        "searches": [
            {"term": "project:gitlab-org/gitlab", "expect": "synthetic_flag_00003", "reject": "synthetic_flag_00001"},
            {"term": "25%", "expect": "synthetic_flag_00000", "reject": "synthetic_flag_00002"},
        ],
        "filter": {"type": "wip", "state": "on", "env": "production"},
        "rollout": {"flag": "synthetic_flag_00000", "stretches": [
            ["dev", "2026-12-01 09:00 UTC"],
            ["production", "2026-12-01 09:15 UTC"],
            ["production", "2026-12-01 10:15 UTC"],
        ]},
        "axe": false,
    }));
}

//! The README's main job on the example registry: `flagops deploy` validates, syncs every
//! environment into the embedded `file` backend and builds the site; a second run applies
//! nothing. Rollout plans are resolved at a pinned time, so the counts hold on any day.

use std::collections::BTreeSet;
use std::path::Path;

use crate::harness::{example_registry, repo_root};

/// The moment the README's example run resolved its rollout plans.
const AT: &str = "2026-11-21T12:00:00Z";

/// Every file under `dir`, relative to it, with `/` separators.
fn files(dir: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            let relative = entry.path().strip_prefix(dir).unwrap();
            relative.to_string_lossy().replace('\\', "/")
        })
        .collect()
}

#[test]
fn main_job_deploys_the_example_registry_then_changes_nothing() {
    let registry = example_registry();
    let first = registry.run(&["deploy", "--at", AT]);
    assert_eq!(first.code, 0, "{first:?}");
    // The per-environment counts the README shows for this moment.
    for line in [
        "checked 31 flag files: 0 errors, 2 warnings",
        "dev: applied 31 changes",
        "pre: applied 25 changes",
        "staging: applied 28 changes",
        "staging-ref: applied 11 changes",
        "ops: applied 1 change",
        "production: applied 27 changes",
        "synced 6 environments: 123 changes applied",
        "built 91 pages in public",
    ] {
        assert!(
            first.stdout.lines().any(|l| l == line),
            "missing line {line:?} in:\n{}",
            first.stdout
        );
    }
    // What production holds at that moment, for two flags with rollout plans and actors.
    let production = registry.state("production");
    assert_eq!(
        production["flags"]["update_all_mirrors_job_tracker"],
        serde_json::json!({
            "percentage_of_actors": 25,
            "actors": ["project:gitlab-org/gitlab", "project:gitlab-org/gitlab-foss"]
        }),
        "{production}"
    );

    // Every page: one per flag file, per environment, per type, group and owner, and the rest.
    let public = files(&registry.path().join("public"));
    let pages = public.iter().filter(|f| f.ends_with(".html")).count();
    assert_eq!(pages, 91, "{public:#?}");
    for fixed in [
        "index.html",
        "stale.html",
        "feed.xml",
        "flags.json",
        "search.json",
        "static/style.css",
        "static/search.js",
    ] {
        assert!(public.contains(fixed), "no {fixed}: {public:#?}");
    }
    let flags: BTreeSet<String> = files(&repo_root().join("flags"))
        .iter()
        .map(|f| {
            let stem = Path::new(f).file_stem().unwrap().to_string_lossy().into_owned();
            format!("flags/{stem}.html")
        })
        .collect();
    assert_eq!(flags.len(), 31);
    let flag_pages: BTreeSet<String> = public.iter().filter(|f| f.starts_with("flags/")).cloned().collect();
    assert_eq!(flag_pages, flags);
    let environments: BTreeSet<String> = public
        .iter()
        .filter(|f| f.starts_with("environments/"))
        .cloned()
        .collect();
    let expected: BTreeSet<String> = ["dev", "pre", "staging", "staging-ref", "ops", "production"]
        .iter()
        .map(|e| format!("environments/{e}.html"))
        .collect();
    assert_eq!(environments, expected);
    let count = |folder: &str| public.iter().filter(|f| f.starts_with(folder)).count();
    assert_eq!(
        (count("types/"), count("groups/"), count("owners/")),
        (8, 17, 27),
        "{public:#?}"
    );
    let listing: serde_json::Value =
        serde_json::from_str(&registry.read("public/flags.json")).expect("flags.json is JSON");
    assert_eq!(listing["flags"].as_array().map(Vec::len), Some(31));

    // The second run finds every environment in sync and builds the same pages.
    let audit_before = registry.audit("production").len();
    let second = registry.run(&["deploy", "--at", AT]);
    assert_eq!(second.code, 0, "{second:?}");
    assert!(
        second
            .stdout
            .lines()
            .any(|l| l == "synced 6 environments: 0 changes applied"),
        "{}",
        second.stdout
    );
    assert!(
        second.stdout.lines().any(|l| l == "built 91 pages in public"),
        "{}",
        second.stdout
    );
    assert_eq!(registry.audit("production").len(), audit_before);
    assert_eq!(files(&registry.path().join("public")), public);
}

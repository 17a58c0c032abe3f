//! Flag history from git: one first-parent walk, semantic events, a cache by commit.

use flagops::history::{CacheUse, load_history};

use crate::harness::{Registry, flag};

/// A scripted repository: creates, edits, a move between folders, a merge and a delete.
fn scripted() -> Registry {
    let registry = Registry::new();
    registry.write("flags/wip/alpha.yml", flag("alpha", "environments:\n  dev: true\n"));
    registry.write("flags/wip/beta.yml", flag("beta", ""));
    registry.write("README.md", "not a flag\n");
    registry.init_git();
    registry.write(
        "flags/wip/alpha.yml",
        flag(
            "alpha",
            "environments:\n  dev: true\n  production:\n    percentage_of_actors: 25\n",
        ),
    );
    registry.commit("Roll alpha out to 25%");
    registry.remove("flags/wip/beta.yml");
    registry.write("flags/ops/beta.yml", flag("beta", "").replace("type: wip", "type: ops"));
    registry.commit("Make beta an ops flag");
    registry.write("README.md", "still not a flag\n");
    registry.commit("Edit the readme");
    registry.git(&["checkout", "-q", "-b", "raise-alpha"]);
    registry.write(
        "flags/wip/alpha.yml",
        flag(
            "alpha",
            "environments:\n  dev: true\n  production:\n    percentage_of_actors: 50\n",
        ),
    );
    registry.commit("Raise alpha to 50%");
    registry.git(&["checkout", "-q", "main"]);
    registry.git(&[
        "merge",
        "-q",
        "--no-ff",
        "raise-alpha",
        "-m",
        "Merge branch 'raise-alpha' into 'main'\n\nRaise alpha to 50%\n\nSee merge request gitlab-org/flags!7",
    ]);
    registry.remove("flags/ops/beta.yml");
    registry.commit("Remove beta");
    registry
}

fn describe(registry: &Registry, cache: Option<&std::path::Path>) -> (Vec<String>, CacheUse) {
    let (history, used) = load_history(registry.path(), "flags", cache, None).unwrap();
    let lines = history
        .events
        .iter()
        .map(|e| format!("{} | {} | {:?} | {}", e.title, e.flag, e.merge_request, e.text))
        .collect();
    (lines, used)
}

// The walk gives exactly the expected events, newest first, following first parents.
#[test]
fn history_gives_semantic_events() {
    let registry = scripted();
    let (lines, used) = describe(&registry, None);
    assert_eq!(used, CacheUse::Full);
    assert_eq!(
        lines,
        [
            "Remove beta | beta | None | removed from `flags/ops/beta.yml`",
            "Raise alpha to 50% | alpha | Some(7) | production: 25% of actors → 50% of actors",
            "Make beta an ops flag | beta | None | moved from `flags/wip/beta.yml` to `flags/ops/beta.yml`",
            "Make beta an ops flag | beta | None | type wip → ops",
            "Roll alpha out to 25% | alpha | None | production: (absent) → 25% of actors",
            "initial registry | alpha | None | created at `flags/wip/alpha.yml`",
            "initial registry | alpha | None | dev: true",
            "initial registry | beta | None | created at `flags/wip/beta.yml`",
        ]
    );
}

// `flagops history NAME` prints a flag's events with commit, author and merge-request link.
#[test]
fn history_command_prints_a_flag() {
    let registry = scripted();
    let output = registry.run(&["history", "alpha"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        output.stdout.contains("Ada Tester <ada@example.com>"),
        "{}",
        output.stdout
    );
    assert!(
        output
            .stdout
            .contains("Raise alpha to 50% (https://gitlab.com/gitlab-org/flag-registry/-/merge_requests/7)"),
        "{}",
        output.stdout
    );
    assert!(output.stdout.contains("production: 25% of actors → 50% of actors"));
    let json: serde_json::Value =
        serde_json::from_str(&registry.run(&["history", "alpha", "--format", "json"]).stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 4);
    assert_eq!(json[0]["environment"], "production");
    assert_eq!(json[0]["to"], serde_json::json!({"percentage_of_actors": 50}));
    let missing = registry.run(&["history", "nope"]);
    assert_eq!(missing.code, 2);
}

// A rebuild reads only new commits; a rewritten history invalidates the cache safely.
#[test]
fn history_cache_is_incremental_and_safe() {
    let registry = scripted();
    let cache = registry.path().join(".flagops/cache/history.jsonl");
    let (full, used) = describe(&registry, Some(&cache));
    assert_eq!(used, CacheUse::Full);
    let (again, used) = describe(&registry, Some(&cache));
    assert_eq!((used, &again), (CacheUse::Incremental, &full));

    registry.write(
        "flags/wip/alpha.yml",
        flag("alpha", "environments:\n  dev: true\n  production: true\n"),
    );
    registry.commit("Alpha fully on");
    let (incremental, used) = describe(&registry, Some(&cache));
    assert_eq!(used, CacheUse::Incremental);
    assert_eq!(
        incremental[0],
        "Alpha fully on | alpha | None | production: 50% of actors → true"
    );
    assert_eq!(
        incremental,
        describe(&registry, None).0,
        "the cached result equals a full walk"
    );

    registry.git(&["reset", "-q", "--hard", "HEAD~1"]);
    registry.write(
        "flags/wip/alpha.yml",
        flag(
            "alpha",
            "environments:\n  dev: false\n  production:\n    percentage_of_actors: 50\n",
        ),
    );
    registry.commit("Alpha off in dev");
    let (rewritten, used) = describe(&registry, Some(&cache));
    assert_eq!(used, CacheUse::Rewritten);
    assert_eq!(rewritten[0], "Alpha off in dev | alpha | None | dev: true → false");
    assert_eq!(rewritten, describe(&registry, None).0);
}

// The cache survives a torn append and a duplicate segment, and one flag's history read through
// it equals the matching events of the whole history.
#[test]
fn history_cache_reads_the_longest_valid_chain() {
    let registry = scripted();
    let cache = registry.path().join(".flagops/cache/history.jsonl");
    let (full, _) = describe(&registry, Some(&cache));
    registry.write(
        "flags/wip/alpha.yml",
        flag("alpha", "environments:\n  dev: true\n  production: true\n"),
    );
    registry.commit("Alpha fully on");
    let before_append = std::fs::read(&cache).unwrap();
    let (appended, used) = describe(&registry, Some(&cache));
    assert_eq!(used, CacheUse::Incremental);
    let after_append = std::fs::read(&cache).unwrap();
    assert!(
        after_append.starts_with(&before_append),
        "a new commit appends to the cache"
    );
    assert_eq!(appended[1..], full[..]);

    // The same segment appended twice (two runs at once) is read once.
    let segment = &after_append[before_append.len()..];
    let mut doubled = after_append.clone();
    doubled.extend_from_slice(segment);
    std::fs::write(&cache, &doubled).unwrap();
    assert_eq!(
        describe(&registry, Some(&cache)),
        (appended.clone(), CacheUse::Incremental)
    );

    // A torn append (a crash in the middle of a line) is ignored, then overwritten.
    let mut torn = before_append.clone();
    torn.extend_from_slice(&segment[..segment.len() / 2]);
    std::fs::write(&cache, &torn).unwrap();
    assert_eq!(
        describe(&registry, Some(&cache)),
        (appended.clone(), CacheUse::Incremental)
    );
    assert_eq!(
        std::fs::read(&cache).unwrap(),
        after_append,
        "the torn tail was replaced"
    );

    // One flag's events, through the cache, are exactly that flag's events.
    let (alpha, _) = load_history(registry.path(), "flags", Some(&cache), Some("alpha")).unwrap();
    let alpha: Vec<String> = alpha
        .events
        .iter()
        .map(|e| format!("{} | {}", e.title, e.text))
        .collect();
    let expected: Vec<String> = appended
        .iter()
        .filter(|line| line.split(" | ").nth(1) == Some("alpha"))
        .map(|line| {
            let parts: Vec<&str> = line.split(" | ").collect();
            format!("{} | {}", parts[0], parts[3])
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(alpha, expected);
}

// A shallow clone holds only the newest commits: the walk must never take the oldest one it has
// for the commit that created every flag, must not cache what it could not read, and once the
// clone is made whole gives exactly the full history.
#[test]
fn history_refuses_a_shallow_clone_and_recovers_after_unshallow() {
    let origin = scripted();
    let (full, _) = describe(&origin, None);
    let shallow = origin.clone_with(&["--depth", "2"]);
    let cache = shallow.path().join(".flagops/cache/history.jsonl");

    for args in [&["history", "alpha"][..], &["site"], &["deploy"]] {
        let out = shallow.run(args);
        assert_eq!(out.code, 2, "{args:?} in a shallow clone: {out:?}");
        assert!(
            out.stderr.contains("shallow clone") && out.stderr.contains("git fetch --unshallow"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!out.stdout.contains("created"), "{args:?}: {}", out.stdout);
        assert!(!cache.exists(), "{args:?} cached a history it could not read");
    }
    assert!(load_history(shallow.path(), "flags", Some(&cache), None).is_err());

    shallow.git(&["fetch", "-q", "--unshallow"]);
    assert_eq!(describe(&shallow, Some(&cache)), (full.clone(), CacheUse::Full));
    assert_eq!(describe(&shallow, Some(&cache)), (full, CacheUse::Incremental));
    let out = shallow.run(&["history", "alpha"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Roll alpha out to 25%"), "{}", out.stdout);
}

// A clone as shallow as CI makes it still works when the cache from an earlier run holds the
// commits before its boundary: only the new commits are read.
#[test]
fn history_in_a_shallow_clone_reads_from_the_cache() {
    let origin = scripted();
    let cache = origin.path().join(".flagops/cache/history.jsonl");
    describe(&origin, Some(&cache));
    origin.write("flags/wip/alpha.yml", flag("alpha", "environments:\n  dev: false\n"));
    origin.commit("Turn alpha off in dev");
    let (full, _) = describe(&origin, None);

    let shallow = origin.clone_with(&["--depth", "2"]);
    let copied = shallow.path().join(".flagops/cache/history.jsonl");
    std::fs::create_dir_all(copied.parent().unwrap()).unwrap();
    std::fs::copy(&cache, &copied).unwrap();
    assert_eq!(describe(&shallow, Some(&copied)), (full, CacheUse::Incremental));
}

// A branch whose head commit is missing is a broken repository, not a shallow clone: the error
// says which commit cannot be read, and never advises fetching more history.
#[test]
fn history_reports_a_missing_head_commit_as_unreadable() {
    let registry = scripted();
    let missing = "0123456789abcdef0123456789abcdef01234567";
    std::fs::write(registry.path().join(".git/refs/heads/main"), format!("{missing}\n")).unwrap();
    let error = load_history(registry.path(), "flags", None, None)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot read the head commit"), "{error}");
    assert!(!error.contains("shallow"), "{error}");
}

// Only the flags directory is walked: a folder beside it that sorts first and holds YAML files
// named like flags, changed in the same commits, gives no events.
#[test]
fn history_reads_only_the_flags_directory() {
    let registry = Registry::new();
    registry.write("flags/wip/alpha.yml", flag("alpha", ""));
    registry.write("archive/wip/alpha.yml", flag("alpha", "environments:\n  dev: true\n"));
    registry.init_git();
    registry.write("archive/wip/alpha.yml", flag("alpha", "environments:\n  dev: false\n"));
    registry.write("archive/wip/beta.yml", flag("beta", ""));
    registry.commit("Change the archive only");
    let (lines, _) = describe(&registry, None);
    assert_eq!(
        lines,
        ["initial registry | alpha | None | created at `flags/wip/alpha.yml`"],
        "{lines:#?}"
    );
}

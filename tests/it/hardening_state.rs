//! The files flagops keeps for itself (state documents, audit logs, locks, sync records, caches)
//! and the templates it reads: files that disagree with each other or belong to another
//! environment are refused, links are never followed, and nothing is read without a limit.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::harness::{Output, Registry, flag};

/// A registry whose `dev` and `staging` environments were synced, three changes each.
fn synced() -> Registry {
    let registry = Registry::new();
    for name in ["alpha", "beta", "gamma"] {
        registry.write(
            &format!("flags/wip/{name}.yml"),
            flag(name, "environments:\n  dev: true\n  staging: true\n"),
        );
    }
    let output = registry.run(&["sync", "--env", "dev", "--env", "staging"]);
    assert_eq!(output.code, 0, "{output:?}");
    registry
}

/// Every file in the state folder, with its bytes; a link with its target, and a file over a MiB
/// with its length and time, so that the huge and endless files of these tests are never read.
fn state_files(registry: &Registry) -> BTreeMap<String, Vec<u8>> {
    let folder = registry.path().join(".flagops/state");
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return BTreeMap::new();
    };
    entries
        .map(|entry| {
            let entry = entry.unwrap();
            let metadata = std::fs::symlink_metadata(entry.path()).unwrap();
            let bytes = if metadata.file_type().is_symlink() {
                format!("link to {:?}", std::fs::read_link(entry.path()).unwrap()).into_bytes()
            } else if metadata.len() > 1 << 20 {
                format!("{} bytes, modified {:?}", metadata.len(), metadata.modified().unwrap()).into_bytes()
            } else {
                std::fs::read(entry.path()).unwrap()
            };
            (entry.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

fn text(output: &Output) -> String {
    format!("{}{}", output.stdout, output.stderr)
}

/// `sync --env dev` and `plan --env dev` both fail with every part of `expected` and a `help:`
/// line, and the sync changes no file.
#[track_caller]
fn check_refused(registry: &Registry, expected: &[&str]) {
    let before = state_files(registry);
    let sync = registry.run(&["sync", "--env", "dev"]);
    assert_eq!(sync.code, 2, "{sync:?}");
    for part in expected.iter().chain(&["help: "]) {
        assert!(text(&sync).contains(part), "`{part}` not in {sync:?}");
    }
    assert!(text(&sync).contains("FAILED before any change"), "{sync:?}");
    assert_eq!(state_files(registry), before, "the refused sync changed a file");
    let plan = registry.run(&["plan", "--env", "dev"]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(text(&plan).contains(expected[0]), "{plan:?}");
}

fn audit_lines(registry: &Registry, environment: &str) -> Vec<String> {
    registry
        .read(&format!(".flagops/state/{environment}.audit.jsonl"))
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_audit(registry: &Registry, environment: &str, lines: &[String]) {
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    registry.write(&format!(".flagops/state/{environment}.audit.jsonl"), text);
}

fn set_revision(line: &str, revision: u64) -> String {
    let mut record: Value = serde_json::from_str(line).unwrap();
    record["revision"] = revision.into();
    record.to_string()
}

// A state document copied from another environment is not taken for this one's.
#[test]
fn file_state_of_another_environment_is_refused() {
    let registry = synced();
    registry.write(".flagops/state/dev.json", registry.read(".flagops/state/staging.json"));
    check_refused(
        &registry,
        &["dev.json` holds the state of environment `staging`, not of `dev`"],
    );
}

// An audit log copied from another environment is not replayed into this one.
#[test]
fn file_audit_of_another_environment_is_refused() {
    let registry = synced();
    registry.write(
        ".flagops/state/dev.audit.jsonl",
        registry.read(".flagops/state/staging.audit.jsonl"),
    );
    check_refused(
        &registry,
        &["dev.audit.jsonl` line 1 is a change to environment `staging`, not to `dev`"],
    );
}

// A state that says changes were made needs the log that recorded them.
#[test]
fn file_state_without_its_audit_log_is_refused() {
    let registry = synced();
    registry.remove(".flagops/state/dev.audit.jsonl");
    check_refused(
        &registry,
        &[
            "dev.json` is at revision 3, but its audit log `",
            "dev.audit.jsonl` is missing",
        ],
    );
    registry.write(".flagops/state/dev.audit.jsonl", "");
    check_refused(&registry, &["dev.audit.jsonl` is empty", "set `revision` to 0"]);
}

// Revisions run 1, 2, 3 without repeats, gaps or swaps.
#[test]
fn file_audit_revisions_must_be_contiguous() {
    let registry = synced();
    let lines = audit_lines(&registry, "dev");
    assert_eq!(lines.len(), 3);

    let duplicated = [lines.clone(), vec![lines[2].clone()]].concat();
    write_audit(&registry, "dev", &duplicated);
    check_refused(
        &registry,
        &["dev.audit.jsonl` line 4 has revision 3, but the record before it has revision 3"],
    );

    let gapped = vec![lines[0].clone(), lines[1].clone(), set_revision(&lines[2], 5)];
    write_audit(&registry, "dev", &gapped);
    check_refused(
        &registry,
        &["dev.audit.jsonl` line 3 has revision 5, but the record before it has revision 2"],
    );

    let reordered = vec![lines[0].clone(), lines[2].clone(), lines[1].clone()];
    write_audit(&registry, "dev", &reordered);
    check_refused(
        &registry,
        &["dev.audit.jsonl` line 2 has revision 3, but the record before it has revision 1"],
    );

    // Without a state document the log must start at revision 1.
    write_audit(&registry, "dev", &lines[1..]);
    registry.remove(".flagops/state/dev.json");
    check_refused(
        &registry,
        &["dev.audit.jsonl` starts at revision 2, but `", "is at revision 0"],
    );

    // The whole log rebuilds the state, as it always did.
    write_audit(&registry, "dev", &lines);
    let output = registry.run(&["sync", "--env", "dev"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("dev: in sync"), "{output:?}");
}

// A state document ahead of its log holds changes the log never recorded.
#[test]
fn file_state_ahead_of_its_audit_log_is_refused() {
    let registry = synced();
    let mut document = registry.state("dev");
    document["revision"] = 10.into();
    registry.write(".flagops/state/dev.json", document.to_string());
    check_refused(
        &registry,
        &["dev.json` is at revision 10, but its audit log `", "ends at revision 3"],
    );
}

// Two environments configured with one state file are refused before any sync, at the second.
#[test]
fn config_refuses_environments_sharing_a_state_file() {
    let registry = Registry::new();
    registry.write("flags/wip/alpha.yml", flag("alpha", "environments:\n  dev: true\n"));
    let config = registry.read("flagops.yml");
    let pre = "  - name: pre\n";
    let at = config.find(pre).unwrap() + pre.len();
    let backend = at + config[at..].find("    backend: { kind: file }").unwrap();
    let config = format!(
        "{}    backend: {{ kind: file, path: ./.flagops/state/../state/dev.json }}{}",
        &config[..backend],
        &config[backend + "    backend: { kind: file }".len()..]
    );
    registry.write("flagops.yml", &config);
    let line = config[..backend].lines().count() + 1;

    let output = registry.run(&["validate", "--format", "json"]);
    assert_eq!(output.code, 1, "{output:?}");
    let findings: Vec<Value> = serde_json::from_str(&output.stdout).unwrap();
    let found: Vec<(&str, &str, u64, u64)> = findings
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap(),
                f["path"].as_str().unwrap(),
                f["span"]["line"].as_u64().unwrap(),
                f["span"]["column"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(found, [("shared-state-file", "flagops.yml", line as u64, 34)]);
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .contains("environments `dev` and `pre` would both keep `.flagops/state/dev.json`"),
        "{output:?}"
    );

    let sync = registry.run(&["sync"]);
    assert_eq!(sync.code, 1, "{sync:?}");
    assert!(
        !registry.path().join(".flagops").exists(),
        "the refused sync wrote state"
    );

    // A state file named like a gitlab environment's sync record clashes with it too.
    let registry = Registry::new();
    let config = registry.read("flagops.yml").replacen(
        "backend: { kind: file }",
        "backend: { kind: gitlab, url: \"https://gitlab.example.com\", token_env: GITLAB_TOKEN }",
        1,
    );
    let config = config.replacen(
        "backend: { kind: file }",
        "backend: { kind: file, path: .flagops/state/dev.sync.json }",
        1,
    );
    registry.write("flagops.yml", &config);
    let output = registry.run(&["validate"]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output
            .stdout
            .contains("environments `dev` and `pre` would both keep `.flagops/state/dev.sync.json`"),
        "{output:?}"
    );
}

/// Puts a link at `relative` in the registry pointing at `target`.
fn link(registry: &Registry, relative: &str, target: &std::path::Path) {
    let path = registry.path().join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    std::os::unix::fs::symlink(target, path).unwrap();
}

/// A file outside the state folder that a link points at; it must never change.
fn target(registry: &Registry) -> std::path::PathBuf {
    let path = registry.path().join("precious.txt");
    // No newline at the end: a writer repairing a torn line would cut it all.
    std::fs::write(&path, "precious, not a state file").unwrap();
    path
}

// A linked lock, state document or audit log is refused, and what it points at is left alone.
#[test]
fn file_backend_refuses_linked_files() {
    for name in ["dev.lock", "dev.json", "dev.audit.jsonl"] {
        let registry = synced();
        let target = target(&registry);
        link(&registry, &format!(".flagops/state/{name}"), &target);
        let output = registry.run(&["sync", "--env", "dev"]);
        assert_eq!(output.code, 2, "{name}: {output:?}");
        assert!(
            text(&output).contains(&format!("{name}` is a symbolic link")),
            "{name}: {output:?}"
        );
        assert!(text(&output).contains("help: "), "{name}: {output:?}");
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "precious, not a state file",
            "{name}: the link's target changed"
        );
        if name != "dev.lock" {
            let plan = registry.run(&["plan", "--env", "dev"]);
            assert_eq!(plan.code, 2, "{name}: {plan:?}");
        }
    }
}

// The gitlab backend appends to its audit log without following a link.
#[test]
fn gitlab_backend_refuses_linked_audit_log() {
    let production = crate::fake_gitlab::FakeGitlab::start();
    let registry = crate::gitlab::registry(&[("production", &production)], 10);
    registry.write(
        "flags/wip/alpha.yml",
        flag("alpha", "environments:\n  production: true\n"),
    );
    let variables = [
        (crate::gitlab::TOKEN_ENV, crate::fake_gitlab::TOKEN),
        ("NO_PROXY", "127.0.0.1"),
    ];
    let target = target(&registry);
    link(&registry, ".flagops/state/production.audit.jsonl", &target);
    let output = registry.run_with_env(&["sync"], &variables);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(
        text(&output).contains("production.audit.jsonl` is a symbolic link"),
        "{output:?}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious, not a state file");
}

// A templates folder whose files or subfolders are links is refused: it would publish what they
// point at.
#[test]
fn site_refuses_linked_templates() {
    let registry = Registry::new();
    registry.init_git();
    let secret = registry.path().join("secret.txt");
    std::fs::write(&secret, "TOKEN=glpat-secret").unwrap();
    for (relative, named) in [
        ("theme/static/style.css", "theme/static/style.css"),
        ("theme/templates/base.html", "theme/templates/base.html"),
    ] {
        let _ = std::fs::remove_dir_all(registry.path().join("theme"));
        link(&registry, relative, &secret);
        let output = registry.run(&["site", "--templates", "theme", "--out", "public"]);
        assert_eq!(output.code, 2, "{output:?}");
        assert!(
            text(&output).contains(&format!("{named}` is a symbolic link")),
            "{output:?}"
        );
        assert!(!registry.path().join("public").exists(), "{output:?}");
    }
    // A linked subfolder too.
    let _ = std::fs::remove_dir_all(registry.path().join("theme"));
    registry.write("elsewhere/style.css", "body {}");
    link(&registry, "theme/static", &registry.path().join("elsewhere"));
    let output = registry.run(&["site", "--templates", "theme", "--out", "public"]);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(text(&output).contains("theme/static` is a symbolic link"), "{output:?}");
}

// Temporary files a killed write left are removed by the next sync of their environment, and
// nothing else is.
#[test]
fn sync_removes_stale_temporary_files_of_its_own() {
    let registry = synced();
    let stale = ".flagops/state/.dev.json.flagops-Ab12Cd.tmp";
    let kept = [
        // Another environment's, which its own sync may be writing right now.
        ".flagops/state/.staging.json.flagops-Ab12Cd.tmp",
        // Not a name this tool gives.
        ".flagops/state/.dev.json.flagops-old-copy.tmp",
        ".flagops/state/.tmpAb12Cd",
    ];
    for relative in [stale].iter().chain(&kept) {
        registry.write(relative, "{ half a docu");
    }
    let plan = registry.run(&["plan", "--env", "dev"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(registry.path().join(stale).exists(), "a read-only run removed a file");

    let output = registry.run(&["sync", "--env", "dev"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        !registry.path().join(stale).exists(),
        "the stale temporary file is still there"
    );
    for relative in kept {
        assert!(registry.path().join(relative).exists(), "`{relative}` was removed");
    }
    // A sync's own replacement leaves nothing behind.
    let left: Vec<String> = state_files(&registry)
        .into_keys()
        .filter(|name| name.contains(".flagops-") && !kept.iter().any(|k| k.ends_with(name.as_str())))
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

/// Makes `relative` a sparse file of `length` zero bytes: large on paper, free on disk.
fn oversized(registry: &Registry, relative: &str, length: u64) {
    let path = registry.path().join(relative);
    let _ = std::fs::remove_file(&path);
    std::fs::File::create(&path).unwrap().set_len(length).unwrap();
}

// State documents and audit logs are read within limits: a link to `/dev/zero`, the device itself
// and a file over the limit are refused by name, promptly, instead of filling memory.
#[test]
fn file_backend_reads_within_limits() {
    let document_limit = flagops::owned_file::MAX_DOCUMENT_BYTES;
    let log_limit = flagops::owned_file::MAX_LOG_BYTES;
    for (name, expected) in [
        ("dev.json", "dev.json` is a symbolic link".to_string()),
        ("dev.audit.jsonl", "dev.audit.jsonl` is a symbolic link".to_string()),
    ] {
        let registry = synced();
        link(
            &registry,
            &format!(".flagops/state/{name}"),
            std::path::Path::new("/dev/zero"),
        );
        check_refused(&registry, &[expected.as_str()]);
    }

    let registry = synced();
    oversized(&registry, ".flagops/state/dev.json", document_limit + 1);
    check_refused(
        &registry,
        &[&format!(
            "dev.json` is {} bytes, more than the 64 MiB",
            document_limit + 1
        )],
    );

    let registry = synced();
    oversized(&registry, ".flagops/state/dev.audit.jsonl", log_limit + 1);
    check_refused(
        &registry,
        &[&format!(
            "dev.audit.jsonl` is {} bytes, more than the 512 MiB",
            log_limit + 1
        )],
    );

    // A state document configured as the device itself, outside the registry on purpose.
    let registry = Registry::new();
    let config =
        registry
            .read("flagops.yml")
            .replacen("backend: { kind: file }", "backend: { kind: file, path: /dev/zero }", 1);
    registry.write("flagops.yml", format!("allow_paths_outside: true\n{config}"));
    let output = registry.run(&["plan", "--env", "dev"]);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(
        text(&output).contains("`/dev/zero` is not a regular file"),
        "{output:?}"
    );
}

// The gitlab backend reads its sync record within limits and never through a link; its actor
// cache, only a cache, is ignored with a warning.
#[test]
fn gitlab_backend_reads_within_limits() {
    let production = crate::fake_gitlab::FakeGitlab::start();
    let registry = crate::gitlab::registry(&[("production", &production)], 10);
    registry.write(
        "flags/wip/alpha.yml",
        flag("alpha", "environments:\n  production: true\n"),
    );
    let variables = [
        (crate::gitlab::TOKEN_ENV, crate::fake_gitlab::TOKEN),
        ("NO_PROXY", "127.0.0.1"),
    ];

    link(
        &registry,
        ".flagops/cache/gitlab/production.json",
        std::path::Path::new("/dev/zero"),
    );
    let output = registry.run_with_env(&["sync"], &variables);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        output
            .stderr
            .contains("cache/gitlab/production.json` is a symbolic link")
            && output.stderr.contains("warning: ignoring the actor cache"),
        "{output:?}"
    );

    link(
        &registry,
        ".flagops/state/production.sync.json",
        std::path::Path::new("/dev/zero"),
    );
    let output = registry.run_with_env(&["plan"], &variables);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(
        text(&output).contains("production.sync.json` is a symbolic link"),
        "{output:?}"
    );

    oversized(
        &registry,
        ".flagops/state/production.sync.json",
        flagops::owned_file::MAX_DOCUMENT_BYTES + 1,
    );
    let output = registry.run_with_env(&["status"], &variables);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(text(&output).contains("more than the 64 MiB"), "{output:?}");
}

// A history cache that is a link to `/dev/zero`, or too large, is ignored with a warning and
// rebuilt as a file of its own.
#[test]
fn history_cache_is_read_within_limits() {
    let registry = Registry::new();
    registry.write("flags/wip/alpha.yml", flag("alpha", "environments:\n  dev: true\n"));
    registry.init_git();
    let cache = ".flagops/cache/history.jsonl";
    let path = registry.path().join(cache);

    link(&registry, cache, std::path::Path::new("/dev/zero"));
    let output = registry.run(&["history", "alpha"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("initial registry"), "{output:?}");
    assert!(
        output
            .stderr
            .contains("warning: ignoring the history cache: `.flagops/cache/history.jsonl` is a symbolic link"),
        "{output:?}"
    );
    let metadata = std::fs::symlink_metadata(&path).unwrap();
    assert!(metadata.is_file() && metadata.len() > 0, "the cache was not rebuilt");

    oversized(&registry, cache, flagops::owned_file::MAX_LOG_BYTES + 1);
    let output = registry.run(&["history", "alpha"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stderr.contains("more than the 512 MiB"), "{output:?}");
    assert!(
        std::fs::metadata(&path).unwrap().len() < 1 << 20,
        "the cache was not rebuilt"
    );

    // The rebuilt cache is used again, silently.
    let output = registry.run(&["history", "alpha"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(!output.stderr.contains("warning"), "{output:?}");
}

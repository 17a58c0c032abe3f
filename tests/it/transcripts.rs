//! Every console transcript in README.md and docs/ runs and must match what the binary prints.
//!
//! A ```console block runs in a fresh copy of the example registry (`flagops.yml`, `flags/`,
//! `flag-tests/`). Each `$ ` line is a shell command, run with `sh` and the binary under test
//! first on `PATH` (`cargo run --release --` stands for `flagops`); the lines up to the next
//! `$ ` line are what it prints, stdout and stderr together. In them, a line `...` stands for
//! any number of lines, and `[..]` for any text within a line.
//!
//! An HTML comment right before the block changes that:
//! `<!-- transcript: setup -->` followed by shell lines up to `-->` prepares the registry first
//! (git, files, earlier commands), and `<!-- transcript: skip REASON -->` keeps the block from
//! running, for a reason the test prints; `SKIPPED` counts those, so none is skipped silently.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{example_registry, repo_root};

/// How many transcripts are marked to be skipped: change it with the mark, on purpose.
const SKIPPED: usize = 16;

/// One console block.
struct Transcript {
    /// `README.md:75`: the file and the line of its opening fence.
    place: String,
    setup: Option<String>,
    skip: Option<String>,
    /// Each command with the lines it should print.
    commands: Vec<(String, Vec<String>)>,
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![repo_root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo_root().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn transcripts(path: &Path) -> Vec<Transcript> {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.strip_prefix(repo_root()).unwrap().display().to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        if lines[index].trim() != "```console" {
            index += 1;
            continue;
        }
        let (setup, skip) = directive(&lines[..index]);
        let mut commands: Vec<(String, Vec<String>)> = Vec::new();
        let start = index;
        index += 1;
        while index < lines.len() && lines[index].trim() != "```" {
            match lines[index].strip_prefix("$ ") {
                Some(command) => commands.push((command.to_string(), Vec::new())),
                None => {
                    let (_, expected) = commands
                        .last_mut()
                        .unwrap_or_else(|| panic!("{name}:{}: output before any `$ ` line", index + 1));
                    expected.push(lines[index].to_string());
                }
            }
            index += 1;
        }
        found.push(Transcript {
            place: format!("{name}:{}", start + 1),
            setup,
            skip,
            commands,
        });
        index += 1;
    }
    found
}

/// The setup script or the reason to skip, from an HTML comment ending on the line before the
/// block (blank lines between are allowed).
fn directive(before: &[&str]) -> (Option<String>, Option<String>) {
    let mut end = before.len();
    while end > 0 && before[end - 1].trim().is_empty() {
        end -= 1;
    }
    if end == 0 || !before[end - 1].trim_end().ends_with("-->") {
        return (None, None);
    }
    let Some(start) = before[..end]
        .iter()
        .rposition(|line| line.trim_start().starts_with("<!-- transcript:"))
    else {
        return (None, None);
    };
    let comment = before[start..end].join("\n");
    let body = comment
        .trim()
        .trim_start_matches("<!-- transcript:")
        .trim_end_matches("-->")
        .trim();
    if let Some(reason) = body.strip_prefix("skip") {
        let reason = reason.trim();
        assert!(!reason.is_empty(), "a skipped transcript needs a reason: {comment}");
        return (None, Some(reason.to_string()));
    }
    match body.strip_prefix("setup") {
        Some(script) => (Some(script.trim().to_string()), None),
        None => panic!("unknown transcript directive: {comment}"),
    }
}

/// Runs `script` with `sh` in `dir`, the binary under test first on `PATH`, and returns what it
/// printed, stdout and stderr together.
fn shell(dir: &Path, script: &str) -> (bool, String) {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_flagops"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("exec 2>&1\n{script}"))
        .current_dir(dir)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .env("GIT_AUTHOR_NAME", "Ada Tester")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada Tester")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("FLAGOPS_CHANGE_LOCK")
        .env_remove("GITLAB_USER_LOGIN")
        .env_remove("CHAT_USER_ID")
        .env_remove("CI_COMMIT_SHA")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("run sh");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// Whether `line` matches `pattern`, in which `[..]` stands for any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || !line[first.len()..].ends_with(last) || line.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(found) => rest = &rest[found + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether `actual` matches `expected`, in which a line `...` stands for any number of lines.
fn lines_match(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first.trim() == "..." => {
            (0..=actual.len()).any(|skipped| lines_match(rest, &actual[skipped..]))
        }
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(line, others)| line_matches(first, line) && lines_match(rest, others)),
    }
}

// The wildcards match what they promise and nothing else.
#[test]
fn transcripts_wildcards_match_as_documented() {
    assert!(line_matches(
        "last synced [..] by [..]",
        "last synced 2026-11-21T20:48:05Z by Ada"
    ));
    assert!(!line_matches(
        "last synced [..] by [..]",
        "last synced 2026-11-21T20:48:05Z"
    ));
    assert!(!line_matches("a[..]a", "a"));
    let expected: Vec<String> = ["one", "...", "four"].map(String::from).to_vec();
    assert!(lines_match(&expected, &["one", "two", "three", "four"]));
    assert!(lines_match(&expected, &["one", "four"]));
    assert!(!lines_match(&expected, &["one", "four", "five"]));
}

// Every console transcript of README.md and docs/*.md prints what it shows.
#[test]
fn transcripts_in_the_docs_match() {
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let mut ran = 0;
    for file in markdown_files() {
        for transcript in transcripts(&file) {
            if let Some(reason) = &transcript.skip {
                skipped.push(format!("{}: {reason}", transcript.place));
                continue;
            }
            ran += 1;
            let registry = example_registry();
            if let Some(setup) = &transcript.setup {
                let (ok, printed) = shell(registry.path(), &format!("set -e\n{setup}"));
                if !ok {
                    failures.push(format!("{}: the setup failed:\n{printed}", transcript.place));
                    continue;
                }
            }
            for (command, expected) in &transcript.commands {
                let command = command.replace("cargo run --release -- ", "flagops ");
                let (_, printed) = shell(registry.path(), &command);
                let actual: Vec<&str> = printed.lines().collect();
                if !lines_match(expected, &actual) {
                    failures.push(format!(
                        "{}: `{command}` printed:\n{printed}\nwhere the transcript shows:\n{}\n",
                        transcript.place,
                        expected.join("\n")
                    ));
                }
            }
        }
    }
    eprintln!("ran {ran} transcripts; skipped {}:", skipped.len());
    for line in &skipped {
        eprintln!("  {line}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
    assert_eq!(
        skipped.len(),
        SKIPPED,
        "the number of skipped transcripts changed: update `SKIPPED` on purpose\n{}",
        skipped.join("\n")
    );
}

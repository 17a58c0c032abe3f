//! `flagops test`: the registry's evaluation tests.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ExitStatus;
use crate::cli::{ReportFormat, TestArgs};
use crate::diagnostic::{Diagnostic, Severity};
use crate::eval::{Gate, Outcome, Subject, evaluate};
use crate::load::Workspace;
use crate::model::Registry;
use crate::schema::SchemaKind;
use crate::source::{Document, SourceFile};

/// A test file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    tests: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: Option<String>,
    flag: String,
    environment: String,
    at: Option<String>,
    expect: Vec<Expectation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expectation {
    actor: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    enabled: Expected,
    gate: Option<Gate>,
}

#[derive(Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
enum Expected {
    Boolean(bool),
    Random(RandomWord),
}

#[derive(Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RandomWord {
    Random,
}

/// One expectation's result.
#[derive(Serialize)]
struct CaseResult {
    file: String,
    line: usize,
    case: String,
    actor: Option<String>,
    passed: bool,
    /// What was found, when the expectation failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
}

pub(super) fn run(workspace: &Workspace, args: TestArgs) -> anyhow::Result<ExitStatus> {
    let Some(registry) = super::load_valid(workspace, "testing")? else {
        return Ok(ExitStatus::Failure);
    };
    let root = match &args.path {
        Some(path) => path.clone(),
        None => workspace.resolve(&registry.config.tests_dir),
    };
    let files = test_files(&root)?;
    let now = jiff::Timestamp::now();
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut sources: Vec<SourceFile> = Vec::new();
    let mut results: Vec<CaseResult> = Vec::new();
    for path in &files {
        let file = match crate::load::read_registry_source(path)? {
            Ok(file) => file,
            Err(diagnostic) => {
                diagnostics.push(*diagnostic);
                continue;
            }
        };
        match read(&file) {
            Ok((tests, document)) => {
                run_file(&registry, &file, &document, &tests, now, &mut results, &mut diagnostics);
            }
            Err(found) => diagnostics.extend(found),
        }
        sources.push(file);
    }
    diagnostics.sort_by(|a, b| (&a.path, a.span).cmp(&(&b.path, b.span)));
    let passed = results.iter().filter(|result| result.passed).count();
    // Unreadable files and cases that name unknown flags fail the run as much as failed
    // expectations.
    let invalid = diagnostics.iter().filter(|d| d.check != "test-failed").count();
    let failed = results.len() - passed;
    let text = match args.format {
        ReportFormat::Json => {
            #[derive(Serialize)]
            struct Report<'a> {
                passed: usize,
                failed: usize,
                results: &'a [CaseResult],
                diagnostics: &'a [Diagnostic],
            }
            serde_json::to_string_pretty(&Report {
                passed,
                failed,
                results: &results,
                diagnostics: &diagnostics,
            })? + "\n"
        }
        ReportFormat::Human => {
            let mut out = String::new();
            if files.is_empty() {
                let _ = writeln!(
                    out,
                    "no test files under `{}`",
                    crate::load::display_path(&root).display()
                );
            }
            for result in &results {
                let actor = result.actor.as_deref().unwrap_or("(no actor)");
                let verdict = if result.passed { "ok" } else { "FAILED" };
                let _ = writeln!(
                    out,
                    "test {}:{} {} for {actor} ... {verdict}",
                    result.file, result.line, result.case
                );
            }
            let source = |path: &Path| {
                sources
                    .iter()
                    .find(|file| file.path == path)
                    .map(|file| file.text.as_str())
            };
            if !diagnostics.is_empty() {
                out.push('\n');
                out.push_str(&crate::diagnostic::render_human(&diagnostics, &source));
            }
            let verdict = if failed == 0 && invalid == 0 { "ok" } else { "FAILED" };
            let _ = writeln!(
                out,
                "\ntest result: {verdict}. {passed} passed; {failed} failed; {} test {}",
                files.len(),
                if files.len() == 1 { "file" } else { "files" }
            );
            out
        }
    };
    super::print(&text)?;
    Ok(if failed == 0 && invalid == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// Every `*.yml` and `*.yaml` entry under `root` (or `root` itself), sorted, found as flag files
/// are: a link or anything else that is not a regular file is listed, so that reading it reports
/// it rather than leaving its tests out without a word.
fn test_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if std::fs::symlink_metadata(root).is_err() {
        return Ok(Vec::new());
    }
    crate::load::discover_flag_files(root)
}

fn read(file: &SourceFile) -> Result<(TestFile, Document), Vec<Diagnostic>> {
    let document = crate::source::parse_yaml(file).map_err(|diagnostic| vec![*diagnostic])?;
    let found = crate::schema::check(SchemaKind::Test, file, &document);
    if !found.is_empty() {
        return Err(found);
    }
    let tests = crate::load::typed::<TestFile>(file, &document).map_err(|diagnostic| vec![*diagnostic])?;
    Ok((tests, document))
}

fn run_file(
    registry: &Registry,
    file: &SourceFile,
    document: &Document,
    tests: &TestFile,
    now: jiff::Timestamp,
    results: &mut Vec<CaseResult>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let invalid = |pointer: &str, message: String, help: String| {
        Diagnostic::error("test-invalid", file, document.index.value_span(pointer), message).with_help(help)
    };
    for (position, case) in tests.tests.iter().enumerate() {
        let pointer = format!("/tests/{position}");
        let Some(flag) = registry.flags.iter().map(|f| &f.flag).find(|f| f.name == case.flag) else {
            diagnostics.push(invalid(
                &format!("{pointer}/flag"),
                format!("no flag named `{}`", case.flag),
                "name a flag of the registry".to_string(),
            ));
            continue;
        };
        if registry.config.environment(&case.environment).is_none() {
            let known: Vec<&str> = registry.config.environment_names().collect();
            diagnostics.push(invalid(
                &format!("{pointer}/environment"),
                format!("unknown environment `{}`", case.environment),
                format!("the environments are {}", known.join(", ")),
            ));
            continue;
        }
        let at = match case.at.as_deref().map(crate::resolve::parse_time) {
            None => now,
            Some(Ok(at)) => at,
            Some(Err(reason)) => {
                diagnostics.push(invalid(
                    &format!("{pointer}/at"),
                    format!("invalid time: {reason}"),
                    "write an RFC 3339 time, quoted, such as \"2026-11-24T09:00:00Z\"".to_string(),
                ));
                continue;
            }
        };
        let label = case.name.clone().unwrap_or_else(|| match &case.at {
            Some(at) => format!("{} in {} at {at}", case.flag, case.environment),
            None => format!("{} in {} now", case.flag, case.environment),
        });
        let state = crate::resolve::desired_flag(flag, &case.environment, at);
        for (index, expectation) in case.expect.iter().enumerate() {
            let expectation_pointer = format!("{pointer}/expect/{index}");
            if let Some(group) = expectation
                .groups
                .iter()
                .find(|group| !registry.config.feature_groups.contains(*group))
            {
                diagnostics.push(invalid(
                    &format!("{expectation_pointer}/groups"),
                    format!("unknown feature group `{group}`"),
                    "name a group from `feature_groups` in flagops.yml".to_string(),
                ));
                continue;
            }
            let subject = Subject {
                actor: expectation.actor.clone(),
                groups: expectation.groups.clone(),
            };
            let decision = evaluate(
                &flag.name,
                flag.default_enabled,
                state.as_ref(),
                &subject,
                &registry.config,
            );
            let expected = match expectation.enabled {
                Expected::Boolean(true) => Outcome::On,
                Expected::Boolean(false) => Outcome::Off,
                Expected::Random(_) => Outcome::Random,
            };
            let mut failure = None;
            if decision.outcome != expected {
                failure = Some((
                    "enabled",
                    format!(
                        "expected {}, got {}: {}",
                        expected.as_str(),
                        decision.outcome.as_str(),
                        decision.reason
                    ),
                ));
            } else if let Some(gate) = expectation.gate
                && gate != decision.gate
            {
                failure = Some((
                    "gate",
                    format!(
                        "expected the {} gate to decide, but {} did: {}",
                        gate.as_str(),
                        decision.gate.as_str(),
                        decision.reason
                    ),
                ));
            }
            let span = document.index.value_span(&expectation_pointer);
            if let Some((key, message)) = &failure {
                let actor = expectation.actor.as_deref().unwrap_or("no actor");
                diagnostics.push(
                    Diagnostic::at(
                        "test-failed",
                        Severity::Error,
                        &file.path,
                        document.index.value_span(&format!("{expectation_pointer}/{key}")),
                        format!("{label}, {actor}: {message}"),
                    )
                    .with_help(format!(
                        "the state there is {}; fix the expectation or the flag's plan (`flagops eval {} --env {} --actor ...`)",
                        state
                            .as_ref()
                            .map_or_else(|| "nothing stored".to_string(), |s| crate::plan::show(Some(s))),
                        flag.name,
                        case.environment
                    )),
                );
            }
            results.push(CaseResult {
                file: file.path.display().to_string(),
                line: span.line,
                case: label.clone(),
                actor: expectation.actor.clone(),
                passed: failure.is_none(),
                failure: failure.map(|(_, message)| message),
            });
        }
    }
}

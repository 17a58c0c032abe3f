//! Machine-readable renderings: JSON, GitLab Code Quality and JUnit XML.
//!
//! Code Quality and JUnit are what GitLab shows inline on a merge request, so each finding
//! names its file and line.

use std::collections::BTreeSet;
use std::path::PathBuf;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Diagnostic, Severity, count};

/// A JSON array of diagnostics, pretty-printed.
pub fn render_json(diagnostics: &[Diagnostic]) -> String {
    let mut out = serde_json::to_string_pretty(diagnostics).expect("diagnostics serialize");
    out.push('\n');
    out
}

#[derive(Serialize)]
struct CodeQualityIssue<'a> {
    description: String,
    check_name: &'a str,
    fingerprint: String,
    severity: &'static str,
    location: CodeQualityLocation,
}

#[derive(Serialize)]
struct CodeQualityLocation {
    path: String,
    lines: CodeQualityLines,
}

#[derive(Serialize)]
struct CodeQualityLines {
    begin: usize,
}

/// GitLab's Code Quality report: an array of issues with a path, a line and a fingerprint.
pub fn render_codequality(diagnostics: &[Diagnostic]) -> String {
    let issues: Vec<CodeQualityIssue> = diagnostics
        .iter()
        .map(|diagnostic| {
            let path = portable_path(&diagnostic.path);
            let mut description = format!("[{}] {}", diagnostic.check, diagnostic.message);
            if let Some(help) = &diagnostic.help {
                description.push_str(" (help: ");
                description.push_str(help);
                description.push(')');
            }
            let mut hasher = Sha256::new();
            for part in [
                diagnostic.check,
                path.as_str(),
                &diagnostic.span.line.to_string(),
                &diagnostic.message,
            ] {
                hasher.update(part.as_bytes());
                hasher.update([0]);
            }
            let digest = hasher.finalize();
            let fingerprint = digest.iter().take(16).map(|byte| format!("{byte:02x}")).collect();
            CodeQualityIssue {
                description,
                check_name: diagnostic.check,
                fingerprint,
                severity: match diagnostic.severity {
                    Severity::Error => "major",
                    Severity::Warning => "minor",
                },
                location: CodeQualityLocation {
                    path,
                    lines: CodeQualityLines {
                        begin: diagnostic.span.line.max(1),
                    },
                },
            }
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&issues).expect("issues serialize");
    out.push('\n');
    out
}

/// JUnit XML: a failing test case per error, a passing one per file without errors.
pub fn render_junit(diagnostics: &[Diagnostic], files_checked: &[PathBuf]) -> String {
    let (errors, _) = count(diagnostics);
    let failing: BTreeSet<&PathBuf> = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| &d.path)
        .collect();
    let clean: Vec<&PathBuf> = files_checked.iter().filter(|path| !failing.contains(path)).collect();
    let tests = (errors + clean.len()).to_string();
    let failures = errors.to_string();

    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    let write = |writer: &mut Writer<Vec<u8>>| -> std::io::Result<()> {
        writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        writer
            .create_element("testsuites")
            .with_attributes([
                ("name", "flagops validate"),
                ("tests", tests.as_str()),
                ("failures", failures.as_str()),
            ])
            .write_inner_content(|writer| {
                writer
                    .create_element("testsuite")
                    .with_attributes([
                        ("name", "flagops validate"),
                        ("tests", tests.as_str()),
                        ("failures", failures.as_str()),
                        ("errors", "0"),
                    ])
                    .write_inner_content(|writer| {
                        for diagnostic in diagnostics.iter().filter(|d| d.severity == Severity::Error) {
                            let path = portable_path(&diagnostic.path);
                            let location = format!("{path}:{}:{}", diagnostic.span.line, diagnostic.span.column);
                            let name = format!("{location} [{}]", diagnostic.check);
                            let mut body = format!("{location}: error[{}]: {}", diagnostic.check, diagnostic.message);
                            if let Some(help) = &diagnostic.help {
                                body.push_str("\nhelp: ");
                                body.push_str(help);
                            }
                            writer
                                .create_element("testcase")
                                .with_attributes([
                                    ("name", name.as_str()),
                                    ("classname", path.as_str()),
                                    ("file", path.as_str()),
                                    ("line", diagnostic.span.line.to_string().as_str()),
                                ])
                                .write_inner_content(|writer| {
                                    writer
                                        .create_element("failure")
                                        .with_attributes([
                                            ("type", diagnostic.check),
                                            ("message", diagnostic.message.as_str()),
                                        ])
                                        .write_text_content(BytesText::new(&body))?;
                                    Ok(())
                                })?;
                        }
                        for path in &clean {
                            let path = portable_path(path);
                            writer
                                .create_element("testcase")
                                .with_attributes([
                                    ("name", path.as_str()),
                                    ("classname", path.as_str()),
                                    ("file", path.as_str()),
                                ])
                                .write_empty()?;
                        }
                        Ok(())
                    })?;
                Ok(())
            })?;
        Ok(())
    };
    write(&mut writer).expect("writing to a Vec cannot fail");
    let out = String::from_utf8(writer.into_inner()).expect("XML is UTF-8");
    // quick-xml escapes markup but not the characters XML 1.0 forbids outright, which a message
    // quoting a value could hold; the report's own markup holds none.
    let mut out = crate::escape::xml(&out).into_owned();
    out.push('\n');
    out
}

/// A path with forward slashes, as GitLab expects in reports.
fn portable_path(path: &std::path::Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

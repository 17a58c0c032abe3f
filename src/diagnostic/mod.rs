//! Diagnostics: problems found in the user's files, as data.
//!
//! A [`Diagnostic`] names a stable check id, a severity, a file and a span, a terse message and
//! an optional hint. Diagnostics are collected, sorted and rendered together; they are never
//! errors of the tool itself (those are `anyhow::Error`). The submodules render them for people
//! (rustc-like text) and for machines (JSON, GitLab Code Quality, JUnit XML).

mod human;
mod report;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use human::{render_human, summary as human_summary};
pub use report::{render_codequality, render_json, render_junit};

use crate::source::{SourceFile, Span};

/// How serious a diagnostic is: errors fail validation, warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The registry must not be applied.
    Error,
    /// Worth fixing, but not blocking.
    Warning,
}

/// One problem in one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The stable kebab-case id of the check that found it, such as `name-mismatch`.
    pub check: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// The file, as shown to users.
    pub path: PathBuf,
    /// Where in the file.
    pub span: Span,
    /// What is wrong, in a few words.
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

/// The output formats of `flagops validate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// rustc-like text for people.
    Human,
    /// A JSON array of diagnostics.
    Json,
    /// GitLab's Code Quality report (a JSON array of issues).
    CodeQuality,
    /// JUnit XML, one test case per file.
    Junit,
}

impl Diagnostic {
    /// An error found by `check` at `span` of `file`.
    pub fn error(check: &'static str, file: &SourceFile, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(check, Severity::Error, &file.path, span, message)
    }

    /// A diagnostic at `span` of the file at `path`.
    pub fn at(
        check: &'static str,
        severity: Severity,
        path: &Path,
        span: Span,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            check,
            severity,
            path: path.to_path_buf(),
            span,
            message: message.into(),
            help: None,
        }
    }

    /// Adds a hint saying how to fix the problem.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Turns the diagnostic into a warning.
    pub fn warning(mut self) -> Diagnostic {
        self.severity = Severity::Warning;
        self
    }

    /// The key diagnostics are sorted by: file, position, check.
    fn sort_key(&self) -> (&Path, Span, &'static str, &str) {
        (&self.path, self.span, self.check, &self.message)
    }
}

/// Sorts diagnostics by file, then position, and drops exact duplicates.
pub fn sort(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    diagnostics.dedup();
}

/// Renders diagnostics in `format`; `source` gives the text of a file for excerpts.
pub fn render<'a>(
    format: Format,
    diagnostics: &[Diagnostic],
    files_checked: &[PathBuf],
    source: &dyn Fn(&Path) -> Option<&'a str>,
) -> String {
    match format {
        Format::Human => render_human(diagnostics, source),
        Format::Json => render_json(diagnostics),
        Format::CodeQuality => render_codequality(diagnostics),
        Format::Junit => render_junit(diagnostics, files_checked),
    }
}

/// Counts errors and warnings.
pub fn count(diagnostics: &[Diagnostic]) -> (usize, usize) {
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    (errors, diagnostics.len() - errors)
}

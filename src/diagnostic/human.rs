//! rustc-like rendering: `error[check]: message`, the location, the source line, a caret, `help:`.

use std::fmt::Write;
use std::path::Path;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use super::{Diagnostic, Severity};

/// Renders every diagnostic as text for people, each followed by a blank line.
pub fn render_human<'a>(diagnostics: &[Diagnostic], source: &dyn Fn(&Path) -> Option<&'a str>) -> String {
    let renderer = Renderer::plain();
    let mut out = String::new();
    for diagnostic in diagnostics {
        let level = match diagnostic.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let path = diagnostic.path.display().to_string();
        let title = level.primary_title(diagnostic.message.as_str()).id(diagnostic.check);
        let mut report = Vec::new();
        match source(&diagnostic.path) {
            Some(text) if diagnostic.span.line > 0 => {
                let snippet = Snippet::source(text)
                    .path(path.as_str())
                    .annotation(AnnotationKind::Primary.span(diagnostic.span.byte_range(text)));
                report.push(title.element(snippet));
            }
            _ => {
                let location = format!(
                    "{path}:{}:{}",
                    diagnostic.span.line.max(1),
                    diagnostic.span.column.max(1)
                );
                report.push(title.element(annotate_snippets::Origin::path(location)));
            }
        }
        if let Some(help) = &diagnostic.help {
            report.push(Group::with_title(Level::HELP.secondary_title(help.as_str())));
        }
        let _ = writeln!(out, "{}\n", renderer.render(&report));
    }
    out
}

/// `2 errors, 1 warning`.
pub fn summary(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    format!("{}, {}", plural(errors, "error"), plural(warnings, "warning"))
}

//! What a test does when a tool it needs is missing: fail under CI, skip with one visible line
//! elsewhere. Shared by the integration tests and the `flipper_sql` benchmark.

use std::io::Write;

/// Whether a missing tool must fail the run rather than skip the test: `CI` is `true` or `1`,
/// as GitLab CI and `.ci/run` set it.
fn required() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

/// Skips (returns `None`) or, under CI, fails, because `what` is missing.
///
/// The skip line goes straight to the process's standard error, past the test harness's output
/// capture, so that a run which skipped something says so even when every test passed.
pub(crate) fn missing<T>(what: &str) -> Option<T> {
    let message = format!("{what} is missing: run scripts/setup-test-deps");
    assert!(!required(), "{message}");
    let _ = writeln!(std::io::stderr(), "skipped: {message}");
    None
}

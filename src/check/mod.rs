//! Named semantic checks over a schema-valid registry.
//!
//! Each check is one documented function `fn(&Registry, &mut Vec<Diagnostic>)` registered in
//! [`CHECKS`] in the order it runs. A check never stops at the first problem: it loops over the
//! flags and pushes every finding. Its id is the diagnostic's check id, the `--skip` name and
//! the anchor in `docs/checks.md`. This module is pure: no I/O, clock or environment.

mod definition;
mod requires;
mod rollout;
mod state;

pub use definition::{is_http_url, is_valid_name, parse_milestone};
pub use state::thousandths;

use crate::diagnostic::Diagnostic;
use crate::model::{FlagFile, Registry, State};
use crate::source::push_pointer;

/// One named semantic check.
pub struct Check {
    /// The stable id, such as `name-mismatch`.
    pub id: &'static str,
    /// What it ensures, in one line.
    pub summary: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// The check itself.
    pub run: fn(&Registry, &mut Vec<Diagnostic>),
}

/// Every semantic check, in the order they run.
pub static CHECKS: &[Check] = &[
    Check {
        id: "name-format",
        summary: "Ensure every flag name matches GitLab's pattern `^[a-z0-9]+(_[a-z0-9]+)*$`.",
        why: "GitLab refuses other names when it loads definitions, and the name is also the file name and the key in every backend.",
        run: definition::check_name_format,
    },
    Check {
        id: "name-mismatch",
        summary: "Ensure every flag's `name` equals its file name without `.yml`.",
        why: "Flags are found, moved and followed through history by file name; GitLab rejects a definition whose file name differs.",
        run: definition::check_name_matches_file,
    },
    Check {
        id: "duplicate-name",
        summary: "Ensure no two files define the same flag.",
        why: "Two definitions of one flag would fight over the same state in every environment.",
        run: definition::check_unique_names,
    },
    Check {
        id: "path-layout",
        summary: "Ensure flag files sit at `<type>/<name>.yml` when the config sets `layout: by_type`.",
        why: "GitLab's own layout keeps a flag's type visible in its path; the config opts into enforcing it.",
        run: definition::check_path_layout,
    },
    Check {
        id: "unknown-type",
        summary: "Ensure every flag's `type` is one of the `types` in `flagops.yml`.",
        why: "The type decides whether the flag may be on by default, whether it needs a rollout issue and how long it may live.",
        run: definition::check_known_type,
    },
    Check {
        id: "deprecated-type",
        summary: "Warn about flags whose type the config marks `deprecated`.",
        why: "Deprecated types (GitLab's `development`) were superseded; such flags should move to a current type.",
        run: definition::check_deprecated_type,
    },
    Check {
        id: "default-enabled",
        summary: "Ensure `default_enabled: true` is only used by types whose `can_be_default_enabled` is true.",
        why: "GitLab refuses default-on flags of other types: new code must start disabled and be rolled out.",
        run: definition::check_default_enabled,
    },
    Check {
        id: "rollout-issue-required",
        summary: "Ensure flags of types whose `rollout_issue_required` is true have a `rollout_issue_url`.",
        why: "The rollout issue is where the rollout is discussed and where changes are announced.",
        run: definition::check_rollout_issue,
    },
    Check {
        id: "milestone-format",
        summary: "Ensure `milestone` is a string like \"17.10\".",
        why: "Lifecycle ages are counted from the milestone; a malformed one hides a stale flag.",
        run: definition::check_milestone,
    },
    Check {
        id: "date-format",
        summary: "Ensure `intended_to_rollout_by` is a calendar date `YYYY-MM-DD`.",
        why: "An unparsable date is silently ignored by GitLab's housekeeping.",
        run: definition::check_dates,
    },
    Check {
        id: "url-scheme",
        summary: "Ensure every URL is an absolute http(s) URL.",
        why: "URLs become links on the site; any other scheme (such as `javascript:`) is refused.",
        run: definition::check_urls,
    },
    Check {
        id: "unknown-environment",
        summary: "Ensure every environment named in `environments` and in rollout steps is in `flagops.yml`.",
        why: "A misspelt environment would silently never be synced.",
        run: state::check_environments,
    },
    Check {
        id: "unknown-actor-kind",
        summary: "Ensure every actor kind under `actors` is one of the config's `actor_kinds`.",
        why: "The kind decides the Flipper id and the API parameter; an unknown one cannot be applied.",
        run: state::check_actor_kinds,
    },
    Check {
        id: "unknown-feature-group",
        summary: "Ensure every name under `groups` is one of the config's `feature_groups`.",
        why: "Flipper groups are registered in code; an unregistered one never matches anyone.",
        run: state::check_feature_groups,
    },
    Check {
        id: "percentage-precision",
        summary: "Ensure percentages have at most three decimals.",
        why: "Flipper compares against the percentage times 1,000; further decimals are lost.",
        run: state::check_percentages,
    },
    Check {
        id: "gates-representable",
        summary: "Ensure every conditional state is one GitLab can store: percentages strictly between 0 and 100.",
        why: "GitLab turns a percentage of 100 into `true` and 0 into `false`, both of which clear every other gate, so such a state would never match what is applied.",
        run: state::check_gates,
    },
    Check {
        id: "requires-unknown",
        summary: "Ensure every flag named in `requires` exists and is not the flag itself.",
        why: "A dependency on a missing flag can never be satisfied.",
        run: requires::check_requires_known,
    },
    Check {
        id: "requires-cycle",
        summary: "Ensure `requires` has no cycles.",
        why: "Flags that require each other can never be turned on one before the other.",
        run: requires::check_requires_cycles,
    },
    Check {
        id: "rollout-time",
        summary: "Ensure every rollout step has exactly one of `at` (an RFC 3339 time) or `after` (a positive duration), and the first step has `at`.",
        why: "The desired state at any moment is computed from these times.",
        run: rollout::check_rollout_times,
    },
    Check {
        id: "rollout-order",
        summary: "Ensure rollout steps are in strictly increasing time order.",
        why: "Out-of-order steps make the plan ambiguous: which state wins would depend on file order.",
        run: rollout::check_rollout_order,
    },
    Check {
        id: "rollout-empty-step",
        summary: "Ensure every rollout step sets the state of at least one environment.",
        why: "A step that changes nothing is usually a mis-indented one.",
        run: rollout::check_rollout_steps,
    },
];

/// Runs every check not named in `skip`, collecting all diagnostics.
pub fn run(registry: &Registry, skip: &[String]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for check in CHECKS {
        if skip.iter().any(|id| id == check.id) {
            continue;
        }
        let before = out.len();
        (check.run)(registry, &mut out);
        debug_assert!(
            out[before..]
                .iter()
                .all(|diagnostic| diagnostic.check == check.id),
            "check `{}` emitted another id",
            check.id
        );
    }
    out
}

/// The check named `id`.
pub fn find(id: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|check| check.id == id)
}

/// A diagnostic for `file` at the value of `pointer`.
fn at_value(
    check: &'static str,
    file: &FlagFile,
    pointer: &str,
    message: impl Into<String>,
) -> Diagnostic {
    Diagnostic::at(
        check,
        crate::diagnostic::Severity::Error,
        &file.path,
        file.index.value_span(pointer),
        message,
    )
}

/// A diagnostic for `file` at the key of `pointer`.
fn at_key(
    check: &'static str,
    file: &FlagFile,
    pointer: &str,
    message: impl Into<String>,
) -> Diagnostic {
    Diagnostic::at(
        check,
        crate::diagnostic::Severity::Error,
        &file.path,
        file.index.key_span(pointer),
        message,
    )
}

/// Every state a flag file sets, with its JSON pointer and environment: first `environments`,
/// then each rollout step.
fn states(file: &FlagFile) -> Vec<(String, &str, &State)> {
    let mut found = Vec::new();
    for (environment, state) in &file.flag.environments {
        found.push((
            push_pointer("/environments", environment),
            environment.as_str(),
            state,
        ));
    }
    for (position, step) in file.flag.rollout.iter().enumerate() {
        let step_pointer = format!("/rollout/{position}");
        for (environment, state) in &step.environments {
            found.push((
                push_pointer(&step_pointer, environment),
                environment.as_str(),
                state,
            ));
        }
    }
    found
}

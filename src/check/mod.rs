//! Named semantic checks over a schema-valid registry.
//!
//! Each check is one documented function `fn(&Registry, &mut Vec<Diagnostic>)` registered in
//! [`CHECKS`] in the order it runs. A check never stops at the first problem: it loops over the
//! flags and pushes every finding. Its id is the diagnostic's check id, the `--skip` name and
//! the anchor in `docs/checks.md`. This module is pure: no I/O, clock or environment.

mod definition;
mod policy;
mod requires;
mod rollout;
mod state;

pub use definition::{is_http_url, is_valid_name, parse_milestone};
pub use policy::POLICY_IDS;
pub use state::thousandths;

use rayon::prelude::*;

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
        id: "todo",
        summary: "Warn about every value a flag lists under `todo`, still to be decided by its owner.",
        why: "`flagops import gitlab` never invents a value GitLab's definition lacks: it lists it under `todo`, so the registry validates while the owner decides, and nobody mistakes a gap for a decision.",
        run: definition::check_todo,
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
        id: "backend-gates",
        summary: "Ensure every state is one its environment's backend can hold: a `flagd` environment cannot hold `percentage_of_time`.",
        why: "flagd evaluates deterministically, so it has no way to give a random share of calls the feature; `plan` and `sync` would refuse the environment whole.",
        run: state::check_backend_gates,
    },
    Check {
        id: "unleash-whole-percentage",
        summary: "Ensure every percentage set in an environment with `kind: unleash` is a whole number.",
        why: "Unleash's SDKs read a rollout as a whole number: Yggdrasil turns `12.5` into a strategy that is off for everyone, and the Node client into 12%.",
        run: state::check_unleash_percentages,
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
    Check {
        id: "guard-reference",
        summary: "Ensure every `guard` of a flag or a rollout step names one of the `guards` in `flagops.yml`, and that a guarded step with `on_breach: rollback` has a state to return to: an `environments` entry for each environment it sets.",
        why: "A sync asks a guard's query before it applies the step: a guard it cannot find, or a rollback with no state to return to, would leave the step unguarded or the breach without its remedy.",
        run: rollout::check_guard_references,
    },
    Check {
        id: "promotion-order",
        summary: "Policy: ensure no environment is more enabled than the one before it in `policies.promotion_order` (by default all environments in order), at every moment of the rollout plan.",
        why: "GitLab ChatOps' consistency check: production on needs staging on, staging off needs production off. A change must be seen working before it reaches more people. Overridable with `overrides: { promotion-order: \"reason\" }`.",
        run: policy::check_promotion_order,
    },
    Check {
        id: "min-wait",
        summary: "Policy: ensure a rollout step that changes a protected environment comes at least `policies.min_wait` (default 15m) after the step before it; rollback steps are exempt.",
        why: "Time to watch error rates and dashboards before the next increase. Overridable with `overrides: { min-wait: \"reason\" }`.",
        run: policy::check_min_wait,
    },
    Check {
        id: "max-step",
        summary: "Policy: ensure no rollout step raises a protected environment's percentage of actors or of time by more than `policies.max_step` percentage points (default 25), or the flag type's `max_step`; off counts as 0%, `true` as 100%, and rollback steps are exempt.",
        why: "GitLab's rollout guidance climbs 1, 10, 25, 50, 75, 100 percent: a bigger jump exposes many users to a change nobody has watched at the size before. Overridable with `overrides: { max-step: \"reason\" }`.",
        run: policy::check_max_step,
    },
    Check {
        id: "exposure-increase",
        summary: "Policy: ensure each rollout step only widens exposure (a higher percentage, more actors or groups, on) unless it is marked `rollback: true`.",
        why: "A step that takes a flag away from people is a rollback and should say so; a narrowing by mistake looks like an outage.",
        run: policy::check_exposure_increase,
    },
    Check {
        id: "no-percentage-of-time",
        summary: "Policy: ensure no state uses `percentage_of_time` unless the flag's type sets `allow_percentage_of_time: true`.",
        why: "GitLab deprecated percentage-of-time rollouts (ChatOps refuses `--random` without `--ignore-random-deprecation-check`): the answer changes on every call, so one user sees the feature flicker on and off. Overridable with `overrides: { no-percentage-of-time: \"reason\" }`.",
        run: policy::check_no_percentage_of_time,
    },
    Check {
        id: "requires-on",
        summary: "Policy: ensure a flag is on in an environment only where every flag it `requires` is fully on, at every moment of both rollout plans.",
        why: "Code behind a flag that depends on another flag's code breaks wherever the dependency is off or partial.",
        run: policy::check_requires_on,
    },
    Check {
        id: "protected-rollout-issue",
        summary: "Policy: ensure a flag enabled in a protected environment (anything but `false`) has a `rollout_issue_url`.",
        why: "Changes to protected environments are announced and discussed in the rollout issue.",
        run: policy::check_protected_rollout_issue,
    },
    Check {
        id: "freeze-window",
        summary: "Policy (warning): report rollout steps that take effect inside a change freeze of an environment they change.",
        why: "`sync` does not change frozen environments, so such a step is applied only when the freeze ends, or with `sync --override-freeze REASON`.",
        run: policy::check_freeze_window,
    },
];

/// A check made while reading a file, before the semantic checks: its id and what it finds.
pub struct InputCheck {
    /// The stable id.
    pub id: &'static str,
    /// What it reports.
    pub summary: &'static str,
}

/// The checks made while reading files (limits, YAML, the JSON Schema), which stop a file
/// before the semantic checks; they cannot be skipped.
pub static INPUT_CHECKS: &[InputCheck] = &[
    InputCheck {
        id: "not-a-file",
        summary: "A symbolic link, a folder, a named pipe or another entry under the flags directory that is not a regular file, where a flag file is expected; links are never followed and pipes never opened, and the flag its name gives stays known, so a sync never deletes it.",
    },
    InputCheck {
        id: "file-too-large",
        summary: "The file is larger than 256 KiB.",
    },
    InputCheck {
        id: "not-utf8",
        summary: "The file is not valid UTF-8; the position of the first bad byte is given.",
    },
    InputCheck {
        id: "yaml-syntax",
        summary: "The file is not valid YAML; an unclosed `[` or `{` is also shown where it opened.",
    },
    InputCheck {
        id: "duplicate-key",
        summary: "A key appears twice in one mapping.",
    },
    InputCheck {
        id: "alias-limit",
        summary: "YAML aliases expand to more than 10,000 nodes (a \"billion laughs\" file).",
    },
    InputCheck {
        id: "too-deep",
        summary: "The document nests deeper than 32 levels.",
    },
    InputCheck {
        id: "unsupported-yaml",
        summary: "A tag (any, `!!set` and `!!str` included), a complex key or a non-finite number: flag files hold plain data.",
    },
    InputCheck {
        id: "empty-file",
        summary: "The file holds no document.",
    },
    InputCheck {
        id: "multiple-documents",
        summary: "The file holds more than one YAML document.",
    },
    InputCheck {
        id: "control-character",
        summary: "A key or string value holding a control character (only `description`, `note` and override reasons may hold line breaks and tabs).",
    },
    InputCheck {
        id: "url-credentials",
        summary: "A URL with a user name or password (`https://user:secret@host`) or a credential in its query (`?private_token=...`), anywhere: a backend's token goes in the variable `token_env` names.",
    },
    InputCheck {
        id: "unknown-key",
        summary: "A key the schema does not define (with the closest known key as a hint).",
    },
    InputCheck {
        id: "missing-key",
        summary: "A required key is missing.",
    },
    InputCheck {
        id: "wrong-type",
        summary: "A value of the wrong type, such as an unquoted milestone read as a number.",
    },
    InputCheck {
        id: "out-of-range",
        summary: "A number outside its range, such as a percentage over 100.",
    },
    InputCheck {
        id: "empty-value",
        summary: "An empty string where a value is required.",
    },
    InputCheck {
        id: "invalid-list",
        summary: "A list or mapping with too few items or repeated items.",
    },
    InputCheck {
        id: "invalid-format",
        summary: "A string that does not match its pattern, such as an owner without `@`.",
    },
    InputCheck {
        id: "invalid-value",
        summary: "A value that is none of the allowed ones, such as a state that is not `true`, `false` or gates.",
    },
    InputCheck {
        id: "duplicate-environment",
        summary: "`flagops.yml` defines an environment twice.",
    },
    InputCheck {
        id: "path-outside-registry",
        summary: "A path in `flagops.yml` (`flags_dir`, `state_dir`, `cache_dir`, `tests_dir`, a backend's `path`) is absolute or leads out of its folder through `..`, and the file does not set `allow_paths_outside: true`.",
    },
    InputCheck {
        id: "unknown-guard",
        summary: "A flag type in `flagops.yml` names a guard that its `guards` do not define.",
    },
    InputCheck {
        id: "shared-state-file",
        summary: "Two environments of `flagops.yml` would keep their state, audit log or lock in the same file.",
    },
    InputCheck {
        id: "schema",
        summary: "Any other schema violation.",
    },
];

/// The reference page of every check, as committed in `docs/checks.md`.
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Checks\n\n<!-- Generated from src/check/mod.rs by `FLAGOPS_UPDATE_DOCS=1 cargo test docs_checks`; do not edit. -->\n\n",
    );
    out.push_str("Every diagnostic names one of these ids.\n");
    out.push_str("`flagops checks` lists them; `flagops validate --skip ID` turns a semantic check off.\n\n");
    out.push_str("## Reading checks\n\n");
    out.push_str("Made while a file is read, in this order; a file that fails one goes no further.\n\n");
    out.push_str("| id | finds |\n|---|---|\n");
    for check in INPUT_CHECKS {
        out.push_str(&format!("| `{}` | {} |\n", check.id, check.summary));
    }
    out.push_str("\n## Semantic checks\n\n");
    out.push_str("Run on every file that passed the schema, in this order; each reports every problem it finds.\n");
    for check in CHECKS {
        out.push_str(&format!(
            "\n### `{}`\n\n{}\n\nWhy: {}\n",
            check.id, check.summary, check.why
        ));
    }
    out
}

/// Runs every check not named in `skip`, collecting all diagnostics.
pub fn run(registry: &Registry, skip: &[String]) -> Vec<Diagnostic> {
    // Checks are independent, so they run in parallel; results keep the order of `CHECKS`.
    let results: Vec<Vec<Diagnostic>> = CHECKS
        .par_iter()
        .filter(|check| !skip.iter().any(|id| id == check.id))
        .filter(|check| !registry.config.policies.disabled.contains(check.id))
        .map(|check| {
            let mut found = Vec::new();
            (check.run)(registry, &mut found);
            debug_assert!(
                found.iter().all(|diagnostic| diagnostic.check == check.id),
                "check `{}` emitted another id",
                check.id
            );
            found
        })
        .collect();
    results.into_iter().flatten().collect()
}

/// The check named `id`.
pub fn find(id: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|check| check.id == id)
}

/// A diagnostic for `file` at the value of `pointer`.
fn at_value(check: &'static str, file: &FlagFile, pointer: &str, message: impl Into<String>) -> Diagnostic {
    Diagnostic::at(
        check,
        crate::diagnostic::Severity::Error,
        &file.path,
        file.index.value_span(pointer),
        message,
    )
}

/// A diagnostic for `file` at the key of `pointer`.
fn at_key(check: &'static str, file: &FlagFile, pointer: &str, message: impl Into<String>) -> Diagnostic {
    Diagnostic::at(
        check,
        crate::diagnostic::Severity::Error,
        &file.path,
        file.index.key_span(pointer),
        message,
    )
}

/// Where a state is set: under `environments`, or in a rollout step.
#[derive(Clone, Copy)]
struct StateAt<'a> {
    step: Option<usize>,
    environment: &'a str,
}

impl StateAt<'_> {
    /// The JSON pointer of the state, built only when a diagnostic needs it.
    fn pointer(&self) -> String {
        match self.step {
            None => push_pointer("/environments", self.environment),
            Some(position) => push_pointer(&format!("/rollout/{position}"), self.environment),
        }
    }
}

/// Every state a flag file sets, with where it is set: first `environments`, then each
/// rollout step.
fn states(file: &FlagFile) -> impl Iterator<Item = (StateAt<'_>, &State)> {
    let base = file.flag.environments.iter().map(|(environment, state)| {
        (
            StateAt {
                step: None,
                environment,
            },
            state,
        )
    });
    let steps = file.flag.rollout.iter().enumerate().flat_map(|(position, step)| {
        step.environments.iter().map(move |(environment, state)| {
            (
                StateAt {
                    step: Some(position),
                    environment,
                },
                state,
            )
        })
    });
    base.chain(steps)
}

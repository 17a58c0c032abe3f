//! Checks of a flag's definition fields: name, file, type, milestone, dates and URLs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::Layout;
use crate::diagnostic::{Diagnostic, Severity};
use crate::model::Registry;
use crate::source::Span;

use super::{at_key, at_value};

/// Ensure every flag name matches GitLab's pattern `^[a-z0-9]+(_[a-z0-9]+)*$`.
pub(super) fn check_name_format(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        if !is_valid_name(&file.flag.name) {
            let suggestion = suggest_name(&file.flag.name);
            let mut diagnostic = at_value(
                "name-format",
                file,
                "/name",
                format!("`{}` is not a valid flag name", file.flag.name),
            );
            diagnostic = if is_valid_name(&suggestion) {
                diagnostic.with_help(format!(
                    "use lowercase words joined by single underscores, such as `{suggestion}`"
                ))
            } else {
                diagnostic.with_help("use lowercase letters and digits in words joined by single underscores")
            };
            out.push(diagnostic);
        }
    }
}

/// Ensure every flag's `name` equals its file name without `.yml`.
pub(super) fn check_name_matches_file(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        let stem = file_stem(&file.path);
        if stem != file.flag.name {
            out.push(
                at_value(
                    "name-mismatch",
                    file,
                    "/name",
                    format!("the name `{}` differs from the file name `{stem}`", file.flag.name),
                )
                .with_help(format!(
                    "rename the file to `{}.yml`, or set `name: {stem}`",
                    file.flag.name
                )),
            );
        }
    }
}

/// Ensure no two files define the same flag.
pub(super) fn check_unique_names(registry: &Registry, out: &mut Vec<Diagnostic>) {
    let mut first: BTreeMap<&str, &Path> = BTreeMap::new();
    for file in &registry.flags {
        // A file that could not be read is known by its file name, which must equal its name.
        let unreadable = registry.unreadable.get(&file.flag.name).and_then(|paths| paths.first());
        match first
            .get(file.flag.name.as_str())
            .copied()
            .or(unreadable.map(PathBuf::as_path))
        {
            Some(previous) => out.push(
                at_value(
                    "duplicate-name",
                    file,
                    "/name",
                    format!("the flag `{}` is already defined", file.flag.name),
                )
                .with_help(format!(
                    "it is also defined in `{}`: keep one of the two files",
                    previous.display()
                )),
            ),
            None => {
                first.insert(&file.flag.name, &file.path);
            }
        }
    }
    // Files that could not be read but share a file name define the same flag too.
    for (stem, paths) in &registry.unreadable {
        for path in paths.iter().skip(1) {
            out.push(
                Diagnostic::at(
                    "duplicate-name",
                    Severity::Error,
                    path,
                    Span::point(1, 1),
                    format!("the flag `{stem}` is already defined"),
                )
                .with_help(format!(
                    "it is also defined in `{}`: keep one of the two files",
                    paths[0].display()
                )),
            );
        }
    }
}

/// Ensure flag files sit at `<type>/<name>.yml` when the config sets `layout: by_type`.
pub(super) fn check_path_layout(registry: &Registry, out: &mut Vec<Diagnostic>) {
    if registry.config.layout != Layout::ByType {
        return;
    }
    for file in &registry.flags {
        let folder = &file.folder;
        if *folder != file.flag.flag_type {
            out.push(
                at_value(
                    "path-layout",
                    file,
                    "/type",
                    format!("a flag of type `{}` sits in the folder `{folder}`", file.flag.flag_type),
                )
                .with_help(format!(
                    "move the file to `{}/{}.yml` under the flags directory",
                    file.flag.flag_type,
                    file_stem(&file.path)
                )),
            );
        }
    }
}

/// Ensure every flag's `type` is one of the `types` in `flagops.yml`.
pub(super) fn check_known_type(registry: &Registry, out: &mut Vec<Diagnostic>) {
    let known: Vec<String> = registry.config.types.keys().map(|name| format!("`{name}`")).collect();
    for file in &registry.flags {
        if !registry.config.types.contains_key(&file.flag.flag_type) {
            out.push(
                at_value(
                    "unknown-type",
                    file,
                    "/type",
                    format!("unknown flag type `{}`", file.flag.flag_type),
                )
                .with_help(format!("the types in flagops.yml are {}", known.join(", "))),
            );
        }
    }
}

/// Warn about flags whose type the config marks `deprecated`.
pub(super) fn check_deprecated_type(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        if registry
            .config
            .types
            .get(&file.flag.flag_type)
            .is_some_and(|rules| rules.deprecated)
        {
            out.push(
                at_value(
                    "deprecated-type",
                    file,
                    "/type",
                    format!("the flag type `{}` is deprecated", file.flag.flag_type),
                )
                .with_help("move the flag to a current type, such as `gitlab_com_derisk`, `wip` or `beta`")
                .warning(),
            );
        }
    }
}

/// Ensure `default_enabled: true` is only used by types whose `can_be_default_enabled` is true.
pub(super) fn check_default_enabled(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        let Some(rules) = registry.config.types.get(&file.flag.flag_type) else {
            continue;
        };
        if file.flag.default_enabled && !rules.can_be_default_enabled {
            out.push(
                at_value(
                    "default-enabled",
                    file,
                    "/default_enabled",
                    format!("flags of type `{}` cannot be enabled by default", file.flag.flag_type),
                )
                .with_help("set `default_enabled: false` and roll the flag out with `environments` instead"),
            );
        }
    }
}

/// Ensure flags of types whose `rollout_issue_required` is true have a `rollout_issue_url`.
pub(super) fn check_rollout_issue(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        let Some(rules) = registry.config.types.get(&file.flag.flag_type) else {
            continue;
        };
        if rules.rollout_issue_required
            && file.flag.rollout_issue_url.is_none()
            && !file.flag.todo.contains_key("rollout_issue_url")
        {
            out.push(
                at_key(
                    "rollout-issue-required",
                    file,
                    "/type",
                    format!("flags of type `{}` need a rollout issue", file.flag.flag_type),
                )
                .with_help("add `rollout_issue_url:` with the issue that tracks the rollout"),
            );
        }
    }
}

/// Ensure `milestone` is a string like "17.10".
pub(super) fn check_milestone(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        if parse_milestone(&file.flag.milestone).is_none() && !file.flag.todo.contains_key("milestone") {
            out.push(
                at_value(
                    "milestone-format",
                    file,
                    "/milestone",
                    format!("`{}` is not a milestone", file.flag.milestone),
                )
                .with_help("write the major and minor version, quoted, such as `milestone: \"17.10\"`"),
            );
        }
    }
}

/// Ensure `intended_to_rollout_by` is a calendar date `YYYY-MM-DD`.
pub(super) fn check_dates(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        let Some(date) = &file.flag.intended_to_rollout_by else {
            continue;
        };
        let valid = date.len() == 10 && date.parse::<jiff::civil::Date>().is_ok();
        if !valid {
            out.push(
                at_value(
                    "date-format",
                    file,
                    "/intended_to_rollout_by",
                    format!("`{date}` is not a date"),
                )
                .with_help("write a calendar date, quoted, such as `\"2026-12-31\"`"),
            );
        }
    }
}

/// Ensure every URL is an absolute http(s) URL.
pub(super) fn check_urls(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        let flag = &file.flag;
        let urls = [
            ("feature_issue_url", flag.feature_issue_url.as_deref()),
            ("introduced_by_url", Some(flag.introduced_by_url.as_str())),
            ("rollout_issue_url", flag.rollout_issue_url.as_deref()),
        ];
        for (key, url) in urls {
            let Some(url) = url else { continue };
            let to_do = url.is_empty() && flag.todo.contains_key(key);
            if !is_http_url(url) && !to_do {
                out.push(
                    at_value(
                        "url-scheme",
                        file,
                        &format!("/{key}"),
                        format!("`{url}` is not an http(s) URL"),
                    )
                    .with_help("write an absolute URL starting with `https://`"),
                );
            }
        }
    }
}

/// Whether `name` matches `^[a-z0-9]+(_[a-z0-9]+)*$`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .split('_')
            .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// Parses a milestone such as `17.10` into (major, minor).
pub fn parse_milestone(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.')?;
    let digits = |part: &str| !part.is_empty() && part.len() <= 4 && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return None;
    }
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Whether `url` is an absolute http or https URL with a host.
pub fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !url.chars().any(char::is_whitespace)
    })
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn suggest_name(name: &str) -> String {
    let lowered: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    lowered
        .split('_')
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// Warn about every value a flag lists under `todo`: still to be decided by its owner.
pub(super) fn check_todo(registry: &Registry, out: &mut Vec<Diagnostic>) {
    for file in &registry.flags {
        for (key, decide) in &file.flag.todo {
            out.push(
                at_key(
                    "todo",
                    file,
                    &crate::source::push_pointer("/todo", key),
                    format!("`{key}` is still to be decided: {decide}"),
                )
                .with_help(format!("write `{key}`, then remove its entry from `todo`"))
                .warning(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_gitlab_pattern() {
        assert!(is_valid_name("update_all_mirrors_job_tracker"));
        assert!(is_valid_name("a1"));
        for bad in [
            "",
            "_a",
            "a_",
            "a__b",
            "ALL_CAPS",
            "colon:separated",
            "space separated",
            "dash-name",
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert_eq!(suggest_name("Dash-Name"), "dash_name");
    }

    #[test]
    fn milestones_are_major_dot_minor() {
        assert_eq!(parse_milestone("17.10"), Some((17, 10)));
        assert_eq!(parse_milestone("17"), None);
        assert_eq!(parse_milestone("17.1.0"), None);
        assert_eq!(parse_milestone("v17.1"), None);
    }

    #[test]
    fn urls_must_be_http() {
        assert!(is_http_url("https://gitlab.com/gitlab-org/gitlab/-/issues/1"));
        assert!(is_http_url("HTTP://example.com"));
        assert!(!is_http_url("javascript:alert(1)"));
        assert!(!is_http_url("https://"));
        assert!(!is_http_url("ftp://example.com"));
        assert!(!is_http_url("https://exa mple.com"));
    }
}

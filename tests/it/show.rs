//! `flagops show`: one screen with everything about a flag.

use serde_json::{Value, json};

use crate::harness::{Registry, flag};

/// A git registry with `alpha` (a rollout plan under way) and `gamma` (requiring it), synced;
/// then production drifts outside git and a staging change is committed but not synced.
fn registry() -> Registry {
    let registry = Registry::new();
    registry.write(
        "flags/wip/alpha.yml",
        flag(
            "alpha",
            "owners: ['@ada']\nrollout_issue_url: https://gitlab.com/gitlab-org/gitlab/-/issues/7\nenvironments:\n  dev: true\n  staging: true\n  production:\n    percentage_of_actors: 25\nrollout:\n  - at: 2020-01-01T00:00:00Z\n    dev: true\n  - at: 2999-01-01T00:00:00Z\n    production: true\n",
        ),
    );
    registry.write(
        "flags/wip/gamma.yml",
        flag("gamma", "requires: [alpha]\nenvironments:\n  dev: true\n"),
    );
    registry.init_git();
    assert_eq!(registry.run(&["sync"]).code, 0);
    let mut state = registry.state("production");
    state["flags"]["alpha"] = json!(true);
    registry.write(
        ".flagops/state/production.json",
        serde_json::to_string_pretty(&state).unwrap(),
    );
    let text = registry
        .read("flags/wip/alpha.yml")
        .replace("  staging: true", "  staging: false");
    registry.write("flags/wip/alpha.yml", text);
    registry.commit("Turn alpha off in staging\n\nSee merge request gitlab-org/gitlab!42");
    registry
}

// Desired and actual side by side with drift and pending marked, the plan's position, the last
// changes with their merge request, and the requirements both ways.
#[test]
fn show_puts_state_plan_history_and_requires_on_one_screen() {
    let registry = registry();
    let show = registry.run(&["show", "alpha"]);
    assert_eq!(show.code, 0, "{show:?}");
    let out = &show.stdout;
    for expected in [
        "alpha (flags/wip/alpha.yml)\n",
        "  owners                 @ada\n",
        "  rollout issue          https://gitlab.com/gitlab-org/gitlab/-/issues/7\n",
        "  | A flag for tests.\n",
        "  environment  desired        actual\n",
        "  dev          true           true      in sync\n",
        "  staging      false          true      pending\n",
        "  production   25% of actors  true      drifted\n",
        "`flagops adopt` writes the environment's into the file",
        "    step 1 2020-01-01T00:00:00Z current  dev: true\n",
        "  → step 2 2999-01-01T00:00:00Z next     production: true\n",
        "requires: none\nrequired by: gamma\n",
        "    Turn alpha off in staging (https://gitlab.com/gitlab-org/flag-registry/-/merge_requests/42)\n      staging: true → false\n",
        "    initial registry\n",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }

    let gamma = registry.run(&["show", "gamma", "--production"]);
    assert_eq!(gamma.code, 0, "{gamma:?}");
    assert!(
        gamma.stdout.contains("requires: alpha\nrequired by: none\n"),
        "{}",
        gamma.stdout
    );
    assert!(
        gamma.stdout.contains("  production   (absent)  (absent)  in sync\n"),
        "{}",
        gamma.stdout
    );
    assert!(!gamma.stdout.contains("  dev "), "{}", gamma.stdout);
}

// `--format json` holds the same, as data.
#[test]
fn show_format_json_parses() {
    let registry = registry();
    let show = registry.run(&[
        "show",
        "alpha",
        "--env",
        "staging",
        "--env",
        "production",
        "--format",
        "json",
    ]);
    assert_eq!(show.code, 0, "{show:?}");
    let view: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(view["definition"]["type"], "wip");
    assert_eq!(
        view["environments"],
        json!([
            {"environment": "staging", "desired": false, "actual": true, "standing": "pending"},
            {"environment": "production", "desired": {"percentage_of_actors": 25}, "actual": true, "standing": "drifted"},
        ])
    );
    assert_eq!(view["rollout"]["steps"][1]["status"], "next");
    assert_eq!(view["required_by"], json!(["gamma"]));
    assert_eq!(view["history"]["events"][0]["merge_request"], 42);
}

// An unknown flag or environment is refused with the closest name, exit 1.
#[test]
fn show_unknown_flag_suggests_the_closest_name() {
    let registry = Registry::new();
    registry.write("flags/wip/alpha.yml", flag("alpha", ""));
    let show = registry.run(&["show", "alpah"]);
    assert_eq!(show.code, 1, "{show:?}");
    assert!(
        show.stderr
            .contains("no flag named `alpah`\nhelp: did you mean `alpha`?"),
        "{}",
        show.stderr
    );
    let environment = registry.run(&["show", "alpha", "--env", "prod"]);
    assert_eq!(environment.code, 1, "{environment:?}");
    assert!(
        environment.stderr.contains("unknown environment `prod`"),
        "{}",
        environment.stderr
    );
}

// A backend that cannot be read is shown as unreadable with the reason, and a registry outside
// git says in one line that it has no history; neither fails the command.
#[test]
fn show_marks_an_unreadable_environment_and_a_missing_history() {
    let registry = Registry::new();
    registry.write("flags/wip/alpha.yml", flag("alpha", "environments:\n  dev: true\n"));
    assert_eq!(registry.run(&["sync"]).code, 0);
    registry.write(".flagops/state/production.json", "{ not json");
    let show = registry.run(&["show", "alpha"]);
    assert_eq!(show.code, 0, "{show:?}");
    assert!(show.stdout.contains("  dev          true      true"), "{}", show.stdout);
    assert!(
        show.stdout.contains("  production   (absent)  unreadable: "),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout
            .contains("last changes:\n  not available: the registry is not in a git repository\n"),
        "{}",
        show.stdout
    );
}

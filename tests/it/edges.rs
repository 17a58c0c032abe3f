//! The edges of the command line: completions and the manual page, the forms `--at` takes,
//! actors as `eval` reads them, errors whose cause is known, an environment that cannot be read
//! while planning, and times in human output.

use serde_json::Value;

use crate::harness::{Registry, flag};

// `completions` and `man` need no registry, and write scripts the shells and `man` read.
#[test]
fn edges_completions_and_man_page_need_no_registry() {
    let folder = Registry::empty();
    let bash = folder.run(&["completions", "bash"]);
    assert_eq!(bash.code, 0, "{bash:?}");
    assert!(
        bash.stdout.contains("validate") && bash.stdout.contains("--at"),
        "{}",
        bash.stdout
    );
    let script = folder.path().join("flagops.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "{}", String::from_utf8_lossy(&syntax.stderr));
    let zsh = folder.run(&["completions", "zsh"]);
    assert!(zsh.stdout.starts_with("#compdef flagops"), "{zsh:?}");
    let fish = folder.run(&["completions", "fish"]);
    assert!(fish.stdout.contains("complete -c flagops"), "{fish:?}");
    let man = folder.run(&["man"]);
    assert_eq!(man.code, 0, "{man:?}");
    assert!(man.stdout.contains(".TH flagops 1"), "{}", man.stdout);
    assert!(man.stdout.contains("deploy"), "{}", man.stdout);
    assert_eq!(folder.run(&["completions", "powershell"]).code, 2);
}

/// A registry whose flag `a` turns on in dev at midnight UTC on 2026-12-01.
fn turning_on() -> Registry {
    let registry = Registry::new();
    registry.write(
        "flags/wip/a.yml",
        flag(
            "a",
            "environments:\n  dev: false\nrollout:\n  - at: \"2026-12-01T00:00:00Z\"\n    dev: true\n",
        ),
    );
    registry
}

fn outcome(registry: &Registry, args: &[&str]) -> String {
    let mut all = vec!["eval", "a", "--env", "dev", "--actor", "User:1", "--format", "json"];
    all.extend_from_slice(args);
    let output = registry.run(&all);
    assert_eq!(output.code, 0, "{output:?}");
    let report: Value = serde_json::from_str(&output.stdout).unwrap();
    report["results"][0]["outcome"].as_str().unwrap().to_string()
}

// `--at` takes a date (midnight UTC), `now` and times relative to the clock, as well as
// RFC 3339, and `--compare-at` takes the same forms; anything else is refused with the forms.
#[test]
fn edges_at_takes_dates_relative_times_and_now() {
    let registry = turning_on();
    assert_eq!(outcome(&registry, &["--at", "2026-12-01"]), "on");
    assert_eq!(outcome(&registry, &["--at", "2026-11-30"]), "off");
    assert_eq!(outcome(&registry, &["--at", "2026-11-30T23:59:59Z"]), "off");
    assert_eq!(outcome(&registry, &["--at", "+520w"]), "on");
    assert_eq!(outcome(&registry, &["--at", "-520w"]), "off");
    assert_eq!(outcome(&registry, &["--at", "now"]), outcome(&registry, &[]));
    let compared = registry.run(&[
        "eval",
        "a",
        "--env",
        "dev",
        "--actor",
        "User:1",
        "--at",
        "-520w",
        "--compare-at",
        "+1h 30m",
    ]);
    assert_eq!(compared.code, 0, "{compared:?}");
    for command in [
        &["plan", "--at", "2026-12-01T09:00"][..],
        &["status", "--at", "tomorrow"],
        &["eval", "a", "--env", "dev", "--at", "+1mo"],
    ] {
        let output = registry.run(command);
        assert_eq!(output.code, 2, "{output:?}");
        assert!(
            output
                .stderr
                .contains("help: write `now`, a date such as 2026-12-01 (midnight UTC)"),
            "{}",
            output.stderr
        );
    }
}

// `eval` reads an actor as flagops prints it (`group:gitlab-org`) or as Flipper writes it
// (`Group:gitlab-org`), and refuses one it cannot read instead of answering `off`.
#[test]
fn edges_eval_reads_actor_as_printed_or_as_flipper_writes_it() {
    let registry = Registry::new();
    registry.write(
        "flags/wip/a.yml",
        flag(
            "a",
            "environments:\n  production:\n    actors:\n      group: [gitlab-org]\n",
        ),
    );
    let output = registry.run(&[
        "eval",
        "a",
        "--env",
        "production",
        "--actor",
        "group:gitlab-org",
        "--actor",
        "Group:gitlab-org",
    ]);
    assert_eq!(output.code, 0, "{output:?}");
    insta::assert_snapshot!(output.stdout.lines().skip(1).collect::<Vec<_>>().join("\n"), @r"
      Group:gitlab-org  on     Group:gitlab-org is listed under `actors`
      Group:gitlab-org  on     Group:gitlab-org is listed under `actors`
    ");
    let unread = registry.run(&["eval", "a", "--env", "production", "--actor", "gitlab-org"]);
    assert_eq!(unread.code, 1, "{unread:?}");
    assert_eq!(unread.stdout, "");
    assert!(
        unread
            .stderr
            .contains("error: cannot read the actor `gitlab-org` (`--actor gitlab-org`)"),
        "{}",
        unread.stderr
    );
    assert!(unread.stderr.contains("`Group:ID` or `group:ID`"), "{}", unread.stderr);
    registry.write("actors.txt", "# sample\nUser:1\n\nsomeone\n");
    let file = registry.run(&["eval", "a", "--env", "production", "--actors-file", "actors.txt"]);
    assert_eq!(file.code, 1, "{file:?}");
    assert!(
        file.stderr.contains("cannot read the actor `someone` (actors.txt:4)"),
        "{}",
        file.stderr
    );
}

// Errors whose cause is known say it: history outside git, a base revision that does not exist,
// an owner without `@`, a missing rollout issue (exit 1, nothing written), a bare percentage and
// `percentage:` for a state.
#[test]
fn edges_errors_name_their_cause() {
    let registry = Registry::new();
    registry.write("flags/wip/a.yml", flag("a", "environments:\n  dev: true\n"));
    let history = registry.run(&["history", "a"]);
    assert_eq!(history.code, 2, "{history:?}");
    assert!(
        history.stderr.contains("is not in a git repository"),
        "{}",
        history.stderr
    );

    registry.init_git();
    let base = registry.run(&["plan", "--base", "master"]);
    assert_eq!(base.code, 2, "{base:?}");
    assert!(
        base.stderr.contains("the revision `master` does not exist")
            && base
                .stderr
                .contains("help: name a branch, a tag or a commit; the branches are main"),
        "{}",
        base.stderr
    );

    let mut args = crate::cli::new_args("fresh", "wip");
    let owner = args.iter().position(|arg| *arg == "@alice").unwrap();
    args[owner] = "nina";
    let owner = registry.run(&args);
    assert_eq!(owner.code, 1, "{owner:?}");
    assert!(
        owner.stderr.contains("owners start with `@`") && owner.stderr.contains("help: write `--owner @nina`"),
        "{}",
        owner.stderr
    );
    assert!(!registry.path().join("flags/wip/fresh.yml").exists());
    let mut args = crate::cli::new_args("fresh", "gitlab_com_derisk");
    let issue = args.iter().position(|arg| *arg == "--rollout-issue").unwrap();
    args.drain(issue..issue + 2);
    let missing = registry.run(&args);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(missing.stderr.contains("need a rollout issue"), "{}", missing.stderr);
    assert!(!registry.path().join("flags/gitlab_com_derisk/fresh.yml").exists());

    registry.write("flags/wip/b.yml", flag("b", "environments:\n  production: 50\n"));
    registry.write(
        "flags/wip/c.yml",
        flag("c", "environments:\n  production:\n    percentage: 50\n"),
    );
    let output = registry.run(&["validate", "--format", "json"]);
    assert_eq!(output.code, 1, "{output:?}");
    let findings: Vec<Value> = serde_json::from_str(&output.stdout).unwrap();
    let help = |path: &str| {
        findings
            .iter()
            .find(|finding| finding["path"] == path)
            .map(|finding| finding["help"].as_str().unwrap().to_string())
    };
    assert_eq!(
        help("flags/wip/b.yml").as_deref(),
        Some(
            "a percentage needs its gate: write `{ percentage_of_actors: 50 }` (GitLab's `--actors`), or `true` or `false`"
        )
    );
    assert_eq!(
        help("flags/wip/c.yml").as_deref(),
        Some("did you mean `percentage_of_actors`?")
    );
}

// `plan` with one environment's backend unreadable (its token is not set) plans the others,
// reports that one as unavailable and exits 2.
#[test]
fn edges_plan_reports_an_unreadable_environment_and_plans_the_others() {
    let registry = Registry::new();
    let config = registry.read("flagops.yml");
    let production = config.rfind("backend: { kind: file }").unwrap();
    registry.write(
        "flagops.yml",
        format!(
            "{}backend: {{ kind: gitlab, url: \"https://gitlab.example.com\", token_env: FLAGOPS_EDGE_UNSET_TOKEN }}{}",
            &config[..production],
            &config[production + "backend: { kind: file }".len()..]
        ),
    );
    registry.write(
        "flags/wip/a.yml",
        flag("a", "environments:\n  dev: true\n  production: true\n"),
    );
    let output = registry.run_with_env(&["plan"], &[("FLAGOPS_EDGE_UNSET_TOKEN", "")]);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(
        output.stdout.contains("dev: 1 change\n  + a: (absent) → true"),
        "{}",
        output.stdout
    );
    assert!(output.stdout.contains("ops: no changes"), "{}", output.stdout);
    assert!(!output.stdout.contains("production"), "{}", output.stdout);
    assert!(
        output.stderr.contains("error: production: unavailable, not planned: ")
            && output.stderr.contains("FLAGOPS_EDGE_UNSET_TOKEN"),
        "{}",
        output.stderr
    );
    assert!(
        output
            .stderr
            .contains("planned 5 of 6 environments: production could not be read"),
        "{}",
        output.stderr
    );
}

// Human output shows times to the second; JSON keeps them at full precision.
#[test]
fn edges_human_times_are_to_the_second() {
    let registry = Registry::new();
    registry.write("flags/wip/a.yml", flag("a", "environments:\n  dev: true\n"));
    assert_eq!(registry.run(&["sync", "--env", "dev"]).code, 0);
    let status = registry.run(&["status", "--env", "dev"]);
    assert_eq!(status.code, 0, "{status:?}");
    let synced = status.stdout.split("last synced ").nth(1).expect("a last sync");
    let time: String = synced.chars().take(21).collect();
    assert!(time.ends_with("Z ") && !time.contains('.'), "{}", status.stdout);
    let json = registry.run(&["status", "--env", "dev", "--format", "json"]);
    assert!(
        json.stdout.contains(&format!("\"{}.", &time[..19])),
        "JSON keeps the fraction of a second: {}",
        json.stdout
    );
    let show = registry.run(&["show", "a", "--dev"]);
    let at: String = show
        .stdout
        .split("state at ")
        .nth(1)
        .unwrap()
        .chars()
        .take(21)
        .collect();
    assert!(at.ends_with("Z:") && !at.contains('.'), "{}", show.stdout);
    let eval = registry.run(&["eval", "a", "--env", "dev"]);
    assert!(!eval.stdout.lines().next().unwrap().contains('.'), "{}", eval.stdout);
}

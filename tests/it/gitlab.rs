//! The `gitlab` backend against a fake GitLab (`fake_gitlab`): syncs through the real binary,
//! every transition of the plan's state forms, GitLab's refusals, unknown actors, faults, and
//! the token, which must never be shown or written anywhere.

use std::collections::BTreeMap;
use std::time::Duration;

use flagops::backends::ApplyContext;
use flagops::backends::gitlab::client::Token;
use flagops::backends::gitlab::{GitlabBackend, Settings};
use flagops::sync::{RetryPolicy, apply_plan, diff_environment, read_environment};
use sha2::{Digest, Sha256};

use crate::fake_gitlab::{FakeGitlab, Fault, NON_ADMIN_TOKEN, TOKEN};
use crate::harness::{Output, Registry, flag};

pub(crate) const TOKEN_ENV: &str = "FLAGOPS_TEST_GITLAB_TOKEN";

/// A registry whose environments are the given fake instances, in promotion order; each request
/// may take `timeout` seconds.
pub(crate) fn registry(environments: &[(&str, &FakeGitlab)], timeout: u64) -> Registry {
    let registry = Registry::new();
    let config = registry.read("flagops.yml");
    let start = config.find("environments:").expect("environments");
    let end = config.find("# GitLab's flag types").expect("types");
    let mut block = String::from("environments:\n");
    for (name, fake) in environments {
        block.push_str(&format!(
            "  - name: {name}\n    backend: {{ kind: gitlab, url: \"{}\", token_env: {TOKEN_ENV}, timeout_seconds: {timeout} }}\n",
            fake.url()
        ));
    }
    block.push('\n');
    registry.write("flagops.yml", format!("{}{block}{}", &config[..start], &config[end..]));
    registry
}

/// Runs flagops with the fake's token, checking that it is never printed.
fn run(registry: &Registry, args: &[&str]) -> Output {
    run_with_token(registry, args, TOKEN)
}

fn run_with_token(registry: &Registry, args: &[&str], token: &str) -> Output {
    let output = registry.run_with_env(args, &[(TOKEN_ENV, token), ("NO_PROXY", "127.0.0.1")]);
    for text in [&output.stdout, &output.stderr] {
        assert!(!text.contains(token), "the token was printed: {output:?}");
    }
    output
}

/// Checks that no file the runs left in the registry holds the token.
fn assert_token_not_written(registry: &Registry) {
    for entry in walkdir::WalkDir::new(registry.path()) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(TOKEN), "`{}` holds the token", entry.path().display());
        }
    }
}

/// GitLab's hashed storage path of a project's repository.
fn hashed(id: u64) -> String {
    let hex: String = Sha256::digest(id.to_string().as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("@hashed/{}/{}/{hex}", &hex[..2], &hex[2..4])
}

fn flags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(name, state)| (name.to_string(), state.to_string()))
        .collect()
}

fn count(requests: &[String], wanted: &str) -> usize {
    requests.iter().filter(|request| *request == wanted).count()
}

// A sync creates every flag as Flipper gates with the actors' ids; a second sync reads one list
// and changes nothing; the plan is clean with or without the actor cache; drift is repaired.
#[test]
fn gitlab_sync_converges_and_reruns_with_one_request() {
    let staging = FakeGitlab::start();
    let production = FakeGitlab::start();
    let registry = registry(&[("staging", &staging), ("production", &production)], 10);
    registry.write(
        "flags/wip/alpha.yml",
        flag(
            "alpha",
            "environments:\n  staging: true\n  production:\n    percentage_of_actors: 25\n",
        ),
    );
    registry.write(
        "flags/wip/beta.yml",
        flag(
            "beta",
            "environments:\n  production:\n    percentage_of_actors: 12.5\n    actors:\n      project: [gitlab-org/gitlab, 13083]\n      user: [alice, 2]\n      namespace: [gitlab-org, bob]\n      group: [Gitlab-Org/Security]\n      repository: [gitlab-org/gitlab.wiki.git]\n      runner: [12270807]\n",
        ),
    );
    registry.write(
        "flags/wip/gamma.yml",
        flag(
            "gamma",
            "environments:\n  staging: false\n  production:\n    percentage_of_time: 10\n    groups: [gitlab_team_members]\n",
        ),
    );

    let first = run(&registry, &["sync"]);
    assert_eq!(first.code, 0, "{first:?}");
    insta::assert_snapshot!(first.stdout, @r"
    staging: applied 2 changes
      + alpha: (absent) → true
      + gamma: (absent) → false
    production: applied 3 changes
      + alpha: (absent) → 25% of actors
      + beta: (absent) → 12.5% of actors, group:gitlab-org, group:gitlab-org/security, namespace:bob, project:gitlab-org/gitlab, project:gitlab-org/gitlab-foss, repository:gitlab-org/gitlab.wiki.git, runner:12270807, user:alice, user:bob
      + gamma: (absent) → 10% of time, group gitlab_team_members
    synced 2 environments: 5 changes applied
    ");
    assert_eq!(staging.flags(), flags(&[("alpha", "on"), ("gamma", "off")]));
    let beta = format!(
        "12.5% of actors, Ci::Runner:12270807, Group:9970, Group:9971, Namespaces::UserNamespace:102, Project:13083, Project:278964, Repository:{}.wiki.git, User:1, User:2",
        hashed(278964)
    );
    assert_eq!(
        production.flags(),
        flags(&[
            ("alpha", "25% of actors"),
            ("beta", beta.as_str()),
            ("gamma", "10% of time, group gitlab_team_members"),
        ])
    );
    assert_eq!(registry.audit("production").len(), 3);

    // A no-op sync with a warm cache reads one list per environment and nothing else.
    staging.take_requests();
    production.take_requests();
    let again = run(&registry, &["sync"]);
    assert!(
        again.stdout.contains("synced 2 environments: 0 changes applied"),
        "{again:?}"
    );
    assert_eq!(staging.take_requests(), ["GET /api/v4/features"]);
    assert_eq!(production.take_requests(), ["GET /api/v4/features"]);
    assert_eq!(run(&registry, &["status", "--exit-code"]).code, 0);

    // The site agrees: actors named by id or spelt in another case show as the file writes them,
    // and nothing is marked as differing.
    let site = run(&registry, &["site", "--out", "public"]);
    assert_eq!(site.code, 0, "{site:?}");
    let page = std::fs::read_to_string(registry.path().join("public/environments/production.html")).unwrap();
    assert!(page.contains("project:13083, project:gitlab-org&#x2f;gitlab"), "{page}");
    assert!(!page.contains("class=\"marker"), "{page}");
    assert_eq!(
        page.matches("<span class=\"muted\">in sync</span>").count(),
        page.matches("<tr>").count() - 1,
        "{page}"
    );
    let export: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(registry.path().join("public/flags.json")).unwrap()).unwrap();
    let beta = export["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|flag| flag["name"] == "beta")
        .unwrap();
    let shown = &beta["environments"]["production"];
    assert!(shown["synced"].is_object(), "{shown}");
    assert_eq!(shown["desired"], shown["synced"]);

    // Without the cache, the actors are looked up again and compare the same.
    std::fs::remove_dir_all(registry.path().join(".flagops/cache/gitlab")).unwrap();
    production.take_requests();
    let plan = run(&registry, &["plan", "--env", "production", "--exit-code"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    let requests = production.take_requests();
    assert_eq!(count(&requests, "GET /api/v4/features"), 1);
    assert!(requests.len() > 1, "{requests:?}");

    // A change made by hand is drift, and the sync puts the registry's state back.
    production.world().features.get_mut("alpha").unwrap().boolean = true;
    let status = run(&registry, &["status", "--env", "production"]);
    assert!(
        status
            .stdout
            .contains("drifted  alpha: true (the registry says 25% of actors"),
        "{status:?}"
    );
    let repair = run(&registry, &["sync", "--env", "production"]);
    assert!(repair.stdout.contains("~ alpha: true → 25% of actors"), "{repair:?}");
    assert_eq!(production.flags()["alpha"], "25% of actors");
    assert_token_not_written(&registry);
}

/// The state forms of the plan's transition table, as a flag file writes production's state
/// (`None`: absent), and as the fake then holds it.
fn forms() -> Vec<(Option<&'static str>, Option<&'static str>)> {
    vec![
        (None, None),
        (Some("true"), Some("on")),
        (Some("false"), Some("off")),
        (Some("{percentage_of_actors: 25}"), Some("25% of actors")),
        (Some("{percentage_of_actors: 50}"), Some("50% of actors")),
        (Some("{percentage_of_time: 10}"), Some("10% of time")),
        (Some("{actors: {project: [gitlab-org/gitlab]}}"), Some("Project:278964")),
        (
            Some("{actors: {project: [gitlab-org/gitlab, gitlab-org/gitlab-foss]}}"),
            Some("Project:13083, Project:278964"),
        ),
        (
            Some("{percentage_of_actors: 25, actors: {project: [gitlab-org/gitlab]}}"),
            Some("25% of actors, Project:278964"),
        ),
        (
            Some("{groups: [gitlab_team_members]}"),
            Some("group gitlab_team_members"),
        ),
        (
            Some("{percentage_of_actors: 12.5, actors: {user: [alice]}, groups: [gitlab_team_members]}"),
            Some("12.5% of actors, User:1, group gitlab_team_members"),
        ),
    ]
}

// Every transition between the state forms, each a flag of its own: the first sync sets the
// "from" state, the second the "to" state, and GitLab ends up holding exactly it. The absent
// form is written `production: absent`, which deletes; no entry would leave the flag alone.
#[test]
fn gitlab_transitions_reach_target() {
    let production = FakeGitlab::start();
    let registry = registry(&[("production", &production)], 10);
    let forms = forms();
    let write_all = |pick: fn(usize, usize) -> usize| {
        for from in 0..forms.len() {
            for to in 0..forms.len() {
                let name = format!("t_{from}_{to}");
                let state = forms[pick(from, to)].0.unwrap_or("absent");
                let extra = format!("environments:\n  production: {state}\n");
                registry.write(&format!("flags/wip/{name}.yml"), flag(&name, &extra));
            }
        }
    };
    let expected = |pick: fn(usize, usize) -> usize| -> BTreeMap<String, String> {
        let mut expected = BTreeMap::new();
        for from in 0..forms.len() {
            for to in 0..forms.len() {
                if let Some(state) = forms[pick(from, to)].1 {
                    expected.insert(format!("t_{from}_{to}"), state.to_string());
                }
            }
        }
        expected
    };
    write_all(|from, _| from);
    let first = run(&registry, &["sync"]);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(production.flags(), expected(|from, _| from));

    write_all(|_, to| to);
    let second = run(&registry, &["sync"]);
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(production.flags(), expected(|_, to| to));

    production.take_requests();
    let third = run(&registry, &["sync"]);
    assert!(third.stdout.contains("0 changes applied"), "{third:?}");
    assert_eq!(production.take_requests(), ["GET /api/v4/features"]);
}

// GitLab refusing a change (400) stops the environment there: the report shows GitLab's reason,
// what was applied and what was not, and GitLab holds exactly the applied changes. A rerun
// after the fix finishes the job.
#[test]
fn gitlab_refusal_is_reported_and_rerun_finishes() {
    let production = FakeGitlab::start();
    let registry = registry(&[("production", &production)], 10);
    for name in ["alpha", "epics", "gamma"] {
        registry.write(
            &format!("flags/wip/{name}.yml"),
            flag(name, "environments:\n  production: true\n"),
        );
    }
    let output = run(&registry, &["sync"]);
    assert_eq!(output.code, 2, "{output:?}");
    insta::assert_snapshot!(output.stdout, @r"
    production: FAILED after applying 1 of 3
      applied      + alpha: (absent) → true
      failed       + epics: (absent) → true
                   GitLab refused to enable `epics`: 400 Bad request - The 'epics' is a licensed feature name, and thus it cannot be used as a feature flag name. Use `rails console` to set this feature flag state.
      not applied  + gamma: (absent) → true
    sync failed: 1 change applied; rerun `flagops sync` once the cause is fixed to finish
    ");
    assert_eq!(production.flags(), flags(&[("alpha", "on")]));
    assert_eq!(count(&production.take_requests(), "POST /api/v4/features/epics"), 1);

    registry.remove("flags/wip/epics.yml");
    let rerun = run(&registry, &["sync"]);
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert!(
        rerun.stdout.contains("production: applied 1 change\n  + gamma"),
        "{rerun:?}"
    );
    assert_eq!(production.flags(), flags(&[("alpha", "on"), ("gamma", "on")]));
}

// An actor GitLab does not know fails the environment before any change, naming the flag, the
// environment and the actor; `plan` says the same.
#[test]
fn gitlab_unknown_actor_fails_before_any_change() {
    let production = FakeGitlab::start();
    let registry = registry(&[("production", &production)], 10);
    registry.write(
        "flags/wip/alpha.yml",
        flag("alpha", "environments:\n  production: true\n"),
    );
    registry.write(
        "flags/wip/beta.yml",
        flag(
            "beta",
            "environments:\n  production:\n    actors:\n      project: [gitlab-org/gitlab, gitlab-org/nope]\n      user: [mallory]\n",
        ),
    );
    let output = run(&registry, &["sync"]);
    assert_eq!(output.code, 2, "{output:?}");
    let url = production.url();
    assert!(
        output.stdout.contains(&format!(
            "production: FAILED before any change\n  environment `production` ({url}) has no such actor: `project:gitlab-org/nope` in flag `beta`, `user:mallory` in flag `beta`\n  help: name a project, group or namespace by its full path or id, a user by username or id"
        )),
        "{output:?}"
    );
    assert!(production.flags().is_empty());
    assert!(
        !production
            .take_requests()
            .iter()
            .any(|request| request.starts_with("POST")),
    );
    let plan = run(&registry, &["plan"]);
    assert_eq!(plan.code, 2);
    assert!(
        plan.stderr.contains("has no such actor: `project:gitlab-org/nope`"),
        "{plan:?}"
    );
}

// A timeout, 500s, a 429 with Retry-After and a connection that breaks mid-answer are retried;
// the server's Retry-After is honoured (as the announced wait shows), and the sync completes.
#[test]
fn gitlab_faults_are_retried() {
    let production = FakeGitlab::start();
    let registry = registry(&[("production", &production)], 1);
    for name in ["a", "b", "c"] {
        registry.write(
            &format!("flags/wip/{name}.yml"),
            flag(name, "environments:\n  production:\n    percentage_of_actors: 30\n"),
        );
    }
    production.fail_next("GET /api/v4/features", Fault::Status(500, None));
    production.fail_next("GET /api/v4/features", Fault::Status(502, None));
    production.fail_next("POST /api/v4/features/a", Fault::Delay(Duration::from_millis(2500)));
    production.fail_next("POST /api/v4/features/a", Fault::Status(429, Some(2)));
    production.fail_next("POST /api/v4/features/b", Fault::Broken);
    let output = run(&registry, &["sync"]);
    assert_eq!(output.code, 0, "{output:?}");
    // The wait each retry announces is the one it sleeps: the 429's `Retry-After: 2` shows as
    // 2.0 s, longer than the backoff's own first delay, so the server's wait was honoured.
    for expected in [
        "retrying reading `production` in",
        "could not list the flags (`GET /api/v4/features`): GitLab answered 500 Internal Server Error",
        "no answer in time",
        "retrying `a` in 2.0 s: could not set `a` to 30% of actors: GitLab answered 429 Too Many Requests",
        "the connection broke",
    ] {
        assert!(output.stderr.contains(expected), "missing {expected:?}: {output:?}");
    }
    assert_eq!(
        production.flags(),
        flags(&[("a", "30% of actors"), ("b", "30% of actors"), ("c", "30% of actors")])
    );
    let requests = production.take_requests();
    assert_eq!(count(&requests, "GET /api/v4/features"), 3);
    assert_eq!(count(&requests, "POST /api/v4/features/a"), 3);
    assert_eq!(count(&requests, "POST /api/v4/features/b"), 2);
}

// A connection that keeps breaking mid-sync exhausts the retries: the change stops the
// environment, and a rerun converges, applying only what GitLab does not hold yet.
#[test]
fn gitlab_dropped_connections_then_rerun_converges() {
    let production = FakeGitlab::start();
    let registry = registry(&[("production", &production)], 10);
    for (name, state) in [("a", "true"), ("b", "{percentage_of_actors: 40}"), ("c", "false")] {
        registry.write(
            &format!("flags/wip/{name}.yml"),
            flag(name, &format!("environments:\n  production: {state}\n")),
        );
    }
    let workspace = flagops::load::Workspace::at(&registry.path().join("flagops.yml")).unwrap();
    let model = flagops::load::load(&workspace, &Default::default())
        .unwrap()
        .registry
        .unwrap();
    let mut backend = GitlabBackend::open(Settings {
        environment: "production",
        url: production.url(),
        token: Token::new(TOKEN.to_string()),
        token_env: TOKEN_ENV,
        timeout: Duration::from_secs(10),
        actor_kinds: &model.config.actor_kinds,
        cache_path: registry.path().join(".flagops/cache/gitlab/production.json"),
        state_dir: registry.path().join(".flagops/state"),
        writable: true,
    });
    assert!(!format!("{backend:?}").contains(TOKEN));
    let retry = RetryPolicy {
        retries: 3,
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };
    for _ in 0..4 {
        production.fail_next("POST /api/v4/features/b", Fault::Broken);
    }
    let at = jiff::Timestamp::now();
    let reading = read_environment(
        &mut backend,
        &model,
        "production",
        flagops::steps::Moment::at(at),
        &retry,
    )
    .unwrap();
    let plan = diff_environment(&model, "production", &reading.desired, &reading.snapshot.flags, false);
    let context = ApplyContext {
        environment: "production".into(),
        by: "tester".into(),
        commit: None,
        at: at.to_string(),
        reason: None,
        step: None,
    };
    let report = apply_plan(&mut backend, &plan, &context, &[], &retry);
    let names = |changes: &[flagops::plan::Change]| changes.iter().map(|c| c.flag.clone()).collect::<Vec<_>>();
    assert_eq!(names(&report.applied), ["a"]);
    let (failed, error) = report.failed.unwrap();
    assert_eq!(failed.flag, "b");
    assert!(error.contains("the connection broke"), "{error}");
    assert!(!error.contains(TOKEN));
    assert_eq!(names(&report.not_applied), ["c"]);
    assert_eq!(count(&production.take_requests(), "POST /api/v4/features/b"), 4);
    drop(backend);

    // GitLab applied `b` before each answer broke off, so the rerun has only `c` left.
    let rerun = run(&registry, &["sync"]);
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert!(
        rerun
            .stdout
            .contains("production: applied 1 change\n  + c: (absent) → false"),
        "{rerun:?}"
    );
    assert_eq!(
        production.flags(),
        flags(&[("a", "on"), ("b", "40% of actors"), ("c", "off")])
    );
}

// Gates set by hand that the registry cannot express: an opt-out is removed like any other
// drift; an actor GitLab no longer has, or of a class no actor kind names, is shown and
// refused with a way out.
#[test]
fn gitlab_gates_set_by_hand_are_drift() {
    let production = FakeGitlab::start();
    let registry = registry(&[("production", &production)], 10);
    registry.write(
        "flags/wip/alpha.yml",
        flag("alpha", "environments:\n  production:\n    percentage_of_actors: 50\n"),
    );
    registry.write(
        "flags/wip/beta.yml",
        flag("beta", "environments:\n  production:\n    percentage_of_actors: 10\n"),
    );
    // Synced once, so that what is set by hand next is drift, not state before any sync.
    assert_eq!(run(&registry, &["sync"]).code, 0);
    {
        let mut world = production.world();
        let alpha = world.features.entry("alpha".into()).or_default();
        alpha.percentage_of_actors = 50.0;
        alpha.actors.insert("Project:278964:opt_out".into());
        let beta = world.features.entry("beta".into()).or_default();
        beta.percentage_of_actors = 10.0;
        beta.actors.insert("Project:999999".into());
        beta.actors.insert("Organizations::Organization:1".into());
    }
    let plan = run(&registry, &["plan"]);
    insta::assert_snapshot!(plan.stdout, @r"
    production: 2 changes
      ~ alpha: 50% of actors, project:gitlab-org/gitlab:opt_out → 50% of actors
      ~ beta: 10% of actors, flipper:Organizations::Organization:1, project:999999 → 10% of actors
    2 changes in 1 of 1 environment
    ");
    let sync = run(&registry, &["sync"]);
    assert_eq!(sync.code, 2, "{sync:?}");
    assert!(
        sync.stdout.contains("cannot disable `beta` for `flipper:Organizations::Organization:1`: the Features API cannot name `flipper:Organizations::Organization:1`: no actor kind in flagops.yml has `flipper_type: Organizations::Organization`"),
        "{sync:?}"
    );
    assert!(
        sync.stdout
            .contains("help: set the flag to `true` or `false` once, which clears every gate"),
        "{sync:?}"
    );
    assert_eq!(production.flags()["alpha"], "50% of actors");

    // Following the help: `false` clears every gate, and then the wanted state applies.
    registry.write(
        "flags/wip/beta.yml",
        flag("beta", "environments:\n  production: false\n"),
    );
    assert_eq!(run(&registry, &["sync"]).code, 0);
    registry.write(
        "flags/wip/beta.yml",
        flag("beta", "environments:\n  production:\n    percentage_of_actors: 10\n"),
    );
    assert_eq!(run(&registry, &["sync"]).code, 0);
    assert_eq!(production.flags()["beta"], "10% of actors");
}

// A refused, missing or non-admin token fails the environment with the variable's name, never
// its value.
#[test]
fn gitlab_token_is_never_shown() {
    let production = FakeGitlab::start();
    let registry = registry(&[("production", &production)], 10);
    registry.write(
        "flags/wip/alpha.yml",
        flag("alpha", "environments:\n  production: true\n"),
    );

    let wrong = run_with_token(&registry, &["sync"], "glpat-WRONG-5b1f0c77e2d94a38");
    assert_eq!(wrong.code, 2, "{wrong:?}");
    assert!(
        wrong.stdout.contains(
            "GitLab refused the token in `FLAGOPS_TEST_GITLAB_TOKEN` (401 Unauthorized)\n  help: set `FLAGOPS_TEST_GITLAB_TOKEN` to an administrator's access token with the `api` scope"
        ),
        "{wrong:?}"
    );
    let status = run_with_token(&registry, &["status"], "glpat-WRONG-5b1f0c77e2d94a38");
    assert_eq!(status.code, 2, "{status:?}");

    let non_admin = run_with_token(&registry, &["sync"], NON_ADMIN_TOKEN);
    assert_eq!(non_admin.code, 2);
    assert!(
        non_admin
            .stdout
            .contains("(403 Forbidden): the Features API is for administrators only"),
        "{non_admin:?}"
    );

    let missing = registry.run(&["sync"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stdout.contains(
            "environment `production` reads its GitLab token from `FLAGOPS_TEST_GITLAB_TOKEN`, which is not set"
        ),
        "{missing:?}"
    );
    assert!(production.flags().is_empty());

    let synced = run(&registry, &["sync"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    assert_token_not_written(&registry);
}

// The fake itself follows GitLab's documented rules, so the tests above prove something.
#[test]
fn fake_gitlab_follows_gitlab_rules() {
    let fake = FakeGitlab::start();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let url = |path: &str| format!("{}/api/v4{path}", fake.url());
    let post = |name: &str, form: &[(&str, &str)]| {
        let mut response = agent
            .post(url(&format!("/features/{name}")))
            .header("PRIVATE-TOKEN", TOKEN)
            .send_form(form.iter().copied())
            .unwrap();
        (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap(),
        )
    };
    let get = |path: &str, token: Option<&str>| {
        let mut request = agent.get(url(path));
        if let Some(token) = token {
            request = request.header("PRIVATE-TOKEN", token);
        }
        let mut response = request.call().unwrap();
        (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap(),
        )
    };
    assert_eq!(get("/features", None).0, 401);
    assert_eq!(get("/features", Some("glpat-wrong")).0, 401);
    assert_eq!(get("/features", Some(NON_ADMIN_TOKEN)).0, 403);

    assert_eq!(post("f", &[("value", "true")]).0, 201);
    let (status, body) = post("f", &[("value", "25"), ("key", "percentage_of_actors")]);
    assert_eq!(status, 400);
    assert!(
        body.contains("Cannot enable percentage of actors for a fully-enabled flag"),
        "{body}"
    );
    let (status, body) = post(
        "f",
        &[
            ("value", "25"),
            ("key", "percentage_of_actors"),
            ("project", "gitlab-org/gitlab"),
        ],
    );
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"error":"key, project are mutually exclusive"}"#)
    );
    let (status, body) = post("f", &[("value", "true"), ("project", "nope/nope")]);
    assert_eq!(status, 400);
    assert!(body.contains("nope/nope is not found!"), "{body}");

    assert_eq!(post("f", &[("value", "false")]).0, 201);
    assert_eq!(post("f", &[("value", "12.5"), ("key", "percentage_of_actors")]).0, 201);
    assert_eq!(post("f", &[("value", "true"), ("user", "alice")]).0, 201);
    assert_eq!(
        post("f", &[("value", "opt_out"), ("project", "gitlab-org/gitlab")]).0,
        201
    );
    let (status, body) = post("f", &[("value", "true"), ("project", "gitlab-org/gitlab")]);
    assert_eq!(status, 400);
    assert!(body.contains("Opt-out exists for Project:278964"), "{body}");
    let (_, listed) = get("/features", Some(TOKEN));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(
        listed,
        serde_json::json!([{
            "name": "f",
            "state": "conditional",
            "gates": [
                {"key": "boolean", "value": false},
                {"key": "percentage_of_actors", "value": 12.5},
                {"key": "actors", "value": ["Project:278964:opt_out", "User:1"]}
            ],
            "definition": null
        }])
    );
    // `value=0` is `false` whatever the key: it clears every gate.
    assert_eq!(post("f", &[("value", "0"), ("key", "percentage_of_actors")]).0, 201);
    assert_eq!(fake.flags(), flags(&[("f", "off")]));
    for _ in 0..2 {
        let response = agent
            .delete(url("/features/f"))
            .header("PRIVATE-TOKEN", TOKEN)
            .call()
            .unwrap();
        assert_eq!(response.status().as_u16(), 204);
    }
    assert!(fake.flags().is_empty());
}

// A live GitLab taken over: its first sync changes none of the flags it holds without
// `--take-over`, says which and why, and with it applies the registry and records that it did.
#[test]
fn gitlab_first_sync_over_live_flags_needs_take_over() {
    let production = FakeGitlab::start();
    let registry = registry(&[("production", &production)], 10);
    registry.write(
        "flags/wip/alpha.yml",
        flag("alpha", "environments:\n  production:\n    percentage_of_actors: 25\n"),
    );
    registry.write(
        "flags/wip/beta.yml",
        flag("beta", "environments:\n  production: true\n"),
    );
    registry.write(
        "flags/wip/gamma.yml",
        flag("gamma", "environments:\n  production: absent\n"),
    );
    registry.write("flags/wip/kept.yml", flag("kept", ""));
    registry.write(
        "flags/wip/fresh.yml",
        flag("fresh", "environments:\n  production: true\n"),
    );
    {
        let mut world = production.world();
        world.features.entry("alpha".into()).or_default().boolean = true;
        world.features.entry("beta".into()).or_default().boolean = true;
        world.features.entry("gamma".into()).or_default().percentage_of_actors = 10.0;
        world
            .features
            .entry("kept".into())
            .or_default()
            .groups
            .insert("gitlab_team_members".into());
        world.features.entry("unknown".into()).or_default().boolean = true;
    }
    let before = production.flags();
    production.take_requests();

    let sync = run(&registry, &["sync"]);
    assert_eq!(sync.code, 1, "{sync:?}");
    insta::assert_snapshot!(sync.stdout, @r"
    production: REFUSED, nothing applied
      not applied  ~ alpha: true → 25% of actors
      not applied  - gamma: 10% of actors → (absent)
      not applied  + fresh: (absent) → true
      `production` has no sync record, so flagops did not write what it holds, and this first sync would change or delete 2 of the flags it holds: `alpha`, `gamma`
      help: check them with `flagops plan --env production`; `flagops import gitlab --state production` writes the live state into the flag files, `production: absent` or no entry decides what is deleted, and `flagops sync --take-over` applies the registry over the rest
      ! unknown: not in the registry, kept (`--prune` deletes it)
      ! kept: kept: no entry for production in its file (`production: absent` deletes it)
    sync refused in 1 environment: 0 changes applied; rerun `flagops sync --take-over` once the registry says what each should hold
    ");
    assert_eq!(production.flags(), before);
    assert!(
        production
            .take_requests()
            .iter()
            .all(|request| request.starts_with("GET ")),
        "only reads before the refusal"
    );
    assert!(!registry.path().join(".flagops/state/production.sync.json").exists());

    let taken = run(&registry, &["sync", "--take-over"]);
    assert_eq!(taken.code, 0, "{taken:?}");
    let after = production.flags();
    assert_eq!(after["alpha"], "25% of actors");
    assert_eq!(after["beta"], before["beta"]);
    assert_eq!(after["fresh"], "on");
    assert_eq!(after.get("gamma"), None);
    assert_eq!(after["kept"], before["kept"]);
    assert_eq!(after["unknown"], before["unknown"]);
    let record: serde_json::Value =
        serde_json::from_str(&registry.read(".flagops/state/production.sync.json")).unwrap();
    assert_eq!(record["take_over"], serde_json::json!(true));
}

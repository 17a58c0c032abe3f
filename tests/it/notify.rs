//! Notifications (`notifications` in flagops.yml) against the fake GitLab, which also serves
//! Grafana's annotations and webhooks: what each receiver gets, failures (5xx, timeouts, 401)
//! that never fail the sync and stay pending, `notify --retry` sending each pending message
//! once, a sync killed between applying a change and notifying it, and secrets that never show.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use serde_json::Value;

use crate::fake_gitlab::{FakeGitlab, Fault, TOKEN};
use crate::gitlab::TOKEN_ENV;
use crate::harness::{Output, Registry, flag};

const HOOK_SECRET: &str = "whsec-FLAGOPS-TEST-5c1f0e9a";
const SLACK_SECRET_PATH: &str = "/hooks/slack/T0FLAGOPS/B0TEST/SLACKSECRET7f3a";

/// A registry whose one environment, production, is the fake GitLab, with every kind of
/// notifier pointed at it, and flag `alpha` (rollout issue `group/app#7`) set to 25% there.
fn registry(fake: &FakeGitlab, timeout: u64) -> Registry {
    let registry = crate::gitlab::registry(&[("production", fake)], 30);
    let url = fake.url();
    let mut config = registry.read("flagops.yml");
    config.push_str(&format!(
        "\nnotifications:\n\
         \x20 rollout-issue: {{ kind: gitlab-note, url: \"{url}\", token_env: {TOKEN_ENV} }}\n\
         \x20 log: {{ kind: gitlab-issue, url: \"{url}\", project: ops/feature-flag-log, token_env: {TOKEN_ENV}, labels: [change] }}\n\
         \x20 grafana: {{ kind: grafana, url: \"{url}\", token_env: {TOKEN_ENV} }}\n\
         \x20 chat: {{ kind: slack, url_env: FLAGOPS_TEST_SLACK_URL, environments: [production] }}\n\
         \x20 hook: {{ kind: webhook, url: \"{url}/hooks/json\", secret_env: FLAGOPS_TEST_HOOK_SECRET, timeout_seconds: {timeout} }}\n"
    ));
    registry.write("flagops.yml", config);
    registry.write(
        "flags/wip/alpha.yml",
        flag(
            "alpha",
            &format!("rollout_issue_url: {url}/group/app/-/issues/7\nenvironments:\n  production:\n    percentage_of_actors: 25\n"),
        ),
    );
    registry
}

/// The variables that hold every secret.
fn secrets(fake: &FakeGitlab) -> Vec<(&'static str, String)> {
    vec![
        (TOKEN_ENV, TOKEN.to_string()),
        ("FLAGOPS_TEST_SLACK_URL", format!("{}{SLACK_SECRET_PATH}", fake.url())),
        ("FLAGOPS_TEST_HOOK_SECRET", HOOK_SECRET.to_string()),
        ("NO_PROXY", "127.0.0.1".to_string()),
    ]
}

/// Runs flagops with every secret set, checking that none is printed.
fn run(registry: &Registry, fake: &FakeGitlab, args: &[&str]) -> Output {
    let variables = secrets(fake);
    let pairs: Vec<(&str, &str)> = variables.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let output = registry.run_with_env(args, &pairs);
    assert_no_secret(&format!("{}{}", output.stdout, output.stderr), "the output");
    output
}

fn assert_no_secret(text: &str, place: &str) {
    for secret in [TOKEN, HOOK_SECRET, "SLACKSECRET7f3a"] {
        assert!(!text.contains(secret), "{place} holds a secret: {text}");
    }
}

/// Checks every file of the registry (state, outbox, site) for secrets.
fn assert_no_secret_written(registry: &Registry) {
    for entry in walkdir::WalkDir::new(registry.path()) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() && !entry.path().ends_with("flagops.yml") {
            let text = String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()).into_owned();
            assert_no_secret(&text, &entry.path().display().to_string());
        }
    }
}

/// What the receivers got: notes on `group/app#7`, log issues, annotations, Slack texts and
/// webhook payloads.
struct Received {
    notes: Vec<String>,
    log_issues: Vec<(String, bool, Vec<String>)>,
    log_descriptions: Vec<String>,
    annotations: Vec<Value>,
    slack: Vec<String>,
    hooks: Vec<Value>,
}

fn received(fake: &FakeGitlab) -> Received {
    let world = fake.world();
    let notes = world
        .issues
        .iter()
        .filter(|issue| issue.project == "group/app" && issue.iid == 7)
        .flat_map(|issue| issue.notes.clone())
        .collect();
    let log_issues = world
        .issues
        .iter()
        .filter(|issue| issue.project == "ops/feature-flag-log")
        .map(|issue| (issue.title.clone(), issue.closed, issue.labels.clone()))
        .collect();
    let log_descriptions = world
        .issues
        .iter()
        .filter(|issue| issue.project == "ops/feature-flag-log")
        .map(|issue| issue.description.clone())
        .collect();
    let slack = world
        .hooks
        .iter()
        .filter(|hook| hook.path == SLACK_SECRET_PATH)
        .map(|hook| {
            serde_json::from_str::<Value>(&hook.body).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let hooks = world
        .hooks
        .iter()
        .filter(|hook| hook.path == "/hooks/json")
        .map(|hook| {
            // Every payload is signed with the secret, and carries its id as the delivery header.
            let mut mac = hmac::Hmac::<sha2_hmac::Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
            mac.update(hook.body.as_bytes());
            let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hook.headers["x-flagops-signature"], format!("sha256={expected}"));
            let payload: Value = serde_json::from_str(&hook.body).unwrap();
            assert_eq!(hook.headers["x-flagops-delivery"], payload["id"].as_str().unwrap());
            payload
        })
        .collect();
    Received {
        notes,
        log_issues,
        log_descriptions,
        annotations: world.annotations.clone(),
        slack,
        hooks,
    }
}

/// The distinct webhook payloads, by id.
fn distinct(payloads: &[Value]) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    payloads
        .iter()
        .filter(|payload| seen.insert(payload["id"].as_str().unwrap().to_string()))
        .cloned()
        .collect()
}

/// Checks that every receiver got exactly the notifications of one applied change of `alpha`
/// and the sync's summary.
fn assert_received_once(fake: &FakeGitlab) {
    let got = received(fake);
    assert_eq!(got.notes.len(), 1, "{:?}", got.notes);
    assert!(
        got.notes[0].starts_with("Feature flag alpha has been set to 25% of actors on production"),
        "{}",
        got.notes[0]
    );
    assert_eq!(
        got.log_issues,
        [(
            "Feature flag alpha has been set to 25% of actors on production".to_string(),
            true,
            vec!["change".to_string()]
        )]
    );
    let description = &got.log_descriptions[0];
    assert!(
        description.contains("- Old state: (absent)\n- New state: 25% of actors\n- Changed by: ")
            && description.contains("/group/app/-/issues/7"),
        "{description}"
    );
    assert_eq!(got.annotations.len(), 1, "{:?}", got.annotations);
    assert_eq!(
        got.annotations[0]["tags"],
        serde_json::json!(["production", "feature-flag", "alpha"])
    );
    assert_eq!(got.slack.len(), 2, "{:?}", got.slack);
    let mut slack = got.slack.clone();
    slack.sort_by_key(|text| text.starts_with("flagops synced"));
    assert!(slack[0].starts_with("Feature flag alpha has been set"), "{slack:?}");
    assert!(
        slack[1].starts_with("flagops synced production: 1 change applied")
            && slack[1].contains("alpha: (absent) → 25% of actors"),
        "{slack:?}"
    );
    let mut hooks = distinct(&got.hooks);
    assert_eq!(hooks.len(), 2, "{:?}", got.hooks);
    // A summary may arrive before a change whose delivery failed at first.
    hooks.sort_by_key(|payload| payload["event"] != "change");
    assert_eq!(hooks[0]["event"], "change");
    assert_eq!(hooks[0]["flag"], "alpha");
    assert_eq!(hooks[0]["old"], "(absent)");
    assert_eq!(hooks[0]["new"], "25% of actors");
    assert_eq!(hooks[0]["environment"], "production");
    assert_eq!(hooks[1]["event"], "summary");
}

// A sync notifies each receiver once of each applied change, and the chat and webhook of its
// summary; a second sync, with nothing to do, sends nothing; no secret shows anywhere.
#[test]
fn notify_sends_each_change_and_summary_once() {
    let fake = FakeGitlab::start();
    let registry = registry(&fake, 30);
    let output = run(&registry, &fake, &["sync"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        output.stdout.contains("  notified     7 notifications sent\n"),
        "{output:?}"
    );
    assert_received_once(&fake);
    let again = run(&registry, &fake, &["sync"]);
    assert_eq!(again.code, 0, "{again:?}");
    let retry = run(&registry, &fake, &["notify", "--retry"]);
    assert_eq!(retry.code, 0, "{retry:?}");
    assert_eq!(retry.stdout, "production:\n  notified     0 notifications sent\n");
    assert_received_once(&fake);
    let site = run(&registry, &fake, &["site", "--out", "public"]);
    assert_eq!(site.code, 0, "{site:?}");
    assert_no_secret_written(&registry);
}

// Receivers that fail (500s, a timeout, a refused token) neither fail nor undo the sync: the
// failures are reported and kept, and `notify --retry` sends each pending message once.
#[test]
fn notify_failures_never_fail_the_sync_and_retry_sends_once() {
    let fake = FakeGitlab::start();
    let registry = registry(&fake, 1);
    for _ in 0..3 {
        fake.fail_next("POST /api/annotations", Fault::Status(503, None));
        fake.fail_next("POST /hooks/json", Fault::Hang(Duration::from_secs(3)));
    }
    fake.fail_next(
        "POST /api/v4/projects/group%2Fapp/issues/7/notes",
        Fault::Status(401, None),
    );
    let output = run(&registry, &fake, &["sync", "--format", "json"]);
    assert_eq!(output.code, 0, "{output:?}");
    let reports: Value = serde_json::from_str(&output.stdout).unwrap();
    let production = &reports[0];
    assert_eq!(production["applied"].as_array().unwrap().len(), 1, "{output:?}");
    assert!(production.get("failed").is_none(), "{output:?}");
    let pending: Vec<(String, String)> = production["notifications"]["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["notifier"].as_str().unwrap().to_string(),
                p["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let notifiers: Vec<&str> = pending.iter().map(|(notifier, _)| notifier.as_str()).collect();
    assert_eq!(notifiers, ["grafana", "hook", "rollout-issue"], "{pending:?}");
    assert!(pending[0].1.contains("503"), "{pending:?}");
    assert!(pending[1].1.contains("no answer in time"), "{pending:?}");
    assert!(
        pending[2].1.contains(&format!("refused the token in `{TOKEN_ENV}`")),
        "{pending:?}"
    );
    assert_eq!(production["notifications"]["sent"], 4, "{output:?}");
    // The change stands.
    assert_eq!(fake.flags()["alpha"], "25% of actors");
    assert_eq!(run(&registry, &fake, &["status", "--exit-code"]).code, 0);
    let retry = run(&registry, &fake, &["notify", "--retry"]);
    assert_eq!(retry.code, 0, "{retry:?}");
    assert_eq!(retry.stdout, "production:\n  notified     3 notifications sent\n");
    assert_received_once(&fake);
    let again = run(&registry, &fake, &["notify", "--retry"]);
    assert_eq!(again.stdout, "production:\n  notified     0 notifications sent\n");
    assert_received_once(&fake);
    assert_no_secret_written(&registry);
}

/// A registry like `registry`'s with two notifiers only: the rollout issue's note, named to come
/// before the log issue, and the log issue.
fn note_and_log_registry(fake: &FakeGitlab) -> Registry {
    let registry = crate::gitlab::registry(&[("production", fake)], 30);
    let url = fake.url();
    let mut config = registry.read("flagops.yml");
    config.push_str(&format!(
        "\nnotifications:\n\
         \x20 announce: {{ kind: gitlab-note, url: \"{url}\", token_env: {TOKEN_ENV} }}\n\
         \x20 log: {{ kind: gitlab-issue, url: \"{url}\", project: ops/feature-flag-log, token_env: {TOKEN_ENV} }}\n"
    ));
    registry.write("flagops.yml", config);
    registry
}

/// `alpha`, with rollout issue `group/app#7`, at `percent` in production.
fn alpha_at(registry: &Registry, fake: &FakeGitlab, percent: u32) {
    registry.write(
        "flags/wip/alpha.yml",
        flag(
            "alpha",
            &format!(
                "rollout_issue_url: {}/group/app/-/issues/7\nenvironments:\n  production:\n    percentage_of_actors: {percent}\n",
                fake.url()
            ),
        ),
    );
}

// The note on the rollout issue links the log issue opened for the same change: the log issue is
// opened first, whatever the notifiers are named, and its address is kept in the outbox, so a
// note that `notify --retry` sends later links it too.
#[test]
fn notify_note_links_the_log_issue_of_the_same_change() {
    let fake = FakeGitlab::start();
    let registry = note_and_log_registry(&fake);
    alpha_at(&registry, &fake, 25);
    let notes = "POST /api/v4/projects/group%2Fapp/issues/7/notes";
    let issues = "POST /api/v4/projects/ops%2Ffeature-flag-log/issues";
    let log_issue = |iid: u32| {
        format!(
            "- Feature flag state change log issue: {}/ops/feature-flag-log/-/issues/{iid}",
            fake.url()
        )
    };

    let output = run(&registry, &fake, &["sync"]);
    assert_eq!(output.code, 0, "{output:?}");
    let got = received(&fake);
    assert_eq!(got.log_issues.len(), 1);
    assert_eq!(got.notes.len(), 1, "{:?}", got.notes);
    assert!(got.notes[0].ends_with(&log_issue(1)), "{}", got.notes[0]);
    let requests = fake.world().requests.clone();
    let opened = requests.iter().position(|request| request == issues);
    let noted = requests.iter().position(|request| request == notes);
    assert!(opened.is_some() && opened < noted, "{requests:?}");

    // The note fails this time: `notify --retry` sends it later, with the log issue's address.
    alpha_at(&registry, &fake, 50);
    fake.fail_next(notes, Fault::Status(401, None));
    let output = run(&registry, &fake, &["sync"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(received(&fake).notes.len(), 1);
    let outbox = registry.read(".flagops/state/production.outbox.jsonl");
    assert!(
        outbox.contains(&format!("\"url\":\"{}/ops/feature-flag-log/-/issues/2\"", fake.url())),
        "{outbox}"
    );
    let retry = run(&registry, &fake, &["notify", "--retry"]);
    assert_eq!(
        retry.stdout, "production:\n  notified     1 notification sent\n",
        "{retry:?}"
    );
    let got = received(&fake);
    assert_eq!(got.log_issues.len(), 2);
    assert_eq!(got.notes.len(), 2, "{:?}", got.notes);
    assert!(
        got.notes[1].starts_with("Feature flag alpha has been set to 50% of actors on production")
            && got.notes[1].ends_with(&log_issue(2)),
        "{}",
        got.notes[1]
    );
    assert_no_secret_written(&registry);
}

/// A registry whose production is the fake GitLab, with only the webhook notifier, and `count`
/// flags at `percent` there.
fn webhook_registry(fake: &FakeGitlab, count: usize) -> Registry {
    let registry = crate::gitlab::registry(&[("production", fake)], 30);
    let mut config = registry.read("flagops.yml");
    config.push_str(&format!(
        "\nnotifications:\n\
         \x20 hook: {{ kind: webhook, url: \"{}/hooks/json\", secret_env: FLAGOPS_TEST_HOOK_SECRET, timeout_seconds: 1 }}\n",
        fake.url()
    ));
    registry.write("flagops.yml", config);
    set_flags(&registry, count, 25);
    registry
}

/// Flags `f0` to `f<count - 1>` at `percent` in production.
fn set_flags(registry: &Registry, count: usize, percent: u32) {
    for number in 0..count {
        registry.write(
            &format!("flags/wip/f{number}.yml"),
            flag(
                &format!("f{number}"),
                &format!("environments:\n  production:\n    percentage_of_actors: {percent}\n"),
            ),
        );
    }
}

/// The outbox's lines.
fn outbox_lines(registry: &Registry) -> usize {
    registry.read(".flagops/state/production.outbox.jsonl").lines().count()
}

// Over many syncs the outbox stays bounded: once it holds more than `COMPACT_AFTER` delivered
// notifications they are dropped, while a notification still pending across a compaction is
// kept and sent once; every change is announced exactly once.
#[test]
fn notify_outbox_stays_bounded_over_many_syncs() {
    let fake = FakeGitlab::start();
    let registry = webhook_registry(&fake, 10);
    let limit = flagops::notify::outbox::COMPACT_AFTER;
    let syncs = 25;
    let mut longest = 0;
    let mut compacted = false;
    for sync in 0..syncs {
        set_flags(&registry, 10, if sync % 2 == 0 { 25 } else { 50 });
        if sync == 8 {
            // The webhook fails through the retries: the change stays pending until the next sync.
            for _ in 0..3 {
                fake.fail_next("POST /hooks/json", Fault::Status(503, None));
            }
        }
        let before = std::fs::read_to_string(registry.path().join(".flagops/state/production.outbox.jsonl"))
            .map_or(0, |text| text.lines().count());
        let output = run(&registry, &fake, &["sync"]);
        assert_eq!(output.code, 0, "{output:?}");
        let lines = outbox_lines(&registry);
        compacted |= lines < before;
        longest = longest.max(lines);
    }
    assert!(compacted, "the outbox was never compacted");
    // A change's notification takes 3 lines (prepared, applied, sent), a summary's 2, a failed
    // delivery one more: after each sync at most `limit` finished ones stay, and a run's 11
    // (10 changes and a summary) besides. Without compaction it would be 25 runs' worth.
    assert!(longest <= 3 * (limit + 11), "{longest} lines");
    assert!(
        outbox_lines(&registry) < syncs * 11 * 3 / 2,
        "{} lines",
        outbox_lines(&registry)
    );
    let hooks = received(&fake).hooks;
    let ids: BTreeSet<&str> = hooks.iter().map(|hook| hook["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), syncs * 11, "every change and summary once");
    assert_eq!(hooks.len(), ids.len(), "nothing sent twice");
    let retry = run(&registry, &fake, &["notify", "--retry"]);
    assert_eq!(
        retry.stdout, "production:\n  notified     0 notifications sent\n",
        "{retry:?}"
    );
}

// A compaction killed before its rename leaves its temporary file beside the outbox: the next
// delivery removes it, and the outbox it left loses nothing, sending what is pending once.
#[test]
fn notify_outbox_survives_an_interrupted_compaction() {
    let fake = FakeGitlab::start();
    let registry = webhook_registry(&fake, 2);
    for _ in 0..3 {
        fake.fail_next("POST /hooks/json", Fault::Status(503, None));
    }
    let output = run(&registry, &fake, &["sync"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(received(&fake).hooks.len(), 2, "one of three sent");
    let outbox = registry.read(".flagops/state/production.outbox.jsonl");
    // What a compaction killed while writing leaves: part of a rewrite, under its temporary name.
    let leftover = ".flagops/state/.production.outbox.jsonl.flagops-Xy12Zq.tmp";
    registry.write(leftover, &outbox[..outbox.len() / 2]);
    let retry = run(&registry, &fake, &["notify", "--retry"]);
    assert_eq!(
        retry.stdout, "production:\n  notified     1 notification sent\n",
        "{retry:?}"
    );
    assert!(!registry.path().join(leftover).exists(), "the leftover is removed");
    let hooks = received(&fake).hooks;
    let ids: BTreeSet<&str> = hooks.iter().map(|hook| hook["id"].as_str().unwrap()).collect();
    assert_eq!((ids.len(), hooks.len()), (3, 3), "{hooks:?}");
    let again = run(&registry, &fake, &["notify", "--retry"]);
    assert_eq!(
        again.stdout, "production:\n  notified     0 notifications sent\n",
        "{again:?}"
    );
}

// A failure that remains after the retries is reported in the sync's human output, and a
// missing secret names its variable; `notify --retry` exits 2 while something is pending.
#[test]
fn notify_reports_what_is_pending() {
    let fake = FakeGitlab::start();
    let registry = registry(&fake, 30);
    let variables: Vec<(&str, &str)> = vec![(TOKEN_ENV, TOKEN), ("NO_PROXY", "127.0.0.1")];
    let output = registry.run_with_env(&["sync"], &variables);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(
        output.stdout.contains(
            "  ! 4 notifications pending, kept for `flagops notify --retry`:\n    chat about `alpha`:\n      the environment variable `FLAGOPS_TEST_SLACK_URL` is not set\n"
        ),
        "{output:?}"
    );
    let retry = registry.run_with_env(&["notify", "--retry"], &variables);
    assert_eq!(retry.code, 2, "{retry:?}");
    let retry = run(&registry, &fake, &["notify", "--retry"]);
    assert_eq!(retry.code, 0, "{retry:?}");
    assert_received_once(&fake);
}

// A sync killed while it notifies, after applying its change, loses nothing: `notify --retry`
// sends every notification once.
#[test]
fn notify_after_a_sync_killed_while_notifying() {
    let fake = FakeGitlab::start();
    let registry = registry(&fake, 30);
    // The first receiver hangs until the sync is killed.
    fake.fail_next(
        "POST /api/v4/projects/ops%2Ffeature-flag-log/issues",
        Fault::Hang(Duration::from_secs(5)),
    );
    let child = spawn_sync(&registry, &fake);
    kill_when(child, || {
        fake.world()
            .requests
            .iter()
            .any(|r| r.ends_with("%2Ffeature-flag-log/issues"))
    });
    assert_eq!(fake.flags()["alpha"], "25% of actors");
    let retry = run(&registry, &fake, &["notify", "--retry"]);
    assert_eq!(retry.code, 0, "{retry:?}");
    assert_received_once(&fake);
}

// A sync killed after GitLab applied its change but before flagops recorded that it did: the
// outbox holds the notification as prepared, and `notify --retry` finds the change in GitLab and
// sends it once. A change GitLab never applied is not announced.
#[test]
fn notify_after_a_sync_killed_between_apply_and_record() {
    let fake = FakeGitlab::start();
    let registry = registry(&fake, 30);
    // GitLab applies the change after a moment; the sync is killed while it waits.
    fake.fail_next("POST /api/v4/features/alpha", Fault::Delay(Duration::from_secs(2)));
    let child = spawn_sync(&registry, &fake);
    kill_when(child, || {
        fake.world().requests.iter().any(|r| r == "POST /api/v4/features/alpha")
    });
    wait_for(|| fake.flags().contains_key("alpha"));
    let outbox = registry.read(".flagops/state/production.outbox.jsonl");
    assert!(outbox.lines().all(|line| line.contains("\"prepared\"")), "{outbox}");
    let retry = run(&registry, &fake, &["notify", "--retry"]);
    assert_eq!(retry.code, 0, "{retry:?}");
    assert_received_once(&fake);

    // The same crash, but GitLab never gets the change: nothing is announced.
    let fake = FakeGitlab::start();
    let registry = self::registry(&fake, 30);
    fake.fail_next("POST /api/v4/features/alpha", Fault::Hang(Duration::from_secs(5)));
    let child = spawn_sync(&registry, &fake);
    kill_when(child, || {
        fake.world().requests.iter().any(|r| r == "POST /api/v4/features/alpha")
    });
    let retry = run(&registry, &fake, &["notify", "--retry"]);
    assert_eq!(retry.code, 0, "{retry:?}");
    assert_eq!(retry.stdout, "production:\n  notified     0 notifications sent\n");
    let world = fake.world();
    assert!(world.annotations.is_empty() && world.hooks.is_empty() && world.issues.is_empty());
}

fn spawn_sync(registry: &Registry, fake: &FakeGitlab) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_flagops"))
        .arg("sync")
        .current_dir(registry.path())
        .envs(secrets(fake))
        .env_remove("FLAGOPS_CHANGE_LOCK")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Kills `child` once `ready` holds (the fake got the request it waits on).
fn kill_when(mut child: std::process::Child, ready: impl Fn() -> bool) {
    wait_for(ready);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the sync finished before it was killed");
}

/// Polls `done` until it holds; a minute without it is a failure, not a timing assertion.
fn wait_for(done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(60), "gave up waiting");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// A notifier naming an environment flagops.yml lacks is a diagnostic at its place, and nothing
// is synced.
#[test]
fn notify_refuses_unknown_environment() {
    let fake = FakeGitlab::start();
    let registry = registry(&fake, 30);
    let config = registry
        .read("flagops.yml")
        .replace("environments: [production]", "environments: [prod]");
    registry.write("flagops.yml", config.clone());
    let line = config.lines().position(|line| line.contains("[prod]")).unwrap() + 1;
    let column = config.lines().nth(line - 1).unwrap().find("prod]").unwrap() + 1;
    let output = run(&registry, &fake, &["validate", "--format", "json"]);
    assert_eq!(output.code, 1, "{output:?}");
    let diagnostics: Value = serde_json::from_str(&output.stdout).unwrap();
    let found = &diagnostics[0];
    assert_eq!(found["check"], "invalid-value", "{diagnostics}");
    assert_eq!(found["message"], "unknown environment `prod`");
    assert_eq!(
        (found["span"]["line"].as_u64(), found["span"]["column"].as_u64()),
        (Some(line as u64), Some(column as u64)),
        "{diagnostics}"
    );
    assert!(found["help"].as_str().unwrap().contains("production"), "{diagnostics}");
    assert_eq!(run(&registry, &fake, &["sync"]).code, 1);
    assert!(fake.flags().is_empty());
}

// A break-glass change is announced like a sync's, with its reason, once the lock is released.
#[test]
fn notify_announces_an_emergency_change_with_its_reason() {
    let fake = FakeGitlab::start();
    let registry = registry(&fake, 30);
    registry.init_git();
    let synced = run(&registry, &fake, &["sync"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    let before = received(&fake).hooks.len();
    let output = run(
        &registry,
        &fake,
        &[
            "set",
            "alpha",
            "false",
            "--env",
            "production",
            "--emergency",
            "--reason",
            "INC-9: errors",
        ],
    );
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("notified"), "{output:?}");
    let hooks = received(&fake).hooks;
    let changes: Vec<&Value> = hooks[before..]
        .iter()
        .filter(|hook| hook["event"] == "change")
        .collect();
    assert_eq!(changes.len(), 1, "{hooks:?}");
    assert_eq!(changes[0]["flag"], "alpha");
    assert_eq!(changes[0]["new"], "false");
    assert_eq!(changes[0]["reason"], "INC-9: errors");
    let retry = run(&registry, &fake, &["notify", "--retry"]);
    assert_eq!(
        retry.stdout, "production:\n  notified     0 notifications sent\n",
        "{retry:?}"
    );
}

// A backend that writes a sync's changes together (`flagd`) announces them only once they are
// written: when the file cannot be written, no change is announced (its notifications are void),
// and the rerun that writes it announces each change once.
#[test]
fn notify_announces_changes_only_once_their_flagd_file_is_written() {
    let fake = FakeGitlab::start();
    let registry = crate::flagd::flagd_registry();
    crate::flagd::without_percentage_of_time(&registry);
    let long = format!("flagd/{}.json", "f".repeat(235));
    let config = registry.read("flagops.yml").replace(crate::flagd::FILE, &long);
    registry.write(
        "flagops.yml",
        format!(
            "{config}\nnotifications:\n  hook: {{ kind: webhook, url: \"{}/hooks/json\", secret_env: FLAGOPS_TEST_HOOK_SECRET, environments: [production] }}\n",
            fake.url()
        ),
    );
    let failed = run(&registry, &fake, &["sync", "--env", "production", "--take-over"]);
    assert_eq!(failed.code, 2, "{failed:?}");
    let announced = |fake: &FakeGitlab| {
        received(fake)
            .hooks
            .into_iter()
            .filter(|payload| payload["event"] != "summary")
            .map(|payload| payload["flag"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(announced(&fake), Vec::<String>::new());
    assert_eq!(run(&registry, &fake, &["notify", "--retry"]).code, 0);
    assert_eq!(announced(&fake), Vec::<String>::new());

    registry.write(
        "flagops.yml",
        registry.read("flagops.yml").replace(&long, crate::flagd::FILE),
    );
    let synced = run(&registry, &fake, &["sync", "--env", "production", "--take-over"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    let flags = announced(&fake);
    let distinct: BTreeSet<&String> = flags.iter().collect();
    assert!(!flags.is_empty());
    assert_eq!(distinct.len(), flags.len(), "{flags:?}");
    assert_eq!(flags.len(), registry.audit("production").len(), "{flags:?}");
}

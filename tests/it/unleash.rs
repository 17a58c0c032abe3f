//! The `unleash` backend against a real unleash-server 8.2.0 (tests/unleash, on Node.js 22 from
//! npm) on a private PostgreSQL cluster (tests/it/postgres.rs), started once for this test binary;
//! Unleash's official Node client (unleash-client) then evaluates what was synced. Failures the
//! real server cannot be made to give (409 on create, 5xx, timeouts) come from a small fake.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};

use crate::flagd::with_production_backend;
use crate::harness::{Registry, example_registry, flag};
use crate::unleash_server::{ADMIN_TOKEN, Server, folder, node};

const TOKEN_ENV: &str = "UNLEASH_TEST_TOKEN";

static SERVER: OnceLock<Option<Server>> = OnceLock::new();

/// The server this test binary shares: flags of different tests never meet, since only one test
/// writes to it.
fn server() -> Option<&'static Server> {
    SERVER.get_or_init(Server::start).as_ref()
}

/// The example registry with `production` in the Unleash environment `production`, its
/// fractional percentages made whole (Unleash takes whole percentages only).
fn unleash_registry(url: &str, project: &str) -> Registry {
    let registry = example_registry();
    with_production_backend(
        &registry,
        &format!("{{ kind: unleash, url: \"{url}\", project: {project}, token_env: {TOKEN_ENV} }}"),
    );
    for (file, from, to) in [
        (
            "flags/experiment/onboarding_learn_gitlab_tour_v2.yml",
            "percentage_of_actors: 33.333",
            "percentage_of_actors: 33",
        ),
        (
            "flags/gitlab_com_derisk/batched_keep_around_refs_cleanup.yml",
            "percentage_of_actors: 12.5",
            "percentage_of_actors: 12",
        ),
        (
            "flags/gitlab_com_derisk/zoekt_exact_match_ranking.yml",
            "percentage_of_actors: 0.5\n",
            "percentage_of_actors: 1\n",
        ),
        (
            "flags/ops/sample_gitaly_rpc_logging.yml",
            "percentage_of_time: 2.5",
            "percentage_of_time: 2",
        ),
    ] {
        let text = registry.read(file);
        assert!(text.contains(from), "{file} no longer sets `{from}`");
        registry.write(file, text.replace(from, to));
    }
    registry
}

fn sync(registry: &Registry, token: &str) -> crate::harness::Output {
    registry.run_with_env(&["sync", "--env", "production"], &[(TOKEN_ENV, token)])
}

/// The Flipper type of each actor kind of the example registry's flagops.yml.
fn flipper_type(kind: &str) -> &'static str {
    match kind {
        "user" => "User",
        "project" => "Project",
        "group" => "Group",
        "namespace" => "Namespaces::UserNamespace",
        "repository" => "Repository",
        "runner" => "Ci::Runner",
        other => panic!("actor kind `{other}` is not in the example registry"),
    }
}

/// Runs tests/unleash/evaluate.cjs: what unleash-client answers, and its own rollout buckets.
fn evaluate(server: &Server, flags: &[&String], contexts: &[Value]) -> Value {
    let (status, token) = server.admin(
        "POST",
        "/api-tokens",
        Some(json!({"tokenName": "flagops-tests", "type": "backend", "environment": "production", "projects": ["*"]})),
    );
    assert!(status < 300, "{status} {token}");
    let input = json!({"url": server.url, "token": token["secret"], "flags": flags, "contexts": contexts});
    let mut child = Command::new(node())
        .arg(folder().join("evaluate.cjs"))
        .current_dir(folder())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

// The example registry's production, synced into a real Unleash: a second sync writes nothing,
// drift made through the Admin API is found by `status` and healed by `sync`, and Unleash's own
// Node client answers, for every flag and a sample of actors, what flagops meant: booleans,
// actor lists and groups exactly, percentages of actors as the client's own hash buckets them.
#[test]
fn unleash_sync_noop_drift_and_client() {
    let Some(server) = server() else { return };
    let registry = unleash_registry(&server.url, "default");
    let first = sync(&registry, ADMIN_TOKEN);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert!(!first.stderr.contains(ADMIN_TOKEN) && !first.stdout.contains(ADMIN_TOKEN));
    let meant = registry.state("production")["flags"].clone();
    let meant = meant.as_object().unwrap();
    assert!(meant.len() > 20, "{meant:?}");

    // A no-op sync: Unleash logs no event but the exports of its reads.
    let before = server.last_event();
    let second = sync(&registry, ADMIN_TOKEN);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stdout.contains("0 changes applied"), "{}", second.stdout);
    let events = server.events_since(before);
    assert!(
        events.iter().all(|kind| kind == "features-exported"),
        "a no-op sync wrote: {events:?}"
    );

    // Drift: one flag turned off in Unleash's UI, another's rollout raised.
    let features = "/projects/default/features";
    let (status, _) = server.admin(
        "POST",
        &format!("{features}/global_search_code_indexing/environments/production/off"),
        None,
    );
    assert_eq!(status, 200);
    let path = format!("{features}/trial_registration_duo_step/environments/production/strategies");
    let (_, strategies) = server.admin("GET", &path, None);
    let mut strategy = strategies[0].clone();
    assert_eq!(strategy["parameters"]["rollout"], "50", "{strategies}");
    strategy["parameters"]["rollout"] = json!("75");
    let id = strategy["id"].as_str().unwrap().to_string();
    let (status, answer) = server.admin("PUT", &format!("{path}/{id}"), Some(strategy));
    assert_eq!(status, 200, "{answer}");

    let status = registry.run_with_env(&["status", "--env", "production"], &[(TOKEN_ENV, ADMIN_TOKEN)]);
    assert!(
        status.stdout.contains("2 drifted"),
        "{}\n{}",
        status.stdout,
        status.stderr
    );
    assert!(
        status.stdout.contains("global_search_code_indexing") && status.stdout.contains("trial_registration_duo_step"),
        "{}",
        status.stdout
    );
    let healed = sync(&registry, ADMIN_TOKEN);
    assert_eq!(healed.code, 0, "{}", healed.stderr);
    assert!(healed.stdout.contains("2 changes applied"), "{}", healed.stdout);
    let status = registry.run_with_env(&["status", "--env", "production"], &[(TOKEN_ENV, ADMIN_TOKEN)]);
    assert!(status.stdout.contains("0 drifted"), "{}", status.stdout);

    // What unleash-client answers, for every actor named anywhere and synthetic users, with and
    // without the feature group.
    let mut users: BTreeSet<String> = (1..=150).map(|i| format!("User:{i}")).collect();
    for state in meant.values() {
        for actor in state["actors"].as_array().into_iter().flatten() {
            let (kind, id) = actor.as_str().unwrap().split_once(':').unwrap();
            users.insert(format!("{}:{id}", flipper_type(kind)));
        }
    }
    let mut contexts: Vec<Value> = users.iter().map(|user| json!({"userId": user})).collect();
    contexts.extend(
        (1..=20).map(|i| json!({"userId": format!("User:{i}"), "properties": {"group": "gitlab_team_members"}})),
    );
    contexts.push(json!({}));
    let flags: Vec<&String> = meant.keys().collect();
    let answers = evaluate(server, &flags, &contexts);

    let mut checked = 0;
    for (flag, state) in meant {
        let got = answers["enabled"][flag].as_array().unwrap();
        let hashes = answers["hashes"][flag].as_array().unwrap();
        if state.get("percentage_of_time").is_some() {
            // Drawn anew on every evaluation: checked only in the unit tests of the mapping.
            continue;
        }
        for ((context, got), hash) in contexts.iter().zip(got).zip(hashes) {
            let user = context["userId"].as_str();
            let expected = match state {
                Value::Bool(on) => *on,
                gates => {
                    let actor = gates["actors"].as_array().into_iter().flatten().any(|actor| {
                        let (kind, id) = actor.as_str().unwrap().split_once(':').unwrap();
                        user == Some(&format!("{}:{id}", flipper_type(kind)))
                    });
                    let group = gates["groups"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|group| context["properties"]["group"] == *group);
                    let share = gates["percentage_of_actors"].as_u64().is_some_and(|p| {
                        // The client's own bucket of this user for this flag: 1..=100.
                        hash.as_u64().is_some_and(|bucket| bucket <= p)
                    });
                    actor || group || share
                }
            };
            assert_eq!(got.as_bool(), Some(expected), "`{flag}` ({state}) for {context}");
            checked += 1;
        }
    }
    assert!(checked > 3000, "{checked}");

    // `eval --actual` reads the environment back from Unleash and answers each user of the
    // contexts without a feature group as the client did: booleans, actor lists and Unleash's
    // own hashing of percentages.
    registry.write(
        "users.txt",
        users.iter().map(|user| format!("{user}\n")).collect::<String>(),
    );
    let mut evaluated = 0;
    for (flag, state) in meant
        .iter()
        .filter(|(_, state)| state.get("percentage_of_time").is_none())
    {
        let output = registry.run_with_env(
            &[
                "eval",
                "--env",
                "production",
                "--actual",
                "--actors-file",
                "users.txt",
                "--format",
                "json",
                flag,
            ],
            &[(TOKEN_ENV, ADMIN_TOKEN)],
        );
        assert_eq!(output.code, 0, "{output:?}");
        let report: Value = serde_json::from_str(&output.stdout).unwrap();
        let ours: Vec<bool> = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["outcome"] == "on")
            .collect();
        let theirs: Vec<bool> = answers["enabled"][flag].as_array().unwrap()[..users.len()]
            .iter()
            .map(|got| got.as_bool() == Some(true))
            .collect();
        assert_eq!(
            ours, theirs,
            "`eval --actual` of `{flag}` ({state}) against unleash-client"
        );
        evaluated += 1;
    }
    assert!(evaluated > 20, "{evaluated}");

    // The site reads production from Unleash too: drift made there shows on the flag's page.
    let (status, _) = server.admin(
        "POST",
        &format!("{features}/global_search_code_indexing/environments/production/off"),
        None,
    );
    assert_eq!(status, 200);
    let site = registry.run_with_env(&["site", "--out", "public"], &[(TOKEN_ENV, ADMIN_TOKEN)]);
    assert_eq!(site.code, 0, "{site:?}");
    let page = registry.read("public/flags/global_search_code_indexing.html");
    assert!(
        page.contains("<span class=\"marker drift\">⚠ drift</span>"),
        "no drift on the flag page:\n{page}"
    );
    assert!(!page.contains(ADMIN_TOKEN));
}

// A token Unleash refuses (401) and a project it does not have (404 for its flags) fail the
// environment with exit 2 and a message naming the variable, never the token; nothing is written.
#[test]
fn unleash_wrong_token_and_missing_project() {
    let Some(server) = server() else { return };
    let registry = unleash_registry(&server.url, "default");
    let refused = sync(&registry, "*:*.not-the-token");
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(said.contains(&format!("token in `{TOKEN_ENV}` (401")), "{said}");
    assert!(said.contains("help:") && !said.contains("not-the-token"), "{said}");

    let missing = unleash_registry(&server.url, "no-such-project");
    let answer = sync(&missing, ADMIN_TOKEN);
    assert_eq!(answer.code, 2, "{}\n{}", answer.stdout, answer.stderr);
    let said = format!("{}{}", answer.stdout, answer.stderr);
    assert!(said.contains("no project `no-such-project`"), "{said}");
    assert!(said.contains("help:"), "{said}");
    assert_eq!(missing.audit("production").len(), 0);
}

/// A scripted Unleash: answers each request with the first matching rule, counting requests.
struct Fake {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

type Rule = Box<dyn Fn(&str, usize) -> Option<(u16, String, Duration)> + Send>;

fn start_fake(rules: Vec<Rule>) -> Fake {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let line = format!("{} {}", request.method(), request.url());
            let mut body = String::new();
            let _ = request.as_reader().read_to_string(&mut body);
            let count = {
                let mut seen = seen.lock().unwrap();
                seen.push(line.clone());
                seen.iter().filter(|l| **l == line).count()
            };
            let (status, text, delay) = rules.iter().find_map(|rule| rule(&line, count)).unwrap_or((
                404,
                r#"{"message":"not found"}"#.to_string(),
                Duration::ZERO,
            ));
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let _ = request.respond(
                    tiny_http::Response::from_string(text)
                        .with_status_code(status)
                        .with_header("Content-Type: application/json".parse::<tiny_http::Header>().unwrap()),
                );
            });
        }
    });
    Fake { url, requests }
}

/// The rules of an empty Unleash with the project `default` and the environment `production`.
fn empty_unleash() -> Vec<Rule> {
    vec![
        Box::new(|line, _| {
            (line == "GET /api/admin/projects")
                .then(|| (200, r#"{"projects":[{"id":"default"}]}"#.into(), Duration::ZERO))
        }),
        Box::new(|line, _| {
            (line == "GET /api/admin/environments").then(|| {
                (
                    200,
                    r#"{"environments":[{"name":"production","enabled":true}]}"#.into(),
                    Duration::ZERO,
                )
            })
        }),
    ]
}

fn ok(line: &'static str, body: &'static str) -> Rule {
    Box::new(move |l, _| (l == line).then(|| (200, body.to_string(), Duration::ZERO)))
}

const EXPORT: &str = "POST /api/admin/features-batch/export";
const EMPTY_EXPORT: &str = r#"{"features":[],"featureStrategies":[],"featureEnvironments":[]}"#;

/// A registry with one flag, `alpha`, on in `production`, which is the Unleash at `url`.
fn one_flag(url: &str, timeout: u64) -> Registry {
    let registry = Registry::new();
    with_production_backend(
        &registry,
        &format!("{{ kind: unleash, url: \"{url}\", token_env: {TOKEN_ENV}, timeout_seconds: {timeout} }}"),
    );
    registry.write(
        "flags/wip/alpha.yml",
        flag("alpha", "environments:\n  production: true\n"),
    );
    registry
}

// Creating a flag whose name Unleash already holds elsewhere (409, and not in the project) fails
// the environment with the reason; nothing is recorded as applied.
#[test]
fn unleash_create_conflict_is_a_clear_error() {
    let mut rules = empty_unleash();
    rules.push(ok(EXPORT, EMPTY_EXPORT));
    rules.push(Box::new(|line, _| {
        (line == "POST /api/admin/projects/default/features").then(|| {
            (
                409,
                r#"{"name":"NameExistsError","message":"A flag with that name already exists"}"#.into(),
                Duration::ZERO,
            )
        })
    }));
    let fake = start_fake(rules);
    let registry = one_flag(&fake.url, 5);
    let output = sync(&registry, "secret-token");
    assert_ne!(output.code, 0, "{}", output.stdout);
    let said = format!("{}{}", output.stdout, output.stderr);
    assert!(said.contains("exists in another project or in the archive"), "{said}");
    assert!(!said.contains("secret-token"), "{said}");
    assert_eq!(registry.audit("production").len(), 0);
    let requests = fake.requests.lock().unwrap();
    assert!(
        !requests.iter().any(|r| r.contains("/strategies") || r.ends_with("/on")),
        "{requests:?}"
    );
}

// 5xx answers and answers too slow for `timeout_seconds` are retried; a change that then goes
// through converges, and one that keeps failing fails with exit 2 and what Unleash answered.
#[test]
fn unleash_server_errors_and_timeouts_are_retried() {
    let mut rules = empty_unleash();
    // The first export is slower than the timeout, the second a 503; the third answers.
    rules.push(Box::new(|line, count| {
        (line == EXPORT && count == 1).then(|| (200, EMPTY_EXPORT.into(), Duration::from_secs(3)))
    }));
    rules.push(Box::new(|line, count| {
        (line == EXPORT && count == 2).then(|| (503, r#"{"message":"busy"}"#.into(), Duration::ZERO))
    }));
    rules.push(ok(EXPORT, EMPTY_EXPORT));
    rules.push(Box::new(|line, _| {
        (line == "POST /api/admin/projects/default/features")
            .then(|| (201, r#"{"name":"alpha"}"#.into(), Duration::ZERO))
    }));
    rules.push(Box::new(|line, _| {
        (line == "POST /api/admin/projects/default/features/alpha/environments/production/strategies")
            .then(|| (200, r#"{"id":"s1"}"#.into(), Duration::ZERO))
    }));
    // Turning it on fails once with a 502, then works.
    rules.push(Box::new(|line, count| {
        (line == "POST /api/admin/projects/default/features/alpha/environments/production/on").then(|| {
            if count == 1 {
                (502, "bad gateway".into(), Duration::ZERO)
            } else {
                (200, String::new(), Duration::ZERO)
            }
        })
    }));
    rules.push(Box::new(|line, _| {
        (line == "GET /api/admin/projects/default/features/alpha").then(|| {
            (
                200,
                r#"{"environments":[{"name":"production","enabled":false,"strategies":[{"id":"s1","name":"flexibleRollout","parameters":{"rollout":"100","stickiness":"default","groupId":"alpha"},"constraints":[]}]}]}"#.into(),
                Duration::ZERO,
            )
        })
    }));
    let fake = start_fake(rules);
    let registry = one_flag(&fake.url, 1);
    let output = sync(&registry, "secret-token");
    assert_eq!(output.code, 0, "{}\n{}", output.stdout, output.stderr);
    assert!(output.stdout.contains("1 change"), "{}", output.stdout);
    let requests = fake.requests.lock().unwrap().clone();
    // The retry of the change read the flag again instead of creating it twice.
    let creates = requests
        .iter()
        .filter(|r| *r == "POST /api/admin/projects/default/features")
        .count();
    let strategies = requests.iter().filter(|r| r.ends_with("/strategies")).count();
    assert_eq!((creates, strategies), (1, 1), "{requests:?}");
    assert_eq!(registry.audit("production").len(), 1);

    // An Unleash that keeps answering 500.
    let mut rules = empty_unleash();
    rules.push(Box::new(|line, _| {
        (line == EXPORT).then(|| (500, r#"{"message":"database down"}"#.into(), Duration::ZERO))
    }));
    let down = start_fake(rules);
    let registry = one_flag(&down.url, 5);
    let output = sync(&registry, "secret-token");
    assert_eq!(output.code, 2, "{}\n{}", output.stdout, output.stderr);
    let said = format!("{}{}", output.stdout, output.stderr);
    assert!(said.contains("500") && said.contains("database down"), "{said}");
    assert!(!said.contains("secret-token"), "{said}");
}

// A fractional percentage is refused in an Unleash environment, where an SDK would read it as off
// or round it, with the check's id, the value's place and a hint; the same value in a `file`
// environment passes, and `sync` refuses the registry before reading any backend.
#[test]
fn unleash_refuses_fractional_percentages_at_validate() {
    let registry = one_flag("http://127.0.0.1:9", 5);
    registry.write(
        "flags/wip/alpha.yml",
        flag(
            "alpha",
            "environments:\n  staging:\n    percentage_of_actors: 12.5\n  production:\n    percentage_of_actors: 12.5\n",
        ),
    );
    let output = registry.run(&["validate"]);
    assert_eq!(output.code, 1, "{}\n{}", output.stdout, output.stderr);
    let said = format!("{}{}", output.stdout, output.stderr);
    assert_eq!(said.matches("error[unleash-whole-percentage]").count(), 1, "{said}");
    let text = registry.read("flags/wip/alpha.yml");
    let line = text.lines().position(|l| l.contains("production:")).unwrap() + 2;
    assert!(said.contains(&format!("flags/wip/alpha.yml:{line}:27")), "{said}");
    assert!(
        said.contains("help: Unleash's SDKs take whole percentages only: use 12 or 13"),
        "{said}"
    );
    let sync = sync(&registry, "secret-token");
    assert_eq!(sync.code, 1, "{}\n{}", sync.stdout, sync.stderr);
    // Below 1%, rounding down would be no gate at all: the hint says to leave the key out.
    registry.write(
        "flags/wip/alpha.yml",
        flag("alpha", "environments:\n  production:\n    percentage_of_actors: 0.5\n"),
    );
    let output = registry.run(&["validate"]);
    assert!(
        output
            .stdout
            .contains("help: Unleash's SDKs take whole percentages only: use 1, or leave `percentage_of_actors` out"),
        "{}",
        output.stdout
    );
}

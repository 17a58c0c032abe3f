//! Metric guards against a real Prometheus (`crate::prometheus`): a three-step rollout advances
//! while its error series is healthy, holds when it breaches, rolls back when told to, and holds
//! on no data and on a stopped server; `plan`, `status` and `rollout` show what the guard said,
//! and `status` and the site what the last sync recorded; and `validate` refuses guards it
//! cannot follow.

use serde_json::{Value, json};

use crate::harness::{Registry, flag};
use crate::prometheus::Prometheus;

/// The guard every flag below uses, through its type or its own `guard:`.
const GUARD: &str = "guards:\n  error_rate:\n    description: Errors of the code behind the flag.\n    query: 'max(flagops_test_error_ratio{flag=\"{{flag}}\",environment=\"{{environment}}\"})'\n    max: 0.01\n";

/// The error ratio series of the flags below, as the page Prometheus scrapes writes them.
fn page(guarded: f64, reverting: f64) -> String {
    format!(
        "# TYPE flagops_test_error_ratio gauge\nflagops_test_error_ratio{{flag=\"guarded\",environment=\"dev\"}} {guarded}\nflagops_test_error_ratio{{flag=\"reverting\",environment=\"dev\"}} {reverting}\n"
    )
}

/// Sets the page and waits until Prometheus answers its new values.
fn serve(prometheus: &Prometheus, guarded: f64, reverting: f64) {
    prometheus.set_metrics(&page(guarded, reverting));
    let value = |flag: &str| format!("max(flagops_test_error_ratio{{flag=\"{flag}\",environment=\"dev\"}})");
    prometheus.wait_for(&value("guarded"), &[&guarded.to_string()]);
    prometheus.wait_for(&value("reverting"), &[&reverting.to_string()]);
}

/// A three-step rollout in dev, 15 minutes apart from 2099-01-05T09:00:00Z, with `extra` lines.
fn three_steps(name: &str, extra: &str) -> String {
    flag(
        name,
        &format!(
            "{extra}environments:\n  dev: false\nrollout:\n  - at: \"2099-01-05T09:00:00Z\"\n    dev: {{ percentage_of_actors: 25 }}\n  - after: 15m\n    dev: {{ percentage_of_actors: 50 }}\n  - after: 15m\n    dev: true\n"
        ),
    )
}

/// Syncs dev at `at`, returning the report as JSON.
#[track_caller]
fn sync_at(registry: &Registry, at: &str) -> Value {
    let output = registry.run_with_env(
        &["sync", "--env", "dev", "--at", at, "--format", "json"],
        &[
            ("FLAGOPS_TEST_HOOK_SECRET", "guard-hook-secret"),
            ("NO_PROXY", "127.0.0.1"),
        ],
    );
    assert_eq!(output.code, 0, "{output:?}");
    serde_json::from_str(&output.stdout).unwrap_or_else(|error| panic!("{error}: {output:?}"))
}

/// The report's guards that held or rolled back: flag, step and outcome.
fn guarded(report: &Value) -> Vec<(String, u64, String)> {
    report[0]["guarded"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|verdict| {
            (
                verdict["flag"].as_str().unwrap().to_string(),
                verdict["step"].as_u64().unwrap(),
                verdict["outcome"]["is"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn guards_advance_hold_and_roll_back_against_a_real_prometheus() {
    let Some(mut prometheus) = Prometheus::start() else {
        return;
    };
    let registry = Registry::new();
    let config = registry.read("flagops.yml");
    // The `wip` type guards every step of its flags; `reverting` rolls back on a breach.
    let config = config.replacen("  wip:\n", "  wip:\n    guard: error_rate\n", 1);
    assert!(
        config.contains("guard: error_rate"),
        "the default config has the `wip` type"
    );
    // A webhook hears of every guard that holds a step or rolls it back.
    let hooks = crate::fake_gitlab::FakeGitlab::start();
    registry.write(
        "flagops.yml",
        format!(
            "{config}\nprometheus:\n  url: {}\n{GUARD}\nnotifications:\n  hook: {{ kind: webhook, url: \"{}/hooks/json\", secret_env: FLAGOPS_TEST_HOOK_SECRET }}\n",
            prometheus.url(),
            hooks.url()
        ),
    );
    // Each guard message once: flag, step and why.
    let guard_messages = || -> Vec<(String, u64, String)> {
        hooks
            .world()
            .hooks
            .iter()
            .map(|hook| serde_json::from_str::<Value>(&hook.body).unwrap())
            .filter(|message| message["event"] == "guard")
            .map(|message| {
                (
                    message["flag"].as_str().unwrap().to_string(),
                    message["step"].as_u64().unwrap(),
                    message["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    registry.write("flags/wip/guarded.yml", three_steps("guarded", ""));
    registry.write(
        "flags/wip/reverting.yml",
        three_steps("reverting", "on_breach: rollback\n"),
    );
    // No series for this flag: its guard has no data.
    registry.write("flags/wip/silent.yml", three_steps("silent", ""));
    let validate = registry.run(&["validate"]);
    assert_eq!(validate.code, 0, "{validate:?}");
    let held = |flag: &str| registry.state("dev")["flags"][flag].clone();
    let step = |percent: u64| json!({ "percentage_of_actors": percent });

    // Healthy: the first step goes ahead, and its mark keeps what the guard said.
    serve(&prometheus, 0.001, 0.002);
    let report = sync_at(&registry, "2099-01-05T09:00:00Z");
    assert_eq!(held("guarded"), step(25));
    assert_eq!(held("reverting"), step(25));
    assert_eq!(held("silent"), json!(false));
    assert_eq!(guarded(&report), [("silent".to_string(), 1, "no-data".to_string())]);
    let mark = &registry.state("dev")["steps"]["guarded"];
    assert_eq!(
        mark["guard"]["outcome"],
        json!({ "is": "healthy", "value": "0.001" }),
        "{mark}"
    );
    assert_eq!(
        mark["guard"]["query"],
        "max(flagops_test_error_ratio{flag=\"guarded\",environment=\"dev\"})"
    );

    // Breached: `guarded` holds step 2, `reverting` goes back to its `environments` entry.
    serve(&prometheus, 0.5, 0.25);
    let plan = registry.run(&["plan", "--env", "dev", "--at", "2099-01-05T09:15:00Z"]);
    assert!(
        plan.stdout.contains("guarded: step 1 of 3 applied at 2099-01-05T09:00:00Z; step 2 due at 2099-01-05T09:15:00Z; guard `error_rate` holds step 2: 0.5 breaches max 0.01"),
        "{plan:?}"
    );
    let report = sync_at(&registry, "2099-01-05T09:15:00Z");
    assert_eq!(held("guarded"), step(25));
    assert_eq!(held("reverting"), json!(false));
    assert_eq!(
        guarded(&report),
        [
            ("guarded".to_string(), 2, "breached".to_string()),
            ("reverting".to_string(), 2, "breached".to_string()),
            ("silent".to_string(), 1, "no-data".to_string()),
        ]
    );
    // The breaches are announced once each; `silent`'s missing data only once over two syncs.
    let messages = guard_messages();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(
        messages.contains(&(
            "silent".to_string(),
            1,
            "guard `error_rate` holds step 1: the query returned no data".to_string()
        )),
        "{messages:?}"
    );
    assert!(
        messages.contains(&(
            "guarded".to_string(),
            2,
            "guard `error_rate` holds step 2: 0.5 breaches max 0.01".to_string()
        )),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|(flag, step, why)| flag == "reverting"
            && *step == 2
            && why.contains("back to the state before the plan")),
        "{messages:?}"
    );
    let rollback = registry
        .audit("dev")
        .into_iter()
        .rfind(|record| record["flag"] == "reverting")
        .unwrap();
    assert_eq!(rollback["to"], json!(false), "{rollback}");
    assert_eq!(rollback["step"]["step"], 2, "{rollback}");
    assert_eq!(
        rollback["step"]["guard"]["outcome"],
        json!({ "is": "breached", "value": "0.25" }),
        "{rollback}"
    );
    let status = registry.run(&["status", "--env", "dev", "--at", "2099-01-05T09:16:00Z"]);
    assert!(
        status.stdout.contains("reverting: rolled back at ")
            && status.stdout.contains("by guard `error_rate` before step 2, back to the state before the plan: 0.25 breaches max 0.01; the plan goes on once step 2 is edited"),
        "{status:?}"
    );

    // Healthy again: `guarded` goes on, one step a sync; `reverting` stays rolled back.
    serve(&prometheus, 0.001, 0.001);
    let rollout = registry.run(&["rollout", "guarded", "--at", "2099-01-05T09:16:00Z"]);
    assert!(
        rollout.stdout.contains("  dev: step 2 of 3 takes effect; step 3 due at 2099-01-05T09:31:00Z (held past its time 2099-01-05T09:30:00Z: the plan's spacing after step 2, counted from its apply); guard `error_rate` passed step 2: 0.001 within max 0.01"),
        "{rollout:?}"
    );
    sync_at(&registry, "2099-01-05T09:16:00Z");
    assert_eq!(held("guarded"), step(50));
    assert_eq!(held("reverting"), json!(false));

    // Prometheus down: nothing advances.
    prometheus.stop();
    let report = sync_at(&registry, "2099-01-05T09:31:00Z");
    assert_eq!(held("guarded"), step(50));
    assert_eq!(held("silent"), json!(false));
    let verdicts = guarded(&report);
    assert!(
        verdicts.contains(&("guarded".to_string(), 3, "unreachable".to_string()))
            && verdicts.contains(&("silent".to_string(), 1, "unreachable".to_string())),
        "{report}"
    );
    assert!(
        report[0]["guarded"][0]["outcome"]["error"]
            .as_str()
            .unwrap()
            .contains("/api/v1/query"),
        "{report}"
    );
    // The audit log: each flag's steps in order, none past a guard that did not pass.
    let steps = |flag: &str| -> Vec<(Value, u64)> {
        registry
            .audit("dev")
            .into_iter()
            .filter(|record| record["flag"] == flag && record.get("step").is_some())
            .map(|record| (record["to"].clone(), record["step"]["step"].as_u64().unwrap()))
            .collect()
    };
    assert_eq!(steps("guarded"), [(step(25), 1), (step(50), 2)]);
    assert_eq!(steps("reverting"), [(step(25), 1), (json!(false), 2)]);
    assert_eq!(steps("silent"), []);
}

// A guard's verdict is kept in the environment's sync record: `status` and the flag's page show
// it from there after Prometheus has stopped, and a later healthy verdict replaces it.
#[test]
fn guard_verdicts_are_stored_and_shown_without_prometheus() {
    let Some(mut prometheus) = Prometheus::start() else {
        return;
    };
    let registry = Registry::new();
    let config = registry.read("flagops.yml");
    let config = config.replacen("  wip:\n", "  wip:\n    guard: error_rate\n", 1);
    registry.write(
        "flagops.yml",
        format!("{config}\nprometheus:\n  url: {}\n{GUARD}", prometheus.url()),
    );
    registry.write("flags/wip/guarded.yml", three_steps("guarded", ""));
    let stored = || registry.state("dev")["last_sync"]["observed"]["guards"].clone();

    serve(&prometheus, 0.5, 0.0);
    sync_at(&registry, "2099-01-05T09:00:00Z");
    assert_eq!(registry.state("dev")["flags"]["guarded"], json!(false));
    let guards = stored();
    assert_eq!(guards.as_array().map(Vec::len), Some(1), "{guards}");
    assert_eq!(guards[0]["verdict"]["flag"], "guarded");
    assert_eq!(guards[0]["verdict"]["guard"], "error_rate");
    assert_eq!(guards[0]["verdict"]["step"], 1);
    assert_eq!(guards[0]["verdict"]["limit"], "max 0.01");
    assert_eq!(
        guards[0]["verdict"]["outcome"],
        json!({ "is": "breached", "value": "0.5" })
    );
    assert!(
        guards[0]["at"]
            .as_str()
            .is_some_and(|at| at.parse::<jiff::Timestamp>().is_ok()),
        "{guards}"
    );

    // Prometheus stopped: what `status` and the site show comes from the record.
    prometheus.stop();
    let status = registry.run(&["status", "--env", "dev", "--at", "2099-01-05T08:00:00Z"]);
    assert_eq!(status.code, 0, "{status:?}");
    let line = status
        .stdout
        .lines()
        .find(|line| line.starts_with("  guard    guarded: "))
        .unwrap_or_else(|| panic!("{status:?}"));
    assert!(
        line.starts_with("  guard    guarded: guard `error_rate` holds step 1: 0.5 breaches max 0.01 (asked "),
        "{line}"
    );
    assert_eq!(registry.run(&["site"]).code, 0);
    let page = registry.read("public/flags/guarded.html");
    let document = scraper::Html::parse_document(&page);
    let items = scraper::Selector::parse("section.glance dd ul.holds li").unwrap();
    let texts: Vec<String> = document
        .select(&items)
        .map(|item| item.text().collect::<String>())
        .collect();
    assert_eq!(texts.len(), 1, "{page}");
    assert!(
        texts[0].starts_with("dev: breached guard `error_rate` holds step 1: 0.5 breaches max 0.01 (asked "),
        "{texts:?}"
    );
    let badge = scraper::Selector::parse("section.glance .badge.guard-breached").unwrap();
    assert_eq!(document.select(&badge).count(), 1, "{page}");
    // The verdict of an unreachable server keeps its error, which names no credentials.
    let report = sync_at(&registry, "2099-01-05T09:01:00Z");
    assert_eq!(report[0]["guarded"][0]["outcome"]["is"], "unreachable", "{report}");
    assert_eq!(stored()[0]["verdict"]["outcome"]["is"], "unreachable");

    // Healthy: the step goes ahead and the record says so.
    let Some(prometheus) = Prometheus::start() else {
        return;
    };
    let config = registry.read("flagops.yml");
    let start = config.find("prometheus:\n  url: ").unwrap();
    let end = start + config[start..].find("\nguards:").unwrap();
    registry.write(
        "flagops.yml",
        format!(
            "{}prometheus:\n  url: {}{}",
            &config[..start],
            prometheus.url(),
            &config[end..]
        ),
    );
    serve(&prometheus, 0.001, 0.0);
    sync_at(&registry, "2099-01-05T09:02:00Z");
    assert_eq!(
        registry.state("dev")["flags"]["guarded"],
        json!({ "percentage_of_actors": 25 })
    );
    assert_eq!(
        stored()[0]["verdict"]["outcome"],
        json!({ "is": "healthy", "value": "0.001" })
    );
}

#[test]
fn validate_refuses_guards_it_cannot_follow() {
    let registry = Registry::new();
    let config = registry.read("flagops.yml");
    let config = config.replacen("  wip:\n", "  wip:\n    guard: latency\n", 1);
    // Guards with no `prometheus` to ask, a query with an unknown variable, and a type naming
    // an unknown guard.
    registry.write(
        "flagops.yml",
        format!("{config}\nguards:\n  error_rate:\n    query: 'x{{{{env}}}}'\n    max: 1\n"),
    );
    let output = registry.run(&["validate", "--format", "json"]);
    assert_eq!(output.code, 1, "{output:?}");
    let findings: Vec<Value> = serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"));
    let checks: Vec<&str> = findings.iter().map(|f| f["check"].as_str().unwrap()).collect();
    assert_eq!(checks, ["unknown-guard", "missing-key", "invalid-value"], "{output:?}");

    // With the config fixed, a flag naming an unknown guard, and a rollback with nothing to
    // return to.
    registry.write(
        "flagops.yml",
        format!("{config}\nprometheus:\n  url: http://127.0.0.1:9\n{GUARD}")
            .replace("guard: latency", "guard: error_rate"),
    );
    registry.write(
        "flags/wip/a.yml",
        flag(
            "a",
            "on_breach: rollback\nrollout:\n  - at: \"2099-01-05T09:00:00Z\"\n    guard: errors\n    dev: true\n  - after: 15m\n    staging: true\n",
        ),
    );
    let output = registry.run(&["validate", "--format", "json"]);
    assert_eq!(output.code, 1, "{output:?}");
    let findings: Vec<Value> = serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"));
    let found: Vec<(&str, u64, u64, &str)> = findings
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap(),
                f["span"]["line"].as_u64().unwrap(),
                f["span"]["column"].as_u64().unwrap(),
                f["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "guard-reference",
                8,
                12,
                "step 2 rolls back on a breach, but `environments` has no state for `staging` to roll back to"
            ),
            ("guard-reference", 11, 12, "unknown guard `errors`"),
        ],
        "{output:?}"
    );
}

//! Cross-backend hashing: flagops's bucketing of each kind of backend checked against the real
//! evaluators (flagd's `fractional` in @openfeature/flagd-core, Unleash's `flexibleRollout` in
//! unleash-client), `eval --compare-backend`, and `plan`'s note when an environment's backend
//! moves to one that hashes differently.

use std::process::Command;

use serde_json::Value;

use crate::flagd::{FILE, flagd_registry, run_evaluator, without_percentage_of_time};
use crate::harness::{Registry, flag, repo_root};

/// `count` Flipper ids of projects, one a line, and the same as a list.
fn sample(count: usize) -> (String, Vec<String>) {
    let ids: Vec<String> = (1..=count).map(|i| format!("Project:{i}")).collect();
    (ids.join("\n") + "\n", ids)
}

/// The outcome of each actor in `flagops eval --format json`'s report, and the compared one.
fn outcomes(report: &Value, key: Option<&str>) -> Vec<bool> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| match key {
            Some(key) => row[key]["outcome"] == "on",
            None => row["outcome"] == "on",
        })
        .collect()
}

fn eval_json(registry: &Registry, args: &[&str]) -> Value {
    let mut all = vec!["eval"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let output = registry.run(&all);
    assert_eq!(output.code, 0, "{output:?}");
    serde_json::from_str(&output.stdout).unwrap()
}

#[test]
fn flagd_bucketing_matches_flagd_actor_by_actor() {
    // flagops's `fractional` bucketing, as `eval` applies it in a flagd environment, gives every
    // actor of a sample the answer flagd-core gives for the file the backend wrote.
    let registry = flagd_registry();
    without_percentage_of_time(&registry);
    assert_eq!(registry.run(&["sync", "--env", "production", "--take-over"]).code, 0);
    let (text, ids) = sample(2000);
    registry.write("sample.txt", &text);
    let keys: Vec<&str> = ids.iter().map(String::as_str).collect();
    let Some(output) = run_evaluator(&registry.path().join(FILE), &keys) else {
        return;
    };
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let flagd: Value = serde_json::from_slice(&output.stdout).unwrap();
    let state = registry.state("production");
    let mut compared = 0;
    for (name, stored) in state["flags"].as_object().unwrap() {
        if stored.get("percentage_of_actors").is_none() {
            continue;
        }
        let report = eval_json(
            &registry,
            &["--env", "production", "--actual", "--actors-file", "sample.txt", name],
        );
        let ours = outcomes(&report, None);
        let theirs: Vec<bool> = ids.iter().map(|id| flagd[name][id] == true).collect();
        let differ = ours.iter().zip(&theirs).filter(|(a, b)| a != b).count();
        assert_eq!(
            differ,
            0,
            "{name}: flagops and flagd disagree on {differ} of {} actors",
            ids.len()
        );
        assert!(
            ours.iter().any(|on| *on) && ours.iter().any(|on| !on),
            "{name}: all alike"
        );
        compared += 1;
    }
    assert!(compared >= 2, "only {compared} percentage flags compared");
}

#[test]
fn unleash_bucketing_matches_unleash_client_actor_by_actor() {
    let folder = repo_root().join("tests/unleash");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !(node && folder.join("node_modules/unleash-client").is_dir()) {
        crate::deps::missing::<()>("Node.js or unleash-client (tests/unleash)");
        return;
    }
    let registry = Registry::new();
    let (text, ids) = sample(2000);
    registry.write("sample.txt", &text);
    for (name, percent) in [("quarter_flag", "25"), ("eighth_flag", "12.5"), ("few_flag", "1")] {
        registry.write(
            &format!("flags/wip/{name}.yml"),
            flag(
                name,
                &format!("environments:\n  production:\n    percentage_of_actors: {percent}\n"),
            ),
        );
        let report = eval_json(
            &registry,
            &[
                "--env",
                "production",
                "--actors-file",
                "sample.txt",
                "--compare-backend",
                "unleash",
                name,
            ],
        );
        assert_eq!(report["compared_backends"], serde_json::json!(["file", "unleash"]));
        let ours = outcomes(&report, Some("compared"));
        let output = Command::new("node")
            .arg(folder.join("rollout.cjs"))
            .args([name, percent])
            .args(&ids)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let unleash: Value = serde_json::from_slice(&output.stdout).unwrap();
        let theirs: Vec<bool> = ids.iter().map(|id| unleash[id] == true).collect();
        let differ = ours.iter().zip(&theirs).filter(|(a, b)| a != b).count();
        assert_eq!(
            differ, 0,
            "{name} at {percent}%: flagops and unleash-client disagree on {differ} actors"
        );
        assert!(ours.iter().any(|on| *on), "{name}: nobody is in");
    }
}

/// A registry whose `production` has an actor sample of 10,000 projects and one flag at 50%.
fn sampled_registry() -> Registry {
    let registry = Registry::new();
    let config = registry.read("flagops.yml");
    registry.write(
        "flagops.yml",
        config.replacen(
            "    protected: true\n    backend: { kind: file }\n\n",
            "    protected: true\n    backend: { kind: file }\n    actor_sample: samples/production.txt\n\n",
            1,
        ),
    );
    registry.write("samples/production.txt", sample(10_000).0);
    registry.write(
        "flags/wip/half_flag.yml",
        flag(
            "half_flag",
            "environments:\n  production:\n    percentage_of_actors: 50\n",
        ),
    );
    registry
}

#[test]
fn eval_compare_backend_counts_the_actors_that_flip() {
    let registry = sampled_registry();
    let report = eval_json(
        &registry,
        &["half_flag", "--env", "production", "--compare-backend", "flagd"],
    );
    let before = outcomes(&report, None);
    let after = outcomes(&report, Some("compared"));
    assert_eq!(before.len(), 10_000);
    let on = before.iter().zip(&after).filter(|(b, a)| !**b && **a).count();
    let off = before.iter().zip(&after).filter(|(b, a)| **b && !**a).count();
    assert_eq!(report["switched_on"], on);
    assert_eq!(report["switched_off"], off);
    // At 50%, two independent hashes disagree on about half the actors: 2p(1 − p) = 0.5, with a
    // binomial standard deviation of 50 over 10,000; each side loses as many as it gains.
    let flipped = (on + off) as f64;
    assert!((flipped - 5000.0).abs() <= 4.5 * 50.0, "{on} on, {off} off");
    assert!((on as f64 - off as f64).abs() <= 4.5 * 50.0, "{on} on, {off} off");

    // The human report says the same; Flipper's hashing in another Flipper store flips nobody.
    let human = registry.run(&["eval", "half_flag", "--env", "production", "--compare-backend", "flagd"]);
    assert_eq!(human.code, 0, "{human:?}");
    assert!(
        human
            .stdout
            .contains("compared with the same state in a `flagd` backend (this environment's is `file`)"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains(&format!("of 10000 actors, {on} switch on and {off} switch off")),
        "{}",
        human.stdout
    );
    let same = eval_json(
        &registry,
        &["half_flag", "--env", "production", "--compare-backend", "gitlab"],
    );
    assert_eq!(
        (same["switched_on"].as_u64(), same["switched_off"].as_u64()),
        (Some(0), Some(0))
    );

    // `--actor` replaces the sample; without either there is nothing to count.
    let one = eval_json(
        &registry,
        &[
            "half_flag",
            "--env",
            "production",
            "--actor",
            "Project:1",
            "--compare-backend",
            "unleash",
        ],
    );
    assert_eq!(one["results"].as_array().unwrap().len(), 1);
    let refused = registry.run(&["eval", "half_flag", "--env", "staging", "--compare-backend", "flagd"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    let text = format!("{}{}", refused.stdout, refused.stderr);
    assert!(text.contains("`staging` has no `actor_sample`"), "{text}");
    assert!(text.contains("help: name actors with `--actor`"), "{text}");
}

/// `production` of `registry` moved to the `flagd` backend.
fn move_production_to_flagd(registry: &Registry) {
    let config = registry.read("flagops.yml");
    let at = config.find("  - name: production\n").unwrap();
    let backend = at + config[at..].find("backend: { kind: file }").unwrap();
    registry.write(
        "flagops.yml",
        format!(
            "{}backend: {{ kind: flagd, path: flagd/production.json }}{}",
            &config[..backend],
            &config[backend + "backend: { kind: file }".len()..]
        ),
    );
}

const NOTE: &str = "production: the backend moves from `file` to `flagd`, which hash actors differently (Flipper's CRC-32 against flagd's MurmurHash3 `fractional`): 1 flag at a percentage of actors will open the same share but other actors (half_flag); count them with `flagops eval NAME --env production --compare-backend file`";

#[test]
fn plan_says_when_percentages_move_to_a_backend_that_hashes_differently() {
    let registry = sampled_registry();
    registry.write(
        "flags/wip/on_flag.yml",
        flag("on_flag", "environments:\n  production: true\n"),
    );
    assert_eq!(registry.run(&["sync", "--env", "production"]).code, 0);
    // The sync record keeps the kind of backend it wrote with.
    assert_eq!(registry.state("production")["last_sync"]["backend"], "file");
    let plan = registry.run(&["plan", "--env", "production"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(!plan.stdout.contains("hash actors differently"), "{}", plan.stdout);

    // The same records, now read for a flagd file: the plan names the flag at a percentage,
    // in text, in the merge-request note and in JSON.
    move_production_to_flagd(&registry);
    let plan = registry.run(&["plan", "--env", "production"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(plan.stdout.contains(&format!("  {NOTE}\n")), "{}", plan.stdout);
    let markdown = registry.run(&["plan", "--env", "production", "--format", "markdown"]);
    // Escaped as Markdown, as every note of the merge-request comment is.
    assert!(
        markdown
            .stdout
            .contains("- production: the backend moves from \\`file\\` to \\`flagd\\`"),
        "{}",
        markdown.stdout
    );
    let json = registry.run(&["plan", "--env", "production", "--format", "json"]);
    let plans: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        plans[0]["rehashed"],
        serde_json::json!({ "from": "file", "to": "flagd", "flags": ["half_flag"] })
    );
    // The count the note points to.
    let eval = eval_json(
        &registry,
        &["half_flag", "--env", "production", "--compare-backend", "file"],
    );
    assert_eq!(eval["compared_backends"], serde_json::json!(["flagd", "file"]));
    assert!(eval["switched_on"].as_u64().unwrap() > 0 && eval["switched_off"].as_u64().unwrap() > 0);

    // After the sync into flagd, the record says `flagd`, and the note is gone.
    assert_eq!(registry.run(&["sync", "--env", "production"]).code, 0);
    assert_eq!(registry.state("production")["last_sync"]["backend"], "flagd");
    let plan = registry.run(&["plan", "--env", "production"]);
    assert!(!plan.stdout.contains("hash actors differently"), "{}", plan.stdout);
}

#[test]
fn a_sync_record_without_a_backend_kind_is_read_and_gives_no_note() {
    let registry = sampled_registry();
    assert_eq!(registry.run(&["sync", "--env", "production"]).code, 0);
    // A record written before flagops kept the kind.
    let mut state = registry.state("production");
    state["last_sync"].as_object_mut().unwrap().remove("backend").unwrap();
    registry.write(
        ".flagops/state/production.json",
        serde_json::to_string_pretty(&state).unwrap(),
    );
    move_production_to_flagd(&registry);
    let plan = registry.run(&["plan", "--env", "production"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(plan.stdout.contains("production: 1 change"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("hash actors differently"), "{}", plan.stdout);
}

#[test]
fn plan_base_says_when_a_change_moves_an_environment_to_another_hashing() {
    let registry = sampled_registry();
    registry.init_git();
    registry.commit("flags");
    move_production_to_flagd(&registry);
    let plan = registry.run(&["plan", "--base", "HEAD", "--env", "production"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(plan.stdout.contains(&format!("  {NOTE}\n")), "{}", plan.stdout);
    // Moving between two stores that both hash as Flipper does says nothing.
    let registry = sampled_registry();
    registry.init_git();
    registry.commit("flags");
    let config = registry.read("flagops.yml");
    registry.write(
        "flagops.yml",
        config.replacen(
            "    protected: true\n    backend: { kind: file }\n    actor_sample",
            "    protected: true\n    backend: { kind: file, path: .flagops/state/elsewhere.json }\n    actor_sample",
            1,
        ),
    );
    let plan = registry.run(&["plan", "--base", "HEAD", "--env", "production"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(!plan.stdout.contains("hash actors differently"), "{}", plan.stdout);
}

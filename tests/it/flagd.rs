//! The `flagd` backend: the example registry synced into a flagd flag-definition file, which
//! flagd's own evaluator (@openfeature/flagd-core, tests/flagd) loads and evaluates.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::{Registry, example_registry, repo_root};

pub(crate) const FILE: &str = "flagd/production.json";

/// `registry` with its `production` environment in `backend`.
pub(crate) fn with_production_backend(registry: &Registry, backend: &str) {
    let config = registry.read("flagops.yml");
    let production = config.find("  - name: production\n").unwrap();
    let at = production + config[production..].find("backend: { kind: file }").unwrap();
    registry.write(
        "flagops.yml",
        format!(
            "{}backend: {backend}{}",
            &config[..at],
            &config[at + "backend: { kind: file }".len()..]
        ),
    );
}

/// The example registry with `production` written to `flagd/production.json`.
pub(crate) fn flagd_registry() -> Registry {
    let registry = example_registry();
    with_production_backend(&registry, &format!("{{ kind: flagd, path: {FILE} }}"));
    registry
}

/// The example registry's two production flags at a percentage of time, moved to the same
/// percentage of actors, which flagd can express.
pub(crate) fn without_percentage_of_time(registry: &Registry) {
    for file in [
        "flags/ops/sample_gitaly_rpc_logging.yml",
        "flags/undefined/kas_agent_connection_pooling.yml",
    ] {
        let text = registry.read(file);
        registry.write(file, text.replace("percentage_of_time", "percentage_of_actors"));
    }
}

/// Runs tests/flagd/evaluate.mjs on `file` for `keys`, or skips (failing under CI).
pub(crate) fn run_evaluator(file: &Path, keys: &[&str]) -> Option<std::process::Output> {
    let folder = repo_root().join("tests/flagd");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !(node && folder.join("node_modules/@openfeature/flagd-core").is_dir()) {
        return crate::deps::missing("Node.js or @openfeature/flagd-core (tests/flagd)");
    }
    Some(
        Command::new("node")
            .arg(folder.join("evaluate.mjs"))
            .arg(file)
            .args(keys)
            .output()
            .unwrap(),
    )
}

/// flagd's answers for every flag of `file` and each of `keys`, after the file passed flagd's
/// schema; `None` when the evaluator is missing outside CI.
fn evaluate(file: &Path, keys: &[&str]) -> Option<Value> {
    let output = run_evaluator(file, keys)?;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

/// Asserts that `file` passes flagd's published schema, as flagd-core's validator compiles it.
fn assert_schema_valid(file: &Path) {
    evaluate(file, &[]);
}

#[test]
fn flagd_refuses_percentage_of_time_before_writing() {
    let registry = flagd_registry();
    let output = registry.run(&["sync", "--env", "production"]);
    assert_ne!(output.code, 0, "{output:?}");
    let text = format!("{}{}", output.stdout, output.stderr);
    assert!(text.contains("percentage of time"), "{text}");
    assert!(text.contains("sample_gitaly_rpc_logging"), "{text}");
    assert!(!registry.path().join(FILE).exists());
}

#[test]
fn validate_refuses_percentage_of_time_in_a_flagd_environment() {
    let registry = flagd_registry();
    let output = registry.run(&["validate"]);
    assert_eq!(output.code, 1, "{output:?}");
    let text = format!("{}{}", output.stdout, output.stderr);
    // Production is kept in flagd: both flags are refused there, at the key; staging is a file
    // environment, where the policy's override lets a percentage of time stand.
    for at in [
        "flags/ops/sample_gitaly_rpc_logging.yml:21:5",
        "flags/undefined/kas_agent_connection_pooling.yml:20:5",
    ] {
        assert!(text.contains(at), "{at} missing from:\n{text}");
    }
    assert!(!text.contains("sample_gitaly_rpc_logging.yml:19:"), "{text}");
    assert_eq!(text.matches("error[backend-gates]").count(), 2, "{text}");
    assert!(text.contains("environment `production` is kept in flagd"), "{text}");
    assert!(
        text.contains("help: use `percentage_of_actors` for this environment"),
        "{text}"
    );

    without_percentage_of_time(&registry);
    let output = registry.run(&["validate"]);
    assert_eq!(output.code, 0, "{output:?}");
}

#[test]
fn flagd_file_loads_in_flagd_and_agrees_with_eval() {
    let registry = flagd_registry();
    without_percentage_of_time(&registry);
    let output = registry.run(&["sync", "--env", "production", "--take-over"]);
    assert_eq!(output.code, 0, "{output:?}");
    let written: Value = serde_json::from_str(&registry.read(FILE)).unwrap();
    assert_eq!(written["$schema"], "https://flagd.dev/schema/v0/flags.json");
    assert_schema_valid(&registry.path().join(FILE));
    let state = registry.state("production");
    let stored = state["flags"].as_object().unwrap();
    assert_eq!(written["flags"].as_object().unwrap().len(), stored.len());

    // Every actor the registry names in production, and actors it does not.
    let mut keys: Vec<String> = vec![String::new(), "User:1".into(), "Project:1".into()];
    for (_, value) in stored {
        for actor in value["actors"].as_array().into_iter().flatten() {
            let (kind, id) = actor.as_str().unwrap().split_once(':').unwrap();
            let flipper_type = match kind {
                "user" => "User",
                "project" => "Project",
                "group" => "Group",
                "namespace" => "Namespaces::UserNamespace",
                "repository" => "Repository",
                "runner" => "Ci::Runner",
                other => panic!("actor kind `{other}` is not in the example's config"),
            };
            keys.push(format!("{flipper_type}:{id}"));
        }
    }
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let Some(results) = evaluate(&registry.path().join(FILE), &keys) else {
        return;
    };
    let mut compared = 0;
    for (flag, value) in stored {
        // A percentage of actors opens the same share in flagd, not the same actors; groups come
        // from the application's context; a rollout moves one step per sync, `eval` to its end.
        let rollout = walkdir::WalkDir::new(registry.path().join("flags"))
            .into_iter()
            .map(Result::unwrap)
            .find(|entry| entry.file_name().to_str() == Some(&format!("{flag}.yml")))
            .is_some_and(|entry| std::fs::read_to_string(entry.path()).unwrap().contains("\nrollout:"));
        if value.get("percentage_of_actors").is_some() || value.get("groups").is_some() || rollout {
            continue;
        }
        for key in keys.iter().filter(|key| !key.is_empty()) {
            let eval = registry.run(&["eval", flag, "--env", "production", "--actor", key, "--format", "json"]);
            assert_eq!(eval.code, 0, "{eval:?}");
            let report: Value = serde_json::from_str(&eval.stdout).unwrap();
            let expected = report["results"][0]["outcome"] == "on";
            assert_eq!(results[flag][key], expected, "{flag} for {key}");
            compared += 1;
        }
    }
    assert!(compared > 20, "only {compared} evaluations compared");
}

#[test]
fn flagd_file_is_replaced_by_rename_and_a_no_op_sync_writes_nothing() {
    let registry = flagd_registry();
    without_percentage_of_time(&registry);
    let path = registry.path().join(FILE);
    assert_eq!(registry.run(&["sync", "--env", "production", "--take-over"]).code, 0);
    let first = std::fs::metadata(&path).unwrap();
    let before = registry.read(FILE);
    assert_schema_valid(&path);

    let output = registry.run(&["sync", "--env", "production"]);
    assert_eq!(output.code, 0, "{output:?}");
    let again = std::fs::metadata(&path).unwrap();
    assert_eq!(
        (again.ino(), again.mtime_nsec()),
        (first.ino(), first.mtime_nsec()),
        "a no-op sync rewrote the file"
    );

    // A change replaces the file by a rename: a new inode, no temporary file left beside it.
    let file = "flags/undefined/kas_agent_connection_pooling.yml";
    let text = registry.read(file);
    registry.write(
        file,
        text.replace("percentage_of_actors: 10", "percentage_of_actors: 20"),
    );
    let output = registry.run(&["sync", "--env", "production"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_ne!(std::fs::metadata(&path).unwrap().ino(), first.ino());
    let after = registry.read(FILE);
    assert_ne!(after, before);
    assert_schema_valid(&path);
    let written: Value = serde_json::from_str(&after).unwrap();
    assert_eq!(
        written["flags"]["kas_agent_connection_pooling"]["targeting"],
        serde_json::json!({ "fractional": [["on", 20000], ["off", 80000]] })
    );
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["production.json"]);

    // A hand edit of the flagd file is drift: the next sync writes the flag again.
    registry.write(FILE, before.replace("\"fractional\"", "\"fractional_\""));
    let plan = registry.run(&["plan", "--env", "production"]);
    assert!(plan.stdout.contains("kas_agent_connection_pooling"), "{plan:?}");
    assert_eq!(registry.run(&["sync", "--env", "production"]).code, 0);
    assert_eq!(registry.read(FILE), after);
}

#[test]
fn flagd_folder_that_cannot_be_written_changes_nothing_and_a_rerun_converges() {
    let registry = flagd_registry();
    without_percentage_of_time(&registry);
    // `flagd` is a regular file, so no file can be created under it, even by root, whom
    // permissions do not stop.
    registry.write("flagd", "not a folder\n");
    let output = registry.run(&["sync", "--env", "production", "--take-over"]);
    assert_eq!(output.code, 2, "{output:?}");
    let text = format!("{}{}", output.stdout, output.stderr);
    assert!(
        text.contains("the flagd file `./flagd/production.json` of environment `production` cannot be written"),
        "{text}"
    );
    assert!(text.contains("Not a directory"), "{text}");
    assert!(
        text.contains("help: make `./flagd` a folder flagops can write in"),
        "{text}"
    );
    // Nothing applied, recorded or audited; the file in the way is as it was.
    assert!(text.contains("FAILED before any change"), "{text}");
    assert!(registry.audit("production").is_empty());
    assert!(!registry.path().join(".flagops/state/production.json").exists());
    assert_eq!(registry.read("flagd"), "not a folder\n");

    // Once the folder can be written, a rerun applies everything and the next plan is empty.
    registry.remove("flagd");
    let output = registry.run(&["sync", "--env", "production", "--take-over"]);
    assert_eq!(output.code, 0, "{output:?}");
    let written: Value = serde_json::from_str(&registry.read(FILE)).unwrap();
    assert_schema_valid(&registry.path().join(FILE));
    let stored = registry.state("production");
    assert_eq!(
        written["flags"].as_object().unwrap().len(),
        stored["flags"].as_object().unwrap().len()
    );
    assert!(!registry.audit("production").is_empty());
    let plan = registry.run(&["plan", "--env", "production", "--format", "json"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    let plans: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(plans[0]["changes"], serde_json::json!([]), "{plans}");
}

#[test]
fn flagd_schema_check_refuses_a_file_flagd_would_not_accept() {
    // The check every test above makes of a written file can fail: a file with a targeting
    // operator the schema does not know, and one with a state flagd does not know, are refused.
    let registry = flagd_registry();
    without_percentage_of_time(&registry);
    assert_eq!(registry.run(&["sync", "--env", "production", "--take-over"]).code, 0);
    let written = registry.read(FILE);
    assert!(written.contains("\"fractional\""), "{written}");
    for (from, to, finding) in [
        ("\"fractional\"", "\"fractional_\"", "additionalProperty"),
        ("\"ENABLED\"", "\"ON\"", "allowedValues"),
    ] {
        registry.write("broken.json", written.replacen(from, to, 1));
        let Some(output) = run_evaluator(&registry.path().join("broken.json"), &[]) else {
            return;
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("fails flagd's schema"), "{stderr}");
        assert!(stderr.contains(finding), "{stderr}");
    }
}

#[test]
fn flagd_percentages_open_the_share_flagops_meant() {
    // For every flag at a percentage of actors, flagd's `fractional` over N targeting keys that no
    // actor or group gate matches opens a share within 4.5 standard deviations of the percentage.
    const N: u64 = 20_000;
    let registry = flagd_registry();
    without_percentage_of_time(&registry);
    assert_eq!(registry.run(&["sync", "--env", "production", "--take-over"]).code, 0);
    let path = registry.path().join(FILE);
    let Some(output) = run_evaluator(&path, &["--share", &N.to_string(), "Sample:"]) else {
        return;
    };
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let shares: Value = serde_json::from_slice(&output.stdout).unwrap();
    let state = registry.state("production");
    let mut checked = 0;
    for (flag, stored) in state["flags"].as_object().unwrap() {
        let on = shares[flag].as_u64().unwrap();
        let Some(percentage) = stored["percentage_of_actors"].as_f64() else {
            // No percentage: no sample key is an actor or in a group, so none is on unless the
            // flag is fully on.
            assert!(on == 0 || on == N, "{flag}: {on} of {N}");
            continue;
        };
        let p = percentage / 100.0;
        let expected = N as f64 * p;
        let sigma = (N as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (on as f64 - expected).abs() <= 4.5 * sigma,
            "{flag} at {percentage}%: {on} of {N} on, {expected} expected, sigma {sigma:.1}"
        );
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} percentage flags in production");
}

#[test]
fn flagd_file_that_cannot_be_written_at_the_end_records_nothing_and_a_rerun_converges() {
    // A file name of 240 characters can be read (it is absent) but not written: the temporary
    // file beside it, `.<name>.flagops-XXXXXX.tmp`, is longer than a file name may be. So the
    // sync fails when it writes its changes, after every change was applied, even as root.
    let registry = flagd_registry();
    without_percentage_of_time(&registry);
    let long = format!("flagd/{}.json", "f".repeat(235));
    let config = registry.read("flagops.yml");
    registry.write("flagops.yml", config.replace(FILE, &long));
    let output = registry.run(&["sync", "--env", "production", "--take-over"]);
    assert_eq!(output.code, 2, "{output:?}");
    let text = format!("{}{}", output.stdout, output.stderr);
    assert!(
        text.contains(&format!(
            "the flagd file `./{long}` of environment `production` cannot be written"
        )),
        "{text}"
    );
    assert!(text.contains("0 changes applied"), "{text}");
    // Nothing written, recorded or audited: the plan is the same as before.
    assert!(registry.audit("production").is_empty());
    let state_doc = registry.path().join(".flagops/state/production.json");
    assert!(
        !state_doc.exists()
            || registry.state("production")["flags"]
                .as_object()
                .is_none_or(|f| f.is_empty())
    );
    assert!(!registry.path().join(&long).exists());

    // With a file name that fits, a rerun writes every change once and the next plan is empty.
    registry.write("flagops.yml", registry.read("flagops.yml").replace(&long, FILE));
    let output = registry.run(&["sync", "--env", "production", "--take-over"]);
    assert_eq!(output.code, 0, "{output:?}");
    let written: Value = serde_json::from_str(&registry.read(FILE)).unwrap();
    let stored = registry.state("production");
    assert_eq!(
        written["flags"].as_object().unwrap().len(),
        stored["flags"].as_object().unwrap().len()
    );
    assert_eq!(
        registry.audit("production").len(),
        stored["flags"].as_object().unwrap().len()
    );
    let plan = registry.run(&["plan", "--env", "production", "--format", "json"]);
    let plans: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(plans[0]["changes"], serde_json::json!([]), "{plans}");
}

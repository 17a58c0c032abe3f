//! Untrusted text: YAML tags and unclosed constructs, control characters in values and in git,
//! credentials in URLs, numbers that could overflow, and long `requires` chains.

use serde_json::Value;

use crate::fake_gitlab::{FakeGitlab, Fault};
use crate::harness::{Registry, flag};

/// Validates `files` in a fresh registry and returns every finding as JSON, with the exit code.
#[track_caller]
fn validate(files: &[(&str, &str)]) -> (i32, Vec<Value>) {
    let registry = Registry::new();
    for (path, text) in files {
        registry.write(path, text);
    }
    let output = registry.run(&["validate", "--format", "json"]);
    let findings: Vec<Value> = serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"));
    (output.code, findings)
}

/// The check id, line and column of each finding.
fn positions(findings: &[Value]) -> Vec<(String, u64, u64)> {
    findings
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_string(),
                f["span"]["line"].as_u64().unwrap(),
                f["span"]["column"].as_u64().unwrap(),
            )
        })
        .collect()
}

// Every tag is refused, on a mapping, a sequence or a scalar, including the core schema's
// `!!set`, `!!omap` and `!!python/...`, which saphyr's loader would silently drop.
#[test]
fn yaml_tags_are_refused_on_every_node_kind() {
    for (extra, line, column, tag) in [
        ("environments: !!set {production: true}\n", 8, 15, "!!set"),
        (
            "environments: !!python/object:os.system {staging: true}\n",
            8,
            15,
            "!!python/object:os.system",
        ),
        ("environments: !!omap [staging: true]\n", 8, 15, "!!omap"),
        ("owners: !!seq\n  - ada\n", 8, 9, "!!seq"),
        ("owners: [!!str ada]\n", 8, 10, "!!str"),
        ("owners: [!custom ada]\n", 8, 10, "!custom"),
    ] {
        let (code, findings) = validate(&[("flags/wip/a.yml", &flag("a", extra))]);
        assert_eq!(code, 1, "{extra}: {findings:?}");
        assert_eq!(
            positions(&findings),
            [("unsupported-yaml".to_string(), line, column)],
            "{extra}"
        );
        let message = findings[0]["message"].as_str().unwrap();
        assert!(message.contains(&format!("`{tag}`")), "{message}");
    }
    let (code, findings) = validate(&[("flags/wip/a.yml", &format!("!!python/object:x\n{}", flag("a", "")))]);
    assert_eq!(code, 1);
    assert_eq!(positions(&findings), [("unsupported-yaml".to_string(), 1, 1)]);
}

// An unclosed `[` or `{` is noticed lines later; the finding also says where it opened.
#[test]
fn yaml_unclosed_collection_names_where_it_opened() {
    for (extra, opener, line) in [
        (
            "owners: [ada, grace\nrollout_issue_url: https://example.com/1\n",
            '[',
            9,
        ),
        (
            "environments: {staging: [true]\nrollout_issue_url: https://example.com/1\n",
            '{',
            9,
        ),
    ] {
        let (code, findings) = validate(&[("flags/wip/a.yml", &flag("a", extra))]);
        assert_eq!(code, 1);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0]["check"], "yaml-syntax");
        assert_eq!(findings[0]["span"]["line"], line, "{findings:?}");
        let help = findings[0]["help"].as_str().unwrap();
        assert!(help.contains(&format!("`{opener}` opened at line 8, column")), "{help}");
    }
    // An unclosed quote is reported at the quote itself.
    let (_, findings) = validate(&[("flags/wip/a.yml", &flag("a", "owners: [\"ada, grace]\nlong: x\n"))]);
    assert_eq!(positions(&findings), [("yaml-syntax".to_string(), 8, 10)]);
    assert!(findings[0]["help"].as_str().unwrap().contains("quote"));
}

/// Whether `text` holds a control character other than line feeds and tabs.
fn has_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
}

/// Parses `xml` to the end, panicking on any error, and checks that it holds only characters
/// XML 1.0 allows (quick-xml does not check characters itself).
#[track_caller]
fn assert_well_formed_xml(xml: &str) {
    let allowed =
        |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
    assert!(xml.chars().all(allowed), "a character XML 1.0 forbids:\n{xml}");
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut depth = 0_i32;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(quick_xml::events::Event::Text(text)) => {
                text.decode().unwrap_or_else(|e| panic!("{e}:\n{xml}"));
            }
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not well-formed: {e}:\n{xml}"),
        }
    }
    assert_eq!(depth, 0, "unbalanced:\n{xml}");
}

// Control characters are refused in every key and string of flag files and `flagops.yml`, at
// the value; descriptions and notes may hold line breaks and tabs, nothing else.
#[test]
fn control_characters_are_refused_in_values() {
    let hostile = flag(
        "a",
        "owners: [\"@ada\\u0085\"]\nenvironments:\n  staging:\n    actors:\n      project: [\"x\\n**No production changes**\"]\nrollout:\n  - after: 1h\n    note: \"two\\nlines\\tfine\"\n    staging: true\n  - after: 1h\n    note: \"bell\\a\"\n    staging: false\n",
    )
    .replace("description: A flag for tests.", "description: \"Title\\e]0;pwned\\a\"");
    let (code, findings) = validate(&[("flags/wip/a.yml", &hostile)]);
    assert_eq!(code, 1);
    assert_eq!(
        positions(&findings),
        [
            ("control-character".to_string(), 2, 14),
            ("control-character".to_string(), 8, 10),
            ("invalid-format".to_string(), 8, 10),
            ("control-character".to_string(), 12, 17),
            ("control-character".to_string(), 18, 11),
        ]
    );
    assert!(findings[0]["message"].as_str().unwrap().contains("U+001B"));
    assert!(findings[0]["help"].as_str().unwrap().contains("line breaks"));
    // Line breaks and tabs are fine in a description.
    let multi_line = flag("a", "").replace(
        "description: A flag for tests.",
        "description: \"two\\nlines\\tand a tab\"",
    );
    assert_eq!(validate(&[("flags/wip/a.yml", &multi_line)]), (0, vec![]));

    // The config goes through the same gate.
    let registry = Registry::new();
    let config = registry
        .read("flagops.yml")
        .replace("description: gitlab.com.", "description: \"gitlab.com.\\e[2J\"");
    registry.write("flagops.yml", config);
    let output = registry.run(&["validate", "--format", "json"]);
    let findings: Vec<Value> = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(output.code, 1);
    assert_eq!(findings[0]["check"], "control-character");
    assert_eq!(findings[0]["path"], "flagops.yml");
}

// A diagnostic quoting a hostile key gives a JUnit report that is well-formed XML, and the
// human report prints no control character.
#[test]
fn junit_report_is_well_formed_with_control_characters() {
    let registry = Registry::new();
    registry.write("flags/wip/a.yml", flag("a", "\"bad\\u0001\\e[2Jkey\": 1\n"));
    let junit = registry.run(&["validate", "--format", "junit"]);
    assert_eq!(junit.code, 1);
    assert!(junit.stdout.contains("unknown key"), "{}", junit.stdout);
    assert_well_formed_xml(&junit.stdout);
    let written = registry.run(&["validate", "--format", "junit", "--output", "report.xml"]);
    assert_eq!(written.code, 1, "{written:?}");
    assert_well_formed_xml(&registry.read("report.xml"));
    let human = registry.run(&["validate"]);
    assert!(!has_control(&human.stdout), "{}", human.stdout);
}

// Values a backend holds were never validated: the Markdown plan note escapes every one, so a
// hostile actor or orphan cannot add a line, a row, bold text or an HTML comment; the text plan
// keeps each change on one line.
#[test]
fn plan_note_escapes_values_from_the_backend() {
    let registry = Registry::new();
    registry.write("flags/wip/a.yml", flag("a", "environments:\n  production: true\n"));
    let hostile_actor = "project:x\n\n**No production changes**\n\n<!--";
    let hostile_orphan = "b`|\n| production | `c` | delete | x | y |\n<!--";
    let document = serde_json::json!({
        "format": 1,
        "environment": "production",
        // Revision 0: a document written by hand, with no audit log behind it.
        "revision": 0,
        "flags": {
            "a": { "actors": [hostile_actor] },
            hostile_orphan: true,
        },
    });
    registry.write(".flagops/state/production.json", document.to_string());
    let note = registry.run(&["plan", "--env", "production", "--format", "markdown"]);
    assert_eq!(note.code, 0, "{note:?}");
    let text = &note.stdout;
    assert!(!text.contains("<!--"), "{text}");
    assert!(!text.lines().any(|line| line.starts_with("**")), "{text}");
    let rows: Vec<&str> = text.lines().filter(|line| line.starts_with('|')).collect();
    // The header, its rule, the change to `a` and the kept orphan.
    assert_eq!(rows.len(), 4, "{text}");
    for row in &rows {
        let cells = row.replace("\\|", "").matches('|').count();
        assert_eq!(cells, 6, "a value ended a cell: {row}");
    }
    assert!(!has_control(text));
    let human = registry.run(&["plan", "--env", "production"]);
    assert!(!has_control(&human.stdout));
    // The change, the kept orphan, the first-sync warning and the summary, one line each.
    assert_eq!(human.stdout.lines().count(), 5, "{}", human.stdout);
}

// Commit messages and author names come from git unchecked: `history` prints them escaped, and
// the Atom feed and the pages stay well-formed.
#[test]
fn history_and_feed_escape_commit_text() {
    let registry = Registry::new();
    registry.write("flags/wip/a.yml", flag("a", ""));
    registry.init_git();
    registry.write("flags/wip/a.yml", flag("a", "environments:\n  staging: true\n"));
    registry.git(&["add", "-A"]);
    registry.git(&[
        "commit",
        "-q",
        "--author",
        "Eve\u{1b}]0;pwned\u{7} <eve@example.com>",
        "-m",
        "Enable a\u{1b}[2J\u{1b}[31m everywhere\u{8}\u{8}",
    ]);
    let history = registry.run(&["history", "a"]);
    assert_eq!(history.code, 0, "{history:?}");
    assert!(!has_control(&history.stdout), "{:?}", history.stdout);
    assert!(history.stdout.contains("Eve\\u001b]0;pwned"), "{}", history.stdout);
    let site = registry.run(&["site", "--out", "public"]);
    assert_eq!(site.code, 0, "{site:?}");
    assert_well_formed_xml(&registry.read("public/feed.xml"));
    let page = registry.read("public/flags/a.html");
    assert!(!has_control(&page));
}

// A user name and password in a URL are refused at the value, wherever the URL is, and never
// printed, not even in the excerpt of the finding.
#[test]
fn url_credentials_are_refused_and_never_printed() {
    let production = FakeGitlab::start();
    let with_credentials = production.url().replacen("http://", "http://root:hunter2@", 1);
    let registry = Registry::new();
    let config = registry.read("flagops.yml");
    let start = config.find("environments:").unwrap();
    let end = config.find("# GitLab's flag types").unwrap();
    let block = format!(
        "environments:\n  - name: production\n    url: https://deploy:hunter2@gitlab.example.com\n    backend:\n      kind: gitlab\n      url: \"{with_credentials}\"\n      token_env: FLAGOPS_TEST_TOKEN\n\n"
    );
    registry.write("flagops.yml", format!("{}{block}{}", &config[..start], &config[end..]));
    registry.write(
        "flags/wip/a.yml",
        flag("a", "introduced_by_url: https://x:hunter2@gitlab.com/mr/1\n").replace(
            "introduced_by_url: https://gitlab.com/gitlab-org/gitlab/-/merge_requests/1\n",
            "",
        ),
    );
    let line = config[..start].lines().count() as u64 + 3;
    let output = registry.run(&["validate", "--format", "json"]);
    assert_eq!(output.code, 1);
    let findings: Vec<Value> = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(
        positions(&findings),
        [
            ("url-credentials".to_string(), line, 10),
            ("url-credentials".to_string(), line + 3, 12)
        ]
    );
    assert!(findings[0]["help"].as_str().unwrap().contains("token_env"));
    for args in [
        &["validate"][..],
        &["validate", "--format", "json"],
        &["plan"],
        &["sync"],
        &["site"],
    ] {
        let output = registry.run_with_env(args, &[("FLAGOPS_TEST_TOKEN", "secret")]);
        assert_ne!(output.code, 0);
        assert!(
            !output.stdout.contains("hunter2") && !output.stderr.contains("hunter2"),
            "{args:?}: {output:?}"
        );
    }
    // The flag file's URL is refused too, once the config is fixed.
    registry.write("flagops.yml", config.clone());
    let output = registry.run(&["validate", "--format", "json"]);
    let findings: Vec<Value> = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(positions(&findings), [("url-credentials".to_string(), 7, 20)]);
    // A token in a URL's query is a credential too, refused where it is written and never shown.
    registry.write(
        "flags/wip/a.yml",
        flag(
            "a",
            "introduced_by_url: https://gitlab.com/mr/1?private_token=glpat-hunter3\n",
        )
        .replace(
            "introduced_by_url: https://gitlab.com/gitlab-org/gitlab/-/merge_requests/1\n",
            "",
        ),
    );
    let output = registry.run(&["validate"]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(output.stdout.contains("url-credentials"), "{output:?}");
    assert!(
        !output.stdout.contains("hunter3") && !output.stderr.contains("hunter3"),
        "{output:?}"
    );

    // Past the check (a program using the library), the backend's messages and the site still
    // show the URL without its credentials.
    production.fail_next("GET /api/v4/features", Fault::Broken);
    let kinds = std::collections::BTreeMap::new();
    let mut backend = flagops::backends::gitlab::GitlabBackend::open(flagops::backends::gitlab::Settings {
        environment: "production",
        url: &with_credentials,
        token: flagops::backends::gitlab::client::Token::new("secret".into()),
        token_env: "FLAGOPS_TEST_TOKEN",
        timeout: std::time::Duration::from_secs(5),
        actor_kinds: &kinds,
        cache_path: registry.path().join("cache.json"),
        state_dir: registry.path().join("state"),
        writable: false,
    });
    let error = flagops::backends::Backend::fetch(&mut backend).unwrap_err().to_string();
    assert!(error.contains("GET http://***@127.0.0.1"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
    let workspace = flagops::load::Workspace::at(&registry.path().join("flagops.yml")).unwrap();
    registry.write("flags/wip/a.yml", flag("a", ""));
    let mut model = flagops::load::load(&workspace, &Default::default())
        .unwrap()
        .registry
        .unwrap();
    model.config.environments[0].url = Some("https://deploy:hunter2@gitlab.example.com".into());
    let out = registry.path().join("public");
    flagops::site::build(&model, &flagops::site::SiteInput::default(), &out).unwrap();
    for entry in walkdir::WalkDir::new(&out) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let text = String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()).into_owned();
            assert!(!text.contains("hunter2"), "{}", entry.path().display());
        }
    }
    let page = registry.read(&format!(
        "public/environments/{}.html",
        model.config.environments[0].name
    ));
    assert!(page.contains("***@gitlab.example.com"), "{page}");
}

/// Whether a run ended in a panic rather than an exit code of its own.
fn panicked(output: &crate::harness::Output) -> bool {
    output.code == 101 || output.stderr.contains("panicked")
}

// `max_age_months: 1000000` used to panic `stale`, `site` and `deploy` (after the sync): the
// schema bounds it, and at the bound every command computes.
#[test]
fn huge_max_age_is_refused_not_a_panic() {
    let registry = Registry::new();
    registry.write("flags/wip/a.yml", flag("a", "environments:\n  dev: true\n"));
    registry.init_git();
    let config = registry.read("flagops.yml");
    registry.write(
        "flagops.yml",
        config.replace("max_age_months: 4\n", "max_age_months: 1000000\n"),
    );
    for args in [&["stale"][..], &["site"], &["deploy"]] {
        let output = registry.run(args);
        assert!(!panicked(&output), "{args:?}: {output:?}");
        assert_eq!(output.code, 1, "{args:?}: {output:?}");
        assert!(
            output.stderr.contains("out-of-range") || output.stdout.contains("out-of-range"),
            "{output:?}"
        );
    }
    assert!(
        !registry.path().join(".flagops/state/dev.json").exists(),
        "deploy synced"
    );
    registry.write(
        "flagops.yml",
        config.replace("max_age_months: 4\n", "max_age_months: 1200\n"),
    );
    registry.commit("the longest age");
    for args in [&["stale"][..], &["site"], &["deploy"]] {
        let output = registry.run(args);
        assert_eq!(output.code, 0, "{args:?}: {output:?}");
    }
}

// A huge backend `timeout_seconds` used to panic `plan`: the schema bounds it at 3600.
#[test]
fn huge_timeout_is_refused_not_a_panic() {
    let production = FakeGitlab::start();
    let registry = Registry::new();
    let config = registry.read("flagops.yml");
    let start = config.find("environments:").unwrap();
    let end = config.find("# GitLab's flag types").unwrap();
    let with_timeout = |seconds: &str| {
        let block = format!(
            "environments:\n  - name: production\n    backend: {{ kind: gitlab, url: \"{}\", token_env: FLAGOPS_TEST_TOKEN, timeout_seconds: {seconds} }}\n\n",
            production.url()
        );
        format!("{}{block}{}", &config[..start], &config[end..])
    };
    registry.write("flags/wip/a.yml", flag("a", "environments:\n  production: true\n"));
    let variables = [
        ("FLAGOPS_TEST_TOKEN", crate::fake_gitlab::TOKEN),
        ("NO_PROXY", "127.0.0.1"),
    ];
    for seconds in ["9223372036854775807", "18446744073709551615", "3601"] {
        registry.write("flagops.yml", with_timeout(seconds));
        let output = registry.run_with_env(&["plan"], &variables);
        assert!(!panicked(&output), "{seconds}: {output:?}");
        assert_eq!(output.code, 1, "{seconds}: {output:?}");
    }
    registry.write("flagops.yml", with_timeout("3600"));
    let output = registry.run_with_env(&["plan"], &variables);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("+ a: (absent) → true"), "{output:?}");
}

// An `eval --actor` of 65,536 characters used to panic the printer (a format width is a
// `u16`): it is evaluated and printed like any other.
#[test]
fn huge_actor_evaluates_not_a_panic() {
    let registry = Registry::new();
    registry.write(
        "flags/wip/a.yml",
        flag("a", "environments:\n  dev:\n    percentage_of_actors: 50\n"),
    );
    let actor = format!("Project:{}", "9".repeat(65_536));
    let output = registry.run(&["eval", "a", "--env", "dev", "--actor", &actor, "--actor", "Project:1"]);
    assert!(!panicked(&output), "{}", output.stderr);
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(output.stdout.contains(&actor));
    assert!(
        output
            .stdout
            .lines()
            .any(|line| line.trim_start().starts_with("Project:1 ")),
        "{}",
        &output.stdout[..200]
    );
}

// Any text as a whole registry (a config and a flag file, as `plan --base` reads them from git)
// is loaded or refused, never a panic.
#[test]
fn load_sources_never_panics() {
    use proptest::prelude::*;
    let config = std::fs::read_to_string(crate::harness::repo_root().join("flagops.yml")).unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(256));
    let strategy = (
        "\\PC{0,200}|[-:{}\\[\\],\"'!&*#|> \n\ta-z0-9_.@/]{0,300}",
        prop::sample::select(vec!["", "name: a\n", "environments:\n  dev:\n"]),
    );
    runner
        .run(&strategy, |(text, prefix)| {
            let files = vec![flagops::source::SourceFile {
                path: "flags/wip/a.yml".into(),
                text: format!("{prefix}{text}"),
            }];
            let config = flagops::source::SourceFile {
                path: "flagops.yml".into(),
                text: config.clone(),
            };
            let _ = flagops::load::load_sources(config, files, std::path::Path::new("flags"), &Default::default());
            Ok(())
        })
        .unwrap();
}

// The cycle check is linear now, and still finds every kind of cycle: two flags, three, and
// one through 2,000 flags, each once, at the flag whose name sorts first.
#[test]
fn requires_cycles_are_found_short_and_long() {
    let mut files: Vec<(String, String)> = vec![
        ("flags/wip/a.yml".into(), flag("a", "requires: [b]\n")),
        ("flags/wip/b.yml".into(), flag("b", "requires: [a]\n")),
        ("flags/wip/c.yml".into(), flag("c", "requires: [e, d]\n")),
        ("flags/wip/d.yml".into(), flag("d", "requires: [e]\n")),
        ("flags/wip/e.yml".into(), flag("e", "requires: [c]\n")),
    ];
    let long = 2_000;
    for i in 0..long {
        let next = (i + 1) % long;
        files.push((
            format!("flags/wip/long_{i:05}.yml"),
            flag(&format!("long_{i:05}"), &format!("requires: [long_{next:05}]\n")),
        ));
    }
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(path, text)| (path.as_str(), text.as_str()))
        .collect();
    let (code, findings) = validate(&borrowed);
    assert_eq!(code, 1);
    let cycles: Vec<(&str, &str, u64)> = findings
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap(),
                f["message"].as_str().unwrap(),
                f["span"]["column"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(cycles.len(), 4, "{cycles:#?}");
    assert_eq!(
        cycles[0],
        ("flags/wip/a.yml", "`requires` forms a cycle: a → b → a", 12)
    );
    assert_eq!(
        cycles[1],
        ("flags/wip/c.yml", "`requires` forms a cycle: c → e → c", 12)
    );
    assert_eq!(
        cycles[2],
        ("flags/wip/c.yml", "`requires` forms a cycle: c → d → e → c", 15)
    );
    assert_eq!(cycles[3].0, "flags/wip/long_00000.yml");
    assert_eq!(cycles[3].1.matches(" → ").count(), long, "{}", cycles[3].1);
    assert!(findings.iter().all(|f| f["check"] == "requires-cycle"));
}

// The plan puts what is required first, however deep the chain: a chain of 300 flags, written
// in reverse name order, is switched on from its root up, and off from its top down.
#[test]
fn plan_orders_a_requires_chain() {
    let registry = Registry::new();
    let count = 300;
    let name = |i: usize| format!("z_{:05}", count - i);
    for i in 0..count {
        let requires = if i > 0 {
            format!("requires: [{}]\n", name(i - 1))
        } else {
            String::new()
        };
        registry.write(
            &format!("flags/wip/{}.yml", name(i)),
            flag(&name(i), &format!("{requires}environments:\n  dev: true\n")),
        );
    }
    let output = registry.run(&["plan", "--env", "dev", "--format", "json"]);
    assert_eq!(output.code, 0, "{output:?}");
    let plans: Value = serde_json::from_str(&output.stdout).unwrap();
    let order: Vec<&str> = plans[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["flag"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..count).map(name).collect();
    assert_eq!(order, expected);
    assert_eq!(registry.run(&["sync", "--env", "dev"]).code, 0);
    for i in 0..count {
        let text = registry.read(&format!("flags/wip/{}.yml", name(i)));
        registry.write(
            &format!("flags/wip/{}.yml", name(i)),
            text.replace("dev: true", "dev: false"),
        );
    }
    let output = registry.run(&["plan", "--env", "dev", "--format", "json"]);
    let plans: Value = serde_json::from_str(&output.stdout).unwrap();
    let order: Vec<&str> = plans[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["flag"].as_str().unwrap())
        .collect();
    let reversed: Vec<String> = (0..count).rev().map(name).collect();
    assert_eq!(order, reversed);
}

//! Machine reports of `flagops validate`: GitLab Code Quality JSON and JUnit XML.

use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::Value;

use crate::harness::{Registry, flag};

fn broken_registry() -> Registry {
    let registry = Registry::new();
    registry.write("flags/wip/a.yml", flag("a", "environments:\n  prod: true\n"));
    registry.write("flags/wip/b.yml", flag("c", "feature_issue_url: ftp://x\n"));
    registry.write("flags/wip/ok.yml", flag("ok", ""));
    registry
}

// The Code Quality report parses and names the file and line of every finding.
#[test]
fn report_codequality_names_file_and_line() {
    let registry = broken_registry();
    let output = registry.run(&["validate", "--format", "codequality"]);
    assert_eq!(output.code, 1);
    let issues: Vec<Value> = serde_json::from_str(&output.stdout).unwrap();
    let located: Vec<(String, u64, String)> = issues
        .iter()
        .map(|issue| {
            (
                issue["location"]["path"].as_str().unwrap().to_string(),
                issue["location"]["lines"]["begin"].as_u64().unwrap(),
                issue["check_name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        located,
        [
            ("flags/wip/a.yml".to_string(), 9, "unknown-environment".to_string()),
            ("flags/wip/b.yml".to_string(), 1, "name-mismatch".to_string()),
            ("flags/wip/b.yml".to_string(), 8, "url-scheme".to_string()),
        ]
    );
    for issue in &issues {
        assert_eq!(issue["severity"], "major");
        assert_eq!(issue["fingerprint"].as_str().unwrap().len(), 32);
        assert!(issue["description"].as_str().unwrap().starts_with('['));
    }
    let fingerprints: std::collections::BTreeSet<&str> =
        issues.iter().map(|i| i["fingerprint"].as_str().unwrap()).collect();
    assert_eq!(fingerprints.len(), issues.len());
}

// The JUnit report parses, fails one test case per finding and passes clean files.
#[test]
fn report_junit_names_file_and_line() {
    let registry = broken_registry();
    let output = registry.run(&["validate", "--format", "junit", "--output", "junit.xml"]);
    assert_eq!(output.code, 1);
    assert!(
        output.stdout.contains("error[unknown-environment]"),
        "human output stays on stdout"
    );
    let xml = registry.read("junit.xml");
    let mut reader = Reader::from_str(&xml);
    let mut cases = Vec::new();
    let mut failures = Vec::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(element) | Event::Empty(element) => {
                let attribute = |name: &str| {
                    element
                        .try_get_attribute(name)
                        .unwrap()
                        .map(|a| a.unescape_value().unwrap().into_owned())
                };
                match element.name().as_ref() {
                    b"testcase" => cases.push((attribute("file").unwrap(), attribute("line"))),
                    b"failure" => failures.push(attribute("type").unwrap()),
                    b"testsuites" => assert_eq!(attribute("failures").as_deref(), Some("3")),
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(
        cases,
        [
            ("flags/wip/a.yml".to_string(), Some("9".to_string())),
            ("flags/wip/b.yml".to_string(), Some("1".to_string())),
            ("flags/wip/b.yml".to_string(), Some("8".to_string())),
            ("flagops.yml".to_string(), None),
            ("flags/wip/ok.yml".to_string(), None),
        ]
    );
    assert_eq!(failures, ["unknown-environment", "name-mismatch", "url-scheme"]);
}

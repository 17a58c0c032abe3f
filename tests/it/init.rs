//! `flagops init`: a new registry repository that validates, deploys and runs its own pipeline,
//! which downloads a release from a package registry and checks its SHA-256; refusals to
//! overwrite; and `flagops --version`.

use std::path::Path;
use std::process::Command;

use crate::harness::{Output, Registry, repo_root};
use crate::packages::{PackageRegistry, sha256_hex};
use crate::pipeline::{Project, expect, outcomes, tools};

/// The version the generated pipeline pins: the binary's own.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Every file `init` writes.
const FILES: [&str; 10] = [
    "flagops.yml",
    ".gitlab-ci.yml",
    "README.md",
    "schema/flag.schema.json",
    "schema/config.schema.json",
    "schema/test.schema.json",
    "flags/.gitkeep",
    "flag-tests/.gitkeep",
    ".gitignore",
    "scripts/ci/post-plan-note.sh",
];

/// Every file under `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|entry| entry.unwrap())
        .filter(|entry| !entry.file_type().is_dir())
        .map(|entry| entry.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    files.sort();
    files
}

/// A flag of type `wip` in the new registry, written by `flagops new`.
fn new_flag(registry: &Registry, name: &str) -> Output {
    registry.run(&[
        "new",
        name,
        "--type",
        "wip",
        "--group",
        "group::flags",
        "--description",
        "A first flag.",
        "--milestone",
        "1.0",
        "--introduced-by",
        "https://gitlab.example.com/acme/app/-/merge_requests/1",
    ])
}

// `init` in an empty folder writes a registry that validates and deploys; `new` then writes a
// flag whose editor hint finds the schema `init` wrote, and the copies are the binary's schemas.
#[test]
fn init_in_an_empty_folder_validates_and_deploys() {
    let registry = Registry::empty();
    let output = registry.run(&[
        "init",
        "--env",
        "dev",
        "--env",
        "production=https://app.example.com",
        "--protected",
        "production",
    ]);
    assert_eq!(output.code, 0, "{output:?}");
    let mut expected: Vec<String> = FILES.iter().map(|f| f.to_string()).collect();
    expected.sort();
    assert_eq!(listing(registry.path()), expected);

    let config = registry.read("flagops.yml");
    assert!(
        config.starts_with("# yaml-language-server: $schema=schema/config.schema.json\n"),
        "{config}"
    );
    assert!(config.contains("  - name: production\n    switch: production\n    url: https://app.example.com\n    protected: true\n    backend: { kind: file }\n"), "{config}");
    assert!(config.contains("default_environment: production\n"), "{config}");
    for (file, which) in [
        ("schema/flag.schema.json", "flag"),
        ("schema/config.schema.json", "config"),
        ("schema/test.schema.json", "test"),
    ] {
        assert_eq!(registry.read(file), registry.run(&["schema", which]).stdout, "{file}");
    }
    let pipeline = registry.read(".gitlab-ci.yml");
    assert!(pipeline.contains(&format!("    value: {VERSION}\n")), "{pipeline}");
    assert!(
        pipeline.contains("sync-production:\n  extends: .sync\n  needs: [build, sync-dev]\n"),
        "{pipeline}"
    );
    assert!(
        !pipeline.contains("cargo"),
        "the pipeline must not compile flagops:\n{pipeline}"
    );

    let validate = registry.run(&["validate"]);
    assert_eq!(validate.code, 0, "{validate:?}");
    assert_eq!(validate.stdout, "checked 0 flag files: 0 errors, 0 warnings\n");

    let created = new_flag(&registry, "first_flag");
    assert_eq!(created.code, 0, "{created:?}");
    let flag = registry.read("flags/wip/first_flag.yml");
    let hint = flag
        .lines()
        .next()
        .unwrap()
        .strip_prefix("# yaml-language-server: $schema=")
        .unwrap();
    assert_eq!(hint, "../../schema/flag.schema.json");
    assert!(registry.path().join("flags/wip").join(hint).is_file());

    let set = registry.run(&["set", "first_flag", "true", "--dev"]);
    assert_eq!(set.code, 0, "{set:?}");
    let deploy = registry.run(&["deploy"]);
    assert_eq!(deploy.code, 0, "{deploy:?}");
    assert!(deploy.stdout.contains("dev: applied 1 change\n"), "{}", deploy.stdout);
    assert_eq!(registry.state("dev")["flags"]["first_flag"], true);
    assert!(registry.path().join("public/index.html").is_file());
}

// GitLab's six environments with `--gitlab-com`, ops and production protected, and the `gitlab`
// backend reading each one's token from its own variable.
#[test]
fn init_gitlab_com_writes_six_environments_with_the_gitlab_backend() {
    let registry = Registry::empty();
    let output = registry.run(&["init", "registry", "--gitlab-com", "--backend", "gitlab"]);
    assert_eq!(output.code, 0, "{output:?}");
    let config = registry.read("registry/flagops.yml");
    let names: Vec<&str> = config.lines().filter_map(|l| l.strip_prefix("  - name: ")).collect();
    assert_eq!(names, ["dev", "pre", "staging", "staging-ref", "ops", "production"]);
    assert_eq!(config.matches("    protected: true\n").count(), 2, "{config}");
    assert!(
        config
            .contains("      kind: gitlab\n      url: https://gitlab.com\n      token_env: FLAGOPS_PRODUCTION_TOKEN\n"),
        "{config}"
    );
    assert!(config.contains("token_env: FLAGOPS_STAGING_REF_TOKEN\n"), "{config}");
    let validate = registry.run_in("registry", &["validate"]);
    assert_eq!(validate.code, 0, "{validate:?}");

    // Without an address the `gitlab` backend cannot be written: refused, nothing written.
    let refused = registry.run(&["init", "other", "--env", "dev", "--backend", "gitlab"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("the `gitlab` backend needs the address of `dev`\nhelp: pass `--env dev=https://...`"),
        "{}",
        refused.stderr
    );
    assert!(!registry.path().join("other").exists());
}

// An environment name the config schema refuses is reported where the generated `flagops.yml`
// holds it, and nothing is written.
#[test]
fn init_refuses_an_invalid_environment_name_and_writes_nothing() {
    let registry = Registry::empty();
    let output = registry.run(&["init", "new", "--env", "Dev", "--env", "production"]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output.stderr.contains("error[invalid-format]: \"Dev\" does not match"),
        "{}",
        output.stderr
    );
    assert!(output.stderr.contains("new/flagops.yml:16:11"), "{}", output.stderr);
    assert!(
        output
            .stderr
            .contains("nothing written: the `flagops.yml` these options make would not validate")
    );
    assert!(!registry.path().join("new").exists());
}

// A folder that holds files is accepted when nothing would be overwritten, and refused (exit 1,
// nothing written) when one file would be.
#[test]
fn init_into_a_non_empty_folder_refuses_only_when_a_file_would_be_overwritten() {
    let registry = Registry::empty();
    registry.write("kept/NOTES.md", "notes\n").write("kept/flags/.keep", "");
    let output = registry.run(&["init", "kept", "--env", "dev", "--env", "production"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(registry.read("kept/NOTES.md"), "notes\n");
    assert_eq!(listing(&registry.path().join("kept")).len(), FILES.len() + 2);

    registry
        .write("clash/README.md", "ours\n")
        .write("clash/NOTES.md", "notes\n");
    let before = listing(&registry.path().join("clash"));
    let output = registry.run(&["init", "clash", "--gitlab-com"]);
    assert_eq!(output.code, 1, "{output:?}");
    assert_eq!(
        output.stderr,
        "`clash/README.md` already exists\nerror: nothing written: `flagops init` never overwrites a file\nhelp: move it away, or choose another folder\n"
    );
    assert_eq!(listing(&registry.path().join("clash")), before);
    assert_eq!(registry.read("clash/README.md"), "ours\n");
}

// `--version` names the version and the commit the binary was built from.
#[test]
fn version_names_the_version_and_the_commit() {
    let output = Registry::empty().run(&["--version"]);
    assert_eq!(output.code, 0, "{output:?}");
    let line = output.stdout.trim_end();
    let commit = line
        .strip_prefix(&format!("flagops {VERSION} (commit "))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{line}"));
    // Built from a git checkout (this one) unless GIT_COMMIT said otherwise.
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match (std::env::var("GIT_COMMIT"), head) {
        (Err(_), Some(head)) => assert_eq!(commit, head),
        _ => assert!(
            commit == "unknown" || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())),
            "{line}"
        ),
    }
}

/// The binary under test without its debug information, as the pipeline's "release": every job
/// gets a copy, and the debug build is hundreds of megabytes.
fn release_binary(dir: &Path) -> Vec<u8> {
    let stripped = dir.join("flagops-release");
    let status = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(env!("CARGO_BIN_EXE_flagops"))
        .status();
    match status {
        Ok(status) if status.success() => std::fs::read(stripped).unwrap(),
        _ => std::fs::read(env!("CARGO_BIN_EXE_flagops")).unwrap(),
    }
}

// The pipeline `init` writes, under gitlab-ci-local: its build job downloads the pinned release
// from a package registry on loopback and checks its SHA-256, then every job passes on the
// default branch; served with a wrong checksum, the build job fails and no job gets flagops.
#[test]
fn init_pipeline_downloads_the_release_checks_its_sum_and_syncs() {
    let Some(tools) = tools() else { return };
    let packages = PackageRegistry::start("unused");
    let registry = Registry::empty();
    let output = registry.run(&[
        "init",
        "--env",
        "dev",
        "--env",
        "production",
        "--download-url",
        &packages.package_url(),
    ]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(new_flag(&registry, "first_flag").code, 0);
    assert_eq!(registry.run(&["set", "first_flag", "true", "--dev"]).code, 0);
    registry.git(&["init", "-q", "-b", "main"]);
    registry.git(&["config", "user.name", "Ada Tester"]);
    registry.git(&["config", "user.email", "ada@example.com"]);
    registry.commit("a new registry");
    assert_eq!(registry.git(&["status", "--porcelain"]), "");
    let project = Project::around(registry, tools, false);

    let scratch = tempfile::tempdir().unwrap();
    let binary = release_binary(scratch.path());
    let file = format!("flagops-{VERSION}-x86_64-linux");
    let sum = sha256_hex(&binary);
    packages.put(VERSION, &file, binary);
    packages.put(
        VERSION,
        &format!("{file}.sha256"),
        format!("{sum}  {file}\n").into_bytes(),
    );

    let output = project.gitlab_ci_local(&[]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(
        outcomes(&output),
        expect(&[
            ("build", "PASS"),
            ("validate", "PASS"),
            ("test", "PASS"),
            ("sync-dev", "PASS"),
            ("sync-production", "PASS"),
            ("pages", "PASS")
        ]),
        "{}",
        output.stdout
    );
    assert!(output.stdout.contains(&format!("{file}: OK")), "{}", output.stdout);
    let downloads: Vec<String> = packages
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        downloads,
        [
            format!("GET {}/{VERSION}/{file}", crate::packages::PACKAGE_PATH),
            format!("GET {}/{VERSION}/{file}.sha256", crate::packages::PACKAGE_PATH)
        ]
    );
    assert_eq!(project.registry.state("dev")["flags"]["first_flag"], true);
    assert_eq!(project.registry.state("production")["environment"], "production");
    assert!(project.registry.path().join("public/index.html").is_file());
    assert_eq!(project.registry.git(&["status", "--porcelain"]), "");

    // A checksum that does not match the download fails the build job, and nothing runs flagops.
    packages.put(
        VERSION,
        &format!("{file}.sha256"),
        format!("{}  {file}\n", "0".repeat(64)).into_bytes(),
    );
    let output = project.gitlab_ci_local(&["build"]);
    assert_eq!(output.code, 1, "{output:?}");
    assert_eq!(outcomes(&output), expect(&[("build", "FAIL")]), "{}", output.stdout);
    assert!(output.stdout.contains(&format!("{file}: FAILED")), "{}", output.stdout);
    assert!(
        !output.stdout.contains(&format!("flagops {VERSION} (commit")),
        "{}",
        output.stdout
    );
}

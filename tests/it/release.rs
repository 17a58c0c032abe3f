//! The release job of the project's `.gitlab-ci.yml`, under gitlab-ci-local in a tag pipeline,
//! with stand-ins for `rustup`, `apt-get` and `cargo` (the musl target cannot be installed
//! offline): it checks the tag against Cargo.toml, names the binary by its version, and uploads
//! it with its SHA-256 to a fake generic package registry with the job token.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::harness::{example_registry, repo_root};
use crate::packages::{PACKAGE_PATH, PackageRegistry, sha256_hex};
use crate::pipeline::{Project, expect, outcomes, tools};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Writes the stand-ins into `dir`: `rustup` and `apt-get` say what they were asked, `cargo`
/// "builds" by copying the binary under test to where `cargo build --target T --release` puts it.
fn stand_ins(dir: &Path) {
    let scripts = [
        ("rustup", "#!/bin/sh\necho \"stand-in rustup $*\"\n".to_string()),
        ("apt-get", "#!/bin/sh\necho \"stand-in apt-get $*\"\n".to_string()),
        (
            "cargo",
            format!(
                "#!/bin/sh\necho \"stand-in cargo $*\"\nmkdir -p \"target/$RELEASE_TARGET/release\"\ncp '{}' \"target/$RELEASE_TARGET/release/flagops\"\n",
                env!("CARGO_BIN_EXE_flagops")
            ),
        ),
    ];
    for (name, text) in scripts {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The variables of a tag pipeline for `tag`, publishing to `packages`.
fn tag_pipeline(tag: &str, packages: &PackageRegistry) -> Vec<String> {
    [
        format!("CI_COMMIT_TAG={tag}"),
        "CI_PIPELINE_SOURCE=push".to_string(),
        format!("CI_API_V4_URL={}", packages.api_url()),
        "CI_PROJECT_ID=7".to_string(),
        "CI_JOB_TOKEN=job-token-of-the-release".to_string(),
    ]
    .into_iter()
    .flat_map(|variable| ["--variable".to_string(), variable])
    .chain([
        "--unset-variable".to_string(),
        "CI_COMMIT_BRANCH".to_string(),
        "--ignore-predefined-vars".to_string(),
        "CI_COMMIT_TAG,CI_PIPELINE_SOURCE,CI_COMMIT_BRANCH,CI_API_V4_URL,CI_PROJECT_ID,CI_JOB_TOKEN".to_string(),
    ])
    .collect()
}

// A tag pipeline has the release job and no sync; the job uploads the binary and a `.sha256`
// that `sha256sum -c` accepts, with the job token; a tag that is not Cargo.toml's version fails.
#[test]
fn release_job_publishes_the_binary_and_its_sha256_on_a_version_tag() {
    let Some(tools) = tools() else { return };
    let registry = example_registry();
    for file in [
        ".gitlab-ci.yml",
        "Cargo.toml",
        "scripts/ci/post-plan-note.sh",
        "scripts/ci/chatops.sh",
    ] {
        registry.write(file, std::fs::read(repo_root().join(file)).unwrap());
    }
    registry.init_git();
    registry.write(".gitignore", std::fs::read(repo_root().join(".gitignore")).unwrap());
    registry.commit("the project's files");
    let project = Project::around(registry, tools, true);
    let packages = PackageRegistry::start("job-token-of-the-release");
    let fakes = tempfile::tempdir().unwrap();
    stand_ins(fakes.path());

    let tag = tag_pipeline(&format!("v{VERSION}"), &packages);
    let tag: Vec<&str> = tag.iter().map(String::as_str).collect();
    assert_eq!(project.jobs(&tag), ["build", "validate", "test", "release"]);
    assert!(!project.jobs(&[]).contains(&"release".to_string()));

    let mut args = tag.clone();
    args.push("release");
    let output = project.gitlab_ci_local_with(&args, Some(fakes.path()));
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(outcomes(&output), expect(&[("release", "PASS")]), "{}", output.stdout);
    assert!(
        output
            .stdout
            .contains("stand-in cargo build --release --locked --target x86_64-unknown-linux-musl"),
        "{}",
        output.stdout
    );

    let file = format!("flagops-{VERSION}-x86_64-linux");
    let puts: Vec<(String, Option<String>)> = packages
        .requests()
        .into_iter()
        .map(|r| (format!("{} {}", r.method, r.path), r.job_token))
        .collect();
    let token = Some("job-token-of-the-release".to_string());
    assert_eq!(
        puts,
        [
            (format!("PUT {PACKAGE_PATH}/{VERSION}/{file}"), token.clone()),
            (format!("PUT {PACKAGE_PATH}/{VERSION}/{file}.sha256"), token)
        ]
    );
    let binary = packages.get(VERSION, &file).unwrap();
    assert_eq!(binary, std::fs::read(env!("CARGO_BIN_EXE_flagops")).unwrap());
    let sum = String::from_utf8(packages.get(VERSION, &format!("{file}.sha256")).unwrap()).unwrap();
    assert_eq!(sum, format!("{}  {file}\n", sha256_hex(&binary)));

    // The tag must name the version being built.
    let wrong = tag_pipeline("v99.0.0", &packages);
    let mut args: Vec<&str> = wrong.iter().map(String::as_str).collect();
    args.push("release");
    let output = project.gitlab_ci_local_with(&args, Some(fakes.path()));
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output
            .stdout
            .contains("the tag v99.0.0 is not the version in Cargo.toml: not releasing"),
        "{}",
        output.stdout
    );
    assert!(!output.stdout.contains("stand-in cargo"), "{}", output.stdout);
}

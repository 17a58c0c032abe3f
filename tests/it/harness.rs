//! Test harness: temporary registries on disk and runs of the `flagops` binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// The repository root, for fixtures and the default config.
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The corpus of 150 real GitLab definition files: `../shared/corpus/gitlab` beside the
/// repository, or the folder `FLAGOPS_CORPUS` names (for a copy of the tree built elsewhere,
/// as `scripts/mutants` makes).
pub(crate) fn gitlab_corpus() -> PathBuf {
    let path =
        std::env::var_os("FLAGOPS_CORPUS").map_or_else(|| repo_root().join("../shared/corpus/gitlab"), PathBuf::from);
    assert!(
        path.join("config/feature_flags").is_dir(),
        "the GitLab corpus is missing at `{}`",
        path.display()
    );
    path
}

/// A registry in a temporary directory, starting with the project's default `flagops.yml`.
pub(crate) struct Registry {
    dir: TempDir,
}

/// What a run of the binary printed and how it exited.
#[derive(Debug)]
pub(crate) struct Output {
    /// The exit code.
    pub(crate) code: i32,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
}

impl Registry {
    /// An empty registry with the default config, its rollout policies turned off: tests of
    /// other features write flags that skip staging or lack rollout issues.
    pub(crate) fn new() -> Registry {
        let registry = Registry::with_policies();
        let config = registry.read("flagops.yml");
        let start = config.find("\npolicies:\n").expect("the default config has policies") + 1;
        let end = start + config[start..].find("\n\n").expect("a blank line ends the policies");
        let disabled = flagops::check::POLICY_IDS.join(", ");
        registry.write(
            "flagops.yml",
            format!(
                "{}policies:\n  disabled: [{disabled}]{}",
                &config[..start],
                &config[end..]
            ),
        );
        registry
    }

    /// An empty registry with the default config as it is, policies included.
    pub(crate) fn with_policies() -> Registry {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::copy(repo_root().join("flagops.yml"), dir.path().join("flagops.yml")).expect("copy config");
        std::fs::create_dir_all(dir.path().join("flags")).expect("flags dir");
        Registry { dir }
    }

    /// An empty temporary folder, for `flagops init` to fill.
    pub(crate) fn empty() -> Registry {
        Registry {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The registry's directory.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (text) at `relative`, creating folders.
    pub(crate) fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> &Registry {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
        self
    }

    /// Reads a file at `relative`.
    pub(crate) fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(relative)).unwrap()
    }

    /// Runs `flagops ARGS` in the registry's directory.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.run_with_env(args, &[])
    }

    /// Runs `flagops ARGS` in the registry's directory with extra environment variables.
    pub(crate) fn run_with_env(&self, args: &[&str], variables: &[(&str, &str)]) -> Output {
        self.run_at(".", args, variables)
    }

    /// Runs `flagops ARGS` in `folder` of the registry, as a user working there would.
    pub(crate) fn run_in(&self, folder: &str, args: &[&str]) -> Output {
        self.run_at(folder, args, &[])
    }

    fn run_at(&self, folder: &str, args: &[&str], variables: &[(&str, &str)]) -> Output {
        let output = Command::new(env!("CARGO_BIN_EXE_flagops"))
            .args(args)
            // A change lock in the developer's or the CI's environment must not reach the tests;
            // those about it set it in `variables`.
            .env_remove("FLAGOPS_CHANGE_LOCK")
            .current_dir(self.dir.path().join(folder))
            .env("NO_COLOR", "1")
            // The CI's own identity and commit must not leak into the registries under test;
            // a test may still set them.
            .env_remove("GITLAB_USER_LOGIN")
            .env_remove("CHAT_USER_ID")
            .env_remove("CI_COMMIT_SHA")
            .env_remove("SOURCE_DATE_EPOCH")
            .envs(variables.iter().copied())
            .output()
            .expect("run flagops");
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// A valid flag file of type `wip` named `name`, with `extra` lines appended.
pub(crate) fn flag(name: &str, extra: &str) -> String {
    format!(
        "name: {name}\n\
         description: A flag for tests.\n\
         type: wip\n\
         group: group::test\n\
         milestone: \"19.5\"\n\
         introduced_by_url: https://gitlab.com/gitlab-org/gitlab/-/merge_requests/1\n\
         default_enabled: false\n{extra}"
    )
}

impl Registry {
    /// Runs git in the registry with a fixed identity, panicking on failure.
    pub(crate) fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .args(args)
            .current_dir(self.dir.path())
            .env("GIT_AUTHOR_NAME", "Ada Tester")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Ada Tester")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .output()
            .expect("run git");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Makes the registry a git repository with everything committed.
    pub(crate) fn init_git(&self) -> &Registry {
        self.git(&["init", "-q", "-b", "main"]);
        self.git(&["config", "user.name", "Ada Tester"]);
        self.git(&["config", "user.email", "ada@example.com"]);
        self.write(".gitignore", "/.flagops/\n");
        self.commit("initial registry");
        self
    }

    /// A `git clone` of this registry's repository into a new registry, with extra clone
    /// arguments such as `--depth 1`.
    pub(crate) fn clone_with(&self, args: &[&str]) -> Registry {
        let dir = tempfile::tempdir().expect("temp dir");
        let source = format!("file://{}", self.dir.path().display());
        let target = dir.path().to_string_lossy().into_owned();
        let mut all = vec!["clone", "-q"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[source.as_str(), target.as_str()]);
        self.git(&all);
        Registry { dir }
    }

    /// Commits every change.
    pub(crate) fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Removes a file.
    pub(crate) fn remove(&self, relative: &str) {
        std::fs::remove_file(self.dir.path().join(relative)).unwrap();
    }

    /// The state document of an environment, as JSON.
    pub(crate) fn state(&self, environment: &str) -> serde_json::Value {
        serde_json::from_str(&self.read(&format!(".flagops/state/{environment}.json"))).unwrap()
    }

    /// The audit records of an environment.
    pub(crate) fn audit(&self, environment: &str) -> Vec<serde_json::Value> {
        let path = self
            .dir
            .path()
            .join(format!(".flagops/state/{environment}.audit.jsonl"));
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }
}

/// A copy of the project's example registry: its config, flags and evaluation tests.
pub(crate) fn example_registry() -> Registry {
    let registry = Registry::with_policies();
    for folder in ["flags", "flag-tests"] {
        for entry in walkdir::WalkDir::new(repo_root().join(folder)) {
            let entry = entry.unwrap();
            if entry.file_type().is_file() {
                let relative = entry.path().strip_prefix(repo_root()).unwrap();
                registry.write(relative.to_str().unwrap(), std::fs::read(entry.path()).unwrap());
            }
        }
    }
    registry
}

//! The registry's `.gitlab-ci.yml`, run by gitlab-ci-local with the shell executor in a copy of
//! the example registry: merge-request, default-branch and scheduled pipelines, and the plan
//! note posted to a fake GitLab notes API on loopback.
//!
//! Jobs get the binary under test through `FLAGOPS_BIN`, so the build job links it instead of
//! running cargo. gitlab-ci-local and Node.js 22 come from `tests/pipeline/` (installed by
//! `scripts/setup-test-deps`); it validates the file against GitLab's CI schema on every run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Output, Registry, example_registry, repo_root};

/// The environments of the example `flagops.yml`, in promotion order.
const ENVIRONMENTS: [&str; 6] = ["dev", "pre", "staging", "staging-ref", "ops", "production"];

/// The flag the merge requests below change: it has no rollout plan, so its desired state does not
/// depend on the day the tests run.
const FLAG: &str = "flags/worker/sticky_reads_for_post_receive_worker.yml";

/// Its name.
const NAME: &str = "sticky_reads_for_post_receive_worker";

/// The folder holding gitlab-ci-local and Node.js 22, or `None` (outside CI) when something the
/// pipeline needs is missing; in CI that is a failure.
pub(crate) fn tools() -> Option<PathBuf> {
    let bin = repo_root().join("tests/pipeline/node_modules/.bin");
    let on_path = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success())
    };
    let ready = bin.join("gitlab-ci-local").is_file()
        && bin.join("node").is_file()
        && ["git", "rsync", "curl", "jq"].into_iter().all(on_path);
    if ready {
        return Some(bin);
    }
    crate::deps::missing("gitlab-ci-local, Node.js 22, rsync, curl or jq")
}

/// A copy of the example registry with the project's `.gitlab-ci.yml`, committed on `main`, with
/// a fake `origin` whose `main` is that commit.
pub(crate) struct Project {
    pub(crate) registry: Registry,
    tools: PathBuf,
    /// Whether the jobs get the binary under test through `FLAGOPS_BIN`.
    link_binary: bool,
}

impl Project {
    fn new() -> Option<Project> {
        let tools = tools()?;
        let registry = example_registry();
        for file in [
            ".gitlab-ci.yml",
            "scripts/ci/post-plan-note.sh",
            "scripts/ci/chatops.sh",
        ] {
            registry.write(file, std::fs::read(repo_root().join(file)).unwrap());
        }
        registry.init_git();
        // The project's own ignores, which cover what the jobs leave behind.
        registry.write(".gitignore", std::fs::read(repo_root().join(".gitignore")).unwrap());
        registry.commit("the project's ignores");
        Some(Project::around(registry, tools, true))
    }

    /// A project of `registry`, a git repository with at least one commit on `main`, with a fake
    /// `origin` whose `main` is that commit; with `link_binary`, jobs get `FLAGOPS_BIN`.
    pub(crate) fn around(registry: Registry, tools: PathBuf, link_binary: bool) -> Project {
        registry.git(&["remote", "add", "origin", "https://gitlab.example.com/acme/flags.git"]);
        registry.git(&["symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main"]);
        let project = Project {
            registry,
            tools,
            link_binary,
        };
        project.push_main();
        project
    }

    /// Makes `origin/main` the current `main`, as a push would.
    pub(crate) fn push_main(&self) -> String {
        self.registry.git(&["update-ref", "refs/remotes/origin/main", "main"]);
        self.registry.git(&["rev-parse", "main"])
    }

    /// Runs gitlab-ci-local with the shell executor, each job in its own copy of the repository
    /// so that only artifacts pass between jobs, as on GitLab.
    pub(crate) fn gitlab_ci_local(&self, args: &[&str]) -> Output {
        self.gitlab_ci_local_with(args, None)
    }

    /// `gitlab_ci_local` with `first` ahead of everything else on the jobs' `PATH`.
    pub(crate) fn gitlab_ci_local_with(&self, args: &[&str], first: Option<&std::path::Path>) -> Output {
        let mut path = format!("{}:{}", self.tools.display(), std::env::var("PATH").unwrap_or_default());
        if let Some(first) = first {
            path = format!("{}:{path}", first.display());
        }
        let mut command = Command::new(self.tools.join("gitlab-ci-local"));
        command.args(["--force-shell-executor", "--shell-isolation"]);
        if self.link_binary {
            command.args(["--variable", concat!("FLAGOPS_BIN=", env!("CARGO_BIN_EXE_flagops"))]);
        }
        command
            .args(args)
            .current_dir(self.registry.path())
            .env("PATH", path)
            .env("NO_COLOR", "1")
            // The CI's own identity and commit must not leak into the jobs.
            .env_remove("GITLAB_USER_LOGIN")
            .env_remove("CI_COMMIT_SHA")
            .env_remove("SOURCE_DATE_EPOCH");
        for (name, _) in std::env::vars() {
            if name.starts_with("GCL_") {
                command.env_remove(name);
            }
        }
        let output = command.output().expect("run gitlab-ci-local");
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// A merge-request pipeline of the current branch into `main`, with `extra` arguments.
    fn merge_request_pipeline(&self, extra: &[&str]) -> Output {
        let mut args = vec![
            "--variable",
            "CI_PIPELINE_SOURCE=merge_request_event",
            "--unset-variable",
            "CI_COMMIT_BRANCH",
            "--variable",
            "CI_MERGE_REQUEST_IID=7",
            "--variable",
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME=main",
            "--ignore-predefined-vars",
            "CI_PIPELINE_SOURCE,CI_COMMIT_BRANCH,CI_API_V4_URL",
        ];
        args.extend_from_slice(extra);
        self.gitlab_ci_local(&args)
    }

    /// The names of the jobs a pipeline would run, given gitlab-ci-local's arguments.
    pub(crate) fn jobs(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec!["--list-json"];
        all.extend_from_slice(args);
        let output = self.gitlab_ci_local(&all);
        assert_eq!(output.code, 0, "{output:?}");
        let start = output.stdout.find('[').expect("a JSON list of jobs");
        let end = output.stdout.rfind(']').expect("a JSON list of jobs");
        let jobs: Vec<Value> = serde_json::from_str(&output.stdout[start..=end]).unwrap();
        jobs.iter()
            .filter(|job| job["when"] != "never")
            .map(|job| job["name"].as_str().unwrap().to_string())
            .collect()
    }

    fn read(&self, relative: &str) -> String {
        self.registry.read(relative)
    }
}

/// Each job of a run's summary and its outcome (`PASS`, `FAIL` or `WARN`).
pub(crate) fn outcomes(output: &Output) -> BTreeMap<String, String> {
    output
        .stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let outcome = words.next()?;
            let job = words.next()?;
            (["PASS", "FAIL", "WARN"].contains(&outcome) && words.next().is_none())
                .then(|| (job.to_string(), outcome.to_string()))
        })
        .collect()
}

/// The expected outcome of each job that ran.
pub(crate) fn expect(jobs: &[(&str, &str)]) -> BTreeMap<String, String> {
    jobs.iter()
        .map(|(job, outcome)| (job.to_string(), outcome.to_string()))
        .collect()
}

/// Where in a run's log `job` first printed a line containing `what`.
fn log_position(output: &Output, job: &str, what: &str) -> usize {
    output
        .stdout
        .lines()
        .position(|line| line.split_whitespace().next() == Some(job) && line.contains(what))
        .unwrap_or_else(|| panic!("no `{what}` line of {job}:\n{}", output.stdout))
}

// A merge request on a branch with a valid change passes, with its Code Quality, JUnit and plan
// reports, and without a note token the pipeline has no note job.
#[test]
fn pipeline_merge_request_reports_and_plans_a_valid_change() {
    let Some(project) = Project::new() else { return };
    let base = project.push_main();
    project.registry.git(&["checkout", "-q", "-b", "sticky-reads"]);
    let flag = project
        .read(FLAG)
        .replace("percentage_of_actors: 50", "percentage_of_actors: 60");
    project.registry.write(FLAG, flag);
    project
        .registry
        .commit("sticky_reads_for_post_receive_worker: 60% in production");

    let variable = format!("CI_MERGE_REQUEST_DIFF_BASE_SHA={base}");
    let output = project.merge_request_pipeline(&["--variable", &variable]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(
        outcomes(&output),
        expect(&[
            ("build", "PASS"),
            ("validate", "PASS"),
            ("test", "PASS"),
            ("plan", "PASS")
        ]),
        "{}",
        output.stdout
    );

    // The example registry's two `development` flags are warnings.
    let codequality: Value = serde_json::from_str(&project.read("reports/gl-code-quality.json")).unwrap();
    let findings = codequality.as_array().unwrap();
    assert_eq!(findings.len(), 2, "{codequality:#}");
    assert!(
        findings
            .iter()
            .all(|f| f["check_name"] == "deprecated-type" && f["severity"] == "minor")
    );
    let junit = project.read("reports/junit.xml");
    assert!(junit.contains("<testsuites") && !junit.contains("<failure"), "{junit}");
    assert!(junit.contains(FLAG), "{junit}");

    let plan = project.read("reports/plan.md");
    assert!(
        plan.starts_with(&format!("### flagops plan: this change against `{base}`")),
        "{plan}"
    );
    assert!(plan.contains("1 change in 1 of 6 environments"), "{plan}");
    let row = plan
        .lines()
        .find(|line| line.contains(&format!("`{NAME}`")))
        .unwrap_or_else(|| panic!("{plan}"));
    assert!(
        row.starts_with("| production |") && row.contains("| 60% of actors"),
        "{plan}"
    );

    // Without FLAGOPS_NOTE_TOKEN the note script says so and calls nothing.
    let script = Command::new("sh")
        .args(["scripts/ci/post-plan-note.sh", "reports/plan.md"])
        .current_dir(project.registry.path())
        .env_remove("FLAGOPS_NOTE_TOKEN")
        .env("CI_API_V4_URL", "http://127.0.0.1:9/api/v4")
        .env("CI_PROJECT_ID", "42")
        .env("CI_MERGE_REQUEST_IID", "7")
        .output()
        .unwrap();
    assert!(script.status.success());
    assert_eq!(
        String::from_utf8_lossy(&script.stdout),
        "FLAGOPS_NOTE_TOKEN is not set: not posting the plan as a merge-request note\n"
    );
}

// A merge request with an invalid flag fails in validate, whose reports are still kept and name
// the check and the file; test and plan, which need a valid registry, do not run.
#[test]
fn pipeline_merge_request_fails_on_an_invalid_change_and_keeps_its_reports() {
    let Some(project) = Project::new() else { return };
    project.registry.git(&["checkout", "-q", "-b", "typo"]);
    let flag = project.read(FLAG).replace("\n  production:\n", "\n  productoin:\n");
    project.registry.write(FLAG, flag);
    project.registry.commit("a misspelt environment");

    // No diff base: the plan would use `origin/main`.
    let output = project.merge_request_pipeline(&[]);
    assert_eq!(output.code, 1, "{output:?}");
    assert_eq!(
        outcomes(&output),
        expect(&[("build", "PASS"), ("validate", "FAIL")]),
        "{}",
        output.stdout
    );
    assert!(
        output
            .stdout
            .contains("error[unknown-environment]: unknown environment `productoin`")
    );

    let codequality: Value = serde_json::from_str(&project.read("reports/gl-code-quality.json")).unwrap();
    let error = codequality
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check_name"] == "unknown-environment")
        .unwrap_or_else(|| panic!("{codequality:#}"));
    assert_eq!(error["location"]["path"], FLAG);
    assert_eq!(error["location"]["lines"]["begin"], 17);
    assert_eq!(error["severity"], "major");
    let junit = project.read("reports/junit.xml");
    let failure = junit
        .find("<failure")
        .map(|start| &junit[start..start + junit[start..].find("</failure>").unwrap()])
        .unwrap_or_else(|| panic!("{junit}"));
    assert!(
        failure.contains("unknown-environment") && failure.contains(FLAG),
        "{junit}"
    );
    assert!(!project.registry.path().join("reports/plan.md").exists());
}

// The default branch syncs every environment, one job after the other in promotion order, and
// builds the site; only ignored files are left behind.
#[test]
fn pipeline_default_branch_syncs_every_environment_and_publishes_the_site() {
    let Some(project) = Project::new() else { return };
    let output = project.gitlab_ci_local(&[]);
    assert_eq!(output.code, 0, "{output:?}");
    let mut expected = vec![
        ("build", "PASS"),
        ("validate", "PASS"),
        ("test", "PASS"),
        ("pages", "PASS"),
    ];
    let syncs: Vec<String> = ENVIRONMENTS.iter().map(|e| format!("sync-{e}")).collect();
    expected.extend(syncs.iter().map(|job| (job.as_str(), "PASS")));
    assert_eq!(outcomes(&output), expect(&expected), "{}", output.stdout);

    for pair in syncs.windows(2) {
        assert!(
            log_position(&output, &pair[0], "finished in") < log_position(&output, &pair[1], "starting shell"),
            "{} started before {} finished:\n{}",
            pair[1],
            pair[0],
            output.stdout
        );
    }
    for (environment, job) in ENVIRONMENTS.iter().zip(&syncs) {
        assert!(
            output
                .stdout
                .contains(&format!("{job} environment: {{ name: {environment}, url: https://")),
            "{}",
            output.stdout
        );
    }

    // Each sync carried the state before it to the next, so the site saw every environment.
    for environment in ENVIRONMENTS {
        let state = project.registry.state(environment);
        assert_eq!(state["environment"], environment);
        assert!(
            !state["flags"].as_object().unwrap().is_empty(),
            "{environment}: {state:#}"
        );
    }
    assert_eq!(
        project.registry.state("production")["flags"][NAME],
        json!({"percentage_of_actors": 50, "actors": ["project:gitlab-com/www-gitlab-com", "project:gitlab-org/gitlab"]})
    );
    assert_eq!(project.registry.state("dev")["flags"][NAME], json!(true));
    let index = project.read("public/index.html");
    assert!(index.contains(NAME), "{index}");
    let flag_page = project.read(&format!("public/flags/{NAME}.html"));
    assert!(flag_page.contains("50% of actors"));

    assert_eq!(project.registry.git(&["status", "--porcelain"]), "");
}

// Scheduled pipelines of the default branch run the syncs, which apply rollout steps that have
// come due; schedules of other branches sync nothing, and merge requests never sync.
#[test]
fn pipeline_schedule_applies_rollout_steps_that_are_due() {
    let Some(project) = Project::new() else { return };
    let due = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    project.registry.write(
        "flags/wip/pipeline_schedule_probe.yml",
        crate::harness::flag(
            "pipeline_schedule_probe",
            &format!(
                "environments:\n  dev: false\nrollout:\n  - at: \"{}\"\n    dev: true\n",
                due.strftime("%Y-%m-%dT%H:%M:%SZ")
            ),
        ),
    );
    project.registry.commit("a flag with a rollout step due a minute ago");
    project.push_main();

    let schedule = [
        "--variable",
        "CI_PIPELINE_SOURCE=schedule",
        "--ignore-predefined-vars",
        "CI_PIPELINE_SOURCE",
    ];
    let mut expected = vec!["build", "validate", "test"];
    let syncs: Vec<String> = ENVIRONMENTS.iter().map(|e| format!("sync-{e}")).collect();
    expected.extend(syncs.iter().map(String::as_str));
    expected.push("pages");
    assert_eq!(project.jobs(&schedule), expected);

    project.registry.git(&["checkout", "-q", "-b", "elsewhere"]);
    assert_eq!(project.jobs(&schedule), ["build", "validate", "test"]);
    project.registry.git(&["checkout", "-q", "main"]);
    assert_eq!(
        project.jobs(&[
            "--variable",
            "CI_PIPELINE_SOURCE=merge_request_event",
            "--unset-variable",
            "CI_COMMIT_BRANCH",
            "--ignore-predefined-vars",
            "CI_PIPELINE_SOURCE,CI_COMMIT_BRANCH",
        ]),
        ["build", "validate", "test", "plan"]
    );

    let mut args = schedule.to_vec();
    args.extend(["--needs", "sync-dev"]);
    let output = project.gitlab_ci_local(&args);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(
        outcomes(&output),
        expect(&[
            ("build", "PASS"),
            ("validate", "PASS"),
            ("test", "PASS"),
            ("sync-dev", "PASS")
        ]),
        "{}",
        output.stdout
    );
    assert_eq!(
        project.registry.state("dev")["flags"]["pipeline_schedule_probe"],
        json!(true)
    );
}

// With FLAGOPS_NOTE_TOKEN set, the first pipeline of a merge request posts the plan as a note
// and the next one updates that note instead of adding another; the token is sent to the API
// and printed nowhere.
#[test]
fn pipeline_plan_note_is_posted_once_and_then_updated() {
    let Some(project) = Project::new() else { return };
    let token = "glpat-test-token-do-not-print";
    // 120 notes before ours, so it lands on the second page; one of them quotes the marker.
    let mut seed: Vec<Note> = (1..=120)
        .map(|id| Note {
            id,
            body: format!("review comment {id}"),
            system: id % 3 == 0,
        })
        .collect();
    seed[10].body = "the plan note starts with `<!-- flagops-plan -->`".into();
    let api = NotesApi::start("/api/v4/projects/42/merge_requests/7/notes", token, seed);
    let url = format!("CI_API_V4_URL=http://{}/api/v4", api.address);
    let token_variable = format!("FLAGOPS_NOTE_TOKEN={token}");

    // Two pushes to the merge request's branch, each followed by its pipeline.
    let base = project.push_main();
    project.registry.git(&["checkout", "-q", "-b", "sticky-reads"]);
    let mut ids = Vec::new();
    for (before, percentage) in [(50, 60), (60, 70)] {
        let flag = project.read(FLAG).replace(
            &format!("percentage_of_actors: {before}"),
            &format!("percentage_of_actors: {percentage}"),
        );
        project.registry.write(FLAG, flag);
        project.registry.commit(&format!("{NAME}: {percentage}% in production"));
        let diff_base = format!("CI_MERGE_REQUEST_DIFF_BASE_SHA={base}");
        let output = project.merge_request_pipeline(&[
            "--variable",
            &diff_base,
            "--variable",
            &url,
            "--variable",
            "CI_MERGE_REQUEST_PROJECT_ID=42",
            "--variable",
            &token_variable,
        ]);
        assert_eq!(output.code, 0, "{output:?}");
        assert_eq!(
            outcomes(&output),
            expect(&[
                ("build", "PASS"),
                ("validate", "PASS"),
                ("test", "PASS"),
                ("plan", "PASS"),
                ("plan-note", "PASS")
            ]),
            "{}",
            output.stdout
        );
        assert!(!output.stdout.contains(token) && !output.stderr.contains(token));
        let log = project.read(".gitlab-ci-local/output/plan-note.log");
        assert!(!log.contains(token), "{log}");

        let notes = api.notes();
        let ours: Vec<&Note> = notes
            .iter()
            .filter(|n| n.body.starts_with("<!-- flagops-plan -->\n"))
            .collect();
        assert_eq!(ours.len(), 1, "{ours:?}");
        assert_eq!(notes.len(), 121);
        assert!(
            ours[0].body.contains(&format!("| {percentage}% of actors")),
            "{}",
            ours[0].body
        );
        assert!(ours[0].body.contains("### flagops plan: this change against"));
        ids.push(ours[0].id);
    }
    assert_eq!(ids, [121, 121]);

    let requests = api.requests();
    let calls: Vec<String> = requests.iter().map(|r| format!("{} {}", r.method, r.target)).collect();
    let list = "GET /api/v4/projects/42/merge_requests/7/notes?sort=asc&order_by=created_at&per_page=100";
    assert_eq!(
        calls,
        [
            format!("{list}&page=1"),
            format!("{list}&page=2"),
            "POST /api/v4/projects/42/merge_requests/7/notes".into(),
            format!("{list}&page=1"),
            format!("{list}&page=2"),
            "PUT /api/v4/projects/42/merge_requests/7/notes/121".into(),
        ]
    );
    assert!(requests.iter().all(|r| r.token.as_deref() == Some(token)));
}

/// What a ChatOps pipeline's `flagops` job printed in its `chat_reply` section.
fn chat_reply(output: &Output) -> String {
    let log: Vec<&str> = output
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("flagops"))
        .filter_map(|line| {
            line.trim_start()
                .strip_prefix("> ")
                .or_else(|| line.trim_start().strip_prefix(">"))
        })
        .collect();
    let start = log
        .iter()
        .position(|line| line.contains("section_start:") && line.contains(":chat_reply"))
        .unwrap_or_else(|| panic!("no chat_reply section:\n{}", output.stdout));
    let end = log
        .iter()
        .position(|line| line.contains("section_end:") && line.contains(":chat_reply"))
        .unwrap_or_else(|| panic!("no end of the chat_reply section:\n{}", output.stdout));
    log[start + 1..end].join("\n")
}

// ChatOps runs the `flagops` job alone with the words after `/chatops run flagops` in
// CHAT_INPUT: `get` replies with the flag's state in the `chat_reply` section; any other
// subcommand is refused; and words a shell would run reach flagops as plain words.
#[test]
fn pipeline_chatops_job_runs_get_and_refuses_other_commands() {
    let Some(project) = Project::new() else { return };
    let chat = |input: &str| {
        let variable = format!("CHAT_INPUT={input}");
        project.gitlab_ci_local(&[
            "--variable",
            "CI_PIPELINE_SOURCE=chat",
            "--variable",
            &variable,
            "--ignore-predefined-vars",
            "CI_PIPELINE_SOURCE",
            "flagops",
        ])
    };
    assert_eq!(
        project
            .jobs(&[
                "--variable",
                "CI_PIPELINE_SOURCE=chat",
                "--ignore-predefined-vars",
                "CI_PIPELINE_SOURCE"
            ])
            .iter()
            .filter(|job| *job == "flagops")
            .count(),
        1
    );
    assert!(!project.jobs(&[]).contains(&"flagops".to_string()));

    let output = chat(&format!("get `{NAME}` --production"));
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(outcomes(&output), expect(&[("flagops", "PASS")]), "{}", output.stdout);
    let reply = chat_reply(&output);
    assert!(reply.contains(&format!("{NAME} ({FLAG})")), "{reply}");
    assert!(reply.contains("production: 50% of actors"), "{reply}");

    for (input, expected) in [
        (
            "sync --env production",
            "flagops: `sync` cannot be run from chat: use set, get or show",
        ),
        (
            "set x true --config /etc/passwd",
            "flagops: `--config` cannot be used from chat",
        ),
        ("", "usage: /chatops run flagops set|get|show NAME ..."),
    ] {
        let output = chat(input);
        assert_eq!(
            outcomes(&output),
            expect(&[("flagops", "FAIL")]),
            "{input}: {}",
            output.stdout
        );
        assert_eq!(chat_reply(&output), expected, "{input}");
    }

    let output = chat(&format!("get {NAME};touch${{IFS}}pwned $(touch pwned) `touch pwned`"));
    assert_eq!(outcomes(&output), expect(&[("flagops", "FAIL")]), "{}", output.stdout);
    let reply = chat_reply(&output);
    assert!(reply.contains("error: unexpected argument"), "{reply}");
    let build = project.registry.path().join(".gitlab-ci-local/builds/flagops");
    for dir in [project.registry.path(), build.as_path()] {
        assert!(!dir.join("pwned").exists(), "{}", dir.display());
    }
}

/// A note of the fake API.
#[derive(Clone, Debug)]
struct Note {
    id: u64,
    body: String,
    system: bool,
}

/// A request the fake API received.
#[derive(Debug)]
struct Request {
    method: String,
    target: String,
    token: Option<String>,
}

#[derive(Default)]
struct ApiState {
    notes: Vec<Note>,
    requests: Vec<Request>,
}

/// GitLab's merge-request notes API, as much of it as the note script uses, on loopback: list
/// (paged, with `X-Next-Page`), create and update, behind a `PRIVATE-TOKEN`.
struct NotesApi {
    address: SocketAddr,
    state: Arc<Mutex<ApiState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl NotesApi {
    fn start(notes_path: &str, token: &str, notes: Vec<Note>) -> NotesApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ApiState {
            notes,
            requests: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            let (notes_path, token) = (notes_path.to_string(), token.to_string());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        serve(stream, &state, &notes_path, &token);
                    }
                }
            })
        };
        NotesApi {
            address,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn notes(&self) -> Vec<Note> {
        self.state.lock().unwrap().notes.clone()
    }

    fn requests(&self) -> Vec<Request> {
        std::mem::take(&mut self.state.lock().unwrap().requests)
    }
}

impl Drop for NotesApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one HTTP/1.1 request and closes the connection.
fn serve(stream: TcpStream, state: &Mutex<ApiState>, notes_path: &str, token: &str) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut words = request_line.split_whitespace();
    let (method, target) = (
        words.next().unwrap_or("").to_string(),
        words.next().unwrap_or("").to_string(),
    );
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    if headers
        .get("expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
    }
    let length = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let body = String::from_utf8(body).unwrap();

    let mut state = state.lock().unwrap();
    state.requests.push(Request {
        method: method.clone(),
        target: target.clone(),
        token: headers.get("private-token").cloned(),
    });
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let note_json =
        |note: &Note| json!({"id": note.id, "body": note.body, "system": note.system, "author": {"username": "ada"}});
    let (status, extra, response) = if headers.get("private-token").map(String::as_str) != Some(token) {
        (
            "401 Unauthorized",
            String::new(),
            json!({"message": "401 Unauthorized"}),
        )
    } else if method == "GET" && path == notes_path {
        let parameters = form(query);
        let number = |name: &str, default: usize| parameters.get(name).and_then(|v| v.parse().ok()).unwrap_or(default);
        let (page, per_page) = (number("page", 1).max(1), number("per_page", 20).clamp(1, 100));
        let start = ((page - 1) * per_page).min(state.notes.len());
        let end = (start + per_page).min(state.notes.len());
        let next = if end < state.notes.len() {
            (page + 1).to_string()
        } else {
            String::new()
        };
        let notes: Vec<Value> = state.notes[start..end].iter().map(note_json).collect();
        ("200 OK", format!("X-Next-Page: {next}\r\n"), Value::Array(notes))
    } else if method == "POST" && path == notes_path {
        let id = state.notes.iter().map(|n| n.id).max().unwrap_or(0) + 1;
        let note = Note {
            id,
            body: form(&body).remove("body").unwrap_or_default(),
            system: false,
        };
        let response = note_json(&note);
        state.notes.push(note);
        ("201 Created", String::new(), response)
    } else if let Some(note) = path
        .strip_prefix(notes_path)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|id| id.parse::<u64>().ok())
        .and_then(|id| state.notes.iter_mut().find(|n| n.id == id))
        .filter(|_| method == "PUT")
    {
        note.body = form(&body).remove("body").unwrap_or_default();
        ("200 OK", String::new(), note_json(note))
    } else {
        ("404 Not Found", String::new(), json!({"message": "404 Not Found"}))
    };
    let response = response.to_string();
    let _ = write!(
        writer,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{response}",
        response.len()
    );
}

/// The fields of an `application/x-www-form-urlencoded` text.
fn form(text: &str) -> BTreeMap<String, String> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => decoded.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                decoded.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            byte => decoded.push(byte),
        }
        i += 1;
    }
    String::from_utf8(decoded).unwrap()
}

// Rollbacks get through the pipeline: with staging's state broken, `sync-staging` fails, and
// every later sync job still runs, without the marker of the job before it, so it passes
// `--hold-widening`. `sync-production` then applies the change that takes a flag from fully on
// down to its rollout, holds back the flag that production does not hold yet, says why, and
// fails; the site is not built.
#[test]
fn pipeline_applies_a_production_rollback_after_a_failed_staging_sync() {
    let Some(project) = Project::new() else { return };
    let registry = &project.registry;
    // Staging's and production's state live in committed files (jobs get only the committed
    // files and artifacts): staging's is broken, and production holds the flag fully on, where
    // the registry asks for 50% of actors and two projects, and nothing else yet.
    let config = registry
        .read("flagops.yml")
        .replace(
            "    url: https://staging.gitlab.com\n    backend: { kind: file }",
            "    url: https://staging.gitlab.com\n    backend: { kind: file, path: seeded/staging.json }",
        )
        .replace(
            "    url: https://gitlab.com\n    protected: true\n    backend: { kind: file }",
            "    url: https://gitlab.com\n    protected: true\n    backend: { kind: file, path: seeded/production.json }",
        );
    assert!(config.contains("seeded/staging.json") && config.contains("seeded/production.json"));
    registry.write("flagops.yml", config);
    registry.write("seeded/staging.json", "{ not json");
    registry.write(
        "seeded/production.json",
        // A sync record: flagops synced production before, so the takeover guard stays out.
        json!({
            "format": 1,
            "environment": "production",
            "revision": 0,
            "flags": {NAME: true},
            "last_sync": {"at": "2026-11-20T09:00:00Z", "resolved_at": "2026-11-20T09:00:00Z", "by": "ci", "changes": 1},
        })
        .to_string(),
    );
    registry.commit("a broken staging and a production to roll back");
    project.push_main();

    let output = project.gitlab_ci_local(&[]);
    assert_ne!(output.code, 0, "{output:?}");
    let outcomes = outcomes(&output);
    for (job, outcome) in [
        ("sync-dev", "PASS"),
        ("sync-pre", "PASS"),
        ("sync-staging", "FAIL"),
        ("sync-staging-ref", "FAIL"),
        // Its one change widens nothing (a flag on by default stored as on), so it passes, but
        // leaves no marker: production still holds back.
        ("sync-ops", "PASS"),
        ("sync-production", "FAIL"),
    ] {
        assert_eq!(
            outcomes.get(job).map(String::as_str),
            Some(outcome),
            "{job}: {}",
            output.stdout
        );
    }
    assert!(!outcomes.contains_key("pages"), "{}", output.stdout);
    let production: Vec<&str> = output
        .stdout
        .lines()
        .filter(|line| line.starts_with("sync-production "))
        .collect();
    let log = production.join("\n");
    for expected in [
        "--hold-widening: the sync job of ops did not succeed in this pipeline",
        &format!("  ~ {NAME}: true → 50% of actors, project:gitlab-com/www-gitlab-com, project:gitlab-org/gitlab"),
        "  held back    + ci_pipeline_variables_jsonb_reads: (absent) → true",
    ] {
        assert!(log.contains(expected), "no {expected:?} in:\n{log}");
    }
    // What production applied: the rollback, and only changes that widen nothing: flags stored
    // as off, and flags on by default stored as on.
    let applied: Vec<&str> = production
        .iter()
        .filter_map(|line| line.strip_prefix("sync-production  >   "))
        .filter(|change| change.starts_with(['+', '~', '-']))
        .collect();
    assert!(
        applied.contains(
            &format!("~ {NAME}: true → 50% of actors, project:gitlab-com/www-gitlab-com, project:gitlab-org/gitlab")
                .as_str()
        ),
        "{log}"
    );
    let on_by_default = |change: &str| {
        let name = change[2..].split(':').next().unwrap();
        walkdir::WalkDir::new(registry.path().join("flags"))
            .into_iter()
            .map(Result::unwrap)
            .find(|entry| entry.file_name().to_string_lossy() == format!("{name}.yml"))
            .is_some_and(|entry| {
                std::fs::read_to_string(entry.path())
                    .unwrap()
                    .contains("\ndefault_enabled: true\n")
            })
    };
    for change in &applied {
        assert!(
            change.starts_with(&format!("~ {NAME}:")) || change.ends_with("→ false") || on_by_default(change),
            "{change} widens exposure: {applied:#?}"
        );
    }
    assert!(log.contains("production: applied "), "{log}");
    // The failed jobs kept their artifacts too: staging-ref's audit log has the change it applied.
    let staging_ref = registry.audit("staging-ref");
    assert_eq!(staging_ref.len(), 1, "{staging_ref:#?}");
    assert_eq!(staging_ref[0]["environment"], "staging-ref");
}

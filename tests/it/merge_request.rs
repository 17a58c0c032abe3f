//! `set --commit` and `set --mr`: a registry that is a git repository with a bare repository as
//! its `origin`, and the fake GitLab's Merge Requests API.
//!
//! Every run checks that the token appears in no output; the merge requests' titles and
//! descriptions and the pushed commits are checked for it too.

use std::path::Path;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::fake_gitlab::{FakeGitlab, Fault, TOKEN};
use crate::harness::{Output, Registry, flag};

const FILE: &str = "flags/wip/alpha.yml";

/// A registry whose `origin` is a bare repository, with `merge_requests` pointing at a fake
/// GitLab's project `group/app`.
struct Setup {
    registry: Registry,
    remote: TempDir,
    gitlab: FakeGitlab,
}

impl Setup {
    fn new() -> Setup {
        Setup::with_section(|url| {
            format!(
                "merge_requests:\n  url: {url}\n  project: group/app\n  token_env: FLAGOPS_MR_TOKEN\n  labels: [feature flag, chatops]\n  timeout_seconds: 5\n"
            )
        })
    }

    /// A setup whose `merge_requests` section is `section(url)`; empty for none.
    fn with_section(section: impl Fn(&str) -> String) -> Setup {
        let gitlab = FakeGitlab::start();
        let registry = Registry::new();
        let config = registry.read("flagops.yml");
        let start = config
            .find("\nmerge_requests:\n")
            .expect("the default config has merge_requests")
            + 1;
        let end = start + config[start..].find("\n\n").expect("a blank line ends the section") + 1;
        registry.write(
            "flagops.yml",
            format!("{}{}{}", &config[..start], section(gitlab.url()), &config[end..]),
        );
        registry.write(FILE, flag("alpha", "environments:\n  production: false\n"));
        registry.write(
            "flags/wip/beta.yml",
            flag("beta", "environments:\n  production: false\n"),
        );
        registry.init_git();
        let remote = tempfile::tempdir().unwrap();
        git_in(remote.path(), &["init", "-q", "--bare", "-b", "main"]);
        let url = remote.path().to_str().unwrap().to_string();
        registry.git(&["remote", "add", "origin", &url]);
        registry.git(&["push", "-q", "origin", "main"]);
        registry.git(&["remote", "set-head", "origin", "main"]);
        Setup {
            registry,
            remote,
            gitlab,
        }
    }

    /// Runs `flagops ARGS` with the token set, and checks the token is printed nowhere.
    fn run(&self, args: &[&str]) -> Output {
        self.run_with_token(args, TOKEN)
    }

    fn run_with_token(&self, args: &[&str], token: &str) -> Output {
        let output = self.registry.run_with_env(args, &[("FLAGOPS_MR_TOKEN", token)]);
        assert!(
            !output.stdout.contains(TOKEN) && !output.stderr.contains(TOKEN),
            "the token was printed: {output:?}"
        );
        output
    }

    /// git in the bare remote.
    fn remote_git(&self, args: &[&str]) -> String {
        git_in(self.remote.path(), args)
    }

    /// The branches the remote has, but `main`.
    fn pushed_branches(&self) -> Vec<String> {
        self.remote_git(&["for-each-ref", "--format=%(refname:short)", "refs/heads/"])
            .lines()
            .filter(|branch| *branch != "main")
            .map(str::to_string)
            .collect()
    }

    /// The work tree is clean, on `main` at `head`, with the flag file as committed.
    #[track_caller]
    fn assert_untouched(&self, head: &str) {
        assert_eq!(self.registry.git(&["status", "--porcelain"]), "");
        assert_eq!(self.registry.git(&["symbolic-ref", "--short", "HEAD"]), "main");
        assert_eq!(self.registry.git(&["rev-parse", "HEAD"]), head);
        assert!(self.registry.read(FILE).contains("production: false"));
    }
}

fn git_in(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

// `--commit` commits the flag file alone, on the current branch, leaving other changes,
// staged or not, where they were.
#[test]
fn set_commit_commits_exactly_the_flag_file() {
    let setup = Setup::new();
    let registry = &setup.registry;
    registry.write("notes.txt", "staged, not to be committed\n");
    registry.git(&["add", "notes.txt"]);
    let beta = registry.read("flags/wip/beta.yml") + "# an edit of my own\n";
    registry.write("flags/wip/beta.yml", &beta);
    let before = registry.git(&["rev-parse", "HEAD"]);

    let output = setup.run(&["set", "alpha", "true", "--commit"]);
    assert_eq!(output.code, 0, "{output:?}");
    let head = registry.git(&["rev-parse", "HEAD"]);
    assert!(
        output.stdout.contains(&format!("committed {} on `main`", &head[..12])),
        "{}",
        output.stdout
    );
    assert_eq!(registry.git(&["rev-parse", "HEAD^"]), before);
    assert_eq!(registry.git(&["show", "--name-only", "--format=", "HEAD"]), FILE);
    assert_eq!(registry.git(&["log", "-1", "--format=%s"]), "alpha: true in production");
    assert_eq!(
        registry.git(&["log", "-1", "--format=%an <%ae>"]),
        "Ada Tester <ada@example.com>"
    );
    assert!(
        registry
            .git(&["show", "HEAD:flags/wip/alpha.yml"])
            .contains("production: true")
    );
    assert_eq!(
        registry.git(&["status", "--porcelain"]),
        "M flags/wip/beta.yml\nA  notes.txt"
    );
    assert!(setup.gitlab.take_requests().is_empty());
    assert!(setup.pushed_branches().is_empty());
}

// `--mr` pushes a branch whose one commit changes only the flag file, opens a merge request
// into the remote's default branch with the plan as its description, and leaves the work tree
// as it was.
#[test]
fn set_mr_pushes_a_branch_and_opens_a_merge_request() {
    let setup = Setup::new();
    let head = setup.registry.git(&["rev-parse", "HEAD"]);

    let output = setup.run(&["set", "alpha", "50", "--actors", "--mr"]);
    assert_eq!(output.code, 0, "{output:?}");
    setup.assert_untouched(&head);

    let branches = setup.pushed_branches();
    assert_eq!(branches.len(), 1, "{branches:?}");
    let branch = &branches[0];
    assert!(branch.starts_with("flagops/alpha-production-50-of-actors-"), "{branch}");
    assert_eq!(setup.remote_git(&["rev-parse", &format!("{branch}^")]), head);
    assert_eq!(setup.remote_git(&["diff", "--name-only", "main", branch]), FILE);
    let pushed = setup.remote_git(&["show", &format!("{branch}:{FILE}")]);
    assert!(pushed.contains("percentage_of_actors: 50"), "{pushed}");
    let message = setup.remote_git(&["log", "-1", "--format=%B", branch]);
    assert!(
        message.starts_with("alpha: 50% of actors in production\n\n"),
        "{message}"
    );
    assert!(message.contains("production: false → 50% of actors"), "{message}");
    assert!(!message.contains(TOKEN));
    // The local branch is kept, tracking the pushed one, for amendments.
    assert_eq!(
        setup
            .registry
            .git(&["rev-parse", "--abbrev-ref", &format!("{branch}@{{upstream}}")]),
        format!("origin/{branch}")
    );

    let requests = setup.gitlab.world().merge_requests.clone();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.source_branch, *branch);
    assert_eq!(request.target_branch, "main");
    assert_eq!(request.title, "alpha: 50% of actors in production");
    assert_eq!(request.labels, ["feature flag", "chatops"]);
    assert!(request.remove_source_branch);
    assert!(!request.auto_merge);
    assert!(
        request.description.contains("### flagops plan"),
        "{}",
        request.description
    );
    assert!(
        request
            .description
            .contains("| production | `alpha` | update | false | 50% of actors |"),
        "{}",
        request.description
    );
    assert!(!request.description.contains(TOKEN) && !request.title.contains(TOKEN));
    assert_eq!(
        setup.gitlab.take_requests(),
        ["POST /api/v4/projects/group%2Fapp/merge_requests"]
    );
    assert!(
        output.stdout.contains(&format!("as branch `{branch}`")),
        "{}",
        output.stdout
    );
    assert!(
        output.stdout.contains(&format!(
            "opened merge request !1 into `main`: {}/group/app/-/merge_requests/1",
            setup.gitlab.url()
        )),
        "{}",
        output.stdout
    );
}

// `--auto-merge` asks GitLab to merge when the pipeline succeeds; `--format json` reports the
// commit, the branch and the merge request, and who asked for it from ChatOps.
#[test]
fn set_mr_auto_merge_sets_the_merge_request_to_merge_when_the_pipeline_succeeds() {
    let setup = Setup::new();
    let output = setup.registry.run_with_env(
        &["set", "alpha", "true", "--mr", "--auto-merge", "--format", "json"],
        &[
            ("FLAGOPS_MR_TOKEN", TOKEN),
            ("GITLAB_USER_LOGIN", "ada"),
            ("CHAT_USER_ID", "U024BE7LH"),
        ],
    );
    assert_eq!(output.code, 0, "{output:?}");
    assert!(!output.stdout.contains(TOKEN) && !output.stderr.contains(TOKEN));
    let report: Value = serde_json::from_str(&output.stdout).unwrap();
    let published = &report["published"];
    let branch = setup.pushed_branches().remove(0);
    assert_eq!(published["branch"], json!(branch));
    assert_eq!(published["remote"], "origin");
    assert_eq!(published["commit"], json!(setup.remote_git(&["rev-parse", &branch])));
    assert_eq!(
        published["merge_request"],
        json!({
            "iid": 1,
            "url": format!("{}/group/app/-/merge_requests/1", setup.gitlab.url()),
            "target_branch": "main",
            "auto_merge": true,
        })
    );
    let request = setup.gitlab.world().merge_requests[0].clone();
    assert!(request.auto_merge);
    assert!(
        request
            .description
            .contains("Requested by @ada (chat user `U024BE7LH`) through ChatOps."),
        "{}",
        request.description
    );
    assert_eq!(
        setup.gitlab.take_requests(),
        [
            "POST /api/v4/projects/group%2Fapp/merge_requests",
            "PUT /api/v4/projects/group%2Fapp/merge_requests/1/merge"
        ]
    );
}

// A push the remote rejects publishes nothing: no branch is left, locally or on the remote,
// the work tree is as it was, and GitLab is not called.
#[test]
fn set_mr_rejected_push_leaves_no_branch_and_the_tree_as_it_was() {
    let setup = Setup::new();
    let hook = setup.remote.path().join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'pushes are closed today' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let head = setup.registry.git(&["rev-parse", "HEAD"]);

    let output = setup.run(&["set", "alpha", "true", "--mr"]);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(
        output.stderr.contains("could not push `flagops/alpha-production-true-"),
        "{}",
        output.stderr
    );
    assert!(
        output
            .stderr
            .contains("so nothing is published: the local branch is deleted and `flags/wip/alpha.yml` is as it was"),
        "{}",
        output.stderr
    );
    assert!(output.stderr.contains("pushes are closed today"), "{}", output.stderr);
    setup.assert_untouched(&head);
    assert_eq!(setup.registry.git(&["branch", "--list", "flagops/*"]), "");
    assert!(setup.pushed_branches().is_empty());
    assert!(setup.gitlab.take_requests().is_empty());
}

// Each answer GitLab can give instead of a merge request says what happened and how to
// finish, keeps the pushed branch, leaves the work tree as it was, and exits with 2.
#[test]
fn set_mr_gitlab_errors_keep_the_branch_and_say_how_to_retry() {
    let setup = Setup::new();
    let head = setup.registry.git(&["rev-parse", "HEAD"]);
    let open = "POST /api/v4/projects/group%2Fapp/merge_requests";
    let cases: Vec<(&str, Option<Fault>, &str)> = vec![
        (
            "wrong token",
            None,
            "GitLab refused the token in `FLAGOPS_MR_TOKEN` (401 Unauthorized)",
        ),
        (
            "403",
            Some(Fault::Status(403, None)),
            "the token's user needs at least the Developer role in `group/app`",
        ),
        (
            "404",
            Some(Fault::Status(404, None)),
            "no project `group/app` that the token",
        ),
        (
            "409",
            Some(Fault::Reply(
                409,
                json!({"message": ["Another open merge request already exists for this source branch: !4"]}),
            )),
            "Another open merge request already exists for this source branch: !4\"]\nhelp: GitLab allows one open merge request per source branch",
        ),
        (
            "422",
            Some(Fault::Reply(422, json!({"message": ["Validation failed"]}))),
            "GitLab refused to open a merge request from `flagops/",
        ),
        (
            "500",
            Some(Fault::Status(500, None)),
            "GitLab answered 500 Internal Server Error",
        ),
    ];
    for (case, fault, expected) in cases {
        let token = match &fault {
            None => "glpat-wrong",
            Some(fault) => {
                setup.gitlab.fail_next(open, fault.clone());
                TOKEN
            }
        };
        let before = setup.pushed_branches();
        let output = setup.run_with_token(&["set", "alpha", "true", "--mr"], token);
        assert_eq!(output.code, 2, "{case}: {output:?}");
        assert!(output.stderr.contains(expected), "{case}: {}", output.stderr);
        let branch = setup
            .pushed_branches()
            .into_iter()
            .find(|branch| !before.contains(branch))
            .unwrap_or_else(|| panic!("{case}: no branch was pushed"));
        assert!(
            output.stderr.contains(&format!(
                "`{branch}` is pushed to `origin`, but GitLab did not open its merge request"
            )),
            "{case}: {}",
            output.stderr
        );
        let by_hand = format!(
            "help: open the merge request in a browser: {}/group/app/-/merge_requests/new?merge_request%5Bsource_branch%5D={}&merge_request%5Btarget_branch%5D=main",
            setup.gitlab.url(),
            branch.replace('/', "%2F")
        );
        assert!(output.stderr.contains(&by_hand), "{case}: {}", output.stderr);
        assert!(
            output.stderr.contains(&format!(
                "`git push origin --delete {branch}` and `git branch -D {branch}`"
            )),
            "{case}: {}",
            output.stderr
        );
        setup.assert_untouched(&head);
    }
    assert!(setup.gitlab.world().merge_requests.is_empty());
}

// When GitLab will not set auto-merge, the merge request stays open, a note on it says so,
// and the command exits with 2 naming the merge request.
#[test]
fn set_mr_auto_merge_refused_leaves_a_note_and_says_so() {
    let setup = Setup::new();
    setup.gitlab.fail_next(
        "PUT /api/v4/projects/group%2Fapp/merge_requests/1/merge",
        Fault::Reply(422, json!({"message": "Branch cannot be merged"})),
    );
    let output = setup.run(&["set", "alpha", "true", "--mr", "--auto-merge"]);
    assert_eq!(output.code, 2, "{output:?}");
    let url = format!("{}/group/app/-/merge_requests/1", setup.gitlab.url());
    assert!(
        output.stderr.contains(&format!(
            "merge request !1 is open at {url}, but it is not set to auto-merge"
        )),
        "{}",
        output.stderr
    );
    assert!(output.stderr.contains("Branch cannot be merged"), "{}", output.stderr);
    let request = setup.gitlab.world().merge_requests[0].clone();
    assert!(!request.auto_merge);
    assert_eq!(request.notes.len(), 1);
    assert!(request.notes[0].contains("GitLab refused"), "{:?}", request.notes);
}

// What `--mr` cannot do safely is refused before anything is written, with exit code 1: no
// `merge_requests` section, no token, a flag file with changes of its own, a merge in
// progress; and `--auto-merge` needs `--mr`.
#[test]
fn set_mr_refuses_what_it_cannot_publish_cleanly() {
    let setup = Setup::with_section(|_| String::new());
    let head = setup.registry.git(&["rev-parse", "HEAD"]);
    let output = setup.run(&["set", "alpha", "true", "--mr"]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output.stderr.contains(
            "error: `--mr` needs a `merge_requests` section in flagops.yml\nhelp: add one such as\n  merge_requests:\n    url: https://gitlab.example.com\n"
        ),
        "{}",
        output.stderr
    );
    setup.assert_untouched(&head);

    let setup = Setup::new();
    let head = setup.registry.git(&["rev-parse", "HEAD"]);
    let output = setup.registry.run(&["set", "alpha", "true", "--mr"]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output
            .stderr
            .contains("reads its GitLab token from `FLAGOPS_MR_TOKEN`, which is not set"),
        "{}",
        output.stderr
    );
    setup.assert_untouched(&head);

    let edited = setup.registry.read(FILE) + "# my own edit\n";
    setup.registry.write(FILE, &edited);
    for mode in ["--mr", "--commit"] {
        let output = setup.run(&["set", "alpha", "true", mode]);
        assert_eq!(output.code, 1, "{output:?}");
        assert!(
            output
                .stderr
                .contains("`flags/wip/alpha.yml` has uncommitted changes of its own"),
            "{}",
            output.stderr
        );
        assert_eq!(setup.registry.read(FILE), edited);
    }
    setup.registry.git(&["checkout", "--", FILE]);

    std::fs::write(setup.registry.path().join(".git/MERGE_HEAD"), format!("{head}\n")).unwrap();
    let output = setup.run(&["set", "alpha", "true", "--mr"]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(output.stderr.contains("a merge is in progress"), "{}", output.stderr);
    std::fs::remove_file(setup.registry.path().join(".git/MERGE_HEAD")).unwrap();

    let output = setup.run(&["set", "alpha", "true", "--auto-merge"]);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(output.stderr.contains("--mr"), "{}", output.stderr);
    setup.assert_untouched(&head);
    assert!(setup.pushed_branches().is_empty());
    assert!(setup.gitlab.take_requests().is_empty());
}

/// Syncs production, so that it holds what the registry says.
fn sync_production(setup: &Setup) {
    let synced = setup.registry.run(&["sync", "--env", "production"]);
    assert_eq!(synced.code, 0, "{synced:?}");
}

/// What production holds for `flag`, and its hold.
fn production(setup: &Setup, flag: &str) -> (Value, Value) {
    let state = setup.registry.state("production");
    (state["flags"][flag].clone(), state["holds"][flag].clone())
}

// Break glass with `--mr`: the change is applied and held at once, the edit goes out as a merge
// request whose commit holds exactly the flag file and whose description says it is an
// emergency, with the reason and the hold; the hold then names the merge request, which `plan`
// and `status` show, and the work tree is as it was.
#[test]
fn set_emergency_mr_applies_holds_and_the_hold_names_the_merge_request() {
    let setup = Setup::new();
    sync_production(&setup);
    let head = setup.registry.git(&["rev-parse", "HEAD"]);

    let output = setup.run(&[
        "set",
        "alpha",
        "true",
        "--production",
        "--emergency",
        "--reason",
        "INC-123: errors",
        "--mr",
    ]);
    assert_eq!(output.code, 0, "{output:?}");
    setup.assert_untouched(&head);
    let url = format!("{}/group/app/-/merge_requests/1", setup.gitlab.url());
    let (state, hold) = production(&setup, "alpha");
    assert_eq!(state, json!(true));
    assert_eq!(hold["reason"], "INC-123: errors");
    assert_eq!(hold["merge_request"], json!(url), "{hold}");
    let last = setup.registry.audit("production").last().cloned().unwrap();
    assert_eq!(last["reason"], "INC-123: errors");
    assert!(
        output.stdout.contains("production: applied ~ alpha: false → true"),
        "{}",
        output.stdout
    );
    assert!(
        output
            .stdout
            .contains(&format!("opened merge request !1 into `main`: {url}")),
        "{}",
        output.stdout
    );

    let branches = setup.pushed_branches();
    assert_eq!(branches.len(), 1, "{branches:?}");
    let branch = &branches[0];
    assert!(
        branch.starts_with("flagops/emergency-alpha-production-true-"),
        "{branch}"
    );
    assert_eq!(setup.remote_git(&["diff", "--name-only", "main", branch]), FILE);
    let message = setup.remote_git(&["log", "-1", "--format=%B", branch]);
    assert!(
        message.starts_with("Emergency: alpha: true in production\n\n"),
        "{message}"
    );
    assert!(message.contains("Reason: INC-123: errors"), "{message}");
    let request = setup.gitlab.world().merge_requests[0].clone();
    assert_eq!(request.title, "Emergency: alpha: true in production");
    assert!(
        request.description.starts_with("**Emergency change**"),
        "{}",
        request.description
    );
    assert!(
        request.description.contains("**Reason:** INC-123: errors"),
        "{}",
        request.description
    );
    assert!(
        request
            .description
            .contains("- production: held by an emergency change: "),
        "{}",
        request.description
    );
    assert!(
        request
            .description
            .contains("| production | `alpha` | update | false | true |"),
        "{}",
        request.description
    );

    // The default branch still says `false`: syncs keep the flag held, naming the merge request.
    let plan = setup.registry.run(&["plan", "--env", "production"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(
        plan.stdout.contains("held by an emergency change") && plan.stdout.contains(&format!("({url})")),
        "{}",
        plan.stdout
    );
    let status = setup
        .registry
        .run(&["status", "--env", "production", "--format", "json"]);
    let statuses: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        statuses[0]["held"][0]["hold"]["merge_request"],
        json!(url),
        "{}",
        status.stdout
    );
    assert_eq!(production(&setup, "alpha").0, json!(true));
}

// `--mr` that cannot be done is refused before the emergency touches anything: no change, no
// hold, no audit record, no branch, no request.
#[test]
fn set_emergency_mr_refused_up_front_applies_nothing() {
    let setup = Setup::with_section(|_| String::new());
    sync_production(&setup);
    let head = setup.registry.git(&["rev-parse", "HEAD"]);
    let audit = setup.registry.audit("production").len();

    let output = setup.run(&[
        "set",
        "alpha",
        "true",
        "--production",
        "--emergency",
        "--reason",
        "INC-123: errors",
        "--mr",
    ]);
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        output
            .stderr
            .contains("error: `--mr` needs a `merge_requests` section in flagops.yml"),
        "{}",
        output.stderr
    );
    setup.assert_untouched(&head);
    assert_eq!(production(&setup, "alpha"), (json!(false), Value::Null));
    assert_eq!(setup.registry.audit("production").len(), audit);
    assert!(setup.pushed_branches().is_empty());
    assert!(setup.gitlab.take_requests().is_empty());
}

/// Sets what production holds for `flag` outside git.
fn drift(setup: &Setup, flag: &str, value: Value) {
    let mut state = setup.registry.state("production");
    state["flags"][flag] = value;
    setup.registry.write(
        ".flagops/state/production.json",
        serde_json::to_string_pretty(&state).unwrap(),
    );
}

// `adopt --mr` sends exactly the adopted files as a merge request with the adoption's message,
// leaving the work tree as it was; `--dry-run` with `--mr` publishes nothing.
#[test]
fn adopt_mr_opens_a_merge_request_of_exactly_the_adopted_files() {
    let setup = Setup::new();
    sync_production(&setup);
    drift(&setup, "alpha", json!(true));
    drift(&setup, "beta", json!({"percentage_of_actors": 30}));
    setup.registry.write("notes.txt", "not to be published\n");
    let head = setup.registry.git(&["rev-parse", "HEAD"]);

    let dry = setup.run(&["adopt", "--production", "--dry-run", "--mr"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(dry.stdout.contains("dry run: nothing written"), "{}", dry.stdout);
    assert!(setup.pushed_branches().is_empty());
    assert!(setup.gitlab.take_requests().is_empty());

    let output = setup.run(&["adopt", "--production", "--mr"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(setup.registry.git(&["status", "--porcelain"]), "?? notes.txt");
    assert_eq!(setup.registry.git(&["rev-parse", "HEAD"]), head);
    let branches = setup.pushed_branches();
    assert_eq!(branches.len(), 1, "{branches:?}");
    let branch = &branches[0];
    assert!(branch.starts_with("flagops/adopt-alpha-beta-"), "{branch}");
    assert_eq!(
        setup.remote_git(&["diff", "--name-only", "main", branch]),
        format!("{FILE}\nflags/wip/beta.yml")
    );
    let pushed = setup.remote_git(&["show", &format!("{branch}:flags/wip/beta.yml")]);
    assert!(pushed.contains("percentage_of_actors: 30"), "{pushed}");
    let title = "Adopt the state of `alpha` and `beta` changed outside git in production";
    assert_eq!(setup.remote_git(&["log", "-1", "--format=%s", branch]), title);
    let request = setup.gitlab.world().merge_requests[0].clone();
    assert_eq!(request.title, title);
    assert!(
        request
            .description
            .contains("| production | `beta` | update | false | 30% of actors |"),
        "{}",
        request.description
    );
    assert!(
        output.stdout.contains(&format!(
            "opened merge request !1 into `main`: {}/group/app/-/merge_requests/1",
            setup.gitlab.url()
        )),
        "{}",
        output.stdout
    );
}

// `adopt --commit` commits exactly the adopted file on the current branch, leaving another
// file's own edit where it was.
#[test]
fn adopt_commit_commits_exactly_the_adopted_files() {
    let setup = Setup::new();
    sync_production(&setup);
    drift(&setup, "alpha", json!(true));
    let registry = &setup.registry;
    let beta = registry.read("flags/wip/beta.yml") + "# an edit of my own\n";
    registry.write("flags/wip/beta.yml", &beta);
    let before = registry.git(&["rev-parse", "HEAD"]);

    let output = setup.run(&["adopt", "alpha", "--production", "--commit"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(registry.git(&["rev-parse", "HEAD^"]), before);
    assert_eq!(registry.git(&["show", "--name-only", "--format=", "HEAD"]), FILE);
    assert_eq!(
        registry.git(&["log", "-1", "--format=%B"]),
        "Adopt the state of `alpha` changed outside git in production\n\nalpha in production: false → true\n\nplan:\ndev: no changes\npre: no changes\nstaging: no changes\nstaging-ref: no changes\nops: no changes\nproduction: 1 change\n  ~ alpha: false → true\n1 change in 1 of 6 environments"
    );
    assert_eq!(registry.git(&["status", "--porcelain"]), "M flags/wip/beta.yml");
    assert_eq!(registry.run(&["status", "--env", "production", "--exit-code"]).code, 0);
    assert!(setup.gitlab.take_requests().is_empty());
}

// From chat, `set --emergency` is refused with a pointer to the runbook unless the team sets
// `FLAGOPS_CHATOPS_EMERGENCY` to `true`; then it breaks glass and opens the merge request.
#[test]
fn chatops_emergency_is_refused_unless_the_team_allows_it() {
    let setup = Setup::new();
    sync_production(&setup);
    let binary = Path::new(env!("CARGO_BIN_EXE_flagops")).parent().unwrap();
    let path = format!("{}:{}", binary.display(), std::env::var("PATH").unwrap_or_default());
    let script = crate::harness::repo_root().join("scripts/ci/chatops.sh");
    let chat = |allowed: Option<&str>| {
        let mut command = std::process::Command::new("sh");
        command
            .arg(&script)
            .current_dir(setup.registry.path())
            .env("PATH", &path)
            .env("CHAT_INPUT", "set alpha true --production --emergency --reason INC-7")
            .env("FLAGOPS_MR_TOKEN", TOKEN)
            .env_remove("FLAGOPS_CHATOPS_PUSH_URL")
            .env_remove("FLAGOPS_CHATOPS_EMERGENCY")
            .env_remove("GITLAB_USER_LOGIN")
            .env_remove("CHAT_USER_ID");
        if let Some(value) = allowed {
            command.env("FLAGOPS_CHATOPS_EMERGENCY", value);
        }
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };

    for allowed in [None, Some("yes")] {
        let (code, reply) = chat(allowed);
        assert_eq!(code, Some(1), "{reply}");
        assert!(
            reply.contains("`--emergency` cannot be used from chat") && reply.contains("docs/set.md#break-glass"),
            "{reply}"
        );
        assert_eq!(production(&setup, "alpha"), (json!(false), Value::Null));
        assert!(setup.gitlab.take_requests().is_empty());
    }

    let (code, reply) = chat(Some("true"));
    assert_eq!(code, Some(0), "{reply}");
    assert!(!reply.contains(TOKEN));
    let (state, hold) = production(&setup, "alpha");
    assert_eq!(state, json!(true));
    assert_eq!(
        hold["merge_request"],
        json!(format!("{}/group/app/-/merge_requests/1", setup.gitlab.url()))
    );
}

// A push rejected after the environments took the emergency change leaves it applied and held,
// says so with exit 2, and running the same command again publishes it: the environment holds
// the change already, so only the hold is renewed, and it then names the merge request.
#[test]
fn set_emergency_mr_failing_to_publish_keeps_the_change_and_a_retry_publishes_it() {
    let setup = Setup::new();
    sync_production(&setup);
    let head = setup.registry.git(&["rev-parse", "HEAD"]);
    let hook = setup.remote.path().join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'pushes are closed today' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let args = [
        "set",
        "alpha",
        "true",
        "--production",
        "--emergency",
        "--reason",
        "INC-9",
        "--mr",
    ];

    let output = setup.run(&args);
    assert_eq!(output.code, 2, "{output:?}");
    assert!(
        output.stdout.contains("production: applied ~ alpha: false → true"),
        "{}",
        output.stdout
    );
    assert!(
        output.stderr.contains(
            "error: the emergency change to `alpha` is applied and held in production, and stays so, but it is not published"
        ),
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("run the same command again"),
        "{}",
        output.stderr
    );
    assert!(output.stderr.contains("pushes are closed today"), "{}", output.stderr);
    setup.assert_untouched(&head);
    let (state, hold) = production(&setup, "alpha");
    assert_eq!(state, json!(true));
    assert_eq!(hold["reason"], "INC-9");
    assert_eq!(hold.get("merge_request"), None, "{hold}");
    assert!(setup.gitlab.take_requests().is_empty());

    std::fs::remove_file(&hook).unwrap();
    let audit = setup.registry.audit("production").len();
    let output = setup.run(&args);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("production: already true"), "{}", output.stdout);
    assert_eq!(setup.registry.audit("production").len(), audit, "nothing applied again");
    let (state, hold) = production(&setup, "alpha");
    assert_eq!(state, json!(true));
    assert_eq!(
        hold["merge_request"],
        json!(format!("{}/group/app/-/merge_requests/1", setup.gitlab.url()))
    );
    assert_eq!(setup.pushed_branches().len(), 1);
}

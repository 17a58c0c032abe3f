//! Command-line types (clap derive) and nothing else: commands turn these into plain inputs.

use std::path::PathBuf;

use std::ffi::OsString;

use clap::{Arg, ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// flagops: a GitOps feature-flag registry.
///
/// Flags live as YAML files in git. `flagops validate` checks them against the JSON Schema and
/// named semantic checks; `plan` shows what would change in each environment, `sync` applies it
/// in promotion order, `status` shows drift, `history` reads each flag's changes from git, and
/// `site` publishes all of it. `deploy` is the main job: validate, sync, site.
/// Exit codes: 0 success, 1 findings (invalid files, a non-empty plan with `--exit-code`),
/// 2 the tool failed.
#[derive(Debug, Parser)]
#[command(name = "flagops", version = crate::VERSION, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// The registry config; by default `flagops.yml` in the current directory or a parent.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The id of the argument behind an environment switch.
fn switch_id(switch: &str) -> String {
    format!("environment switch {switch}")
}

/// The commands that take the environment switches of `flagops.yml`.
pub const SWITCH_COMMANDS: &[&str] = &["set", "get", "show", "adopt"];

/// Parses `args` as `Cli`, with the `SWITCH_COMMANDS` also taking the environment switches of
/// `flagops.yml`: `(switch, environment)` pairs, `--production` naming `production`.
///
/// A switch is added as a flag of its own, so clap lists it in `--help`, suggests it for a typo
/// and accepts it anywhere on the line; the environments it names are added to `--env`.
/// A switch that spells an option the command already has, or an earlier switch, is left out.
/// Exits as clap does (usage errors with 2) when the line cannot be parsed.
pub fn parse_with_switches(args: Vec<OsString>, switches: &[(String, String)]) -> Cli {
    let mut command = Cli::command();
    for name in SWITCH_COMMANDS {
        command = command.mut_subcommand(name, |mut sub| {
            for (switch, environment) in switches {
                let taken = sub
                    .get_arguments()
                    .any(|arg| arg.get_long() == Some(switch.as_str()) || arg.get_id() == switch_id(switch).as_str());
                if taken {
                    continue;
                }
                sub = sub.arg(
                    Arg::new(switch_id(switch))
                        .long(switch.clone())
                        .action(ArgAction::SetTrue)
                        .help(format!("The environment `{environment}` (a `switch` in flagops.yml)"))
                        .help_heading("Environment switches"),
                );
            }
            sub
        });
    }
    let matches = command.get_matches_from(args);
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    if let Some((_, sub)) = matches.subcommand() {
        let chosen = switches
            .iter()
            .filter(|(switch, _)| sub.try_get_one::<bool>(&switch_id(switch)).ok().flatten() == Some(&true))
            .map(|(_, environment)| environment.clone());
        match &mut cli.command {
            Command::Set(args) => args.environments.extend(chosen),
            Command::Get(args) => args.environments.extend(chosen),
            Command::Show(args) => args.environments.extend(chosen),
            Command::Adopt(args) => args.environments.extend(chosen),
            _ => {}
        }
    }
    cli
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check flag files against the schema and every semantic check.
    ///
    /// Reads `flagops.yml` and every flag file, reports every problem with file:line:column, a
    /// check id and a hint, and exits 1 if any error was found. With PATH, reports only the
    /// files under it (the whole registry is still read, for cross-file checks); a PATH outside
    /// the registry's flags directory is checked as a flags directory of its own.
    Validate(ValidateArgs),
    /// Print the JSON Schema of flag files or of `flagops.yml`.
    Schema(SchemaArgs),
    /// List the semantic checks with their ids.
    Checks,
    /// Write a new flag file from the template, as GitLab's `bin/feature-flag` does.
    New(NewArgs),
    /// Write a new registry repository, ready to commit: `flagops.yml`, `flags/`, the schemas for
    /// editors, a `.gitlab-ci.yml` that downloads this version of flagops and a README.
    ///
    /// DIR (by default the current directory) is created when missing. A folder that already
    /// holds files is accepted only when none of them would be overwritten; otherwise nothing is
    /// written and the command exits 1:
    ///
    ///   flagops init flag-registry --env dev --env staging --env production=https://example.com
    ///
    ///   flagops init flag-registry --gitlab-com
    Init(InitArgs),
    /// Convert flag definitions from another system into registry flag files.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Show what a sync would change in each environment, without changing anything.
    ///
    /// Compares the desired state (the registry, with rollout plans resolved at `--at`, by
    /// default now) with each environment's actual state, in promotion order. With `--base REV`,
    /// compares the working tree's registry with the one at REV instead and needs no backend:
    /// the merge-request view.
    Plan(PlanArgs),
    /// Apply the registry to every environment, in promotion order.
    ///
    /// Refuses a registry with errors. Takes each environment's lock, plans afresh, applies the
    /// changes one by one (retrying transient failures), and records who applied what, when and
    /// from which commit. A failure stops that environment and the later ones; a rerun finishes
    /// the job. Flags gone from the registry are deleted only with `--prune`.
    Sync(SyncArgs),
    /// Show, per environment, what is in sync, what is pending and what drifted.
    ///
    /// Pending: the registry asks for a change not yet synced. Drifted: the environment was
    /// changed outside git since its last sync. Also shows when each environment was last synced
    /// and at which commit.
    Status(StatusArgs),
    /// The main job: validate, sync every environment, then build the site.
    Deploy(DeployArgs),
    /// Show a flag's history from git: every change, with commit, author, time and merge request.
    ///
    /// One first-parent walk of the checked-out branch, cached in `cache_dir` so later runs
    /// read only new commits.
    History(HistoryArgs),
    /// Build the static registry site: every flag, its state everywhere, its history.
    ///
    /// Writes an index with search and filters, a page per flag, per environment and per type,
    /// stale flags, an Atom feed and `flags.json`. All links are relative (it works under any
    /// sub-path, such as GitLab Pages), and identical input gives identical bytes.
    Site(SiteArgs),
    /// Show a flag's rollout plan: every step, which one is current, the next and when it is due.
    Rollout(RolloutArgs),
    /// Evaluate a flag for actors offline, exactly as Flipper decides it in GitLab.
    ///
    /// Tries the gates in Flipper's order (boolean, actors, percentage of actors, percentage of
    /// time, groups) against the desired state at `--at` (default now) and says which gate
    /// decided. Percentage of actors hashes the flag name and the actor's Flipper id:
    /// crc32("<flag><actor>") % 100000 < percentage × 1000. With `--percentage` or
    /// `--compare-at`, also counts how many of the actors switch.
    Eval(EvalArgs),
    /// Run the registry's evaluation tests: expected results for actors, environments and times.
    ///
    /// Reads every `*.yml` under the config's `tests_dir` (default `flag-tests/`) and evaluates
    /// each expectation as `flagops eval` would. Exits 1 when any fails.
    Test(TestArgs),
    /// List flags past or near their type's maximum age or `intended_to_rollout_by`, and flags
    /// ready for removal (fully on or fully off everywhere).
    Stale(StaleArgs),
    /// Change a flag's desired state in its file, with ChatOps's `feature set` syntax.
    ///
    /// The line from a rollout issue works after the word `flagops`:
    ///
    ///   flagops set my_flag 50 --actors --dev --pre --staging --staging-ref
    ///
    ///   flagops set my_flag true --project=gitlab-org/gitlab,gitlab-org/gitlab-foss --production
    ///
    ///   flagops set my_flag --delete --dev --pre --staging --staging-ref --production
    ///
    /// VALUE is `true`, `false` or a percentage from 0 to 100; a percentage needs `--actors` (of
    /// actors) or `--random` (of time). `--project=`, `--group=`, `--user=`, `--namespace=`,
    /// `--repository=` and `--feature-group=` add the actors or groups they name with `true`
    /// (or 100) and remove them with `false` (or 0), keeping the other gates, as GitLab's
    /// Features API does. The environments are named by `--env NAME` or by the switches
    /// `flagops.yml` declares (`switch:`, such as `--production`); with none, the config's
    /// `default_environment` (production). Only the lines of the changed environments are
    /// rewritten; the file must still validate, or nothing is written. Prints the plan of what
    /// the change does; commit it and open a merge request as for any other change.
    /// With `--emergency --reason TEXT`, the change is also applied to the environments at once
    /// and held there, so that no sync reverts it until the reviewed change reaches the registry
    /// (docs/set.md, "Break glass").
    /// Exits 1 on a refusal or an invalid result, 2 when the tool fails.
    Set(SetArgs),
    /// Release a flag's emergency holds, so that the next sync applies the registry's state.
    ///
    /// Takes each environment's lock, removes the hold `set --emergency` stored, and prints what
    /// the next sync will do for the flag there. A sync also releases a hold by itself once a
    /// reviewed change to the flag reaches the registry.
    Release(ReleaseArgs),
    /// Send the notifications a sync left pending (`notifications` in flagops.yml).
    ///
    /// A sync sends each change's notifications after applying it; one that fails is kept in the
    /// environment's outbox and reported. This sends every pending one again, once each, after
    /// settling against the backend's state what a sync killed mid-change left:
    ///
    ///   flagops notify --retry
    ///
    /// Exits 2 when a notification is still pending.
    Notify(NotifyArgs),
    /// Show a flag's desired state in each environment, as ChatOps's `feature get` does.
    ///
    /// Environments are chosen as for `set` (`--env NAME` or a switch such as `--staging`); with
    /// none, every environment is shown:
    ///
    ///   flagops get my_flag --staging --production
    Get(GetArgs),
    /// Show everything about a flag on one screen: its definition, its desired and actual state
    /// in every environment side by side, its rollout plan, its last changes and who requires it.
    ///
    /// Each environment's backend is read read-only, as `status` reads it: a state that differs
    /// from the registry is marked `pending` (changed in git, not synced yet) or `drifted`
    /// (changed outside git); an environment whose backend cannot be read is shown as unreadable
    /// with the reason. Environments are chosen as for `get` (`--env NAME` or a switch such as
    /// `--production`); with none, every environment is shown:
    ///
    ///   flagops show my_flag --staging --production
    ///
    /// Exits 1 for an unknown flag or environment, 2 when the tool fails.
    Show(ShowArgs),
    /// Turn drift into file edits: write what the environments hold into the flag files,
    /// instead of letting the next sync revert it.
    ///
    /// For each environment (`--env NAME` or a switch; by default all) and flag (NAME; by
    /// default all) that `status` reports as drifted, sets `environments.<env>` in the flag's
    /// file to the state the backend holds, rewriting only those lines, so that the registry's
    /// desired state equals it and `status` is clean once the change is merged:
    ///
    ///   flagops adopt my_flag --production
    ///
    /// Pending changes (changed in git, not synced yet) are never adopted. Refused, and nothing
    /// written: a flag whose due rollout step sets the environment (edit the rollout plan), a
    /// flag the backend holds that has no file (`flagops import` or `new`), a state the file
    /// cannot spell (an opt-out, an actor GitLab cannot name). The result must validate, or
    /// every file is put back. Prints the files edited and the plan of the change; commit it and
    /// open a merge request as for any other change. `--dry-run` writes nothing.
    /// Exits 1 on a refusal or an invalid result, 2 when the tool fails.
    Adopt(AdoptArgs),
    /// Print a shell completion script for flagops.
    ///
    /// The completions are static: they know every command and option, but not the
    /// environment switches of a registry's `flagops.yml` (`--production`), which each command
    /// still accepts. Install the script where the shell looks for completions:
    ///
    ///   flagops completions bash > ~/.local/share/bash-completion/completions/flagops
    Completions(CompletionsArgs),
    /// Print flagops's manual page (roff), for `man`.
    ///
    ///   flagops man > ~/.local/share/man/man1/flagops.1
    Man,
}

/// Arguments of `flagops completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells `flagops completions` writes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
}

/// The completion script of `flagops` for `shell`.
pub fn completions(shell: CompletionShell) -> Vec<u8> {
    let generator = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(generator, &mut Cli::command(), "flagops", &mut out);
    out
}

/// The manual page of `flagops`, in roff.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    Ok(out)
}

/// Arguments of `flagops show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The flag's name (surrounding backticks, which chat clients add, are removed).
    pub name: String,
    /// An environment by name (repeatable), as well as or instead of its switch; by default all.
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
    /// Describe this time (`now`, a date, an RFC 3339 time or `+2h`) instead of now: the desired state and the rollout plan's
    /// position.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: Option<String>,
    /// How many of the last changes to show.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub changes: usize,
    /// The output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
}

/// Arguments of `flagops adopt`.
#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// The flags to adopt (surrounding backticks are removed); by default every drifted flag.
    pub names: Vec<String>,
    /// An environment by name (repeatable), as well as or instead of its switch; by default all.
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
    /// Compare with the desired state at this time (`now`, a date, an RFC 3339 time or `+2h`) instead of now.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: Option<String>,
    /// Print what would be edited and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The output format: text, or JSON with the files edited, the message and the plans.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
    /// How the change is published: committed, or sent as a merge request (not with
    /// `--dry-run`, which publishes nothing).
    #[command(flatten)]
    pub publish: PublishArgs,
}

/// Arguments of `flagops rollout`.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// The flag.
    pub name: String,
    /// Describe this time (`now`, a date, an RFC 3339 time or `+2h`) instead of now.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: Option<String>,
    /// The output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
}

/// Arguments of `flagops eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The flag.
    pub name: String,
    /// The environment.
    #[arg(long = "env", value_name = "ENV")]
    pub environment: String,
    /// An actor's Flipper id, such as `Project:123` or `User:1` (repeatable); none evaluates
    /// with no actor, as `Feature.enabled?(:flag)` does.
    #[arg(long = "actor", value_name = "ID")]
    pub actors: Vec<String>,
    /// A file of Flipper ids, one a line, evaluated like `--actor`.
    #[arg(long, value_name = "FILE")]
    pub actors_file: Option<PathBuf>,
    /// A feature group the actors belong to (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Evaluate the desired state at this time (`now`, a date, an RFC 3339 time or `+2h`) instead of now.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: Option<String>,
    /// Evaluate the state stored in the environment's backend instead of the registry's.
    #[arg(long, conflicts_with = "at")]
    pub actual: bool,
    /// Also evaluate with this percentage of actors and count the actors that switch.
    #[arg(long, value_name = "PERCENT", conflicts_with = "compare_at")]
    pub percentage: Option<f64>,
    /// Also evaluate the desired state at this other time and count the actors that switch.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub compare_at: Option<String>,
    /// Also evaluate the same state as a backend of this kind buckets actors (Flipper's CRC-32
    /// for `file`, `gitlab` and `flipper-sql`, MurmurHash3 for `flagd` and `unleash`) and count
    /// the actors whose answer flips; without `--actor` or `--actors-file`, the environment's
    /// `actor_sample` is evaluated.
    #[arg(long, value_enum, value_name = "KIND", conflicts_with_all = ["compare_at", "percentage"])]
    pub compare_backend: Option<BackendKind>,
    /// The output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
}

/// Arguments of `flagops test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// A test file or directory; by default the config's `tests_dir`.
    pub path: Option<PathBuf>,
    /// The output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
}

/// Arguments of `flagops set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The flag's name (surrounding backticks, which chat clients add, are removed).
    pub name: String,
    /// `true`, `false` or a percentage from 0 to 100 (none with `--delete`).
    pub value: Option<String>,
    /// The percentage is a percentage of actors (Flipper's `percentage_of_actors`).
    #[arg(long)]
    pub actors: bool,
    /// The percentage is a percentage of time (deprecated in GitLab, so refused without
    /// `--ignore-random-deprecation-check`).
    #[arg(long)]
    pub random: bool,
    /// Allow `--random` despite its deprecation.
    #[arg(long)]
    pub ignore_random_deprecation_check: bool,
    /// Projects, by full path or id, comma-separated.
    #[arg(long, value_name = "PATHS")]
    pub project: Vec<String>,
    /// Groups, by full path or id, comma-separated.
    #[arg(long, value_name = "PATHS")]
    pub group: Vec<String>,
    /// Users, by username or id, comma-separated.
    #[arg(long, value_name = "NAMES")]
    pub user: Vec<String>,
    /// Namespaces, by path or id, comma-separated.
    #[arg(long, value_name = "PATHS")]
    pub namespace: Vec<String>,
    /// Repositories, by path such as `gitlab-org/gitlab.git`, comma-separated.
    #[arg(long, value_name = "PATHS")]
    pub repository: Vec<String>,
    /// Flipper feature groups, such as `gitlab_team_members`, comma-separated.
    #[arg(long, value_name = "NAMES")]
    pub feature_group: Vec<String>,
    /// Remove the flag's state in the environments (ChatOps's `feature delete`): the flag falls
    /// back to its `default_enabled` there.
    #[arg(long)]
    pub delete: bool,
    /// An environment by name (repeatable), as well as or instead of its switch.
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
    /// The output format: text, or JSON with what changed and the plans.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
    /// Break glass: apply the change to the environments at once (under their locks, with the
    /// sync's retries and audit record), hold it there so that no sync reverts it until a
    /// reviewed change to the flag reaches the registry, and edit the file for that review.
    #[arg(long, help_heading = "Emergency")]
    pub emergency: bool,
    /// Why the emergency change is needed, such as `INC-123: errors`: recorded in the audit
    /// records and the holds.
    #[arg(long, value_name = "TEXT", help_heading = "Emergency")]
    pub reason: Option<String>,
    /// With `--emergency`: how long to wait for a sync that holds an environment's lock, in
    /// seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, help_heading = "Emergency")]
    pub lock_timeout: u64,
    /// How the change is published: committed, or sent as a merge request.
    #[command(flatten)]
    pub publish: PublishArgs,
    /// ChatOps's override of its production check, refused with an explanation.
    #[arg(long, hide = true)]
    pub ignore_production_check: bool,
    /// ChatOps's override of its consistency check, refused with an explanation.
    #[arg(long, hide = true)]
    pub ignore_feature_flag_consistency_check: bool,
}

/// Arguments of `flagops release`.
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The flag's name.
    pub name: String,
    /// An environment by name (repeatable); by default every environment.
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
    /// How long to wait for a sync that holds an environment's lock, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub lock_timeout: u64,
    /// The output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
}

/// Arguments of `flagops notify`.
#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// Send what is pending (the one action for now, and required, so that a bare `notify`
    /// sends nothing by surprise).
    #[arg(long, required = true)]
    pub retry: bool,
    /// An environment by name (repeatable); by default every environment.
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
    /// How long to wait for a sync that holds an environment's lock, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub lock_timeout: u64,
    /// The output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
}

/// How a command that edits files publishes the change (`docs/set.md`).
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Commit exactly the edited files on the current branch.
    #[arg(long, conflicts_with = "mr")]
    pub commit: bool,
    /// Push the change on a new branch and open a merge request with the plan as its
    /// description (`merge_requests` in flagops.yml); the work tree is left as it was.
    #[arg(long)]
    pub mr: bool,
    /// With `--mr`: GitLab merges the merge request once its pipeline succeeds.
    #[arg(long, requires = "mr")]
    pub auto_merge: bool,
}

/// Arguments of `flagops get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The flag's name.
    pub name: String,
    /// An environment by name (repeatable), as well as or instead of its switch; by default all.
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
    /// The output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
}

/// Arguments of `flagops stale`.
#[derive(Debug, Args)]
pub struct StaleArgs {
    /// Judge at this time (`now`, a date, an RFC 3339 time or `+2h`) instead of now.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: Option<String>,
    /// List every flag, not only those expired, expiring or ready for removal.
    #[arg(long)]
    pub all: bool,
    /// The output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
    /// Exit with 1 when a flag is past its limit.
    #[arg(long)]
    pub exit_code: bool,
}

/// Arguments of `flagops site`.
#[derive(Debug, Args)]
pub struct SiteArgs {
    /// The output folder, replaced on every build; by default `public` next to `flagops.yml`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// A folder with `templates/` and `static/` files replacing the embedded ones, file by file.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<std::path::PathBuf>,
    /// Describe this time (`now`, a date, an RFC 3339 time or `+2h`) instead of the head commit's: rollout steps due by then
    /// show as done.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: Option<String>,
}

/// Arguments of `flagops history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The flag.
    pub name: String,
    /// The output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
}

/// Arguments of `flagops plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Plan only this environment (repeatable); by default all.
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
    /// Compare the working tree with this git revision instead of with the environments.
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// Resolve rollout plans at this time (`now`, a date, an RFC 3339 time or `+2h`) instead of now.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: Option<String>,
    /// Include deleting flags gone from the registry.
    #[arg(long)]
    pub prune: bool,
    /// The output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
    pub format: PlanFormat,
    /// Exit with 1 when the plan is not empty.
    #[arg(long)]
    pub exit_code: bool,
}

/// Output formats of plans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Text for people.
    Human,
    /// JSON.
    Json,
    /// Markdown, for a merge-request comment.
    Markdown,
}

/// Arguments of `flagops sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Sync only this environment (repeatable); by default all.
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
    /// Show the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete flags gone from the registry (also set by `prune: true` in flagops.yml).
    #[arg(long)]
    pub prune: bool,
    /// Resolve rollout plans at this time (`now`, a date, an RFC 3339 time or `+2h`) instead of now: for rehearsals.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: Option<String>,
    /// How long to wait for another sync of the same environment, in seconds: for its lock
    /// file, and for a `flipper-sql` database's own lock.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub lock_timeout: u64,
    /// Change environments inside a change freeze (`policies.freeze_windows`) anyway; the reason
    /// is recorded with the sync.
    #[arg(long, value_name = "REASON", value_parser = non_empty)]
    pub override_freeze: Option<String>,
    /// Apply only the changes that do not widen exposure (turning off, lowering a percentage,
    /// removing actors) and hold back the others, printing REASON; the pipeline's sync jobs pass
    /// it when an earlier environment's job did not succeed.
    #[arg(long, value_name = "REASON", value_parser = non_empty)]
    pub hold_widening: Option<String>,
    /// Apply rollout steps resolved at a future `--at` to protected environments anyway; the
    /// reason is recorded with the sync.
    #[arg(long, value_name = "REASON", value_parser = non_empty)]
    pub override_schedule: Option<String>,
    /// In an environment's first sync (it has no sync record), change and delete flags it holds
    /// that flagops did not write; without it such a sync changes nothing there. Recorded with
    /// the sync.
    #[arg(long)]
    pub take_over: bool,
    /// The output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
}

/// A value that is not blank.
fn non_empty(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        Err("give a reason".to_string())
    } else {
        Ok(text.to_string())
    }
}

/// Arguments of `flagops status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this environment (repeatable); by default all.
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
    /// Compare with the desired state at this time (`now`, a date, an RFC 3339 time or `+2h`) instead of now.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: Option<String>,
    /// The output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
    /// Exit with 1 when anything is pending or drifted.
    #[arg(long)]
    pub exit_code: bool,
}

/// Arguments of `flagops deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Delete flags gone from the registry.
    #[arg(long)]
    pub prune: bool,
    /// How long to wait for another sync of the same environment, in seconds: for its lock
    /// file, and for a `flipper-sql` database's own lock.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub lock_timeout: u64,
    /// Where to build the site; by default `public` next to `flagops.yml`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// Change environments inside a change freeze anyway; the reason is recorded with the sync.
    #[arg(long, value_name = "REASON", value_parser = non_empty)]
    pub override_freeze: Option<String>,
    /// Apply rollout steps resolved at a future `--at` to protected environments anyway; the
    /// reason is recorded with the sync.
    #[arg(long, value_name = "REASON", value_parser = non_empty)]
    pub override_schedule: Option<String>,
    /// In an environment's first sync (it has no sync record), change and delete flags it holds
    /// that flagops did not write; without it such a sync changes nothing there. Recorded with
    /// the sync.
    #[arg(long)]
    pub take_over: bool,
    /// Resolve rollout plans at this time (`now`, a date, an RFC 3339 time or `+2h`) instead of now, for the sync and the site
    /// alike: for rehearsals and reproducible runs.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: Option<String>,
}

/// Arguments of `flagops validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A flag file or directory to report on; by default the whole registry.
    pub path: Option<PathBuf>,
    /// The output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Also write the report to this file (for CI artifacts), keeping the human output on stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Skip a semantic check by id (repeatable); see `flagops checks`.
    #[arg(long, value_name = "CHECK")]
    pub skip: Vec<String>,
}

/// Output formats of `flagops validate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// rustc-like text.
    Human,
    /// A JSON array of diagnostics.
    Json,
    /// GitLab's Code Quality report.
    Codequality,
    /// JUnit XML.
    Junit,
}

/// Arguments of `flagops schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which schema.
    #[arg(value_enum, default_value_t = SchemaName::Flag)]
    pub which: SchemaName,
}

/// The published schemas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemaName {
    /// Flag files.
    Flag,
    /// `flagops.yml`.
    Config,
    /// Evaluation test files (`flagops test`).
    Test,
}

/// Arguments of `flagops new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The flag's name: lowercase words joined by underscores.
    pub name: String,
    /// The flag type, one of the config's `types`.
    #[arg(long = "type", value_name = "TYPE")]
    pub flag_type: String,
    /// The owning group, such as `group::source code`.
    #[arg(long)]
    pub group: String,
    /// What the flag guards.
    #[arg(long, short)]
    pub description: String,
    /// The milestone introducing the flag, such as 17.10.
    #[arg(long, short)]
    pub milestone: String,
    /// The merge request introducing the flag.
    #[arg(long = "introduced-by", value_name = "URL")]
    pub introduced_by_url: String,
    /// The rollout issue (required for some types).
    #[arg(long = "rollout-issue", value_name = "URL")]
    pub rollout_issue_url: Option<String>,
    /// The feature issue or epic.
    #[arg(long = "feature-issue", value_name = "URL")]
    pub feature_issue_url: Option<String>,
    /// An owner's username, such as @alice (repeatable).
    #[arg(long = "owner", value_name = "@USER")]
    pub owners: Vec<String>,
    /// Enable the flag by default (only types that allow it).
    #[arg(long)]
    pub default_enabled: bool,
    /// Write the file here instead of the registry's conventional place.
    #[arg(long, value_name = "FILE")]
    pub path: Option<PathBuf>,
}

/// Arguments of `flagops init`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("environment_list").required(true).args(["environments", "gitlab_com"]))]
pub struct InitArgs {
    /// The folder of the new registry; created when missing.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// An environment, in promotion order (repeatable): NAME, or NAME=URL with its address.
    #[arg(long = "env", value_name = "NAME[=URL]", conflicts_with = "gitlab_com")]
    pub environments: Vec<String>,
    /// GitLab's six environments: dev, pre, staging, staging-ref, ops and production.
    #[arg(long)]
    pub gitlab_com: bool,
    /// Mark an environment as protected, under the rollout policies (repeatable); with
    /// `--gitlab-com`, ops and production are.
    #[arg(long, value_name = "NAME")]
    pub protected: Vec<String>,
    /// Where every environment keeps its flags.
    #[arg(long, value_enum, default_value_t = InitBackend::File)]
    pub backend: InitBackend,
    /// The generic package registry the pipeline downloads flagops releases from.
    #[arg(long, value_name = "URL")]
    pub download_url: Option<String>,
}

/// The kinds of backend, as `flagops.yml` spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// The embedded `file` backend (Flipper's hashing).
    File,
    /// GitLab's Features API (Flipper's hashing).
    Gitlab,
    /// GitLab's Flipper tables in PostgreSQL (Flipper's hashing).
    FlipperSql,
    /// A flagd flag-definition file (flagd's `fractional`).
    Flagd,
    /// Unleash (its `flexibleRollout` strategy).
    Unleash,
}

impl BackendKind {
    /// The kind as `flagops.yml` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::File => "file",
            BackendKind::Gitlab => "gitlab",
            BackendKind::FlipperSql => "flipper-sql",
            BackendKind::Flagd => "flagd",
            BackendKind::Unleash => "unleash",
        }
    }
}

/// The backends `flagops init` can set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InitBackend {
    /// The embedded `file` backend: state and audit log under `.flagops/state/`.
    File,
    /// GitLab's Features API at each environment's URL, with a token from a CI/CD variable.
    Gitlab,
    /// GitLab's Flipper tables in PostgreSQL, with a connection string from a CI/CD variable.
    FlipperSql,
}

/// `flagops import` sources.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Convert GitLab's `config/feature_flags/<type>/*.yml` definitions into flag files.
    ///
    /// DIR is a GitLab checkout (both `config/feature_flags` and `ee/config/feature_flags` are
    /// read, and any other `*/config/feature_flags`), one of those directories, or any directory
    /// of definition files. Every file is reported as imported, refused with a reason, or
    /// skipped, and every value that is not carried over exactly or that `validate` will refuse
    /// gets a note. With `--state ENV`, each flag's state in that environment is read through
    /// its backend and written into `environments`.
    Gitlab(ImportGitlabArgs),
}

/// Arguments of `flagops import gitlab`.
#[derive(Debug, Args)]
pub struct ImportGitlabArgs {
    /// The directory holding GitLab's definition files.
    pub dir: PathBuf,
    /// Where to write the flag files; by default the registry's flags directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace flag files that already exist.
    #[arg(long)]
    pub force: bool,
    /// Leave missing required values missing instead of listing them under `todo`, and write
    /// every definition of a name defined twice, so that `validate` refuses what GitLab lacks.
    #[arg(long)]
    pub strict: bool,
    /// Read the state of every flag in the environment ENV of flagops.yml, through its
    /// backend, and write it into each flag's `environments` (repeatable).
    #[arg(long = "state", value_name = "ENV")]
    pub states: Vec<String>,
    /// Also write the flags that live only in an environment read with `--state` (no
    /// definition file) as flags of type TYPE.
    #[arg(long, value_name = "TYPE", requires = "states")]
    pub orphans_type: Option<String>,
    /// The report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
}

/// Formats of reports other than diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Text for people.
    Human,
    /// JSON.
    Json,
}

//! Thin command wrappers: each turns its `cli` arguments into plain inputs, calls the library
//! and prints. Only this module and `cli` know clap.

mod adopt;
mod emergency;
mod eval;
mod history;
mod import;
mod init;
mod new;
mod notify;
mod plan;
mod publish;
mod rollout;
mod set;
mod show;
mod site;
mod status;
mod sync;
mod test;
mod validate;
mod write;

use std::io::Write;

use anyhow::Context;
use std::path::PathBuf;

use crate::ExitStatus;
use crate::cli::{Cli, Command, SchemaName};
use crate::load::Workspace;
use crate::schema::SchemaKind;

/// Dispatches one command.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    let config = cli.config.clone();
    match cli.command {
        Command::Validate(args) => validate::run(&workspace(config.as_deref())?, args),
        Command::Schema(args) => {
            let kind = match args.which {
                SchemaName::Flag => SchemaKind::Flag,
                SchemaName::Config => SchemaKind::Config,
                SchemaName::Test => SchemaKind::Test,
            };
            print(kind.text())?;
            Ok(ExitStatus::Success)
        }
        Command::Checks => {
            let mut text = String::from("Semantic checks (skippable with `validate --skip ID`):\n");
            for check in crate::check::CHECKS {
                text.push_str(&format!("  {:<24} {}\n", check.id, check.summary));
            }
            text.push_str("\nReading checks:\n");
            for check in crate::check::INPUT_CHECKS {
                text.push_str(&format!("  {:<24} {}\n", check.id, check.summary));
            }
            print(&text)?;
            Ok(ExitStatus::Success)
        }
        Command::New(args) => new::run(&workspace(config.as_deref())?, args),
        Command::Init(args) => init::run(args),
        Command::Import(crate::cli::ImportCommand::Gitlab(args)) => import::run(&workspace(config.as_deref())?, args),
        Command::Plan(args) => plan::run(&workspace(config.as_deref())?, args),
        Command::Sync(args) => sync::run(&workspace(config.as_deref())?, args),
        Command::Status(args) => status::run(&workspace(config.as_deref())?, args),
        Command::Deploy(args) => sync::deploy(&workspace(config.as_deref())?, args),
        Command::History(args) => history::run(&workspace(config.as_deref())?, args),
        Command::Site(args) => site::run(&workspace(config.as_deref())?, args),
        Command::Rollout(args) => rollout::rollout(&workspace(config.as_deref())?, args),
        Command::Eval(args) => eval::run(&workspace(config.as_deref())?, args),
        Command::Test(args) => test::run(&workspace(config.as_deref())?, args),
        Command::Stale(args) => rollout::stale(&workspace(config.as_deref())?, args),
        Command::Set(args) => set::run(&workspace(config.as_deref())?, args),
        Command::Release(args) => emergency::release(&workspace(config.as_deref())?, args),
        Command::Notify(args) => notify::run(&workspace(config.as_deref())?, args),
        Command::Get(args) => set::get(&workspace(config.as_deref())?, args),
        Command::Show(args) => show::run(&workspace(config.as_deref())?, args),
        Command::Adopt(args) => adopt::run(&workspace(config.as_deref())?, args),
        Command::Completions(args) => {
            print_generated(&crate::cli::completions(args.shell))?;
            Ok(ExitStatus::Success)
        }
        Command::Man => {
            let page = crate::cli::man_page().context("failed to render the manual page")?;
            print_generated(&page)?;
            Ok(ExitStatus::Success)
        }
    }
}

/// The environment switches of the registry's `flagops.yml` (found from `--config` in `args`,
/// or from the working directory), as `(switch, environment)`; none when it cannot be read,
/// since the command then reports why itself.
pub(crate) fn environment_switches(args: &[std::ffi::OsString]) -> Vec<(String, String)> {
    let mut explicit = None;
    for (position, arg) in args.iter().enumerate() {
        let text = arg.to_string_lossy();
        if text == "--" {
            break;
        }
        if text == "--config" {
            explicit = args.get(position + 1).map(PathBuf::from);
        } else if let Some(path) = text.strip_prefix("--config=") {
            explicit = Some(PathBuf::from(path));
        }
    }
    let Ok(workspace) = workspace(explicit.as_deref()) else {
        return Vec::new();
    };
    let Ok((config, _)) = read_config(&workspace) else {
        return Vec::new();
    };
    config
        .environments
        .into_iter()
        .filter_map(|environment| environment.switch.map(|switch| (switch, environment.name)))
        .collect()
}

fn workspace(explicit: Option<&std::path::Path>) -> anyhow::Result<Workspace> {
    let current = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    Workspace::find(explicit, &current)
}

/// Lets a large value go without freeing it, where the command ends right after: freeing a
/// registry of 10,000 flags one allocation at a time only delays the exit (a twentieth of a
/// `validate` of 10,000 flags). The memory goes back with the process.
pub(super) fn release_at_exit<T>(value: T) {
    std::mem::forget(value);
}

/// Writes `text` to stdout, reporting a closed pipe as an error the caller maps to success.
///
/// Every command's output goes through here, so every value in it, whatever its source, is
/// printed as `escape::shown` makes it: no control character reaches the terminal, and no
/// credential in a URL is shown.
fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(crate::escape::shown(text).as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// Writes text flagops generates from its own command-line definition (completion scripts, the
/// manual page) to stdout as it is: it holds no value from outside, and escaping would break it.
fn print_generated(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
}

/// Loads the registry; when it has errors, prints them and says what is not done.
fn load_valid(workspace: &Workspace, doing: &str) -> anyhow::Result<Option<crate::model::Registry>> {
    let loaded = crate::load::load(workspace, &crate::load::LoadOptions::default())?;
    let (errors, _) = crate::diagnostic::count(&loaded.diagnostics);
    if errors > 0 || loaded.registry.is_none() {
        let source = |path: &std::path::Path| loaded.sources.get(path).map(String::as_str);
        let errors_only: Vec<_> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity == crate::diagnostic::Severity::Error)
            .cloned()
            .collect();
        let report = crate::diagnostic::render(crate::diagnostic::Format::Human, &errors_only, &[], &source);
        eprint!("{}", crate::escape::shown(&report));
        eprintln!(
            "not {doing}: the registry has {} (run `flagops validate`)",
            crate::plan::render::count(errors, "error")
        );
        return Ok(None);
    }
    Ok(loaded.registry)
}

/// Opens `environment`'s backend to read: `plan`, `status`, `site` and `eval` never write.
fn open_to_read(
    workspace: &Workspace,
    registry: &crate::model::Registry,
    environment: &crate::config::Environment,
) -> anyhow::Result<Box<dyn crate::backends::Backend>> {
    crate::backends::open(
        &workspace.root,
        &registry.config,
        environment,
        crate::backends::Access::Read,
    )
}

/// `--at`, or now; every command's time on the command line goes through here
/// (`resolve::parse_moment`), relative times counting from the clock.
fn parse_at(at: Option<&str>) -> anyhow::Result<jiff::Timestamp> {
    let now = jiff::Timestamp::now();
    match at {
        Some(text) => crate::resolve::parse_moment(text, now).map_err(|reason| {
            anyhow::anyhow!(
                "invalid time `{text}`: {reason}\nhelp: write `now`, a date such as 2026-12-01 (midnight UTC), a time such as 2026-12-01T09:00:00Z, or a time relative to now such as +2h, -1d or +1h 30m"
            )
        }),
        None => Ok(now),
    }
}

/// The environments named by `--env`, in promotion order; all when none is named.
fn select_environments(registry: &crate::model::Registry, wanted: &[String]) -> anyhow::Result<Vec<String>> {
    let config = &registry.config;
    for name in wanted {
        if config.environment(name).is_none() {
            let known: Vec<&str> = config.environment_names().collect();
            anyhow::bail!(
                "unknown environment `{name}`\nhelp: the environments in flagops.yml are {}",
                known.join(", ")
            );
        }
    }
    Ok(config
        .environment_names()
        .filter(|name| wanted.is_empty() || wanted.iter().any(|w| w == name))
        .map(str::to_string)
        .collect())
}

/// Reads `flagops.yml`, failing when it has errors.
fn read_config(workspace: &Workspace) -> anyhow::Result<(crate::config::Config, crate::source::SourceFile)> {
    let file = match crate::load::read_source(&workspace.config_path)? {
        Ok(file) => file,
        Err(diagnostic) => anyhow::bail!(
            "`{}` cannot be read: {}",
            workspace.config_path.display(),
            diagnostic.message
        ),
    };
    match crate::load::read_config(&file) {
        (Some(config), _) => Ok((config, file)),
        (None, _) => anyhow::bail!(
            "`{}` has errors\nhelp: run `flagops validate` to see them",
            workspace.config_path.display()
        ),
    }
}

/// The flag named `name`, or an error suggesting the closest name.
fn find_flag<'a>(registry: &'a crate::model::Registry, name: &str) -> anyhow::Result<&'a crate::model::Flag> {
    if let Some(file) = registry.flags.iter().find(|file| file.flag.name == name) {
        return Ok(&file.flag);
    }
    let closest = registry
        .flags
        .iter()
        .map(|file| (strsim::damerau_levenshtein(name, &file.flag.name), &file.flag.name))
        .filter(|(distance, _)| *distance <= 3)
        .min();
    match closest {
        Some((_, close)) => anyhow::bail!("no flag named `{name}`\nhelp: did you mean `{close}`?"),
        None => anyhow::bail!("no flag named `{name}` in this registry"),
    }
}

/// Bad input on the command line: printed as an error, exit code 1, nothing changed.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// A refusal: `finish` prints it and exits 1.
fn refused(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Refused(message.into()))
}

/// Prints a refusal and maps it to exit code 1; other errors stay failures.
fn finish(outcome: anyhow::Result<ExitStatus>) -> anyhow::Result<ExitStatus> {
    match outcome {
        Err(error)
            if error.downcast_ref::<Refused>().is_some()
                || error.downcast_ref::<crate::publish::Refused>().is_some() =>
        {
            eprintln!("{}", crate::escape::shown(&format!("error: {error}")));
            Ok(ExitStatus::Failure)
        }
        other => other,
    }
}

/// The environments named by `--env` and by switches, in promotion order; `fallback` when none.
/// An unknown environment is a refusal.
fn named_environments(
    registry: &crate::model::Registry,
    named: Vec<String>,
    fallback: &[String],
) -> anyhow::Result<Vec<String>> {
    if named.is_empty()
        && let Some(missing) = fallback.iter().find(|name| registry.config.environment(name).is_none())
    {
        return Err(refused(format!(
            "no environment is named, and the `default_environment` `{missing}` is not in flagops.yml\nhelp: name one with `--env NAME` or its switch, or set `default_environment`"
        )));
    }
    let wanted = if named.is_empty() { fallback.to_vec() } else { named };
    select_environments(registry, &wanted).map_err(|error| refused(format!("{error:#}")))
}

/// The flag's file, found by the flag's name wherever it sits; an unknown name is a refusal
/// that suggests the closest one.
fn flag_file<'a>(registry: &'a crate::model::Registry, name: &str) -> anyhow::Result<&'a crate::model::FlagFile> {
    match registry.flags.iter().find(|file| file.flag.name == name) {
        Some(file) => Ok(file),
        None => match find_flag(registry, name) {
            Err(error) => Err(refused(format!("{error:#}"))),
            Ok(_) => unreachable!("the flag was not found above"),
        },
    }
}

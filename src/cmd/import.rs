//! `flagops import gitlab`: GitLab's definition files, from every tree of a checkout, written as
//! flag files, with the live state of the environments named by `--state` in `environments`.
//!
//! Every definition file found is reported as imported, refused (unreadable, a type that cannot
//! be a folder name, a name another file already defines) or skipped (its flag file exists).
//! The states are read before anything is written, through each environment's backend
//! (`backends::open`, read-only), and written as `adopt` writes them: spelled as a flag file
//! names actors, and only when the backend puts them back in its terms exactly as it holds them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::ExitStatus;
use crate::backends::{self, Access, Backend};
use crate::cli::{ImportGitlabArgs, ReportFormat};
use crate::config::{Config, Layout};
use crate::import::{self, Note};
use crate::load::{self, Workspace};
use crate::model::State;
use crate::state::{EnvironmentState, Stored};

#[derive(Serialize)]
struct Entry {
    /// The tree the definition was found in.
    tree: String,
    source: PathBuf,
    written: Option<PathBuf>,
    status: &'static str,
    notes: Vec<Note>,
}

/// One folder of definition files, such as a checkout's `ee/config/feature_flags`.
#[derive(Serialize)]
struct Tree {
    /// How the report names it: its path inside the checkout, or as given.
    name: String,
    #[serde(skip)]
    path: PathBuf,
    files: usize,
    imported: usize,
    refused: usize,
    skipped: usize,
    noted: usize,
}

/// A flag an environment holds that no definition file defines.
#[derive(Serialize)]
struct Orphan {
    flag: String,
    environments: Vec<String>,
    /// Where it was written (`--orphans-type`), if it was.
    written: Option<PathBuf>,
    notes: Vec<Note>,
}

#[derive(Serialize)]
struct Report {
    trees: Vec<Tree>,
    entries: Vec<Entry>,
    /// The environments whose state was read.
    states: Vec<String>,
    orphans: Vec<Orphan>,
}

/// One environment read with `--state`.
struct Environment {
    name: String,
    flags: EnvironmentState,
    backend: Box<dyn Backend>,
}

const REFUSED: &str = "refused";
const SKIPPED: &str = "skipped (exists; --force replaces it)";

pub(super) fn run(workspace: &Workspace, args: ImportGitlabArgs) -> anyhow::Result<ExitStatus> {
    super::finish(import(workspace, &args))
}

fn import(workspace: &Workspace, args: &ImportGitlabArgs) -> anyhow::Result<ExitStatus> {
    let config_file = match load::read_source(&workspace.config_path)? {
        Ok(file) => file,
        Err(diagnostic) => bail!(
            "`{}` cannot be read: {}",
            workspace.config_path.display(),
            diagnostic.message
        ),
    };
    let (Some(config), _) = load::read_config(&config_file) else {
        bail!(
            "`{}` has errors\nhelp: run `flagops validate` to see them",
            workspace.config_path.display()
        );
    };
    if let Some(flag_type) = &args.orphans_type
        && !config.types.contains_key(flag_type)
    {
        let known: Vec<String> = config.types.keys().map(|name| format!("`{name}`")).collect();
        return Err(super::refused(format!(
            "`--orphans-type {flag_type}`: no such type in flagops.yml\nhelp: choose one of {}",
            known.join(", ")
        )));
    }
    let out_dir = args.out.clone().unwrap_or_else(|| workspace.resolve(&config.flags_dir));
    let mut trees = trees(&args.dir)?;
    let mut environments = read_states(workspace, &config, &args.states)?;

    let mut entries = Vec::new();
    // The file each flag name was first found in, and where it was written.
    let mut defined: BTreeMap<String, (PathBuf, Option<PathBuf>)> = BTreeMap::new();
    for tree in &mut trees {
        let sources = load::discover_flag_files(&tree.path)?;
        tree.files = sources.len();
        for source_path in sources {
            let entry = import_file(
                workspace,
                &config,
                args,
                &out_dir,
                &tree.name,
                source_path,
                &mut defined,
                &mut environments,
            )?;
            match entry.status {
                "imported" => tree.imported += 1,
                REFUSED => tree.refused += 1,
                _ => tree.skipped += 1,
            }
            if !entry.notes.is_empty() {
                tree.noted += 1;
            }
            entries.push(entry);
        }
    }
    if entries.is_empty() {
        bail!("no definition files (*.yml) under `{}`", args.dir.display());
    }
    let orphans = orphans(workspace, &config, args, &out_dir, &defined, &mut environments)?;

    let failed = entries.iter().any(|entry| entry.status == REFUSED);
    let report = Report {
        trees,
        entries,
        states: environments
            .iter()
            .map(|environment| environment.name.clone())
            .collect(),
        orphans,
    };
    let text = match args.format {
        ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        ReportFormat::Human => human(&report, args.orphans_type.is_some()),
    };
    super::print(&text)?;
    Ok(if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// Converts and writes one definition file.
#[allow(clippy::too_many_arguments, reason = "one call site, each argument distinct")]
fn import_file(
    workspace: &Workspace,
    config: &Config,
    args: &ImportGitlabArgs,
    out_dir: &Path,
    tree: &str,
    source_path: PathBuf,
    defined: &mut BTreeMap<String, (PathBuf, Option<PathBuf>)>,
    environments: &mut [Environment],
) -> anyhow::Result<Entry> {
    let refuse = |source: PathBuf, message: String| Entry {
        tree: tree.to_string(),
        source,
        written: None,
        status: REFUSED,
        notes: vec![Note {
            key: String::new(),
            message,
        }],
    };
    let folder = source_path
        .parent()
        .and_then(Path::file_name)
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = source_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = match load::read_source(&source_path)? {
        Ok(file) => file,
        Err(diagnostic) => return Ok(refuse(source_path, diagnostic.message)),
    };
    let context = import::Context {
        folder: &folder,
        stem: &stem,
        types: &config.types,
        strict: args.strict,
    };
    let mut imported = match import::convert(&file, &context) {
        Ok(imported) => imported,
        Err(message) => return Ok(refuse(source_path, message)),
    };
    if let Some((first, written)) = defined.get(&imported.name)
        && !args.strict
    {
        let kept = written
            .as_ref()
            .map_or_else(String::new, |path| format!(", written to `{}`", path.display()));
        return Ok(refuse(
            source_path,
            format!(
                "`{}` is already defined by `{}`{kept}, and two files cannot define one flag (`duplicate-name`; GitLab refuses it too)\nhelp: decide which definition is right; to keep this one, replace the written file's definition by hand (`--strict` writes both)",
                imported.name,
                first.display()
            ),
        ));
    }
    let mut states = Map::new();
    for environment in environments.iter_mut() {
        let Some(actual) = environment.flags.get(&imported.name) else {
            continue;
        };
        match file_state(config, &imported.name, actual, environment.backend.as_mut()) {
            Ok(state) => {
                states.insert(environment.name.clone(), crate::cmd::adopt::file_value(&state));
            }
            Err(reason) => imported.notes.push(Note {
                key: format!("environments.{}", environment.name),
                message: format!("not written: {reason}"),
            }),
        }
    }
    if !states.is_empty() {
        insert_environments(&mut imported.fields, states);
    }
    let relative = flag_path(config, &imported.flag_type, &stem);
    let target = crate::paths::inside(out_dir, &relative)?;
    let written = if target.exists() && !args.force {
        None
    } else {
        write_flag(workspace, &target, &imported.fields)?;
        Some(load::display_path(&target))
    };
    defined
        .entry(imported.name.clone())
        .or_insert_with(|| (source_path.clone(), written.clone()));
    Ok(Entry {
        tree: tree.to_string(),
        source: source_path,
        status: if written.is_some() { "imported" } else { SKIPPED },
        written,
        notes: imported.notes,
    })
}

/// The trees of definition files under `dir`: a checkout's `config/feature_flags` and every
/// `*/config/feature_flags` beside it (`ee/`, `jh/`), or else `dir` itself.
fn trees(dir: &Path) -> anyhow::Result<Vec<Tree>> {
    let tree = |name: String, path: PathBuf| Tree {
        name,
        path,
        files: 0,
        imported: 0,
        refused: 0,
        skipped: 0,
        noted: 0,
    };
    let nested = Path::new("config").join("feature_flags");
    let mut found = Vec::new();
    if dir.join(&nested).is_dir() {
        found.push(tree(nested.display().to_string(), dir.join(&nested)));
    }
    if dir.is_dir() {
        let mut folders: Vec<String> = std::fs::read_dir(dir)
            .with_context(|| format!("failed to read `{}`", dir.display()))?
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.') && dir.join(name).join(&nested).is_dir())
            .collect();
        folders.sort();
        for folder in folders {
            let relative = Path::new(&folder).join(&nested);
            found.push(tree(relative.display().to_string(), dir.join(relative)));
        }
    }
    if found.is_empty() {
        found.push(tree(dir.display().to_string(), dir.to_path_buf()));
    }
    Ok(found)
}

/// Reads every environment `names` lists through its backend, read-only.
fn read_states(workspace: &Workspace, config: &Config, names: &[String]) -> anyhow::Result<Vec<Environment>> {
    let mut read = Vec::new();
    for name in names {
        let Some(environment) = config.environments.iter().find(|environment| &environment.name == name) else {
            let known: Vec<String> = config.environment_names().map(|name| format!("`{name}`")).collect();
            return Err(super::refused(format!(
                "`--state {name}`: no such environment in flagops.yml\nhelp: name one of {}, and configure its backend there first",
                known.join(", ")
            )));
        };
        if read.iter().any(|done: &Environment| &done.name == name) {
            continue;
        }
        let mut backend = backends::open(&workspace.root, config, environment, Access::Read)
            .with_context(|| format!("failed to open the backend of `{name}`"))?;
        let snapshot = backend
            .fetch()
            .with_context(|| format!("failed to read the state of `{name}`"))?;
        read.push(Environment {
            name: name.clone(),
            flags: snapshot.flags,
            backend,
        });
    }
    Ok(read)
}

/// The state a flag file writes for what the environment holds, or why there is none: the
/// backend must put it back in its own terms exactly as it holds it (as `adopt` requires).
fn file_state(config: &Config, flag: &str, actual: &Stored, backend: &mut dyn Backend) -> Result<State, String> {
    if let Stored::Gates(gates) = actual
        && let Some(actor) = gates
            .actors
            .iter()
            .find(|actor| !config.actor_kinds.contains_key(&actor.kind))
    {
        return Err(format!(
            "the environment holds the actor `{actor}`, of no actor kind in flagops.yml, which a flag file cannot name: add its kind under `actor_kinds` and import again, or set the state by hand"
        ));
    }
    let state = crate::state::file_state(actual, None, &mut |_| None);
    let mut desired: EnvironmentState = [(flag.to_string(), Stored::from_model(&state))].into();
    backend
        .canonicalize(&mut desired)
        .map_err(|error| format!("a flag file cannot name what the environment holds ({actual}): {error}"))?;
    if desired.get(flag) != Some(actual) {
        return Err(format!(
            "a flag file cannot name what the environment holds ({actual}): written as {}, it reads back as {}",
            Stored::from_model(&state),
            crate::plan::show(desired.get(flag))
        ));
    }
    Ok(state)
}

/// Puts `environments` where the model orders it: before `todo`.
fn insert_environments(fields: &mut Map<String, Value>, states: Map<String, Value>) {
    let todo = fields.remove("todo");
    fields.insert("environments".to_string(), Value::Object(states));
    if let Some(todo) = todo {
        fields.insert("todo".to_string(), todo);
    }
}

fn flag_path(config: &Config, flag_type: &str, stem: &str) -> PathBuf {
    let file_name = format!("{stem}.yml");
    match config.layout {
        Layout::ByType => Path::new(flag_type).join(file_name),
        Layout::Free => PathBuf::from(file_name),
    }
}

fn write_flag(workspace: &Workspace, target: &Path, fields: &Map<String, Value>) -> anyhow::Result<()> {
    let schema = schema_path(target, &workspace.root);
    let text = crate::template::render_fields(fields, &schema);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("failed to create `{}`", parent.display()))?;
    }
    std::fs::write(target, text).with_context(|| format!("failed to write `{}`", target.display()))
}

/// The flags the environments hold that no definition defines and no flag file names; with
/// `--orphans-type`, each is written as a flag of that type.
fn orphans(
    workspace: &Workspace,
    config: &Config,
    args: &ImportGitlabArgs,
    out_dir: &Path,
    defined: &BTreeMap<String, (PathBuf, Option<PathBuf>)>,
    environments: &mut [Environment],
) -> anyhow::Result<Vec<Orphan>> {
    let existing: BTreeSet<String> = if out_dir.is_dir() {
        load::discover_flag_files(out_dir)?
            .iter()
            .filter_map(|path| path.file_stem().map(|stem| stem.to_string_lossy().into_owned()))
            .collect()
    } else {
        BTreeSet::new()
    };
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for environment in environments.iter() {
        for flag in environment.flags.keys() {
            if !defined.contains_key(flag) && !existing.contains(flag) {
                names.entry(flag.clone()).or_default().push(environment.name.clone());
            }
        }
    }
    let mut orphans = Vec::new();
    for (flag, in_environments) in names {
        let mut orphan = Orphan {
            flag: flag.clone(),
            environments: in_environments,
            written: None,
            notes: Vec::new(),
        };
        if let Some(flag_type) = &args.orphans_type {
            if crate::check::is_valid_name(&flag) {
                let mut fields = orphan_fields(config, &flag, flag_type);
                let mut states = Map::new();
                for environment in environments.iter_mut() {
                    let Some(actual) = environment.flags.get(&flag) else {
                        continue;
                    };
                    match file_state(config, &flag, actual, environment.backend.as_mut()) {
                        Ok(state) => {
                            states.insert(environment.name.clone(), crate::cmd::adopt::file_value(&state));
                        }
                        Err(reason) => orphan.notes.push(Note {
                            key: format!("environments.{}", environment.name),
                            message: format!("not written: {reason}"),
                        }),
                    }
                }
                insert_environments(&mut fields, states);
                let target = crate::paths::inside(out_dir, &flag_path(config, flag_type, &flag))?;
                write_flag(workspace, &target, &fields)?;
                orphan.written = Some(load::display_path(&target));
            } else {
                orphan.notes.push(Note {
                    key: "name".to_string(),
                    message: format!(
                        "not written: `{}` is not a flag name (lowercase words joined by single underscores), so no flag file can hold it",
                        flag.escape_debug()
                    ),
                });
            }
        }
        orphans.push(orphan);
    }
    Ok(orphans)
}

/// A flag file for a flag that has no definition: its name and type, off by default, and every
/// other required value to do.
fn orphan_fields(config: &Config, flag: &str, flag_type: &str) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("name".to_string(), Value::from(flag));
    fields.insert("type".to_string(), Value::from(flag_type));
    fields.insert("default_enabled".to_string(), Value::Bool(false));
    let mut todo = Map::new();
    for (key, what) in import::REQUIRED {
        todo.insert(
            key.to_string(),
            Value::String(format!(
                "the flag lives only in an environment, with no definition file: {what}"
            )),
        );
    }
    if config
        .types
        .get(flag_type)
        .is_some_and(|rules| rules.rollout_issue_required)
    {
        todo.insert(
            "rollout_issue_url".to_string(),
            Value::String(format!(
                "flags of type `{flag_type}` need a rollout issue: link the issue that tracks the rollout"
            )),
        );
    }
    fields.insert("todo".to_string(), Value::Object(todo));
    fields
}

/// The path from the flag file's folder to `<root>/schema/flag.schema.json`, for editors.
pub(super) fn schema_path(target: &Path, root: &Path) -> String {
    let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let folder = absolute(target.parent().unwrap_or(Path::new(".")));
    match folder.strip_prefix(absolute(root)) {
        Ok(inside) => {
            let ups = "../".repeat(inside.components().count());
            format!("{ups}schema/flag.schema.json")
        }
        Err(_) => absolute(root)
            .join("schema/flag.schema.json")
            .to_string_lossy()
            .into_owned(),
    }
}

fn human(report: &Report, orphans_written: bool) -> String {
    let mut out = String::new();
    for entry in &report.entries {
        let target = entry
            .written
            .as_ref()
            .map_or_else(String::new, |path| format!(" -> {}", path.display()));
        let _ = writeln!(out, "{}: {}{target}", entry.source.display(), entry.status);
        for note in &entry.notes {
            note_line(&mut out, note);
        }
    }
    for orphan in &report.orphans {
        let written = orphan.written.as_ref().map_or_else(
            || " (no definition file)".to_string(),
            |path| format!(" -> {}", path.display()),
        );
        let _ = writeln!(
            out,
            "{} in {}: lives only in the environment{written}",
            orphan.flag,
            orphan.environments.join(", ")
        );
        for note in &orphan.notes {
            note_line(&mut out, note);
        }
    }
    let names: Vec<&str> = report.trees.iter().map(|tree| tree.name.as_str()).collect();
    let _ = writeln!(out, "read {}", names.join(", "));
    for tree in &report.trees {
        let _ = writeln!(
            out,
            "  {}: {} files: {} imported, {} refused, {} skipped; {} with notes",
            tree.name, tree.files, tree.imported, tree.refused, tree.skipped, tree.noted
        );
    }
    if !report.states.is_empty() {
        let _ = writeln!(out, "state read from {}", report.states.join(", "));
    }
    if !report.orphans.is_empty() && !orphans_written {
        let _ = writeln!(
            out,
            "{} held in an environment with no definition file\nhelp: write them as flags of a type with `--orphans-type TYPE`",
            crate::plan::render::count(report.orphans.len(), "flag")
        );
    }
    let files: usize = report.trees.iter().map(|tree| tree.files).sum();
    let imported: usize = report.trees.iter().map(|tree| tree.imported).sum();
    let refused: usize = report.trees.iter().map(|tree| tree.refused).sum();
    let noted: usize = report.trees.iter().map(|tree| tree.noted).sum();
    let _ = writeln!(
        out,
        "imported {imported} of {files} definitions, refused {refused}; {noted} with notes (run `flagops validate` next)"
    );
    out
}

/// `  note: `key` message`, a `help:` line under it indented alike.
fn note_line(out: &mut String, note: &Note) {
    let message = note.message.replace('\n', "\n  ");
    if note.key.is_empty() {
        let _ = writeln!(out, "  note: {message}");
    } else {
        let _ = writeln!(out, "  note: `{}` {message}", note.key);
    }
}

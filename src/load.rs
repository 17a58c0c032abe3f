//! The only module that reads the registry from disk: `flagops.yml` and the flag files.
//!
//! Reading a file goes through four gates, each of which turns a problem into diagnostics and
//! stops that file (never the others): size and UTF-8, YAML with spans, the JSON Schema, and the
//! typed model. Files are read in parallel; results are sorted, so output never depends on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rayon::prelude::*;
use walkdir::WalkDir;

use crate::config::Config;
use crate::diagnostic::{self, Diagnostic};
use crate::model::{Flag, FlagFile, Registry};
use crate::schema::{self, SchemaKind};
use crate::source::{Document, SourceFile, Span, parse_yaml};

/// The largest flag or config file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;

/// Where the registry lives: the config file and the directory it sits in.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// `flagops.yml`.
    pub config_path: PathBuf,
    /// The directory holding it; relative paths in the config start here.
    pub root: PathBuf,
}

/// A registry read from disk, with every problem found on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The registry, or `None` when the config itself is invalid.
    pub registry: Option<Registry>,
    /// Every diagnostic, sorted.
    pub diagnostics: Vec<Diagnostic>,
    /// The text of every file that has a diagnostic, for excerpts.
    pub sources: BTreeMap<PathBuf, String>,
    /// Every file that was checked, sorted.
    pub files: Vec<PathBuf>,
}

/// What to load.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Load the flags from this directory instead of the config's `flags_dir`.
    pub flags_dir: Option<PathBuf>,
    /// Semantic checks to skip, by id.
    pub skip: Vec<String>,
}

/// What reading one flag file gave: the flag or its stem, its diagnostics, and its text.
struct FileRead {
    outcome: FileOutcome,
    diagnostics: Vec<Diagnostic>,
    source: Option<SourceFile>,
}

enum FileOutcome {
    Flag(Box<FlagFile>),
    Unreadable { stem: String, path: PathBuf },
}

impl Workspace {
    /// The workspace whose config is at `config_path`.
    pub fn at(config_path: &Path) -> anyhow::Result<Workspace> {
        if !config_path.is_file() {
            bail!("no config file at `{}`", config_path.display());
        }
        let root = config_path.parent().map(Path::to_path_buf).unwrap_or_default();
        let root = if root.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            root
        };
        Ok(Workspace {
            config_path: config_path.to_path_buf(),
            root,
        })
    }

    /// The workspace found from `start` upwards, or at `explicit` when given.
    pub fn find(explicit: Option<&Path>, start: &Path) -> anyhow::Result<Workspace> {
        if let Some(path) = explicit {
            return Workspace::at(path);
        }
        match crate::config::discover(start) {
            Some(found) => Workspace::at(&display_path(&found)),
            None => bail!(
                "no `{}` in `{}` or any parent directory\nhelp: run flagops inside a registry, or pass `--config PATH`",
                crate::config::FILE_NAME,
                start.display()
            ),
        }
    }

    /// A path from the config, resolved against the workspace root.
    pub fn resolve(&self, relative: &str) -> PathBuf {
        let joined = self.root.join(relative);
        joined.strip_prefix("./").map(Path::to_path_buf).unwrap_or(joined)
    }
}

/// Reads and checks `flagops.yml` and every flag file, collecting all diagnostics.
pub fn load(workspace: &Workspace, options: &LoadOptions) -> anyhow::Result<Loaded> {
    let config_file = read_source(&workspace.config_path)?;
    let mut loaded = start(workspace.config_path.clone(), config_file.map_err(|d| *d));
    let Some(config) = loaded.1.take() else {
        return Ok(finish_without_config(loaded.0));
    };
    let flags_dir = options
        .flags_dir
        .clone()
        .unwrap_or_else(|| workspace.resolve(&config.flags_dir));
    let paths = discover_flag_files(&flags_dir)?;
    let reads: Vec<FileRead> = paths
        .par_iter()
        .map(|path| read_flag(path))
        .collect::<anyhow::Result<_>>()?;
    Ok(finish(loaded.0, config, &flags_dir, paths, reads, options))
}

/// Checks a registry held in memory, as read from git: its config and its flag files.
pub fn load_sources(
    config_file: SourceFile,
    flag_files: Vec<SourceFile>,
    flags_dir: &Path,
    options: &LoadOptions,
) -> Loaded {
    let mut loaded = start(config_file.path.clone(), Ok(config_file));
    let Some(config) = loaded.1.take() else {
        return finish_without_config(loaded.0);
    };
    let paths: Vec<PathBuf> = flag_files.iter().map(|file| file.path.clone()).collect();
    let reads: Vec<FileRead> = flag_files.into_par_iter().map(check_flag_source).collect();
    finish(loaded.0, config, flags_dir, paths, reads, options)
}

/// The first step of a load: the config, read and checked.
fn start(config_path: PathBuf, config_file: Result<SourceFile, Diagnostic>) -> (Loaded, Option<Config>) {
    let mut loaded = Loaded {
        registry: None,
        diagnostics: Vec::new(),
        sources: BTreeMap::new(),
        files: vec![config_path],
    };
    let config = match config_file {
        Err(diagnostic) => {
            loaded.diagnostics.push(diagnostic);
            None
        }
        Ok(file) => {
            let (config, found) = read_config(&file);
            if !found.is_empty() {
                loaded.sources.insert(file.path.clone(), file.text);
            }
            loaded.diagnostics.extend(found);
            config
        }
    };
    (loaded, config)
}

fn finish_without_config(mut loaded: Loaded) -> Loaded {
    diagnostic::sort(&mut loaded.diagnostics);
    loaded
}

/// The last step of a load: the registry from the files read, and the semantic checks.
fn finish(
    mut loaded: Loaded,
    config: Config,
    flags_dir: &Path,
    paths: Vec<PathBuf>,
    reads: Vec<FileRead>,
    options: &LoadOptions,
) -> Loaded {
    let mut flags = Vec::with_capacity(reads.len());
    let mut unreadable: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for FileRead {
        outcome,
        diagnostics: found,
        source,
    } in reads
    {
        match outcome {
            FileOutcome::Flag(file) => flags.push(*file),
            FileOutcome::Unreadable { stem, path } => unreadable.entry(stem).or_default().push(path),
        }
        if !found.is_empty()
            && let Some(source) = source
        {
            loaded.sources.insert(source.path, source.text);
        }
        loaded.diagnostics.extend(found);
    }
    loaded.files.extend(paths);
    // Where each file sits under the flags directory, compared in absolute form: the paths shown
    // are relative to the working directory, which may lie anywhere in the registry.
    let flags_dir_absolute = crate::paths::absolute(flags_dir);
    for file in &mut flags {
        let absolute = crate::paths::absolute(&file.path);
        let inside = absolute.strip_prefix(&flags_dir_absolute).unwrap_or(&absolute);
        file.folder = inside
            .parent()
            .map(|folder| folder.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
    }
    let registry = Registry::new(config, flags, display_path(flags_dir), unreadable);
    let found = crate::check::run(&registry, &options.skip);
    for diagnostic in &found {
        if !loaded.sources.contains_key(&diagnostic.path)
            && let Some(file) = registry.flags.iter().find(|file| file.path == diagnostic.path)
        {
            loaded
                .sources
                .insert(diagnostic.path.clone(), file.index.text().to_string());
        }
    }
    loaded.diagnostics.extend(found);
    diagnostic::sort(&mut loaded.diagnostics);
    loaded.registry = Some(registry);
    loaded
}

/// Parses and checks the config text; returns the config when it has no errors.
pub fn read_config(file: &SourceFile) -> (Option<Config>, Vec<Diagnostic>) {
    let document = match parse_yaml(file) {
        Ok(document) => document,
        Err(diagnostic) => return (None, vec![*diagnostic]),
    };
    let mut found = schema::check(SchemaKind::Config, file, &document);
    if !found.is_empty() {
        return (None, found);
    }
    match typed::<Config>(file, &document) {
        Ok(config) => {
            found.extend(check_config(file, &document, &config));
            let config = found.is_empty().then_some(config);
            (config, found)
        }
        Err(diagnostic) => (None, vec![*diagnostic]),
    }
}

/// Reads one flag file through every gate.
fn read_flag(path: &Path) -> anyhow::Result<FileRead> {
    match read_file(path, Links::Refuse)? {
        Ok(file) => Ok(check_flag_source(file)),
        Err(diagnostic) => Ok(FileRead {
            outcome: unreadable(path),
            diagnostics: vec![*diagnostic],
            source: None,
        }),
    }
}

/// Takes one flag file held in memory through the size limit, YAML, the schema and the model.
fn check_flag_source(file: SourceFile) -> FileRead {
    if file.text.len() as u64 > MAX_FILE_BYTES {
        let diagnostic = too_large(&file.path, file.text.len() as u64);
        return FileRead {
            outcome: unreadable(&file.path),
            diagnostics: vec![diagnostic],
            source: None,
        };
    }
    let (outcome, found) = parse_flag(&file);
    let outcome = match outcome {
        Some(flag) => FileOutcome::Flag(Box::new(flag)),
        None => unreadable(&file.path),
    };
    // The text is kept for excerpts only when there is something to show: a flag's own
    // index holds it too.
    let source = (!found.is_empty()).then_some(file);
    FileRead {
        outcome,
        diagnostics: found,
        source,
    }
}

fn unreadable(path: &Path) -> FileOutcome {
    let stem = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    FileOutcome::Unreadable {
        stem,
        path: display_path(path),
    }
}

fn too_large(path: &Path, size: u64) -> Diagnostic {
    Diagnostic::at(
        "file-too-large",
        diagnostic::Severity::Error,
        path,
        Span::point(1, 1),
        format!("the file is {size} bytes"),
    )
    .with_help(format!(
        "flag files may be at most {MAX_FILE_BYTES} bytes; a flag needs far less"
    ))
}

/// Parses, schema-checks and types one flag file held in memory.
pub fn parse_flag(file: &SourceFile) -> (Option<FlagFile>, Vec<Diagnostic>) {
    let document = match parse_yaml(file) {
        Ok(document) => document,
        Err(diagnostic) => return (None, vec![*diagnostic]),
    };
    let found = schema::check(SchemaKind::Flag, file, &document);
    if !found.is_empty() {
        return (None, found);
    }
    match typed::<Flag>(file, &document) {
        Ok(flag) => (
            Some(FlagFile {
                path: file.path.clone(),
                folder: String::new(),
                index: document.index,
                times: crate::resolve::step_times(&flag.rollout),
                flag,
            }),
            Vec::new(),
        ),
        Err(diagnostic) => (None, vec![*diagnostic]),
    }
}

/// Reads a file's text, refusing huge and non-UTF-8 files with a diagnostic, and anything but a
/// regular file (a named pipe is never waited on).
pub fn read_source(path: &Path) -> anyhow::Result<Result<SourceFile, Box<Diagnostic>>> {
    read_file(path, Links::Follow)
}

/// Reads a file of the registry's own folders (flag files, evaluation tests) as [`read_source`]
/// does, but refuses a symbolic link at the path with a `not-a-file` diagnostic: a link could put
/// any file of the machine into the registry.
pub fn read_registry_source(path: &Path) -> anyhow::Result<Result<SourceFile, Box<Diagnostic>>> {
    read_file(path, Links::Refuse)
}

/// Whether a read follows a symbolic link at the path itself.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Links {
    Follow,
    /// Flag files: a link could put any file of the machine into the registry, or take a flag
    /// out of it without a trace.
    Refuse,
}

/// Reads one file within the limits: a regular file (a link only with `Links::Follow`), at most
/// `MAX_FILE_BYTES`, UTF-8.
fn read_file(path: &Path, links: Links) -> anyhow::Result<Result<SourceFile, Box<Diagnostic>>> {
    let shown = display_path(path);
    let failed = || format!("failed to read `{}`", path.display());
    // Opening never waits or follows a refused link, so what the path is gets checked on the
    // open file; only what cannot be opened at all (a socket) is looked at by its path.
    let mut file = match open_to_read(path, links) {
        Ok(file) => file,
        Err(error) if links == Links::Refuse && is_refused_link(&error) => {
            return Ok(Err(Box::new(not_a_file(&shown, "a symbolic link"))));
        }
        Err(error) => {
            if let Ok(metadata) = std::fs::symlink_metadata(path)
                && !metadata.is_file()
                && !metadata.is_symlink()
            {
                return Ok(Err(Box::new(not_a_file(&shown, kind_of(&metadata.file_type())))));
            }
            return Err(error).with_context(failed);
        }
    };
    let metadata = file.metadata().with_context(failed)?;
    if !metadata.is_file() {
        return Ok(Err(Box::new(not_a_file(&shown, kind_of(&metadata.file_type())))));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Ok(Err(Box::new(too_large(&shown, metadata.len()))));
    }
    // Room for the whole file and the read that finds its end, so one read takes it.
    let mut bytes = Vec::with_capacity(metadata.len() as usize + 1);
    std::io::Read::read_to_end(&mut std::io::Read::take(&mut file, MAX_FILE_BYTES + 1), &mut bytes)
        .with_context(failed)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Ok(Err(Box::new(too_large(&shown, bytes.len() as u64))));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Ok(SourceFile { path: shown, text })),
        Err(error) => {
            let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
            let prefix = std::str::from_utf8(valid).expect("valid prefix");
            let line = prefix.matches('\n').count() + 1;
            let column = prefix.rsplit('\n').next().map_or(0, |last| last.chars().count()) + 1;
            Ok(Err(Box::new(
                Diagnostic::at(
                    "not-utf8",
                    diagnostic::Severity::Error,
                    &shown,
                    Span::point(line, column),
                    "the file is not valid UTF-8",
                )
                .with_help("save the file as UTF-8"),
            )))
        }
    }
}

/// Opens a file to read without waiting on a named pipe, and without following a link at the
/// path itself when links are refused.
#[cfg(unix)]
fn open_to_read(path: &Path, links: Links) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    std::fs::OpenOptions::new().read(true).custom_flags(flags).open(path)
}

#[cfg(not(unix))]
fn open_to_read(path: &Path, _links: Links) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// Whether opening failed because the path is a link and links are refused (`ELOOP`).
#[cfg(unix)]
fn is_refused_link(error: &std::io::Error) -> bool {
    error.raw_os_error() == Some(libc::ELOOP)
}

#[cfg(not(unix))]
fn is_refused_link(_error: &std::io::Error) -> bool {
    false
}

/// What a file that is not a regular file is, in words.
fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a named pipe";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_block_device() || file_type.is_char_device() {
            return "a device";
        }
    }
    if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

fn not_a_file(path: &Path, kind: &str) -> Diagnostic {
    let (message, help) = match kind {
        "a symbolic link" => (
            "this is a symbolic link, which flagops never follows".to_string(),
            "put the file or folder itself here instead of a link to it",
        ),
        "a folder" => (
            "this is a folder, not a flag file".to_string(),
            "rename the folder: names ending in `.yml` or `.yaml` are for flag files",
        ),
        other => (
            format!("this is {other}, not a flag file"),
            "replace it with a regular file, or move it out of the flags directory",
        ),
    };
    Diagnostic::at(
        "not-a-file",
        diagnostic::Severity::Error,
        path,
        Span::point(1, 1),
        message,
    )
    .with_help(help)
}

/// Every entry under `dir` that a flag file could be, sorted, skipping hidden entries: whatever
/// is named `*.yml` or `*.yaml` (a link, a pipe or a folder too, for the read to refuse, so that
/// its flag stays known), and every link to a folder, whose flags would otherwise go unseen.
/// Links are never followed below `dir`.
pub fn discover_flag_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    // `dir` itself is followed: it is the flags directory the config or the command line names.
    match std::fs::metadata(dir) {
        Ok(metadata) if metadata.is_dir() => {}
        // A single file (or a pipe, or a dangling link) is read, or refused, as a flag file.
        Ok(_) => return Ok(vec![display_path(dir)]),
        Err(_) if std::fs::symlink_metadata(dir).is_ok() => return Ok(vec![display_path(dir)]),
        Err(_) => bail!("the flags directory `{}` does not exist", dir.display()),
    }
    let mut paths = Vec::new();
    let walker = WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| entry.depth() == 0 || !entry.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = entry.with_context(|| format!("failed to list `{}`", dir.display()))?;
        if entry.depth() == 0 {
            continue;
        }
        let is_yaml = entry
            .path()
            .extension()
            .is_some_and(|ext| ext == "yml" || ext == "yaml");
        let links_to_folder = entry.path_is_symlink() && entry.path().is_dir();
        if is_yaml || links_to_folder {
            paths.push(display_path(entry.path()));
        }
    }
    paths.sort();
    Ok(paths)
}

/// The path as shown to users: relative to the working directory when it lies below it (`.`
/// for the working directory itself), absolute otherwise, so one file always has one spelling.
/// Never compare these spellings: compare `paths::absolute` forms.
pub fn display_path(path: &Path) -> PathBuf {
    let normalized = crate::paths::absolute(path);
    if let Some(current) = crate::paths::working_dir()
        && let Ok(relative) = normalized.strip_prefix(current)
    {
        if relative.as_os_str().is_empty() {
            return PathBuf::from(".");
        }
        return relative.to_path_buf();
    }
    normalized
}

/// Deserializes the typed model from a schema-valid document.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(
    file: &SourceFile,
    document: &Document,
) -> Result<T, Box<Diagnostic>> {
    // A schema-valid document types on the first try; only a failure is typed again with its
    // path tracked, to say where.
    if let Ok(typed) = <T as serde::Deserialize>::deserialize(&document.value) {
        return Ok(typed);
    }
    serde_path_to_error::deserialize(&document.value).map_err(|error| {
        let pointer: String = error.path().iter().map(|segment| format!("/{segment}")).collect();
        Box::new(
            Diagnostic::error(
                "schema",
                file,
                document.index.value_span(&pointer),
                error.inner().to_string(),
            )
            .with_help("the file passed the schema but not the typed model: please report this"),
        )
    })
}

/// Checks the config beyond its schema: a valid anchor date, policies, paths that stay inside the
/// registry, unique environment names, and no file shared by two environments.
fn check_config(file: &SourceFile, document: &Document, config: &Config) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    if !config.allow_paths_outside {
        check_paths_inside(file, document, config, &mut found);
    }
    if config.lifecycle.anchor_date.parse::<jiff::civil::Date>().is_err() {
        let span = document.index.value_span("/lifecycle/anchor_date");
        found.push(
            Diagnostic::error(
                "invalid-value",
                file,
                span,
                format!("`{}` is not a date", config.lifecycle.anchor_date),
            )
            .with_help("write the anchor milestone's release date, such as 2023-05-18"),
        );
    }
    check_policies(file, document, config, &mut found);
    let mut seen = BTreeSet::new();
    for (position, environment) in config.environments.iter().enumerate() {
        if !seen.insert(environment.name.as_str()) {
            let span = document.index.value_span(&format!("/environments/{position}/name"));
            found.push(
                Diagnostic::error(
                    "duplicate-environment",
                    file,
                    span,
                    format!("the environment `{}` is defined twice", environment.name),
                )
                .with_help("give every environment its own name"),
            );
        }
    }
    check_guards(file, document, config, &mut found);
    found.extend(crate::backends::check_shared_files(file, document, config));
    found
}

/// Metric guards: a `prometheus` to ask, queries with known variables, and flag types that name
/// guards the config defines.
fn check_guards(file: &SourceFile, document: &Document, config: &Config, found: &mut Vec<Diagnostic>) {
    if !config.guards.is_empty() && config.prometheus.is_none() {
        found.push(
            Diagnostic::error(
                "missing-key",
                file,
                document.index.key_span("/guards"),
                "guards are defined but there is no `prometheus` to ask",
            )
            .with_help("add `prometheus: { url: https://prometheus.example.com }`"),
        );
    }
    for (name, guard) in &config.guards {
        for variable in crate::guard::unknown_variables(&guard.query) {
            found.push(
                Diagnostic::error(
                    "invalid-value",
                    file,
                    document.index.value_span(&format!("/guards/{name}/query")),
                    format!("the query of guard `{name}` uses the unknown variable `{{{{{variable}}}}}`"),
                )
                .with_help("a query may use `{{flag}}` and `{{environment}}`"),
            );
        }
    }
    for (name, rules) in &config.types {
        if let Some(guard) = &rules.guard
            && !config.guards.contains_key(guard)
        {
            found.push(
                Diagnostic::error(
                    "unknown-guard",
                    file,
                    document.index.value_span(&format!("/types/{name}/guard")),
                    format!("the type `{name}` names the unknown guard `{guard}`"),
                )
                .with_help("define it under `guards:`, or remove the type's `guard`"),
            );
        }
    }
}

/// Every path the config names stays inside the registry's folder: not absolute, and no `..`
/// above it (read lexically; a link inside the registry is the registry's own choice).
fn check_paths_inside(file: &SourceFile, document: &Document, config: &Config, found: &mut Vec<Diagnostic>) {
    let mut named: Vec<(String, &str)> = vec![
        ("/flags_dir".to_string(), config.flags_dir.as_str()),
        ("/state_dir".to_string(), config.state_dir.as_str()),
        ("/cache_dir".to_string(), config.cache_dir.as_str()),
        ("/tests_dir".to_string(), config.tests_dir.as_str()),
    ];
    for (position, environment) in config.environments.iter().enumerate() {
        if let Some(sample) = &environment.actor_sample {
            named.push((format!("/environments/{position}/actor_sample"), sample.as_str()));
        }
        let path = match &environment.backend {
            crate::config::BackendConfig::File { path: Some(path) } | crate::config::BackendConfig::Flagd { path } => {
                path
            }
            _ => continue,
        };
        named.push((format!("/environments/{position}/backend/path"), path.as_str()));
    }
    for (pointer, path) in named {
        if crate::paths::stays_inside(Path::new(path)) {
            continue;
        }
        // A default is always inside, so the key is in the file.
        found.push(
            Diagnostic::error(
                "path-outside-registry",
                file,
                document.index.value_span(&pointer),
                format!("`{path}` is outside the registry's folder"),
            )
            .with_help(
                "paths here start at the folder of flagops.yml; to use a path outside it, set `allow_paths_outside: true`",
            ),
        );
    }
}

/// The `policies` and `notifications` sections: environment names that exist, a duration,
/// times in order.
fn check_policies(file: &SourceFile, document: &Document, config: &Config, found: &mut Vec<Diagnostic>) {
    let known: Vec<&str> = config.environment_names().collect();
    let mut environment_lists: Vec<(String, &Vec<String>)> = Vec::new();
    if let Some(names) = &config.policies.promotion_order {
        environment_lists.push(("/policies/promotion_order".to_string(), names));
    }
    for (name, notifier) in &config.notifications {
        if let Some(names) = &notifier.environments {
            environment_lists.push((format!("/notifications/{name}/environments"), names));
        }
    }
    for (position, window) in config.policies.freeze_windows.iter().enumerate() {
        let pointer = format!("/policies/freeze_windows/{position}");
        if let Some(names) = &window.environments {
            environment_lists.push((format!("{pointer}/environments"), names));
        }
        let from = crate::resolve::parse_time(&window.from);
        let until = crate::resolve::parse_time(&window.until);
        for (key, time) in [("from", &from), ("until", &until)] {
            if let Err(reason) = time {
                found.push(
                    Diagnostic::error(
                        "invalid-value",
                        file,
                        document.index.value_span(&format!("{pointer}/{key}")),
                        format!("invalid time: {reason}"),
                    )
                    .with_help("write an RFC 3339 time with an offset, quoted, such as \"2026-12-20T00:00:00Z\""),
                );
            }
        }
        if let (Ok(from), Ok(until)) = (from, until)
            && until <= from
        {
            found.push(
                Diagnostic::error(
                    "invalid-value",
                    file,
                    document.index.value_span(&format!("{pointer}/until")),
                    format!("the freeze `{}` ends before it starts", window.name),
                )
                .with_help("`until` must be later than `from`"),
            );
        }
    }
    for (pointer, names) in environment_lists {
        for (position, name) in names.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                found.push(
                    Diagnostic::error(
                        "invalid-value",
                        file,
                        document.index.value_span(&format!("{pointer}/{position}")),
                        format!("unknown environment `{name}`"),
                    )
                    .with_help(format!("the environments are {}", known.join(", "))),
                );
            }
        }
    }
    if let Err(reason) = crate::resolve::parse_duration(&config.policies.min_wait) {
        found.push(
            Diagnostic::error(
                "invalid-value",
                file,
                document.index.value_span("/policies/min_wait"),
                format!("invalid duration: {reason}"),
            )
            .with_help("write a positive duration such as 15m or 1h"),
        );
    }
}

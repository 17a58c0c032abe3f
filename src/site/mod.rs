//! The static registry site: an index of every flag with search and filters, a page per flag
//! and per environment, stale flags, an Atom feed and `flags.json`.
//!
//! Views are built from the registry, the history and the last sync records, rendered with
//! minijinja templates (embedded defaults from `site/templates`, overridable from a folder) and
//! written in sorted order. All links are relative, so the site works under any sub-path; times
//! come from git, never from the clock, so identical input gives identical bytes.

mod chart;
mod context;
mod lazy;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use minijinja::value::{Serde, Value};
use minijinja::{Environment, context};
use rayon::prelude::*;

use crate::backends::Snapshot;
use crate::history::History;
use crate::model::Registry;
use crate::owned_file;
use lazy::Rows;

use context::Views;
pub use context::build_views;

/// Default templates and static files, embedded in the binary.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../site/templates/base.html")),
    ("index.html", include_str!("../../site/templates/index.html")),
    ("flag.html", include_str!("../../site/templates/flag.html")),
    (
        "environment.html",
        include_str!("../../site/templates/environment.html"),
    ),
    ("stale.html", include_str!("../../site/templates/stale.html")),
    ("type.html", include_str!("../../site/templates/type.html")),
    ("list.html", include_str!("../../site/templates/list.html")),
    ("rows.html", include_str!("../../site/templates/rows.html")),
    ("feed.xml", include_str!("../../site/templates/feed.xml")),
];

const STATIC: &[(&str, &str)] = &[
    ("style.css", include_str!("../../site/static/style.css")),
    ("search.js", include_str!("../../site/static/search.js")),
];

/// What a site build needs besides the registry.
#[derive(Debug, Default)]
pub struct SiteInput {
    /// The flags' history.
    pub history: History,
    /// What each environment's backend holds, when it could be read.
    pub snapshots: BTreeMap<String, Snapshot>,
    /// How each environment read compares with the registry (`status::classify`), which tells
    /// pending changes from drift and held flags.
    pub statuses: BTreeMap<String, crate::status::EnvironmentStatus>,
    /// A folder whose templates and static files replace the embedded ones, file by file.
    pub templates: Option<PathBuf>,
    /// The time the site describes, in seconds since the epoch; by default the head commit's.
    pub now: Option<i64>,
}

impl SiteInput {
    /// The time the site describes: `now`, else the head commit's time.
    pub fn time(&self) -> i64 {
        self.now.unwrap_or(self.history.head_time)
    }
}

/// The file that marks a folder as a site built by flagops, so a rebuild may replace it.
const MARKER: &str = ".flagops-site";

/// Builds the site into `out`, replacing what it held. Returns the number of pages written.
///
/// Pages are rendered and written one by one, in parallel, into a new folder beside `out`, which
/// replaces `out` once every file is written: only one page at a time per thread is held in
/// memory, and a failed build leaves `out` as it was.
pub fn build(registry: &Registry, input: &SiteInput, out: &Path) -> anyhow::Result<usize> {
    let environment = templates(input.templates.as_deref())?;
    if let Some(dir) = &input.templates
        && !dir.is_dir()
    {
        anyhow::bail!("the templates folder `{}` does not exist", dir.display());
    }
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .map(|mut entries| entries.next().is_none())
            .unwrap_or(false);
        if !empty && !out.join(MARKER).is_file() {
            anyhow::bail!(
                "refusing to replace `{}`: it is not empty and was not built by `flagops site`\nhelp: choose another `--out`, or empty the folder first",
                out.display()
            );
        }
    }
    let mut statics = Vec::with_capacity(STATIC.len());
    for (name, text) in STATIC {
        let bytes = match override_file(input.templates.as_deref(), &format!("static/{name}"))? {
            Some(bytes) => bytes,
            None => text.as_bytes().to_vec(),
        };
        statics.push((format!("static/{name}"), bytes));
    }
    let views = Arc::new(build_views(registry, input));
    let files = files(&environment, &views, &statics);

    let staging = staging_folder(out)?;
    match write_files(&staging, files) {
        Ok(pages) => {
            if out.exists() {
                std::fs::remove_dir_all(out).with_context(|| format!("failed to clear `{}`", out.display()))?;
            }
            std::fs::rename(&staging, out)
                .with_context(|| format!("failed to move `{}` to `{}`", staging.display(), out.display()))?;
            Ok(pages)
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(error)
        }
    }
}

/// Writes one file's bytes.
type Writer<'a> = Box<dyn Fn(&mut dyn Write) -> anyhow::Result<()> + Send + Sync + 'a>;

/// Every file of the site: its path in the output folder and what writes it. Nothing is
/// rendered yet.
fn files<'a>(
    environment: &'a Environment<'static>,
    views: &'a Arc<Views>,
    statics: &'a [(String, Vec<u8>)],
) -> Vec<(String, Writer<'a>)> {
    // A page's context is built when the page is rendered, and dropped with it.
    let page = move |name: &'static str, context: Box<dyn Fn() -> Value + Send + Sync + 'a>| -> Writer<'a> {
        Box::new(move |out: &mut dyn Write| {
            let template = environment
                .get_template(name)
                .with_context(|| format!("no template `{name}`"))?;
            let text = template
                .render(context())
                .map_err(|error| anyhow::anyhow!("failed to render `{name}`: {error:#}"))?;
            Ok(out.write_all(text.as_bytes())?)
        })
    };
    let site = move |root: &'static str| context! { site => Serde(&views.site), root => root };
    let mut files: Vec<(String, Writer<'a>)> = Vec::new();
    // The index is the largest page: first, so that it does not end the build alone.
    files.push((
        "index.html".into(),
        page(
            "index.html",
            Box::new(move || {
                context! { flags => Rows::all(views), environments => Serde(&views.environments), types => Serde(&views.types), ..site("") }
            }),
        ),
    ));
    for flag in &views.flags {
        files.push((
            format!("flags/{}.html", flag.name),
            page(
                "flag.html",
                Box::new(move || context! { flag => Serde(flag), ..site("../") }),
            ),
        ));
    }
    for environment_view in &views.environments {
        files.push((
            format!("environments/{}.html", environment_view.name),
            page(
                "environment.html",
                Box::new(move || context! { environment => Serde(environment_view), ..site("../") }),
            ),
        ));
    }
    for (folder, lists) in [("groups", &views.groups), ("owners", &views.owners)] {
        for list in lists {
            files.push((
                format!("{folder}/{}.html", list.slug),
                page(
                    "list.html",
                    Box::new(move || {
                        context! { list => Serde(list), flags => Rows::some(views, &list.flags), ..site("../") }
                    }),
                ),
            ));
        }
    }
    for type_view in &views.types {
        files.push((
            format!("types/{}.html", type_view.name),
            page(
                "type.html",
                Box::new(move || context! { type_view => Serde(type_view), ..site("../") }),
            ),
        ));
    }
    files.push((
        "stale.html".into(),
        page(
            "stale.html",
            Box::new(move || context! { flags => Serde(&views.stale), ..site("") }),
        ),
    ));
    files.push((
        "feed.xml".into(),
        page(
            "feed.xml",
            Box::new(move || context! { entries => Serde(&views.feed), ..site("") }),
        ),
    ));
    files.push((
        "flags.json".into(),
        Box::new(move |out: &mut dyn Write| {
            serde_json::to_writer_pretty(&mut *out, &views.export)?;
            Ok(out.write_all(b"\n")?)
        }),
    ));
    files.push((
        "search.json".into(),
        Box::new(move |out: &mut dyn Write| {
            serde_json::to_writer(&mut *out, &views.search)?;
            Ok(out.write_all(b"\n")?)
        }),
    ));
    for (name, bytes) in statics {
        files.push((
            name.clone(),
            Box::new(move |out: &mut dyn Write| Ok(out.write_all(bytes)?)),
        ));
    }
    files.push((
        MARKER.into(),
        Box::new(|out: &mut dyn Write| {
            Ok(out.write_all(b"This folder is built by `flagops site`, which replaces it on every build.\n")?)
        }),
    ));
    files
}

/// Writes every file into `folder` and returns the number of pages.
fn write_files(folder: &Path, files: Vec<(String, Writer<'_>)>) -> anyhow::Result<usize> {
    // Every file name is checked before anything is written: a name from the registry (a flag,
    // type or environment name) must never lead out of the folder.
    let mut targets = Vec::with_capacity(files.len());
    for (name, writer) in files {
        targets.push((crate::paths::inside(folder, Path::new(&name))?, writer));
    }
    let pages = targets
        .iter()
        .filter(|(path, _)| path.extension().is_some_and(|extension| extension == "html"))
        .count();
    let folders: std::collections::BTreeSet<&Path> = targets.iter().filter_map(|(path, _)| path.parent()).collect();
    for folder in folders {
        std::fs::create_dir_all(folder).with_context(|| format!("failed to create `{}`", folder.display()))?;
    }
    targets.par_iter().try_for_each(|(path, writer)| {
        let file = std::fs::File::create(path).with_context(|| format!("failed to write `{}`", path.display()))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
        writer(&mut out)?;
        out.flush()
            .with_context(|| format!("failed to write `{}`", path.display()))
    })?;
    Ok(pages)
}

/// A new, empty folder beside `out` to build the site in; what a build that was killed left
/// there is removed.
fn staging_folder(out: &Path) -> anyhow::Result<PathBuf> {
    let name = out
        .file_name()
        .with_context(|| format!("`{}` cannot be the site's folder", out.display()))?;
    let mut staging_name = std::ffi::OsString::from(".");
    staging_name.push(name);
    staging_name.push(".flagops-building");
    let staging = out.with_file_name(staging_name);
    if std::fs::symlink_metadata(&staging).is_ok() {
        std::fs::remove_dir_all(&staging).with_context(|| format!("failed to clear `{}`", staging.display()))?;
    }
    std::fs::create_dir(&staging).with_context(|| format!("failed to create `{}`", staging.display()))?;
    Ok(staging)
}

/// The template environment: embedded templates, each replaced by `dir/templates/NAME` when
/// that file exists.
fn templates(dir: Option<&Path>) -> anyhow::Result<Environment<'static>> {
    let mut environment = Environment::new();
    // Pages and the feed are HTML and XML: a character XML 1.0 forbids (a control character in
    // a commit message or an author's name) would make the feed not well-formed, and HTML
    // refuses the same, so every value loses them before minijinja's auto-escaping.
    // A text that holds none of them, nearly every one, is written as it is, without a copy.
    environment.set_formatter(|out, state, value| match value.as_str().map(crate::escape::xml) {
        Some(std::borrow::Cow::Owned(cleaned)) if !value.is_safe() => {
            minijinja::escape_formatter(out, state, &Value::from(cleaned))
        }
        _ => minijinja::escape_formatter(out, state, value),
    });
    for (name, text) in TEMPLATES {
        match override_file(dir, &format!("templates/{name}"))? {
            Some(bytes) => {
                let text = String::from_utf8(bytes).with_context(|| format!("template `{name}` is not UTF-8"))?;
                environment
                    .add_template_owned(name.to_string(), text)
                    .map_err(|e| anyhow::anyhow!("template `{name}`: {e:#}"))?;
            }
            None => environment
                .add_template(name, text)
                .map_err(|e| anyhow::anyhow!("template `{name}`: {e:#}"))?,
        }
    }
    Ok(environment)
}

/// The file `relative` (`templates/NAME` or `static/NAME`) of the templates folder `dir`, if it
/// has one. Links are refused, the file's and its folder's: they would publish whatever they
/// point at.
fn override_file(dir: Option<&Path>, relative: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(dir) = dir else { return Ok(None) };
    let path = dir.join(relative);
    if let Some(folder) = path.parent() {
        owned_file::refuse_link(folder)?;
    }
    owned_file::read(&path, owned_file::MAX_DOCUMENT_BYTES)
}

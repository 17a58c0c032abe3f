//! The static registry site: an index of every flag with search and filters, a page per flag
//! and per environment, stale flags, an Atom feed and `flags.json`.
//!
//! Views are built from the registry, the history and the last sync records, rendered with
//! minijinja templates (embedded defaults from `site/templates`, overridable from a folder) and
//! written in sorted order. All links are relative, so the site works under any sub-path; times
//! come from git, never from the clock, so identical input gives identical bytes.

mod chart;
mod context;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use minijinja::Environment;
use minijinja::value::Serde;

use crate::backends::Snapshot;
use crate::history::History;
use crate::model::Registry;
use crate::owned_file;

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
pub fn build(registry: &Registry, input: &SiteInput, out: &Path) -> anyhow::Result<usize> {
    let environment = templates(input.templates.as_deref())?;
    let views = build_views(registry, input);
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();

    let render = |name: &str, context: minijinja::Value| -> anyhow::Result<Vec<u8>> {
        let template = environment
            .get_template(name)
            .with_context(|| format!("no template `{name}`"))?;
        let text = template
            .render(context)
            .map_err(|error| anyhow::anyhow!("failed to render `{name}`: {error:#}"))?;
        Ok(text.into_bytes())
    };
    let page = |root: &str| minijinja::context! { site => Serde(&views.site), root => root };

    files.insert("index.html".into(), render("index.html", minijinja::context! { flags => Serde(&views.flags), environments => Serde(&views.environments), types => Serde(&views.types), ..page("") })?);
    for flag in &views.flags {
        files.insert(
            format!("flags/{}.html", flag.name),
            render("flag.html", minijinja::context! { flag => Serde(flag), ..page("../") })?,
        );
    }
    for environment_view in &views.environments {
        files.insert(
            format!("environments/{}.html", environment_view.name),
            render(
                "environment.html",
                minijinja::context! { environment => Serde(environment_view), ..page("../") },
            )?,
        );
    }
    for (folder, lists) in [("groups", &views.groups), ("owners", &views.owners)] {
        for list in lists {
            let rows: Vec<_> = list.flags.iter().map(|&position| &views.flags[position]).collect();
            files.insert(
                format!("{folder}/{}.html", list.slug),
                render(
                    "list.html",
                    minijinja::context! { list => Serde(list), flags => Serde(&rows), ..page("../") },
                )?,
            );
        }
    }
    for type_view in &views.types {
        files.insert(
            format!("types/{}.html", type_view.name),
            render(
                "type.html",
                minijinja::context! { type_view => Serde(type_view), ..page("../") },
            )?,
        );
    }
    files.insert(
        "stale.html".into(),
        render(
            "stale.html",
            minijinja::context! { flags => Serde(&views.stale), ..page("") },
        )?,
    );
    files.insert(
        "feed.xml".into(),
        render(
            "feed.xml",
            minijinja::context! { entries => Serde(&views.feed), ..page("") },
        )?,
    );
    let mut json = serde_json::to_vec_pretty(&views.export)?;
    json.push(b'\n');
    files.insert("flags.json".into(), json);
    let mut search = serde_json::to_vec(&views.search)?;
    search.push(b'\n');
    files.insert("search.json".into(), search);
    for (name, text) in STATIC {
        let bytes = match override_file(input.templates.as_deref(), &format!("static/{name}"))? {
            Some(bytes) => bytes,
            None => text.as_bytes().to_vec(),
        };
        files.insert(format!("static/{name}"), bytes);
    }

    if let Some(dir) = &input.templates
        && !dir.is_dir()
    {
        anyhow::bail!("the templates folder `{}` does not exist", dir.display());
    }
    // Every file name is checked before anything is deleted: a name from the registry (a flag,
    // type or environment name) must never lead out of `out`.
    let mut targets = Vec::with_capacity(files.len() + 1);
    for (name, bytes) in files {
        targets.push((crate::paths::inside(out, Path::new(&name))?, bytes));
    }
    targets.push((
        crate::paths::inside(out, Path::new(MARKER))?,
        b"This folder is built by `flagops site`, which replaces it on every build.\n".to_vec(),
    ));
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
        std::fs::remove_dir_all(out).with_context(|| format!("failed to clear `{}`", out.display()))?;
    }
    let pages = targets
        .iter()
        .filter(|(path, _)| path.extension().is_some_and(|extension| extension == "html"))
        .count();
    let folders: std::collections::BTreeSet<PathBuf> = targets
        .iter()
        .filter_map(|(path, _)| path.parent().map(Path::to_path_buf))
        .collect();
    for folder in folders {
        std::fs::create_dir_all(&folder).with_context(|| format!("failed to create `{}`", folder.display()))?;
    }
    // One after another: files created in one folder wait for its lock anyway.
    for (path, bytes) in targets {
        std::fs::write(&path, bytes).with_context(|| format!("failed to write `{}`", path.display()))?;
    }
    Ok(pages)
}

/// The template environment: embedded templates, each replaced by `dir/templates/NAME` when
/// that file exists.
fn templates(dir: Option<&Path>) -> anyhow::Result<Environment<'static>> {
    let mut environment = Environment::new();
    // Pages and the feed are HTML and XML: a character XML 1.0 forbids (a control character in
    // a commit message or an author's name) would make the feed not well-formed, and HTML
    // refuses the same, so every value loses them before minijinja's auto-escaping.
    environment.set_formatter(|out, state, value| match value.as_str() {
        Some(text) if !value.is_safe() => {
            let cleaned = minijinja::Value::from(crate::escape::xml(text).as_ref());
            minijinja::escape_formatter(out, state, &cleaned)
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

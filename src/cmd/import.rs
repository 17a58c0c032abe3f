//! `flagops import gitlab`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::ExitStatus;
use crate::cli::{ImportGitlabArgs, ReportFormat};
use crate::config::Layout;
use crate::import::{self, Note};
use crate::load::{self, Workspace};

#[derive(Serialize)]
struct Entry {
    source: PathBuf,
    written: Option<PathBuf>,
    status: &'static str,
    notes: Vec<Note>,
}

pub(super) fn run(workspace: &Workspace, args: ImportGitlabArgs) -> anyhow::Result<ExitStatus> {
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
    let source_dir = definitions_dir(&args.dir);
    let out_dir = args.out.clone().unwrap_or_else(|| workspace.resolve(&config.flags_dir));
    let sources = load::discover_flag_files(&source_dir)?;
    if sources.is_empty() {
        bail!("no definition files (*.yml) under `{}`", source_dir.display());
    }

    let mut entries = Vec::new();
    let mut failed = false;
    for source_path in sources {
        let folder = source_path
            .parent()
            .and_then(Path::file_name)
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = match load::read_source(&source_path)? {
            Ok(file) => file,
            Err(diagnostic) => {
                failed = true;
                entries.push(Entry {
                    source: source_path,
                    written: None,
                    status: "unreadable",
                    notes: vec![Note {
                        key: String::new(),
                        message: diagnostic.message,
                    }],
                });
                continue;
            }
        };
        let imported = match import::convert(&file, &folder) {
            Ok(imported) => imported,
            Err(message) => {
                failed = true;
                entries.push(Entry {
                    source: source_path,
                    written: None,
                    status: "unreadable",
                    notes: vec![Note {
                        key: String::new(),
                        message,
                    }],
                });
                continue;
            }
        };
        let stem = source_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file_name = format!("{stem}.yml");
        let relative = match config.layout {
            Layout::ByType => Path::new(&imported.flag_type).join(file_name),
            Layout::Free => PathBuf::from(file_name),
        };
        let target = crate::paths::inside(&out_dir, &relative)?;
        if target.exists() && !args.force {
            entries.push(Entry {
                source: source_path,
                written: None,
                status: "skipped (exists; --force replaces it)",
                notes: imported.notes,
            });
            continue;
        }
        let schema = schema_path(&target, &workspace.root);
        let text = crate::template::render_fields(&imported.fields, &schema);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("failed to create `{}`", parent.display()))?;
        }
        std::fs::write(&target, text).with_context(|| format!("failed to write `{}`", target.display()))?;
        entries.push(Entry {
            source: source_path,
            written: Some(load::display_path(&target)),
            status: "imported",
            notes: imported.notes,
        });
    }

    let report = match args.format {
        ReportFormat::Json => serde_json::to_string_pretty(&entries)? + "\n",
        ReportFormat::Human => human(&entries),
    };
    super::print(&report)?;
    Ok(if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// `DIR/config/feature_flags` when DIR is a GitLab checkout, else DIR.
fn definitions_dir(dir: &Path) -> PathBuf {
    let nested = dir.join("config").join("feature_flags");
    if nested.is_dir() { nested } else { dir.to_path_buf() }
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

fn human(entries: &[Entry]) -> String {
    let mut out = String::new();
    let imported = entries.iter().filter(|e| e.written.is_some()).count();
    let with_notes = entries.iter().filter(|e| !e.notes.is_empty()).count();
    for entry in entries {
        let target = entry
            .written
            .as_ref()
            .map_or_else(String::new, |path| format!(" -> {}", path.display()));
        let _ = writeln!(out, "{}: {}{target}", entry.source.display(), entry.status);
        for note in &entry.notes {
            if note.key.is_empty() {
                let _ = writeln!(out, "  note: {}", note.message);
            } else {
                let _ = writeln!(out, "  note: `{}` {}", note.key, note.message);
            }
        }
    }
    let _ = writeln!(
        out,
        "imported {imported} of {} definitions; {with_notes} with notes (run `flagops validate` next)",
        entries.len()
    );
    out
}

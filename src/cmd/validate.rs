//! `flagops validate`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::ExitStatus;
use crate::cli::{OutputFormat, ValidateArgs};
use crate::diagnostic::{self, Format};
use crate::load::{self, LoadOptions, Workspace};

pub(super) fn run(workspace: &Workspace, args: ValidateArgs) -> anyhow::Result<ExitStatus> {
    for id in &args.skip {
        if crate::check::find(id).is_none() {
            anyhow::bail!("unknown check `{id}`\nhelp: `flagops checks` lists the check ids");
        }
    }
    let mut options = LoadOptions {
        skip: args.skip.clone(),
        ..LoadOptions::default()
    };
    let mut only: Option<PathBuf> = None;
    if let Some(path) = &args.path {
        if !path.exists() {
            anyhow::bail!("`{}` does not exist", path.display());
        }
        let path = load::display_path(path);
        let config_text = std::fs::read_to_string(&workspace.config_path)
            .with_context(|| format!("failed to read `{}`", workspace.config_path.display()))?;
        let flags_dir = flags_dir_of(workspace, &config_text);
        if is_under(&path, &flags_dir) {
            only = Some(path);
        } else {
            options.flags_dir = Some(path);
        }
    }
    let loaded = load::load(workspace, &options)?;
    let diagnostics: Vec<_> = match &only {
        Some(prefix) => loaded
            .diagnostics
            .iter()
            .filter(|d| is_under(&d.path, prefix))
            .cloned()
            .collect(),
        None => loaded.diagnostics.clone(),
    };
    let files: Vec<PathBuf> = match &only {
        Some(prefix) => loaded
            .files
            .iter()
            .filter(|f| is_under(f, prefix))
            .cloned()
            .collect(),
        None => loaded.files.clone(),
    };
    let format = match args.format {
        OutputFormat::Human => Format::Human,
        OutputFormat::Json => Format::Json,
        OutputFormat::Codequality => Format::CodeQuality,
        OutputFormat::Junit => Format::Junit,
    };
    let source = |path: &Path| loaded.sources.get(path).map(String::as_str);
    let report = diagnostic::render(format, &diagnostics, &files, &source);
    let (errors, warnings) = diagnostic::count(&diagnostics);
    if let Some(output) = &args.output {
        std::fs::write(output, &report)
            .with_context(|| format!("failed to write `{}`", output.display()))?;
        let human = diagnostic::render(Format::Human, &diagnostics, &files, &source);
        super::print(&human)?;
    } else {
        super::print(&report)?;
    }
    if format == Format::Human || args.output.is_some() {
        let flags = files.len().saturating_sub(usize::from(only.is_none()));
        eprintln!(
            "checked {flags} flag files: {}",
            diagnostic::human_summary(errors, warnings)
        );
    }
    Ok(if errors > 0 {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// The flags directory the config names, or `flags` when the config cannot be read here (its
/// problems are reported by the load itself).
fn flags_dir_of(workspace: &Workspace, config_text: &str) -> PathBuf {
    let file = crate::source::SourceFile {
        path: workspace.config_path.clone(),
        text: config_text.to_string(),
    };
    let (config, _) = load::read_config(&file);
    let relative = config.map_or_else(|| "flags".to_string(), |config| config.flags_dir);
    load::display_path(&workspace.resolve(&relative))
}

fn is_under(path: &Path, prefix: &Path) -> bool {
    path.starts_with(prefix)
}

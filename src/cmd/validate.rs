//! `flagops validate`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::ExitStatus;
use crate::cli::{OutputFormat, ValidateArgs};
use crate::diagnostic::{self, Format};
use crate::load::{self, LoadOptions, Workspace};
use crate::paths;

pub(super) fn run(workspace: &Workspace, args: ValidateArgs) -> anyhow::Result<ExitStatus> {
    let (status, registry) = validate(workspace, args)?;
    super::release_at_exit(registry);
    Ok(status)
}

/// Validates and reports; also returns the registry read, for `deploy` to go on with.
pub(super) fn validate(
    workspace: &Workspace,
    args: ValidateArgs,
) -> anyhow::Result<(ExitStatus, Option<crate::model::Registry>)> {
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
        // PATH starts at the working directory; inside the flags directory it narrows the report
        // on the whole registry, elsewhere it is read as a flags directory of its own.
        match flags_dir_of(workspace)? {
            Some(flags_dir) if !paths::is_within(path, &flags_dir) => options.flags_dir = Some(path.clone()),
            _ => only = Some(paths::absolute(path)),
        }
    }
    let loaded = load::load(workspace, &options)?;
    let within = |path: &Path| {
        only.as_ref()
            .is_none_or(|prefix| paths::absolute(path).starts_with(prefix))
    };
    let diagnostics: Vec<_> = loaded.diagnostics.iter().filter(|d| within(&d.path)).cloned().collect();
    let files: Vec<PathBuf> = loaded.files.iter().filter(|f| within(f)).cloned().collect();
    let format = match args.format {
        OutputFormat::Human => Format::Human,
        OutputFormat::Json => Format::Json,
        OutputFormat::Codequality => Format::CodeQuality,
        OutputFormat::Junit => Format::Junit,
    };
    let source = |path: &Path| loaded.sources.get(path).map(String::as_str);
    let (errors, warnings) = diagnostic::count(&diagnostics);
    let flag_files = files.iter().filter(|f| **f != workspace.config_path).count();
    let summary = format!(
        "checked {flag_files} flag file{}: {}",
        if flag_files == 1 { "" } else { "s" },
        diagnostic::human_summary(errors, warnings)
    );
    match &args.output {
        Some(output) => {
            let report = diagnostic::render(format, &diagnostics, &files, &source);
            std::fs::write(output, report).with_context(|| format!("failed to write `{}`", output.display()))?;
            let human = diagnostic::render(Format::Human, &diagnostics, &files, &source);
            super::print(&format!("{human}{summary}\n"))?;
        }
        None if format == Format::Human => {
            let human = diagnostic::render(Format::Human, &diagnostics, &files, &source);
            super::print(&format!("{human}{summary}\n"))?;
        }
        None => {
            super::print(&diagnostic::render(format, &diagnostics, &files, &source))?;
            eprintln!("{summary}");
        }
    }
    let status = if errors > 0 {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    };
    Ok((status, loaded.registry))
}

/// The flags directory the config names, when the config can be read (its
/// problems are otherwise reported by the load itself).
fn flags_dir_of(workspace: &Workspace) -> anyhow::Result<Option<PathBuf>> {
    let Ok(file) = load::read_source(&workspace.config_path)? else {
        return Ok(None);
    };
    let (config, _) = load::read_config(&file);
    Ok(config.map(|config| workspace.resolve(&config.flags_dir)))
}

//! Writing edited flag files, the one safe path of every command that edits them (`set`,
//! `adopt`): each path is checked to stay inside the flags directory with no link on the way
//! (`paths::inside`), each file is replaced through a temporary file and a rename keeping its
//! permissions (`owned_file::replace`), and the whole registry is loaded again afterwards; when it
//! has errors, every edited file gets its original bytes back.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::Config;
use crate::diagnostic::Severity;
use crate::load::{self, LoadOptions, Workspace};
use crate::model::Registry;

/// One flag file to replace.
pub(super) struct Edit {
    /// The file, as the registry shows it.
    pub(super) path: PathBuf,
    /// The text the registry was validated from, put back when the result has errors.
    pub(super) original: String,
    /// The new text.
    pub(super) text: String,
}

/// Writes every edit, then loads and validates the whole registry. Returns the registry read
/// back; or, when it has errors, puts every edited file back byte for byte, prints the errors
/// and returns `None`.
pub(super) fn write_validated(
    workspace: &Workspace,
    config: &Config,
    edits: &[Edit],
) -> anyhow::Result<Option<Registry>> {
    let targets = edits
        .iter()
        .map(|edit| writable_path(workspace, config, &edit.path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (position, (edit, target)) in edits.iter().zip(&targets).enumerate() {
        if let Err(error) = write(target, &edit.text) {
            restore(&edits[..position], &targets[..position])?;
            return Err(error);
        }
    }
    let loaded = match load::load(workspace, &LoadOptions::default()) {
        Ok(loaded) => loaded,
        Err(error) => {
            restore(edits, &targets)?;
            return Err(error);
        }
    };
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .cloned()
        .collect();
    match loaded.registry {
        Some(after) if errors.is_empty() => Ok(Some(after)),
        _ => {
            restore(edits, &targets)?;
            let source = |path: &Path| loaded.sources.get(path).map(String::as_str);
            let report = crate::diagnostic::render(crate::diagnostic::Format::Human, &errors, &[], &source);
            eprint!("{}", crate::escape::shown(&report));
            let files: Vec<String> = edits.iter().map(|edit| format!("`{}`", edit.path.display())).collect();
            let unchanged = match files.as_slice() {
                [one] => format!("{one} is unchanged"),
                many => format!("{} are unchanged", many.join(", ")),
            };
            eprintln!(
                "{}",
                crate::escape::shown(&format!(
                    "not written: with this change the registry would have {} ({unchanged})",
                    crate::plan::render::count(errors.len(), "error")
                ))
            );
            Ok(None)
        }
    }
}

/// Puts the original text of edits that `write_validated` wrote back, such as when what the
/// edit stood for could not be done.
pub(super) fn put_back(workspace: &Workspace, config: &Config, edits: &[Edit]) -> anyhow::Result<()> {
    let targets = edits
        .iter()
        .map(|edit| writable_path(workspace, config, &edit.path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    restore(edits, &targets)
}

/// Puts the original text of `edits` back.
fn restore(edits: &[Edit], targets: &[PathBuf]) -> anyhow::Result<()> {
    for (edit, target) in edits.iter().zip(targets) {
        write(target, &edit.original)?;
    }
    Ok(())
}

/// The flag file's path, checked to lie inside the flags directory with no link on the way.
pub(super) fn writable_path(workspace: &Workspace, config: &Config, path: &Path) -> anyhow::Result<PathBuf> {
    let flags_dir = crate::paths::absolute(&workspace.resolve(&config.flags_dir));
    let absolute = crate::paths::absolute(path);
    let relative = absolute
        .strip_prefix(&flags_dir)
        .with_context(|| format!("`{}` is not inside `{}`", path.display(), flags_dir.display()))?;
    crate::paths::inside(&flags_dir, relative)
}

/// Replaces the file through a temporary file and a rename, keeping its permissions.
fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    let permissions = std::fs::symlink_metadata(path)
        .with_context(|| format!("failed to read `{}`", path.display()))?
        .permissions();
    crate::owned_file::replace(path, text.as_bytes(), true)?;
    std::fs::set_permissions(path, permissions)
        .with_context(|| format!("failed to set the permissions of `{}`", path.display()))
}

//! `flagops new`: write a valid flag file from the template, refusing to overwrite.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};

use crate::ExitStatus;
use crate::cli::NewArgs;
use crate::config::Layout;
use crate::diagnostic::{self, Format};
use crate::load::{self, LoadOptions, Workspace};
use crate::model::Flag;

/// Writes the flag; a command line that cannot give a valid new flag is refused (exit 1) and
/// writes nothing.
pub(super) fn run(workspace: &Workspace, args: NewArgs) -> anyhow::Result<ExitStatus> {
    super::finish(new(workspace, args))
}

fn new(workspace: &Workspace, args: NewArgs) -> anyhow::Result<ExitStatus> {
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
    let Some(rules) = config.types.get(&args.flag_type) else {
        let known: Vec<&str> = config.types.keys().map(String::as_str).collect();
        return Err(super::refused(format!(
            "unknown flag type `{}`\nhelp: the types in flagops.yml are {}",
            args.flag_type,
            known.join(", ")
        )));
    };
    if rules.deprecated {
        return Err(super::refused(format!(
            "the flag type `{}` is deprecated\nhelp: choose a current type",
            args.flag_type
        )));
    }
    if rules.rollout_issue_required && args.rollout_issue_url.is_none() {
        return Err(super::refused(format!(
            "flags of type `{}` need a rollout issue\nhelp: pass `--rollout-issue URL`",
            args.flag_type
        )));
    }
    if let Some(owner) = args.owners.iter().find(|owner| !owner.starts_with('@')) {
        return Err(super::refused(format!(
            "the owner `{owner}` is not a GitLab username: owners start with `@`\nhelp: write `--owner @{}`",
            owner.trim()
        )));
    }
    // The name becomes a file name: refuse one that is not a flag name before any path is built.
    if !crate::check::is_valid_name(&args.name) {
        return Err(super::refused(format!(
            "`{}` is not a valid flag name\nhelp: use lowercase letters and digits in words joined by single underscores",
            args.name
        )));
    }
    let flags_dir = workspace.resolve(&config.flags_dir);
    let path = match &args.path {
        // A path given on the command line is where the user asked for the file.
        Some(path) => path.clone(),
        None => {
            let file = format!("{}.yml", args.name);
            let relative = match config.layout {
                Layout::ByType => Path::new(&args.flag_type).join(file),
                Layout::Free => file.into(),
            };
            crate::paths::inside(&flags_dir, &relative)?
        }
    };
    let flag = Flag {
        name: args.name,
        description: args.description,
        flag_type: args.flag_type,
        group: args.group,
        owners: args.owners,
        milestone: args.milestone,
        feature_issue_url: args.feature_issue_url,
        introduced_by_url: args.introduced_by_url,
        rollout_issue_url: args.rollout_issue_url,
        default_enabled: args.default_enabled,
        log_state_changes: None,
        intended_to_rollout_by: None,
        requires: Vec::new(),
        environments: Default::default(),
        rollout: Vec::new(),
        guard: None,
        on_breach: None,
        overrides: Default::default(),
        todo: Default::default(),
    };
    let schema = super::import::schema_path(&path, &workspace.root);
    let text = crate::template::render_flag(&flag, &schema);

    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("failed to create `{}`", parent.display()))?;
    }
    let mut created = match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(super::refused(format!(
                "`{}` already exists\nhelp: edit it, or choose another name",
                path.display()
            )));
        }
        Err(error) => {
            return Err(error).with_context(|| format!("failed to create `{}`", path.display()));
        }
    };
    created
        .write_all(text.as_bytes())
        .with_context(|| format!("failed to write `{}`", path.display()))?;
    drop(created);

    // Check the new file in its registry (or on its own, when written outside the flags
    // directory); a flag the validator would refuse is not left behind.
    let shown = load::display_path(&path);
    let mut options = LoadOptions::default();
    if !crate::paths::is_within(&path, &flags_dir) {
        options.flags_dir = Some(shown.clone());
    }
    let loaded = load::load(workspace, &options)?;
    let problems: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.path == shown && d.severity == diagnostic::Severity::Error)
        .cloned()
        .collect();
    if !problems.is_empty() {
        let source = |_: &Path| Some(text.as_str());
        let report = diagnostic::render(Format::Human, &problems, &[], &source);
        std::fs::remove_file(&path).with_context(|| format!("failed to remove `{}`", path.display()))?;
        eprint!("{}", crate::escape::shown(&report));
        eprintln!("not written: `{}` would not validate", shown.display());
        return Ok(ExitStatus::Failure);
    }
    super::print(&format!("created {}\n", shown.display()))?;
    Ok(ExitStatus::Success)
}

//! `flagops init`: write a new registry repository, refusing to overwrite anything.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::ExitStatus;
use crate::cli::{InitArgs, InitBackend};
use crate::diagnostic::{self, Format};
use crate::init::{self, Backend, Environment, Options};
use crate::source::SourceFile;

pub(super) fn run(args: InitArgs) -> anyhow::Result<ExitStatus> {
    let mut environments = if args.gitlab_com {
        init::gitlab_com()
    } else {
        args.environments.iter().map(|spec| environment(spec)).collect()
    };
    for name in &args.protected {
        let Some(environment) = environments.iter_mut().find(|e| &e.name == name) else {
            return refuse(&format!(
                "`--protected {name}` names no environment of the new registry\nhelp: name one of its `--env` environments"
            ));
        };
        environment.protected = true;
    }
    let backend = match args.backend {
        InitBackend::File => Backend::File,
        InitBackend::Gitlab => Backend::Gitlab,
        InitBackend::FlipperSql => Backend::FlipperSql,
    };
    let missing_url = environments.iter().find(|e| e.url.is_none());
    if let (Backend::Gitlab, Some(environment)) = (backend, missing_url) {
        return refuse(&format!(
            "the `gitlab` backend needs the address of `{}`\nhelp: pass `--env {}=https://...`",
            environment.name, environment.name
        ));
    }
    let options = Options {
        environments,
        backend,
        version: env!("CARGO_PKG_VERSION").to_string(),
        download_url: args
            .download_url
            .unwrap_or_else(|| init::DEFAULT_DOWNLOAD_URL.to_string()),
    };
    let files = init::files(&options)?;

    // The config is checked exactly as `validate` checks it before anything is written.
    let (_, config_text) = files
        .iter()
        .find(|(path, _)| *path == "flagops.yml")
        .expect("init writes flagops.yml");
    let config = SourceFile {
        path: crate::load::display_path(&args.dir.join("flagops.yml")),
        text: config_text.clone(),
    };
    let (_, problems) = crate::load::read_config(&config);
    let errors: Vec<_> = problems
        .into_iter()
        .filter(|d| d.severity == diagnostic::Severity::Error)
        .collect();
    if !errors.is_empty() {
        let source = |_: &Path| Some(config.text.as_str());
        eprint!(
            "{}",
            crate::escape::shown(&diagnostic::render(Format::Human, &errors, &[], &source))
        );
        eprintln!("nothing written: the `flagops.yml` these options make would not validate");
        return Ok(ExitStatus::Failure);
    }

    let mut targets = Vec::new();
    for (relative, text) in &files {
        targets.push((crate::paths::inside(&args.dir, Path::new(relative))?, text));
    }
    let existing: Vec<&PathBuf> = targets
        .iter()
        .map(|(path, _)| path)
        .filter(|path| std::fs::symlink_metadata(path).is_ok())
        .collect();
    if !existing.is_empty() {
        for path in &existing {
            let shown = crate::load::display_path(path);
            eprintln!(
                "`{}` already exists",
                crate::escape::shown(&shown.display().to_string())
            );
        }
        return refuse(&format!(
            "nothing written: `flagops init` never overwrites a file\nhelp: move {} away, or choose another folder",
            if existing.len() == 1 { "it" } else { "them" }
        ));
    }

    let mut written: Vec<&Path> = Vec::new();
    for (path, text) in &targets {
        if let Err(error) = write_new(path, text) {
            // Put the folder back as it was: a half-written registry is not ready to commit.
            for done in written.iter().rev() {
                let _ = std::fs::remove_file(done);
            }
            return Err(error);
        }
        written.push(path);
    }
    let mut report = format!("created a flag registry in {}:\n", args.dir.display());
    for (relative, _) in &files {
        report.push_str(&format!("  {relative}\n"));
    }
    report.push_str(&format!(
        "its pipeline downloads flagops {} from {}\nnext: `flagops new` for a first flag, then commit the registry and push it to GitLab\n",
        options.version, options.download_url
    ));
    super::print(&report)?;
    Ok(ExitStatus::Success)
}

/// An environment from `--env NAME` or `--env NAME=URL`.
fn environment(spec: &str) -> Environment {
    match spec.split_once('=') {
        Some((name, url)) => Environment {
            url: Some(url.to_string()),
            ..Environment::named(name)
        },
        None => Environment::named(spec),
    }
}

fn refuse(message: &str) -> anyhow::Result<ExitStatus> {
    eprintln!("error: {}", crate::escape::shown(message));
    Ok(ExitStatus::Failure)
}

/// Creates `path` (and its folders) with `text`, failing if anything is already there.
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("failed to create `{}`", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("failed to create `{}`", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("failed to write `{}`", path.display()))
}

//! `flagops site`.

use std::collections::BTreeMap;

use crate::ExitStatus;
use crate::cli::SiteArgs;
use crate::load::Workspace;
use crate::model::Registry;
use crate::site::SiteInput;

pub(super) fn run(workspace: &Workspace, args: SiteArgs) -> anyhow::Result<ExitStatus> {
    let Some(registry) = super::load_valid(workspace, "building the site")? else {
        return Ok(ExitStatus::Failure);
    };
    build(workspace, &registry, args)
}

/// Builds the site of a registry already read and found valid.
pub(super) fn build(workspace: &Workspace, registry: &Registry, args: SiteArgs) -> anyhow::Result<ExitStatus> {
    let cache = workspace.resolve(&registry.config.cache_dir).join("history.jsonl");
    let (history, _) = crate::history::load_history(&workspace.root, &registry.config.flags_dir, Some(&cache), None)?;
    let mut snapshots = BTreeMap::new();
    for environment in &registry.config.environments {
        let fetched = crate::backends::open(&workspace.root, &registry.config, environment, false)
            .and_then(|mut backend| backend.fetch().map_err(anyhow::Error::new));
        match fetched {
            // An environment never synced has no synced state to show.
            Ok(snapshot) if snapshot.last_sync.is_none() && snapshot.flags.is_empty() => {}
            Ok(snapshot) => {
                snapshots.insert(environment.name.clone(), snapshot);
            }
            Err(error) => eprintln!(
                "note: the site shows no synced state for `{}`: {error}",
                environment.name
            ),
        }
    }
    // The site describes one moment: `--at`, else SOURCE_DATE_EPOCH, else the head commit's time,
    // else (no git) now.
    let now = match &args.at {
        Some(text) => Some(super::parse_at(Some(text))?.as_second()),
        None => std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|value| value.parse().ok()),
    };
    let now = now.or_else(|| history.head.is_none().then(|| jiff::Timestamp::now().as_second()));
    let input = SiteInput {
        history,
        snapshots,
        templates: args.templates,
        now,
    };
    let pages = crate::site::build(registry, &input, &args.out)?;
    super::print(&format!("built {pages} pages in {}\n", args.out.display()))?;
    Ok(ExitStatus::Success)
}

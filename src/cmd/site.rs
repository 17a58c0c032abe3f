//! `flagops site`.

use std::collections::BTreeMap;

use crate::ExitStatus;
use crate::backends::Snapshot;
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
    // The site describes one moment: `--at`, else SOURCE_DATE_EPOCH, else the head commit's time,
    // else (no git) now.
    let now = match &args.at {
        Some(text) => Some(super::parse_at(Some(text))?.as_second()),
        None => std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|value| value.parse().ok()),
    };
    let now = now.or_else(|| history.head.is_none().then(|| jiff::Timestamp::now().as_second()));
    let mut input = SiteInput {
        history,
        snapshots: BTreeMap::new(),
        statuses: BTreeMap::new(),
        templates: args.templates,
        now,
    };
    let at = jiff::Timestamp::from_second(input.time()).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    for environment in &registry.config.environments {
        match synced_state(workspace, registry, environment, at) {
            // An environment never synced has no synced state to show.
            Ok(snapshot) if snapshot.last_sync.is_none() && snapshot.flags.is_empty() => {}
            Ok(snapshot) => {
                input.snapshots.insert(environment.name.clone(), snapshot);
            }
            Err(error) => eprintln!(
                "{}",
                crate::escape::shown(&format!(
                    "note: the site shows no synced state for `{}`: {error}",
                    environment.name
                ))
            ),
        }
    }
    // Pending, drifted and held flags, as `flagops status` tells them apart.
    for environment in &registry.config.environments {
        if !input.snapshots.contains_key(&environment.name) {
            continue;
        }
        match super::status::observe(
            workspace,
            registry,
            input.history.head.as_deref(),
            &environment.name,
            at,
        ) {
            Ok(observed) => {
                input.statuses.insert(environment.name.clone(), observed.status);
            }
            Err(error) => eprintln!(
                "{}",
                crate::escape::shown(&format!(
                    "note: the site does not tell pending from drifted flags in `{}`: {error}",
                    environment.name
                ))
            ),
        }
    }
    // `--out` starts at the working directory; the default sits at the registry root.
    let out = args.out.unwrap_or_else(|| workspace.resolve("public"));
    let pages = crate::site::build(registry, &input, &out)?;
    super::print(&format!(
        "built {pages} pages in {}\n",
        crate::load::display_path(&out).display()
    ))?;
    Ok(ExitStatus::Success)
}

/// What `environment`'s backend holds, with each flag that holds just its desired state at `at`
/// shown as its flag file writes it: GitLab lists `Project:278964` where the file says
/// `project: gitlab-org/gitlab`, and `plan` finds the two equal (`Backend::canonicalize`).
fn synced_state(
    workspace: &Workspace,
    registry: &Registry,
    environment: &crate::config::Environment,
    at: jiff::Timestamp,
) -> anyhow::Result<Snapshot> {
    let mut backend = super::open_to_read(workspace, registry, environment)?;
    let mut snapshot = backend.fetch()?;
    // Only flags that differ as written need the backend's terms (none, with a `file` backend).
    let mut differing = crate::resolve::desired(registry, &environment.name, at);
    differing.retain(|flag, state| snapshot.flags.get(flag) != Some(&*state));
    let mut canonical = differing.clone();
    // Where actors cannot be put in the backend's terms, the states are shown as they are.
    if backend.canonicalize(&mut canonical).is_ok() {
        for (flag, state) in canonical {
            if snapshot.flags.get(&flag) == Some(&state) {
                snapshot.flags.insert(flag.clone(), differing[&flag].clone());
            }
        }
    }
    Ok(snapshot)
}

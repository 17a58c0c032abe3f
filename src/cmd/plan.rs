//! `flagops plan`.

use crate::ExitStatus;
use crate::cli::{PlanArgs, PlanFormat};
use crate::load::{self, LoadOptions, Workspace};
use crate::model::Registry;
use crate::plan::{Plan, render};

pub(super) fn run(workspace: &Workspace, args: PlanArgs) -> anyhow::Result<ExitStatus> {
    let Some(registry) = super::load_valid(workspace, "planning")? else {
        return Ok(ExitStatus::Failure);
    };
    let at = super::parse_at(args.at.as_deref())?;
    let environments = super::select_environments(&registry, &args.environments)?;
    let prune = args.prune || registry.config.prune;
    // An environment whose backend cannot be read does not stop the others: it is reported
    // after their plans, and the exit code is 2.
    let mut unavailable: Vec<(String, anyhow::Error)> = Vec::new();
    let plans = match &args.base {
        Some(base) => plans_against_revision(workspace, &registry, base, &environments, at, prune)?,
        None => {
            let mut plans = Vec::new();
            for name in &environments {
                let environment = registry.config.environment(name).expect("selected environments exist");
                let reading = super::open_to_read(workspace, &registry, environment).and_then(|mut backend| {
                    crate::sync::read_environment(
                        backend.as_mut(),
                        &registry,
                        name,
                        crate::steps::Moment::at(at),
                        &crate::sync::RetryPolicy::default(),
                    )
                    .map_err(anyhow::Error::new)
                });
                match reading {
                    Ok(reading) => {
                        let mut plan = crate::sync::plan_with_holds(&registry, name, &reading, prune);
                        // The kind of backend the last sync wrote with, when it recorded one.
                        if let Some(before) = reading.snapshot.last_sync.as_ref().and_then(|r| r.backend.as_deref()) {
                            plan.rehashed =
                                crate::hashing::rehash(before, environment.backend.kind(), &reading.desired);
                        }
                        plans.push(plan);
                    }
                    Err(error) => unavailable.push((name.clone(), error)),
                }
            }
            plans
        }
    };
    let mut text = match args.format {
        PlanFormat::Human => render::human(&plans),
        PlanFormat::Markdown => render::markdown(&plans, args.base.as_deref()),
        PlanFormat::Json => serde_json::to_string_pretty(&plans)? + "\n",
    };
    if args.format != PlanFormat::Json {
        let markdown = args.format == PlanFormat::Markdown;
        let bullet = if markdown { "- " } else { "  " };
        // Each note is one line of text, escaped as Markdown in the merge-request comment.
        let line = |text: String| {
            if markdown {
                crate::escape::markdown(&text)
            } else {
                crate::escape::one_line(&text).into_owned()
            }
        };
        let mut notes = String::new();
        for plan in &plans {
            if let Some(rehash) = &plan.rehashed {
                notes.push_str(&format!(
                    "{bullet}{}\n",
                    line(crate::hashing::describe(&plan.environment, rehash))
                ));
            }
        }
        let wall_clock = jiff::Timestamp::now();
        for plan in plans.iter().filter(|plan| !plan.is_empty()) {
            if let Some(window) = registry.config.freeze_at(&plan.environment, wall_clock) {
                let (environment, name) = if markdown {
                    (
                        crate::escape::markdown(&plan.environment),
                        crate::escape::markdown_code(&window.name),
                    )
                } else {
                    (
                        crate::escape::one_line(&plan.environment).into_owned(),
                        format!("`{}`", crate::escape::one_line(&window.name)),
                    )
                };
                notes.push_str(&format!(
                    "{bullet}{environment} is in the change freeze {name} until {}: sync will not apply its changes without `--override-freeze`\n",
                    window.until
                ));
            }
        }
        if let Some(lock) = super::sync::change_lock(&registry) {
            for plan in &plans {
                if !registry
                    .config
                    .environment(&plan.environment)
                    .is_some_and(|e| e.protected)
                {
                    continue;
                }
                let (_, held) = crate::sync::hold_widening(&registry, plan);
                if held.is_empty() {
                    continue;
                }
                notes.push_str(&format!(
                    "{bullet}{}\n",
                    line(format!(
                        "{}: {lock}; sync will hold back {} that {} exposure",
                        plan.environment,
                        render::count(held.len(), "change"),
                        if held.len() == 1 { "widens" } else { "widen" }
                    ))
                ));
                for change in held {
                    notes.push_str(&format!("{bullet}{}\n", line(format!("held back: {change}"))));
                }
            }
        }
        // With the environments' step marks, each rollout's standing in each environment;
        // `--base` reads no backend, so it shows the plans' own schedule.
        let rollouts = if args.base.is_some() {
            super::rollout::progress_lines(&registry, at)
        } else {
            rollout_lines(&plans)
        };
        if !rollouts.is_empty() {
            notes.push_str(&format!(
                "\nRollouts in progress at {}:\n",
                crate::plan::render::to_second(at)
            ));
            for rollout in rollouts {
                notes.push_str(&format!("{bullet}{}\n", line(rollout)));
            }
        }
        text.push_str(&notes);
    }
    super::print(&text)?;
    if !unavailable.is_empty() {
        for (name, error) in &unavailable {
            eprintln!(
                "{}",
                crate::escape::shown(&format!("error: {name}: unavailable, not planned: {error:#}"))
            );
        }
        let names: Vec<&str> = unavailable.iter().map(|(name, _)| name.as_str()).collect();
        eprintln!(
            "{}",
            crate::escape::shown(&format!(
                "planned {} of {} environments: {} could not be read",
                plans.len(),
                environments.len(),
                names.join(", ")
            ))
        );
        return Ok(ExitStatus::Error);
    }
    let empty = plans.iter().all(Plan::is_empty);
    Ok(if args.exit_code && !empty {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// One line per rollout with a step applying or to come in an environment: `production:
/// name: step 1 of 3 applied at T; step 2 due at T' (held past its time ...)`.
fn rollout_lines(plans: &[Plan]) -> Vec<String> {
    plans
        .iter()
        .flat_map(|plan| {
            plan.rollouts
                .iter()
                .filter(|standing| standing.applying.is_some() || standing.next.is_some())
                .map(|standing| {
                    format!(
                        "{}: {}: {}",
                        plan.environment,
                        standing.flag,
                        crate::steps::describe(standing)
                    )
                })
        })
        .collect()
}

/// What the working tree's registry changes against the registry at `base`, per environment.
fn plans_against_revision(
    workspace: &Workspace,
    registry: &Registry,
    base: &str,
    environments: &[String],
    at: jiff::Timestamp,
    prune: bool,
) -> anyhow::Result<Vec<Plan>> {
    let config_name = workspace
        .config_path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let revision = crate::history::read_revision(&workspace.root, base, &config_name, &registry.config.flags_dir)?;
    let base_registry = match revision.config {
        Some(config) => {
            let flags_dir = workspace.resolve(&registry.config.flags_dir);
            let loaded = load::load_sources(config, revision.flags, &flags_dir, &LoadOptions::default());
            let errors = loaded
                .diagnostics
                .iter()
                .filter(|d| d.severity == crate::diagnostic::Severity::Error)
                .count();
            if errors > 0 {
                eprintln!("note: the registry at `{base}` has {errors} errors; its readable flags are compared");
            }
            loaded.registry
        }
        None => None,
    };
    let samples = read_samples(workspace, registry, environments)?;
    Ok(environments
        .iter()
        .map(|name| {
            let before = base_registry
                .as_ref()
                .map(|base| crate::resolve::desired(base, name, at))
                .unwrap_or_default();
            let mut plan = crate::sync::plan_environment(registry, name, &before, at, prune);
            let kind = |config: &crate::config::Config| config.environment(name).map(|e| e.backend.kind());
            if let (Some(before), Some(after)) = (
                base_registry.as_ref().and_then(|base| kind(&base.config)),
                kind(&registry.config),
            ) {
                plan.rehashed = crate::hashing::rehash(before, after, &crate::resolve::desired(registry, name, at));
            }
            let sample = samples.get(name).map(Vec::as_slice);
            plan.steps = crate::review::step_changes(base_registry.as_ref(), registry, name, sample);
            for change in &plan.changes {
                let flag = registry
                    .flag(&change.flag)
                    .or_else(|| base_registry.as_ref().and_then(|base| base.flag(&change.flag)));
                if let Some(flag) = flag {
                    let radius =
                        crate::review::radius(flag, &registry.config, change.from.as_ref(), change.to.as_ref(), sample);
                    plan.radius.insert(change.flag.clone(), radius);
                }
            }
            plan
        })
        .collect())
}

/// The actor sample of each of `environments` that names one (`actor_sample`), read within the
/// limits of every registry file.
pub(super) fn read_samples(
    workspace: &Workspace,
    registry: &Registry,
    environments: &[String],
) -> anyhow::Result<crate::review::Samples> {
    let mut samples = crate::review::Samples::new();
    for name in environments {
        let Some(path) = registry
            .config
            .environment(name)
            .and_then(|environment| environment.actor_sample.as_ref())
        else {
            continue;
        };
        let path = workspace.resolve(path);
        let source = load::read_source(&path)?.map_err(|diagnostic| {
            anyhow::anyhow!(
                "cannot read the actor sample of `{name}`: {}\nhelp: `actor_sample` names a UTF-8 file of Flipper ids, one a line",
                diagnostic.message
            )
        })?;
        samples.insert(name.clone(), crate::review::parse_sample(&source.text));
    }
    Ok(samples)
}

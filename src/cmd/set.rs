//! `flagops set` and `flagops get`: ChatOps's `feature set`, `feature delete` and `feature get`
//! on the registry's files.

use serde::Serialize;

use crate::ExitStatus;
use crate::chatops::{self, PercentageOf, Request};
use crate::cli::{GetArgs, ReportFormat, SetArgs};
use crate::config::Config;
use crate::load::{self, LoadOptions, Workspace};
use crate::plan::Plan;
use crate::state::Stored;

/// Actors as `(kind, id)` and feature groups.
type Scope = (Vec<(String, String)>, Vec<String>);

/// The actors and feature groups the actor options name.
fn scope(config: &Config, args: &SetArgs) -> anyhow::Result<Scope> {
    let mut actors = Vec::new();
    let options = [
        ("project", &args.project),
        ("group", &args.group),
        ("user", &args.user),
        ("namespace", &args.namespace),
        ("repository", &args.repository),
    ];
    for (option, lists) in options {
        for id in split(option, lists)? {
            let Some((kind, _)) = config
                .actor_kinds
                .iter()
                .find(|(_, kind)| kind.api_param.as_deref() == Some(option))
            else {
                return Err(super::refused(format!(
                    "`--{option}` names no actor kind: no kind under `actor_kinds` in flagops.yml has `api_param: {option}`"
                )));
            };
            actors.push((kind.clone(), id));
        }
    }
    let groups = split("feature-group", &args.feature_group)?;
    Ok((actors, groups))
}

/// Comma-separated lists, each item trimmed, as GitLab reads them.
fn split(option: &str, lists: &[String]) -> anyhow::Result<Vec<String>> {
    let mut items = Vec::new();
    for list in lists {
        for item in list.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(super::refused(format!(
                    "`--{option}` holds an empty item\nhelp: separate items with single commas, such as `--{option}=a,b`"
                )));
            }
            if item.chars().any(char::is_control) {
                return Err(super::refused(format!(
                    "`--{option}` holds a control character: `{}`",
                    item.escape_debug()
                )));
            }
            items.push(item.to_string());
        }
    }
    Ok(items)
}

/// One environment's change, as `--format json` prints it.
#[derive(Serialize)]
struct ChangeReport {
    environment: String,
    before: Option<Stored>,
    after: Option<Stored>,
}

/// What `set` did, as `--format json` prints it.
#[derive(Serialize)]
struct SetReport<'a> {
    flag: &'a str,
    file: String,
    written: bool,
    changes: Vec<ChangeReport>,
    unchanged: Vec<String>,
    plans: Vec<Plan>,
    /// The commit, branch and merge request, with `--commit` or `--mr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    published: Option<crate::publish::Published>,
}

pub(super) fn run(workspace: &Workspace, args: SetArgs) -> anyhow::Result<ExitStatus> {
    super::finish(set(workspace, args))
}

fn set(workspace: &Workspace, args: SetArgs) -> anyhow::Result<ExitStatus> {
    let Some(registry) = super::load_valid(workspace, "setting")? else {
        return Ok(ExitStatus::Failure);
    };
    let config = &registry.config;
    let name = args.name.trim_matches('`').to_string();
    if args.ignore_production_check {
        return Err(super::refused(
            "`--ignore-production-check` is a ChatOps option flagops does not take\nhelp: flagops runs no production check: the change is reviewed in its merge request, and change freezes are `policies.freeze_windows` in flagops.yml",
        ));
    }
    if args.ignore_feature_flag_consistency_check {
        return Err(super::refused(
            "`--ignore-feature-flag-consistency-check` is a ChatOps option flagops does not take\nhelp: the consistency check is the `promotion-order` policy, which the result must pass; record an exception under `overrides:` in the flag file",
        ));
    }
    super::emergency::check_request(args.emergency, args.reason.as_deref()).map_err(super::refused)?;
    let (actors, groups) = scope(config, &args)?;
    let request = match (args.delete, args.value.clone()) {
        (true, Some(value)) => {
            return Err(super::refused(format!(
                "`--delete` takes no value, and `{value}` was given\nhelp: `flagops set NAME --delete --production` removes the state in production"
            )));
        }
        (true, None) => {
            if args.actors || args.random || !actors.is_empty() || !groups.is_empty() {
                return Err(super::refused(
                    "`--delete` removes the whole state of an environment: it takes no `--actors`, `--random` or actor options\nhelp: `flagops set NAME false --project=PATH` removes one actor",
                ));
            }
            None
        }
        (false, None) => {
            return Err(super::refused(
                "a value is needed: `true`, `false` or a percentage\nhelp: such as `flagops set NAME 50 --actors --staging`; `--delete` removes the state",
            ));
        }
        (false, Some(value)) => {
            let request = Request {
                value: chatops::parse_value(&value).map_err(super::refused)?,
                of: match (args.actors, args.random) {
                    (_, true) => PercentageOf::Time,
                    (true, false) => PercentageOf::Actors,
                    (false, false) => PercentageOf::Unset,
                },
                both_modifiers: args.actors && args.random,
                allow_random: args.ignore_random_deprecation_check,
                actors,
                groups,
            };
            chatops::check(&request).map_err(super::refused)?;
            Some(request)
        }
    };
    let file = super::flag_file(&registry, &name)?;
    let chosen = super::named_environments(
        &registry,
        args.environments.clone(),
        std::slice::from_ref(&config.default_environment),
    )?;

    let mut changes = Vec::new();
    let mut unchanged = Vec::new();
    for environment in &chosen {
        let old = file.flag.environments.get(environment);
        let new = match &request {
            Some(request) => Some(
                chatops::apply(old, request)
                    .map_err(|reason| super::refused(format!("in `{environment}`: {reason}")))?,
            ),
            None => None,
        };
        // `--delete` writes `absent`, which a sync deletes; no entry would leave the environment
        // alone.
        let same = match &new {
            None => file.flag.environments.is_absent(environment),
            Some(new) => old.map(Stored::from_model) == Some(Stored::from_model(new)),
        };
        if same {
            unchanged.push(environment.clone());
        } else {
            changes.push((environment.clone(), old.cloned(), new));
        }
    }
    let shown = file.path.display().to_string();
    let json = args.format == ReportFormat::Json;
    let mut notes = String::new();
    for environment in &unchanged {
        let state = crate::plan::show_effective(
            file.flag.environments.get(environment).map(Stored::from_model).as_ref(),
            file.flag.default_enabled,
        );
        notes.push_str(&format!("`{name}` is already {state} in {environment}\n"));
        let entry = file.flag.environments.get(environment).map(Stored::from_model);
        let desired = crate::resolve::desired_flag(&file.flag, environment, jiff::Timestamp::now());
        if desired != entry {
            notes.push_str(&due_step_note(
                &name,
                environment,
                desired.as_ref(),
                "its `environments` entry does not",
            ));
        }
    }
    if changes.is_empty() {
        if args.emergency {
            return Err(super::refused(format!(
                "{notes}the registry already sets this, so there is no emergency change to make\nhelp: `flagops sync` applies the registry's state (with `--override-freeze \"REASON\"` inside a change freeze)"
            )));
        }
        if json {
            let report = SetReport {
                flag: &name,
                file: shown,
                written: false,
                changes: Vec::new(),
                unchanged,
                plans: Vec::new(),
                published: None,
            };
            super::print(&(serde_json::to_string_pretty(&report)? + "\n"))?;
        } else {
            super::print(&format!("{notes}nothing to change: `{shown}` is not written\n"))?;
        }
        return Ok(ExitStatus::Success);
    }

    // Edit the text the registry was validated from, environment by environment.
    let original = file.index.text().to_string();
    let order: Vec<String> = config.environment_names().map(str::to_string).collect();
    let mut text = original.clone();
    for (environment, _, new) in &changes {
        let value = Some(match new {
            Some(state) => chatops::to_value(state),
            None => serde_json::Value::String(crate::model::ABSENT.to_string()),
        });
        text = crate::edit::set_environment(&text, environment, value.as_ref(), &order).map_err(|reason| {
            super::refused(format!(
                "`{shown}` cannot be edited in place: {reason}\nhelp: change `environments.{environment}` by hand"
            ))
        })?;
    }
    let edit = super::write::Edit {
        path: file.path.clone(),
        original,
        text,
    };
    let edits = [edit];
    // Whether the change can be published is checked before anything is written.
    let pending = match super::publish::mode(&args.publish) {
        Some(mode) => Some(crate::publish::prepare(
            &workspace.root,
            &[super::write::writable_path(workspace, config, &edits[0].path)?],
            mode,
            config,
        )?),
        None => None,
    };
    let Some(after) = super::write::write_validated(workspace, config, &edits)? else {
        return Ok(ExitStatus::Failure);
    };

    // What the change does: the desired state before and after, as `plan --base` compares.
    let at = jiff::Timestamp::now();
    let plans: Vec<Plan> = config
        .environment_names()
        .map(|environment| {
            let before = crate::resolve::desired(&registry, environment, at);
            crate::sync::plan_environment(&after, environment, &before, at, false)
        })
        .collect();

    if args.emergency {
        let edit = super::emergency::Edit {
            name: &name,
            shown: &shown,
            written: &edits,
            changes: &changes,
            unchanged: &unchanged,
            notes: &notes,
            plans: &plans,
        };
        return super::emergency::set(workspace, &registry, &edit, pending, &args);
    }
    let published = match pending {
        Some(pending) => Some(publish(pending, &name, &shown, &changes, &plans, None)?),
        None => None,
    };
    if json {
        let report = SetReport {
            flag: &name,
            file: shown,
            written: true,
            changes: changes
                .iter()
                .map(|(environment, old, new)| ChangeReport {
                    environment: environment.clone(),
                    before: old.as_ref().map(Stored::from_model),
                    after: new.as_ref().map(Stored::from_model),
                })
                .collect(),
            unchanged,
            plans,
            published,
        };
        super::print(&(serde_json::to_string_pretty(&report)? + "\n"))?;
        return Ok(ExitStatus::Success);
    }
    let mut out = format!("edited {shown}:\n");
    for (environment, old, new) in &changes {
        out.push_str(&format!(
            "  {environment}: {} → {}\n",
            crate::plan::show(old.as_ref().map(Stored::from_model).as_ref()),
            crate::plan::show(new.as_ref().map(Stored::from_model).as_ref())
        ));
    }
    out.push_str(&notes);
    out.push_str("\nplan:\n");
    out.push_str(&crate::plan::render::human(&plans));
    match &published {
        Some(published) => out.push_str(&format!("\n{}", super::publish::describe(published))),
        None => out.push_str(
            "\nnext: commit the change and open a merge request; its pipeline shows this plan and syncs it once merged\n",
        ),
    }
    super::print(&out)?;
    Ok(ExitStatus::Success)
}

/// The note that a due rollout step, not the `environments` entry, decides the state now.
fn due_step_note(name: &str, environment: &str, desired: Option<&Stored>, what: &str) -> String {
    format!(
        "note: a rollout step of `{name}` that is due sets {environment} to {}, so {what} take effect there now; edit the rollout plan to change it\n",
        crate::plan::show(desired)
    )
}

/// Each environment's change: the environment, its state before and after.
type Changes = [(String, Option<crate::model::State>, Option<crate::model::State>)];

/// What the commit and the merge request say before the change, such as an emergency's reason
/// and holds.
pub(super) struct Lead {
    /// The kind of change, in front of the title and the branch's words (`Emergency`).
    pub(super) kind: String,
    /// Paragraphs for the commit message.
    pub(super) text: String,
    /// The same in Markdown, for the merge request's description.
    pub(super) markdown: String,
}

/// Commits the edited file, or sends it as a merge request, with the change in words and the
/// plan as the message, after `lead` when given.
pub(super) fn publish(
    pending: crate::publish::Pending,
    name: &str,
    shown: &str,
    changes: &Changes,
    plans: &[Plan],
    lead: Option<&Lead>,
) -> anyhow::Result<crate::publish::Published> {
    let after = |new: &Option<crate::model::State>| match new {
        Some(state) => Stored::from_model(state).to_string(),
        None => "deleted".to_string(),
    };
    let kind = lead.map_or(String::new(), |lead| format!("{}: ", lead.kind));
    let title = format!(
        "{kind}{name}: {}",
        changes
            .iter()
            .map(|(environment, _, new)| format!("{} in {environment}", after(new)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let words: Vec<String> = changes
        .iter()
        .map(|(environment, _, new)| format!("{environment} {}", after(new)))
        .collect();
    let requested_by = super::publish::requested_by();
    let mut body = lead.map_or(String::new(), |lead| format!("{}\n\n", lead.text.trim_end()));
    let mut description = lead.map_or(String::new(), |lead| format!("{}\n\n", lead.markdown.trim_end()));
    body.push_str(&format!("flagops set changed {shown}:\n"));
    description.push_str(&format!(
        "`flagops set` changed {} in {}:\n\n",
        crate::escape::markdown_code(name),
        crate::escape::markdown_code(shown)
    ));
    for (environment, old, new) in changes {
        let before = crate::plan::show(old.as_ref().map(Stored::from_model).as_ref());
        let now = crate::plan::show(new.as_ref().map(Stored::from_model).as_ref());
        body.push_str(&format!("  {environment}: {before} → {now}\n"));
        description.push_str(&format!(
            "- {}: {} → {}\n",
            crate::escape::markdown(environment),
            crate::escape::markdown(&before),
            crate::escape::markdown(&now)
        ));
    }
    body.push_str(&format!("\nplan:\n{}", crate::plan::render::human(plans)));
    description.push_str(&format!("\n{}", crate::plan::render::markdown(plans, None)));
    if let Some(line) = &requested_by {
        body.push_str(&format!("\n\n{line}"));
        description.push_str(&format!("\n{line}\n"));
    }
    let message = crate::publish::Message {
        title: &title,
        body: &body,
        description: &description,
        branch_words: &format!("{kind}{name} {}", words.join(" ")),
    };
    pending.publish(&message)
}

/// One environment's desired state, as `get --format json` prints it.
#[derive(Serialize)]
struct GetReport<'a> {
    flag: &'a str,
    file: String,
    default_enabled: bool,
    environments: serde_json::Map<String, serde_json::Value>,
}

pub(super) fn get(workspace: &Workspace, args: GetArgs) -> anyhow::Result<ExitStatus> {
    super::finish(get_inner(workspace, args))
}

fn get_inner(workspace: &Workspace, args: GetArgs) -> anyhow::Result<ExitStatus> {
    let loaded = load::load(workspace, &LoadOptions::default())?;
    let Some(registry) = loaded.registry else {
        anyhow::bail!("the registry cannot be read\nhelp: run `flagops validate` to see why");
    };
    let name = args.name.trim_matches('`').to_string();
    let file = super::flag_file(&registry, &name)?;
    let chosen = super::named_environments(&registry, args.environments.clone(), &[])?;
    let at = jiff::Timestamp::now();
    let states: Vec<(String, Option<Stored>)> = chosen
        .into_iter()
        .map(|environment| {
            let state = crate::resolve::desired_flag(&file.flag, &environment, at);
            (environment, state)
        })
        .collect();
    let shown = file.path.display().to_string();
    if args.format == ReportFormat::Json {
        let report = GetReport {
            flag: &name,
            file: shown,
            default_enabled: file.flag.default_enabled,
            environments: states
                .iter()
                .map(|(environment, state)| Ok((environment.clone(), serde_json::to_value(state)?)))
                .collect::<serde_json::Result<_>>()?,
        };
        super::print(&(serde_json::to_string_pretty(&report)? + "\n"))?;
        return Ok(ExitStatus::Success);
    }
    let mut out = format!("{name} ({shown})\n");
    for (environment, state) in &states {
        out.push_str(&format!(
            "  {environment}: {}\n",
            crate::plan::show_effective(state.as_ref(), file.flag.default_enabled)
        ));
    }
    super::print(&out)?;
    Ok(ExitStatus::Success)
}

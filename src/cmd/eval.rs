//! `flagops eval`.

use std::fmt::Write as _;

use serde::Serialize;

use crate::ExitStatus;
use crate::cli::{EvalArgs, ReportFormat};
use crate::eval::{Decision, Outcome, Subject, evaluate_with};
use crate::hashing::Hashing;
use crate::load::Workspace;
use crate::state::{GateSet, Stored};

/// One actor's result.
#[derive(Serialize)]
struct Row {
    /// The Flipper id, or null for no actor.
    actor: Option<String>,
    #[serde(flatten)]
    decision: Decision,
    /// The result under the comparison, when one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    compared: Option<Decision>,
}

#[derive(Serialize)]
struct Report {
    flag: String,
    environment: String,
    /// The time the desired state was resolved at, or null for the backend's actual state.
    at: Option<String>,
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    compared_state: Option<String>,
    /// The backend kinds compared (`--compare-backend`): the environment's, then the other.
    #[serde(skip_serializing_if = "Option::is_none")]
    compared_backends: Option<[&'static str; 2]>,
    results: Vec<Row>,
    #[serde(skip_serializing_if = "Option::is_none")]
    switched_on: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    switched_off: Option<usize>,
}

pub(super) fn run(workspace: &Workspace, args: EvalArgs) -> anyhow::Result<ExitStatus> {
    let Some(registry) = super::load_valid(workspace, "evaluating")? else {
        return Ok(ExitStatus::Failure);
    };
    let flag = super::find_flag(&registry, &args.name)?;
    let [environment] = super::select_environments(&registry, std::slice::from_ref(&args.environment))?
        .try_into()
        .map_err(|_| anyhow::anyhow!("name one environment with `--env`"))?;
    for group in &args.groups {
        if !registry.config.feature_groups.contains(group) {
            anyhow::bail!(
                "unknown feature group `{group}`\nhelp: the feature groups in flagops.yml are {}",
                registry
                    .config
                    .feature_groups
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let mut written: Vec<(String, String)> = args
        .actors
        .iter()
        .map(|actor| (actor.clone(), format!("`--actor {actor}`")))
        .collect();
    if let Some(path) = &args.actors_file {
        let text = std::fs::read_to_string(path)
            .map_err(|error| anyhow::anyhow!("cannot read `{}`: {error}", path.display()))?;
        written.extend(
            text.lines()
                .enumerate()
                .map(|(index, line)| (index, line.trim()))
                .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
                .map(|(index, line)| (line.to_string(), format!("{}:{}", path.display(), index + 1))),
        );
    }
    let mut actors: Vec<Option<String>> = Vec::with_capacity(written.len().max(1));
    for (actor, place) in &written {
        match registry.config.flipper_id(actor) {
            Some(id) => actors.push(Some(id)),
            None => {
                let kinds: Vec<String> = registry
                    .config
                    .actor_kinds
                    .iter()
                    .map(|(name, kind)| format!("`{}:ID` or `{name}:ID`", kind.flipper_type))
                    .collect();
                return super::finish(Err(super::refused(format!(
                    "cannot read the actor `{actor}` ({place}): it names no actor kind of flagops.yml\nhelp: write a Flipper id or the form flagops prints: {}",
                    kinds.join(", ")
                ))));
            }
        }
    }
    let current_kind = registry
        .config
        .environment(&environment)
        .expect("selected")
        .backend
        .kind();
    let backends = args.compare_backend.map(|kind| [current_kind, kind.as_str()]);
    if backends.is_some() && actors.is_empty() {
        // The environment's actor sample, each line read as `--actor` reads its value.
        let samples = super::plan::read_samples(workspace, &registry, std::slice::from_ref(&environment))?;
        let Some(sample) = samples.get(&environment) else {
            return super::finish(Err(super::refused(format!(
                "`--compare-backend` needs actors to count, and `{environment}` has no `actor_sample`\nhelp: name actors with `--actor` or `--actors-file`, or give the environment an `actor_sample` file in flagops.yml"
            ))));
        };
        for (line, actor) in sample.iter().enumerate() {
            match registry.config.flipper_id(actor) {
                Some(id) => actors.push(Some(id)),
                None => {
                    return super::finish(Err(super::refused(format!(
                        "cannot read the actor `{actor}` (line {} of the actor sample of `{environment}`): it names no actor kind of flagops.yml\nhelp: write Flipper ids, such as `Project:123`, one a line",
                        line + 1
                    ))));
                }
            }
        }
    }
    if actors.is_empty() {
        actors.push(None);
    }

    let (at, state) = if args.actual {
        let config = registry.config.environment(&environment).expect("selected");
        let mut backend = super::open_to_read(workspace, &registry, config)?;
        let snapshot = backend.fetch().map_err(anyhow::Error::new)?;
        (None, snapshot.flags.get(&flag.name).cloned())
    } else {
        let at = super::parse_at(args.at.as_deref())?;
        (Some(at), crate::resolve::desired_flag(flag, &environment, at))
    };
    let compared_state: Option<Option<Stored>> = match (&args.compare_at, args.percentage) {
        (Some(time), _) => {
            let time = super::parse_at(Some(time))?;
            Some(crate::resolve::desired_flag(flag, &environment, time))
        }
        (None, Some(percentage)) => {
            let thousandths = crate::check::thousandths(percentage)
                .filter(|t| *t <= 100_000)
                .ok_or_else(|| {
                    anyhow::anyhow!("`--percentage {percentage}` must be 0 to 100 with at most three decimals")
                })?;
            Some(Some(with_percentage(state.as_ref(), thousandths)))
        }
        (None, None) => backends.map(|_| state.clone()),
    };
    // The environment's backend buckets actors its own way, and `--compare-backend` another's.
    let hashing = Hashing::of_kind(current_kind).unwrap_or(Hashing::Flipper);
    let compared_hashing = backends.and_then(|[_, to]| Hashing::of_kind(to));

    let results: Vec<Row> = actors
        .into_iter()
        .map(|actor| {
            let subject = Subject {
                actor: actor.clone(),
                groups: args.groups.clone(),
            };
            let decide = |hashing: Hashing, stored: Option<&Stored>| {
                evaluate_with(
                    hashing,
                    &flag.name,
                    flag.default_enabled,
                    stored,
                    &subject,
                    &registry.config,
                )
            };
            Row {
                decision: decide(hashing, state.as_ref()),
                compared: compared_state
                    .as_ref()
                    .map(|other| decide(compared_hashing.unwrap_or(hashing), other.as_ref())),
                actor,
            }
        })
        .collect();
    let switched = |from: Outcome, to: Outcome| {
        results
            .iter()
            .filter(|row| row.decision.outcome == from && row.compared.as_ref().is_some_and(|c| c.outcome == to))
            .count()
    };
    let report = Report {
        flag: flag.name.clone(),
        environment,
        at: at.map(|at| at.to_string()),
        state: crate::plan::show_effective(state.as_ref(), flag.default_enabled),
        compared_state: compared_state
            .as_ref()
            .map(|other| crate::plan::show_effective(other.as_ref(), flag.default_enabled)),
        compared_backends: backends,
        switched_on: compared_state.as_ref().map(|_| switched(Outcome::Off, Outcome::On)),
        switched_off: compared_state.as_ref().map(|_| switched(Outcome::On, Outcome::Off)),
        results,
    };
    let text = match args.format {
        ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        ReportFormat::Human => human(&report),
    };
    super::print(&text)?;
    Ok(ExitStatus::Success)
}

/// `state` with its percentage of actors set to `thousandths`, as `flagops eval --percentage`
/// imagines it: GitLab stores 0 as off and 100 as fully on.
fn with_percentage(state: Option<&Stored>, thousandths: u32) -> Stored {
    match (state, thousandths) {
        (_, 0) => Stored::Boolean(false),
        (_, 100_000) => Stored::Boolean(true),
        (Some(Stored::Gates(gates)), _) => Stored::Gates(GateSet {
            percentage_of_actors: Some(thousandths),
            ..gates.clone()
        }),
        _ => Stored::Gates(GateSet {
            percentage_of_actors: Some(thousandths),
            ..GateSet::default()
        }),
    }
}

fn human(report: &Report) -> String {
    let mut out = String::new();
    let when = match &report.at {
        Some(at) => format!("at {}", crate::plan::render::time(at)),
        None => "as stored in the backend".to_string(),
    };
    let _ = writeln!(
        out,
        "{} in {} {when}: {}",
        report.flag, report.environment, report.state
    );
    match (&report.compared_backends, &report.compared_state) {
        (Some([from, to]), _) => {
            let _ = writeln!(
                out,
                "compared with the same state in a `{to}` backend (this environment's is `{from}`)"
            );
        }
        (None, Some(other)) => {
            let _ = writeln!(out, "compared with: {other}");
        }
        (None, None) => {}
    }
    // Actors are padded to a column, but no wider than `MAX_COLUMN`: a format width must fit in
    // a `u16`, and an actor may be any length.
    const MAX_COLUMN: usize = 60;
    let width = report
        .results
        .iter()
        .map(|row| row.actor.as_deref().unwrap_or("(no actor)").chars().count())
        .max()
        .unwrap_or(0)
        .min(MAX_COLUMN);
    for row in &report.results {
        let actor = row.actor.as_deref().unwrap_or("(no actor)");
        let _ = write!(
            out,
            "  {actor:<width$}  {:<6} {}",
            row.decision.outcome.as_str(),
            row.decision.reason
        );
        if let Some(compared) = &row.compared {
            let _ = write!(out, "  → {}", compared.outcome.as_str());
        }
        out.push('\n');
    }
    if let (Some(on), Some(off)) = (report.switched_on, report.switched_off) {
        let _ = writeln!(
            out,
            "of {}, {on} switch on and {off} switch off",
            crate::plan::render::count(report.results.len(), "actor")
        );
    }
    out
}

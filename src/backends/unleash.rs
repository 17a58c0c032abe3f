//! The `unleash` backend: an environment is one environment of one project of an Unleash
//! server, read and written through its Admin API with an admin token.
//!
//! `fetch` reads the whole environment in one `POST /api/admin/features-batch/export` (the one
//! admin endpoint that returns every flag's strategies), after checking once that the project and
//! the environment exist. Each flag's Unleash state is read back into a Flipper state by the exact
//! inverse of the mapping `apply` writes; a flag whose strategies are not ones flagops writes is
//! reported absent, so the next sync writes it again.
//!
//! The mapping (docs/unleash.md): a flag on for everyone is an enabled environment with one
//! `flexibleRollout` at 100%; off is a disabled environment (its strategies stay, or a 0% one
//! when it has none); absent is a disabled environment with no strategy. Gates are ORed
//! strategies, each a `flexibleRollout` with `groupId` = the flag: actors of the kinds that share
//! a context field are one strategy at 100% with an `IN` constraint on that field (values are
//! Flipper ids, `Project:278964`); groups, one with an `IN` constraint on `group_field`; a
//! percentage of actors, a rollout hashed on `stickiness`; a percentage of time, a rollout with
//! `stickiness: random`, which draws anew on every evaluation. Unleash's SDKs take whole
//! percentages only, which `validate` checks (`unleash-whole-percentage`) and `canonicalize`
//! refuses.
//!
//! `apply` never lets a client see a state that was not asked for: strategies are written while
//! the environment is off before it is turned on, an environment is turned off before its
//! strategies go, and strategies of an enabled environment are replaced in place, added, then
//! deleted, so an enabled environment never has no strategy (which Unleash reads as 100% on).
//!
//! flagops's own records (the audit log, the last sync record, the emergency holds and the
//! rollout step marks) are kept by a [`FileBackend`] in `state_dir`, as for a `flagd`
//! environment; Unleash keeps only what its SDKs read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::file::FileBackend;
use super::gitlab::client::{Client, Response, Token, segment};
use super::{ApplyContext, Backend, BackendError, Hold, Snapshot, StepMark, SyncRecord};
use crate::config::ActorKind;
use crate::plan::Change;
use crate::state::{Actor, EnvironmentState, GateSet, Stored};

/// The stickiness of a percentage of actors when the config names none.
pub const DEFAULT_STICKINESS: &str = "userId";
/// The context field of actors when their kind names none.
pub const DEFAULT_ACTOR_FIELD: &str = "userId";
/// The context field of feature groups when the config names none.
pub const DEFAULT_GROUP_FIELD: &str = "group";

const STRATEGY: &str = "flexibleRollout";

/// The most values Unleash takes in one constraint by default (`UNLEASH_CONSTRAINT_VALUES_LIMIT`):
/// longer actor lists are split over several strategies.
const MAX_CONSTRAINT_VALUES: usize = 250;

/// Where and how to reach one environment's Unleash server.
#[derive(Debug)]
pub struct Settings<'a> {
    /// The flagops environment's name.
    pub environment: &'a str,
    /// The server's base URL.
    pub url: &'a str,
    /// The Unleash project.
    pub project: &'a str,
    /// The Unleash environment.
    pub unleash_environment: &'a str,
    /// The admin token.
    pub token: Token,
    /// The environment variable it came from, for messages.
    pub token_env: &'a str,
    /// How long one request may take.
    pub timeout: Duration,
    /// The stickiness of a percentage of actors.
    pub stickiness: &'a str,
    /// The context field of feature groups.
    pub group_field: &'a str,
    /// The actor kinds of `flagops.yml`.
    pub actor_kinds: &'a BTreeMap<String, ActorKind>,
    /// flagops's records: the state document of the environment.
    pub state_path: &'a Path,
    /// Whether `apply` and the records may write.
    pub writable: bool,
}

/// An environment of an Unleash project.
#[derive(Debug)]
pub struct UnleashBackend {
    client: Client,
    records: FileBackend,
    environment: String,
    project: String,
    unleash_environment: String,
    mapping: Mapping,
    /// Whether the project and the environment were found.
    checked: bool,
    /// Every flag's state as the last `fetch` read it.
    known: Option<BTreeMap<String, Remote>>,
    /// The flags written since the last `fetch`: read again before another write.
    written: BTreeSet<String>,
}

/// How states become strategies.
#[derive(Clone, Debug)]
struct Mapping {
    stickiness: String,
    group_field: String,
    actor_kinds: BTreeMap<String, ActorKind>,
}

/// A strategy as flagops writes and compares it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Spec {
    name: String,
    parameters: BTreeMap<String, String>,
    constraints: Vec<Constraint>,
}

/// An Unleash strategy constraint; values are compared as a sorted list.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Constraint {
    context_name: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    inverted: bool,
    #[serde(default)]
    case_insensitive: bool,
}

/// A strategy as the server holds it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Live {
    id: String,
    #[serde(default)]
    feature_name: String,
    name: String,
    #[serde(default)]
    parameters: BTreeMap<String, Value>,
    #[serde(default)]
    constraints: Vec<Constraint>,
    #[serde(default)]
    segments: Vec<Value>,
    #[serde(default)]
    disabled: Option<bool>,
}

/// One flag in the environment, as the server holds it.
#[derive(Clone, Debug, Default)]
struct Remote {
    exists: bool,
    enabled: bool,
    strategies: Vec<Live>,
}

/// What a state becomes in an environment.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// Disabled, with no strategy.
    Absent,
    /// Disabled, with at least one strategy.
    Off,
    /// Enabled, with exactly these strategies.
    On(Vec<Spec>),
}

impl Live {
    fn is_disabled(&self) -> bool {
        self.disabled.unwrap_or(false)
    }

    /// The strategy as flagops compares it, or `None` when it uses what flagops never writes.
    fn spec(&self) -> Option<Spec> {
        if !self.segments.is_empty() {
            return None;
        }
        let mut parameters = BTreeMap::new();
        for (key, value) in &self.parameters {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                _ => return None,
            };
            parameters.insert(key.clone(), text);
        }
        let constraints = self
            .constraints
            .iter()
            .map(|constraint| {
                let mut constraint = constraint.clone();
                constraint.values.sort();
                constraint.values.dedup();
                constraint
            })
            .collect();
        Some(Spec {
            name: self.name.clone(),
            parameters,
            constraints,
        })
    }
}

impl Spec {
    /// A `flexibleRollout` of `flag` at `rollout`% hashed on `stickiness`, with `constraints`.
    fn rollout(flag: &str, rollout: u32, stickiness: &str, constraints: Vec<Constraint>) -> Spec {
        Spec {
            name: STRATEGY.to_string(),
            parameters: [
                ("groupId".to_string(), flag.to_string()),
                ("rollout".to_string(), rollout.to_string()),
                ("stickiness".to_string(), stickiness.to_string()),
            ]
            .into(),
            constraints,
        }
    }

    fn body(&self) -> Value {
        let constraints: Vec<Value> = self
            .constraints
            .iter()
            .map(|c| {
                json!({
                    "contextName": c.context_name,
                    "operator": c.operator,
                    "values": c.values,
                    "inverted": c.inverted,
                    "caseInsensitive": c.case_insensitive,
                })
            })
            .collect();
        json!({
            "name": self.name,
            "title": "",
            "disabled": false,
            "parameters": self.parameters,
            "constraints": constraints,
            "segments": [],
            "variants": [],
        })
    }
}

fn membership(field: &str, values: impl IntoIterator<Item = String>) -> Constraint {
    let mut values: Vec<String> = values.into_iter().collect();
    values.sort();
    values.dedup();
    Constraint {
        context_name: field.to_string(),
        operator: "IN".to_string(),
        values,
        value: None,
        inverted: false,
        case_insensitive: false,
    }
}

impl Mapping {
    fn actor_field<'a>(&'a self, kind: &'a ActorKind) -> &'a str {
        kind.unleash_field.as_deref().unwrap_or(DEFAULT_ACTOR_FIELD)
    }

    /// What `stored` becomes; `None` is absence.
    fn encode(&self, flag: &str, stored: Option<&Stored>) -> Result<Target, String> {
        let gates = match stored {
            None => return Ok(Target::Absent),
            Some(Stored::Boolean(false)) => return Ok(Target::Off),
            Some(Stored::Boolean(true)) => return Ok(Target::On(vec![Spec::rollout(flag, 100, "default", vec![])])),
            Some(Stored::Gates(gates)) if gates.is_empty() => return Ok(Target::Off),
            Some(Stored::Gates(gates)) => gates,
        };
        let whole = |key: &str, thousandths: u32| {
            if thousandths.is_multiple_of(1000) {
                Ok(thousandths / 1000)
            } else {
                Err(format!(
                    "{}% of {key} is not a whole number, and Unleash's SDKs take whole percentages only\nhelp: use a whole percentage in this environment",
                    crate::state::percent(thousandths)
                ))
            }
        };
        let mut specs = Vec::new();
        let mut by_field: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for actor in &gates.actors {
            let kind = self
                .actor_kinds
                .get(&actor.kind)
                .ok_or_else(|| format!("actor kind `{}` is not in `actor_kinds`", actor.kind))?;
            by_field
                .entry(self.actor_field(kind))
                .or_default()
                .push(format!("{}:{}", kind.flipper_type, actor.id));
        }
        for (field, mut values) in by_field {
            values.sort();
            for chunk in values.chunks(MAX_CONSTRAINT_VALUES) {
                specs.push(Spec::rollout(
                    flag,
                    100,
                    "default",
                    vec![membership(field, chunk.to_vec())],
                ));
            }
        }
        if !gates.groups.is_empty() {
            let constraint = membership(&self.group_field, gates.groups.iter().cloned());
            specs.push(Spec::rollout(flag, 100, "default", vec![constraint]));
        }
        if let Some(p) = gates.percentage_of_actors.filter(|p| *p > 0) {
            let p = whole("actors", p)?;
            specs.push(Spec::rollout(flag, p, &self.stickiness, vec![]));
        }
        if let Some(p) = gates.percentage_of_time.filter(|p| *p > 0) {
            let p = whole("time", p)?;
            specs.push(Spec::rollout(flag, p, "random", vec![]));
        }
        Ok(Target::On(specs))
    }

    /// The state `remote` holds; `Ok(None)` is absence, `Err` strategies flagops does not write.
    fn decode(&self, flag: &str, remote: &Remote) -> Result<Option<Stored>, ()> {
        if !remote.exists || (!remote.enabled && remote.strategies.is_empty()) {
            return Ok(None);
        }
        if !remote.enabled {
            return Ok(Some(Stored::Boolean(false)));
        }
        let mut gates = GateSet::default();
        let mut everyone = false;
        for live in remote.strategies.iter().filter(|live| !live.is_disabled()) {
            let spec = live.spec().ok_or(())?;
            if spec.name == "default" && spec.constraints.is_empty() {
                everyone = true;
                continue;
            }
            if spec.name != STRATEGY {
                return Err(());
            }
            let rollout: u32 = spec
                .parameters
                .get("rollout")
                .map_or(Ok(100), |text| text.parse())
                .map_err(|_| ())?;
            if rollout > 100 {
                return Err(());
            }
            let stickiness = spec.parameters.get("stickiness").map_or("default", String::as_str);
            if spec.parameters.get("groupId").is_some_and(|group| group != flag) {
                return Err(());
            }
            if rollout == 0 {
                continue;
            }
            match spec.constraints.as_slice() {
                [] => match stickiness {
                    "default" | "random" if rollout == 100 => everyone = true,
                    "random" if gates.percentage_of_time.is_none() => gates.percentage_of_time = Some(rollout * 1000),
                    other if other == self.stickiness && gates.percentage_of_actors.is_none() => {
                        gates.percentage_of_actors = Some(rollout * 1000)
                    }
                    _ => return Err(()),
                },
                [constraint]
                    if rollout == 100
                        && stickiness == "default"
                        && constraint.operator == "IN"
                        && !constraint.inverted
                        && !constraint.case_insensitive
                        && constraint.value.as_deref().is_none_or(str::is_empty) =>
                {
                    if constraint.context_name == self.group_field {
                        gates.groups.extend(constraint.values.iter().cloned());
                        continue;
                    }
                    for value in &constraint.values {
                        gates
                            .actors
                            .insert(self.actor(&constraint.context_name, value).ok_or(())?);
                    }
                }
                _ => return Err(()),
            }
        }
        if everyone || remote.strategies.iter().all(Live::is_disabled) {
            return Ok(Some(Stored::Boolean(true)));
        }
        if gates.is_empty() {
            return Ok(Some(Stored::Boolean(false)));
        }
        Ok(Some(Stored::Gates(gates)))
    }

    /// The actor whose Flipper id `value` is, among the kinds carried in `field`.
    fn actor(&self, field: &str, value: &str) -> Option<Actor> {
        self.actor_kinds
            .iter()
            .filter(|(_, kind)| self.actor_field(kind) == field)
            .filter_map(|(name, kind)| {
                let id = value.strip_prefix(kind.flipper_type.as_str())?.strip_prefix(':')?;
                (!id.is_empty()).then_some((kind.flipper_type.len(), name, id))
            })
            .max_by_key(|(length, _, _)| *length)
            .map(|(_, name, id)| Actor {
                kind: name.clone(),
                id: id.to_string(),
            })
    }

    /// What a server holding `target` reads back as, for `canonicalize`.
    fn round_trip(&self, flag: &str, target: &Target) -> Option<Stored> {
        let remote = match target {
            Target::Absent => return None,
            Target::Off => return Some(Stored::Boolean(false)),
            Target::On(specs) => Remote {
                exists: true,
                enabled: true,
                strategies: specs
                    .iter()
                    .map(|spec| Live {
                        id: String::new(),
                        feature_name: flag.to_string(),
                        name: spec.name.clone(),
                        parameters: spec
                            .parameters
                            .iter()
                            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                            .collect(),
                        constraints: spec.constraints.clone(),
                        segments: vec![],
                        disabled: None,
                    })
                    .collect(),
            },
        };
        self.decode(flag, &remote).ok().flatten()
    }
}

/// The shape of the export endpoint's answer that flagops reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Export {
    features: Vec<ExportFeature>,
    #[serde(default)]
    feature_strategies: Vec<Live>,
    #[serde(default)]
    feature_environments: Vec<ExportEnvironment>,
}

#[derive(Debug, Deserialize)]
struct ExportFeature {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportEnvironment {
    #[serde(default)]
    feature_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    enabled: bool,
}

/// One flag's answer to `GET /projects/:p/features/:f`.
#[derive(Debug, Deserialize)]
struct Feature {
    #[serde(default)]
    environments: Vec<FeatureEnvironment>,
}

#[derive(Debug, Deserialize)]
struct FeatureEnvironment {
    name: String,
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    strategies: Vec<Live>,
}

/// The admin token of `environment`, from the variable `token_env`.
pub fn read_token(token_env: &str, environment: &str) -> anyhow::Result<Token> {
    Token::from_env(
        token_env,
        environment,
        "Unleash",
        "an admin API token or a personal access token",
    )
}

impl UnleashBackend {
    /// Builds the HTTP client and opens flagops's records; connects to nothing yet.
    pub fn open(settings: Settings<'_>) -> anyhow::Result<UnleashBackend> {
        let base = format!("{}/api/admin", settings.url.trim_end_matches('/'));
        let client = Client::endpoint(
            &base,
            Some(("Authorization", settings.token)),
            settings.token_env,
            false,
            settings.timeout,
        );
        Ok(UnleashBackend {
            client,
            records: FileBackend::open(settings.state_path, settings.environment, settings.writable)?,
            environment: settings.environment.to_string(),
            project: settings.project.to_string(),
            unleash_environment: settings.unleash_environment.to_string(),
            mapping: Mapping {
                stickiness: settings.stickiness.to_string(),
                group_field: settings.group_field.to_string(),
                actor_kinds: settings.actor_kinds.clone(),
            },
            checked: false,
            known: None,
            written: BTreeSet::new(),
        })
    }

    fn features_path(&self) -> String {
        format!("/projects/{}/features", segment(&self.project))
    }

    fn feature_path(&self, flag: &str) -> String {
        format!("{}/{}", self.features_path(), segment(flag))
    }

    fn environment_path(&self, flag: &str) -> String {
        format!(
            "{}/environments/{}",
            self.feature_path(flag),
            segment(&self.unleash_environment)
        )
    }

    /// Checks that `response` is a success, or says why not.
    fn expect(&self, what: &str, response: Response) -> Result<Response, BackendError> {
        if (200..300).contains(&response.status) {
            Ok(response)
        } else {
            Err(self.failure(what, &response))
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, what: &str, response: &Response) -> Result<T, BackendError> {
        serde_json::from_str(&response.body).map_err(|error| {
            BackendError::Other(anyhow::anyhow!(
                "could not {what}: Unleash's answer is not what flagops reads: {error}"
            ))
        })
    }

    /// The error for an unsuccessful answer, with Unleash's own message; never the token.
    fn failure(&self, what: &str, response: &Response) -> BackendError {
        let status = format!("{} {}", response.status, super::gitlab::client::reason(response.status));
        let message = super::gitlab::client::message(&response.body);
        let said = if message.is_empty() {
            String::new()
        } else {
            format!(": {message}")
        };
        let variable = self.client.token_env();
        match response.status {
            401 => BackendError::Unauthorized(format!(
                "Unleash refused the token in `{variable}` ({status})\nhelp: set `{variable}` to an admin API token or a personal access token"
            )),
            403 => BackendError::Unauthorized(format!(
                "Unleash refused to {what} with the token in `{variable}` ({status}){said}\nhelp: use an admin token, or a personal access token of an admin"
            )),
            404 => BackendError::Other(anyhow::anyhow!(
                "could not {what}: Unleash answered {status}{said}\nhelp: check the backend's `project` (`{}`) and `environment` (`{}`)",
                self.project,
                self.unleash_environment
            )),
            400 | 409 | 422 => BackendError::Rejected(format!("Unleash refused to {what} ({status}){said}")),
            429 | 500..=599 => BackendError::Transient {
                message: format!("could not {what}: Unleash answered {status}{said}"),
                retry_after: response.retry_after,
            },
            _ => BackendError::Other(anyhow::anyhow!("could not {what}: Unleash answered {status}{said}")),
        }
    }

    /// Makes sure the project and the environment exist, once.
    fn check_target(&mut self) -> Result<(), BackendError> {
        if self.checked {
            return Ok(());
        }
        let what = "list the projects";
        let response = self.expect(what, self.client.get("/projects")?)?;
        let projects: Value = self.parse(what, &response)?;
        let found = projects["projects"]
            .as_array()
            .is_some_and(|list| list.iter().any(|p| p["id"].as_str() == Some(&self.project)));
        if !found {
            return Err(BackendError::Other(anyhow::anyhow!(
                "Unleash has no project `{}` (environment `{}`)\nhelp: create the project in Unleash, or set the backend's `project` to one it has",
                self.project,
                self.environment
            )));
        }
        let what = "list the environments";
        let response = self.expect(what, self.client.get("/environments")?)?;
        let environments: Value = self.parse(what, &response)?;
        let found = environments["environments"].as_array().is_some_and(|list| {
            list.iter()
                .any(|e| e["name"].as_str() == Some(&self.unleash_environment) && e["enabled"] != false)
        });
        if !found {
            return Err(BackendError::Other(anyhow::anyhow!(
                "Unleash has no enabled environment `{}` (flagops environment `{}`)\nhelp: set the backend's `environment` to one of Unleash's environments",
                self.unleash_environment,
                self.environment
            )));
        }
        self.checked = true;
        Ok(())
    }

    /// Every flag of the project, with its state in the environment: one export request.
    fn read_all(&mut self) -> Result<BTreeMap<String, Remote>, BackendError> {
        self.check_target()?;
        let what = format!("export the flags of project `{}`", self.project);
        let body = json!({ "environment": self.unleash_environment, "project": self.project }).to_string();
        let response = self.client.post_json("/features-batch/export", &body, &[])?;
        let response = self.expect(&what, response)?;
        let export: Export = self.parse(&what, &response)?;
        let mut flags: BTreeMap<String, Remote> = export
            .features
            .into_iter()
            .map(|feature| {
                (
                    feature.name,
                    Remote {
                        exists: true,
                        ..Remote::default()
                    },
                )
            })
            .collect();
        for environment in export.feature_environments {
            if let Some(remote) = environment
                .feature_name
                .or(environment.name)
                .and_then(|name| flags.get_mut(&name))
            {
                remote.enabled = environment.enabled;
            }
        }
        for strategy in export.feature_strategies {
            if let Some(remote) = flags.get_mut(&strategy.feature_name) {
                remote.strategies.push(strategy);
            }
        }
        Ok(flags)
    }

    /// One flag's state: from the last export unless it was written since.
    fn read_one(&mut self, flag: &str) -> Result<Remote, BackendError> {
        if let Some(known) = &self.known
            && !self.written.contains(flag)
        {
            return Ok(known.get(flag).cloned().unwrap_or_default());
        }
        self.check_target()?;
        let what = format!("read `{flag}`");
        let response = self.client.get(&self.feature_path(flag))?;
        if response.status == 404 {
            return Ok(Remote::default());
        }
        let response = self.expect(&what, response)?;
        let feature: Feature = self.parse(&what, &response)?;
        let mut remote = Remote {
            exists: true,
            ..Remote::default()
        };
        if let Some(environment) = feature
            .environments
            .into_iter()
            .find(|environment| environment.name == self.unleash_environment)
        {
            remote.enabled = environment.enabled;
            remote.strategies = environment.strategies;
        }
        Ok(remote)
    }

    /// Makes the server hold `target` for `flag`, in an order no client sees a state between.
    fn write(&mut self, flag: &str, target: &Target) -> Result<(), BackendError> {
        let mut remote = self.read_one(flag)?;
        if !remote.exists {
            if *target == Target::Absent {
                return Ok(());
            }
            let what = format!("create `{flag}` in project `{}`", self.project);
            let body = json!({ "name": flag, "type": "release", "description": "Managed by flagops." }).to_string();
            let response = self.client.post_json(&self.features_path(), &body, &[])?;
            if response.status == 409 {
                // Already there: written by a run that stopped before it knew, or taken elsewhere.
                self.written.insert(flag.to_string());
                remote = self.read_one(flag)?;
                if !remote.exists {
                    return Err(BackendError::Rejected(format!(
                        "Unleash refused to create `{flag}`: a flag of that name exists in another project or in the archive\nhelp: revive or delete the archived flag, or move it to project `{}`",
                        self.project
                    )));
                }
            } else {
                self.expect(&what, response)?;
                remote.exists = true;
            }
        }
        let environment = self.environment_path(flag);
        let strategies = format!("{environment}/strategies");
        match target {
            Target::Absent | Target::Off => {
                if remote.enabled {
                    let what = format!("disable `{flag}`");
                    let response = self.client.post_json(&format!("{environment}/off"), "", &[])?;
                    self.expect(&what, response)?;
                }
                if *target == Target::Absent {
                    for live in &remote.strategies {
                        let what = format!("delete a strategy of `{flag}`");
                        let response = self.client.delete(&format!("{strategies}/{}", segment(&live.id)))?;
                        if response.status != 404 {
                            self.expect(&what, response)?;
                        }
                    }
                } else if remote.strategies.is_empty() {
                    let what = format!("add a 0% strategy to `{flag}`");
                    let body = Spec::rollout(flag, 0, "default", vec![]).body().to_string();
                    let response = self.client.post_json(&strategies, &body, &[])?;
                    self.expect(&what, response)?;
                }
            }
            Target::On(specs) => {
                let mut wanted: Vec<&Spec> = Vec::new();
                let mut spare: Vec<&Live> = remote.strategies.iter().collect();
                for spec in specs {
                    match spare
                        .iter()
                        .position(|live| !live.is_disabled() && live.spec().as_ref() == Some(spec))
                    {
                        Some(position) => {
                            spare.remove(position);
                        }
                        None => wanted.push(spec),
                    }
                }
                let mut spare = spare.into_iter();
                for spec in wanted {
                    let body = spec.body().to_string();
                    match spare.next() {
                        Some(live) => {
                            let what = format!("update a strategy of `{flag}`");
                            let response = self
                                .client
                                .put_json(&format!("{strategies}/{}", segment(&live.id)), &body)?;
                            self.expect(&what, response)?;
                        }
                        None => {
                            let what = format!("add a strategy to `{flag}`");
                            let response = self.client.post_json(&strategies, &body, &[])?;
                            self.expect(&what, response)?;
                        }
                    }
                }
                for live in spare {
                    let what = format!("delete a strategy of `{flag}`");
                    let response = self.client.delete(&format!("{strategies}/{}", segment(&live.id)))?;
                    if response.status != 404 {
                        self.expect(&what, response)?;
                    }
                }
                if !remote.enabled {
                    let what = format!("enable `{flag}`");
                    let response = self.client.post_json(&format!("{environment}/on"), "", &[])?;
                    self.expect(&what, response)?;
                }
            }
        }
        Ok(())
    }
}

impl Backend for UnleashBackend {
    fn fetch(&mut self) -> Result<Snapshot, BackendError> {
        let mut snapshot = self.records.fetch()?;
        let flags = self.read_all()?;
        snapshot.flags = flags
            .iter()
            .filter_map(|(flag, remote)| {
                // Strategies flagops does not write read as absence: the next sync writes the flag.
                let stored = self.mapping.decode(flag, remote).ok().flatten()?;
                Some((flag.clone(), stored))
            })
            .collect();
        self.known = Some(flags);
        self.written.clear();
        Ok(snapshot)
    }

    fn apply(&mut self, change: &Change, context: &ApplyContext) -> Result<(), BackendError> {
        let target = self
            .mapping
            .encode(&change.flag, change.to.as_ref())
            .map_err(|reason| BackendError::Rejected(format!("`{}`: {reason}", change.flag)))?;
        let written = self.write(&change.flag, &target);
        // What was written, or half written, is known only by reading it again: a later change
        // to the flag, or the retry of this one, does.
        self.written.insert(change.flag.clone());
        written?;
        self.records.apply(change, context)
    }

    fn record_sync(&mut self, record: &SyncRecord) -> Result<(), BackendError> {
        self.records.record_sync(record)
    }

    fn set_hold(&mut self, flag: &str, hold: Option<&Hold>) -> Result<(), BackendError> {
        self.records.set_hold(flag, hold)
    }

    fn record_step(&mut self, mark: &StepMark) -> Result<(), BackendError> {
        self.records.record_step(mark)
    }

    fn canonicalize(&mut self, desired: &mut EnvironmentState) -> Result<(), BackendError> {
        let mut refused = Vec::new();
        let mut canonical = EnvironmentState::new();
        for (flag, stored) in desired.iter() {
            match self.mapping.encode(flag, Some(stored)) {
                Ok(target) => {
                    if let Some(stored) = self.mapping.round_trip(flag, &target) {
                        canonical.insert(flag.clone(), stored);
                    }
                }
                Err(reason) => refused.push(format!("`{flag}`: {reason}")),
            }
        }
        if !refused.is_empty() {
            return Err(BackendError::Rejected(format!(
                "environment `{}` cannot hold these states in Unleash:\n{}",
                self.environment,
                refused.join("\n")
            )));
        }
        *desired = canonical;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> Mapping {
        let kind = |flipper_type: &str| ActorKind {
            description: None,
            flipper_type: flipper_type.to_string(),
            api_param: None,
            unleash_field: None,
        };
        Mapping {
            stickiness: DEFAULT_STICKINESS.to_string(),
            group_field: DEFAULT_GROUP_FIELD.to_string(),
            actor_kinds: [
                ("project".to_string(), kind("Project")),
                ("user".to_string(), kind("User")),
            ]
            .into(),
        }
    }

    #[test]
    fn every_state_reads_back_as_written() {
        let mapping = mapping();
        let gates = GateSet {
            percentage_of_actors: Some(25_000),
            percentage_of_time: Some(5_000),
            actors: [
                Actor {
                    kind: "project".into(),
                    id: "278964".into(),
                },
                Actor {
                    kind: "user".into(),
                    id: "42".into(),
                },
            ]
            .into(),
            groups: BTreeSet::from(["gitlab_team_members".to_string()]),
        };
        for stored in [Stored::Boolean(true), Stored::Boolean(false), Stored::Gates(gates)] {
            let target = mapping.encode("f", Some(&stored)).unwrap();
            assert_eq!(mapping.round_trip("f", &target), Some(stored));
        }
        assert_eq!(mapping.round_trip("f", &Target::Absent), None);
    }

    #[test]
    fn long_actor_lists_are_split_and_read_back_whole() {
        let mapping = mapping();
        let gates = GateSet {
            actors: (0..600)
                .map(|i| Actor {
                    kind: "user".into(),
                    id: i.to_string(),
                })
                .collect(),
            ..GateSet::default()
        };
        let stored = Stored::Gates(gates);
        let target = mapping.encode("f", Some(&stored)).unwrap();
        let Target::On(specs) = &target else {
            panic!("{target:?}")
        };
        let sizes: Vec<usize> = specs.iter().map(|spec| spec.constraints[0].values.len()).collect();
        assert_eq!(sizes, [250, 250, 100]);
        assert_eq!(mapping.round_trip("f", &target), Some(stored));
    }

    #[test]
    fn fractions_and_foreign_strategies_are_refused() {
        let mapping = mapping();
        let half = Stored::Gates(GateSet {
            percentage_of_actors: Some(12_500),
            ..GateSet::default()
        });
        assert!(mapping.encode("f", Some(&half)).unwrap_err().contains("12.5%"));
        let foreign = Remote {
            exists: true,
            enabled: true,
            strategies: vec![Live {
                id: "1".into(),
                feature_name: "f".into(),
                name: "remoteAddress".into(),
                parameters: BTreeMap::new(),
                constraints: vec![],
                segments: vec![],
                disabled: None,
            }],
        };
        assert_eq!(mapping.decode("f", &foreign), Err(()));
        let empty = Remote {
            exists: true,
            enabled: true,
            strategies: vec![],
        };
        assert_eq!(mapping.decode("f", &empty), Ok(Some(Stored::Boolean(true))));
    }
}

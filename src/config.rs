//! The registry config (`flagops.yml`): environments in promotion order with their backends,
//! flag types and their rules, actor kinds, feature groups and site settings.
//!
//! Secrets never live in the file: a backend names the environment variable that holds its
//! token, and only the backend that needs it reads that variable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The config file's name.
pub const FILE_NAME: &str = "flagops.yml";

/// The registry's configuration, as written in `flagops.yml`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The directory holding the flag files, relative to the config file.
    #[serde(default = "default_flags_dir")]
    pub flags_dir: String,
    /// Whether flag files must sit at `<type>/<name>.yml`.
    #[serde(default)]
    pub layout: Layout,
    /// Where the `file` backend keeps its state, relative to the config file.
    #[serde(default = "default_state_dir")]
    pub state_dir: String,
    /// Where caches (the flag history) are kept, relative to the config file.
    #[serde(default = "default_cache_dir")]
    pub cache_dir: String,
    /// Whether the paths above, `tests_dir` and a backend's `path` may lead outside the
    /// registry's folder (an absolute path, or `..` above it).
    #[serde(default)]
    pub allow_paths_outside: bool,
    /// Whether sync deletes flags gone from the registry, as `--prune` does.
    #[serde(default)]
    pub prune: bool,
    /// The environments in promotion order.
    pub environments: Vec<Environment>,
    /// The environment `flagops set` and `flagops get` change or show when none is named, as
    /// ChatOps uses production.
    #[serde(default = "default_environment")]
    pub default_environment: String,
    /// The flag types, by name.
    pub types: BTreeMap<String, TypeRules>,
    /// The actor kinds usable under `actors:`, by name.
    #[serde(default)]
    pub actor_kinds: BTreeMap<String, ActorKind>,
    /// Flipper feature groups usable under `groups:`.
    #[serde(default)]
    pub feature_groups: BTreeSet<String>,
    /// How milestones map to dates, for flag ages.
    #[serde(default)]
    pub lifecycle: LifecycleConfig,
    /// Rollout policies.
    #[serde(default)]
    pub policies: Policies,
    /// The directory holding evaluation test files (`flagops test`), relative to the config file.
    #[serde(default = "default_tests_dir")]
    pub tests_dir: String,
    /// Site settings.
    #[serde(default)]
    pub site: SiteConfig,
    /// Where `--mr` opens merge requests; without it, `--mr` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_requests: Option<MergeRequests>,
    /// The Prometheus server metric guards query; required when `guards` is not empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusConfig>,
    /// Metric guards, by name: rollout steps, flags and flag types refer to them with `guard:`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub guards: BTreeMap<String, GuardConfig>,
    /// Where a sync announces each change it applies and its summary (`crate::notify`), by
    /// notifier name.
    #[serde(default)]
    pub notifications: BTreeMap<String, Notifier>,
}

/// The Prometheus server metric guards query (its HTTP API, `/api/v1/query`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// The server's base URL, such as `https://prometheus.example.com`.
    pub url: String,
    /// The environment variable holding a bearer token, when the server wants one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// How long one query may take, in seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

/// A metric guard: a PromQL instant query and the bounds its value must stay within for a
/// rollout step to go ahead (`crate::guard`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    /// What the guard watches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The query, with `{{flag}}` and `{{environment}}` replaced before it is sent.
    pub query: String,
    /// The largest healthy value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The smallest healthy value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
}

/// One place a sync announces its changes: a kind of receiver and the environments it hears
/// about. The schema holds it to the fields its kind takes.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct Notifier {
    /// The environments whose changes it announces; by default every environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
    /// How long one request may take, in seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// The receiver.
    #[serde(flatten)]
    pub target: NotifyTarget,
}

/// A receiver of notifications. Secrets are named by the environment variable that holds them.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum NotifyTarget {
    /// A note on the flag's rollout issue (`rollout_issue_url`) on the GitLab instance at `url`.
    GitlabNote {
        /// The GitLab instance's base URL.
        url: String,
        /// The environment variable holding an access token with the `api` scope.
        token_env: String,
    },
    /// An issue in `project`, created and closed at once, as GitLab's feature flag log.
    GitlabIssue {
        /// The GitLab instance's base URL.
        url: String,
        /// The log project, by full path or numeric id.
        project: String,
        /// The environment variable holding an access token with the `api` scope.
        token_env: String,
        /// Labels given to every log issue.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        labels: Vec<String>,
    },
    /// A Grafana annotation tagged with the environment, `feature-flag` and the flag.
    Grafana {
        /// Grafana's base URL.
        url: String,
        /// The environment variable holding a service account token.
        token_env: String,
    },
    /// A Slack-compatible incoming webhook, whose URL is itself a secret.
    Slack {
        /// The environment variable holding the webhook's URL.
        url_env: String,
    },
    /// A JSON webhook, signed with HMAC-SHA256.
    Webhook {
        /// Where the payload is posted.
        url: String,
        /// The environment variable holding the HMAC secret.
        secret_env: String,
    },
}

impl Notifier {
    /// Whether it announces the changes of `environment`.
    pub fn covers(&self, environment: &str) -> bool {
        self.environments
            .as_ref()
            .is_none_or(|names| names.iter().any(|name| name == environment))
    }
}

/// Where and how `--mr` publishes a change: the git remote it pushes a branch to, and the
/// GitLab project it opens the merge request in.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MergeRequests {
    /// The GitLab instance's base URL.
    pub url: String,
    /// The project, by full path (`group/registry`) or numeric id.
    pub project: String,
    /// The environment variable holding an access token with the `api` scope.
    pub token_env: String,
    /// The branch merge requests target; by default the remote's default branch, else `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_branch: Option<String>,
    /// The git remote branches are pushed to.
    #[serde(default = "default_remote")]
    pub remote: String,
    /// Whether every merge request is set to merge when its pipeline succeeds, as
    /// `--auto-merge` asks for one.
    #[serde(default)]
    pub auto_merge: bool,
    /// Labels given to every merge request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// How long one request may take, in seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

fn default_remote() -> String {
    "origin".to_string()
}

/// Rollout policies: each is a named check (see `docs/checks.md`), on unless listed in `disabled`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Policies {
    /// The environments the `promotion-order` policy compares, in promotion order; by default
    /// every environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_order: Option<Vec<String>>,
    /// The least time between a rollout step that changes a protected environment and the step
    /// before it, such as `15m`.
    #[serde(default = "default_min_wait")]
    pub min_wait: String,
    /// The largest rise, in percentage points, a rollout step may make in a protected
    /// environment (`max-step`); a flag type's `max_step` replaces it for flags of that type.
    #[serde(default = "default_max_step")]
    pub max_step: u32,
    /// Windows in which no sync may change a protected environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freeze_windows: Vec<FreezeWindow>,
    /// The environment variable that holds the change lock: while it is set and not empty, its
    /// value is the reason, and `sync` applies only changes that do not widen exposure in
    /// protected environments.
    #[serde(default = "default_change_lock_env")]
    pub change_lock_env: String,
    /// Policies turned off, by check id.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub disabled: BTreeSet<String>,
}

impl Default for Policies {
    fn default() -> Policies {
        Policies {
            promotion_order: None,
            min_wait: default_min_wait(),
            max_step: default_max_step(),
            freeze_windows: Vec::new(),
            change_lock_env: default_change_lock_env(),
            disabled: BTreeSet::new(),
        }
    }
}

fn default_min_wait() -> String {
    "15m".to_string()
}

fn default_max_step() -> u32 {
    25
}

fn default_change_lock_env() -> String {
    "FLAGOPS_CHANGE_LOCK".to_string()
}

fn default_tests_dir() -> String {
    "flag-tests".to_string()
}

/// A change freeze: from `from` until `until`, syncs leave the named environments alone.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeWindow {
    /// What the freeze is for, such as `end-of-year`.
    pub name: String,
    /// When it starts (RFC 3339).
    pub from: String,
    /// When it ends (RFC 3339), exclusive.
    pub until: String,
    /// The environments it freezes; by default every protected environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
}

impl FreezeWindow {
    /// Whether the window is about `environment`: the ones it names, else the protected ones.
    pub fn applies_to(&self, environment: &Environment) -> bool {
        match &self.environments {
            Some(names) => names.contains(&environment.name),
            None => environment.protected,
        }
    }

    /// When it starts and ends, if both are valid times (the schema checks they are).
    pub fn span(&self) -> Option<(jiff::Timestamp, jiff::Timestamp)> {
        Some((self.from.parse().ok()?, self.until.parse().ok()?))
    }

    /// Whether the window freezes `environment` (protected or not) at `at`.
    pub fn freezes(&self, environment: &Environment, at: jiff::Timestamp) -> bool {
        self.applies_to(environment) && self.span().is_some_and(|(from, until)| from <= at && at < until)
    }
}

/// How milestones map to release dates: a minor release a month, on the third Thursday.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleConfig {
    /// A milestone whose release date is known.
    #[serde(default = "default_anchor_milestone")]
    pub anchor_milestone: String,
    /// Its release date (`YYYY-MM-DD`).
    #[serde(default = "default_anchor_date")]
    pub anchor_date: String,
    /// Minor versions per major version.
    #[serde(default = "default_minors_per_major")]
    pub minors_per_major: u32,
    /// How many days before its limit a flag counts as expiring.
    #[serde(default = "default_warn_days")]
    pub warn_days: u32,
}

impl Default for LifecycleConfig {
    fn default() -> LifecycleConfig {
        LifecycleConfig {
            anchor_milestone: default_anchor_milestone(),
            anchor_date: default_anchor_date(),
            minors_per_major: default_minors_per_major(),
            warn_days: default_warn_days(),
        }
    }
}

fn default_anchor_milestone() -> String {
    "16.0".to_string()
}

fn default_anchor_date() -> String {
    "2023-05-18".to_string()
}

fn default_minors_per_major() -> u32 {
    12
}

fn default_warn_days() -> u32 {
    30
}

/// How flag files are laid out under the flags directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Any folders.
    #[default]
    Free,
    /// GitLab's `<type>/<name>.yml`.
    ByType,
}

/// One environment.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Its name, used in flag files.
    pub name: String,
    /// What it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its web address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Whether policies for protected environments apply.
    #[serde(default)]
    pub protected: bool,
    /// The switch that names it on the `set` and `get` command lines, as ChatOps's environment
    /// switches do: `production` makes `--production`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch: Option<String>,
    /// Where its flag state lives.
    pub backend: BackendConfig,
    /// A file of actor ids (one Flipper id a line, such as `Project:278964`), relative to the
    /// config file: `plan --base` counts how many of them each change switches on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_sample: Option<String>,
}

/// Where an environment's flag state lives.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum BackendConfig {
    /// The embedded file backend.
    File {
        /// The state document, relative to the config file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
    /// GitLab's Features REST API.
    Gitlab {
        /// The instance's base URL.
        url: String,
        /// The environment variable holding the token.
        token_env: String,
        /// How long one request may take, in seconds (default 30).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_seconds: Option<u64>,
    },
    /// GitLab's Flipper tables in PostgreSQL.
    FlipperSql {
        /// The environment variable holding the connection string.
        url_env: String,
    },
    /// Unleash's Admin API.
    Unleash {
        /// The server's base URL.
        url: String,
        /// The Unleash project.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        project: Option<String>,
        /// The Unleash environment.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        environment: Option<String>,
        /// The environment variable holding the token.
        token_env: String,
        /// The stickiness of percentage-of-actors rollouts: the context field Unleash hashes
        /// (default `userId`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stickiness: Option<String>,
        /// The context field that carries an actor's Flipper feature group (default `group`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group_field: Option<String>,
        /// How long one request may take, in seconds (default 30).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_seconds: Option<u64>,
    },
    /// A flagd flag-definition file.
    Flagd {
        /// The file, relative to the config file.
        path: String,
    },
}

impl BackendConfig {
    /// The backend's kind, as `flagops.yml` spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            BackendConfig::File { .. } => "file",
            BackendConfig::Gitlab { .. } => "gitlab",
            BackendConfig::FlipperSql { .. } => "flipper-sql",
            BackendConfig::Unleash { .. } => "unleash",
            BackendConfig::Flagd { .. } => "flagd",
        }
    }
}

/// The rules of one flag type.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TypeRules {
    /// What the type is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether `default_enabled: true` is allowed.
    pub can_be_default_enabled: bool,
    /// Whether `rollout_issue_url` is required.
    pub rollout_issue_required: bool,
    /// The maximum age in months, counted from the milestone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_months: Option<u32>,
    /// Whether new flags should not use the type.
    #[serde(default)]
    pub deprecated: bool,
    /// Whether flags of the type stay in the code once settled, as kill switches do: `stale`
    /// never calls them ready for removal.
    #[serde(default)]
    pub long_lived: bool,
    /// The largest rise, in percentage points, a rollout step of a flag of the type may make in
    /// a protected environment; left out, `policies.max_step`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_step: Option<u32>,
    /// Whether flags of the type may use `percentage_of_time` (`no-percentage-of-time`).
    #[serde(default)]
    pub allow_percentage_of_time: bool,
    /// The metric guard of every rollout step of flags of the type, unless the flag or the step
    /// names another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
}

/// One kind of actor.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ActorKind {
    /// What the actor is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The class part of the Flipper id.
    pub flipper_type: String,
    /// The Features API parameter for this kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_param: Option<String>,
    /// The Unleash context field that carries actors of this kind, as Flipper ids (default
    /// `userId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unleash_field: Option<String>,
}

/// Site settings.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// The site's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Where the site is published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The registry repository's web URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_url: Option<String>,
}

fn default_environment() -> String {
    "production".to_string()
}

fn default_flags_dir() -> String {
    "flags".to_string()
}

fn default_cache_dir() -> String {
    ".flagops/cache".to_string()
}

fn default_state_dir() -> String {
    ".flagops/state".to_string()
}

impl Config {
    /// The repository's example `flagops.yml`: the unit tests' configuration.
    #[cfg(test)]
    pub(crate) fn example() -> Config {
        let file = crate::source::SourceFile {
            path: "flagops.yml".into(),
            text: include_str!("../flagops.yml").to_string(),
        };
        serde_json::from_value(crate::source::parse_yaml(&file).unwrap().value).unwrap()
    }

    /// The environment named `name`.
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|environment| environment.name == name)
    }

    /// The environment names in promotion order.
    pub fn environment_names(&self) -> impl Iterator<Item = &str> {
        self.environments.iter().map(|environment| environment.name.as_str())
    }

    /// The environments the `promotion-order` policy compares, in order.
    pub fn promotion_chain(&self) -> Vec<&str> {
        match &self.policies.promotion_order {
            Some(names) => names.iter().map(String::as_str).collect(),
            None => self.environment_names().collect(),
        }
    }

    /// The freeze window holding `environment` at `at`, if any.
    pub fn freeze_at(&self, environment: &str, at: jiff::Timestamp) -> Option<&FreezeWindow> {
        let environment = self.environment(environment)?;
        self.policies
            .freeze_windows
            .iter()
            .find(|window| window.freezes(environment, at))
    }

    /// The Flipper id of an actor written either as Flipper writes it (`Group:gitlab-org`) or
    /// as flagops prints it, with its kind's name in `actor_kinds` (`group:gitlab-org`) or, for a
    /// class no actor kind names, `flipper:` (`flipper:Organizations::Organization:1`); `None`
    /// when it is none of these.
    pub fn flipper_id(&self, actor: &str) -> Option<String> {
        if self.actor_kind_of(actor).is_some() {
            return Some(actor.to_string());
        }
        let (kind, id) = actor.split_once(':')?;
        if kind == "flipper" && id.contains(':') {
            // An actor of a class no actor kind names, as flagops prints it.
            return Some(id.to_string());
        }
        let kind = self.actor_kinds.get(kind)?;
        (!id.is_empty()).then(|| format!("{}:{id}", kind.flipper_type))
    }

    /// The actor kind whose Flipper type starts `flipper_id` (`Project:123` → `project`), with
    /// the id after the colon.
    pub fn actor_kind_of<'a>(&self, flipper_id: &'a str) -> Option<(&str, &'a str)> {
        self.actor_kinds
            .iter()
            .filter_map(|(name, kind)| {
                let rest = flipper_id.strip_prefix(kind.flipper_type.as_str())?.strip_prefix(':')?;
                Some((kind.flipper_type.len(), name.as_str(), rest))
            })
            .max_by_key(|(length, _, _)| *length)
            .map(|(_, name, rest)| (name, rest))
    }
}

/// Finds `flagops.yml` in `start` or the nearest parent directory that has one.
pub fn discover(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
}

//! The files of a new registry repository (`flagops init`), rendered from the templates embedded
//! from `init/templates/` and the binary's own schemas. Pure: `cmd/init.rs` writes them.

use anyhow::Context;
use minijinja::AutoEscape;
use serde::Serialize;

use crate::schema::{CONFIG_SCHEMA, FLAG_SCHEMA, TEST_SCHEMA};

/// The templates, by the path of the file each one writes.
const TEMPLATES: &[(&str, &str)] = &[
    ("flagops.yml", include_str!("../init/templates/flagops.yml")),
    (".gitlab-ci.yml", include_str!("../init/templates/gitlab-ci.yml")),
    ("README.md", include_str!("../init/templates/README.md")),
];

/// Where flagops releases are downloaded from by default: the generic package registry the
/// release job published this binary to (`FLAGOPS_RELEASES_URL` when it was built), else the
/// flagops project's on gitlab.com.
pub const DEFAULT_DOWNLOAD_URL: &str = match option_env!("FLAGOPS_RELEASES_URL") {
    Some(url) => url,
    None => "https://gitlab.com/api/v4/projects/flagops%2Fflagops/packages/generic/flagops",
};

/// Where each environment of a new registry keeps its flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded `file` backend, under `state_dir`.
    File,
    /// GitLab's Features API at the environment's URL.
    Gitlab,
    /// GitLab's Flipper tables in PostgreSQL.
    FlipperSql,
}

impl Backend {
    fn kind(self) -> &'static str {
        match self {
            Backend::File => "file",
            Backend::Gitlab => "gitlab",
            Backend::FlipperSql => "flipper-sql",
        }
    }
}

/// One environment of a new registry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Environment {
    /// Its name.
    pub name: String,
    /// Its web address, when known.
    pub url: Option<String>,
    /// Whether it is protected.
    pub protected: bool,
    /// What it is, when known.
    pub description: Option<String>,
}

impl Environment {
    /// An environment with a name and nothing else.
    pub fn named(name: &str) -> Environment {
        Environment {
            name: name.to_string(),
            url: None,
            protected: false,
            description: None,
        }
    }
}

/// GitLab's six environments in promotion order, ops and production protected.
pub fn gitlab_com() -> Vec<Environment> {
    [
        (
            "dev",
            "https://dev.gitlab.org",
            false,
            "dev.gitlab.org, GitLab's own development instance.",
        ),
        (
            "pre",
            "https://pre.gitlab.com",
            false,
            "pre.gitlab.com, the pre-production instance.",
        ),
        ("staging", "https://staging.gitlab.com", false, "staging.gitlab.com."),
        (
            "staging-ref",
            "https://staging-ref.gitlab.com",
            false,
            "staging-ref.gitlab.com, the reference architecture staging.",
        ),
        (
            "ops",
            "https://ops.gitlab.net",
            true,
            "ops.gitlab.net, the operations instance.",
        ),
        ("production", "https://gitlab.com", true, "gitlab.com."),
    ]
    .into_iter()
    .map(|(name, url, protected, description)| Environment {
        name: name.to_string(),
        url: Some(url.to_string()),
        protected,
        description: Some(description.to_string()),
    })
    .collect()
}

/// What a new registry holds.
#[derive(Clone, Debug)]
pub struct Options {
    /// Its environments in promotion order; at least one.
    pub environments: Vec<Environment>,
    /// Where every environment keeps its flags.
    pub backend: Backend,
    /// The flagops version its pipeline downloads.
    pub version: String,
    /// The generic package registry its pipeline downloads flagops from.
    pub download_url: String,
}

/// One environment as the templates see it.
#[derive(Serialize)]
struct EnvironmentView<'a> {
    #[serde(flatten)]
    environment: &'a Environment,
    /// The variable holding its backend's secret: `FLAGOPS_<NAME>_TOKEN` or `_DATABASE_URL`.
    secret_env: String,
}

/// The files of a new registry, as `(path relative to its folder, contents)`, in the order they
/// are written: `flagops.yml` first.
pub fn files(options: &Options) -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut templates = minijinja::Environment::new();
    templates.set_auto_escape_callback(|_| AutoEscape::None);
    templates.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .context("the templates' syntax is broken")?,
    );
    templates.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    // Every value goes into YAML as a scalar that reads back as the same string.
    templates.add_filter("yaml", |text: String| crate::template::scalar(&text));
    for (name, source) in TEMPLATES {
        templates
            .add_template(name, source)
            .with_context(|| format!("the embedded template `{name}` is broken"))?;
    }
    let suffix = match options.backend {
        Backend::FlipperSql => "DATABASE_URL",
        _ => "TOKEN",
    };
    let environments: Vec<EnvironmentView<'_>> = options
        .environments
        .iter()
        .map(|environment| EnvironmentView {
            environment,
            secret_env: format!("FLAGOPS_{}_{suffix}", environment.name.to_uppercase().replace('-', "_")),
        })
        .collect();
    let last = options.environments.last().context("a registry needs an environment")?;
    let names: Vec<String> = options.environments.iter().map(|e| format!("`{}`", e.name)).collect();
    let context = minijinja::context! {
        environments => minijinja::value::Serde(&environments),
        backend => options.backend.kind(),
        default_environment => &last.name,
        last_environment => &last.name,
        environment_names => names.join(", "),
        version => &options.version,
        download_url => &options.download_url,
    };
    let mut files = Vec::new();
    for (name, _) in TEMPLATES {
        let text = templates
            .get_template(name)
            .and_then(|template| template.render(&context))
            .with_context(|| format!("failed to render the embedded template `{name}`"))?;
        files.push((*name, text));
    }
    files.extend([
        ("schema/flag.schema.json", FLAG_SCHEMA.to_string()),
        ("schema/config.schema.json", CONFIG_SCHEMA.to_string()),
        ("schema/test.schema.json", TEST_SCHEMA.to_string()),
        ("flags/.gitkeep", String::new()),
        ("flag-tests/.gitkeep", String::new()),
        (".gitignore", include_str!("../init/templates/gitignore").to_string()),
        (
            "scripts/ci/post-plan-note.sh",
            include_str!("../scripts/ci/post-plan-note.sh").to_string(),
        ),
    ]);
    Ok(files)
}

//! Actor names: what makes `project:gitlab-org/gitlab` in a flag file and `Project:278964` in
//! GitLab's answer the same actor.
//!
//! Flag files name actors by path or id (`project: gitlab-org/gitlab`, `user: 42`); the Features
//! API takes paths (`project=gitlab-org/gitlab`, `user=alice`) but lists Flipper ids
//! (`Project:278964`, `User:42`). Every actor is shown and compared in one canonical form:
//! its kind and the name the API takes, as GitLab spells it (`project:gitlab-org/gitlab`,
//! `user:alice`). The directory finds the Flipper id behind each name with GitLab's REST
//! lookups (`/users`, `/projects/:id`, `/groups/:id`, `/namespaces/:id`) and the name behind
//! each Flipper id, and keeps both in a cache file, so a run with a warm cache makes no lookup.
//!
//! Which lookup serves a kind follows its `api_param`. Kinds whose parameter takes the Flipper
//! id's own value (`runner`) need none. Repositories are named by path
//! (`gitlab-org/gitlab.git`) but identified by their hashed storage path
//! (`Repository:@hashed/6b/86/6b86….git`), which is worked out from the project's id.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::client::{Client, segment};
use crate::backends::BackendError;
use crate::config::ActorKind;
use crate::state::Actor;

/// The cache file's format version.
const FORMAT: u32 = 1;

/// The kind given to actors whose Flipper class no actor kind of `flagops.yml` names; their id
/// is the whole Flipper id, such as `flipper:Organizations::Organization:1`.
pub const FOREIGN_KIND: &str = "flipper";

/// Names and Flipper ids of one GitLab instance's actors, with their cache.
#[derive(Debug)]
pub struct Directory {
    path: PathBuf,
    kinds: BTreeMap<String, ActorKind>,
    cache: Cache,
    dirty: bool,
    /// Actors shown by `actor` that the API cannot name, with the reason.
    unnamed: BTreeMap<Actor, String>,
}

/// The cache file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cache {
    format: u32,
    /// The instance the entries come from.
    url: String,
    /// The actor kinds they were named with: kind → `flipper_type api_param`.
    kinds: BTreeMap<String, String>,
    /// Flipper id → the actor it is.
    entities: BTreeMap<String, Entity>,
    /// `kind:name` as written in flag files → Flipper id.
    aliases: BTreeMap<String, String>,
}

/// One actor known to GitLab.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entity {
    /// Its actor kind.
    kind: String,
    /// The name the Features API takes; `None` when GitLab no longer has it.
    name: Option<String>,
}

/// How a kind's names are looked up, by its `api_param`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lookup {
    User,
    Project,
    Group,
    Namespace,
    Repository,
    /// The API takes the Flipper id's value itself (`runner`).
    Verbatim,
}

/// What a lookup found.
struct Found {
    flipper_id: String,
    kind: String,
    name: String,
}

#[derive(Deserialize)]
struct RemoteUser {
    id: u64,
    username: String,
}

#[derive(Deserialize)]
struct RemoteProject {
    id: u64,
    path_with_namespace: String,
}

#[derive(Deserialize)]
struct RemoteNamespace {
    id: u64,
    full_path: String,
    #[serde(default)]
    kind: Option<String>,
}

impl Directory {
    /// The directory of the instance at `url`, reading the cache at `path` if it was written
    /// for that instance and these actor kinds. A cache that cannot be read (a link, a file over
    /// the limit, not JSON) is ignored, with a warning when it is not a regular file within the
    /// limit: it is only a cache, and the next save replaces it.
    pub fn open(path: PathBuf, url: &str, kinds: &BTreeMap<String, ActorKind>) -> Directory {
        let signature: BTreeMap<String, String> = kinds
            .iter()
            .map(|(name, kind)| {
                let parameter = kind.api_param.as_deref().unwrap_or("-");
                (name.clone(), format!("{} {parameter}", kind.flipper_type))
            })
            .collect();
        let text = crate::owned_file::read(&path, crate::owned_file::MAX_DOCUMENT_BYTES).unwrap_or_else(|error| {
            let reason = error.to_string();
            let reason = reason.lines().next().unwrap_or_default();
            eprintln!("warning: ignoring the actor cache: {reason}; it is rebuilt");
            None
        });
        let cache = text
            .and_then(|text| serde_json::from_slice::<Cache>(&text).ok())
            .filter(|cache| cache.format == FORMAT && cache.url == url && cache.kinds == signature)
            .unwrap_or_else(|| Cache {
                format: FORMAT,
                url: url.to_string(),
                kinds: signature,
                ..Cache::default()
            });
        Directory {
            path,
            kinds: kinds.clone(),
            cache,
            dirty: false,
            unnamed: BTreeMap::new(),
        }
    }

    /// The canonical form of an actor as a flag file writes it, or `None` when GitLab has no
    /// such actor.
    pub fn canonical(&mut self, client: &Client, actor: &Actor) -> Result<Option<Actor>, BackendError> {
        let alias = actor.to_string();
        if let Some(flipper_id) = self.cache.aliases.get(&alias)
            && let Some(entity) = self.cache.entities.get(flipper_id)
            && let Some(name) = &entity.name
        {
            return Ok(Some(Actor {
                kind: entity.kind.clone(),
                id: name.clone(),
            }));
        }
        let Some(kind) = self.kinds.get(&actor.kind) else {
            return Ok(None);
        };
        let Some(found) = self.find(client, &actor.kind, kind, &actor.id)? else {
            return Ok(None);
        };
        self.remember(&found);
        self.cache.aliases.insert(alias, found.flipper_id.clone());
        Ok(Some(Actor {
            kind: found.kind,
            id: found.name,
        }))
    }

    /// The actor a Flipper id such as `Project:278964` or `User:1:opt_out` stands for.
    pub fn actor(&mut self, client: &Client, flipper_id: &str) -> Result<Actor, BackendError> {
        if let Some(base) = flipper_id.strip_suffix(super::remote::OPT_OUT) {
            let actor = self.actor(client, base)?;
            return Ok(Actor {
                kind: actor.kind,
                id: format!("{}{}", actor.id, super::remote::OPT_OUT),
            });
        }
        let entity = match self.cache.entities.get(flipper_id) {
            Some(entity) => entity.clone(),
            None => {
                let (entity, asked) = self.identify(client, flipper_id)?;
                // Only what GitLab answered is worth keeping; the rest costs nothing to redo.
                if asked {
                    self.cache.entities.insert(flipper_id.to_string(), entity.clone());
                    self.dirty = true;
                }
                entity
            }
        };
        let (class, value) = flipper_id.rsplit_once(':').unwrap_or(("", flipper_id));
        match &entity.name {
            Some(name) => Ok(Actor {
                kind: entity.kind.clone(),
                id: name.clone(),
            }),
            None => {
                let actor = Actor {
                    kind: entity.kind.clone(),
                    id: if entity.kind == FOREIGN_KIND {
                        flipper_id.to_string()
                    } else {
                        value.to_string()
                    },
                };
                let reason = if entity.kind == FOREIGN_KIND {
                    format!("no actor kind in flagops.yml has `flipper_type: {class}`")
                } else if self.lookup_of(&entity.kind) == Some(Lookup::Repository) {
                    format!("GitLab's API cannot tell which repository `{flipper_id}` is")
                } else {
                    format!("GitLab no longer has `{flipper_id}`")
                };
                self.unnamed.insert(actor.clone(), reason);
                Ok(actor)
            }
        }
    }

    /// The Features API parameter and value that name `actor` (canonical, without `:opt_out`),
    /// or why there is none.
    pub fn target(&self, actor: &Actor) -> Result<(String, String), String> {
        if let Some(reason) = self.unnamed.get(actor) {
            return Err(format!(
                "the Features API cannot name `{actor}`: {reason}\nhelp: set the flag to `true` or `false` once, which clears every gate, then to the state you want"
            ));
        }
        let kind = self
            .kinds
            .get(&actor.kind)
            .ok_or_else(|| format!("`{actor}` is of no actor kind of flagops.yml"))?;
        let parameter = kind.api_param.clone().ok_or_else(|| {
            format!(
                "actor kind `{}` has no `api_param` in flagops.yml, so the Features API cannot set `{actor}`",
                actor.kind
            )
        })?;
        Ok((parameter, actor.id.clone()))
    }

    /// Writes the cache if it changed.
    pub fn save(&mut self) -> Result<(), BackendError> {
        if !self.dirty {
            return Ok(());
        }
        let mut text = serde_json::to_string_pretty(&self.cache).context("failed to serialize the actor cache")?;
        text.push('\n');
        crate::owned_file::replace(&self.path, text.as_bytes(), false)
            .with_context(|| format!("failed to write the actor cache `{}`", self.path.display()))?;
        self.dirty = false;
        Ok(())
    }

    fn remember(&mut self, found: &Found) {
        self.cache.entities.insert(
            found.flipper_id.clone(),
            Entity {
                kind: found.kind.clone(),
                name: Some(found.name.clone()),
            },
        );
        self.dirty = true;
    }

    fn lookup_of(&self, kind: &str) -> Option<Lookup> {
        self.kinds.get(kind).map(lookup)
    }

    /// The actor kind for a Flipper class: the first kind, by name, whose `flipper_type` it is.
    fn kind_of_class(&self, class: &str) -> Option<&str> {
        self.kinds
            .iter()
            .find(|(_, kind)| kind.flipper_type == class)
            .map(|(name, _)| name.as_str())
    }

    /// Looks up an actor by the name or id a flag file gives it.
    fn find(
        &self,
        client: &Client,
        kind_name: &str,
        kind: &ActorKind,
        written: &str,
    ) -> Result<Option<Found>, BackendError> {
        let numeric = !written.is_empty() && written.bytes().all(|b| b.is_ascii_digit());
        let entity = |class: &str, id: u64, name: String| {
            let kind = self.kind_of_class(class).unwrap_or(kind_name).to_string();
            Found {
                flipper_id: format!("{class}:{id}"),
                kind,
                name,
            }
        };
        let class = kind.flipper_type.as_str();
        Ok(match lookup(kind) {
            Lookup::Verbatim => Some(Found {
                flipper_id: format!("{class}:{written}"),
                kind: kind_name.to_string(),
                name: written.to_string(),
            }),
            Lookup::User if numeric => get::<RemoteUser>(client, &format!("/users/{written}"), "look up user")?
                .map(|user| entity(class, user.id, user.username)),
            Lookup::User => {
                let users: Vec<RemoteUser> =
                    get(client, &format!("/users?username={}", segment(written)), "look up user")?.unwrap_or_default();
                users
                    .into_iter()
                    .find(|user| user.username.eq_ignore_ascii_case(written))
                    .map(|user| entity(class, user.id, user.username))
            }
            Lookup::Project => {
                get::<RemoteProject>(client, &format!("/projects/{}", segment(written)), "look up project")?
                    .map(|project| entity(class, project.id, project.path_with_namespace))
            }
            Lookup::Group => get::<RemoteNamespace>(
                client,
                &format!("/groups/{}?with_projects=false", segment(written)),
                "look up group",
            )?
            .map(|group| entity(class, group.id, group.full_path)),
            Lookup::Namespace => {
                get::<RemoteNamespace>(
                    client,
                    &format!("/namespaces/{}", segment(written)),
                    "look up namespace",
                )?
                .map(|namespace| {
                    // A group is a namespace too, and Flipper knows it by its own class.
                    let class = if namespace.kind.as_deref() == Some("group") {
                        "Group"
                    } else {
                        class
                    };
                    entity(class, namespace.id, namespace.full_path)
                })
            }
            Lookup::Repository => self.find_repository(client, kind_name, written)?,
        })
    }

    /// Looks up a repository path as the `repository` parameter takes it: a project's
    /// (`group/project.git`), its wiki's (`.wiki.git`) or design repository's (`.design.git`),
    /// a group wiki's, or a snippet's (`snippets/21.git`, `group/project/snippets/21.git`).
    fn find_repository(&self, client: &Client, kind_name: &str, written: &str) -> Result<Option<Found>, BackendError> {
        let path = written.trim_start_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        let found = |disk_path: String, name: String| Found {
            flipper_id: format!("Repository:{disk_path}.git"),
            kind: kind_name.to_string(),
            name,
        };
        let segments: Vec<&str> = path.split('/').collect();
        if let [.., "snippets", id] = segments.as_slice()
            && !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
        {
            return Ok(Some(found(hashed("@snippets", id), format!("{path}.git"))));
        }
        let project =
            |path: &str| get::<RemoteProject>(client, &format!("/projects/{}", segment(path)), "look up project");
        for (suffix, disk_suffix) in [(".wiki", ".wiki"), (".design", ".design")] {
            if let Some(base) = path.strip_suffix(suffix) {
                if let Some(project) = project(base)? {
                    return Ok(Some(found(
                        format!("{}{disk_suffix}", hashed("@hashed", &project.id.to_string())),
                        format!("{}{suffix}.git", project.path_with_namespace),
                    )));
                }
                if suffix == ".wiki"
                    && let Some(group) = get::<RemoteNamespace>(
                        client,
                        &format!("/groups/{}?with_projects=false", segment(base)),
                        "look up group",
                    )?
                {
                    return Ok(Some(found(
                        format!("{}.wiki", hashed("@groups", &group.id.to_string())),
                        format!("{}.wiki.git", group.full_path),
                    )));
                }
            }
        }
        Ok(project(path)?.map(|project| {
            found(
                hashed("@hashed", &project.id.to_string()),
                format!("{}.git", project.path_with_namespace),
            )
        }))
    }

    /// Looks up what a Flipper id from GitLab's answer names, and whether GitLab was asked.
    fn identify(&self, client: &Client, flipper_id: &str) -> Result<(Entity, bool), BackendError> {
        let (class, value) = flipper_id.rsplit_once(':').unwrap_or(("", flipper_id));
        let Some(kind_name) = self.kind_of_class(class) else {
            let entity = Entity {
                kind: FOREIGN_KIND.to_string(),
                name: None,
            };
            return Ok((entity, false));
        };
        let kind = kind_name.to_string();
        let numeric = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        let unasked = |name: Option<String>| {
            Ok((
                Entity {
                    kind: kind.clone(),
                    name,
                },
                false,
            ))
        };
        let name = match lookup(&self.kinds[kind_name]) {
            Lookup::Verbatim => return unasked(Some(value.to_string())),
            // Repositories are known by storage path, which no lookup turns back into a name.
            Lookup::Repository => return unasked(None),
            _ if !numeric => return unasked(None),
            Lookup::User => {
                get::<RemoteUser>(client, &format!("/users/{value}"), "look up user")?.map(|user| user.username)
            }
            Lookup::Project => get::<RemoteProject>(client, &format!("/projects/{value}"), "look up project")?
                .map(|project| project.path_with_namespace),
            Lookup::Group => {
                get::<RemoteNamespace>(client, &format!("/groups/{value}?with_projects=false"), "look up group")?
                    .map(|group| group.full_path)
            }
            Lookup::Namespace => get::<RemoteNamespace>(client, &format!("/namespaces/{value}"), "look up namespace")?
                .map(|namespace| namespace.full_path),
        };
        Ok((Entity { kind, name }, true))
    }
}

fn lookup(kind: &ActorKind) -> Lookup {
    match kind.api_param.as_deref() {
        Some("user") => Lookup::User,
        Some("project") => Lookup::Project,
        Some("group") => Lookup::Group,
        Some("namespace") => Lookup::Namespace,
        Some("repository") => Lookup::Repository,
        _ => Lookup::Verbatim,
    }
}

/// GitLab's hashed storage path for a container id: `<root>/6b/86/6b86b273…`, the SHA-256 of the
/// id in decimal.
pub fn hashed(root: &str, id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{root}/{}/{}/{hex}", &hex[..2], &hex[2..4])
}

/// `GET`s one resource; `None` when GitLab says it does not exist (404).
fn get<T: serde::de::DeserializeOwned>(client: &Client, path: &str, what: &str) -> Result<Option<T>, BackendError> {
    let response = client.get(path)?;
    match response.status {
        200 => serde_json::from_str(&response.body).map(Some).map_err(|error| {
            BackendError::Other(anyhow::anyhow!(
                "could not {what}: GitLab's answer to `GET {path}` is not what its API documents: {error}"
            ))
        }),
        404 => Ok(None),
        _ => Err(client.failure(&format!("{what} (`GET {path}`)"), &response)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_is_dropped_for_another_instance_or_other_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gitlab/production.json");
        let kinds: BTreeMap<String, ActorKind> = [(
            "project".to_string(),
            ActorKind {
                description: None,
                flipper_type: "Project".into(),
                api_param: Some("project".into()),
                unleash_field: None,
            },
        )]
        .into();
        let mut directory = Directory::open(path.clone(), "https://a.example", &kinds);
        directory.remember(&Found {
            flipper_id: "Project:1".into(),
            kind: "project".into(),
            name: "group/project".into(),
        });
        directory.save().unwrap();
        let reopened = Directory::open(path.clone(), "https://a.example", &kinds);
        assert_eq!(reopened.cache.entities.len(), 1);
        assert!(
            Directory::open(path.clone(), "https://b.example", &kinds)
                .cache
                .entities
                .is_empty()
        );
        let mut changed = kinds.clone();
        changed.get_mut("project").unwrap().flipper_type = "Projects::Project".into();
        assert!(
            Directory::open(path, "https://a.example", &changed)
                .cache
                .entities
                .is_empty()
        );
    }

    #[test]
    fn hashed_matches_gitlab_storage() {
        // GitLab's docs: project 1 is stored at @hashed/6b/86/6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b.
        assert_eq!(
            hashed("@hashed", "1"),
            "@hashed/6b/86/6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"
        );
    }
}

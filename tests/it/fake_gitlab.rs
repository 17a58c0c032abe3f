//! A fake GitLab for the tests: the Features API and the lookups the `gitlab` backend uses,
//! served over HTTP on 127.0.0.1 by `tiny_http`, with faults that can be injected.
//!
//! It keeps flags as Flipper does and applies GitLab's rules (`lib/api/features.rb`,
//! `Admin::SetFeatureFlagService`, `Feature` and `Feature::Target` in `lib/feature.rb`):
//! the boolean gate clears every other gate; a percentage is refused while the flag is fully
//! on; `key` cannot be combined with an actor parameter; every target must exist; `DELETE`
//! answers 204 whether or not the flag exists; the API needs an administrator's token; and
//! percentages come back as floats (`25.0`).
//!
//! For notifications it serves issues (created, closed, noted), and beside GitLab's API the
//! other receivers a sync notifies: Grafana's `POST /api/annotations` (with `Authorization:
//! Bearer TOKEN`) and any `POST /hooks/...` (a Slack or JSON webhook), each recorded with its
//! headers.
//!
//! It also serves the Merge Requests API as `--mr` uses it: opening a merge request (one open
//! merge request per source branch, else 409), setting it to auto-merge, and adding notes; any
//! token it knows may use these, administrator or not.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tiny_http::{Header, Request, Response, Server};

/// The administrator's token the fake accepts: distinctive, so tests can prove it never leaks.
pub(crate) const TOKEN: &str = "glpat-FLAGOPS-TEST-9d2e7c41b8a6f305";

/// A token the fake knows, of a user who is not an administrator.
pub(crate) const NON_ADMIN_TOKEN: &str = "glpat-NOT-AN-ADMIN-0000";

/// A GitLab instance on a local port, shut down when dropped.
pub(crate) struct FakeGitlab {
    url: String,
    world: Arc<Mutex<World>>,
    server: Arc<Server>,
    thread: Option<JoinHandle<()>>,
}

/// Something that goes wrong with one request.
#[derive(Clone, Debug)]
pub(crate) enum Fault {
    /// Answer with this status (and `Retry-After` seconds) instead of handling the request.
    Status(u16, Option<u64>),
    /// Handle the request only after this long: the client has given up by then.
    Delay(Duration),
    /// Neither handle nor answer the request for this long, then drop it: a receiver that hangs.
    Hang(Duration),
    /// Handle the request, then break off the answer: the client gets a garbled response.
    Broken,
    /// Answer with this status and JSON body instead of handling the request.
    Reply(u16, Value),
}

/// Everything the fake instance holds.
#[derive(Default)]
pub(crate) struct World {
    /// Persisted flags.
    pub(crate) features: BTreeMap<String, Feature>,
    /// Users: id → username.
    pub(crate) users: BTreeMap<u64, String>,
    /// Projects: id → full path.
    pub(crate) projects: BTreeMap<u64, String>,
    /// Groups: namespace id → full path.
    pub(crate) groups: BTreeMap<u64, String>,
    /// User namespaces: namespace id → path.
    pub(crate) user_namespaces: BTreeMap<u64, String>,
    /// Runner ids.
    pub(crate) runners: BTreeSet<u64>,
    /// Flag names EE refuses without `force` (licensed feature names).
    pub(crate) licensed_names: BTreeSet<String>,
    /// Every request, as `METHOD /path`.
    pub(crate) requests: Vec<String>,
    /// Merge requests, in the order they were opened.
    pub(crate) merge_requests: Vec<MergeRequest>,
    /// Issues, in the order they were opened.
    pub(crate) issues: Vec<Issue>,
    /// Grafana annotations, as posted.
    pub(crate) annotations: Vec<Value>,
    /// Webhook calls, as posted.
    pub(crate) hooks: Vec<Hook>,
    /// The instance's base URL, for `web_url`s.
    base_url: String,
    faults: VecDeque<(String, Fault)>,
}

/// A merge request, as it was opened.
#[derive(Clone, Debug, Default)]
pub(crate) struct MergeRequest {
    pub(crate) iid: u64,
    /// The project's full path.
    pub(crate) project: String,
    pub(crate) source_branch: String,
    pub(crate) target_branch: String,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) labels: Vec<String>,
    pub(crate) remove_source_branch: bool,
    /// Whether it merges when its pipeline succeeds.
    pub(crate) auto_merge: bool,
    /// Its notes' bodies.
    pub(crate) notes: Vec<String>,
    pub(crate) web_url: String,
}

/// An issue, as it was opened, closed and noted.
#[derive(Clone, Debug, Default)]
pub(crate) struct Issue {
    pub(crate) iid: u64,
    /// The project's path as the request named it.
    pub(crate) project: String,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) labels: Vec<String>,
    pub(crate) closed: bool,
    /// Its notes' bodies.
    pub(crate) notes: Vec<String>,
}

/// A call of a webhook.
#[derive(Clone, Debug)]
pub(crate) struct Hook {
    pub(crate) path: String,
    /// Every header, names in lowercase.
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: String,
}

/// One flag, as Flipper's gates.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Feature {
    pub(crate) boolean: bool,
    pub(crate) percentage_of_actors: f64,
    pub(crate) percentage_of_time: f64,
    pub(crate) actors: BTreeSet<String>,
    pub(crate) groups: BTreeSet<String>,
}

impl FakeGitlab {
    /// Starts a fake instance with a few users, projects, groups and runners.
    pub(crate) fn start() -> FakeGitlab {
        let server = Arc::new(Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let world = Arc::new(Mutex::new(World {
            users: [(1, "alice"), (2, "bob"), (7, "carol")]
                .map(|(id, name)| (id, name.to_string()))
                .into(),
            projects: [
                (278964, "gitlab-org/gitlab"),
                (13083, "gitlab-org/gitlab-foss"),
                (42, "group/app"),
            ]
            .map(|(id, path)| (id, path.to_string()))
            .into(),
            groups: [
                (9970, "gitlab-org"),
                (6543, "gitlab-com"),
                (9971, "gitlab-org/security"),
            ]
            .map(|(id, path)| (id, path.to_string()))
            .into(),
            user_namespaces: [(101, "alice"), (102, "bob")]
                .map(|(id, path)| (id, path.to_string()))
                .into(),
            runners: [12270807].into(),
            licensed_names: ["epics".to_string()].into(),
            base_url: format!("http://127.0.0.1:{port}"),
            ..World::default()
        }));
        let thread = {
            let server = Arc::clone(&server);
            let world = Arc::clone(&world);
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let world = Arc::clone(&world);
                    std::thread::spawn(move || handle(&world, request));
                }
            })
        };
        FakeGitlab {
            url: format!("http://127.0.0.1:{port}"),
            world,
            server,
            thread: Some(thread),
        }
    }

    /// The instance's base URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The instance's state, to read or change by hand.
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap()
    }

    /// Makes the next matching request fail with `fault`: `request` is a method (`POST`), a
    /// method and path (`POST /api/v4/features/beta`), or `*` for any.
    pub(crate) fn fail_next(&self, request: &str, fault: Fault) {
        self.world().faults.push_back((request.to_string(), fault));
    }

    /// The requests made so far, and forgets them.
    pub(crate) fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut self.world().requests)
    }

    /// Every persisted flag, described as `on`, `off` or its gates
    /// (`25% of actors, Project:278964, group gitlab_team_members`).
    pub(crate) fn flags(&self) -> BTreeMap<String, String> {
        self.world()
            .features
            .iter()
            .map(|(name, feature)| (name.clone(), feature.describe()))
            .collect()
    }
}

impl Drop for FakeGitlab {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Feature {
    /// Flipper's state: `on`, `conditional` or `off`.
    fn state(&self) -> &'static str {
        if self.boolean || self.percentage_of_time == 100.0 {
            "on"
        } else if self.percentage_of_actors > 0.0
            || self.percentage_of_time > 0.0
            || !self.actors.is_empty()
            || !self.groups.is_empty()
        {
            "conditional"
        } else {
            "off"
        }
    }

    fn describe(&self) -> String {
        if self.boolean {
            return "on".to_string();
        }
        let mut parts = Vec::new();
        if self.percentage_of_actors > 0.0 {
            parts.push(format!("{}% of actors", self.percentage_of_actors));
        }
        if self.percentage_of_time > 0.0 {
            parts.push(format!("{}% of time", self.percentage_of_time));
        }
        parts.extend(self.actors.iter().cloned());
        parts.extend(self.groups.iter().map(|group| format!("group {group}")));
        if parts.is_empty() {
            "off".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// The `Feature` entity: `boolean` always, the other gates when set, percentages as floats.
    fn entity(&self, name: &str) -> Value {
        let mut gates = vec![json!({"key": "boolean", "value": self.boolean})];
        if self.percentage_of_actors > 0.0 {
            gates.push(json!({"key": "percentage_of_actors", "value": self.percentage_of_actors}));
        }
        if self.percentage_of_time > 0.0 {
            gates.push(json!({"key": "percentage_of_time", "value": self.percentage_of_time}));
        }
        if !self.actors.is_empty() {
            gates.push(json!({"key": "actors", "value": self.actors}));
        }
        if !self.groups.is_empty() {
            gates.push(json!({"key": "groups", "value": self.groups}));
        }
        json!({"name": name, "state": self.state(), "gates": gates, "definition": null})
    }
}

/// What a request gets: a status, a JSON body (or none) and extra headers.
struct Answer {
    status: u16,
    body: Option<Value>,
    headers: Vec<(&'static str, String)>,
}

fn answer(status: u16, body: Value) -> Answer {
    Answer {
        status,
        body: Some(body),
        headers: Vec::new(),
    }
}

fn handle(world: &Mutex<World>, mut request: Request) {
    let method = request.method().as_str().to_string();
    let (path, query) = match request.url().split_once('?') {
        Some((path, query)) => (path.to_string(), query.to_string()),
        None => (request.url().to_string(), String::new()),
    };
    let headers: BTreeMap<String, String> = request
        .headers()
        .iter()
        .map(|header| {
            (
                header.field.as_str().as_str().to_ascii_lowercase(),
                header.value.as_str().to_string(),
            )
        })
        .collect();
    let token = headers.get("private-token").cloned();
    let mut body = String::new();
    let _ = request.as_reader().read_to_string(&mut body);
    let fault = {
        let mut world = world.lock().unwrap();
        let line = format!("{method} {path}");
        let position = world
            .faults
            .iter()
            .position(|(wanted, _)| wanted == "*" || *wanted == method || *wanted == line);
        world.requests.push(line);
        position.and_then(|at| world.faults.remove(at)).map(|(_, fault)| fault)
    };
    let respond = |world: &Mutex<World>| {
        let mut world = world.lock().unwrap();
        match receiver(&mut world, &method, &path, &body, &headers) {
            Some(answer) => answer,
            None => route(&mut world, &method, &path, &query, &body, token.as_deref()),
        }
    };
    let answer = match fault {
        Some(Fault::Status(status, retry_after)) => {
            let mut answer = answer(
                status,
                json!({"message": format!("{status} fault injected by the test")}),
            );
            if let Some(seconds) = retry_after {
                answer.headers.push(("Retry-After", seconds.to_string()));
            }
            answer
        }
        Some(Fault::Reply(status, body)) => answer(status, body),
        Some(Fault::Delay(delay)) => {
            std::thread::sleep(delay);
            respond(world)
        }
        Some(Fault::Hang(delay)) => {
            std::thread::sleep(delay);
            return;
        }
        Some(Fault::Broken) => {
            let _ = respond(world);
            let mut writer = request.into_writer();
            let _ = writer.write_all(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\nnot a chunk\r\n\r\n");
            let _ = writer.flush();
            return;
        }
        None => respond(world),
    };
    let mut response = match &answer.body {
        Some(body) => Response::from_string(body.to_string())
            .with_status_code(answer.status)
            .with_header(Header::from_bytes("Content-Type", "application/json").unwrap()),
        None => Response::from_string(String::new()).with_status_code(answer.status),
    };
    for (name, value) in &answer.headers {
        response.add_header(Header::from_bytes(*name, value.as_bytes()).unwrap());
    }
    let _ = request.respond(response);
}

/// The receivers beside GitLab's API: Grafana's annotations and webhooks.
fn receiver(
    world: &mut World,
    method: &str,
    path: &str,
    body: &str,
    headers: &BTreeMap<String, String>,
) -> Option<Answer> {
    if method == "POST" && path == "/api/annotations" {
        if headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {TOKEN}")) {
            return Some(answer(401, json!({"message": "Unauthorized"})));
        }
        let annotation: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        world.annotations.push(annotation);
        let id = world.annotations.len();
        return Some(answer(200, json!({"id": id, "message": "Annotation added"})));
    }
    if method == "POST" && path.starts_with("/hooks/") {
        world.hooks.push(Hook {
            path: path.to_string(),
            headers: headers.clone(),
            body: body.to_string(),
        });
        return Some(answer(200, json!({"ok": true})));
    }
    None
}

fn route(world: &mut World, method: &str, path: &str, query: &str, body: &str, token: Option<&str>) -> Answer {
    match token {
        Some(TOKEN) => {}
        // Opening merge requests needs the Developer role, not an administrator.
        Some(NON_ADMIN_TOKEN) if path.contains("/merge_requests") => {}
        Some(NON_ADMIN_TOKEN) => return answer(403, json!({"message": "403 Forbidden"})),
        _ => return answer(401, json!({"message": "401 Unauthorized"})),
    }
    let Some(rest) = path.strip_prefix("/api/v4/") else {
        return not_found("");
    };
    let segments: Vec<String> = rest.split('/').map(decode).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (method, segments.as_slice()) {
        ("GET", ["features"]) => {
            let list: Vec<Value> = world
                .features
                .iter()
                .map(|(name, feature)| feature.entity(name))
                .collect();
            answer(200, Value::Array(list))
        }
        ("POST", ["features", name]) => set_feature(world, name, &form(body)),
        ("DELETE", ["features", name]) => {
            world.features.remove(*name);
            Answer {
                status: 204,
                body: None,
                headers: Vec::new(),
            }
        }
        ("POST", ["projects", id, "merge_requests"]) => open_merge_request(world, id, &form(body)),
        ("PUT", ["projects", id, "merge_requests", iid, "merge"]) => {
            let params = form(body);
            match merge_request(world, id, iid) {
                Some(request) => {
                    let asked = |key: &str| params.get(key).map(String::as_str) == Some("true");
                    request.auto_merge = asked("auto_merge") || asked("merge_when_pipeline_succeeds");
                    let entity = request.entity();
                    answer(200, entity)
                }
                None => not_found(""),
            }
        }
        ("POST", ["projects", id, "merge_requests", iid, "notes"]) => {
            let note = form(body).remove("body").unwrap_or_default();
            match merge_request(world, id, iid) {
                Some(request) => {
                    request.notes.push(note.clone());
                    answer(201, json!({"id": request.notes.len(), "body": note}))
                }
                None => not_found(""),
            }
        }
        ("POST", ["projects", id, "issues"]) => {
            let mut params = form(body);
            let iid = world.issues.iter().filter(|issue| issue.project == *id).count() as u64 + 1;
            let issue = Issue {
                iid,
                project: id.to_string(),
                title: params.remove("title").unwrap_or_default(),
                description: params.remove("description").unwrap_or_default(),
                labels: params
                    .remove("labels")
                    .map(|labels| labels.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
                closed: false,
                notes: Vec::new(),
            };
            world.issues.push(issue);
            let web_url = format!("{}/{id}/-/issues/{iid}", world.base_url);
            answer(201, json!({"iid": iid, "web_url": web_url, "state": "opened"}))
        }
        ("PUT", ["projects", id, "issues", iid]) => {
            let params = form(body);
            match world
                .issues
                .iter_mut()
                .find(|issue| issue.project == *id && issue.iid.to_string() == *iid)
            {
                Some(issue) => {
                    if params.get("state_event").map(String::as_str) == Some("close") {
                        issue.closed = true;
                    }
                    let state = if issue.closed { "closed" } else { "opened" };
                    answer(200, json!({"iid": issue.iid, "state": state}))
                }
                None => not_found("Issue"),
            }
        }
        ("POST", ["projects", id, "issues", iid, "notes"]) => {
            let note = form(body).remove("body").unwrap_or_default();
            // Rollout issues are known by project and number without being opened here.
            let found = world
                .issues
                .iter()
                .position(|issue| issue.project == *id && issue.iid.to_string() == *iid);
            let position = match found {
                Some(position) => position,
                None => {
                    world.issues.push(Issue {
                        iid: iid.parse().unwrap_or(0),
                        project: id.to_string(),
                        closed: false,
                        ..Issue::default()
                    });
                    world.issues.len() - 1
                }
            };
            let issue = &mut world.issues[position];
            issue.notes.push(note.clone());
            answer(201, json!({"id": issue.notes.len(), "body": note}))
        }
        ("GET", ["users"]) => {
            let wanted = form(query).remove("username").unwrap_or_default();
            let found: Vec<Value> = world
                .users
                .iter()
                .filter(|(_, name)| name.eq_ignore_ascii_case(&wanted))
                .map(|(id, name)| json!({"id": id, "username": name, "state": "active"}))
                .collect();
            answer(200, Value::Array(found))
        }
        ("GET", ["users", id]) => match id
            .parse()
            .ok()
            .and_then(|id| world.users.get(&id).map(|name| (id, name)))
        {
            Some((id, name)) => answer(200, json!({"id": id, "username": name})),
            None => not_found("User"),
        },
        ("GET", ["projects", id]) => match find(&world.projects, id) {
            Some((id, path)) => answer(200, json!({"id": id, "path_with_namespace": path, "name": "x"})),
            None => not_found("Project"),
        },
        ("GET", ["groups", id]) => match find(&world.groups, id) {
            Some((id, path)) => answer(200, json!({"id": id, "full_path": path})),
            None => not_found("Group"),
        },
        ("GET", ["namespaces", id]) => match find(&world.groups, id) {
            Some((id, path)) => answer(200, json!({"id": id, "full_path": path, "kind": "group"})),
            None => match find(&world.user_namespaces, id) {
                Some((id, path)) => answer(200, json!({"id": id, "full_path": path, "kind": "user"})),
                None => not_found("Namespace"),
            },
        },
        _ => not_found(""),
    }
}

impl MergeRequest {
    fn entity(&self) -> Value {
        json!({
            "iid": self.iid,
            "title": self.title,
            "source_branch": self.source_branch,
            "target_branch": self.target_branch,
            "state": "opened",
            "merge_when_pipeline_succeeds": self.auto_merge,
            "web_url": self.web_url,
        })
    }
}

/// `POST /projects/:id/merge_requests`: one open merge request per source branch.
fn open_merge_request(world: &mut World, project: &str, params: &BTreeMap<String, String>) -> Answer {
    let Some((_, path)) = find(&world.projects, project) else {
        return not_found("Project");
    };
    let path = path.clone();
    for key in ["source_branch", "target_branch", "title"] {
        if params.get(key).is_none_or(String::is_empty) {
            return answer(400, json!({"error": format!("{key} is missing")}));
        }
    }
    let source_branch = params["source_branch"].clone();
    if let Some(open) = world
        .merge_requests
        .iter()
        .find(|request| request.project == path && request.source_branch == source_branch)
    {
        return answer(
            409,
            json!({"message": [format!("Another open merge request already exists for this source branch: !{}", open.iid)]}),
        );
    }
    if source_branch == params["target_branch"] {
        return answer(
            422,
            json!({"message": ["Branch conflict You can't use same project/branch for source and target"]}),
        );
    }
    let iid = world.merge_requests.iter().filter(|r| r.project == path).count() as u64 + 1;
    let request = MergeRequest {
        iid,
        web_url: format!("{}/{path}/-/merge_requests/{iid}", world.base_url),
        project: path,
        source_branch,
        target_branch: params["target_branch"].clone(),
        title: params["title"].clone(),
        description: params.get("description").cloned().unwrap_or_default(),
        labels: params
            .get("labels")
            .map(|labels| labels.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        remove_source_branch: params.get("remove_source_branch").map(String::as_str) == Some("true"),
        auto_merge: false,
        notes: Vec::new(),
    };
    let entity = request.entity();
    world.merge_requests.push(request);
    answer(201, entity)
}

/// The merge request `iid` of the project `project` (an id or a path).
fn merge_request<'a>(world: &'a mut World, project: &str, iid: &str) -> Option<&'a mut MergeRequest> {
    let (_, path) = find(&world.projects, project)?;
    let path = path.clone();
    let iid: u64 = iid.parse().ok()?;
    world
        .merge_requests
        .iter_mut()
        .find(|request| request.project == path && request.iid == iid)
}

fn not_found(what: &str) -> Answer {
    let message = if what.is_empty() {
        "404 Not Found".to_string()
    } else {
        format!("404 {what} Not Found")
    };
    answer(404, json!({"message": message}))
}

fn bad_request(reason: &str) -> Answer {
    answer(400, json!({"message": format!("400 Bad request - {reason}")}))
}

/// An id or a full path (case-insensitive), as GitLab's `:id` parameters take them.
fn find<'a>(table: &'a BTreeMap<u64, String>, id: &str) -> Option<(u64, &'a String)> {
    match id.parse::<u64>() {
        Ok(id) => table.get(&id).map(|path| (id, path)),
        Err(_) => table
            .iter()
            .find(|(_, path)| path.eq_ignore_ascii_case(id))
            .map(|(id, path)| (*id, path)),
    }
}

/// `POST /features/:name`: Grape's parameter rules, then `Admin::SetFeatureFlagService`.
fn set_feature(world: &mut World, name: &str, params: &BTreeMap<String, String>) -> Answer {
    const TARGETS: [&str; 8] = [
        "feature_group",
        "user",
        "group",
        "namespace",
        "project",
        "organization",
        "repository",
        "runner",
    ];
    let Some(value) = params.get("value").cloned() else {
        return answer(400, json!({"error": "value is missing"}));
    };
    let key = params.get("key").cloned();
    if key.is_some()
        && let Some(target) = TARGETS.iter().find(|target| params.contains_key(**target))
    {
        return answer(400, json!({"error": format!("key, {target} are mutually exclusive")}));
    }
    if world.licensed_names.contains(name) && params.get("force").map(String::as_str) != Some("true") {
        return bad_request(&format!(
            "The '{name}' is a licensed feature name, and thus it cannot be used as a feature flag name. Use `rails console` to set this feature flag state."
        ));
    }
    let existed = world.features.contains_key(name);
    let gate_specified = TARGETS.iter().any(|target| params.contains_key(*target));
    let outcome = if gate_specified {
        targets(world, params).and_then(|targets| {
            let feature = world.features.entry(name.to_string()).or_default();
            for target in targets {
                update_target(feature, name, &value, &target)?;
            }
            Ok(())
        })
    } else {
        let feature = world.features.entry(name.to_string()).or_default();
        update_global(feature, name, &value, key.as_deref())
    };
    match outcome {
        Ok(()) => answer(201, world.features[name].entity(name)),
        Err(reason) => {
            // A refused call persists nothing.
            if !existed {
                world.features.remove(name);
            }
            bad_request(&reason)
        }
    }
}

/// A target of `POST /features/:name`: a Flipper actor id, or a feature group.
enum Target {
    Actor(String),
    Group(String),
}

/// `Feature::Target#targets`: every listed target, each of which must exist.
fn targets(world: &World, params: &BTreeMap<String, String>) -> Result<Vec<Target>, String> {
    let mut found = Vec::new();
    if let Some(group) = params.get("feature_group") {
        found.push(Target::Group(group.clone()));
    }
    let each = |parameter: &str| -> Vec<String> {
        params
            .get(parameter)
            .map(|list| list.split(',').map(|item| item.trim().to_string()).collect())
            .unwrap_or_default()
    };
    let missing = |arg: &str| format!("{arg} is not found!");
    for arg in each("user") {
        let (id, _) = world
            .users
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(&arg))
            .ok_or_else(|| missing(&arg))?;
        found.push(Target::Actor(format!("User:{id}")));
    }
    for arg in each("project") {
        let (id, _) = path_only(&world.projects, &arg).ok_or_else(|| missing(&arg))?;
        found.push(Target::Actor(format!("Project:{id}")));
    }
    for arg in each("group") {
        let (id, _) = path_only(&world.groups, &arg).ok_or_else(|| missing(&arg))?;
        found.push(Target::Actor(format!("Group:{id}")));
    }
    for arg in each("namespace") {
        match path_only(&world.groups, &arg) {
            Some((id, _)) => found.push(Target::Actor(format!("Group:{id}"))),
            None => {
                let (id, _) = path_only(&world.user_namespaces, &arg).ok_or_else(|| missing(&arg))?;
                found.push(Target::Actor(format!("Namespaces::UserNamespace:{id}")));
            }
        }
    }
    for arg in each("repository") {
        found.push(Target::Actor(repository(world, &arg).ok_or_else(|| missing(&arg))?));
    }
    for arg in each("runner") {
        let id: u64 = arg.parse().map_err(|_| missing(&arg))?;
        if !world.runners.contains(&id) {
            return Err(missing(&arg));
        }
        found.push(Target::Actor(format!("Ci::Runner:{id}")));
    }
    Ok(found)
}

/// `find_by_full_path`: paths only, case-insensitive.
fn path_only<'a>(table: &'a BTreeMap<u64, String>, path: &str) -> Option<(u64, &'a String)> {
    table
        .iter()
        .find(|(_, known)| known.eq_ignore_ascii_case(path))
        .map(|(id, known)| (*id, known))
}

/// `Gitlab::RepoPath.parse`, then the repository's Flipper id: its hashed storage path.
fn repository(world: &World, arg: &str) -> Option<String> {
    let path = arg.trim_start_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let hashed = |root: &str, id: u64| {
        let hex: String = Sha256::digest(id.to_string().as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        format!("{root}/{}/{}/{hex}", &hex[..2], &hex[2..4])
    };
    let segments: Vec<&str> = path.split('/').collect();
    if let [.., "snippets", id] = segments.as_slice() {
        return Some(format!("Repository:{}.git", hashed("@snippets", id.parse().ok()?)));
    }
    if let Some(base) = path.strip_suffix(".wiki") {
        if let Some((id, _)) = path_only(&world.projects, base) {
            return Some(format!("Repository:{}.wiki.git", hashed("@hashed", id)));
        }
        let (id, _) = path_only(&world.groups, base)?;
        return Some(format!("Repository:{}.wiki.git", hashed("@groups", id)));
    }
    if let Some(base) = path.strip_suffix(".design") {
        let (id, _) = path_only(&world.projects, base)?;
        return Some(format!("Repository:{}.design.git", hashed("@hashed", id)));
    }
    let (id, _) = path_only(&world.projects, path)?;
    Some(format!("Repository:{}.git", hashed("@hashed", id)))
}

/// `update_targets` for one target; the order of the checks is GitLab's.
fn update_target(feature: &mut Feature, name: &str, value: &str, target: &Target) -> Result<(), String> {
    let (set, member, shown) = match target {
        Target::Actor(id) => (&mut feature.actors, id.clone(), id.clone()),
        Target::Group(group) => (&mut feature.groups, group.clone(), format!("group {group}")),
    };
    let opt_out = format!("{member}:opt_out");
    match value {
        "100" | "100.0" | "true" => {
            if set.contains(&opt_out) {
                return Err(format!("Opt-out exists for {shown} - remove opt-out before enabling"));
            }
            set.insert(member);
        }
        "0" | "0.0" | "false" => {
            set.remove(&member);
        }
        "opt_out" => {
            if matches!(target, Target::Actor(_)) {
                set.insert(opt_out);
            }
        }
        "remove_opt_out" => {
            if !set.remove(&opt_out) {
                return Err(format!("No opt-out exists for {shown}"));
            }
        }
        _ => return Err(format!("Cannot set '{name}' to {value:?} for {shown}")),
    }
    Ok(())
}

/// `update_global`: the boolean gate clears every other gate; a percentage is refused while
/// the flag is fully on.
fn update_global(feature: &mut Feature, name: &str, value: &str, key: Option<&str>) -> Result<(), String> {
    let numeric = {
        let mut parts = value.splitn(2, '.');
        let whole = parts.next().unwrap_or("");
        let fraction = parts.next();
        !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
    };
    let percentage = |kind: &str, feature: &Feature| -> Result<f64, String> {
        if !numeric {
            return Err("Not a percentage".to_string());
        }
        if feature.state() == "on" {
            return Err(format!("Cannot enable percentage of {kind} for a fully-enabled flag"));
        }
        let value: f64 = value.parse().map_err(|_| "Not a percentage".to_string())?;
        if value > 100.0 {
            return Err(format!("value must be between 0 and 100, was {value}"));
        }
        Ok(value)
    };
    if matches!(value, "100" | "100.0" | "true") {
        *feature = Feature {
            boolean: true,
            ..Feature::default()
        };
    } else if matches!(value, "0" | "0.0" | "false") {
        *feature = Feature::default();
    } else if key == Some("percentage_of_actors") {
        feature.percentage_of_actors = percentage("actors", feature)?;
    } else if key == Some("percentage_of_time") || (key.is_none() && numeric) {
        feature.percentage_of_time = percentage("time", feature)?;
    } else {
        return Err(match key {
            Some(key) => format!("Cannot set '{name}' ({key:?}) to {value:?}"),
            None => format!("Cannot set '{name}' to {value:?}"),
        });
    }
    Ok(())
}

/// Decodes `a=1&b=x%2Fy` (a form body or a query).
fn form(text: &str) -> BTreeMap<String, String> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

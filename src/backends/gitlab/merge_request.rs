//! GitLab's Merge Requests API, as `--mr` uses it: open a merge request, set it to merge when
//! its pipeline succeeds, and add a note. It shares the `gitlab` backend's `Client`, so the
//! token goes only into the `PRIVATE-TOKEN` header and is never formatted.
//!
//! Errors say what GitLab answered in terms of merge requests: a token GitLab refuses (401), a
//! user who may not open merge requests (403), an unknown project (404), another open merge
//! request for the same branch (409), a request GitLab will not accept (422), and answers worth
//! trying again later (429, 5xx, timeouts).

use serde::Deserialize;

use super::client::{Client, Response, message, reason, segment};
use crate::backends::BackendError;

/// An open merge request.
#[derive(Clone, Debug, Deserialize)]
pub struct MergeRequest {
    /// Its number in the project (`!12`).
    pub iid: u64,
    /// Its page.
    pub web_url: String,
}

/// What `open` asks GitLab for.
#[derive(Debug)]
pub struct NewMergeRequest<'a> {
    /// The pushed branch.
    pub source_branch: &'a str,
    /// The branch it merges into.
    pub target_branch: &'a str,
    /// Its title.
    pub title: &'a str,
    /// Its description, in Markdown.
    pub description: &'a str,
    /// Labels to give it.
    pub labels: &'a [String],
}

/// `POST /projects/:id/merge_requests`, deleting the source branch once merged.
pub fn open(client: &Client, project: &str, request: &NewMergeRequest<'_>) -> Result<MergeRequest, BackendError> {
    let mut form = vec![
        ("source_branch", request.source_branch.to_string()),
        ("target_branch", request.target_branch.to_string()),
        ("title", request.title.to_string()),
        ("description", request.description.to_string()),
        ("remove_source_branch", "true".to_string()),
    ];
    if !request.labels.is_empty() {
        form.push(("labels", request.labels.join(",")));
    }
    let path = format!("/projects/{}/merge_requests", segment(project));
    let response = client.post_form(&path, &form)?;
    if response.status != 201 && response.status != 200 {
        let what = format!("open a merge request from `{}`", request.source_branch);
        return Err(failure(client, project, &what, &response));
    }
    serde_json::from_str(&response.body).map_err(|error| {
        BackendError::Other(anyhow::anyhow!(
            "GitLab opened a merge request from `{}` but its answer cannot be read: {error}",
            request.source_branch
        ))
    })
}

/// `PUT /projects/:id/merge_requests/:iid/merge` with `auto_merge` (GitLab 17.11 and later)
/// and `merge_when_pipeline_succeeds` (its earlier name, which older instances read): GitLab
/// merges the merge request once its pipeline succeeds.
///
/// GitLab answers 405 while the merge request's pipeline is not created yet; that answer is
/// `Transient`, so a retry a moment later succeeds.
pub fn set_auto_merge(client: &Client, project: &str, iid: u64) -> Result<(), BackendError> {
    let form = [
        ("auto_merge", "true".to_string()),
        ("merge_when_pipeline_succeeds", "true".to_string()),
        ("should_remove_source_branch", "true".to_string()),
    ];
    let path = format!("/projects/{}/merge_requests/{iid}/merge", segment(project));
    let response = client.put_form(&path, &form)?;
    match response.status {
        200 | 201 => Ok(()),
        405 => Err(BackendError::Transient {
            message: format!(
                "GitLab cannot set !{iid} to auto-merge yet ({} {}): its pipeline may not be created yet",
                response.status,
                reason(response.status)
            ),
            retry_after: response.retry_after,
        }),
        _ => Err(failure(
            client,
            project,
            &format!("set !{iid} to auto-merge"),
            &response,
        )),
    }
}

/// `POST /projects/:id/merge_requests/:iid/notes`.
pub fn note(client: &Client, project: &str, iid: u64, body: &str) -> Result<(), BackendError> {
    let path = format!("/projects/{}/merge_requests/{iid}/notes", segment(project));
    let response = client.post_form(&path, &[("body", body.to_string())])?;
    match response.status {
        200 | 201 => Ok(()),
        _ => Err(failure(client, project, &format!("add a note to !{iid}"), &response)),
    }
}

/// The error for an answer that is not a success, in terms of merge requests.
fn failure(client: &Client, project: &str, what: &str, response: &Response) -> BackendError {
    let status = format!("{} {}", response.status, reason(response.status));
    let said = match message(&response.body) {
        text if text.is_empty() => String::new(),
        text => format!(": {text}"),
    };
    let token_env = client.token_env();
    match response.status {
        401 => BackendError::Unauthorized(format!(
            "GitLab refused the token in `{token_env}` ({status})\nhelp: set `{token_env}` to an access token with the `api` scope"
        )),
        403 => BackendError::Unauthorized(format!(
            "GitLab refused to {what} in `{project}` with the token in `{token_env}` ({status}){said}\nhelp: the token's user needs at least the Developer role in `{project}`"
        )),
        404 => BackendError::Rejected(format!(
            "GitLab could not {what}: no project `{project}` that the token in `{token_env}` can see ({status}){said}\nhelp: check `merge_requests.project` and `merge_requests.url` in flagops.yml"
        )),
        409 => BackendError::Rejected(format!(
            "GitLab refused to {what} ({status}){said}\nhelp: GitLab allows one open merge request per source branch, and another one already uses this branch"
        )),
        400 | 422 => BackendError::Rejected(format!("GitLab refused to {what} ({status}){said}")),
        429 | 500..=599 => BackendError::Transient {
            message: format!("could not {what}: GitLab answered {status}{said}"),
            retry_after: response.retry_after,
        },
        _ => BackendError::Other(anyhow::anyhow!("could not {what}: GitLab answered {status}{said}")),
    }
}

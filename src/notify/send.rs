//! Sending one notification to its receiver, on the `gitlab` backend's HTTP client: what each
//! kind hears of, how it renders a `Message`, and the request it makes.
//!
//! A secret is read from its environment variable only here, just before the request, and goes
//! only into a header (or, for `slack`, is the URL); errors name the variable, never its value.

use hmac::{KeyInit, Mac};
use serde_json::json;

use super::{Event, Message};
use crate::backends::BackendError;
use crate::backends::gitlab::client::{Client, DEFAULT_TIMEOUT, Response, Token, segment};
use crate::config::{Notifier, NotifyTarget};

/// Whether `notifier` is told of `message`: a `gitlab-note` only of changes to flags whose
/// rollout issue is on its instance, the others of every change.
pub(super) fn hears(notifier: &Notifier, message: &Message) -> bool {
    match &notifier.target {
        NotifyTarget::GitlabNote { url, .. } => message
            .rollout_issue
            .as_deref()
            .and_then(|issue| issue_on(url, issue))
            .is_some(),
        _ => matches!(message.event, Event::Change | Event::Guard),
    }
}

/// Whether `notifier` gets a summary of each environment's sync: the chat and webhook kinds.
pub(super) fn takes_summaries(notifier: &Notifier) -> bool {
    matches!(
        notifier.target,
        NotifyTarget::Slack { .. } | NotifyTarget::Webhook { .. }
    )
}

/// Whether `notifier` opens a log issue per change, which a `gitlab-note` on the same change
/// links to, so it is sent first.
pub(super) fn opens_log_issue(notifier: &Notifier) -> bool {
    matches!(notifier.target, NotifyTarget::GitlabIssue { .. })
}

/// Sends `message`, whose id is `id`, to `notifier`; a `gitlab-note` links `log_issue`, the log
/// issue opened for the same change, when there is one. Returns the address of what it opened,
/// when it opened something (a `gitlab-issue`'s log issue).
pub(super) fn send(
    notifier: &Notifier,
    id: &str,
    message: &Message,
    log_issue: Option<&str>,
) -> Result<Option<String>, BackendError> {
    let timeout = notifier
        .timeout_seconds
        .map_or(DEFAULT_TIMEOUT, std::time::Duration::from_secs);
    match &notifier.target {
        NotifyTarget::GitlabNote { url, token_env } => {
            let Some((project, iid)) = message.rollout_issue.as_deref().and_then(|issue| issue_on(url, issue)) else {
                return Ok(None);
            };
            let client = Client::new(url, secret(token_env)?, token_env, timeout);
            let path = format!("/projects/{}/issues/{iid}/notes", segment(&project));
            let mut note = body(message);
            if let Some(log_issue) = log_issue {
                note.push_str(&format!(
                    "\n- Feature flag state change log issue: {}",
                    crate::escape::markdown(log_issue)
                ));
            }
            let response = client.post_form(&path, &[("body", note)])?;
            expect(&client, &format!("add a note to `{project}#{iid}`"), &response)?;
            Ok(None)
        }
        NotifyTarget::GitlabIssue {
            url,
            project,
            token_env,
            labels,
        } => {
            let client = Client::new(url, secret(token_env)?, token_env, timeout);
            let mut form = vec![("title", title(message)), ("description", body(message))];
            if !labels.is_empty() {
                form.push(("labels", labels.join(",")));
            }
            let path = format!("/projects/{}/issues", segment(project));
            let response = client.post_form(&path, &form)?;
            expect(&client, &format!("open a log issue in `{project}`"), &response)?;
            let issue = serde_json::from_str::<serde_json::Value>(&response.body).unwrap_or_default();
            let iid = issue["iid"].as_u64().ok_or_else(|| {
                BackendError::Rejected(format!(
                    "GitLab opened a log issue in `{project}` but its answer has no `iid`"
                ))
            })?;
            // GitLab's own address of the issue, else the one its path gives; only an http(s)
            // address without credentials is kept.
            let web_url = issue["web_url"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}/{project}/-/issues/{iid}", url.trim_end_matches('/')));
            let web_url =
                (crate::check::is_http_url(&web_url) && !crate::escape::has_credentials(&web_url)).then_some(web_url);
            let path = format!("/projects/{}/issues/{iid}", segment(project));
            let response = client.put_form(&path, &[("state_event", "close".to_string())])?;
            expect(&client, &format!("close log issue `{project}#{iid}`"), &response)?;
            Ok(web_url)
        }
        NotifyTarget::Grafana { url, token_env } => {
            let token = secret(token_env)?;
            let bearer = Token::new(format!("Bearer {}", token.reveal()));
            let client = Client::endpoint(url, Some(("Authorization", bearer)), token_env, false, timeout);
            let time = message
                .at
                .parse::<jiff::Timestamp>()
                .map_or(0, |at| at.as_millisecond());
            let payload = json!({
                "time": time,
                "tags": [message.environment, "feature-flag", message.flag.as_deref().unwrap_or_default()],
                "text": title(message),
            });
            let response = client.post_json("/api/annotations", &payload.to_string(), &[])?;
            expect_http(&client, "Grafana", "add an annotation", &response).map(|()| None)
        }
        NotifyTarget::Slack { url_env } => {
            let url = secret(url_env)?;
            let client = Client::endpoint(url.reveal(), None, url_env, true, timeout);
            let text = match message.event {
                Event::Change | Event::Guard => format!("{}\n{}", title(message), body(message)),
                Event::Summary => summary(message),
            };
            let response = client.post_json("", &json!({ "text": text }).to_string(), &[])?;
            expect_http(&client, "the Slack webhook", "post a message", &response).map(|()| None)
        }
        NotifyTarget::Webhook { url, secret_env } => {
            let key = secret(secret_env)?;
            let mut payload = serde_json::to_value(message).map_err(anyhow::Error::new)?;
            payload["id"] = json!(id);
            let payload = payload.to_string();
            let mut mac = hmac::Hmac::<sha2_hmac::Sha256>::new_from_slice(key.reveal().as_bytes())
                .map_err(|_| BackendError::Rejected(format!("the secret in `{secret_env}` cannot key an HMAC")))?;
            mac.update(payload.as_bytes());
            let signature: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            let client = Client::endpoint(url, None, secret_env, false, timeout);
            let headers = [
                ("X-Flagops-Delivery", id.to_string()),
                ("Idempotency-Key", id.to_string()),
                ("X-Flagops-Signature", format!("sha256={signature}")),
            ];
            let response = client.post_json("", &payload, &headers)?;
            expect_http(&client, "the webhook", "post the notification", &response).map(|()| None)
        }
    }
}

/// The project and issue number of `issue` (`https://gitlab.com/group/project/-/issues/12`) when
/// it is on the instance at `url`.
fn issue_on(url: &str, issue: &str) -> Option<(String, u64)> {
    let rest = issue.strip_prefix(url.trim_end_matches('/'))?.strip_prefix('/')?;
    let (project, number) = rest.split_once("/-/issues/")?;
    let number = number.split(['#', '?', '/']).next()?.parse().ok()?;
    (!project.is_empty()).then(|| (project.to_string(), number))
}

/// The secret in the environment variable `name`.
fn secret(name: &str) -> Result<Token, BackendError> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(Token::new(value)),
        _ => Err(BackendError::Unauthorized(format!(
            "the environment variable `{name}` is not set\nhelp: set it to the notifier's secret; `flagops notify --retry` sends what is pending"
        ))),
    }
}

/// A success, or GitLab's answer as an error.
fn expect(client: &Client, what: &str, response: &Response) -> Result<(), BackendError> {
    match response.status {
        200..=299 => Ok(()),
        _ => Err(client.failure(what, response)),
    }
}

/// A success, or the answer of `receiver` as an error: 401 and 403 refuse the secret, 429 and
/// 5xx are worth retrying, other 4xx are refusals.
fn expect_http(client: &Client, receiver: &str, what: &str, response: &Response) -> Result<(), BackendError> {
    let status = response.status;
    let said = || {
        let text: String = response.body.trim().chars().take(200).collect();
        if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        }
    };
    match status {
        200..=299 => Ok(()),
        401 | 403 => Err(BackendError::Unauthorized(format!(
            "{receiver} refused to {what} with the secret in `{}` ({status})\nhelp: check the secret `{}` holds",
            client.token_env(),
            client.token_env()
        ))),
        429 | 500..=599 => Err(BackendError::Transient {
            message: format!("could not {what}: {receiver} answered {status}{}", said()),
            retry_after: response.retry_after,
        }),
        _ => Err(BackendError::Rejected(format!(
            "{receiver} refused to {what} ({status}){}",
            said()
        ))),
    }
}

/// One line, as ChatOps titles its log issues.
fn title(message: &Message) -> String {
    let flag = message.flag.as_deref().unwrap_or_default();
    if message.event == Event::Guard {
        return format!(
            "Feature flag {flag}: a metric guard stopped its rollout on {}",
            message.environment
        );
    }
    match message.action {
        Some(crate::plan::Action::Delete) => {
            format!("Feature flag {flag} has been deleted on {}", message.environment)
        }
        _ => format!(
            "Feature flag {flag} has been set to {} on {}",
            message.new.as_deref().unwrap_or_default(),
            message.environment
        ),
    }
}

/// Who, when, what and why, in Markdown, one fact a line.
fn body(message: &Message) -> String {
    let mut lines = vec![title(message)];
    lines.push(String::new());
    let mut fact = |name: &str, value: Option<&str>| {
        if let Some(value) = value {
            lines.push(format!("- {name}: {}", crate::escape::markdown(value)));
        }
    };
    fact("Environment", Some(&message.environment));
    fact("Old state", message.old.as_deref());
    fact("New state", message.new.as_deref());
    fact("Changed by", Some(&message.by));
    fact("At", Some(&message.at));
    fact("Commit", message.commit.as_deref());
    fact("Merge request", message.merge_request.as_deref());
    fact("Rollout issue", message.rollout_issue.as_deref());
    fact("Reason", message.reason.as_deref());
    let step = message.step.map(|step| step.to_string());
    fact("Rollout step", step.as_deref());
    lines.join("\n")
}

/// A sync's summary, for chat.
fn summary(message: &Message) -> String {
    let mut text = format!(
        "flagops synced {}: {} applied by {}",
        message.environment,
        crate::plan::render::count(message.changes.len(), "change"),
        message.by
    );
    if let Some(commit) = &message.commit {
        text.push_str(&format!(" from {commit}"));
    }
    for change in &message.changes {
        text.push_str(&format!("\n- {change}"));
    }
    text
}

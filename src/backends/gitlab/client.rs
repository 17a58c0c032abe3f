//! The HTTP client of the `gitlab` backend: one blocking `ureq` agent per environment, the
//! token, and how a response or a transport failure becomes a `BackendError`. Notifications
//! (`crate::notify`) use it too, for any HTTP endpoint (`Client::endpoint`).
//!
//! The token goes only into the `PRIVATE-TOKEN` header of each request. It is never formatted:
//! `Token` has no `Display`, its `Debug` prints `<redacted>`, and error messages name the
//! environment variable that holds it, never its value.

use std::fmt;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use ureq::tls::{RootCerts, TlsConfig};

use crate::backends::BackendError;
use crate::escape::{redact_url, redact_urls};

/// How long one request may take when `timeout_seconds` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest a request may take, as the schema bounds `timeout_seconds`; a longer timeout
/// would overflow the clock's arithmetic.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Everything but the characters RFC 3986 leaves unreserved is escaped in a path segment, so
/// `gitlab-org/gitlab` becomes `gitlab-org%2Fgitlab` as GitLab's `:id` parameters expect.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A GitLab instance's REST API, authenticated with an access token; or, through
/// `Client::endpoint`, another HTTP API such as Prometheus's or a notification receiver's.
pub struct Client {
    agent: ureq::Agent,
    /// `<url>/api/v4`, without a trailing slash.
    api: String,
    /// The header that carries the secret, and its value.
    auth: Option<(&'static str, Token)>,
    /// The environment variable the token came from, for messages.
    token_env: String,
    /// Whether `api` is itself a secret (a Slack webhook's URL): messages never show it.
    conceal_url: bool,
}

/// An access token. It cannot be displayed, and its `Debug` hides it.
pub struct Token(String);

/// What the server answered.
#[derive(Debug)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The body, as text.
    pub body: String,
    /// The `Retry-After` header, when there is one.
    pub retry_after: Option<Duration>,
    /// The `Location` header, for a redirect.
    pub location: Option<String>,
}

impl Token {
    /// Wraps a token read from the environment.
    pub fn new(value: String) -> Token {
        Token(value)
    }

    /// The token `environment` reads from the variable `token_env`, trimmed, for a backend on
    /// `service` (`GitLab`, `Unleash`); `help` says what to set the variable to.
    pub fn from_env(token_env: &str, environment: &str, service: &str, help: &str) -> anyhow::Result<Token> {
        match std::env::var(token_env) {
            Ok(value) if !value.trim().is_empty() => Ok(Token::new(value.trim().to_string())),
            Err(std::env::VarError::NotUnicode(_)) => {
                anyhow::bail!("the token variable `{token_env}` of environment `{environment}` is not valid UTF-8")
            }
            _ => anyhow::bail!(
                "environment `{environment}` reads its {service} token from `{token_env}`, which is not set\nhelp: set `{token_env}` to {help}"
            ),
        }
    }

    /// The secret itself, for the one place that must use it other than as a header: a webhook
    /// URL, an HMAC key.
    pub(crate) fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field(
                "api",
                &if self.conceal_url {
                    "<redacted>"
                } else {
                    self.api.as_str()
                },
            )
            .field("auth", &self.auth.as_ref().map(|(header, token)| (header, token)))
            .field("token_env", &self.token_env)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the instance at `url`; each request may take at most `timeout`.
    /// Certificates are checked against the system's trust store, and proxies come from
    /// `ALL_PROXY`, `HTTPS_PROXY` or `HTTP_PROXY`, minus the hosts in `NO_PROXY`.
    pub fn new(url: &str, token: Token, token_env: &str, timeout: Duration) -> Client {
        let api = format!("{}/api/v4", url.trim_end_matches('/'));
        Client::endpoint(&api, Some(("PRIVATE-TOKEN", token)), token_env, false, timeout)
    }

    /// A client for any HTTP endpoint at `base` (paths are appended to it), sending the secret
    /// in `auth`'s header when there is one; `secret_env` names the variable it came from, for
    /// messages. With `conceal_url`, the base URL is a secret too, and messages name
    /// `secret_env` instead of it.
    pub fn endpoint(
        base: &str,
        auth: Option<(&'static str, Token)>,
        secret_env: &str,
        conceal_url: bool,
        timeout: Duration,
    ) -> Client {
        let tls = TlsConfig::builder().root_certs(RootCerts::PlatformVerifier).build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // A redirect would turn a POST into a GET: report it instead of following it.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(timeout.min(MAX_TIMEOUT)))
            .user_agent(concat!("flagops/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .proxy(ureq::Proxy::try_from_env())
            .build()
            .new_agent();
        Client {
            agent,
            api: base.trim_end_matches('/').to_string(),
            auth,
            token_env: secret_env.to_string(),
            conceal_url,
        }
    }

    /// `GET <api><path>`; `path` starts with `/` and may carry a query.
    pub fn get(&self, path: &str) -> Result<Response, BackendError> {
        let request = self.authorize(self.agent.get(self.url(path)));
        self.finish("GET", path, request.call())
    }

    /// `POST <api><path>` with a form body.
    pub fn post_form(&self, path: &str, form: &[(&str, String)]) -> Result<Response, BackendError> {
        let request = self.authorize(self.agent.post(self.url(path)));
        let pairs = form.iter().map(|(key, value)| (*key, value.as_str()));
        self.finish("POST", path, request.send_form(pairs))
    }

    /// `PUT <api><path>` with a form body.
    pub fn put_form(&self, path: &str, form: &[(&str, String)]) -> Result<Response, BackendError> {
        let request = self.authorize(self.agent.put(self.url(path)));
        let pairs = form.iter().map(|(key, value)| (*key, value.as_str()));
        self.finish("PUT", path, request.send_form(pairs))
    }

    /// `POST <api><path>` with a JSON body and extra headers.
    pub fn post_json(&self, path: &str, body: &str, headers: &[(&str, String)]) -> Result<Response, BackendError> {
        let mut request = self
            .authorize(self.agent.post(self.url(path)))
            .header("Content-Type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        self.finish("POST", path, request.send(body))
    }

    /// `PUT <api><path>` with a JSON body.
    pub fn put_json(&self, path: &str, body: &str) -> Result<Response, BackendError> {
        let request = self
            .authorize(self.agent.put(self.url(path)))
            .header("Content-Type", "application/json");
        self.finish("PUT", path, request.send(body))
    }

    /// The environment variable the token came from, for messages.
    pub fn token_env(&self) -> &str {
        &self.token_env
    }

    /// `DELETE <api><path>`.
    pub fn delete(&self, path: &str) -> Result<Response, BackendError> {
        let request = self.authorize(self.agent.delete(self.url(path)));
        self.finish("DELETE", path, request.call())
    }

    /// The error for a response that is not a success: what a sync should do about it, with
    /// GitLab's own message. `what` says what was being done, such as ``set 25% of actors on
    /// `alpha` ``.
    pub fn failure(&self, what: &str, response: &Response) -> BackendError {
        let status = format!("{} {}", response.status, reason(response.status));
        let message = message(&response.body);
        let said = |message: &str| {
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        };
        match response.status {
            400 | 409 | 422 => BackendError::Rejected(format!("GitLab refused to {what}{}", said(&message))),
            401 => BackendError::Unauthorized(format!(
                "GitLab refused the token in `{}` ({status})\nhelp: set `{}` to an administrator's access token with the `api` scope",
                self.token_env, self.token_env
            )),
            403 => BackendError::Unauthorized(format!(
                "GitLab refused to {what} with the token in `{}` ({status}): the Features API is for administrators only\nhelp: use an administrator's access token with the `api` scope",
                self.token_env
            )),
            429 | 500..=599 => BackendError::Transient {
                message: format!("could not {what}: GitLab answered {status}{}", said(&message)),
                retry_after: response.retry_after,
            },
            300..=399 => BackendError::Other(anyhow::anyhow!(
                "could not {what}: GitLab answered {status}, redirecting to `{}`\nhelp: set the backend's `url` to the instance's address as it redirects",
                redact_url(response.location.as_deref().unwrap_or("?"))
            )),
            _ => BackendError::Other(anyhow::anyhow!(
                "could not {what}: GitLab answered {status}{}",
                said(&message)
            )),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// `request` with the secret's header, when there is one.
    fn authorize<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.auth {
            Some((header, token)) => request.header(*header, &token.0),
            None => request,
        }
    }

    fn finish(
        &self,
        method: &str,
        path: &str,
        outcome: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response, BackendError> {
        // Messages name the endpoint without any credential written into the backend's `url`.
        let endpoint = || {
            if self.conceal_url {
                format!("{method} the URL in `{}`", self.token_env)
            } else {
                format!("{method} {}", redact_url(&self.url(path)))
            }
        };
        let conceal = |error: BackendError| self.conceal(error);
        let mut response = outcome.map_err(|error| conceal(transport(&endpoint(), error)))?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        };
        let retry_after = header("retry-after").and_then(|value| parse_retry_after(&value));
        let location = header("location");
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|error| conceal(transport(&endpoint(), error)))?;
        Ok(Response {
            status,
            body,
            retry_after,
            location,
        })
    }
}

impl Client {
    /// `error` without the base URL when it is a secret: a transport's message may quote it.
    fn conceal(&self, error: BackendError) -> BackendError {
        if !self.conceal_url {
            return error;
        }
        let hide = |text: String| text.replace(&self.api, "<redacted>");
        match error {
            BackendError::Transient { message, retry_after } => BackendError::Transient {
                message: hide(message),
                retry_after,
            },
            BackendError::Other(error) => BackendError::Other(anyhow::anyhow!(hide(error.to_string()))),
            other => other,
        }
    }
}

/// Escapes `value` for use as one segment of a URL path.
pub fn segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// A failure to get a whole response: timeouts and dropped connections are worth retrying,
/// a TLS or address problem is not.
fn transport(endpoint: &str, error: ureq::Error) -> BackendError {
    let transient = matches!(
        error,
        ureq::Error::Timeout(_)
            | ureq::Error::Io(_)
            | ureq::Error::Protocol(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
    );
    let message = match &error {
        ureq::Error::Timeout(_) => format!("{endpoint}: no answer in time ({error})"),
        ureq::Error::Io(_) | ureq::Error::Protocol(_) => format!("{endpoint}: the connection broke ({error})"),
        _ => format!("{endpoint}: {error}"),
    };
    // The transport's own message may quote the URL it was given.
    let message = redact_urls(&message).into_owned();
    if transient {
        BackendError::Transient {
            message,
            retry_after: None,
        }
    } else {
        BackendError::Other(anyhow::anyhow!(message))
    }
}

/// GitLab's explanation in an error body: `{"message": ...}` (a string, or an object of field
/// errors) or Grape's `{"error": ...}`; otherwise the start of the body.
pub(crate) fn message(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(value) => match value.get("message").or_else(|| value.get("error")) {
            Some(serde_json::Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => value.to_string(),
        },
        Err(_) => {
            let text = body.trim();
            match text.char_indices().nth(200) {
                Some((cut, _)) => format!("{}…", &text[..cut]),
                None => text.to_string(),
            }
        }
    }
}

/// `Retry-After`: a number of seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = at.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

pub(crate) fn reason(status: u16) -> &'static str {
    ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_escapes_paths() {
        assert_eq!(segment("gitlab-org/gitlab"), "gitlab-org%2Fgitlab");
        assert_eq!(segment("a b.c~d_e"), "a%20b.c~d_e");
    }

    #[test]
    fn message_reads_gitlab_and_grape_errors() {
        assert_eq!(
            message(r#"{"message":"400 Bad request - x is not found!"}"#),
            "400 Bad request - x is not found!"
        );
        assert_eq!(
            message(r#"{"error":"key, project are mutually exclusive"}"#),
            "key, project are mutually exclusive"
        );
        assert_eq!(message("<html>oops</html>"), "<html>oops</html>");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn token_is_never_shown() {
        let client = Client::new(
            "https://gitlab.example.com/",
            Token::new("glpat-secret".into()),
            "GITLAB_TOKEN",
            DEFAULT_TIMEOUT,
        );
        let shown = format!("{client:?}");
        assert!(!shown.contains("glpat-secret"), "{shown}");
        assert!(shown.contains("https://gitlab.example.com/api/v4"), "{shown}");
        let refused = Response {
            status: 401,
            body: r#"{"message":"401 Unauthorized"}"#.into(),
            retry_after: None,
            location: None,
        };
        let error = client.failure("list the features", &refused).to_string();
        assert!(
            !error.contains("glpat-secret") && error.contains("`GITLAB_TOKEN`"),
            "{error}"
        );
    }
}

//! Asks Prometheus the queries of metric guards (`crate::guard`) through its HTTP API:
//! `GET <url>/api/v1/query?query=...&time=...`, an instant query at the time of the run, since a
//! guard's window is written in its query (`[15m]`).
//!
//! Every failure becomes an answer, never an error: a server that cannot be reached (after the
//! retries of `crate::sync::retrying`), refuses the query or answers something else than a
//! vector or a scalar gives `guard::Outcome::Unreachable`, which holds the step. The token, when
//! `prometheus.token_env` names one, goes only into the `Authorization` header.

use std::time::Duration;

use crate::backends::gitlab::client::{Client, DEFAULT_TIMEOUT, Token, segment};
use crate::config::Config;
use crate::guard::{self, Check, Verdict};
use crate::sync::{RetryPolicy, retrying};

/// The verdict on each of `checks`, asked of the config's Prometheus at `now`.
pub fn evaluate(config: &Config, checks: &[Check], now: jiff::Timestamp, retry: &RetryPolicy) -> Vec<Verdict> {
    if checks.is_empty() {
        return Vec::new();
    }
    let client = client(config);
    checks
        .iter()
        .map(|check| {
            let answer = client
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|client| query(client, &check.query, now, retry));
            guard::judge(check, answer)
        })
        .collect()
}

/// The client for `prometheus` in the config, or why there is none.
fn client(config: &Config) -> Result<Client, String> {
    let Some(settings) = &config.prometheus else {
        return Err("flagops.yml has no `prometheus` section".to_string());
    };
    let token = match &settings.token_env {
        Some(variable) => match std::env::var(variable) {
            Ok(value) if !value.is_empty() => Some(("Authorization", Token::new(format!("Bearer {value}")))),
            _ => {
                return Err(format!(
                    "`{variable}` is not set\nhelp: set `{variable}` to the Prometheus token"
                ));
            }
        },
        None => None,
    };
    let timeout = settings.timeout_seconds.map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    Ok(Client::endpoint(
        &settings.url,
        token,
        settings.token_env.as_deref().unwrap_or(""),
        false,
        timeout,
    ))
}

/// The values of the series `query` returns at `now`, as Prometheus writes them.
fn query(client: &Client, query: &str, now: jiff::Timestamp, retry: &RetryPolicy) -> Result<Vec<String>, String> {
    let path = format!(
        "/api/v1/query?query={}&time={}",
        segment(query),
        segment(&now.to_string())
    );
    let response = retrying(retry, "querying Prometheus", || {
        let response = client.get(&path)?;
        if response.status == 429 || response.status >= 500 {
            return Err(crate::backends::BackendError::Transient {
                message: format!("Prometheus answered {}: {}", response.status, error_of(&response.body)),
                retry_after: response.retry_after,
            });
        }
        Ok(response)
    })
    .map_err(|error| crate::sync::error_chain(&anyhow::Error::new(error)))?;
    if response.status != 200 {
        return Err(format!(
            "Prometheus answered {}: {}",
            response.status,
            error_of(&response.body)
        ));
    }
    values(&response.body)
}

/// The values in a successful answer: each series of a vector, or the scalar.
fn values(body: &str) -> Result<Vec<String>, String> {
    let answer: serde_json::Value = serde_json::from_str(body)
        .map_err(|error| format!("Prometheus answered something that is not JSON: {error}"))?;
    let data = &answer["data"];
    let value = |sample: &serde_json::Value| sample[1].as_str().map(str::to_string);
    match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .map(|series| series.iter().filter_map(|one| value(&one["value"])).collect())
            .ok_or_else(|| "Prometheus answered a vector without a result".to_string()),
        Some("scalar") => Ok(value(&data["result"]).into_iter().collect()),
        other => Err(format!(
            "the query gives {}, not an instant vector or a scalar\nhelp: write a query whose value is a number, such as `sum(rate(...[15m]))`",
            other.unwrap_or("nothing")
        )),
    }
}

/// Prometheus's explanation in an error body (`{"status":"error","error":...}`).
fn error_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_vectors_and_scalars() {
        let vector = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0.5"]},{"metric":{"a":"b"},"value":[1,"NaN"]}]}}"#;
        assert_eq!(values(vector).unwrap(), ["0.5", "NaN"]);
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"3"]}}"#;
        assert_eq!(values(scalar).unwrap(), ["3"]);
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(values(matrix).unwrap_err().contains("matrix"));
    }
}

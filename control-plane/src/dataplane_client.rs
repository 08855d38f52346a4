//! A blocking client of one data plane's admin API. Each call is bounded by a timeout;
//! errors say whether a retry can help, and never carry the token.

use crate::targets::Target;
use riptide_proto::state::StateDocument;
use serde_json::Value;
use std::time::Duration;
use thiserror::Error;

/// Largest answer read: a state document may be up to 16 MiB on the data plane.
const BODY_SIZE_MAX: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClientError {
    /// Connection refused, reset, timed out: the data plane may come back.
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("admin token refused (HTTP 401)")]
    Unauthorized,
    /// A state push older than the version in force.
    #[error("holds version {current}, newer than {offered}")]
    Conflict { current: u64, offered: u64 },
    /// A 4xx other than 401 and 409: the request itself is wrong.
    #[error("refused (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    /// A 5xx: the data plane could not do it now (e.g. its ledger is down).
    #[error("failed (HTTP {status}): {message}")]
    Server { status: u16, message: String },
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

impl ClientError {
    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClientError::Unreachable(_) | ClientError::Server { .. }
        )
    }
}

/// What a data plane answered to a state push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acknowledgement {
    pub version: u64,
    /// False when it already had this version.
    pub changed: bool,
}

pub struct DataplaneClient {
    target: Target,
    agent: ureq::Agent,
}

impl DataplaneClient {
    pub fn new(target: Target, timeout: Duration) -> DataplaneClient {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            // A redirect could carry the token elsewhere; admin APIs do not redirect.
            .max_redirects(0)
            .build();
        DataplaneClient {
            target,
            agent: ureq::Agent::new_with_config(config),
        }
    }

    pub fn url(&self) -> &str {
        &self.target.url
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Result<Value, ClientError> {
        let (status, body) = self.call("GET", "/v1/status", None)?;
        expect_json(status, &body)
    }

    /// The version in force, from `GET /v1/status` (cheaper than the whole state).
    pub fn version(&self) -> Result<u64, ClientError> {
        let status = self.status()?;
        status["version"]
            .as_u64()
            .ok_or_else(|| ClientError::Protocol("status without a version".into()))
    }

    /// `GET /v1/state`.
    pub fn state(&self) -> Result<StateDocument, ClientError> {
        let (status, body) = self.call("GET", "/v1/state", None)?;
        if status != 200 {
            return Err(status_error(status, &body));
        }
        StateDocument::from_json(&body).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// `PUT /v1/state`.
    pub fn put_state(&self, document: &StateDocument) -> Result<Acknowledgement, ClientError> {
        let body = serde_json::to_vec(document)
            .map_err(|e| ClientError::Protocol(format!("cannot encode the state: {e}")))?;
        let (status, answer) = self.call("PUT", "/v1/state", Some(&body))?;
        if status == 409 {
            let current = parse_json(&answer)?["version"].as_u64().unwrap_or(0);
            return Err(ClientError::Conflict {
                current,
                offered: document.version,
            });
        }
        let answer = expect_json(status, &answer)?;
        let version = answer["version"]
            .as_u64()
            .ok_or_else(|| ClientError::Protocol("acknowledgement without a version".into()))?;
        // Applied, with something the operator must know (an initial liquidity
        // changed after its deposit, which moves nothing by itself).
        for notice in answer["notices"].as_array().into_iter().flatten() {
            eprintln!(
                "{}: notice: {}",
                self.url(),
                notice.as_str().unwrap_or_default()
            );
        }
        Ok(Acknowledgement {
            version,
            changed: answer["changed"].as_bool().unwrap_or(true),
        })
    }

    /// `POST /v1/liquidity`; true when the transfer was made now, false when the key
    /// had already made it.
    pub fn move_liquidity(&self, request: &Value) -> Result<bool, ClientError> {
        let body = serde_json::to_vec(request)
            .map_err(|e| ClientError::Protocol(format!("cannot encode the request: {e}")))?;
        let (status, answer) = self.call("POST", "/v1/liquidity", Some(&body))?;
        let answer = expect_json(status, &answer)?;
        answer["created"]
            .as_bool()
            .ok_or_else(|| ClientError::Protocol("answer without `created`".into()))
    }

    /// `GET /v1/balances`.
    pub fn balances(&self) -> Result<Value, ClientError> {
        let (status, body) = self.call("GET", "/v1/balances", None)?;
        expect_json(status, &body)
    }

    /// `GET path`, answered with 200 and JSON.
    pub fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        let (status, body) = self.call("GET", path, None)?;
        expect_json(status, &body)
    }

    /// `POST path` with a JSON body, answered with `expected` (200 or 201) and JSON.
    pub fn post_json(
        &self,
        path: &str,
        request: &Value,
        expected: u16,
    ) -> Result<Value, ClientError> {
        let body = serde_json::to_vec(request)
            .map_err(|e| ClientError::Protocol(format!("cannot encode the request: {e}")))?;
        let (status, answer) = self.call("POST", path, Some(&body))?;
        expect_status(status, expected, &answer)
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let url = format!("{}{path}", self.target.url);
        let authorization = self.target.token.authorization();
        let result = match (method, body) {
            ("GET", _) => self
                .agent
                .get(&url)
                .header("Authorization", &authorization)
                .call(),
            ("PUT", Some(body)) => self
                .agent
                .put(&url)
                .header("Authorization", &authorization)
                .content_type("application/json")
                .send(body),
            ("POST", Some(body)) => self
                .agent
                .post(&url)
                .header("Authorization", &authorization)
                .content_type("application/json")
                .send(body),
            _ => return Err(ClientError::Protocol(format!("unsupported {method}"))),
        };
        let mut response = result.map_err(transport_error)?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(BODY_SIZE_MAX)
            .read_to_vec()
            .map_err(transport_error)?;
        Ok((status, body))
    }
}

fn transport_error(error: ureq::Error) -> ClientError {
    match error {
        ureq::Error::BodyExceedsLimit(limit) => {
            ClientError::Protocol(format!("answer larger than {limit} bytes"))
        }
        other => ClientError::Unreachable(other.to_string()),
    }
}

fn parse_json(body: &[u8]) -> Result<Value, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::Protocol(format!("not JSON: {e}")))
}

fn expect_json(status: u16, body: &[u8]) -> Result<Value, ClientError> {
    expect_status(status, 200, body)
}

fn expect_status(status: u16, expected: u16, body: &[u8]) -> Result<Value, ClientError> {
    if (200..300).contains(&status) && status != expected {
        return Err(ClientError::Protocol(format!(
            "HTTP {status} where {expected} was expected"
        )));
    }
    if status != expected {
        return Err(status_error(status, body));
    }
    parse_json(body)
}

/// The error for a non-200 answer; the data plane's `{"error": ...}` is its message.
fn status_error(status: u16, body: &[u8]) -> ClientError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    match status {
        401 => ClientError::Unauthorized,
        500..=599 => ClientError::Server { status, message },
        _ => ClientError::Refused { status, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_errors_carry_the_data_plane_message() {
        assert_eq!(
            status_error(400, br#"{"error": "peers[0].asset: unknown asset"}"#),
            ClientError::Refused {
                status: 400,
                message: "peers[0].asset: unknown asset".into()
            }
        );
        assert_eq!(status_error(401, b""), ClientError::Unauthorized);
        let server = status_error(503, b"ledger down");
        assert!(server.is_retryable());
        assert!(!ClientError::Unauthorized.is_retryable());
        assert!(ClientError::Unreachable("refused".into()).is_retryable());
    }

    #[test]
    fn creations_expect_their_own_status() {
        assert_eq!(
            expect_status(201, 201, br#"{"id": "a"}"#),
            Ok(serde_json::json!({"id": "a"}))
        );
        assert!(matches!(
            expect_status(200, 201, b"{}"),
            Err(ClientError::Protocol(_))
        ));
        assert_eq!(
            expect_status(502, 201, br#"{"error": "SPSP: HTTP 404"}"#),
            Err(ClientError::Server {
                status: 502,
                message: "SPSP: HTTP 404".into()
            })
        );
    }
}

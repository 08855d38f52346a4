//! A blocking client of one data plane's admin API. Each call is bounded by a timeout;
//! errors say whether a retry can help, and never carry the token.

use crate::limits::ANSWER_SIZE_MAX;
use crate::targets::Target;
use riptide_proto::admin_api::{
    BalancesReport, ErrorBody, LiquidityAnswer, LiquidityRequest, StateApplied, StatusReport,
    PATH_BALANCES, PATH_LIQUIDITY, PATH_STATE, PATH_STATUS,
};
use riptide_proto::state::StateDocument;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;
use thiserror::Error;

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

    pub fn status(&self) -> Result<StatusReport, ClientError> {
        self.get(PATH_STATUS)
    }

    pub fn version(&self) -> Result<u64, ClientError> {
        Ok(self.status()?.version)
    }

    pub fn state(&self) -> Result<StateDocument, ClientError> {
        let (status, body) = self.call("GET", PATH_STATE, None)?;
        if status != 200 {
            return Err(status_error(status, &body));
        }
        StateDocument::from_json(&body).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Offers `document`; a data plane holding a newer version refuses it (409).
    pub fn put_state(&self, document: &StateDocument) -> Result<StateApplied, ClientError> {
        let body = encode(document)?;
        let (status, answer) = self.call("PUT", PATH_STATE, Some(&body))?;
        if status == 409 {
            let refusal: ErrorBody = decode(&answer)?;
            return Err(ClientError::Conflict {
                current: refusal.version.unwrap_or(0),
                offered: document.version,
            });
        }
        let applied: StateApplied = expect_status(status, 200, &answer)?;
        for notice in &applied.notices {
            eprintln!("{}: notice: {notice}", self.url());
        }
        Ok(applied)
    }

    /// Whether the move was made now (false: its key had made it already).
    pub fn move_liquidity(&self, request: &LiquidityRequest) -> Result<bool, ClientError> {
        let answer: LiquidityAnswer = self.post(PATH_LIQUIDITY, request, 200)?;
        Ok(answer.created)
    }

    pub fn balances(&self) -> Result<BalancesReport, ClientError> {
        self.get(PATH_BALANCES)
    }

    /// `GET path`, answered 200 with a `T`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let (status, body) = self.call("GET", path, None)?;
        expect_status(status, 200, &body)
    }

    /// `POST path` with `request`, answered `expected` with a `T`.
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        request: &B,
        expected: u16,
    ) -> Result<T, ClientError> {
        let body = encode(request)?;
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
            .limit(ANSWER_SIZE_MAX)
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

fn encode<B: Serialize>(request: &B) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(request)
        .map_err(|e| ClientError::Protocol(format!("cannot encode the request: {e}")))
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::Protocol(format!("answer: {e}")))
}

fn expect_status<T: DeserializeOwned>(
    status: u16,
    expected: u16,
    body: &[u8],
) -> Result<T, ClientError> {
    if (200..300).contains(&status) && status != expected {
        return Err(ClientError::Protocol(format!(
            "HTTP {status} where {expected} was expected"
        )));
    }
    if status != expected {
        return Err(status_error(status, body));
    }
    decode(body)
}

/// The error for a non-200 answer; the data plane's `{"error": ...}` is its message.
fn status_error(status: u16, body: &[u8]) -> ClientError {
    let message = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|refusal| refusal.error)
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
            expect_status::<serde_json::Value>(200, 201, b"{}"),
            Err(ClientError::Protocol(_))
        ));
        assert!(matches!(
            expect_status::<StatusReport>(200, 200, br#"{"shards": 1}"#),
            Err(ClientError::Protocol(_))
        ));
        assert_eq!(
            expect_status::<serde_json::Value>(502, 201, br#"{"error": "SPSP: HTTP 404"}"#),
            Err(ClientError::Server {
                status: 502,
                message: "SPSP: HTTP 404".into()
            })
        );
    }
}

//! ILP-over-HTTP client: one keep-alive pool per peer endpoint, per shard. hyper's
//! HTTP/1 `SendRequest` is not `Clone`, so a request checks a connection out and
//! puts it back once the response body is read.

use super::io::HyperStream;
use crate::connector::snapshot::OutgoingEndpoint;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use std::cell::RefCell;
use std::collections::HashMap;
use thiserror::Error;

/// Idle connections kept per endpoint; more are closed after use.
const IDLE_CONNECTIONS_MAX: usize = 256;
/// Largest reply body accepted from a peer: an ILP reply is at most about 41 KB.
const REPLY_SIZE_MAX: usize = 64 * 1024;

#[derive(Debug, Error)]
pub enum PeerCallError {
    #[error("connect to {authority}: {source}")]
    Connect {
        authority: String,
        source: std::io::Error,
    },
    #[error("HTTP handshake: {0}")]
    Handshake(hyper::Error),
    #[error("request: {0}")]
    Request(hyper::Error),
    #[error("peer answered HTTP {0}")]
    Status(u16),
    #[error("reply body: {0}")]
    Body(String),
}

/// Keep-alive connections of one shard, by endpoint authority.
#[derive(Default)]
pub struct PeerClient {
    idle: RefCell<HashMap<String, Vec<SendRequest<Full<Bytes>>>>>,
}

impl PeerClient {
    /// POSTs `prepare` to the endpoint and returns the reply body of a 200.
    pub async fn send(
        &self,
        endpoint: &OutgoingEndpoint,
        prepare: Vec<u8>,
    ) -> Result<Bytes, PeerCallError> {
        let mut sender = self.checkout(endpoint).await?;
        let request = hyper::Request::post(endpoint.path.as_str())
            .header(hyper::header::HOST, endpoint.authority.as_str())
            .header(
                hyper::header::AUTHORIZATION,
                endpoint.authorization.as_str(),
            )
            .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
            .header(hyper::header::ACCEPT, "application/octet-stream")
            .body(Full::new(Bytes::from(prepare)))
            .map_err(|e| PeerCallError::Body(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(PeerCallError::Request)?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), REPLY_SIZE_MAX)
            .collect()
            .await
            .map_err(|e| PeerCallError::Body(e.to_string()))?
            .to_bytes();
        self.checkin(&endpoint.authority, sender);
        if status != 200 {
            return Err(PeerCallError::Status(status));
        }
        Ok(body)
    }

    async fn checkout(
        &self,
        endpoint: &OutgoingEndpoint,
    ) -> Result<SendRequest<Full<Bytes>>, PeerCallError> {
        loop {
            // The borrow ends before any await: a RefCell borrow held across an await
            // would panic when another task of this shard uses the pool.
            let candidate = self
                .idle
                .borrow_mut()
                .get_mut(&endpoint.authority)
                .and_then(Vec::pop);
            let Some(mut sender) = candidate else { break };
            if sender.is_closed() {
                continue;
            }
            if sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        connect(&endpoint.authority).await
    }

    fn checkin(&self, authority: &str, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let pool = idle.entry(authority.to_owned()).or_default();
        if pool.len() < IDLE_CONNECTIONS_MAX {
            pool.push(sender);
        }
    }
}

async fn connect(authority: &str) -> Result<SendRequest<Full<Bytes>>, PeerCallError> {
    let stream = glommio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| PeerCallError::Connect {
            authority: authority.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?;
    // Ignoring a failure here only costs latency, never correctness.
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(HyperStream::new(stream))
        .await
        .map_err(PeerCallError::Handshake)?;
    glommio::spawn_local(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "peer connection ended");
        }
    })
    .detach();
    Ok(sender)
}

//! SPSP (RFC 0009) on `public_port`: `GET /<wallet>` with
//! `Accept: application/spsp4+json` answers a fresh STREAM destination and shared
//! secret for the wallet, as Rafiki does for wallet addresses. Each query mints a new
//! connection token, so two clients never share a connection.
//!
//! * `Receipt-Nonce` and `Receipt-Secret` (base64, 16 and 32 bytes) seal receipt
//!   parameters into the token; both or neither, else 400.
//! * 404 with `InvalidReceiverError` for an unknown wallet; 406 without the SPSP
//!   media type in `Accept`.
//! * CORS for Web Monetization on GET and OPTIONS.

use super::client::GetError;
use super::gate::Port;
use crate::limits::ANSWER_SIZE_MAX;
use crate::shard::Shard;
use crate::shared::Shared;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use ring::rand::{SecureRandom, SystemRandom};
use riptide_proto::connector::snapshot::Snapshot;
use riptide_proto::spsp::decode_exact;
use riptide_proto::stream::{ReceiptSetup, ServerSecret, TokenDetails, IV_SIZE};
use std::convert::Infallible;
use std::rc::Rc;

const SPSP_MEDIA_TYPE: &str = "application/spsp4+json";

/// What the SPSP server needs: the shard (snapshot, shutdown) and the secret that
/// seals tokens.
pub struct Spsp {
    pub shard: Rc<Shard>,
    pub server_secret: ServerSecret,
    pub random: SystemRandom,
}

pub async fn serve(spsp: Rc<Spsp>, listener: glommio::net::TcpListener) {
    let stopping = || spsp.shard.shutting_down();
    let gate = (&spsp.shard.shared.gate, Port::Public);
    super::io::accept_until(&listener, gate, stopping, |stream, permit| {
        let spsp = Rc::clone(&spsp);
        let tls = spsp.shard.shared.tls_ports.public.clone();
        super::io::spawn_hyper_connection(stream, permit, tls, move |clock, _source| {
            hyper::service::service_fn(move |request| {
                clock.head_complete();
                let response = respond(&spsp, &request);
                clock.await_request();
                async move { Ok::<_, Infallible>(response) }
            })
        });
    })
    .await;
}

fn respond(spsp: &Spsp, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let snapshot = spsp.shard.shared.snapshot.load();
    let mut response = answer(spsp, &snapshot, request);
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("access-control-allow-origin"),
        HeaderValue::from_static("*"),
    );
    headers.insert(
        HeaderName::from_static("access-control-allow-headers"),
        HeaderValue::from_static("web-monetization-id"),
    );
    response
}

fn answer(spsp: &Spsp, snapshot: &Snapshot, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    match *request.method() {
        Method::OPTIONS => return status_only(StatusCode::NO_CONTENT),
        Method::GET => {}
        _ => return status_only(StatusCode::METHOD_NOT_ALLOWED),
    }
    let wallet_id = request.uri().path().trim_start_matches('/');
    let Some(wallet) = snapshot.wallet(wallet_id) else {
        return spsp_json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"id": "InvalidReceiverError", "message": "Invalid receiver ID"}),
        );
    };
    if !accepts_spsp(request) {
        return status_only(StatusCode::NOT_ACCEPTABLE);
    }
    let receipt = match receipt_setup(request) {
        Ok(receipt) => receipt,
        Err(message) => {
            return spsp_json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"id": "InvalidReceiptHeaders", "message": message}),
            )
        }
    };
    let asset = snapshot.asset(wallet.asset);
    let details = TokenDetails {
        payment_tag: Some(wallet.id.clone()),
        receipt,
        asset: Some((asset.code.clone(), asset.scale)),
    };
    let mut iv = [0u8; IV_SIZE];
    if spsp.random.fill(&mut iv).is_err() {
        return status_only(StatusCode::SERVICE_UNAVAILABLE);
    }
    match spsp
        .server_secret
        .generate_credentials(&snapshot.own_address, iv, &details)
    {
        Ok(credentials) => {
            let mut response = spsp_json(
                StatusCode::OK,
                serde_json::json!({
                    "destination_account": credentials.destination,
                    "shared_secret": STANDARD.encode(credentials.shared_secret),
                    "receipts_enabled": details.receipt.is_some(),
                }),
            );
            response.headers_mut().insert(
                hyper::header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            );
            response
        }
        Err(error) => {
            tracing::warn!(%error, wallet = %wallet.id, "SPSP credentials could not be made");
            status_only(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

fn accepts_spsp(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get_all(hyper::header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|text| text.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(SPSP_MEDIA_TYPE))
        })
}

/// Both receipt headers, or neither.
fn receipt_setup(request: &Request<Incoming>) -> Result<Option<ReceiptSetup>, &'static str> {
    let header = |name: &str| request.headers().get(name).map(HeaderValue::as_bytes);
    match (header("receipt-nonce"), header("receipt-secret")) {
        (None, None) => Ok(None),
        (Some(nonce), Some(secret)) => {
            let nonce =
                decode_exact::<16>(nonce).ok_or("Receipt-Nonce must be 16 bytes in base64")?;
            let secret =
                decode_exact::<32>(secret).ok_or("Receipt-Secret must be 32 bytes in base64")?;
            Ok(Some(ReceiptSetup { nonce, secret }))
        }
        _ => Err("Receipt-Nonce and Receipt-Secret must be given together"),
    }
}

fn spsp_json(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(SPSP_MEDIA_TYPE),
    );
    response
}

fn status_only(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// Why an SPSP query gave no credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpspError {
    #[error("SPSP URL must be http://host:port/path: {0}")]
    Url(String),
    #[error("SPSP query to {0} failed: {1}")]
    Transport(String, String),
    #[error("SPSP server answered HTTP {0}")]
    Status(u16),
    #[error("SPSP answer is not valid: {0}")]
    Answer(String),
}

/// Asks an SPSP server (`http://` or `https://`) for a destination
/// and shared secret; the secret may be in either base64 alphabet.
pub async fn query(shared: &Shared, url: &str) -> Result<(String, Vec<u8>), SpspError> {
    let accept = "application/spsp4+json, application/spsp+json";
    let (status, body) = super::client::get(shared, url, accept, ANSWER_SIZE_MAX)
        .await
        .map_err(|error| match error {
            GetError::Url(url) => SpspError::Url(url),
            GetError::Transport(authority, message) => SpspError::Transport(authority, message),
        })?;
    if status != 200 {
        return Err(SpspError::Status(status));
    }
    parse_answer(&body)
}

/// Reads an SPSP answer (see [`riptide_proto::spsp::parse_answer`]).
pub fn parse_answer(body: &[u8]) -> Result<(String, Vec<u8>), SpspError> {
    riptide_proto::spsp::parse_answer(body).map_err(|e| SpspError::Answer(e.to_string()))
}

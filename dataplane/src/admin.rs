//! Admin API on `admin_port`, served by shard 0. Every route but `GET /healthz` needs
//! `Authorization: Bearer <admin_token>`.
//!
//! - `PUT /v1/state`: replace peers, routes, rates, limits and wallets at once. The
//!   body is a JSON state document with a `version`; a higher version is applied
//!   (every shard switches, packets in flight finish on their snapshot), the same
//!   version is acknowledged without change, a lower one is refused with 409.
//! - `GET /v1/state`: the document in force.
//! - `GET /v1/status`: version, shards, packets by peer and outcome.
//! - `GET /metrics`: Prometheus text.
//! - `POST /v1/liquidity`: deposit to or withdraw from a peer's or an asset's
//!   liquidity account through the settlement account, idempotent by key.
//! - `GET /v1/balances`: every account of the state with its balances.
//! - `POST /v1/incoming-payments`, `GET /v1/incoming-payments/{id}`,
//!   `POST /v1/incoming-payments/{id}/credentials`: incoming payments in the
//!   receipt store, and STREAM credentials to pay them (fresh ones on each ask).
//! - `POST /v1/quotes`, `POST /v1/outgoing-payments`, `GET /v1/outgoing-payments/{id}`:
//!   quotes by rate probe and payments over STREAM from a wallet's account.

use crate::config::StateDocument;
use crate::http::io::HyperStream;
use crate::ledger::holds::LedgerFailure;
use crate::limits::{AUDIT_JOURNAL_MAX, STATE_BODY_SIZE_MAX};
use crate::metrics::render_prometheus;
use crate::shard::Shard;
use crate::store::{StoreAnswer, StoreOp};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use riptide_proto::admin_api::{
    AccountBalance, BalancesReport, ErrorBody, Health, LiquidityAnswer, LiquidityRequest,
    StateApplied, StatusReport, PATH_AUDIT, PATH_BALANCES, PATH_INCOMING_PAYMENTS, PATH_LIQUIDITY,
    PATH_OUTGOING_PAYMENTS, PATH_QUOTES, PATH_STATE, PATH_STATUS,
};
use riptide_proto::connector::snapshot::Snapshot;
use riptide_proto::ledger::audit::{self, WalletReceipts};
use riptide_proto::limits::REQUEST_SIZE_MAX;
use serde::Serialize;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

mod incoming_payments;
mod outgoing_payments;

/// What the admin API needs besides the shard.
pub struct Admin {
    pub shard: Rc<Shard>,
    pub token: String,
    pub node: crate::config::NodeConfig,
    /// The document in force; only the admin task touches it, the lock is for `Send`.
    pub document: Arc<Mutex<StateDocument>>,
    /// Quotes and outgoing payments made through this admin API.
    pub payments: Rc<crate::outgoing_payments::Payments>,
}

pub async fn serve(admin: Rc<Admin>, listener: glommio::net::TcpListener) {
    let stopping = || admin.shard.shutting_down();
    crate::http::io::accept_until(&listener, stopping, |stream| {
        serve_connection(Rc::clone(&admin), stream)
    })
    .await;
}

fn serve_connection(admin: Rc<Admin>, stream: glommio::net::TcpStream) {
    glommio::spawn_local(async move {
        let service = hyper::service::service_fn(move |request| {
            let admin = Rc::clone(&admin);
            async move { Ok::<_, Infallible>(route(&admin, request).await) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(HyperStream::new(stream), service)
            .await;
    })
    .detach();
}

/// An answer of the admin API (a type of `riptide_proto::admin_api`) as JSON.
fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response<Full<Bytes>> {
    let body = match serde_json::to_vec(body) {
        Ok(body) => body,
        Err(e) => {
            let fallback = format!("{{\"error\":{:?}}}", e.to_string());
            return plain_json(StatusCode::INTERNAL_SERVER_ERROR, fallback.into_bytes());
        }
    };
    plain_json(status, body)
}

fn plain_json(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = ErrorBody {
        error: message.to_owned(),
        version: None,
    };
    json_response(status, &body)
}

fn authorized(admin: &Admin, request: &Request<Incoming>) -> bool {
    // Two tokens in one request are refused, as on the packet port.
    let mut values = request
        .headers()
        .get_all(hyper::header::AUTHORIZATION)
        .iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let expected = format!("Bearer {}", admin.token);
    let given = value.as_bytes();
    // Constant time in the content; the length of the token is not a secret worth
    // the complexity of hiding.
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn route(admin: &Admin, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    if request.method() == Method::GET && path == "/healthz" {
        let health = Health {
            status: "ok".into(),
        };
        return json_response(StatusCode::OK, &health);
    }
    if !authorized(admin, &request) {
        return error(StatusCode::UNAUTHORIZED, "admin token required");
    }
    match (request.method().clone(), path.as_str()) {
        (Method::PUT, PATH_STATE) => put_state(admin, request).await,
        (Method::GET, PATH_STATE) => get_state(admin),
        (Method::GET, PATH_STATUS) => status(admin),
        (Method::GET, "/metrics") => metrics(admin),
        (Method::POST, PATH_LIQUIDITY) => liquidity(admin, request).await,
        (Method::GET, PATH_BALANCES) => balances(admin).await,
        (Method::GET, PATH_AUDIT) => audit(admin, request.uri().query()).await,
        (Method::POST, PATH_INCOMING_PAYMENTS) => incoming_payments::create(admin, request).await,
        (Method::POST, PATH_QUOTES) => outgoing_payments::quote(admin, request).await,
        (Method::POST, PATH_OUTGOING_PAYMENTS) => outgoing_payments::pay(admin, request).await,
        (method, p) => match (
            sub_path(p, PATH_OUTGOING_PAYMENTS),
            sub_path(p, PATH_INCOMING_PAYMENTS),
        ) {
            (Some(id), _) if method == Method::GET => outgoing_payments::get(admin, id),
            (_, Some(rest)) => match (method, rest.strip_suffix("/credentials")) {
                (Method::GET, None) => incoming_payments::get(admin, rest).await,
                (Method::POST, Some(id)) => incoming_payments::credentials(admin, id).await,
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            },
            _ if [
                PATH_STATE,
                PATH_STATUS,
                "/metrics",
                PATH_LIQUIDITY,
                PATH_BALANCES,
                PATH_AUDIT,
            ]
            .contains(&p) =>
            {
                error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
            }
            _ => error(StatusCode::NOT_FOUND, "no such admin route"),
        },
    }
}

/// What follows `{collection}/` in `path`.
fn sub_path<'a>(path: &'a str, collection: &str) -> Option<&'a str> {
    path.strip_prefix(collection)?.strip_prefix('/')
}

async fn put_state(admin: &Admin, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let body = match Limited::new(request.into_body(), STATE_BODY_SIZE_MAX)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "state document too large or unreadable",
            )
        }
    };
    let document = match StateDocument::from_json(&body) {
        Ok(document) => document,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let shared = &admin.shard.shared;
    let current = shared.snapshot.load().version;
    if document.version < current {
        let message = format!(
            "version {} is older than the version in force, {current}",
            document.version
        );
        let refusal = ErrorBody {
            error: message,
            version: Some(current),
        };
        return json_response(StatusCode::CONFLICT, &refusal);
    }
    if document.version == current {
        let unchanged = StateApplied {
            version: current,
            changed: false,
            notices: Vec::new(),
        };
        return json_response(StatusCode::OK, &unchanged);
    }
    let snapshot = match Snapshot::build(&admin.node.ilp_address, &document) {
        Ok(snapshot) => snapshot,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let notices = match shared.ledger.ensure_accounts(&snapshot, &document).await {
        Ok(notices) => notices,
        Err(e @ LedgerFailure::Unavailable(_)) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, &format!("ledger: {e}"))
        }
        // The ledger answered and refused: the state cannot apply as it is.
        Err(e @ LedgerFailure::Refused { .. }) => {
            return error(StatusCode::UNPROCESSABLE_ENTITY, &format!("ledger: {e}"))
        }
    };
    let version = snapshot.version;
    shared.snapshot.store(Arc::new(snapshot));
    if let Ok(mut in_force) = admin.document.lock() {
        *in_force = document;
    }
    tracing::info!(version, "state applied");
    let applied = StateApplied {
        version,
        changed: true,
        notices,
    };
    json_response(StatusCode::OK, &applied)
}

fn get_state(admin: &Admin) -> Response<Full<Bytes>> {
    match admin.document.lock() {
        Ok(document) => json_response(StatusCode::OK, &*document),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "state lock poisoned"),
    }
}

fn status(admin: &Admin) -> Response<Full<Bytes>> {
    let shared = &admin.shard.shared;
    let merged = shared.metrics.merged();
    let mut peers: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (peer, by_outcome) in &merged.packets {
        let entry = peers.entry(peer.clone()).or_default();
        for (outcome, count) in by_outcome {
            entry.insert(outcome.label(), *count);
        }
    }
    let snapshot = shared.snapshot.load();
    for peer in &snapshot.peers {
        peers.entry(peer.id.clone()).or_default();
    }
    let report = StatusReport {
        version: snapshot.version,
        ilp_address: snapshot.own_address.clone(),
        shards: shared.shard_count,
        peers,
        ledger_failures: merged
            .ledger_failures
            .iter()
            .map(|(kind, count)| ((*kind).to_owned(), *count))
            .collect(),
    };
    json_response(StatusCode::OK, &report)
}

fn metrics(admin: &Admin) -> Response<Full<Bytes>> {
    let shared = &admin.shard.shared;
    let text = render_prometheus(
        &shared.metrics.merged(),
        shared.snapshot.load().version,
        shared.shard_count as usize,
    );
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

async fn liquidity(admin: &Admin, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let body = match read_body(request, REQUEST_SIZE_MAX).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let move_request = match LiquidityRequest::from_json(&body) {
        Ok(parsed) => parsed,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let shared = &admin.shard.shared;
    let snapshot = shared.snapshot.load_full();
    match shared.ledger.move_liquidity(&snapshot, &move_request).await {
        Ok(created) => json_response(StatusCode::OK, &LiquidityAnswer { created }),
        Err(LedgerFailure::Refused { result, .. }) => error(StatusCode::CONFLICT, &result),
        Err(other) => error(StatusCode::SERVICE_UNAVAILABLE, &other.to_string()),
    }
}

/// The body, or the response that refuses it.
async fn read_body(
    request: Request<Incoming>,
    size_max: usize,
) -> Result<Bytes, Response<Full<Bytes>>> {
    match Limited::new(request.into_body(), size_max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request too large or unreadable",
        )),
    }
}

/// Audits the chart of accounts: `?idle=true` when no traffic flows and every
/// pending timeout has passed, so that anything pending is a problem.
async fn audit(admin: &Admin, query: Option<&str>) -> Response<Full<Bytes>> {
    let idle = query.is_some_and(|q| q.split('&').any(|pair| pair == "idle=true"));
    let shared = &admin.shard.shared;
    let snapshot = shared.snapshot.load_full();
    let rows = match shared.ledger.balances(&snapshot).await {
        Ok(rows) => rows,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let journal = StoreOp::Unsettled {
        before_ms: u64::MAX,
        limit: AUDIT_JOURNAL_MAX,
    };
    let unsettled = match admin.shard.store().execute(journal).await {
        Ok(StoreAnswer::Unsettled(records)) => records.len(),
        other => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("receipt store: {other:?}"),
            )
        }
    };
    let wallets = match wallet_receipts(admin, &snapshot).await {
        Ok(wallets) => wallets,
        Err(message) => return error(StatusCode::SERVICE_UNAVAILABLE, &message),
    };
    let report = audit::audit(&rows, &wallets, unsettled, idle);
    json_response(StatusCode::OK, &report)
}

/// Each wallet's total in the receipt store and its deposits in the ledger.
async fn wallet_receipts(
    admin: &Admin,
    snapshot: &Snapshot,
) -> Result<Vec<WalletReceipts>, String> {
    if snapshot.wallets.is_empty() {
        return Ok(Vec::new());
    }
    let op = StoreOp::WalletTotals {
        wallets: snapshot.wallets.iter().map(|w| w.id.clone()).collect(),
    };
    let totals = match admin.shard.store().execute(op).await {
        Ok(StoreAnswer::WalletTotals(totals)) => totals,
        other => return Err(format!("receipt store: {other:?}")),
    };
    let deposits = admin
        .shard
        .shared
        .ledger
        .wallet_deposits(snapshot)
        .await
        .map_err(|e| e.to_string())?;
    Ok(snapshot
        .wallets
        .iter()
        .zip(totals)
        .map(|(wallet, store_total)| WalletReceipts {
            wallet: wallet.id.clone(),
            store_total,
            deposits: deposits.get(&wallet.account_id).copied().unwrap_or(0),
        })
        .collect())
}

async fn balances(admin: &Admin) -> Response<Full<Bytes>> {
    let shared = &admin.shard.shared;
    let snapshot = shared.snapshot.load_full();
    let rows = match shared.ledger.balances(&snapshot).await {
        Ok(rows) => rows,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let accounts = rows
        .iter()
        .map(|row| {
            let account = row.account.unwrap_or_default();
            AccountBalance {
                kind: row.kind.to_owned(),
                name: row.name.clone(),
                asset: row.asset.clone(),
                account_id: format!("{:032x}", row.account_id),
                exists: row.account.is_some(),
                credits_posted: account.credits_posted,
                debits_posted: account.debits_posted,
                credits_pending: account.credits_pending,
                debits_pending: account.debits_pending,
                balance: account.balance_posted(),
            }
        })
        .collect();
    let report = BalancesReport {
        version: snapshot.version,
        accounts,
    };
    json_response(StatusCode::OK, &report)
}

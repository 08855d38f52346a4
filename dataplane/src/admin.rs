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
use crate::http::deadline::ConnectionClock;
use crate::http::gate::Port;
use crate::ledger::holds::LedgerFailure;
use crate::limits::{
    AUDIT_JOURNAL_MAX, AUDIT_PAYMENTS_MAX, JOURNAL_WALLETS_PER_OP_MAX, STATE_BODY_SIZE_MAX,
};
use crate::metrics::{render_gate, render_prometheus, render_rates_feed, render_webhooks};
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
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
    /// Incoming payments created here, watched for their webhook events.
    pub watch: Rc<crate::webhooks::watch::Watch>,
}

pub async fn serve(admin: Rc<Admin>, listener: glommio::net::TcpListener) {
    let stopping = || admin.shard.shutting_down();
    let gate = (&admin.shard.shared.gate, Port::Admin);
    crate::http::io::accept_until(&listener, gate, stopping, |stream, permit| {
        let admin = Rc::clone(&admin);
        crate::http::io::spawn_hyper_connection(stream, permit, None, move |clock, source| {
            hyper::service::service_fn(move |request| {
                let (admin, clock) = (Rc::clone(&admin), Rc::clone(&clock));
                async move {
                    let response = serve_request(&admin, &clock, source, request).await;
                    Ok::<_, Infallible>(response)
                }
            })
        });
    })
    .await;
}

/// Checks the token on the head, reads the body under the body deadline, then
/// answers with no deadline running: an audit or a payment may take a while, and
/// must not be cut off half way. Nothing of a body is read before its token is
/// known good; a failed token closes the connection, after a wait once its source
/// has failed too often.
async fn serve_request(
    admin: &Admin,
    clock: &ConnectionClock,
    source: IpAddr,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    clock.head_complete();
    let (parts, body) = request.into_parts();
    // The health check needs no token, so it reads no body either.
    if parts.method == Method::GET && parts.uri.path() == "/healthz" {
        return route(admin, Request::from_parts(parts, Bytes::new())).await;
    }
    if !authorized(admin, &parts.headers) {
        let wait = admin.shard.shared.gate.auth_failed(source, Instant::now());
        if !wait.is_zero() {
            clock.answering();
            glommio::timer::sleep(wait).await;
            clock.answer_ready();
        }
        let mut refused = error(StatusCode::UNAUTHORIZED, "admin token required");
        refused.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        return refused;
    }
    let body = match Limited::new(body, STATE_BODY_SIZE_MAX).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return too_large(),
    };
    clock.answering();
    let response = route(admin, Request::from_parts(parts, body)).await;
    clock.await_request();
    response
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

fn authorized(admin: &Admin, headers: &hyper::HeaderMap) -> bool {
    // Two tokens in one request are refused, as on the packet port.
    let mut values = headers.get_all(hyper::header::AUTHORIZATION).iter();
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

async fn route(admin: &Admin, request: Request<Bytes>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    if request.method() == Method::GET && path == "/healthz" {
        let health = Health {
            status: "ok".into(),
        };
        return json_response(StatusCode::OK, &health);
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
            (Some(id), _) if method == Method::GET => outgoing_payments::get(admin, id).await,
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

async fn put_state(admin: &Admin, request: Request<Bytes>) -> Response<Full<Bytes>> {
    let body = request.into_body();
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
    // The rates feed's last good rates stay while the pushed state names the same
    // feed: a push must not take them away until the next fetch.
    let with_feed = shared.rates_feed.merged_into(&document);
    let compiled = with_feed.as_ref().unwrap_or(&document);
    let snapshot = match Snapshot::build(&admin.node.ilp_address, compiled) {
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
    shared.resolver.prefetch(outgoing_authorities(&snapshot));
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

/// The endpoints packets may go to, whose names the resolver looks up ahead.
pub fn outgoing_authorities(snapshot: &Snapshot) -> impl Iterator<Item = &str> {
    snapshot
        .peers
        .iter()
        .filter_map(|peer| peer.outgoing.as_ref())
        .map(|endpoint| endpoint.authority.as_str())
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
    let mut text = render_prometheus(
        &shared.metrics.merged(),
        shared.snapshot.load().version,
        shared.shard_count as usize,
    );
    render_gate(&mut text, &shared.gate);
    render_rates_feed(&mut text, shared.rates_feed.counts());
    render_webhooks(&mut text, &shared.webhooks.counts);
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

async fn liquidity(admin: &Admin, request: Request<Bytes>) -> Response<Full<Bytes>> {
    let Some(body) = read_body(request, REQUEST_SIZE_MAX) else {
        return too_large();
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

/// The body, unless larger than `size_max` (the connection read at most the
/// state document's limit).
fn read_body(request: Request<Bytes>, size_max: usize) -> Option<Bytes> {
    let body = request.into_body();
    (body.len() <= size_max).then_some(body)
}

fn too_large() -> Response<Full<Bytes>> {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request too large or unreadable",
    )
}

/// Audits the chart of accounts: `?idle=true` when no traffic flows and every
/// pending timeout has passed, so that anything pending is a problem.
async fn audit(admin: &Admin, query: Option<&str>) -> Response<Full<Bytes>> {
    let idle = query.is_some_and(|q| q.split('&').any(|pair| pair == "idle=true"));
    let shared = &admin.shard.shared;
    let snapshot = shared.snapshot.load_full();
    let rows = match balance_rows(admin, &snapshot, true).await {
        Ok(rows) => rows,
        Err(message) => return error(StatusCode::SERVICE_UNAVAILABLE, &message),
    };
    let unsettled = match unsettled_counts(admin, &snapshot).await {
        Ok(unsettled) => unsettled,
        Err(message) => return error(StatusCode::SERVICE_UNAVAILABLE, &message),
    };
    let wallets = match wallet_receipts(admin, &snapshot).await {
        Ok(wallets) => wallets,
        Err(message) => return error(StatusCode::SERVICE_UNAVAILABLE, &message),
    };
    let report = audit::audit(&rows, &wallets, unsettled, idle);
    json_response(StatusCode::OK, &report)
}

/// Counts in the wallets' journals (at most [`AUDIT_JOURNAL_MAX`]).
async fn unsettled_counts(admin: &Admin, snapshot: &Snapshot) -> Result<usize, String> {
    let wallets: Vec<String> = snapshot.wallets.iter().map(|w| w.id.clone()).collect();
    let mut unsettled = 0;
    for slice in wallets.chunks(JOURNAL_WALLETS_PER_OP_MAX) {
        let journal = StoreOp::Unsettled {
            wallets: slice.to_vec(),
            before_ms: u64::MAX,
            limit: AUDIT_JOURNAL_MAX - unsettled,
        };
        match admin.shard.store().execute(journal).await {
            Ok(StoreAnswer::Unsettled(records)) => unsettled += records.len(),
            other => return Err(format!("receipt store: {other:?}")),
        }
        if unsettled >= AUDIT_JOURNAL_MAX {
            break;
        }
    }
    Ok(unsettled)
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

/// The chart's balances, with the accounts of the open outgoing payments (at
/// most [`AUDIT_PAYMENTS_MAX`]), which hold money on its way out of wallets. With
/// `store_required` false, a receipt store that does not answer leaves those out
/// (the balances still show; an audit cannot do without them).
async fn balance_rows(
    admin: &Admin,
    snapshot: &Snapshot,
    store_required: bool,
) -> Result<Vec<riptide_proto::ledger::BalanceRow>, String> {
    let open = StoreOp::LapsedOutgoing {
        before_ms: u64::MAX,
        limit: AUDIT_PAYMENTS_MAX,
    };
    let payments = match admin.shard.store().execute(open).await {
        Ok(StoreAnswer::Lapsed(ids)) => ids,
        _ if !store_required => Vec::new(),
        other => return Err(format!("receipt store: {other:?}")),
    };
    admin
        .shard
        .shared
        .ledger
        .balances_with_payments(snapshot, &payments)
        .await
        .map_err(|e| e.to_string())
}

async fn balances(admin: &Admin) -> Response<Full<Bytes>> {
    let snapshot = admin.shard.shared.snapshot.load_full();
    let rows = match balance_rows(admin, &snapshot, false).await {
        Ok(rows) => rows,
        Err(message) => return error(StatusCode::SERVICE_UNAVAILABLE, &message),
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

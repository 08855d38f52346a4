//! What shard 0 looks at every `webhooks.check_interval_ms` for events nothing
//! else raises: incoming payments that have completed or expired (the watch list
//! and the payments are in the store, so a payment created or paid through any
//! data plane counts, and a restart forgets none),
//! and peers' and assets' liquidity at or below their `liquidity_threshold`. A
//! liquidity event goes out when the balance falls to the threshold, not on every
//! packet after: it goes out again only once the balance has risen above and
//! fallen back.

use super::{amount_json, time_json, Webhooks};
use crate::clock::sleep_unless;
use crate::limits::WATCHED_PAYMENTS_MAX;
use crate::shard::Shard;
use crate::store::{IncomingPayment, StoreAnswer, StoreOp};
use riptide_proto::admin_api::IncomingPaymentState;
use riptide_proto::connector::snapshot::Snapshot;
use riptide_proto::state::StateDocument;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which accounts are below their liquidity threshold now. The incoming payments
/// watched are in the store ([`StoreOp::WatchedPayments`]), not here: they
/// survive a restart, and any data plane sharing the store raises their events.
#[derive(Default)]
pub struct Watch {
    low: RefCell<HashSet<(&'static str, String)>>,
}

/// Runs on shard 0 until shutdown.
pub async fn run(
    shard: Rc<Shard>,
    watch: Rc<Watch>,
    document: Arc<Mutex<StateDocument>>,
    interval: Duration,
) {
    let webhooks = &shard.shared.webhooks;
    if !webhooks.enabled() {
        return;
    }
    // Bounded by shutdown: each turn sleeps the interval.
    while !shard.shutting_down() {
        sleep_unless(|| shard.shutting_down(), interval).await;
        check_payments(&shard, webhooks).await;
        let thresholds = match document.lock() {
            Ok(state) => Thresholds::of(&state),
            Err(_) => continue,
        };
        if !thresholds.is_empty() {
            check_liquidity(&shard, &watch, webhooks, &thresholds).await;
        }
    }
}

/// Reads the watched payments back (at most [`WATCHED_PAYMENTS_MAX`] a turn, drawn
/// at random when more wait); each that completed or expired leaves the watch
/// list, and the data plane whose removal took it off raises its event, so that
/// one event goes out however many data planes watch.
async fn check_payments(shard: &Shard, webhooks: &Webhooks) {
    let ports = shard.ports();
    let listed = ports.store.execute(StoreOp::WatchedPayments {
        limit: WATCHED_PAYMENTS_MAX,
    });
    let ids = match listed.await {
        Ok(StoreAnswer::Watched(ids)) => ids,
        Ok(other) => return tracing::warn!(?other, "watched payments: unexpected answer"),
        Err(error) => return tracing::debug!(%error, "watched payments not read; tried again"),
    };
    if ids.is_empty() {
        return;
    }
    let lookups = ids.iter().map(|id| {
        let op = StoreOp::GetPayment { id: id.clone() };
        async { ports.store.execute(op).await }
    });
    let answers = futures::future::join_all(lookups).await;
    let snapshot = shard.shared.snapshot.load();
    let now_ms = crate::clock::unix_now_ms();
    for (id, answer) in ids.iter().zip(answers) {
        let event = match answer {
            Ok(StoreAnswer::Payment(Some(payment))) => match payment.state(now_ms) {
                IncomingPaymentState::Completed => Some(("incoming_payment.completed", payment)),
                IncomingPaymentState::Expired => Some(("incoming_payment.expired", payment)),
                IncomingPaymentState::Pending => continue,
            },
            // Gone from the store (kept a day past its expiry): nothing to raise.
            Ok(_) => None,
            Err(error) => {
                tracing::debug!(%error, "incoming payment check failed; tried again");
                continue;
            }
        };
        let unwatch = ports.store.execute(StoreOp::Unwatch { id: id.clone() });
        match (unwatch.await, event) {
            (Ok(StoreAnswer::Unwatched(true)), Some((kind, payment))) => {
                webhooks.emit(kind, incoming_payment_data(&payment, &snapshot, now_ms));
            }
            (Ok(_), _) => {}
            (Err(error), _) => {
                tracing::debug!(%error, "incoming payment not unwatched; tried again")
            }
        }
    }
}

/// An incoming payment as Rafiki's events carry it.
pub fn incoming_payment_data(payment: &IncomingPayment, snapshot: &Snapshot, now_ms: u64) -> Value {
    let (code, scale) = crate::webhooks::wallet_asset(snapshot, &payment.wallet);
    let state = payment.state(now_ms);
    json!({
        "id": payment.id,
        "walletAddressId": payment.wallet,
        "incomingAmount": payment.incoming_amount.map(|amount| amount_json(amount, &code, scale)),
        "receivedAmount": amount_json(payment.received, &code, scale),
        "completed": state == IncomingPaymentState::Completed,
        "state": match state {
            IncomingPaymentState::Pending => "PENDING",
            IncomingPaymentState::Completed => "COMPLETED",
            IncomingPaymentState::Expired => "EXPIRED",
        },
        "expiresAt": time_json(payment.expires_at_ms),
    })
}

/// Liquidity thresholds of the state: by (kind, name), kind `peer` or `asset`.
struct Thresholds(HashMap<(&'static str, String), u64>);

impl Thresholds {
    fn of(state: &StateDocument) -> Thresholds {
        let peers = state
            .peers
            .iter()
            .filter_map(|p| Some((("peer", p.id.clone()), p.liquidity_threshold?)));
        let assets = state
            .assets
            .iter()
            .filter_map(|a| Some((("asset", a.code.clone()), a.liquidity_threshold?)));
        Thresholds(peers.chain(assets).collect())
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

async fn check_liquidity(
    shard: &Shard,
    watch: &Watch,
    webhooks: &Webhooks,
    thresholds: &Thresholds,
) {
    let snapshot = shard.shared.snapshot.load_full();
    let rows = match shard.shared.ledger.balances(&snapshot).await {
        Ok(rows) => rows,
        Err(error) => return tracing::debug!(%error, "liquidity check failed; tried again"),
    };
    let mut low = watch.low.borrow_mut();
    for row in rows {
        let kind = match row.kind {
            "peer" => "peer",
            "liquidity" => "asset",
            _ => continue,
        };
        let key = (kind, row.name.clone());
        let (Some(threshold), Some(account)) = (thresholds.0.get(&key), row.account) else {
            continue;
        };
        let balance = account.balance_posted();
        if balance > i128::from(*threshold) {
            low.remove(&key);
            continue;
        }
        if !low.insert(key) {
            continue;
        }
        let Some(asset) = snapshot.assets.iter().find(|a| a.code == row.asset) else {
            continue;
        };
        let data = json!({
            "id": row.name,
            "asset": {"id": asset.code, "code": asset.code, "scale": asset.scale},
            "liquidityThreshold": threshold.to_string(),
            "balance": balance.to_string(),
        });
        let event = if kind == "peer" {
            "peer.liquidity_low"
        } else {
            "asset.liquidity_low"
        };
        webhooks.emit(event, data);
    }
}

//! What shard 0 looks at every `webhooks.check_interval_ms` for events nothing
//! else raises: incoming payments created here that have completed or expired
//! (read back from the store, so a payment paid through any data plane counts),
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

/// Incoming payments created here and not yet completed or expired, and which
/// accounts are below their threshold now.
#[derive(Default)]
pub struct Watch {
    payments: RefCell<Vec<String>>,
    low: RefCell<HashSet<(&'static str, String)>>,
}

impl Watch {
    /// Watches a payment just created; past the bound it is not watched (warned).
    pub fn incoming_payment(&self, id: &str) {
        let mut payments = self.payments.borrow_mut();
        if payments.len() >= WATCHED_PAYMENTS_MAX {
            tracing::warn!(
                payment = id,
                "too many incoming payments watched: no completed or expired event for this one"
            );
            return;
        }
        payments.push(id.to_owned());
    }
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
        check_payments(&shard, &watch, webhooks).await;
        let thresholds = match document.lock() {
            Ok(state) => Thresholds::of(&state),
            Err(_) => continue,
        };
        if !thresholds.is_empty() {
            check_liquidity(&shard, &watch, webhooks, &thresholds).await;
        }
    }
}

/// Reads every watched payment back; those that completed or expired raise their
/// event and are no longer watched.
async fn check_payments(shard: &Shard, watch: &Watch, webhooks: &Webhooks) {
    let ids = watch.payments.borrow().clone();
    if ids.is_empty() {
        return;
    }
    let ports = shard.ports();
    let lookups = ids.iter().map(|id| {
        let op = StoreOp::GetPayment { id: id.clone() };
        async move { ports.store.execute(op).await }
    });
    let answers = futures::future::join_all(lookups).await;
    let snapshot = shard.shared.snapshot.load();
    let now_ms = crate::clock::unix_now_ms();
    let mut done = HashSet::new();
    for (id, answer) in ids.iter().zip(answers) {
        match answer {
            Ok(StoreAnswer::Payment(Some(payment))) => {
                let kind = match payment.state(now_ms) {
                    IncomingPaymentState::Completed => "incoming_payment.completed",
                    IncomingPaymentState::Expired => "incoming_payment.expired",
                    IncomingPaymentState::Pending => continue,
                };
                webhooks.emit(kind, incoming_payment_data(&payment, &snapshot, now_ms));
                done.insert(id.clone());
            }
            Ok(_) => {
                done.insert(id.clone());
            }
            Err(error) => tracing::debug!(%error, "incoming payment check failed; tried again"),
        }
    }
    watch.payments.borrow_mut().retain(|id| !done.contains(id));
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

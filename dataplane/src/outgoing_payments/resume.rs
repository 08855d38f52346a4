//! Taking over outgoing payments whose owner stopped: every data plane looks at
//! the open list every [`PAYMENT_RESUME_INTERVAL`] for payments whose lease lapsed,
//! claims each (one data plane wins the claim, atomically in the store) and drives
//! it to its end from what the ledger says is left.

use super::record::PaymentRecord;
use super::{run, Payments};
use crate::clock::{sleep_unless, unix_now_ms};
use crate::limits::{PAYMENT_LEASE_MS, PAYMENT_RESUME_BATCH_MAX, PAYMENT_RESUME_INTERVAL};
use crate::shard::Shard;
use crate::store::{Claim, StoreAnswer, StoreOp};
use std::rc::Rc;

/// Runs on the admin shard until the data plane shuts down.
pub async fn run_forever(shard: Rc<Shard>, payments: Rc<Payments>) {
    while !shard.shutting_down() {
        sleep_unless(|| shard.shutting_down(), PAYMENT_RESUME_INTERVAL).await;
        if shard.shutting_down() {
            break;
        }
        if let Err(error) = look(&shard, &payments).await {
            tracing::debug!(%error, "could not look for outgoing payments to resume");
        }
    }
}

/// One look at the open list.
async fn look(shard: &Rc<Shard>, payments: &Rc<Payments>) -> Result<(), String> {
    let room = payments.room().min(PAYMENT_RESUME_BATCH_MAX);
    if room == 0 {
        return Ok(());
    }
    let now_ms = unix_now_ms();
    let lapsed = StoreOp::LapsedOutgoing {
        before_ms: now_ms,
        limit: room,
    };
    let ids = match shard.store().execute(lapsed).await {
        Ok(StoreAnswer::Lapsed(ids)) => ids,
        other => return Err(format!("{other:?}")),
    };
    for id in ids {
        if payments.drives(&id) {
            continue;
        }
        let (claimed_at, claimed_at_ms) = (std::time::Instant::now(), unix_now_ms());
        let claim = StoreOp::ClaimOutgoing {
            id: id.clone(),
            owner: payments.owner.clone(),
            now_ms: claimed_at_ms,
            lease_until_ms: claimed_at_ms + PAYMENT_LEASE_MS,
        };
        match shard.store().execute(claim).await {
            Ok(StoreAnswer::Claimed(Claim::Claimed(text))) => {
                let Some(record) = PaymentRecord::from_json(&text) else {
                    tracing::error!(payment = %id, "an open outgoing payment's record is unreadable");
                    continue;
                };
                tracing::info!(payment = %id, "taking over an outgoing payment whose lease lapsed");
                let drive = run::run(Rc::clone(shard), Rc::clone(payments), record, claimed_at);
                glommio::spawn_local(drive).detach();
            }
            Ok(StoreAnswer::Claimed(Claim::Closed | Claim::Gone)) => {
                let unlist = StoreOp::ListOutgoing { id, until_ms: None };
                let _ = shard.store().execute(unlist).await;
            }
            Ok(StoreAnswer::Claimed(Claim::Held)) => {}
            other => return Err(format!("{other:?}")),
        }
    }
    Ok(())
}

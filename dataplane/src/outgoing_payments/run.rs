//! One outgoing payment, driven to its end by the data plane that owns its lease.
//! Every step is safe to run again, by this data plane or by another that takes
//! the payment over, so a crash anywhere loses nothing and pays nothing twice:
//!
//! 1. **Fund**: the quote's source amount moves from the wallet into the
//!    payment's own ledger account, by a transfer whose id derives from the
//!    payment (exactly once). Its packets spend from that account alone, so the
//!    ledger itself keeps the payment within its quote, whoever sends.
//! 2. **Send**: once nothing is pending on the account (a former owner's packets
//!    are posted or expired), what it still holds is what is left to send. The
//!    owner renews its lease and saves its progress every
//!    [`PAYMENT_RENEW_MS`]; the outcome is saved before settling.
//! 3. **Settle**: once nothing is pending again, what the payment did not spend
//!    goes back to the wallet (again by an id derived from the payment), and the
//!    record is closed with the amount sent as the ledger has it.

use super::record::{Outcome, PaymentRecord};
use super::{announce, random_iv, Payments};
use crate::clock::unix_now_ms;
use crate::ledger::chart::{payment_account_id, refund_id, Funding, Refund};
use crate::ledger::Account;
use crate::limits::{
    PAYMENT_GIVE_UP_MS, PAYMENT_IN_FLIGHT_MAX, PAYMENT_LEASE_MS, PAYMENT_RENEW_MS,
    PAYMENT_RETRIES_MAX, PAYMENT_STEP_ATTEMPTS_MAX,
};
use crate::local::Payer;
use crate::shard::Shard;
use crate::store::{StoreAnswer, StoreOp};
use futures::stream::{FuturesUnordered, StreamExt};
use riptide_proto::admin_api::OutgoingPaymentState;
use riptide_proto::stream::sender::{
    Action, Answer, Progress, SendError, SenderOptions, StreamSender, Target,
};
use std::rc::Rc;
use std::time::Duration;

/// Why an owner stopped short of closing a payment: it stays open, for whoever
/// takes it over once the lease lapses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Another data plane owns it now, or this one could not prove it still does.
    LeaseLost,
    /// The data plane is shutting down.
    ShuttingDown,
    /// A step found no definite answer in [`PAYMENT_STEP_ATTEMPTS_MAX`] tries.
    GaveUp(String),
}

/// The owner's hold on a payment.
struct Lease<'a> {
    shard: &'a Shard,
    owner: &'a str,
    renewed_at_ms: u64,
}

impl Lease<'_> {
    /// Renews the lease and saves `record` when a renewal is due.
    async fn keep(&mut self, record: &PaymentRecord) -> Result<(), Stop> {
        if unix_now_ms() < self.renewed_at_ms + PAYMENT_RENEW_MS {
            return Ok(());
        }
        self.renew(record, false).await
    }

    /// Saves `record` now; with `close`, the payment is over.
    async fn renew(&mut self, record: &PaymentRecord, close: bool) -> Result<(), Stop> {
        let now_ms = unix_now_ms();
        let lease_until_ms = now_ms + PAYMENT_LEASE_MS;
        let id = record.view.id.clone();
        let renew = StoreOp::RenewOutgoing {
            id: id.clone(),
            owner: self.owner.to_owned(),
            lease_until_ms,
            record: Some(record.to_json()),
            close,
        };
        match self.shard.store().execute(renew).await {
            Ok(StoreAnswer::Renewed(true)) => {
                self.renewed_at_ms = now_ms;
                let until_ms = (!close).then_some(lease_until_ms);
                // The list only points at payments to look at: a failure here is
                // mended by the next renewal, or by a scan.
                let _ = self
                    .shard
                    .store()
                    .execute(StoreOp::ListOutgoing { id, until_ms })
                    .await;
                Ok(())
            }
            Ok(StoreAnswer::Renewed(false)) => Err(Stop::LeaseLost),
            other => {
                tracing::warn!(payment = %id, ?other, "could not renew an outgoing payment's lease");
                // Past the lease it may be someone else's: stop before that.
                if close || now_ms + PAYMENT_RENEW_MS >= self.renewed_at_ms + PAYMENT_LEASE_MS {
                    Err(Stop::LeaseLost)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Saves `record` now, or stops: for what must be in the store before the
    /// next step.
    async fn save(&mut self, record: &PaymentRecord) -> Result<(), Stop> {
        self.renewed_at_ms = 0;
        self.renew(record, false).await?;
        if self.renewed_at_ms == 0 {
            return Err(Stop::GaveUp("the store did not take the record".into()));
        }
        Ok(())
    }

    /// Gives the payment up, for a data plane to take it over from `after_ms` on
    /// (now, on a shutdown; later after a step gave up, so that one stuck payment
    /// does not come first in every look at the open list).
    async fn release(&self, record: &PaymentRecord, after_ms: u64) {
        let until_ms = unix_now_ms() + after_ms;
        let release = StoreOp::RenewOutgoing {
            id: record.view.id.clone(),
            owner: self.owner.to_owned(),
            lease_until_ms: until_ms,
            record: Some(record.to_json()),
            close: false,
        };
        if let Ok(StoreAnswer::Renewed(true)) = self.shard.store().execute(release).await {
            let list = StoreOp::ListOutgoing {
                id: record.view.id.clone(),
                until_ms: Some(until_ms),
            };
            let _ = self.shard.store().execute(list).await;
        }
    }
}

/// Drives `record` (whose lease `payments` holds) to its end, or until it must
/// stop; then forgets it here.
pub async fn run(shard: Rc<Shard>, payments: Rc<Payments>, mut record: PaymentRecord) {
    let id = record.view.id.clone();
    payments.track(&record.view);
    let mut lease = Lease {
        shard: &shard,
        owner: &payments.owner,
        renewed_at_ms: unix_now_ms(),
    };
    match lifecycle(&shard, &payments, &mut lease, &mut record).await {
        Ok(()) => {}
        Err(Stop::ShuttingDown) => lease.release(&record, 0).await,
        Err(stop @ Stop::GaveUp(_)) => {
            tracing::warn!(payment = %id, ?stop, "outgoing payment left open, to try again later");
            lease.release(&record, PAYMENT_GIVE_UP_MS).await;
        }
        Err(stop) => tracing::warn!(payment = %id, ?stop, "outgoing payment left open"),
    }
    payments.forget(&id);
}

async fn lifecycle(
    shard: &Rc<Shard>,
    payments: &Payments,
    lease: &mut Lease<'_>,
    record: &mut PaymentRecord,
) -> Result<(), Stop> {
    let snapshot = shard.shared.snapshot.load_full();
    let Some(wallet) = snapshot.wallet(&record.view.wallet) else {
        return Err(Stop::GaveUp(format!(
            "no wallet {:?} in the state",
            record.view.wallet
        )));
    };
    let (wallet_account, asset) = (wallet.account_id, wallet.asset);
    let ledger_id = snapshot.asset(asset).ledger;
    let ledger = &shard.shared.ledger;
    if record.outcome.is_none() {
        let amount = record.view.source_amount;
        let funding = step(lease, record, "fund", || {
            ledger.fund_payment(&record.view.id, wallet_account, ledger_id, amount)
        })
        .await?;
        if funding == Funding::Insufficient {
            record.outcome = Some(Outcome::Failed(format!(
                "insufficient balance: the wallet holds less than the payment's {amount}"
            )));
        }
    }
    if record.outcome.is_none() {
        let account = quiet_account(shard, lease, record).await?;
        let payer = Payer {
            account_id: account.id,
            asset,
        };
        let outcome = send(shard, payments, lease, record, &account, payer).await?;
        record.outcome = Some(outcome);
        // Settling starts only once the outcome is saved: a data plane taking the
        // payment over afterwards settles it as it ended.
        lease.save(record).await?;
    }
    settle(shard, lease, record, (wallet_account, ledger_id)).await?;
    lease.renew(record, true).await?;
    let event = match record.view.state {
        OutgoingPaymentState::Completed => "outgoing_payment.completed",
        _ => "outgoing_payment.failed",
    };
    announce(shard, event, &record.view);
    Ok(())
}

/// Runs `attempt` until it answers, a second apart, renewing the lease.
async fn step<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    lease: &mut Lease<'_>,
    record: &PaymentRecord,
    name: &str,
    attempt: impl Fn() -> F,
) -> Result<T, Stop> {
    let mut last_error = String::new();
    for _ in 0..PAYMENT_STEP_ATTEMPTS_MAX {
        if lease.shard.shutting_down() {
            return Err(Stop::ShuttingDown);
        }
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => last_error = error.to_string(),
        }
        glommio::timer::sleep(Duration::from_secs(1)).await;
        lease.keep(record).await?;
    }
    Err(Stop::GaveUp(format!("{name}: {last_error}")))
}

/// The payment's account once nothing is pending on it: every packet a former
/// owner (or this one) held is posted or has expired.
async fn quiet_account(
    shard: &Shard,
    lease: &mut Lease<'_>,
    record: &PaymentRecord,
) -> Result<Account, Stop> {
    let ledger = &shard.shared.ledger;
    let id = payment_account_id(&record.view.id);
    let waits_max = (u64::from(ledger.pending_timeout_s()) + 30) * 5;
    for _ in 0..waits_max {
        if shard.shutting_down() {
            return Err(Stop::ShuttingDown);
        }
        if let Ok(accounts) = ledger.lookup_accounts(&[id]).await {
            match accounts.first() {
                Some(account) if account.debits_pending == 0 => return Ok(*account),
                Some(_) => {}
                None => return Err(Stop::GaveUp("the payment's account is missing".into())),
            }
        }
        glommio::timer::sleep(Duration::from_millis(200)).await;
        lease.keep(record).await?;
    }
    Err(Stop::GaveUp("the payment's account stayed pending".into()))
}

/// What remains of the payment after `account`'s spending so far.
fn remaining_target(record: &PaymentRecord, available: u64) -> Option<Target> {
    if record.terms.fixed_delivery {
        let left = record
            .view
            .min_delivery_amount
            .saturating_sub(record.view.delivered);
        (left > 0).then_some(Target::FixedDelivery(left))
    } else {
        (available > 0).then_some(Target::FixedSend(available))
    }
}

/// Sends what is left, from the payment's account, and says how it ended.
async fn send(
    shard: &Rc<Shard>,
    payments: &Payments,
    lease: &mut Lease<'_>,
    record: &mut PaymentRecord,
    account: &Account,
    payer: Payer,
) -> Result<Outcome, Stop> {
    let spent = u64::try_from(account.debits_posted).unwrap_or(u64::MAX);
    let available = u64::try_from(account.credits_posted.saturating_sub(account.debits_posted))
        .unwrap_or(u64::MAX);
    record.view.sent = spent;
    let Some(target) = remaining_target(record, available) else {
        return Ok(Outcome::Completed);
    };
    let options = SenderOptions {
        target,
        min_rate: record.terms.min_rate(),
        rate: record.terms.rate(),
        max_packet_amount: record.terms.max_packet_amount,
        source_amount_max: available,
        in_flight_max: PAYMENT_IN_FLIGHT_MAX,
        retries_max: PAYMENT_RETRIES_MAX,
    };
    let secret = record.terms.shared_secret().unwrap_or_default();
    let sender = match StreamSender::new(&record.terms.destination_address, &secret, options) {
        Ok(sender) => sender,
        Err(error) => return Ok(Outcome::Failed(error.to_string())),
    };
    let base = record.view.clone();
    let outcome = drive(shard, payments, lease, record, &base, sender, payer).await?;
    Ok(match outcome {
        Ok(()) => Outcome::Completed,
        Err(error) => Outcome::Failed(error.to_string()),
    })
}

/// Adds this run's progress to what the record had when it started.
fn note_progress(
    payments: &Payments,
    record: &mut PaymentRecord,
    base: &riptide_proto::admin_api::OutgoingPaymentView,
    progress: Progress,
) {
    record.view.sent = base.sent.saturating_add(progress.sent);
    record.view.delivered = base.delivered.saturating_add(progress.delivered);
    record.view.packets_fulfilled = base.packets_fulfilled + progress.packets_fulfilled;
    record.view.packets_rejected = base.packets_rejected + progress.packets_rejected;
    payments.track(&record.view);
}

/// Runs the sender until it is done: a window of packets in flight, replies fed
/// back as they come, waits as the sender asks, the lease kept. Packets race
/// their own expiry (R00), so every packet comes back: none is dropped with its
/// hold in place.
async fn drive(
    shard: &Rc<Shard>,
    payments: &Payments,
    lease: &mut Lease<'_>,
    record: &mut PaymentRecord,
    base: &riptide_proto::admin_api::OutgoingPaymentView,
    mut sender: StreamSender,
    payer: Payer,
) -> Result<Result<(), SendError>, Stop> {
    let mut in_flight = FuturesUnordered::new();
    let mut stopping: Option<Stop> = None;
    loop {
        if stopping.is_none() && shard.shutting_down() {
            stopping = Some(Stop::ShuttingDown);
        }
        if stopping.is_none() {
            if let Err(stop) = lease.keep(record).await {
                stopping = Some(stop);
            }
        }
        if let Some(stop) = &stopping {
            // Nothing more goes out; what is in flight still comes back and counts.
            let next: Option<(u64, Vec<u8>)> = in_flight.next().await;
            let Some((sequence, reply)) = next else {
                return Err(stop.clone());
            };
            sender.on_reply(sequence, Answer::parse(&reply), unix_now_ms());
            note_progress(payments, record, base, sender.progress());
            continue;
        }
        let Some(iv) = random_iv() else {
            stopping = Some(Stop::GaveUp("no randomness available".into()));
            continue;
        };
        match sender.poll(unix_now_ms(), iv) {
            Action::Send {
                sequence, prepare, ..
            } => {
                let (shard, snapshot) = (Rc::clone(shard), shard.shared.snapshot.load_full());
                in_flight.push(async move {
                    let reply = shard.send_as(&snapshot, payer, prepare, true).await;
                    (sequence, reply)
                });
            }
            Action::Wait { until_ms } => {
                // Waits end by the next renewal at the latest.
                let renew_ms = PAYMENT_RENEW_MS;
                let wait_ms = until_ms
                    .map_or(renew_ms, |until| until.saturating_sub(unix_now_ms()))
                    .clamp(1, renew_ms);
                if in_flight.is_empty() {
                    // Backing off with nothing out: an empty set would answer at
                    // once and this loop would spin.
                    glommio::timer::sleep(Duration::from_millis(wait_ms)).await;
                    continue;
                }
                let next = async { in_flight.next().await };
                let timer = async {
                    glommio::timer::sleep(Duration::from_millis(wait_ms)).await;
                    None
                };
                if let Some((sequence, reply)) = futures_lite::future::or(next, timer).await {
                    sender.on_reply(sequence, Answer::parse(&reply), unix_now_ms());
                    note_progress(payments, record, base, sender.progress());
                }
            }
            Action::Done(outcome) => {
                if let Some(iv) = random_iv() {
                    let close = sender.close_prepare(unix_now_ms(), iv);
                    let snapshot = shard.shared.snapshot.load_full();
                    let _ = shard.send_as(&snapshot, payer, close, false).await;
                }
                note_progress(payments, record, base, sender.progress());
                return Ok(outcome);
            }
        }
    }
}

/// Moves what the payment did not spend back to the wallet and writes the
/// ledger's own figure for what it sent into the record.
async fn settle(
    shard: &Shard,
    lease: &mut Lease<'_>,
    record: &mut PaymentRecord,
    wallet: (u128, u32),
) -> Result<(), Stop> {
    let ledger = &shard.shared.ledger;
    let refund_ids: Vec<u128> = (0..PAYMENT_STEP_ATTEMPTS_MAX)
        .map(|attempt| refund_id(&record.view.id, attempt))
        .collect();
    let mut attempt = 0;
    for _ in 0..PAYMENT_STEP_ATTEMPTS_MAX * 2 {
        let account = quiet_account(shard, lease, record).await?;
        let left = account.credits_posted.saturating_sub(account.debits_posted);
        if left == 0 {
            // Refunded before, or nothing to refund: what it sent is its debits
            // less the refund, if there is one (at most one can be made).
            let found = step(lease, record, "look up the refund", || {
                ledger.lookup_transfers(&refund_ids)
            })
            .await?;
            let refunded: u128 = found.iter().map(|refund| refund.amount).sum();
            close(record, account.debits_posted - refunded);
            return Ok(());
        }
        if attempt >= PAYMENT_STEP_ATTEMPTS_MAX {
            break;
        }
        match ledger
            .refund_payment(&record.view.id, wallet, left, attempt)
            .await
        {
            Ok(Refund::Done) => {
                close(record, account.debits_posted);
                return Ok(());
            }
            // A packet held since the read (this id is spent): the next one.
            Ok(Refund::Refused) => attempt += 1,
            // Made before with another amount, or unknown: read again, same id.
            Ok(Refund::Different) | Err(_) => {
                glommio::timer::sleep(Duration::from_secs(1)).await;
                lease.keep(record).await?;
            }
        }
    }
    Err(Stop::GaveUp("the refund was refused every time".into()))
}

/// The record's end: what it sent, and its state from the outcome.
fn close(record: &mut PaymentRecord, sent: u128) {
    record.view.sent = u64::try_from(sent).unwrap_or(u64::MAX);
    record.view.state = match &record.outcome {
        Some(Outcome::Failed(error)) => {
            record.view.last_error = Some(error.clone());
            OutgoingPaymentState::Failed
        }
        _ => OutgoingPaymentState::Completed,
    };
}

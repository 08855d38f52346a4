//! One outgoing payment, driven to its end by the data plane that owns its lease:
//! the IO side of the sans-IO [`PaymentFlow`] (proto `flow/payment.rs`, which says
//! what each step is and why it is safe to run again, by this data plane or by one
//! that takes the payment over). This driver runs each step against the ledger and
//! the store, renews the lease and saves the payment's progress every
//! [`PAYMENT_RENEW_MS`], and runs the STREAM sender from the payment's account.

use super::record::{Outcome, PaymentRecord};
use super::{announce, random_iv, Payments};
use crate::clock::unix_now_ms;
use crate::ledger::chart::{payment_account_id, refund_id, Funding, Refund};
use crate::limits::{
    PAYMENT_FLOW_STEPS_MAX, PAYMENT_GIVE_UP_MS, PAYMENT_IN_FLIGHT_MAX, PAYMENT_LEASE_MS,
    PAYMENT_REFUND_IDS, PAYMENT_RENEW_MS, PAYMENT_RETRIES_MAX, PAYMENT_STEP_ATTEMPTS_MAX,
};
use crate::local::Payer;
use crate::shard::Shard;
use crate::store::{StoreAnswer, StoreOp};
use futures::stream::{FuturesUnordered, StreamExt};
use riptide_proto::admin_api::OutgoingPaymentState;
use riptide_proto::flow::payment::{
    AccountAnswer, FlowLimits, FundAnswer, PaymentFlow, RefundAnswer, Step,
};
use riptide_proto::stream::sender::{
    Action, Answer, Progress, Resumed, SendError, SenderOptions, StreamSender, Target,
};
use std::rc::Rc;
use std::time::{Duration, Instant};

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
    /// When the last renewal that landed was sent (a monotonic clock: a wall
    /// clock stepping back must not stretch the lease).
    renewed_at: Instant,
}

impl Lease<'_> {
    /// Renews the lease and saves `record` when a renewal is due.
    async fn keep(&mut self, record: &PaymentRecord) -> Result<(), Stop> {
        if self.renewed_at.elapsed() < Duration::from_millis(PAYMENT_RENEW_MS) {
            return Ok(());
        }
        self.write(record, false).await.map(|_| ())
    }

    /// Saves `record` now (with `close`, the payment is over): whether the store
    /// took it. A store that says another data plane owns the payment, or that
    /// does not answer until the lease may have lapsed, stops this owner.
    async fn write(&mut self, record: &PaymentRecord, close: bool) -> Result<bool, Stop> {
        let (sent_at, now_ms) = (Instant::now(), unix_now_ms());
        let lease_until_ms = now_ms + PAYMENT_LEASE_MS;
        let id = record.view.id.clone();
        let renew = StoreOp::RenewOutgoing {
            id: id.clone(),
            owner: self.owner.to_owned(),
            lease_until_ms,
            now_ms,
            record: Some(record.to_json()),
            close,
        };
        match self.shard.store().execute(renew).await {
            Ok(StoreAnswer::Renewed(true)) => {
                self.renewed_at = sent_at;
                let until_ms = (!close).then_some(lease_until_ms);
                // The list only points at payments to look at: a failure here is
                // mended by the next renewal, or by a look.
                let _ = self
                    .shard
                    .store()
                    .execute(StoreOp::ListOutgoing { id, until_ms })
                    .await;
                Ok(true)
            }
            Ok(StoreAnswer::Renewed(false)) => Err(Stop::LeaseLost),
            other => {
                tracing::warn!(payment = %id, ?other, "could not renew an outgoing payment's lease");
                // Past the lease it may be someone else's: stop before that.
                let held = sent_at.duration_since(self.renewed_at);
                if held + Duration::from_millis(PAYMENT_RENEW_MS)
                    >= Duration::from_millis(PAYMENT_LEASE_MS)
                {
                    Err(Stop::LeaseLost)
                } else {
                    Ok(false)
                }
            }
        }
    }

    /// Gives the payment up, for a data plane to take it over from `after_ms` on
    /// (now, on a shutdown; later after a step gave up, so that one stuck payment
    /// does not come first in every look at the open list).
    async fn release(&self, record: &PaymentRecord, after_ms: u64) {
        let now_ms = unix_now_ms();
        let until_ms = now_ms + after_ms;
        let release = StoreOp::RenewOutgoing {
            id: record.view.id.clone(),
            owner: self.owner.to_owned(),
            lease_until_ms: until_ms,
            now_ms,
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

/// Drives `record` (whose lease `payments` holds, taken by a request sent at
/// `leased_at`: the lease runs from no earlier) to its end, or until it must
/// stop; then forgets it here.
pub async fn run(
    shard: Rc<Shard>,
    payments: Rc<Payments>,
    mut record: PaymentRecord,
    leased_at: Instant,
) {
    let id = record.view.id.clone();
    payments.track(&record.view);
    let mut lease = Lease {
        shard: &shard,
        owner: &payments.owner,
        renewed_at: leased_at,
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
    let asset = wallet.asset;
    let wallet = (wallet.account_id, snapshot.asset(asset).ledger);
    let payer = Payer {
        account_id: payment_account_id(&record.view.id),
        asset,
    };
    let mut flow = PaymentFlow::new(
        record.view.source_amount,
        record.outcome.clone(),
        flow_limits(shard.shared.ledger.pending_timeout_s()),
    );
    for _ in 0..PAYMENT_FLOW_STEPS_MAX {
        if shard.shutting_down() {
            return Err(Stop::ShuttingDown);
        }
        match flow.poll() {
            Step::Send { spent, available } => {
                let outcome =
                    send(shard, payments, lease, record, (spent, available), payer).await?;
                flow.on_sent(outcome);
            }
            Step::SaveOutcome => {
                record.outcome = flow.outcome().cloned();
                flow.on_saved(lease.write(record, false).await?);
            }
            Step::Close { sent } => {
                close(record, sent);
                flow.on_closed(lease.write(record, true).await?);
            }
            Step::Wait { ms } => {
                glommio::timer::sleep(Duration::from_millis(ms)).await;
                lease.keep(record).await?;
            }
            Step::GiveUp(reason) => return Err(Stop::GaveUp(reason)),
            Step::Done => {
                let event = match record.view.state {
                    OutgoingPaymentState::Completed => "outgoing_payment.completed",
                    _ => "outgoing_payment.failed",
                };
                announce(shard, event, &record.view);
                return Ok(());
            }
            ledger_step => {
                ledger_answer(shard, &mut flow, ledger_step, &record.view.id, wallet).await;
                lease.keep(record).await?;
            }
        }
    }
    Err(Stop::GaveUp("the flow took too many steps".into()))
}

/// The flow's bounds: reads of a pending account outlast the pending timeout.
fn flow_limits(pending_timeout_s: u32) -> FlowLimits {
    let quiet_ms = 200;
    FlowLimits {
        tries_max: PAYMENT_STEP_ATTEMPTS_MAX,
        quiet_reads_max: u32::try_from((u64::from(pending_timeout_s) + 30) * 1_000 / quiet_ms)
            .unwrap_or(u32::MAX),
        refund_ids: PAYMENT_REFUND_IDS,
        retry_ms: 1_000,
        quiet_ms,
    }
}

/// Runs one of the flow's ledger steps and gives it the answer; an error is an
/// unknown answer.
async fn ledger_answer(
    shard: &Shard,
    flow: &mut PaymentFlow,
    step: Step,
    payment_id: &str,
    (wallet_account, ledger_id): (u128, u32),
) {
    let ledger = &shard.shared.ledger;
    match step {
        Step::Fund => {
            let amount = flow.source_amount();
            let answer = match ledger
                .fund_payment(payment_id, (wallet_account, ledger_id), amount)
                .await
            {
                Ok(Funding::Funded) => FundAnswer::Funded,
                Ok(Funding::Insufficient) => FundAnswer::Insufficient,
                Err(_) => FundAnswer::Unknown,
            };
            flow.on_fund(answer);
        }
        Step::ReadAccount => {
            let answer = match ledger
                .lookup_accounts(&[payment_account_id(payment_id)])
                .await
            {
                Ok(found) => found.first().map_or(AccountAnswer::Missing, |account| {
                    AccountAnswer::Found(*account)
                }),
                Err(_) => AccountAnswer::Unknown,
            };
            flow.on_account(answer);
        }
        Step::Refund { amount, attempt } => {
            let answer = match ledger
                .refund_payment(payment_id, (wallet_account, ledger_id), amount, attempt)
                .await
            {
                Ok(Refund::Done) => RefundAnswer::Done,
                Ok(Refund::Refused) => RefundAnswer::Refused,
                Ok(Refund::Different) => RefundAnswer::Different,
                Err(_) => RefundAnswer::Unknown,
            };
            flow.on_refund(answer);
        }
        Step::LookupRefunds => {
            let ids: Vec<u128> = (0..PAYMENT_REFUND_IDS)
                .map(|attempt| refund_id(payment_id, attempt))
                .collect();
            let refunded = ledger
                .lookup_transfers(&ids)
                .await
                .ok()
                .map(|found| found.iter().map(|refund| refund.amount).sum());
            flow.on_refunds(refunded);
        }
        other => debug_assert!(false, "not a ledger step: {other:?}"),
    }
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
    (spent, available): (u128, u128),
    payer: Payer,
) -> Result<Outcome, Stop> {
    let available = u64::try_from(available).unwrap_or(u64::MAX);
    record.view.sent = u64::try_from(spent).unwrap_or(u64::MAX);
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
        // What an earlier owner delivered unrecorded shows in the receiver's reports.
        resumed: Some(Resumed {
            delivered_before: record.view.delivered,
            receiver_base: record.receiver_base,
        }),
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
    if progress.receiver_base.is_some() {
        record.receiver_base = progress.receiver_base;
    }
    payments.note_totals(&record.view);
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

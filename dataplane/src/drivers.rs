//! The thin IO side of the money flows ([`riptide_proto::flow`]): carry out what a flow
//! asks (a ledger request, a store operation, a wait), hand it the outcome, and
//! go on after the packet's reply has left, in a task of the packet's own, until
//! the ledger has settled it. Nothing here decides anything about money.

use crate::clock::unix_now_ms;
use crate::in_flight::InFlight;
use crate::ledger::batcher::TransferBatcher;
use crate::limits::{
    JOURNAL_WALLETS_PER_OP_MAX, SHUTDOWN_CHECK_INTERVAL, SWEEP_BATCH_MAX, SWEEP_INTERVAL,
    WAIT_MS_MIN,
};
use crate::metrics::ShardMetrics;
use crate::shared::Shared;
use crate::store::batcher::StoreBatcher;
use crate::store::{CreditResult, StoreAnswer, StoreError, StoreOp};
use riptide_proto::flow::credit::{
    sweep_decision, CountAnswer, CreditCommand, CreditFlow, CreditReport, JournalEntry,
    SweepDecision,
};
use riptide_proto::flow::forward::{ForwardCommand, ForwardFlow, ForwardReport};
use riptide_proto::flow::hold::{Chain, Finish, LedgerAnswer, LedgerRequest, Settled};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// What the drivers of one shard use. Cheap to clone into a packet's task.
#[derive(Clone)]
pub struct Ports {
    pub shared: Arc<Shared>,
    pub transfers: Rc<TransferBatcher>,
    pub store: Rc<StoreBatcher>,
    pub metrics: Rc<RefCell<ShardMetrics>>,
    pub in_flight: Rc<Cell<u32>>,
    /// This shard's range of transfer ids.
    pub ids: Rc<crate::ledger::holds::IdBlock>,
}

impl Ports {
    /// How long to wait for one request: the ledger's request timeout, cut short
    /// by the flow's own deadline (its reply's).
    pub fn wait_for(&self, wake_at_ms: Option<u64>, now_ms: u64) -> Duration {
        let timeout = self.shared.ledger.request_timeout();
        match wake_at_ms {
            Some(at) => timeout.min(Duration::from_millis(
                at.saturating_sub(now_ms).max(WAIT_MS_MIN),
            )),
            None => timeout,
        }
    }

    pub async fn ledger(&self, request: LedgerRequest, wait: Duration) -> LedgerAnswer {
        match request {
            LedgerRequest::Create(transfers) => self.transfers.submit(&transfers, wait).await,
            // A lookup follows only an answer that did not come, so it is rare,
            // and its future (the ledger client's) is large: boxed, it no longer
            // sizes every ledger step's future, which each packet moves a few times.
            LedgerRequest::Lookup(ids) => {
                Box::pin(self.transfers.lookup(ids.as_slice(), wait)).await
            }
        }
    }

    pub fn record_ledger_failure(&self, label: &'static str) {
        self.metrics.borrow_mut().record_ledger_failure(label);
    }

    /// Counts the packet in the shard's in-flight total for as long as the guard
    /// lives, so that a shutdown waits for it.
    pub fn enter(&self) -> InFlight {
        InFlight::enter(&self.in_flight)
    }
}

/// Sleeps until `until_ms` (Unix ms) and returns the time then.
pub async fn sleep_until(until_ms: u64) -> u64 {
    let wait = until_ms.saturating_sub(unix_now_ms());
    if wait > 0 {
        glommio::timer::sleep(Duration::from_millis(wait)).await;
    }
    unix_now_ms()
}

/// Finishes a forwarded packet's ledger step after its reply left.
pub async fn finish_forward(ports: Ports, mut flow: ForwardFlow, chain: Chain, _guard: InFlight) {
    // Bounded by the flow: every request has a deadline and the step gives up
    // once its pending transfers have certainly expired.
    let mut now = unix_now_ms();
    loop {
        match flow.poll(now) {
            ForwardCommand::Ledger(request) => {
                let answer = ports.ledger(request, ports.wait_for(None, now)).await;
                now = unix_now_ms();
                flow.on_ledger(&answer, now);
            }
            ForwardCommand::Wait { until_ms } => now = sleep_until(until_ms).await,
            ForwardCommand::Done(report) => return report_forward(&ports, &report, &chain),
            other => unreachable!("a replied forward asked for {other:?}"),
        }
    }
}

/// Counts and logs how a forwarded packet's ledger step ended, when it failed.
pub fn report_forward(ports: &Ports, report: &ForwardReport, chain: &Chain) {
    let Some(label) = report.ledger_failure() else {
        return;
    };
    ports.record_ledger_failure(label);
    log_failure(label, report.finished, chain, "forward");
}

fn log_failure(label: &str, finished: Option<(Finish, Settled)>, chain: &Chain, flow: &str) {
    match finished {
        Some((Finish::Post, settled)) => tracing::error!(
            flow,
            ?settled,
            pending_ids = ?chain.ids(None).as_slice(),
            post_ids = ?chain.ids(Some(Finish::Post)).as_slice(),
            legs = ?chain.legs(),
            "a Fulfill went upstream but its post did not go through: reconcile these transfers"
        ),
        _ => tracing::warn!(
            flow,
            label,
            ?finished,
            pending_ids = ?chain.ids(None).as_slice(),
            "ledger step failed; nothing was posted"
        ),
    }
}

/// What a local credit writes to the store.
#[derive(Debug, Clone)]
pub struct CreditRecord {
    pub connection: String,
    pub wallet: String,
    pub amount: u64,
    pub payment: Option<String>,
    pub credit_id: u64,
    pub chain: Chain,
}

impl CreditRecord {
    pub fn count(&self, now_ms: u64, settle_after_ms: u64) -> StoreOp {
        StoreOp::Credit {
            connection: self.connection.clone(),
            wallet: self.wallet.clone(),
            amount: self.amount,
            payment: self.payment.clone(),
            now_ms,
            credit_id: self.credit_id,
            post_ids: self.chain.ids(Some(Finish::Post)).as_slice().to_vec(),
            settle_after_ms,
        }
    }

    pub fn take_back(&self) -> StoreOp {
        StoreOp::Undo {
            connection: self.connection.clone(),
            wallet: self.wallet.clone(),
            amount: self.amount,
            payment: self.payment.clone(),
            credit_id: self.credit_id,
        }
    }

    pub fn settle(&self) -> StoreOp {
        StoreOp::Settle {
            connection: self.connection.clone(),
            wallet: self.wallet.clone(),
            credit_id: self.credit_id,
        }
    }
}

/// The store's answer to a count, as the flow takes it, and the result itself.
pub fn count_answer(
    answer: &Result<StoreAnswer, StoreError>,
) -> (CountAnswer, Option<CreditResult>) {
    match answer {
        Ok(StoreAnswer::Credit(result @ CreditResult::Credited { .. })) => {
            (CountAnswer::Counted, Some(*result))
        }
        Ok(StoreAnswer::Credit(result)) => (CountAnswer::Declined, Some(*result)),
        _ => (CountAnswer::Failed, None),
    }
}

/// Carries out one command of a credit that needs no reply: a ledger request, a
/// store operation or a wait. Returns the time after it, or `None` for a command
/// it does not carry out.
pub async fn credit_step(
    ports: &Ports,
    flow: &mut CreditFlow,
    record: &CreditRecord,
    command: CreditCommand,
    now: u64,
) -> Option<u64> {
    match command {
        CreditCommand::Ledger(request) => {
            let wait = ports.wait_for(flow.wake_at_ms(), now);
            let answer = ports.ledger(request, wait).await;
            let now = unix_now_ms();
            flow.on_ledger(&answer, now);
            Some(now)
        }
        CreditCommand::TakeBack => {
            let taken = ports.store.execute(record.take_back()).await.is_ok();
            let now = unix_now_ms();
            flow.on_take_back(taken, now);
            Some(now)
        }
        CreditCommand::MarkSettled => {
            mark_settled(ports, flow, record);
            Some(now)
        }
        CreditCommand::Wait { until_ms } => Some(sleep_until(until_ms).await),
        CreditCommand::Count | CreditCommand::Reply(_) | CreditCommand::Done(_) => None,
    }
}

/// Marks a posted count settled. Needs no answer (so no wait): a settle that is
/// lost leaves the count in the journal, where the sweep finds it posted.
pub fn mark_settled(ports: &Ports, flow: &mut CreditFlow, record: &CreditRecord) {
    ports.store.execute_detached(record.settle());
    flow.on_marked_settled();
}

/// Finishes a local credit after its reply left.
pub async fn finish_credit(
    ports: Ports,
    mut flow: CreditFlow,
    record: CreditRecord,
    _guard: InFlight,
) {
    let mut now = unix_now_ms();
    loop {
        let command = flow.poll(now);
        if let CreditCommand::Done(report) = command {
            return report_credit(&ports, &report, &record.chain);
        }
        now = match credit_step(&ports, &mut flow, &record, command.clone(), now).await {
            Some(now) => now,
            None => unreachable!("a replied credit asked for {command:?}"),
        };
    }
}

pub fn report_credit(ports: &Ports, report: &CreditReport, chain: &Chain) {
    if report.take_back_left {
        tracing::warn!(
            pending_ids = ?chain.ids(None).as_slice(),
            "a count could not be taken back now; the journal's sweep will"
        );
    }
    let Some(label) = report.ledger_failure() else {
        return;
    };
    ports.record_ledger_failure(label);
    log_failure(label, report.finished, chain, "local credit");
}

/// Settles the counts in the journals whose pending transfers have certainly
/// expired: each stays if its post is in the ledger, and is taken back otherwise.
/// Every data plane sweeps (on shard 0); two at once are harmless, since a
/// settle and a take-back are both idempotent. The journals are those of the
/// wallets of the state, a slice of them at a time. Returns (posted, taken back).
pub async fn sweep_journal_once(ports: &Ports) -> Result<(u64, u64), String> {
    let snapshot = ports.shared.snapshot.load_full();
    let wallets: Vec<String> = snapshot.wallets.iter().map(|w| w.id.clone()).collect();
    let (mut posted, mut taken_back) = (0, 0);
    for slice in wallets.chunks(JOURNAL_WALLETS_PER_OP_MAX) {
        let (slice_posted, slice_taken_back) = sweep_wallets(ports, slice.to_vec()).await?;
        posted += slice_posted;
        taken_back += slice_taken_back;
    }
    Ok((posted, taken_back))
}

/// One sweep of the journals of `wallets`.
async fn sweep_wallets(ports: &Ports, wallets: Vec<String>) -> Result<(u64, u64), String> {
    let now = unix_now_ms();
    let op = StoreOp::Unsettled {
        wallets,
        before_ms: now,
        limit: SWEEP_BATCH_MAX,
    };
    let records = match ports.store.execute(op).await {
        Ok(StoreAnswer::Unsettled(records)) => records,
        other => return Err(format!("journal listing: {other:?}")),
    };
    // A linked chain posts whole or not at all: its first post tells. One lookup
    // for the whole sweep (a marker gone leaves no id, and nothing to take back).
    let first_posts: Vec<u128> = records
        .iter()
        .filter_map(|r| r.post_ids.first().copied())
        .collect();
    let found = if first_posts.is_empty() {
        Vec::new()
    } else {
        match ports
            .transfers
            .lookup(&first_posts, ports.wait_for(None, now))
            .await
        {
            LedgerAnswer::Found(found) => found,
            other => return Err(format!("ledger lookup: {other:?}")),
        }
    };
    let mut found = found.into_iter();
    let (mut posted_count, mut taken_back) = (0, 0);
    let mut ops = Vec::with_capacity(records.len());
    for record in records {
        let posted = match record.post_ids.first() {
            None => true,
            Some(_) => found.next().unwrap_or(false),
        };
        let entry = JournalEntry {
            settle_after_ms: record.settle_after_ms,
        };
        ops.push(match sweep_decision(entry, posted, now) {
            SweepDecision::MarkSettled => {
                posted_count += 1;
                StoreOp::Settle {
                    connection: record.connection,
                    wallet: record.wallet,
                    credit_id: record.credit_id,
                }
            }
            SweepDecision::TakeBack => {
                taken_back += 1;
                tracing::warn!(?record, "a count whose post never came is taken back");
                StoreOp::Undo {
                    connection: record.connection,
                    wallet: record.wallet,
                    amount: record.amount,
                    payment: record.payment,
                    credit_id: record.credit_id,
                }
            }
            SweepDecision::Wait => continue,
        });
    }
    // Together, so that the store batches them into one pipeline.
    let answers =
        futures::future::join_all(ops.into_iter().map(|op| ports.store.execute(op))).await;
    if let Some(Err(error)) = answers.into_iter().find(Result::is_err) {
        return Err(format!("journal settle: {error}"));
    }
    Ok((posted_count, taken_back))
}

/// Sweeps the journal every [`SWEEP_INTERVAL`] until `stop` says so.
pub async fn sweep_journal(ports: Ports, stop: impl Fn() -> bool) {
    while !stop() {
        match sweep_journal_once(&ports).await {
            Ok((0, 0)) => {}
            Ok((posted, taken_back)) => {
                let mut metrics = ports.metrics.borrow_mut();
                *metrics.journal_swept.entry("posted").or_default() += posted;
                *metrics.journal_swept.entry("taken_back").or_default() += taken_back;
            }
            Err(error) => tracing::warn!(%error, "journal sweep failed; trying again later"),
        }
        // Sliced, so that a stop is seen promptly.
        for _ in 0..SWEEP_INTERVAL.as_millis() / SHUTDOWN_CHECK_INTERVAL.as_millis() {
            if stop() {
                return;
            }
            glommio::timer::sleep(SHUTDOWN_CHECK_INTERVAL).await;
        }
    }
}

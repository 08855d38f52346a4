//! Per-shard batching of ledger transfers (TigerBeetle's; the embedded ledger is
//! called directly). Every packet that reaches the ledger step during one pass of
//! the shard's executor adds its chain to a bounded queue; a flush task that yields
//! once (letting the other ready packets join) sends the queue as requests of at
//! most [`BATCH_EVENTS_MAX`] events, at most [`REQUESTS_IN_FLIGHT_MAX`] at a time,
//! and wakes each packet with the results of its own chain. A chain is never split
//! across requests, so it stays atomic.
//!
//! What a packet learns is exact about whether its chain may have applied:
//! a chain refused because the queue is full, or still queued here when its packet
//! stopped waiting, was never sent ([`LedgerAnswer::NotSent`]); a sent request
//! that got no answer in time may still apply ([`LedgerAnswer::Unknown`]). Keeping
//! the queue here, with few requests in flight, is also what keeps stale holds
//! from piling up in the ledger client while the cluster is away: they expire
//! in this queue, unsent, and lock no balance when the cluster returns.

use super::backend::LedgerBackend;
use super::{Transfer, BATCH_EVENTS_MAX};
use crate::clock::within;
use crate::in_flight::InFlight;
use crate::limits::{LATENCY_US_MAX, QUEUE_EVENTS_MAX, REQUESTS_IN_FLIGHT_MAX};
use crate::per_pass::PerPass;
use futures::channel::oneshot;
use hdrhistogram::Histogram;
use riptide_proto::flow::hold::{LedgerAnswer, Transfers};
use riptide_proto::limits::LEGS_MAX;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Waiter {
    /// The chain, on the stack: a packet's chain is at most [`LEGS_MAX`] long.
    chain: Transfers,
    reply: oneshot::Sender<LedgerAnswer>,
}

/// Batch sizes and request latency, for the shard's metrics.
#[derive(Debug, Clone)]
pub struct BatchStats {
    pub events: Histogram<u64>,
    pub latency_us: Histogram<u64>,
}

impl Default for BatchStats {
    fn default() -> Self {
        BatchStats {
            events: Histogram::new_with_max(BATCH_EVENTS_MAX as u64, 2)
                .expect("constant histogram bounds are valid"),
            latency_us: Histogram::new_with_max(LATENCY_US_MAX, 3)
                .expect("constant histogram bounds are valid"),
        }
    }
}

pub struct TransferBatcher {
    backend: Arc<LedgerBackend>,
    queue: PerPass<Waiter>,
    in_flight: Rc<Cell<u32>>,
    stats: RefCell<BatchStats>,
}

impl TransferBatcher {
    pub fn new(backend: Arc<LedgerBackend>) -> Rc<TransferBatcher> {
        Rc::new(TransferBatcher {
            backend,
            queue: PerPass::new(QUEUE_EVENTS_MAX),
            in_flight: Rc::new(Cell::new(0)),
            stats: RefCell::new(BatchStats::default()),
        })
    }

    pub fn stats(&self) -> BatchStats {
        self.stats.borrow().clone()
    }

    /// Submits one linked chain and waits for its results, at most `wait`.
    pub async fn submit(self: &Rc<Self>, chain: &Transfers, wait: Duration) -> LedgerAnswer {
        let count = chain.as_slice().len();
        assert!(count > 0 && count <= LEGS_MAX);
        // The embedded ledger answers at once, in process: a batch would only add a
        // task, a channel and a wake-up per packet, and save nothing.
        if let Some(ledger) = self.backend.in_process() {
            // No request to time: only the events are counted.
            let _ = self.stats.borrow_mut().events.record(count as u64);
            return match ledger.create_transfers_now(chain.as_slice()) {
                Ok(results) => LedgerAnswer::Created(results),
                Err(_) => LedgerAnswer::NotSent,
            };
        }
        let (reply, answer) = oneshot::channel();
        let waiter = Waiter {
            chain: *chain,
            reply,
        };
        if self.queue.push(waiter, count).is_err() {
            return LedgerAnswer::NotSent;
        }
        self.schedule_flush();
        match within(wait, answer).await {
            Some(Ok(answer)) => answer,
            // Dropped unanswered: the batcher is gone, the request may be out.
            Some(Err(_)) => LedgerAnswer::Unknown,
            // Still queued here, it will never be sent (the flush skips chains
            // whose packet stopped waiting), but the packet cannot tell whether it
            // had been: unknown, settled by a lookup.
            None => LedgerAnswer::Unknown,
        }
    }

    /// Looks transfers up, at most `wait`: which of `ids` exist.
    pub async fn lookup(&self, ids: &[u128], wait: Duration) -> LedgerAnswer {
        match within(wait, self.backend.lookup_transfers(ids)).await {
            Some(Ok(found)) => LedgerAnswer::Found(
                ids.iter()
                    .map(|id| found.iter().any(|t| t.id == *id))
                    .collect(),
            ),
            Some(Err(_)) | None => LedgerAnswer::Unknown,
        }
    }

    fn schedule_flush(self: &Rc<Self>) {
        let batcher = Rc::clone(self);
        self.queue.schedule(|| batcher.flush());
    }

    async fn flush(self: Rc<Self>) {
        self.queue.begin_flush();
        while self.in_flight.get() < REQUESTS_IN_FLIGHT_MAX {
            let Some((chunk, transfers)) = self.take_chunk() else {
                return;
            };
            let request = InFlight::enter(&self.in_flight);
            let batcher = Rc::clone(&self);
            glommio::spawn_local(async move {
                batcher.send_chunk(chunk, transfers).await;
                drop(request);
                if !batcher.queue.is_empty() {
                    batcher.schedule_flush();
                }
            })
            .detach();
        }
    }

    /// The next request: queued chains whose packets still wait, in order, up to
    /// [`BATCH_EVENTS_MAX`] events. A packet that stopped waiting has settled its
    /// chain as unknown; its lookup finds it absent, as it is: never sent.
    fn take_chunk(&self) -> Option<(Vec<Waiter>, Vec<Transfer>)> {
        let chunk = self
            .queue
            .take(BATCH_EVENTS_MAX, |waiter| !waiter.reply.is_canceled());
        let transfers: Vec<Transfer> = chunk
            .iter()
            .flat_map(|waiter| waiter.chain.as_slice().iter().copied())
            .collect();
        (!chunk.is_empty()).then_some((chunk, transfers))
    }

    async fn send_chunk(&self, chunk: Vec<Waiter>, transfers: Vec<Transfer>) {
        debug_assert!(!transfers.is_empty() && transfers.len() <= BATCH_EVENTS_MAX);
        let started = Instant::now();
        let result = self.backend.create_transfers(&transfers).await;
        {
            let mut stats = self.stats.borrow_mut();
            let _ = stats.events.record(transfers.len() as u64);
            let _ = stats
                .latency_us
                .record((started.elapsed().as_micros() as u64).min(LATENCY_US_MAX));
        }
        let mut offset = 0;
        for waiter in chunk {
            let count = waiter.chain.as_slice().len();
            let answer = match &result {
                Ok(results) if results.len() == transfers.len() => {
                    LedgerAnswer::Created(results[offset..offset + count].to_vec())
                }
                // A timeout, a client error, a short answer: it may have applied.
                _ => LedgerAnswer::Unknown,
            };
            offset += count;
            // The packet may have given up waiting; nothing to do then.
            let _ = waiter.reply.send(answer);
        }
    }
}

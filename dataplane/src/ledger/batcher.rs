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

use super::hold::LedgerBackend;
use super::{Transfer, BATCH_EVENTS_MAX};
use crate::limits::{QUEUE_EVENTS_MAX, REQUESTS_IN_FLIGHT_MAX};
use futures::channel::oneshot;
use hdrhistogram::Histogram;
use riptide_proto::flow::hold::{LedgerAnswer, Transfers};
use riptide_proto::limits::LEGS_MAX;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Waiter {
    /// The chain, on the stack: a packet's chain is at most [`LEGS_MAX`] long.
    chain: Transfers,
    reply: oneshot::Sender<LedgerAnswer>,
}

#[derive(Default)]
struct Queued {
    events: usize,
    waiters: VecDeque<Waiter>,
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
            latency_us: Histogram::new_with_max(60_000_000, 3)
                .expect("constant histogram bounds are valid"),
        }
    }
}

pub struct TransferBatcher {
    backend: Arc<LedgerBackend>,
    queue: RefCell<Queued>,
    flush_scheduled: Cell<bool>,
    in_flight: Cell<u32>,
    stats: RefCell<BatchStats>,
}

impl TransferBatcher {
    pub fn new(backend: Arc<LedgerBackend>) -> Rc<TransferBatcher> {
        Rc::new(TransferBatcher {
            backend,
            queue: RefCell::new(Queued::default()),
            flush_scheduled: Cell::new(false),
            in_flight: Cell::new(0),
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
        {
            let mut queue = self.queue.borrow_mut();
            if queue.events + count > QUEUE_EVENTS_MAX {
                return LedgerAnswer::NotSent;
            }
            queue.events += count;
            queue.waiters.push_back(Waiter {
                chain: *chain,
                reply,
            });
        }
        self.schedule_flush();
        let answer = async { Some(answer.await) };
        let deadline = async {
            glommio::timer::sleep(wait).await;
            None
        };
        match futures_lite::future::or(answer, deadline).await {
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
        let lookup = async { Some(self.backend.lookup_transfers(ids).await) };
        let deadline = async {
            glommio::timer::sleep(wait).await;
            None
        };
        match futures_lite::future::or(lookup, deadline).await {
            Some(Ok(found)) => LedgerAnswer::Found(
                ids.iter()
                    .map(|id| found.iter().any(|t| t.id == *id))
                    .collect(),
            ),
            Some(Err(_)) | None => LedgerAnswer::Unknown,
        }
    }

    fn schedule_flush(self: &Rc<Self>) {
        if !self.flush_scheduled.replace(true) {
            let batcher = Rc::clone(self);
            glommio::spawn_local(async move { batcher.flush().await }).detach();
        }
    }

    async fn flush(self: Rc<Self>) {
        // One yield lets every packet that is ready in this pass join the batch.
        futures_lite::future::yield_now().await;
        self.flush_scheduled.set(false);
        while self.in_flight.get() < REQUESTS_IN_FLIGHT_MAX {
            let Some((chunk, transfers)) = self.take_chunk() else {
                return;
            };
            self.in_flight.set(self.in_flight.get() + 1);
            let batcher = Rc::clone(&self);
            glommio::spawn_local(async move {
                batcher.send_chunk(chunk, transfers).await;
                batcher.in_flight.set(batcher.in_flight.get() - 1);
                if !batcher.queue.borrow().waiters.is_empty() {
                    batcher.schedule_flush();
                }
            })
            .detach();
        }
    }

    /// The next request: queued chains whose packets still wait, in order, up to
    /// [`BATCH_EVENTS_MAX`] events.
    fn take_chunk(&self) -> Option<(Vec<Waiter>, Vec<Transfer>)> {
        let mut queue = self.queue.borrow_mut();
        let mut chunk = Vec::new();
        let mut transfers = Vec::new();
        while let Some(waiter) = queue.waiters.front() {
            let count = waiter.chain.as_slice().len();
            if transfers.len() + count > BATCH_EVENTS_MAX {
                break;
            }
            let waiter = queue.waiters.pop_front().expect("peeked");
            queue.events -= count;
            // A packet that stopped waiting has settled its chain as unknown; its
            // lookup finds it absent, as it is: never sent.
            if waiter.reply.is_canceled() {
                continue;
            }
            transfers.extend_from_slice(waiter.chain.as_slice());
            chunk.push(waiter);
        }
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
                .record((started.elapsed().as_micros() as u64).min(60_000_000));
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

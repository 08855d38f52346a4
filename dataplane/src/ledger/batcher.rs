//! Per-shard batching of ledger transfers (TigerBeetle's; the embedded ledger is
//! called directly). Every packet that reaches the ledger step
//! during one pass of the shard's executor adds its chain to a queue; a flush task
//! that yields once (letting the other ready packets join) sends the whole queue as
//! one request of at most [`BATCH_EVENTS_MAX`] events, and wakes each packet with the
//! results of its own chain. A chain is never split across requests, so it stays
//! atomic.

use super::hold::LedgerBackend;
use super::{CreateTransferResult, LedgerError, Transfer, BATCH_EVENTS_MAX};
use futures::channel::oneshot;
use hdrhistogram::Histogram;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

type ChainResult = Result<Vec<CreateTransferResult>, LedgerError>;

struct Waiter {
    start: usize,
    count: usize,
    reply: oneshot::Sender<ChainResult>,
}

#[derive(Default)]
struct Queue {
    transfers: Vec<Transfer>,
    waiters: Vec<Waiter>,
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
    queue: RefCell<Queue>,
    flush_scheduled: Cell<bool>,
    stats: RefCell<BatchStats>,
}

impl TransferBatcher {
    pub fn new(backend: Arc<LedgerBackend>) -> Rc<TransferBatcher> {
        Rc::new(TransferBatcher {
            backend,
            queue: RefCell::new(Queue::default()),
            flush_scheduled: Cell::new(false),
            stats: RefCell::new(BatchStats::default()),
        })
    }

    pub fn stats(&self) -> BatchStats {
        self.stats.borrow().clone()
    }

    /// Submits one linked chain and waits for its results.
    pub async fn submit(self: &Rc<Self>, chain: &[Transfer]) -> ChainResult {
        assert!(!chain.is_empty() && chain.len() <= BATCH_EVENTS_MAX);
        // The embedded ledger answers at once, in process: a batch would only add a
        // task, a channel and a wake-up per packet, and save nothing.
        if let Some(ledger) = self.backend.in_process() {
            // No request to time: only the events are counted.
            let _ = self.stats.borrow_mut().events.record(chain.len() as u64);
            return ledger.create_transfers_now(chain);
        }
        let (reply, answer) = oneshot::channel();
        {
            let mut queue = self.queue.borrow_mut();
            let start = queue.transfers.len();
            queue.waiters.push(Waiter {
                start,
                count: chain.len(),
                reply,
            });
            queue.transfers.extend_from_slice(chain);
        }
        if !self.flush_scheduled.replace(true) {
            let batcher = Rc::clone(self);
            glommio::spawn_local(async move { batcher.flush().await }).detach();
        }
        answer
            .await
            .unwrap_or_else(|_| Err(LedgerError::Unavailable("batch dropped".into())))
    }

    async fn flush(self: Rc<Self>) {
        // One yield lets every packet that is ready in this pass join the batch.
        futures_lite::future::yield_now().await;
        self.flush_scheduled.set(false);
        let queue = std::mem::take(&mut *self.queue.borrow_mut());
        let mut waiters = queue.waiters.into_iter().peekable();
        while waiters.peek().is_some() {
            let mut chunk = Vec::new();
            let mut transfers = Vec::new();
            while let Some(waiter) =
                waiters.next_if(|w| transfers.len() + w.count <= BATCH_EVENTS_MAX)
            {
                transfers
                    .extend_from_slice(&queue.transfers[waiter.start..waiter.start + waiter.count]);
                chunk.push(waiter);
            }
            self.send_chunk(chunk, transfers).await;
        }
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
            let answer = match &result {
                Ok(results) if results.len() == transfers.len() => {
                    Ok(results[offset..offset + waiter.count].to_vec())
                }
                Ok(_) => Err(LedgerError::Unavailable(
                    "ledger answered a different number of results".into(),
                )),
                Err(error) => Err(error.clone()),
            };
            offset += waiter.count;
            // The packet may have given up waiting; nothing to do then.
            let _ = waiter.reply.send(answer);
        }
    }
}

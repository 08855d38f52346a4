//! Per-shard batching of store operations: every packet that reaches the store
//! during one pass of the shard's executor joins one Redis pipeline, on the same
//! per-pass queue as the ledger's transfers ([`PerPass`]).

use super::memory::MemoryStore;
use super::redis::{Batch, RedisWorker};
use super::{StoreAnswer, StoreError, StoreOp};
use crate::clock::within;
use crate::limits::{PIPELINE_OPS_MAX, STORE_QUEUE_OPS_MAX};
use crate::per_pass::PerPass;
use futures::channel::oneshot;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Where the answer to one operation goes.
type Reply = oneshot::Sender<Result<StoreAnswer, StoreError>>;

/// Which store a shard talks to.
#[derive(Debug)]
pub enum StoreBackend {
    Memory(Arc<MemoryStore>),
    Redis(RedisWorker),
}

pub struct StoreBatcher {
    backend: StoreBackend,
    queue: PerPass<(StoreOp, Option<Reply>)>,
    /// Longest wait for an answer, worker queue included.
    timeout: Duration,
}

impl StoreBatcher {
    pub fn new(backend: StoreBackend, timeout: Duration) -> Rc<StoreBatcher> {
        Rc::new(StoreBatcher {
            backend,
            queue: PerPass::new(STORE_QUEUE_OPS_MAX),
            timeout,
        })
    }

    /// (pipelines sent to Redis, operations they carried); none in process.
    pub fn pipeline_counts(&self) -> (u64, u64) {
        match &self.backend {
            StoreBackend::Memory(_) => (0, 0),
            StoreBackend::Redis(worker) => worker.pipeline_counts(),
        }
    }

    /// Runs one operation, batched with the others of this executor pass.
    pub async fn execute(self: &Rc<Self>, op: StoreOp) -> Result<StoreAnswer, StoreError> {
        self.execute_within(op, self.timeout).await
    }

    /// [`StoreBatcher::execute`], waiting at most `wait` (and never longer than
    /// the store's own timeout). An operation still queued when its wait ends is
    /// never sent.
    pub async fn execute_within(
        self: &Rc<Self>,
        op: StoreOp,
        wait: Duration,
    ) -> Result<StoreAnswer, StoreError> {
        let wait = wait.min(self.timeout);
        if let StoreBackend::Memory(store) = &self.backend {
            return Ok(store.execute(op));
        }
        let (reply, answer) = oneshot::channel();
        self.enqueue(op, Some(reply));
        match within(wait, answer).await {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(StoreError::Unavailable("batch dropped".into())),
            None => Err(StoreError::Unavailable("no answer in time".into())),
        }
    }

    /// Runs an operation whose answer nobody waits for (a settle): in process at
    /// once, or in this pass's pipeline. A lost one is for the journal's sweep.
    pub fn execute_detached(self: &Rc<Self>, op: StoreOp) {
        match &self.backend {
            StoreBackend::Memory(store) => {
                store.execute(op);
            }
            StoreBackend::Redis(_) => self.enqueue(op, None),
        }
    }

    /// Queues an operation for this pass's pipeline; past the queue's bound it is
    /// answered busy at once (never sent).
    fn enqueue(self: &Rc<Self>, op: StoreOp, reply: Option<Reply>) {
        if let Err((_, reply)) = self.queue.push((op, reply), 1) {
            if let Some(reply) = reply {
                let _ = reply.send(Err(StoreError::Busy));
            }
            return;
        }
        let batcher = Rc::clone(self);
        self.queue.schedule(|| batcher.flush());
    }

    async fn flush(self: Rc<Self>) {
        self.queue.begin_flush();
        let StoreBackend::Redis(worker) = &self.backend else {
            return;
        };
        // Bounded by the queue's bound: each pass sends up to PIPELINE_OPS_MAX.
        while !self.queue.is_empty() {
            let batch: Batch = self.queue.take(PIPELINE_OPS_MAX, |_| true);
            if let Err(refused) = worker.send(batch) {
                for reply in refused.into_iter().filter_map(|(_, reply)| reply) {
                    let _ = reply.send(Err(StoreError::Busy));
                }
            }
        }
    }
}

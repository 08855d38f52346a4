//! Per-shard batching of receipt store operations: every packet that reaches the
//! store during one pass of the shard's executor joins one Redis pipeline, as the
//! ledger batcher does for transfers.

use super::memory::MemoryStore;
use super::redis::{Batch, RedisWorker};
use super::{StoreAnswer, StoreError, StoreOp};
use crate::limits::PIPELINE_OPS_MAX;
use futures::channel::oneshot;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Which store a shard talks to.
#[derive(Debug)]
pub enum StoreBackend {
    Memory(Arc<MemoryStore>),
    Redis(RedisWorker),
}

pub struct StoreBatcher {
    backend: StoreBackend,
    queue: RefCell<Batch>,
    flush_scheduled: Cell<bool>,
    /// Longest wait for an answer, worker queue included.
    timeout: Duration,
}

impl StoreBatcher {
    pub fn new(backend: StoreBackend, timeout: Duration) -> Rc<StoreBatcher> {
        Rc::new(StoreBatcher {
            backend,
            queue: RefCell::new(Vec::new()),
            flush_scheduled: Cell::new(false),
            timeout,
        })
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
        let answer = async { Some(answer.await) };
        let deadline = async {
            glommio::timer::sleep(wait).await;
            None
        };
        match futures_lite::future::or(answer, deadline).await {
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

    fn enqueue(
        self: &Rc<Self>,
        op: StoreOp,
        reply: Option<oneshot::Sender<Result<StoreAnswer, StoreError>>>,
    ) {
        self.queue.borrow_mut().push((op, reply));
        if !self.flush_scheduled.replace(true) {
            let batcher = Rc::clone(self);
            glommio::spawn_local(async move { batcher.flush().await }).detach();
        }
    }

    async fn flush(self: Rc<Self>) {
        // One yield lets every packet that is ready in this pass join the batch.
        futures_lite::future::yield_now().await;
        self.flush_scheduled.set(false);
        let StoreBackend::Redis(worker) = &self.backend else {
            return;
        };
        let mut queue = std::mem::take(&mut *self.queue.borrow_mut());
        while !queue.is_empty() {
            let rest = queue.split_off(queue.len().min(PIPELINE_OPS_MAX));
            if let Err(refused) = worker.send(queue) {
                for reply in refused.into_iter().filter_map(|(_, reply)| reply) {
                    let _ = reply.send(Err(StoreError::Busy));
                }
            }
            queue = rest;
        }
    }
}

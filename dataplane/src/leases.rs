//! The IO of shared limits: carries the pipeline's lease requests
//! ([`riptide_proto::connector::pipeline::LeaseRequest`]) to the receipt store,
//! batched with the shard's other store operations, and reports each answer back
//! to the shard's limiters. A packet waits for a lease only when its peer's
//! allowance is empty; otherwise leases go out ahead, in the background.

use crate::clock::unix_now_ms;
use crate::limits::LEASE_WAIT;
use crate::store::batcher::StoreBatcher;
use crate::store::{limit_key, StoreAnswer, StoreOp};
use futures::channel::oneshot;
use riptide_proto::connector::pipeline::{LeaseRequest, LimitKind, PeerLimiters};
use std::cell::RefCell;
use std::rc::Rc;

/// Packets waiting for a lease on its way: each is woken once any lease of the
/// shard lands. At most one entry per packet in flight on the shard.
pub type LeaseWaiters = Rc<RefCell<Vec<oneshot::Sender<()>>>>;

/// Waits until a lease of the shard lands, or [`LEASE_WAIT`] has passed.
pub async fn wait_for_lease(waiters: &LeaseWaiters) {
    let (woken, wait) = oneshot::channel();
    waiters.borrow_mut().push(woken);
    let timer = glommio::timer::sleep(LEASE_WAIT);
    futures::pin_mut!(timer);
    let _ = futures::future::select(wait, timer).await;
}

/// Asks the store for each lease, together, and reports every answer (a lease
/// with no answer in [`LEASE_WAIT`] counts as failed: the limiter falls back to
/// this data plane's own bucket for a while).
pub async fn lease(
    limiters: Rc<RefCell<PeerLimiters>>,
    store: Rc<StoreBatcher>,
    waiters: LeaseWaiters,
    requests: Vec<LeaseRequest>,
) {
    let asks = requests.iter().map(|request| {
        let kind = match request.kind {
            LimitKind::Rate => "rate",
            LimitKind::Throughput => "throughput",
        };
        let op = StoreOp::Lease {
            key: limit_key(&request.peer_id, kind),
            limit_per_second: request.limit_per_second,
            tokens: request.tokens,
        };
        store.execute_within(op, LEASE_WAIT)
    });
    let answers = futures::future::join_all(asks).await;
    let now_ms = unix_now_ms();
    let mut limiters = limiters.borrow_mut();
    for (request, answer) in requests.iter().zip(answers) {
        let granted = match answer {
            Ok(StoreAnswer::Leased(granted)) => Some(granted.min(request.tokens)),
            Ok(other) => {
                tracing::warn!(?other, "the store answered a lease with something else");
                None
            }
            Err(error) => {
                tracing::warn!(%error, peer = %request.peer_id, "shared limit lease failed; this data plane's own bucket decides for now");
                None
            }
        };
        limiters.lease_answered(request, granted, now_ms);
    }
    drop(limiters);
    for waiter in waiters.borrow_mut().drain(..) {
        let _ = waiter.send(());
    }
}

//! The one per-pass queue under both batchers (ledger transfers, store operations):
//! every task that reaches it during one pass of the shard's executor adds its item,
//! and a flush task, scheduled by the first of them, yields once (so that the other
//! ready tasks join) and then takes the queue in requests. The queue is bounded by
//! weight (transfers, operations), so a backend that falls behind refuses new work
//! at once instead of queueing it without bound.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;

pub struct PerPass<T> {
    items: RefCell<VecDeque<(T, usize)>>,
    weight: Cell<usize>,
    weight_max: usize,
    flush_scheduled: Cell<bool>,
}

impl<T> PerPass<T> {
    /// A queue of at most `weight_max` in all.
    pub fn new(weight_max: usize) -> PerPass<T> {
        assert!(weight_max > 0);
        PerPass {
            items: RefCell::new(VecDeque::new()),
            weight: Cell::new(0),
            weight_max,
            flush_scheduled: Cell::new(false),
        }
    }

    /// Queues `item` of `weight`; gives it back when the queue would pass its bound.
    pub fn push(&self, item: T, weight: usize) -> Result<(), T> {
        debug_assert!(weight > 0 && weight <= self.weight_max);
        if self.weight.get() + weight > self.weight_max {
            return Err(item);
        }
        self.weight.set(self.weight.get() + weight);
        self.items.borrow_mut().push_back((item, weight));
        Ok(())
    }

    /// Spawns `flush()` after one yield, unless a flush is scheduled already for
    /// this pass. The flush calls [`PerPass::begin_flush`] first.
    pub fn schedule<F: Future<Output = ()> + 'static>(&self, flush: impl FnOnce() -> F) {
        if !self.flush_scheduled.replace(true) {
            let flush = flush();
            glommio::spawn_local(async move {
                // One yield lets every task that is ready in this pass join.
                futures_lite::future::yield_now().await;
                flush.await;
            })
            .detach();
        }
    }

    /// From now on, a push schedules another flush.
    pub fn begin_flush(&self) {
        self.flush_scheduled.set(false);
    }

    /// Items from the front, in order, up to `weight_max` in all (at least one item,
    /// whatever its weight); those `keep` refuses are dropped on the way, and count
    /// for nothing.
    pub fn take(&self, weight_max: usize, mut keep: impl FnMut(&T) -> bool) -> Vec<T> {
        let mut items = self.items.borrow_mut();
        let mut taken = Vec::new();
        let mut taken_weight = 0;
        while let Some((_, weight)) = items.front() {
            if !taken.is_empty() && taken_weight + weight > weight_max {
                break;
            }
            let Some((item, weight)) = items.pop_front() else {
                break;
            };
            self.weight.set(self.weight.get() - weight);
            if keep(&item) {
                taken_weight += weight;
                taken.push(item);
            }
        }
        taken
    }

    pub fn is_empty(&self) -> bool {
        self.items.borrow().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_refuses_and_take_keeps_order_and_weight() {
        let queue = PerPass::new(10);
        assert_eq!(queue.push("a", 4), Ok(()));
        assert_eq!(queue.push("b", 4), Ok(()));
        assert_eq!(queue.push("c", 4), Err("c"));
        assert_eq!(queue.push("c", 2), Ok(()));
        // "a" and "b" weigh 8; "c" would make 10 > 9.
        assert_eq!(queue.take(9, |_| true), vec!["a", "b"]);
        assert_eq!(queue.push("d", 8), Ok(()));
        // A dropped item counts for nothing: "c" is dropped, "d" taken alone.
        assert_eq!(queue.take(8, |item| *item != "c"), vec!["d"]);
        assert!(queue.is_empty());
        assert_eq!(queue.push("e", 10), Ok(()));
        // At least one item, whatever its weight.
        assert_eq!(queue.take(1, |_| true), vec!["e"]);
    }
}

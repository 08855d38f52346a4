//! Counts of work in flight, kept by guards so that no count is left behind when a
//! task stops at an `.await` (a shard's packets, its waiting requests, a batcher's
//! requests at the ledger).

use std::cell::Cell;
use std::rc::Rc;

/// One unit counted in `count` for as long as the guard lives.
pub struct InFlight(Rc<Cell<u32>>);

impl InFlight {
    pub fn enter(count: &Rc<Cell<u32>>) -> InFlight {
        count.set(count.get() + 1);
        InFlight(Rc::clone(count))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        debug_assert!(self.0.get() > 0, "an in-flight count went below zero");
        self.0.set(self.0.get().saturating_sub(1));
    }
}

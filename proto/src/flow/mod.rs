//! The flows that move money, as sans-IO state machines: [`forward`] (hold, call
//! the next hop, post or void) and [`credit`] (hold, count in the store, post, or
//! undo), both on top of one ledger step, [`hold`]; and [`payment`], an outgoing
//! payment's life (fund its account, send, settle), resumable by any owner. Each takes `now`, the ids and
//! every outcome as inputs and answers what to do next, so the shard's drivers stay
//! thin and a seeded simulation (the data plane's `flow_sim`, against its embedded
//! ledger) can run them through lost answers, late applies, crashes and expiries by
//! the thousand.

pub mod credit;
pub mod forward;
pub mod hold;
pub mod payment;

//! Riptide's data plane.
//!
//! The protocol and decision code (packets, STREAM, the connector's decisions, the
//! money flows, the state document) is the sans-IO crate `riptide_proto`; this crate
//! is its IO side: [`http`] (ingress and peer client on glommio), [`shard`]
//! (executors and ownership), [`drivers`] (the flows' requests and waits),
//! [`ledger`] and [`receipts`] (the engines), [`admin`], [`node`].
#![cfg_attr(test, allow(clippy::too_many_lines))]

pub mod admin;
pub mod config;
pub mod delivery;
pub mod drivers;
#[cfg(test)]
mod flow_sim;
pub mod http;
pub mod ledger;
pub mod limits;
pub mod metrics;
pub mod node;
pub mod outgoing;
pub mod receipts;
pub mod shard;

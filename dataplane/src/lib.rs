//! Riptide's data plane: the IO side of the sans-IO core in `riptide_proto`.
//!
//! A packet's way through this crate: [`http::ingress`] (ILP-over-HTTP from a peer)
//! → [`shard`] (the owner shard runs the connector's decision) → either
//! [`drivers`] with [`http::peer`] (forward: hold in the [`ledger`], call the next
//! peer, post or void) or [`local`] (our own STREAM receiver: hold, count in the
//! [`store`], post). [`outgoing_payments`] sends STREAM payments from a wallet
//! through the same pipeline; [`admin`] is the control plane's API; [`node`] starts
//! the shards. Every bound is in [`limits`]; the wall clock is read in [`clock`].
#![cfg_attr(test, allow(clippy::too_many_lines))]

pub mod admin;
pub mod clock;
pub mod config;
pub mod drivers;
pub mod http;
pub mod in_flight;
pub mod leases;
pub mod ledger;
pub mod limits;
pub mod local;
pub mod mesh;
pub mod metrics;
pub mod node;
pub mod outgoing_payments;
pub mod per_pass;
pub mod placement;
pub mod rates_feed;
pub mod resolver;
pub mod shard;
pub mod shared;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod webhooks;

#[cfg(test)]
mod flow_sim;
#[cfg(test)]
mod payment_sim;

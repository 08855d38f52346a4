//! Riptide's data plane.
//!
//! Sans-IO protocol and decision code: [`packet`] (ILPv4 codec), [`stream`] (STREAM
//! packets, crypto, connection tokens, receipts), [`connector`] (the pipeline),
//! [`routing`], [`rates`]; nothing there reads a clock or touches a socket. The IO
//! edges: [`http`] (ingress and peer client on glommio), [`shard`] (executors and
//! ownership), [`ledger`], [`admin`], [`node`].

pub mod admin;
pub mod config;
pub mod connector;
pub mod delivery;
pub mod drivers;
pub mod flow;
pub mod http;
pub mod ledger;
pub mod metrics;
pub mod node;
pub mod outgoing;
pub mod packet;
pub mod rates;
pub mod receipts;
pub mod routing;
pub mod shard;
pub mod stream;

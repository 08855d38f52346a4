//! Riptide's sans-IO core. Nothing in this crate reads a clock, touches a socket or
//! a file, or spawns a task: its manifest names no runtime or IO crate, so the
//! compiler keeps it that way. Callers pass `now`, ids, IVs and every outcome in, so
//! each part is unit-tested, fuzzed and benchmarked without a runtime.
//!
//! - [`packet`]: ILPv4 (OER, Prepare/Fulfill/Reject, addresses, ILDCP), zero-copy.
//! - [`stream`]: STREAM packets, frames, crypto, connection tokens, receipts, and the
//!   receiver's and sender's state machines.
//! - [`connector`]: the pipeline's decisions (checks, routing, conversion, limits)
//!   over a [`connector::snapshot::Snapshot`] of the state.
//! - [`flow`]: the flows that move money (forward, local credit) as state machines.
//! - [`ledger`]: TigerBeetle's data model, Riptide's account ids, the audit's checks.
//! - [`routing`], [`rates`]: longest-prefix routes and exchange rates;
//!   [`rates_feed`]: Rafiki's rates feed, read the same by both planes.
//! - [`spsp`]: the SPSP answer and its base64.
//! - [`dns`]: DNS queries and answers, for the resolver off the shards' threads.
//! - [`admin_api`]: the admin API's requests and answers, typed once for both sides.
//! - [`state`]: the state document both planes share, with its rules.
//! - [`limits`]: every bound of this crate, with the relations between them.
//! - [`otlp`]: OpenTelemetry metrics as OTLP/HTTP JSON, under Rafiki's names.
//! - [`webhook`]: Rafiki's webhook events, their canonical body and signature.
//! - [`http1`]: the HTTP/1.1 codec of the packet path, the load generator and tests.
#![cfg_attr(test, allow(clippy::too_many_lines))]

pub mod admin_api;
pub mod connector;
pub mod dns;
pub mod flow;
pub mod http1;
pub mod ledger;
pub mod limits;
pub mod otlp;
pub mod packet;
pub mod rates;
pub mod rates_feed;
pub mod routing;
pub mod spsp;
pub mod state;
pub mod stream;
pub mod webhook;

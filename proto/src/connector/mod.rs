//! The connector's decisions, sans-IO: what to do with a Prepare ([`pipeline`]),
//! the rejects it makes ([`reject`]), the compiled state it decides on
//! ([`snapshot`]), and its per-peer rate and throughput buckets ([`token_bucket`]),
//! on this data plane or leased from a bucket every data plane shares ([`lease`]).

pub mod lease;
pub mod pipeline;
pub mod reject;
pub mod snapshot;
pub mod token_bucket;

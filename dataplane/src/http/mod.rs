//! HTTP at the edges. The packet path (the ILP-over-HTTP ingress and the peer client
//! pool) speaks a small HTTP/1.1 of its own: `riptide_proto::http1` parses and writes
//! messages sans-IO,
//! `wire` moves them over glommio sockets. SPSP on the public port and the admin API
//! use hyper, through the IO traits in `io`.

pub mod burst;
pub mod ingress;
pub mod io;
pub mod peer_client;
pub mod spsp;
pub mod wire;

//! HTTP at the edges. The packet path speaks a small HTTP/1.1 of its own:
//! `riptide_proto::http1` parses and writes messages sans-IO, [`wire`] moves them
//! over glommio sockets for [`ingress`] (ILP-over-HTTP from peers) and [`peer`] (the
//! client towards them: pool and bursts). SPSP on the public port ([`spsp`]) and the
//! admin API use hyper, through the IO traits in [`io`]. Every port admits
//! connections through the [`gate`] (per port, per source, per peer) and closes
//! slow ones at the [`deadline`]s of their requests.

pub mod client;
pub mod deadline;
pub mod gate;
pub mod ingress;
pub mod io;
pub mod peer;
pub mod spsp;
pub mod tls_server;
pub mod transport;
pub mod wire;

//! HTTP at the edges: ILP-over-HTTP ingress, the peer client pool, SPSP on the
//! public port, and hyper's IO traits over glommio sockets.

pub mod ingress;
pub mod io;
pub mod peer_client;
pub mod spsp;

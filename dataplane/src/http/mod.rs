//! HTTP at the edges: ILP-over-HTTP ingress, the peer client pool, and hyper's IO
//! traits over glommio sockets.

pub mod ingress;
pub mod io;
pub mod peer_client;

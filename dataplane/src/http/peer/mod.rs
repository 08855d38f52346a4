//! The ILP-over-HTTP client of a shard, towards its peers: one keep-alive pool per
//! peer endpoint ([`pool`]). A request checks a connection out, writes the Prepare,
//! reads the reply and puts the connection back, all in the packet's own task: no
//! dispatch task or channel. Peers with `outgoing_pipeline_max` above 1 get their
//! Prepares in bursts instead, one task per burst ([`burst`]).
//!
//! Dependencies run one way: this module uses [`burst`] and [`pool`], [`burst`]
//! uses [`pool`].

pub mod burst;
pub mod pool;

use crate::http::transport::TlsClients;
use crate::resolver::Resolver;
use burst::{Burst, Gathering};
use pool::{read_reply, Pool};
pub use pool::{OutgoingCounts, PeerCallError};
use riptide_proto::connector::snapshot::PeerEndpoint;
use riptide_proto::http1;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// The ILP-over-HTTP client of one shard.
pub struct PeerClient {
    /// Shared with the tasks of bursts in flight.
    pool: Rc<Pool>,
    /// The bursts still taking Prepares.
    gathering: Rc<Gathering>,
}

impl PeerClient {
    /// A client that opens at most `sockets_per_endpoint_max` sockets to each
    /// endpoint at once, finding endpoints' addresses with `resolver`.
    pub fn new(
        sockets_per_endpoint_max: u32,
        resolver: Arc<Resolver>,
        tls: Rc<TlsClients>,
    ) -> PeerClient {
        PeerClient {
            pool: Rc::new(Pool::new(sockets_per_endpoint_max, resolver, tls)),
            gathering: Rc::default(),
        }
    }

    /// POSTs `prepare` to the endpoint and returns the reply body of a 200. `wait` is
    /// the longest the caller will wait for it. `sender` (the sender's account)
    /// keeps each burst to one sender's packets.
    pub async fn send(
        &self,
        endpoint: &PeerEndpoint,
        (prepare, sender): (&[u8], u128),
        wait: Duration,
    ) -> Result<Vec<u8>, PeerCallError> {
        if endpoint.pipeline_max > 1 {
            return self.send_in_burst(endpoint, (prepare, sender), wait).await;
        }
        let pool = &self.pool;
        let mut connection = pool.checkout(endpoint).await?;
        pool.count_send(1);
        let mut request = Vec::with_capacity(192 + endpoint.authorization.len() + prepare.len());
        http1::write_packet_request(
            &mut request,
            &endpoint.path,
            &endpoint.authority,
            &endpoint.authorization,
            prepare,
        );
        connection
            .write_all(&request)
            .await
            .map_err(PeerCallError::Request)?;
        let (status, body, keep_alive) = read_reply(&mut connection).await?;
        if keep_alive {
            pool.checkin(&endpoint.key, connection);
        }
        if status != 200 {
            return Err(PeerCallError::Status(status));
        }
        Ok(body)
    }

    /// Joins the burst gathering for this endpoint, or opens one, with a task that
    /// writes it once the other packets of this turn have joined.
    async fn send_in_burst(
        &self,
        endpoint: &PeerEndpoint,
        (prepare, sender): (&[u8], u128),
        wait: Duration,
    ) -> Result<Vec<u8>, PeerCallError> {
        if let Some((burst, index)) = self.gathering.join(endpoint, sender, prepare, wait) {
            return burst.reply(index).await;
        }
        let burst = Rc::new(Burst::open(endpoint, prepare, wait));
        if !burst.is_full() {
            self.gathering.insert(&endpoint.key, sender, &burst);
        }
        let task = burst::drive(
            Rc::clone(&burst),
            Rc::clone(&self.pool),
            Rc::clone(&self.gathering),
            (endpoint.clone(), sender),
        );
        glommio::spawn_local(task).detach();
        burst.reply(0).await
    }

    /// Prepares written so far, and the sends that carried them.
    pub fn outgoing_counts(&self) -> OutgoingCounts {
        self.pool.outgoing_counts()
    }

    /// Closes connections idle for more than [`IDLE_IN_POOL_SWEEPS_MAX`] sweeps, for
    /// peers that no packet has gone to since; the shard calls it every second.
    pub fn sweep(&self) {
        self.pool.sweep();
    }
}

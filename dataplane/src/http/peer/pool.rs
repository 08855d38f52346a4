//! Keep-alive connections to peers, one pool per endpoint (scheme and authority), per shard: a
//! request checks a connection out and puts it back; idle ones age out. Reading a
//! reply and connecting are here too, for single requests and bursts alike.

use crate::http::transport::{TlsClients, Transport};
use crate::http::wire::{Connection, WireError};
use crate::limits::{
    IDLE_CONNECTIONS_MAX, IDLE_IN_POOL_SWEEPS_MAX, INTERIM_RESPONSES_MAX, REPLY_SIZE_MAX,
};
use crate::resolver::Resolver;
use futures::channel::oneshot;
use futures::future::Either;
use glommio::sync::Semaphore;
use riptide_proto::connector::snapshot::PeerEndpoint;
use riptide_proto::http1;
use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PeerCallError {
    #[error("connect to {authority}: {source}")]
    Connect {
        authority: String,
        source: std::io::Error,
    },
    #[error("request: {0}")]
    Request(WireError),
    #[error("peer closed the connection before replying")]
    NoReply,
    #[error("peer answered HTTP {0}")]
    Status(u16),
    /// Why a burst ended (its connection failed, or it expired), for each of its
    /// requests left unanswered.
    #[error("{0}")]
    Shared(Rc<PeerCallError>),
    #[error("peer closed the connection after an earlier reply of the same burst")]
    ClosedInBurst,
    #[error("no reply within the longest wait of the burst's packets")]
    BurstExpired,
}

/// The socket slots of one endpoint on this shard.
struct EndpointSockets {
    slots: Rc<Semaphore>,
    /// Packets waiting for a socket, oldest first: a connection coming back goes
    /// to the first still waiting rather than to the idle pool. Bounded by the
    /// packets in flight; those that stopped waiting are pruned as others join.
    waiters: RefCell<VecDeque<oneshot::Sender<Connection>>>,
}

struct Pooled {
    connection: Connection,
    /// The sweep count when it was put back.
    idle_since_sweep: u64,
}

/// Keep-alive connections of one shard, by endpoint key, and how many
/// sockets each endpoint may have open at once, idle or busy.
pub(super) struct Pool {
    /// Most recently used at the back; the oldest at the front age out first.
    idle: RefCell<HashMap<String, VecDeque<Pooled>>>,
    sweeps: Cell<u64>,
    outgoing: Cell<OutgoingCounts>,
    sockets: RefCell<FxHashMap<String, Rc<EndpointSockets>>>,
    sockets_per_endpoint_max: u64,
    resolver: Arc<Resolver>,
    tls: Rc<TlsClients>,
}

/// Prepares sent to peers and the sends that carried them: with bursts
/// (`outgoing_pipeline_max`), their ratio is the mean burst size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutgoingCounts {
    pub prepares: u64,
    pub sends: u64,
}

impl Pool {
    pub(super) fn new(
        sockets_per_endpoint_max: u32,
        resolver: Arc<Resolver>,
        tls: Rc<TlsClients>,
    ) -> Pool {
        assert!(sockets_per_endpoint_max > 0);
        Pool {
            resolver,
            tls,
            idle: RefCell::default(),
            sweeps: Cell::default(),
            outgoing: Cell::default(),
            sockets: RefCell::default(),
            sockets_per_endpoint_max: u64::from(sockets_per_endpoint_max),
        }
    }

    pub(super) fn count_send(&self, prepares: usize) {
        let mut counts = self.outgoing.get();
        counts.prepares += prepares as u64;
        counts.sends += 1;
        self.outgoing.set(counts);
    }

    /// An idle connection, or a new one once the endpoint has a socket slot free.
    /// Waits for a slot as long as its caller lets it: every caller bounds the
    /// call by its packet's deadline.
    pub(super) async fn checkout(
        &self,
        endpoint: &PeerEndpoint,
    ) -> Result<Connection, PeerCallError> {
        if let Some(connection) = self.pooled(&endpoint.key) {
            return Ok(connection);
        }
        let sockets = self.sockets_of(&endpoint.key);
        if let Ok(slot) = sockets.slots.try_acquire_static_permit(1) {
            return self.connect_in(slot, endpoint).await;
        }
        // Every slot is taken: the first of a connection coming back or a slot
        // freed (a connection closed) serves this packet.
        let (sender, handed) = oneshot::channel();
        {
            let mut waiters = sockets.waiters.borrow_mut();
            waiters.retain(|waiter| !waiter.is_canceled());
            waiters.push_back(sender);
        }
        let freed = std::pin::pin!(sockets.slots.acquire_static_permit(1));
        let first = futures::future::select(handed, freed).await;
        match first {
            Either::Left((Ok(connection), _)) => Ok(connection),
            Either::Left((Err(_), freed)) => match freed.await {
                Ok(slot) => self.connect_in(slot, endpoint).await,
                Err(_) => Err(PeerCallError::NoReply),
            },
            Either::Right((Ok(slot), _)) => self.connect_in(slot, endpoint).await,
            Either::Right((Err(_), _)) => Err(PeerCallError::NoReply),
        }
    }

    /// A new connection to `endpoint`, holding `slot` until it closes.
    async fn connect_in(
        &self,
        slot: glommio::sync::StaticPermit,
        endpoint: &PeerEndpoint,
    ) -> Result<Connection, PeerCallError> {
        // Boxed: a connect (DNS, TCP, TLS) is rare and its future large, and
        // unboxed it would size every packet's call to the peer, moved per packet.
        let mut connection = Box::pin(connect(&self.resolver, &self.tls, endpoint)).await?;
        connection.hold_slot(slot);
        Ok(connection)
    }

    fn sockets_of(&self, authority: &str) -> Rc<EndpointSockets> {
        let mut sockets = self.sockets.borrow_mut();
        if let Some(endpoint) = sockets.get(authority) {
            return Rc::clone(endpoint);
        }
        let endpoint = Rc::new(EndpointSockets {
            slots: Rc::new(Semaphore::new(self.sockets_per_endpoint_max)),
            waiters: RefCell::default(),
        });
        sockets.insert(authority.to_owned(), Rc::clone(&endpoint));
        endpoint
    }

    /// An idle connection to `authority` that is still open, if there is one. Each
    /// is asked first, with a non-blocking peek, whether the peer closed it; a stale
    /// one is dropped (closed). The pool's size bounds the loop.
    fn pooled(&self, authority: &str) -> Option<Connection> {
        let mut idle = self.idle.borrow_mut();
        let pool = idle.get_mut(authority)?;
        while let Some(pooled) = pool.pop_back() {
            if pooled.connection.is_reusable() {
                return Some(pooled.connection);
            }
        }
        None
    }

    /// Puts a connection back for the next request, unless the peer sent more than
    /// its reply (those bytes would be read as the next request's reply).
    pub(super) fn checkin(&self, authority: &str, connection: Connection) {
        if !connection.unread().is_empty() {
            return;
        }
        let sockets = self.sockets.borrow().get(authority).cloned();
        let mut connection = connection;
        if let Some(sockets) = sockets {
            // Bounded by the waiters: each turn hands over or drops one.
            let mut waiters = sockets.waiters.borrow_mut();
            while let Some(waiter) = waiters.pop_front() {
                match waiter.send(connection) {
                    Ok(()) => return,
                    Err(back) => connection = back,
                }
            }
        }
        let mut idle = self.idle.borrow_mut();
        let pool = match idle.get_mut(authority) {
            Some(pool) => pool,
            None => idle.entry(authority.to_owned()).or_default(),
        };
        drop_aged(pool, self.sweeps.get());
        if pool.len() < IDLE_CONNECTIONS_MAX {
            pool.push_back(Pooled {
                connection,
                idle_since_sweep: self.sweeps.get(),
            });
        }
    }

    /// Prepares written so far, and the sends that carried them.
    pub(super) fn outgoing_counts(&self) -> OutgoingCounts {
        self.outgoing.get()
    }

    /// Closes connections idle for more than [`IDLE_IN_POOL_SWEEPS_MAX`] sweeps.
    pub(super) fn sweep(&self) {
        let sweeps = self.sweeps.get() + 1;
        self.sweeps.set(sweeps);
        let mut idle = self.idle.borrow_mut();
        for pool in idle.values_mut() {
            drop_aged(pool, sweeps);
        }
        idle.retain(|_, pool| !pool.is_empty());
    }
}

/// Drops the pool's connections idle for too long: the oldest are at the front.
fn drop_aged(pool: &mut VecDeque<Pooled>, sweeps: u64) {
    while pool
        .front()
        .is_some_and(|oldest| sweeps - oldest.idle_since_sweep > IDLE_IN_POOL_SWEEPS_MAX)
    {
        pool.pop_front();
    }
}

/// Reads the final response: its status, body, and whether the connection may carry
/// another request.
pub(super) async fn read_reply(
    connection: &mut Connection,
) -> Result<(u16, Vec<u8>, bool), PeerCallError> {
    for _ in 0..INTERIM_RESPONSES_MAX {
        let head = connection
            .read_head(http1::parse_response)
            .await
            .map_err(PeerCallError::Request)?
            .ok_or(PeerCallError::NoReply)?;
        connection.consume_head(head.head_len);
        if (100..200).contains(&head.status) {
            continue;
        }
        let body = connection
            .read_body(head.framing, REPLY_SIZE_MAX)
            .await
            .map_err(PeerCallError::Request)?;
        return Ok((head.status, body, head.keep_alive));
    }
    Err(PeerCallError::Request(WireError::TooManyReads))
}

/// Resolves the endpoint's host (off this thread), connects, and for `https://`
/// makes the TLS handshake.
async fn connect(
    resolver: &Resolver,
    tls: &Rc<TlsClients>,
    endpoint: &PeerEndpoint,
) -> Result<Connection, PeerCallError> {
    let authority = &endpoint.authority;
    let failed = |message: String| PeerCallError::Connect {
        authority: authority.clone(),
        source: std::io::Error::other(message),
    };
    let address = resolver
        .resolve(authority)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let tcp = glommio::net::TcpStream::connect(address)
        .await
        .map_err(|e| failed(e.to_string()))?;
    // Ignoring a failure only costs latency, never correctness.
    let _ = tcp.set_nodelay(true);
    let transport = if endpoint.tls {
        let pinned = endpoint.pinned_ca_pem.as_deref();
        tls.connect(tcp, &endpoint.server_name, pinned)
            .await
            .map_err(failed)?
    } else {
        Transport::Plain(tcp)
    };
    Ok(Connection::new(transport))
}

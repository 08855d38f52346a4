//! ILP-over-HTTP client: one keep-alive pool per peer endpoint, per shard. A request
//! checks a connection out, writes the Prepare, reads the reply and puts the
//! connection back, all in the packet's own task: no dispatch task or channel. Peers
//! with `outgoing_pipeline_max` above 1 get their Prepares in bursts instead, one task
//! per burst (`burst.rs`).

use super::burst::{self, Burst};
use super::wire::{Connection, WireError};
use crate::limits::{
    IDLE_CONNECTIONS_MAX, IDLE_IN_POOL_SWEEPS_MAX, INTERIM_RESPONSES_MAX, REPLY_SIZE_MAX,
};
use crate::metrics::OutgoingCounts;
use riptide_proto::connector::snapshot::OutgoingEndpoint;
use riptide_proto::http1;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;
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

struct Pooled {
    connection: Connection,
    /// The sweep count when it was put back.
    idle_since_sweep: u64,
}

/// The ILP-over-HTTP client of one shard.
#[derive(Default)]
pub struct PeerClient {
    /// Shared with the tasks of bursts in flight.
    pool: Rc<Pool>,
}

/// Keep-alive connections of one shard, by endpoint authority, and the bursts
/// gathering Prepares.
#[derive(Default)]
pub(super) struct Pool {
    /// Most recently used at the back; the oldest at the front age out first.
    idle: RefCell<HashMap<String, VecDeque<Pooled>>>,
    /// The burst still taking Prepares, by endpoint authority.
    gathering: RefCell<HashMap<String, Rc<Burst>>>,
    sweeps: Cell<u64>,
    outgoing: Cell<OutgoingCounts>,
}

impl PeerClient {
    /// POSTs `prepare` to the endpoint and returns the reply body of a 200. `wait` is
    /// the longest the caller will wait for it.
    pub async fn send(
        &self,
        endpoint: &OutgoingEndpoint,
        prepare: &[u8],
        wait: Duration,
    ) -> Result<Vec<u8>, PeerCallError> {
        if endpoint.pipeline_max > 1 {
            return self.send_in_burst(endpoint, prepare, wait).await;
        }
        let pool = &self.pool;
        let mut connection = pool.checkout(&endpoint.authority).await?;
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
            pool.checkin(&endpoint.authority, connection);
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
        endpoint: &OutgoingEndpoint,
        prepare: &[u8],
        wait: Duration,
    ) -> Result<Vec<u8>, PeerCallError> {
        if let Some((burst, index)) = self.pool.join_gathering(endpoint, prepare, wait) {
            return burst.reply(index).await;
        }
        let burst = Rc::new(Burst::open(endpoint, prepare, wait));
        if !burst.is_full() {
            self.pool
                .gathering
                .borrow_mut()
                .insert(endpoint.authority.clone(), Rc::clone(&burst));
        }
        let task = burst::drive(
            Rc::clone(&burst),
            Rc::clone(&self.pool),
            endpoint.authority.clone(),
        );
        glommio::spawn_local(task).detach();
        burst.reply(0).await
    }

    /// Prepares written so far, and the sends that carried them.
    pub fn outgoing_counts(&self) -> OutgoingCounts {
        self.pool.outgoing.get()
    }

    /// Closes connections idle for more than [`IDLE_IN_POOL_SWEEPS_MAX`] sweeps, for
    /// peers that no packet has gone to since; the shard calls it every second.
    pub fn sweep(&self) {
        self.pool.sweep();
    }
}

impl Pool {
    pub(super) fn count_send(&self, prepares: usize) {
        let mut counts = self.outgoing.get();
        counts.prepares += prepares as u64;
        counts.sends += 1;
        self.outgoing.set(counts);
    }

    fn join_gathering(
        &self,
        endpoint: &OutgoingEndpoint,
        prepare: &[u8],
        wait: Duration,
    ) -> Option<(Rc<Burst>, usize)> {
        let mut gathering = self.gathering.borrow_mut();
        let burst = Rc::clone(gathering.get(&endpoint.authority)?);
        // Peers on one host and port share bursts; each keeps to its own limit, and
        // one whose limit is reached opens the next burst.
        if burst.len() >= endpoint.pipeline_max {
            return None;
        }
        let index = burst.join(endpoint, prepare, wait);
        if burst.is_full() {
            gathering.remove(&endpoint.authority);
        }
        Some((burst, index))
    }

    /// Takes `burst` out of the gathering map, unless it left already (it filled up).
    pub(super) fn stop_gathering(&self, authority: &str, burst: &Rc<Burst>) {
        let mut gathering = self.gathering.borrow_mut();
        if gathering
            .get(authority)
            .is_some_and(|current| Rc::ptr_eq(current, burst))
        {
            gathering.remove(authority);
        }
    }

    pub(super) async fn checkout(&self, authority: &str) -> Result<Connection, PeerCallError> {
        match self.pooled(authority) {
            Some(connection) => Ok(connection),
            None => connect(authority).await,
        }
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

    fn sweep(&self) {
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

async fn connect(authority: &str) -> Result<Connection, PeerCallError> {
    let stream = glommio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| PeerCallError::Connect {
            authority: authority.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?;
    Ok(Connection::new(stream))
}

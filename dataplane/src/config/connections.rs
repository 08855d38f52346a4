//! `[connections]`: what a client may make Riptide hold, before and after it shows a
//! token. Every bound has a default that a modest host (4,096 open files, a few GiB)
//! survives while under attack, and is checked against the others at start.

use super::{FieldError, FieldPath};
use riptide_proto::limits::HEAD_SIZE_MAX;
use serde::Deserialize;

/// Smallest pre-authentication buffer: the head of any real ILP-over-HTTP client.
const PREAUTH_BUFFER_SIZE_MIN: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionsConfig {
    /// Connections open at once on each of the three ports, from every source.
    /// Past it, new connections are closed as soon as they are accepted.
    pub per_port_max: u32,
    /// Connections one source address holds at once, over all three ports.
    pub per_source_max: u32,
    /// Connections one peer holds at once on the packet port, counted from its
    /// first authenticated request; past it the request gets 503 and the
    /// connection closes.
    pub per_peer_max: u32,
    /// Sockets open to one peer endpoint at once (idle and carrying packets), for the
    /// whole process: each shard opens its share, rounded up. A packet that finds
    /// them all busy waits for one, until its own deadline.
    pub outgoing_per_peer_max: u32,
    /// How long a connection may wait for the first byte of a request.
    pub idle_timeout_ms: u64,
    /// How long a head may take from its first byte to its end; trickling bytes
    /// does not extend it.
    pub head_timeout_ms: u64,
    /// How long a body may take after its head.
    pub body_timeout_ms: u64,
    /// Bytes a connection may buffer before its first request is authenticated: the
    /// head must fit, and nothing of the body is read before the token is checked.
    pub preauth_buffer_size_max: usize,
    /// Failed authentications (401) one source address may make in a minute before
    /// each further one waits `auth_failure_delay_ms` for its answer.
    pub auth_failures_per_source_max: u32,
    /// The wait of a 401 past that, on a connection that closes after it.
    pub auth_failure_delay_ms: u64,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        ConnectionsConfig {
            per_port_max: 8_192,
            per_source_max: 1_024,
            per_peer_max: 1_024,
            outgoing_per_peer_max: 1_024,
            idle_timeout_ms: 120_000,
            head_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            preauth_buffer_size_max: HEAD_SIZE_MAX,
            auth_failures_per_source_max: 32,
            auth_failure_delay_ms: 1_000,
        }
    }
}

impl ConnectionsConfig {
    /// Open files the process needs to reach every bound at once: every port full,
    /// every peer's sockets, and a margin for the ledger, the store and the logs.
    pub fn open_files_needed(&self, peers: usize, shards: u32) -> u64 {
        const MARGIN: u64 = 256;
        let listening = 3 * u64::from(self.per_port_max);
        let outgoing = peers as u64 * u64::from(self.outgoing_per_peer_max);
        listening + outgoing + MARGIN * u64::from(shards)
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        let path = FieldPath::root("connections");
        let positive = [
            ("per_port_max", u64::from(self.per_port_max)),
            ("per_source_max", u64::from(self.per_source_max)),
            ("per_peer_max", u64::from(self.per_peer_max)),
            (
                "outgoing_per_peer_max",
                u64::from(self.outgoing_per_peer_max),
            ),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("head_timeout_ms", self.head_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(FieldError::new(path.key(key), "must be at least 1"));
        }
        if self.per_source_max > self.per_port_max {
            return Err(FieldError::new(
                path.key("per_source_max"),
                "must not exceed per_port_max",
            ));
        }
        if !(PREAUTH_BUFFER_SIZE_MIN..=HEAD_SIZE_MAX).contains(&self.preauth_buffer_size_max) {
            return Err(FieldError::new(
                path.key("preauth_buffer_size_max"),
                format!("must be from {PREAUTH_BUFFER_SIZE_MIN} to {HEAD_SIZE_MAX} bytes"),
            ));
        }
        Ok(())
    }
}

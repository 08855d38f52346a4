//! Every bound of the load generator in one place, each with why it has its value.

use std::time::Duration;

/// Highest latency the histograms track: twice the longest a packet may be held
/// (30 s) and its reply's way back, so that no measured latency is clipped.
pub const LATENCY_US_MAX: u64 = 120_000_000;
/// Replies the sink holds back while more pipelined requests are already read, at
/// most: a burst of 64 replies of about 1 KB each leaves in one send.
pub const PENDING_REPLIES_SIZE_MAX: usize = 64 * 1024;
/// Largest body read: an ILP packet is at most about 41 KB, an SPSP answer less.
pub const BODY_SIZE_MAX: usize = 1 << 20;
/// Initial buffer of a connection: a whole burst of replies fits without regrowing.
pub const READ_SIZE: usize = 64 * 1024;
/// Longest wait for a connection to open on loopback.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the reply to a packet: past any packet's 30 s expiry.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for an SPSP answer.
pub const SPSP_TIMEOUT: Duration = Duration::from_secs(10);

const _: () = assert!(BODY_SIZE_MAX >= 41 * 1024);
const _: () = assert!(READ_SIZE <= BODY_SIZE_MAX);
const _: () = assert!(REPLY_TIMEOUT.as_secs() > 30);

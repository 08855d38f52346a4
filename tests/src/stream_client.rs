//! A minimal STREAM sender for tests that need packet-level control (a store that
//! fails between two packets, a probe, a packet below the minimum). Payments that
//! test interoperability use the npm implementations instead.

use riptide_proto::packet::{ErrorCode, Packet};
use riptide_proto::stream::sender::StreamConnection;
use riptide_proto::stream::{Frame, StreamPacket};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh IV: a process-wide counter and the process id, unique per process.
fn unique_iv(iv: &mut [u8; 12]) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let counter = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    iv[..8].copy_from_slice(&counter.to_be_bytes());
    iv[8..].copy_from_slice(&std::process::id().to_be_bytes());
}

/// One STREAM connection's sending side, made with the data plane's own
/// [`StreamConnection`].
pub struct StreamClient {
    pub destination: String,
    connection: StreamConnection,
}

/// What came back for one Prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReply {
    /// `None` for a Fulfill.
    pub code: Option<ErrorCode>,
    pub message: Vec<u8>,
    /// The amount the receiver says arrived, when the reply carried STREAM data.
    pub amount_arrived: Option<u64>,
    /// The reply's frames, as `Debug` text.
    pub frames: Vec<String>,
}

impl StreamClient {
    pub fn new(destination: &str, shared_secret: &[u8]) -> StreamClient {
        StreamClient {
            destination: destination.to_owned(),
            connection: StreamConnection::new(destination, shared_secret)
                .expect("valid destination"),
        }
    }

    /// A Prepare paying `amount` on stream 1, asking the receiver for at least
    /// `minimum`; with `probe`, its condition cannot be fulfilled.
    pub fn prepare(&mut self, amount: u64, minimum: u64, probe: bool) -> Vec<u8> {
        let frames = [Frame::StreamMoney {
            stream_id: 1,
            shares: 1,
        }];
        let mut iv = [0u8; 12];
        unique_iv(&mut iv);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        self.connection
            .prepare(amount, minimum, &frames, !probe, now_ms, iv)
            .1
    }

    /// Reads a Fulfill or Reject, decrypting its STREAM data when there is any.
    pub fn read_reply(&self, reply: &[u8]) -> StreamReply {
        let (code, message, data) = match Packet::parse(reply).expect("an ILP reply") {
            Packet::Fulfill(fulfill) => (None, Vec::new(), fulfill.data),
            Packet::Reject(reject) => (Some(reject.code), reject.message.to_vec(), reject.data),
            Packet::Prepare(_) => panic!("a Prepare came back"),
        };
        let mut plaintext = Vec::new();
        if data.is_empty()
            || self
                .connection
                .keys()
                .decrypt_into(data, &mut plaintext)
                .is_err()
        {
            return StreamReply {
                code,
                message,
                amount_arrived: None,
                frames: Vec::new(),
            };
        }
        let packet = StreamPacket::parse(&plaintext).expect("reply STREAM packet");
        StreamReply {
            code,
            message,
            amount_arrived: Some(packet.header().prepare_amount),
            frames: packet.frames().map(|f| format!("{f:?}")).collect(),
        }
    }
}

//! A minimal STREAM sender for tests that need packet-level control (a store that
//! fails between two packets, a probe, a packet below the minimum). Payments that
//! test interoperability use the npm implementations instead.

use riptide_dataplane::packet::{Address, ErrorCode, Packet, Prepare, Timestamp};
use riptide_dataplane::stream::{Frame, StreamKeys, StreamPacket, StreamPacketBuilder};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One STREAM connection's sending side.
pub struct StreamClient {
    pub destination: String,
    keys: StreamKeys,
    sequence: u64,
    iv_counter: u64,
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
            keys: StreamKeys::new(shared_secret),
            sequence: 0,
            iv_counter: 0,
        }
    }

    /// A Prepare paying `amount` on stream 1, asking the receiver for at least
    /// `minimum`; with `probe`, its condition cannot be fulfilled.
    pub fn prepare(&mut self, amount: u64, minimum: u64, probe: bool) -> Vec<u8> {
        self.sequence += 1;
        self.iv_counter += 1;
        let frames = [Frame::StreamMoney {
            stream_id: 1,
            shares: 1,
        }];
        let builder = StreamPacketBuilder {
            ilp_packet_type: 12,
            sequence: self.sequence,
            prepare_amount: minimum,
            frames: &frames,
        };
        let mut iv = [0u8; 12];
        iv[..8].copy_from_slice(&self.iv_counter.to_be_bytes());
        iv[8..].copy_from_slice(&std::process::id().to_be_bytes());
        let mut data = Vec::new();
        self.keys.encrypt_packet(iv, &builder, &mut data);
        let condition = if probe {
            [0x5a; 32]
        } else {
            self.keys.condition(&data)
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        Prepare {
            amount,
            expires_at: Timestamp::from_unix_ms(
                now_ms + Duration::from_secs(20).as_millis() as u64,
            )
            .expect("in range"),
            execution_condition: &condition,
            destination: Address::parse_str(&self.destination).expect("valid destination"),
            data: &data,
        }
        .to_bytes()
    }

    /// Reads a Fulfill or Reject, decrypting its STREAM data when there is any.
    pub fn read_reply(&self, reply: &[u8]) -> StreamReply {
        let (code, message, data) = match Packet::parse(reply).expect("an ILP reply") {
            Packet::Fulfill(fulfill) => (None, Vec::new(), fulfill.data),
            Packet::Reject(reject) => (Some(reject.code), reject.message.to_vec(), reject.data),
            Packet::Prepare(_) => panic!("a Prepare came back"),
        };
        let mut plaintext = Vec::new();
        if data.is_empty() || self.keys.decrypt_into(data, &mut plaintext).is_err() {
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

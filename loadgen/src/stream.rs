//! `stream`: real STREAM payments to a wallet. Each loader connection asks SPSP for
//! its own destination and shared secret, then pays over ILP-over-HTTP with
//! fulfillable STREAM Prepares, so every packet goes through the receiver's whole
//! path: decrypt, ledger credit, receipt store, encrypted reply.

use crate::http;
use base64::Engine;
use riptide_dataplane::packet::{Address, Prepare, Timestamp};
use riptide_dataplane::stream::{Frame, StreamKeys, StreamPacketBuilder};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// One STREAM connection's sending side.
pub struct StreamSender {
    destination: String,
    keys: StreamKeys,
    sequence: u64,
}

impl StreamSender {
    /// Opens a connection through SPSP at `spsp` (address and wallet path).
    pub fn connect(spsp: SocketAddr, path: &str) -> Result<StreamSender, String> {
        let (status, body) = http::get(spsp, path, &[("Accept", "application/spsp4+json")])
            .map_err(|e| format!("SPSP query: {e}"))?;
        if status != 200 {
            return Err(format!("SPSP query answered HTTP {status}"));
        }
        let details: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("SPSP answer: {e}"))?;
        let destination = details["destination_account"]
            .as_str()
            .ok_or("SPSP answer has no destination_account")?
            .to_owned();
        Address::parse_str(&destination).map_err(|e| format!("SPSP destination: {e}"))?;
        let secret_text = details["shared_secret"]
            .as_str()
            .ok_or("SPSP answer has no shared_secret")?;
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret_text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(secret_text))
            .map_err(|e| format!("SPSP shared_secret: {e}"))?;
        Ok(StreamSender {
            destination,
            keys: StreamKeys::new(&secret),
            sequence: 0,
        })
    }

    /// The next Prepare: `amount` on stream 1, fulfillable by the receiver.
    pub fn prepare(&mut self, amount: u64) -> Vec<u8> {
        self.sequence += 1;
        let frames = [Frame::StreamMoney {
            stream_id: 1,
            shares: 1,
        }];
        let builder = StreamPacketBuilder {
            ilp_packet_type: 12,
            sequence: self.sequence,
            prepare_amount: 0,
            frames: &frames,
        };
        // Every connection has its own fresh key, so a counter never repeats an IV
        // under one key.
        let mut iv = [0u8; 12];
        iv[..8].copy_from_slice(&self.sequence.to_be_bytes());
        let mut data = Vec::with_capacity(64);
        self.keys.encrypt_packet(iv, &builder, &mut data);
        let condition = self.keys.condition(&data);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        // Checked when the connection was made.
        let destination = Address::parse_str(&self.destination).unwrap_or_else(|_| unreachable!());
        Prepare {
            amount,
            expires_at: Timestamp::from_unix_ms_saturating(now_ms + 30_000),
            execution_condition: &condition,
            destination,
            data: &data,
        }
        .to_bytes()
    }
}

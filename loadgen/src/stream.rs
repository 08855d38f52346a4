//! `stream`: real STREAM payments to a wallet. Each loader connection asks SPSP for
//! its own destination and shared secret, then pays over ILP-over-HTTP with
//! fulfillable STREAM Prepares, so every packet goes through the receiver's whole
//! path: decrypt, ledger credit, receipt store, encrypted reply.

use crate::http;
use riptide_proto::stream::sender::StreamConnection;
use riptide_proto::stream::Frame;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// One STREAM connection's sending side.
pub struct StreamSender {
    connection: StreamConnection,
    /// Packets made, for the IVs.
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
        let (destination, secret) =
            riptide_proto::spsp::parse_answer(&body).map_err(|e| e.to_string())?;
        let connection = StreamConnection::new(&destination, &secret)
            .map_err(|e| format!("SPSP destination: {e}"))?;
        Ok(StreamSender {
            sequence: 0,
            connection,
        })
    }

    /// The next Prepare: `amount` on stream 1, fulfillable by the receiver.
    pub fn prepare(&mut self, amount: u64) -> Vec<u8> {
        self.sequence += 1;
        let frames = [Frame::StreamMoney {
            stream_id: 1,
            shares: 1,
        }];
        // Every connection has its own fresh key, so a counter never repeats an IV
        // under one key.
        let mut iv = [0u8; 12];
        iv[..8].copy_from_slice(&self.sequence.to_be_bytes());
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.connection
            .prepare(amount, 0, &frames, true, now_ms, iv)
            .1
    }
}

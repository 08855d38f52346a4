//! STREAM receipts (RFC 0039, deprecated in the RFCs in 2026 but deployed): 58 bytes
//! proving to a verifier how much a stream has received.

use super::crypto::hmac_sha256;
use thiserror::Error;

pub const RECEIPT_SIZE: usize = 58;
const RECEIPT_VERSION: u8 = 1;
/// Bytes covered by the HMAC: version, nonce, stream id, total.
const SIGNED_SIZE: usize = 26;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ReceiptError {
    #[error("receipt is {0} bytes, not 58")]
    Size(usize),
    #[error("unsupported receipt version {0}")]
    Version(u8),
    #[error("receipt HMAC does not match")]
    Signature,
}

/// The fields of a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub nonce: [u8; 16],
    pub stream_id: u8,
    pub total_received: u64,
}

impl Receipt {
    pub fn to_bytes(&self, secret: &[u8; 32]) -> [u8; RECEIPT_SIZE] {
        let mut out = [0u8; RECEIPT_SIZE];
        out[0] = RECEIPT_VERSION;
        out[1..17].copy_from_slice(&self.nonce);
        out[17] = self.stream_id;
        out[18..26].copy_from_slice(&self.total_received.to_be_bytes());
        let signature = hmac_sha256(secret, &out[..SIGNED_SIZE]);
        out[SIGNED_SIZE..].copy_from_slice(&signature);
        out
    }

    /// Decodes and checks the HMAC with the verifier's secret.
    pub fn verify(bytes: &[u8], secret: &[u8; 32]) -> Result<Receipt, ReceiptError> {
        if bytes.len() != RECEIPT_SIZE {
            return Err(ReceiptError::Size(bytes.len()));
        }
        if bytes[0] != RECEIPT_VERSION {
            return Err(ReceiptError::Version(bytes[0]));
        }
        let expected = hmac_sha256(secret, &bytes[..SIGNED_SIZE]);
        let difference = expected
            .iter()
            .zip(&bytes[SIGNED_SIZE..])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if difference != 0 {
            return Err(ReceiptError::Signature);
        }
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&bytes[1..17]);
        let mut total = [0u8; 8];
        total.copy_from_slice(&bytes[18..26]);
        Ok(Receipt {
            nonce,
            stream_id: bytes[17],
            total_received: u64::from_be_bytes(total),
        })
    }
}

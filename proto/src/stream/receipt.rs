//! STREAM receipts (RFC 0039; deprecated in the RFCs in 2026 but still deployed):
//! 58 bytes proving to a verifier how much one stream has received.
//!
//! ```text
//! version: UInt8 = 1 | nonce: 16 bytes | streamId: UInt8 | totalReceived: UInt64 BE
//! hmac: HMAC-SHA256(receipt_secret, the 26 bytes above)
//! ```
//!
//! The verifier shares the nonce and secret with the receiver (sealed into the
//! connection token), never with the sender.

use super::crypto::hmac_sign;
use crate::packet::oer::Reader;
use ring::hmac;
use thiserror::Error;

pub const RECEIPT_SIZE: usize = 58;
pub const RECEIPT_VERSION: u8 = 1;
pub const RECEIPT_NONCE_SIZE: usize = 16;
pub const RECEIPT_SECRET_SIZE: usize = 32;
/// Bytes covered by the HMAC: version, nonce, stream id, total.
const SIGNED_SIZE: usize = 26;
const _: () = assert!(SIGNED_SIZE == 1 + RECEIPT_NONCE_SIZE + 1 + 8);
const _: () = assert!(RECEIPT_SIZE == SIGNED_SIZE + 32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ReceiptError {
    #[error("receipt is {0} bytes, not 58")]
    Size(usize),
    #[error("unsupported receipt version {0}")]
    Version(u8),
    #[error("receipt HMAC does not match")]
    BadHmac,
}

/// The signed fields of a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub nonce: [u8; RECEIPT_NONCE_SIZE],
    /// Receipts cannot name streams above 255; `@interledger/stream-receiver` always
    /// uses 1 with the connection-wide total.
    pub stream_id: u8,
    pub total_received: u64,
}

impl Receipt {
    /// Signs with a one-off key; a connection that issues many receipts keeps a
    /// [`ReceiptKey`] instead.
    pub fn to_bytes(&self, secret: &[u8; RECEIPT_SECRET_SIZE]) -> [u8; RECEIPT_SIZE] {
        ReceiptKey::new(secret).sign(self)
    }

    /// Decodes and checks the HMAC with the verifier's secret.
    pub fn verify(
        bytes: &[u8],
        secret: &[u8; RECEIPT_SECRET_SIZE],
    ) -> Result<Receipt, ReceiptError> {
        ReceiptKey::new(secret).verify(bytes)
    }

    /// Decodes without checking the HMAC: a verifier reads the nonce first to find
    /// (or derive) the secret, then calls [`ReceiptKey::verify`].
    pub fn parse_unverified(bytes: &[u8]) -> Result<Receipt, ReceiptError> {
        split(bytes).and_then(|(signed, _)| decode_signed(signed))
    }

    fn signed_bytes(&self) -> [u8; SIGNED_SIZE] {
        let mut signed = [0u8; SIGNED_SIZE];
        signed[0] = RECEIPT_VERSION;
        signed[1..17].copy_from_slice(&self.nonce);
        signed[17] = self.stream_id;
        signed[18..].copy_from_slice(&self.total_received.to_be_bytes());
        signed
    }
}

/// A receipt secret ready for HMAC.
#[derive(Clone)]
pub struct ReceiptKey {
    key: hmac::Key,
}

impl std::fmt::Debug for ReceiptKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReceiptKey(..)")
    }
}

impl ReceiptKey {
    pub fn new(secret: &[u8; RECEIPT_SECRET_SIZE]) -> ReceiptKey {
        ReceiptKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    pub fn sign(&self, receipt: &Receipt) -> [u8; RECEIPT_SIZE] {
        let signed = receipt.signed_bytes();
        let mut out = [0u8; RECEIPT_SIZE];
        out[..SIGNED_SIZE].copy_from_slice(&signed);
        out[SIGNED_SIZE..].copy_from_slice(&hmac_sign(&self.key, &signed));
        out
    }

    /// Checks size, version and HMAC (in constant time), then decodes.
    pub fn verify(&self, bytes: &[u8]) -> Result<Receipt, ReceiptError> {
        let (signed, mac) = split(bytes)?;
        let receipt = decode_signed(signed)?;
        hmac::verify(&self.key, signed, mac).map_err(|_| ReceiptError::BadHmac)?;
        Ok(receipt)
    }
}

fn split(bytes: &[u8]) -> Result<(&[u8; SIGNED_SIZE], &[u8]), ReceiptError> {
    if bytes.len() != RECEIPT_SIZE {
        return Err(ReceiptError::Size(bytes.len()));
    }
    bytes
        .split_first_chunk::<SIGNED_SIZE>()
        .ok_or(ReceiptError::Size(bytes.len()))
}

fn decode_signed(signed: &[u8; SIGNED_SIZE]) -> Result<Receipt, ReceiptError> {
    let mut reader = Reader::new(signed);
    // The reads cannot run short: the array holds exactly these fields.
    let short = |_| ReceiptError::Size(RECEIPT_SIZE);
    let version = reader.read_u8().map_err(short)?;
    if version != RECEIPT_VERSION {
        return Err(ReceiptError::Version(version));
    }
    let nonce = *reader.read_array::<RECEIPT_NONCE_SIZE>().map_err(short)?;
    let stream_id = reader.read_u8().map_err(short)?;
    let total_received = reader.read_u64().map_err(short)?;
    Ok(Receipt {
        nonce,
        stream_id,
        total_received,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 0029 fixture `frame:stream_receipt` and ilp-protocol-stream
    /// `test/util/receipt.spec.ts`.
    const VECTOR: &str = concat!(
        "01",
        "00000000000000000000000000000000",
        "01",
        "00000000000001f4",
        "c122fa0252debb672d591823f710e99516d67385cf397da87cc8f9e8c8bf5130"
    );

    #[test]
    fn receipt_vector() {
        let receipt = Receipt {
            nonce: [0; 16],
            stream_id: 1,
            total_received: 500,
        };
        let encoded = receipt.to_bytes(&[0; 32]);
        assert_eq!(hex::encode(encoded), VECTOR);
        assert_eq!(Receipt::verify(&encoded, &[0; 32]), Ok(receipt));
        assert_eq!(ReceiptKey::new(&[0; 32]).verify(&encoded), Ok(receipt));
        assert_eq!(Receipt::parse_unverified(&encoded), Ok(receipt));
    }

    #[test]
    fn receipt_errors() {
        let encoded = Receipt {
            nonce: [7; 16],
            stream_id: 3,
            total_received: u64::MAX,
        }
        .to_bytes(&[2; 32]);
        assert_eq!(
            Receipt::verify(&encoded, &[1; 32]),
            Err(ReceiptError::BadHmac)
        );
        assert_eq!(
            Receipt::verify(&encoded[..57], &[2; 32]),
            Err(ReceiptError::Size(57))
        );
        assert_eq!(
            Receipt::verify(&[encoded.as_slice(), &[0]].concat(), &[2; 32]),
            Err(ReceiptError::Size(59))
        );
        let mut version_two = encoded;
        version_two[0] = 2;
        assert_eq!(
            Receipt::verify(&version_two, &[2; 32]),
            Err(ReceiptError::Version(2))
        );
        assert_eq!(
            Receipt::parse_unverified(&version_two),
            Err(ReceiptError::Version(2))
        );
        let mut more = encoded;
        more[25] ^= 1;
        assert_eq!(
            Receipt::verify(&more, &[2; 32]),
            Err(ReceiptError::BadHmac),
            "amount altered"
        );
        let mut mac = encoded;
        mac[57] ^= 1;
        assert_eq!(
            Receipt::verify(&mac, &[2; 32]),
            Err(ReceiptError::BadHmac),
            "HMAC altered"
        );
    }
}

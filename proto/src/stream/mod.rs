//! STREAM (RFC 0029), sans-IO: the protocol pieces a receiver (and a sender) needs,
//! with no sockets, no clock and no randomness of its own. IVs come from the caller.
//!
//! * [`packet`] and [`frame`]: the plaintext STREAM packet and its frames, decoded
//!   as zero-copy views of the plaintext and encoded into a caller's `Vec<u8>`.
//! * [`crypto`]: AES-256-GCM with the wire layout `IV || tag || ciphertext`, and the
//!   HMAC fulfillment. [`StreamKeys`] is derived once per shared secret.
//! * [`token`]: connection tokens in the destination address, from which a
//!   stateless receiver recovers the shared secret ([`ServerSecret`]).
//! * [`receipt`]: 58-byte STREAM receipts (RFC 0039).
//!
//! A receiver's path for one Prepare: [`token_segment`] and
//! [`ServerSecret::decode_segment`] (or a cache keyed by [`connection_id`]) give the
//! shared secret; [`StreamKeys::decrypt_into`] and [`StreamPacket::parse`] read the
//! request; [`StreamKeys::fulfillment_for`] checks the condition; a
//! [`StreamPacketBuilder`] goes through [`StreamKeys::encrypt_packet`] for the reply.

pub mod crypto;
pub mod frame;
pub mod packet;
pub mod receipt;
pub mod receiver;
pub mod sender;
pub mod token;

pub use crypto::{CryptoError, StreamKeys, ENCRYPTION_OVERHEAD, IV_SIZE};
pub use frame::{CloseCode, Frame, FrameError};
pub use packet::{
    FrameIter, Frames, StreamHeader, StreamPacket, StreamPacketBuilder, StreamPacketError,
    STREAM_VERSION,
};
pub use receipt::{Receipt, ReceiptError, ReceiptKey, RECEIPT_SIZE};
pub use token::{
    connection_id, connection_id_hex, token_segment, ConnectionToken, Credentials, ReceiptSetup,
    ServerSecret, TokenDetails, TokenError, TokenVariant,
};

#[cfg(test)]
mod tests;

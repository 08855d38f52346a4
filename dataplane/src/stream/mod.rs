//! STREAM (RFC 0029): packets and frames, crypto, connection tokens, receipts.
//! Sans-IO: IVs are passed in by the caller, nothing reads a clock or a socket.

pub mod crypto;
pub mod frame;
pub mod packet;
pub mod receipt;
pub mod token;

pub use crypto::{CryptoError, StreamKeys};
pub use frame::{CloseCode, Frame, FrameError};
pub use packet::{StreamPacket, StreamPacketBuilder, StreamPacketError};
pub use receipt::{Receipt, ReceiptError};
pub use token::{ConnectionToken, ServerSecret, TokenDetails, TokenError, TokenVariant};

#[cfg(test)]
mod tests;

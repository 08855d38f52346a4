//! The ILPv4 codec (RFC 0027, 0030, 0031): zero-copy packet views, builders, the
//! in-place amount/expiry rewrite, addresses, timestamps, error codes and ILDCP.
//! Sans-IO: nothing here reads a clock or touches a socket.

pub mod address;
pub mod error_code;
pub mod ildcp;
pub mod ilp;
pub mod oer;
pub mod timestamp;

pub use address::{Address, AddressError};
pub use error_code::{AmountTooLargeData, ErrorClass, ErrorCode};
pub use ilp::{
    condition_of, fulfillment_matches, rewrite_prepare, Fulfill, Packet, PacketError, Prepare,
    Reject,
};
pub use timestamp::{Timestamp, TimestampError};

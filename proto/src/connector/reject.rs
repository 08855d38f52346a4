//! The rejects Riptide makes itself: a typed error per situation, each mapping to
//! exactly one ILP code, rendered with Riptide's address in `triggeredBy`.

use crate::packet::{AmountTooLargeData, ErrorCode, Reject};
use thiserror::Error;

/// Why the connector refuses a packet. One variant, one ILP code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RejectReason {
    #[error("peer protocol destination not handled")]
    PeerProtocolUnhandled,
    #[error("no route to the destination")]
    NoRoute,
    /// No rate for the asset, in rates that are there (pushed, or brought by the
    /// feed): F07, as Rafiki answers a price it cannot use, so that payers stop
    /// rather than retry.
    #[error("no exchange rate for {0}")]
    RateMissing(String),
    /// No rates yet from the feed that is to bring them (a data plane started before
    /// the first push of the feed's rates): T00, which payers retry.
    #[error("no exchange rate for {0} yet")]
    RateUnavailable(String),
    #[error("amount does not fit after conversion")]
    ConversionOverflow,
    #[error("amount is zero after conversion")]
    AmountConvertsToZero,
    #[error("packet amount {received} exceeds the maximum {maximum}")]
    AmountTooLarge { received: u64, maximum: u64 },
    #[error("rate limit exceeded")]
    RateLimited,
    #[error("throughput limit exceeded")]
    ThroughputLimited,
    #[error("insufficient liquidity")]
    InsufficientLiquidity,
    /// The sending peer's balance with this connector does not cover the amount.
    #[error("insufficient balance")]
    InsufficientBalance,
    #[error("expiry too soon")]
    InsufficientTimeout,
    #[error("peer did not answer before the packet expired")]
    TimedOut,
    #[error("next hop unreachable: {0}")]
    PeerUnreachable(String),
    #[error("fulfillment does not match the condition")]
    WrongCondition,
    #[error("connector busy")]
    Busy,
    #[error("internal error: {0}")]
    Internal(String),
}

impl RejectReason {
    pub fn code(&self) -> ErrorCode {
        match self {
            RejectReason::PeerProtocolUnhandled | RejectReason::NoRoute => ErrorCode::F02,
            RejectReason::AmountTooLarge { .. } => ErrorCode::F08,
            RejectReason::RateMissing(_) => ErrorCode::F07,
            RejectReason::WrongCondition => ErrorCode::F05,
            RejectReason::RateUnavailable(_)
            | RejectReason::ConversionOverflow
            | RejectReason::Internal(_) => ErrorCode::T00,
            RejectReason::PeerUnreachable(_) => ErrorCode::T01,
            RejectReason::Busy => ErrorCode::T03,
            RejectReason::ThroughputLimited
            | RejectReason::InsufficientLiquidity
            | RejectReason::InsufficientBalance => ErrorCode::T04,
            RejectReason::RateLimited => ErrorCode::T05,
            RejectReason::TimedOut => ErrorCode::R00,
            RejectReason::AmountConvertsToZero => ErrorCode::R01,
            RejectReason::InsufficientTimeout => ErrorCode::R02,
        }
    }

    /// The Reject packet, with `own_address` as `triggeredBy`. The message is short and
    /// generic on purpose: details go to logs and metrics, not to the sender.
    pub fn to_reject_bytes(&self, own_address: &str) -> Vec<u8> {
        let data_f08;
        let data: &[u8] = match self {
            RejectReason::AmountTooLarge { received, maximum } => {
                data_f08 = AmountTooLargeData {
                    amount_received: *received,
                    amount_max: *maximum,
                }
                .to_bytes();
                &data_f08
            }
            _ => &[],
        };
        let message = self.public_message();
        Reject {
            code: self.code(),
            triggered_by: own_address,
            message: message.as_bytes(),
            data,
        }
        .to_bytes()
    }

    fn public_message(&self) -> String {
        match self {
            RejectReason::Internal(_) => "internal error".to_owned(),
            RejectReason::PeerUnreachable(_) => "next hop unreachable".to_owned(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f08_carries_its_data() {
        let reason = RejectReason::AmountTooLarge {
            received: 255,
            maximum: 65535,
        };
        let bytes = reason.to_reject_bytes("test.riptide");
        let reject = Reject::parse(&bytes).expect("valid Reject");
        assert_eq!(reject.code, ErrorCode::F08);
        assert_eq!(reject.triggered_by, "test.riptide");
        assert_eq!(hex::encode(reject.data), "00000000000000ff000000000000ffff");
    }

    #[test]
    fn internal_details_stay_out_of_the_packet() {
        let bytes = RejectReason::Internal("ledger at 10.0.0.3 down".into()).to_reject_bytes("g.x");
        let reject = Reject::parse(&bytes).expect("valid Reject");
        assert_eq!(reject.code, ErrorCode::T00);
        assert_eq!(reject.message, b"internal error");
    }
}

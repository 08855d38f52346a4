//! ILP error codes (RFC 0027) and the F08 error data.

use std::fmt;
use thiserror::Error;

/// Class of an error code, from its first letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// `F`: do not retry unchanged.
    Final,
    /// `T`: retry, possibly after a delay.
    Temporary,
    /// `R`: not enough amount or time margin.
    Relative,
    /// Any other first letter: a peer's non-standard code.
    Unknown,
}

macro_rules! error_codes {
    ($($variant:ident = $text:literal, $name:literal;)*) => {
        /// An ILP error code. Standard codes have their own variant; any other three
        /// bytes (a peer's non-standard code, such as interledger-rs's `F09`) are kept.
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant,)*
            Other([u8; 3]),
        }

        impl ErrorCode {
            /// Every standard code, in RFC order.
            pub const STANDARD: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn from_bytes(bytes: [u8; 3]) -> ErrorCode {
                match &bytes {
                    $($text => ErrorCode::$variant,)*
                    _ => ErrorCode::Other(bytes),
                }
            }

            pub fn to_bytes(self) -> [u8; 3] {
                match self {
                    $(ErrorCode::$variant => *$text,)*
                    ErrorCode::Other(bytes) => bytes,
                }
            }

            /// The RFC's name for the code ("Unreachable"), or "Unknown".
            pub fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)*
                    ErrorCode::Other(_) => "Unknown",
                }
            }
        }
    };
}

error_codes! {
    F00 = b"F00", "Bad Request";
    F01 = b"F01", "Invalid Packet";
    F02 = b"F02", "Unreachable";
    F03 = b"F03", "Invalid Amount";
    F04 = b"F04", "Insufficient Destination Amount";
    F05 = b"F05", "Wrong Condition";
    F06 = b"F06", "Unexpected Payment";
    F07 = b"F07", "Cannot Receive";
    F08 = b"F08", "Amount Too Large";
    F99 = b"F99", "Application Error";
    T00 = b"T00", "Internal Error";
    T01 = b"T01", "Peer Unreachable";
    T02 = b"T02", "Peer Busy";
    T03 = b"T03", "Connector Busy";
    T04 = b"T04", "Insufficient Liquidity";
    T05 = b"T05", "Rate Limited";
    T99 = b"T99", "Application Error";
    R00 = b"R00", "Transfer Timed Out";
    R01 = b"R01", "Insufficient Source Amount";
    R02 = b"R02", "Insufficient Timeout";
    R99 = b"R99", "Application Error";
}

impl ErrorCode {
    pub fn class(self) -> ErrorClass {
        match self.to_bytes()[0] {
            b'F' => ErrorClass::Final,
            b'T' => ErrorClass::Temporary,
            b'R' => ErrorClass::Relative,
            _ => ErrorClass::Unknown,
        }
    }

    /// The three-character code as text (non-ASCII bytes shown as `?`).
    pub fn as_text(self) -> String {
        self.to_bytes()
            .iter()
            .map(|b| {
                if b.is_ascii_graphic() {
                    char::from(*b)
                } else {
                    '?'
                }
            })
            .collect()
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_text())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_text())
    }
}

/// Size of the F08 data.
pub const AMOUNT_TOO_LARGE_DATA_SIZE: usize = 16;

/// Data of an F08 Reject: the amount that arrived and the largest this hop accepts,
/// both in the rejecting connector's incoming units; the maximum is inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmountTooLargeData {
    pub amount_received: u64,
    pub amount_max: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("F08 data must be 16 bytes, got {0}")]
pub struct AmountTooLargeDataError(pub usize);

impl AmountTooLargeData {
    pub fn to_bytes(self) -> [u8; AMOUNT_TOO_LARGE_DATA_SIZE] {
        let mut out = [0u8; AMOUNT_TOO_LARGE_DATA_SIZE];
        out[..8].copy_from_slice(&self.amount_received.to_be_bytes());
        out[8..].copy_from_slice(&self.amount_max.to_be_bytes());
        out
    }

    /// Decodes the first 16 bytes; more are allowed (OER extensibility).
    pub fn parse(data: &[u8]) -> Result<AmountTooLargeData, AmountTooLargeDataError> {
        let received: [u8; 8] = data
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(AmountTooLargeDataError(data.len()))?;
        let maximum: [u8; 8] = data
            .get(8..16)
            .and_then(|b| b.try_into().ok())
            .ok_or(AmountTooLargeDataError(data.len()))?;
        Ok(AmountTooLargeData {
            amount_received: u64::from_be_bytes(received),
            amount_max: u64::from_be_bytes(maximum),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_standard_code_round_trips() {
        assert_eq!(ErrorCode::STANDARD.len(), 21);
        for code in ErrorCode::STANDARD {
            assert_eq!(ErrorCode::from_bytes(code.to_bytes()), *code);
            assert_ne!(code.name(), "Unknown");
            assert_ne!(code.class(), ErrorClass::Unknown);
        }
    }

    #[test]
    fn unknown_codes_are_kept_and_classified() {
        let code = ErrorCode::from_bytes(*b"F09");
        assert_eq!(code, ErrorCode::Other(*b"F09"));
        assert_eq!(code.class(), ErrorClass::Final);
        assert_eq!(code.to_string(), "F09");
        assert_eq!(ErrorCode::from_bytes(*b"X12").class(), ErrorClass::Unknown);
    }

    #[test]
    fn f08_data_vector() {
        let data = AmountTooLargeData {
            amount_received: 255,
            amount_max: 65535,
        };
        assert_eq!(
            hex::encode(data.to_bytes()),
            "00000000000000ff000000000000ffff"
        );
        assert_eq!(AmountTooLargeData::parse(&data.to_bytes()), Ok(data));
        assert_eq!(
            AmountTooLargeData::parse(&[0; 15]),
            Err(AmountTooLargeDataError(15))
        );
    }
}

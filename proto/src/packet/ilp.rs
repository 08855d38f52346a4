//! ILPv4 packets (RFC 0027): Prepare, Fulfill and Reject as zero-copy views over the
//! input buffer, builders that write them, and the in-place rewrite a connector needs.

use super::address::{Address, AddressError};
use super::error_code::ErrorCode;
use super::oer::{self, OerError, Reader};
use super::timestamp::{Timestamp, TimestampError, TIMESTAMP_SIZE};
use crate::limits::{DATA_SIZE_MAX, MESSAGE_SIZE_MAX};
use thiserror::Error;

/// Envelope type bytes.
pub const TYPE_PREPARE: u8 = 12;
pub const TYPE_FULFILL: u8 = 13;
pub const TYPE_REJECT: u8 = 14;

/// Fixed bytes at the start of a Prepare's content: amount, expiry, condition.
const PREPARE_FIXED_SIZE: usize = 8 + TIMESTAMP_SIZE + 32;

/// Why bytes are not a valid ILP packet. Every variant answers F01 (or HTTP 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PacketError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type {0}")]
    UnknownType(u8),
    #[error("expected packet type {expected}, found {found}")]
    WrongType { expected: u8, found: u8 },
    #[error("malformed {field}: {source}")]
    Oer {
        field: &'static str,
        source: OerError,
    },
    #[error("invalid expiresAt: {0}")]
    Expiry(#[from] TimestampError),
    #[error("invalid destination: {0}")]
    Destination(#[from] AddressError),
    #[error("data is {0} bytes, the maximum is 32767")]
    DataTooLong(usize),
    #[error("reject message is {0} bytes, the maximum is 8191")]
    MessageTooLong(usize),
    #[error("reject code is not three ASCII characters")]
    CodeNotAscii,
    #[error("triggeredBy is not ASCII")]
    TriggeredByNotAscii,
}

impl PacketError {
    /// The ILP code a connector answers for this error.
    pub fn ilp_code(&self) -> ErrorCode {
        ErrorCode::F01
    }
}

fn field_error(field: &'static str) -> impl Fn(OerError) -> PacketError {
    move |source| PacketError::Oer { field, source }
}

/// Reads the envelope and returns the type and a reader over exactly the content.
/// Bytes after the envelope are ignored, as OER extensibility asks.
fn open_envelope(buffer: &[u8]) -> Result<(u8, Reader<'_>, usize), PacketError> {
    let mut reader = Reader::new(buffer);
    let packet_type = reader.read_u8().map_err(|_| PacketError::Empty)?;
    let content = reader
        .read_var_octet_string()
        .map_err(field_error("envelope"))?;
    let header_size = reader.offset() - content.len();
    Ok((packet_type, Reader::new(content), header_size))
}

fn expect_type(found: u8, expected: u8) -> Result<(), PacketError> {
    if found == expected {
        Ok(())
    } else {
        Err(PacketError::WrongType { expected, found })
    }
}

fn read_data<'a>(reader: &mut Reader<'a>) -> Result<&'a [u8], PacketError> {
    let data = reader
        .read_var_octet_string()
        .map_err(field_error("data"))?;
    if data.len() > DATA_SIZE_MAX {
        return Err(PacketError::DataTooLong(data.len()));
    }
    Ok(data)
}

/// Any ILP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    Prepare(Prepare<'a>),
    Fulfill(Fulfill<'a>),
    Reject(Reject<'a>),
}

impl<'a> Packet<'a> {
    pub fn parse(buffer: &'a [u8]) -> Result<Packet<'a>, PacketError> {
        match buffer.first() {
            None => Err(PacketError::Empty),
            Some(&TYPE_PREPARE) => Prepare::parse(buffer).map(Packet::Prepare),
            Some(&TYPE_FULFILL) => Fulfill::parse(buffer).map(Packet::Fulfill),
            Some(&TYPE_REJECT) => Reject::parse(buffer).map(Packet::Reject),
            Some(&other) => Err(PacketError::UnknownType(other)),
        }
    }
}

/// A Prepare, borrowed from the buffer it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepare<'a> {
    pub amount: u64,
    pub expires_at: Timestamp,
    pub execution_condition: &'a [u8; 32],
    pub destination: Address<'a>,
    pub data: &'a [u8],
}

impl<'a> Prepare<'a> {
    /// The amount of a Prepare, read from its envelope without parsing the rest
    /// (for counting what was fulfilled after the packet was handed on); None for
    /// anything that is not a Prepare.
    pub fn amount_of(buffer: &[u8]) -> Option<u64> {
        let (packet_type, mut reader, _) = open_envelope(buffer).ok()?;
        (packet_type == TYPE_PREPARE)
            .then(|| reader.read_u64().ok())
            .flatten()
    }

    /// Parses and validates (address grammar, timestamp, field limits) without copying.
    pub fn parse(buffer: &'a [u8]) -> Result<Prepare<'a>, PacketError> {
        let (packet_type, mut reader, _) = open_envelope(buffer)?;
        expect_type(packet_type, TYPE_PREPARE)?;
        let amount = reader.read_u64().map_err(field_error("amount"))?;
        let expiry_digits = reader
            .read_array::<TIMESTAMP_SIZE>()
            .map_err(field_error("expiresAt"))?;
        let expires_at = Timestamp::parse(expiry_digits)?;
        let execution_condition = reader
            .read_array::<32>()
            .map_err(field_error("executionCondition"))?;
        let destination_bytes = reader
            .read_var_octet_string()
            .map_err(field_error("destination"))?;
        let destination = Address::parse(destination_bytes)?;
        let data = read_data(&mut reader)?;
        Ok(Prepare {
            amount,
            expires_at,
            execution_condition,
            destination,
            data,
        })
    }

    /// Bytes this Prepare takes when written.
    pub fn encoded_size(&self) -> usize {
        envelope_size(self.content_size())
    }

    fn content_size(&self) -> usize {
        PREPARE_FIXED_SIZE
            + oer::var_octet_string_size(self.destination.as_bytes().len())
            + oer::var_octet_string_size(self.data.len())
    }

    /// Appends the encoded Prepare to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        assert!(
            self.data.len() <= DATA_SIZE_MAX,
            "Prepare data over 32767 bytes"
        );
        let start = out.len();
        out.reserve(self.encoded_size());
        out.push(TYPE_PREPARE);
        oer::write_length(out, self.content_size());
        out.extend_from_slice(&self.amount.to_be_bytes());
        out.extend_from_slice(&self.expires_at.to_digits());
        out.extend_from_slice(self.execution_condition);
        oer::write_var_octet_string(out, self.destination.as_bytes());
        oer::write_var_octet_string(out, self.data);
        debug_assert_eq!(out.len() - start, self.encoded_size());
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_size());
        self.write_to(&mut out);
        out
    }
}

/// Rewrites the amount and expiry of the Prepare in `buffer` in place; a connector
/// changes nothing else, so every other byte stays as the sender wrote it. Answers
/// the size of the Prepare's envelope: bytes after it are not part of the packet.
pub fn rewrite_prepare(
    buffer: &mut [u8],
    amount: u64,
    expires_at: Timestamp,
) -> Result<usize, PacketError> {
    let (packet_type, content, header_size) = open_envelope(buffer)?;
    expect_type(packet_type, TYPE_PREPARE)?;
    let envelope_size = header_size + content.remaining();
    if content.remaining() < PREPARE_FIXED_SIZE {
        return Err(PacketError::Oer {
            field: "amount",
            source: OerError::UnexpectedEnd,
        });
    }
    let amount_end = header_size + 8;
    buffer[header_size..amount_end].copy_from_slice(&amount.to_be_bytes());
    buffer[amount_end..amount_end + TIMESTAMP_SIZE].copy_from_slice(&expires_at.to_digits());
    Ok(envelope_size)
}

/// A Fulfill, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fulfill<'a> {
    pub fulfillment: &'a [u8; 32],
    pub data: &'a [u8],
}

impl<'a> Fulfill<'a> {
    pub fn parse(buffer: &'a [u8]) -> Result<Fulfill<'a>, PacketError> {
        let (packet_type, mut reader, _) = open_envelope(buffer)?;
        expect_type(packet_type, TYPE_FULFILL)?;
        let fulfillment = reader
            .read_array::<32>()
            .map_err(field_error("fulfillment"))?;
        let data = read_data(&mut reader)?;
        Ok(Fulfill { fulfillment, data })
    }

    pub fn encoded_size(&self) -> usize {
        envelope_size(self.content_size())
    }

    fn content_size(&self) -> usize {
        32 + oer::var_octet_string_size(self.data.len())
    }

    pub fn write_to(&self, out: &mut Vec<u8>) {
        assert!(
            self.data.len() <= DATA_SIZE_MAX,
            "Fulfill data over 32767 bytes"
        );
        out.reserve(self.encoded_size());
        out.push(TYPE_FULFILL);
        oer::write_length(out, self.content_size());
        out.extend_from_slice(self.fulfillment);
        oer::write_var_octet_string(out, self.data);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_size());
        self.write_to(&mut out);
        out
    }
}

/// A Reject, borrowed. `triggered_by` is not checked against the address grammar:
/// peers send an empty one, and a connector relays downstream Rejects unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject<'a> {
    pub code: ErrorCode,
    pub triggered_by: &'a str,
    pub message: &'a [u8],
    pub data: &'a [u8],
}

impl<'a> Reject<'a> {
    pub fn parse(buffer: &'a [u8]) -> Result<Reject<'a>, PacketError> {
        let (packet_type, mut reader, _) = open_envelope(buffer)?;
        expect_type(packet_type, TYPE_REJECT)?;
        let code_bytes = reader.read_array::<3>().map_err(field_error("code"))?;
        if !code_bytes.iter().all(u8::is_ascii) {
            return Err(PacketError::CodeNotAscii);
        }
        let triggered_by_bytes = reader
            .read_var_octet_string()
            .map_err(field_error("triggeredBy"))?;
        let triggered_by = ascii_str(triggered_by_bytes).ok_or(PacketError::TriggeredByNotAscii)?;
        let message = reader
            .read_var_octet_string()
            .map_err(field_error("message"))?;
        if message.len() > MESSAGE_SIZE_MAX {
            return Err(PacketError::MessageTooLong(message.len()));
        }
        let data = read_data(&mut reader)?;
        let code = ErrorCode::from_bytes(*code_bytes);
        Ok(Reject {
            code,
            triggered_by,
            message,
            data,
        })
    }

    /// The message as text; invalid UTF-8 is replaced, since it is for humans only.
    pub fn message_lossy(&self) -> std::borrow::Cow<'a, str> {
        String::from_utf8_lossy(self.message)
    }

    pub fn encoded_size(&self) -> usize {
        envelope_size(self.content_size())
    }

    fn content_size(&self) -> usize {
        3 + oer::var_octet_string_size(self.triggered_by.len())
            + oer::var_octet_string_size(self.message.len())
            + oer::var_octet_string_size(self.data.len())
    }

    pub fn write_to(&self, out: &mut Vec<u8>) {
        assert!(
            self.data.len() <= DATA_SIZE_MAX,
            "Reject data over 32767 bytes"
        );
        assert!(
            self.message.len() <= MESSAGE_SIZE_MAX,
            "Reject message over 8191 bytes"
        );
        out.reserve(self.encoded_size());
        out.push(TYPE_REJECT);
        oer::write_length(out, self.content_size());
        out.extend_from_slice(&self.code.to_bytes());
        oer::write_var_octet_string(out, self.triggered_by.as_bytes());
        oer::write_var_octet_string(out, self.message);
        oer::write_var_octet_string(out, self.data);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_size());
        self.write_to(&mut out);
        out
    }
}

fn ascii_str(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}

fn envelope_size(content_size: usize) -> usize {
    1 + oer::var_octet_string_size(content_size)
}

/// SHA-256 of a fulfillment: the condition it satisfies.
pub fn condition_of(fulfillment: &[u8; 32]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, fulfillment);
    let mut condition = [0u8; 32];
    condition.copy_from_slice(digest.as_ref());
    condition
}

/// Whether `fulfillment` hashes to `condition`. Both are public once the Fulfill is
/// on the wire, so a plain comparison leaks nothing.
pub fn fulfillment_matches(fulfillment: &[u8; 32], condition: &[u8; 32]) -> bool {
    condition_of(fulfillment) == *condition
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREPARE_HEX: &str = "0c68000000000000006b323031373132323330313231343035343974e1136dc71c9e5f283bec83461cbf1261c4014f72d48f8dd65453a0b84e7de10d6578616d706c652e616c696365205db343fdc41898f6df4202329139dc242dd0f558a811b46b28918fdab37c6cb0";
    const FULFILL_HEX: &str = "0d41c3866b48749ccf113b2e15c25d2407fbfc14476fe7296bb1bf1bcd9e6e41665020673febd78a33b28e1c0db14c9a06251a05fa831ed4ed91ebcd150e7249c2e600";
    const REJECT_HEX: &str = "0e414630310e6578616d706c652e75732e626f62276d697373696e672064657374696e6174696f6e2e206c65646765723d6578616d706c652e75732e06000000041041";
    const JS_STREAM_PREPARE_HEX: &str = "0c819900000000000001f43230313931303238323134313533383338f31a96346c613011947f39a0f1f4e573c2fc3e7e53797672b01d2898e90c9a0723746573742e70656572422e4e6a584430754a504275477a353653426d4933755836682d3b6cc484c0d4e9282275d4b37c6ae18f35b497ddbfcbce6d9305b9451b4395c3158aa75e05bf27582a237109ec6ca0129d840da7abd96826c8147d0d";

    fn bytes(hex_text: &str) -> Vec<u8> {
        hex::decode(hex_text).expect("test hex")
    }

    #[test]
    fn prepare_vector_decodes_and_round_trips() {
        let buffer = bytes(PREPARE_HEX);
        let prepare = Prepare::parse(&buffer).expect("valid Prepare");
        assert_eq!(prepare.amount, 107);
        assert_eq!(&prepare.expires_at.to_digits(), b"20171223012140549");
        assert_eq!(
            hex::encode(prepare.execution_condition),
            "74e1136dc71c9e5f283bec83461cbf1261c4014f72d48f8dd65453a0b84e7de1"
        );
        assert_eq!(prepare.destination.as_str(), "example.alice");
        assert_eq!(
            hex::encode(prepare.data),
            "5db343fdc41898f6df4202329139dc242dd0f558a811b46b28918fdab37c6cb0"
        );
        assert_eq!(prepare.to_bytes(), buffer);
        assert_eq!(prepare.encoded_size(), buffer.len());
    }

    #[test]
    fn the_amount_is_read_from_the_envelope_alone() {
        assert_eq!(Prepare::amount_of(&bytes(PREPARE_HEX)), Some(107));
        assert_eq!(Prepare::amount_of(&bytes(JS_STREAM_PREPARE_HEX)), Some(500));
        assert_eq!(Prepare::amount_of(&bytes(FULFILL_HEX)), None);
        assert_eq!(Prepare::amount_of(&bytes(PREPARE_HEX)[..5]), None);
        assert_eq!(Prepare::amount_of(&[]), None);
    }

    #[test]
    fn fulfill_vector_decodes_and_round_trips() {
        let buffer = bytes(FULFILL_HEX);
        let fulfill = Fulfill::parse(&buffer).expect("valid Fulfill");
        assert_eq!(
            hex::encode(fulfill.fulfillment),
            "c3866b48749ccf113b2e15c25d2407fbfc14476fe7296bb1bf1bcd9e6e416650"
        );
        assert_eq!(fulfill.data.len(), 32);
        assert_eq!(fulfill.to_bytes(), buffer);
    }

    #[test]
    fn reject_vector_decodes_and_round_trips() {
        let buffer = bytes(REJECT_HEX);
        let reject = Reject::parse(&buffer).expect("valid Reject");
        assert_eq!(reject.code, ErrorCode::F01);
        assert_eq!(reject.triggered_by, "example.us.bob");
        assert_eq!(
            reject.message_lossy(),
            "missing destination. ledger=example.us."
        );
        assert_eq!(reject.data, [0, 0, 0, 4, 16, 65]);
        assert_eq!(reject.to_bytes(), buffer);
    }

    #[test]
    fn js_stream_prepare_decodes() {
        let buffer = bytes(JS_STREAM_PREPARE_HEX);
        let prepare = Prepare::parse(&buffer).expect("valid Prepare");
        assert_eq!(prepare.amount, 500);
        assert_eq!(&prepare.expires_at.to_digits(), b"20191028214153838");
        assert_eq!(
            prepare.destination.as_str(),
            "test.peerB.NjXD0uJPBuGz56SBmI3uX6h-"
        );
        assert_eq!(prepare.data.len(), 59);
        assert_eq!(prepare.to_bytes(), buffer);
    }

    #[test]
    fn long_form_lengths_round_trip() {
        let data = [0x6cu8; 257];
        let condition = [0x11u8; 32];
        let prepare = Prepare {
            amount: 107,
            expires_at: Timestamp::from_unix_ms(1_528_404_522_483).expect("in range"),
            execution_condition: &condition,
            destination: Address::parse_str("example.alice").expect("valid"),
            data: &data,
        };
        let buffer = prepare.to_bytes();
        assert_eq!(&buffer[..4], &[0x0c, 0x82, 0x01, 0x4b]);
        assert_eq!(buffer.len(), 335);
        assert_eq!(Prepare::parse(&buffer), Ok(prepare));
    }

    #[test]
    fn rewrite_changes_only_amount_and_expiry() {
        let mut buffer = bytes(PREPARE_HEX);
        let original = buffer.clone();
        let expiry = Timestamp::from_unix_ms(1_700_000_000_123).expect("in range");
        let size = rewrite_prepare(&mut buffer, 99, expiry).expect("rewrite");
        assert_eq!(size, buffer.len());
        let mut trailing = buffer.clone();
        trailing.extend_from_slice(b"extra");
        assert_eq!(rewrite_prepare(&mut trailing, 99, expiry), Ok(size));
        let rewritten = Prepare::parse(&buffer).expect("still valid");
        assert_eq!(rewritten.amount, 99);
        assert_eq!(rewritten.expires_at, expiry);
        let changed: Vec<usize> = (0..buffer.len())
            .filter(|i| buffer[*i] != original[*i])
            .collect();
        assert!(
            changed.iter().all(|i| (2..2 + 8 + 17).contains(i)),
            "{changed:?}"
        );
        assert_eq!(
            rewrite_prepare(&mut bytes(FULFILL_HEX), 1, expiry).err(),
            Some(PacketError::WrongType {
                expected: 12,
                found: 13
            })
        );
    }

    #[test]
    fn malformed_prepares_are_typed_errors() {
        let good = bytes(PREPARE_HEX);
        assert_eq!(Packet::parse(&[]), Err(PacketError::Empty));
        assert_eq!(
            Packet::parse(&[0x0f, 0x00]),
            Err(PacketError::UnknownType(15))
        );
        let truncated = &good[..good.len() - 1];
        assert!(matches!(
            Prepare::parse(truncated),
            Err(PacketError::Oer {
                field: "envelope",
                ..
            })
        ));
        let mut bad_expiry = good.clone();
        bad_expiry[10] = b'x';
        assert_eq!(
            Prepare::parse(&bad_expiry),
            Err(PacketError::Expiry(TimestampError::NotDigits))
        );
        let mut bad_destination = good.clone();
        bad_destination[2 + 8 + 17 + 32 + 1] = b'X';
        assert_eq!(
            Prepare::parse(&bad_destination),
            Err(PacketError::Destination(AddressError::UnknownScheme))
        );
        let mut short_content = good.clone();
        short_content[1] = 0x20;
        assert!(matches!(
            Prepare::parse(&short_content),
            Err(PacketError::Oer { .. })
        ));
    }

    #[test]
    fn trailing_bytes_are_ignored() {
        let mut buffer = bytes(PREPARE_HEX);
        buffer.extend_from_slice(b"junk");
        assert!(Prepare::parse(&buffer).is_ok());
    }

    #[test]
    fn fulfillment_check() {
        let fulfillment = [0u8; 32];
        let condition = condition_of(&fulfillment);
        assert_eq!(
            hex::encode(condition),
            "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
        );
        assert!(fulfillment_matches(&fulfillment, &condition));
        assert!(!fulfillment_matches(&[1u8; 32], &condition));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn address() -> impl Strategy<Value = String> {
            "(g|test|example|private)(\\.[a-zA-Z0-9_~-]{1,20}){1,5}"
        }

        proptest! {
            #[test]
            fn prepare_round_trips(
                amount: u64,
                unix_ms in 0u64..=Timestamp::MAX.unix_ms(),
                condition: [u8; 32],
                destination in address(),
                data in proptest::collection::vec(any::<u8>(), 0..600),
            ) {
                let prepare = Prepare {
                    amount,
                    expires_at: Timestamp::from_unix_ms(unix_ms).expect("in range"),
                    execution_condition: &condition,
                    destination: Address::parse_str(&destination).expect("valid"),
                    data: &data,
                };
                let buffer = prepare.to_bytes();
                prop_assert_eq!(Packet::parse(&buffer), Ok(Packet::Prepare(prepare)));
            }

            #[test]
            fn fulfill_and_reject_round_trip(
                fulfillment: [u8; 32],
                code: [u8; 3],
                triggered_by in "[a-z.]{0,30}",
                message in proptest::collection::vec(any::<u8>(), 0..300),
                data in proptest::collection::vec(any::<u8>(), 0..300),
            ) {
                let fulfill = Fulfill { fulfillment: &fulfillment, data: &data };
                let fulfill_bytes = fulfill.to_bytes();
                prop_assert_eq!(Packet::parse(&fulfill_bytes), Ok(Packet::Fulfill(fulfill)));
                let code = code.map(|b| b & 0x7f);
                let reject = Reject { code: ErrorCode::from_bytes(code), triggered_by: &triggered_by, message: &message, data: &data };
                let reject_bytes = reject.to_bytes();
                prop_assert_eq!(Packet::parse(&reject_bytes), Ok(Packet::Reject(reject)));
            }

            #[test]
            fn parse_never_panics(buffer in proptest::collection::vec(any::<u8>(), 0..200)) {
                let _ = Packet::parse(&buffer);
            }

            #[test]
            fn mutated_prepares_never_panic(index: usize, value: u8) {
                let mut buffer = bytes(PREPARE_HEX);
                let slot = index % buffer.len();
                buffer[slot] = value;
                let _ = Packet::parse(&buffer);
                let _ = rewrite_prepare(&mut buffer, 1, Timestamp::MAX);
            }
        }
    }
}

//! Canonical OER primitives (RFC 0030): a zero-copy reader and append-only writers.
//!
//! The reader is strict: a length determinant or VarUInt that is not in its canonical
//! (shortest) form is an error, so that every accepted value has exactly one encoding.

use crate::limits::LENGTH_MAX;
use thiserror::Error;

/// Why a buffer is not valid canonical OER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum OerError {
    #[error("unexpected end of input")]
    UnexpectedEnd,
    #[error("indefinite length determinant (0x80)")]
    IndefiniteLength,
    #[error("length determinant uses {0} length bytes, at most 8 are allowed")]
    LengthOfLengthTooLarge(u8),
    #[error("length determinant is not in its shortest form")]
    NonCanonicalLength,
    #[error("length {0} is larger than the maximum")]
    LengthTooLarge(u64),
    #[error("VarUInt has length zero")]
    VarUIntEmpty,
    #[error("VarUInt is {0} bytes long and does not fit in 64 bits")]
    VarUIntTooLong(usize),
    #[error("VarUInt has a leading zero byte")]
    NonCanonicalVarUInt,
}

/// A cursor over a borrowed buffer. Every read either advances past a complete value
/// or returns an error and leaves the reader unusable for that message.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buffer: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buffer: &'a [u8]) -> Self {
        Reader { buffer, offset: 0 }
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buffer.len() - self.offset
    }

    /// The unread rest of the buffer, consumed.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = &self.buffer[self.offset..];
        self.offset = self.buffer.len();
        rest
    }

    pub fn read_u8(&mut self) -> Result<u8, OerError> {
        let byte = *self
            .buffer
            .get(self.offset)
            .ok_or(OerError::UnexpectedEnd)?;
        self.offset += 1;
        Ok(byte)
    }

    pub fn read_bytes(&mut self, count: usize) -> Result<&'a [u8], OerError> {
        if count > self.remaining() {
            return Err(OerError::UnexpectedEnd);
        }
        let bytes = &self.buffer[self.offset..self.offset + count];
        self.offset += count;
        Ok(bytes)
    }

    pub fn read_array<const N: usize>(&mut self) -> Result<&'a [u8; N], OerError> {
        let bytes = self.read_bytes(N)?;
        // The slice has exactly N bytes, so the conversion cannot fail.
        bytes.try_into().map_err(|_| OerError::UnexpectedEnd)
    }

    pub fn read_u64(&mut self) -> Result<u64, OerError> {
        Ok(u64::from_be_bytes(*self.read_array::<8>()?))
    }

    /// A length determinant, strict: short form below 128, long form without leading
    /// zero bytes, at most 8 length bytes, value at most `LENGTH_MAX`.
    pub fn read_length(&mut self) -> Result<usize, OerError> {
        let first = self.read_u8()?;
        if first & 0x80 == 0 {
            return Ok(usize::from(first));
        }
        let length_of_length = first & 0x7f;
        if length_of_length == 0 {
            return Err(OerError::IndefiniteLength);
        }
        if length_of_length > 8 {
            return Err(OerError::LengthOfLengthTooLarge(length_of_length));
        }
        let bytes = self.read_bytes(usize::from(length_of_length))?;
        if bytes[0] == 0 {
            return Err(OerError::NonCanonicalLength);
        }
        let length = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        if length < 128 {
            return Err(OerError::NonCanonicalLength);
        }
        if length > LENGTH_MAX {
            return Err(OerError::LengthTooLarge(length));
        }
        usize::try_from(length).map_err(|_| OerError::LengthTooLarge(length))
    }

    /// A length-prefixed octet string, borrowed.
    pub fn read_var_octet_string(&mut self) -> Result<&'a [u8], OerError> {
        let length = self.read_length()?;
        self.read_bytes(length)
    }

    /// A VarUInt that must fit in a `u64`.
    pub fn read_var_uint(&mut self) -> Result<u64, OerError> {
        let bytes = self.read_var_octet_string()?;
        decode_uint(bytes)
    }

    /// A VarUInt that saturates at `u64::MAX` when longer than 8 bytes, as STREAM
    /// requires for `receiveMax` and `sendMax` (RFC 0029 §5.1.4).
    pub fn read_var_uint_saturating(&mut self) -> Result<u64, OerError> {
        let bytes = self.read_var_octet_string()?;
        if bytes.len() > 8 {
            if bytes[0] == 0 {
                return Err(OerError::NonCanonicalVarUInt);
            }
            return Ok(u64::MAX);
        }
        decode_uint(bytes)
    }
}

fn decode_uint(bytes: &[u8]) -> Result<u64, OerError> {
    match bytes.len() {
        0 => Err(OerError::VarUIntEmpty),
        1..=8 => {
            if bytes.len() > 1 && bytes[0] == 0 {
                return Err(OerError::NonCanonicalVarUInt);
            }
            Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
        }
        length => Err(OerError::VarUIntTooLong(length)),
    }
}

/// Bytes a length determinant for `length` takes.
pub fn length_prefix_size(length: usize) -> usize {
    if length < 128 {
        1
    } else {
        1 + byte_count(length as u64)
    }
}

/// Bytes a VarUInt for `value` takes, prefix included.
pub fn var_uint_size(value: u64) -> usize {
    1 + byte_count(value)
}

/// Bytes a VarOctetString of `length` bytes takes, prefix included.
pub fn var_octet_string_size(length: usize) -> usize {
    length_prefix_size(length) + length
}

/// Minimal number of big-endian bytes for `value` (1 for zero).
fn byte_count(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(8).max(1)
}

pub fn write_length(out: &mut Vec<u8>, length: usize) {
    if length < 128 {
        out.push(length as u8);
        return;
    }
    let count = byte_count(length as u64);
    debug_assert!((1..=8).contains(&count));
    out.push(0x80 | count as u8);
    out.extend_from_slice(&(length as u64).to_be_bytes()[8 - count..]);
}

pub fn write_var_octet_string(out: &mut Vec<u8>, bytes: &[u8]) {
    write_length(out, bytes.len());
    out.extend_from_slice(bytes);
}

pub fn write_var_uint(out: &mut Vec<u8>, value: u64) {
    let count = byte_count(value);
    out.push(count as u8);
    out.extend_from_slice(&value.to_be_bytes()[8 - count..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn length_of(hex_input: &str) -> Result<usize, OerError> {
        let bytes = hex::decode(hex_input).expect("test hex");
        let mut padded = bytes.clone();
        padded.extend(std::iter::repeat_n(0u8, 300));
        Reader::new(&padded).read_length()
    }

    #[test]
    fn rfc_length_examples() {
        assert_eq!(length_of("07"), Ok(7));
        assert_eq!(length_of("7f"), Ok(127));
        assert_eq!(length_of("8180"), Ok(128));
        assert_eq!(length_of("8182"), Ok(130));
        assert_eq!(length_of("821234"), Ok(4660));
        assert_eq!(length_of("83abcdef"), Ok(11_259_375));
    }

    #[test]
    fn rfc_eight_byte_length_is_rejected_as_too_large() {
        assert_eq!(
            length_of("88ac01055a1debac1e"),
            Err(OerError::LengthTooLarge(12_394_193_534_107_495_454))
        );
    }

    #[test]
    fn strict_length_rules() {
        assert_eq!(length_of("80"), Err(OerError::IndefiniteLength));
        assert_eq!(length_of("89"), Err(OerError::LengthOfLengthTooLarge(9)));
        assert_eq!(length_of("820080"), Err(OerError::NonCanonicalLength));
        assert_eq!(length_of("817f"), Err(OerError::NonCanonicalLength));
        assert_eq!(
            Reader::new(&[0x82, 0x01]).read_length(),
            Err(OerError::UnexpectedEnd)
        );
    }

    #[test]
    fn var_uint_rules() {
        assert_eq!(Reader::new(&[1, 0]).read_var_uint(), Ok(0));
        assert_eq!(Reader::new(&[2, 1, 0]).read_var_uint(), Ok(256));
        assert_eq!(
            Reader::new(&[0]).read_var_uint(),
            Err(OerError::VarUIntEmpty)
        );
        assert_eq!(
            Reader::new(&[2, 0, 1]).read_var_uint(),
            Err(OerError::NonCanonicalVarUInt)
        );
        let nine = [9, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            Reader::new(&nine).read_var_uint(),
            Err(OerError::VarUIntTooLong(9))
        );
        assert_eq!(Reader::new(&nine).read_var_uint_saturating(), Ok(u64::MAX));
    }

    #[test]
    fn writers_produce_the_canonical_form() {
        for (value, expected) in [
            (0u64, "0100"),
            (255, "01ff"),
            (256, "020100"),
            (u64::MAX, "08ffffffffffffffff"),
        ] {
            let mut out = Vec::new();
            write_var_uint(&mut out, value);
            assert_eq!(hex::encode(&out), expected);
            assert_eq!(out.len(), var_uint_size(value));
        }
        for (length, expected) in [(0usize, "00"), (127, "7f"), (128, "8180"), (4660, "821234")] {
            let mut out = Vec::new();
            write_length(&mut out, length);
            assert_eq!(hex::encode(&out), expected);
            assert_eq!(out.len(), length_prefix_size(length));
        }
    }

    proptest::proptest! {
        #[test]
        fn var_uint_round_trips(value: u64) {
            let mut out = Vec::new();
            write_var_uint(&mut out, value);
            proptest::prop_assert_eq!(Reader::new(&out).read_var_uint(), Ok(value));
        }

        #[test]
        fn length_round_trips(length in 0usize..1_000_000) {
            let mut out = Vec::new();
            write_length(&mut out, length);
            proptest::prop_assert_eq!(Reader::new(&out).read_length(), Ok(length));
        }

        #[test]
        fn reader_never_panics(bytes: Vec<u8>) {
            let mut reader = Reader::new(&bytes);
            let _ = reader.read_var_uint_saturating();
            let _ = reader.read_var_octet_string();
            let _ = reader.read_length();
        }
    }
}

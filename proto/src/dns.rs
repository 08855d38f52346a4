//! DNS over UDP (RFC 1035), only as far as a connector needs: a query for the
//! addresses of one name, and the addresses and time to live read back from the
//! answer. Sans-IO: the data plane's resolver owns the socket, the clock and the
//! cache; this module only builds and reads messages, bounded in every loop.

use crate::limits::{DNS_ANSWERS_MAX, DNS_NAME_SIZE_MAX};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thiserror::Error;

/// The record a query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// IPv4 addresses.
    A = 1,
    /// IPv6 addresses.
    Aaaa = 28,
}

const CLASS_IN: u16 = 1;
const HEADER_SIZE: usize = 12;
/// Labels of a name, at most: a name of 255 bytes has fewer.
const LABELS_MAX: usize = 128;
/// Compression pointers followed while skipping one name: enough for any honest
/// answer, and a loop of pointers stops here.
const POINTER_HOPS_MAX: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DnsError {
    #[error("not a host name: {0:?}")]
    InvalidName(String),
    #[error("answer is truncated or malformed")]
    Malformed,
    #[error("answer is for another query")]
    WrongId,
    #[error("no such name")]
    NameNotFound,
    #[error("server failed (code {0})")]
    ServerFailure(u8),
    #[error("answer was truncated; TCP is not supported")]
    Truncated,
}

/// The addresses of a name and how long they may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub addresses: Vec<IpAddr>,
    /// The smallest TTL among the records used.
    pub ttl_s: u32,
}

/// A recursive query (RD set) for `name`'s records of type `record`.
pub fn query(id: u16, name: &str, record: RecordType) -> Result<Vec<u8>, DnsError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let invalid = || DnsError::InvalidName(name.to_owned());
    if name.is_empty() || name.len() > DNS_NAME_SIZE_MAX {
        return Err(invalid());
    }
    let mut message = Vec::with_capacity(HEADER_SIZE + name.len() + 6);
    message.extend_from_slice(&id.to_be_bytes());
    // Flags: a standard query, recursion desired; one question.
    message.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(invalid());
        }
        message.push(label.len() as u8);
        message.extend_from_slice(label.as_bytes());
    }
    message.push(0);
    message.extend_from_slice(&(record as u16).to_be_bytes());
    message.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(message)
}

/// Reads the answer to query `id` for `name`: the addresses of type `record` it
/// holds (those of the name's aliases included, as a recursive server sends the
/// whole chain). An answer must repeat the question it answers. An answer without
/// addresses is an empty list, not an error: the name may have only addresses of
/// the other type.
pub fn parse_answer(
    message: &[u8],
    id: u16,
    name: &str,
    record: RecordType,
) -> Result<Answer, DnsError> {
    let mut reader = Reader { message, at: 0 };
    let answer_id = reader.u16()?;
    let flags = reader.u16()?;
    if answer_id != id || flags & 0x8000 == 0 {
        return Err(DnsError::WrongId);
    }
    if flags & 0x0200 != 0 {
        return Err(DnsError::Truncated);
    }
    match (flags & 0x000F) as u8 {
        0 => {}
        3 => return Err(DnsError::NameNotFound),
        code => return Err(DnsError::ServerFailure(code)),
    }
    let questions = reader.u16()?;
    let answers = reader.u16()?;
    reader.skip(4)?; // authority and additional counts: not read
    if questions != 1 {
        return Err(DnsError::Malformed);
    }
    if !reader.question_is(name, record)? {
        return Err(DnsError::WrongId);
    }
    let mut result = Answer {
        addresses: Vec::new(),
        ttl_s: u32::MAX,
    };
    for _ in 0..usize::from(answers).min(DNS_ANSWERS_MAX) {
        reader.skip_name()?;
        let (kind, class) = (reader.u16()?, reader.u16()?);
        let ttl_s = reader.u32()?;
        let size = usize::from(reader.u16()?);
        let data = reader.take(size)?;
        if kind != record as u16 || class != CLASS_IN {
            continue;
        }
        let address = match (record, data.len()) {
            (RecordType::A, 4) => IpAddr::V4(Ipv4Addr::new(data[0], data[1], data[2], data[3])),
            (RecordType::Aaaa, 16) => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(data);
                IpAddr::V6(Ipv6Addr::from(octets))
            }
            _ => return Err(DnsError::Malformed),
        };
        result.addresses.push(address);
        result.ttl_s = result.ttl_s.min(ttl_s);
    }
    if result.addresses.is_empty() {
        result.ttl_s = 0;
    }
    Ok(result)
}

struct Reader<'a> {
    message: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, size: usize) -> Result<&'a [u8], DnsError> {
        let end = self.at.checked_add(size).ok_or(DnsError::Malformed)?;
        let bytes = self.message.get(self.at..end).ok_or(DnsError::Malformed)?;
        self.at = end;
        Ok(bytes)
    }

    fn skip(&mut self, size: usize) -> Result<(), DnsError> {
        self.take(size).map(|_| ())
    }

    fn u16(&mut self) -> Result<u16, DnsError> {
        let bytes = self.take(2)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn u32(&mut self) -> Result<u32, DnsError> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// Reads the question and tells whether it asks for `name`'s `record` (names
    /// compare without regard to case, as DNS compares them).
    fn question_is(&mut self, name: &str, record: RecordType) -> Result<bool, DnsError> {
        let name = name.strip_suffix('.').unwrap_or(name).as_bytes();
        let mut matched = 0;
        let mut same = true;
        for index in 0..LABELS_MAX {
            let length = usize::from(self.take(1)?[0]);
            if length == 0 {
                same &= matched == name.len();
                let (kind, class) = (self.u16()?, self.u16()?);
                return Ok(same && kind == record as u16 && class == CLASS_IN);
            }
            if length > 63 {
                // A question's name is never compressed: nothing comes before it.
                return Err(DnsError::Malformed);
            }
            let label = self.take(length)?;
            if index > 0 {
                same &= name.get(matched) == Some(&b'.');
                matched += 1;
            }
            let expected = name.get(matched..matched + length);
            same &= expected.is_some_and(|expected| expected.eq_ignore_ascii_case(label));
            matched += length;
        }
        Err(DnsError::Malformed)
    }

    /// Skips a name where it stands: labels up to the root, or up to a compression
    /// pointer (two bytes), which ends the name in place. The pointer's target is
    /// never read, only checked to lie before it, so pointers cannot loop.
    fn skip_name(&mut self) -> Result<(), DnsError> {
        for _ in 0..LABELS_MAX + POINTER_HOPS_MAX {
            let length = self.take(1)?[0];
            match length & 0xC0 {
                0x00 if length == 0 => return Ok(()),
                0x00 => self.skip(usize::from(length))?,
                0xC0 => {
                    let target = usize::from(length & 0x3F) << 8 | usize::from(self.take(1)?[0]);
                    return if target < self.at - 2 {
                        Ok(())
                    } else {
                        Err(DnsError::Malformed)
                    };
                }
                _ => return Err(DnsError::Malformed),
            }
        }
        Err(DnsError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "peer.example.com";

    /// An answer as a recursive server writes it: the question, then records whose
    /// names point back at it.
    fn answer(id: u16, flags: u16, records: &[(u16, u32, &[u8])]) -> Vec<u8> {
        answer_to(RecordType::A, id, flags, records)
    }

    fn answer_to(
        record: RecordType,
        id: u16,
        flags: u16,
        records: &[(u16, u32, &[u8])],
    ) -> Vec<u8> {
        let question = query(id, NAME, record).expect("query");
        let mut message = question.clone();
        message[2..4].copy_from_slice(&(flags | 0x8000).to_be_bytes());
        message[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
        for (kind, ttl, data) in records {
            message.extend_from_slice(&[0xC0, 12]);
            message.extend_from_slice(&kind.to_be_bytes());
            message.extend_from_slice(&CLASS_IN.to_be_bytes());
            message.extend_from_slice(&ttl.to_be_bytes());
            message.extend_from_slice(&(data.len() as u16).to_be_bytes());
            message.extend_from_slice(data);
        }
        message
    }

    #[test]
    fn a_query_has_the_rfc_1035_layout() {
        let message = query(0xBEEF, "a.example.", RecordType::A).expect("query");
        assert_eq!(
            message,
            [
                0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 7, b'e', b'x', b'a', b'm',
                b'p', b'l', b'e', 0, 0, 1, 0, 1
            ]
        );
        for bad in ["", "a..b", "a b.com", &"x".repeat(64), &"a.".repeat(200)] {
            assert!(query(1, bad, RecordType::A).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn addresses_and_the_smallest_ttl_are_read() {
        let cname: &[u8] = &[0xC0, 12];
        let message = answer(
            7,
            0x0180,
            &[
                (5, 900, cname),
                (1, 60, &[10, 0, 0, 1]),
                (1, 30, &[10, 0, 0, 2]),
            ],
        );
        let read = parse_answer(&message, 7, NAME, RecordType::A).expect("answer");
        assert_eq!(
            read.addresses,
            vec![IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2])]
        );
        assert_eq!(read.ttl_s, 30);
        let six = answer_to(RecordType::Aaaa, 8, 0x0180, &[(28, 5, &[0; 16])]);
        let read = parse_answer(&six, 8, NAME, RecordType::Aaaa).expect("answer");
        assert_eq!(read.addresses, vec![IpAddr::from([0u16; 8])]);
        let only_six = answer(8, 0x0180, &[(28, 5, &[0; 16])]);
        assert!(parse_answer(&only_six, 8, NAME, RecordType::A)
            .expect("empty")
            .addresses
            .is_empty());
    }

    #[test]
    fn errors_are_typed() {
        let message = answer(7, 0x0180, &[(1, 60, &[10, 0, 0, 1])]);
        assert_eq!(
            parse_answer(&message, 8, NAME, RecordType::A),
            Err(DnsError::WrongId)
        );
        let missing = answer(7, 0x0183, &[]);
        assert_eq!(
            parse_answer(&missing, 7, NAME, RecordType::A),
            Err(DnsError::NameNotFound)
        );
        let failed = answer(7, 0x0182, &[]);
        assert_eq!(
            parse_answer(&failed, 7, NAME, RecordType::A),
            Err(DnsError::ServerFailure(2))
        );
        let truncated = answer(7, 0x0380, &[]);
        assert_eq!(
            parse_answer(&truncated, 7, NAME, RecordType::A),
            Err(DnsError::Truncated)
        );
        for cut in 0..message.len() {
            assert!(parse_answer(&message[..cut], 7, NAME, RecordType::A).is_err());
        }
        let mut forward_pointer = message.clone();
        let at = forward_pointer.len() - 16;
        forward_pointer[at + 1] = 0xFF;
        assert_eq!(
            parse_answer(&forward_pointer, 7, NAME, RecordType::A),
            Err(DnsError::Malformed)
        );
        let read = parse_answer(&message, 7, "PEER.Example.com.", RecordType::A);
        assert!(read.is_ok(), "names compare without case");
        for other in [
            "peer.example.org",
            "peer.example.co",
            "peer.example.comm",
            "example.com",
        ] {
            assert_eq!(
                parse_answer(&message, 7, other, RecordType::A),
                Err(DnsError::WrongId),
                "{other}"
            );
        }
        let wrong_size = answer(7, 0x0180, &[(1, 60, &[10, 0, 0])]);
        assert_eq!(
            parse_answer(&wrong_size, 7, NAME, RecordType::A),
            Err(DnsError::Malformed)
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_an_answer_or_an_error(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = parse_answer(&bytes, 7, NAME, RecordType::A);
        }
    }
}

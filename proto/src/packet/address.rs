//! ILP addresses (RFC 0015): `scheme(.segment)+`, at most 1023 bytes.

use crate::limits::ADDRESS_SIZE_MAX;
use std::fmt;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AddressError {
    #[error("address is empty")]
    Empty,
    #[error("address is {0} bytes long, the maximum is 1023")]
    TooLong(usize),
    #[error("address scheme is not one of g, private, example, peer, self, test, test1-3, local")]
    UnknownScheme,
    #[error("address needs at least one segment after the scheme")]
    NoSegment,
    #[error("address has an empty segment")]
    EmptySegment,
    #[error("address has a character outside a-z A-Z 0-9 _ ~ -")]
    InvalidCharacter,
}

/// A validated ILP address borrowed from a packet or a config string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address<'a>(&'a str);

impl<'a> Address<'a> {
    /// Validates `bytes` as an address.
    pub fn parse(bytes: &'a [u8]) -> Result<Address<'a>, AddressError> {
        validate(bytes)?;
        // Validation admitted only ASCII bytes, so this cannot fail.
        let text = std::str::from_utf8(bytes).map_err(|_| AddressError::InvalidCharacter)?;
        Ok(Address(text))
    }

    pub fn parse_str(text: &'a str) -> Result<Address<'a>, AddressError> {
        Self::parse(text.as_bytes())
    }

    pub fn as_str(&self) -> &'a str {
        self.0
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.0.as_bytes()
    }

    /// The allocation scheme: `g`, `test`, `peer`, ...
    pub fn scheme(&self) -> &'a str {
        self.0.split('.').next().unwrap_or(self.0)
    }

    /// Segments after the scheme.
    pub fn segments(&self) -> impl Iterator<Item = &'a str> {
        self.0.split('.').skip(1)
    }

    /// True when `prefix` equals this address or is one of its dot-separated
    /// ancestors (`g.a` is a prefix of `g.a.b` but not of `g.ab`).
    pub fn starts_with_segments(&self, prefix: &str) -> bool {
        match self.0.strip_prefix(prefix) {
            Some("") => true,
            Some(rest) => rest.starts_with('.') || prefix.ends_with('.'),
            None => false,
        }
    }
}

impl fmt::Debug for Address<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", self.0)
    }
}

impl fmt::Display for Address<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Bytes allowed inside a segment: `a-z A-Z 0-9 _ ~ -`. A table, because this check
/// runs on every byte of every destination on the packet path.
const SEGMENT_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || b == b'_' || b == b'~' || b == b'-';
        byte += 1;
    }
    table
};

/// Whether `text` can prefix addresses in a route: empty (every address), a scheme
/// alone (`g`, `test`), or a valid address (`g.a`), as Rafiki's routes may.
pub fn is_route_prefix(text: &str) -> bool {
    text.is_empty() || is_scheme(text.as_bytes()) || validate(text.as_bytes()).is_ok()
}

fn is_scheme(scheme: &[u8]) -> bool {
    matches!(
        scheme,
        b"g" | b"private"
            | b"example"
            | b"peer"
            | b"self"
            | b"test"
            | b"test1"
            | b"test2"
            | b"test3"
            | b"local"
    )
}

/// One pass over the bytes: scheme, then segments separated by single dots.
fn validate(bytes: &[u8]) -> Result<(), AddressError> {
    if bytes.is_empty() {
        return Err(AddressError::Empty);
    }
    if bytes.len() > ADDRESS_SIZE_MAX {
        return Err(AddressError::TooLong(bytes.len()));
    }
    let scheme_end = bytes.iter().position(|b| *b == b'.');
    if !is_scheme(&bytes[..scheme_end.unwrap_or(bytes.len())]) {
        return Err(AddressError::UnknownScheme);
    }
    let Some(scheme_end) = scheme_end else {
        return Err(AddressError::NoSegment);
    };
    let mut segment_size = 0usize;
    for &byte in &bytes[scheme_end + 1..] {
        if byte == b'.' {
            if segment_size == 0 {
                return Err(AddressError::EmptySegment);
            }
            segment_size = 0;
        } else if SEGMENT_BYTES[usize::from(byte)] {
            segment_size += 1;
        } else {
            return Err(AddressError::InvalidCharacter);
        }
    }
    if segment_size == 0 {
        return Err(AddressError::EmptySegment);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_addresses() {
        for text in [
            "g.acme.bob",
            "test.x",
            "test3.a-b_c~d",
            "peer.config",
            "private.0",
            "self.me",
            "local.x",
        ] {
            assert!(Address::parse_str(text).is_ok(), "{text}");
        }
        let long = format!("g.{}", "a".repeat(ADDRESS_SIZE_MAX - 2));
        assert!(Address::parse_str(&long).is_ok());
    }

    #[test]
    fn invalid_addresses() {
        assert_eq!(Address::parse_str(""), Err(AddressError::Empty));
        assert_eq!(Address::parse_str("g"), Err(AddressError::NoSegment));
        assert_eq!(Address::parse_str("g."), Err(AddressError::EmptySegment));
        assert_eq!(Address::parse_str("g..a"), Err(AddressError::EmptySegment));
        assert_eq!(
            Address::parse_str("test4.a"),
            Err(AddressError::UnknownScheme)
        );
        assert_eq!(Address::parse_str("G.a"), Err(AddressError::UnknownScheme));
        assert_eq!(
            Address::parse_str("g.a b"),
            Err(AddressError::InvalidCharacter)
        );
        assert_eq!(
            Address::parse_str("g.é"),
            Err(AddressError::InvalidCharacter)
        );
        let long = format!("g.{}", "a".repeat(ADDRESS_SIZE_MAX - 1));
        assert_eq!(Address::parse_str(&long), Err(AddressError::TooLong(1024)));
    }

    #[test]
    fn route_prefixes_may_be_empty_or_a_bare_scheme() {
        for prefix in ["", "g", "test", "g.a", "test.a.b"] {
            assert!(is_route_prefix(prefix), "{prefix:?}");
        }
        for prefix in ["g.", ".g", "gg", "g..a", "g.a b", "x.a"] {
            assert!(!is_route_prefix(prefix), "{prefix:?}");
        }
    }

    #[test]
    fn scheme_and_segment_prefixes() {
        let address = Address::parse_str("g.acme.bob").expect("valid");
        assert_eq!(address.scheme(), "g");
        assert_eq!(address.segments().collect::<Vec<_>>(), ["acme", "bob"]);
        assert!(address.starts_with_segments("g.acme"));
        assert!(address.starts_with_segments("g.acme.bob"));
        assert!(address.starts_with_segments("g."));
        assert!(!address.starts_with_segments("g.ac"));
    }

    proptest::proptest! {
        #[test]
        fn grammar_matches_the_rfc_pattern(text in "(g|test[1-4]?|peer)(\\.[a-zA-Z0-9_~ -]{0,3}){0,3}") {
            let valid = text.split('.').skip(1).count() > 0
                && text.split('.').skip(1).all(|s| !s.is_empty() && !s.contains(' '))
                && !text.starts_with("test4");
            proptest::prop_assert_eq!(Address::parse_str(&text).is_ok(), valid);
        }
    }
}
